//! `/ws/upstream`: the gateway bridges every transport to an RFC 6455 backend (a
//! tokio-tungstenite echo server), frame by frame, forwarding the subprotocol and close codes.

// tungstenite's handshake callback type has a large error variant; not ours to shrink.
#![allow(clippy::result_large_err, clippy::collapsible_match)]

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use h2ws_codec::Message;
use h2ws_devserver::SocketConfig;
use http::StatusCode;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message as TMsg;

/// A tungstenite backend: echoes messages, picks `chat` if offered, and on the text
/// `close-me` closes with 4100.
async fn backend() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let callback = |req: &Request, mut res: Response| {
                    let offered = req
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if offered.split(',').any(|p| p.trim() == "chat") {
                        res.headers_mut()
                            .insert("sec-websocket-protocol", "chat".parse().unwrap());
                    }
                    Ok(res)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    match msg {
                        TMsg::Text(t) if t.as_str() == "close-me" => {
                            let _ = ws
                                .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                                    code: 4100.into(),
                                    reason: "backend bye".into(),
                                }))
                                .await;
                        }
                        m @ (TMsg::Text(_) | TMsg::Binary(_)) => {
                            if ws.send(m).await.is_err() {
                                return;
                            }
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn gateway_bridges_every_transport_to_an_rfc6455_backend() {
    init_tracing();
    let backend = backend().await;
    let server = server(SocketConfig::default())
        .upstream(format!("ws://{backend}/echo"))
        .start()
        .await
        .expect("start");
    let sr = h2_tls(server.tls_addr().unwrap()).await;
    let a = tls_authority(&server);
    for kind in Kind::ALL {
        let ph = match kind {
            Kind::Stream | Kind::Post => "h2ws-protocol",
            _ => "sec-websocket-protocol",
        };
        let mut p = Peer::open_with(&sr, &a, "/ws/upstream", kind, &[(ph, "other, chat")])
            .await
            .unwrap_or_else(|r| panic!("{kind:?}: {r:?}"));
        assert_eq!(
            p.headers[ph], "chat",
            "{kind:?}: the backend's choice is forwarded"
        );
        p.send_text("through the gateway").await;
        assert_eq!(
            p.recv_message().await,
            Message::Text("through the gateway".into())
        );
        let big = pattern(200_000);
        p.send_binary(&big).await;
        assert_eq!(p.recv_message().await, Message::Binary(big), "{kind:?}");
        // Close from the backend reaches the client with its code.
        p.send_text("close-me").await;
        let (code, reason, _) = p.closed().await;
        assert_eq!((code, reason.as_str()), (4100, "backend bye"), "{kind:?}");
    }
    // Client-initiated close code reaches the backend and comes back as the echo.
    let mut p = Peer::open(&sr, &a, "/ws/upstream", Kind::Native)
        .await
        .expect("open");
    p.close(4200, "client bye").await;
    assert_eq!(p.closed().await.0, 4200);
    // RFC 6455 clients too.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/upstream", http_authority(&server)))
            .await
            .expect("connect");
    ws.send(TMsg::text("classic")).await.unwrap();
    let got = tokio::time::timeout(LIMIT, ws.next())
        .await
        .expect("in time")
        .unwrap()
        .unwrap();
    assert_eq!(got, TMsg::text("classic"));
    server.shutdown().await;
}

#[tokio::test]
async fn gateway_answers_502_when_the_backend_is_down() {
    init_tracing();
    // A port with nothing listening: bind, take the address, close.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let server = server(SocketConfig::default())
        .upstream(format!("ws://{dead}/"))
        .start()
        .await
        .expect("start");
    let sr = h2_tls(server.tls_addr().unwrap()).await;
    let r = Peer::open(&sr, &tls_authority(&server), "/ws/upstream", Kind::Native)
        .await
        .err()
        .expect("refused");
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.body.contains("upstream"), "{}", r.body);
    server.shutdown().await;
}
