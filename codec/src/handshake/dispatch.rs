//! What kind of request arrived on a socket path (DESIGN §1's dispatch table), so every
//! transport can be served on the same URL path: the open of a socket on one of the transports,
//! or one of the fetch transports' follow-up requests (upstream, batch, acknowledgement).
//!
//! Classification looks only at the request's shape; the transport's own `validate_*` then
//! checks the details. CORS preflights (`OPTIONS`) are the server's to answer before this.

use super::fetch::{H2WS_READ, H2WS_RESUME, H2WS_SEQ, H2WS_SESSION, H2WS_VERSION};
use super::native::is_native_scheme;
use super::{has_token, single_header, HandshakeError, RequestHead};

/// The request kinds of DESIGN §1, as chosen by [`classify`]. Not a transport: a `stream`
/// socket is a `FetchOpen` plus a `FetchUpstreamStream` (and `FetchAck`s), a `post` socket a
/// `FetchOpen` plus `FetchUpstreamPost`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `GET` + `Upgrade: websocket` (HTTP/1.1): `rfc6455::validate_request`.
    Rfc6455,
    /// `CONNECT` + `:protocol websocket` (HTTP/2): `rfc8441::validate_request`.
    Rfc8441,
    /// `:scheme ws|wss` (HTTP/2): `native::validate_request`.
    Native,
    /// `POST` + `h2ws-version`, no session: `fetch::validate_open`.
    FetchOpen,
    /// `POST` + `h2ws-session`, no `h2ws-seq`: `fetch::validate_upstream`, stream upstream.
    FetchUpstreamStream,
    /// `POST` + `h2ws-session` + `h2ws-seq`: `fetch::validate_upstream`, one batch.
    FetchUpstreamPost,
    /// `POST` + `h2ws-session` + `h2ws-read`, no `h2ws-seq`: `fetch::validate_upstream`, an
    /// acknowledgement of downstream bytes read (the read window).
    FetchAck,
    /// `PUT`/`POST` + `h2ws-session` + `h2ws-resume`: `fetch::validate_reattach`, a resumed
    /// session's new downstream (codec `resume`).
    FetchResume,
}

/// Picks the transport from the request's shape, or refuses with 400 and a reason.
///
/// Order matters: `:scheme ws|wss` marks a native request whatever else it carries (its own
/// validation then refuses stray HTTP/1.1 headers), and a session token marks an upstream even
/// if `h2ws-version` is present too.
pub fn classify(
    head: &RequestHead<'_>,
    headers: &[(&str, &[u8])],
) -> Result<RequestKind, HandshakeError> {
    if head.scheme.is_some_and(is_native_scheme) {
        return Ok(RequestKind::Native);
    }
    match head.method {
        "CONNECT" => match head.protocol {
            Some(p) if p.eq_ignore_ascii_case("websocket") => Ok(RequestKind::Rfc8441),
            Some(_) => Err(HandshakeError::bad_request("unsupported :protocol")),
            None => Err(HandshakeError::bad_request(
                "CONNECT without :protocol websocket",
            )),
        },
        "GET" => {
            if has_token(headers, "upgrade", "websocket") {
                Ok(RequestKind::Rfc6455)
            } else {
                Err(HandshakeError::bad_request(
                    "not a WebSocket request: GET without Upgrade: websocket",
                ))
            }
        }
        // PUT: what the browser library sends for the open, `post` batches and acks (see
        // `fetch::METHOD`); POST: the same, and the only method of a `stream` upstream.
        "POST" | "PUT" => {
            let session = single_header(headers, H2WS_SESSION, "duplicate h2ws-session header")?;
            let seq = single_header(headers, H2WS_SEQ, "duplicate h2ws-seq header")?;
            let version = single_header(headers, H2WS_VERSION, "duplicate h2ws-version header")?;
            let read = single_header(headers, H2WS_READ, "duplicate h2ws-read header")?;
            let resume = single_header(headers, H2WS_RESUME, "duplicate h2ws-resume header")?;
            match (session, seq, version) {
                (Some(_), _, _) if resume.is_some() => Ok(RequestKind::FetchResume),
                (Some(_), Some(_), _) => Ok(RequestKind::FetchUpstreamPost),
                (Some(_), None, _) if read.is_some() => Ok(RequestKind::FetchAck),
                (Some(_), None, _) if head.method == "PUT" => Err(HandshakeError::bad_request(
                    "a stream upstream is a POST (PUT is for the open, post batches and acks)",
                )),
                (Some(_), None, _) => Ok(RequestKind::FetchUpstreamStream),
                (None, Some(_), _) => {
                    Err(HandshakeError::bad_request("h2ws-seq without h2ws-session"))
                }
                (None, None, Some(_)) => Ok(RequestKind::FetchOpen),
                (None, None, None) => Err(HandshakeError::bad_request(
                    "not a WebSocket request: POST without h2ws-version",
                )),
            }
        }
        _ => Err(HandshakeError::bad_request(
            "not a WebSocket request: unexpected method",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &'static str) -> RequestHead<'static> {
        RequestHead {
            method,
            ..Default::default()
        }
    }

    #[test]
    fn design_table() {
        let upgrade: &[(&str, &[u8])] = &[("Upgrade", b"websocket"), ("Connection", b"Upgrade")];
        assert_eq!(classify(&head("GET"), upgrade), Ok(RequestKind::Rfc6455));
        let connect = RequestHead {
            protocol: Some("websocket"),
            scheme: Some("https"),
            ..head("CONNECT")
        };
        assert_eq!(classify(&connect, &[]), Ok(RequestKind::Rfc8441));
        let native = RequestHead {
            scheme: Some("wss"),
            ..head("GET")
        };
        assert_eq!(classify(&native, &[]), Ok(RequestKind::Native));
        // Even with stray upgrade headers: native validation refuses them with a reason.
        assert_eq!(classify(&native, upgrade), Ok(RequestKind::Native));
        let open: &[(&str, &[u8])] = &[("h2ws-version", b"1")];
        assert_eq!(classify(&head("POST"), open), Ok(RequestKind::FetchOpen));
        // An unknown version is still an open request; validate_open answers 400 for it.
        let open2: &[(&str, &[u8])] = &[("h2ws-version", b"2")];
        assert_eq!(classify(&head("POST"), open2), Ok(RequestKind::FetchOpen));
        let stream: &[(&str, &[u8])] = &[("h2ws-session", b"t"), ("h2ws-version", b"1")];
        assert_eq!(
            classify(&head("POST"), stream),
            Ok(RequestKind::FetchUpstreamStream)
        );
        let ack: &[(&str, &[u8])] = &[("h2ws-session", b"t"), ("h2ws-read", b"10")];
        assert_eq!(classify(&head("POST"), ack), Ok(RequestKind::FetchAck));
        // A re-attach (resume): session + h2ws-resume, on either method, whatever else it has
        // (an open offering resume has no session: still an open).
        let reattach: &[(&str, &[u8])] = &[
            ("h2ws-session", b"t"),
            ("h2ws-resume", b"key=k"),
            ("h2ws-version", b"1"),
        ];
        assert_eq!(
            classify(&head("PUT"), reattach),
            Ok(RequestKind::FetchResume)
        );
        assert_eq!(
            classify(&head("POST"), reattach),
            Ok(RequestKind::FetchResume)
        );
        let offer: &[(&str, &[u8])] = &[("h2ws-version", b"1"), ("h2ws-resume", b"1")];
        assert_eq!(classify(&head("PUT"), offer), Ok(RequestKind::FetchOpen));
        // PUT (what the browser library sends): the open, a post batch, an ack; never a stream.
        assert_eq!(classify(&head("PUT"), open), Ok(RequestKind::FetchOpen));
        assert_eq!(classify(&head("PUT"), ack), Ok(RequestKind::FetchAck));
        assert_eq!(
            classify(&head("PUT"), &[("h2ws-session", b"t"), ("h2ws-seq", b"0")]),
            Ok(RequestKind::FetchUpstreamPost)
        );
        assert_eq!(
            classify(&head("PUT"), &[("h2ws-session", b"t")]).map_err(|e| e.status),
            Err(400)
        );
        let post: &[(&str, &[u8])] = &[("h2ws-session", b"t"), ("h2ws-seq", b"0")];
        assert_eq!(
            classify(&head("POST"), post),
            Ok(RequestKind::FetchUpstreamPost)
        );
    }

    type Headers<'a> = &'a [(&'a str, &'a [u8])];

    #[test]
    fn everything_else_is_400() {
        let cases: [(RequestHead<'_>, Headers<'_>); 8] = [
            (head("GET"), &[]),
            (head("GET"), &[("upgrade", b"h2c")]),
            (head("POST"), &[]),
            (head("POST"), &[("h2ws-seq", b"1")]),
            (head("PUT"), &[("h2ws-session", b"t")]),
            (head("DELETE"), &[("h2ws-version", b"1")]),
            (head("CONNECT"), &[]),
            (
                RequestHead {
                    protocol: Some("connect-udp"),
                    ..head("CONNECT")
                },
                &[],
            ),
        ];
        for (h, headers) in cases {
            let e = classify(&h, headers).unwrap_err();
            assert_eq!(e.status, 400, "{h:?}");
            assert!(!e.reason.is_empty());
        }
        let dup: &[(&str, &[u8])] = &[("h2ws-session", b"a"), ("h2ws-session", b"b")];
        assert_eq!(
            classify(&head("POST"), dup).unwrap_err().reason,
            "duplicate h2ws-session header"
        );
    }
}
