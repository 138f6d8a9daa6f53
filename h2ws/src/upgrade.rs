//! Embedding: [`SocketUpgrade`], an axum extractor that serves every h2ws transport on the
//! route it is used on, and [`route`], a ready-made route for an app function.
//!
//! The request is classified by shape (DESIGN §1). Socket opens (`rfc6455`, `rfc8441`,
//! `native`, the fetch open) produce a `SocketUpgrade` the handler can inspect, then accept
//! with [`SocketUpgrade::on_socket`] or refuse by returning any other response. Requests that
//! are not opens — fetch upstreams (`stream` attach, `post` batches) and CORS preflights — are
//! answered by the extractor itself, as its rejection, without calling the handler.
//!
//! The `native` mapping needs exact DATA frames, which only h2ws's own HTTP/2 loop
//! gives ([`Server`](crate::Server)); in a plain axum/hyper server a native request is refused
//! with 501. `rfc8441` works on hyper's HTTP/2 server with
//! `enable_connect_protocol()`; `rfc6455` needs hyper's upgrades (`axum::serve` has them).

use std::future::Future;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, MethodRouter};
use h2ws_codec::handshake::{self, negotiate, ExtensionOffer, Transport as CodecTransport};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

use crate::endpoint::Endpoint;
use crate::h2conn::OwnH2Loop;
use crate::request::{
    check_origin, cors_headers, header_pairs, headers, request_head, Negotiated, Pending, Refusal,
};
use crate::socket::{HandshakeInfo, Socket, Transport};
use crate::transport;

fn extended_connect_protocol(req: &http::request::Parts) -> Option<String> {
    if let Some(p) = req.extensions.get::<hyper::ext::Protocol>() {
        return Some(p.as_str().to_string());
    }
    req.extensions
        .get::<h2::ext::Protocol>()
        .map(|p| p.as_str().to_string())
}

fn preflight(endpoint: &Endpoint, req: &http::request::Parts) -> Response {
    if let Err(refusal) = check_origin(endpoint, req) {
        return refusal.into_response();
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    cors_headers(&req.headers, h);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        // PUT: the browser library's open, batches and acks (codec `fetch::METHOD`).
        HeaderValue::from_static("POST, PUT"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_str(&format!(
            "{}, content-type, authorization",
            headers::ALLOW_HEADERS
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(headers::ALLOW_HEADERS)),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    res
}

/// An accepted-but-not-yet-answered WebSocket handshake on any transport.
///
/// ```no_run
/// use axum::{response::Response, routing::any, Router};
/// use h2ws::SocketUpgrade;
///
/// async fn handler(upgrade: SocketUpgrade) -> Response {
///     if upgrade.info().authorization() != Some("Bearer secret") {
///         return (http::StatusCode::UNAUTHORIZED, "who are you?").into_response();
///     }
///     upgrade.protocols(["chat"]).on_socket(|mut socket| async move {
///         while let Some(msg) = socket.recv().await {
///             if socket.send(msg).await.is_err() {
///                 break;
///             }
///         }
///     })
/// }
/// # use axum::response::IntoResponse;
/// let app: Router = Router::new().route("/ws", any(handler));
/// ```
pub struct SocketUpgrade {
    pub(crate) endpoint: Endpoint,
    pub(crate) info: HandshakeInfo,
    pub(crate) pending: Pending,
    offered_extensions: Vec<ExtensionOffer>,
    offered_extensions_header: Option<String>,
    supported_protocols: Vec<String>,
    forced_protocol: Option<Option<String>>,
    forced_extensions: Option<Option<String>>,
    deflate: bool,
    deliver_fragments: bool,
}

impl<S: Send + Sync> FromRequest<S> for SocketUpgrade {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let endpoint = parts
            .extensions
            .get::<Endpoint>()
            .cloned()
            .unwrap_or_else(|| Endpoint::global().clone());
        let refuse = |r: Refusal| r.into_response();
        if parts.method == Method::OPTIONS
            && parts
                .headers
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return Err(preflight(&endpoint, &parts));
        }
        let protocol = extended_connect_protocol(&parts);
        let kind = {
            let head = request_head(&parts, protocol.as_deref());
            let pairs = header_pairs(&parts.headers);
            handshake::classify(&head, &pairs).map_err(|e| refuse(e.into()))?
        };
        if matches!(
            kind,
            CodecTransport::FetchUpstreamStream
                | CodecTransport::FetchUpstreamPost
                | CodecTransport::FetchAck
        ) {
            return Err(crate::sessions::upstream(&endpoint, parts, body).await);
        }
        // Validate the opening request with the codec; keep an owned copy of the offer.
        let (transport, offer) = {
            let head = request_head(&parts, protocol.as_deref());
            let pairs = header_pairs(&parts.headers);
            let (transport, offer) = match kind {
                CodecTransport::Rfc6455 => (
                    Transport::Rfc6455,
                    handshake::rfc6455::validate_request(head.method, &pairs)
                        .map(|info| info.offer),
                ),
                CodecTransport::Rfc8441 => (
                    Transport::Rfc8441,
                    handshake::rfc8441::validate_request(&head, &pairs),
                ),
                CodecTransport::Native => (
                    Transport::Native,
                    handshake::native::validate_request(&head, &pairs),
                ),
                _ => {
                    let t = if parts.version == Version::HTTP_2 {
                        Transport::Stream
                    } else {
                        Transport::Post
                    };
                    (t, handshake::fetch::validate_open(&pairs))
                }
            };
            let offer = offer.map_err(|e| refuse(e.into()))?;
            let protocols: Vec<String> = offer.protocols.iter().map(|p| p.to_string()).collect();
            (transport, (protocols, offer.extensions))
        };
        check_origin(&endpoint, &parts).map_err(refuse)?;
        if endpoint.stats().open_total() >= endpoint.config().max_sockets as u64 {
            return Err(refuse(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many open sockets",
            )));
        }
        let own_loop = parts.extensions.get::<OwnH2Loop>().copied();
        let pending = match transport {
            Transport::Rfc6455 => transport::rfc6455::validate(&mut parts).map_err(refuse)?,
            Transport::Rfc8441 => {
                transport::rfc8441::validate(&mut parts, own_loop, body).map_err(refuse)?
            }
            Transport::Native => transport::native::validate(own_loop, body).map_err(refuse)?,
            Transport::Stream | Transport::Post => Pending::FetchOpen,
        };
        let extensions_header = match transport {
            Transport::Stream | Transport::Post => headers::EXTENSIONS,
            _ => "sec-websocket-extensions",
        };
        let offered_extensions_header = header_list(&parts.headers, extensions_header);
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let (offered_protocols, offered_extensions) = offer;
        let info = HandshakeInfo {
            transport,
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
            peer,
            offered_protocols,
            protocol: None,
            extensions: None,
        };
        Ok(SocketUpgrade {
            endpoint,
            info,
            pending,
            offered_extensions,
            offered_extensions_header,
            supported_protocols: Vec::new(),
            forced_protocol: None,
            forced_extensions: None,
            deflate: true,
            deliver_fragments: false,
        })
    }
}

/// All values of a header joined with ", " (None if absent).
fn header_list(h: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = h
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

impl SocketUpgrade {
    /// The opening request: path, query, headers (Authorization, cookies), offered
    /// subprotocols, transport, HTTP version, peer address.
    pub fn info(&self) -> &HandshakeInfo {
        &self.info
    }

    /// The endpoint this socket will belong to (its limits and timeouts apply to it).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn transport(&self) -> Transport {
        self.info.transport
    }

    /// The subprotocols this route speaks; the first one the client offered (in the client's
    /// order) that is in this list is chosen.
    pub fn protocols<I, P>(mut self, supported: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.supported_protocols = supported.into_iter().map(Into::into).collect();
        self
    }

    /// Answer with exactly this subprotocol (a gateway forwarding its backend's choice).
    pub fn with_protocol(mut self, protocol: Option<String>) -> Self {
        self.forced_protocol = Some(protocol);
        self
    }

    /// Answer with exactly these extensions and let RSV1 through untouched instead of
    /// negotiating permessage-deflate here (a gateway forwarding its backend's answer).
    pub fn with_extensions(mut self, extensions: Option<String>) -> Self {
        self.forced_extensions = Some(extensions);
        self
    }

    /// The extensions the client offered (header value, for forwarding).
    pub fn offered_extensions(&self) -> Option<&str> {
        self.offered_extensions_header.as_deref()
    }

    /// Accept permessage-deflate offers (default: yes).
    pub fn permessage_deflate(mut self, enabled: bool) -> Self {
        self.deflate = enabled;
        self
    }

    /// Deliver data frames one by one ([`Incoming::Fragment`](crate::Incoming)) instead of
    /// whole messages: a proxy then never holds a whole message.
    pub fn deliver_fragments(mut self, enabled: bool) -> Self {
        self.deliver_fragments = enabled;
        self
    }

    /// Accepts the socket and runs `app` on it in a task; returns the response to send.
    pub fn on_socket<F, Fut>(mut self, app: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let protocol = match self.forced_protocol.take() {
            Some(p) => p,
            None => {
                let offered: Vec<&str> = self
                    .info
                    .offered_protocols
                    .iter()
                    .map(String::as_str)
                    .collect();
                let supported: Vec<&str> = self
                    .supported_protocols
                    .iter()
                    .map(String::as_str)
                    .collect();
                negotiate::select_subprotocol(&offered, &supported).map(str::to_string)
            }
        };
        let mut params = Negotiated {
            deflate: None,
            allow_rsv1: false,
            deliver_fragments: self.deliver_fragments,
        };
        let extensions = match self.forced_extensions.take() {
            Some(ext) => {
                // Only a forwarded negotiation may carry RSV1 (the backend terminates it).
                params.allow_rsv1 = ext.is_some();
                ext
            }
            None if self.deflate => h2ws_codec::deflate::negotiate_server(&self.offered_extensions)
                .map(|(p, header)| {
                    params.deflate = Some(p);
                    header
                }),
            None => None,
        };
        self.info.protocol = protocol;
        self.info.extensions = extensions;
        let info = Arc::new(self.info);
        let endpoint = self.endpoint;
        let run = move |socket: Socket| {
            endpoint_spawn(socket, app);
        };
        match self.pending {
            Pending::Rfc6455 { on_upgrade, accept } => {
                transport::rfc6455::accept(&endpoint, info, params, on_upgrade, accept, run)
            }
            Pending::Rfc8441Hyper { on_upgrade } => {
                transport::rfc8441::accept_hyper(&endpoint, info, params, on_upgrade, run)
            }
            Pending::Rfc8441Own { body } => {
                transport::rfc8441::accept_own(&endpoint, info, params, body, run)
            }
            Pending::Native {
                body,
                max_data_frame,
            } => transport::native::accept(&endpoint, info, params, body, max_data_frame, run),
            Pending::FetchOpen => transport::fetch::accept_open(&endpoint, info, params, run),
        }
    }
}

fn endpoint_spawn<F, Fut>(socket: Socket, app: F)
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(app(socket));
}

/// A route serving every transport and running `app` on each accepted socket.
///
/// ```
/// let app: axum::Router = axum::Router::new().route(
///     "/ws/echo",
///     h2ws::route(|mut socket| async move {
///         while let Some(msg) = socket.recv().await {
///             if socket.send(msg).await.is_err() {
///                 break;
///             }
///         }
///     }),
/// );
/// ```
pub fn route<F, Fut>(app: F) -> MethodRouter
where
    F: Fn(Socket) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    any(move |upgrade: SocketUpgrade| async move { upgrade.on_socket(app) })
}
