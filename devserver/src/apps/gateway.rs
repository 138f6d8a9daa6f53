//! `/ws/upstream` with `--upstream ws://HOST:PORT/PATH` (or `wss://`): bridges every socket,
//! whatever its transport, to an RFC 6455 backend (DESIGN §5).
//!
//! - **Frame by frame, bounded.** Both legs run in fragment mode with
//!   [`Config::fragment_chunk`](h2ws_codec::Config::fragment_chunk): a data frame is forwarded
//!   in pieces as it arrives, so neither a whole message nor a whole frame is ever held, and
//!   memory per socket stays bounded by the queues (a few hundred KiB) whatever the size.
//!   Frames up to a piece's size keep their boundaries; larger ones are re-fragmented (as the
//!   native mapping must do anyway), which RFC 6455 §5.4 allows for permessage-deflate and for
//!   no extension. Control frames therefore interleave between pieces and never wait behind a
//!   large message.
//! - **Negotiation end to end.** The backend is opened first with the client's subprotocols
//!   and extension offer; its answer is forwarded verbatim to the client, and RSV1 frames pass
//!   untouched both ways (permessage-deflate is terminated by the two ends, not here).
//! - **Close codes both ways**, mapped where a code cannot be sent: a backend that is lost or
//!   breaks the protocol → the client gets 1014 (bad gateway); a client that is lost → the
//!   backend gets 1001 (going away); a Close without code → 1000.
//! - **Refusals**: backend unreachable or refusing → HTTP 502 (504 when it does not answer in
//!   time) on every transport's handshake, before the client's socket is accepted.
//! - Ping/Pong are per hop: each leg answers and sends its own (liveness on each leg).

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use h2ws::client::{
    Client, ClientConfig, Error as ClientError, OpenOptions, Transport as ClientTransport, Trust,
};
use h2ws::socket::{CloseStatus, Incoming, Socket, SocketReceiver, SocketSender};
use h2ws::Refusal;
use h2ws::SocketUpgrade;

/// Backend connect + upgrade, each.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Queued bytes toward the backend before the client leg stops reading.
const BACKEND_SEND_BUFFER: usize = 64 << 10;
/// Backend events (fragments) held before the backend leg stops reading.
const BACKEND_RECV_QUEUE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("upstream URL must look like ws://HOST:PORT/PATH or wss://HOST:PORT/PATH: {0}")]
    BadUrl(String),
}

/// An RFC 6455 backend and the client that reaches it.
#[derive(Clone, Debug)]
pub struct Gateway {
    url: String,
    trust: Trust,
}

impl Gateway {
    /// `ws://host:port/path` or `wss://host:port/path`. A `wss` backend is verified against
    /// no roots until [`with_trust`](Self::with_trust) says which certificates to accept.
    pub fn new(url: &str) -> Result<Self, GatewayError> {
        let target =
            h2ws::client::Target::parse(url).map_err(|_| GatewayError::BadUrl(url.into()))?;
        if !(url.starts_with("ws://") || url.starts_with("wss://")) || target.host.is_empty() {
            return Err(GatewayError::BadUrl(url.to_string()));
        }
        Ok(Gateway {
            url: url.to_string(),
            trust: Trust::Roots(std::sync::Arc::new(rustls::RootCertStore::empty())),
        })
    }

    /// Which backend certificates to accept (`wss` backends).
    pub fn with_trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// `/ws/upstream`, bridged to this backend.
    pub fn routes(self) -> axum::Router {
        axum::Router::new().route(
            "/ws/upstream",
            h2ws::upgrade_route(move |upgrade: SocketUpgrade| self.clone().handle(upgrade)),
        )
    }

    /// The route handler: opens the backend first, then accepts the client with the backend's
    /// subprotocol and extensions, or refuses it (502, 504).
    pub async fn handle(self, upgrade: SocketUpgrade) -> Response {
        let cfg = upgrade.endpoint().config();
        let client = Client::new(ClientConfig {
            connect_timeout: CONNECT_TIMEOUT,
            handshake_timeout: CONNECT_TIMEOUT,
            close_timeout: cfg.close_timeout,
            send_timeout: cfg.send_timeout,
            ping_interval: cfg.ping_after,
            idle_timeout: cfg.idle_timeout,
            max_message_size: cfg.max_message_size,
            max_frame_size: cfg.max_frame_size,
            send_buffer: BACKEND_SEND_BUFFER,
            recv_queue: BACKEND_RECV_QUEUE,
            ..ClientConfig::new(self.trust.clone())
        });
        let options = OpenOptions {
            protocols: upgrade.info().offered_protocols.clone(),
            extensions: upgrade.offered_extensions().map(str::to_string),
            fragments: true,
            allow_rsv1: true,
            ..OpenOptions::default()
        };
        let backend = match client
            .connect(&self.url, ClientTransport::Rfc6455, &options)
            .await
        {
            Ok(ws) => ws,
            Err(e) => {
                tracing::info!("gateway: upstream {}: {e}", self.url);
                let status = match e {
                    ClientError::Timeout(..) => StatusCode::GATEWAY_TIMEOUT,
                    _ => StatusCode::BAD_GATEWAY,
                };
                return Refusal::new(status, format!("upstream: {e}")).into_response();
            }
        };
        let handshake = backend.handshake().clone();
        upgrade
            .with_protocol(handshake.protocol)
            .with_extensions(handshake.extensions)
            .deliver_fragments(true)
            .on_socket(move |socket| async move {
                let (sender, receiver) = socket.split();
                bridge(sender, receiver, backend).await;
            })
    }
}

/// Copies frames both ways until both legs closed. Each direction ends at its own leg's
/// close and then starts the close of the other leg with the mapped code; both legs' drivers
/// bound the close handshakes with their close timeouts.
async fn bridge(sender: SocketSender, mut receiver: SocketReceiver, backend: Socket) {
    let (backend_tx, mut backend_rx) = backend.split();
    let to_backend = async {
        loop {
            match receiver.recv_frame().await {
                Incoming::Fragment {
                    kind,
                    rsv,
                    data,
                    fin,
                } => {
                    // A refused send means the backend leg ended: its close reaches the client
                    // through the other direction; keep draining until the client's close.
                    let _ = backend_tx.send_fragment(kind, rsv, &data, fin).await;
                }
                Incoming::Message(m) => {
                    let _ = backend_tx.send(m).await;
                }
                Incoming::Closed(status) => {
                    let (code, reason) = toward_backend(&status);
                    let _ = backend_tx.start_close(Some(h2ws_codec::CloseCode(code)), &reason);
                    return;
                }
            }
        }
    };
    let to_client = async {
        loop {
            match backend_rx.recv_frame().await {
                Incoming::Fragment {
                    kind,
                    rsv,
                    data,
                    fin,
                } => {
                    let _ = sender.send_fragment(kind, rsv, &data, fin).await;
                }
                Incoming::Message(m) => {
                    let _ = sender.send(m).await;
                }
                Incoming::Closed(status) => {
                    let (code, reason) = toward_client(&status);
                    let _ = sender.close(code, &reason).await;
                    return;
                }
            }
        }
    };
    tokio::join!(to_backend, to_client);
    // Dropping the backend's sending half of a still open socket closes it with 1001.
    drop(backend_tx);
    drop(backend_rx);
}

/// The code the client gets when the backend leg ended.
fn toward_client(status: &CloseStatus) -> (u16, String) {
    map_close(
        status,
        h2ws_codec::CloseCode::BAD_GATEWAY.0,
        "upstream lost",
    )
}

/// The code the backend gets when the client leg ended.
fn toward_backend(status: &CloseStatus) -> (u16, String) {
    map_close(status, h2ws_codec::CloseCode::GOING_AWAY.0, "client gone")
}

/// A clean close passes its code and reason on (1005 "no code" → 1000); a leg that failed
/// (lost transport, protocol error, timeout) gives the other side `failed`.
fn map_close(status: &CloseStatus, failed: u16, why: &str) -> (u16, String) {
    let code = h2ws_codec::CloseCode(status.code);
    if !status.clean {
        return (failed, why.to_string());
    }
    if code == h2ws_codec::CloseCode::NO_STATUS {
        return (h2ws_codec::CloseCode::NORMAL.0, String::new());
    }
    if code.is_sendable() {
        return (code.0, status.reason.clone());
    }
    (failed, why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, clean: bool) -> CloseStatus {
        CloseStatus {
            code,
            reason: "r".into(),
            clean,
        }
    }

    #[test]
    fn close_mapping() {
        assert_eq!(toward_client(&status(4100, true)), (4100, "r".into()));
        assert_eq!(toward_client(&status(1005, true)), (1000, String::new()));
        assert_eq!(toward_client(&status(1006, false)).0, 1014);
        assert_eq!(toward_client(&status(1002, false)).0, 1014);
        assert_eq!(toward_backend(&status(1006, false)).0, 1001);
        assert_eq!(toward_backend(&status(4200, true)), (4200, "r".into()));
    }

    #[test]
    fn urls() {
        assert!(Gateway::new("ws://127.0.0.1:9000/echo").is_ok());
        assert!(Gateway::new("wss://localhost/x").is_ok());
        assert!(Gateway::new("http://127.0.0.1/").is_err());
        assert!(Gateway::new("127.0.0.1:80").is_err());
    }
}
