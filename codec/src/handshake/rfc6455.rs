//! The classic HTTP/1.1 opening handshake (RFC 6455 §4): `GET` + `Upgrade: websocket`,
//! answered by `101 Switching Protocols` with `Sec-WebSocket-Accept`.

use super::{
    has_token, push_accepted, read_accepted, read_offer, single_header, Accepted, HandshakeError,
    Offer,
};
use alloc::string::String;
use alloc::vec::Vec;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// RFC 6455 §1.3: appended to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The status of a successful answer.
pub const SWITCHING_PROTOCOLS: u16 = 101;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)), RFC 6455 §4.2.2.
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let digest: [u8; 20] = sha.finalize().into();
    let mut out = [0u8; 28];
    // 20 bytes always encode to exactly 28 base64 characters.
    let n = STANDARD.encode_slice(digest, &mut out).unwrap_or(0);
    debug_assert_eq!(n, 28);
    out
}

/// A `Sec-WebSocket-Key` from 16 caller-supplied random bytes (no RNG in a sans-IO codec).
pub fn client_key(random: [u8; 16]) -> [u8; 24] {
    let mut out = [0u8; 24];
    let n = STANDARD.encode_slice(random, &mut out).unwrap_or(0);
    debug_assert_eq!(n, 24);
    out
}

/// A valid opening request, as seen by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo<'a> {
    /// The `Sec-WebSocket-Key`, for [`accept_key`] / [`response_headers`].
    pub key: &'a [u8],
    /// The `Host` header.
    pub host: &'a [u8],
    /// Subprotocols, extensions, origin.
    pub offer: Offer<'a>,
}

/// Server side: checks an HTTP/1.1 opening request (RFC 6455 §4.2.1). Method and headers only;
/// the HTTP version (1.1 or later) is the caller's to check.
pub fn validate_request<'a>(
    method: &str,
    headers: &[(&str, &'a [u8])],
) -> Result<RequestInfo<'a>, HandshakeError> {
    if method != "GET" {
        return Err(HandshakeError::bad_request(
            "WebSocket handshake must use GET",
        ));
    }
    let host = single_header(headers, "host", "duplicate Host header")?
        .ok_or(HandshakeError::bad_request("missing Host header"))?;
    if !has_token(headers, "upgrade", "websocket") {
        return Err(HandshakeError::bad_request("missing Upgrade: websocket"));
    }
    if !has_token(headers, "connection", "upgrade") {
        return Err(HandshakeError::bad_request("missing Connection: Upgrade"));
    }
    match single_header(
        headers,
        "sec-websocket-version",
        "duplicate Sec-WebSocket-Version header",
    )? {
        Some(b"13") => {}
        Some(_) => {
            return Err(HandshakeError::new(
                426,
                "unsupported Sec-WebSocket-Version (supported: 13)",
            ))
        }
        None => return Err(HandshakeError::bad_request("missing Sec-WebSocket-Version")),
    }
    let key = single_header(
        headers,
        "sec-websocket-key",
        "duplicate Sec-WebSocket-Key header",
    )?
    .ok_or(HandshakeError::bad_request("missing Sec-WebSocket-Key"))?;
    if !is_valid_key(key) {
        return Err(HandshakeError::bad_request(
            "Sec-WebSocket-Key is not base64 of 16 bytes",
        ));
    }
    let offer = read_offer(
        headers,
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    )?;
    Ok(RequestInfo { key, host, offer })
}

/// True when `key` is the base64 encoding of exactly 16 bytes (24 characters, `==` padded).
pub fn is_valid_key(key: &[u8]) -> bool {
    let mut buf = [0u8; 18];
    key.len() == 24 && STANDARD.decode_slice(key, &mut buf) == Ok(16)
}

/// The headers of the `101` answer (besides the status): `Upgrade`, `Connection`,
/// `Sec-WebSocket-Accept`, and the chosen protocol / extensions if any.
pub fn response_headers(
    key: &[u8],
    protocol: Option<&str>,
    extensions: Option<&str>,
) -> Vec<(&'static str, String)> {
    let accept = accept_key(key);
    let mut out = Vec::with_capacity(5);
    out.push(("upgrade", "websocket".into()));
    out.push(("connection", "Upgrade".into()));
    // base64 output is ASCII.
    out.push((
        "sec-websocket-accept",
        String::from_utf8_lossy(&accept).into_owned(),
    ));
    push_accepted(
        &mut out,
        ("sec-websocket-protocol", "sec-websocket-extensions"),
        protocol,
        extensions,
    );
    out
}

/// The headers of a client's opening request (besides `GET <path> HTTP/1.1`).
/// `key` comes from [`client_key`]; empty lists send no header.
pub fn request_headers(
    host: &str,
    key: &[u8; 24],
    protocols: &[&str],
    extensions: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(7);
    out.push(("host", host.into()));
    out.push(("upgrade", "websocket".into()));
    out.push(("connection", "Upgrade".into()));
    out.push((
        "sec-websocket-key",
        String::from_utf8_lossy(key).into_owned(),
    ));
    out.push(("sec-websocket-version", "13".into()));
    if !protocols.is_empty() {
        out.push(("sec-websocket-protocol", protocols.join(", ")));
    }
    if let Some(e) = extensions.filter(|e| !e.is_empty()) {
        out.push(("sec-websocket-extensions", e.into()));
    }
    out
}

/// Client side: checks the server's answer (RFC 6455 §4.1): status 101, `Upgrade: websocket`,
/// `Connection: Upgrade`, the accept value for our `key`, and a protocol / extensions among
/// those offered. Errors carry the received status.
pub fn validate_response<'a>(
    status: u16,
    headers: &[(&str, &'a [u8])],
    key: &[u8],
    offered_protocols: &[&str],
    offered_extensions: &[&str],
) -> Result<Accepted<'a>, HandshakeError> {
    let fail = |reason| HandshakeError::new(status, reason);
    if status != SWITCHING_PROTOCOLS {
        return Err(fail("server did not switch protocols"));
    }
    if !has_token(headers, "upgrade", "websocket") {
        return Err(fail("response lacks Upgrade: websocket"));
    }
    if !has_token(headers, "connection", "upgrade") {
        return Err(fail("response lacks Connection: Upgrade"));
    }
    let accept = single_header(headers, "sec-websocket-accept", "")
        .map_err(|_| fail("duplicate Sec-WebSocket-Accept"))?
        .ok_or(fail("missing Sec-WebSocket-Accept"))?;
    if accept != accept_key(key) {
        return Err(fail("Sec-WebSocket-Accept does not match the key"));
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

    const KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";

    fn good() -> Vec<(&'static str, &'static [u8])> {
        vec![
            ("Host", b"server.example.com"),
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Origin", b"http://example.com"),
            ("Sec-WebSocket-Protocol", b"chat, superchat"),
            ("Sec-WebSocket-Version", b"13"),
        ]
    }

    fn without(name: &str) -> Vec<(&'static str, &'static [u8])> {
        good()
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
            .collect()
    }

    fn with(name: &'static str, value: &'static [u8]) -> Vec<(&'static str, &'static [u8])> {
        let mut h = without(name);
        h.push((name, value));
        h
    }

    #[test]
    fn rfc6455_section_1_3_vector() {
        assert_eq!(&accept_key(KEY), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn client_key_is_base64_of_the_bytes() {
        // RFC 6455 §1.3's key is base64("the sample nonce").
        assert_eq!(&client_key(*b"the sample nonce"), KEY);
        assert!(is_valid_key(&client_key([0xff; 16])));
    }

    #[test]
    fn rfc6455_section_1_3_request() {
        let info = validate_request("GET", &good()).unwrap();
        assert_eq!(info.key, KEY);
        assert_eq!(info.host, b"server.example.com");
        assert_eq!(info.offer.protocols, vec!["chat", "superchat"]);
        assert_eq!(info.offer.origin, Some("http://example.com"));
        assert!(info.offer.extensions.is_empty());
    }

    #[test]
    fn tolerant_header_forms() {
        let h = with("Connection", b"keep-alive, Upgrade");
        assert!(validate_request("GET", &h).is_ok());
        let h = with("Upgrade", b"h2c, WebSocket");
        assert!(validate_request("GET", &h).is_ok());
        let mut h = good();
        h.push((
            "sec-websocket-extensions",
            b"permessage-deflate; client_max_window_bits",
        ));
        let info = validate_request("GET", &h).unwrap();
        assert_eq!(info.offer.extensions[0].name, "permessage-deflate");
    }

    type Case = (
        &'static str,
        Vec<(&'static str, &'static [u8])>,
        u16,
        &'static str,
    );

    #[test]
    fn refusals() {
        let cases: Vec<Case> = vec![
            ("POST", good(), 400, "WebSocket handshake must use GET"),
            ("GET", without("host"), 400, "missing Host header"),
            ("GET", without("upgrade"), 400, "missing Upgrade: websocket"),
            (
                "GET",
                with("upgrade", b"h2c"),
                400,
                "missing Upgrade: websocket",
            ),
            (
                "GET",
                without("connection"),
                400,
                "missing Connection: Upgrade",
            ),
            (
                "GET",
                without("sec-websocket-version"),
                400,
                "missing Sec-WebSocket-Version",
            ),
            (
                "GET",
                with("sec-websocket-version", b"8"),
                426,
                "unsupported Sec-WebSocket-Version (supported: 13)",
            ),
            (
                "GET",
                without("sec-websocket-key"),
                400,
                "missing Sec-WebSocket-Key",
            ),
            (
                "GET",
                with("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ"),
                400,
                "Sec-WebSocket-Key is not base64 of 16 bytes",
            ),
            (
                "GET",
                with("sec-websocket-key", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                400,
                "Sec-WebSocket-Key is not base64 of 16 bytes",
            ),
            (
                "GET",
                with("sec-websocket-key", b"!!!!!!!!!!!!!!!!!!!!!!=="),
                400,
                "Sec-WebSocket-Key is not base64 of 16 bytes",
            ),
            (
                "GET",
                with("sec-websocket-protocol", b"a b"),
                400,
                "invalid subprotocol name",
            ),
            (
                "GET",
                with("sec-websocket-protocol", b"a, a"),
                400,
                "duplicate subprotocol name",
            ),
            (
                "GET",
                with("sec-websocket-extensions", b"x;"),
                400,
                "malformed extension header",
            ),
        ];
        for (method, headers, status, reason) in cases {
            let e = validate_request(method, &headers).unwrap_err();
            assert_eq!((e.status, e.reason), (status, reason));
        }
        let mut h = good();
        h.push(("sec-websocket-key", KEY));
        assert_eq!(
            validate_request("GET", &h).unwrap_err().reason,
            "duplicate Sec-WebSocket-Key header"
        );
    }

    #[test]
    fn server_response_round_trip() {
        let info = validate_request("GET", &good()).unwrap();
        let resp = response_headers(info.key, Some("chat"), Some("permessage-deflate"));
        let pairs: Vec<(&str, &[u8])> = resp.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        assert!(pairs.contains(&("sec-websocket-accept", &b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="[..])));
        let acc = validate_response(
            101,
            &pairs,
            KEY,
            &["chat", "superchat"],
            &["permessage-deflate"],
        )
        .unwrap();
        assert_eq!(acc.protocol, Some("chat"));
        assert_eq!(acc.extensions.len(), 1);
    }

    #[test]
    fn client_request_validates_on_server() {
        let key = client_key([7; 16]);
        let req = request_headers("h:1", &key, &["a", "b"], Some("permessage-deflate"));
        let pairs: Vec<(&str, &[u8])> = req.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        let info = validate_request("GET", &pairs).unwrap();
        assert_eq!(info.key, &key);
        assert_eq!(info.offer.protocols, vec!["a", "b"]);
    }

    #[test]
    fn client_rejects_bad_responses() {
        let ok: Vec<(&str, &[u8])> = vec![
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ];
        assert_eq!(
            validate_response(101, &ok, KEY, &[], &[]).unwrap(),
            Accepted::default()
        );
        let e = validate_response(403, &ok, KEY, &[], &[]).unwrap_err();
        assert_eq!(
            (e.status, e.reason),
            (403, "server did not switch protocols")
        );
        let e = validate_response(101, &ok, b"AAAAAAAAAAAAAAAAAAAAAA==", &[], &[]).unwrap_err();
        assert_eq!(e.reason, "Sec-WebSocket-Accept does not match the key");
        let e = validate_response(101, &ok[1..], KEY, &[], &[]).unwrap_err();
        assert_eq!(e.reason, "response lacks Upgrade: websocket");
        let mut p = ok.clone();
        p.push(("Sec-WebSocket-Protocol", b"chat"));
        assert_eq!(
            validate_response(101, &p, KEY, &[], &[])
                .unwrap_err()
                .reason,
            "server chose a subprotocol that was not offered"
        );
    }
}
