//! RFC 8441: extended CONNECT with `:protocol websocket` on HTTP/2, answered 200 (no
//! content-length); the stream then carries RFC 6455 frames. On h2ws's own loop the
//! request/response bodies are the stream; on hyper's HTTP/2 server it is hyper's upgrade.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use h2ws_codec::Framing;
use http::StatusCode;

use crate::endpoint::Endpoint;
use crate::h2conn::OwnH2Loop;
use crate::request::{Negotiated, Pending, Refusal};
use crate::socket::{HandshakeInfo, Socket};
use crate::wiring::Edge;

const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn validate(
    parts: &mut http::request::Parts,
    own_loop: Option<OwnH2Loop>,
    body: Body,
) -> Result<Pending, Refusal> {
    if own_loop.is_some() {
        return Ok(Pending::Rfc8441Own { body });
    }
    match parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
        Some(on_upgrade) => Ok(Pending::Rfc8441Hyper { on_upgrade }),
        None => Err(Refusal::new(
            StatusCode::NOT_IMPLEMENTED,
            "extended CONNECT is not upgradable on this server",
        )),
    }
}

fn ok_response(info: &HandshakeInfo, body: Body) -> Response {
    let mut res = Response::new(body);
    crate::request::set_negotiated(
        res.headers_mut(),
        info,
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    );
    res
}

pub(crate) fn accept_own(
    endpoint: &Endpoint,
    info: Arc<HandshakeInfo>,
    params: Negotiated,
    body: Body,
    run: impl FnOnce(Socket),
) -> Response {
    let input = super::body_input(body);
    let (output, res_body) = super::body_output();
    let res = ok_response(&info, res_body);
    let mut wiring = super::wiring(Framing::Rfc6455, Edge::Queues { input, output }, params);
    wiring.drain_input_after_close = true;
    super::start(endpoint, info, wiring, run);
    res
}

pub(crate) fn accept_hyper(
    endpoint: &Endpoint,
    info: Arc<HandshakeInfo>,
    params: Negotiated,
    on_upgrade: hyper::upgrade::OnUpgrade,
    run: impl FnOnce(Socket) + Send + 'static,
) -> Response {
    let res = ok_response(&info, Body::empty());
    let endpoint = endpoint.clone();
    tokio::spawn(async move {
        let upgraded = match tokio::time::timeout(UPGRADE_TIMEOUT, on_upgrade).await {
            Ok(Ok(u)) => u,
            Ok(Err(e)) => return tracing::debug!("extended CONNECT upgrade failed: {e}"),
            Err(_) => return tracing::debug!("extended CONNECT upgrade timed out"),
        };
        let wiring = super::wiring(Framing::Rfc6455, Edge::Upgraded(upgraded), params);
        super::start(&endpoint, info, wiring, run);
    });
    res
}
