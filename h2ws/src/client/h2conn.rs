//! One HTTP/2 connection carrying many sockets: RFC 8441, native, `stream` and `post`.

use std::sync::Arc;

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::RecvStream;
use h2ws_codec::handshake::{fetch, native, rfc8441};
use h2ws_codec::{Connection, Framing, Role};
use http::{HeaderMap, HeaderValue, Method, Request};

use super::connect::{self, Target};
use super::tls::ALPN_H2;
use super::wire::{self, Wire};
use super::{ClientConfig, Error, Handshake, OpenOptions, Socket, Transport};

/// Stream-level receive window the client advertises (bytes the server may send ahead); the
/// HTTP/3 client uses the same. Chromium's (6 MiB), so the server meets a browser's windows.
/// Frames stay at the protocol's 16 KiB (no SETTINGS_MAX_FRAME_SIZE), as Chromium's do.
pub(crate) const STREAM_WINDOW: u32 = 6 << 20;
/// Connection-level receive window (HTTP/3 too): Chromium's 15 MiB.
pub(crate) const CONNECTION_WINDOW: u32 = 15 << 20;
/// Bytes of a refusal's body read for its reason (HTTP/3 too).
pub(crate) const MAX_REFUSAL_BODY: usize = 1024;

/// An HTTP/2 connection to one origin; open sockets on it with [`open`](H2Connection::open).
/// Cheap to clone; the connection ends when every clone and every socket on it are gone.
#[derive(Clone)]
pub struct H2Connection {
    inner: Arc<Inner>,
}

struct Inner {
    requests: SendRequest<Bytes>,
    config: Arc<ClientConfig>,
    target: Target,
    extended_connect: bool,
    /// Resume: the connection that replaces this one once it breaks, shared by the sockets that
    /// were on it, so they re-attach over one new connection (as a browser's sockets do), not
    /// one each.
    successor: Successor,
}

/// Where the sockets of a broken connection find the new one.
pub(crate) type Successor = Arc<tokio::sync::Mutex<Option<H2Connection>>>;

impl std::fmt::Debug for H2Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Connection")
            .field("authority", &self.inner.target.authority)
            .field("extended_connect", &self.inner.extended_connect)
            .finish()
    }
}

impl H2Connection {
    pub(crate) async fn connect(
        config: Arc<ClientConfig>,
        target: &Target,
    ) -> Result<H2Connection, Error> {
        let io =
            connect::connect(target, &config.trust, &[ALPN_H2], config.connect_timeout).await?;
        if target.tls && io.alpn() != Some(ALPN_H2) {
            return Err(Error::Alpn {
                needed: "h2",
                chosen: io
                    .alpn()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .unwrap_or_else(|| "none".into()),
            });
        }
        let limit = config.connect_timeout;
        let setup = async {
            let (requests, mut connection) = h2::client::Builder::new()
                .initial_window_size(STREAM_WINDOW)
                .initial_connection_window_size(CONNECTION_WINDOW)
                .enable_push(false)
                .handshake::<_, Bytes>(io)
                .await?;
            let mut ping = connection.ping_pong();
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "client HTTP/2 connection ended");
                }
            });
            // The server's SETTINGS precede its answer to our PING, and h2 applies them before
            // reading further frames: after the PONG, ENABLE_CONNECT_PROTOCOL is known.
            if let Some(ping) = ping.as_mut() {
                ping.ping(h2::Ping::opaque()).await?;
            }
            Ok::<_, Error>(requests)
        };
        let requests = tokio::time::timeout(limit, setup)
            .await
            .map_err(|_| Error::Timeout(limit, "waiting for the server's HTTP/2 SETTINGS"))??;
        let extended_connect = requests.is_extended_connect_protocol_enabled();
        Ok(H2Connection {
            inner: Arc::new(Inner {
                requests,
                config,
                target: target.clone(),
                extended_connect,
                successor: Successor::default(),
            }),
        })
    }

    /// The server sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 and native allowed).
    pub fn supports_extended_connect(&self) -> bool {
        self.inner.extended_connect
    }

    /// The origin's `host:port`.
    pub fn authority(&self) -> &str {
        &self.inner.target.authority
    }

    /// Opens a socket on this connection at `path` (path and query) with an HTTP/2 transport.
    pub async fn open(
        &self,
        path: &str,
        transport: Transport,
        options: &OpenOptions,
    ) -> Result<Socket, Error> {
        let config = &self.inner.config;
        let limit = config.handshake_timeout;
        let work = async {
            match transport {
                Transport::Rfc6455 => Err(Error::Handshake(
                    "rfc6455 runs on HTTP/1.1: use Client::connect".into(),
                )),
                Transport::Rfc8441 | Transport::Native => {
                    self.open_on_one_stream(path, transport, options).await
                }
                Transport::Stream | Transport::Post => {
                    self.open_fetch(path, transport, options).await
                }
            }
        };
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Error::Timeout(limit, "opening a socket"))?
    }

    /// RFC 8441 (extended CONNECT) and native (`:scheme ws|wss`): one stream each way.
    async fn open_on_one_stream(
        &self,
        path: &str,
        transport: Transport,
        options: &OpenOptions,
    ) -> Result<Socket, Error> {
        if !self.inner.extended_connect {
            return Err(Error::NoExtendedConnect);
        }
        let target = &self.inner.target;
        let native = transport == Transport::Native;
        let mut req = if native {
            let uri = format!("{}://{}{}", target.ws_scheme(), target.authority, path);
            request(Method::GET, &uri)?
        } else {
            let uri = format!("{}://{}{}", target.http_scheme(), target.authority, path);
            let mut r = request(Method::CONNECT, &uri)?;
            r.extensions_mut()
                .insert(h2::ext::Protocol::from_static("websocket"));
            r
        };
        let protocols: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
        let offer = super::ExtensionOffer::new(options)?;
        // RFC 8441 §5 and the native mapping (DESIGN §4) send the same WebSocket headers.
        let h = req.headers_mut();
        for (name, value) in native::request_headers(&protocols, offer.header.as_deref()) {
            h.insert(name, header_value(&value)?);
        }
        add_common_headers(h, options)?;

        let (resp, send) = self.send_request(req, false).await?;
        let resp = resp.await?;
        let (parts, body) = resp.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(refusal(parts.status.as_u16(), body).await);
        }
        let pairs = header_pairs(&parts.headers);
        let accepted = if native {
            native::validate_response(200, &pairs, &protocols, &offer.names())
        } else {
            rfc8441::validate_response(200, &pairs, &protocols, &offer.names())
        }
        .map_err(|e| Error::Handshake(e.to_string()))?;
        let extensions = super::raw_extensions(&pairs);
        let deflate = offer.deflate(options, extensions.as_deref())?;
        let handshake = Handshake {
            transport,
            protocol: accepted.protocol.map(str::to_owned),
            extensions,
            status: 200,
            session: None,
            resume: false,
        };
        let config = &self.inner.config;
        let codec_config = super::codec_config(config, options, deflate);
        let conn = if native {
            Connection::new(Role::Client, Framing::Native, codec_config)
        } else {
            Connection::new(Role::Client, Framing::Rfc6455, codec_config)
                .with_mask_seed(super::random())
        };
        Ok(super::start(
            config,
            conn,
            Wire::h2(send, body, native, None),
            handshake,
            None,
        ))
    }

    /// `stream` and `post` (DESIGN §2): an open request whose response body is the downstream,
    /// then the upstream (one streaming request body, or ordered POST batches).
    async fn open_fetch(
        &self,
        path: &str,
        transport: Transport,
        options: &OpenOptions,
    ) -> Result<Socket, Error> {
        let target = &self.inner.target;
        let uri = format!("{}://{}{}", target.http_scheme(), target.authority, path);
        let protocols: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
        let offer = super::ExtensionOffer::new(options)?;
        let open = fetch_open_request(&uri, &protocols, &offer, options, options.resume)?;
        let (resp, _) = self.send_request(open, true).await?;
        let resp = resp.await?;
        let (parts, downstream) = resp.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(refusal(parts.status.as_u16(), downstream).await);
        }
        let (mut handshake, deflate) =
            fetch_opened(&parts.headers, &protocols, &offer, transport, options)?;
        let session = handshake.session.clone().unwrap_or_default();
        let upstream_request = || fetch_upstream_request(&uri, &session, options);
        let upstream = upstream_request()?;

        let config = &self.inner.config;
        let mut conn = Connection::new(
            Role::Client,
            Framing::Stream,
            super::codec_config(config, options, deflate),
        );
        // Resume, if offered and accepted: the client keeps the server's grace window.
        let accepted = options
            .resume
            .then(|| resume_accepted(&parts.headers))
            .flatten();
        let resumer = accepted.map(|(grace, key)| {
            conn.enable_resume(h2ws_codec::resume::ResumeConfig {
                grace,
                // A transport that stops acknowledging is lost, even if nothing failed.
                ack_timeout: Some(h2ws_codec::resume::CLIENT_ACK_TIMEOUT),
                ..Default::default()
            });
            handshake.resume = true;
            let route = super::Route {
                config: self.inner.config.clone(),
                successor: self.inner.successor.clone(),
                target: target.clone(),
                uri: uri.clone(),
                options: options.clone(),
                transport,
                session: session.clone(),
            };
            super::resumer(route, key)
        });
        let wire = if transport == Transport::Stream {
            let (up_resp, up_send) = self.send_request(upstream, false).await?;
            // Refused at once (a proxy that does not pass streamed bodies): `post` instead.
            let fallback =
                super::wire::StreamFallback::new(self.inner.requests.clone(), upstream_request()?);
            Wire::h2(up_send, downstream, false, Some(up_resp)).with_fallback(fallback)
        } else {
            let up = wire::Up::H2 {
                requests: self.inner.requests.clone(),
                in_flight: Default::default(),
            };
            Wire::post(wire::Down::H2(downstream), up, upstream)
        };
        Ok(super::start(config, conn, wire, handshake, resumer))
    }

    /// Whether the connection still takes requests (false once it broke).
    pub(crate) async fn is_usable(&self) -> bool {
        self.inner.requests.clone().ready().await.is_ok()
    }

    /// The connection's request handle (a resumed socket's new `post` upstream).
    pub(crate) fn requests(&self) -> SendRequest<Bytes> {
        self.inner.requests.clone()
    }

    pub(crate) async fn send_request(
        &self,
        req: Request<()>,
        end_of_stream: bool,
    ) -> Result<(ResponseFuture, h2::SendStream<Bytes>), Error> {
        let mut requests = self.inner.requests.clone().ready().await?;
        Ok(requests.send_request(req, end_of_stream)?)
    }
}

/// The fetch open request (HTTP/2 and HTTP/3 alike): `POST` with the codec's open headers,
/// offering resume if asked.
pub(crate) fn fetch_open_request(
    uri: &str,
    protocols: &[&str],
    offer: &super::ExtensionOffer,
    options: &OpenOptions,
    offer_resume: bool,
) -> Result<Request<()>, Error> {
    let mut open = request(Method::POST, uri)?;
    let h = open.headers_mut();
    for (name, value) in fetch::open_request_headers(protocols, offer.header.as_deref()) {
        h.insert(name, header_value(&value)?);
    }
    if offer_resume {
        h.insert(
            fetch::H2WS_RESUME,
            HeaderValue::from_static(h2ws_codec::resume::OFFER),
        );
    }
    add_common_headers(h, options)?;
    Ok(open)
}

/// Reads a fetch open's 200 answer (HTTP/2 and HTTP/3 alike): the socket's handshake (with its
/// session token) and the permessage-deflate parameters to run, or why it cannot be used.
pub(crate) fn fetch_opened(
    headers: &HeaderMap,
    protocols: &[&str],
    offer: &super::ExtensionOffer,
    transport: Transport,
    options: &OpenOptions,
) -> Result<(Handshake, Option<h2ws_codec::deflate::DeflateParams>), Error> {
    let pairs = header_pairs(headers);
    let opened = fetch::validate_open_response(200, &pairs, protocols, &offer.names())
        .map_err(|e| Error::Handshake(e.to_string()))?;
    if !opened.transports.is_empty() && !opened.transports.iter().any(|t| *t == transport.as_str())
    {
        return Err(Error::Handshake(format!(
            "the server offers upstream transports {:?} on this connection, not {}",
            opened.transports,
            transport.as_str()
        )));
    }
    let extensions = header_string(headers, fetch::H2WS_EXTENSIONS);
    let deflate = offer.deflate(options, extensions.as_deref())?;
    let handshake = Handshake {
        transport,
        protocol: opened.accepted.protocol.map(str::to_owned),
        extensions,
        status: 200,
        session: Some(opened.session.to_owned()),
        resume: false,
    };
    Ok((handshake, deflate))
}

/// The server's resume answer on an open (its grace window and the first key), if it agreed.
fn resume_accepted(headers: &HeaderMap) -> Option<(std::time::Duration, String)> {
    let value = headers.get(fetch::H2WS_RESUME)?.to_str().ok()?;
    let accepted = h2ws_codec::resume::parse_accept(value)?;
    Some((accepted.grace, accepted.key.to_owned()))
}

/// A fetch upstream request of `session` (HTTP/2 and HTTP/3 alike; the `post` batches add
/// their `h2ws-seq`).
pub(crate) fn fetch_upstream_request(
    uri: &str,
    session: &str,
    options: &OpenOptions,
) -> Result<Request<()>, Error> {
    let mut upstream = request(Method::POST, uri)?;
    let h = upstream.headers_mut();
    for (name, value) in fetch::upstream_request_headers(session, None) {
        h.insert(name, header_value(&value)?);
    }
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(fetch::CONTENT_TYPE),
    );
    add_common_headers(h, options)?;
    Ok(upstream)
}

pub(crate) fn request(method: Method, uri: &str) -> Result<Request<()>, Error> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .map_err(|e| Error::InvalidUrl(format!("{uri}: {e}")))
}

pub(crate) fn header_value(v: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(v).map_err(|_| Error::InvalidHeader(v.to_owned()))
}

pub(crate) fn add_common_headers(h: &mut HeaderMap, options: &OpenOptions) -> Result<(), Error> {
    if let Some(origin) = &options.origin {
        h.insert(http::header::ORIGIN, header_value(origin)?);
    }
    for (name, value) in &options.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::InvalidHeader(name.clone()))?;
        h.append(name, header_value(value)?);
    }
    Ok(())
}

pub(crate) fn header_pairs(h: &HeaderMap) -> Vec<(&str, &[u8])> {
    h.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect()
}

pub(crate) fn header_string(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A refusal's status and the first line of its (bounded) body.
pub(crate) async fn refusal(status: u16, mut body: RecvStream) -> Error {
    let mut text = Vec::new();
    while text.len() < MAX_REFUSAL_BODY {
        match body.data().await {
            Some(Ok(chunk)) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                text.extend_from_slice(&chunk);
            }
            _ => break,
        }
    }
    Error::Refused {
        status,
        reason: super::http1::first_line(&text),
    }
}
