//! The server's HTTP/3 loop (used by [`Server`](crate::Server)), on `quinn` + `h3` + `h3-quinn`.
//!
//! Like the HTTP/2 loop ([`h2conn`](crate::h2conn)), every request is handed to the same axum
//! `Router` as a tower service, with its body streamed from the QUIC stream (QUIC flow-control
//! credit is released only as the body is consumed, so a socket that stops reading stops its
//! peer) and the response body sent chunk by chunk, each chunk one HTTP/3 DATA frame written
//! only as QUIC flow control allows. So the fetch transports (`stream`, `post`), fetch
//! sessions, static files and stats work over HTTP/3 unchanged; a socket's open and its
//! upstream requests may even arrive on different HTTP versions (sessions are keyed by token).
//!
//! Not over HTTP/3: the `native` mapping and RFC 9220 extended CONNECT. `h3` 0.0.8 only
//! parses the `:protocol` values `webtransport` and `connect-udp` (a `websocket` CONNECT is a
//! malformed request to it, answered with H3_MESSAGE_ERROR before it reaches this loop), and it
//! splits received DATA frames at QUIC packet boundaries, so "one WebSocket frame per DATA
//! frame" cannot be read back; such requests carry no [`OwnH2Loop`](crate::h2conn::OwnH2Loop)
//! marker and the transports refuse them as they do on hyper's HTTP/2.
//!
//! Bounds: at most [`H3Settings::max_concurrent_streams`] request streams at once (QUIC
//! MAX_STREAMS, the peer cannot exceed it), stream and connection receive windows, a header
//! section limit, a frame-length guard (see the private `guard` module) so no frame other than DATA is
//! buffered past the header limit, a handshake timeout, a send timeout and the QUIC idle
//! timeout. A connection that ends (close, idle timeout, the peer gone) ends the response
//! bodies of its streams, so its sockets end as they do when an HTTP/2 connection drops.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::{Buf, Bytes};
use http::{HeaderMap, Request, Response};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::{Service, ServiceExt};

use crate::h2conn::{DeferredAnswer, DeferredAnswers, WholeDataFrames};

pub(crate) mod guard;

/// How long a client may take for the QUIC handshake, and to send a request's headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a deliberate stream reset waits so the DATA frames sent before it are written.
const RESET_GRACE: Duration = Duration::from_millis(50);

/// HTTP/3 and QUIC limits of the loop.
#[derive(Clone, Debug)]
pub struct H3Settings {
    /// QUIC max concurrent bidirectional streams = HTTP/3 requests at once per connection.
    /// The browser library needs two per `stream` socket (open + upstream) and one, plus a
    /// short-lived batch, per `post` socket; its per-origin cap of 100 sockets needs ≤ 200.
    /// Past it the peer cannot open a stream (QUIC flow control: Chromium queues the request).
    pub max_concurrent_streams: u32,
    /// Per-stream receive window (bytes the peer may send before the body is read).
    pub stream_window: u32,
    /// Connection receive window (all streams together).
    pub connection_window: u32,
    /// Bytes queued for sending per connection (quinn's send window).
    pub send_window: u64,
    /// Longest wait for the peer to take one response chunk (flow control).
    pub send_timeout: Duration,
    /// Largest request header section (SETTINGS_MAX_FIELD_SECTION_SIZE); larger → 431, and a
    /// HEADERS frame longer than it plus 1 KiB resets the stream unread.
    pub max_field_section_size: u32,
    /// QUIC idle timeout: a connection with no packets for this long is dropped (an open
    /// socket pings every 30 s, so only dead peers and idle connections hit it).
    pub idle_timeout: Duration,
    /// Most QUIC connections at once; further handshakes are refused.
    pub max_connections: usize,
}

impl Default for H3Settings {
    /// 1000 streams, 256 KiB stream / 8 MiB connection windows, 8 MiB send window, 30 s send
    /// timeout, 64 KiB header sections, 90 s idle timeout, 10 000 connections.
    fn default() -> Self {
        H3Settings {
            max_concurrent_streams: 1000,
            stream_window: 256 << 10,
            connection_window: 8 << 20,
            send_window: 8 << 20,
            send_timeout: Duration::from_secs(30),
            max_field_section_size: 64 << 10,
            idle_timeout: Duration::from_secs(90),
            max_connections: 10_000,
        }
    }
}

/// Why the HTTP/3 listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum H3Error {
    #[error("the TLS config cannot be used for QUIC: {0}")]
    Crypto(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    #[error("QUIC idle timeout out of range: {0}")]
    IdleTimeout(#[from] quinn::VarIntBoundsExceeded),
}

/// The quinn server config: the rustls config (ALPN `h3`, TLS 1.3) and the transport limits.
pub(crate) fn server_config(
    tls: Arc<rustls::ServerConfig>,
    settings: &H3Settings,
) -> Result<quinn::ServerConfig, H3Error> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(settings.max_concurrent_streams.into())
        // The peer's control and QPACK streams (3), plus room for reserved/grease types.
        .max_concurrent_uni_streams(16u32.into())
        .stream_receive_window(settings.stream_window.into())
        .receive_window(settings.connection_window.into())
        .send_window(settings.send_window)
        .max_idle_timeout(Some(settings.idle_timeout.try_into()?));
    server.transport_config(Arc::new(transport));
    Ok(server)
}

/// Accepts QUIC connections on `endpoint` until `shutdown`, serving each with HTTP/3.
pub(crate) async fn run<S>(
    endpoint: quinn::Endpoint,
    service: S,
    settings: H3Settings,
    shutdown: CancellationToken,
    connections: TaskTracker,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let open = Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => return,
            },
            _ = shutdown.cancelled() => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::debug!(peer = %incoming.remote_address(), "too many QUIC connections: refused");
            incoming.refuse();
            continue;
        };
        let service = service.clone();
        let settings = settings.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let peer = incoming.remote_address();
            if let Err(e) = serve(incoming, service, settings, shutdown).await {
                tracing::debug!(%peer, "HTTP/3 connection: {e}");
            }
            drop(permit);
        });
    }
    // Connections got GOAWAY from their own tasks; give them a moment, then close the rest.
    let _ = tokio::time::timeout(Duration::from_secs(5), endpoint.wait_idle()).await;
    endpoint.close(0u32.into(), b"server shutdown");
}

/// Why one HTTP/3 connection ended abnormally.
#[derive(Debug, thiserror::Error)]
enum ConnectionEnd {
    #[error("QUIC handshake timed out")]
    HandshakeTimeout,
    #[error("QUIC handshake: {0}")]
    Handshake(#[from] quinn::ConnectionError),
    #[error("HTTP/3: {0}")]
    H3(#[from] h3::error::ConnectionError),
}

async fn serve<S>(
    incoming: quinn::Incoming,
    service: S,
    settings: H3Settings,
    shutdown: CancellationToken,
) -> Result<(), ConnectionEnd>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let peer = incoming.remote_address();
    let connecting = incoming.accept()?;
    let quic = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
        .await
        .map_err(|_| ConnectionEnd::HandshakeTimeout)??;
    let guarded = guard::Connection::new(
        h3_quinn::Connection::new(quic.clone()),
        settings.max_field_section_size as usize + 1024,
    );
    let mut conn = h3::server::builder()
        .max_field_section_size(settings.max_field_section_size.into())
        .build::<_, Bytes>(guarded)
        .await?;
    let mut shutting_down = false;
    loop {
        let resolver = tokio::select! {
            next = conn.accept() => match next {
                Ok(Some(resolver)) => resolver,
                Ok(None) => return Ok(()),
                Err(e) if e.is_h3_no_error() => return Ok(()),
                Err(e) => {
                    tracing::debug!(%peer, "HTTP/3 connection ended: {e}");
                    return Ok(());
                }
            },
            _ = shutdown.cancelled(), if !shutting_down => {
                shutting_down = true;
                // GOAWAY: requests in flight finish, new ones are refused.
                if let Err(e) = conn.shutdown(0).await {
                    tracing::debug!(%peer, "HTTP/3 GOAWAY: {e}");
                    return Ok(());
                }
                continue;
            }
        };
        let service = service.clone();
        let quic = quic.clone();
        let send_timeout = settings.send_timeout;
        tokio::spawn(async move {
            let resolved =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, resolver.resolve_request()).await;
            match resolved {
                Ok(Ok((req, stream))) => {
                    handle(req, stream, service, peer, quic, send_timeout).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, "HTTP/3 request refused: {e}"),
                Err(_) => tracing::debug!(%peer, "HTTP/3 request headers timed out"),
            }
        });
    }
}

type QuicStream = guard::BidiStream<h3_quinn::BidiStream<Bytes>>;
type RequestStream<S> = h3::server::RequestStream<S, Bytes>;

async fn handle<S>(
    req: Request<()>,
    stream: RequestStream<QuicStream>,
    service: S,
    peer: SocketAddr,
    quic: quinn::Connection,
    send_timeout: Duration,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let (mut send, recv) = stream.split();
    let (mut parts, ()) = req.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    parts.extensions.insert(DeferredAnswers);
    let req = Request::from_parts(parts, Body::new(RecvBody { recv, done: false }));
    let response = tokio::select! {
        response = service.oneshot(req) => match response { Ok(r) => r, Err(e) => match e {} },
        _ = quic.closed() => return,
    };
    let response = tokio::select! {
        response = DeferredAnswer::resolve(response) => response,
        _ = quic.closed() => return,
    };
    let (mut head, body) = response.into_parts();
    // Each chunk is one DATA frame here anyway; the marker means nothing more on HTTP/3.
    head.extensions.remove::<WholeDataFrames>();
    strip_connection_headers(&mut head.headers);
    match tokio::time::timeout(
        send_timeout,
        send.send_response(Response::from_parts(head, ())),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return tracing::debug!(%peer, "sending HTTP/3 response headers: {e}"),
        Err(_) => return send.stop_stream(h3::error::Code::H3_REQUEST_CANCELLED),
    }
    tokio::select! {
        () = pump(body, &mut send, send_timeout) => {}
        // The connection is gone: drop the body so the socket behind it ends.
        _ = quic.closed() => {}
    }
}

/// Headers that are illegal in HTTP/3 as in HTTP/2 (RFC 9114 §4.2).
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

/// Copies a response body onto the stream, one DATA frame per chunk, until it ends, errors,
/// the peer stops the stream, or a write waits for flow control longer than `timeout`.
async fn pump<S>(mut body: Body, send: &mut RequestStream<S>, timeout: Duration)
where
    S: h3::quic::SendStream<Bytes>,
{
    loop {
        match body.frame().await {
            None => {
                let _ = tokio::time::timeout(timeout, send.finish()).await;
                return;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if data.is_empty() => {}
                Ok(data) => match tokio::time::timeout(timeout, send.send_data(data)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return tracing::debug!("HTTP/3 response body: {e}"),
                    Err(_) => {
                        tracing::debug!("no HTTP/3 flow-control credit within {timeout:?}");
                        return send.stop_stream(h3::error::Code::H3_REQUEST_CANCELLED);
                    }
                },
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let _ = tokio::time::timeout(timeout, send.send_trailers(trailers)).await;
                    }
                    let _ = tokio::time::timeout(timeout, send.finish()).await;
                    return;
                }
            },
            Some(Err(e)) => {
                tracing::debug!("HTTP/3 response body failed: {e}");
                // quinn drops data still queued on a stream it resets: let the last frame out.
                tokio::time::sleep(RESET_GRACE).await;
                return send.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
            }
        }
    }
}

/// A request body read from an HTTP/3 stream. QUIC credit for more data is granted only as
/// chunks are taken from here, so a consumer that stops reading stops the peer once the
/// stream window is used up.
struct RecvBody<S> {
    recv: RequestStream<S>,
    done: bool,
}

impl<S> http_body::Body for RecvBody<S>
where
    S: h3::quic::RecvStream + Unpin,
{
    type Data = Bytes;
    type Error = h3::error::StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.recv.poll_recv_data(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(mut chunk))) => {
                let data = chunk.copy_to_bytes(chunk.remaining());
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Ok(None)) => {
                // Trailers, if any, mean nothing to the transports.
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
