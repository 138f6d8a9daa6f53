//! The integration tests' fixture (h2ws/tests, and through a `#[path]` module devserver/tests):
//! a server in-process on 127.0.0.1 ephemeral ports, HTTP/2 clients (TLS with ALPN, h2c), and
//! [`Peer`], a frame-level WebSocket client on the `h2` crate + the codec for the `native`,
//! `rfc8441`, `stream` and `post` transports. Nothing here knows the devserver: its tests add
//! their apps and certificate on top (devserver/tests/common).
#![allow(dead_code)]

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2ws::{RunningServer, Server, SocketConfig};
use h2ws_codec::handshake::fetch;
use h2ws_codec::post::{PostLimits, PostSender};
use h2ws_codec::{CloseCode, Config, Connection, Event, Framing, Message, Role};
use http::{Method, Request, StatusCode};
use tokio::net::TcpStream;

/// Longest any single wait in a test may take.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A self-signed certificate for localhost, made once per test binary.
pub fn identity() -> h2ws::Identity {
    static IDENTITY: std::sync::OnceLock<h2ws::Identity> = std::sync::OnceLock::new();
    IDENTITY
        .get_or_init(|| {
            let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            let rcgen::CertifiedKey { cert, key_pair } =
                rcgen::generate_simple_self_signed(names).expect("test certificate");
            h2ws::Identity::from_pem(cert.pem().as_bytes(), key_pair.serialize_pem().as_bytes())
                .expect("test identity")
        })
        .clone()
}

/// A server on 127.0.0.1:0 (TLS with `identity` and plain) with `config`; no routes yet.
pub fn server_with(identity: h2ws::Identity, config: SocketConfig) -> Server {
    Server::new()
        .tls_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .http_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .tls_identity(identity)
        .socket_config(config)
}

/// [`server_with`] the test certificate.
pub fn server(config: SocketConfig) -> Server {
    server_with(identity(), config)
}

/// [`server`], started.
pub async fn start(config: SocketConfig) -> RunningServer {
    server(config).start().await.expect("server starts")
}

/// [`TestServer::start`] on [`server`]`(config)`: the usual test setup in one call.
pub async fn test_server(config: SocketConfig) -> TestServer {
    TestServer::start(server(config)).await
}

/// The setup a server test starts with: the started server, an HTTP/2 client connection to its
/// TLS listener (ALPN h2) and that listener's authority. `shutdown` is the teardown.
pub struct TestServer {
    pub server: RunningServer,
    pub h2: SendRequest<Bytes>,
    /// `127.0.0.1:PORT` of the TLS listener.
    pub authority: String,
}

impl TestServer {
    /// Starts `server` (e.g. [`server`] plus routes) and connects the client.
    pub async fn start(server: Server) -> TestServer {
        let server = server.start().await.expect("server starts");
        let h2 = h2_tls(server.tls_addr().expect("a TLS listener")).await;
        let authority = tls_authority(&server);
        TestServer {
            server,
            h2,
            authority,
        }
    }

    /// Opens a socket on `path` with the test client.
    pub async fn open(&self, path: &str, kind: Kind) -> Result<Peer, Refused> {
        Peer::open(&self.h2, &self.authority, path, kind).await
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await
    }

    /// `(server, h2, authority)`, for a test that names them itself.
    pub fn parts(self) -> (RunningServer, SendRequest<Bytes>, String) {
        (self.server, self.h2, self.authority)
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Accepts any server certificate (tests talk to their own self-signed server).
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub fn tls_client_config(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

pub async fn tls_connect(
    addr: SocketAddr,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let connector = tokio_rustls::TlsConnector::from(tls_client_config(alpn));
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    connector.connect(name, tcp).await.expect("tls handshake")
}

/// An HTTP/2 client connection over TLS (ALPN h2); the connection task runs in the background.
pub async fn h2_tls(addr: SocketAddr) -> SendRequest<Bytes> {
    let tls = tls_connect(addr, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    h2_handshake(tls).await
}

/// An HTTP/2 client connection with prior knowledge on the plain listener.
pub async fn h2c(addr: SocketAddr) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    h2_handshake(tcp).await
}

async fn h2_handshake<IO>(io: IO) -> SendRequest<Bytes>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(8 << 20)
        .handshake::<_, Bytes>(io)
        .await
        .expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let send = send.ready().await.expect("h2 ready");
    // Let the server's SETTINGS arrive (ENABLE_CONNECT_PROTOCOL is needed for RFC 8441).
    for _ in 0..100 {
        if send.is_extended_connect_protocol_enabled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    send
}

/// A transport the [`Peer`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Native,
    Rfc8441,
    Stream,
    Post,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Native, Kind::Rfc8441, Kind::Stream, Kind::Post];
}

enum Up {
    H2(h2::SendStream<Bytes>),
    Post {
        sr: SendRequest<Bytes>,
        uri: String,
        token: String,
        /// The codec's batching rules; one batch in flight, one unit per batch (each write is
        /// answered before the next), so tests see every batch's status in order.
        sender: PostSender,
    },
}

/// A refused open: status and body.
#[derive(Debug)]
pub struct Refused {
    pub status: StatusCode,
    pub body: String,
}

/// A frame-level test client.
pub struct Peer {
    pub kind: Kind,
    pub conn: Connection,
    up: Up,
    down: h2::RecvStream,
    /// Response headers of the open.
    pub headers: http::HeaderMap,
    /// Native: every DATA frame received, as received.
    pub data_frames: Vec<Bytes>,
    /// Set when the server reset the downstream stream.
    pub reset: Option<h2::Reason>,
    pub down_ended: bool,
    /// Post: the status of every batch sent.
    pub post_statuses: Vec<StatusCode>,
    /// Stream: the upstream request's response, not awaited by the peer itself.
    pub upstream_response: Option<h2::client::ResponseFuture>,
}

/// Extra request headers for [`Peer::open_with`].
pub type Headers<'a> = &'a [(&'a str, &'a str)];

async fn read_body(mut body: h2::RecvStream) -> String {
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Peer {
    pub async fn open(
        sr: &SendRequest<Bytes>,
        authority: &str,
        path: &str,
        kind: Kind,
    ) -> Result<Peer, Refused> {
        Self::open_with(sr, authority, path, kind, &[]).await
    }

    pub async fn open_with(
        sr: &SendRequest<Bytes>,
        authority: &str,
        path: &str,
        kind: Kind,
        headers: Headers<'_>,
    ) -> Result<Peer, Refused> {
        let mut sr = sr.clone().ready().await.expect("ready");
        let (method, uri) = match kind {
            Kind::Native => (Method::GET, format!("wss://{authority}{path}")),
            Kind::Rfc8441 => (Method::CONNECT, format!("https://{authority}{path}")),
            Kind::Stream | Kind::Post => (Method::POST, format!("https://{authority}{path}")),
        };
        let mut req = Request::builder().method(method).uri(&uri);
        if matches!(kind, Kind::Stream | Kind::Post) {
            req = req.header("h2ws-version", "1");
        }
        if kind == Kind::Rfc8441 {
            req = req.extension(h2::ext::Protocol::from("websocket"));
            if !headers.iter().any(|(k, _)| *k == "sec-websocket-version") {
                req = req.header("sec-websocket-version", "13");
            }
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(()).expect("request");
        let end = matches!(kind, Kind::Stream | Kind::Post);
        let (resp, send) = sr.send_request(req, end).expect("send_request");
        let resp = tokio::time::timeout(LIMIT, resp)
            .await
            .expect("open answered in time")
            .expect("open response");
        let (parts, down) = resp.into_parts();
        if parts.status != StatusCode::OK {
            return Err(Refused {
                status: parts.status,
                body: read_body(down).await,
            });
        }
        let framing = match kind {
            Kind::Native => Framing::Native,
            Kind::Rfc8441 => Framing::Rfc6455,
            Kind::Stream | Kind::Post => Framing::Stream,
        };
        let mut conn = Connection::new(Role::Client, framing, Config::default());
        if framing == Framing::Rfc6455 {
            conn = conn.with_mask_seed([7; 32]);
        }
        let mut upstream_response = None;
        let up = match kind {
            Kind::Native | Kind::Rfc8441 => Up::H2(send),
            Kind::Stream | Kind::Post => {
                let token = parts
                    .headers
                    .get("h2ws-session")
                    .expect("h2ws-session header")
                    .to_str()
                    .expect("token is text")
                    .to_string();
                if kind == Kind::Stream {
                    let req = Request::post(&uri)
                        .header("h2ws-session", &token)
                        .body(())
                        .expect("request");
                    let mut sr = sr.clone().ready().await.expect("ready");
                    let (resp, send) = sr.send_request(req, false).expect("upstream");
                    upstream_response = Some(resp);
                    Up::H2(send)
                } else {
                    Up::Post {
                        sr: sr.clone(),
                        uri,
                        token,
                        sender: PostSender::new(PostLimits {
                            max_in_flight: 1,
                            ..PostLimits::default()
                        }),
                    }
                }
            }
        };
        let mut peer = Peer {
            kind,
            conn,
            up,
            down,
            headers: parts.headers,
            data_frames: Vec::new(),
            reset: None,
            down_ended: false,
            post_statuses: Vec::new(),
            upstream_response,
        };
        if matches!(kind, Kind::Stream | Kind::Post) {
            // The open response's body starts at once with the open preamble (an empty Pong):
            // checked here for every fetch open, then out of the tests' way.
            let first = peer.next_event_within(LIMIT).await;
            assert!(
                matches!(&first, Some(Event::Pong(p)) if p.is_empty()),
                "fetch open: the body must start with the open preamble (empty Pong), got {first:?}"
            );
        }
        Ok(peer)
    }

    /// Writes everything the codec has queued.
    pub async fn flush(&mut self) {
        while let Some(unit) = self.conn.poll_transmit() {
            self.write_raw(Bytes::from(unit)).await;
        }
    }

    /// Writes bytes as they are: one DATA frame for native (with capacity for all of it),
    /// a chunk of the byte stream otherwise, one batch for post.
    pub async fn write_raw(&mut self, unit: Bytes) {
        match &mut self.up {
            Up::H2(send) => {
                // Native: one DATA frame, sent only with capacity for all of it. Byte streams:
                // pieces as capacity comes.
                let whole = self.kind == Kind::Native;
                let mut rest = unit;
                while !rest.is_empty() {
                    send.reserve_capacity(rest.len());
                    let want = if whole { rest.len() } else { 1 };
                    tokio::time::timeout(LIMIT, async {
                        while send.capacity() < want {
                            match poll_fn(|cx| send.poll_capacity(cx)).await {
                                Some(Ok(_)) => {}
                                _ => return,
                            }
                        }
                    })
                    .await
                    .expect("send capacity in time");
                    let n = if whole {
                        rest.len()
                    } else {
                        send.capacity().min(rest.len())
                    };
                    if n == 0 {
                        return; // stream gone
                    }
                    if send.send_data(rest.split_to(n), false).is_err() {
                        return;
                    }
                }
            }
            Up::Post {
                sr,
                uri,
                token,
                sender,
            } => {
                sender.push(&unit, unit.len()).expect("nothing waits");
                let batch = sender.poll_batch().expect("nothing in flight");
                let mut req = Request::post(uri.as_str());
                for (name, value) in fetch::upstream_request_headers(token, Some(batch.seq)) {
                    req = req.header(name, value);
                }
                let req = req.body(()).expect("request");
                let unit = Bytes::from(batch.bytes);
                let mut sr = sr.clone().ready().await.expect("ready");
                let (resp, mut send) = sr.send_request(req, false).expect("batch");
                send.reserve_capacity(unit.len());
                let _ = send.send_data(unit, true);
                let resp = tokio::time::timeout(LIMIT, resp)
                    .await
                    .expect("batch answered")
                    .expect("batch response");
                // After the server ended the session (e.g. on a protocol error) a batch carrying
                // our Close echo is answered 410: that is for the caller to check.
                let _ = sender.on_answer(batch.seq, resp.status().as_u16());
                self.post_statuses.push(resp.status());
            }
        }
    }

    /// The reason the server reset our upstream request stream (native, rfc8441, stream) with,
    /// if it does within `wait`; `None` = no RST_STREAM (a stream that ended both ways cleanly
    /// is closed and cannot be reset any more).
    pub async fn upstream_reset_within(&mut self, wait: Duration) -> Option<h2::Reason> {
        let Up::H2(send) = &mut self.up else {
            return None;
        };
        match tokio::time::timeout(wait, poll_fn(|cx| send.poll_reset(cx))).await {
            Ok(Ok(reason)) => Some(reason),
            _ => None,
        }
    }

    /// Ends the upstream (END_STREAM on native/rfc8441/stream).
    pub fn end_upstream(&mut self) {
        if let Up::H2(send) = &mut self.up {
            let _ = send.send_data(Bytes::new(), true);
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.conn.send_text(text).expect("send_text");
        self.flush().await;
    }

    pub async fn send_binary(&mut self, data: &[u8]) {
        self.conn.send_binary(data).expect("send_binary");
        self.flush().await;
    }

    pub async fn close(&mut self, code: u16, reason: &str) {
        self.conn
            .close(Some(CloseCode(code)), reason)
            .expect("close");
        self.flush().await;
    }

    /// The next event (answering pings and echoing a Close on the way).
    pub async fn next_event(&mut self) -> Event {
        self.next_event_within(LIMIT)
            .await
            .expect("an event in time")
    }

    /// Like [`next_event`](Self::next_event) with a custom limit; `None` on timeout. Only the
    /// wait for incoming data is cut short, never a write (a cancelled `post` batch would
    /// leave a gap in the sequence).
    pub async fn next_event_within(&mut self, limit: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            self.flush().await;
            if let Some(ev) = self.conn.poll_event() {
                self.flush().await;
                return Some(ev);
            }
            if self.down_ended {
                self.conn.recv_eof();
                continue;
            }
            let next = tokio::time::timeout_at(deadline, self.down.data())
                .await
                .ok()?;
            match next {
                Some(Ok(chunk)) => {
                    let _ = self.down.flow_control().release_capacity(chunk.len());
                    if self.kind == Kind::Native {
                        assert!(
                            chunk.len() <= 16_384,
                            "native DATA frame of {} bytes exceeds the max frame size",
                            chunk.len()
                        );
                        self.data_frames.push(chunk.clone());
                    }
                    // Native: each DATA frame is exactly one valid frame (the codec's unit).
                    self.conn.recv(&chunk).expect("valid frames");
                }
                Some(Err(e)) => {
                    self.reset = e.reason();
                    self.down_ended = true;
                }
                None => self.down_ended = true,
            }
        }
    }

    /// The next whole message; panics on anything else but pings/pongs.
    pub async fn recv_message(&mut self) -> Message {
        loop {
            match self.next_event().await {
                Event::Message(m) => return m,
                Event::Ping(_) | Event::Pong(_) => continue,
                other => panic!("{:?}: expected a message, got {other:?}", self.kind),
            }
        }
    }

    /// Waits for the Closed event; returns (code, reason, clean).
    pub async fn closed(&mut self) -> (u16, String, bool) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}: closed in time",
                self.kind
            );
            match self.next_event().await {
                Event::Closed {
                    code,
                    reason,
                    clean,
                } => return (code.0, reason, clean),
                Event::Message(_) | Event::Fragment { .. } | Event::Ping(_) | Event::Pong(_) => {}
            }
        }
    }

    /// Waits until the downstream ends (END_STREAM or reset).
    pub async fn wait_down_end(&mut self) {
        tokio::time::timeout(LIMIT, async {
            while !self.down_ended {
                match self.down.data().await {
                    Some(Ok(chunk)) => {
                        let _ = self.down.flow_control().release_capacity(chunk.len());
                        if self.kind == Kind::Native {
                            self.data_frames.push(chunk.clone());
                        }
                    }
                    Some(Err(e)) => {
                        self.reset = e.reason();
                        self.down_ended = true;
                    }
                    None => self.down_ended = true,
                }
            }
        })
        .await
        .expect("downstream ends in time");
    }
}

/// `127.0.0.1:PORT` of the TLS listener.
pub fn tls_authority(server: &RunningServer) -> String {
    server.tls_addr().expect("tls listener").to_string()
}

pub fn http_authority(server: &RunningServer) -> String {
    server.http_addr().expect("plain listener").to_string()
}

/// Deterministic test payload.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// One plain request; returns status, headers and body text.
/// Repeats `method uri` (with `headers`, empty body) every 20 ms, up to 50 times, until it is
/// answered `want`; returns the last status (for fetch tokens that die asynchronously).
pub async fn wait_for_status(
    sr: &SendRequest<Bytes>,
    method: Method,
    uri: &str,
    headers: Headers<'_>,
    want: StatusCode,
) -> StatusCode {
    let mut status = StatusCode::OK;
    for _ in 0..50 {
        status = request(sr, method.clone(), uri, headers, b"").await.0;
        if status == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    status
}

pub async fn request(
    sr: &SendRequest<Bytes>,
    method: Method,
    uri: &str,
    headers: Headers<'_>,
    body: &[u8],
) -> (StatusCode, http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut sr = sr.clone().ready().await.expect("ready");
    let (resp, mut send) = sr
        .send_request(req.body(()).expect("request"), body.is_empty())
        .expect("send");
    if !body.is_empty() {
        send.reserve_capacity(body.len());
        let _ = send.send_data(Bytes::copy_from_slice(body), true);
    }
    let resp = tokio::time::timeout(LIMIT, resp)
        .await
        .expect("answered in time")
        .expect("response");
    let (parts, down) = resp.into_parts();
    let text = tokio::time::timeout(LIMIT, read_body(down))
        .await
        .expect("body in time");
    (parts.status, parts.headers, text)
}

/// Test routes: `/ws/closer` (text `close CODE REASON` makes the server close; `info` answers
/// with the handshake context) and `/ws/auth` (refuses without `Authorization: Bearer ok`).
pub fn test_routes() -> axum::Router {
    use axum::response::IntoResponse;
    use h2ws::{Message as M, Socket, SocketUpgrade};
    axum::Router::new()
        .route(
            "/ws/closer",
            h2ws::route(|mut s: Socket| async move {
                while let Some(m) = s.recv().await {
                    let M::Text(t) = m else { continue };
                    if let Some(rest) = t.strip_prefix("close ") {
                        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                        let _ = s.close(code.parse().unwrap_or(1000), reason).await;
                    } else if t == "info" {
                        let i = s.info().expect("a server socket has its opening request");
                        let line = format!(
                            "transport={} path={} query={} version={:?} protocol={} peer={} cookie={} auth={}",
                            s.transport(),
                            i.path(),
                            i.query().unwrap_or(""),
                            i.version,
                            s.protocol().unwrap_or("-"),
                            i.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
                            i.cookie("c").unwrap_or_default(),
                            i.authorization().unwrap_or("-"),
                        );
                        let _ = s.send(line).await;
                    }
                }
            }),
        )
        .route(
            "/ws/auth",
            h2ws::upgrade_route(|up: SocketUpgrade| async move {
                if up.info().authorization() != Some("Bearer ok") {
                    return (http::StatusCode::UNAUTHORIZED, "bad token").into_response();
                }
                up.protocols(["chat.v2", "chat"])
                    .on_socket(|s: Socket| async move {
                        let line = format!("hello {}", s.protocol().unwrap_or("-"));
                        let _ = s.send(line).await;
                        let mut s = s;
                        while s.recv().await.is_some() {}
                    })
            }),
        )
}

impl Peer {
    /// Native only: sends one DATA frame if flow control grants capacity for all of it within
    /// `wait`; false when it did not (the server is pushing back).
    pub async fn try_write_native(&mut self, unit: Bytes, wait: Duration) -> bool {
        let Up::H2(send) = &mut self.up else {
            panic!("try_write_native needs an h2 upstream")
        };
        send.reserve_capacity(unit.len());
        let granted = tokio::time::timeout(wait, async {
            while send.capacity() < unit.len() {
                match poll_fn(|cx| send.poll_capacity(cx)).await {
                    Some(Ok(_)) => {}
                    _ => return false,
                }
            }
            true
        })
        .await
        .unwrap_or(false);
        if granted {
            send.send_data(unit, false).expect("send_data");
        }
        granted
    }
}

/// A `/proc/PID/status` field (`VmRSS:`, `VmHWM:`, …) in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// A TCP relay under the test's control, between a client and a server on loopback: it
/// forwards each connection it accepts to `target`, and [`Relay::cut`] breaks every live one
/// at once (both sides get a reset: what was in flight is lost, as when a network drops);
/// [`Relay::set_down`] refuses new connections (a proxy or a network that is gone), and
/// [`Relay::retarget`] sends new connections to another server (a restart elsewhere).
pub struct Relay {
    pub addr: SocketAddr,
    target: Arc<std::sync::Mutex<SocketAddr>>,
    frozen: Arc<tokio::sync::Notify>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("relay binds");
        let addr = listener.local_addr().expect("relay address");
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let target = Arc::new(std::sync::Mutex::new(target));
        let frozen = Arc::new(tokio::sync::Notify::new());
        let (c, d, t, f) = (conns.clone(), down.clone(), target.clone(), frozen.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if d.load(std::sync::atomic::Ordering::SeqCst) {
                    // Linger 0: the drop resets at once (it cannot block with no time to wait).
                    #[allow(deprecated)]
                    let _ = inbound.set_linger(Some(Duration::ZERO));
                    continue; // dropped: reset
                }
                let to = *t.lock().expect("not poisoned");
                let freeze = f.clone();
                let task = tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(to).await else {
                        return;
                    };
                    #[allow(deprecated)]
                    let _ = inbound.set_linger(Some(Duration::ZERO));
                    #[allow(deprecated)]
                    let _ = outbound.set_linger(Some(Duration::ZERO));
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (mut a, mut b) = (inbound, outbound);
                    let frozen = freeze.notified();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                        // Frozen: nothing more is forwarded, both ends stay open and hear
                        // nothing (a network gone silent), until `cut`.
                        _ = frozen => std::future::pending::<()>().await,
                    }
                });
                let mut conns = c.lock().expect("not poisoned");
                conns.retain(|t| !t.is_finished());
                conns.push(task);
            }
        });
        Relay {
            addr,
            target,
            frozen,
            conns,
            down,
            accept,
        }
    }

    /// Breaks every live connection (reset both ways); returns how many there were.
    pub fn cut(&self) -> usize {
        let mut conns = self.conns.lock().expect("not poisoned");
        let live = conns.iter().filter(|t| !t.is_finished()).count();
        for task in conns.drain(..) {
            task.abort();
        }
        live
    }

    /// Every live connection goes silent: nothing more is forwarded either way, nothing is
    /// closed (new connections work as before).
    pub fn freeze(&self) {
        self.frozen.notify_waiters();
    }

    /// New connections go to `to` from now on.
    pub fn retarget(&self, to: SocketAddr) {
        *self.target.lock().expect("not poisoned") = to;
    }

    /// While down, new connections are reset at once.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
