//! The seed's native mapping (DESIGN §4): one HTTP/2 stream with `:scheme ws|wss`, answered
//! 200, then exactly one WebSocket frame per DATA frame each way. Needs h2ws's own
//! HTTP/2 loop, which keeps body chunks = DATA frames (see [`crate::h2conn`]).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use h2ws_codec::Framing;
use http::StatusCode;

use crate::endpoint::Endpoint;
use crate::h2conn::{OwnH2Loop, WholeDataFrames};
use crate::request::{Negotiated, Pending, Refusal};
use crate::socket::{HandshakeInfo, Socket};
use crate::wiring::Edge;

/// The codec has validated the request (DESIGN §4 header rules); this checks that it came
/// through the own HTTP/2 loop, which alone keeps DATA frames intact.
pub(crate) fn validate(own_loop: Option<OwnH2Loop>, body: Body) -> Result<Pending, Refusal> {
    let Some(own) = own_loop else {
        return Err(Refusal::new(
            StatusCode::NOT_IMPLEMENTED,
            "the native mapping needs h2ws's own HTTP/2 connection loop (h2ws::Server)",
        ));
    };
    Ok(Pending::Native {
        body,
        max_data_frame: own.max_data_frame,
    })
}

pub(crate) fn accept(
    endpoint: &Endpoint,
    info: Arc<HandshakeInfo>,
    params: Negotiated,
    body: Body,
    max_data_frame: usize,
    run: impl FnOnce(Socket),
) -> Response {
    let input = super::body_input(body);
    let (output, res_body) = super::body_output();
    let mut res = Response::new(res_body);
    res.extensions_mut().insert(WholeDataFrames);
    crate::request::set_negotiated(
        res.headers_mut(),
        &info,
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    );
    let mut wiring = super::wiring(Framing::Native, Edge::Queues { input, output }, params);
    wiring.reset_after_protocol_error = true;
    wiring.drain_input_after_close = true;
    wiring.native_max_payload = max_data_frame;
    super::start(endpoint, info, wiring, run);
    res
}
