//! The server's own HTTP/2 connection loop (used by [`Server`](crate::Server)), on the `h2` crate.
//!
//! hyper cannot keep one body chunk = one DATA frame (DESIGN §4), which the `native` mapping
//! needs, so HTTP/2 connections are served here: every request is handed to the axum `Router`
//! as a tower service, with its body streamed from the h2 stream (one chunk per DATA frame,
//! flow-control capacity released only as the body is consumed) and the response body pumped
//! back under flow control. A response marked [`WholeDataFrames`] sends each body chunk as
//! exactly one DATA frame, only once capacity for all of it is granted.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body as _, Frame};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

/// Request extension: the request arrived on this crate's own HTTP/2 loop, so each request
/// body chunk is exactly one DATA frame, and a response marked [`WholeDataFrames`] is honoured.
#[derive(Clone, Copy, Debug)]
pub struct OwnH2Loop {
    /// Largest DATA frame payload the peer is guaranteed to accept. h2 0.4 does not expose the
    /// peer's SETTINGS_MAX_FRAME_SIZE, so this is the protocol minimum every peer accepts.
    pub max_data_frame: usize,
}

/// Response extension: send every body chunk as exactly one DATA frame (the `native` mapping).
#[derive(Clone, Copy, Debug)]
pub struct WholeDataFrames;

/// Request extension: the server loop serving the request honours [`DeferredAnswer`] (this
/// crate's HTTP/2 and HTTP/3 loops; not hyper, not a server of the embedding app's own).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeferredAnswers;

/// The future of an answer still to come.
type AnswerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// Response extension: the real answer is this future's. The loop drops the router's future
/// (which returned this placeholder at once), then sends nothing until the answer resolves,
/// and sends it instead. For an answer that waits as long as a socket lives — a `stream`
/// upstream is answered at its end — that frees what the router's layers allocated for the
/// request (axum boxes a future per layer: 1.6 KiB per socket, measured with heaptrack) for
/// the socket's whole life. Only made for requests marked [`DeferredAnswers`].
///
/// A `Mutex` because response extensions must be `Sync` and `Clone` (an `Arc`); the future is
/// taken once.
#[derive(Clone)]
pub(crate) struct DeferredAnswer(std::sync::Arc<std::sync::Mutex<Option<AnswerFuture>>>);

impl DeferredAnswer {
    /// A placeholder response whose real answer is `answer`'s.
    pub(crate) fn response(
        answer: impl Future<Output = Response<Body>> + Send + 'static,
    ) -> Response<Body> {
        let mut placeholder = Response::new(Body::empty());
        placeholder
            .extensions_mut()
            .insert(DeferredAnswer(std::sync::Arc::new(std::sync::Mutex::new(
                Some(Box::pin(answer)),
            ))));
        placeholder
    }

    /// The real answer of `response`: its deferred one when it carries one, else itself.
    pub(crate) async fn resolve(response: Response<Body>) -> Response<Body> {
        let deferred = response
            .extensions()
            .get::<DeferredAnswer>()
            .and_then(|d| d.0.lock().ok()?.take());
        match deferred {
            Some(answer) => {
                drop(response);
                answer.await
            }
            None => response,
        }
    }
}

/// A response body error that resets the stream with this reason (e.g. PROTOCOL_ERROR after
/// a native Close 1002) instead of INTERNAL_ERROR.
#[derive(Debug, thiserror::Error)]
#[error("reset stream: {0:?}")]
pub struct ResetStream(pub h2::Reason);

/// How long a client may take to send the HTTP/2 preface and SETTINGS.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a deliberate RST_STREAM waits so the frames sent before it are written.
const RESET_GRACE: Duration = Duration::from_millis(50);

/// HTTP/2 settings and limits of the loop.
#[derive(Clone, Debug)]
pub struct H2Settings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS (DESIGN §1: ≥ 1000); streams past it are refused
    /// (RST_STREAM REFUSED_STREAM).
    pub max_concurrent_streams: u32,
    /// Receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE): how far one socket's peer
    /// may send ahead of its app reading, so also what one stalled socket may leave buffered.
    pub stream_window: u32,
    /// Receive window of the connection, shared by its streams: what one connection may leave
    /// buffered at most.
    pub connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload the peer may send (16 KiB to
    /// 16 MiB - 1). Larger than the protocol's 16 KiB minimum so a 16 KiB message with its
    /// WebSocket header is one DATA frame from a peer that uses the room (browsers send at
    /// most 16 KiB either way); h2 buffers a frame whole before decoding it.
    pub max_frame_size: u32,
    /// Longest wait for flow-control capacity for one response chunk.
    pub send_timeout: Duration,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: a larger header block (HEADERS + CONTINUATION, counted
    /// as h2 decodes it) is refused (431 / RST_STREAM) and never buffered whole.
    pub max_header_list_size: u32,
    /// Streams the peer opened and reset before we accepted them, at most (the "rapid reset"
    /// attack, CVE-2023-44487); more → GOAWAY ENHANCE_YOUR_CALM.
    pub max_pending_accept_reset_streams: usize,
    /// Streams we reset because the peer misbehaved on them, at most per connection; more →
    /// GOAWAY ENHANCE_YOUR_CALM.
    pub max_local_error_reset_streams: usize,
    /// Bytes buffered per stream on the way out (h2's send buffer).
    pub max_send_buffer_size: usize,
    /// A connection without any open stream for this long gets GOAWAY; it is closed when the
    /// peer acknowledges, or after at most as long again (10 s at most) if it does not.
    pub idle_timeout: Duration,
}

impl Default for H2Settings {
    /// 1000 streams, 1 MiB stream / 15 MiB connection windows, 64 KiB frames, 30 s send
    /// timeout, 64 KiB header lists, 20 pending-accept resets, 1024 local error resets,
    /// 400 KiB send buffer, 180 s idle timeout.
    ///
    /// The connection window is Chromium's (15 MiB). The stream window is smaller than
    /// Chromium's 6 MiB because here it is also a socket's backpressure bound: 1 MiB lets one
    /// socket upload at ~80 Mbit/s over a 100 ms round trip (256 KiB allowed ~20) while a
    /// stalled socket holds at most 1 MiB, and 15 stalled sockets still leave the connection
    /// room.
    fn default() -> Self {
        H2Settings {
            max_concurrent_streams: 1000,
            stream_window: 1 << 20,
            connection_window: 15 << 20,
            max_frame_size: 64 << 10,
            send_timeout: Duration::from_secs(30),
            max_header_list_size: 64 << 10,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
            max_send_buffer_size: 400 << 10,
            idle_timeout: Duration::from_secs(180),
        }
    }
}

/// A request extension on this loop's requests: drops the HTTP/2 connection that carried the
/// request at once, without GOAWAY — what a network loss or a crashed proxy looks like to
/// every stream on it. For fault demos and tests (the devserver's `/demo/drop-connection`);
/// a request can only drop its own connection.
#[derive(Clone, Debug)]
pub struct ConnectionControl(CancellationToken);

impl ConnectionControl {
    pub fn drop_connection(&self) {
        self.0.cancel();
    }
}

/// Serves one HTTP/2 connection (after TLS with ALPN `h2`, or h2c prior knowledge) until the
/// peer closes it or `shutdown` fires (then GOAWAY, and open streams may finish).
pub async fn serve<IO, S>(
    io: IO,
    service: S,
    peer: SocketAddr,
    settings: H2Settings,
    shutdown: CancellationToken,
) -> Result<(), h2::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let handshake = h2::server::Builder::new()
        .enable_connect_protocol()
        .max_concurrent_streams(settings.max_concurrent_streams)
        .initial_window_size(settings.stream_window)
        .initial_connection_window_size(settings.connection_window)
        .max_frame_size(settings.max_frame_size)
        .max_header_list_size(settings.max_header_list_size)
        .max_pending_accept_reset_streams(settings.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(Some(settings.max_local_error_reset_streams))
        .max_send_buffer_size(settings.max_send_buffer_size)
        .handshake::<_, Bytes>(io);
    let Ok(conn) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await else {
        tracing::debug!(%peer, "no HTTP/2 preface within {HANDSHAKE_TIMEOUT:?}");
        return Ok(());
    };
    let mut conn = conn?;
    let mut shutting_down = false;
    let drop_token = CancellationToken::new();
    // Idle = no open stream; checked a few times per timeout (h2 has no "went idle" signal).
    let idle_timeout = settings.idle_timeout.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(idle_timeout / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_since: Option<tokio::time::Instant> = None;
    // After an idle GOAWAY h2 waits for a PING round trip before closing; a peer that never
    // answers is dropped after this (it has no streams, so nothing is lost).
    let mut idle_close: Option<tokio::time::Instant> = None;
    loop {
        let close_at = idle_close.unwrap_or_else(|| tokio::time::Instant::now() + idle_timeout);
        tokio::select! {
            _ = tokio::time::sleep_until(close_at), if idle_close.is_some() => {
                tracing::debug!(%peer, "idle HTTP/2 connection did not close after GOAWAY: dropped");
                return Ok(());
            }
            _ = tick.tick(), if !shutting_down => {
                if conn.has_streams() {
                    idle_since = None;
                } else if idle_since.get_or_insert_with(tokio::time::Instant::now).elapsed()
                    >= idle_timeout
                {
                    tracing::debug!(%peer, "HTTP/2 connection idle for {idle_timeout:?}: GOAWAY");
                    shutting_down = true;
                    conn.graceful_shutdown();
                    idle_close = Some(
                        tokio::time::Instant::now() + idle_timeout.min(Duration::from_secs(10)),
                    );
                }
            }
            next = conn.accept() => match next {
                Some(Ok((req, respond))) => {
                    // Activity between two idle checks counts too.
                    idle_since = None;
                    tokio::spawn(handle(
                        req,
                        respond,
                        service.clone(),
                        peer,
                        settings.send_timeout,
                        ConnectionControl(drop_token.clone()),
                    ));
                }
                Some(Err(e)) => {
                    if e.is_io() || e.is_go_away() || e.is_remote() {
                        tracing::debug!(%peer, "h2 connection ended: {e}");
                        return Ok(());
                    }
                    return Err(e);
                }
                None => return Ok(()),
            },
            _ = drop_token.cancelled() => {
                tracing::debug!(%peer, "HTTP/2 connection dropped on request");
                return Ok(());
            }
            _ = shutdown.cancelled(), if !shutting_down => {
                shutting_down = true;
                conn.graceful_shutdown();
            }
        }
    }
}

/// Serves one request: the router's answer, then its body pumped onto the stream.
///
/// The task of a stream lives as long as its response body (as long as a socket, for the
/// streaming transports), and a request whose answer waits for its body (a `stream` upstream)
/// waits as long: so the router's future is boxed (freed once the head is sent), and the
/// task itself holds little more than the pump.
fn handle<S>(
    req: Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    service: S,
    peer: SocketAddr,
    send_timeout: Duration,
    control: ConnectionControl,
) -> impl Future<Output = ()> + Send
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let answer = Box::pin(service.oneshot(to_service_request(req, peer, control)));
    async move {
        let Ok(response) = answer.await;
        let response = DeferredAnswer::resolve(response).await;
        if let Some((body, send, whole)) = send_head(response, &mut respond, peer) {
            pump(body, send, whole, send_timeout).await;
        }
    }
}

/// The request as the router sees it: the peer, [`OwnH2Loop`], the `:protocol`
/// pseudo-header under hyper's type too, and the body as a [`RecvBody`].
fn to_service_request(
    req: Request<h2::RecvStream>,
    peer: SocketAddr,
    control: ConnectionControl,
) -> Request<Body> {
    let (mut parts, recv) = req.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    parts.extensions.insert(control);
    parts.extensions.insert(OwnH2Loop {
        max_data_frame: 16_384,
    });
    parts.extensions.insert(DeferredAnswers);
    // Give the `:protocol` pseudo-header to axum/hyper-style code under hyper's type too.
    if let Some(p) = parts.extensions.get::<h2::ext::Protocol>() {
        let proto = hyper::ext::Protocol::from(p.as_str());
        parts.extensions.insert(proto);
    }
    Request::from_parts(parts, Body::new(RecvBody::new(recv)))
}

/// Sends the response head; the body and stream to pump next, unless the response ended
/// with its head (or the stream is gone).
fn send_head(
    response: Response<Body>,
    respond: &mut h2::server::SendResponse<Bytes>,
    peer: SocketAddr,
) -> Option<(Body, h2::SendStream<Bytes>, bool)> {
    let (mut head, body) = response.into_parts();
    let whole = head.extensions.remove::<WholeDataFrames>().is_some();
    strip_connection_headers(&mut head.headers);
    let end = body.is_end_stream();
    match respond.send_response(Response::from_parts(head, ()), end) {
        Ok(send) => (!end).then_some((body, send, whole)),
        Err(e) => {
            tracing::debug!(%peer, "sending response headers: {e}");
            None
        }
    }
}

/// Headers that are illegal in HTTP/2 (RFC 9113 §8.2.2).
fn strip_connection_headers(headers: &mut HeaderMap) {
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

/// Copies a response body onto the stream under flow control until it ends, errors, the peer
/// resets the stream, or a wait for capacity times out. A chunk is sent whole as one DATA frame
/// once capacity for all of it is granted (`whole`, the native mapping), or else in pieces as
/// capacity comes; each wait for capacity is bounded by `timeout`.
///
/// A hand-written future rather than an `async fn`: it is what a stream's task holds for as
/// long as its socket lives, so it keeps only the body, the stream, the chunk being sent and,
/// while waiting, a boxed deadline (about 100 bytes, where the `async` version took 600).
struct Pump {
    body: Body,
    send: h2::SendStream<Bytes>,
    whole: bool,
    timeout: Duration,
    /// The chunk (or its rest) waiting for flow-control capacity; empty = none.
    data: Bytes,
    /// The deadline of the current wait for capacity.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The body failed: the stream is reset with this reason after [`RESET_GRACE`].
    resetting: Option<(h2::Reason, Pin<Box<tokio::time::Sleep>>)>,
}

fn pump(body: Body, send: h2::SendStream<Bytes>, whole: bool, timeout: Duration) -> Pump {
    Pump {
        body,
        send,
        whole,
        timeout,
        data: Bytes::new(),
        deadline: None,
        resetting: None,
    }
}

impl Pump {
    /// Sends `data` as capacity allows; `Ready(Ok)` once all of it is sent.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), h2::Reason>> {
        loop {
            if self.data.is_empty() {
                return Poll::Ready(Ok(()));
            }
            self.send.reserve_capacity(self.data.len());
            let cap = self.send.capacity();
            let enough = if self.whole {
                cap >= self.data.len()
            } else {
                cap > 0
            };
            if enough {
                self.deadline = None;
                let piece = if self.whole {
                    std::mem::take(&mut self.data)
                } else {
                    self.data.split_to(cap.min(self.data.len()))
                };
                self.send
                    .send_data(piece, false)
                    .map_err(|_| h2::Reason::CANCEL)?;
                continue;
            }
            match self.send.poll_capacity(cx) {
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(Err(h2::Reason::CANCEL)),
                Poll::Pending => {}
            }
            let timeout = self.timeout;
            let deadline = self
                .deadline
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
            if deadline.as_mut().poll(cx).is_ready() {
                tracing::debug!(
                    "no flow-control capacity for {} bytes within {timeout:?}",
                    self.data.len()
                );
                return Poll::Ready(Err(h2::Reason::CANCEL));
            }
            return Poll::Pending;
        }
    }
}

impl Future for Pump {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if let Some((reason, grace)) = this.resetting.as_mut() {
                // h2 drops DATA still queued on a stream it resets, and the frame just sent
                // (a Close 1002) must reach the peer first: give the connection task a moment
                // to write it. h2 0.4 has no "flushed" signal for a stream.
                ready!(grace.as_mut().poll(cx));
                this.send.send_reset(*reason);
                return Poll::Ready(());
            }
            if let Err(reason) = ready!(this.poll_send(cx)) {
                this.send.send_reset(reason);
                return Poll::Ready(());
            }
            if let Poll::Ready(reason) = this.send.poll_reset(cx) {
                tracing::debug!("peer reset the response stream: {reason:?}");
                return Poll::Ready(());
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                None => {
                    let _ = this.send.send_data(Bytes::new(), true);
                    return Poll::Ready(());
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.data = data,
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            let _ = this.send.send_trailers(trailers);
                        } else {
                            let _ = this.send.send_data(Bytes::new(), true);
                        }
                        return Poll::Ready(());
                    }
                },
                Some(Err(e)) => {
                    let reason = reset_reason(&e).unwrap_or(h2::Reason::INTERNAL_ERROR);
                    let grace = Box::pin(tokio::time::sleep(RESET_GRACE));
                    this.resetting = Some((reason, grace));
                }
            }
        }
    }
}

/// The [`ResetStream`] reason somewhere in a body error's source chain (axum wraps errors).
fn reset_reason(e: &axum::Error) -> Option<h2::Reason> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<ResetStream>() {
            return Some(r.0);
        }
        cur = err.source();
    }
    None
}

/// A request body read from an h2 stream: one chunk per DATA frame; flow-control capacity is
/// released when a chunk is handed to the consumer, so a consumer that stops reading stops
/// the peer (backpressure) once the stream window is used up.
pub struct RecvBody {
    recv: h2::RecvStream,
    data_done: bool,
}

impl RecvBody {
    fn new(recv: h2::RecvStream) -> Self {
        RecvBody {
            recv,
            data_done: false,
        }
    }
}

impl http_body::Body for RecvBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        if !this.data_done {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => this.data_done = true,
            }
        }
        match ready!(this.recv.poll_trailers(cx)) {
            Ok(Some(t)) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deferred_answer_replaces_its_placeholder_when_it_resolves() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let placeholder = DeferredAnswer::response(async move {
            // The answer waits (as a `stream` upstream's does, for its body's end).
            let _ = rx.await;
            let mut res = Response::new(Body::empty());
            *res.status_mut() = http::StatusCode::CONFLICT;
            res
        });
        assert_eq!(placeholder.status(), http::StatusCode::OK);
        let resolving = tokio::spawn(DeferredAnswer::resolve(placeholder));
        tokio::task::yield_now().await;
        assert!(
            !resolving.is_finished(),
            "the answer is sent only once it resolves"
        );
        tx.send(()).unwrap();
        let answer = resolving.await.unwrap();
        assert_eq!(answer.status(), http::StatusCode::CONFLICT);
    }

    #[tokio::test]
    async fn a_response_without_a_deferred_answer_is_sent_as_it_is() {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = http::StatusCode::NO_CONTENT;
        let answer = DeferredAnswer::resolve(res).await;
        assert_eq!(answer.status(), http::StatusCode::NO_CONTENT);
    }
}
