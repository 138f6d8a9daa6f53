//! Embedding: [`upgrade_route`], a route serving every h2ws transport with a handler of yours,
//! the [`SocketUpgrade`] extractor that handler takes, and [`route`], a ready-made route for an
//! app function.
//!
//! The route classifies each request once, by shape (DESIGN §1), and sends it to what serves
//! it: CORS preflights are answered, fetch upstream requests (`stream` attach, `post` batches,
//! read acks) go to the fetch sessions, and socket opens (`rfc6455`, `rfc8441`, `native`, the
//! fetch open) go to the handler, whose `SocketUpgrade` can be inspected, then accepted with
//! [`SocketUpgrade::on_socket`] or refused by returning any other response. The extractor
//! only reads the open its route classified; it serves nothing in its rejection.
//!
//! The `native` mapping needs exact DATA frames, which only h2ws's own HTTP/2 loop
//! gives ([`Server`](crate::Server)); in a plain axum/hyper server a native request is refused
//! with 501. `rfc8441` works on hyper's HTTP/2 server with
//! `enable_connect_protocol()`; `rfc6455` needs hyper's upgrades (`axum::serve` has them).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, MethodRouter};
use h2ws_codec::handshake::{self, negotiate, ExtensionOffer, RequestKind};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

use crate::endpoint::Endpoint;
use crate::h2conn::{DeferredAnswer, DeferredAnswers, OwnH2Loop};
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
    if let Err(refusal) = check_origin(endpoint.config(), req) {
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
/// use axum::{response::Response, Extension, Router};
/// use h2ws::{Endpoint, SocketConfig, SocketUpgrade};
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
/// let app: Router = Router::new()
///     .route("/ws", h2ws::upgrade_route(handler))
///     .layer(Extension(Endpoint::new(SocketConfig::default())));
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

/// A request the route ([`upgrade_route`]) classified as a socket open, handed to the
/// [`SocketUpgrade`] extractor in the request extensions with the endpoint it belongs to.
#[derive(Clone)]
struct Opening {
    endpoint: Endpoint,
    kind: RequestKind,
    protocol: Option<String>,
}

/// What a request to an h2ws route turned out to be.
enum Dispatch {
    /// A socket open: goes on to the app's handler (with an [`Opening`] in its extensions).
    Open(Request),
    /// A fetch upstream request (`stream` attach, `post` batch, read ack), served by the fetch
    /// sessions.
    Upstream(Endpoint, http::request::Parts, axum::body::Body),
    /// A re-attach of a resumable fetch session (codec `resume`): a new downstream.
    Reattach(Endpoint, http::request::Parts),
    /// Answered here: a CORS preflight, a malformed request, or a route without an endpoint.
    Answered(Response),
}

/// Classifies a request once (DESIGN §1) and sends it to what serves it: preflights are
/// answered, fetch upstream requests (`stream` attach, `post` batches, read acks) go to the
/// fetch sessions, opens go on to the handler.
fn dispatch(req: Request) -> Dispatch {
    let Some(endpoint) = req.extensions().get::<Endpoint>().cloned() else {
        return Dispatch::Answered(misconfigured(
            "no h2ws::Endpoint in the request extensions: add \
             `.layer(axum::Extension(h2ws::Endpoint::new(config)))` to the router \
             (h2ws::Server does this for its routes)",
        ));
    };
    if req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let (parts, _) = req.into_parts();
        return Dispatch::Answered(preflight(&endpoint, &parts));
    }
    let (parts, body) = req.into_parts();
    let protocol = extended_connect_protocol(&parts);
    let kind = {
        let head = request_head(&parts, protocol.as_deref());
        let pairs = header_pairs(&parts.headers);
        match handshake::classify(&head, &pairs) {
            Ok(kind) => kind,
            Err(e) => return Dispatch::Answered(Refusal::from(e).into_response()),
        }
    };
    if matches!(
        kind,
        RequestKind::FetchUpstreamStream | RequestKind::FetchUpstreamPost | RequestKind::FetchAck
    ) {
        return Dispatch::Upstream(endpoint, parts, body);
    }
    if kind == RequestKind::FetchResume {
        return Dispatch::Reattach(endpoint, parts);
    }
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(Opening {
        endpoint,
        kind,
        protocol,
    });
    Dispatch::Open(req)
}

/// A 500 for a route set up wrongly, with the reason in the server log (the client learns
/// nothing about the server's setup).
fn misconfigured(reason: &'static str) -> Response {
    tracing::error!("h2ws route misconfigured: {reason}");
    Refusal::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "h2ws route misconfigured",
    )
    .into_response()
}

/// Reads the open its route classified ([`upgrade_route`], [`route`]); a `SocketUpgrade` on a
/// route of another kind (e.g. `axum::routing::any(handler)`) is a setup error: 500, logged.
/// Like axum's `WebSocketUpgrade`, it only reads what the request's extensions carry and
/// rejects with a status when something is missing; it never serves a request itself.
impl<S: Send + Sync> FromRequest<S> for SocketUpgrade {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Some(Opening {
            endpoint,
            kind,
            protocol,
        }) = parts.extensions.remove::<Opening>()
        else {
            return Err(misconfigured(
                "SocketUpgrade on a route not made by h2ws::upgrade_route or h2ws::route \
                 (fetch upstream requests and preflights would not be served)",
            ));
        };
        let refuse = |r: Refusal| r.into_response();
        // Validate the opening request with the codec; keep an owned copy of the offer.
        let (transport, offer) = {
            let head = request_head(&parts, protocol.as_deref());
            let pairs = header_pairs(&parts.headers);
            let (transport, offer) = match kind {
                RequestKind::Rfc6455 => (
                    Transport::Rfc6455,
                    handshake::rfc6455::validate_request(head.method, &pairs)
                        .map(|info| info.offer),
                ),
                RequestKind::Rfc8441 => (
                    Transport::Rfc8441,
                    handshake::rfc8441::validate_request(&head, &pairs),
                ),
                RequestKind::Native => (
                    Transport::Native,
                    handshake::native::validate_request(&head, &pairs),
                ),
                _ => {
                    let t = if matches!(parts.version, Version::HTTP_2 | Version::HTTP_3) {
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
        check_origin(endpoint.config(), &parts).map_err(refuse)?;
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
            uri: owned_uri(&parts.uri),
            version: parts.version,
            headers: owned_headers(&parts.headers),
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

/// A copy of the request's headers that shares no memory with the connection's read buffer.
///
/// hyper and h2 hand out header values (and custom names) as slices of the buffer they read the
/// request into; a clone keeps that whole buffer (hyper: 8-16 KiB per HTTP/1.1 connection)
/// alive as long as the socket's [`HandshakeInfo`] lives. Here every value is copied into one
/// allocation of exactly their total size, sliced per value; names are static for the standard
/// ones and copied otherwise.
fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let total: usize = headers.values().map(|v| v.as_bytes().len()).sum();
    let mut buf = bytes::BytesMut::with_capacity(total);
    for v in headers.values() {
        buf.extend_from_slice(v.as_bytes());
    }
    let buf = buf.freeze();
    let mut out = HeaderMap::with_capacity(headers.len());
    let mut at = 0;
    for (name, value) in headers {
        let len = value.as_bytes().len();
        let copied = http::HeaderValue::from_maybe_shared(buf.slice(at..at + len)).map(|mut v| {
            v.set_sensitive(value.is_sensitive());
            v
        });
        at += len;
        // A value hyper or h2 accepted is a valid header value; should one not be (their
        // checks differ from `http`'s), the original is kept rather than dropped.
        let value = copied.unwrap_or_else(|_| value.clone());
        let name = http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or(name.clone());
        out.append(name, value);
    }
    out
}

/// A copy of the request target that shares no memory with the connection's read buffer (see
/// [`owned_headers`]).
fn owned_uri(uri: &http::Uri) -> http::Uri {
    http::Uri::try_from(uri.to_string()).unwrap_or_else(|_| uri.clone())
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

/// A route serving every transport: socket opens go to `handler`, an axum handler taking a
/// [`SocketUpgrade`] (and any other extractors), which accepts or refuses them; fetch upstream
/// requests and CORS preflights are served by h2ws without calling it.
///
/// The route's [`Endpoint`] comes from the request extensions (`Extension<Endpoint>`, which
/// [`Server`](crate::Server) adds; in an app of your own add
/// `.layer(axum::Extension(Endpoint::new(config)))`); without one every request is answered
/// 500 and the reason logged. An extension rather than router state, as axum's own extractors
/// read connection facts: it works whatever state type the user's router has.
pub fn upgrade_route<H, T, S>(handler: H) -> MethodRouter<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    // The request is classified before any future is made, and each kind's future is boxed
    // on its own: a `stream` upstream request is served for as long as its socket lives, and
    // then holds only what serving it needs, not the request or the app handler's future. On
    // this crate's own loops its answer is deferred (`DeferredAnswer`): the router's futures
    // are freed at once instead of living as long as the socket.
    any(move |State(state): State<S>, req: Request| {
        let served: Pin<Box<dyn Future<Output = Response> + Send>> = match dispatch(req) {
            Dispatch::Open(req) => Box::pin(handler.clone().call(req, state)),
            Dispatch::Upstream(endpoint, parts, body) => {
                let defer = parts.extensions.get::<DeferredAnswers>().is_some();
                let answer = endpoint.serve_upstream(parts, body);
                if defer {
                    Box::pin(std::future::ready(DeferredAnswer::response(answer)))
                } else {
                    Box::pin(answer)
                }
            }
            Dispatch::Reattach(endpoint, parts) => {
                Box::pin(transport::fetch::accept_reattach(endpoint, parts))
            }
            Dispatch::Answered(res) => Box::pin(std::future::ready(res)),
        };
        served
    })
}

/// A route serving every transport and running `app` on each accepted socket
/// ([`upgrade_route`] with a handler that accepts every open; the endpoint comes the same way).
///
/// ```
/// use h2ws::{Endpoint, SocketConfig};
///
/// let app: axum::Router = axum::Router::new()
///     .route(
///         "/ws/echo",
///         h2ws::route(|mut socket| async move {
///             while let Some(msg) = socket.recv().await {
///                 if socket.send(msg).await.is_err() {
///                     break;
///                 }
///             }
///         }),
///     )
///     .layer(axum::Extension(Endpoint::new(SocketConfig::default())));
/// ```
pub fn route<F, Fut>(app: F) -> MethodRouter
where
    F: Fn(Socket) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    upgrade_route(move |upgrade: SocketUpgrade| async move { upgrade.on_socket(app) })
}
