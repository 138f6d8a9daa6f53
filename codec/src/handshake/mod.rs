//! Handshake helpers without I/O: request classification and validation for every transport
//! (DESIGN §1, §2, §4), `Sec-WebSocket-Accept`, subprotocol and extension negotiation.
//!
//! Headers come in as `(name, value)` pairs borrowed from the caller's HTTP library; names
//! compare case-insensitively, values are bytes (HTTP allows non-UTF-8). Results borrow from
//! the input where they can. A refusal is a [`HandshakeError`] carrying the HTTP status to
//! answer and a one-line reason for the body, so every transport refuses the same way.
//!
//! ```
//! use h2ws_codec::handshake::{classify, rfc6455, RequestHead, RequestKind};
//! let headers: &[(&str, &[u8])] = &[
//!     ("Host", b"example.com"),
//!     ("Upgrade", b"websocket"),
//!     ("Connection", b"Upgrade"),
//!     ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
//!     ("Sec-WebSocket-Version", b"13"),
//! ];
//! let head = RequestHead { method: "GET", ..Default::default() };
//! assert_eq!(classify(&head, headers), Ok(RequestKind::Rfc6455));
//! let info = rfc6455::validate_request("GET", headers).unwrap();
//! assert_eq!(&rfc6455::accept_key(info.key), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! ```

pub mod dispatch;
pub mod fetch;
pub mod native;
pub mod negotiate;
pub mod rfc6455;
pub mod rfc8441;

pub use dispatch::{classify, RequestKind};
pub use negotiate::{ExtensionOffer, NegotiateError};

use alloc::vec::Vec;
use core::fmt;
use negotiate::{append_extensions, append_protocols, validate_protocols};

/// A refused handshake: the HTTP status to answer (400, 403, 404, 409, 410, 426...) and a
/// one-line reason for the response body or the log.
///
/// Client-side checks (`validate_response` functions) use the same type; there `status` is the
/// status the server answered, so a caller can tell "refused with 403" from "bad 101".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeError {
    /// HTTP status code.
    pub status: u16,
    /// Short, human-readable, no trailing newline.
    pub reason: &'static str,
}

impl HandshakeError {
    /// A refusal with any status.
    pub const fn new(status: u16, reason: &'static str) -> Self {
        Self { status, reason }
    }

    /// `400 Bad Request`, the answer to a malformed handshake.
    pub const fn bad_request(reason: &'static str) -> Self {
        Self::new(400, reason)
    }

    /// Headers the refusal must carry: a 426 names the version we speak (RFC 6455 §4.2.2).
    pub fn response_headers(&self) -> &'static [(&'static str, &'static str)] {
        if self.status == 426 {
            &[("sec-websocket-version", "13")]
        } else {
            &[]
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HandshakeError {}

/// The request line / HTTP/2 pseudo-headers of a request. HTTP/1.1 requests leave the
/// HTTP/2-only fields `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// `GET`, `CONNECT`, `POST`... (case-sensitive, as HTTP methods are).
    pub method: &'a str,
    /// `:scheme` (HTTP/2).
    pub scheme: Option<&'a str>,
    /// `:authority` (HTTP/2).
    pub authority: Option<&'a str>,
    /// `:path`, or the request target on HTTP/1.1.
    pub path: Option<&'a str>,
    /// `:protocol` (RFC 8441 extended CONNECT).
    pub protocol: Option<&'a str>,
}

/// What a client asked for, common to every transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offer<'a> {
    /// Subprotocols in the client's order of preference (may be empty).
    pub protocols: Vec<&'a str>,
    /// Extension offers in the client's order (see [`crate::deflate::negotiate_server`]).
    pub extensions: Vec<ExtensionOffer>,
    /// The `Origin` header, for the server's allowlist check (403 when refused).
    pub origin: Option<&'a str>,
}

/// What a server agreed to, as checked by a client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted<'a> {
    /// The chosen subprotocol; always one the client offered.
    pub protocol: Option<&'a str>,
    /// The accepted extensions; each one the client offered.
    pub extensions: Vec<ExtensionOffer>,
}

/// Strips HTTP optional whitespace (SP / HTAB) from both ends.
fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// All values of header `name` (case-insensitive), trimmed.
pub fn header_values<'h, 'a: 'h>(
    headers: &'h [(&str, &'a [u8])],
    name: &'h str,
) -> impl Iterator<Item = &'a [u8]> + 'h {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| trim_ows(v))
}

/// The single value of header `name`: `Ok(None)` when absent, an error naming `duplicate`
/// when it appears more than once (a repeated singleton header is ambiguous).
pub fn single_header<'a>(
    headers: &[(&str, &'a [u8])],
    name: &str,
    duplicate: &'static str,
) -> Result<Option<&'a [u8]>, HandshakeError> {
    let mut values = header_values(headers, name);
    let first = values.next();
    if values.next().is_some() {
        return Err(HandshakeError::bad_request(duplicate));
    }
    Ok(first)
}

/// True when any `name` header's comma-separated list holds `token` (case-insensitive), as for
/// `Connection: keep-alive, Upgrade`.
pub fn has_token(headers: &[(&str, &[u8])], name: &str, token: &str) -> bool {
    header_values(headers, name).any(|v| {
        v.split(|&b| b == b',')
            .any(|t| trim_ows(t).eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Visible ASCII (plus inner spaces) as `&str`: the only header values we interpret as text.
fn ascii_str(v: &[u8]) -> Option<&str> {
    if v.iter()
        .all(|&b| b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b))
    {
        core::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// Reads subprotocols, extensions and origin from the named headers (the names differ between
/// `Sec-WebSocket-*` and the fetch transport's `h2ws-*`).
fn read_offer<'a>(
    headers: &[(&str, &'a [u8])],
    protocol_header: &str,
    extensions_header: &str,
) -> Result<Offer<'a>, HandshakeError> {
    let mut offer = Offer::default();
    for v in header_values(headers, protocol_header) {
        let s = ascii_str(v).ok_or(HandshakeError::bad_request("invalid subprotocol list"))?;
        append_protocols(s, &mut offer.protocols)
            .map_err(|e| HandshakeError::bad_request(e.reason()))?;
    }
    validate_protocols(&offer.protocols).map_err(|e| HandshakeError::bad_request(e.reason()))?;
    for v in header_values(headers, extensions_header) {
        let s = ascii_str(v).ok_or(HandshakeError::bad_request("malformed extension header"))?;
        append_extensions(s, &mut offer.extensions)
            .map_err(|e| HandshakeError::bad_request(e.reason()))?;
    }
    if let Some(o) = single_header(headers, "origin", "duplicate Origin header")? {
        offer.origin =
            Some(ascii_str(o).ok_or(HandshakeError::bad_request("invalid Origin header"))?);
    }
    Ok(offer)
}

/// Client side: checks the server's chosen subprotocol and extensions against what was
/// offered (RFC 6455 §4.1 steps 5-6: anything else fails the connection). `status` is the
/// status received, carried into the error.
fn read_accepted<'a>(
    status: u16,
    headers: &[(&str, &'a [u8])],
    protocol_header: &str,
    extensions_header: &str,
    offered_protocols: &[&str],
    offered_extensions: &[&str],
) -> Result<Accepted<'a>, HandshakeError> {
    let fail = |reason| HandshakeError::new(status, reason);
    let mut accepted = Accepted::default();
    if let Some(v) = single_header(headers, protocol_header, "")
        .map_err(|_| fail("server sent more than one subprotocol"))?
    {
        let p = ascii_str(v)
            .filter(|p| negotiate::is_token(p))
            .ok_or(fail("server sent an invalid subprotocol"))?;
        if !offered_protocols.contains(&p) {
            return Err(fail("server chose a subprotocol that was not offered"));
        }
        accepted.protocol = Some(p);
    }
    for v in header_values(headers, extensions_header) {
        let s = ascii_str(v).ok_or(fail("server sent a malformed extension header"))?;
        append_extensions(s, &mut accepted.extensions)
            .map_err(|_| fail("server sent a malformed extension header"))?;
    }
    for (i, e) in accepted.extensions.iter().enumerate() {
        if !offered_extensions
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&e.name))
        {
            return Err(fail("server accepted an extension that was not offered"));
        }
        if accepted.extensions[..i]
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(&e.name))
        {
            return Err(fail("server accepted an extension twice"));
        }
    }
    Ok(accepted)
}

/// Checks an optional `sec-websocket-version` (HTTP/2 mappings): absent is fine, else it must
/// be 13 (426 names the supported version, like RFC 6455 §4.2.2).
fn optional_version_13(headers: &[(&str, &[u8])]) -> Result<(), HandshakeError> {
    match single_header(
        headers,
        "sec-websocket-version",
        "duplicate Sec-WebSocket-Version header",
    )? {
        None => Ok(()),
        Some(b"13") => Ok(()),
        Some(_) => Err(HandshakeError::new(
            426,
            "unsupported Sec-WebSocket-Version (supported: 13)",
        )),
    }
}

/// Appends the optional protocol / extensions response headers under the given names.
fn push_accepted(
    out: &mut Vec<(&'static str, alloc::string::String)>,
    names: (&'static str, &'static str),
    protocol: Option<&str>,
    extensions: Option<&str>,
) {
    if let Some(p) = protocol {
        out.push((names.0, p.into()));
    }
    if let Some(e) = extensions.filter(|e| !e.is_empty()) {
        out.push((names.1, e.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn header_lookup_is_case_insensitive_and_trimmed() {
        let h: &[(&str, &[u8])] = &[
            ("X-A", b" 1 "),
            ("x-a", b"2"),
            ("Conn", b"keep-alive,  UpGrade "),
        ];
        assert_eq!(
            header_values(h, "x-A").collect::<Vec<_>>(),
            vec![&b"1"[..], b"2"]
        );
        assert_eq!(
            single_header(h, "x-a", "dup"),
            Err(HandshakeError::bad_request("dup"))
        );
        assert_eq!(
            single_header(h, "conn", "dup").unwrap(),
            Some(&b"keep-alive,  UpGrade"[..])
        );
        assert_eq!(single_header(h, "nope", "dup").unwrap(), None);
        assert!(has_token(h, "conn", "upgrade"));
        assert!(!has_token(h, "conn", "close"));
        assert_eq!(trim_ows(b" \t "), b"");
    }

    #[test]
    fn offer_combines_header_lines() {
        let h: &[(&str, &[u8])] = &[
            ("p", b"a, b"),
            ("P", b"c"),
            ("e", b"x; y=1"),
            ("E", b"z"),
            ("Origin", b"https://example.com"),
        ];
        let o = read_offer(h, "p", "e").unwrap();
        assert_eq!(o.protocols, vec!["a", "b", "c"]);
        assert_eq!(o.extensions.len(), 2);
        assert_eq!(o.origin, Some("https://example.com"));
        let dup: &[(&str, &[u8])] = &[("p", b"a"), ("p", b"a")];
        assert_eq!(
            read_offer(dup, "p", "e").unwrap_err().reason,
            "duplicate subprotocol name"
        );
        let bin: &[(&str, &[u8])] = &[("origin", b"\xff")];
        assert_eq!(
            read_offer(bin, "p", "e").unwrap_err(),
            HandshakeError::bad_request("invalid Origin header")
        );
    }

    #[test]
    fn accepted_must_be_offered() {
        let h: &[(&str, &[u8])] = &[("p", b"chat"), ("e", b"permessage-deflate")];
        let a = read_accepted(101, h, "p", "e", &["x", "chat"], &["permessage-deflate"]).unwrap();
        assert_eq!(a.protocol, Some("chat"));
        assert_eq!(a.extensions[0].name, "permessage-deflate");
        let e = read_accepted(101, h, "p", "e", &["x"], &["permessage-deflate"]).unwrap_err();
        assert_eq!(
            (e.status, e.reason),
            (101, "server chose a subprotocol that was not offered")
        );
        let e = read_accepted(101, h, "p", "e", &["chat"], &[]).unwrap_err();
        assert_eq!(
            e.reason,
            "server accepted an extension that was not offered"
        );
        let two: &[(&str, &[u8])] = &[("p", b"a, b")];
        assert!(read_accepted(101, two, "p", "e", &["a", "b"], &[]).is_err());
        let twice: &[(&str, &[u8])] = &[("e", b"x, x")];
        assert!(read_accepted(101, twice, "p", "e", &[], &["x"]).is_err());
    }

    #[test]
    fn version_426_names_13() {
        let h: &[(&str, &[u8])] = &[("sec-websocket-version", b"8")];
        let e = optional_version_13(h).unwrap_err();
        assert_eq!(e.status, 426);
        assert_eq!(e.response_headers(), &[("sec-websocket-version", "13")]);
        assert!(optional_version_13(&[]).is_ok());
        assert!(HandshakeError::bad_request("x")
            .response_headers()
            .is_empty());
    }
}
