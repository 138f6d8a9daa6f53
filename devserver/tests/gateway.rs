//! `/ws/upstream`: the gateway bridges every transport to an RFC 6455 backend (a
//! tokio-tungstenite echo server), frame by frame, forwarding the subprotocol and close codes.

// tungstenite's handshake callback type has a large error variant; not ours to shrink.
#![allow(clippy::result_large_err, clippy::collapsible_match)]

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use h2ws::SocketConfig;
use h2ws_codec::Message;
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
    let (server, sr, a) = TestServer::start(
        server(SocketConfig::default()).routes(upstream(&format!("ws://{backend}/echo"))),
    )
    .await
    .parts();
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
    let (server, sr, _) = TestServer::start(
        server(SocketConfig::default()).routes(upstream(&format!("ws://{dead}/"))),
    )
    .await
    .parts();
    let r = Peer::open(&sr, &tls_authority(&server), "/ws/upstream", Kind::Native)
        .await
        .err()
        .expect("refused");
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.body.contains("upstream"), "{}", r.body);
    server.shutdown().await;
}

// ------------------------------------------------------------------ the native client

use std::time::Duration;

use h2ws::client::{Client, ClientConfig, OpenOptions, Transport, Trust};
use h2ws::RunningServer;
use tokio::sync::mpsc;

/// What the recording backend saw on one connection.
#[derive(Debug, PartialEq)]
enum Seen {
    Close(u16),
    /// The connection ended without a Close frame.
    Lost,
}

/// A tungstenite backend that reports how each connection ended. Texts: `close-me` → Close
/// 4100; `die` → drop the TCP connection without a Close; `big N` → one N-byte binary
/// message (one frame); anything else is echoed.
async fn recording_backend() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                loop {
                    match ws.next().await {
                        Some(Ok(TMsg::Text(t))) if t.as_str() == "close-me" => {
                            let _ = ws
                                .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                                    code: 4100.into(),
                                    reason: "backend bye".into(),
                                }))
                                .await;
                        }
                        Some(Ok(TMsg::Text(t))) if t.as_str() == "die" => return,
                        Some(Ok(TMsg::Text(t))) if t.as_str().starts_with("big ") => {
                            let n: usize = t.as_str()[4..].parse().unwrap();
                            if ws.send(TMsg::binary(vec![7u8; n])).await.is_err() {
                                return;
                            }
                        }
                        Some(Ok(m @ (TMsg::Text(_) | TMsg::Binary(_)))) => {
                            if ws.send(m).await.is_err() {
                                return;
                            }
                        }
                        Some(Ok(TMsg::Close(frame))) => {
                            let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                            let _ = tx.send(Seen::Close(code));
                            // tungstenite answers the Close by itself; drain to the end.
                            while let Some(Ok(_)) = ws.next().await {}
                            return;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            let _ = tx.send(Seen::Lost);
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn client_for(server: &RunningServer) -> Client {
    let mut config =
        ClientConfig::new(Trust::spki_sha256_base64(server.spki_sha256().unwrap()).unwrap());
    config.close_timeout = Duration::from_secs(3);
    Client::new(config)
}

fn url_for(server: &RunningServer, transport: Transport, path: &str) -> String {
    match transport {
        Transport::Rfc6455 => format!("ws://{}{path}", http_authority(server)),
        _ => format!("wss://{}{path}", tls_authority(server)),
    }
}

async fn seen(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("the backend saw the end in time")
        .expect("backend alive")
}

/// Close codes both ways as each end sees them; a backend that vanishes → 1014 at once; a
/// client that vanishes → the backend gets 1001. Every transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_close_codes_both_ways_and_lost_legs() {
    init_tracing();
    let (backend, mut rx) = recording_backend().await;
    let server = server(SocketConfig::default())
        .routes(upstream(&format!("ws://{backend}/")))
        .start()
        .await
        .expect("start");
    let client = client_for(&server);
    for transport in Transport::ALL {
        let url = url_for(&server, transport, "/ws/upstream");
        let options = OpenOptions::default();
        let open = || client.connect(&url, transport, &options);
        // Client closes with 4200: the backend gets 4200, the client its echo.
        let mut ws = open()
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        ws.send_text("hi").await.unwrap();
        assert_eq!(
            ws.recv_timeout(LIMIT).await.unwrap(),
            Some(h2ws::client::Message::Text("hi".into()))
        );
        ws.close(4200, "client bye").await.unwrap();
        let status = ws.closed().await.unwrap();
        assert_eq!(status.code, 4200, "{transport:?}");
        assert_eq!(seen(&mut rx).await, Seen::Close(4200), "{transport:?}");
        // Backend closes with 4100: the client gets 4100 and its reason.
        let mut ws = open().await.unwrap();
        ws.send_text("close-me").await.unwrap();
        assert_eq!(ws.recv_timeout(LIMIT).await.unwrap(), None);
        let status = ws.close_status().unwrap();
        assert_eq!(
            (status.code, status.reason.as_str()),
            (4100, "backend bye"),
            "{transport:?}"
        );
        // ...and the backend its echo.
        assert_eq!(seen(&mut rx).await, Seen::Close(4100), "{transport:?}");
        // The backend drops its TCP connection mid-stream: the client gets 1014 promptly.
        let mut ws = open().await.unwrap();
        let started = std::time::Instant::now();
        ws.send_text("die").await.unwrap();
        assert_eq!(ws.recv_timeout(LIMIT).await.unwrap(), None);
        let status = ws.close_status().unwrap();
        assert_eq!(status.code, 1014, "{transport:?}: {status:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{transport:?}: 1014 after {:?}",
            started.elapsed()
        );
    }
    // A client that vanishes without a Close (TCP gone; HTTP/2 stream reset): the backend
    // gets 1001.
    let (ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/upstream", http_authority(&server)))
            .await
            .expect("connect");
    drop(ws);
    assert_eq!(
        seen(&mut rx).await,
        Seen::Close(1001),
        "rfc6455 client vanished"
    );
    let sr = h2_tls(server.tls_addr().unwrap()).await;
    for kind in [Kind::Native, Kind::Rfc8441, Kind::Stream] {
        let p = Peer::open(&sr, &tls_authority(&server), "/ws/upstream", kind)
            .await
            .expect("open");
        drop(p);
        assert_eq!(
            seen(&mut rx).await,
            Seen::Close(1001),
            "{kind:?} client vanished"
        );
    }
    server.shutdown().await;
}

/// Backend unreachable: every transport's handshake is refused with 502.
#[tokio::test]
async fn gateway_refuses_every_transport_with_502_when_the_backend_is_unreachable() {
    init_tracing();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let server = server(SocketConfig::default())
        .routes(upstream(&format!("ws://{dead}/")))
        .start()
        .await
        .expect("start");
    let client = client_for(&server);
    for transport in Transport::ALL {
        let url = url_for(&server, transport, "/ws/upstream");
        let err = client
            .connect(&url, transport, &OpenOptions::default())
            .await
            .err()
            .unwrap_or_else(|| panic!("{transport:?}: accepted"));
        assert_eq!(err.refusal_status(), Some(502), "{transport:?}: {err}");
    }
    server.shutdown().await;
}

/// permessage-deflate is negotiated end to end with a deflate-capable backend (a devserver's
/// own /ws/echo) and its frames pass the gateway untouched, on every transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_forwards_permessage_deflate_untouched() {
    use h2ws_codec::deflate;
    init_tracing();
    let backend = start(SocketConfig::default()).await;
    let server = server(SocketConfig::default())
        .routes(upstream(&format!(
            "ws://{}/ws/echo",
            http_authority(&backend)
        )))
        .start()
        .await
        .expect("start");
    let client = client_for(&server);
    let text = "hello hello hello hello hello ".repeat(40);
    for transport in Transport::ALL {
        let url = url_for(&server, transport, "/ws/upstream");
        // A terminating client: the backend's answer is what it runs.
        let mut ws = client
            .connect(
                &url,
                transport,
                &OpenOptions {
                    deflate: true,
                    ..OpenOptions::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        let answer = ws
            .handshake()
            .extensions
            .clone()
            .expect("deflate forwarded");
        assert!(answer.starts_with("permessage-deflate"), "{answer}");
        ws.send_text(&text).await.unwrap();
        assert_eq!(
            ws.recv_timeout(LIMIT).await.unwrap(),
            Some(h2ws::client::Message::Text(text.clone())),
            "{transport:?}"
        );
        ws.close(1000, "").await.unwrap();
        ws.closed().await.unwrap();
        // A non-terminating client sees the backend's compressed frames as they were sent.
        let mut ws = client
            .connect(
                &url,
                transport,
                &OpenOptions {
                    fragments: true,
                    allow_rsv1: true,
                    extensions: Some(deflate::client_offer()),
                    ..OpenOptions::default()
                },
            )
            .await
            .unwrap();
        let params =
            deflate::accept_response(ws.handshake().extensions.as_deref().unwrap()).unwrap();
        let echo = compressed_echo(&mut ws, &params, &text, &format!("{transport:?}")).await;
        assert!(
            echo.received.len() < text.len() / 4,
            "{transport:?}: still compressed"
        );
        assert_eq!(echo.inflated, text, "{transport:?}");
        ws.close(1000, "").await.unwrap();
        ws.closed().await.unwrap();
    }
    server.shutdown().await;
    backend.shutdown().await;
}

/// While the backend streams a 32 MiB single-frame message, a Ping from the client is answered
/// long before the message ends: control frames never wait behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_control_frames_overtake_a_large_message() {
    init_tracing();
    let (backend, _rx) = recording_backend().await;
    let server = server(SocketConfig::default())
        .routes(upstream(&format!("ws://{backend}/")))
        .start()
        .await
        .expect("start");
    let client = client_for(&server);
    const BIG: usize = 32 << 20;
    for transport in [
        Transport::Native,
        Transport::Rfc8441,
        Transport::Rfc6455,
        Transport::Stream,
    ] {
        let url = url_for(&server, transport, "/ws/upstream");
        let mut ws = client
            .connect(
                &url,
                transport,
                &OpenOptions {
                    fragments: true,
                    ..OpenOptions::default()
                },
            )
            .await
            .unwrap();
        ws.send_text(&format!("big {BIG}")).await.unwrap();
        let mut received = 0usize;
        let mut pinged = false;
        let mut pong_at = None;
        loop {
            let ev = tokio::time::timeout(LIMIT, ws.recv_event())
                .await
                .expect("event in time")
                .expect("open");
            match ev {
                h2ws_codec::Event::Fragment { data, fin, .. } => {
                    assert!(data.len() <= 64 << 10, "piece of {} bytes", data.len());
                    received += data.len();
                    if !pinged {
                        ws.ping(b"now").unwrap();
                        pinged = true;
                    }
                    if fin {
                        break;
                    }
                }
                h2ws_codec::Event::Pong(p) if p == b"now" => pong_at = Some(received),
                h2ws_codec::Event::Ping(_) | h2ws_codec::Event::Pong(_) => {}
                other => panic!("{transport:?}: {other:?}"),
            }
        }
        assert_eq!(received, BIG);
        let at = pong_at.unwrap_or_else(|| panic!("{transport:?}: no Pong"));
        assert!(
            at < BIG / 2,
            "{transport:?}: the Pong came after {at} of {BIG} bytes"
        );
        eprintln!("{transport:?}: Pong after {at} of {BIG} bytes");
        ws.close(1000, "").await.unwrap();
        ws.closed().await.unwrap();
    }
    server.shutdown().await;
}

/// A `wss://` backend (another devserver's TLS listener) with its certificate pinned; without
/// the pin the backend is not trusted and the open is refused with 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_reaches_a_wss_backend_with_a_pinned_certificate() {
    init_tracing();
    let backend = start(SocketConfig::default()).await;
    let url = format!("wss://{}/ws/echo", tls_authority(&backend));
    let pin = Trust::spki_sha256_base64(backend.spki_sha256().unwrap()).unwrap();
    let server = server(SocketConfig::default())
        .routes(
            h2ws_devserver::apps::gateway::Gateway::new(&url)
                .expect("upstream URL")
                .with_trust(pin)
                .routes(),
        )
        .start()
        .await
        .expect("start");
    let client = client_for(&server);
    for transport in [Transport::Rfc6455, Transport::Native] {
        let mut ws = client
            .connect(
                &url_for(&server, transport, "/ws/upstream"),
                transport,
                &OpenOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        ws.send_text("over tls").await.unwrap();
        assert_eq!(
            ws.recv_timeout(LIMIT).await.unwrap(),
            Some(h2ws::client::Message::Text("over tls".into()))
        );
        ws.close(1000, "").await.unwrap();
        ws.closed().await.unwrap();
    }
    let untrusted = h2ws::Server::new()
        .tls_addr(None)
        .http_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .routes(upstream(&url))
        .start()
        .await
        .expect("start");
    let err = client_for(&server)
        .connect(
            &format!("ws://{}/ws/upstream", http_authority(&untrusted)),
            Transport::Rfc6455,
            &OpenOptions::default(),
        )
        .await
        .expect_err("refused");
    assert_eq!(err.refusal_status(), Some(502), "{err}");
    untrusted.shutdown().await;
    server.shutdown().await;
    backend.shutdown().await;
}
