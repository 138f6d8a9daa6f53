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

/// Why a send or close was refused.
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
}

/// The state one socket's app handles and its driver share (the quinn way: one small
/// mutex-guarded state holding the codec `Connection`). A send encodes straight into the
/// codec's output (one copy) and wakes the driver; the driver feeds received bytes to the codec
/// and queues its events for `recv`. Server [`Socket`]s and client
/// [`WebSocket`](crate::client::WebSocket)s are handles on this, driven by the one driver
/// (`driver.rs`).
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
        let wait = async {
            loop {
                let notified = self.app.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let st = self.lock();
                    if st.finished.is_some() || st.conn.pending_bytes() < self.limits.send_buffer {
                        return;
                    }
                }
                notified.await;
            }
        };
        match limit {
            Some(limit) => tokio::time::timeout(limit, wait).await.map_err(|_| ()),
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
        if let Some(s) = st.finished.as_ref().or(st.closed.as_ref()) {
            return Err(ApplyError::Ended(s.code));
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
    /// The socket is closing or over (the close code known so far).
    Ended(u16),
    /// The codec refused the send.
    Refused(SendError),
}

impl From<ApplyError> for SocketError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Ended(_) => SocketError::Closed,
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
}

/// Server sockets: a send waits for room while this much codec output waits for the transport.
pub(crate) const SERVER_SEND_BUFFER: usize = 256 << 10;

/// A WebSocket, whatever its transport. See the [crate docs](crate) for an example.
pub struct Socket {
    info: Arc<HandshakeInfo>,
    transport: Arc<TransportCell>,
    sender: SocketSender,
    receiver: SocketReceiver,
}

/// The sending half of a [`Socket`] (cheap to clone). When the last clone (and the socket)
/// is dropped, a still open socket is closed with 1000.
#[derive(Clone)]
pub struct SocketSender {
    info: Arc<HandshakeInfo>,
    handle: Arc<SenderHandle>,
}

/// Shared by the clones of a [`SocketSender`]: closes the socket when the last one goes.
struct SenderHandle {
    shared: Arc<Shared>,
    stats: Option<Arc<dyn Traffic>>,
}

impl Drop for SenderHandle {
    fn drop(&mut self) {
        self.shared.close_if_open(CloseCode::NORMAL, "");
    }
}

/// The receiving half of a [`Socket`].
pub struct SocketReceiver {
    info: Arc<HandshakeInfo>,
    shared: Arc<Shared>,
    closed: Option<CloseStatus>,
}

impl Drop for SocketReceiver {
    fn drop(&mut self) {
        self.shared.receiver_gone();
    }
}

impl Socket {
    pub(crate) fn new(
        info: Arc<HandshakeInfo>,
        transport: Arc<TransportCell>,
        shared: Arc<Shared>,
        stats: Option<Arc<dyn Traffic>>,
    ) -> Self {
        Socket {
            transport,
            sender: SocketSender {
                info: info.clone(),
                handle: Arc::new(SenderHandle {
                    shared: shared.clone(),
                    stats,
                }),
            },
            receiver: SocketReceiver {
                info: info.clone(),
                shared,
                closed: None,
            },
            info,
        }
    }

    /// The opening request, chosen subprotocol, transport and peer.
    pub fn info(&self) -> &HandshakeInfo {
        &self.info
    }

    /// The transport; a fetch socket reports `stream` until its first `post` batch arrives.
    pub fn transport(&self) -> Transport {
        self.transport.get()
    }

    /// The chosen subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.info.protocol.as_deref()
    }

    /// The next message; `None` once the socket is closed (see [`close_status`](Self::close_status)).
    pub async fn recv(&mut self) -> Option<Message> {
        self.receiver.recv().await
    }

    /// The next message, fragment or the close.
    pub async fn recv_frame(&mut self) -> Incoming {
        self.receiver.recv_frame().await
    }

    /// Queues a message; waits while the socket's send queue is full.
    pub async fn send(&self, msg: impl Into<Message>) -> Result<(), SocketError> {
        self.sender.send(msg).await
    }

    /// Starts the close handshake (RFC 6455 §7). `recv` then yields the rest and `None`.
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), SocketError> {
        self.sender.close(code, reason).await
    }

    /// How the socket ended, once `recv` returned `None`.
    pub fn close_status(&self) -> Option<&CloseStatus> {
        self.receiver.close_status()
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
    pub fn info(&self) -> &HandshakeInfo {
        &self.info
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    pub async fn send(&self, msg: impl Into<Message>) -> Result<(), SocketError> {
        let msg = msg.into();
        self.wait_for_room().await?;
        let len = msg.len();
        self.shared().apply(|c| match &msg {
            Message::Text(t) => c.send_text(t),
            Message::Binary(b) => c.send_binary(b),
        })?;
        if let Some(stats) = &self.handle.stats {
            stats.record_out(1, len);
        }
        Ok(())
    }

    /// Sends one data frame of a message (proxies). Fragments must follow RFC 6455 order.
    pub async fn send_fragment(
        &self,
        kind: FragmentKind,
        rsv: u8,
        data: Bytes,
        fin: bool,
    ) -> Result<(), SocketError> {
        self.wait_for_room().await?;
        let result = self
            .shared()
            .apply(|c| c.send_fragment(codec_kind(kind), rsv, &data, fin));
        match result {
            Ok(()) => {
                if let Some(stats) = &self.handle.stats {
                    stats.record_out(u64::from(fin), data.len());
                }
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

    pub async fn ping(&self, payload: Bytes) -> Result<(), SocketError> {
        if payload.len() > 125 {
            return Err(SocketError::ControlTooLong);
        }
        Ok(self.shared().apply(|c| c.send_ping(&payload))?)
    }

    /// Starts the close handshake with `code` (1000-1003, 1007-1014, 3000-4999).
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

    /// Whether the socket's driver has ended.
    pub fn is_closed(&self) -> bool {
        self.shared().lock().finished.is_some()
    }

    /// Waits for room in the send buffer (server sockets: without a time limit, as a send
    /// into a full command queue did; it returns once the socket ends).
    async fn wait_for_room(&self) -> Result<(), SocketError> {
        let shared = self.shared();
        shared
            .room(shared.limits.send_timeout)
            .await
            .map_err(|()| SocketError::Closed)
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
    pub fn info(&self) -> &HandshakeInfo {
        &self.info
    }

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
                None => {
                    break Incoming::Closed(self.shared.close_status().unwrap_or(CloseStatus {
                        code: CloseCode::ABNORMAL.0,
                        reason: String::new(),
                        clean: false,
                    }))
                }
            }
        };
        if let Incoming::Closed(status) = &next {
            self.closed = Some(status.clone());
        }
        next
    }

    pub fn close_status(&self) -> Option<&CloseStatus> {
        self.closed.as_ref()
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
