//! Security (issue 7 item 6): session tokens, the Origin allowlist, limits (message, pending
//! attaches, HTTP/1.1 and HTTP/2 headers), and a raw HTTP/2 peer attacking a devserver child
//! process with malformed frames, oversized headers, stream floods, rapid resets (CVE-2023-44487
//! style), SETTINGS, PING and CONTINUATION floods. During and after every attack a second,
//! well-behaved client keeps getting its echoes, the process stays alive and its memory bounded.
//! Every attack is bounded in frames and time; only 127.0.0.1 is ever a target.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use h2ws::SocketConfig;
use h2ws_codec::{Event, Message};
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------- tokens, origins, limits

#[tokio::test]
async fn session_tokens_are_random_single_use_and_end_with_the_session() {
    init_tracing();
    let (server, sr, a) = test_server(SocketConfig::default()).await.parts();
    let url = format!("https://{a}/ws/echo");
    // 256 bits from the OS RNG each, never repeated.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let p = Peer::open(&sr, &a, "/ws/echo", Kind::Post)
            .await
            .expect("open");
        let token = p.headers["h2ws-session"].to_str().unwrap().to_string();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token)
            .expect("base64url");
        assert_eq!(raw.len(), 32, "{token}");
        assert!(seen.insert(raw), "a repeated token");
    }
    // Single use: the upstream attaches once.
    let mut p = Peer::open(&sr, &a, "/ws/echo", Kind::Stream)
        .await
        .expect("open");
    p.send_text("x").await;
    assert_eq!(p.recv_message().await, Message::Text("x".into()));
    let token = p.headers["h2ws-session"].to_str().unwrap().to_string();
    let (st, _, _) = request(
        &sr,
        Method::POST,
        &url,
        &[("h2ws-session", &token)],
        b"\x81\x01y",
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "second attach");
    let (st, _, _) = request(
        &sr,
        Method::POST,
        &url,
        &[("h2ws-session", &token), ("h2ws-seq", "0")],
        b"\x81\x01y",
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "post batch on a stream session");
    // A made-up token of the right shape is unknown.
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
    let (st, _, _) = request(&sr, Method::POST, &url, &[("h2ws-session", &forged)], b"").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Ended: the token is dead (410), never reusable.
    p.close(1000, "").await;
    p.closed().await;
    let session = [("h2ws-session", token.as_str())];
    let st = wait_for_status(&sr, Method::POST, &url, &session, StatusCode::GONE).await;
    assert_eq!(st, StatusCode::GONE);
    server.shutdown().await;
}

#[tokio::test]
async fn foreign_origins_are_refused_by_default_on_every_transport() {
    init_tracing();
    let (server, sr, a) = test_server(SocketConfig::default()).await.parts();
    assert_foreign_origin_refused(&sr, &a).await;
    // Localhost on any port is allowed.
    for kind in Kind::ALL {
        let mut ok = Peer::open_with(
            &sr,
            &a,
            "/ws/echo",
            kind,
            &[("origin", "https://localhost:1234")],
        )
        .await
        .unwrap_or_else(|r| panic!("{kind:?}: localhost refused: {r:?}"));
        ok.send_text("o").await;
        assert_eq!(ok.recv_message().await, Message::Text("o".into()));
    }
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/ws/echo", http_authority(&server)),
    )
    .unwrap();
    req.headers_mut()
        .insert("origin", FOREIGN_ORIGIN.parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), StatusCode::FORBIDDEN)
        }
        other => panic!("rfc6455 foreign origin: {:?}", other.map(|r| r.1)),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn pending_attaches_are_capped_with_503() {
    init_tracing();
    let (server, sr, a) = test_server(SocketConfig {
        max_pending_attaches: 3,
        ..SocketConfig::default()
    })
    .await
    .parts();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(
            Peer::open(&sr, &a, "/ws/echo", Kind::Post)
                .await
                .expect("open"),
        );
    }
    let r = Peer::open(&sr, &a, "/ws/echo", Kind::Post)
        .await
        .err()
        .expect("over the cap");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("waiting"), "{}", r.body);
    // Other transports are not fetch sessions: unaffected.
    let mut native = Peer::open(&sr, &a, "/ws/echo", Kind::Native)
        .await
        .expect("native open");
    native.send_text("n").await;
    assert_eq!(native.recv_message().await, Message::Text("n".into()));
    // One attaches (its first batch): room for one more.
    waiting[0].send_text("attach").await;
    assert_eq!(
        waiting[0].recv_message().await,
        Message::Text("attach".into())
    );
    let mut more = Peer::open(&sr, &a, "/ws/echo", Kind::Post)
        .await
        .expect("room after an attach");
    more.send_text("m").await;
    assert_eq!(more.recv_message().await, Message::Text("m".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn messages_and_frames_over_the_limit_close_with_1009() {
    init_tracing();
    let (server, sr, a) = test_server(small_limits()).await.parts();
    for kind in [Kind::Native, Kind::Rfc8441, Kind::Stream] {
        let mut p = Peer::open(&sr, &a, "/ws/echo", kind).await.expect("open");
        p.send_binary(&[1u8; 1000]).await;
        assert!(matches!(p.recv_message().await, Message::Binary(b) if b.len() == 1000));
        // Fragments of 600 bytes: each frame fits, the message does not.
        p.conn
            .send_fragment(h2ws_codec::FragmentKind::Binary, 0, &[2u8; 600], false)
            .expect("fragment");
        p.conn
            .send_fragment(h2ws_codec::FragmentKind::Continuation, 0, &[2u8; 600], true)
            .expect("fragment");
        p.flush().await;
        let (code, _, _) = p.closed().await;
        assert_eq!(code, 1009, "{kind:?}: message over the limit");
        let mut p = Peer::open(&sr, &a, "/ws/echo", kind).await.expect("open");
        p.send_binary(&[3u8; 1001]).await;
        let (code, _, _) = p.closed().await;
        assert_eq!(code, 1009, "{kind:?}: frame over the limit");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn http1_request_heads_over_the_limits_get_431() {
    init_tracing();
    let server = start(SocketConfig::default()).await;
    let addr = server.http_addr().unwrap();
    let huge = format!(
        "GET /ws/echo HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 << 10)
    );
    let mut many = String::from("GET /ws/echo HTTP/1.1\r\nHost: x\r\n");
    for i in 0..150 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    for (what, req) in [("100 KiB header", huge), ("150 headers", many)] {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        // The server may answer and close before it read everything: ignore write errors.
        let _ = tcp.write_all(req.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(LIMIT, tcp.read_to_end(&mut answer)).await;
        let head = String::from_utf8_lossy(&answer);
        assert!(
            head.starts_with("HTTP/1.1 431"),
            "{what}: {}",
            head.lines().next().unwrap_or("(nothing)")
        );
    }
    // A normal request still works.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/echo", http_authority(&server)))
            .await
            .expect("connect");
    use futures_util::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::text("ok"))
        .await
        .unwrap();
    assert!(ws.next().await.unwrap().is_ok());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_selects_the_first_offered_subprotocol_on_every_transport() {
    use h2ws::client::{Client, ClientConfig, OpenOptions, Transport, Trust};
    init_tracing();
    let server = start(SocketConfig::default()).await;
    let client = Client::new(ClientConfig::new(
        Trust::spki_sha256_base64(server.spki_sha256().unwrap()).unwrap(),
    ));
    let url = format!("{}/ws/echo", server.tls_url().unwrap());
    let offer = OpenOptions {
        protocols: vec!["superchat".into(), "chat".into()],
        ..OpenOptions::default()
    };
    for t in Transport::ALL {
        let ws = client
            .connect(&url, t, &offer)
            .await
            .unwrap_or_else(|e| panic!("{t:?}: {e}"));
        assert_eq!(ws.protocol(), Some("superchat"), "{t:?}");
        let plain = client
            .connect(&url, t, &OpenOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{t:?}: {e}"));
        assert_eq!(plain.protocol(), None, "{t:?}");
        ws.close(1000, "").await.expect("close");
        ws.closed().await.expect("close");
        plain.close(1000, "").await.expect("close");
    }
    server.shutdown().await;
}

// ---------------------------------------------------------------- raw HTTP/2 attacks

/// A devserver child process (TLS + plain listeners on ephemeral ports).
struct Devserver {
    process: DevServerProcess,
    tls: SocketAddr,
    plain: SocketAddr,
}

impl Devserver {
    fn start() -> Devserver {
        let process = DevServerProcess::on_ephemeral_ports(&cert_dir(), &[]);
        let tls = process.https.parse().expect("TLS listener address");
        let plain = process
            .http
            .as_deref()
            .and_then(|a| a.parse().ok())
            .expect("plain listener address");
        Devserver {
            process,
            tls,
            plain,
        }
    }

    fn rss_kib(&self) -> u64 {
        proc_status_kib(self.process.pid(), "VmRSS:")
    }

    fn alive(&mut self) -> bool {
        matches!(self.process.child.try_wait(), Ok(None))
    }
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const PRIORITY: u8 = 2;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags];
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK integer with a 7-bit prefix (RFC 7541 §5.1), no Huffman.
fn hpack_len(out: &mut Vec<u8>, mut n: usize) {
    if n < 127 {
        out.push(n as u8);
        return;
    }
    out.push(127);
    n -= 127;
    while n >= 128 {
        out.push((n % 128) as u8 | 0x80);
        n /= 128;
    }
    out.push(n as u8);
}

/// A header block of literals without indexing (RFC 7541 §6.2.2).
fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0);
        hpack_len(&mut out, name.len());
        out.extend_from_slice(name.as_bytes());
        hpack_len(&mut out, value.len());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

fn native_open(authority: &str) -> Vec<u8> {
    header_block(&[
        (":method", "GET"),
        (":scheme", "ws"),
        (":authority", authority),
        (":path", "/ws/echo"),
    ])
}

fn stats_get(authority: &str) -> Vec<u8> {
    header_block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", authority),
        (":path", "/.h2ws/stats"),
    ])
}

/// What the server sent the attacker.
#[derive(Debug, Default, Clone)]
struct Seen {
    goaway: Option<u32>,
    resets: u64,
    headers: u64,
    bytes: u64,
    closed: bool,
}

/// A raw HTTP/2 attacker on the plain listener (h2c prior knowledge).
struct Attacker {
    write: tokio::net::tcp::OwnedWriteHalf,
    seen: Arc<Mutex<Seen>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Attacker {
    /// Connects and sends the preface and an empty SETTINGS. With `read`, a task reads and
    /// parses everything the server sends; without, nothing is ever read.
    async fn connect(addr: SocketAddr, read: bool) -> Attacker {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (mut r, mut write) = tcp.into_split();
        write.write_all(PREFACE).await.expect("preface");
        write
            .write_all(&frame(SETTINGS, 0, 0, &[]))
            .await
            .expect("settings");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let reader = tokio::spawn(async move {
            if !read {
                std::future::pending::<()>().await;
            }
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 64 << 10];
            loop {
                let n = match r.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                let mut seen = s.lock().unwrap();
                seen.bytes += n as u64;
                while buf.len() >= 9 {
                    let len = (buf[0] as usize) << 16 | (buf[1] as usize) << 8 | buf[2] as usize;
                    if buf.len() < 9 + len {
                        break;
                    }
                    match buf[3] {
                        GOAWAY if len >= 8 => {
                            seen.goaway =
                                Some(u32::from_be_bytes([buf[13], buf[14], buf[15], buf[16]]))
                        }
                        RST_STREAM => seen.resets += 1,
                        HEADERS => seen.headers += 1,
                        _ => {}
                    }
                    buf.drain(..9 + len);
                }
            }
            s.lock().unwrap().closed = true;
        });
        Attacker {
            write,
            seen,
            reader,
        }
    }

    /// Writes bytes; false once the server stopped taking them (closed, or not reading for
    /// `wait`).
    async fn send(&mut self, bytes: &[u8], wait: Duration) -> bool {
        matches!(
            tokio::time::timeout(wait, self.write.write_all(bytes)).await,
            Ok(Ok(()))
        )
    }

    /// Waits up to `limit` for the server to close the connection; what it saw.
    async fn outcome(&self, limit: Duration) -> Seen {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && !self.seen.lock().unwrap().closed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A well-behaved client echoing on a native socket (its own TLS connection) in the
/// background: counts round trips and remembers the slowest.
struct Prober {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    worst_ms: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Prober {
    async fn start(server: &Devserver) -> Prober {
        let sr = h2_tls(server.tls).await;
        let a = server.tls.to_string();
        let mut p = Peer::open(&sr, &a, "/ws/echo", Kind::Native)
            .await
            .expect("probe socket");
        let (stop, ok, worst) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, o, w) = (stop.clone(), ok.clone(), worst.clone());
        let task = tokio::spawn(async move {
            let _keep = sr;
            let mut i = 0u64;
            while !s.load(Ordering::SeqCst) {
                let text = format!("probe {i}");
                let t = Instant::now();
                p.send_text(&text).await;
                loop {
                    match p.next_event_within(Duration::from_secs(5)).await {
                        Some(Event::Message(Message::Text(m))) if m == text => break,
                        Some(Event::Ping(_)) | Some(Event::Pong(_)) => {}
                        other => return Err(format!("probe {i}: {other:?}")),
                    }
                }
                w.fetch_max(t.elapsed().as_millis() as u64, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(())
        });
        Prober {
            stop,
            ok,
            worst_ms: worst,
            task,
        }
    }

    /// Stops; asserts every probe got its echo (each within 5 s) and at least `min` did.
    async fn finish(self, what: &str, min: u64) {
        self.stop.store(true, Ordering::SeqCst);
        let result = tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("prober ends")
            .expect("prober task");
        let (ok, worst) = (
            self.ok.load(Ordering::SeqCst),
            self.worst_ms.load(Ordering::SeqCst),
        );
        println!("{what}: well-behaved client got {ok} echoes, slowest {worst} ms");
        assert!(result.is_ok(), "{what}: {result:?}");
        assert!(ok >= min, "{what}: only {ok} echoes");
    }
}

/// Runs `attack` against a fresh devserver child while a prober echoes; then checks the
/// process is alive, a new client still gets an echo and RSS grew at most `max_growth_kib`.
async fn under_attack<F, Fut>(what: &str, max_growth_kib: u64, attack: F)
where
    F: FnOnce(SocketAddr, String) -> Fut,
    Fut: std::future::Future<Output = (Seen, Vec<Attacker>)>,
{
    init_tracing();
    let mut server = Devserver::start();
    let prober = Prober::start(&server).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss_kib();
    let started = Instant::now();
    let (seen, attackers) = attack(server.plain, server.plain.to_string()).await;
    let took = started.elapsed();
    // The attackers' connections stay open (and unread) while the server digests what they
    // sent; the prober keeps going.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = server.rss_kib();
    drop(attackers);
    tokio::time::sleep(Duration::from_millis(300)).await;
    prober.finish(what, 3).await;
    assert!(server.alive(), "{what}: the devserver died");
    // A new client after the attack.
    let sr = h2_tls(server.tls).await;
    let mut p = Peer::open(&sr, &server.tls.to_string(), "/ws/echo", Kind::Native)
        .await
        .expect("open after the attack");
    p.send_text("after").await;
    assert_eq!(p.recv_message().await, Message::Text("after".into()));
    println!("{what}: attack ran {took:?}; server answered {seen:?}; RSS {before} → {during} KiB");
    assert!(
        during <= before + max_growth_kib,
        "{what}: RSS {before} → {during} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_h2_malformed_frames_close_only_the_offender() {
    // Each malformation on its own connection: a connection error → GOAWAY (+ close).
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage frame type bytes", vec![0xff; 64]),
        ("DATA on stream 0", frame(DATA, 0, 0, b"x")),
        ("frame longer than SETTINGS_MAX_FRAME_SIZE", {
            let mut f = frame(DATA, 0, 1, &[]);
            f[0] = 0x10; // 1 MiB announced
            f.extend_from_slice(&[0u8; 32 << 10]);
            f
        }),
        (
            "undecodable HPACK",
            frame(HEADERS, END_HEADERS, 1, &[0xff; 32]),
        ),
        (
            "WINDOW_UPDATE of 0 on the connection",
            frame(WINDOW_UPDATE, 0, 0, &[0; 4]),
        ),
        ("SETTINGS of 5 bytes", frame(SETTINGS, 0, 0, &[0; 5])),
        ("PRIORITY of 4 bytes", frame(PRIORITY, 0, 1, &[0; 4])),
        (
            "HEADERS on an even stream",
            frame(HEADERS, END_HEADERS, 2, &[0x82]),
        ),
        (
            "CONTINUATION without HEADERS",
            frame(CONTINUATION, END_HEADERS, 1, &[0x82]),
        ),
        ("PING of 7 bytes", frame(PING, 0, 0, &[0; 7])),
    ];
    under_attack("malformed frames", 20 << 10, |addr, _| async move {
        let mut last = Seen::default();
        for (what, bytes) in cases {
            let mut a = Attacker::connect(addr, true).await;
            let _ = a.send(&bytes, Duration::from_secs(2)).await;
            let seen = a.outcome(Duration::from_secs(5)).await;
            assert!(
                seen.closed && seen.goaway.is_some_and(|c| c != 0),
                "{what}: connection closed with a GOAWAY error: {seen:?}"
            );
            last = seen;
        }
        (last, Vec::new())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_h2_oversized_headers_are_refused_not_buffered() {
    under_attack(
        "oversized headers",
        20 << 10,
        |addr, authority| async move {
            // 200 KiB of header value (over the 64 KiB SETTINGS_MAX_HEADER_LIST_SIZE), in
            // HEADERS + CONTINUATION frames of 16 KiB.
            let mut fields = vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", authority.as_str()),
                (":path", "/.h2ws/stats"),
            ];
            let big = "b".repeat(200 << 10);
            fields.push(("x-big", big.as_str()));
            let block = header_block(&fields);
            let mut a = Attacker::connect(addr, true).await;
            let chunks: Vec<&[u8]> = block.chunks(16 << 10).collect();
            let mut bytes = Vec::new();
            for (i, c) in chunks.iter().enumerate() {
                let last = if i + 1 == chunks.len() {
                    END_HEADERS
                } else {
                    0
                };
                let ty = if i == 0 { HEADERS } else { CONTINUATION };
                let flags = last | if i == 0 { END_STREAM } else { 0 };
                bytes.extend(frame(ty, flags, 1, c));
            }
            let _ = a.send(&bytes, Duration::from_secs(5)).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let seen = a.seen.lock().unwrap().clone();
            // Refused: a 431 answer, RST_STREAM or GOAWAY; never served.
            assert!(
                seen.goaway.is_some() || seen.resets > 0 || seen.headers > 0,
                "{seen:?}"
            );
            (seen, vec![a])
        },
    )
    .await;
    // The same through the h2 crate: the answer is 431 (or a reset), never 200.
    let (server, sr, _) = test_server(SocketConfig::default()).await.parts();
    let mut sr = sr.ready().await.unwrap();
    let req = http::Request::get(format!("https://{}/.h2ws/stats", tls_authority(&server)))
        .header("x-big", "b".repeat(100 << 10))
        .body(())
        .unwrap();
    let (resp, _) = sr.send_request(req, true).expect("send");
    match tokio::time::timeout(LIMIT, resp).await.expect("answered") {
        Ok(r) => assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(e) => assert!(e.reason().is_some() || e.is_go_away(), "{e}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_h2_stream_flood_past_max_concurrent_is_refused() {
    under_attack("stream flood", 60 << 10, |addr, authority| async move {
        // 1500 native sockets opened at once, none ever read or closed: 1000 are allowed,
        // the rest refused (RST_STREAM REFUSED_STREAM).
        let mut a = Attacker::connect(addr, true).await;
        let block = native_open(&authority);
        let mut bytes = Vec::new();
        for i in 0..1500u32 {
            bytes.extend(frame(HEADERS, END_HEADERS, 1 + 2 * i, &block));
        }
        assert!(a.send(&bytes, Duration::from_secs(10)).await, "flood sent");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = a.seen.lock().unwrap().clone();
            if seen.resets >= 500 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = a.seen.lock().unwrap().clone();
        assert!(
            seen.resets >= 500 || seen.goaway.is_some(),
            "streams past the limit refused: {seen:?}"
        );
        (seen, vec![a])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_h2_rapid_reset_flood_is_cut_off() {
    under_attack("rapid reset", 30 << 10, |addr, authority| async move {
        // HEADERS immediately followed by RST_STREAM(CANCEL), 20 000 times, in batches.
        let mut a = Attacker::connect(addr, true).await;
        let block = stats_get(&authority);
        let mut sent = 0u32;
        'flood: for batch in 0..40u32 {
            let mut bytes = Vec::new();
            for i in 0..500u32 {
                let id = 1 + 2 * (batch * 500 + i);
                bytes.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
                bytes.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
            }
            if !a.send(&bytes, Duration::from_secs(2)).await || a.seen.lock().unwrap().closed {
                break 'flood;
            }
            sent += 500;
        }
        let seen = a.outcome(Duration::from_secs(3)).await;
        println!("rapid reset: {sent} HEADERS+RST_STREAM pairs taken before the cut");
        assert_eq!(seen.goaway, Some(11), "GOAWAY ENHANCE_YOUR_CALM: {seen:?}");
        (seen, vec![a])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_h2_settings_flood_without_reading() {
    under_attack("SETTINGS flood", 30 << 10, |addr, _| async move {
        // 100 000 SETTINGS frames (each wants an ACK) while never reading the ACKs.
        let mut a = Attacker::connect(addr, false).await;
        let one = frame(SETTINGS, 0, 0, &[0, 4, 0, 1, 0, 0]); // INITIAL_WINDOW_SIZE 65536
        let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 5000).collect();
        let mut taken = 0;
        for _ in 0..20 {
            if !a.send(&batch, Duration::from_secs(2)).await {
                break;
            }
            taken += 5000;
        }
        println!("SETTINGS flood: {taken} frames written, the server never closed or grew");
        (Seen::default(), vec![a])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_h2_ping_flood_without_reading() {
    under_attack("PING flood", 30 << 10, |addr, _| async move {
        let mut a = Attacker::connect(addr, false).await;
        let one = frame(PING, 0, 0, &[1; 8]);
        let batch: Vec<u8> = one
            .iter()
            .copied()
            .cycle()
            .take(one.len() * 10_000)
            .collect();
        let mut taken = 0;
        for _ in 0..20 {
            if !a.send(&batch, Duration::from_secs(2)).await {
                break;
            }
            taken += 10_000;
        }
        println!("PING flood: {taken} PINGs written, the server never closed or grew");
        (Seen::default(), vec![a])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_h2_continuation_flood_is_cut_off() {
    under_attack(
        "CONTINUATION flood",
        30 << 10,
        |addr, authority| async move {
            // HEADERS without END_HEADERS, then endless CONTINUATION frames (up to 32 MiB).
            let mut a = Attacker::connect(addr, true).await;
            let first = frame(HEADERS, END_STREAM, 1, &stats_get(&authority));
            assert!(a.send(&first, Duration::from_secs(2)).await);
            let filler = header_block(&[("x-filler", &"c".repeat(16_000))]);
            let one = frame(CONTINUATION, 0, 1, &filler);
            let mut taken = 0;
            for _ in 0..2048 {
                if !a.send(&one, Duration::from_secs(2)).await || a.seen.lock().unwrap().closed {
                    break;
                }
                taken += 1;
            }
            let seen = a.outcome(Duration::from_secs(5)).await;
            println!("CONTINUATION flood: {taken} frames of 16 KB taken");
            assert!(
                seen.closed || seen.goaway.is_some() || seen.resets > 0,
                "the header block was cut off: {seen:?}"
            );
            (seen, vec![a])
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_get_goaway_busy_ones_stay() {
    init_tracing();
    let idle = Duration::from_millis(400);
    let server = server(SocketConfig::default())
        .h2_settings(h2ws::h2conn::H2Settings {
            idle_timeout: idle,
            ..Default::default()
        })
        .start()
        .await
        .expect("start");
    let a = tls_authority(&server);
    // A raw connection that never opens a stream is closed after the idle timeout.
    let quiet = Attacker::connect(server.http_addr().unwrap(), true).await;
    let start = Instant::now();
    let seen = quiet.outcome(Duration::from_secs(5)).await;
    let took = start.elapsed();
    println!("idle connection: {seen:?} after {took:?}");
    assert!(
        seen.closed && seen.goaway == Some(0),
        "GOAWAY NO_ERROR: {seen:?}"
    );
    assert!(took >= idle && took < idle * 4, "{took:?}");
    // A connection carrying a socket stays open past it, and works.
    let sr = h2_tls(server.tls_addr().unwrap()).await;
    let mut p = Peer::open(&sr, &a, "/ws/echo", Kind::Native)
        .await
        .expect("open");
    tokio::time::sleep(idle * 3).await;
    p.send_text("still").await;
    assert_eq!(p.recv_message().await, Message::Text("still".into()));
    server.shutdown().await;
}
