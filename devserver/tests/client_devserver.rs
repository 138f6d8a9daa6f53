//! The native client against the real devserver (started in-process on 127.0.0.1 ephemeral
//! ports): every transport, over TLS (ALPN h2 / http/1.1, SPKI pin) and plain (h2c, HTTP/1.1).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use h2ws::client::{
    Client, ClientConfig, Error, H2Connection, Incoming, Message, OpenOptions, SocketError,
    Transport, Trust,
};
use h2ws::{RunningServer, Server, Socket};
use h2ws_devserver::cert::CertSource;

const LIMIT: Duration = Duration::from_secs(30);

struct Fixture {
    server: Option<RunningServer>,
    client: Client,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    /// `wss://` / `https://` (tls) or `ws://` / `http://` base of the listener.
    fn base(&self, tls: bool) -> String {
        let server = self.server.as_ref().unwrap();
        if tls {
            server.tls_url().unwrap()
        } else {
            server.http_url().unwrap()
        }
    }

    async fn h2(&self, tls: bool) -> H2Connection {
        let conn = self
            .client
            .connect_h2(&self.base(tls))
            .await
            .expect("HTTP/2 connection");
        assert!(
            conn.supports_extended_connect(),
            "SETTINGS_ENABLE_CONNECT_PROTOCOL"
        );
        conn
    }

    /// Opens `path` with `transport`: RFC 6455 on its own connection, the rest on `h2`.
    async fn open(
        &self,
        h2: &H2Connection,
        tls: bool,
        path: &str,
        transport: Transport,
        options: &OpenOptions,
    ) -> Result<Socket, Error> {
        if transport == Transport::Rfc6455 {
            let base = self.base(tls);
            let url = format!("{}{path}", base.replacen("http", "ws", 1));
            self.client.connect(&url, transport, options).await
        } else {
            h2.open(path, transport, options).await
        }
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            tokio::time::timeout(LIMIT, server.shutdown())
                .await
                .expect("server shutdown in time");
        }
    }
}

/// `/ws/closer`: echoes, except `close:<code>`, on which the server closes with that code.
async fn closer(mut socket: Socket) {
    while let Some(msg) = socket.recv().await {
        match &msg {
            Message::Text(t) if t.starts_with("close:") => {
                let code: u16 = t[6..].parse().unwrap_or(1000);
                let _ = socket.close(code, "server bye").await;
            }
            _ => {
                if socket.send(msg).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// `/ws/whoami`: answers each message with what the server saw: its transport, the HTTP
/// version of the opening request and its `x-test` header.
async fn whoami(mut socket: Socket) {
    while socket.recv().await.is_some() {
        let info = socket
            .info()
            .expect("a server socket has its opening request");
        let reply = format!(
            "{} {:?} {}",
            socket.transport(),
            info.version,
            info.header("x-test").unwrap_or("-")
        );
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

async fn start() -> Fixture {
    start_with(h2ws::SocketConfig::default()).await
}

async fn start_with(socket_config: h2ws::SocketConfig) -> Fixture {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "h2ws-client-devserver-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let routes = axum::Router::new()
        .route("/ws/closer", h2ws::route(closer))
        .route("/ws/whoami", h2ws::route(whoami));
    let server = Server::new()
        .tls_addr("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .http_addr("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .tls_identity(
            CertSource::Generated { dir: dir.clone() }
                .load()
                .expect("certificate"),
        )
        .routes(h2ws_devserver::apps::routes())
        .routes(routes)
        .socket_config(socket_config)
        .start()
        .await
        .expect("devserver starts");
    let pin = server
        .spki_sha256()
        .expect("TLS listener has a certificate");
    let mut config = ClientConfig::new(Trust::spki_sha256_base64(pin).unwrap());
    config.close_timeout = Duration::from_secs(3);
    Fixture {
        server: Some(server),
        client: Client::new(config),
        dir,
    }
}

async fn next(ws: &mut Socket) -> Message {
    match ws.recv_timeout(LIMIT).await {
        Ok(Some(m)) => m,
        Ok(None) => panic!(
            "{:?}: closed early: {:?}",
            ws.transport(),
            ws.close_status()
        ),
        Err(e) => panic!("{:?}: {e}", ws.transport()),
    }
}

/// Echo of text, binary, empty, 1 MiB, a fragmented message and many in order; then a clean
/// close with 1000.
async fn echo_suite(ws: &mut Socket) {
    let t = ws.transport();
    ws.send("hello").await.unwrap();
    assert_eq!(next(ws).await, Message::Text("hello".into()), "{t:?}");
    ws.send_binary(&[0, 1, 2, 255]).await.unwrap();
    assert_eq!(
        next(ws).await,
        Message::Binary(vec![0, 1, 2, 255].into()),
        "{t:?}"
    );
    ws.send_text("").await.unwrap();
    assert_eq!(next(ws).await, Message::Text(String::new()), "{t:?}");
    ws.send_binary(&[]).await.unwrap();
    assert_eq!(next(ws).await, Message::Binary(Vec::new().into()), "{t:?}");
    let big: Vec<u8> = (0..1u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    ws.send_binary(&big).await.unwrap();
    assert_eq!(next(ws).await, Message::Binary(big.into()), "{t:?}");
    let big_text: String = "h2ws ☃ ".repeat((1 << 20) / 9);
    ws.send_text(&big_text).await.unwrap();
    assert_eq!(next(ws).await, Message::Text(big_text), "{t:?}");
    use h2ws::client::FragmentKind;
    ws.send_fragment(FragmentKind::Text, 0, "frag".as_bytes(), false)
        .await
        .unwrap();
    ws.send_fragment(FragmentKind::Continuation, 0, "ment".as_bytes(), false)
        .await
        .unwrap();
    ws.send_fragment(FragmentKind::Continuation, 0, "ed ✓".as_bytes(), true)
        .await
        .unwrap();
    assert_eq!(
        next(ws).await,
        Message::Text("fragmented ✓".into()),
        "{t:?}"
    );
    for i in 0..100 {
        ws.send(format!("m{i}")).await.unwrap();
    }
    for i in 0..100 {
        assert_eq!(next(ws).await, Message::Text(format!("m{i}")), "{t:?}");
    }
    ws.close(1000, "done").await.unwrap();
    let status = ws.closed().await.unwrap();
    assert_eq!((status.code, status.clean), (1000, true), "{t:?}");
}

async fn echo_every_transport(tls: bool) {
    let f = start().await;
    let h2 = f.h2(tls).await;
    for transport in Transport::ALL {
        let mut ws = f
            .open(&h2, tls, "/ws/echo", transport, &OpenOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        assert_eq!(ws.transport(), transport);
        tokio::time::timeout(LIMIT, echo_suite(&mut ws))
            .await
            .unwrap_or_else(|_| panic!("{transport:?}: echo suite timed out"));
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_echo_every_transport_tls() {
    echo_every_transport(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_echo_every_transport_plain_h2c_and_http11() {
    echo_every_transport(false).await;
}

/// The server sees each client transport as itself, on the expected HTTP version, with the
/// client's extra headers.
async fn server_sees_transport(tls: bool) {
    let f = start().await;
    let h2 = f.h2(tls).await;
    let options = OpenOptions {
        headers: vec![("x-test".into(), "token-123".into())],
        ..OpenOptions::default()
    };
    for transport in Transport::ALL {
        let mut ws = f
            .open(&h2, tls, "/ws/whoami", transport, &options)
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        ws.send("who").await.unwrap();
        let version = if transport == Transport::Rfc6455 {
            "HTTP/1.1"
        } else {
            "HTTP/2.0"
        };
        assert_eq!(
            next(&mut ws).await,
            Message::Text(format!("{transport} {version} token-123")),
            "{transport:?}"
        );
        ws.close(1000, "").await.unwrap();
        ws.closed().await.unwrap();
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_server_sees_each_transport_tls() {
    server_sees_transport(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_server_sees_each_transport_plain() {
    server_sees_transport(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_100_sockets_on_one_h2_connection() {
    let f = start().await;
    let h2 = f.h2(true).await;
    let transports = [
        Transport::Rfc8441,
        Transport::Native,
        Transport::Stream,
        Transport::Post,
    ];
    let mut sockets = Vec::new();
    for i in 0..100 {
        let t = transports[i % transports.len()];
        let ws = h2
            .open("/ws/echo", t, &OpenOptions::default())
            .await
            .unwrap_or_else(|e| panic!("socket {i} ({t:?}): {e}"));
        sockets.push(ws);
    }
    // All at once: each socket sends its own messages and must get exactly them back.
    let work = sockets.iter_mut().enumerate().map(|(i, ws)| async move {
        for j in 0..5 {
            ws.send(format!("socket {i} message {j}")).await.unwrap();
        }
        ws.send_binary(&vec![i as u8; 100_000]).await.unwrap();
        for j in 0..5 {
            assert_eq!(
                next(ws).await,
                Message::Text(format!("socket {i} message {j}"))
            );
        }
        assert_eq!(
            next(ws).await,
            Message::Binary(vec![i as u8; 100_000].into())
        );
    });
    tokio::time::timeout(LIMIT, futures_util::future::join_all(work))
        .await
        .expect("100 sockets echo in time");
    let closes = sockets.iter().map(|ws| async move {
        ws.close(1000, "").await?;
        ws.closed().await
    });
    let statuses = tokio::time::timeout(LIMIT, futures_util::future::join_all(closes))
        .await
        .expect("100 closes in time");
    for (i, s) in statuses.into_iter().enumerate() {
        let s = s.unwrap_or_else(|e| panic!("socket {i}: {e}"));
        assert_eq!((s.code, s.clean), (1000, true), "socket {i}");
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_close_codes_both_ways() {
    let f = start().await;
    let h2 = f.h2(true).await;
    for transport in Transport::ALL {
        // Client closes with 4000: the echo app's codec echoes the code.
        let ws = f
            .open(&h2, true, "/ws/echo", transport, &OpenOptions::default())
            .await
            .unwrap();
        ws.close(4000, "client bye").await.unwrap();
        let status = ws.closed().await.unwrap();
        assert_eq!((status.code, status.clean), (4000, true), "{transport:?}");
        assert!(
            matches!(ws.send("late").await, Err(SocketError::Closed)),
            "{transport:?}"
        );

        // Server closes with 4002 and a reason: the client sees both, answers, ends cleanly.
        let mut ws = f
            .open(&h2, true, "/ws/closer", transport, &OpenOptions::default())
            .await
            .unwrap();
        ws.send("close:4002").await.unwrap();
        match tokio::time::timeout(LIMIT, ws.recv_frame()).await.unwrap() {
            Incoming::Closed(s) => {
                assert_eq!(
                    (s.code, s.reason.as_str(), s.clean),
                    (4002, "server bye", true),
                    "{transport:?}"
                );
            }
            other => panic!("{transport:?}: unexpected {other:?}"),
        }
        assert_eq!(ws.recv_timeout(LIMIT).await.unwrap(), None);
        let status = ws.closed().await.unwrap();
        assert_eq!((status.code, status.clean), (4002, true), "{transport:?}");
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_refusals_carry_status() {
    let f = start().await;
    let h2 = f.h2(true).await;
    for transport in Transport::ALL {
        // A foreign Origin is refused with 403.
        let options = OpenOptions {
            origin: Some("https://evil.example".into()),
            ..OpenOptions::default()
        };
        let err = f
            .open(&h2, true, "/ws/echo", transport, &options)
            .await
            .expect_err("foreign origin");
        assert_eq!(err.refusal_status(), Some(403), "{transport:?}: {err}");
        // No socket endpoint at this path → 404.
        let err = f
            .open(
                &h2,
                true,
                "/ws/nothing-here",
                transport,
                &OpenOptions::default(),
            )
            .await
            .expect_err("no endpoint");
        assert_eq!(err.refusal_status(), Some(404), "{transport:?}: {err}");
    }
    // The connection still works after the refusals.
    let mut ws = h2
        .open("/ws/echo", Transport::Native, &OpenOptions::default())
        .await
        .unwrap();
    ws.send("still here").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::Text("still here".into()));
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_wrong_pin_is_refused() {
    let f = start().await;
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let pin = h2ws::client::spki_sha256_base64(other.cert.der()).unwrap();
    let client = Client::new(ClientConfig::new(Trust::spki_sha256_base64(&pin).unwrap()));
    let err = client.connect_h2(&f.base(true)).await.unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_permessage_deflate_every_transport() {
    let f = start().await;
    let h2 = f.h2(true).await;
    let options = OpenOptions {
        deflate: true,
        ..OpenOptions::default()
    };
    for transport in Transport::ALL {
        let mut ws = f
            .open(&h2, true, "/ws/echo", transport, &options)
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        let ext = ws.handshake().extensions.clone().unwrap_or_default();
        assert!(
            ext.starts_with("permessage-deflate"),
            "{transport:?}: {ext:?}"
        );
        tokio::time::timeout(LIMIT, echo_suite(&mut ws))
            .await
            .unwrap_or_else(|_| panic!("{transport:?}: echo suite timed out"));
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_answers_server_pings_and_stays_open() {
    let config = h2ws::SocketConfig {
        ping_after: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(500),
        ..h2ws::SocketConfig::default()
    };
    let f = start_with(config).await;
    let h2 = f.h2(true).await;
    for transport in Transport::ALL {
        let mut ws = f
            .open(&h2, true, "/ws/echo", transport, &OpenOptions::default())
            .await
            .unwrap();
        // Silent for well past the server's idle timeout: its pings are answered, so it keeps
        // the socket.
        let mut pings = 0;
        let quiet = tokio::time::sleep(Duration::from_millis(1500));
        tokio::pin!(quiet);
        loop {
            tokio::select! {
                _ = &mut quiet => break,
                ev = ws.recv_event() => match ev {
                    Some(h2ws::client::Event::Ping(_)) => pings += 1,
                    other => panic!("{transport:?}: unexpected {other:?}"),
                },
            }
        }
        assert!(pings >= 2, "{transport:?}: {pings} pings");
        ws.send("still open").await.unwrap();
        assert_eq!(
            next(&mut ws).await,
            Message::Text("still open".into()),
            "{transport:?}"
        );
        ws.close(1000, "").await.unwrap();
        ws.closed().await.unwrap();
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_quiet_fetch_sockets_attach_at_once() {
    let config = h2ws::SocketConfig {
        attach_timeout: Duration::from_millis(300),
        ..h2ws::SocketConfig::default()
    };
    let f = start_with(config).await;
    let h2 = f.h2(true).await;
    for transport in [Transport::Stream, Transport::Post] {
        let mut ws = h2
            .open("/ws/echo", transport, &OpenOptions::default())
            .await
            .unwrap();
        // Nothing to send for longer than the attach timeout: the upstream is attached anyway.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(ws.close_status(), None, "{transport:?}");
        ws.send("late but fine").await.unwrap();
        assert_eq!(
            next(&mut ws).await,
            Message::Text("late but fine".into()),
            "{transport:?}"
        );
        ws.close(1000, "").await.unwrap();
        ws.closed().await.unwrap();
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_post_over_http11() {
    let f = start().await;
    for tls in [true, false] {
        let base = f.base(tls);
        let mut ws = f
            .client
            .connect_post_http1(&format!("{base}/ws/echo"), &OpenOptions::default())
            .await
            .unwrap_or_else(|e| panic!("tls {tls}: {e}"));
        assert_eq!(ws.transport(), Transport::Post);
        tokio::time::timeout(LIMIT, echo_suite(&mut ws))
            .await
            .unwrap_or_else(|_| panic!("tls {tls}: echo suite timed out"));

        let options = OpenOptions {
            headers: vec![("x-test".into(), "h1".into())],
            ..OpenOptions::default()
        };
        let mut ws = f
            .client
            .connect_post_http1(&format!("{base}/ws/whoami"), &options)
            .await
            .unwrap();
        ws.send("who").await.unwrap();
        assert_eq!(
            next(&mut ws).await,
            Message::Text("post HTTP/1.1 h1".into())
        );
        ws.close(1000, "").await.unwrap();
        ws.closed().await.unwrap();

        // Server-side close code over HTTP/1.1 too.
        let mut ws = f
            .client
            .connect_post_http1(&format!("{base}/ws/closer"), &OpenOptions::default())
            .await
            .unwrap();
        ws.send("close:4005").await.unwrap();
        assert_eq!(ws.recv_timeout(LIMIT).await.unwrap(), None);
        let status = ws.close_status().unwrap();
        assert_eq!((status.code, status.clean), (4005, true));
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_chat_across_every_transport() {
    let f = start().await;
    let h2 = f.h2(true).await;
    let mut sockets = Vec::new();
    for transport in Transport::ALL {
        let mut ws = f
            .open(&h2, true, "/ws/chat", transport, &OpenOptions::default())
            .await
            .unwrap();
        // The sender gets its own messages too: seeing its hello proves it joined the room.
        let hello = format!("hello from {transport}");
        ws.send(hello.clone()).await.unwrap();
        loop {
            if next(&mut ws).await == Message::Text(hello.clone()) {
                break;
            }
        }
        sockets.push(ws);
    }
    for ws in &sockets {
        ws.send(format!("from {}", ws.transport())).await.unwrap();
    }
    let mut want: Vec<String> = Transport::ALL.iter().map(|t| format!("from {t}")).collect();
    want.sort();
    for ws in &mut sockets {
        let mut got = Vec::new();
        while got.len() < want.len() {
            match next(ws).await {
                Message::Text(t) if t.starts_with("from ") => got.push(t),
                Message::Text(t) if t.starts_with("hello from ") => {}
                other => panic!("{:?}: unexpected {other:?}", ws.transport()),
            }
        }
        got.sort();
        assert_eq!(got, want, "{:?}", ws.transport());
    }
    for ws in &sockets {
        ws.close(1000, "").await.unwrap();
        ws.closed().await.unwrap();
    }
    f.stop().await;
}

/// The gateway's shape (DESIGN §5): frames forwarded one by one, an extension negotiated end
/// to end but not terminated here, RSV1 frames passed through untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_devserver_fragments_with_untouched_permessage_deflate() {
    use h2ws_codec::deflate;
    let f = start().await;
    let h2 = f.h2(true).await;
    let options = OpenOptions {
        fragments: true,
        allow_rsv1: true,
        extensions: Some("permessage-deflate".into()),
        ..OpenOptions::default()
    };
    for transport in Transport::ALL {
        let mut ws = f
            .open(&h2, true, "/ws/echo", transport, &options)
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        let answer = ws.handshake().extensions.clone().expect("deflate accepted");
        let params = deflate::accept_response(&answer).unwrap();
        // What the gateway's own client would have compressed: sent as one RSV1 frame.
        let text = "hello hello hello hello hello ".repeat(20);
        // The echo comes back compressed by the server, still RSV1, handed over untouched.
        let echo =
            common::compressed_echo(&mut ws, &params, &text, &format!("{transport:?}")).await;
        assert!(echo.sent.len() < text.len() / 4);
        assert_eq!(echo.inflated, text, "{transport:?}");
        ws.close(1000, "").await.unwrap();
        ws.closed().await.unwrap();
    }
    f.stop().await;
}
