//! `/ws/upstream` with `--upstream ws://HOST:PORT/PATH`: bridges every socket, whatever its
//! transport, to an RFC 6455 backend frame by frame (DESIGN §5). Subprotocol and extension
//! negotiation is forwarded end to end (RSV1 passes through untouched); close codes pass both
//! ways; a lost backend closes the client with 1014.
//!
//! This is the working bridge of issue 4; the memory bound for huge single frames and the
//! full 1014 semantics are the later "gateway and reliability" issue.

use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use h2ws_codec::handshake::rfc6455 as hs;
use h2ws_codec::{CloseCode, Config, Connection, Event, Framing, Role};
use http::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::socket::{FragmentKind, Incoming, Message};
use crate::upgrade::{header_pairs, Refusal};
use crate::{Socket, SocketUpgrade};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("upstream URL must look like ws://HOST:PORT/PATH: {0}")]
    BadUrl(String),
    #[error("connecting to the upstream: {0}")]
    Connect(#[from] std::io::Error),
    #[error("upstream HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("upstream refused the WebSocket handshake: {0}")]
    Handshake(h2ws_codec::handshake::HandshakeError),
    #[error("upstream request: {0}")]
    Request(#[from] http::Error),
}

/// An RFC 6455 backend.
#[derive(Clone, Debug)]
pub struct Gateway {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Gateway {
    /// `ws://host:port/path` (plain WebSocket backends; `wss` is not supported yet).
    pub fn new(url: &str) -> Result<Self, GatewayError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| GatewayError::BadUrl(url.to_string()))?;
        if uri.scheme_str() != Some("ws") {
            return Err(GatewayError::BadUrl(url.to_string()));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| GatewayError::BadUrl(url.to_string()))?;
        let host = authority
            .host()
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        Ok(Gateway {
            host,
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_string(),
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into()),
        })
    }

    /// The route handler: opens the backend first, then accepts the client with the
    /// backend's subprotocol and extensions, or answers 502.
    pub async fn handle(self, upgrade: SocketUpgrade) -> Response {
        let protocols = upgrade.info().offered_protocols.clone();
        let extensions = upgrade.offered_extensions().map(str::to_string);
        let backend = tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.connect(&protocols, extensions.as_deref()),
        )
        .await;
        let backend = match backend {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::info!("gateway: {e}");
                return Refusal::new(StatusCode::BAD_GATEWAY, e.to_string()).into_response();
            }
            Err(_) => {
                return Refusal::new(StatusCode::GATEWAY_TIMEOUT, "upstream did not answer")
                    .into_response()
            }
        };
        let max_message = upgrade.endpoint.config().max_message_size;
        let max_frame = upgrade.endpoint.config().max_frame_size;
        upgrade
            .with_protocol(backend.protocol.clone())
            .with_extensions(backend.extensions.clone())
            .deliver_fragments(true)
            .on_socket(move |socket| bridge(socket, backend, max_frame, max_message))
    }

    async fn connect(
        &self,
        protocols: &[String],
        extensions: Option<&str>,
    ) -> Result<Backend, GatewayError> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
        let _ = tcp.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("gateway upstream connection: {e}");
            }
        });
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
        let key = hs::client_key(random);
        let offered: Vec<&str> = protocols.iter().map(String::as_str).collect();
        let mut req = http::Request::get(self.path.as_str());
        for (name, value) in hs::request_headers(&self.authority, &key, &offered, extensions) {
            req = req.header(name, value);
        }
        let res = sender.send_request(req.body(Body::empty())?).await?;
        let (protocol, ext) = {
            let pairs = header_pairs(res.headers());
            let offered_ext: Vec<&str> = extensions
                .map(|e| e.split(',').map(str::trim).collect())
                .unwrap_or_default();
            let offered_names: Vec<&str> = offered_ext
                .iter()
                .map(|e| e.split(';').next().unwrap_or("").trim())
                .collect();
            let accepted = hs::validate_response(
                res.status().as_u16(),
                &pairs,
                &key,
                &offered,
                &offered_names,
            )
            .map_err(GatewayError::Handshake)?;
            (
                accepted.protocol.map(str::to_string),
                res.headers()
                    .get(http::header::SEC_WEBSOCKET_EXTENSIONS)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            )
        };
        let upgraded = hyper::upgrade::on(res).await?;
        Ok(Backend {
            io: upgraded,
            protocol,
            extensions: ext,
        })
    }
}

/// An opened backend WebSocket.
pub struct Backend {
    io: hyper::upgrade::Upgraded,
    protocol: Option<String>,
    extensions: Option<String>,
}

/// Copies frames both ways until both sides closed.
async fn bridge(socket: Socket, backend: Backend, max_frame: usize, max_message: usize) {
    let config = Config {
        deliver_fragments: true,
        allow_rsv1: backend.extensions.is_some(),
        max_frame_size: max_frame,
        max_message_size: max_message,
        ..Config::default()
    };
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        let _ = socket.close(1011, "no randomness for masking").await;
        return;
    }
    let mut conn = Connection::new(Role::Client, Framing::Rfc6455, config).with_mask_seed(seed);
    let (mut read, mut write) = tokio::io::split(TokioIo::new(backend.io));
    let (sender, mut receiver) = socket.split();
    let mut buf = BytesMut::with_capacity(16 << 10);
    let mut backend_eof = false;
    let mut backend_closed = false;
    let mut client_closed = false;
    loop {
        while let Some(out) = conn.poll_transmit() {
            let wrote = tokio::time::timeout(WRITE_TIMEOUT, write.write_all(&out)).await;
            if !matches!(wrote, Ok(Ok(()))) {
                backend_eof = true;
                conn.recv_eof();
                break;
            }
        }
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Fragment {
                    kind,
                    rsv,
                    data,
                    fin,
                } => {
                    let kind = match kind {
                        h2ws_codec::FragmentKind::Text => FragmentKind::Text,
                        h2ws_codec::FragmentKind::Binary => FragmentKind::Binary,
                        h2ws_codec::FragmentKind::Continuation => FragmentKind::Continuation,
                    };
                    let _ = sender.send_fragment(kind, rsv, data.into(), fin).await;
                }
                Event::Message(h2ws_codec::Message::Text(t)) => {
                    let _ = sender.send(Message::Text(t)).await;
                }
                Event::Message(h2ws_codec::Message::Binary(b)) => {
                    let _ = sender.send(Message::Binary(b.into())).await;
                }
                Event::Ping(_) | Event::Pong(_) => {}
                Event::Closed { code, reason, .. } => {
                    backend_closed = true;
                    let code = match code {
                        c if c.is_sendable() => c.0,
                        CloseCode::NO_STATUS => 1000,
                        _ => CloseCode::BAD_GATEWAY.0,
                    };
                    let _ = sender.close(code, &reason).await;
                }
            }
        }
        if backend_closed && client_closed {
            break;
        }
        tokio::select! {
            n = read.read_buf(&mut buf), if !backend_eof => match n {
                Ok(0) | Err(_) => {
                    backend_eof = true;
                    conn.recv_eof();
                }
                Ok(_) => {
                    let chunk = buf.split().freeze();
                    if let Err(e) = conn.recv(&chunk) {
                        tracing::debug!("gateway: upstream broke the protocol: {e}");
                    }
                }
            },
            incoming = receiver.recv_frame(), if !client_closed => match incoming {
                Incoming::Fragment { kind, rsv, data, fin } => {
                    let kind = match kind {
                        FragmentKind::Text => h2ws_codec::FragmentKind::Text,
                        FragmentKind::Binary => h2ws_codec::FragmentKind::Binary,
                        FragmentKind::Continuation => h2ws_codec::FragmentKind::Continuation,
                    };
                    let _ = conn.send_fragment(kind, rsv, &data, fin);
                }
                Incoming::Message(Message::Text(t)) => { let _ = conn.send_text(&t); }
                Incoming::Message(Message::Binary(b)) => { let _ = conn.send_binary(&b); }
                Incoming::Closed(status) => {
                    client_closed = true;
                    let code = match CloseCode(status.code) {
                        c if c.is_sendable() => c,
                        CloseCode::NO_STATUS => CloseCode::NORMAL,
                        _ => CloseCode::GOING_AWAY,
                    };
                    let _ = conn.close(Some(code), &status.reason);
                }
            },
            _ = tokio::time::sleep(Duration::from_secs(5)), if client_closed && !backend_closed => {
                // The backend did not answer our Close in time.
                break;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), write.shutdown()).await;
}
