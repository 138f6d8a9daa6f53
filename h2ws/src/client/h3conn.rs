//! One HTTP/3 connection (QUIC, quinn + h3) carrying the fetch transports `stream` and `post`.
//!
//! The server serves only these two over HTTP/3 (its `h3conn` module: `h3` 0.0.8 does not
//! parse a `websocket` extended CONNECT and splits DATA frames at packet boundaries), so
//! [`H3Connection::open`] refuses `rfc6455`, `rfc8441` and `native` with
//! [`Error::NotOverH3`] before sending anything. The requests are the ones sent over HTTP/2
//! (DESIGN §2): an open request whose response body is the downstream, then one streamed
//! upstream request (`stream`) or ordered POST batches (`post`), each an HTTP/3 request.
//! No `stream` → `post` fallback: it exists for HTTP/2 proxies that refuse streamed bodies,
//! and an HTTP/3 path has no such proxy in front of this client.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Buf;
use h2ws_codec::{Connection, Framing, Role};

use super::connect::Target;
use super::h2conn::{
    fetch_open_request, fetch_opened, fetch_upstream_request, CONNECTION_WINDOW, MAX_REFUSAL_BODY,
    STREAM_WINDOW,
};
use super::h3wire::{H3RecvHalf, H3Requests, H3Wire};
use super::wire::{self, Wire};
use super::{ClientConfig, Error, OpenOptions, Socket, Transport};

/// ALPN id of HTTP/3.
const ALPN_H3: &[u8] = b"h3";

/// An HTTP/3 connection to one origin; open `stream` and `post` sockets on it with
/// [`open`](H3Connection::open). Cheap to clone; the QUIC connection ends when every clone and
/// every socket on it are gone (or after [`ClientConfig::idle_timeout`] without packets).
#[derive(Clone)]
pub struct H3Connection {
    inner: Arc<Inner>,
}

struct Inner {
    requests: H3Requests,
    config: Arc<ClientConfig>,
    target: Target,
    quic: quinn::Connection,
    /// Kept so the UDP socket lives as long as the connection handle (quinn also keeps it
    /// while connections exist).
    _endpoint: quinn::Endpoint,
}

impl std::fmt::Debug for H3Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H3Connection")
            .field("authority", &self.inner.target.authority)
            .field("remote", &self.inner.quic.remote_address())
            .finish()
    }
}

impl H3Connection {
    /// QUIC handshake (TLS 1.3, ALPN `h3`, the client's [`Trust`](super::Trust)) and the
    /// HTTP/3 control streams, all under `connect_timeout`. HTTP/3 is always encrypted: a
    /// `ws://` / `http://` target is refused.
    pub(crate) async fn connect(
        config: Arc<ClientConfig>,
        target: &Target,
    ) -> Result<H3Connection, Error> {
        if !target.tls {
            return Err(Error::InvalidUrl(format!(
                "{}: HTTP/3 needs wss:// or https://",
                target.authority
            )));
        }
        let limit = config.connect_timeout;
        let work = async {
            let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
                .await?
                .next()
                .ok_or_else(|| Error::InvalidUrl(format!("{}: no address", target.host)))?;
            let local: SocketAddr = if addr.is_ipv4() {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let mut endpoint = quinn::Endpoint::client(local)?;
            endpoint.set_default_client_config(quic_config(&config)?);
            let quic = endpoint.connect(addr, &target.host)?.await?;
            let alpn = quic
                .handshake_data()
                .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
                .and_then(|d| d.protocol);
            if alpn.as_deref() != Some(ALPN_H3) {
                return Err(Error::Alpn {
                    needed: "h3",
                    chosen: alpn
                        .map(|a| String::from_utf8_lossy(&a).into_owned())
                        .unwrap_or_else(|| "none".into()),
                });
            }
            let (mut driver, requests) =
                h3::client::new(h3_quinn::Connection::new(quic.clone())).await?;
            tokio::spawn(async move {
                let end = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
                tracing::debug!(error = %end, "client HTTP/3 connection ended");
            });
            Ok::<_, Error>(Inner {
                requests,
                config: config.clone(),
                target: target.clone(),
                quic,
                _endpoint: endpoint,
            })
        };
        let inner = tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Error::Timeout(limit, "connecting (QUIC + HTTP/3)"))??;
        Ok(H3Connection {
            inner: Arc::new(inner),
        })
    }

    /// The origin's `host:port`.
    pub fn authority(&self) -> &str {
        &self.inner.target.authority
    }

    /// Opens a socket on this connection at `path` (path and query): [`Transport::Stream`] or
    /// [`Transport::Post`]; the others are refused with [`Error::NotOverH3`].
    pub async fn open(
        &self,
        path: &str,
        transport: Transport,
        options: &OpenOptions,
    ) -> Result<Socket, Error> {
        if !matches!(transport, Transport::Stream | Transport::Post) {
            return Err(Error::NotOverH3(transport));
        }
        let limit = self.inner.config.handshake_timeout;
        tokio::time::timeout(limit, self.open_fetch(path, transport, options))
            .await
            .map_err(|_| Error::Timeout(limit, "opening a socket"))?
    }

    /// As [`H2Connection`](super::H2Connection)'s: the open request, then the upstream.
    async fn open_fetch(
        &self,
        path: &str,
        transport: Transport,
        options: &OpenOptions,
    ) -> Result<Socket, Error> {
        let target = &self.inner.target;
        let uri = format!("https://{}{}", target.authority, path);
        let protocols: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
        let offer = super::ExtensionOffer::new(options)?;
        let open = fetch_open_request(&uri, &protocols, &offer, options, false)?;
        let mut stream = self.inner.requests.clone().send_request(open).await?;
        stream.finish().await?;
        let resp = stream.recv_response().await?;
        let (_, mut downstream) = stream.split();
        if resp.status() != http::StatusCode::OK {
            return Err(refusal(resp.status().as_u16(), &mut downstream).await);
        }
        let (handshake, deflate) =
            fetch_opened(resp.headers(), &protocols, &offer, transport, options)?;
        let session = handshake.session.clone().unwrap_or_default();
        let upstream = fetch_upstream_request(&uri, &session, options)?;

        let config = &self.inner.config;
        let conn = Connection::new(
            Role::Client,
            Framing::Stream,
            super::codec_config(config, options, deflate),
        );
        let wire = if transport == Transport::Stream {
            let up = self.inner.requests.clone().send_request(upstream).await?;
            let (send, up_recv) = up.split();
            Wire::H3(Box::new(H3Wire::new(downstream, send, up_recv)))
        } else {
            let up = wire::Up::H3 {
                requests: self.inner.requests.clone(),
                in_flight: VecDeque::new(),
            };
            Wire::post(wire::Down::H3(downstream), up, upstream)
        };
        Ok(super::start(config, conn, wire, handshake, None))
    }
}

/// The quinn client config: rustls from the client's trust with ALPN `h3`, receive windows
/// as over HTTP/2, and the QUIC idle timeout at the socket idle timeout, so a server that
/// vanished without a CONNECTION_CLOSE (UDP has no RST) ends its sockets as a dead TCP peer
/// would.
fn quic_config(config: &ClientConfig) -> Result<quinn::ClientConfig, Error> {
    let tls = super::tls::client_config(&config.trust, &[ALPN_H3])?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| Error::TlsConfig(format!("not usable for QUIC: {e}")))?;
    let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .stream_receive_window(STREAM_WINDOW.into())
        .receive_window(CONNECTION_WINDOW.into())
        // Out of QUIC's range (> 2^62 ms) means "never" here, as it would for TCP.
        .max_idle_timeout(quinn::IdleTimeout::try_from(config.idle_timeout).ok());
    quic.transport_config(Arc::new(transport));
    Ok(quic)
}

/// A refusal's status and the first line of its (bounded) body.
async fn refusal(status: u16, body: &mut H3RecvHalf) -> Error {
    let mut text = Vec::new();
    while text.len() < MAX_REFUSAL_BODY {
        match body.recv_data().await {
            Ok(Some(mut chunk)) => {
                let n = chunk.remaining().min(MAX_REFUSAL_BODY - text.len());
                text.extend_from_slice(&chunk.copy_to_bytes(n));
            }
            _ => break,
        }
    }
    Error::Refused {
        status,
        reason: super::http1::first_line(&text),
    }
}
