//! The fetch transports' open (DESIGN §2.1): `PUT` (codec `fetch::METHOD`, what the browser
//! library sends) or `POST` with `h2ws-version: 1`, answered 200
//! `application/h2ws` with a session token; the response body is the downstream (stream
//! framing, MASK = 0). The upstream attaches later ([`crate::sessions`]).

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use h2ws_codec::handshake::fetch;
use h2ws_codec::Framing;
use http::header::{self, HeaderValue};

use crate::endpoint::Endpoint;
use crate::read_window::ReadWindow;
use crate::request::{cors_headers, headers, Negotiated};
use crate::socket::{HandshakeInfo, Socket};
use crate::wiring::Edge;

pub(crate) fn accept_open(
    endpoint: &Endpoint,
    info: Arc<HandshakeInfo>,
    params: Negotiated,
    run: impl FnOnce(Socket),
) -> Response {
    let window = {
        let pairs = crate::request::header_pairs(&info.headers);
        fetch::acks_offered(&pairs).then(|| ReadWindow::new(fetch::READ_WINDOW))
    };
    let (output, body) = super::gated_body_output(window.clone());
    // Bytes right behind the headers, so `fetch()` resolves in Firefox and WebKit and buffering
    // proxies forward the headers at once (codec `OPEN_PREAMBLE`). The queue is new and empty.
    if output
        .try_send(Ok(bytes::Bytes::from_static(&fetch::OPEN_PREAMBLE)))
        .is_err()
    {
        tracing::warn!("open preamble not queued");
    }
    let opened = match endpoint.0.sessions.open(endpoint.config(), info.transport) {
        Ok(o) => o,
        Err(refusal) => return refusal.into_response(),
    };
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(headers::CONTENT_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(token) = HeaderValue::from_str(&opened.token) {
        h.insert(headers::SESSION, token);
    }
    // Both, on HTTP/1.1 too (a chunked request body streams; behind a proxy HTTP/1.1 is what
    // the server sees of an HTTP/2 browser): the client picks (codec `SERVER_TRANSPORTS`).
    h.insert(
        headers::TRANSPORTS,
        HeaderValue::from_static(fetch::SERVER_TRANSPORTS),
    );
    if let Some(window) = &window {
        h.insert(fetch::H2WS_WINDOW, HeaderValue::from(window.window()));
        opened.session.set_read_window(window.clone());
    }
    crate::request::set_negotiated(h, &info, headers::PROTOCOL, headers::EXTENSIONS);
    cors_headers(&info.headers, h);
    let edge = Edge::Queues {
        input: opened.input,
        output,
    };
    let mut wiring = super::wiring(Framing::Stream, edge, params);
    wiring.attach_timeout = Some(endpoint.config().attach_timeout);
    let sessions_endpoint = endpoint.clone();
    let token = opened.token.clone();
    let ended_window = window.clone();
    wiring.on_end = Some(Box::new(move || {
        sessions_endpoint.0.sessions.end(&token);
        if let Some(window) = ended_window {
            window.release();
        }
    }));
    let (socket, handle) =
        super::spawn_socket(endpoint, info, opened.session.transport.clone(), wiring);
    opened.session.set_socket(handle);
    run(socket);
    res
}
