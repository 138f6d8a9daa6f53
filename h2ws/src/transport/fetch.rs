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
use crate::reply::Replies;
use crate::request::{cors_headers, headers, Negotiated};
use crate::socket::{HandshakeInfo, Socket};
use crate::wiring::Edge;

/// A downstream (the open's or a re-attach's response body): held to a read window when the
/// request offers acks, its units open to `post` replies ([`Replies`]), with the open preamble
/// already queued — bytes right behind the headers,
/// so `fetch()` resolves in Firefox and WebKit and buffering proxies forward the headers at once
/// (codec `OPEN_PREAMBLE`).
fn downstream(
    headers: &http::HeaderMap,
) -> (
    Option<Arc<ReadWindow>>,
    Arc<Replies>,
    crate::wiring::queue::Sender<crate::wiring::Output>,
    axum::body::Body,
) {
    let window = {
        let pairs = crate::request::header_pairs(headers);
        fetch::acks_offered(&pairs).then(|| ReadWindow::new(fetch::READ_WINDOW))
    };
    let replies = Replies::new();
    let (output, body) = super::downstream_output(window.clone(), replies.clone());
    if output
        .try_send(Ok(bytes::Bytes::from_static(&fetch::OPEN_PREAMBLE)))
        .is_err()
    {
        tracing::warn!("open preamble not queued"); // the queue is new and empty
    }
    (window, replies, output, body)
}

pub(crate) fn accept_open(
    endpoint: &Endpoint,
    info: Arc<HandshakeInfo>,
    params: Negotiated,
    run: impl FnOnce(Socket),
) -> Response {
    let (window, replies, output, body) = downstream(&info.headers);
    // Resume when the client offers it and the server keeps sessions for it.
    let resume = endpoint.config().resume.filter(|_| {
        let pairs = crate::request::header_pairs(&info.headers);
        h2ws_codec::resume::resume_offered(&pairs)
    });
    let origin = info.headers.get(header::ORIGIN).cloned();
    let opened = match endpoint.0.sessions.open(
        endpoint.config(),
        info.transport,
        resume.map(|config| (config, origin)),
    ) {
        Ok(o) => o,
        Err(refusal) => return refusal.into_response(),
    };
    opened.session.set_replies(replies);
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
    if let (Some(config), Some((key, _))) = (&resume, &opened.resume) {
        if let Ok(v) = HeaderValue::from_str(&config.accept(key)) {
            h.insert(fetch::H2WS_RESUME, v);
        }
    }
    crate::request::set_negotiated(h, &info, headers::PROTOCOL, headers::EXTENSIONS);
    cors_headers(&info.headers, h);
    let edge = Edge::Queues {
        input: opened.input,
        output,
    };
    let mut wiring = super::wiring(Framing::Stream, edge, params);
    wiring.attach_timeout = Some(endpoint.config().attach_timeout);
    wiring.resume = resume
        .zip(opened.resume)
        .map(|(config, (_, rx))| (config, rx));
    let sessions_endpoint = endpoint.clone();
    let token = opened.token.clone();
    let ended_session = opened.session.clone();
    wiring.on_end = Some(Box::new(move || {
        sessions_endpoint.0.sessions.end(&token);
        // The window of the downstream in use now (a re-attach replaces it).
        ended_session.release_read_window();
    }));
    let (socket, handle) =
        super::spawn_socket(endpoint, info, opened.session.transport.clone(), wiring);
    opened.session.set_socket(handle);
    run(socket);
    res
}

/// A re-attach of a resumable session (codec `resume`): answered like an open — `200`, the
/// preamble, then the downstream, starting with the frames the client lacks — with the
/// server's received count and the next key; refusals as on upstream requests.
pub(crate) async fn accept_reattach(endpoint: Endpoint, parts: http::request::Parts) -> Response {
    let (window, replies, output, body) = downstream(&parts.headers);
    let reattached = endpoint
        .0
        .sessions
        .reattach(endpoint.config(), &parts, output, replies)
        .await;
    let mut res = match reattached {
        Err(refusal) => refusal.into_response(),
        Ok(r) => {
            let mut res = Response::new(body);
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(headers::CONTENT_TYPE),
            );
            if let Ok(token) = HeaderValue::from_str(&r.token) {
                h.insert(headers::SESSION, token);
            }
            if let Ok(v) = HeaderValue::from_str(&r.accept) {
                h.insert(fetch::H2WS_RESUME, v);
            }
            h.insert(fetch::H2WS_RECEIVED, HeaderValue::from(r.received));
            h.insert(fetch::H2WS_ATTACH, HeaderValue::from(r.generation));
            if let Some(window) = window {
                h.insert(fetch::H2WS_WINDOW, HeaderValue::from(window.window()));
                r.session.set_read_window(window);
            }
            res
        }
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors_headers(&parts.headers, res.headers_mut());
    res
}
