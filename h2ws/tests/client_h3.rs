//! The native client over HTTP/3 (`Client::connect_h3`): `stream` and `post` sockets echo
//! text, binary and 1 MiB, close both ways, end with 1006 when the server vanishes, refuse a
//! certificate they do not trust and refuse the transports HTTP/3 does not carry.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::LIMIT;
use h2ws::client::{
    Client, ClientConfig, Error, H3Connection, Message, OpenOptions, Socket, Transport, Trust,
};
use h2ws::h3conn::H3Settings;
use h2ws::{RunningServer, SocketConfig};

const FETCH: [Transport; 2] = [Transport::Stream, Transport::Post];

/// A self-signed localhost certificate: (DER, cert PEM, key PEM).
fn cert() -> (Vec<u8>, String, String) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(names).expect("test certificate");
    (cert.der().to_vec(), cert.pem(), key_pair.serialize_pem())
}

/// Close codes the echo route's sockets ended with, as the server saw them.
type Seen = Arc<Mutex<Vec<u16>>>;

/// `/ws/echo` (echoes every message, records its close code) and the shared `/ws/closer`.
fn routes(seen: Seen) -> axum::Router {
    common::test_routes().route(
        "/ws/echo",
        h2ws::route(move |mut s: Socket| {
            let seen = seen.clone();
            async move {
                while let Some(m) = s.recv().await {
                    if s.send(m).await.is_err() {
                        break;
                    }
                }
                if let Some(status) = s.close_status() {
                    seen.lock().expect("not poisoned").push(status.code);
                }
            }
        }),
    )
}

/// A server with HTTP/3 on its TLS port, on `der`'s certificate.
async fn start(pem: &(Vec<u8>, String, String), seen: Seen) -> RunningServer {
    let identity = h2ws::Identity::from_pem(pem.1.as_bytes(), pem.2.as_bytes()).expect("identity");
    common::server_with(identity, SocketConfig::default())
        .http_addr(None)
        .h3_settings(H3Settings::default())
        .routes(routes(seen))
        .start()
        .await
        .expect("server starts")
}

fn client(der: &[u8]) -> Client {
    Client::new(ClientConfig::new(Trust::certificate_der(der.to_vec())))
}

async fn h3(client: &Client, server: &RunningServer) -> H3Connection {
    let url = server.tls_url().expect("TLS listener");
    tokio::time::timeout(LIMIT, client.connect_h3(&url))
        .await
        .expect("connected in time")
        .expect("HTTP/3 connection")
}

async fn next(ws: &mut Socket) -> Message {
    ws.recv_timeout(LIMIT)
        .await
        .expect("in time")
        .expect("a message, not the end")
}

#[tokio::test]
async fn stream_and_post_echo_text_binary_and_1_mib_over_h3() {
    let pem = cert();
    let seen = Seen::default();
    let server = start(&pem, seen.clone()).await;
    let conn = h3(&client(&pem.0), &server).await;
    let big: Vec<u8> = (0..1u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    for t in FETCH {
        let mut ws = conn
            .open("/ws/echo", t, &OpenOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(ws.transport(), t);
        assert!(ws.handshake().session.is_some(), "{t}: a fetch session");
        ws.send_text("hello").await.unwrap();
        assert_eq!(next(&mut ws).await, Message::Text("hello".into()), "{t}");
        ws.send_binary(&[0, 1, 2, 255]).await.unwrap();
        assert_eq!(
            next(&mut ws).await,
            Message::Binary(vec![0, 1, 2, 255].into())
        );
        ws.send_binary(&big).await.unwrap();
        assert_eq!(
            next(&mut ws).await,
            Message::Binary(big.clone().into()),
            "{t}"
        );
        for i in 0..50 {
            ws.send_text(&format!("m{i}")).await.unwrap();
        }
        for i in 0..50 {
            assert_eq!(next(&mut ws).await, Message::Text(format!("m{i}")), "{t}");
        }
        // The server saw HTTP/3.
        let mut info = conn
            .open("/ws/closer", t, &OpenOptions::default())
            .await
            .unwrap();
        info.send_text("info").await.unwrap();
        let Message::Text(line) = next(&mut info).await else {
            panic!("{t}: text expected");
        };
        assert!(line.contains(&format!("transport={t}")), "{line}");
        assert!(line.contains("version=HTTP/3"), "{line}");
        ws.close(1000, "done").await.unwrap();
        while ws.recv_timeout(LIMIT).await.expect("in time").is_some() {}
        let status = ws.closed().await.unwrap();
        assert_eq!((status.code, status.clean), (1000, true), "{t}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn close_codes_both_ways_over_h3() {
    let pem = cert();
    let seen = Seen::default();
    let server = start(&pem, seen.clone()).await;
    let conn = h3(&client(&pem.0), &server).await;
    for t in FETCH {
        // Client first: 4002 reaches the server, the handshake completes cleanly.
        let mut ws = conn
            .open("/ws/echo", t, &OpenOptions::default())
            .await
            .unwrap();
        ws.close(4002, "client bye").await.unwrap();
        while ws.recv_timeout(LIMIT).await.expect("in time").is_some() {}
        let status = ws.closed().await.unwrap();
        assert_eq!((status.code, status.clean), (4002, true), "{t}");
        let deadline = Instant::now() + LIMIT;
        while !seen.lock().unwrap().contains(&4002) {
            assert!(Instant::now() < deadline, "{t}: the server never saw 4002");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen.lock().unwrap().clear();

        // Server first: its 4001 "bye" reaches the client.
        let mut ws = conn
            .open("/ws/closer", t, &OpenOptions::default())
            .await
            .unwrap();
        ws.send_text("close 4001 bye").await.unwrap();
        assert_eq!(ws.recv_timeout(LIMIT).await.expect("in time"), None, "{t}");
        let status = ws.closed().await.unwrap();
        assert_eq!(
            (status.code, status.reason.as_str(), status.clean),
            (4001, "bye", true),
            "{t}"
        );
    }
    server.shutdown().await;
}

/// The server's process dies (its runtime is dropped: no CONNECTION_CLOSE, no Close frame).
/// UDP has no RST: the socket learns it from silence, within the idle timeout.
#[test]
fn a_vanished_server_ends_the_sockets_with_1006_within_the_idle_timeout() {
    let pem = cert();
    let server_rt = tokio::runtime::Runtime::new().expect("server runtime");
    let server = server_rt.block_on(start(&pem, Seen::default()));
    let client_rt = tokio::runtime::Runtime::new().expect("client runtime");
    client_rt.block_on(async {
        let mut config = ClientConfig::new(Trust::certificate_der(pem.0.clone()));
        config.ping_interval = Duration::from_millis(300);
        config.idle_timeout = Duration::from_secs(2);
        let conn = h3(&Client::new(config), &server).await;
        let mut sockets = Vec::new();
        for t in FETCH {
            let mut ws = conn
                .open("/ws/echo", t, &OpenOptions::default())
                .await
                .unwrap();
            ws.send_text("before").await.unwrap();
            assert_eq!(next(&mut ws).await, Message::Text("before".into()));
            sockets.push(ws);
        }
        // Leaked on purpose: its shutdown would say goodbye, and a killed process does not.
        std::mem::forget(server);
        server_rt.shutdown_background();
        let killed = Instant::now();
        for ws in &mut sockets {
            let t = ws.transport();
            let end = ws.recv_timeout(Duration::from_secs(10)).await;
            assert!(matches!(end, Ok(None)), "{t}: {end:?}");
            let status = ws.close_status().expect("a close status");
            assert_eq!((status.code, status.clean), (1006, false), "{t}");
        }
        let took = killed.elapsed();
        assert!(took < Duration::from_secs(5), "{took:?}");
        println!("both sockets saw 1006 within {took:?}");
    });
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_over_h3() {
    let pem = cert();
    let server = start(&pem, Seen::default()).await;
    let url = server.tls_url().unwrap();
    let other = cert();
    let err = client(&other.0).connect_h3(&url).await.unwrap_err();
    assert!(matches!(err, Error::Quic(_)), "{err}");
    let spki = h2ws::client::spki_sha256_base64(&other.0).unwrap();
    let pinned = Client::new(ClientConfig::new(Trust::spki_sha256_base64(&spki).unwrap()));
    let err = pinned.connect_h3(&url).await.unwrap_err();
    assert!(matches!(err, Error::Quic(_)), "{err}");
    // The right SPKI pin is accepted.
    let spki = h2ws::client::spki_sha256_base64(&pem.0).unwrap();
    let pinned = Client::new(ClientConfig::new(Trust::spki_sha256_base64(&spki).unwrap()));
    pinned.connect_h3(&url).await.expect("the pinned key");
    server.shutdown().await;
}

#[tokio::test]
async fn transports_not_served_over_h3_are_refused_before_any_request() {
    let pem = cert();
    let server = start(&pem, Seen::default()).await;
    let c = client(&pem.0);
    let conn = h3(&c, &server).await;
    for t in [Transport::Rfc6455, Transport::Rfc8441, Transport::Native] {
        let err = conn
            .open("/ws/echo", t, &OpenOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::NotOverH3(got) if got == t),
            "{t}: {err}"
        );
    }
    let plain = format!("http://{}", conn.authority());
    let err = c.connect_h3(&plain).await.unwrap_err();
    assert!(matches!(err, Error::InvalidUrl(_)), "{err}");
    // A refusal is typed with its status: no such route.
    let err = conn
        .open("/nowhere", Transport::Stream, &OpenOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.refusal_status(), Some(404), "{err}");
    server.shutdown().await;
}
