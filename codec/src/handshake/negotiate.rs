//! Subprotocol and extension negotiation: the header grammars of RFC 6455 §4.1 and §9.1.
//!
//! Shared by every transport (the fetch transport carries the same lists in `h2ws-protocol` /
//! `h2ws-extensions`) and by the browser library, whose `H2WebSocket` constructor must reject
//! the same protocol lists the browser's own `WebSocket` constructor rejects.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a protocol list or extension header was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegotiateError {
    /// A subprotocol name is empty or holds a character outside RFC 7230 `tchar`.
    InvalidProtocol,
    /// The same subprotocol name appears twice (WHATWG `WebSocket` constructor rule).
    DuplicateProtocol,
    /// An extension header does not follow the RFC 6455 §9.1 grammar.
    InvalidExtension,
}

impl NegotiateError {
    /// A one-line reason, suitable for a 400 body or a `SyntaxError` message.
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidProtocol => "invalid subprotocol name",
            Self::DuplicateProtocol => "duplicate subprotocol name",
            Self::InvalidExtension => "malformed extension header",
        }
    }
}

impl fmt::Display for NegotiateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for NegotiateError {}

/// RFC 7230 `tchar`: the characters allowed in a token (subprotocol, extension and parameter names).
pub fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`'
        | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// True when `s` is a non-empty RFC 7230 token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Checks a list of subprotocols as the `WebSocket` constructor does: every name a token,
/// no name twice (case-sensitive, as the WHATWG spec compares strings).
pub fn validate_protocols(protocols: &[&str]) -> Result<(), NegotiateError> {
    if protocols.iter().any(|p| !is_token(p)) {
        return Err(NegotiateError::InvalidProtocol);
    }
    // Sort a copy of the references: O(n log n) even for adversarially long lists.
    let mut sorted: Vec<&str> = protocols.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(NegotiateError::DuplicateProtocol);
    }
    Ok(())
}

/// Parses one `Sec-WebSocket-Protocol` (or `h2ws-protocol`) header value: a comma-separated
/// token list. Empty list elements are skipped (RFC 7230 §7 asks recipients to tolerate them);
/// a non-token or a duplicate is an error.
pub fn parse_protocols(value: &str) -> Result<Vec<&str>, NegotiateError> {
    let mut out = Vec::new();
    append_protocols(value, &mut out)?;
    validate_protocols(&out)?;
    Ok(out)
}

/// Like [`parse_protocols`] but appends to `out` and does not check duplicates, so that several
/// header lines can be combined first and checked once with [`validate_protocols`].
pub fn append_protocols<'a>(value: &'a str, out: &mut Vec<&'a str>) -> Result<(), NegotiateError> {
    for item in value.split(',') {
        let item = trim_ows(item);
        if item.is_empty() {
            continue;
        }
        if !is_token(item) {
            return Err(NegotiateError::InvalidProtocol);
        }
        out.push(item);
    }
    Ok(())
}

/// Formats a subprotocol list for a request header (`chat, superchat`).
pub fn format_protocols(protocols: &[&str]) -> String {
    // A loop, not `join`: the browser package then links no generic `join` (~1 KB of wasm).
    let mut out = String::new();
    for (i, protocol) in protocols.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(protocol);
    }
    out
}

/// Server-side choice: the first protocol the client offered that the server supports.
///
/// The client's order wins because RFC 6455 §4.2.2 lets the server pick any, and the client
/// lists its preference first; `None` means answer without a protocol header.
pub fn select_subprotocol<'a>(offered: &[&'a str], supported: &[&str]) -> Option<&'a str> {
    offered.iter().copied().find(|o| supported.contains(o))
}

/// One element of an extension header: `name; param; param=value`.
///
/// Owned strings: quoted-string values are unescaped, and headers are small.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExtensionOffer {
    /// Extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Parameters in order; the value is `None` for a bare parameter.
    pub params: Vec<(String, Option<String>)>,
}

impl ExtensionOffer {
    /// An offer with no parameters.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter (builder style).
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Self {
        self.params.push((name.into(), value.map(Into::into)));
        self
    }

    /// `Some(value)` for the first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

impl fmt::Display for ExtensionOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (name, value) in &self.params {
            write!(f, "; {name}")?;
            if let Some(v) = value {
                // Values are tokens after unescaping (RFC 6455 §9.1), so they never need quotes;
                // quote anyway if a caller built a non-token value, to stay parseable.
                if is_token(v) {
                    write!(f, "={v}")?;
                } else {
                    f.write_str("=\"")?;
                    for c in v.chars() {
                        if c == '"' || c == '\\' {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    f.write_str("\"")?;
                }
            }
        }
        Ok(())
    }
}

/// Formats extensions as one header value (`a; x=1, b`).
pub fn format_extensions(offers: &[ExtensionOffer]) -> String {
    let mut s = String::new();
    for (i, o) in offers.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        // Writing to a String cannot fail.
        let _ = fmt::write(&mut s, format_args!("{o}"));
    }
    s
}

/// Parses one `Sec-WebSocket-Extensions` header value (RFC 6455 §9.1):
/// `extension *( ";" param [ "=" (token / quoted-string) ] )`, comma-separated, with OWS.
/// A quoted value must still be a token once unescaped, as §9.1 requires.
pub fn parse_extensions(value: &str) -> Result<Vec<ExtensionOffer>, NegotiateError> {
    let mut out = Vec::new();
    append_extensions(value, &mut out)?;
    Ok(out)
}

/// Like [`parse_extensions`] but appends, so several header lines can be combined.
pub fn append_extensions(value: &str, out: &mut Vec<ExtensionOffer>) -> Result<(), NegotiateError> {
    let mut p = Parser {
        s: value.as_bytes(),
        i: 0,
    };
    loop {
        p.skip_ows();
        match p.peek() {
            None => return Ok(()),
            Some(b',') => {
                p.i += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = p.token()?;
        let mut offer = ExtensionOffer::new(name);
        loop {
            p.skip_ows();
            match p.peek() {
                None => {
                    out.push(offer);
                    return Ok(());
                }
                Some(b',') => {
                    p.i += 1;
                    out.push(offer);
                    break;
                }
                Some(b';') => {
                    p.i += 1;
                    p.skip_ows();
                    let pname = p.token()?;
                    p.skip_ows();
                    let pvalue = if p.peek() == Some(b'=') {
                        p.i += 1;
                        p.skip_ows();
                        let v = if p.peek() == Some(b'"') {
                            p.quoted()?
                        } else {
                            p.token()?.into()
                        };
                        if !is_token(&v) {
                            return Err(NegotiateError::InvalidExtension);
                        }
                        Some(v)
                    } else {
                        None
                    };
                    offer.params.push((pname.into(), pvalue));
                }
                Some(_) => return Err(NegotiateError::InvalidExtension),
            }
        }
    }
}

/// Byte cursor over an extension header value.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Result<&'a str, NegotiateError> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        if self.i == start {
            return Err(NegotiateError::InvalidExtension);
        }
        // tchar is ASCII, so the slice is valid UTF-8.
        core::str::from_utf8(&self.s[start..self.i]).map_err(|_| NegotiateError::InvalidExtension)
    }

    /// RFC 7230 quoted-string, unescaped. Only ASCII content is kept meaningful: the result must
    /// be a token anyway.
    fn quoted(&mut self) -> Result<String, NegotiateError> {
        self.i += 1; // opening quote
        let mut v = String::new();
        loop {
            match self.peek() {
                None => return Err(NegotiateError::InvalidExtension),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(v);
                }
                Some(b'\\') => {
                    let c = *self
                        .s
                        .get(self.i + 1)
                        .ok_or(NegotiateError::InvalidExtension)?;
                    if !c.is_ascii() {
                        return Err(NegotiateError::InvalidExtension);
                    }
                    v.push(c as char);
                    self.i += 2;
                }
                Some(c) if c.is_ascii() => {
                    v.push(c as char);
                    self.i += 1;
                }
                Some(_) => return Err(NegotiateError::InvalidExtension),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn protocols_parse_and_trim() {
        assert_eq!(
            parse_protocols("chat, superchat").unwrap(),
            vec!["chat", "superchat"]
        );
        assert_eq!(
            parse_protocols(" a ,\tb,, c ").unwrap(),
            vec!["a", "b", "c"]
        );
        assert_eq!(parse_protocols("").unwrap(), Vec::<&str>::new());
    }

    #[test]
    fn protocols_reject_bad_tokens_and_duplicates() {
        assert_eq!(parse_protocols("a b"), Err(NegotiateError::InvalidProtocol));
        assert_eq!(parse_protocols("a;b"), Err(NegotiateError::InvalidProtocol));
        assert_eq!(
            parse_protocols("caf\u{e9}"),
            Err(NegotiateError::InvalidProtocol)
        );
        assert_eq!(
            parse_protocols("a, b, a"),
            Err(NegotiateError::DuplicateProtocol)
        );
        // Case-sensitive like the WHATWG constructor: "A" and "a" are different protocols.
        assert!(parse_protocols("a, A").is_ok());
    }

    #[test]
    fn constructor_rules() {
        assert!(validate_protocols(&["chat", "v1.json"]).is_ok());
        assert_eq!(
            validate_protocols(&[""]),
            Err(NegotiateError::InvalidProtocol)
        );
        assert_eq!(
            validate_protocols(&["a,b"]),
            Err(NegotiateError::InvalidProtocol)
        );
        assert_eq!(
            validate_protocols(&["x", "x"]),
            Err(NegotiateError::DuplicateProtocol)
        );
        assert!(validate_protocols(&[]).is_ok());
    }

    #[test]
    fn selection_follows_client_order() {
        let offered = ["b", "a", "c"];
        assert_eq!(select_subprotocol(&offered, &["a", "b"]), Some("b"));
        assert_eq!(select_subprotocol(&offered, &["z"]), None);
        assert_eq!(select_subprotocol(&[], &["a"]), None);
    }

    #[test]
    fn extensions_grammar() {
        let v = parse_extensions(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
             permessage-deflate;client_max_window_bits=\"1\\5\" , x-foo",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].name, "permessage-deflate");
        assert_eq!(v[0].param("client_max_window_bits"), Some(None));
        assert_eq!(v[0].param("server_max_window_bits"), Some(Some("10")));
        assert_eq!(v[1].param("client_max_window_bits"), Some(Some("15")));
        assert_eq!(v[2], ExtensionOffer::new("x-foo"));
        assert_eq!(v[2].param("nope"), None);
    }

    #[test]
    fn extensions_reject_malformed() {
        for bad in [
            "a;",
            "a; =1",
            "a; b=",
            "a; b=\"unterminated",
            "a; b=\"not a token\"",
            "a b",
            ";a",
            "a; b=c d",
            "a; b=\"\"",
            "a; b=\"\\",
        ] {
            assert_eq!(
                parse_extensions(bad),
                Err(NegotiateError::InvalidExtension),
                "{bad:?}"
            );
        }
        assert_eq!(parse_extensions(" , ,").unwrap(), vec![]);
    }

    #[test]
    fn extensions_format_round_trip() {
        let offers = vec![
            ExtensionOffer::new("permessage-deflate")
                .with_param("server_no_context_takeover", None)
                .with_param("client_max_window_bits", Some("12")),
            ExtensionOffer::new("x-y"),
        ];
        let s = format_extensions(&offers);
        assert_eq!(
            s,
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=12, x-y"
        );
        assert_eq!(parse_extensions(&s).unwrap(), offers);
    }
}
