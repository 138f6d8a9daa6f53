//! The native client's RFC 6455 transport against a third-party peer: a `tokio-tungstenite`
//! echo server on 127.0.0.1 (plain and TLS with a self-signed certificate).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use h2ws::client::{
    spki_sha256_base64, Client, ClientConfig, CloseCode, Error, Event, FragmentKind, Incoming,
    Message, OpenOptions, Socket, SocketError, Transport, Trust,
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

async fn open(client: &Client, url: &str) -> Socket {
    client
        .connect(url, Transport::Rfc6455, &OpenOptions::default())
        .await
        .expect("open")
}

async fn next(ws: &mut Socket) -> Message {
    ws.recv_timeout(LIMIT)
        .await
        .expect("in time")
        .expect("a message, not the end")
}

/// Text, binary, empty, 1 MiB, several in order.
async fn echo_suite(ws: &mut Socket) {
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
    let mut ws = open(&c, &url).await;
    assert_eq!(ws.transport(), Transport::Rfc6455);
    assert_eq!(ws.handshake().status, 101);
    tokio::time::timeout(LIMIT, echo_suite(&mut ws))
        .await
        .unwrap();
    ws.close(1000, "done").await.unwrap();
    let status = ws.closed().await.unwrap();
    assert_eq!(status.code, 1000);
    assert!(status.clean);
}

#[tokio::test]
async fn client_rfc6455_echo_tls_pinned_certificate() {
    let cert = cert();
    let url = start(Some(&cert)).await;
    let c = client(Trust::certificate_der(cert.der.clone()));
    let mut ws = open(&c, &url).await;
    tokio::time::timeout(LIMIT, echo_suite(&mut ws))
        .await
        .unwrap();
    ws.close(1000, "").await.unwrap();
    assert!(ws.closed().await.unwrap().clean);
}

#[tokio::test]
async fn client_rfc6455_tls_spki_pin_and_refusal() {
    let cert = cert();
    let url = start(Some(&cert)).await;
    let pin = spki_sha256_base64(&cert.der).unwrap();
    let mut ws = open(&client(Trust::spki_sha256_base64(&pin).unwrap()), &url).await;
    ws.send_text("pinned").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::Text("pinned".into()));

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
    let mut ws = open(&client(Trust::Certificates(vec![])), &url).await;
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
    assert_eq!(next(&mut ws).await, Message::Text("abcéd".into()));
    // Server → client in three frames; the client assembles them.
    ws.send_text("frag").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::Text("hello world".into()));
}

#[tokio::test]
async fn client_rfc6455_fragments_api_delivers_frames() {
    let url = start(None).await;
    let c = client(Trust::Certificates(vec![]));
    let opts = OpenOptions {
        fragments: true,
        ..OpenOptions::default()
    };
    let mut ws = c.connect(&url, Transport::Rfc6455, &opts).await.unwrap();
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
    let mut ws = open(&client(Trust::Certificates(vec![])), &url).await;
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
    assert_eq!(next(&mut ws).await, Message::Text("pong:srv".into()));
}

#[tokio::test]
async fn client_rfc6455_close_codes_both_ways() {
    let url = start(None).await;
    let c = client(Trust::Certificates(vec![]));
    // Client closes with 4000: the server echoes the code.
    let ws = open(&c, &url).await;
    ws.close(4000, "client bye").await.unwrap();
    let status = ws.closed().await.unwrap();
    assert_eq!(status.code, 4000);
    assert!(status.clean);
    assert!(matches!(
        ws.send_text("late").await,
        Err(SocketError::Closed)
    ));

    // Server closes with 4001: the client sees code and reason, answers, ends cleanly.
    let mut ws = open(&c, &url).await;
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

/// A peer that completes the RFC 6455 handshake, then never sends anything; it reports every
/// byte the client sends.
async fn silent_peer() -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0);
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .or_else(|| {
                text.lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            })
            .expect("key")
            .trim()
            .to_owned();
        let accept = h2ws_codec::handshake::rfc6455::accept_key(key.as_bytes());
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            std::str::from_utf8(&accept).unwrap()
        );
        tcp.write_all(resp.as_bytes()).await.unwrap();
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = tx.send(buf[..n].to_vec());
                }
            }
        }
    });
    (format!("ws://127.0.0.1:{port}/silent"), rx)
}

#[tokio::test]
async fn client_rfc6455_pings_a_silent_peer_then_drops_it() {
    let (url, mut bytes) = silent_peer().await;
    let mut config = ClientConfig::new(Trust::Certificates(vec![]));
    config.ping_interval = Duration::from_millis(200);
    config.idle_timeout = Duration::from_millis(700);
    let mut ws = Client::new(config)
        .connect(&url, Transport::Rfc6455, &OpenOptions::default())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    match tokio::time::timeout(LIMIT, ws.recv_event()).await.unwrap() {
        Some(Event::Closed { code, clean, .. }) => {
            assert_eq!((code, clean), (CloseCode::ABNORMAL, false));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(650),
        "{:?}",
        started.elapsed()
    );
    // The client pinged after 200 ms of silence: a masked, empty Ping (0x89, MASK|0).
    let first = bytes.recv().await.expect("the client sent something");
    assert_eq!(&first[..2], &[0x89, 0x80], "{first:?}");
    assert_eq!(ws.close_status().unwrap().code, 1006);
}

#[tokio::test]
async fn client_rfc6455_close_times_out_without_the_peers_close() {
    let (url, mut bytes) = silent_peer().await;
    let mut config = ClientConfig::new(Trust::Certificates(vec![]));
    config.close_timeout = Duration::from_millis(400);
    let ws = Client::new(config)
        .connect(&url, Transport::Rfc6455, &OpenOptions::default())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    ws.close(1000, "bye").await.unwrap();
    let status = ws.closed().await.unwrap();
    assert_eq!((status.code, status.clean), (1006, false));
    assert!(started.elapsed() >= Duration::from_millis(350));
    assert!(started.elapsed() < Duration::from_secs(5));
    let first = bytes.recv().await.expect("the client sent its Close");
    assert_eq!(first[0], 0x88, "a Close frame: {first:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rfc6455_slow_reader_backpressures_the_peer() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const COUNT: usize = 1000;
    const SIZE: usize = 64 << 10;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicUsize::new(0));
    let sent2 = sent.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let _ = ws.next().await; // "go"
        for i in 0..COUNT {
            let msg = TMsg::Binary(vec![i as u8; SIZE].into());
            if ws.send(msg).await.is_err() {
                return;
            }
            sent2.fetch_add(1, Ordering::SeqCst);
        }
        let _ = ws.next().await;
    });
    let mut config = ClientConfig::new(Trust::Certificates(vec![]));
    config.recv_queue = 4;
    let mut ws = Client::new(config)
        .connect(
            &format!("ws://127.0.0.1:{port}/flood"),
            Transport::Rfc6455,
            &OpenOptions::default(),
        )
        .await
        .unwrap();
    ws.send_text("go").await.unwrap();
    // Not reading: the peer can only get as far as the socket buffers and the client's small
    // queue allow, far from the 64 MiB it wants to send.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let early = sent.load(Ordering::SeqCst);
    assert!(
        early * SIZE < 24 << 20,
        "{early} messages ({} MiB) went out while the client was not reading",
        (early * SIZE) >> 20
    );
    for i in 0..COUNT {
        match ws.recv_timeout(LIMIT).await.unwrap() {
            Some(Message::Binary(b)) => {
                assert_eq!(b.len(), SIZE);
                assert!(b.iter().all(|&x| x == i as u8), "message {i}");
            }
            other => panic!("message {i}: {other:?}"),
        }
    }
    assert_eq!(sent.load(Ordering::SeqCst), COUNT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rfc6455_clones_share_one_socket_and_the_last_drop_closes_1001() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut texts = Vec::new();
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                TMsg::Text(t) => {
                    texts.push(t.to_string());
                    let _ = ws.send(TMsg::Text(t)).await;
                }
                TMsg::Close(frame) => {
                    let _ = tx.send((texts, frame.map(|f| u16::from(f.code))));
                    break;
                }
                _ => {}
            }
        }
    });
    let ws = client(Trust::Certificates(vec![]))
        .connect(
            &format!("ws://127.0.0.1:{port}/"),
            Transport::Rfc6455,
            &OpenOptions::default(),
        )
        .await
        .unwrap();
    // The receiving half reads in its own task while the sending half sends.
    let (ws, mut receiver) = ws.split();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..20 {
            got.push(receiver.recv_timeout(LIMIT).await.unwrap().unwrap());
        }
        got
    });
    for i in 0..20 {
        ws.send(format!("t{i}")).await.unwrap();
    }
    let got = tokio::time::timeout(LIMIT, reader).await.unwrap().unwrap();
    let want: Vec<Message> = (0..20).map(|i| Message::Text(format!("t{i}"))).collect();
    assert_eq!(got, want);
    // The receiving half is gone with its task; dropping the last sending half closes with 1001.
    drop(ws);
    let (texts, code) = tokio::time::timeout(LIMIT, rx).await.unwrap().unwrap();
    assert_eq!(texts.len(), 20);
    assert_eq!(code, Some(1001));
}
