//! The request toolbox shared by the dispatcher ([`crate::upgrade`]), the transports
//! ([`crate::transport`]) and the fetch sessions ([`crate::sessions`]): refusals, header
//! helpers, the Origin check and CORS, what a handshake negotiated and what an accept still
//! needs. It imports none of them, so they all depend on it and not on each other.

use std::borrow::Cow;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use h2ws_codec::handshake::{HandshakeError, RequestHead};
use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Version};

use crate::config::{origin_allowed, SocketConfig};
use crate::socket::HandshakeInfo;

/// Headers of the fetch transports (DESIGN §2), from the codec.
pub(crate) mod headers {
    pub use h2ws_codec::handshake::fetch::{
        ALLOW_HEADERS, CONTENT_TYPE, EXPOSE_HEADERS, H2WS_EXTENSIONS as EXTENSIONS,
        H2WS_PROTOCOL as PROTOCOL, H2WS_SESSION as SESSION, H2WS_TRANSPORTS as TRANSPORTS,
    };
}

/// A refused handshake: an HTTP status and a one-line reason (also the response body).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {reason}")]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: Cow<'static, str>,
}

impl Refusal {
    pub fn new(status: StatusCode, reason: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
        }
    }

    pub fn bad_request(reason: impl Into<Cow<'static, str>>) -> Self {
        Refusal::new(StatusCode::BAD_REQUEST, reason)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut res = (self.status, format!("{}\n", self.reason)).into_response();
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UPGRADE_REQUIRED {
            res.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        res
    }
}

impl From<HandshakeError> for Refusal {
    fn from(e: HandshakeError) -> Self {
        Refusal::new(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            e.reason,
        )
    }
}

/// A request head in the codec's terms (`:scheme` only for HTTP/2: an HTTP/1.1 absolute
/// URI is not a native request).
pub(crate) fn request_head<'a>(
    req: &'a http::request::Parts,
    protocol: Option<&'a str>,
) -> RequestHead<'a> {
    let h2 = req.version == Version::HTTP_2;
    RequestHead {
        method: req.method.as_str(),
        scheme: if h2 { req.uri.scheme_str() } else { None },
        authority: req.uri.authority().map(|a| a.as_str()),
        path: req.uri.path_and_query().map(|p| p.as_str()),
        protocol,
    }
}

/// The headers as `(name, value)` pairs for the codec's handshake helpers.
pub(crate) fn header_pairs(h: &HeaderMap) -> Vec<(&str, &[u8])> {
    h.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect()
}

pub(crate) fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The authority the request was sent to (`:authority` or `Host`).
pub(crate) fn authority(req: &http::request::Parts) -> Option<String> {
    req.uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| header_str(&req.headers, "host").map(str::to_string))
}

/// Refuses a request whose `Origin` is not allowed (403).
pub(crate) fn check_origin(
    config: &SocketConfig,
    req: &http::request::Parts,
) -> Result<(), Refusal> {
    match header_str(&req.headers, "origin") {
        None => Ok(()),
        Some(origin)
            if origin_allowed(origin, authority(req).as_deref(), &config.allowed_origins) =>
        {
            Ok(())
        }
        Some(origin) => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("origin {origin} is not allowed"),
        )),
    }
}

/// CORS headers for an allowed cross-origin request (none when there is no `Origin`).
pub(crate) fn cors_headers(req_headers: &HeaderMap, res_headers: &mut HeaderMap) {
    if let Some(origin) = req_headers.get(header::ORIGIN) {
        res_headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        res_headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(headers::EXPOSE_HEADERS),
        );
        res_headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

/// What the transport needs to finish accepting.
pub(crate) enum Pending {
    Rfc6455 {
        on_upgrade: hyper::upgrade::OnUpgrade,
        accept: String,
    },
    /// RFC 8441 through hyper's HTTP/2 server (upgrade).
    Rfc8441Hyper {
        on_upgrade: hyper::upgrade::OnUpgrade,
    },
    /// RFC 8441 on the own HTTP/2 loop: the request body is the inbound stream.
    Rfc8441Own {
        body: Body,
    },
    Native {
        body: Body,
        max_data_frame: usize,
    },
    FetchOpen,
}

/// Codec parameters negotiated in the handshake.
pub(crate) struct Negotiated {
    pub deflate: Option<h2ws_codec::deflate::DeflateParams>,
    pub allow_rsv1: bool,
    pub deliver_fragments: bool,
}

/// Sets the response headers common to accepted sockets.
pub(crate) fn set_negotiated(
    res: &mut HeaderMap,
    info: &HandshakeInfo,
    protocol_header: &'static str,
    extensions_header: &'static str,
) {
    if let Some(p) = info
        .protocol
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        res.insert(protocol_header, p);
    }
    if let Some(e) = info
        .extensions
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        res.insert(extensions_header, e);
    }
}
