//! Timeouts and lifecycles: the fetch attach timeout, ping liveness with shortened timeouts,
//! graceful shutdown (Close 1001), chat across transports, stats, static files.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use h2ws::SocketConfig;
use h2ws_codec::{Event, Message};
use http::{Method, StatusCode};
use tokio_tungstenite::tungstenite::Message as TMsg;

fn short() -> SocketConfig {
    SocketConfig {
        attach_timeout: Duration::from_millis(300),
        ping_after: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(700),
        close_timeout: Duration::from_millis(300),
        ..SocketConfig::default()
    }
}

#[tokio::test]
async fn unattached_fetch_session_closes_with_1011() {
    init_tracing();
    // No pings before the attach timeout: a Pong would attach the upstream.
    let (server, sr, a) = test_server(SocketConfig {
        ping_after: std::time::Duration::from_secs(30),
        ..short()
    })
    .await
    .parts();
    // Open a post session and never send a batch: no upstream attaches.
    let mut p = Peer::open(&sr, &a, "/ws/echo", Kind::Post)
        .await
        .expect("open");
    let token = p.headers["h2ws-session"].to_str().unwrap().to_string();
    let (code, reason, _) = p.closed().await;
    assert_eq!(code, 1011);
    assert!(reason.contains("upstream"), "{reason}");
    p.wait_down_end().await;
    // The token is now expired.
    let url = format!("https://{a}/ws/echo");
    let session = [("h2ws-session", token.as_str())];
    let status = wait_for_status(&sr, Method::POST, &url, &session, StatusCode::GONE).await;
    assert_eq!(status, StatusCode::GONE);
    server.shutdown().await;
}

#[tokio::test]
async fn liveness_pings_then_drops_silent_sockets() {
    init_tracing();
    let (server, sr, a) = test_server(short()).await.parts();
    for kind in Kind::ALL {
        // A peer that answers pings stays open well past the idle timeout.
        let mut live = Peer::open(&sr, &a, "/ws/echo", kind).await.expect("open");
        let start = tokio::time::Instant::now();
        let mut pings = 0;
        while start.elapsed() < Duration::from_millis(1500) {
            match live.next_event_within(Duration::from_millis(100)).await {
                Some(Event::Ping(_)) => pings += 1,
                Some(other) => panic!("{kind:?}: unexpected {other:?}"),
                None => {}
            }
        }
        assert!(pings >= 3, "{kind:?}: pinged after silence ({pings})");
        live.send_text("still here").await;
        assert_eq!(
            live.recv_message().await,
            Message::Text("still here".into()),
            "{kind:?}"
        );

        // A peer that never answers is dropped: the stream ends without a Close frame.
        let mut silent = Peer::open(&sr, &a, "/ws/echo", kind).await.expect("open");
        silent.conn = h2ws_codec::Connection::new(
            h2ws_codec::Role::Client,
            match kind {
                Kind::Native => h2ws_codec::Framing::Native,
                Kind::Rfc8441 => h2ws_codec::Framing::Rfc6455,
                _ => h2ws_codec::Framing::Stream,
            },
            h2ws_codec::Config {
                auto_pong: false,
                ..Default::default()
            },
        )
        .with_mask_seed([1; 32]);
        // Attach the upstream (fetch) with one message, then stay silent.
        silent.send_text("x").await;
        assert_eq!(silent.recv_message().await, Message::Text("x".into()));
        let dropped = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match silent.next_event().await {
                    Event::Closed { code, clean, .. } => return (code.0, clean),
                    Event::Ping(_) => {}
                    other => panic!("{kind:?}: unexpected {other:?}"),
                }
            }
        })
        .await
        .expect("dropped in time");
        assert_eq!(
            dropped,
            (1006, false),
            "{kind:?}: dropped without a close handshake"
        );
    }
    live_cleanup(server).await;
}

async fn live_cleanup(server: h2ws::RunningServer) {
    server.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_closes_sockets_with_1001() {
    init_tracing();
    let (server, sr, a) = test_server(short()).await.parts();
    let mut peers = Vec::new();
    for kind in Kind::ALL {
        let mut p = Peer::open(&sr, &a, "/ws/echo", kind).await.expect("open");
        p.send_text("x").await;
        p.recv_message().await;
        peers.push(p);
    }
    let url = format!("ws://{}/ws/echo", http_authority(&server));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let shutdown = tokio::spawn(server.shutdown());
    for p in &mut peers {
        let (code, _, _) = p.closed().await;
        assert_eq!(code, 1001, "{:?}", p.kind);
    }
    let mut close = None;
    while let Some(Ok(m)) = ws.next().await {
        if let TMsg::Close(c) = m {
            close = c;
        }
    }
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1001), "rfc6455");
    tokio::time::timeout(LIMIT, shutdown)
        .await
        .expect("shutdown ends")
        .unwrap();
}

#[tokio::test]
async fn chat_across_transports_and_stats() {
    init_tracing();
    let (server, sr, a) = test_server(SocketConfig::default()).await.parts();
    let mut stream = Peer::open(&sr, &a, "/ws/chat", Kind::Stream)
        .await
        .expect("open");
    let mut native = Peer::open(&sr, &a, "/ws/chat", Kind::Native)
        .await
        .expect("open");
    let url = format!("ws://{}/ws/chat", http_authority(&server));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    // The stream socket attaches its upstream with its first message.
    stream.send_text("from stream").await;
    assert_eq!(
        stream.recv_message().await,
        Message::Text("from stream".into())
    );
    // Wait until the room has all three (the rfc6455 socket may still be joining).
    let mut seen_ws = None;
    for _ in 0..50 {
        ws.send(TMsg::text("from rfc6455")).await.expect("send");
        let got = tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("in time")
            .unwrap()
            .unwrap();
        if got == TMsg::text("from rfc6455") {
            seen_ws = Some(got);
            break;
        }
    }
    assert!(seen_ws.is_some());
    // The stream socket sees the RFC 6455 socket's message; and the other way round.
    loop {
        let m = stream.recv_message().await;
        if m == Message::Text("from rfc6455".into()) {
            break;
        }
    }
    loop {
        let m = native.recv_message().await;
        if m == Message::Text("from rfc6455".into()) {
            break;
        }
    }
    stream.send_text("hello everyone").await;
    let want = TMsg::text("hello everyone");
    loop {
        let got = tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("in time")
            .unwrap()
            .unwrap();
        if got == want {
            break;
        }
    }
    loop {
        if native.recv_message().await == Message::Text("hello everyone".into()) {
            break;
        }
    }
    // Stats over HTTP.
    let (st, h, body) = request(
        &sr,
        Method::GET,
        &format!("https://{a}/.h2ws/stats"),
        &[],
        b"",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "application/json");
    let snap: h2ws::StatsSnapshot = serde_json::from_str(&body).expect("json");
    assert_eq!(snap.open["stream"], 1, "{body}");
    assert_eq!(snap.open["native"], 1, "{body}");
    assert_eq!(snap.open["rfc6455"], 1, "{body}");
    assert!(snap.messages_in >= 3 && snap.messages_out >= 6, "{body}");
    assert!(snap.bytes_in >= "from stream".len() as u64, "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn static_files_with_mime_types_and_no_cache() {
    init_tracing();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("h2ws-static-test");
    let (www, pkg) = (dir.join("www"), dir.join("pkg"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(www.join("index.html"), "<!doctype html><title>h2ws</title>").unwrap();
    std::fs::write(pkg.join("h2ws_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(pkg.join("h2ws.js"), "export {}").unwrap();
    let (server, sr, a) = TestServer::start(
        server(SocketConfig::default())
            .fallback(h2ws_devserver::files::www(&www))
            .routes(h2ws_devserver::files::pkg(&pkg)),
    )
    .await
    .parts();
    let (st, h, body) = request(&sr, Method::GET, &format!("https://{a}/"), &[], b"").await;
    assert_eq!(st, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(h["cache-control"], "no-cache");
    assert!(body.contains("h2ws"));
    let (st, h, _) = request(
        &sr,
        Method::GET,
        &format!("https://{a}/pkg/h2ws_bg.wasm"),
        &[],
        b"",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "application/wasm");
    assert_eq!(h["cache-control"], "no-cache");
    let (st, h, _) = request(
        &sr,
        Method::GET,
        &format!("https://{a}/pkg/h2ws.js"),
        &[],
        b"",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().contains("javascript"));
    // Socket routes still win over the file fallback.
    let mut p = Peer::open(&sr, &a, "/ws/echo", Kind::Native)
        .await
        .expect("open");
    p.send_text("x").await;
    assert_eq!(p.recv_message().await, Message::Text("x".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn socket_limit_answers_503() {
    init_tracing();
    let (server, sr, a) = test_server(SocketConfig {
        max_sockets: 2,
        ..SocketConfig::default()
    })
    .await
    .parts();
    let _one = Peer::open(&sr, &a, "/ws/echo", Kind::Native)
        .await
        .expect("first");
    let _two = Peer::open(&sr, &a, "/ws/echo", Kind::Stream)
        .await
        .expect("second");
    for kind in Kind::ALL {
        let r = Peer::open(&sr, &a, "/ws/echo", kind)
            .await
            .err()
            .expect("refused");
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{kind:?}");
        assert!(r.body.contains("too many"), "{}", r.body);
    }
    server.shutdown().await;
}
