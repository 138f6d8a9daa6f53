//! RFC 6455 over HTTP/1.1: `GET` + `Upgrade: websocket`, answered 101, then hyper's upgraded
//! connection carries masked client frames.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use h2ws_codec::handshake::rfc6455;
use h2ws_codec::Framing;
use http::header::{self, HeaderValue};
use http::{StatusCode, Version};

use crate::endpoint::Endpoint;
use crate::request::{Negotiated, Pending, Refusal};
use crate::socket::{HandshakeInfo, Socket};
use crate::wiring::Edge;

const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// The codec has validated the headers; this checks what is specific to hyper's upgrade.
pub(crate) fn validate(parts: &mut http::request::Parts) -> Result<Pending, Refusal> {
    if parts.version != Version::HTTP_11 {
        return Err(Refusal::bad_request(
            "GET + Upgrade: websocket needs HTTP/1.1 (use extended CONNECT on HTTP/2)",
        ));
    }
    let key = parts
        .headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| Refusal::bad_request("missing Sec-WebSocket-Key"))?;
    let accept = String::from_utf8_lossy(&rfc6455::accept_key(key.as_bytes())).into_owned();
    let on_upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "this server connection cannot upgrade (serve it with hyper upgrades)",
            )
        })?;
    Ok(Pending::Rfc6455 { on_upgrade, accept })
}

pub(crate) fn accept(
    endpoint: &Endpoint,
    info: Arc<HandshakeInfo>,
    params: Negotiated,
    on_upgrade: hyper::upgrade::OnUpgrade,
    accept: String,
    run: impl FnOnce(Socket) + Send + 'static,
) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    crate::request::set_negotiated(
        h,
        &info,
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    );
    let endpoint = endpoint.clone();
    tokio::spawn(async move {
        let upgraded = match tokio::time::timeout(UPGRADE_TIMEOUT, on_upgrade).await {
            Ok(Ok(u)) => u,
            Ok(Err(e)) => return tracing::debug!("upgrade failed: {e}"),
            Err(_) => return tracing::debug!("upgrade timed out"),
        };
        let wiring = super::wiring(Framing::Rfc6455, Edge::Upgraded(upgraded), params);
        super::start(&endpoint, info, wiring, run);
    });
    res
}
