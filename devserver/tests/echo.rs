//! Every transport × echo: text, binary, empty, 1 MiB, fragmented, many in order.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use h2ws::SocketConfig;
use h2ws_codec::{FragmentKind, Message};
use tokio_tungstenite::tungstenite::Message as TMsg;

async fn echo_suite(peer: &mut Peer) {
    let kind = peer.kind;
    peer.send_text("hello h2ws ✓").await;
    assert_eq!(
        peer.recv_message().await,
        Message::Text("hello h2ws ✓".into()),
        "{kind:?} text"
    );
    peer.send_binary(&[0, 1, 2, 255]).await;
    assert_eq!(
        peer.recv_message().await,
        Message::Binary(vec![0, 1, 2, 255]),
        "{kind:?} binary"
    );
    peer.send_text("").await;
    assert_eq!(
        peer.recv_message().await,
        Message::Text(String::new()),
        "{kind:?} empty text"
    );
    peer.send_binary(&[]).await;
    assert_eq!(
        peer.recv_message().await,
        Message::Binary(vec![]),
        "{kind:?} empty binary"
    );

    let big = pattern(1 << 20);
    peer.send_binary(&big).await;
    match peer.recv_message().await {
        Message::Binary(b) => assert!(b == big, "{kind:?} 1 MiB echoed unchanged"),
        other => panic!("{kind:?} 1 MiB: {other:?}"),
    }

    // A text message in three fragments (split inside a multi-byte character).
    let text = "fragmented: ünïcödé ✓✓✓";
    let bytes = text.as_bytes();
    peer.conn
        .send_fragment(FragmentKind::Text, 0, &bytes[..13], false)
        .expect("first fragment");
    peer.conn
        .send_fragment(FragmentKind::Continuation, 0, &bytes[13..20], false)
        .expect("middle fragment");
    peer.conn
        .send_fragment(FragmentKind::Continuation, 0, &bytes[20..], true)
        .expect("last fragment");
    peer.flush().await;
    assert_eq!(
        peer.recv_message().await,
        Message::Text(text.into()),
        "{kind:?} fragmented"
    );

    for i in 0..200 {
        peer.conn.send_text(&format!("msg {i}")).expect("queue");
    }
    peer.flush().await;
    for i in 0..200 {
        assert_eq!(
            peer.recv_message().await,
            Message::Text(format!("msg {i}")),
            "{kind:?} in order"
        );
    }

    peer.close(4000, "bye").await;
    let (code, _reason, clean) = peer.closed().await;
    assert_eq!((code, clean), (4000, true), "{kind:?} close code echoed");
    peer.end_upstream();
    peer.wait_down_end().await;
    assert_eq!(peer.reset, None, "{kind:?} stream ends cleanly");
    assert!(
        peer.post_statuses.iter().all(|s| s.is_success()),
        "{kind:?} every batch accepted: {:?}",
        peer.post_statuses
    );
}

#[tokio::test]
async fn echo_over_every_http2_transport_tls() {
    init_tracing();
    let (server, sr, authority) = test_server(SocketConfig::default()).await.parts();
    for kind in Kind::ALL {
        let mut peer = Peer::open(&sr, &authority, "/ws/echo", kind)
            .await
            .unwrap_or_else(|r| panic!("{kind:?} refused: {r:?}"));
        echo_suite(&mut peer).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn echo_over_every_http2_transport_h2c() {
    init_tracing();
    let server = start(SocketConfig::default()).await;
    let sr = h2c(server.http_addr().unwrap()).await;
    let authority = http_authority(&server);
    for kind in Kind::ALL {
        let mut peer = Peer::open(&sr, &authority, "/ws/echo", kind)
            .await
            .unwrap_or_else(|r| panic!("{kind:?} refused: {r:?}"));
        echo_suite(&mut peer).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn fetch_open_response_headers() {
    let (server, sr, _) = test_server(SocketConfig::default()).await.parts();
    let peer = Peer::open_with(
        &sr,
        &tls_authority(&server),
        "/ws/echo",
        Kind::Stream,
        &[("h2ws-protocol", "nope")],
    )
    .await
    .expect("open");
    let h = &peer.headers;
    assert_eq!(h["content-type"], "application/h2ws");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["h2ws-transports"], "stream, post");
    let token = h["h2ws-session"].to_str().unwrap();
    assert!(token.len() >= 22, "token carries >= 128 bits: {token}");
    // /ws/echo selects the first offered subprotocol (README: wire details).
    assert_eq!(h["h2ws-protocol"], "nope");
    server.shutdown().await;
}

async fn tungstenite_suite<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let big = pattern(1 << 20);
    let msgs = vec![
        TMsg::text("hello ✓"),
        TMsg::binary(vec![1u8, 2, 3]),
        TMsg::text(""),
        TMsg::binary(Vec::<u8>::new()),
        TMsg::binary(big),
    ];
    for m in &msgs {
        ws.send(m.clone()).await.expect("send");
        let got = tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("echo in time")
            .expect("a message")
            .expect("ok");
        assert!(got == *m, "echoed unchanged ({} bytes)", m.len());
    }
    // A fragmented text message (split inside a multi-byte character).
    {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        let text = "fragmented ✓✓✓ message";
        let b = text.as_bytes();
        let parts = [
            (OpCode::Data(Data::Text), &b[..12], false),
            (OpCode::Data(Data::Continue), &b[12..16], false),
            (OpCode::Data(Data::Continue), &b[16..], true),
        ];
        for (op, chunk, fin) in parts {
            ws.feed(TMsg::Frame(Frame::message(chunk.to_vec(), op, fin)))
                .await
                .expect("fragment");
        }
        ws.flush().await.expect("flush");
        let got = ws.next().await.expect("msg").expect("ok");
        assert_eq!(
            got,
            TMsg::text(text),
            "fragmented message reassembled and echoed"
        );
    }
    for i in 0..200 {
        ws.feed(TMsg::text(format!("n{i}"))).await.expect("feed");
    }
    ws.flush().await.expect("flush");
    for i in 0..200 {
        let got = ws.next().await.expect("msg").expect("ok");
        assert_eq!(got, TMsg::text(format!("n{i}")));
    }
    ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: 4001.into(),
        reason: "done".into(),
    }))
    .await
    .expect("close");
    let mut echoed = None;
    while let Some(Ok(m)) = ws.next().await {
        if let TMsg::Close(c) = m {
            echoed = c;
        }
    }
    let echoed = echoed.expect("server echoed the close");
    assert_eq!(u16::from(echoed.code), 4001, "close code echoed");
}

#[tokio::test]
async fn echo_rfc6455_tungstenite_plain() {
    init_tracing();
    let server = start(SocketConfig::default()).await;
    let url = format!("ws://{}/ws/echo", http_authority(&server));
    let (mut ws, resp) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    assert_eq!(resp.status(), 101);
    tungstenite_suite(&mut ws).await;
    server.shutdown().await;
}

#[tokio::test]
async fn echo_rfc6455_tungstenite_tls_http1() {
    init_tracing();
    let server = start(SocketConfig::default()).await;
    let tls = tls_connect(server.tls_addr().unwrap(), &[b"http/1.1"]).await;
    let url = format!("wss://{}/ws/echo", tls_authority(&server));
    let (mut ws, resp) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("handshake");
    assert_eq!(resp.status(), 101);
    tungstenite_suite(&mut ws).await;
    server.shutdown().await;
}

#[tokio::test]
async fn rfc6455_server_initiated_close_code() {
    init_tracing();
    let server = server(SocketConfig::default())
        .routes(test_routes())
        .start()
        .await
        .expect("start");
    let url = format!("ws://{}/ws/closer", http_authority(&server));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    ws.send(TMsg::text("close 4002 server bye"))
        .await
        .expect("send");
    let mut close = None;
    while let Some(Ok(m)) = ws.next().await {
        if let TMsg::Close(c) = m {
            close = c;
        }
    }
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 4002);
    assert_eq!(close.reason.as_str(), "server bye");
    server.shutdown().await;
}
