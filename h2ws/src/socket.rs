//! [`Socket`]: the one app-facing type every transport ends in.
//!
//! A socket is a pair of bounded queues to its driver task (which owns the codec and the
//! transport): `send` waits while the peer is slow (backpressure reaches the app), `recv`
//! not being called stops the driver reading (backpressure reaches the peer).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use h2ws_codec::CloseCode;
use http::{HeaderMap, Method, Uri, Version};
use tokio::sync::mpsc;

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

/// App → driver.
#[derive(Debug)]
pub(crate) enum Command {
    Message(Message),
    Fragment {
        kind: FragmentKind,
        rsv: u8,
        data: Bytes,
        fin: bool,
    },
    Ping(Bytes),
    Close(Option<CloseCode>, String),
}

/// A WebSocket, whatever its transport. See the [crate docs](crate) for an example.
pub struct Socket {
    info: Arc<HandshakeInfo>,
    transport: Arc<TransportCell>,
    sender: SocketSender,
    receiver: SocketReceiver,
}

/// The sending half of a [`Socket`] (cheap to clone).
#[derive(Clone)]
pub struct SocketSender {
    info: Arc<HandshakeInfo>,
    cmds: mpsc::Sender<Command>,
}

/// The receiving half of a [`Socket`].
pub struct SocketReceiver {
    info: Arc<HandshakeInfo>,
    events: mpsc::Receiver<Incoming>,
    closed: Option<CloseStatus>,
}

impl Socket {
    pub(crate) fn new(
        info: Arc<HandshakeInfo>,
        transport: Arc<TransportCell>,
        cmds: mpsc::Sender<Command>,
        events: mpsc::Receiver<Incoming>,
    ) -> Self {
        Socket {
            transport,
            sender: SocketSender {
                info: info.clone(),
                cmds,
            },
            receiver: SocketReceiver {
                info: info.clone(),
                events,
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

    pub async fn send(&self, msg: impl Into<Message>) -> Result<(), SocketError> {
        self.command(Command::Message(msg.into())).await
    }

    /// Sends one data frame of a message (proxies). Fragments must follow RFC 6455 order.
    pub async fn send_fragment(
        &self,
        kind: FragmentKind,
        rsv: u8,
        data: Bytes,
        fin: bool,
    ) -> Result<(), SocketError> {
        self.command(Command::Fragment {
            kind,
            rsv,
            data,
            fin,
        })
        .await
    }

    pub async fn ping(&self, payload: Bytes) -> Result<(), SocketError> {
        if payload.len() > 125 {
            return Err(SocketError::ControlTooLong);
        }
        self.command(Command::Ping(payload)).await
    }

    /// Starts the close handshake with `code` (1000-1003, 1007-1014, 3000-4999).
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), SocketError> {
        if !CloseCode(code).is_sendable() {
            return Err(SocketError::InvalidCloseCode(code));
        }
        if reason.len() > 123 {
            return Err(SocketError::ReasonTooLong);
        }
        self.command(Command::Close(Some(CloseCode(code)), reason.to_string()))
            .await
    }

    /// Whether the socket's driver has ended.
    pub fn is_closed(&self) -> bool {
        self.cmds.is_closed()
    }

    async fn command(&self, cmd: Command) -> Result<(), SocketError> {
        self.cmds.send(cmd).await.map_err(|_| SocketError::Closed)
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
        let next = self.events.recv().await.unwrap_or_else(|| {
            Incoming::Closed(CloseStatus {
                code: CloseCode::ABNORMAL.0,
                reason: String::new(),
                clean: false,
            })
        });
        if let Incoming::Closed(status) = &next {
            self.closed = Some(status.clone());
        }
        next
    }

    pub fn close_status(&self) -> Option<&CloseStatus> {
        self.closed.as_ref()
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
