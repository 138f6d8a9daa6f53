//! The `post` fetch transport over HTTP/1.1 (DESIGN §1: what browsers use without HTTP/2):
//! the open request's streaming response on one connection, the ordered POST batches on a
//! second keep-alive connection (HTTP/1.1 cannot send while a response is still streaming).

use std::sync::Arc;

use bytes::Bytes;
use h2ws_codec::handshake::fetch;
use h2ws_codec::{Connection, Framing, Role};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;

use super::connect::{self, Io, Target};
use super::wire::{self, Wire};
use super::{ClientConfig, Error, Handshake, OpenOptions, Socket, Transport};

/// Bytes of a refusal's body read for its reason.
const MAX_REFUSAL_BODY: usize = 1024;

pub(crate) async fn open_post(
    config: &Arc<ClientConfig>,
    target: &Target,
    options: &OpenOptions,
) -> Result<Socket, Error> {
    let limit = config.handshake_timeout;
    let protocols: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
    let offer = super::ExtensionOffer::new(options)?;

    let mut open = request(target)?;
    let h = open.headers_mut();
    for (name, value) in fetch::open_request_headers(&protocols, offer.header.as_deref()) {
        h.insert(name, super::h2conn::header_value(&value)?);
    }
    super::h2conn::add_common_headers(h, options)?;

    let mut down = http1_connection::<Empty<Bytes>>(config, target).await?;
    let (open_parts, ()) = open.into_parts();
    let response = tokio::time::timeout(
        limit,
        down.send_request(Request::from_parts(open_parts, Empty::new())),
    )
    .await
    .map_err(|_| Error::Timeout(limit, "waiting for the open response"))?
    .map_err(http1_error)?;
    let (parts, body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        let text = tokio::time::timeout(limit, read_bounded(body))
            .await
            .unwrap_or_default();
        return Err(Error::Refused {
            status: parts.status.as_u16(),
            reason: super::http1::first_line(&text),
        });
    }
    let pairs = super::h2conn::header_pairs(&parts.headers);
    let opened = fetch::validate_open_response(200, &pairs, &protocols, &offer.names())
        .map_err(|e| Error::Handshake(e.to_string()))?;
    if !opened.transports.is_empty() && !opened.transports.contains(&"post") {
        return Err(Error::Handshake(format!(
            "the server offers upstream transports {:?} on HTTP/1.1, not post",
            opened.transports
        )));
    }
    let session = opened.session.to_owned();
    let extensions = super::h2conn::header_string(&parts.headers, fetch::H2WS_EXTENSIONS);
    let deflate = offer.deflate(options, extensions.as_deref())?;
    let handshake = Handshake {
        transport: Transport::Post,
        protocol: opened.accepted.protocol.map(str::to_owned),
        extensions,
        status: 200,
        session: Some(session.clone()),
        resume: false,
    };

    let mut upstream = request(target)?;
    let h = upstream.headers_mut();
    for (name, value) in fetch::upstream_request_headers(&session, None) {
        h.insert(name, super::h2conn::header_value(&value)?);
    }
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(fetch::CONTENT_TYPE),
    );
    super::h2conn::add_common_headers(h, options)?;
    let up = http1_connection::<Full<Bytes>>(config, target).await?;

    let conn = Connection::new(
        Role::Client,
        Framing::Stream,
        super::codec_config(config, options, deflate),
    );
    let wire = Wire::post(
        wire::Down::H1(body),
        wire::Up::H1 {
            requests: up,
            in_flight: None,
        },
        upstream,
    );
    Ok(super::start(config, conn, wire, handshake, None))
}

/// `POST <path>` with `Host` (HTTP/1.1 needs it; the URI is in origin form).
fn request(target: &Target) -> Result<Request<()>, Error> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(target.path_and_query.as_str())
        .body(())
        .map_err(|e| Error::InvalidUrl(format!("{}: {e}", target.path_and_query)))?;
    req.headers_mut().insert(
        http::header::HOST,
        super::h2conn::header_value(&target.authority)?,
    );
    Ok(req)
}

/// One HTTP/1.1 connection (TLS with ALPN `http/1.1`, or plain) driven by its own task.
async fn http1_connection<B>(
    config: &ClientConfig,
    target: &Target,
) -> Result<hyper::client::conn::http1::SendRequest<B>, Error>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io: Io = connect::connect_http11(target, config).await?;
    let limit = config.connect_timeout;
    let (send, conn) = tokio::time::timeout(
        limit,
        hyper::client::conn::http1::handshake(TokioIo::new(io)),
    )
    .await
    .map_err(|_| Error::Timeout(limit, "HTTP/1.1 handshake"))?
    .map_err(http1_error)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "client HTTP/1.1 connection ended");
        }
    });
    Ok(send)
}

async fn read_bounded(body: hyper::body::Incoming) -> Vec<u8> {
    let limited = http_body_util::Limited::new(body, MAX_REFUSAL_BODY);
    match limited.collect().await {
        Ok(c) => c.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    }
}

fn http1_error(e: hyper::Error) -> Error {
    Error::Http1(e.to_string())
}
