//! The sans-IO connection: one WebSocket endpoint (client or server) over one framing.
//!
//! Input goes in through one entry, [`Connection::recv`], whose unit follows the [`Framing`]
//! (bytes of a byte stream split anywhere, or one whole DATA frame per call on the native
//! mapping: [`Framing::is_byte_stream`]); events come out of [`Connection::poll_event`]; sends are
//! queued and the bytes to write come out of [`Connection::poll_transmit`]. No I/O, no clock, no
//! RNG inside (a client on RFC 6455 framing is seeded by the caller), in the style of
//! `quinn-proto` and `rustls`. The liveness rules (ping, idle, close-handshake deadlines) are
//! timers with the time passed in: [`Connection::recv_at`], [`Connection::poll_timeout`],
//! [`Connection::handle_timeout`] ([`crate::timer`]).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::close::{CloseCode, CloseFrame, MAX_REASON_LEN};
use crate::error::{ProtocolError, SendError};
use crate::frame::{native, FrameHeader, OpCode, Parsed, MAX_HEADER_LEN};
use crate::mask::apply_mask;
use crate::message::{Assembled, AssemblerConfig, FragmentKind, Message, MessageAssembler};
use crate::resume::{parse_ack, Resume, ResumeConfig, ResumeError, ResumeTimeout};
use crate::timer::{Timeout, Timeouts, Timers, Timestamp};

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}

/// How frames are laid out on the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framing {
    /// RFC 6455: client→server frames masked, server→client unmasked.
    Rfc6455,
    /// The h2ws fetch framing (DESIGN §3): RFC 6455 headers with MASK = 0 both ways; a masked
    /// frame is a protocol error (1002).
    Stream,
    /// The HTTP/2 native mapping (DESIGN §4): one frame per DATA frame, byte 0 = FIN|RSV|opcode,
    /// the rest is the payload.
    Native,
}

impl Framing {
    /// True for the byte-stream framings (Rfc6455, Stream): input may be split anywhere and
    /// output units may be joined. False for [`Framing::Native`], where every input given to
    /// [`Connection::recv`] and every unit from [`Connection::poll_transmit`] is exactly one
    /// DATA frame, so a transport must neither split nor join them.
    pub fn is_byte_stream(self) -> bool {
        match self {
            Framing::Rfc6455 | Framing::Stream => true,
            Framing::Native => false,
        }
    }
}

/// Limits and behaviour switches. `Config::default()` suits an application endpoint.
#[derive(Clone, Debug)]
pub struct Config {
    /// Larger incoming frames → close 1009. Default 16 MiB.
    pub max_frame_size: usize,
    /// Larger incoming messages (after inflation) → close 1009. Default 64 MiB.
    pub max_message_size: usize,
    /// Answer each Ping with a Pong (sent ahead of queued data). Default true.
    pub auto_pong: bool,
    /// For proxies: hand over each data frame as [`Event::Fragment`] instead of joining
    /// messages, so no more than one frame is ever buffered. Text is still validated as UTF-8
    /// (unless it is RSV1-opaque). Default false.
    pub deliver_fragments: bool,
    /// With `deliver_fragments`: accept RSV1 on a message's first frame and pass it through
    /// untouched in [`Event::Fragment::rsv`] (a gateway forwarding a permessage-deflate
    /// negotiation it does not terminate). Ignored without `deliver_fragments`, because a
    /// joined message cannot be handed over opaque. Default false.
    pub allow_rsv1: bool,
    /// With `deliver_fragments` on Rfc6455 / Stream framing: once this many bytes of a data
    /// frame have arrived (and more are still to come), hand them over as an
    /// [`Event::Fragment`] with `fin = false`; the frame's last piece carries its `fin`. A
    /// proxy then never holds a whole frame, however large, and `max_frame_size` no longer
    /// limits such frames (`max_message_size` still does). Messages inflated here are still
    /// handed over frame by frame. 0 (the default) = whole frames.
    pub fragment_chunk: usize,
    /// Native only: the largest DATA frame the peer accepts (its SETTINGS_MAX_FRAME_SIZE);
    /// outgoing messages are cut into DATA frames of at most this many bytes (1 header byte +
    /// payload). Default 16384.
    pub native_max_payload: usize,
    /// The negotiated permessage-deflate parameters; `None` = not negotiated (RSV1 → 1002).
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::deflate::DeflateParams>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            auto_pong: true,
            deliver_fragments: false,
            allow_rsv1: false,
            fragment_chunk: 0,
            native_max_payload: 16384,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

/// The close handshake as seen from this endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We queued a Close; waiting for the peer's (incoming messages are still delivered).
    Closing,
    /// The peer sent a Close; our echo is queued.
    CloseReceived,
    /// The handshake ended (or failed): [`Event::Closed`] was reported.
    Closed,
}

/// Something that happened on the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Message(Message),
    /// Only with [`Config::deliver_fragments`]: one data frame. `kind` is Text/Binary for a
    /// message's first frame and Continuation after; `fin` ends the message.
    Fragment {
        kind: FragmentKind,
        rsv: u8,
        data: Vec<u8>,
        fin: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The close handshake ended or the transport failed. `clean` = both Close frames were
    /// exchanged. `code` is the peer's (1005 when its Close had none), 1006 when the transport
    /// ended without a Close, or ours after a protocol error.
    Closed {
        code: CloseCode,
        reason: String,
        clean: bool,
    },
}

/// The close handshake (RFC 6455 §7.1.2-7.1.4) as this endpoint runs it: one state, and every
/// move a method below. [`Connection::state`] is the public view of it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CloseHandshake {
    /// No Close queued or received.
    Open,
    /// We started the close ([`Connection::close`]) and our Close is queued; `sent` once
    /// `poll_transmit` handed it out. The peer's messages are still delivered.
    OursQueued { sent: bool },
    /// The peer's Close arrived while a Close of ours waits in the queue: the one we queued
    /// first (`we_first`) or the echo of theirs. Input is ignored from here; the handshake ends
    /// cleanly, with the peer's code and reason, when ours is sent.
    PeersReceived {
        code: CloseCode,
        reason: String,
        we_first: bool,
    },
    /// [`Event::Closed`] was reported (handshake done, protocol error, transport gone, timer):
    /// input is ignored and nothing more may be sent.
    Done,
}

impl CloseHandshake {
    /// A Close of ours is queued (nothing may be sent after it).
    fn close_queued(&self) -> bool {
        matches!(
            self,
            CloseHandshake::OursQueued { .. } | CloseHandshake::PeersReceived { .. }
        )
    }

    /// Input no longer matters: the peer already closed or the handshake is over.
    fn ignores_input(&self) -> bool {
        matches!(
            self,
            CloseHandshake::PeersReceived { .. } | CloseHandshake::Done
        )
    }

    /// Open → OursQueued: the app closes first. Elsewhere nothing changes (`close` refuses
    /// before getting here).
    fn we_close(&mut self) {
        if *self == CloseHandshake::Open {
            *self = CloseHandshake::OursQueued { sent: false };
        }
    }

    /// The peer's Close arrived (the caller queued our echo first if [`close_queued`] was
    /// false). Returns the clean end when ours had already been sent.
    ///
    /// [`close_queued`]: CloseHandshake::close_queued
    fn peer_closed(&mut self, code: CloseCode, reason: String) -> Option<(CloseCode, String)> {
        match core::mem::replace(self, CloseHandshake::Done) {
            CloseHandshake::Open => {
                *self = CloseHandshake::PeersReceived {
                    code,
                    reason,
                    we_first: false,
                };
                None
            }
            CloseHandshake::OursQueued { sent: false } => {
                *self = CloseHandshake::PeersReceived {
                    code,
                    reason,
                    we_first: true,
                };
                None
            }
            CloseHandshake::OursQueued { sent: true } => Some((code, reason)),
            // Input is ignored in these states: a second Close cannot arrive.
            other => {
                *self = other;
                None
            }
        }
    }

    /// `poll_transmit` handed out our Close. Returns the clean end when the peer's Close was
    /// already in.
    fn close_sent(&mut self) -> Option<(CloseCode, String)> {
        match core::mem::replace(self, CloseHandshake::Done) {
            CloseHandshake::OursQueued { .. } => {
                *self = CloseHandshake::OursQueued { sent: true };
                None
            }
            CloseHandshake::PeersReceived { code, reason, .. } => Some((code, reason)),
            // A Close queued after an error (or before the transport ended) leaves after the
            // end was reported.
            other => {
                *self = other;
                None
            }
        }
    }

    /// Any state → Done (an error, the transport's end, a timer). True if it was not done yet,
    /// i.e. `Event::Closed` is still to be reported.
    fn finish(&mut self) -> bool {
        core::mem::replace(self, CloseHandshake::Done) != CloseHandshake::Done
    }

    fn public(&self) -> State {
        match self {
            CloseHandshake::Open => State::Open,
            CloseHandshake::OursQueued { .. } => State::Closing,
            CloseHandshake::PeersReceived { we_first: true, .. } => State::Closing,
            CloseHandshake::PeersReceived {
                we_first: false, ..
            } => State::CloseReceived,
            CloseHandshake::Done => State::Closed,
        }
    }
}

/// Unsent automatic Pongs kept before newer Pings replace the newest one.
const MAX_QUEUED_AUTO_PONGS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutKind {
    Data,
    Control,
    /// A Pong queued by `auto_pong`. Every Ping is answered, but at most
    /// [`MAX_QUEUED_AUTO_PONGS`] wait unsent: past that a newer Ping replaces the newest queued
    /// Pong (RFC 6455 §5.5.3 allows answering only the latest), so a Ping flood cannot grow the
    /// queue.
    AutoPong,
    Close,
    /// A counted frame sent again after a resume ([`Connection::resume`]): already in the
    /// replay buffer, so it is not recorded twice, and a replayed Close does not move the close
    /// handshake a second time.
    Replay,
}

/// Resume state of a connection that negotiated it ([`Connection::enable_resume`]).
struct Resuming {
    book: Resume,
    /// The bytes of a frame not yet whole. Resumable input reaches the decoder one whole frame
    /// at a time, so a transport cut mid-frame leaves nothing half-decoded (a permessage-deflate
    /// context, a text validator): the peer replays that frame from its first byte.
    partial: Vec<u8>,
    /// The latest time seen (`recv_at`, `handle_timeout`): acknowledgements armed by `recv`
    /// count from it.
    now: Timestamp,
    /// Bytes queued again by re-attaches, over the connection's life.
    replayed: u64,
}

struct Out {
    kind: OutKind,
    bytes: Vec<u8>,
    /// A payload kept apart and written right after `bytes`, never copied here (the shared
    /// payload API: [`Connection::send_binary_shared`]).
    tail: Option<Bytes>,
}

impl Out {
    fn new(kind: OutKind, bytes: Vec<u8>) -> Self {
        Out {
            kind,
            bytes,
            tail: None,
        }
    }

    fn len(&self) -> usize {
        self.bytes.len() + self.tail.as_ref().map_or(0, Bytes::len)
    }

    /// The frame in one piece (copies a tail).
    fn joined(self) -> Vec<u8> {
        let mut bytes = self.bytes;
        if let Some(tail) = self.tail {
            bytes.extend_from_slice(&tail);
        }
        bytes
    }
}

/// One output unit apart in two: `head` (frame header, or whole frames) and, for a payload
/// sent with the shared API, `tail` — the transport writes both in order (vectored, or as two
/// units), so a large payload is never copied on the way out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub head: Vec<u8>,
    pub tail: Option<Bytes>,
}

impl Transmit {
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.as_ref().map_or(0, Bytes::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Payloads from this size on stay apart ([`Transmit::tail`]); smaller ones are copied next to
/// their header, one allocation, as cheap as a reference count.
const SHARED_PAYLOAD_MIN: usize = 4096;

/// Slots a drained queue keeps; a larger one (left by a burst) is freed, so an idle
/// connection does not hold the capacity of its busiest moment.
const KEEP_DRAINED: usize = 8;

/// Frees `queue`'s buffer once it is empty, if a burst grew it past [`KEEP_DRAINED`] slots.
fn release_if_drained<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() > KEEP_DRAINED {
        *queue = VecDeque::new();
    }
}

/// The payload still to come for the frame being received (Rfc6455 / Stream).
#[derive(Clone, Copy, Debug)]
struct PayloadState {
    mask: Option<[u8; 4]>,
    remaining: u64,
}

type MaskKeys = Box<dyn FnMut() -> u32 + Send + Sync>;

/// A WebSocket endpoint state machine; see the [crate docs](crate) for an example.
pub struct Connection {
    role: Role,
    framing: Framing,
    config: Config,
    assembler: MessageAssembler,
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    payload: Option<PayloadState>,
    events: VecDeque<Event>,
    control_out: VecDeque<Out>,
    data_out: VecDeque<Out>,
    pending: usize,
    close: CloseHandshake,
    /// An outgoing fragmented message is open (send_fragment without fin yet).
    sending_fragmented: bool,
    /// Masking keys (a seeded ChaCha20). Boxed behind `dyn`: a build that never calls
    /// [`Connection::with_mask_seed`] (the browser, on stream framing) then does not link
    /// ChaCha20, which otherwise inlines into every frame encode (~5 KB of wasm).
    rng: Option<MaskKeys>,
    /// Liveness timers, once [`Connection::set_timeouts`] armed them.
    timers: Option<Timers>,
    /// Lossless resume, once negotiated. Boxed: most sockets never use it, and an idle one
    /// should not pay for it.
    resume: Option<Box<Resuming>>,
    #[cfg(feature = "deflate")]
    compressor: Option<crate::deflate::Compressor>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("framing", &self.framing)
            .field("state", &self.state())
            .field("pending_bytes", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection in state Open. A client on [`Framing::Rfc6455`] must also be given
    /// [`with_mask_seed`](Self::with_mask_seed): without it every send fails with
    /// [`SendError::MissingMaskSeed`] and `recv` with [`ProtocolError::MissingMaskSeed`], rather
    /// than masking with a predictable key.
    pub fn new(role: Role, framing: Framing, config: Config) -> Self {
        let assembler = MessageAssembler::new(AssemblerConfig {
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            deliver_fragments: config.deliver_fragments,
            allow_rsv1: config.allow_rsv1,
        })
        .with_streamed_frames(config.fragment_chunk > 0);
        #[cfg(feature = "deflate")]
        let (assembler, compressor) = match &config.deflate {
            Some(params) => {
                let is_server = role == Role::Server;
                (
                    assembler.with_inflater(params.decompressor(is_server)),
                    Some(params.compressor(is_server)),
                )
            }
            None => (assembler, None),
        };
        Connection {
            role,
            framing,
            config,
            assembler,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            payload: None,
            events: VecDeque::new(),
            control_out: VecDeque::new(),
            data_out: VecDeque::new(),
            pending: 0,
            close: CloseHandshake::Open,
            sending_fragmented: false,
            rng: None,
            timers: None,
            resume: None,
            #[cfg(feature = "deflate")]
            compressor,
        }
    }

    /// Seeds the generator of masking keys (ChaCha20). Only a client on RFC 6455 framing masks;
    /// the seed must come from the caller's OS RNG (`getrandom`, `crypto.getRandomValues`), since
    /// predictable keys defeat masking's purpose (RFC 6455 §10.3).
    pub fn with_mask_seed(mut self, seed: [u8; 32]) -> Self {
        let mut rng = ChaCha20Rng::from_seed(seed);
        self.rng = Some(Box::new(move || rng.next_u32()));
        self
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    fn masks(&self) -> bool {
        self.role == Role::Client && self.framing == Framing::Rfc6455
    }

    fn missing_seed(&self) -> bool {
        self.masks() && self.rng.is_none()
    }

    /// Input no longer matters: the handshake ended, failed, or the peer already closed.
    fn ignoring_input(&self) -> bool {
        self.close.ignores_input()
    }

    // ------------------------------------------------------------------ input

    /// Feeds input from the transport, in the unit the framing defines
    /// ([`Framing::is_byte_stream`]): on Rfc6455 / Stream any piece of the byte stream (split
    /// anywhere); on Native exactly one DATA frame per call (an empty one carries no WebSocket
    /// frame and is ignored, DESIGN §4). On a protocol error the error is returned, a Close with
    /// its code is queued (if none was yet), `Event::Closed` is reported and further input is
    /// ignored. [`recv_at`](Self::recv_at) is the same with the time, for the timers.
    pub fn recv(&mut self, input: &[u8]) -> Result<(), ProtocolError> {
        if self.ignoring_input() {
            return Ok(());
        }
        match self.framing {
            Framing::Native => self.recv_data_frame(input),
            Framing::Rfc6455 | Framing::Stream if self.resume.is_some() => {
                self.recv_whole_frames(input)
            }
            Framing::Rfc6455 | Framing::Stream => self.recv_stream(input),
        }
    }

    /// Resumable byte-stream input: whole frames go to the decoder (straight from `input` when
    /// a frame lies in it whole, else gathered in `partial` first), each counted frame is
    /// counted once it is decoded. Input while the transport is lost is ignored: it can only be
    /// a late piece of the broken transport, and the peer replays what it carried.
    fn recv_whole_frames(&mut self, mut input: &[u8]) -> Result<(), ProtocolError> {
        let limit = self.config.max_frame_size as u64;
        while !input.is_empty() && !self.ignoring_input() {
            let Some(r) = self.resume.as_mut() else {
                return self.recv_stream(input);
            };
            if r.book.is_lost() {
                return Ok(());
            }
            let held = !r.partial.is_empty();
            let parsed = if held {
                FrameHeader::parse(&r.partial)
            } else {
                FrameHeader::parse(input)
            };
            let (total, opcode) = match parsed {
                // The decoder reports the error (and its close code) as on any other input.
                Err(_) => return self.recv_held_then(input),
                Ok(Parsed::Partial { needed }) => {
                    let n = if held {
                        needed.min(input.len())
                    } else {
                        input.len()
                    };
                    r.partial.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    continue;
                }
                Ok(Parsed::Complete { value, consumed }) => {
                    if value.payload_len > limit {
                        // Too big to gather: the decoder refuses it (1009).
                        return self.recv_held_then(input);
                    }
                    (consumed + value.payload_len as usize, value.opcode)
                }
            };
            if !held && total <= input.len() {
                let (frame, rest) = input.split_at(total);
                input = rest;
                self.recv_counted(frame, opcode)?;
                continue;
            }
            let n = total.saturating_sub(r.partial.len()).min(input.len());
            r.partial.extend_from_slice(&input[..n]);
            input = &input[n..];
            if r.partial.len() == total {
                let frame = core::mem::take(&mut r.partial);
                self.recv_counted(&frame, opcode)?;
            }
        }
        Ok(())
    }

    /// Hands held bytes and then `input` to the decoder as they are (it fails on them).
    fn recv_held_then(&mut self, input: &[u8]) -> Result<(), ProtocolError> {
        let held = self
            .resume
            .as_mut()
            .map(|r| core::mem::take(&mut r.partial))
            .unwrap_or_default();
        self.recv_stream(&held)?;
        self.recv_stream(input)
    }

    /// One whole frame of resumable input: decoded, then counted if it is a data frame or a
    /// Close (what [`crate::resume`] counts).
    fn recv_counted(&mut self, frame: &[u8], opcode: OpCode) -> Result<(), ProtocolError> {
        self.recv_stream(frame)?;
        let counted = matches!(
            opcode,
            OpCode::Text | OpCode::Binary | OpCode::Continuation | OpCode::Close
        );
        if let (true, Some(r)) = (counted, self.resume.as_mut()) {
            r.book.on_receive(frame.len(), r.now);
        }
        Ok(())
    }

    /// Bytes of the byte stream (Rfc6455 / Stream).
    fn recv_stream(&mut self, mut input: &[u8]) -> Result<(), ProtocolError> {
        if self.missing_seed() {
            return self.fail(ProtocolError::MissingMaskSeed);
        }
        while !input.is_empty() && !self.ignoring_input() {
            if let Some(p) = self.payload.as_mut() {
                let mut n = p.remaining.min(input.len() as u64) as usize;
                if self.config.fragment_chunk > 0 {
                    // Pieces of at most `fragment_chunk` bytes, whatever the read size.
                    let room = self.config.fragment_chunk
                        - self.assembler.buffered().min(self.config.fragment_chunk);
                    n = n.min(room.max(1));
                }
                let (piece, rest) = input.split_at(n);
                input = rest;
                p.remaining -= n as u64;
                let (mask, done) = (p.mask, p.remaining == 0);
                if let Err(e) = self.assembler.payload(piece, mask) {
                    return self.fail(e);
                }
                if done {
                    self.payload = None;
                    self.end_frame()?;
                } else if self.config.fragment_chunk > 0 {
                    if let Some(Assembled::Fragment {
                        kind,
                        rsv,
                        data,
                        fin,
                    }) = self.assembler.take_partial(self.config.fragment_chunk)
                    {
                        self.events.push_back(Event::Fragment {
                            kind,
                            rsv,
                            data,
                            fin,
                        });
                    }
                }
                continue;
            }
            let header = if self.header_len == 0 {
                match FrameHeader::parse(input) {
                    Err(e) => return self.fail(e),
                    Ok(Parsed::Complete { value, consumed }) => {
                        input = &input[consumed..];
                        value
                    }
                    Ok(Parsed::Partial { .. }) => {
                        // Shorter than a header, so it fits the 14-byte buffer.
                        self.header[..input.len()].copy_from_slice(input);
                        self.header_len = input.len();
                        return Ok(());
                    }
                }
            } else {
                // Top the buffered header up to exactly its length, re-parsing after each
                // copy: a header completed by the last byte of `input` (say, of an empty
                // frame) is handled now, not on the next call.
                loop {
                    match FrameHeader::parse(&self.header[..self.header_len]) {
                        Err(e) => return self.fail(e),
                        Ok(Parsed::Complete { value, .. }) => {
                            self.header_len = 0;
                            break value;
                        }
                        Ok(Parsed::Partial { needed }) => {
                            if input.is_empty() {
                                return Ok(());
                            }
                            let n = needed.min(input.len());
                            self.header[self.header_len..self.header_len + n]
                                .copy_from_slice(&input[..n]);
                            self.header_len += n;
                            input = &input[n..];
                        }
                    }
                }
            };
            self.begin_frame(header)?;
        }
        Ok(())
    }

    fn begin_frame(&mut self, h: FrameHeader) -> Result<(), ProtocolError> {
        let mask_rule = match (self.framing, self.role, h.mask.is_some()) {
            (Framing::Rfc6455, Role::Server, false) => Err(ProtocolError::MissingMask),
            (Framing::Rfc6455, Role::Server, true) => Ok(()),
            (_, _, true) => Err(ProtocolError::UnexpectedMask),
            (_, _, false) => Ok(()),
        };
        if let Err(e) = mask_rule.and_then(|()| {
            self.assembler
                .begin_frame(h.fin, h.rsv, h.opcode, h.payload_len)
        }) {
            return self.fail(e);
        }
        if h.payload_len == 0 {
            self.end_frame()
        } else {
            self.payload = Some(PayloadState {
                mask: h.mask,
                remaining: h.payload_len,
            });
            Ok(())
        }
    }

    /// Exactly one DATA frame (Native).
    fn recv_data_frame(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        let frame = match native::parse_data_frame(data) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(e) => return self.fail(e),
        };
        let res = self
            .assembler
            .begin_frame(
                frame.fin,
                frame.rsv,
                frame.opcode,
                frame.payload.len() as u64,
            )
            .and_then(|()| self.assembler.payload(frame.payload, None));
        if let Err(e) = res {
            return self.fail(e);
        }
        self.end_frame()
    }

    fn end_frame(&mut self) -> Result<(), ProtocolError> {
        let assembled = match self.assembler.end_frame() {
            Ok(a) => a,
            Err(e) => return self.fail(e),
        };
        match assembled {
            Assembled::Nothing => {}
            Assembled::Message(m) => self.events.push_back(Event::Message(m)),
            Assembled::Fragment {
                kind,
                rsv,
                data,
                fin,
            } => self.events.push_back(Event::Fragment {
                kind,
                rsv,
                data,
                fin,
            }),
            Assembled::Ping(payload) => {
                if self.config.auto_pong && !self.close.close_queued() && !self.missing_seed() {
                    let bytes = self.encode_control(OpCode::Pong, &payload);
                    let queued = self
                        .control_out
                        .iter()
                        .filter(|o| o.kind == OutKind::AutoPong);
                    if queued.count() < MAX_QUEUED_AUTO_PONGS {
                        self.push_out(OutKind::AutoPong, bytes);
                    } else if let Some(newest) = self
                        .control_out
                        .iter_mut()
                        .rev()
                        .find(|o| o.kind == OutKind::AutoPong)
                    {
                        self.pending = self.pending - newest.len() + bytes.len();
                        newest.bytes = bytes;
                    }
                }
                self.events.push_back(Event::Ping(payload));
            }
            Assembled::Pong(payload) => {
                // A resume acknowledgement is the codec's own business, not an event.
                match (self.resume.as_mut(), parse_ack(&payload)) {
                    (Some(r), Some(count)) => {
                        if r.book.on_ack(count).is_err() {
                            return self.fail(ProtocolError::BadAck);
                        }
                    }
                    _ => self.events.push_back(Event::Pong(payload)),
                }
            }
            Assembled::Close(frame) => self.peer_closed(frame),
        }
        Ok(())
    }

    fn peer_closed(&mut self, frame: Option<CloseFrame>) {
        let (code, reason) = match frame {
            Some(f) => (f.code, f.reason),
            None => (CloseCode::NO_STATUS, String::new()),
        };
        if !self.close.close_queued() {
            // Echo the code (RFC 6455 §5.5.1), after data already queued: the peer still reads
            // until it sees our Close.
            let echo = if code == CloseCode::NO_STATUS {
                CloseCode::NORMAL
            } else {
                code
            };
            self.queue_close(echo, "", false);
        }
        self.assembler.clear();
        self.payload = None;
        if let Some(end) = self.close.peer_closed(code, reason) {
            self.report_clean_end(end);
        }
    }

    /// Both Close frames are exchanged: `Closed{clean: true}` with the peer's code and reason.
    fn report_clean_end(&mut self, (code, reason): (CloseCode, String)) {
        self.events.push_back(Event::Closed {
            code,
            reason,
            clean: true,
        });
    }

    /// Fails the connection: queue a Close with the error's code ahead of (and instead of)
    /// queued data, report `Closed`, ignore further input.
    fn fail(&mut self, err: ProtocolError) -> Result<(), ProtocolError> {
        if self.close != CloseHandshake::Done {
            if !self.close.close_queued() && !self.missing_seed() {
                self.data_out.clear();
                self.pending = self.control_out.iter().map(Out::len).sum();
                self.queue_close(err.close_code(), err.reason(), true);
            }
            self.close.finish();
            self.events.push_back(Event::Closed {
                code: err.close_code(),
                reason: String::from(err.reason()),
                clean: false,
            });
        }
        self.assembler.clear();
        self.payload = None;
        self.header_len = 0;
        Err(err)
    }

    /// The transport ended (EOF, RST_STREAM, lost connection). Without a completed close
    /// handshake this reports `Closed{1006, clean: false}`.
    pub fn recv_eof(&mut self) {
        if self.close.finish() {
            self.events.push_back(Event::Closed {
                code: CloseCode::ABNORMAL,
                reason: String::new(),
                clean: false,
            });
        }
        self.assembler.clear();
        self.payload = None;
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        release_if_drained(&mut self.events);
        event
    }

    // ------------------------------------------------------------------ output

    fn check_can_send(&self) -> Result<(), SendError> {
        if self.close != CloseHandshake::Open {
            Err(SendError::Closed)
        } else if self.missing_seed() {
            Err(SendError::MissingMaskSeed)
        } else {
            Ok(())
        }
    }

    fn push_out(&mut self, kind: OutKind, bytes: Vec<u8>) {
        self.push(Out::new(kind, bytes));
    }

    fn push(&mut self, out: Out) {
        self.pending += out.len();
        let kind = out.kind;
        match kind {
            OutKind::Data => self.data_out.push_back(out),
            _ => self.control_out.push_back(out),
        }
    }

    /// One frame on the byte stream: header (+ key) then payload, masked when we are a client
    /// on RFC 6455. The payload is copied once, then masked in place.
    fn encode_frame(&mut self, fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mask = match (self.masks(), self.rng.as_mut()) {
            (true, Some(rng)) => Some(rng().to_ne_bytes()),
            _ => None,
        };
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        let mut out = Vec::with_capacity(header.encoded_len() + payload.len());
        header.encode_into(&mut out);
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut out[start..], key, 0);
        }
        out
    }

    fn encode_control(&mut self, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        match self.framing {
            Framing::Native => {
                let mut out = Vec::with_capacity(1 + payload.len());
                out.push(native::first_byte(true, 0, opcode));
                out.extend_from_slice(payload);
                out
            }
            _ => self.encode_frame(true, 0, opcode, payload),
        }
    }

    /// Queues the frames of one data message or fragment. Native cuts it into DATA frames of at
    /// most `native_max_payload` bytes (never an empty one); the first keeps `opcode` and `rsv`,
    /// the rest are Continuations, the last carries `fin`.
    fn queue_data(&mut self, fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) {
        if self.framing != Framing::Native {
            let bytes = self.encode_frame(fin, rsv, opcode, payload);
            self.push_out(OutKind::Data, bytes);
            return;
        }
        let chunk = self.config.native_max_payload.saturating_sub(1).max(1);
        let mut pieces = payload.chunks(chunk);
        let mut first = true;
        loop {
            let piece = pieces.next().unwrap_or(&[]);
            let last = pieces.len() == 0;
            let (op, bits) = if first {
                (opcode, rsv)
            } else {
                (OpCode::Continuation, 0)
            };
            let mut out = Vec::with_capacity(1 + piece.len());
            out.push(native::first_byte(fin && last, bits, op));
            out.extend_from_slice(piece);
            self.push_out(OutKind::Data, out);
            first = false;
            if last {
                break;
            }
        }
    }

    fn send_message(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        self.check_can_send()?;
        if self.sending_fragmented {
            return Err(SendError::FragmentSequence);
        }
        #[cfg(feature = "deflate")]
        if let Some(compressor) = self.compressor.as_mut() {
            let mut compressed = Vec::new();
            compressor.compress(payload, &mut compressed);
            self.queue_data(true, crate::message::RSV1, opcode, &compressed);
            return Ok(());
        }
        self.queue_data(true, 0, opcode, payload);
        Ok(())
    }

    /// Queues a text message (compressed when permessage-deflate was negotiated).
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_message(OpCode::Text, text.as_bytes())
    }

    /// Queues a binary message (compressed when permessage-deflate was negotiated).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_message(OpCode::Binary, data)
    }

    /// [`send_binary`](Self::send_binary) of a payload the caller hands over: where no byte of
    /// it must change (a server's frames, the fetch and native framings; not a client's masked
    /// RFC 6455 frames, nor with permessage-deflate) it is not copied — it leaves as
    /// [`Transmit::tail`] from [`poll_transmit_parts`](Self::poll_transmit_parts), a reference
    /// to the same bytes. Otherwise as `send_binary`.
    pub fn send_binary_shared(&mut self, data: Bytes) -> Result<(), SendError> {
        self.send_shared(OpCode::Binary, data)
    }

    /// [`send_text`](Self::send_text) of a string the caller hands over, without copying it
    /// where [`send_binary_shared`](Self::send_binary_shared) would not.
    pub fn send_text_owned(&mut self, text: String) -> Result<(), SendError> {
        self.send_shared(OpCode::Text, Bytes::from(text.into_bytes()))
    }

    fn send_shared(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), SendError> {
        #[cfg(feature = "deflate")]
        let compressing = self.compressor.is_some();
        #[cfg(not(feature = "deflate"))]
        let compressing = false;
        if self.masks() || compressing || payload.len() < SHARED_PAYLOAD_MIN {
            return self.send_message(opcode, &payload);
        }
        self.check_can_send()?;
        if self.sending_fragmented {
            return Err(SendError::FragmentSequence);
        }
        if self.framing != Framing::Native {
            let header = FrameHeader {
                fin: true,
                rsv: 0,
                opcode,
                mask: None,
                payload_len: payload.len() as u64,
            };
            let mut head = Vec::with_capacity(header.encoded_len());
            header.encode_into(&mut head);
            self.push(Out {
                kind: OutKind::Data,
                bytes: head,
                tail: Some(payload),
            });
            return Ok(());
        }
        // Native: DATA frames of at most `native_max_payload` bytes, each a first byte and a
        // slice of the payload (a reference, not a copy).
        let chunk = self.config.native_max_payload.saturating_sub(1).max(1);
        let mut start = 0;
        let mut first = true;
        while start < payload.len() {
            let end = (start + chunk).min(payload.len());
            let op = if first { opcode } else { OpCode::Continuation };
            self.push(Out {
                kind: OutKind::Data,
                bytes: alloc::vec![native::first_byte(end == payload.len(), 0, op)],
                tail: Some(payload.slice(start..end)),
            });
            first = false;
            start = end;
        }
        Ok(())
    }

    /// Queues one frame of a message as-is, for proxies: `rsv` passes through (e.g. RSV1 of a
    /// deflate stream this endpoint does not terminate), nothing is compressed or validated.
    /// Text/Binary starts a message, Continuation continues it, `fin` ends it.
    pub fn send_fragment(
        &mut self,
        kind: FragmentKind,
        rsv: u8,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        self.check_can_send()?;
        let continuation = kind == FragmentKind::Continuation;
        if continuation != self.sending_fragmented {
            return Err(SendError::FragmentSequence);
        }
        self.queue_data(fin, rsv & 0b111, kind.opcode(), payload);
        self.sending_fragmented = !fin;
        Ok(())
    }

    /// Queues a Ping (≤ 125 bytes), sent ahead of queued data.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Queues an unsolicited Pong (≤ 125 bytes), sent ahead of queued data.
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Pong, payload)
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        self.check_can_send()?;
        if payload.len() > 125 {
            return Err(SendError::ControlTooLong);
        }
        let bytes = self.encode_control(opcode, payload);
        self.push_out(OutKind::Control, bytes);
        Ok(())
    }

    /// Starts the close handshake: queues a Close after the data already queued (so queued
    /// messages still arrive), then no more sends. `None` sends a Close without a code when
    /// `reason` is empty, else code 1000.
    pub fn close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<(), SendError> {
        self.check_can_send()?;
        if let Some(c) = code {
            if !c.is_sendable() {
                return Err(SendError::InvalidCloseCode(c.0));
            }
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(SendError::ReasonTooLong);
        }
        match (code, reason.is_empty()) {
            (None, true) => {
                let bytes = self.encode_control(OpCode::Close, &[]);
                self.push_close(bytes, false);
            }
            (code, _) => self.queue_close(code.unwrap_or(CloseCode::NORMAL), reason, false),
        }
        self.close.we_close();
        Ok(())
    }

    fn queue_close(&mut self, code: CloseCode, reason: &str, urgent: bool) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        CloseFrame::encode_payload(code, reason, &mut payload);
        let bytes = self.encode_control(OpCode::Close, &payload);
        self.push_close(bytes, urgent);
    }

    /// A Close goes behind queued data unless `urgent` (after an error, when queued data is
    /// dropped anyway).
    fn push_close(&mut self, bytes: Vec<u8>, urgent: bool) {
        self.pending += bytes.len();
        let out = Out::new(OutKind::Close, bytes);
        if urgent {
            self.control_out.push_back(out);
        } else {
            self.data_out.push_back(out);
        }
    }

    /// The next bytes to write. Rfc6455 / Stream: one or more whole frames for the byte stream.
    /// Native: exactly one DATA frame payload (never empty). Pings and Pongs come before queued
    /// data frames; a Close comes after the data queued before it.
    ///
    /// With resume ([`enable_resume`](Self::enable_resume)): nothing while the transport is
    /// lost; each data frame and Close is kept for replay as it leaves, and while the replay
    /// buffer is full (the peer has not acknowledged enough) data waits, control frames still go.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.next_out().map(Out::joined)
    }

    /// [`poll_transmit`](Self::poll_transmit) with a shared payload left apart
    /// ([`Transmit::tail`], from [`send_binary_shared`](Self::send_binary_shared) and
    /// [`send_text_owned`](Self::send_text_owned)): nothing is copied. The same order and rules.
    pub fn poll_transmit_parts(&mut self) -> Option<Transmit> {
        self.next_out().map(|out| Transmit {
            head: out.bytes,
            tail: out.tail,
        })
    }

    fn next_out(&mut self) -> Option<Out> {
        let out = match self.resume.as_mut() {
            None => self
                .control_out
                .pop_front()
                .or_else(|| self.data_out.pop_front())?,
            Some(r) => {
                if r.book.is_lost() {
                    return None;
                }
                match self.control_out.pop_front() {
                    Some(out) => out,
                    None => {
                        let next = self.data_out.front()?;
                        let replay = next.kind == OutKind::Replay;
                        if !replay && !r.book.has_room(next.len()) {
                            return None;
                        }
                        let out = self.data_out.pop_front()?;
                        let recorded = match (&out.tail, replay) {
                            (_, true) => Ok(0),
                            (None, false) => r.book.on_send(&out.bytes),
                            // Kept whole for replay: resume costs this copy, nothing else does.
                            (Some(tail), false) => {
                                let mut whole = Vec::with_capacity(out.len());
                                whole.extend_from_slice(&out.bytes);
                                whole.extend_from_slice(tail);
                                r.book.on_send(&whole)
                            }
                        };
                        if recorded.is_err() {
                            // has_room said yes: unreachable, and failing closed is right.
                            return None;
                        }
                        out
                    }
                }
            }
        };
        self.pending -= out.len();
        release_if_drained(&mut self.control_out);
        release_if_drained(&mut self.data_out);
        if out.kind == OutKind::Close {
            // Nothing may follow a Close.
            self.control_out.clear();
            self.data_out.clear();
            self.pending = 0;
            if let Some(end) = self.close.close_sent() {
                self.report_clean_end(end);
            }
        }
        Some(out)
    }

    // ------------------------------------------------------------------ resume

    /// Turns lossless resume on ([`crate::resume`]), once both ends agreed on it at the open.
    /// Only byte-stream framings resume (the fetch transports); on the native mapping this
    /// does nothing and returns false.
    pub fn enable_resume(&mut self, config: ResumeConfig) -> bool {
        if !self.framing.is_byte_stream() {
            return false;
        }
        let now = self.timers.as_ref().map_or(Timestamp::ZERO, |t| t.now());
        self.resume = Some(Box::new(Resuming {
            book: Resume::new(config),
            partial: Vec::new(),
            now,
            replayed: 0,
        }));
        true
    }

    /// Resume is on and the socket not yet over: a broken transport is
    /// [`transport_lost`](Self::transport_lost), not the end.
    pub fn can_resume(&self) -> bool {
        self.resume.is_some() && self.close != CloseHandshake::Done
    }

    /// Whether the transport is lost and a re-attach awaited.
    pub fn is_transport_lost(&self) -> bool {
        self.resume.as_ref().is_some_and(|r| r.book.is_lost())
    }

    /// Counted frames received so far: what a re-attach tells the peer (`h2ws-received`).
    pub fn resume_received(&self) -> Option<u64> {
        self.resume.as_ref().map(|r| r.book.received())
    }

    /// Bytes the re-attaches so far queued again (what the peer had not acknowledged).
    pub fn replayed_bytes(&self) -> u64 {
        self.resume.as_ref().map_or(0, |r| r.replayed)
    }

    /// Resume's watchdog ([`ResumeConfig::ack_timeout`]) also waits for the answers of the
    /// caller's upstream requests: call this when one is sent, [`Self::request_ended`] when it
    /// is answered. Without resume, or while lost, nothing.
    pub fn request_started(&mut self) {
        if let Some(r) = self.resume.as_mut() {
            r.book.request_started();
        }
    }

    /// An upstream request of [`Self::request_started`] was answered (or failed).
    pub fn request_ended(&mut self) {
        if let Some(r) = self.resume.as_mut() {
            r.book.request_ended();
        }
    }

    /// Bytes and frames held for replay (what resume costs this socket now).
    pub fn replay_held(&self) -> (usize, usize) {
        self.resume
            .as_ref()
            .map_or((0, 0), |r| (r.book.replay_bytes(), r.book.replay_frames()))
    }

    /// The transport broke at `now`. With resume ([`can_resume`](Self::can_resume)) the socket
    /// stays open: a half-received frame is dropped (the peer sends it again), queued Pings and
    /// Pongs are dropped (they belonged to that transport), data stays queued, and the grace
    /// window starts; returns true. Without resume this is [`recv_eof`](Self::recv_eof) and
    /// returns false.
    pub fn transport_lost(&mut self, now: Timestamp) -> bool {
        if !self.can_resume() {
            self.recv_eof();
            return false;
        }
        let now = self.advance(now);
        if let Some(r) = self.resume.as_mut() {
            r.book.transport_lost(now);
            r.partial = Vec::new();
        }
        // A half-decoded frame cannot be here (whole frames only); the header buffer neither.
        self.header_len = 0;
        let dropped: usize = self
            .control_out
            .iter()
            .filter(|o| o.kind != OutKind::Close)
            .map(Out::len)
            .sum();
        self.control_out.retain(|o| o.kind == OutKind::Close);
        self.pending -= dropped;
        true
    }

    /// A new transport at `now`, the peer having received `peer_received` counted frames:
    /// queues the frames it lacks ahead of everything not yet sent, and returns how many this
    /// side received (to tell the peer). A re-attach while the transport looked fine counts as
    /// a loss first (the client noticed before us). Errors ([`ResumeError`]) end nothing by
    /// themselves: the caller refuses the re-attach and fails the socket.
    pub fn resume(&mut self, peer_received: u64, now: Timestamp) -> Result<u64, ResumeError> {
        if !self.can_resume() {
            return Err(ResumeError::NotLost);
        }
        if !self.is_transport_lost() {
            self.transport_lost(now);
        }
        let now = self.advance(now);
        let Some(r) = self.resume.as_mut() else {
            return Err(ResumeError::NotLost);
        };
        let replay: Vec<Vec<u8>> = r
            .book
            .resume(peer_received, now)?
            .map(<[u8]>::to_vec)
            .collect();
        let received = r.book.received();
        r.replayed += replay.iter().map(|f| f.len() as u64).sum::<u64>();
        // Frames an earlier resume queued and the lost transport never took are in `replay`
        // again: drop the old copies.
        let stale: usize = self
            .data_out
            .iter()
            .filter(|o| o.kind == OutKind::Replay)
            .map(Out::len)
            .sum();
        self.data_out.retain(|o| o.kind != OutKind::Replay);
        self.pending -= stale;
        for bytes in replay.into_iter().rev() {
            self.pending += bytes.len();
            self.data_out.push_front(Out::new(OutKind::Replay, bytes));
        }
        if let Some(timers) = self.timers.as_mut() {
            timers.input(now); // the new transport counts as activity
        }
        Ok(received)
    }

    /// The latest time seen, moved on to `now` (for resume's ack and grace deadlines).
    fn advance(&mut self, now: Timestamp) -> Timestamp {
        let now = match self.timers.as_mut() {
            Some(t) => t.advance(now),
            None => now,
        };
        if let Some(r) = self.resume.as_mut() {
            r.now = r.now.max(now);
            return r.now;
        }
        now
    }

    /// Bytes queued for output (for backpressure and `bufferedAmount`).
    pub fn pending_bytes(&self) -> usize {
        self.pending
    }

    /// Payload bytes of the data frames queued and not yet taken, without their frame headers,
    /// replays and control frames: what a browser's `bufferedAmount` still counts while resume
    /// holds frames back for the peer's acknowledgement. (With permessage-deflate these are
    /// compressed bytes; a caller counting application bytes uses it as a bound.)
    pub fn pending_payload_bytes(&self) -> usize {
        self.data_out
            .iter()
            .filter(|o| o.kind == OutKind::Data)
            .map(|o| o.len() - self.frame_head_len(&o.bytes))
            .sum()
    }

    /// The length of the frame header at the start of `bytes` (an encoded data frame of ours).
    fn frame_head_len(&self, bytes: &[u8]) -> usize {
        if self.framing == Framing::Native {
            return bytes.len().min(1);
        }
        match FrameHeader::parse(bytes) {
            Ok(Parsed::Complete { consumed, .. }) => consumed,
            _ => 0,
        }
    }

    pub fn state(&self) -> State {
        self.close.public()
    }

    /// Closed and nothing left to write: the transport may end the stream.
    pub fn is_closed(&self) -> bool {
        self.close == CloseHandshake::Done
            && self.control_out.is_empty()
            && self.data_out.is_empty()
    }

    // ------------------------------------------------------------------ timers

    /// Arms the liveness timers (see [`crate::timer`]) from `now`, replacing any armed before.
    pub fn set_timeouts(&mut self, timeouts: Timeouts, now: Timestamp) {
        self.timers = Some(Timers::new(timeouts, now));
    }

    /// A fetch session's upstream attached: the attach deadline
    /// ([`Timeouts::attach_timeout`]) no longer applies.
    pub fn upstream_attached(&mut self) {
        if let Some(timers) = self.timers.as_mut() {
            timers.attach_by = None;
        }
    }

    /// The armed timeouts, if any.
    pub fn timeouts(&self) -> Option<Timeouts> {
        self.timers.as_ref().map(|t| t.timeouts)
    }

    /// [`recv`](Self::recv) at `now`: the same input unit (a piece of the byte stream, or one
    /// DATA frame on [`Framing::Native`], where an empty one carries nothing), and it counts as
    /// activity: it postpones the ping and the idle deadline.
    pub fn recv_at(&mut self, now: Timestamp, input: &[u8]) -> Result<(), ProtocolError> {
        if let Some(timers) = self.timers.as_mut() {
            timers.input(now);
        }
        if let Some(r) = self.resume.as_mut() {
            r.now = r.now.max(now);
        }
        self.recv(input)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next; `None` = no timer
    /// runs (none armed, or the connection is closed with nothing left to write).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.is_closed() {
            return None;
        }
        let resume = self.resume.as_ref().and_then(|r| r.book.poll_timeout());
        if self.is_transport_lost() {
            return resume; // only the grace window runs while lost
        }
        let timers = self.timers.as_ref().and_then(|timers| {
            if self.state() == State::Open {
                timers.open_deadline()
            } else {
                timers.close_deadline()
            }
        });
        match (timers, resume) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Acts on the deadlines due at `now` (a `now` earlier than one seen before counts as that
    /// one): queues a Ping after [`Timeouts::ping_after`] of silence, fails the connection
    /// (`Closed{1006}`, queued output dropped) after [`Timeouts::idle_timeout`] of silence or
    /// when the close handshake has run [`Timeouts::close_timeout`]. Returns what it did.
    ///
    /// With resume: queues an acknowledgement Pong when one is due ([`Timeout::Ack`]), and
    /// while the transport is lost runs only the grace window (`Closed{1006}` at its end,
    /// [`Timeout::ResumeGrace`]).
    pub fn handle_timeout(&mut self, now: Timestamp) -> Option<Timeout> {
        if self.resume.is_some() && !self.is_closed() {
            let now = self.advance(now);
            let due = self
                .resume
                .as_mut()
                .and_then(|r| r.book.handle_timeout(now));
            match due {
                Some(ResumeTimeout::GraceOver) => {
                    self.give_up("resume grace over");
                    return Some(Timeout::ResumeGrace);
                }
                _ if self.is_transport_lost() => return None,
                // Handled like a silent peer: the caller treats the transport as lost.
                Some(ResumeTimeout::AckOverdue) => return Some(Timeout::Silent),
                Some(ResumeTimeout::Ack) => {
                    let payload = self.resume.as_mut().and_then(|r| r.book.take_ack(now));
                    if let Some(payload) = payload {
                        if self.close == CloseHandshake::Done || self.close.close_queued() {
                            // Nothing follows our Close; the peer's replay after a loss is
                            // then bounded by its own close.
                        } else {
                            let bytes = self.encode_control(OpCode::Pong, &payload);
                            self.push_out(OutKind::Control, bytes);
                            return Some(Timeout::Ack);
                        }
                    }
                }
                None => {}
            }
        }
        let closed = self.is_closed();
        let open = self.state() == State::Open;
        let timers = self.timers.as_mut()?;
        let now = timers.advance(now);
        if closed {
            return None;
        }
        if !open {
            let started = *timers.close_started.get_or_insert(now);
            let due = timers
                .timeouts
                .close_timeout
                .is_some_and(|c| now >= started + c);
            if !due {
                return None;
            }
            self.give_up("");
            return Some(Timeout::CloseHandshake);
        }
        if timers.idle_due(now) {
            if self.resume.is_some() {
                // Open, so it can resume: a dead transport, not the end of the socket.
                return Some(Timeout::Silent);
            }
            self.give_up("idle timeout");
            return Some(Timeout::Idle);
        }
        if timers.attach_due(now) {
            timers.attach_by = None;
            // Open, so the Close is accepted; the close deadline then bounds the rest.
            let _ = self.close(Some(CloseCode::INTERNAL_ERROR), "no upstream attached");
            if let Some(timers) = self.timers.as_mut() {
                timers.close_started = Some(now); // the close handshake starts now
            }
            return Some(Timeout::Attach);
        }
        if timers.ping_due(now) {
            timers.ping_sent = true;
            let payload = timers.timeouts.ping_payload;
            // Refused only without a mask seed; the Ping is then simply not sent.
            let _ = self.send_ping(payload);
            return Some(Timeout::Ping);
        }
        None
    }

    /// A timer ended the connection: report `Closed{1006}` (unless reported), drop what was
    /// queued, ignore further input.
    fn give_up(&mut self, reason: &str) {
        if self.close.finish() {
            self.events.push_back(Event::Closed {
                code: CloseCode::ABNORMAL,
                reason: reason.into(),
                clean: false,
            });
        }
        self.control_out.clear();
        self.data_out.clear();
        self.pending = 0;
        self.assembler.clear();
        self.payload = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const SEED: [u8; 32] = [7; 32];

    fn pair(framing: Framing, config: Config) -> (Connection, Connection) {
        let client = Connection::new(Role::Client, framing, config.clone()).with_mask_seed(SEED);
        let server = Connection::new(Role::Server, framing, config);
        (client, server)
    }

    /// Moves everything `from` wants to send into `to`, one transmit unit at a time.
    fn pump(from: &mut Connection, to: &mut Connection) -> Result<(), ProtocolError> {
        while let Some(bytes) = from.poll_transmit() {
            to.recv(&bytes)?;
        }
        Ok(())
    }

    fn events(c: &mut Connection) -> Vec<Event> {
        core::iter::from_fn(|| c.poll_event()).collect()
    }

    const ALL: [Framing; 3] = [Framing::Rfc6455, Framing::Stream, Framing::Native];

    #[test]
    fn queues_drained_after_a_burst_hold_no_buffer() {
        for framing in ALL {
            let (mut client, mut server) = pair(framing, Config::default());
            for i in 0..1000u32 {
                server.send_binary(&i.to_be_bytes()).unwrap();
            }
            assert!(server.data_out.capacity() >= 1000);
            pump(&mut server, &mut client).unwrap();
            assert_eq!(server.data_out.capacity(), 0, "{framing:?}");
            assert!(client.events.capacity() >= 1000);
            assert_eq!(events(&mut client).len(), 1000);
            assert_eq!(client.events.capacity(), 0, "{framing:?}");
            // A small queue keeps its few slots (no allocation per message in steady state).
            server.send_binary(b"x").unwrap();
            pump(&mut server, &mut client).unwrap();
            assert!(server.data_out.capacity() <= KEEP_DRAINED);
        }
    }

    #[test]
    fn messages_both_ways_every_framing() {
        for framing in ALL {
            let (mut c, mut s) = pair(
                framing,
                Config {
                    native_max_payload: 10,
                    ..Config::default()
                },
            );
            c.send_text("hello, server").unwrap();
            c.send_binary(&[1, 2, 3]).unwrap();
            c.send_binary(&[]).unwrap();
            pump(&mut c, &mut s).unwrap();
            assert_eq!(
                events(&mut s),
                vec![
                    Event::Message(Message::Text("hello, server".into())),
                    Event::Message(Message::Binary(vec![1, 2, 3])),
                    Event::Message(Message::Binary(vec![])),
                ],
                "{framing:?}"
            );
            s.send_text(&"x".repeat(1000)).unwrap();
            pump(&mut s, &mut c).unwrap();
            assert_eq!(
                events(&mut c),
                vec![Event::Message(Message::Text("x".repeat(1000)))]
            );
        }
    }

    #[test]
    fn native_fragments_to_data_frame_size() {
        let (mut c, _) = pair(
            Framing::Native,
            Config {
                native_max_payload: 10,
                ..Config::default()
            },
        );
        c.send_binary(&[0xAB; 25]).unwrap();
        let frames: Vec<Vec<u8>> = core::iter::from_fn(|| c.poll_transmit()).collect();
        assert_eq!(frames.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 8]);
        assert_eq!(
            frames.iter().map(|f| f[0]).collect::<Vec<_>>(),
            [0x02, 0x00, 0x80]
        );
        c.send_text("").unwrap();
        assert_eq!(c.poll_transmit(), Some(vec![0x81]));
    }

    #[test]
    fn client_masks_server_does_not() {
        let (mut c, mut s) = pair(Framing::Rfc6455, Config::default());
        c.send_text("Hello").unwrap();
        let frame = c.poll_transmit().unwrap();
        assert_eq!(frame[1], 0x85);
        assert_ne!(&frame[6..], b"Hello");
        s.send_text("Hello").unwrap();
        assert_eq!(
            s.poll_transmit().unwrap(),
            [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']
        );
        // Keys differ from frame to frame.
        c.send_text("Hello").unwrap();
        let again = c.poll_transmit().unwrap();
        assert_ne!(frame[2..6], again[2..6]);
    }

    #[test]
    fn client_without_seed_refuses() {
        let mut c = Connection::new(Role::Client, Framing::Rfc6455, Config::default());
        assert_eq!(c.send_text("x"), Err(SendError::MissingMaskSeed));
        assert_eq!(c.recv(&[0x81, 0x00]), Err(ProtocolError::MissingMaskSeed));
        assert_eq!(c.poll_transmit(), None);
        // Other framings need no seed.
        let mut c = Connection::new(Role::Client, Framing::Stream, Config::default());
        c.send_text("x").unwrap();
        assert_eq!(c.poll_transmit(), Some(vec![0x81, 0x01, b'x']));
    }

    #[test]
    fn mask_rules_per_framing() {
        let masked_hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut s = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
        s.recv(&masked_hello).unwrap();
        assert_eq!(
            events(&mut s),
            vec![Event::Message(Message::Text("Hello".into()))]
        );
        let mut s = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
        assert_eq!(s.recv(&[0x81, 0x00]), Err(ProtocolError::MissingMask));
        let mut s = Connection::new(Role::Server, Framing::Stream, Config::default());
        assert_eq!(s.recv(&masked_hello), Err(ProtocolError::UnexpectedMask));
        let mut c = Connection::new(Role::Client, Framing::Stream, Config::default());
        assert_eq!(c.recv(&masked_hello), Err(ProtocolError::UnexpectedMask));
    }

    #[test]
    fn protocol_error_queues_close_and_ignores_input() {
        let mut s = Connection::new(Role::Server, Framing::Stream, Config::default());
        s.send_binary(&[0; 100]).unwrap();
        assert_eq!(s.recv(&[0x83, 0x00]), Err(ProtocolError::ReservedOpcode(3)));
        assert_eq!(s.state(), State::Closed);
        assert_eq!(
            events(&mut s),
            vec![Event::Closed {
                code: CloseCode::PROTOCOL_ERROR,
                reason: "reserved opcode".into(),
                clean: false
            }]
        );
        // The Close replaces the queued data.
        let close = s.poll_transmit().unwrap();
        assert_eq!(&close[..4], [0x88, 17, 0x03, 0xEA]);
        assert_eq!(s.poll_transmit(), None);
        assert!(s.is_closed());
        assert_eq!(s.recv(&[0x81, 0x01, b'x']), Ok(()));
        assert_eq!(events(&mut s), vec![]);
        assert_eq!(s.send_text("x"), Err(SendError::Closed));
    }

    #[test]
    fn close_codes_for_bad_input() {
        let cases: [(&[u8], CloseCode); 4] = [
            (&[0x81, 0x01, 0xFF], CloseCode::INVALID_PAYLOAD),
            (&[0x82, 0x7E, 0x00, 0x10], CloseCode::PROTOCOL_ERROR),
            (&[0x82, 0x7E, 0x10, 0x00], CloseCode::TOO_BIG),
            (&[0xC1, 0x00], CloseCode::PROTOCOL_ERROR),
        ];
        for (input, code) in cases {
            let config = Config {
                max_frame_size: 1000,
                ..Config::default()
            };
            let mut s = Connection::new(Role::Server, Framing::Stream, config);
            let err = s.recv(input).unwrap_err();
            assert_eq!(err.close_code(), code, "{input:x?}");
            let close = s.poll_transmit().unwrap();
            assert_eq!(u16::from_be_bytes([close[2], close[3]]), code.0);
        }
    }

    #[test]
    fn auto_pong_jumps_queued_data() {
        for framing in ALL {
            let (mut c, mut s) = pair(framing, Config::default());
            s.send_binary(&[1; 300]).unwrap();
            c.send_ping(b"a").unwrap();
            c.send_ping(b"b").unwrap();
            pump(&mut c, &mut s).unwrap();
            assert_eq!(
                events(&mut s),
                vec![Event::Ping(b"a".to_vec()), Event::Ping(b"b".to_vec())]
            );
            // Both Pongs, ahead of the data queued before them.
            for expected in [b"a", b"b"] {
                let unit = s.poll_transmit().unwrap();
                c.recv(&unit).unwrap();
                assert_eq!(
                    events(&mut c),
                    vec![Event::Pong(expected.to_vec())],
                    "{framing:?}"
                );
            }
            pump(&mut s, &mut c).unwrap();
            assert!(matches!(
                &events(&mut c)[..],
                [Event::Message(Message::Binary(_))]
            ));
        }
    }

    #[test]
    fn native_ping_jumps_into_a_large_message() {
        let config = Config {
            native_max_payload: 1000,
            ..Config::default()
        };
        let (mut c, mut s) = pair(Framing::Native, config);
        s.send_binary(&[9; 5000]).unwrap();
        let first = s.poll_transmit().unwrap();
        s.send_ping(b"now").unwrap();
        // The Ping goes out between two DATA frames of the message, which stays intact.
        let second = s.poll_transmit().unwrap();
        assert_eq!(second, [0x89, b'n', b'o', b'w']);
        c.recv(&first).unwrap();
        c.recv(&second).unwrap();
        assert_eq!(events(&mut c), vec![Event::Ping(b"now".to_vec())]);
        pump(&mut s, &mut c).unwrap();
        assert_eq!(
            events(&mut c),
            vec![Event::Message(Message::Binary(vec![9; 5000]))]
        );
    }

    #[test]
    fn peer_close_mid_fragmented_message_is_handled() {
        let (mut c, mut s) = pair(Framing::Stream, Config::default());
        c.send_fragment(FragmentKind::Text, 0, b"half", false)
            .unwrap();
        c.close(Some(CloseCode::GOING_AWAY), "").unwrap();
        pump(&mut c, &mut s).unwrap();
        // The unfinished message is dropped; the close handshake proceeds.
        pump(&mut s, &mut c).unwrap();
        assert_eq!(
            events(&mut s),
            vec![Event::Closed {
                code: CloseCode::GOING_AWAY,
                reason: String::new(),
                clean: true
            }]
        );
        assert!(matches!(
            &events(&mut c)[..],
            [Event::Closed { clean: true, .. }]
        ));
    }

    #[test]
    fn ping_flood_keeps_the_pong_queue_bounded() {
        let (mut c, mut s) = pair(Framing::Stream, Config::default());
        for i in 0..100u8 {
            c.send_ping(&[i]).unwrap();
        }
        pump(&mut c, &mut s).unwrap();
        let pongs: Vec<Vec<u8>> = core::iter::from_fn(|| s.poll_transmit()).collect();
        assert_eq!(pongs.len(), MAX_QUEUED_AUTO_PONGS);
        // The first 15 Pings are answered, the last slot answers the newest.
        assert_eq!(pongs[0], [0x8A, 1, 0]);
        assert_eq!(pongs[14], [0x8A, 1, 14]);
        assert_eq!(pongs[15], [0x8A, 1, 99]);
    }

    #[test]
    fn close_handshake_moves() {
        use CloseHandshake::*;
        let peer = |h: &mut CloseHandshake| h.peer_closed(CloseCode(4001), "bye".into());
        // We close first; the peer answers after ours left: done at the answer.
        let mut h = Open;
        assert!(!h.close_queued() && !h.ignores_input());
        h.we_close();
        assert_eq!(h, OursQueued { sent: false });
        assert!(h.close_queued() && !h.ignores_input());
        assert_eq!(h.public(), State::Closing);
        assert_eq!(h.close_sent(), None);
        assert_eq!(h, OursQueued { sent: true });
        assert_eq!(peer(&mut h), Some((CloseCode(4001), "bye".into())));
        assert_eq!(h, Done);
        assert_eq!(h.public(), State::Closed);
        // We close first, the peer's Close arrives before ours left: done when ours leaves.
        let mut h = OursQueued { sent: false };
        assert_eq!(peer(&mut h), None);
        assert!(h.ignores_input() && h.close_queued());
        assert_eq!(h.public(), State::Closing);
        assert_eq!(h.close_sent(), Some((CloseCode(4001), "bye".into())));
        assert_eq!(h, Done);
        // The peer closes first: our echo is queued by the caller; done when it leaves.
        let mut h = Open;
        assert_eq!(peer(&mut h), None);
        assert_eq!(h.public(), State::CloseReceived);
        assert!(h.ignores_input() && h.close_queued());
        h.we_close(); // refused by `close` before this; the state stays
        assert_eq!(h.public(), State::CloseReceived);
        assert_eq!(h.close_sent(), Some((CloseCode(4001), "bye".into())));
        assert_eq!(h, Done);
        // Done absorbs everything; finish reports only once, from any state.
        for mut h in [
            Open,
            OursQueued { sent: true },
            PeersReceived {
                code: CloseCode::NORMAL,
                reason: String::new(),
                we_first: false,
            },
        ] {
            assert!(h.finish());
            assert!(!h.finish());
            assert_eq!(h.close_sent(), None);
            assert_eq!(peer(&mut h), None);
            h.we_close();
            assert_eq!(h, Done);
            assert!(h.ignores_input() && !h.close_queued());
        }
    }

    #[test]
    fn close_handshake_both_close_at_once() {
        // Both sides close before either reads: each ends clean with the other's code.
        for framing in ALL {
            let (mut c, mut s) = pair(framing, Config::default());
            c.close(Some(CloseCode(4000)), "c").unwrap();
            s.close(Some(CloseCode(4001)), "s").unwrap();
            let from_c: Vec<Vec<u8>> = core::iter::from_fn(|| c.poll_transmit()).collect();
            let from_s: Vec<Vec<u8>> = core::iter::from_fn(|| s.poll_transmit()).collect();
            for unit in &from_s {
                c.recv(unit).unwrap();
            }
            for unit in &from_c {
                s.recv(unit).unwrap();
            }
            assert_eq!(
                events(&mut c),
                vec![Event::Closed {
                    code: CloseCode(4001),
                    reason: "s".into(),
                    clean: true
                }],
                "{framing:?}"
            );
            assert_eq!(
                events(&mut s),
                vec![Event::Closed {
                    code: CloseCode(4000),
                    reason: "c".into(),
                    clean: true
                }]
            );
            assert!(c.is_closed() && s.is_closed());
        }
    }

    #[test]
    fn close_handshake_client_first() {
        for framing in ALL {
            let (mut c, mut s) = pair(framing, Config::default());
            c.send_text("last").unwrap();
            c.close(Some(CloseCode(4000)), "done").unwrap();
            assert_eq!(c.state(), State::Closing);
            assert_eq!(c.send_text("more"), Err(SendError::Closed));
            pump(&mut c, &mut s).unwrap();
            assert_eq!(s.state(), State::CloseReceived);
            assert_eq!(
                events(&mut s),
                vec![Event::Message(Message::Text("last".into()))]
            );
            pump(&mut s, &mut c).unwrap();
            assert_eq!(
                events(&mut s),
                vec![Event::Closed {
                    code: CloseCode(4000),
                    reason: "done".into(),
                    clean: true
                }]
            );
            assert_eq!(
                events(&mut c),
                vec![Event::Closed {
                    code: CloseCode(4000),
                    reason: String::new(),
                    clean: true
                }]
            );
            assert!(c.is_closed() && s.is_closed());
        }
    }

    #[test]
    fn close_without_code_reports_1005_and_echoes_1000() {
        let (mut c, mut s) = pair(Framing::Stream, Config::default());
        c.close(None, "").unwrap();
        assert_eq!(c.poll_transmit(), Some(vec![0x88, 0x00]));
        s.recv(&[0x88, 0x00]).unwrap();
        assert_eq!(s.poll_transmit(), Some(vec![0x88, 0x02, 0x03, 0xE8]));
        assert_eq!(
            events(&mut s),
            vec![Event::Closed {
                code: CloseCode::NO_STATUS,
                reason: String::new(),
                clean: true
            }]
        );
    }

    #[test]
    fn close_argument_checks() {
        let (mut c, _) = pair(Framing::Stream, Config::default());
        assert_eq!(
            c.close(Some(CloseCode(1005)), ""),
            Err(SendError::InvalidCloseCode(1005))
        );
        assert_eq!(
            c.close(None, &"r".repeat(124)),
            Err(SendError::ReasonTooLong)
        );
        assert_eq!(c.send_ping(&[0; 126]), Err(SendError::ControlTooLong));
        assert_eq!(c.state(), State::Open);
    }

    #[test]
    fn eof_without_close_is_1006() {
        let (mut c, _) = pair(Framing::Native, Config::default());
        c.recv_eof();
        assert_eq!(
            events(&mut c),
            vec![Event::Closed {
                code: CloseCode::ABNORMAL,
                reason: String::new(),
                clean: false
            }]
        );
        c.recv_eof();
        assert_eq!(events(&mut c), vec![]);
    }

    #[test]
    fn fragments_mode_and_send_fragment() {
        let config = Config {
            deliver_fragments: true,
            ..Config::default()
        };
        for framing in ALL {
            let (mut c, mut s) = pair(framing, config.clone());
            assert_eq!(
                c.send_fragment(FragmentKind::Continuation, 0, b"x", true),
                Err(SendError::FragmentSequence)
            );
            c.send_fragment(FragmentKind::Text, 0, b"ab", false)
                .unwrap();
            assert_eq!(c.send_text("no"), Err(SendError::FragmentSequence));
            c.send_ping(b"p").unwrap();
            c.send_fragment(FragmentKind::Continuation, 0, b"c", true)
                .unwrap();
            pump(&mut c, &mut s).unwrap();
            assert_eq!(
                events(&mut s),
                vec![
                    Event::Ping(b"p".to_vec()),
                    Event::Fragment {
                        kind: FragmentKind::Text,
                        rsv: 0,
                        data: b"ab".to_vec(),
                        fin: false
                    },
                    Event::Fragment {
                        kind: FragmentKind::Continuation,
                        rsv: 0,
                        data: b"c".to_vec(),
                        fin: true
                    },
                ]
            );
        }
    }

    #[test]
    fn fragment_chunk_streams_a_large_frame_in_pieces() {
        let config = Config {
            deliver_fragments: true,
            allow_rsv1: true,
            fragment_chunk: 4096,
            max_frame_size: 1000,
            ..Config::default()
        };
        for framing in [Framing::Rfc6455, Framing::Stream] {
            let (mut c, mut s) = pair(framing, config.clone());
            let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            // One frame of 100 000 bytes, RSV1 passed through, then a short final frame.
            c.send_fragment(FragmentKind::Binary, 0b100, &payload, false)
                .unwrap();
            c.send_fragment(FragmentKind::Continuation, 0, b"end", true)
                .unwrap();
            while let Some(bytes) = c.poll_transmit() {
                for piece in bytes.chunks(1500) {
                    s.recv(piece).unwrap();
                }
            }
            let got = events(&mut s);
            assert!(got.len() > 20, "{framing:?}: {} events", got.len());
            let mut joined = Vec::new();
            for (i, ev) in got.iter().enumerate() {
                let Event::Fragment {
                    kind,
                    rsv,
                    data,
                    fin,
                } = ev
                else {
                    panic!("{framing:?}: {ev:?}");
                };
                let first = i == 0;
                let last = i + 1 == got.len();
                assert_eq!(
                    *kind,
                    if first {
                        FragmentKind::Binary
                    } else {
                        FragmentKind::Continuation
                    }
                );
                assert_eq!(*rsv, if first { 0b100 } else { 0 }, "{framing:?} #{i}");
                assert_eq!(*fin, last);
                assert!(data.len() <= 4096, "piece of {} bytes", data.len());
                joined.extend_from_slice(data);
            }
            assert_eq!(joined.len(), payload.len() + 3);
            assert_eq!(&joined[..payload.len()], &payload[..]);
            assert_eq!(&joined[payload.len()..], b"end");
        }
    }

    #[test]
    fn fragment_chunk_keeps_text_rules_and_message_limit() {
        let config = Config {
            deliver_fragments: true,
            fragment_chunk: 16,
            max_message_size: 100,
            ..Config::default()
        };
        // Text split inside a code point streams through; invalid UTF-8 fails at once, mid-frame.
        let (mut c, mut s) = pair(Framing::Stream, config.clone());
        c.send_text(&"é".repeat(30)).unwrap();
        let frame = c.poll_transmit().unwrap();
        for b in &frame {
            s.recv(&[*b]).unwrap();
        }
        let text: Vec<u8> = events(&mut s)
            .into_iter()
            .flat_map(|e| match e {
                Event::Fragment { data, .. } => data,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(text, "é".repeat(30).as_bytes());
        let mut s = Connection::new(Role::Server, Framing::Stream, config.clone());
        let mut bad = vec![0x81, 60];
        bad.extend_from_slice(&[b'a'; 20]);
        bad.push(0xFF);
        assert_eq!(s.recv(&bad), Err(ProtocolError::InvalidUtf8));
        // The message limit still holds for streamed frames.
        let mut s = Connection::new(Role::Server, Framing::Stream, config);
        assert_eq!(
            s.recv(&[0x82, 126, 0x00, 200]),
            Err(ProtocolError::MessageTooBig)
        );
    }

    #[test]
    fn one_entry_point_takes_the_framings_unit() {
        // Native: each call is one DATA frame; an empty one carries nothing.
        let mut s = Connection::new(Role::Server, Framing::Native, Config::default());
        s.recv(&[]).unwrap();
        assert_eq!(s.state(), State::Open);
        s.recv(&[0x81, b'h', b'i']).unwrap();
        s.recv(&[0x01, b'a']).unwrap();
        s.recv(&[0x80, b'b']).unwrap();
        assert_eq!(
            events(&mut s),
            vec![
                Event::Message(Message::Text("hi".into())),
                Event::Message(Message::Text("ab".into()))
            ]
        );
        // The same bytes on a byte stream are a frame header (FIN, Text, length 0x68 = 104)
        // waiting for its payload: the unit is the framing's, not the call's.
        let mut s = Connection::new(Role::Server, Framing::Stream, Config::default());
        s.recv(&[0x81, b'h', b'i']).unwrap();
        assert_eq!(events(&mut s), vec![]);
        assert!(Framing::Stream.is_byte_stream() && Framing::Rfc6455.is_byte_stream());
        assert!(!Framing::Native.is_byte_stream());
    }

    #[test]
    fn empty_frame_completed_by_the_last_byte() {
        let mut s = Connection::new(Role::Server, Framing::Stream, Config::default());
        s.recv(&[0x89]).unwrap();
        s.recv(&[0x00]).unwrap();
        assert_eq!(events(&mut s), vec![Event::Ping(vec![])]);
        let mut s = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
        s.recv(&[0x81, 0x80, 1, 2]).unwrap();
        s.recv(&[3, 4]).unwrap();
        assert_eq!(
            events(&mut s),
            vec![Event::Message(Message::Text(String::new()))]
        );
    }

    #[test]
    fn byte_at_a_time() {
        let (mut c, mut s) = pair(Framing::Rfc6455, Config::default());
        c.send_text(&"é".repeat(200)).unwrap();
        c.send_ping(b"").unwrap();
        while let Some(bytes) = c.poll_transmit() {
            for b in bytes {
                s.recv(&[b]).unwrap();
            }
        }
        assert_eq!(
            events(&mut s),
            vec![
                Event::Ping(vec![]),
                Event::Message(Message::Text("é".repeat(200)))
            ]
        );
    }
}
