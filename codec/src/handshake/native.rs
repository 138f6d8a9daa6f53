//! The native HTTP/2 mapping's handshake (DESIGN §4, the seed): a plain HTTP/2 request with
//! `:scheme ws|wss`, answered `200`. There is no key/accept exchange and no upgrade, so the
//! HTTP/1.1 handshake headers are refused: seeing them means a confused client or proxy.

use super::{
    optional_version_13, push_accepted, read_accepted, read_offer, Accepted, HandshakeError, Offer,
    RequestHead,
};
use alloc::string::String;
use alloc::vec::Vec;

/// The status of a successful answer (not 101: nothing is upgraded).
pub const OK: u16 = 200;

/// Headers that belong to the HTTP/1.1 handshake and are refused here (DESIGN §4).
pub const FORBIDDEN_HEADERS: [(&str, &str); 4] = [
    ("upgrade", "forbidden header: upgrade"),
    ("connection", "forbidden header: connection"),
    ("host", "forbidden header: host"),
    ("sec-websocket-key", "forbidden header: sec-websocket-key"),
];

/// True for `ws` / `wss`, the schemes that mark a native-mapping request.
pub fn is_native_scheme(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("ws") || scheme.eq_ignore_ascii_case("wss")
}

/// Server side: `:method GET`, `:scheme ws|wss`, `:authority` and `:path` present, none of
/// [`FORBIDDEN_HEADERS`], optional `sec-websocket-version: 13`, protocols, extensions, origin.
pub fn validate_request<'a>(
    head: &RequestHead<'_>,
    headers: &[(&str, &'a [u8])],
) -> Result<Offer<'a>, HandshakeError> {
    if head.method != "GET" {
        return Err(HandshakeError::bad_request(
            "native WebSocket request must use GET",
        ));
    }
    match head.scheme {
        Some(s) if is_native_scheme(s) => {}
        Some(_) => return Err(HandshakeError::bad_request(":scheme must be ws or wss")),
        None => return Err(HandshakeError::bad_request("missing :scheme")),
    }
    if head.authority.is_none_or(str::is_empty) {
        return Err(HandshakeError::bad_request("missing :authority"));
    }
    if head.path.is_none_or(str::is_empty) {
        return Err(HandshakeError::bad_request("missing :path"));
    }
    for (name, reason) in FORBIDDEN_HEADERS {
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(HandshakeError::bad_request(reason));
        }
    }
    optional_version_13(headers)?;
    read_offer(
        headers,
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    )
}

/// The headers of the `200` answer: the chosen protocol / extensions, if any (never
/// `sec-websocket-accept`).
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

/// The regular headers of a client's request (the pseudo-headers are `GET`, `ws`/`wss`,
/// authority, path); empty lists send no header.
pub fn request_headers(
    protocols: &[&str],
    extensions: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(3);
    out.push(("sec-websocket-version", "13".into()));
    if !protocols.is_empty() {
        out.push(("sec-websocket-protocol", protocols.join(", ")));
    }
    if let Some(e) = extensions.filter(|e| !e.is_empty()) {
        out.push(("sec-websocket-extensions", e.into()));
    }
    out
}

/// Client side: any status but 200 refuses the socket; a `sec-websocket-accept` means the
/// server mistook this for another mapping; protocol / extensions must be among those offered.
pub fn validate_response<'a>(
    status: u16,
    headers: &[(&str, &'a [u8])],
    offered_protocols: &[&str],
    offered_extensions: &[&str],
) -> Result<Accepted<'a>, HandshakeError> {
    if status != OK {
        return Err(HandshakeError::new(
            status,
            "server refused the WebSocket stream",
        ));
    }
    if headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-accept"))
    {
        return Err(HandshakeError::new(
            status,
            "unexpected sec-websocket-accept in a native response",
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
            method: "GET",
            scheme: Some("wss"),
            authority: Some("example.com:443"),
            path: Some("/echo"),
            protocol: None,
        }
    }

    #[test]
    fn valid_request() {
        let h: &[(&str, &[u8])] = &[
            ("sec-websocket-version", b"13"),
            ("sec-websocket-protocol", b"chat"),
            ("origin", b"https://example.com"),
        ];
        let o = validate_request(&head(), h).unwrap();
        assert_eq!(o.protocols, vec!["chat"]);
        assert!(validate_request(
            &RequestHead {
                scheme: Some("WS"),
                ..head()
            },
            &[]
        )
        .is_ok());
    }

    #[test]
    fn forbidden_headers_are_400() {
        for (name, reason) in FORBIDDEN_HEADERS {
            let h: &[(&str, &[u8])] = &[(name, b"x")];
            assert_eq!(
                validate_request(&head(), h).unwrap_err(),
                HandshakeError::bad_request(reason)
            );
        }
        let upper: &[(&str, &[u8])] = &[("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ==")];
        assert_eq!(
            validate_request(&head(), upper).unwrap_err().reason,
            "forbidden header: sec-websocket-key"
        );
    }

    #[test]
    fn pseudo_header_refusals() {
        let cases = [
            (
                RequestHead {
                    method: "POST",
                    ..head()
                },
                "native WebSocket request must use GET",
            ),
            (
                RequestHead {
                    scheme: Some("https"),
                    ..head()
                },
                ":scheme must be ws or wss",
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
                    authority: None,
                    ..head()
                },
                "missing :authority",
            ),
            (
                RequestHead {
                    path: None,
                    ..head()
                },
                "missing :path",
            ),
        ];
        for (h, reason) in cases {
            assert_eq!(
                validate_request(&h, &[]).unwrap_err(),
                HandshakeError::bad_request(reason)
            );
        }
        let v: &[(&str, &[u8])] = &[("sec-websocket-version", b"12")];
        assert_eq!(validate_request(&head(), v).unwrap_err().status, 426);
    }

    #[test]
    fn client_side() {
        let req = request_headers(&["chat"], Some("permessage-deflate"));
        let pairs: Vec<(&str, &[u8])> = req.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        let offer = validate_request(&head(), &pairs).unwrap();
        assert_eq!(offer.protocols, vec!["chat"]);
        let resp = response_headers(Some("chat"), Some("permessage-deflate"));
        let pairs: Vec<(&str, &[u8])> = resp.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        let acc = validate_response(200, &pairs, &["chat"], &["permessage-deflate"]).unwrap();
        assert_eq!(acc.protocol, Some("chat"));
        assert_eq!(
            validate_response(101, &pairs, &["chat"], &[])
                .unwrap_err()
                .status,
            101
        );
        let accept: &[(&str, &[u8])] = &[("sec-websocket-accept", b"x")];
        assert!(validate_response(200, accept, &[], &[]).is_err());
    }
}
