//! RFC 6455 over HTTP/1.1: `GET` + `Upgrade: websocket` on its own TCP (+ TLS) connection.

use std::fmt::Write as _;

use h2ws_codec::handshake::rfc6455;
use h2ws_codec::{Connection, Framing, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::connect::{self, Io, Target};
use super::wire::Wire;
use super::{ClientConfig, Error, Handshake, OpenOptions, Socket, Transport};

/// Response headers parsed at most.
const MAX_HEADERS: usize = 64;
/// Bytes of a refusal's body read for its reason.
const MAX_REFUSAL_BODY: usize = 1024;

/// Opens an RFC 6455 socket: connect, upgrade, then hand the stream to a driver.
pub(crate) async fn open(
    config: &ClientConfig,
    target: &Target,
    options: &OpenOptions,
) -> Result<Socket, Error> {
    let mut io = connect::connect_http11(target, config).await?;
    let key = rfc6455::client_key(super::random());
    let offer = super::ExtensionOffer::new(options)?;
    let request = build_request(target, options, &key, offer.header.as_deref())?;

    let limit = config.handshake_timeout;
    let (head, leftover) = tokio::time::timeout(limit, async {
        io.write_all(request.as_bytes()).await?;
        io.flush().await?;
        read_head(&mut io, config.max_response_head).await
    })
    .await
    .map_err(|_| Error::Timeout(limit, "waiting for the HTTP/1.1 upgrade response"))??;

    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    response
        .parse(&head)
        .map_err(|e| Error::Http1(e.to_string()))?;
    let status = response.code.unwrap_or(0);
    let pairs: Vec<(&str, &[u8])> = response.headers.iter().map(|h| (h.name, h.value)).collect();
    if status != 101 {
        let reason = tokio::time::timeout(limit, refusal_reason(&mut io, &pairs, leftover))
            .await
            .unwrap_or_default();
        return Err(Error::Refused { status, reason });
    }
    let offered: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
    let accepted = rfc6455::validate_response(status, &pairs, &key, &offered, &offer.names())
        .map_err(|e| Error::Handshake(e.to_string()))?;
    let extensions = super::raw_extensions(&pairs);
    let deflate = offer.deflate(options, extensions.as_deref())?;
    let handshake = Handshake {
        transport: Transport::Rfc6455,
        protocol: accepted.protocol.map(str::to_owned),
        extensions,
        status,
        session: None,
        resume: false,
    };
    let conn = Connection::new(
        Role::Client,
        Framing::Rfc6455,
        super::codec_config(config, options, deflate),
    )
    .with_mask_seed(super::random());
    Ok(super::start(
        config,
        conn,
        Wire::bytes(io, leftover),
        handshake,
        None,
    ))
}

fn build_request(
    target: &Target,
    options: &OpenOptions,
    key: &[u8; 24],
    extensions: Option<&str>,
) -> Result<String, Error> {
    let protocols: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
    let mut req = String::with_capacity(256);
    let _ = write!(req, "GET {} HTTP/1.1\r\n", target.path_and_query);
    for (name, value) in rfc6455::request_headers(&target.authority, key, &protocols, extensions) {
        let _ = write!(req, "{name}: {value}\r\n");
    }
    if let Some(origin) = &options.origin {
        check_header("origin", origin)?;
        let _ = write!(req, "Origin: {origin}\r\n");
    }
    for (name, value) in &options.headers {
        check_header(name, value)?;
        let _ = write!(req, "{name}: {value}\r\n");
    }
    req.push_str("\r\n");
    Ok(req)
}

/// Rejects anything that is not a header or could split the request (CR/LF).
fn check_header(name: &str, value: &str) -> Result<(), Error> {
    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::InvalidHeader(name.into()))?;
    http::HeaderValue::from_str(value).map_err(|_| Error::InvalidHeader(name.into()))?;
    Ok(())
}

/// Reads up to the end of the response head; returns the head and any bytes after it.
async fn read_head(io: &mut Io, max: usize) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(Error::Http1(
                "connection closed before the response head".into(),
            ));
        }
        let scan_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf[scan_from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = scan_from + pos + 4;
            let leftover = buf.split_off(end);
            return Ok((buf, leftover));
        }
        if buf.len() > max {
            return Err(Error::Http1(format!("response head over {max} bytes")));
        }
    }
}

/// The first line of a refusal's body (bounded by content-length and MAX_REFUSAL_BODY).
async fn refusal_reason(io: &mut Io, headers: &[(&str, &[u8])], mut body: Vec<u8>) -> String {
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REFUSAL_BODY);
    let mut chunk = [0u8; 1024];
    while body.len() < len {
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(len);
    first_line(&body)
}

pub(crate) fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.lines().next().unwrap_or("").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::parse("ws://127.0.0.1:9/chat?room=1").unwrap()
    }

    #[test]
    fn request_has_the_rfc6455_headers_and_options() {
        let options = OpenOptions {
            protocols: vec!["chat".into(), "superchat".into()],
            origin: Some("https://app.example".into()),
            headers: vec![("authorization".into(), "Bearer x".into())],
            ..OpenOptions::default()
        };
        let key = rfc6455::client_key([7; 16]);
        let req = build_request(&target(), &options, &key, Some("permessage-deflate")).unwrap();
        assert!(req.starts_with("GET /chat?room=1 HTTP/1.1\r\n"));
        for line in [
            "host: 127.0.0.1:9\r\n",
            "upgrade: websocket\r\n",
            "sec-websocket-version: 13\r\n",
            "sec-websocket-protocol: chat, superchat\r\n",
            "sec-websocket-extensions: permessage-deflate\r\n",
            "Origin: https://app.example\r\n",
            "authorization: Bearer x\r\n",
        ] {
            assert!(
                req.to_ascii_lowercase()
                    .contains(&line.to_ascii_lowercase()),
                "{line:?} in {req:?}"
            );
        }
        assert!(req.ends_with("\r\n\r\n"));
    }

    #[test]
    fn header_injection_is_refused() {
        let key = rfc6455::client_key([7; 16]);
        for (name, value) in [("x-a", "v\r\nevil: 1"), ("bad name", "v"), ("x-b", "v\n")] {
            let options = OpenOptions {
                headers: vec![(name.into(), value.into())],
                ..OpenOptions::default()
            };
            assert!(matches!(
                build_request(&target(), &options, &key, None),
                Err(Error::InvalidHeader(_))
            ));
        }
    }

    #[test]
    fn refusal_reason_is_the_first_line() {
        assert_eq!(
            first_line(b"origin not allowed\nmore"),
            "origin not allowed"
        );
        assert_eq!(first_line(b""), "");
        assert_eq!(
            first_line(b"\xff\xfe bad utf8\r\n"),
            "\u{fffd}\u{fffd} bad utf8"
        );
    }
}
