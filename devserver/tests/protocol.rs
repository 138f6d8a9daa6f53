//! Handshake refusals, close codes both ways, bad frames, handshake context, native DATA-frame
//! boundaries and many sockets multiplexed on one HTTP/2 connection.

mod common;

use bytes::Bytes;
use common::*;
use h2ws::SocketConfig;
use h2ws_codec::{Config, Connection, Framing, Message, Role};
use http::{Method, Request, StatusCode};
use std::time::Duration;

async fn setup(
    config: SocketConfig,
) -> (h2ws::RunningServer, h2::client::SendRequest<Bytes>, String) {
    init_tracing();
    TestServer::start(server(config).routes(test_routes()))
        .await
        .parts()
}

#[tokio::test]
async fn refusals_carry_status_and_reason() {
    let (server, sr, a) = setup(SocketConfig::default()).await;
    let url = format!("https://{a}/ws/echo");

    // 400: unknown h2ws-version, plain GET, native with a forbidden header.
    let (st, _, body) = request(&sr, Method::POST, &url, &[("h2ws-version", "2")], b"").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("h2ws-version"), "{body}");
    let (st, _, body) = request(&sr, Method::GET, &url, &[], b"").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("not a WebSocket request"), "{body}");
    let r = Peer::open_with(
        &sr,
        &a,
        "/ws/echo",
        Kind::Native,
        &[("sec-websocket-key", "x")],
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.to_lowercase().contains("sec-websocket-key"),
        "{}",
        r.body
    );
    let r = Peer::open_with(
        &sr,
        &a,
        "/ws/echo",
        Kind::Rfc8441,
        &[("sec-websocket-version", "8")],
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(r.status, StatusCode::UPGRADE_REQUIRED, "{}", r.body);

    // 403: a foreign Origin, on every transport.
    assert_foreign_origin_refused(&sr, &a).await;
    // Allowed: localhost on another port.
    let ok = Peer::open_with(
        &sr,
        &a,
        "/ws/echo",
        Kind::Stream,
        &[("origin", "http://localhost:1234")],
    )
    .await;
    let ok = ok.expect("localhost origin allowed");
    assert_eq!(
        ok.headers["access-control-allow-origin"],
        "http://localhost:1234"
    );
    assert!(ok.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("h2ws-session"));

    // 404: unknown session, unknown endpoint.
    let unknown = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (st, _, body) = request(&sr, Method::POST, &url, &[("h2ws-session", unknown)], b"").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(body.contains("no such session"), "{body}");
    let (st, _, body) = request(&sr, Method::GET, &format!("https://{a}/nothing"), &[], b"").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(body.contains("no such endpoint"), "{body}");

    // 409: a second stream attach; a post batch too far ahead; post on a stream session.
    let mut peer = Peer::open(&sr, &a, "/ws/echo", Kind::Stream)
        .await
        .expect("open");
    let token = peer.headers["h2ws-session"].to_str().unwrap().to_string();
    peer.send_text("attached").await;
    assert_eq!(peer.recv_message().await, Message::Text("attached".into()));
    let (st, _, body) = request(&sr, Method::POST, &url, &[("h2ws-session", &token)], b"").await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(body.contains("already attached"), "{body}");
    let (st, _, body) = request(
        &sr,
        Method::POST,
        &url,
        &[("h2ws-session", &token), ("h2ws-seq", "0")],
        b"",
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(body.contains("stream"), "{body}");

    let post = Peer::open(&sr, &a, "/ws/echo", Kind::Post)
        .await
        .expect("open");
    let ptoken = post.headers["h2ws-session"].to_str().unwrap().to_string();
    let (st, _, body) = request(
        &sr,
        Method::POST,
        &url,
        &[("h2ws-session", &ptoken), ("h2ws-seq", "17")],
        b"",
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(body.contains("ahead"), "{body}");

    // 410: the session ended.
    peer.close(1000, "").await;
    peer.closed().await;
    peer.end_upstream();
    peer.wait_down_end().await;
    let mut gone = false;
    for _ in 0..100 {
        let (st, _, body) = request(
            &sr,
            Method::POST,
            &url,
            &[("h2ws-session", &token), ("h2ws-seq", "0")],
            b"",
        )
        .await;
        if st == StatusCode::GONE {
            assert!(body.contains("ended"), "{body}");
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(gone, "an ended session answers 410");

    // CORS preflight.
    let (st, h, _) = request(
        &sr,
        Method::OPTIONS,
        &url,
        &[
            ("origin", "http://127.0.0.1:9"),
            ("access-control-request-method", "POST"),
        ],
        b"",
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("h2ws-seq"));
    let (st, _, _) = request(
        &sr,
        Method::OPTIONS,
        &url,
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ],
        b"",
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    server.shutdown().await;
}

/// A short text frame in the stream framing (MASK = 0), as a `post` batch carries it.
fn text_frame(t: &str) -> Vec<u8> {
    let mut f = vec![0x81, t.len() as u8];
    f.extend_from_slice(t.as_bytes());
    f
}

/// One `post` batch `seq` of session `token` (with `h2ws-reply: 1` when `reply`): the answer's
/// status, headers and body.
async fn batch(
    sr: &h2::client::SendRequest<Bytes>,
    url: &str,
    token: &str,
    seq: &str,
    reply: bool,
    body: &[u8],
) -> (StatusCode, http::HeaderMap, String) {
    let mut headers = vec![("h2ws-session", token), ("h2ws-seq", seq)];
    if reply {
        headers.push(("h2ws-reply", "1"));
    }
    request(sr, Method::POST, url, &headers, body).await
}

#[tokio::test]
async fn post_batches_apply_in_seq_order_and_duplicates_are_ignored() {
    let (server, sr, a) = setup(SocketConfig::default()).await;
    let url = format!("https://{a}/ws/echo");
    let mut peer = Peer::open(&sr, &a, "/ws/echo", Kind::Post)
        .await
        .expect("open");
    let token = peer.headers["h2ws-session"].to_str().unwrap().to_string();
    let post = |seq: &'static str, body: Vec<u8>| {
        let (sr, url, token) = (sr.clone(), url.clone(), token.clone());
        async move { batch(&sr, &url, &token, seq, false, &body).await.0 }
    };
    // seq 2 and 1 first (held), then 0 releases all three in order.
    let (s2, s1) = tokio::join!(post("2", text_frame("two")), post("1", text_frame("one")));
    assert!(s2.is_success() && s1.is_success(), "{s2} {s1}");
    assert_eq!(post("0", text_frame("zero")).await, StatusCode::OK);
    for want in ["zero", "one", "two"] {
        assert_eq!(peer.recv_message().await, Message::Text(want.into()));
    }
    // A repeated seq is answered 204 and ignored.
    assert_eq!(post("1", text_frame("dup")).await, StatusCode::NO_CONTENT);
    // A batch with two frames.
    let mut two = text_frame("a");
    two.extend(text_frame("b"));
    assert_eq!(post("3", two).await, StatusCode::OK);
    assert_eq!(peer.recv_message().await, Message::Text("a".into()));
    assert_eq!(peer.recv_message().await, Message::Text("b".into()));
    // The duplicate never arrived.
    assert_eq!(post("4", text_frame("last")).await, StatusCode::OK);
    assert_eq!(peer.recv_message().await, Message::Text("last".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn a_batch_asking_for_a_reply_carries_the_echo_and_the_downstream_a_marker() {
    let (server, sr, a) = setup(SocketConfig::default()).await;
    let url = format!("https://{a}/ws/echo");
    let mut peer = Peer::open(&sr, &a, "/ws/echo", Kind::Post)
        .await
        .expect("open");
    let token = peer.headers["h2ws-session"].to_str().unwrap().to_string();
    // `h2ws-reply: 1`: the echo comes in the answer, placed after the 2-byte open preamble.
    let (st, headers, body) = batch(&sr, &url, &token, "0", true, &text_frame("hi")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(headers["h2ws-at"], "2");
    assert_eq!(body, String::from_utf8_lossy(&text_frame("hi")));
    // Without it: an empty 200, the echo on the downstream, behind the marker of the first.
    let (st, headers, body) = batch(&sr, &url, &token, "1", false, &text_frame("two")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(headers.get("h2ws-at").is_none() && body.is_empty());
    let moved = &h2ws_codec::handshake::fetch::MOVED_MARKER[2..];
    assert_eq!(
        peer.next_event().await,
        h2ws_codec::Event::Pong(moved.to_vec())
    );
    assert_eq!(peer.recv_message().await, Message::Text("two".into()));
    // A batch whose socket sends nothing back is answered after the wait, empty.
    // An unsolicited Pong: nothing the echo app answers.
    let (st, headers, body) = batch(&sr, &url, &token, "2", true, &[0x8A, 0x00]).await;
    assert_eq!(st, StatusCode::OK);
    assert!(headers.get("h2ws-at").is_none() && body.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn close_codes_both_ways() {
    let (server, sr, a) = setup(SocketConfig::default()).await;
    for kind in Kind::ALL {
        // Client closes: the server echoes the code.
        let mut p = Peer::open(&sr, &a, "/ws/echo", kind).await.expect("open");
        p.close(4321, "client bye").await;
        assert_eq!(
            p.closed().await,
            (4321, String::new(), true),
            "{kind:?} client close"
        );
        // Server closes: the client sees the server's code and reason.
        let mut p = Peer::open(&sr, &a, "/ws/closer", kind).await.expect("open");
        p.send_text("close 4002 server bye").await;
        let (code, reason, clean) = p.closed().await;
        assert_eq!(
            (code, reason.as_str(), clean),
            (4002, "server bye", true),
            "{kind:?} server close"
        );
        p.end_upstream();
        p.wait_down_end().await;
        assert_eq!(p.reset, None, "{kind:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn handshake_context_and_refusal_by_the_app() {
    let (server, sr, a) = setup(SocketConfig::default()).await;
    for kind in Kind::ALL {
        let (ph, eh) = match kind {
            Kind::Stream | Kind::Post => ("h2ws-protocol", "h2ws-extensions"),
            _ => ("sec-websocket-protocol", "sec-websocket-extensions"),
        };
        let _ = eh;
        let r = Peer::open_with(&sr, &a, "/ws/auth", kind, &[(ph, "chat")]).await;
        let r = r.err().expect("refused without a token");
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{kind:?}");
        assert!(r.body.contains("bad token"));
        let mut p = Peer::open_with(
            &sr,
            &a,
            "/ws/auth",
            kind,
            &[("authorization", "Bearer ok"), (ph, "chat, chat.v2")],
        )
        .await
        .expect("accepted");
        assert_eq!(
            p.headers[ph], "chat",
            "{kind:?}: client's first supported choice"
        );
        assert_eq!(p.recv_message().await, Message::Text("hello chat".into()));

        let mut p = Peer::open_with(
            &sr,
            &a,
            "/ws/closer?x=1",
            kind,
            &[("authorization", "Bearer t"), ("cookie", "a=1; c=42")],
        )
        .await
        .expect("open");
        p.send_text("info").await;
        let Message::Text(line) = p.recv_message().await else {
            panic!()
        };
        let transport = match kind {
            Kind::Native => "native",
            Kind::Rfc8441 => "rfc8441",
            Kind::Stream => "stream",
            Kind::Post => "post",
        };
        assert_eq!(
            line,
            format!("transport={transport} path=/ws/closer query=x=1 version=HTTP/2.0 protocol=- peer=127.0.0.1 cookie=42 auth=Bearer t")
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn bad_frames_get_the_right_close_code() {
    let config = SocketConfig {
        max_message_size: 1000,
        ..SocketConfig::default()
    };
    let (server, sr, a) = setup(config).await;
    // Stream framing: a masked frame (1002), invalid UTF-8 (1007), too big (1009), reserved opcode.
    let cases: Vec<(Kind, Vec<u8>, u16)> = vec![
        (
            Kind::Stream,
            vec![0x81, 0x85, 1, 2, 3, 4, b'h', b'e', b'l', b'l', b'o'],
            1002,
        ),
        (Kind::Stream, vec![0x81, 0x02, 0xff, 0xfe], 1007),
        (Kind::Post, vec![0x81, 0x02, 0xc3, 0x28], 1007),
        (Kind::Stream, vec![0x83, 0x00], 1002),
        (Kind::Post, vec![0xc1, 0x01, b'x'], 1002),
        // RFC 8441 carries RFC 6455 framing: an unmasked client frame is an error.
        (Kind::Rfc8441, vec![0x81, 0x01, b'x'], 1002),
        // Native: reserved opcode and an invalid close code.
        (Kind::Native, vec![0x83], 1002),
        (Kind::Native, vec![0x88, 0x03, 0xed], 1002),
        (Kind::Native, vec![0x81, 0xff], 1007),
    ];
    for (kind, bytes, want) in cases {
        let mut p = Peer::open(&sr, &a, "/ws/echo", kind).await.expect("open");
        p.write_raw(Bytes::from(bytes.clone())).await;
        let (code, _, _) = p.closed().await;
        assert_eq!(code, want, "{kind:?} {bytes:02x?}");
        p.wait_down_end().await;
        if kind == Kind::Native {
            assert_eq!(
                p.reset,
                Some(h2::Reason::PROTOCOL_ERROR),
                "native: RST_STREAM after Close"
            );
        }
    }
    // Too big, on every transport.
    for kind in Kind::ALL {
        let mut p = Peer::open(&sr, &a, "/ws/echo", kind).await.expect("open");
        p.send_binary(&pattern(2000)).await;
        let (code, _, _) = p.closed().await;
        assert_eq!(code, 1009, "{kind:?} too big");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn native_data_frames_are_whole_websocket_frames() {
    let (server, sr, a) = setup(SocketConfig::default()).await;
    let mut p = Peer::open(&sr, &a, "/ws/echo", Kind::Native)
        .await
        .expect("open");
    let big = pattern(1 << 20);
    p.send_binary(&big).await;
    assert_eq!(p.recv_message().await, Message::Binary(big.clone()));
    // Each DATA frame was one frame (the Peer checks it parses as exactly one) of at most
    // 16384 bytes; the message came fragmented: Binary then Continuations, FIN on the last.
    let frames = std::mem::take(&mut p.data_frames);
    assert!(frames.len() >= 65, "{} DATA frames", frames.len());
    assert!(frames.iter().all(|f| !f.is_empty() && f.len() <= 16_384));
    assert_eq!(frames[0][0], 0x02, "first: Binary, no FIN");
    assert!(
        frames[1..frames.len() - 1].iter().all(|f| f[0] == 0x00),
        "Continuations"
    );
    assert_eq!(frames[frames.len() - 1][0], 0x80, "last: FIN Continuation");
    let payload: usize = frames.iter().map(|f| f.len() - 1).sum();
    assert_eq!(payload, big.len());

    // Regression (h2 hands over one chunk per DATA frame): many small frames, each its own
    // DATA frame, sent back to back without waiting; a merged chunk would be a 1002.
    for i in 0..100u8 {
        p.write_raw(Bytes::from(vec![0x82, i])).await;
    }
    for i in 0..100u8 {
        assert_eq!(p.recv_message().await, Message::Binary(vec![i]));
    }
    // Small messages come back as one DATA frame each.
    let frames = std::mem::take(&mut p.data_frames);
    assert_eq!(frames.len(), 100);
    assert!(frames
        .iter()
        .enumerate()
        .all(|(i, f)| f[..] == [0x82, i as u8]));
    server.shutdown().await;
}

#[tokio::test]
async fn many_sockets_multiplexed_on_one_connection() {
    let (server, sr, a) = setup(SocketConfig::default()).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let kind = Kind::ALL[i % 4];
        let sr = sr.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let mut p = Peer::open(&sr, &a, "/ws/echo", kind).await.expect("open");
            for j in 0..5 {
                let text = format!("socket {i} message {j}");
                p.send_text(&text).await;
                assert_eq!(p.recv_message().await, Message::Text(text));
            }
            p
        }));
    }
    let mut peers = Vec::new();
    for t in tasks {
        peers.push(t.await.expect("socket task"));
    }
    let stats = server.endpoint().stats().snapshot();
    assert_eq!(stats.open_total, 100, "{stats:?}");
    assert_eq!(stats.open["native"], 25);
    assert_eq!(stats.open["post"], 25);
    for p in &mut peers {
        p.close(1000, "").await;
        p.closed().await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn native_control_frames_jump_queued_data() {
    let (server, sr, a) = setup(SocketConfig::default()).await;
    let mut p = Peer::open(&sr, &a, "/ws/echo", Kind::Native)
        .await
        .expect("open");
    // 4 MiB echo: the first MiB fills our stream window, the rest waits in the server's queue.
    let big = pattern(4 << 20);
    p.send_binary(&big).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Our Ping reaches the server while ~3 MiB of echo data are queued there.
    p.conn.send_ping(b"jump").expect("ping");
    p.flush().await;
    let mut data_frames_before_pong = None;
    let mut message = None;
    while message.is_none() {
        match p.next_event().await {
            h2ws_codec::Event::Pong(payload) => {
                assert_eq!(payload, b"jump");
                data_frames_before_pong = Some(p.data_frames.len());
            }
            h2ws_codec::Event::Message(m) => message = Some(m),
            other => panic!("unexpected {other:?}"),
        }
    }
    let total = p.data_frames.len() - 1; // minus the Pong's own DATA frame
    let before = data_frames_before_pong.expect("a Pong arrived before the echo ended");
    // At most a window's worth (1 MiB ≈ 65 frames) plus the few units already on their way.
    assert!(
        before < 80 && before < total / 2,
        "Pong after {before} of {total} data frames"
    );
    assert_eq!(message, Some(Message::Binary(big)));
    server.shutdown().await;
}

/// One raw HTTP/1.1 request on the plain listener; returns the whole response text.
async fn raw_http1(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(LIMIT, tcp.read(&mut buf))
        .await
        .expect("answered in time")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn rfc6455_refusals() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (server, _sr, _a) = setup(SocketConfig::default()).await;
    let addr = server.http_addr().unwrap();
    let base =
        "GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    let res = raw_http1(addr, &format!("{base}Sec-WebSocket-Version: 13\r\n\r\n")).await;
    assert!(res.starts_with("HTTP/1.1 400"), "{res}");
    assert!(res.contains("Sec-WebSocket-Key"), "{res}");
    let res = raw_http1(
        addr,
        &format!(
            "{base}Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ),
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 426"), "{res}");
    assert!(
        res.to_lowercase().contains("sec-websocket-version: 13"),
        "{res}"
    );
    // A foreign Origin → 403.
    let mut req = format!("ws://{addr}/ws/echo")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 403);
            let body = String::from_utf8_lossy(res.body().as_deref().unwrap_or_default());
            assert!(body.contains("origin"), "{body}");
        }
        other => panic!("expected 403, got {:?}", other.map(|(_, r)| r.status())),
    }
    server.shutdown().await;
}

/// The read window (codec `fetch::READ_WINDOW`): a client that offers acks gets `h2ws-window`,
/// the downstream stops about a window past what it acknowledged (here the client keeps HTTP/2
/// flow control open, as Firefox and WebKit do, so only the window can stop it), an ack reopens
/// it; a bogus ack is refused, and a session without a window refuses acks.
#[tokio::test]
async fn read_window_holds_the_downstream_until_the_client_acks() {
    use h2ws_codec::handshake::fetch::READ_WINDOW;
    let (server, sr, a) = setup(SocketConfig::default()).await;
    let url = format!("https://{a}/ws/echo");
    let open = Request::post(&url)
        .header("h2ws-version", "1")
        .header("h2ws-acks", "1")
        .body(())
        .expect("request");
    let mut ready = sr.clone().ready().await.expect("ready");
    let (resp, _) = ready.send_request(open, true).expect("open");
    let resp = tokio::time::timeout(LIMIT, resp)
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["h2ws-window"],
        READ_WINDOW.to_string().as_str()
    );
    let token = resp.headers()["h2ws-session"].to_str().unwrap().to_string();
    // Read everything that arrives, releasing HTTP/2 capacity at once; count the bytes.
    let (count_tx, count_rx) = tokio::sync::watch::channel(0u64);
    let mut down = resp.into_body();
    tokio::spawn(async move {
        while let Some(Ok(chunk)) = down.data().await {
            let _ = down.flow_control().release_capacity(chunk.len());
            count_tx.send_modify(|n| *n += chunk.len() as u64);
        }
    });
    // Four 1 MiB messages, one post batch each (not awaited: the echo app may wait to send).
    let mut conn = Connection::new(Role::Client, Framing::Stream, Config::default());
    let message = pattern(1 << 20);
    for seq in 0..4 {
        conn.send_binary(&message).expect("send");
        let batch = conn.poll_transmit().expect("a frame");
        let (sr, url, token) = (sr.clone(), url.clone(), token.clone());
        tokio::spawn(async move {
            let seq = seq.to_string();
            request(
                &sr,
                Method::POST,
                &url,
                &[("h2ws-session", &token), ("h2ws-seq", &seq)],
                &batch,
            )
            .await
        });
    }
    let settle = |rx: tokio::sync::watch::Receiver<u64>| async move {
        // Until nothing arrives for 500 ms.
        let mut last = *rx.borrow();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = *rx.borrow();
            if now == last {
                return now;
            }
            last = now;
        }
    };
    let all = 2 + 4 * ((1 << 20) + 10); // preamble + four frames (10-byte headers)
    let held = settle(count_rx.clone()).await;
    assert!(
        held >= READ_WINDOW && held < all && held <= READ_WINDOW + (1 << 20) + 64,
        "without acks the downstream stops about a window in: {held} of {all} bytes"
    );
    let ack = |read: u64| {
        let (sr, url, token) = (sr.clone(), url.clone(), token.clone());
        async move {
            let read = read.to_string();
            request(
                &sr,
                Method::POST,
                &url,
                &[("h2ws-session", &token), ("h2ws-read", &read)],
                b"",
            )
            .await
        }
    };
    let (status, _, body) = ack(held + 1_000_000_000).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(ack(held).await.0, StatusCode::NO_CONTENT);
    let mut got = settle(count_rx.clone()).await;
    while got < all {
        assert!(got > held, "an ack reopens the window: {got} after {held}");
        assert_eq!(ack(got).await.0, StatusCode::NO_CONTENT);
        let next = settle(count_rx.clone()).await;
        assert!(next > got, "stuck at {next} of {all}");
        got = next;
    }
    assert_eq!(got, all);
    // A session opened without h2ws-acks has no window: acks are refused.
    let plain = Peer::open(&sr, &a, "/ws/echo", Kind::Post)
        .await
        .expect("open");
    assert!(plain.headers.get("h2ws-window").is_none());
    let plain_token = plain.headers["h2ws-session"].to_str().unwrap().to_string();
    let (status, _, _) = request(
        &sr,
        Method::POST,
        &url,
        &[("h2ws-session", &plain_token), ("h2ws-read", "2")],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    server.shutdown().await;
}
