//! The app-facing client socket: `recv` / `send` / `close`, same shape for every transport.
//!
//! The handle and the socket's driver task share one small mutex-guarded state holding the
//! codec `Connection`: a send encodes straight into the codec's output (one copy) and wakes the
//! driver; the driver feeds received bytes to the codec and queues its events for `recv`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;
use h2ws_codec::{CloseCode, Connection, Event};
use tokio::sync::Notify;

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

/// State shared by a [`WebSocket`] handle and its driver.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Wakes the app: events queued, output drained, or the socket ended.
    pub(crate) app: Notify,
    pub(crate) limits: Limits,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) send_buffer: usize,
    pub(crate) recv_queue: usize,
    pub(crate) send_timeout: Duration,
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
    /// The app dropped its handle: the driver closes (1001) and discards events.
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
}

impl State {
    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }
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
                Some(Event::Message(m)) => return Incoming::Message(app_message(m)),
                Some(Event::Fragment {
                    kind,
                    rsv,
                    data,
                    fin,
                }) => {
                    return Incoming::Fragment {
                        kind: app_kind(kind),
                        rsv,
                        data: Bytes::from(data),
                        fin,
                    }
                }
                Some(Event::Closed {
                    code,
                    reason,
                    clean,
                }) => {
                    return Incoming::Closed(CloseStatus {
                        code: code.0,
                        reason,
                        clean,
                    })
                }
                Some(Event::Ping(_) | Event::Pong(_)) => continue,
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
        loop {
            let notified = self.shared().app.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.shared().lock();
                if let Some(ev) = st.events.pop_front() {
                    if st.events.len() + 1 >= self.shared().limits.recv_queue {
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
        let kind = codec_kind(kind);
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
        let st = self.shared().lock();
        st.finished.clone().or_else(|| st.closed.clone())
    }

    /// Queued outgoing bytes (the codec's output not yet handed to the transport).
    pub fn buffered_amount(&self) -> usize {
        self.shared().lock().conn.pending_bytes()
    }

    fn now(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<(), h2ws_codec::SendError>,
    ) -> Result<(), Error> {
        let mut st = self.shared().lock();
        if let Some(s) = st.finished.as_ref().or(st.closed.as_ref()) {
            return Err(Error::Closed { code: s.code });
        }
        f(&mut st.conn)?;
        st.wake_driver();
        Ok(())
    }

    async fn with_room(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<(), h2ws_codec::SendError>,
    ) -> Result<(), Error> {
        let limit = self.shared().limits.send_timeout;
        let wait = async {
            loop {
                let notified = self.shared().app.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let st = self.shared().lock();
                    if st.finished.is_some()
                        || st.conn.pending_bytes() < self.shared().limits.send_buffer
                    {
                        return;
                    }
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| Error::Timeout(limit, "waiting for room in the send buffer"))?;
        self.now(f)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.app_gone = true;
        st.events.clear();
        if st.finished.is_none() && st.conn.state() == h2ws_codec::State::Open {
            let _ = st.conn.close(Some(CloseCode::GOING_AWAY), "");
        }
        st.wake_driver();
    }
}

fn app_message(m: h2ws_codec::Message) -> Message {
    match m {
        h2ws_codec::Message::Text(t) => Message::Text(t),
        h2ws_codec::Message::Binary(b) => Message::Binary(Bytes::from(b)),
    }
}

fn app_kind(k: h2ws_codec::FragmentKind) -> FragmentKind {
    match k {
        h2ws_codec::FragmentKind::Text => FragmentKind::Text,
        h2ws_codec::FragmentKind::Binary => FragmentKind::Binary,
        h2ws_codec::FragmentKind::Continuation => FragmentKind::Continuation,
    }
}

fn codec_kind(k: FragmentKind) -> h2ws_codec::FragmentKind {
    match k {
        FragmentKind::Text => h2ws_codec::FragmentKind::Text,
        FragmentKind::Binary => h2ws_codec::FragmentKind::Binary,
        FragmentKind::Continuation => h2ws_codec::FragmentKind::Continuation,
    }
}
