//! Handshake integration tests: fixed vectors, a differential check of the accept key against
//! tungstenite, and "never panics, refuses with a proper status" on arbitrary headers.

use h2ws_codec::handshake::negotiate::{
    format_extensions, parse_extensions, parse_protocols, validate_protocols, ExtensionOffer,
};
use h2ws_codec::handshake::{classify, fetch, native, rfc6455, rfc8441, RequestHead, RequestKind};
use proptest::prelude::*;

#[test]
fn rfc6455_section_1_3_accept() {
    assert_eq!(
        &rfc6455::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

/// A full server-side flow per transport, as the devserver will run it.
#[test]
fn every_transport_on_one_path() {
    let key = rfc6455::client_key(*b"0123456789abcdef");
    let h1 = rfc6455::request_headers("example.com", &key, &["chat"], Some("permessage-deflate"));
    let h1: Vec<(&str, &[u8])> = h1.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    let get = RequestHead {
        method: "GET",
        path: Some("/ws"),
        ..Default::default()
    };
    assert_eq!(classify(&get, &h1), Ok(RequestKind::Rfc6455));
    assert_eq!(
        rfc6455::validate_request("GET", &h1)
            .unwrap()
            .offer
            .protocols,
        ["chat"]
    );

    let connect = RequestHead {
        method: "CONNECT",
        scheme: Some("https"),
        authority: Some("example.com"),
        path: Some("/ws"),
        protocol: Some("websocket"),
    };
    let h2: &[(&str, &[u8])] = &[("sec-websocket-version", b"13")];
    assert_eq!(classify(&connect, h2), Ok(RequestKind::Rfc8441));
    assert!(rfc8441::validate_request(&connect, h2).is_ok());

    let native_head = RequestHead {
        method: "GET",
        scheme: Some("wss"),
        authority: Some("example.com"),
        path: Some("/ws"),
        protocol: None,
    };
    let hn = native::request_headers(&[], None);
    let hn: Vec<(&str, &[u8])> = hn.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    assert_eq!(classify(&native_head, &hn), Ok(RequestKind::Native));
    assert!(native::validate_request(&native_head, &hn).is_ok());

    let post = RequestHead {
        method: "POST",
        scheme: Some("https"),
        authority: Some("example.com"),
        path: Some("/ws"),
        protocol: None,
    };
    let open = fetch::open_request_headers(&["chat"], None);
    let open: Vec<(&str, &[u8])> = open.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    assert_eq!(classify(&post, &open), Ok(RequestKind::FetchOpen));
    assert!(fetch::validate_open(&open).is_ok());

    let token = fetch::session_token(&[42; 32]);
    for (seq, transport) in [
        (None, RequestKind::FetchUpstreamStream),
        (Some(3), RequestKind::FetchUpstreamPost),
    ] {
        let up = fetch::upstream_request_headers(&token, seq);
        let up: Vec<(&str, &[u8])> = up.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        assert_eq!(classify(&post, &up), Ok(transport));
        let u = fetch::validate_upstream(&up).unwrap();
        assert_eq!((u.session, u.seq, u.read), (token.as_str(), seq, None));
    }
    // The read window: offered on the open, granted in the answer, acknowledged by requests.
    let offer: Vec<(&str, &[u8])> = vec![("h2ws-version", b"1"), ("h2ws-acks", b"1")];
    assert!(fetch::acks_offered(&offer));
    assert!(!fetch::acks_offered(&open));
    assert_eq!(fetch::parse_window(b"2097152"), Some(fetch::READ_WINDOW));
    assert_eq!(fetch::parse_window(b"0"), None);
    assert_eq!(fetch::parse_window(b"-1"), None);
    let ack = fetch::ack_request_headers(&token, 1 << 20);
    let ack: Vec<(&str, &[u8])> = ack.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    assert_eq!(classify(&post, &ack), Ok(RequestKind::FetchAck));
    let u = fetch::validate_upstream(&ack).unwrap();
    assert_eq!((u.seq, u.read), (None, Some(1 << 20)));
    let mut both = ack.clone();
    both.push(("h2ws-seq", b"1"));
    assert!(
        fetch::validate_upstream(&both).is_err(),
        "an ack is not a batch"
    );
    assert!(!fetch::ack_due(1 << 20, 0, 4 << 20));
    assert!(fetch::ack_due(2 << 20, 0, 4 << 20));
    assert!(fetch::ack_due(3 << 20, 1 << 20, 4 << 20));
    assert!(
        !fetch::ack_due(5, 10, 4 << 20),
        "never due for less than acked"
    );
}

const NAMES: &[&str] = &[
    "host",
    "Upgrade",
    "connection",
    "Sec-WebSocket-Key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "Sec-WebSocket-Extensions",
    "origin",
    "h2ws-version",
    "h2ws-protocol",
    "h2ws-extensions",
    "h2ws-session",
    "h2ws-seq",
    "x-other",
];

fn headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        Just(b"websocket".to_vec()),
        Just(b"Upgrade".to_vec()),
        Just(b"13".to_vec()),
        Just(b"1".to_vec()),
        Just(b"dGhlIHNhbXBsZSBub25jZQ==".to_vec()),
        Just(b"permessage-deflate; client_max_window_bits".to_vec()),
        Just(b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".to_vec()),
    ];
    proptest::collection::vec((proptest::sample::select(NAMES), value), 0..10)
}

fn head() -> impl Strategy<
    Value = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
> {
    let opt = |s: &'static [&'static str]| {
        proptest::option::of(proptest::sample::select(s).prop_map(String::from))
    };
    (
        proptest::sample::select(&["GET", "POST", "CONNECT", "PUT", "OPTIONS", "get"][..])
            .prop_map(String::from),
        opt(&["ws", "wss", "https", "http", "WS", ""]),
        opt(&["example.com", ""]),
        opt(&["/", "/ws", ""]),
        opt(&["websocket", "WebSocket", "h2ws", ""]),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn accept_key_matches_tungstenite(random in any::<[u8; 16]>()) {
        let key = rfc6455::client_key(random);
        let ours = rfc6455::accept_key(&key);
        let theirs = tungstenite::handshake::derive_accept_key(&key);
        prop_assert_eq!(std::str::from_utf8(&ours).unwrap(), theirs);
        prop_assert!(rfc6455::is_valid_key(&key));
    }

    #[test]
    fn validators_never_panic_and_refuse_properly(h in headers(), (m, s, a, p, pr) in head()) {
        let pairs: Vec<(&str, &[u8])> = h.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let head = RequestHead {
            method: &m,
            scheme: s.as_deref(),
            authority: a.as_deref(),
            path: p.as_deref(),
            protocol: pr.as_deref(),
        };
        let check = |e: h2ws_codec::handshake::HandshakeError| {
            assert!(e.status == 400 || e.status == 426, "{e:?}");
            assert!(!e.reason.is_empty() && !e.reason.contains('\n'));
        };
        if let Err(e) = classify(&head, &pairs) { check(e) }
        if let Err(e) = rfc6455::validate_request(&m, &pairs) { check(e) }
        if let Err(e) = rfc8441::validate_request(&head, &pairs) { check(e) }
        if let Err(e) = native::validate_request(&head, &pairs) { check(e) }
        if let Err(e) = fetch::validate_open(&pairs) { check(e) }
        if let Err(e) = fetch::validate_upstream(&pairs) { check(e) }
        // Client-side checks on the same headers: errors carry the given status.
        let key = b"dGhlIHNhbXBsZSBub25jZQ==";
        for status in [101u16, 200, 403] {
            if let Err(e) = rfc6455::validate_response(status, &pairs, key, &["chat"], &["permessage-deflate"]) {
                prop_assert_eq!(e.status, status);
            }
            if let Err(e) = native::validate_response(status, &pairs, &["chat"], &["permessage-deflate"]) {
                prop_assert_eq!(e.status, status);
            }
            if let Err(e) = rfc8441::validate_response(status, &pairs, &["chat"], &[]) {
                prop_assert_eq!(e.status, status);
            }
            if let Err(e) = fetch::validate_open_response(status, &pairs, &[], &[]) {
                prop_assert_eq!(e.status, status);
            }
        }
    }

    #[test]
    fn extension_parser_never_panics_and_round_trips(s in "[ -~\t]{0,80}") {
        if let Ok(offers) = parse_extensions(&s) {
            let formatted = format_extensions(&offers);
            prop_assert_eq!(parse_extensions(&formatted).unwrap(), offers);
        }
        let _ = parse_protocols(&s);
    }

    #[test]
    fn generated_extensions_round_trip(
        offers in proptest::collection::vec(
            ("[a-z][a-z0-9-]{0,12}", proptest::collection::vec(("[a-z_]{1,10}", proptest::option::of("[A-Za-z0-9.]{1,6}")), 0..4)),
            1..4,
        )
    ) {
        let offers: Vec<ExtensionOffer> = offers
            .into_iter()
            .map(|(name, params)| ExtensionOffer { name, params })
            .collect();
        prop_assert_eq!(parse_extensions(&format_extensions(&offers)).unwrap(), offers);
    }

    #[test]
    fn protocol_lists_follow_the_constructor_rules(list in proptest::collection::vec("[!-~]{0,6}", 0..6)) {
        let refs: Vec<&str> = list.iter().map(String::as_str).collect();
        let valid_tokens = refs.iter().all(|p| !p.is_empty() && p.bytes().all(|b| !b"()<>@,;:\\\"/[]?={} \t".contains(&b)));
        let mut sorted = refs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let unique = sorted.len() == refs.len();
        prop_assert_eq!(validate_protocols(&refs).is_ok(), valid_tokens && unique);
        if valid_tokens && unique {
            let joined = refs.join(", ");
            prop_assert_eq!(parse_protocols(&joined).unwrap(), refs);
        }
    }

    #[test]
    fn seq_matches_canonical_decimal(n in any::<u64>(), s in "[0-9+\\- ]{0,22}") {
        prop_assert_eq!(fetch::parse_seq(n.to_string().as_bytes()), Some(n));
        let canonical = s.parse::<u64>().ok().filter(|v| v.to_string() == s);
        prop_assert_eq!(fetch::parse_seq(s.as_bytes()), canonical);
    }

    #[test]
    fn session_tokens_validate(random in any::<[u8; 32]>()) {
        let t = fetch::session_token(&random);
        prop_assert_eq!(t.len(), 43);
        prop_assert!(fetch::is_valid_session_token(t.as_bytes()));
    }
}
