//! Faults (issue 7 item 4): clients that vanish, a devserver that dies mid-stream, an HTTP/2
//! connection carrying 1000 sockets torn down, a client that stops reading, fetch sessions
//! whose upstream never attaches, 10 000 sockets opened and closed without a leak, and a quick
//! run of the soak command. Real sockets on 127.0.0.1 ephemeral ports; every wait is bounded.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use h2::client::SendRequest;
use h2ws::client::{Client, ClientConfig, OpenOptions, Transport, Trust};
use h2ws::{Socket, SocketConfig, StatsSnapshot};
use h2ws_codec::Message;
use http::Method;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as TMsg;

/// An HTTP/2 client connection whose TCP socket closes with a reset (SO_LINGER 0) when
/// [`vanish`] aborts its connection task: the client disappears without GOAWAY or FIN.
async fn h2_resettable(addr: SocketAddr) -> (SendRequest<Bytes>, JoinHandle<()>) {
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    #[allow(deprecated)] // linger 0 resets at once, nothing blocks
    tcp.set_linger(Some(Duration::ZERO)).expect("SO_LINGER 0");
    let connector = tokio_rustls::TlsConnector::from(tls_client_config(&[b"h2"]));
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("tls");
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(8 << 20)
        .handshake::<_, Bytes>(tls)
        .await
        .expect("h2 handshake");
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let send = send.ready().await.expect("ready");
    for _ in 0..100 {
        if send.is_extended_connect_protocol_enabled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (send, task)
}

/// Drops the connection task (and with it the TCP socket, reset by SO_LINGER 0).
async fn vanish(task: JoinHandle<()>) {
    task.abort();
    let _ = task.await;
}

async fn stats(sr: &SendRequest<Bytes>, authority: &str) -> StatsSnapshot {
    let (status, _, body) = request(
        sr,
        Method::GET,
        &format!("https://{authority}/.h2ws/stats"),
        &[],
        b"",
    )
    .await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    serde_json::from_str(&body).expect("stats json")
}

/// Polls `/.h2ws/stats` until `done` holds; returns the snapshot and the time it took.
async fn wait_stats(
    sr: &SendRequest<Bytes>,
    authority: &str,
    limit: Duration,
    done: impl Fn(&StatsSnapshot) -> bool,
) -> (StatsSnapshot, Duration) {
    let start = Instant::now();
    loop {
        let snap = stats(sr, authority).await;
        if done(&snap) {
            return (snap, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "stats did not settle within {limit:?}: {snap:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn short() -> SocketConfig {
    SocketConfig {
        ping_after: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(1000),
        close_timeout: Duration::from_millis(300),
        ..SocketConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reset_frees_every_socket_within_the_liveness_timeout() {
    init_tracing();
    let config = short();
    let liveness = config.idle_timeout;
    let server = start(config).await;
    let a = tls_authority(&server);
    let observer = h2_tls(server.tls_addr().unwrap()).await;
    let (sr, conn) = h2_resettable(server.tls_addr().unwrap()).await;
    let mut peers = Vec::new();
    for kind in Kind::ALL {
        let mut p = Peer::open(&sr, &a, "/ws/echo", kind).await.expect("open");
        p.send_text("hi").await;
        assert_eq!(p.recv_message().await, Message::Text("hi".into()));
        peers.push(p);
    }
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/echo", http_authority(&server)))
            .await
            .expect("rfc6455 connect");
    ws.send(TMsg::text("hi")).await.expect("send");
    assert_eq!(ws.next().await.unwrap().unwrap(), TMsg::text("hi"));
    if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        #[allow(deprecated)] // linger 0 resets at once, nothing blocks
        tcp.set_linger(Some(Duration::ZERO)).expect("SO_LINGER 0");
    }
    let before = stats(&observer, &a).await;
    assert_eq!(before.open_total, 5, "{before:?}");

    // Vanish: TCP reset, no Close frame, no GOAWAY, no RST_STREAM.
    vanish(conn).await;
    drop(ws);
    std::mem::forget(peers); // their h2 handles must not try to say anything
    let (after, took) = wait_stats(&observer, &a, liveness + Duration::from_secs(2), |s| {
        s.open_total == 0
    })
    .await;
    println!(
        "5 sockets (every transport) freed {took:?} after a TCP reset (liveness {liveness:?})"
    );
    assert!(took <= liveness + Duration::from_millis(500), "{took:?}");
    assert_eq!(after.pending_attaches, 0, "{after:?}");
    server.shutdown().await;
}

/// A TCP forwarder that can go silent: once frozen it drops what it reads and never writes or
/// closes again, like a client whose machine vanished (no FIN, no RST).
async fn blackhole_proxy(target: SocketAddr) -> (SocketAddr, Arc<AtomicBool>, JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let frozen = Arc::new(AtomicBool::new(false));
    let f = frozen.clone();
    let task = tokio::spawn(async move {
        let mut pipes = tokio::task::JoinSet::new();
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            for (mut r, mut w) in [(cr, sw), (sr, cw)] {
                let f = f.clone();
                pipes.spawn(async move {
                    let mut buf = vec![0u8; 16 << 10];
                    loop {
                        let n = match r.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if f.load(Ordering::SeqCst) {
                            // Hold both sockets open and silent until the test ends.
                            std::future::pending::<()>().await;
                        }
                        if w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    drop((r, w));
                });
            }
        }
    });
    (addr, frozen, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_vanished_client_is_freed_by_the_liveness_timeout() {
    init_tracing();
    let config = short();
    let liveness = config.idle_timeout;
    let server = start(config).await;
    let a = tls_authority(&server);
    let observer = h2_tls(server.tls_addr().unwrap()).await;
    let (h2_addr, frozen, h2_proxy) = blackhole_proxy(server.tls_addr().unwrap()).await;
    let (ws_addr, frozen_ws, ws_proxy) = blackhole_proxy(server.http_addr().unwrap()).await;
    let sr = h2_tls(h2_addr).await;
    let mut peers = Vec::new();
    for kind in Kind::ALL {
        let mut p = Peer::open(&sr, &a, "/ws/echo", kind).await.expect("open");
        p.send_text("hi").await;
        assert_eq!(p.recv_message().await, Message::Text("hi".into()));
        peers.push(p);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{ws_addr}/ws/echo"))
        .await
        .expect("rfc6455 connect");
    ws.send(TMsg::text("hi")).await.expect("send");
    assert_eq!(ws.next().await.unwrap().unwrap(), TMsg::text("hi"));
    assert_eq!(stats(&observer, &a).await.open_total, 5);
    // Silence: from now on nothing reaches the server and nothing comes back; no TCP close.
    frozen.store(true, Ordering::SeqCst);
    frozen_ws.store(true, Ordering::SeqCst);
    let (_, took) = wait_stats(&observer, &a, liveness + Duration::from_secs(3), |s| {
        s.open_total == 0
    })
    .await;
    println!("5 silent sockets (every transport) freed after {took:?} (liveness {liveness:?})");
    // Freed by the liveness timer (ping, no answer, drop), not by anything the client did.
    assert!(took >= liveness / 2, "{took:?}");
    assert!(took <= liveness + Duration::from_secs(1), "{took:?}");
    h2_proxy.abort();
    ws_proxy.abort();
    std::mem::forget(peers);
    std::mem::forget(ws);
    server.shutdown().await;
}

/// A devserver child process (`--no-http`, its own ephemeral port unless given).
fn devserver(addr: &str, extra: &[&str]) -> DevServerProcess {
    let dir = cert_dir();
    let mut args = vec![
        "--addr",
        addr,
        "--no-http",
        "--cert-dir",
        dir.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    DevServerProcess::start(&args)
}

const CLIENT_TRANSPORTS: [Transport; 5] = Transport::ALL;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devserver_restart_mid_stream_gives_the_native_client_1006() {
    init_tracing();
    let first = devserver("127.0.0.1:0", &[]);
    let addr = first.https.clone();
    let client = Client::new(ClientConfig::new(
        Trust::spki_sha256_base64(&first.spki).expect("pin"),
    ));
    let url = format!("{}/ws/echo", first.https_url());
    let mut sockets = Vec::new();
    for t in CLIENT_TRANSPORTS {
        let mut ws = client
            .connect(&url, t, &OpenOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{t:?}: {e}"));
        ws.send_text("before").await.expect("send");
        assert_eq!(
            ws.recv_timeout(LIMIT).await.expect("in time"),
            Some(h2ws::client::Message::Text("before".into()))
        );
        sockets.push(ws);
    }
    // The devserver dies mid-stream (SIGKILL: no Close, no GOAWAY).
    let killed = Instant::now();
    drop(first);
    for ws in &mut sockets {
        let t = ws.transport();
        let next = ws.recv_timeout(Duration::from_secs(10)).await;
        assert!(matches!(next, Ok(None)), "{t:?}: {next:?}");
        let status = ws.close_status().expect("a close status");
        assert_eq!((status.code, status.clean), (1006, false), "{t:?}");
        assert!(ws.send_text("after").await.is_err(), "{t:?}: send fails");
    }
    println!("every transport saw 1006 within {:?}", killed.elapsed());
    // Restarted on the same port, the same client connects again.
    let second = devserver(&addr, &[]);
    for t in CLIENT_TRANSPORTS {
        let mut ws = client
            .connect(&url, t, &OpenOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{t:?} after restart: {e}"));
        ws.send_text("after").await.expect("send");
        assert_eq!(
            ws.recv_timeout(LIMIT).await.expect("in time"),
            Some(h2ws::client::Message::Text("after".into()))
        );
        ws.close(1000, "").await.expect("close");
        ws.closed().await.expect("close");
    }
    drop(second);
}

/// Apps that count how their sockets ended.
#[derive(Clone, Default)]
struct Ends {
    total: Arc<AtomicUsize>,
    abnormal: Arc<AtomicUsize>,
}

fn counting_routes(ends: Ends) -> axum::Router {
    axum::Router::new().route(
        "/ws/count",
        h2ws::route(move |mut s: Socket| {
            let ends = ends.clone();
            async move {
                while let Some(m) = s.recv().await {
                    if s.send(m).await.is_err() {
                        break;
                    }
                }
                if s.close_status().map(|c| c.code) == Some(1006) {
                    ends.abnormal.fetch_add(1, Ordering::SeqCst);
                }
                ends.total.fetch_add(1, Ordering::SeqCst);
            }
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tearing_down_an_h2_connection_with_1000_sockets_closes_every_app() {
    init_tracing();
    let ends = Ends::default();
    let server = server(SocketConfig::default())
        .routes(counting_routes(ends.clone()))
        .start()
        .await
        .expect("start");
    let a = tls_authority(&server);
    let observer = h2_tls(server.tls_addr().unwrap()).await;
    let (sr, conn) = h2_resettable(server.tls_addr().unwrap()).await;
    let opened = Instant::now();
    let mut peers = Vec::with_capacity(1000);
    for i in 0..1000 {
        // 1000 streams: the server's SETTINGS_MAX_CONCURRENT_STREAMS.
        let kind = if i % 2 == 0 {
            Kind::Native
        } else {
            Kind::Rfc8441
        };
        peers.push(
            Peer::open(&sr, &a, "/ws/count", kind)
                .await
                .unwrap_or_else(|r| panic!("socket {i}: {r:?}")),
        );
    }
    // Every one of them works.
    for p in peers.iter_mut().step_by(97) {
        p.send_text("alive").await;
        assert_eq!(p.recv_message().await, Message::Text("alive".into()));
    }
    let (_, _) = wait_stats(&observer, &a, LIMIT, |s| s.open_total == 1000).await;
    println!(
        "1000 sockets on one connection opened in {:?}",
        opened.elapsed()
    );
    let torn = Instant::now();
    vanish(conn).await;
    std::mem::forget(peers);
    let deadline = Instant::now() + LIMIT;
    while ends.total.load(Ordering::SeqCst) < 1000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = torn.elapsed();
    assert_eq!(
        ends.total.load(Ordering::SeqCst),
        1000,
        "every app saw its close"
    );
    assert_eq!(ends.abnormal.load(Ordering::SeqCst), 1000, "all with 1006");
    println!("1000 apps saw 1006 within {took:?} of the teardown");
    wait_stats(&observer, &a, LIMIT, |s| s.open_total == 0).await;
    server.shutdown().await;
}

/// `/ws/flood?ID`: sends 64 KiB messages as fast as the socket takes them, counting each
/// completed send under ID; stops after 4096 (256 MiB, never reached when backpressure works).
fn flood_routes(
    sent: Arc<Mutex<std::collections::HashMap<String, Arc<AtomicU64>>>>,
) -> axum::Router {
    axum::Router::new().route(
        "/ws/flood",
        h2ws::route(move |s: Socket| {
            let sent = sent.clone();
            async move {
                let id = s
                    .info()
                    .and_then(|info| info.query())
                    .unwrap_or("")
                    .to_string();
                let counter = sent.lock().unwrap().entry(id).or_default().clone();
                let chunk = Bytes::from(vec![7u8; 64 << 10]);
                for _ in 0..4096 {
                    if s.send(chunk.clone()).await.is_err() {
                        break;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        }),
    )
}

/// Waits until the counter stops moving for `quiet`; returns its value.
async fn plateau(counter: &AtomicU64, quiet: Duration, limit: Duration) -> u64 {
    let start = Instant::now();
    let mut last = counter.load(Ordering::SeqCst);
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = counter.load(Ordering::SeqCst);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet && now > 0 {
            return now;
        }
        assert!(start.elapsed() < limit, "sends never stopped: {now}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_backpressures_the_app_with_bounded_memory() {
    init_tracing();
    let sent = Arc::new(Mutex::new(std::collections::HashMap::new()));
    let (server, sr, a) =
        TestServer::start(server(SocketConfig::default()).routes(flood_routes(sent.clone())))
            .await
            .parts();
    let counter = |id: &str| sent.lock().unwrap().get(id).cloned();
    let mut held = Vec::new();
    for kind in [Kind::Native, Kind::Rfc8441, Kind::Stream] {
        let id = format!("{kind:?}");
        let p = Peer::open(&sr, &a, &format!("/ws/flood?{id}"), kind)
            .await
            .expect("open");
        let mut c = None;
        for _ in 0..100 {
            c = counter(&id);
            if c.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let c = c.expect("app started");
        let n = plateau(&c, Duration::from_secs(1), LIMIT).await;
        let mib = n as f64 * 64.0 / 1024.0;
        println!("{kind:?}: the app's sends block after {n} × 64 KiB = {mib:.1} MiB in flight");
        // Server queues (16 messages + 256 KiB codec + 2 units + h2 send buffer) plus what the
        // client's HTTP/2 windows hold (1 MiB stream window): a few MiB, never the 256 MiB the
        // app would send without backpressure.
        assert!(n * 64 <= 6 * 1024, "{kind:?}: {n} messages in flight");
        held.push(p);
    }
    // RFC 6455: a TCP client that never reads (kernel buffers add a few MiB).
    let (ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws/flood?rfc6455",
        http_authority(&server)
    ))
    .await
    .expect("connect");
    let mut c = None;
    for _ in 0..100 {
        c = counter("rfc6455");
        if c.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let n = plateau(&c.expect("app started"), Duration::from_secs(1), LIMIT).await;
    println!(
        "rfc6455: the app's sends block after {n} × 64 KiB = {:.1} MiB in flight",
        n as f64 / 16.0
    );
    assert!(n * 64 <= 24 * 1024, "rfc6455: {n} messages in flight");
    // Reading again drains it: the sockets were only paused.
    let mut p = held.remove(0);
    for _ in 0..32 {
        assert!(matches!(p.recv_message().await, Message::Binary(b) if b.len() == 64 << 10));
    }
    drop(ws);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unattached_fetch_sessions_are_freed_after_the_attach_timeout() {
    init_tracing();
    let attach = Duration::from_millis(500);
    let (server, sr, a) = test_server(SocketConfig {
        attach_timeout: attach,
        ..SocketConfig::default()
    })
    .await
    .parts();
    let observer = h2_tls(server.tls_addr().unwrap()).await;
    // Post opens never send a batch: no upstream attaches.
    let mut peers = Vec::new();
    for _ in 0..5 {
        peers.push(
            Peer::open(&sr, &a, "/ws/echo", Kind::Post)
                .await
                .expect("open"),
        );
    }
    let snap = stats(&observer, &a).await;
    assert_eq!((snap.open_total, snap.pending_attaches), (5, 5), "{snap:?}");
    let start = Instant::now();
    for p in &mut peers {
        let (code, _, _) = p.closed().await;
        assert_eq!(code, 1011);
    }
    let (snap, _) = wait_stats(&observer, &a, LIMIT, |s| {
        s.open_total == 0 && s.pending_attaches == 0
    })
    .await;
    let took = start.elapsed();
    println!("5 unattached sessions closed with 1011 and freed {took:?} after opening (attach timeout {attach:?})");
    assert!(took < attach + Duration::from_secs(2), "{took:?} {snap:?}");
    server.shutdown().await;
}

/// One socket's whole life: open, one echo, close handshake.
async fn one_socket(sr: &SendRequest<Bytes>, a: &str, kind: Kind, i: usize) {
    let mut p = Peer::open(sr, a, "/ws/echo", kind)
        .await
        .unwrap_or_else(|r| panic!("{kind:?} {i}: {r:?}"));
    let text = format!("socket {i}");
    p.send_text(&text).await;
    assert_eq!(p.recv_message().await, Message::Text(text));
    p.close(1000, "").await;
    let (code, _, _) = p.closed().await;
    assert_eq!(code, 1000, "{kind:?} {i}");
}

/// Opens and closes `n` sockets over all four HTTP/2 transports, `conns` connections with
/// `per_conn` sockets in flight each.
async fn churn(addr: SocketAddr, n: usize, conns: usize, per_conn: usize) {
    let a = addr.to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let sr = h2_tls(addr).await;
        for _ in 0..per_conn {
            let (sr, a, next) = (sr.clone(), a.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    one_socket(&sr, &a, Kind::ALL[i % 4], i).await;
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("churn task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sockets_opened_and_closed_leak_nothing() {
    init_tracing();
    let child = devserver("127.0.0.1:0", &[]);
    let pid = child.child.id();
    let addr: SocketAddr = child.https.parse().expect("addr");
    let a = addr.to_string();
    let observer = h2_tls(addr).await;
    let settle = |n: u64| {
        let (observer, a) = (observer.clone(), a.clone());
        async move {
            let (snap, _) = wait_stats(&observer, &a, LIMIT, |s| {
                s.open_total == 0 && s.opened_total == n
            })
            .await;
            // Let freed task memory go back to the allocator.
            tokio::time::sleep(Duration::from_millis(500)).await;
            snap
        }
    };
    let start = Instant::now();
    let idle = proc_status_kib(pid, "VmRSS:");
    churn(addr, 2_000, 4, 16).await;
    settle(2_000).await;
    let warm = proc_status_kib(pid, "VmRSS:");
    let warm_took = start.elapsed();
    let round = Instant::now();
    churn(addr, 10_000, 4, 16).await;
    let snap = settle(12_000).await;
    let after = proc_status_kib(pid, "VmRSS:");
    println!(
        "devserver RSS: {idle} KiB idle, {warm} KiB after 2 000 sockets ({warm_took:?}), \
         {after} KiB after 10 000 more ({:?}); {snap:?}",
        round.elapsed()
    );
    assert!(
        after * 10 <= warm * 11,
        "RSS grew more than 10%: {warm} KiB → {after} KiB"
    );
    drop(child);
}

#[test]
fn soak_quick_run_across_every_transport() {
    let out = Command::new(env!("CARGO_BIN_EXE_h2ws-soak"))
        .args(["--sockets", "4", "--messages", "100000", "--duration", "8"])
        .output()
        .expect("run h2ws-soak");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "soak failed:\n{stdout}\n{stderr}");
    for t in ["rfc6455", "rfc8441", "native", "stream", "post"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(t))
            .unwrap_or_else(|| panic!("no {t} line:\n{stdout}"));
        assert!(line.contains(" lost 0 "), "{line}");
    }
    assert!(stdout.contains("OK"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_liveness_flags_shorten_the_timers() {
    init_tracing();
    let child = devserver(
        "127.0.0.1:0",
        &["--ping-interval", "0.2", "--idle-timeout", "0.6"],
    );
    let addr: SocketAddr = child.https.parse().expect("addr");
    let sr = h2_tls(addr).await;
    let mut p = Peer::open(&sr, &addr.to_string(), "/ws/echo", Kind::Native)
        .await
        .expect("open");
    // A peer that never answers pings.
    p.conn = h2ws_codec::Connection::new(
        h2ws_codec::Role::Client,
        h2ws_codec::Framing::Native,
        h2ws_codec::Config {
            auto_pong: false,
            ..Default::default()
        },
    );
    let start = Instant::now();
    let mut pinged = None;
    let code = loop {
        match p.next_event().await {
            h2ws_codec::Event::Ping(_) => {
                pinged.get_or_insert(start.elapsed());
            }
            h2ws_codec::Event::Closed { code, .. } => break code.0,
            other => panic!("unexpected {other:?}"),
        }
    };
    let took = start.elapsed();
    println!("pinged after {pinged:?}, dropped with {code} after {took:?}");
    assert_eq!(code, 1006);
    assert!(
        pinged.is_some_and(|t| t < Duration::from_millis(500)),
        "{pinged:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    drop(child);
}

/// Resume at scale (issue 14 point 4): 10 000 resumable `stream` sockets on 50 HTTP/2
/// connections through a TCP relay, all cut at once. Every socket re-attaches (the sockets of
/// one broken connection share one new connection, as a browser's do), answers an echo
/// afterwards, and the devserver's memory stays bounded while they all resume: its RSS is
/// sampled every 10 ms from the cut until the last echo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sockets_resuming_at_once_stay_bounded() {
    const CONNS: usize = 50;
    const PER_CONN: usize = 200;
    const N: usize = CONNS * PER_CONN;
    init_tracing();
    let child = devserver("127.0.0.1:0", &["--max-sockets", "20000"]);
    let pid = child.child.id();
    let addr: SocketAddr = child.https.parse().expect("addr");
    let relay = Relay::start(addr).await;
    let mut config = ClientConfig::new(Trust::spki_sha256_base64(&child.spki).expect("pin"));
    config.recv_queue = 4;
    let client = Client::new(config);
    let url = format!("https://{}/ws/echo", relay.addr);
    let options = OpenOptions {
        resume: true,
        ..OpenOptions::default()
    };
    let opened_at = Instant::now();
    let mut groups = Vec::new();
    for _ in 0..CONNS {
        let (client, url, options) = (client.clone(), url.clone(), options.clone());
        groups.push(tokio::spawn(async move {
            let h2 = client.connect_h2(&url).await.expect("h2 connection");
            let mut sockets = Vec::with_capacity(PER_CONN);
            for _ in 0..PER_CONN {
                let ws = h2
                    .open("/ws/echo", Transport::Stream, &options)
                    .await
                    .expect("socket opens");
                assert!(ws.handshake().resume);
                sockets.push(ws);
            }
            sockets
        }));
    }
    let mut sockets = Vec::with_capacity(N);
    for g in groups {
        sockets.extend(g.await.expect("open task"));
    }
    let opened = opened_at.elapsed();
    let echo_all = |sockets: Vec<h2ws::client::Socket>, tag: &'static str| async move {
        let mut tasks = Vec::new();
        for (i, mut ws) in sockets.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let text = format!("{tag} {i}");
                ws.send_text(&text).await.expect("send");
                let got = ws.recv_timeout(LIMIT).await.expect("echo in time");
                assert_eq!(got, Some(h2ws::Message::Text(text)), "socket {i}");
                ws
            }));
        }
        let mut back = Vec::with_capacity(tasks.len());
        for t in tasks {
            back.push(t.await.expect("echo task"));
        }
        back
    };
    let sockets = echo_all(sockets, "before").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = proc_status_kib(pid, "VmRSS:");
    // Sample the server's RSS from the cut until every socket echoed again.
    let peak = Arc::new(AtomicU64::new(before));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::SeqCst) {
                peak.fetch_max(proc_status_kib(pid, "VmRSS:"), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let cut_at = Instant::now();
    let broken = relay.cut();
    assert_eq!(
        broken, CONNS,
        "every client connection went through the relay"
    );
    let sockets = echo_all(sockets, "after").await;
    let resumed_in = cut_at.elapsed();
    sampling.store(false, Ordering::SeqCst);
    sampler.await.expect("sampler");
    let peak = peak.load(Ordering::SeqCst);
    let observer = h2_tls(addr).await;
    let (snap, _) = wait_stats(&observer, &addr.to_string(), LIMIT, |s| {
        s.resumes >= N as u64
    })
    .await;
    let per_socket = (peak.saturating_sub(before) as f64) / N as f64;
    println!(
        "{N} resumable sockets opened in {opened:?}; all cut at once, all echoing again \
         {resumed_in:?} after the cut; devserver RSS {before} KiB before, peak {peak} KiB while \
         resuming (+{per_socket:.1} KiB per resuming socket); resumes {} refused {}",
        snap.resumes, snap.resumes_refused
    );
    assert_eq!(snap.resumes, N as u64);
    assert_eq!(snap.resumes_refused, 0);
    // Bounded: a resuming socket holds its unacknowledged frames (none here beyond the echo)
    // and a new request pair; what it may not do is buffer without limit.
    assert!(
        per_socket < 8.0,
        "RSS grew {per_socket:.1} KiB per resuming socket ({before} -> {peak} KiB)"
    );
    drop(sockets);
    drop(child);
}

/// `/demo/drop-connection` (the demo's network panel, issue 14): answered 202, then the HTTP/2
/// connection that carried it goes away without GOAWAY — its socket sees the transport end
/// (1006 without resume) — while a socket on another connection carries on.
#[tokio::test]
async fn drop_connection_drops_only_the_connection_that_asked() {
    let ts = test_server(SocketConfig::default()).await;
    let other = h2_tls(ts.server.tls_addr().expect("tls")).await;
    let mut doomed = ts.open("/ws/echo", Kind::Stream).await.expect("open");
    let mut spared = Peer::open(&other, &ts.authority, "/ws/echo", Kind::Stream)
        .await
        .expect("open");
    let uri = format!("https://{}/demo/drop-connection", ts.authority);
    let (status, _, body) = request(&ts.h2, Method::POST, &uri, &[], b"").await;
    assert_eq!(status, http::StatusCode::ACCEPTED, "{body}");
    let (code, _, clean) = doomed.closed().await;
    assert_eq!(
        (code, clean),
        (1006, false),
        "the dropped connection's socket"
    );
    spared.send_text("still here").await;
    assert_eq!(
        spared.recv_message().await,
        Message::Text("still here".into())
    );
    spared.close(1000, "").await;
    assert_eq!(spared.closed().await.0, 1000);
    ts.shutdown().await;
}
