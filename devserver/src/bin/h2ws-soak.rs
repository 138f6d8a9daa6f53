//! `h2ws-soak`: N sockets × M messages on every transport at once (rfc6455, rfc8441, native,
//! stream, post) against `/ws/echo`, each message carrying its socket id and sequence number;
//! counts lost, duplicated, reordered and corrupted messages, prints the figures per
//! transport and exits non-zero on any anomaly. Bounded in time (`--duration` of sending, then
//! at most `--drain` seconds to get the echoes back).
//!
//! Without `--url` it starts an in-process devserver on 127.0.0.1 ephemeral ports; with
//! `--url https://127.0.0.1:PORT --spki BASE64` it targets a running one (127.0.0.1 / [::1]).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use h2ws::client::{Client, ClientConfig, Message, OpenOptions, Socket, Transport, Trust};

#[derive(Parser, Debug)]
#[command(name = "h2ws-soak", version)]
struct Cli {
    /// A running devserver (`https://127.0.0.1:PORT`); default: start one in-process.
    #[arg(long, requires = "spki")]
    url: Option<String>,
    /// base64(sha256(SPKI)) of its certificate (its `spki-sha256` start-up line).
    #[arg(long)]
    spki: Option<String>,
    /// Sockets per transport.
    #[arg(long, default_value_t = 20)]
    sockets: usize,
    /// Messages per socket at most.
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Seconds of sending (sockets stop early once they sent `--messages`).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Largest message, bytes (sizes vary from 16 up to it).
    #[arg(long, default_value_t = 4096)]
    max_size: usize,
    /// Seconds to wait for the last echoes after sending stopped.
    #[arg(long, default_value_t = 20.0)]
    drain: f64,
    /// Only these transports (comma-separated; default: all five).
    #[arg(long, value_delimiter = ',')]
    transports: Vec<String>,
}

const TRANSPORTS: [Transport; 5] = Transport::ALL;

/// Per-transport figures (summed over its sockets).
struct Figures {
    sent: AtomicU64,
    received: AtomicU64,
    bytes: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    corrupted: AtomicU64,
    errors: AtomicU64,
    /// Fairness: the fewest and most echoes one socket got, and the longest wait for an echo.
    socket_min: AtomicU64,
    socket_max: AtomicU64,
    longest_gap_ms: AtomicU64,
}

impl Default for Figures {
    fn default() -> Self {
        Figures {
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
            corrupted: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            socket_min: AtomicU64::new(u64::MAX),
            socket_max: AtomicU64::new(0),
            longest_gap_ms: AtomicU64::new(0),
        }
    }
}

impl Figures {
    fn anomalies(&self) -> u64 {
        [
            &self.lost,
            &self.duplicated,
            &self.reordered,
            &self.corrupted,
            &self.errors,
        ]
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .sum()
    }
}

/// Message `seq` of socket `id`: "id:seq:" then a deterministic filler; even seqs are text,
/// odd ones binary.
fn message(id: &str, seq: u64, max: usize) -> Message {
    let len = 16 + (seq as usize * 7919) % max.saturating_sub(15).max(1);
    let mut s = format!("{id}:{seq}:");
    let fill = b'a' + (seq % 26) as u8;
    while s.len() < len {
        s.push(fill as char);
    }
    if seq.is_multiple_of(2) {
        Message::Text(s)
    } else {
        Message::Binary(s.into_bytes().into())
    }
}

/// Checks one echo against the expected sequence number.
fn check(id: &str, expected: &mut u64, msg: &Message, max: usize, f: &Figures) {
    let bytes: &[u8] = match msg {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
    };
    f.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    let seq = std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.strip_prefix(id))
        .and_then(|s| s.strip_prefix(':'))
        .and_then(|s| s.split(':').next())
        .and_then(|n| n.parse::<u64>().ok());
    let Some(seq) = seq else {
        f.corrupted.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if message(id, seq, max) != *msg {
        f.corrupted.fetch_add(1, Ordering::Relaxed);
    }
    if seq == *expected {
        *expected += 1;
        f.received.fetch_add(1, Ordering::Relaxed);
    } else if seq < *expected {
        f.duplicated.fetch_add(1, Ordering::Relaxed);
    } else {
        // A gap: the skipped ones are lost (if they show up later they count as duplicated,
        // i.e. out of order, too).
        f.reordered.fetch_add(1, Ordering::Relaxed);
        f.lost.fetch_add(seq - *expected, Ordering::Relaxed);
        f.received.fetch_add(1, Ordering::Relaxed);
        *expected = seq + 1;
    }
}

async fn run_socket(ws: Socket, id: String, cli: Arc<Cli>, f: Arc<Figures>, stop: Instant) {
    // The sending task gets a clone of the sending half; this one stays here to close.
    let (tx, mut rx) = ws.split();
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let (ws, id, cli, f, sent, done) = (
            tx.clone(),
            id.clone(),
            cli.clone(),
            f.clone(),
            sent.clone(),
            done.clone(),
        );
        tokio::spawn(async move {
            for seq in 0..cli.messages {
                if Instant::now() >= stop {
                    break;
                }
                if let Err(e) = ws.send(message(&id, seq, cli.max_size)).await {
                    eprintln!("{id}: send {seq}: {e}");
                    f.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                f.sent.fetch_add(1, Ordering::Relaxed);
            }
            done.store(true, Ordering::Release);
        })
    };
    let drain = Duration::from_secs_f64(cli.drain);
    let mut expected = 0u64;
    let mut last_progress = Instant::now();
    let mut longest_gap = Duration::ZERO;
    loop {
        if done.load(Ordering::Acquire) && expected >= sent.load(Ordering::Relaxed) {
            break;
        }
        if last_progress.elapsed() > drain {
            eprintln!("{id}: no echo for {drain:?} (expected seq {expected})");
            f.errors.fetch_add(1, Ordering::Relaxed);
            break;
        }
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Err(_) => continue,
            Ok(Some(msg)) => {
                check(&id, &mut expected, &msg, cli.max_size, &f);
                longest_gap = longest_gap.max(last_progress.elapsed());
                last_progress = Instant::now();
            }
            Ok(None) => {
                eprintln!("{id}: closed early: {:?}", rx.close_status());
                f.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    let _ = sender.await;
    f.socket_min.fetch_min(expected, Ordering::Relaxed);
    f.socket_max.fetch_max(expected, Ordering::Relaxed);
    f.longest_gap_ms
        .fetch_max(longest_gap.as_millis() as u64, Ordering::Relaxed);
    let sent = sent.load(Ordering::Relaxed);
    if expected < sent {
        f.lost.fetch_add(sent - expected, Ordering::Relaxed);
    }
    let closed = match tx.close(1000, "soak done").await {
        Ok(()) => tx.closed().await,
        Err(e) => Err(e),
    };
    match closed {
        Ok(s) if s.code == 1000 && s.clean => {}
        other => {
            eprintln!("{id}: close: {other:?}");
            f.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Arc::new(Cli::parse());
    // Server and client diagnostics on stderr when asked (`RUST_LOG=h2ws=debug`).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let mut local = None;
    let (url, spki) = match (&cli.url, &cli.spki) {
        (Some(u), Some(s)) => (u.trim_end_matches('/').to_string(), s.clone()),
        _ => {
            let dir = std::env::temp_dir().join("h2ws-soak-cert");
            let identity = match (h2ws_devserver::cert::CertSource::Generated { dir }).load() {
                Ok(identity) => identity,
                Err(e) => {
                    eprintln!("h2ws-soak: the dev certificate: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let started = h2ws::Server::new()
                .tls_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
                .http_addr(None)
                .tls_identity(identity)
                .routes(h2ws_devserver::apps::routes())
                .start()
                .await;
            let server = match started {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("h2ws-soak: starting the devserver: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let pair = (
                server.tls_url().unwrap_or_default(),
                server.spki_sha256().unwrap_or_default().to_string(),
            );
            local = Some(server);
            pair
        }
    };
    let trust = match Trust::spki_sha256_base64(&spki) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("h2ws-soak: --spki: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = Client::new(ClientConfig::new(trust));
    let echo = format!("{url}/ws/echo");
    println!(
        "h2ws-soak: {} sockets × up to {} messages (16..{} bytes) per transport, {} s, {echo}",
        cli.sockets, cli.messages, cli.max_size, cli.duration
    );
    let figures: Vec<Arc<Figures>> = TRANSPORTS.iter().map(|_| Arc::default()).collect();
    let mut sockets = Vec::new();
    let mut open_failed = 0;
    for (ti, &t) in TRANSPORTS.iter().enumerate() {
        if !cli.transports.is_empty() && !cli.transports.iter().any(|n| *n == t.to_string()) {
            continue;
        }
        let h2 = if t == Transport::Rfc6455 {
            None
        } else {
            match client.connect_h2(&url).await {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("{t}: HTTP/2 connection: {e}");
                    open_failed += cli.sockets;
                    continue;
                }
            }
        };
        for i in 0..cli.sockets {
            let opened = match &h2 {
                Some(h2) => h2.open("/ws/echo", t, &OpenOptions::default()).await,
                None => client.connect(&echo, t, &OpenOptions::default()).await,
            };
            match opened {
                Ok(ws) => sockets.push((ws, format!("{t}-{i}"), ti)),
                Err(e) => {
                    eprintln!("{t}-{i}: open: {e}");
                    open_failed += 1;
                    figures[ti].errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    let start = Instant::now();
    let stop = start + Duration::from_secs_f64(cli.duration);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|(ws, id, ti)| {
            tokio::spawn(run_socket(ws, id, cli.clone(), figures[ti].clone(), stop))
        })
        .collect();
    for t in tasks {
        if t.await.is_err() {
            figures[0].errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    let took = start.elapsed();
    let mut anomalies = 0;
    let (mut msgs, mut bytes) = (0, 0);
    for (f, t) in figures.iter().zip(TRANSPORTS) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        anomalies += f.anomalies();
        msgs += load(&f.received);
        bytes += load(&f.bytes);
        println!(
            "{:<8} sent {} received {} bytes {} lost {} duplicated {} reordered {} corrupted {} errors {}  {:.0} msg/s, per socket {}..{}, longest wait for an echo {} ms",
            t.to_string(),
            load(&f.sent),
            load(&f.received),
            load(&f.bytes),
            load(&f.lost),
            load(&f.duplicated),
            load(&f.reordered),
            load(&f.corrupted),
            load(&f.errors),
            load(&f.received) as f64 / took.as_secs_f64(),
            load(&f.socket_min).min(load(&f.socket_max)),
            load(&f.socket_max),
            load(&f.longest_gap_ms),
        );
    }
    if let Some(server) = local {
        // Every socket closed: the server must count none open.
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.endpoint().stats().open_total() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let open = server.endpoint().stats().open_total();
        if open > 0 {
            println!("server still counts {open} open sockets");
            anomalies += open;
        }
        server.shutdown().await;
    }
    let msgs_per_transport_ok = figures.iter().zip(TRANSPORTS).all(|(f, t)| {
        f.received.load(Ordering::Relaxed) > 0
            || (!cli.transports.is_empty() && !cli.transports.iter().any(|n| *n == t.to_string()))
    });
    println!(
        "total: {msgs} messages, {bytes} bytes echoed in {:.2} s ({:.0} msg/s, {:.1} MiB/s each way)",
        took.as_secs_f64(),
        msgs as f64 / took.as_secs_f64(),
        bytes as f64 / took.as_secs_f64() / (1 << 20) as f64
    );
    if anomalies == 0 && open_failed == 0 && msgs_per_transport_ok {
        println!("OK: no message lost, duplicated, reordered or corrupted");
        ExitCode::SUCCESS
    } else {
        println!(
            "FAILED: {anomalies} anomalies, {open_failed} sockets not opened{}",
            if msgs_per_transport_ok {
                ""
            } else {
                ", a transport echoed nothing"
            }
        );
        ExitCode::FAILURE
    }
}
