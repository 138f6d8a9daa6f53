//! Flow: backpressure both ways (a slow reader stops the other side instead of growing
//! memory), permessage-deflate on every transport, and the `post` transport over HTTP/1.1.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use h2ws::{Message as M, Socket, SocketConfig};
use h2ws_codec::{Config, Connection, Framing, Message, Role};
use http_body_util::BodyExt;

/// `/ws/flood` sends 1 KiB messages as fast as the socket takes them, counting them;
/// `/ws/lazy` reads nothing for 1.5 s, then echoes.
fn routes(sent: Arc<AtomicU64>) -> axum::Router {
    axum::Router::new()
        .route(
            "/ws/flood",
            h2ws::route(move |socket: Socket| {
                let sent = sent.clone();
                async move {
                    let chunk = Bytes::from(vec![7u8; 1024]);
                    while socket.send(M::Binary(chunk.clone())).await.is_ok() {
                        sent.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }),
        )
        .route(
            "/ws/lazy",
            h2ws::route(|mut socket: Socket| async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                while let Some(m) = socket.recv().await {
                    if socket.send(m).await.is_err() {
                        break;
                    }
                }
            }),
        )
}

#[tokio::test]
async fn a_slow_reader_backpressures_the_sending_app() {
    init_tracing();
    let sent = Arc::new(AtomicU64::new(0));
    let (server, sr, a) =
        TestServer::start(server(SocketConfig::default()).routes(routes(sent.clone())))
            .await
            .parts();
    for kind in [Kind::Native, Kind::Rfc8441, Kind::Stream] {
        sent.store(0, Ordering::SeqCst);
        let mut p = Peer::open(&sr, &a, "/ws/flood", kind).await.expect("open");
        // Do not read: the client's stream window (1 MiB) fills, then the server's queues,
        // then the app blocks in send(). Wait until the count holds still for 300 ms.
        let mut stalled = sent.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = sent.load(Ordering::SeqCst);
            if now == stalled && now > 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{kind:?}: the app never blocked ({now} sent)"
            );
            stalled = now;
        }
        // About 1 MiB of window + the socket's bounded queues, not unbounded.
        assert!(
            (500..3000).contains(&stalled),
            "{kind:?}: {stalled} messages accepted while the reader was stalled"
        );
        // Reading resumes the flow.
        for _ in 0..(stalled + 500) {
            assert_eq!(p.recv_message().await, Message::Binary(vec![7u8; 1024]));
        }
        assert!(
            sent.load(Ordering::SeqCst) > stalled + 400,
            "{kind:?}: flow resumed"
        );
        p.close(1000, "").await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn an_app_that_does_not_read_pushes_back_on_the_client() {
    init_tracing();
    let (server, sr, _) = TestServer::start(
        server(SocketConfig::default()).routes(routes(Arc::new(AtomicU64::new(0)))),
    )
    .await
    .parts();
    let mut p = Peer::open(&sr, &tls_authority(&server), "/ws/lazy", Kind::Native)
        .await
        .expect("open");
    let mut frame = vec![0x82];
    frame.extend(vec![1u8; 1024]);
    let frame = Bytes::from(frame);
    let mut accepted = 0;
    while p
        .try_write_native(frame.clone(), Duration::from_millis(300))
        .await
    {
        accepted += 1;
        assert!(
            accepted < 3000,
            "the server kept granting window to an app that reads nothing"
        );
    }
    // The server's stream window is 1 MiB (about 1000 of these); its queues hold a few more.
    assert!(accepted >= 200, "{accepted}");
    // Once the app reads, everything arrives, in order, and the window opens again.
    for _ in 0..accepted {
        assert_eq!(p.recv_message().await, Message::Binary(vec![1u8; 1024]));
    }
    assert!(
        p.try_write_native(frame.clone(), Duration::from_secs(5))
            .await
    );
    server.shutdown().await;
}

#[tokio::test]
async fn permessage_deflate_on_every_transport() {
    init_tracing();
    let (server, sr, a) = test_server(SocketConfig::default()).await.parts();
    let text = "compress me please ".repeat(5000);
    for kind in Kind::ALL {
        let (header, framing) = match kind {
            Kind::Native => ("sec-websocket-extensions", Framing::Native),
            Kind::Rfc8441 => ("sec-websocket-extensions", Framing::Rfc6455),
            Kind::Stream | Kind::Post => ("h2ws-extensions", Framing::Stream),
        };
        let offer = h2ws_codec::deflate::client_offer();
        let mut p = Peer::open_with(&sr, &a, "/ws/echo", kind, &[(header, offer.as_str())])
            .await
            .expect("open");
        let answer = p.headers[header]
            .to_str()
            .expect("extensions answered")
            .to_string();
        let params = h2ws_codec::deflate::accept_response(&answer).expect("valid answer");
        p.conn = Connection::new(
            Role::Client,
            framing,
            Config {
                deflate: Some(params),
                ..Config::default()
            },
        )
        .with_mask_seed([3; 32]);
        p.send_text(&text).await;
        assert_eq!(
            p.recv_message().await,
            Message::Text(text.clone()),
            "{kind:?}"
        );
        if kind == Kind::Native {
            let frames = std::mem::take(&mut p.data_frames);
            assert_eq!(frames.len(), 1, "95 KB compresses into one DATA frame");
            assert_eq!(frames[0][0], 0xC1, "FIN + RSV1 + Text");
        }
        p.close(1000, "").await;
        assert_eq!(p.closed().await.0, 1000);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn post_transport_over_http1() {
    init_tracing();
    let server = start(SocketConfig::default()).await;
    let addr = server.http_addr().unwrap();
    let connect = || async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (send, conn) = hyper::client::conn::http1::handshake::<_, http_body_util::Full<Bytes>>(
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .expect("http1 handshake");
        tokio::spawn(conn);
        send
    };
    let url = format!("http://{addr}/ws/echo");
    // Downstream on one HTTP/1.1 connection.
    let mut down = connect().await;
    let res = down
        .send_request(
            http::Request::post(&url)
                .header("host", addr.to_string())
                .header("h2ws-version", "1")
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .expect("open");
    assert_eq!(res.status(), 200);
    // Offered on HTTP/1.1 too (a chunked body streams; behind a proxy this is what the server
    // sees of an HTTP/2 browser): the client picks.
    assert_eq!(res.headers()["h2ws-transports"], "stream, post");
    let token = res.headers()["h2ws-session"].to_str().unwrap().to_string();
    let mut body = res.into_body();
    // Upstream batches on another.
    let mut up = connect().await;
    let mut conn = Connection::new(Role::Client, Framing::Stream, Config::default());
    for (seq, text) in ["one", "two"].iter().enumerate() {
        conn.send_text(text).unwrap();
        let batch = conn.poll_transmit().unwrap();
        let r = up
            .send_request(
                http::Request::post(&url)
                    .header("host", addr.to_string())
                    .header("h2ws-session", &token)
                    .header("h2ws-seq", seq.to_string())
                    .body(http_body_util::Full::new(Bytes::from(batch)))
                    .unwrap(),
            )
            .await
            .expect("batch");
        assert!(r.status().is_success(), "{}", r.status());
    }
    let mut got = Vec::new();
    while got.len() < 2 {
        let frame = tokio::time::timeout(LIMIT, body.frame())
            .await
            .expect("in time")
            .expect("body open")
            .expect("ok");
        if let Ok(data) = frame.into_data() {
            conn.recv(&data).expect("valid frames");
        }
        while let Some(ev) = conn.poll_event() {
            if let h2ws_codec::Event::Message(m) = ev {
                got.push(m);
            }
        }
    }
    assert_eq!(
        got,
        vec![Message::Text("one".into()), Message::Text("two".into())]
    );
    server.shutdown().await;
}
