//! Scaling out (issue 13, points 5 and 6; `cargo xtask test --stage scale`, which stage `rust`
//! skips by the `scale_out_` prefix of every test here): three devserver processes behind HAProxy, run with
//! exactly the recipes in `deploy/scale-out/` (only ports and the certificate path changed).
//!
//! * Routing: 300 sockets over every transport through HAProxy, each echoing; every
//!   instance's `/.h2ws/stats` shows its share and no upstream request refused as misdirected
//!   (421) or unknown (404/410). Both recipes: routing on the instance id in the token, and the
//!   stick table. A control run without the routing lines shows that the counters do catch
//!   misrouting.
//! * Chat over Redis: sockets on all three instances, every message reaches every socket exactly
//!   once and in each sender's order; one instance killed closes only its sockets; Redis
//!   restarted: a message sent during the outage is refused to its sender (1013) and reaches
//!   nobody, and fan-out resumes once the instances resubscribed.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proxy::{deploy, free_port, render, Service, Subst};
use h2ws::client::{
    Client, ClientConfig, H2Connection, Message, OpenOptions, Socket, SocketReceiver, SocketSender,
    Transport, Trust,
};
use h2ws::StatsSnapshot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IDS: [&str; 3] = ["s1", "s2", "s3"];
/// The recipes' back-end addresses, replaced by the test's ports.
const RECIPE_BACKENDS: [&str; 3] = ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"];
const WAIT: Duration = Duration::from_secs(20);

/// Three devservers, HAProxy in front.
struct Cluster {
    servers: Vec<Service>,
    /// Plain (h2c / HTTP/1.1) port of each server: HAProxy's back end and the stats source.
    http_ports: Vec<u16>,
    haproxy: Service,
    front: u16,
    client: Client,
}

fn cert_dir() -> PathBuf {
    common::cert_dir()
}

/// The shared test certificate (generated on first use) as HAProxy's PEM and its pin.
fn certificate() -> (PathBuf, String) {
    (
        cert_dir().join("localhost.pem"),
        common::identity().spki_sha256,
    )
}

fn start_devserver(id: Option<&str>, extra: &[String]) -> (Service, u16) {
    let (tls, http) = (free_port(), free_port());
    let mut args: Vec<String> = vec![
        "--addr".into(),
        format!("127.0.0.1:{tls}"),
        "--http-addr".into(),
        format!("127.0.0.1:{http}"),
        "--cert-dir".into(),
        cert_dir().display().to_string(),
    ];
    if let Some(id) = id {
        args.extend(["--instance-id".into(), id.into()]);
    }
    args.extend_from_slice(extra);
    let svc = Service::devserver(&args, &[tls, http]).expect("devserver starts");
    (svc, http)
}

impl Cluster {
    /// `recipe` is a file in deploy/scale-out; `drop_lines` are recipe lines removed (the
    /// control run only).
    fn start(recipe: &str, with_ids: bool, extra: &[String], drop_lines: &[&str]) -> Cluster {
        let (pem, spki) = certificate();
        let mut servers = Vec::new();
        let mut http_ports = Vec::new();
        for id in IDS {
            let (svc, http) = start_devserver(with_ids.then_some(id), extra);
            servers.push(svc);
            http_ports.push(http);
        }
        let front = free_port();
        let mut substs = vec![
            Subst::new("bind :443", format!("bind 127.0.0.1:{front}")),
            Subst::new("/etc/haproxy/h2ws.pem", pem.display().to_string()),
        ];
        for (from, port) in RECIPE_BACKENDS.iter().zip(&http_ports) {
            substs.push(Subst::new(*from, format!("127.0.0.1:{port}")));
        }
        for line in drop_lines {
            substs.push(Subst::new(*line, ""));
        }
        let config = render(&deploy(&format!("scale-out/{recipe}")), &substs).expect("recipe");
        let haproxy = Service::haproxy(&config, &[front]).expect("haproxy starts");
        let client = Client::new(ClientConfig::new(
            Trust::spki_sha256_base64(&spki).expect("pin"),
        ));
        Cluster {
            servers,
            http_ports,
            haproxy,
            front,
            client,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.front)
    }

    /// Every instance's `/.h2ws/stats`, straight from the instance (not through HAProxy).
    async fn stats(&self) -> Vec<StatsSnapshot> {
        let mut all = Vec::new();
        for port in &self.http_ports {
            all.push(stats(*port).await);
        }
        all
    }

    fn logs(&self) -> String {
        let mut s = self.haproxy.logs();
        for svc in &self.servers {
            s.push_str(&svc.logs());
        }
        s
    }
}

/// `GET /.h2ws/stats` over HTTP/1.1 on 127.0.0.1:`port`.
async fn stats(port: u16) -> StatsSnapshot {
    let work = async {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.write_all(b"GET /.h2ws/stats HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        tcp.take(1 << 20).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(WAIT, work)
        .await
        .expect("stats within the limit")
        .expect("stats request");
    let text = String::from_utf8(buf).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "stats: {head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("stats JSON {body:?}: {e}"))
}

const TRANSPORTS: [Transport; 5] = Transport::ALL;

/// Opens `per_transport` sockets of each transport at `path` through the front end: HTTP/2
/// transports share a few connections (HAProxy balances each request of a connection on its
/// own), rfc6455 has one connection each. Returns them with their transport.
async fn open_all(
    cluster: &Cluster,
    path: &str,
    transports: &[Transport],
    per_transport: usize,
) -> Vec<(Transport, Result<Socket, String>)> {
    let mut conns: Vec<H2Connection> = Vec::new();
    for _ in 0..4 {
        conns.push(
            tokio::time::timeout(WAIT, cluster.client.connect_h2(&cluster.url("")))
                .await
                .expect("connect within the limit")
                .expect("h2 connection to HAProxy"),
        );
    }
    let mut opens = Vec::new();
    for i in 0..per_transport {
        for (k, &t) in transports.iter().enumerate() {
            let url = cluster.url(path);
            let client = cluster.client.clone();
            let conn = conns[(i + k) % conns.len()].clone();
            let path = path.to_string();
            opens.push(tokio::spawn(async move {
                let opts = OpenOptions::default();
                let ws = tokio::time::timeout(WAIT, async {
                    if t == Transport::Rfc6455 {
                        client.connect(&url, t, &opts).await
                    } else {
                        conn.open(&path, t, &opts).await
                    }
                })
                .await
                .map_err(|_| "open timed out".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
                (t, ws)
            }));
        }
    }
    let mut out = Vec::new();
    for o in opens {
        out.push(o.await.expect("open task"));
    }
    out
}

/// Three round trips on `ws`, each message naming the socket: Err describes the first failure.
async fn echo_three(n: usize, ws: &mut Socket) -> Result<(), String> {
    for k in 0..3 {
        let text = format!("socket {n} message {k}");
        ws.send_text(&text)
            .await
            .map_err(|e| format!("send: {e}"))?;
        match ws.recv_timeout(WAIT).await {
            Ok(Some(Message::Text(t))) if t == text => {}
            other => {
                return Err(format!(
                    "echo of {text:?}: {other:?} ({:?})",
                    ws.close_status()
                ))
            }
        }
    }
    Ok(())
}

/// Opens 60 sockets per transport (300), echoes on all at once, and returns the failures and
/// every instance's stats taken while all sockets are open.
async fn echo_300(cluster: &Cluster) -> (Vec<String>, Vec<StatsSnapshot>) {
    let sockets = open_all(cluster, "/ws/echo", &TRANSPORTS, 60).await;
    assert_eq!(sockets.len(), 300);
    let mut failures = Vec::new();
    let mut open = Vec::new();
    for (n, (t, ws)) in sockets.into_iter().enumerate() {
        match ws {
            Ok(ws) => open.push((n, t, ws)),
            Err(e) => failures.push(format!("{t:?} #{n}: open: {e}")),
        }
    }
    let mut echoes = Vec::new();
    for (n, t, mut ws) in open {
        echoes.push(tokio::spawn(async move {
            let echoed = echo_three(n, &mut ws)
                .await
                .map_err(|e| format!("{t:?} #{n}: {e}"));
            (ws, echoed)
        }));
    }
    let mut open = Vec::new();
    for e in echoes {
        let (ws, echoed) = e.await.expect("echo task");
        if let Err(msg) = echoed {
            failures.push(msg);
        }
        open.push(ws);
    }
    let stats = cluster.stats().await;
    for ws in &open {
        let close = async {
            ws.close(1000, "done").await?;
            ws.closed().await
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
    }
    (failures, stats)
}

/// Every socket echoed; each instance holds sockets of every transport, together all 300; no
/// upstream request was refused as misdirected or unknown.
fn assert_routed(cluster: &Cluster, failures: &[String], stats: &[StatsSnapshot]) {
    assert!(
        failures.is_empty(),
        "{} of 300 sockets failed, e.g. {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        cluster.logs()
    );
    // The instances see what HAProxy sends on its h2 back end: rfc6455 (HTTP/1.1 Upgrade from
    // the client) arrives as extended CONNECT, so 60 rfc6455 + 60 rfc8441 = 120 rfc8441.
    let expected = [
        ("rfc6455", 0),
        ("rfc8441", 120),
        ("native", 60),
        ("stream", 60),
        ("post", 60),
    ];
    for (t, total) in expected {
        let per: Vec<u64> = stats.iter().map(|s| s.open[t]).collect();
        assert_eq!(
            per.iter().sum::<u64>(),
            total,
            "{t} sockets per instance {per:?}"
        );
        if total == 0 {
            continue;
        }
        assert!(per.iter().all(|n| *n > 0), "{t} on every instance: {per:?}");
    }
    for s in stats {
        assert_eq!(
            (s.sessions_misdirected, s.sessions_unknown),
            (0, 0),
            "instance {:?}: upstream requests refused",
            s.instance
        );
        // Both halves at one instance: each instance read and answered exactly the 3 messages
        // of every socket it holds (an upstream served elsewhere would leave them short).
        assert_eq!(
            (s.messages_in, s.messages_out),
            (3 * s.open_total, 3 * s.open_total),
            "instance {:?}: messages vs its {} sockets",
            s.instance,
            s.open_total
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_instance_id_routing_300_sockets_over_3_instances() {
    let cluster = Cluster::start("haproxy-instance-id.cfg", true, &[], &[]);
    let (failures, stats) = echo_300(&cluster).await;
    let ids: Vec<Option<&str>> = stats.iter().map(|s| s.instance.as_deref()).collect();
    assert_eq!(ids, [Some("s1"), Some("s2"), Some("s3")]);
    assert_routed(&cluster, &failures, &stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_stick_table_routing_300_sockets_over_3_instances() {
    // The alternative recipe needs no instance ids.
    let cluster = Cluster::start("haproxy-stick-table.cfg", false, &[], &[]);
    let (failures, stats) = echo_300(&cluster).await;
    assert!(stats.iter().all(|s| s.instance.is_none()));
    assert_routed(&cluster, &failures, &stats);
}

/// The control: the instance-id recipe without its `use-server` lines is plain round robin,
/// which sends fetch upstreams to the wrong instance; they are refused with 421 and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_without_routing_fetch_sessions_are_misdirected_and_counted() {
    let drop_lines = IDS.map(|id| {
        // The exact recipe lines (leading spaces included), so a changed recipe fails here.
        Box::leak(
            format!("    use-server {id} if {{ req.hdr(h2ws-session) -m beg {id}. }}\n")
                .into_boxed_str(),
        ) as &str
    });
    let cluster = Cluster::start("haproxy-instance-id.cfg", true, &[], &drop_lines);
    let mut sockets = open_all(
        &cluster,
        "/ws/echo",
        &[Transport::Stream, Transport::Post],
        15,
    )
    .await;
    let mut failed = 0;
    for (n, (_, ws)) in sockets.iter_mut().enumerate() {
        let ok = match ws {
            Ok(ws) => echo_three(n, ws).await.is_ok(),
            Err(_) => false,
        };
        if !ok {
            failed += 1;
        }
    }
    let stats = cluster.stats().await;
    let misdirected: u64 = stats.iter().map(|s| s.sessions_misdirected).sum();
    assert!(
        failed > 0 && misdirected > 0,
        "round robin should misroute fetch sessions: {failed} of 30 failed, {misdirected} misdirected"
    );
}

// ---------------------------------------------------------------------------------------------
// Chat over Redis.

/// One chat member: its socket and what it received, by sender.
struct Member {
    name: String,
    /// The socket's halves: chat rounds send from one task and read from another.
    tx: SocketSender,
    rx: Arc<tokio::sync::Mutex<SocketReceiver>>,
    /// Instance of a fetch socket (from its token), else None.
    instance: Option<String>,
}

/// Waits until `f(stats of every listed instance)` holds (polling), or panics with `what`.
async fn wait_stats(
    cluster: &Cluster,
    ports: &[u16],
    what: &str,
    f: impl Fn(&StatsSnapshot) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut all = true;
        for p in ports {
            if !f(&stats(*p).await) {
                all = false;
            }
        }
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {WAIT:?}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every member of `senders` sends `count` messages `NAME:ROUND:I` (without waiting for
/// anything); every member of `receivers` must then get exactly those, each sender's in order.
async fn chat_round(
    cluster: &Cluster,
    senders: &[&Member],
    receivers: &[&Member],
    round: &str,
    count: usize,
) {
    for m in senders {
        let (ws, name, round) = (m.tx.clone(), m.name.clone(), round.to_string());
        tokio::spawn(async move {
            for i in 0..count {
                if ws.send_text(&format!("{name}:{round}:{i}")).await.is_err() {
                    break;
                }
            }
        });
    }
    let expected = senders.len() * count;
    let mut checks = Vec::new();
    for r in receivers {
        let (rx, name, round) = (r.rx.clone(), r.name.clone(), round.to_string());
        checks.push(tokio::spawn(async move {
            let mut ws = rx.lock().await;
            let mut next: HashMap<String, usize> = HashMap::new();
            for _ in 0..expected {
                let text = match ws.recv_timeout(WAIT).await {
                    Ok(Some(Message::Text(t))) => t,
                    other => {
                        return Err(format!(
                            "{name}: {other:?} after {next:?} ({:?})",
                            ws.close_status()
                        ))
                    }
                };
                let mut parts = text.split(':');
                let (from, r, i) = (parts.next(), parts.next(), parts.next());
                let (Some(from), Some(r), Some(Ok(i))) = (from, r, i.map(str::parse::<usize>))
                else {
                    return Err(format!("{name}: unexpected {text:?}"));
                };
                if r != round {
                    return Err(format!("{name}: {text:?} in round {round}"));
                }
                let n = next.entry(from.to_string()).or_default();
                if i != *n {
                    return Err(format!(
                        "{name}: from {from} got #{i}, expected #{n} (duplicate, loss or reorder)"
                    ));
                }
                *n += 1;
            }
            // Nothing more: no duplicates after the expected ones.
            match ws.recv_timeout(Duration::from_millis(300)).await {
                Err(_) => Ok(next.len()),
                Ok(other) => Err(format!("{name}: extra {other:?}")),
            }
        }));
    }
    for c in checks {
        match c.await.expect("check task") {
            Ok(n) => assert_eq!(n, senders.len(), "heard from every sender"),
            Err(e) => panic!("round {round}: {e}\n{}", cluster.logs()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_chat_fans_out_across_instances_through_redis() {
    let redis_port = free_port();
    let mut redis = Service::redis(redis_port).expect("redis-server starts");
    let broker = vec![
        "--broker".to_string(),
        format!("redis://127.0.0.1:{redis_port}"),
    ];
    let mut cluster = Cluster::start("haproxy-instance-id.cfg", true, &broker, &[]);
    // Native is left out: HAProxy re-frames its DATA (README "Behind a proxy").
    let transports = [
        Transport::Rfc6455,
        Transport::Rfc8441,
        Transport::Stream,
        Transport::Post,
    ];
    let opened = open_all(&cluster, "/ws/chat", &transports, 6).await;
    let members: Vec<Member> = opened
        .into_iter()
        .enumerate()
        .map(|(n, (t, ws))| {
            let ws = ws.unwrap_or_else(|e| panic!("{t:?} #{n}: {e}\n{}", cluster.logs()));
            let instance = ws
                .handshake()
                .session
                .as_deref()
                .and_then(|s| s.split_once('.'))
                .map(|(id, _)| id.to_string());
            let (tx, rx) = ws.split();
            Member {
                name: format!("m{n}"),
                tx,
                rx: Arc::new(tokio::sync::Mutex::new(rx)),
                instance,
            }
        })
        .collect();
    let per_instance: Vec<u64> = {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = cluster.stats().await;
            let per: Vec<u64> = s
                .iter()
                .map(|s| s.rooms.as_ref().map_or(0, |r| r.members))
                .collect();
            if per.iter().sum::<u64>() == 24 || Instant::now() > deadline {
                break per;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(
        per_instance.iter().sum::<u64>(),
        24,
        "members per instance {per_instance:?}"
    );
    assert!(
        per_instance.iter().all(|n| *n > 0),
        "members on every instance: {per_instance:?}"
    );
    for s in cluster.stats().await {
        assert_eq!(s.rooms.as_ref().map(|r| r.broker.as_str()), Some("redis"));
    }

    // 1. Every message to every socket on every instance, exactly once, in each sender's order.
    let all: Vec<&Member> = members.iter().collect();
    chat_round(&cluster, &all, &all, "a", 20).await;

    // 2. Instance s2 killed: exactly its sockets close; the others chat on.
    let s2_members = per_instance[1] as usize;
    cluster.servers[1].kill();
    // A socket of s2 ends (HAProxy ends its stream or connection when the server dies); the
    // others hear nothing for 3 s (all watched at once).
    let watches: Vec<_> = members
        .iter()
        .map(|m| {
            let rx = m.rx.clone();
            tokio::spawn(async move {
                let mut ws = rx.lock().await;
                ws.recv_timeout(Duration::from_secs(3)).await.is_ok()
            })
        })
        .collect();
    let mut closed = Vec::new();
    let mut alive = Vec::new();
    for (m, w) in members.iter().zip(watches) {
        if w.await.expect("watch task") {
            closed.push(m);
        } else {
            alive.push(m);
        }
    }
    assert_eq!(closed.len(), s2_members, "closed sockets = s2's members");
    for m in &closed {
        assert!(
            m.instance.as_deref().is_none_or(|i| i == "s2"),
            "{} of {:?} closed",
            m.name,
            m.instance
        );
    }
    for m in &alive {
        assert!(
            m.instance.as_deref() != Some("s2"),
            "{} of s2 still open",
            m.name
        );
    }
    chat_round(&cluster, &alive, &alive, "b", 10).await;

    // 3. Redis down: a message sent now is refused to its sender with 1013 and reaches nobody.
    redis.kill();
    let live_ports = [cluster.http_ports[0], cluster.http_ports[2]];
    wait_stats(&cluster, &live_ports, "broker seen down", |s| {
        s.rooms.as_ref().is_some_and(|r| !r.connected)
    })
    .await;
    let (lost, rest) = alive.split_first().expect("survivors");
    lost.tx
        .send_text(&format!("{}:outage:0", lost.name))
        .await
        .expect("send");
    let status = tokio::time::timeout(WAIT, lost.tx.closed())
        .await
        .expect("closed in time")
        .expect("close");
    assert_eq!(status.code, 1013, "sender told: {status:?}");
    // Redis back (same port, empty): the instances resubscribe and fan-out resumes.
    let _redis = Service::redis(redis_port).expect("redis-server restarts");
    wait_stats(&cluster, &live_ports, "broker resubscribed", |s| {
        s.rooms
            .as_ref()
            .is_some_and(|r| r.connected && r.reconnects >= 1)
    })
    .await;
    // The outage message never arrives: round c's receivers see only round c (chat_round
    // fails on any other message).
    let rest: Vec<&Member> = rest.to_vec();
    chat_round(&cluster, &rest, &rest, "c", 10).await;
}

/// Runs the devserver binary with `args`, expecting it to exit at once (within 10 s); returns
/// (success, stderr).
fn run_to_exit(args: &[&str]) -> (bool, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_h2ws-devserver"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("h2ws-devserver {args:?} still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    use std::io::Read;
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    (status.success(), err)
}

#[test]
fn scale_out_bad_instance_id_and_unreachable_broker_are_refused_at_start() {
    let (ok, err) = run_to_exit(&["--addr", "127.0.0.1:0", "--no-http", "--instance-id", "s.1"]);
    assert!(!ok && err.contains("instance id \"s.1\""), "{err}");
    // Nothing listens on a port just freed: the first connection fails within the connect
    // timeout and the server does not start.
    let url = format!("redis://127.0.0.1:{}", free_port());
    let (ok, err) = run_to_exit(&[
        "--addr",
        "127.0.0.1:0",
        "--no-http",
        "--cert-dir",
        &cert_dir().display().to_string(),
        "--broker",
        &url,
    ]);
    assert!(!ok && err.contains("--broker: broker unavailable"), "{err}");
    let (ok, err) = run_to_exit(&["--addr", "127.0.0.1:0", "--no-http", "--broker", "http://x"]);
    assert!(!ok && err.contains("--broker: broker address"), "{err}");
}

/// The embedding API on Redis: two `Rooms` (two instances of an app, here in one process) on one
/// redis-server: members of both get everything in each publisher's order, topics stay apart;
/// Redis gone → publishes fail within the bound; Redis back → both resubscribe and resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_rooms_api_over_redis() {
    use h2ws::{RoomError, Rooms, RoomsConfig};
    let port = free_port();
    let mut redis = Service::redis(port).expect("redis-server starts");
    let url = format!("redis://127.0.0.1:{port}");
    let config = RoomsConfig {
        reconnect_max: Duration::from_millis(500),
        ..RoomsConfig::default()
    };
    let a = Rooms::redis(&url, config.clone())
        .await
        .expect("a connects");
    let b = Rooms::redis(&url, config.clone())
        .await
        .expect("b connects");
    let mut on_a = a.join("t").unwrap();
    let mut on_b = b.join("t").unwrap();
    let mut elsewhere = b.join("u").unwrap();
    for i in 0..50u8 {
        a.publish("t", h2ws::Message::Text(i.to_string()))
            .await
            .unwrap();
        b.publish("t", h2ws::Message::Binary(vec![i].into()))
            .await
            .unwrap();
    }
    for member in [&mut on_a, &mut on_b] {
        let (mut texts, mut bins) = (0u8, 0u8);
        for _ in 0..100 {
            match tokio::time::timeout(WAIT, member.recv())
                .await
                .expect("in time")
            {
                Some(h2ws::Message::Text(t)) => {
                    assert_eq!(t, texts.to_string());
                    texts += 1;
                }
                Some(h2ws::Message::Binary(b)) => {
                    assert_eq!(&b[..], &[bins]);
                    bins += 1;
                }
                None => panic!("member ended"),
            }
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(200), member.recv())
                .await
                .is_err(),
            "no extra"
        );
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(100), elsewhere.recv())
            .await
            .is_err()
    );
    let (sa, sb) = (a.snapshot(), b.snapshot());
    assert_eq!(
        (sa.broker.as_str(), sa.published, sa.delivered),
        ("redis", 50, 100)
    );
    assert_eq!((sb.published, sb.delivered, sb.members), (50, 100, 2));

    redis.kill();
    let deadline = Instant::now() + WAIT;
    while a.snapshot().connected || b.snapshot().connected {
        assert!(Instant::now() < deadline, "subscription loss noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let refused = a.publish("t", h2ws::Message::Text("lost".into())).await;
    assert!(
        matches!(refused, Err(RoomError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(started.elapsed() < config.publish_timeout + Duration::from_secs(1));

    let _redis = Service::redis(port).expect("redis-server restarts");
    let deadline = Instant::now() + WAIT;
    while !(a.snapshot().connected && b.snapshot().connected) {
        assert!(Instant::now() < deadline, "resubscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(a.snapshot().reconnects >= 1 && b.snapshot().reconnects >= 1);
    a.publish("t", h2ws::Message::Text("back".into()))
        .await
        .expect("publish after the restart");
    for member in [&mut on_a, &mut on_b] {
        let got = tokio::time::timeout(WAIT, member.recv())
            .await
            .expect("in time");
        assert_eq!(
            got,
            Some(h2ws::Message::Text("back".into())),
            "the outage message never arrives"
        );
    }
}
