//! The core of one socket: the WHATWG `WebSocket` rules on top of the codec's [`Connection`].
//!
//! Pure logic, no I/O and no JS: the bindings feed it transport bytes and turn its [`Output`]s
//! into DOM events, so every rule here is testable natively (`cargo test -p h2ws-wasm`).

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use h2ws_codec::resume::{Accepted, ResumeConfig, ResumeError};
use h2ws_codec::timer::{Timeout, Timeouts, Timestamp};
use h2ws_codec::{
    CloseCode, Config, Connection, Event, FragmentKind, Framing, Message, Role, State,
};

/// Largest incoming message (after inflation); larger → close 1009. Browsers set no limit; we
/// keep one so a peer cannot exhaust the page's memory.
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;
/// Outgoing messages larger than this leave as several frames: peers cap frame sizes (the
/// devserver at 16 MiB), and control frames (Pong, Close) can go out between fragments.
pub const MAX_OUTGOING_FRAME: usize = 1 << 20;
/// With resume, frames are at most this large: each one must fit the replay buffer (1 MiB,
/// codec `resume::DEFAULT_MAX_REPLAY_BYTES`) whole, with room for a few more, or it would wait
/// for room forever.
pub const MAX_RESUMABLE_FRAME: usize = 256 << 10;

/// The codec configuration of a browser socket: one frame may be as large as a whole message
/// (browsers accept any frame size), both bounded by [`MAX_MESSAGE_SIZE`].
pub fn client_config() -> Config {
    Config {
        max_frame_size: MAX_MESSAGE_SIZE,
        max_message_size: MAX_MESSAGE_SIZE,
        ..Config::default()
    }
}

/// `WebSocket.readyState` values (the four constants on the class and its instances).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum ReadyState {
    Connecting = 0,
    Open = 1,
    Closing = 2,
    Closed = 3,
}

/// What the bindings must surface to the page, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Open,
    Message(Message),
    Error,
    Close {
        code: u16,
        reason: String,
        was_clean: bool,
    },
}

/// What `close()` asks the transport to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseAction {
    /// Already closing or closed: nothing.
    None,
    /// Still connecting: abort the handshake, then [`SocketCore::fail`].
    AbortHandshake,
    /// A Close frame is queued: flush it and wait (bounded) for the peer's.
    SendClose,
}

/// Bytes for the upstream plus how many application bytes they carry (for `bufferedAmount`).
#[derive(Debug, PartialEq, Eq)]
pub struct Transmit {
    pub bytes: Vec<u8>,
    pub app_bytes: usize,
}

/// The close handshake ended (or the transport failed): what the close event will say.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ending {
    code: u16,
    reason: String,
    was_clean: bool,
}

/// One socket's state: codec connection, `readyState`, `bufferedAmount`, negotiated values.
pub struct SocketCore {
    conn: Connection,
    state: ReadyState,
    /// Application bytes passed to `send()` and not yet taken by the transport (never decreases
    /// for data sent while closing: the WHATWG rule).
    buffered: u64,
    /// Application bytes queued in `conn` but not yet returned by [`SocketCore::take_transmit`].
    untransmitted_app: usize,
    protocol: String,
    extensions: String,
    ending: Option<Ending>,
    failed: bool,
    /// permessage-deflate negotiated: messages are compressed whole and sent as one frame.
    compressed: bool,
    /// Largest outgoing frame payload ([`MAX_OUTGOING_FRAME`], or [`MAX_RESUMABLE_FRAME`]
    /// once resume is on).
    max_frame: usize,
    /// Outputs gathered from codec events, handed out by `recv`/`recv_eof`.
    pending: Vec<Output>,
    /// The peer was silent for the idle timeout on a resumable socket ([`SocketCore::take_silent`]).
    silent: bool,
}

impl SocketCore {
    /// A client socket on the h2ws stream framing (DESIGN §3).
    pub fn new(config: Config) -> Self {
        #[cfg(feature = "deflate")]
        let compressed = config.deflate.is_some();
        #[cfg(not(feature = "deflate"))]
        let compressed = false;
        SocketCore {
            compressed,
            max_frame: MAX_OUTGOING_FRAME,
            conn: Connection::new(Role::Client, Framing::Stream, config),
            state: ReadyState::Connecting,
            buffered: 0,
            untransmitted_app: 0,
            protocol: String::new(),
            extensions: String::new(),
            ending: None,
            failed: false,
            pending: Vec::new(),
            silent: false,
        }
    }

    pub fn ready_state(&self) -> ReadyState {
        self.state
    }

    pub fn buffered_amount(&self) -> u64 {
        self.buffered
    }

    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    pub fn extensions(&self) -> &str {
        &self.extensions
    }

    /// The handshake succeeded: `readyState` becomes OPEN.
    pub fn opened(&mut self, protocol: &str, extensions: &str) -> Vec<Output> {
        if self.state != ReadyState::Connecting {
            return Vec::new();
        }
        self.state = ReadyState::Open;
        self.protocol = protocol.to_string();
        self.extensions = extensions.to_string();
        vec![Output::Open]
    }

    /// `send(string)`. Never called while CONNECTING: the JS layer throws `InvalidStateError`
    /// then (the synchronous API rules live there, as they must answer before the wasm loads).
    pub fn send_text(&mut self, text: &str) {
        self.buffered += text.len() as u64;
        self.queue_text(text);
    }

    /// `send(ArrayBuffer | ArrayBufferView | Blob)` once the bytes are at hand.
    pub fn send_binary(&mut self, data: &[u8]) {
        self.buffered += data.len() as u64;
        self.queue_binary(data);
    }

    /// `send(Blob)`: the size counts into `bufferedAmount` now, the bytes come later through
    /// [`SocketCore::send_reserved_binary`] (in order with other sends; the bindings keep the order).
    pub fn reserve(&mut self, len: u64) {
        self.buffered += len;
    }

    /// The bytes of a [`SocketCore::reserve`]d send.
    pub fn send_reserved_binary(&mut self, data: &[u8]) {
        self.queue_binary(data);
    }

    /// A text send that waited behind a [`SocketCore::reserve`]d one (already counted).
    pub fn send_reserved_text(&mut self, text: &str) {
        self.queue_text(text);
    }

    fn queue_binary(&mut self, data: &[u8]) {
        if !self.accepts_data() {
            return;
        }
        let queued = if self.compressed || data.len() <= self.max_frame {
            self.conn.send_binary(data).is_ok()
        } else {
            self.queue_fragments(FragmentKind::Binary, data.chunks(self.max_frame))
        };
        if queued {
            self.untransmitted_app += data.len();
        }
    }

    fn queue_text(&mut self, text: &str) {
        if !self.accepts_data() {
            return;
        }
        let queued = if self.compressed || text.len() <= self.max_frame {
            self.conn.send_text(text).is_ok()
        } else {
            self.queue_fragments(FragmentKind::Text, utf8_chunks(text, self.max_frame))
        };
        if queued {
            self.untransmitted_app += text.len();
        }
    }

    /// One message as a first fragment of `kind`, continuations, and a final one.
    fn queue_fragments<'a>(
        &mut self,
        kind: FragmentKind,
        chunks: impl Iterator<Item = &'a [u8]>,
    ) -> bool {
        let mut chunks = chunks.peekable();
        let mut kind = kind;
        while let Some(chunk) = chunks.next() {
            let fin = chunks.peek().is_none();
            if self.conn.send_fragment(kind, 0, chunk, fin).is_err() {
                return false;
            }
            kind = FragmentKind::Continuation;
        }
        true
    }

    /// Data is only queued while OPEN; later sends only count into `bufferedAmount`.
    fn accepts_data(&self) -> bool {
        self.state == ReadyState::Open && self.conn.state() == State::Open
    }

    /// `close(code?, reason?)` with arguments the JS layer already checked (code 1000 or
    /// 3000-4999, reason at most 123 bytes, 1000 filled in for a reason without a code).
    pub fn close(&mut self, code: Option<u16>, reason: &str) -> CloseAction {
        match self.state {
            ReadyState::Closing | ReadyState::Closed => CloseAction::None,
            ReadyState::Connecting => {
                self.state = ReadyState::Closing;
                CloseAction::AbortHandshake
            }
            ReadyState::Open => {
                self.state = ReadyState::Closing;
                match self.conn.close(code.map(CloseCode), reason) {
                    Ok(()) => CloseAction::SendClose,
                    // The peer's Close is already in: the handshake is under way.
                    Err(_) => CloseAction::None,
                }
            }
        }
    }

    /// Transport bytes from the downstream. Protocol errors fail the socket (a Close frame with
    /// the error's code is queued by the codec; see [`SocketCore::must_fail`]).
    pub fn recv(&mut self, bytes: &[u8]) -> Vec<Output> {
        if self.conn.recv(bytes).is_err() {
            self.failed = true;
        }
        self.drain_events();
        core::mem::take(&mut self.pending)
    }

    /// [`SocketCore::recv`] at `now` (performance.now() ms): the input also postpones the idle
    /// deadline of the codec's timers.
    pub fn recv_at(&mut self, now: Timestamp, bytes: &[u8]) -> Vec<Output> {
        if self.conn.recv_at(now, bytes).is_err() {
            self.failed = true;
        }
        self.drain_events();
        core::mem::take(&mut self.pending)
    }

    /// Arms the codec's liveness timers at open (`now`): the close-handshake timeout and,
    /// unless `idle` is false (a reader that pulls may leave data unread for any time), the
    /// idle timeout (`h2ws_codec::timer::BROWSER_IDLE_TIMEOUT`). The browser does not ping:
    /// the server does.
    pub fn start_timers(&mut self, idle: bool, now: Timestamp) {
        self.conn.set_timeouts(Timeouts::browser(idle), now);
    }

    /// When [`SocketCore::handle_timeout`] is due next, if a timer runs.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.conn.poll_timeout()
    }

    /// Runs the timers due at `now`. True when the socket timed out (silent downstream, the
    /// close handshake took too long, or no re-attach within the resume grace window): abort
    /// the transport, then [`SocketCore::fail`]. With resume, a due acknowledgement is queued
    /// here (flush after).
    pub fn handle_timeout(&mut self, now: Timestamp) -> bool {
        let fired = self.conn.handle_timeout(now);
        self.drain_events();
        self.silent = fired == Some(Timeout::Silent);
        matches!(
            fired,
            Some(Timeout::Idle | Timeout::CloseHandshake | Timeout::ResumeGrace)
        )
    }

    /// The last [`handle_timeout`](Self::handle_timeout) found the peer silent for the idle
    /// timeout on a resumable socket (codec `Timeout::Silent`): the transport counts as lost
    /// (the session re-attaches) instead of failing the socket.
    pub fn take_silent(&mut self) -> bool {
        core::mem::take(&mut self.silent)
    }

    /// The server accepted resume at the open (`h2ws-resume` answer): the codec counts,
    /// acknowledges and keeps frames from now on (codec `resume`), with the server's grace
    /// window and at most its replay buffer. Outgoing frames get smaller
    /// ([`MAX_RESUMABLE_FRAME`]) so each fits the replay buffer.
    pub fn enable_resume(&mut self, accepted: &Accepted<'_>) -> bool {
        let defaults = ResumeConfig::default();
        let config = ResumeConfig {
            grace: accepted.grace,
            max_replay_bytes: defaults.max_replay_bytes.min(accepted.bytes),
            // A request left pending on a dead connection fails nothing: watch the acks.
            ack_timeout: Some(h2ws_codec::resume::CLIENT_ACK_TIMEOUT),
            ..defaults
        };
        let on = self.conn.enable_resume(config);
        if on {
            self.max_frame = MAX_RESUMABLE_FRAME.min(config.max_replay_bytes / 4).max(1);
        }
        on
    }

    /// An upstream request went out: with resume, the ack watchdog waits for its answer too
    /// (codec `Connection::request_started`).
    pub fn request_started(&mut self) {
        self.conn.request_started();
    }

    /// An upstream request of [`SocketCore::request_started`] was answered or failed.
    pub fn request_ended(&mut self) {
        self.conn.request_ended();
    }

    /// Resume is on and the socket not over: a broken transport is
    /// [`SocketCore::transport_lost`], not the end.
    pub fn can_resume(&self) -> bool {
        self.conn.can_resume() && self.state != ReadyState::Closed
    }

    /// The transport is lost and a re-attach awaited.
    pub fn is_transport_lost(&self) -> bool {
        self.conn.is_transport_lost()
    }

    /// The transport broke at `now` ([`SocketCore::can_resume`] checked): the socket stays as
    /// it is (no event, `readyState` unchanged), sends keep queuing, the grace window runs.
    pub fn transport_lost(&mut self, now: Timestamp) -> bool {
        let lost = self.conn.transport_lost(now);
        self.drain_events();
        lost
    }

    /// Counted frames received: the re-attach's `h2ws-received`.
    pub fn resume_received(&self) -> u64 {
        self.conn.resume_received().unwrap_or(0)
    }

    /// The re-attach was answered (the server received `peer_received` counted frames): the
    /// frames it lacks are queued ahead of what waits ([`SocketCore::take_transmit`] hands them
    /// out). An error (a count that cannot be honoured, grace over) means the socket fails.
    pub fn resume(&mut self, peer_received: u64, now: Timestamp) -> Result<u64, ResumeError> {
        let result = self.conn.resume(peer_received, now);
        self.drain_events();
        result
    }

    /// The downstream ended (or broke).
    pub fn recv_eof(&mut self) -> Vec<Output> {
        self.conn.recv_eof();
        self.drain_events();
        core::mem::take(&mut self.pending)
    }

    fn drain_events(&mut self) {
        let out = &mut self.pending;
        while let Some(event) = self.conn.poll_event() {
            match event {
                // WHATWG: a message that arrives when readyState is not OPEN is dropped.
                Event::Message(message) if self.state == ReadyState::Open && !self.failed => {
                    out.push(Output::Message(message))
                }
                Event::Closed {
                    code,
                    reason,
                    clean,
                } if self.ending.is_none() => {
                    self.ending = Some(Ending {
                        code: code.0,
                        reason,
                        was_clean: clean,
                    });
                }
                _ => {}
            }
        }
        if self.conn.state() != State::Open && self.state == ReadyState::Open {
            // The peer started the closing handshake.
            self.state = ReadyState::Closing;
        }
    }

    /// A protocol error occurred: flush the queued Close, end the transport, then [`SocketCore::fail`].
    pub fn must_fail(&self) -> bool {
        self.failed
    }

    /// The close handshake is over (or the transport ended): end the upstream, then [`SocketCore::finish`].
    pub fn handshake_done(&self) -> bool {
        self.ending.is_some()
    }

    /// Queued output for the upstream, if any (data, Pong, Close).
    pub fn take_transmit(&mut self) -> Option<Transmit> {
        let mut bytes = Vec::new();
        while let Some(chunk) = self.conn.poll_transmit() {
            if bytes.is_empty() {
                bytes = chunk;
            } else {
                bytes.extend_from_slice(&chunk);
            }
        }
        // Taking our Close echo is what ends a peer-initiated handshake.
        self.drain_events();
        if bytes.is_empty() {
            return None;
        }
        // Data the codec still holds (resume: the replay buffer is full) stays counted: its
        // payload bytes, not the frame headers (with permessage-deflate, compressed bytes).
        let held = self.conn.pending_payload_bytes();
        let app_bytes = self.untransmitted_app.saturating_sub(held);
        self.untransmitted_app -= app_bytes;
        Some(Transmit { bytes, app_bytes })
    }

    /// The transport took `app_bytes` of application data: `bufferedAmount` goes down.
    pub fn transmitted(&mut self, app_bytes: usize) {
        self.buffered = self.buffered.saturating_sub(app_bytes as u64);
    }

    /// The socket failed (handshake refused, transport error, protocol error, socket cap, close
    /// timeout): `error`, then `close` 1006 unclean. Idempotent.
    pub fn fail(&mut self) -> Vec<Output> {
        if self.state == ReadyState::Closed {
            return Vec::new();
        }
        self.state = ReadyState::Closed;
        vec![
            Output::Error,
            Output::Close {
                code: CloseCode::ABNORMAL.0,
                reason: String::new(),
                was_clean: false,
            },
        ]
    }

    /// The transport is done after [`SocketCore::handshake_done`]: the close event (preceded by
    /// `error` when the ending was not clean).
    pub fn finish(&mut self) -> Vec<Output> {
        if self.state == ReadyState::Closed {
            return Vec::new();
        }
        match self.ending.take() {
            Some(ending) if ending.was_clean && !self.failed => {
                self.state = ReadyState::Closed;
                vec![Output::Close {
                    code: ending.code,
                    reason: ending.reason,
                    was_clean: true,
                }]
            }
            _ => self.fail(),
        }
    }
}

/// The `h2ws-protocol` header value for a subprotocol list the JS layer already checked (the
/// WHATWG list rules throw there, synchronously); empty when none.
pub fn protocol_header(protocols: &[String]) -> String {
    use h2ws_codec::handshake::negotiate;
    let list: Vec<&str> = protocols.iter().map(String::as_str).collect();
    // The server parses the list with the same codec rules.
    debug_assert!(negotiate::validate_protocols(&list).is_ok());
    negotiate::format_protocols(&list)
}

/// Splits UTF-8 text into pieces of at most `max` bytes (`max` below 4 counts as 4, so a
/// character always fits), on character boundaries so every fragment is valid UTF-8 on its own.
/// Byte-level on purpose: `str` slicing would pull its panic formatting into the wasm.
fn utf8_chunks(text: &str, max: usize) -> impl Iterator<Item = &[u8]> {
    let max = max.max(4);
    let mut rest = text.as_bytes();
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(max);
        // Back off over continuation bytes (10xxxxxx) to the start of a character.
        while end < rest.len() && rest[end] & 0xC0 == 0x80 {
            end -= 1;
        }
        let (head, tail) = rest.split_at_checked(end)?;
        rest = tail;
        Some(head)
    })
}

/// Why a forced `transport: 'stream'` cannot run here (the socket fails before `open`).
pub const NO_REQUEST_STREAMING: &str = "transport 'stream' needs fetch() request-body streaming, \
     which this browser does not have (Firefox and Safari send no streamed bodies) or cannot use \
     for this URL (browsers stream request bodies only over HTTP/2, so only to https URLs); use \
     transport 'auto' or 'post'";

/// Whether a request body can stream to `http_scheme` (`"http:"` / `"https:"`) in an engine
/// that streams request bodies at all. Browsers speak HTTP/2 only over TLS and stream request
/// bodies only over HTTP/2, so an `http:` URL never can: `auto` picks `post` there without a
/// failed attempt. (The server offers `stream` whatever it sees, codec
/// `fetch::SERVER_TRANSPORTS`: behind a proxy it cannot know.) An `https:` connection may still
/// turn out HTTP/1.1; that is what the fallback of `auto` is for (`fetch::STREAM_FALLBACK_MS`).
pub fn request_streaming_to(http_scheme: &str, engine_streams: bool) -> bool {
    engine_streams && http_scheme == "https:"
}
/// Why a forced `transport: 'stream'` cannot run on this connection.
pub const SERVER_WITHOUT_STREAM: &str = "transport 'stream' is not offered by the server on this \
     connection (h2ws-transports); use transport 'auto' or 'post'";

/// Before the open request: a forced `stream` in a browser that cannot stream request bodies
/// fails at once, so no open request is spent and no stringified body is ever sent.
pub fn check_requested_transport(
    requested: &str,
    request_streaming: bool,
) -> Result<(), &'static str> {
    if requested == "stream" && !request_streaming {
        return Err(NO_REQUEST_STREAMING);
    }
    Ok(())
}

/// Which upstream transport to use once the open response is in (DESIGN §2, `auto`): `stream`
/// when this browser can stream request bodies and the server offers it, else `post`. A forced
/// `stream` the server does not offer is an error (the socket fails before `open`).
pub fn choose_transport(
    requested: &str,
    request_streaming: bool,
    server_transports: Option<&str>,
) -> Result<Transport, &'static str> {
    let server_has_stream = server_transports
        .map(|list| {
            list.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("stream"))
        })
        .unwrap_or(true);
    check_requested_transport(requested, request_streaming)?;
    match requested {
        "stream" if server_has_stream => Ok(Transport::Stream),
        "stream" => Err(SERVER_WITHOUT_STREAM),
        "post" => Ok(Transport::Post),
        _ if request_streaming && server_has_stream => Ok(Transport::Stream),
        _ => Ok(Transport::Post),
    }
}

/// The two fetch transports (DESIGN §2.2, §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Stream,
    Post,
}

/// Checks the open response's chosen subprotocol against the offer: a server may only pick one
/// we offered, and, as Chromium's and Firefox's own WebSocket require, must pick one when we
/// offered any (none offered → none allowed).
pub fn check_protocol(offered: &[String], chosen: &str) -> bool {
    if chosen.is_empty() {
        offered.is_empty()
    } else {
        offered.iter().any(|p| p == chosen)
    }
}

#[cfg(test)]
mod tests;
