//! [`Socket`]: the one app-facing type every transport ends in.
//!
//! A socket is a handle on state shared with its driver (`driver.rs`, which pumps the codec
//! over the transport): `send` waits while the peer is slow (backpressure reaches the app),
//! `recv` not being called stops the driver reading (backpressure reaches the peer).

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;
use h2ws_codec::{CloseCode, Connection, Event, SendError};
use http::{HeaderMap, Method, Uri, Version};
use tokio::sync::Notify;

/// How the socket reached the server (DESIGN §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Fetch transport: streaming upstream request (HTTP/2).
    Stream,
    /// Fetch transport: upstream as ordered POST batches.
    Post,
    /// The seed mapping: one WebSocket frame per HTTP/2 DATA frame.
    Native,
    /// RFC 8441 extended CONNECT over HTTP/2.
    Rfc8441,
    /// RFC 6455 over HTTP/1.1.
    Rfc6455,
}

impl Transport {
    pub const ALL: [Transport; 5] = [
        Transport::Stream,
        Transport::Post,
        Transport::Native,
        Transport::Rfc8441,
        Transport::Rfc6455,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stream => "stream",
            Transport::Post => "post",
            Transport::Native => "native",
            Transport::Rfc8441 => "rfc8441",
            Transport::Rfc6455 => "rfc6455",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The opening request of a socket, for authentication and routing decisions. For the fetch
/// transports it is the downstream (open) request; the transport is `Stream` until a `post`
/// batch arrives first (see [`Socket::transport`]).
#[derive(Clone, Debug)]
pub struct HandshakeInfo {
    pub transport: Transport,
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub peer: Option<SocketAddr>,
    /// Subprotocols the client offered, in its order.
    pub offered_protocols: Vec<String>,
    /// The chosen subprotocol (set when the socket is accepted).
    pub protocol: Option<String>,
    /// The negotiated extensions as a header value (set when the socket is accepted).
    pub extensions: Option<String>,
}

impl HandshakeInfo {
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// A request header as text (the first one if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn origin(&self) -> Option<&str> {
        self.header("origin")
    }

    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }

    /// All `name=value` pairs of the `Cookie` headers.
    pub fn cookies(&self) -> Vec<(String, String)> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect()
    }

    /// The value of one cookie.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// A whole WebSocket message.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Bytes),
}

impl Message {
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Text(t) if t.len() <= 64 => write!(f, "Text({t:?})"),
            Message::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Message::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(s)
    }
}
impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(s.to_string())
    }
}
impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Binary(b.into())
    }
}
impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}

/// Which kind of data frame a fragment is (for proxies, see [`Socket::recv_frame`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragmentKind {
    Text,
    Binary,
    Continuation,
}

/// What a socket receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    Message(Message),
    /// One data frame, only on sockets accepted with
    /// [`deliver_fragments`](crate::SocketUpgrade::deliver_fragments).
    Fragment {
        kind: FragmentKind,
        rsv: u8,
        data: Bytes,
        fin: bool,
    },
    /// The socket ended; nothing follows.
    Closed(CloseStatus),
}

/// How a socket ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseStatus {
    /// The peer's code (1005 if its Close had none), or 1006 if the transport ended without a
    /// Close handshake.
    pub code: u16,
    pub reason: String,
    /// Both Close frames were exchanged.
    pub clean: bool,
}

/// Why a socket operation failed: the one error of [`Socket`] and its halves, whichever
/// end opened it (the client's [`Error`](crate::client::Error) wraps it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SocketError {
    #[error("the socket is closing or closed")]
    Closed,
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    #[error("close reason over 123 bytes")]
    ReasonTooLong,
    #[error("control frame payload over 125 bytes")]
    ControlTooLong,
    /// A wait took longer than its limit (a send waiting for room, `recv_timeout`, `closed`).
    #[error("timed out after {0:?} while {1}")]
    Timeout(Duration, &'static str),
}

/// Slots the app's event queue keeps once drained; a burst's larger buffer is freed.
const KEEP_DRAINED_EVENTS: usize = 8;

/// The state one socket's app handles and its driver share (the quinn way: one small
/// mutex-guarded state holding the codec `Connection`). A send encodes straight into the
/// codec's output (one copy) and wakes the driver; the driver feeds received bytes to the codec
/// and queues its events for `recv`. Every [`Socket`], server or client, is a handle on this,
/// driven by the one driver (`driver.rs`).
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Wakes the app: events queued, output drained, or the socket ended.
    pub(crate) app: Notify,
    pub(crate) limits: Limits,
}

/// Per-socket bounds of the app side.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Queued outgoing bytes above which sends wait (backpressure toward the app).
    pub(crate) send_buffer: usize,
    /// Events held for the app before the driver stops reading (backpressure to the peer).
    pub(crate) recv_queue: usize,
    /// Longest wait of a send for room; `None` = as long as the socket lives.
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
}

pub(crate) struct State {
    pub(crate) conn: Connection,
    /// Events for the app, at most `recv_queue` before the driver stops reading.
    pub(crate) events: VecDeque<Event>,
    /// The driver's waker, to wake it after a send, a close or a `recv` that made room.
    pub(crate) driver: Option<Waker>,
    /// Set once by the driver when the socket is over (transport ended too).
    pub(crate) finished: Option<CloseStatus>,
    /// The close handshake's outcome, as soon as the codec reports it.
    pub(crate) closed: Option<CloseStatus>,
    /// The app dropped its receiving handle: the driver discards events.
    pub(crate) app_gone: bool,
}

impl Shared {
    pub(crate) fn new(conn: Connection, limits: Limits) -> Arc<Self> {
        Arc::new(Shared {
            state: Mutex::new(State {
                conn,
                events: VecDeque::new(),
                driver: None,
                finished: None,
                closed: None,
                app_gone: false,
            }),
            app: Notify::new(),
            limits,
        })
    }

    /// The lock never guards user code, so a poisoned lock only means a panic elsewhere
    /// mid-update of plain data; keep going with it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The codec's next event for the app; `None` once the socket ended and every event was
    /// taken. Waits without limit: the driver's liveness timers bound a silent socket.
    pub(crate) async fn next_event(&self) -> Option<Event> {
        loop {
            let notified = self.app.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                if let Some(ev) = st.events.pop_front() {
                    if st.events.is_empty() && st.events.capacity() > KEEP_DRAINED_EVENTS {
                        // A burst is over: an idle socket does not keep its queue's size.
                        st.events = VecDeque::new();
                    }
                    if st.events.len() + 1 >= self.limits.recv_queue {
                        st.wake_driver();
                    }
                    return Some(ev);
                }
                if st.finished.is_some() {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Waits until the codec's output is below the send buffer (or the socket ended), at most
    /// `limit`; `Err(())` when the limit passed.
    pub(crate) async fn room(&self, limit: Option<Duration>) -> Result<(), ()> {
        let has_room =
            |st: &State| st.finished.is_some() || st.conn.pending_bytes() < self.limits.send_buffer;
        // Most sends find room: no timer then.
        if has_room(&self.lock()) {
            return Ok(());
        }
        let wait = async {
            loop {
                let notified = self.app.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if has_room(&self.lock()) {
                    return;
                }
                notified.await;
            }
        };
        match limit {
            // Boxed: a send's future (and so the task of every app that sends) would
            // otherwise carry the timer inline even where no limit is set (the server).
            Some(limit) => Box::pin(tokio::time::timeout(limit, wait))
                .await
                .map_err(|_| ()),
            None => {
                wait.await;
                Ok(())
            }
        }
    }

    /// Applies `f` to the codec unless the socket is closing or over, then wakes the driver.
    pub(crate) fn apply<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, SendError>,
    ) -> Result<T, ApplyError> {
        let mut st = self.lock();
        if st.finished.is_some() || st.closed.is_some() {
            return Err(ApplyError::Ended);
        }
        let out = f(&mut st.conn).map_err(ApplyError::Refused)?;
        st.wake_driver();
        Ok(out)
    }

    /// Closes with `code` if the socket is still open (the app dropped its sending handles).
    pub(crate) fn close_if_open(&self, code: CloseCode, reason: &str) {
        let mut st = self.lock();
        if st.finished.is_none() && st.conn.state() == h2ws_codec::State::Open {
            let _ = st.conn.close(Some(code), reason);
        }
        st.wake_driver();
    }

    /// The app dropped its receiving handle: events are discarded from now on.
    pub(crate) fn receiver_gone(&self) {
        let mut st = self.lock();
        st.app_gone = true;
        st.events.clear();
        st.wake_driver();
    }

    /// How the socket ended, once it has (or the close handshake's outcome, as soon as known).
    pub(crate) fn close_status(&self) -> Option<CloseStatus> {
        let st = self.lock();
        st.finished.clone().or_else(|| st.closed.clone())
    }
}

impl State {
    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }
}

/// Why [`Shared::apply`] did nothing.
pub(crate) enum ApplyError {
    /// The socket is closing or over.
    Ended,
    /// The codec refused the send.
    Refused(SendError),
}

impl From<ApplyError> for SocketError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Ended => SocketError::Closed,
            ApplyError::Refused(SendError::InvalidCloseCode(c)) => SocketError::InvalidCloseCode(c),
            ApplyError::Refused(SendError::ReasonTooLong) => SocketError::ReasonTooLong,
            ApplyError::Refused(SendError::ControlTooLong) => SocketError::ControlTooLong,
            ApplyError::Refused(_) => SocketError::Closed,
        }
    }
}

/// Where a socket counts its traffic (the server endpoint's statistics, through the
/// endpoint; a trait so this leaf module imports neither).
pub(crate) trait Traffic: Send + Sync {
    fn record_in(&self, messages: u64, bytes: usize);
    fn record_out(&self, messages: u64, bytes: usize);
    /// A re-attach queued `bytes` again (codec `resume`).
    fn record_replay(&self, _bytes: u64) {}
}

/// Server sockets: a send waits for room while this much codec output waits for the transport.
pub(crate) const SERVER_SEND_BUFFER: usize = 256 << 10;

/// Which end of the WebSocket a [`Socket`] is: the same type serves both, and the few
/// differences (masking, the close code on drop, which handshake details exist) follow from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Accepted by this crate's server or an axum route ([`crate::route`]).
    Server,
    /// Opened by the native client ([`crate::client`]).
    Client,
}

/// What the opening handshake settled, on either end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// The transport asked for (see [`Socket::transport`] for a server's live view).
    pub transport: Transport,
    /// The chosen subprotocol, if any.
    pub protocol: Option<String>,
    /// The accepted extensions (header value), if any.
    pub extensions: Option<String>,
    /// The HTTP status of the answer (101 for RFC 6455, else 200).
    pub status: u16,
    /// The fetch transports' session token as the client learnt it (`None` on the server,
    /// whose sessions live in its endpoint).
    pub session: Option<String>,
    /// The server agreed to resume this socket after a transport loss (a fetch socket opened
    /// with [`OpenOptions::resume`](crate::client::OpenOptions::resume); codec `resume`).
    pub resume: bool,
}

/// How a socket was opened: shared by a socket's halves.
#[derive(Debug)]
struct Opening {
    role: Role,
    handshake: Handshake,
    /// The opening request as the server saw it (server sockets only).
    info: Option<HandshakeInfo>,
}

/// A WebSocket, whatever its transport and whichever end opened it: the server hands it to
/// handlers ([`crate::route`], [`crate::SocketUpgrade`]), the client's `connect`/`open`
/// return it. See the [crate docs](crate) for a server example and [`crate::client`] for a
/// client one.
///
/// `recv` takes `&mut self` (one reader; messages arrive in order), sends take `&self`; use
/// [`split`](Socket::split) to read and write from different tasks.
/// [`close`](Socket::close) starts the close handshake, [`closed`](Socket::closed) waits for
/// its end. Dropping the socket (or its last sending half) closes a still open socket: 1000
/// on the server, 1001 (going away) on the client.
pub struct Socket {
    opening: Arc<Opening>,
    transport: Arc<TransportCell>,
    sender: SocketSender,
    receiver: SocketReceiver,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("role", &self.opening.role)
            .field("transport", &self.transport())
            .field("handshake", &self.opening.handshake)
            .finish_non_exhaustive()
    }
}

/// The sending half of a [`Socket`] (cheap to clone). When the last clone (and the socket)
/// is dropped, a still open socket is closed (1000 on the server, 1001 on the client).
#[derive(Clone)]
pub struct SocketSender {
    opening: Arc<Opening>,
    handle: Arc<SenderHandle>,
}

/// Shared by the clones of a [`SocketSender`]: closes the socket when the last one goes.
struct SenderHandle {
    shared: Arc<Shared>,
    stats: Option<Arc<dyn Traffic>>,
    /// The code of the close when the app drops every sending handle.
    drop_code: CloseCode,
}

impl Drop for SenderHandle {
    fn drop(&mut self) {
        self.shared.close_if_open(self.drop_code, "");
    }
}

/// The receiving half of a [`Socket`].
pub struct SocketReceiver {
    opening: Arc<Opening>,
    shared: Arc<Shared>,
    closed: Option<CloseStatus>,
}

impl Drop for SocketReceiver {
    fn drop(&mut self) {
        self.shared.receiver_gone();
    }
}

impl Socket {
    /// A server socket, whose opening request is `info`.
    pub(crate) fn new(
        info: Arc<HandshakeInfo>,
        transport: Arc<TransportCell>,
        shared: Arc<Shared>,
        stats: Option<Arc<dyn Traffic>>,
    ) -> Self {
        let info = Arc::unwrap_or_clone(info);
        let handshake = Handshake {
            transport: info.transport,
            protocol: info.protocol.clone(),
            extensions: info.extensions.clone(),
            status: if info.transport == Transport::Rfc6455 {
                101
            } else {
                200
            },
            session: None,
            resume: false,
        };
        let opening = Opening {
            role: Role::Server,
            handshake,
            info: Some(info),
        };
        Self::with(opening, transport, shared, stats)
    }

    /// A client socket, whose handshake settled `handshake`.
    pub(crate) fn client(shared: Arc<Shared>, handshake: Handshake) -> Self {
        let transport = Arc::new(TransportCell::new(handshake.transport));
        let opening = Opening {
            role: Role::Client,
            handshake,
            info: None,
        };
        Self::with(opening, transport, shared, None)
    }

    fn with(
        opening: Opening,
        transport: Arc<TransportCell>,
        shared: Arc<Shared>,
        stats: Option<Arc<dyn Traffic>>,
    ) -> Self {
        let drop_code = match opening.role {
            Role::Server => CloseCode::NORMAL,
            Role::Client => CloseCode::GOING_AWAY,
        };
        let opening = Arc::new(opening);
        Socket {
            transport,
            sender: SocketSender {
                opening: opening.clone(),
                handle: Arc::new(SenderHandle {
                    shared: shared.clone(),
                    stats,
                    drop_code,
                }),
            },
            receiver: SocketReceiver {
                opening: opening.clone(),
                shared,
                closed: None,
            },
            opening,
        }
    }

    /// Which end this socket is.
    pub fn role(&self) -> Role {
        self.opening.role
    }

    /// What the opening handshake settled (transport, subprotocol, extensions, status).
    pub fn handshake(&self) -> &Handshake {
        &self.opening.handshake
    }

    /// The opening request (path, headers, origin, cookies, peer) as the server saw it;
    /// `None` on client sockets, which know the request they sent.
    pub fn info(&self) -> Option<&HandshakeInfo> {
        self.opening.info.as_ref()
    }

    /// The transport. A server's fetch socket reports `stream` until its first `post` batch
    /// arrives; a client socket reports what was asked for.
    pub fn transport(&self) -> Transport {
        self.transport.get()
    }

    /// The chosen subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.opening.handshake.protocol.as_deref()
    }

    /// The next message; `None` once the socket is closed (see [`close_status`](Self::close_status)).
    /// Pings, pongs and fragments are skipped.
    pub async fn recv(&mut self) -> Option<Message> {
        self.receiver.recv().await
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout`.
    pub async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Message>, SocketError> {
        self.receiver.recv_timeout(timeout).await
    }

    /// The next message, fragment (sockets opened for fragments) or the close.
    pub async fn recv_frame(&mut self) -> Incoming {
        self.receiver.recv_frame().await
    }

    /// The codec's next event, pings and pongs included; see [`SocketReceiver::recv_event`].
    pub async fn recv_event(&mut self) -> Option<Event> {
        self.receiver.recv_event().await
    }

    /// Queues a message; waits while the socket's send buffer is full.
    pub async fn send(&self, msg: impl Into<Message>) -> Result<(), SocketError> {
        self.sender.send(msg).await
    }

    /// Sends a text message without building a [`Message`] (one copy, into the codec).
    pub async fn send_text(&self, text: &str) -> Result<(), SocketError> {
        self.sender.send_text(text).await
    }

    /// Sends a binary message without building a [`Message`] (one copy, into the codec).
    pub async fn send_binary(&self, data: &[u8]) -> Result<(), SocketError> {
        self.sender.send_binary(data).await
    }

    /// Sends one data frame of a message; see [`SocketSender::send_fragment`].
    pub async fn send_fragment(
        &self,
        kind: FragmentKind,
        rsv: u8,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SocketError> {
        self.sender.send_fragment(kind, rsv, data, fin).await
    }

    /// Sends a Ping (payload ≤ 125 bytes); control frames go ahead of queued data.
    pub fn ping(&self, payload: &[u8]) -> Result<(), SocketError> {
        self.sender.ping(payload)
    }

    /// Sends a Pong (unsolicited, or when auto-pong is off).
    pub fn pong(&self, payload: &[u8]) -> Result<(), SocketError> {
        self.sender.pong(payload)
    }

    /// Starts the close handshake (RFC 6455 §7). `recv` then yields the rest and `None`;
    /// [`closed`](Self::closed) waits for the end.
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), SocketError> {
        self.sender.close(code, reason).await
    }

    /// Starts the close handshake without checks; see [`SocketSender::start_close`].
    pub fn start_close(&self, code: Option<CloseCode>, reason: &str) -> Result<(), SocketError> {
        self.sender.start_close(code, reason)
    }

    /// Waits for the socket to end and tells how; see [`SocketSender::closed`].
    pub async fn closed(&self) -> Result<CloseStatus, SocketError> {
        self.sender.closed().await
    }

    /// How the socket ended: known once `recv` returned `None` (or as soon as the close
    /// handshake's outcome is).
    pub fn close_status(&self) -> Option<CloseStatus> {
        self.receiver.close_status()
    }

    /// Queued outgoing bytes (the codec's output not yet handed to the transport).
    pub fn buffered_amount(&self) -> usize {
        self.sender.buffered_amount()
    }

    /// Whether the socket's driver has ended.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Splits into halves that can be used from different tasks.
    pub fn split(self) -> (SocketSender, SocketReceiver) {
        (self.sender, self.receiver)
    }

    /// A clone of the sending half.
    pub fn sender(&self) -> SocketSender {
        self.sender.clone()
    }
}

impl SocketSender {
    /// Which end this socket is.
    pub fn role(&self) -> Role {
        self.opening.role
    }

    /// What the opening handshake settled.
    pub fn handshake(&self) -> &Handshake {
        &self.opening.handshake
    }

    /// The opening request as the server saw it; `None` on client sockets.
    pub fn info(&self) -> Option<&HandshakeInfo> {
        self.opening.info.as_ref()
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Queues a message; waits while the socket's send buffer is full. The message's bytes are
    /// handed to the codec: a large payload is written out as they are, not copied (codec
    /// `send_binary_shared`), where the frame needs no change.
    pub async fn send(&self, msg: impl Into<Message>) -> Result<(), SocketError> {
        self.wait_for_room().await?;
        let (len, sent) = match msg.into() {
            Message::Text(t) => (t.len(), self.shared().apply(|c| c.send_text_owned(t))),
            Message::Binary(b) => (b.len(), self.shared().apply(|c| c.send_binary_shared(b))),
        };
        sent?;
        self.record_out(1, len);
        Ok(())
    }

    /// Sends a text message.
    pub async fn send_text(&self, text: &str) -> Result<(), SocketError> {
        self.wait_for_room().await?;
        self.shared().apply(|c| c.send_text(text))?;
        self.record_out(1, text.len());
        Ok(())
    }

    /// Sends a binary message.
    pub async fn send_binary(&self, data: &[u8]) -> Result<(), SocketError> {
        self.wait_for_room().await?;
        self.shared().apply(|c| c.send_binary(data))?;
        self.record_out(1, data.len());
        Ok(())
    }

    fn record_out(&self, messages: u64, bytes: usize) {
        if let Some(stats) = &self.handle.stats {
            stats.record_out(messages, bytes);
        }
    }

    /// Sends one data frame of a message (proxies forwarding frame by frame). Fragments must
    /// follow RFC 6455 order (Text/Binary first, then Continuation, the last one with `fin`);
    /// one out of order is dropped (logged), as a proxy cannot repair its peer's sequence.
    pub async fn send_fragment(
        &self,
        kind: FragmentKind,
        rsv: u8,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SocketError> {
        self.wait_for_room().await?;
        let result = self
            .shared()
            .apply(|c| c.send_fragment(codec_kind(kind), rsv, data, fin));
        match result {
            Ok(()) => {
                self.record_out(u64::from(fin), data.len());
                Ok(())
            }
            // Out of order: refused by the codec, as the driver used to log and drop it.
            Err(ApplyError::Refused(SendError::FragmentSequence)) => {
                tracing::debug!("send refused: fragment out of sequence");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a Ping (payload ≤ 125 bytes); control frames go ahead of queued data.
    pub fn ping(&self, payload: &[u8]) -> Result<(), SocketError> {
        if payload.len() > 125 {
            return Err(SocketError::ControlTooLong);
        }
        Ok(self.shared().apply(|c| c.send_ping(payload))?)
    }

    /// Sends a Pong (unsolicited, or when auto-pong is off).
    pub fn pong(&self, payload: &[u8]) -> Result<(), SocketError> {
        if payload.len() > 125 {
            return Err(SocketError::ControlTooLong);
        }
        Ok(self.shared().apply(|c| c.send_pong(payload))?)
    }

    /// Starts the close handshake with `code` (1000-1003, 1007-1014, 3000-4999). Closing a
    /// socket whose handshake is already under way is a no-op.
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), SocketError> {
        if !CloseCode(code).is_sendable() {
            return Err(SocketError::InvalidCloseCode(code));
        }
        if reason.len() > 123 {
            return Err(SocketError::ReasonTooLong);
        }
        match self
            .shared()
            .apply(|c| c.close(Some(CloseCode(code)), reason))
        {
            // The handshake is already under way (the peer closed first, or we did): closing
            // again is done already, as when the close was a queued command.
            Ok(()) | Err(ApplyError::Refused(SendError::Closed)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts the close handshake as the codec allows it: `code: None` sends a Close without
    /// a code (tests, proxies relaying one); refused once the socket is closing.
    pub fn start_close(&self, code: Option<CloseCode>, reason: &str) -> Result<(), SocketError> {
        Ok(self.shared().apply(|c| c.close(code, reason))?)
    }

    /// Waits for the socket to end and tells how: at most `close_timeout` + 1 s once a close
    /// started (the driver gives up on the peer after `close_timeout`), else without limit.
    /// The receiving half must keep reading meanwhile, or the driver stops reading too.
    pub async fn closed(&self) -> Result<CloseStatus, SocketError> {
        let shared = self.shared();
        let limit = shared.limits.close_timeout + Duration::from_secs(1);
        loop {
            let notified = shared.app.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let closing = {
                let st = shared.lock();
                if let Some(s) = &st.finished {
                    return Ok(s.clone());
                }
                st.conn.state() != h2ws_codec::State::Open
            };
            if closing {
                tokio::time::timeout(limit, notified)
                    .await
                    .map_err(|_| SocketError::Timeout(limit, "waiting for the close handshake"))?;
            } else {
                notified.await;
            }
        }
    }

    /// How the socket ended, or the close handshake's outcome as soon as known.
    pub fn close_status(&self) -> Option<CloseStatus> {
        self.shared().close_status()
    }

    /// Queued outgoing bytes (the codec's output not yet handed to the transport).
    pub fn buffered_amount(&self) -> usize {
        self.shared().lock().conn.pending_bytes()
    }

    /// Whether the socket's driver has ended.
    pub fn is_closed(&self) -> bool {
        self.shared().lock().finished.is_some()
    }

    /// Waits for room in the send buffer, at most the socket's send timeout (server sockets:
    /// without a limit; it returns once the socket ends, and the send then fails `Closed`).
    async fn wait_for_room(&self) -> Result<(), SocketError> {
        let shared = self.shared();
        let limit = shared.limits.send_timeout;
        shared.room(limit).await.map_err(|()| {
            SocketError::Timeout(
                limit.unwrap_or_default(),
                "waiting for room in the send buffer",
            )
        })
    }

    /// A handle that can close the socket without keeping it open (fetch sessions).
    pub(crate) fn closer(&self) -> Closer {
        Closer(Arc::downgrade(&self.handle.shared))
    }
}

/// Closes a socket from outside without keeping it alive (fetch sessions close unattached
/// sockets with it).
#[derive(Clone)]
pub(crate) struct Closer(std::sync::Weak<Shared>);

impl Closer {
    pub(crate) fn close(&self, code: CloseCode, reason: &str) {
        if let Some(shared) = self.0.upgrade() {
            let _ = shared.apply(|c| c.close(Some(code), reason));
        }
    }

    /// The fetch session's upstream attached: the codec's attach deadline is off.
    pub(crate) fn upstream_attached(&self) {
        if let Some(shared) = self.0.upgrade() {
            let _ = shared.apply(|c| {
                c.upstream_attached();
                Ok(())
            });
        }
    }
}

impl SocketReceiver {
    /// Which end this socket is.
    pub fn role(&self) -> Role {
        self.opening.role
    }

    /// What the opening handshake settled.
    pub fn handshake(&self) -> &Handshake {
        &self.opening.handshake
    }

    /// The opening request as the server saw it; `None` on client sockets.
    pub fn info(&self) -> Option<&HandshakeInfo> {
        self.opening.info.as_ref()
    }

    /// The next message; `None` once the socket is closed. Pings, pongs and fragments are
    /// skipped.
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            match self.recv_frame().await {
                Incoming::Message(m) => return Some(m),
                Incoming::Closed(_) => return None,
                // Fragments only reach sockets that asked for them; skip defensively.
                Incoming::Fragment { .. } => continue,
            }
        }
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout`.
    pub async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Message>, SocketError> {
        tokio::time::timeout(timeout, self.recv())
            .await
            .map_err(|_| SocketError::Timeout(timeout, "waiting for a message"))
    }

    /// The next message, fragment (sockets opened for fragments) or the close; after the
    /// close, the close again.
    pub async fn recv_frame(&mut self) -> Incoming {
        if let Some(status) = &self.closed {
            return Incoming::Closed(status.clone());
        }
        let next = loop {
            match self.shared.next_event().await {
                Some(ev) => match incoming(ev) {
                    Some(incoming) => break incoming,
                    None => continue,
                },
                None => break Incoming::Closed(self.ended()),
            }
        };
        if let Incoming::Closed(status) = &next {
            self.closed = Some(status.clone());
        }
        next
    }

    /// The codec's next event: a message (or a fragment), a ping, a pong and finally
    /// `Closed`; `None` after that. Waits without limit: the driver's liveness timeouts (ping
    /// interval, idle timeout, close timeout) bound how long a socket can stay silent.
    pub async fn recv_event(&mut self) -> Option<Event> {
        let ev = self.shared.next_event().await;
        match &ev {
            Some(Event::Closed {
                code,
                reason,
                clean,
            }) => {
                self.closed = Some(CloseStatus {
                    code: code.0,
                    reason: reason.clone(),
                    clean: *clean,
                });
            }
            None if self.closed.is_none() => self.closed = Some(self.ended()),
            _ => {}
        }
        ev
    }

    /// How the socket ended, as far as known (1006 if it ended without a close handshake).
    fn ended(&self) -> CloseStatus {
        self.shared.close_status().unwrap_or(CloseStatus {
            code: CloseCode::ABNORMAL.0,
            reason: String::new(),
            clean: false,
        })
    }

    /// How the socket ended: known once `recv` returned `None` (or as soon as the close
    /// handshake's outcome is).
    pub fn close_status(&self) -> Option<CloseStatus> {
        self.closed.clone().or_else(|| self.shared.close_status())
    }
}

/// A codec event as the app sees it; `None` for pings and pongs (the codec answers pings).
pub(crate) fn incoming(ev: Event) -> Option<Incoming> {
    Some(match ev {
        Event::Message(h2ws_codec::Message::Text(t)) => Incoming::Message(Message::Text(t)),
        Event::Message(h2ws_codec::Message::Binary(b)) => {
            Incoming::Message(Message::Binary(Bytes::from(b)))
        }
        Event::Fragment {
            kind,
            rsv,
            data,
            fin,
        } => Incoming::Fragment {
            kind: app_kind(kind),
            rsv,
            data: Bytes::from(data),
            fin,
        },
        Event::Closed {
            code,
            reason,
            clean,
        } => Incoming::Closed(CloseStatus {
            code: code.0,
            reason,
            clean,
        }),
        Event::Ping(_) | Event::Pong(_) => return None,
    })
}

pub(crate) fn app_kind(k: h2ws_codec::FragmentKind) -> FragmentKind {
    match k {
        h2ws_codec::FragmentKind::Text => FragmentKind::Text,
        h2ws_codec::FragmentKind::Binary => FragmentKind::Binary,
        h2ws_codec::FragmentKind::Continuation => FragmentKind::Continuation,
    }
}

pub(crate) fn codec_kind(k: FragmentKind) -> h2ws_codec::FragmentKind {
    match k {
        FragmentKind::Text => h2ws_codec::FragmentKind::Text,
        FragmentKind::Binary => h2ws_codec::FragmentKind::Binary,
        FragmentKind::Continuation => h2ws_codec::FragmentKind::Continuation,
    }
}

/// The transport a socket is counted under. A fetch socket is counted under a guess from its
/// open (`stream` on HTTP/2, `post` on HTTP/1.1) and switches to what actually attached when
/// its upstream arrives: the server offers both on either HTTP version (behind a proxy it sees
/// HTTP/1.1 of an HTTP/2 browser) and the client decides, falling back to `post`.
pub(crate) struct TransportCell(std::sync::atomic::AtomicU8);

impl TransportCell {
    pub(crate) fn new(t: Transport) -> Self {
        TransportCell(std::sync::atomic::AtomicU8::new(t.index() as u8))
    }

    pub(crate) fn get(&self) -> Transport {
        Transport::ALL[self.0.load(std::sync::atomic::Ordering::Relaxed) as usize]
    }

    /// Sets the transport; returns the one before.
    pub(crate) fn replace(&self, t: Transport) -> Transport {
        let old = self
            .0
            .swap(t.index() as u8, std::sync::atomic::Ordering::Relaxed);
        Transport::ALL[old as usize]
    }
}
