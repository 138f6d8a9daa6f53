//! WebSocket over HTTP/2 extended CONNECT (RFC 8441): what browsers' own `WebSocket` sends on
//! an HTTP/2 connection that advertised `SETTINGS_ENABLE_CONNECT_PROTOCOL`.
//!
//! No key and no accept (§5: the stream itself proves the server understood); the answer is
//! `200`, and the stream carries RFC 6455 frames.

use super::{
    optional_version_13, push_accepted, read_accepted, read_offer, Accepted, HandshakeError, Offer,
    RequestHead,
};
use alloc::string::String;
use alloc::vec::Vec;

/// The status of a successful answer.
pub const OK: u16 = 200;

/// Server side: checks an extended CONNECT (RFC 8441 §4-5): `:method CONNECT`,
/// `:protocol websocket`, `:scheme`, `:path` and `:authority` present; `sec-websocket-version`
/// may be absent (RFC 8441 keeps it but some clients omit it), else it must be 13.
pub fn validate_request<'a>(
    head: &RequestHead<'_>,
    headers: &[(&str, &'a [u8])],
) -> Result<Offer<'a>, HandshakeError> {
    if head.method != "CONNECT" {
        return Err(HandshakeError::bad_request(
            "extended CONNECT must use CONNECT",
        ));
    }
    match head.protocol {
        Some(p) if p.eq_ignore_ascii_case("websocket") => {}
        Some(_) => return Err(HandshakeError::bad_request("unsupported :protocol")),
        None => return Err(HandshakeError::bad_request("missing :protocol")),
    }
    if head.scheme.is_none_or(str::is_empty) {
        return Err(HandshakeError::bad_request("missing :scheme"));
    }
    if head.path.is_none_or(str::is_empty) {
        return Err(HandshakeError::bad_request("missing :path"));
    }
    if head.authority.is_none_or(str::is_empty) {
        return Err(HandshakeError::bad_request("missing :authority"));
    }
    optional_version_13(headers)?;
    read_offer(
        headers,
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    )
}

/// The headers of the `200` answer: the chosen protocol / extensions, if any.
pub fn response_headers(
    protocol: Option<&str>,
    extensions: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    push_accepted(
        &mut out,
        ("sec-websocket-protocol", "sec-websocket-extensions"),
        protocol,
        extensions,
    );
    out
}

/// Client side: status 200 and a protocol / extensions among those offered.
pub fn validate_response<'a>(
    status: u16,
    headers: &[(&str, &'a [u8])],
    offered_protocols: &[&str],
    offered_extensions: &[&str],
) -> Result<Accepted<'a>, HandshakeError> {
    if status != OK {
        return Err(HandshakeError::new(
            status,
            "server refused the extended CONNECT",
        ));
    }
    read_accepted(
        status,
        headers,
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        offered_protocols,
        offered_extensions,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn head() -> RequestHead<'static> {
        RequestHead {
            method: "CONNECT",
            scheme: Some("https"),
            authority: Some("server.example.com"),
            path: Some("/chat"),
            protocol: Some("websocket"),
        }
    }

    const HEADERS: &[(&str, &[u8])] = &[
        ("sec-websocket-protocol", b"chat, superchat"),
        ("sec-websocket-extensions", b"permessage-deflate"),
        ("sec-websocket-version", b"13"),
        ("origin", b"http://www.example.com"),
    ];

    #[test]
    fn rfc8441_section_5_1_example() {
        let offer = validate_request(&head(), HEADERS).unwrap();
        assert_eq!(offer.protocols, vec!["chat", "superchat"]);
        assert_eq!(offer.extensions[0].name, "permessage-deflate");
        assert_eq!(offer.origin, Some("http://www.example.com"));
        // Missing version is tolerated.
        assert!(validate_request(&head(), &HEADERS[..2]).is_ok());
    }

    #[test]
    fn refusals() {
        let cases = [
            (
                RequestHead {
                    method: "GET",
                    ..head()
                },
                "extended CONNECT must use CONNECT",
            ),
            (
                RequestHead {
                    protocol: None,
                    ..head()
                },
                "missing :protocol",
            ),
            (
                RequestHead {
                    protocol: Some("h2ws"),
                    ..head()
                },
                "unsupported :protocol",
            ),
            (
                RequestHead {
                    scheme: None,
                    ..head()
                },
                "missing :scheme",
            ),
            (
                RequestHead {
                    path: Some(""),
                    ..head()
                },
                "missing :path",
            ),
            (
                RequestHead {
                    authority: None,
                    ..head()
                },
                "missing :authority",
            ),
        ];
        for (h, reason) in cases {
            assert_eq!(
                validate_request(&h, HEADERS).unwrap_err(),
                HandshakeError::bad_request(reason)
            );
        }
        let v8: &[(&str, &[u8])] = &[("sec-websocket-version", b"8")];
        assert_eq!(validate_request(&head(), v8).unwrap_err().status, 426);
    }

    #[test]
    fn response_round_trip() {
        let r = response_headers(Some("chat"), None);
        let pairs: Vec<(&str, &[u8])> = r.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        assert_eq!(
            validate_response(200, &pairs, &["chat"], &[])
                .unwrap()
                .protocol,
            Some("chat")
        );
        assert_eq!(
            validate_response(404, &pairs, &["chat"], &[])
                .unwrap_err()
                .status,
            404
        );
        assert!(response_headers(None, Some("")).is_empty());
    }
}
