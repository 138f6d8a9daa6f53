//! The native client's RFC 6455 transport against a third-party peer: a `tokio-tungstenite`
//! echo server on 127.0.0.1 (plain and TLS with a self-signed certificate).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use h2ws_devserver::client::{
    spki_sha256_base64, Client, ClientConfig, CloseCode, Error, Event, FragmentKind, Incoming,
    Message, OpenOptions, Transport, Trust, WebSocket,
};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode as TCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as TClose;
use tokio_tungstenite::tungstenite::Message as TMsg;

const LIMIT: Duration = Duration::from_secs(20);

/// A test certificate for 127.0.0.1 / localhost.
struct Cert {
    der: Vec<u8>,
    key: Vec<u8>,
}

fn cert() -> Cert {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("rcgen");
    Cert {
        der: ck.cert.der().to_vec(),
        key: ck.key_pair.serialize_der(),
    }
}

fn acceptor(cert: &Cert) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.clone())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Echo server with a few scripted commands (text messages):
/// `frag` → a text message in three frames; `ping-me` → a Ping, then `pong:<payload>` once the
/// client's Pong arrives; `close-me:<code>` → the server closes with that code.
async fn serve<S>(ws: tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut tx, mut rx) = ws.split();
    while let Some(Ok(msg)) = rx.next().await {
        let reply = match msg {
            TMsg::Text(t) if t.as_str() == "frag" => {
                for (part, op, fin) in [
                    ("hel", OpCode::Data(Data::Text), false),
                    ("lo wo", OpCode::Data(Data::Continue), false),
                    ("rld", OpCode::Data(Data::Continue), true),
                ] {
                    if tx
                        .send(TMsg::Frame(Frame::message(
                            part.as_bytes().to_vec(),
                            op,
                            fin,
                        )))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                continue;
            }
            TMsg::Text(t) if t.as_str() == "ping-me" => TMsg::Ping(b"srv".to_vec().into()),
            TMsg::Text(t) if t.as_str().starts_with("close-me:") => {
                let code: u16 = t.as_str()[9..].parse().unwrap();
                TMsg::Close(Some(TClose {
                    code: TCode::from(code),
                    reason: "server bye".into(),
                }))
            }
            TMsg::Pong(p) => TMsg::Text(format!("pong:{}", String::from_utf8_lossy(&p)).into()),
            m @ (TMsg::Text(_) | TMsg::Binary(_)) => m,
            _ => continue,
        };
        if tx.send(reply).await.is_err() {
            return;
        }
    }
}

/// Starts the tungstenite server; `tls` wraps each connection in TLS with `cert`.
async fn start(tls: Option<&Cert>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.map(acceptor);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut config =
                    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
                config.max_message_size = Some(8 << 20);
                match acceptor {
                    Some(a) => {
                        let Ok(tls) = a.accept(tcp).await else { return };
                        if let Ok(ws) =
                            tokio_tungstenite::accept_async_with_config(tls, Some(config)).await
                        {
                            serve(ws).await;
                        }
                    }
                    None => {
                        if let Ok(ws) =
                            tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
                        {
                            serve(ws).await;
                        }
                    }
                }
            });
        }
    });
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    format!("{scheme}://127.0.0.1:{}/echo", addr.port())
}

fn client(trust: Trust) -> Client {
    let mut config = ClientConfig::new(trust);
    config.close_timeout = Duration::from_secs(3);
    Client::new(config)
}

async fn open(client: &Client, url: &str) -> WebSocket {
    client
        .connect(url, Transport::Rfc6455, &OpenOptions::default())
        .await
        .expect("open")
}

async fn next(ws: &WebSocket) -> Message {
    ws.recv_timeout(LIMIT)
        .await
        .expect("in time")
        .expect("a message, not the end")
}

/// Text, binary, empty, 1 MiB, several in order.
async fn echo_suite(ws: &WebSocket) {
    ws.send_text("hello").await.unwrap();
    assert_eq!(next(ws).await, Message::Text("hello".into()));
    ws.send_text("").await.unwrap();
    assert_eq!(next(ws).await, Message::Text(String::new()));
    ws.send_binary(&[0, 1, 2, 255]).await.unwrap();
    assert_eq!(next(ws).await, Message::Binary(vec![0, 1, 2, 255].into()));
    ws.send_binary(&[]).await.unwrap();
    assert_eq!(next(ws).await, Message::Binary(Vec::new().into()));
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
    ws.send_binary(&big).await.unwrap();
    assert_eq!(next(ws).await, Message::Binary(big.into()));
    for i in 0..50 {
        ws.send_text(&format!("m{i}")).await.unwrap();
    }
    for i in 0..50 {
        assert_eq!(next(ws).await, Message::Text(format!("m{i}")));
    }
}

#[tokio::test]
async fn client_rfc6455_echo_plain() {
    let url = start(None).await;
    let c = client(Trust::Certificates(vec![]));
    let ws = open(&c, &url).await;
    assert_eq!(ws.transport(), Transport::Rfc6455);
    assert_eq!(ws.handshake().status, 101);
    tokio::time::timeout(LIMIT, echo_suite(&ws)).await.unwrap();
    let status = ws.close(1000, "done").await.unwrap();
    assert_eq!(status.code, 1000);
    assert!(status.clean);
}

#[tokio::test]
async fn client_rfc6455_echo_tls_pinned_certificate() {
    let cert = cert();
    let url = start(Some(&cert)).await;
    let c = client(Trust::certificate_der(cert.der.clone()));
    let ws = open(&c, &url).await;
    tokio::time::timeout(LIMIT, echo_suite(&ws)).await.unwrap();
    assert!(ws.close(1000, "").await.unwrap().clean);
}

#[tokio::test]
async fn client_rfc6455_tls_spki_pin_and_refusal() {
    let cert = cert();
    let url = start(Some(&cert)).await;
    let pin = spki_sha256_base64(&cert.der).unwrap();
    let ws = open(&client(Trust::spki_sha256_base64(&pin).unwrap()), &url).await;
    ws.send_text("pinned").await.unwrap();
    assert_eq!(next(&ws).await, Message::Text("pinned".into()));

    // Another certificate's pin is refused during the TLS handshake.
    let other = spki_sha256_base64(&self::cert().der).unwrap();
    let err = client(Trust::spki_sha256_base64(&other).unwrap())
        .connect(&url, Transport::Rfc6455, &OpenOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
    // So is a different pinned certificate.
    let err = client(Trust::certificate_der(self::cert().der))
        .connect(&url, Transport::Rfc6455, &OpenOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
}

#[tokio::test]
async fn client_rfc6455_fragmented_both_ways() {
    let url = start(None).await;
    let ws = open(&client(Trust::Certificates(vec![])), &url).await;
    // Client → server in three frames; tungstenite assembles and echoes one message.
    ws.send_fragment(FragmentKind::Text, 0, b"ab", false)
        .await
        .unwrap();
    ws.send_fragment(FragmentKind::Continuation, 0, "cé".as_bytes(), false)
        .await
        .unwrap();
    ws.send_fragment(FragmentKind::Continuation, 0, b"d", true)
        .await
        .unwrap();
    assert_eq!(next(&ws).await, Message::Text("abcéd".into()));
    // Server → client in three frames; the client assembles them.
    ws.send_text("frag").await.unwrap();
    assert_eq!(next(&ws).await, Message::Text("hello world".into()));
}

#[tokio::test]
async fn client_rfc6455_fragments_api_delivers_frames() {
    let url = start(None).await;
    let c = client(Trust::Certificates(vec![]));
    let opts = OpenOptions {
        fragments: true,
        ..OpenOptions::default()
    };
    let ws = c.connect(&url, Transport::Rfc6455, &opts).await.unwrap();
    ws.send_text("frag").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        match tokio::time::timeout(LIMIT, ws.recv_frame()).await.unwrap() {
            Incoming::Fragment {
                kind, data, fin, ..
            } => got.push((kind, String::from_utf8(data.to_vec()).unwrap(), fin)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        got,
        vec![
            (FragmentKind::Text, "hel".into(), false),
            (FragmentKind::Continuation, "lo wo".into(), false),
            (FragmentKind::Continuation, "rld".into(), true),
        ]
    );
}

#[tokio::test]
async fn client_rfc6455_ping_pong_both_ways() {
    let url = start(None).await;
    let ws = open(&client(Trust::Certificates(vec![])), &url).await;
    // Our Ping: tungstenite answers with a Pong carrying the same payload.
    ws.ping(b"hi").unwrap();
    loop {
        match tokio::time::timeout(LIMIT, ws.recv_event()).await.unwrap() {
            Some(Event::Pong(p)) => {
                assert_eq!(p, b"hi");
                break;
            }
            Some(Event::Message(m)) => panic!("unexpected {m:?}"),
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    // The server's Ping: the client answers by itself; the server reports the Pong's payload.
    ws.send_text("ping-me").await.unwrap();
    assert_eq!(next(&ws).await, Message::Text("pong:srv".into()));
}

#[tokio::test]
async fn client_rfc6455_close_codes_both_ways() {
    let url = start(None).await;
    let c = client(Trust::Certificates(vec![]));
    // Client closes with 4000: the server echoes the code.
    let ws = open(&c, &url).await;
    let status = ws.close(4000, "client bye").await.unwrap();
    assert_eq!(status.code, 4000);
    assert!(status.clean);
    assert!(matches!(
        ws.send_text("late").await,
        Err(Error::Closed { .. })
    ));

    // Server closes with 4001: the client sees code and reason, answers, ends cleanly.
    let ws = open(&c, &url).await;
    ws.send_text("close-me:4001").await.unwrap();
    match tokio::time::timeout(LIMIT, ws.recv_event()).await.unwrap() {
        Some(Event::Closed {
            code,
            reason,
            clean,
        }) => {
            assert_eq!(code, CloseCode(4001));
            assert_eq!(reason, "server bye");
            assert!(clean);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(ws.recv_timeout(LIMIT).await.unwrap(), None);
    let status = ws.closed().await.unwrap();
    assert_eq!((status.code, status.clean), (4001, true));
}

#[tokio::test]
async fn client_rfc6455_refused_handshake_reports_status() {
    // A plain HTTP server that refuses with 403 and a one-line reason.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            let body = "origin not allowed\n";
            let resp = format!(
                "HTTP/1.1 403 Forbidden\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = tcp.write_all(resp.as_bytes()).await;
        }
    });
    let err = client(Trust::Certificates(vec![]))
        .connect(
            &format!("ws://127.0.0.1:{port}/x"),
            Transport::Rfc6455,
            &OpenOptions::default(),
        )
        .await
        .unwrap_err();
    match err {
        Error::Refused { status, reason } => {
            assert_eq!(status, 403);
            assert_eq!(reason, "origin not allowed");
        }
        other => panic!("unexpected {other}"),
    }
}
