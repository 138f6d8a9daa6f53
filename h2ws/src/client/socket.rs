//! The app-facing client socket: `recv` / `send` / `close`, same shape for every transport.
//!
//! A handle on the same shared state as the server's [`Socket`](crate::Socket)
//! (`crate::socket::Shared`, holding the codec `Connection`), driven by the same driver
//! (`crate::driver`): a send encodes straight into the codec's output (one copy) and wakes the
//! driver; the driver feeds received bytes to the codec and queues its events for `recv`.

use std::sync::Arc;
use std::time::Duration;

use h2ws_codec::{CloseCode, Connection, Event};

use crate::socket::{incoming, ApplyError, Shared};
pub use crate::socket::{CloseStatus, FragmentKind, Incoming, Message, Transport};

use super::Error;

/// What the opening handshake settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    pub transport: Transport,
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// The extensions the server accepted (header value), if any.
    pub extensions: Option<String>,
    /// The HTTP status of the answer (101 for RFC 6455, else 200).
    pub status: u16,
    /// The fetch transports' session token.
    pub session: Option<String>,
}

/// One WebSocket, whatever its transport. All methods take `&self`, so one task can `recv`
/// while another sends; clones are handles to the same socket (like the server's
/// `Socket::split`).
///
/// When the last clone is dropped, a still open socket is closed with 1001 (going away).
#[derive(Clone)]
pub struct WebSocket {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    handshake: Handshake,
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("handshake", &self.inner.handshake)
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    pub(crate) fn new(shared: Arc<Shared>, handshake: Handshake) -> Self {
        WebSocket {
            inner: Arc::new(Handle { shared, handshake }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// What the opening handshake settled (transport, subprotocol, extensions).
    pub fn handshake(&self) -> &Handshake {
        &self.inner.handshake
    }

    pub fn transport(&self) -> Transport {
        self.inner.handshake.transport
    }

    /// The chosen subprotocol, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.inner.handshake.protocol.as_deref()
    }

    /// The next message; `None` once the socket is closed (see [`close_status`]).
    /// Pings, pongs and fragments are skipped.
    ///
    /// [`close_status`]: WebSocket::close_status
    pub async fn recv(&self) -> Option<Message> {
        loop {
            match self.recv_event().await? {
                Event::Message(m) => return Some(app_message(m)),
                Event::Closed { .. } => return None,
                _ => continue,
            }
        }
    }

    /// Like [`recv`](WebSocket::recv), but gives up after `timeout`.
    pub async fn recv_timeout(&self, timeout: Duration) -> Result<Option<Message>, Error> {
        tokio::time::timeout(timeout, self.recv())
            .await
            .map_err(|_| Error::Timeout(timeout, "waiting for a message"))
    }

    /// The next message, fragment (with `OpenOptions::fragments`) or the close, as the
    /// server's [`Socket::recv_frame`](crate::Socket::recv_frame) gives them.
    pub async fn recv_frame(&self) -> Incoming {
        loop {
            match self.recv_event().await {
                Some(ev) => match incoming(ev) {
                    Some(incoming) => return incoming,
                    None => continue,
                },
                None => {
                    return Incoming::Closed(self.close_status().unwrap_or(CloseStatus {
                        code: CloseCode::ABNORMAL.0,
                        reason: String::new(),
                        clean: false,
                    }))
                }
            }
        }
    }

    /// The codec's next event: a message (or a fragment with `OpenOptions::fragments`), a
    /// ping, a pong and finally `Closed`; `None` after that. Waits without limit: the driver's liveness
    /// timeouts (ping interval, idle timeout, close timeout) bound how long a socket can stay
    /// silent before it ends.
    pub async fn recv_event(&self) -> Option<Event> {
        self.shared().next_event().await
    }

    /// Sends a text message (waits for room in the send buffer, at most `send_timeout`).
    pub async fn send_text(&self, text: &str) -> Result<(), Error> {
        self.with_room(|c| c.send_text(text)).await
    }

    /// Sends a binary message (waits for room in the send buffer, at most `send_timeout`).
    pub async fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.with_room(|c| c.send_binary(data)).await
    }

    /// Sends a message (the server's `Socket::send` shape).
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
        match message.into() {
            Message::Text(t) => self.send_text(&t).await,
            Message::Binary(b) => self.send_binary(&b).await,
        }
    }

    /// Sends one frame of a message (proxies forwarding frame by frame); fragments must follow
    /// RFC 6455 order (Text/Binary first, then Continuation, the last one with `fin`).
    pub async fn send_fragment(
        &self,
        kind: FragmentKind,
        rsv: u8,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        let kind = crate::socket::codec_kind(kind);
        self.with_room(|c| c.send_fragment(kind, rsv, payload, fin))
            .await
    }

    /// Sends a Ping (payload ≤ 125 bytes); control frames go ahead of queued data.
    pub fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        self.now(|c| c.send_ping(payload))
    }

    /// Sends a Pong (unsolicited, or when auto-pong is off).
    pub fn pong(&self, payload: &[u8]) -> Result<(), Error> {
        self.now(|c| c.send_pong(payload))
    }

    /// Starts the close handshake and waits (at most `close_timeout` + 1 s) for it to end.
    pub async fn close(&self, code: u16, reason: &str) -> Result<CloseStatus, Error> {
        self.start_close(Some(CloseCode(code)), reason)?;
        self.closed().await
    }

    /// Starts the close handshake without waiting. `code: None` sends a Close without a code.
    pub fn start_close(&self, code: Option<CloseCode>, reason: &str) -> Result<(), Error> {
        self.now(|c| c.close(code, reason))
    }

    /// Waits (at most `close_timeout` + 1 s after a close started, else without limit) for the
    /// socket to end, and tells how.
    pub async fn closed(&self) -> Result<CloseStatus, Error> {
        let limit = self.shared().limits.close_timeout + Duration::from_secs(1);
        loop {
            let notified = self.shared().app.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let closing = {
                let st = self.shared().lock();
                if let Some(s) = &st.finished {
                    return Ok(s.clone());
                }
                st.conn.state() != h2ws_codec::State::Open
            };
            if closing {
                tokio::time::timeout(limit, notified)
                    .await
                    .map_err(|_| Error::Timeout(limit, "waiting for the close handshake"))?;
            } else {
                notified.await;
            }
        }
    }

    /// How the socket ended, once it has (available as soon as `recv` returned `None`).
    pub fn close_status(&self) -> Option<CloseStatus> {
        self.shared().close_status()
    }

    /// Queued outgoing bytes (the codec's output not yet handed to the transport).
    pub fn buffered_amount(&self) -> usize {
        self.shared().lock().conn.pending_bytes()
    }

    fn now(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<(), h2ws_codec::SendError>,
    ) -> Result<(), Error> {
        self.shared().apply(f).map_err(|e| match e {
            ApplyError::Ended(code) => Error::Closed { code },
            ApplyError::Refused(e) => e.into(),
        })
    }

    async fn with_room(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<(), h2ws_codec::SendError>,
    ) -> Result<(), Error> {
        let limits = self.shared().limits;
        if self.shared().room(limits.send_timeout).await.is_err() {
            let limit = limits.send_timeout.unwrap_or_default();
            return Err(Error::Timeout(limit, "waiting for room in the send buffer"));
        }
        self.now(f)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.receiver_gone();
        self.shared.close_if_open(CloseCode::GOING_AWAY, "");
    }
}

fn app_message(m: h2ws_codec::Message) -> Message {
    match m {
        h2ws_codec::Message::Text(t) => Message::Text(t),
        h2ws_codec::Message::Binary(b) => Message::Binary(b.into()),
    }
}
