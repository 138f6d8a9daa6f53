//! Message assembly: the per-frame rules of RFC 6455 §5.4-§5.6 that need state (fragmentation,
//! RSV bits, size limits, UTF-8 of text and close reasons) and the joining of frames into
//! messages, or their hand-over one by one for proxies.
//!
//! The assembler knows nothing of framings or I/O: the connection tells it a frame began
//! ([`MessageAssembler::begin_frame`]), hands it the payload in pieces
//! ([`MessageAssembler::payload`], unmasked in place right after the one copy out of the
//! caller's buffer) and says when the frame ended ([`MessageAssembler::end_frame`]). Every
//! limit is checked against the declared length before anything is stored, so memory never
//! grows past `max_frame_size` / `max_message_size`.

use alloc::string::String;
use alloc::vec::Vec;

use crate::close::CloseFrame;
use crate::error::ProtocolError;
use crate::frame::OpCode;
use crate::mask::apply_mask;
use crate::utf8::Utf8Validator;

/// RSV1: the permessage-deflate "compressed" bit (RFC 7692 §6).
pub const RSV1: u8 = 0b100;

/// Up-front reservation for a new frame: a peer that declares a large frame but trickles it
/// in does not get the whole declared size allocated at once.
const PREALLOC: usize = 64 * 1024;

/// Makes room for `additional` more bytes, growing geometrically (amortised O(1) appends) but
/// never past `limit` bytes of capacity, which plain `Vec` doubling could overshoot.
fn reserve_within(buf: &mut Vec<u8>, additional: usize, limit: usize) {
    let needed = buf.len().saturating_add(additional);
    if needed <= buf.capacity() {
        return;
    }
    let target = buf
        .capacity()
        .saturating_mul(2)
        .max(needed)
        .min(limit.max(needed));
    buf.reserve_exact(target - buf.len());
}

/// A complete data message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

/// The kind of one frame of a data message, as handed to proxies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FragmentKind {
    Text,
    Binary,
    Continuation,
}

impl FragmentKind {
    pub(crate) fn opcode(self) -> OpCode {
        match self {
            FragmentKind::Text => OpCode::Text,
            FragmentKind::Binary => OpCode::Binary,
            FragmentKind::Continuation => OpCode::Continuation,
        }
    }
}

/// How the assembler treats incoming data.
#[derive(Clone, Copy, Debug)]
pub struct AssemblerConfig {
    /// Larger frames → 1009.
    pub max_frame_size: usize,
    /// Larger messages (on the wire, and after inflation) → 1009.
    pub max_message_size: usize,
    /// Hand each data frame over as it completes instead of joining them.
    pub deliver_fragments: bool,
    /// With `deliver_fragments`: accept RSV1 on a message's first frame and pass it through
    /// (its payload is opaque then: no UTF-8 check).
    pub allow_rsv1: bool,
}

/// What a completed frame produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assembled {
    /// A frame in the middle of a message being joined: nothing to report yet.
    Nothing,
    Message(Message),
    Fragment {
        kind: FragmentKind,
        rsv: u8,
        data: Vec<u8>,
        fin: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// `None` when the Close frame had no payload (reported as 1005).
    Close(Option<CloseFrame>),
}

#[derive(Clone, Copy, Debug)]
struct FrameState {
    opcode: OpCode,
    fin: bool,
    rsv: u8,
    /// Payload bytes received so far (the masking offset of the next piece).
    received: u64,
    /// Part of this frame was already handed over ([`MessageAssembler::take_partial`]).
    split: bool,
}

#[derive(Clone, Copy, Debug)]
struct MessageState {
    text: bool,
    /// RSV1 on the first frame and we inflate it.
    inflate: bool,
    /// RSV1 on the first frame, passed through opaque.
    passthrough: bool,
    /// Payload bytes on the wire so far, this frame included.
    wire_len: u64,
    /// Bytes already handed over as fragments (after inflation).
    delivered: usize,
    /// No fragment of this message was handed over yet.
    first: bool,
}

/// Capacity of the compressed-frame buffer kept between messages; more is freed when a
/// message ends.
#[cfg(feature = "deflate")]
const KEEP_COMPRESSED: usize = 4 << 10;

/// Joins (or hands over) data frames and checks every stateful frame rule.
pub struct MessageAssembler {
    config: AssemblerConfig,
    frame: Option<FrameState>,
    message: Option<MessageState>,
    /// Message payload being joined, or the current frame's payload in fragment mode.
    data: Vec<u8>,
    /// The current control frame's payload (≤ 125 bytes).
    control: Vec<u8>,
    utf8: Utf8Validator,
    #[cfg(feature = "deflate")]
    inflater: Option<crate::deflate::Decompressor>,
    /// The current frame's compressed payload.
    #[cfg(feature = "deflate")]
    compressed: Vec<u8>,
    /// Data frames may be handed over in pieces ([`take_partial`](Self::take_partial)), so
    /// their size is not limited by `max_frame_size` (nothing holds them whole).
    stream_frames: bool,
}

impl MessageAssembler {
    pub fn new(config: AssemblerConfig) -> Self {
        MessageAssembler {
            config,
            frame: None,
            message: None,
            data: Vec::new(),
            control: Vec::new(),
            utf8: Utf8Validator::new(),
            #[cfg(feature = "deflate")]
            inflater: None,
            #[cfg(feature = "deflate")]
            compressed: Vec::new(),
            stream_frames: false,
        }
    }

    /// With `deliver_fragments`: the caller hands data frames over in pieces with
    /// [`take_partial`](Self::take_partial), so a frame is never held whole and
    /// `max_frame_size` no longer bounds frames that are not inflated here (`max_message_size`
    /// still does).
    pub fn with_streamed_frames(mut self, enabled: bool) -> Self {
        self.stream_frames = enabled;
        self
    }

    /// Terminates permessage-deflate: RSV1 messages are inflated with this decompressor.
    #[cfg(feature = "deflate")]
    pub fn with_inflater(mut self, inflater: crate::deflate::Decompressor) -> Self {
        self.inflater = Some(inflater);
        self
    }

    fn inflating(&self) -> bool {
        #[cfg(feature = "deflate")]
        {
            self.inflater.is_some()
        }
        #[cfg(not(feature = "deflate"))]
        {
            false
        }
    }

    /// The most a receive buffer may hold: one frame when frames are handed over one by one
    /// (or are compressed input), else the whole message.
    fn buffer_limit(&self, compressed_input: bool) -> usize {
        if self.config.deliver_fragments || compressed_input {
            self.config.max_frame_size
        } else {
            self.config.max_message_size
        }
    }

    /// Bytes of the current data frame held and not yet handed over (fragment mode), or of
    /// the message being joined.
    pub fn buffered(&self) -> usize {
        self.data.len()
    }

    /// Whether a data message is in progress (a Continuation is expected next).
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// Checks a frame header against every rule that does not depend on the framing, and
    /// prepares to take its payload. `rsv` holds the three RSV bits.
    pub fn begin_frame(
        &mut self,
        fin: bool,
        rsv: u8,
        opcode: OpCode,
        payload_len: u64,
    ) -> Result<(), ProtocolError> {
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if payload_len > 125 {
                return Err(ProtocolError::ControlTooLong);
            }
            if rsv != 0 {
                return Err(ProtocolError::ReservedBits);
            }
            self.control.clear();
            self.frame = Some(FrameState {
                opcode,
                fin,
                rsv,
                received: 0,
                split: false,
            });
            return Ok(());
        }
        if rsv & !RSV1 != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        let compressed = rsv & RSV1 != 0;
        let may_inflate = self.inflating();
        let may_pass = self.config.allow_rsv1 && self.config.deliver_fragments;
        if compressed && (opcode == OpCode::Continuation || !(may_inflate || may_pass)) {
            return Err(ProtocolError::ReservedBits);
        }
        let inflated_here = match opcode {
            OpCode::Continuation => self.message.is_some_and(|m| m.inflate),
            _ => compressed && may_inflate,
        };
        let streamed = self.stream_frames && self.config.deliver_fragments && !inflated_here;
        if payload_len > self.config.max_frame_size as u64 && !streamed {
            return Err(ProtocolError::FrameTooBig);
        }
        let wire_len = match (opcode, &self.message) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(m)) => m.wire_len + payload_len,
            (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (_, None) => payload_len,
        };
        if wire_len > self.config.max_message_size as u64 {
            return Err(ProtocolError::MessageTooBig);
        }
        // Within the limits now, so the declared length fits a usize.
        let len = (payload_len as usize).min(PREALLOC);
        match &mut self.message {
            Some(m) => m.wire_len = wire_len,
            None => {
                self.message = Some(MessageState {
                    text: opcode == OpCode::Text,
                    inflate: compressed && may_inflate,
                    passthrough: compressed && !may_inflate,
                    wire_len,
                    delivered: 0,
                    first: true,
                });
                self.data.clear();
                self.utf8.reset();
            }
        }
        let inflate = self.message.is_some_and(|m| m.inflate);
        let limit = self.buffer_limit(inflate);
        if inflate {
            #[cfg(feature = "deflate")]
            {
                self.compressed.clear();
                reserve_within(&mut self.compressed, len, limit);
            }
        } else {
            if self.config.deliver_fragments {
                self.data.clear();
            }
            reserve_within(&mut self.data, len, limit);
        }
        self.frame = Some(FrameState {
            opcode,
            fin,
            rsv,
            received: 0,
            split: false,
        });
        Ok(())
    }

    /// With `deliver_fragments`: hands over what arrived so far of the current data frame as a
    /// fragment with `fin = false`, once at least `min` bytes wait, so a large frame streams
    /// through in pieces instead of being held whole. The frame's remaining bytes come later
    /// (from here or [`end_frame`](Self::end_frame), which carries the frame's `fin`); only the
    /// message's first piece carries its kind and RSV bits. `None` when nothing is due, for
    /// control frames, and for messages inflated here (those are handed over per frame).
    pub fn take_partial(&mut self, min: usize) -> Option<Assembled> {
        if !self.config.deliver_fragments || self.data.len() < min.max(1) {
            return None;
        }
        let frame = self.frame.as_mut().filter(|f| !f.opcode.is_control())?;
        let m = self.message.as_mut().filter(|m| !m.inflate)?;
        let kind = match (m.first, m.text) {
            (false, _) => FragmentKind::Continuation,
            (true, true) => FragmentKind::Text,
            (true, false) => FragmentKind::Binary,
        };
        let rsv = if frame.split { 0 } else { frame.rsv };
        frame.split = true;
        let data = core::mem::take(&mut self.data);
        m.first = false;
        m.delivered += data.len();
        Some(Assembled::Fragment {
            kind,
            rsv,
            data,
            fin: false,
        })
    }

    /// Takes the next piece of the current frame's payload, unmasking it with `mask` (if any)
    /// after copying it in. Text is validated as it arrives, so invalid UTF-8 fails here.
    pub fn payload(&mut self, piece: &[u8], mask: Option<[u8; 4]>) -> Result<(), ProtocolError> {
        let limit = self.buffer_limit(self.message.is_some_and(|m| m.inflate));
        let Some(frame) = self.frame.as_mut() else {
            return Ok(());
        };
        let offset = frame.received as usize;
        frame.received += piece.len() as u64;
        let buf = if frame.opcode.is_control() {
            &mut self.control
        } else {
            match &self.message {
                #[cfg(feature = "deflate")]
                Some(m) if m.inflate => &mut self.compressed,
                _ => &mut self.data,
            }
        };
        let start = buf.len();
        reserve_within(buf, piece.len(), limit);
        buf.extend_from_slice(piece);
        if let Some(key) = mask {
            apply_mask(&mut buf[start..], key, offset);
        }
        if let Some(m) = &self.message {
            if !frame.opcode.is_control() && m.text && !m.inflate && !m.passthrough {
                self.utf8.feed(&self.data[start..])?;
            }
        }
        Ok(())
    }

    /// Ends the current frame (all its declared payload was given to [`payload`](Self::payload)).
    pub fn end_frame(&mut self) -> Result<Assembled, ProtocolError> {
        let Some(frame) = self.frame.take() else {
            return Ok(Assembled::Nothing);
        };
        match frame.opcode {
            OpCode::Ping => return Ok(Assembled::Ping(core::mem::take(&mut self.control))),
            OpCode::Pong => return Ok(Assembled::Pong(core::mem::take(&mut self.control))),
            OpCode::Close => return CloseFrame::parse(&self.control).map(Assembled::Close),
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {}
        }
        let Some(mut m) = self.message else {
            return Ok(Assembled::Nothing);
        };
        if m.inflate {
            self.inflate_frame(&m, frame.fin)?;
        }
        if frame.fin && m.text && !m.passthrough {
            self.utf8.finish()?;
        }
        self.message = if frame.fin { None } else { Some(m) };
        if self.config.deliver_fragments {
            let kind = match (m.first, m.text) {
                (false, _) => FragmentKind::Continuation,
                (true, true) => FragmentKind::Text,
                (true, false) => FragmentKind::Binary,
            };
            // Inflated data is handed over plain, so the RSV1 bit goes with it; a frame already
            // partly handed over gave its bits to its first piece.
            let rsv = if m.inflate || frame.split {
                0
            } else {
                frame.rsv
            };
            let data = core::mem::take(&mut self.data);
            if let Some(next) = self.message.as_mut() {
                m.first = false;
                m.delivered += data.len();
                *next = m;
            }
            return Ok(Assembled::Fragment {
                kind,
                rsv,
                data,
                fin: frame.fin,
            });
        }
        if !frame.fin {
            return Ok(Assembled::Nothing);
        }
        let data = core::mem::take(&mut self.data);
        Ok(Assembled::Message(if m.text {
            // Text that is not passed through opaque was validated piece by piece, and that
            // covers all of `data`: in this (whole-message) mode, bytes enter `data` only in
            // `payload` and `inflate_frame`, each feeding exactly what it appended to
            // `self.utf8` (reset with `data` when the message began), and `finish` above
            // refused a cut sequence. Concatenated valid pieces (the validator only lets a
            // sequence cut by a boundary through once it is complete) are valid UTF-8. So no
            // second pass: it was a third of decode time (perf, 16 KiB text frames). Passed
            // through text was never fed, and is checked here.
            if m.passthrough && simdutf8::basic::from_utf8(&data).is_err() {
                return Err(ProtocolError::InvalidUtf8);
            }
            // SAFETY: `data` is valid UTF-8: validated as it arrived, or just above.
            Message::Text(unsafe { String::from_utf8_unchecked(data) })
        } else {
            Message::Binary(data)
        }))
    }

    #[cfg(feature = "deflate")]
    fn inflate_frame(&mut self, m: &MessageState, fin: bool) -> Result<(), ProtocolError> {
        use crate::deflate::DeflateError;
        use crate::error::DeflateFailure;
        let Some(inflater) = self.inflater.as_mut() else {
            return Ok(());
        };
        let start = self.data.len();
        // The limit counts the whole message, including fragments already handed over.
        let limit = self.config.max_message_size.saturating_sub(m.delivered);
        let res = inflater.decompress(&self.compressed, fin, &mut self.data, limit);
        self.compressed.clear();
        if fin && self.compressed.capacity() > KEEP_COMPRESSED {
            // A large compressed message is over: do not hold its size while idle.
            self.compressed = Vec::new();
        }
        res.map_err(|e| {
            ProtocolError::Deflate(match e {
                DeflateError::TooBig => DeflateFailure::TooBig,
                _ => DeflateFailure::Corrupt,
            })
        })?;
        if m.text {
            self.utf8.feed(&self.data[start..])?;
        }
        Ok(())
    }

    #[cfg(not(feature = "deflate"))]
    fn inflate_frame(&mut self, _m: &MessageState, _fin: bool) -> Result<(), ProtocolError> {
        Ok(())
    }

    /// Drops any partial frame or message (after an error, or when input stops mattering).
    pub fn clear(&mut self) {
        self.frame = None;
        self.message = None;
        self.data = Vec::new();
        self.control = Vec::new();
        self.utf8.reset();
        #[cfg(feature = "deflate")]
        {
            self.compressed = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::CloseCode;

    fn config() -> AssemblerConfig {
        AssemblerConfig {
            max_frame_size: 100,
            max_message_size: 150,
            deliver_fragments: false,
            allow_rsv1: false,
        }
    }

    fn frame(
        a: &mut MessageAssembler,
        fin: bool,
        rsv: u8,
        op: OpCode,
        payload: &[u8],
    ) -> Result<Assembled, ProtocolError> {
        a.begin_frame(fin, rsv, op, payload.len() as u64)?;
        // Feed in two pieces to exercise the incremental path.
        let mid = payload.len() / 2;
        a.payload(&payload[..mid], None)?;
        a.payload(&payload[mid..], None)?;
        a.end_frame()
    }

    #[test]
    fn joins_fragments_with_interleaved_control() {
        let mut a = MessageAssembler::new(config());
        assert_eq!(
            frame(&mut a, false, 0, OpCode::Text, b"Hel"),
            Ok(Assembled::Nothing)
        );
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Ping, b"p"),
            Ok(Assembled::Ping(b"p".to_vec()))
        );
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Continuation, b"lo"),
            Ok(Assembled::Message(Message::Text("Hello".into())))
        );
        assert!(!a.in_message());
    }

    #[test]
    fn sequence_rules() {
        let mut a = MessageAssembler::new(config());
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Continuation, b"x"),
            Err(ProtocolError::UnexpectedContinuation)
        );
        let mut a = MessageAssembler::new(config());
        frame(&mut a, false, 0, OpCode::Binary, b"x").unwrap();
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Text, b"y"),
            Err(ProtocolError::ExpectedContinuation)
        );
    }

    #[test]
    fn control_rules() {
        let mut a = MessageAssembler::new(config());
        assert_eq!(
            a.begin_frame(false, 0, OpCode::Ping, 0),
            Err(ProtocolError::FragmentedControl)
        );
        assert_eq!(
            a.begin_frame(true, 0, OpCode::Ping, 126),
            Err(ProtocolError::ControlTooLong)
        );
        assert_eq!(
            a.begin_frame(true, RSV1, OpCode::Pong, 0),
            Err(ProtocolError::ReservedBits)
        );
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Close, &[]),
            Ok(Assembled::Close(None))
        );
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Close, &[0x03, 0xE8]),
            Ok(Assembled::Close(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: String::new()
            })))
        );
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Close, &[1]),
            Err(ProtocolError::InvalidClosePayload)
        );
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Close, &[0x03, 0xE8, 0xC0]),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn rsv_rules() {
        let mut a = MessageAssembler::new(config());
        assert_eq!(
            a.begin_frame(true, RSV1, OpCode::Text, 1),
            Err(ProtocolError::ReservedBits)
        );
        assert_eq!(
            a.begin_frame(true, 0b010, OpCode::Binary, 1),
            Err(ProtocolError::ReservedBits)
        );
        // allow_rsv1 only applies when fragments are handed over untouched.
        let mut a = MessageAssembler::new(AssemblerConfig {
            allow_rsv1: true,
            ..config()
        });
        assert_eq!(
            a.begin_frame(true, RSV1, OpCode::Text, 1),
            Err(ProtocolError::ReservedBits)
        );
        let mut a = MessageAssembler::new(AssemblerConfig {
            allow_rsv1: true,
            deliver_fragments: true,
            ..config()
        });
        // Opaque: not UTF-8, still passed through.
        assert_eq!(
            frame(&mut a, false, RSV1, OpCode::Text, &[0xFF]),
            Ok(Assembled::Fragment {
                kind: FragmentKind::Text,
                rsv: RSV1,
                data: [0xFF].to_vec(),
                fin: false
            })
        );
        assert_eq!(
            a.begin_frame(true, RSV1, OpCode::Continuation, 1),
            Err(ProtocolError::ReservedBits)
        );
    }

    #[test]
    fn limits_are_checked_before_storing() {
        let mut a = MessageAssembler::new(config());
        assert_eq!(
            a.begin_frame(true, 0, OpCode::Binary, 101),
            Err(ProtocolError::FrameTooBig)
        );
        assert_eq!(
            a.begin_frame(true, 0, OpCode::Binary, u64::MAX >> 1),
            Err(ProtocolError::FrameTooBig)
        );
        let mut a = MessageAssembler::new(config());
        frame(&mut a, false, 0, OpCode::Binary, &[0; 100]).unwrap();
        assert_eq!(
            a.begin_frame(true, 0, OpCode::Continuation, 51),
            Err(ProtocolError::MessageTooBig)
        );
        assert!(a.data.capacity() < 151);
    }

    #[test]
    fn buffers_never_grow_past_the_limit() {
        let mut a = MessageAssembler::new(AssemblerConfig {
            max_frame_size: 1000,
            max_message_size: 1500,
            ..config()
        });
        // 400 + 400 + 400 + 300 bytes in 10-byte pieces: doubling would reach 1600.
        for (i, len) in [400u64, 400, 400, 300].into_iter().enumerate() {
            let op = if i == 0 {
                OpCode::Binary
            } else {
                OpCode::Continuation
            };
            a.begin_frame(i == 3, 0, op, len).unwrap();
            for _ in 0..len / 10 {
                a.payload(&[1; 10], None).unwrap();
                assert!(a.data.capacity() <= 1500, "{}", a.data.capacity());
            }
            a.end_frame().unwrap();
        }
        let mut v = Vec::with_capacity(10);
        reserve_within(&mut v, 100, 50);
        assert_eq!(v.capacity(), 100);
        let mut v = alloc::vec![0u8; 100];
        v.shrink_to_fit();
        reserve_within(&mut v, 1, 150);
        assert_eq!(v.capacity(), 150);
    }

    #[test]
    fn utf8_fails_mid_frame() {
        let mut a = MessageAssembler::new(config());
        a.begin_frame(true, 0, OpCode::Text, 10).unwrap();
        a.payload(b"ab", None).unwrap();
        assert_eq!(a.payload(&[0xFF], None), Err(ProtocolError::InvalidUtf8));
        // A sequence cut by a frame boundary is fine.
        let mut a = MessageAssembler::new(config());
        frame(&mut a, false, 0, OpCode::Text, &[0xE2, 0x82]).unwrap();
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Continuation, &[0xAC]),
            Ok(Assembled::Message(Message::Text("€".into())))
        );
        // ...unless the message ends inside it.
        let mut a = MessageAssembler::new(config());
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Text, &[0xE2, 0x82]),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn fragments_mode() {
        let mut a = MessageAssembler::new(AssemblerConfig {
            deliver_fragments: true,
            ..config()
        });
        assert_eq!(
            frame(&mut a, false, 0, OpCode::Binary, b"ab"),
            Ok(Assembled::Fragment {
                kind: FragmentKind::Binary,
                rsv: 0,
                data: b"ab".to_vec(),
                fin: false
            })
        );
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Continuation, b"c"),
            Ok(Assembled::Fragment {
                kind: FragmentKind::Continuation,
                rsv: 0,
                data: b"c".to_vec(),
                fin: true
            })
        );
        // Text fragments are still validated.
        assert_eq!(
            frame(&mut a, false, 0, OpCode::Text, &[0xC0]),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn masked_payload_unmasked_in_place() {
        let mut a = MessageAssembler::new(config());
        a.begin_frame(true, 0, OpCode::Text, 5).unwrap();
        let key = [0x37, 0xfa, 0x21, 0x3d];
        a.payload(&[0x7f, 0x9f], Some(key)).unwrap();
        a.payload(&[0x4d, 0x51, 0x58], Some(key)).unwrap();
        assert_eq!(
            a.end_frame(),
            Ok(Assembled::Message(Message::Text("Hello".into())))
        );
    }
}
