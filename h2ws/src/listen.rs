//! Listeners: accept TCP connections, then by ALPN (TLS) or by sniffing the HTTP/2 preface
//! (plain, h2c prior knowledge) hand each one to the own HTTP/2 loop or to hyper's HTTP/1.1.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::h2conn::{self, H2Settings};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Request-head limits of HTTP/1.1 connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Http1Limits {
    /// Most header fields in one request (more → 431).
    pub max_headers: usize,
    /// Largest request head, bytes (hyper's read buffer; larger → 431). At least 8 KiB.
    pub max_head_bytes: usize,
}

/// What a listener needs to serve connections.
#[derive(Clone)]
pub(crate) struct Serving {
    pub router: Router,
    pub h2: H2Settings,
    pub http1: Http1Limits,
    pub shutdown: CancellationToken,
    pub connections: TaskTracker,
}

/// The router with `Alt-Svc: h3=":PORT"; ma=86400` on every response: how a browser learns
/// that the origin speaks HTTP/3 (RFC 9114 §3.1.1); it switches on a later connection.
pub(crate) fn with_alt_svc(router: Router, port: u16) -> Router {
    let value = http::HeaderValue::from_str(&format!("h3=\":{port}\"; ma=86400"))
        .expect("a port number makes a valid header value");
    router.layer(tower::util::MapResponseLayer::new(
        move |mut response: axum::response::Response| {
            response
                .headers_mut()
                .entry(http::header::ALT_SVC)
                .or_insert_with(|| value.clone());
            response
        },
    ))
}

/// Accepts TLS connections until shutdown.
pub(crate) async fn run_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    serving: Serving,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    accept_loop(listener, serving, move |tcp, peer, serving| {
        let acceptor = acceptor.clone();
        async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let is_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            if is_h2 {
                serve_h2(tls, peer, serving).await
            } else {
                serve_http1(tls, peer, serving).await
            }
        }
    })
    .await
}

/// Accepts plain connections (HTTP/1.1, or h2c with prior knowledge) until shutdown.
pub(crate) async fn run_plain(listener: TcpListener, serving: Serving) {
    accept_loop(listener, serving, |mut tcp, peer, serving| async move {
        let mut head = Vec::with_capacity(PREFACE.len());
        let sniff = async {
            while head.len() < PREFACE.len() && PREFACE.starts_with(&head) {
                let mut byte = [0u8; 24];
                let want = PREFACE.len() - head.len();
                let n = tcp.read(&mut byte[..want]).await?;
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&byte[..n]);
            }
            io::Result::Ok(())
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, sniff).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        let is_h2 = head == PREFACE;
        let io = Rewind::new(head, tcp);
        if is_h2 {
            serve_h2(io, peer, serving).await
        } else {
            serve_http1(io, peer, serving).await
        }
    })
    .await
}

async fn accept_loop<F, Fut>(listener: TcpListener, serving: Serving, handle: F)
where
    F: Fn(TcpStream, SocketAddr, Serving) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = serving.shutdown.cancelled() => return,
        };
        let _ = tcp.set_nodelay(true);
        serving
            .connections
            .spawn(handle(tcp, peer, serving.clone()));
    }
}

async fn serve_h2<IO>(io: IO, peer: SocketAddr, serving: Serving)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Err(e) = h2conn::serve(io, serving.router, peer, serving.h2, serving.shutdown).await {
        tracing::debug!(%peer, "HTTP/2 connection error: {e}");
    }
}

async fn serve_http1<IO>(io: IO, peer: SocketAddr, serving: Serving)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let router = serving.router.clone();
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.oneshot(req).await.unwrap_or_else(|e| match e {})) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_headers(serving.http1.max_headers)
        .max_buf_size(serving.http1.max_head_bytes.max(8192))
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r { tracing::debug!(%peer, "HTTP/1.1 connection: {e}") },
        _ = serving.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// An IO that first replays bytes already read (the sniffed preface).
struct Rewind<T> {
    head: Vec<u8>,
    pos: usize,
    inner: T,
}

impl<T> Rewind<T> {
    fn new(head: Vec<u8>, inner: T) -> Self {
        Rewind {
            head,
            pos: 0,
            inner,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.head.len() {
            let n = (self.head.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.head[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
