//! The browser fetch transports' handshake (DESIGN §2): an open request that starts the
//! downstream and creates a session, then upstream requests that attach to it by token, either
//! once as a stream (§2.2) or as numbered POST batches (§2.3).
//!
//! Browsers cannot set `Sec-*` headers from `fetch()`, hence the `h2ws-*` names.

use super::{read_accepted, read_offer, single_header, Accepted, HandshakeError, Offer};
use alloc::string::String;
use alloc::vec::Vec;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Request header: protocol version of the open request; only `1` exists.
pub const H2WS_VERSION: &str = "h2ws-version";
/// Request and response header: subprotocols offered / chosen.
pub const H2WS_PROTOCOL: &str = "h2ws-protocol";
/// Request and response header: extensions offered / accepted.
pub const H2WS_EXTENSIONS: &str = "h2ws-extensions";
/// Response header of the open request, request header of every upstream request.
pub const H2WS_SESSION: &str = "h2ws-session";
/// Request header of a `post` upstream batch: its sequence number.
pub const H2WS_SEQ: &str = "h2ws-seq";
/// Response header of the open request: the upstream transports this connection can do.
pub const H2WS_TRANSPORTS: &str = "h2ws-transports";
/// Request header of the open request: `1` = this client acknowledges what it has read of the
/// downstream (ack requests with [`H2WS_READ`]), so the server may hold the downstream to a read
/// window. Why: Firefox and WebKit buffer a `fetch()` response body as it arrives, read or not,
/// so HTTP/2 flow control never pushes back on a page that does not read; the window does.
pub const H2WS_ACKS: &str = "h2ws-acks";
/// Response header of the open request (only when acks were offered): the read window, the
/// most downstream body bytes the server sends beyond what the client acknowledged.
pub const H2WS_WINDOW: &str = "h2ws-window";
/// Request header of an ack request (`POST` + `h2ws-session` + `h2ws-read`, no body, no
/// `h2ws-seq`; answered 204): how many downstream body bytes the client has read in all.
pub const H2WS_READ: &str = "h2ws-read";
/// The read window the server grants (2 MiB): large enough that acks (one request per half
/// window) cost nothing measurable, small enough to bound what an unread page buffers.
pub const READ_WINDOW: u64 = 2 << 20;
/// Lossless resume (codec `resume`): `1` on an open offers it; the server's answer carries
/// its grace window, replay buffer and the key of the next re-attach; a re-attach (an open
/// with `h2ws-session`) carries that key.
pub const H2WS_RESUME: &str = "h2ws-resume";
/// A re-attach and its answer: counted frames that side received on the session (decimal).
pub const H2WS_RECEIVED: &str = "h2ws-received";
/// A re-attach's answer: which transport of the session this is (decimal, the re-attaches the
/// server has taken, from 1). That transport's `stream` upstream carries it back, and the
/// server takes a `stream` upstream only with the current value (absent: 0, the open's).
///
/// Why: a browser may send an earlier transport's streamed upstream request again on the new
/// connection. Chromium re-sends a request whose connection closed under it, body replayed from
/// its start out of its upload cache; taken as the new upstream, its frames would reach the app
/// a second time. With the value it is refused (409) instead.
pub const H2WS_ATTACH: &str = "h2ws-attach";
/// Request header of a `post` batch: `1` = the client takes downstream frames in the batch's
/// answer (a *reply*, codec `post::ReplyMerge`). The server holds the answer up to
/// [`REPLY_WAIT_MS`] after applying the batch; frames the socket sends meanwhile leave as the
/// answer's body (`200`, [`H2WS_AT`]) instead of on the downstream, and the downstream gets
/// [`MOVED_MARKER`] where they would have been.
///
/// Why: Chromium holds small data of a response that has not ended up to 1 ms before a
/// `fetch()` reader sees it (`SpdyHttpStream`), but not a response that ends. An echo in the
/// batch's answer reaches the page in one plain fetch round trip: `post` RTT p50 measured 3.0–3.5
/// ms down to … ms (BENCHMARKS.md).
pub const H2WS_REPLY: &str = "h2ws-reply";
/// Response header of a batch answer carrying a reply: how many downstream body bytes the
/// server had sent before the reply's [`MOVED_MARKER`] (decimal).
pub const H2WS_AT: &str = "h2ws-at";
/// Stands in the downstream for frames that left in a batch's answer: an unsolicited Pong with
/// the payload `h2ws-moved` (stream framing). Never handed to the codec.
pub const MOVED_MARKER: [u8; 12] = *b"\x8a\x0ah2ws-moved";
/// How long the server holds a batch's answer for a reply (5 ms): long enough for an app that
/// answers at once (an echo, an RPC served from memory), short enough that a one-way stream of
/// batches, which waits for answers when [`crate::post::MAX_IN_FLIGHT`] are out, barely notices.
pub const REPLY_WAIT_MS: u32 = 5;
/// The most frame bytes one reply carries; larger output stays on the downstream.
pub const MAX_REPLY: usize = 64 << 10;
/// The method the browser library sends the open, `post` batches and acks with (the server
/// takes `POST` for them too; a `stream` upstream is always `POST`). Why PUT: WebKitGTK's
/// network stack (libsoup) opens a new connection for every non-idempotent request, even over
/// HTTP/2, with at most 6 per host: with POST every batch paid a TCP + TLS handshake (post RTT
/// 15 ms instead of 1 ms) and a page got at most 6 sockets. A batch and an ack are idempotent
/// (a repeated `h2ws-seq` is ignored, `h2ws-read` is cumulative); a repeated open only leaves
/// an unattached session, closed by the attach timeout.
pub const METHOD: &str = "PUT";
/// The only version.
pub const VERSION: &str = "1";
/// `content-type` of the downstream response.
pub const CONTENT_TYPE: &str = "application/h2ws";
/// `cache-control` of the downstream response.
pub const CACHE_CONTROL: &str = "no-store";
/// The headers a cross-origin page must be allowed to read (`access-control-expose-headers`).
pub const EXPOSE_HEADERS: &str =
    "h2ws-session, h2ws-protocol, h2ws-extensions, h2ws-transports, h2ws-window, h2ws-resume, \
     h2ws-received, h2ws-at, h2ws-attach";
/// The request headers a cross-origin preflight must allow (`access-control-allow-headers`).
pub const ALLOW_HEADERS: &str =
    "h2ws-version, h2ws-protocol, h2ws-extensions, h2ws-session, h2ws-seq, h2ws-acks, h2ws-read, \
     h2ws-resume, h2ws-received, h2ws-reply, h2ws-attach";

/// The first bytes of every open response body: an empty, unsolicited Pong frame (stream
/// framing, `0x8A 0x00`), written right after the response headers.
///
/// Why: Firefox and WebKit resolve `fetch()` only when the first body byte arrives (headers alone
/// are not enough), and buffering proxies (nginx 1.22) send a response's headers only together
/// with its first body bytes. Without bytes at once a page in those engines never learns the
/// session token. An unsolicited Pong is legal RFC 6455 (§5.5.3) that every WebSocket decoder
/// already accepts and ignores, so older clients keep working; clients must not require it.
pub const OPEN_PREAMBLE: [u8; 2] = [0x8A, 0x00];

/// The upstream transports a server offers in `h2ws-transports` on every open: both, whatever
/// HTTP version the server itself sees. Why: behind a reverse proxy the server sees HTTP/1.1
/// (nginx has no other back end protocol) while the browser speaks HTTP/2 to the proxy, and a
/// chunked HTTP/1.1 request body streams as well as an HTTP/2 one; only the client knows what
/// it can send (a browser streams request bodies only over HTTP/2, and only Chromium does), so
/// the client decides and falls back to `post` when a `stream` upstream fails at once
/// ([`STREAM_FALLBACK_MS`]). A server that cannot read a request body while it streams would
/// offer `post` alone.
pub const SERVER_TRANSPORTS: &str = "stream, post";

/// How long after sending a `stream` upstream request a client still falls back to `post` when
/// that request fails ("fails at once"): it is rejected (Chromium refuses a streamed body on an
/// HTTP/1.1 connection before sending anything) or answered (a healthy upstream is answered
/// only when its body ends, so any answer while the body still streams is a refusal, e.g. a
/// proxy's 400/411). Later failures are transport errors of a running socket (close 1006). A
/// fallback is safe: the server's session takes one upstream kind only, so a `stream` that did
/// reach it makes the `post` batches fail (409) instead of delivering anything twice.
pub const STREAM_FALLBACK_MS: u32 = 3000;

/// Session tokens carry at least 128 random bits: 22 base64url characters.
const MIN_TOKEN_LEN: usize = 22;
/// Longest accepted random part (64 bytes); bounds the work spent on a hostile header.
const MAX_TOKEN_LEN: usize = 86;
/// Longest instance id (see [`is_valid_instance_id`]).
pub const MAX_INSTANCE_ID_LEN: usize = 32;

/// A session token from 32 caller-supplied random bytes (256 bits): base64url, no padding,
/// 43 characters. The codec has no RNG; the server uses its OS RNG.
pub fn session_token(random: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// A session token routable to one server instance: `INSTANCE.RANDOM` (RANDOM as in
/// [`session_token`]). Why a plain-text prefix: a load balancer can route the upstream
/// requests of a session on it without shared state (HAProxy: `use-server s1 if
/// { req.hdr(h2ws-session) -m beg s1. }`). The prefix adds no secret and takes nothing from
/// the 256 random bits. `instance` must pass [`is_valid_instance_id`]; `None` gives the plain
/// token.
pub fn session_token_for(instance: Option<&str>, random: &[u8; 32]) -> String {
    match instance {
        Some(id) => {
            let mut t = String::with_capacity(id.len() + 44);
            t.push_str(id);
            t.push('.');
            t.push_str(&URL_SAFE_NO_PAD.encode(random));
            t
        }
        None => session_token(random),
    }
}

/// True for an instance id: 1 to 32 of `A-Z a-z 0-9 - _` (no `.`, which ends it in a token,
/// and nothing a header or an HAProxy ACL would need to escape).
pub fn is_valid_instance_id(id: &[u8]) -> bool {
    (1..=MAX_INSTANCE_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// The instance id a token names (`INSTANCE.RANDOM`), if any. Does not validate the token.
pub fn token_instance(token: &[u8]) -> Option<&[u8]> {
    token
        .iter()
        .position(|b| *b == b'.')
        .map(|dot| &token[..dot])
}

/// True when `token` is `[INSTANCE "."] RANDOM`: an optional valid instance id
/// ([`is_valid_instance_id`]) and RANDOM base64url without padding (canonical) of 16 to 64 bytes.
pub fn is_valid_session_token(token: &[u8]) -> bool {
    let random = match token_instance(token) {
        Some(id) if is_valid_instance_id(id) => &token[id.len() + 1..],
        Some(_) => return false,
        None => token,
    };
    if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&random.len()) {
        return false;
    }
    let mut buf = [0u8; 66];
    matches!(URL_SAFE_NO_PAD.decode_slice(random, &mut buf), Ok(n) if n >= 16)
}

/// Strict decimal `u64`: digits only, no sign, no leading zero (except `0` itself), no overflow,
/// so one number has exactly one spelling and a retry is recognised as a repeat.
pub fn parse_seq(v: &[u8]) -> Option<u64> {
    match v {
        [] => None,
        [b'0'] => Some(0),
        [b'0', ..] => None,
        _ => v.iter().try_fold(0u64, |n, &b| {
            if b.is_ascii_digit() {
                n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
            } else {
                None
            }
        }),
    }
}

/// `n` in decimal, as [`parse_seq`] reads it (the `h2ws-seq` and `h2ws-read` values). Written
/// out by hand: `to_string` would link `core::fmt` into the browser package.
pub fn decimal(n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    digits[i..].iter().map(|&d| char::from(d)).collect()
}

/// Server side: checks an open request's headers (DESIGN §2.1): `h2ws-version: 1` (missing or
/// other → 400), `h2ws-protocol`, `h2ws-extensions`, `Origin`. The origin allowlist (403) is
/// the server's policy, applied to [`Offer::origin`].
pub fn validate_open<'a>(headers: &[(&str, &'a [u8])]) -> Result<Offer<'a>, HandshakeError> {
    match single_header(headers, H2WS_VERSION, "duplicate h2ws-version header")? {
        Some(b"1") => {}
        Some(_) => {
            return Err(HandshakeError::bad_request(
                "unsupported h2ws-version (supported: 1)",
            ))
        }
        None => return Err(HandshakeError::bad_request("missing h2ws-version")),
    }
    read_offer(headers, H2WS_PROTOCOL, H2WS_EXTENSIONS)
}

/// An upstream request's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upstream<'a> {
    /// The session token (syntax-checked; whether it exists is the server's lookup: 404/410).
    pub session: &'a str,
    /// `Some(n)` for a `post` batch (§2.3), `None` for the single `stream` upstream (§2.2).
    pub seq: Option<u64>,
    /// `Some(n)` for an ack request: `n` downstream bytes read in all ([`H2WS_READ`]).
    pub read: Option<u64>,
    /// The transport a `stream` upstream belongs to ([`H2WS_ATTACH`]; 0 when absent).
    pub attach: u64,
}

/// Server side: checks an upstream request's headers (DESIGN §2.2 / §2.3).
pub fn validate_upstream<'a>(headers: &[(&str, &'a [u8])]) -> Result<Upstream<'a>, HandshakeError> {
    if let Some(v) = single_header(headers, H2WS_VERSION, "duplicate h2ws-version header")? {
        if v != VERSION.as_bytes() {
            return Err(HandshakeError::bad_request(
                "unsupported h2ws-version (supported: 1)",
            ));
        }
    }
    let token = single_header(headers, H2WS_SESSION, "duplicate h2ws-session header")?
        .ok_or(HandshakeError::bad_request("missing h2ws-session"))?;
    if !is_valid_session_token(token) {
        return Err(HandshakeError::bad_request("malformed h2ws-session token"));
    }
    // The token is base64url, hence ASCII.
    let session = core::str::from_utf8(token)
        .map_err(|_| HandshakeError::bad_request("malformed h2ws-session token"))?;
    let seq = decimal_header(
        headers,
        H2WS_SEQ,
        "duplicate h2ws-seq header",
        "malformed h2ws-seq",
    )?;
    let read = decimal_header(
        headers,
        H2WS_READ,
        "duplicate h2ws-read header",
        "malformed h2ws-read",
    )?;
    if seq.is_some() && read.is_some() {
        return Err(HandshakeError::bad_request(
            "h2ws-read goes on an ack request of its own, not on a batch",
        ));
    }
    let attach = decimal_header(
        headers,
        H2WS_ATTACH,
        "duplicate h2ws-attach header",
        "malformed h2ws-attach",
    )?;
    Ok(Upstream {
        session,
        seq,
        read,
        attach: attach.unwrap_or(0),
    })
}

/// An optional header holding one strict decimal ([`parse_seq`]): `h2ws-seq`, `h2ws-read`.
fn decimal_header(
    headers: &[(&str, &[u8])],
    name: &str,
    duplicate: &'static str,
    malformed: &'static str,
) -> Result<Option<u64>, HandshakeError> {
    single_header(headers, name, duplicate)?
        .map(|v| parse_seq(v).ok_or(HandshakeError::bad_request(malformed)))
        .transpose()
}

/// Server side: whether the open request offers read acknowledgements (`h2ws-acks: 1`).
pub fn acks_offered(headers: &[(&str, &[u8])]) -> bool {
    headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case(H2WS_ACKS) && v.trim_ascii() == b"1")
}

/// Client side: the read window from the open response's `h2ws-window` (`None`: the server
/// does not bound the downstream, and no acks are sent).
pub fn parse_window(v: &[u8]) -> Option<u64> {
    parse_seq(v.trim_ascii()).filter(|&w| w > 0)
}

/// Client side: acknowledge now? Once half the window is read beyond the last ack, so the
/// server never waits for an ack while the client still has half a window to read.
pub fn ack_due(read: u64, acked: u64, window: u64) -> bool {
    read.saturating_sub(acked) >= (window / 2).max(1)
}

/// The headers of a client's ack request.
pub fn ack_request_headers(session: &str, read: u64) -> Vec<(&'static str, String)> {
    alloc::vec![(H2WS_SESSION, session.into()), (H2WS_READ, decimal(read))]
}

/// The headers of the open request's `200` answer (besides the status).
/// `transports` lists the upstream transports the server can take ([`SERVER_TRANSPORTS`]).
pub fn open_response_headers(
    session: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
    transports: &[&str],
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(6);
    out.push(("content-type", CONTENT_TYPE.into()));
    out.push(("cache-control", CACHE_CONTROL.into()));
    out.push((H2WS_SESSION, session.into()));
    if let Some(p) = protocol {
        out.push((H2WS_PROTOCOL, p.into()));
    }
    if let Some(e) = extensions.filter(|e| !e.is_empty()) {
        out.push((H2WS_EXTENSIONS, e.into()));
    }
    out.push((H2WS_TRANSPORTS, transports.join(", ")));
    out
}

/// The headers of a client's open request.
pub fn open_request_headers(
    protocols: &[&str],
    extensions: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(3);
    out.push((H2WS_VERSION, VERSION.into()));
    if !protocols.is_empty() {
        out.push((H2WS_PROTOCOL, protocols.join(", ")));
    }
    if let Some(e) = extensions.filter(|e| !e.is_empty()) {
        out.push((H2WS_EXTENSIONS, e.into()));
    }
    out
}

/// The headers of a client's upstream request: `seq` for `post` batches, `None` for `stream`.
pub fn upstream_request_headers(session: &str, seq: Option<u64>) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(2);
    out.push((H2WS_SESSION, session.into()));
    if let Some(n) = seq {
        out.push((H2WS_SEQ, decimal(n)));
    }
    out
}

/// What the client learns from the open response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenResponse<'a> {
    /// Token for the upstream requests.
    pub session: &'a str,
    /// Chosen protocol and extensions.
    pub accepted: Accepted<'a>,
    /// Upstream transports the server can do on this connection (`stream`, `post`).
    pub transports: Vec<&'a str>,
}

/// Client side: status 200, a well-formed `h2ws-session`, protocol / extensions among those
/// offered. Any other status refuses the socket (403 origin, 404, 503 at the limit...).
pub fn validate_open_response<'a>(
    status: u16,
    headers: &[(&str, &'a [u8])],
    offered_protocols: &[&str],
    offered_extensions: &[&str],
) -> Result<OpenResponse<'a>, HandshakeError> {
    if status != 200 {
        return Err(HandshakeError::new(
            status,
            "server refused the h2ws session",
        ));
    }
    let fail = |reason| HandshakeError::new(status, reason);
    let token = single_header(headers, H2WS_SESSION, "")
        .map_err(|_| fail("duplicate h2ws-session"))?
        .ok_or(fail("missing h2ws-session"))?;
    if !is_valid_session_token(token) {
        return Err(fail("malformed h2ws-session token"));
    }
    let session = core::str::from_utf8(token).map_err(|_| fail("malformed h2ws-session token"))?;
    let accepted = read_accepted(
        status,
        headers,
        H2WS_PROTOCOL,
        H2WS_EXTENSIONS,
        offered_protocols,
        offered_extensions,
    )?;
    let mut transports = Vec::new();
    for v in super::header_values(headers, H2WS_TRANSPORTS) {
        let s = core::str::from_utf8(v).map_err(|_| fail("malformed h2ws-transports"))?;
        transports.extend(
            s.split(',')
                .map(|t| t.trim_matches([' ', '\t']))
                .filter(|t| !t.is_empty()),
        );
    }
    Ok(OpenResponse {
        session,
        accepted,
        transports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const TOKEN: &[u8] = b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn token_encoding() {
        let mut r = [0u8; 32];
        for (i, b) in r.iter_mut().enumerate() {
            *b = i as u8;
        }
        let t = session_token(&r);
        assert_eq!(t.as_bytes(), TOKEN);
        assert!(is_valid_session_token(t.as_bytes()));
        // 16 bytes = 22 chars is the minimum; 21 chars is too short.
        assert!(is_valid_session_token(b"AAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_valid_session_token(b"AAAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_valid_session_token(&[b'A'; 87]));
        // Padding, the standard alphabet and non-canonical trailing bits are refused.
        assert!(!is_valid_session_token(b"AAAAAAAAAAAAAAAAAAAAAA=="));
        assert!(!is_valid_session_token(b"AAAAAAAAAAAAAAAAAAAAA+"));
        assert!(!is_valid_session_token(b"AAAAAAAAAAAAAAAAAAAAAB"));
    }

    #[test]
    fn instance_tokens() {
        let r = [7u8; 32];
        let t = session_token_for(Some("eu-1_b"), &r);
        assert_eq!(t, alloc::format!("eu-1_b.{}", session_token(&r)));
        assert!(is_valid_session_token(t.as_bytes()));
        assert_eq!(token_instance(t.as_bytes()), Some(&b"eu-1_b"[..]));
        assert_eq!(token_instance(session_token(&r).as_bytes()), None);
        assert_eq!(session_token_for(None, &r), session_token(&r));
        // The random part keeps its own rules; the prefix must be a valid id.
        assert!(!is_valid_session_token(b"s1.AAAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_valid_session_token(b".AAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_valid_session_token(b"s 1.AAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_valid_session_token(b"a.b.AAAAAAAAAAAAAAAAAAAAAA"));
        let long = alloc::format!("{}.AAAAAAAAAAAAAAAAAAAAAA", "x".repeat(33));
        assert!(!is_valid_session_token(long.as_bytes()));
        let max = alloc::format!("{}.AAAAAAAAAAAAAAAAAAAAAA", "x".repeat(32));
        assert!(is_valid_session_token(max.as_bytes()));
        for bad in [&b""[..], b"a.b", b"a b", b"\xc3\xa9", &[b'a'; 33]] {
            assert!(!is_valid_instance_id(bad));
        }
    }

    #[test]
    fn seq_is_strict() {
        assert_eq!(parse_seq(b"0"), Some(0));
        assert_eq!(parse_seq(b"42"), Some(42));
        assert_eq!(parse_seq(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"00",
            b"01",
            b"+1",
            b"-1",
            b"1 ",
            b"1e3",
            b"18446744073709551616",
            b"0x10",
        ] {
            assert_eq!(parse_seq(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn decimal_round_trips_and_matches_to_string() {
        for n in [
            0,
            1,
            9,
            10,
            42,
            99,
            100,
            65_535,
            1 << 32,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let s = decimal(n);
            assert_eq!(s, alloc::format!("{n}"));
            assert_eq!(parse_seq(s.as_bytes()), Some(n));
        }
    }

    #[test]
    fn open_request() {
        let h: &[(&str, &[u8])] = &[
            ("h2ws-version", b"1"),
            ("h2ws-protocol", b"chat, superchat"),
            (
                "h2ws-extensions",
                b"permessage-deflate; client_max_window_bits",
            ),
            ("origin", b"https://app.example"),
        ];
        let o = validate_open(h).unwrap();
        assert_eq!(o.protocols, vec!["chat", "superchat"]);
        assert_eq!(o.extensions[0].param("client_max_window_bits"), Some(None));
        assert_eq!(o.origin, Some("https://app.example"));
        assert_eq!(
            validate_open(&h[1..]).unwrap_err(),
            HandshakeError::bad_request("missing h2ws-version")
        );
        let v2: &[(&str, &[u8])] = &[("h2ws-version", b"2")];
        assert_eq!(
            validate_open(v2).unwrap_err().reason,
            "unsupported h2ws-version (supported: 1)"
        );
        let dup: &[(&str, &[u8])] = &[("h2ws-version", b"1"), ("H2WS-Version", b"1")];
        assert_eq!(validate_open(dup).unwrap_err().status, 400);
    }

    #[test]
    fn upstream_request() {
        let h: &[(&str, &[u8])] = &[("h2ws-session", TOKEN), ("h2ws-seq", b"7")];
        let u = validate_upstream(h).unwrap();
        assert_eq!(u.session.as_bytes(), TOKEN);
        assert_eq!(u.seq, Some(7));
        assert_eq!(validate_upstream(&h[..1]).unwrap().seq, None);
        assert_eq!(
            validate_upstream(&h[1..]).unwrap_err().reason,
            "missing h2ws-session"
        );
        let bad: &[(&str, &[u8])] = &[("h2ws-session", b"short")];
        assert_eq!(
            validate_upstream(bad).unwrap_err().reason,
            "malformed h2ws-session token"
        );
        let bad: &[(&str, &[u8])] = &[("h2ws-session", TOKEN), ("h2ws-seq", b"01")];
        assert_eq!(
            validate_upstream(bad).unwrap_err().reason,
            "malformed h2ws-seq"
        );
    }

    #[test]
    fn upstream_attach() {
        let plain: &[(&str, &[u8])] = &[("h2ws-session", TOKEN)];
        assert_eq!(validate_upstream(plain).unwrap().attach, 0);
        let second: &[(&str, &[u8])] = &[("h2ws-session", TOKEN), ("h2ws-attach", b"2")];
        assert_eq!(validate_upstream(second).unwrap().attach, 2);
        for value in [&b"x"[..], b"-1", b"01", b""] {
            let bad: &[(&str, &[u8])] = &[("h2ws-session", TOKEN), ("h2ws-attach", value)];
            assert_eq!(
                validate_upstream(bad).unwrap_err().reason,
                "malformed h2ws-attach"
            );
        }
        let twice: &[(&str, &[u8])] = &[
            ("h2ws-session", TOKEN),
            ("h2ws-attach", b"1"),
            ("h2ws-attach", b"1"),
        ];
        assert_eq!(
            validate_upstream(twice).unwrap_err().reason,
            "duplicate h2ws-attach header"
        );
    }

    #[test]
    fn headers_round_trip() {
        let req = upstream_request_headers("tok", Some(1234567890123));
        assert_eq!(req[1], (H2WS_SEQ, "1234567890123".into()));
        assert_eq!(upstream_request_headers("tok", Some(0))[1].1, "0");
        assert_eq!(upstream_request_headers("tok", None).len(), 1);

        let req = open_request_headers(&["a"], Some("permessage-deflate"));
        let pairs: Vec<(&str, &[u8])> = req.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        assert_eq!(validate_open(&pairs).unwrap().protocols, vec!["a"]);

        let token = session_token(&[9; 32]);
        let resp = open_response_headers(
            &token,
            Some("a"),
            Some("permessage-deflate"),
            &["stream", "post"],
        );
        let pairs: Vec<(&str, &[u8])> = resp.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        let r = validate_open_response(200, &pairs, &["a"], &["permessage-deflate"]).unwrap();
        assert_eq!(r.session, token);
        assert_eq!(r.accepted.protocol, Some("a"));
        assert_eq!(r.transports, vec!["stream", "post"]);
        assert_eq!(
            validate_open_response(503, &pairs, &["a"], &[])
                .unwrap_err()
                .status,
            503
        );
        assert_eq!(
            validate_open_response(200, &pairs[..2], &[], &[])
                .unwrap_err()
                .reason,
            "missing h2ws-session"
        );
    }
}
