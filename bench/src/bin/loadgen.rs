//! The h2ws load generator: one client for every server benchmark of `cargo xtask bench`.
//! It runs on a single-threaded tokio runtime (one core, like uWebSockets' `load_test`), targets
//! loopback only, and every run is bounded in time (`--secs`) and count (`--max-msgs`).
//!
//! ```text
//! loadgen ws   --url ws://127.0.0.1:P/ws/echo --imp NAME --conns N --size BYTES --secs S --out F
//!     RFC 6455 echo, load_test shape: each connection sends one masked binary message, waits
//!     for its echo, repeats. Precomputed frames, header-only parsing: same cost for any server.
//! loadgen h2   --url http://127.0.0.1:P --transport native|rfc8441|stream --conns N
//!              --connections C --size BYTES --secs S --out F
//!     The same shape through the devserver's native client, N sockets on C HTTP/2 connections.
//! loadgen h2   --url https://127.0.0.1:P --h3-cert PEM --transport stream|post ...
//!     The same over HTTP/3 (QUIC on the TLS port), trusting the certificate(s) in PEM:
//!     N sockets on C HTTP/3 connections, recorded as `stream/h3`, `post/h3`.
//! loadgen idle --url ws://127.0.0.1:P/ws/echo --transport rfc6455|stream|post|native|rfc8441 --sockets N --pid PID
//!              [--sources K] [--per-connection C] [--probes P] [--echoes E] --out F
//!     Opens N sockets and holds them; records the server's RSS growth per socket, its RSS,
//!     and the p99 of E echo round trips over P of the sockets while the rest sit idle.
//! loadgen big  --url ws://127.0.0.1:P/ws/upstream --size BYTES --frame BYTES --pid PID
//!              [--backend LABEL] --out F
//!     Sends one message of BYTES (fragmented into FRAME-sized frames) through the gateway,
//!     reads its echo, and records the gateway's peak RSS growth.
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use h2ws::client::{
    Client, ClientConfig, H2Connection, H3Connection, Message, OpenOptions, Socket, Transport,
    Trust,
};
use h2ws_bench::ws::{masked_frame, Conn};
use h2ws_bench::{rss, size_label, Args, Record};

type Res<T = ()> = Result<T, String>;

fn main() -> std::process::ExitCode {
    let args = Args::from_env();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match args.positional.first().map(String::as_str) {
            Some("ws") => ws_echo(&args).await,
            Some("h2") => h2_echo(&args).await,
            Some("idle") => idle(&args).await,
            Some("big") => big(&args).await,
            _ => Err("usage: loadgen ws|h2|idle|big --help in the source header".into()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn out_path(args: &Args) -> Res<PathBuf> {
    Ok(PathBuf::from(args.req("out")?))
}

fn write(record: Record, args: &Args) -> Res {
    record
        .append(&out_path(args)?)
        .map_err(|e| format!("writing results: {e}"))
}

/// Shared state of one echo run: the message counter, the stop flag and the first error.
#[derive(Default)]
struct Run {
    done: AtomicU64,
    stop: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Run {
    fn fail(&self, e: String) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
        self.stop.store(true, Ordering::Relaxed);
    }

    fn should_stop(&self, max: u64) -> bool {
        self.stop.load(Ordering::Relaxed) || self.done.load(Ordering::Relaxed) >= max
    }

    /// Warm-up, then counts the echoes completed in `secs`: msgs/s, or the first error.
    async fn measure(&self, secs: f64, tasks: Vec<tokio::task::JoinHandle<()>>) -> Res<f64> {
        let warmup = Duration::from_secs_f64((secs / 5.0).clamp(0.2, 1.0));
        tokio::time::sleep(warmup).await;
        let c0 = self.done.load(Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let c1 = self.done.load(Ordering::Relaxed);
        let elapsed = t0.elapsed().as_secs_f64();
        self.stop.store(true, Ordering::Relaxed);
        for t in tasks {
            if tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .is_err()
            {
                self.fail("a connection did not finish its last round trip in 30 s".into());
            }
        }
        if let Some(e) = self.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        if c1 == c0 {
            return Err("no echo completed during the measurement".into());
        }
        Ok((c1 - c0) as f64 / elapsed)
    }
}

/// `N x SIZE`, the row label of the echo tables.
fn shape(conns: usize, size: usize) -> String {
    format!("{conns} x {}", size_label(size))
}

async fn ws_echo(args: &Args) -> Res {
    let url = args.req("url")?.to_string();
    let imp = args.req("imp")?.to_string();
    let bench = args.get("bench").unwrap_or("rfc6455").to_string();
    let conns: usize = args.num("conns", 10)?;
    let size: usize = args.num("size", 20)?;
    let secs: f64 = args.num("secs", 5.0)?;
    let max: u64 = args.num("max-msgs", 50_000_000)?;
    let result = async {
        let mut sockets = Vec::with_capacity(conns);
        for _ in 0..conns {
            sockets.push(Conn::connect(&url).await?);
        }
        let run = Arc::new(Run::default());
        let mut tasks = Vec::new();
        for (i, mut conn) in sockets.into_iter().enumerate() {
            let run = run.clone();
            let payload: Vec<u8> = (0..size).map(|j| (i + j) as u8).collect();
            let frame = masked_frame(0x2, true, &payload, (i as u32 ^ 0x5a5a_1234).to_be_bytes());
            tasks.push(tokio::spawn(async move {
                let mut scratch = vec![0u8; 64 * 1024];
                while !run.should_stop(max) {
                    let echoed = async {
                        conn.write(&frame).await?;
                        conn.read_message(&mut scratch).await
                    }
                    .await;
                    match echoed {
                        Ok(n) if n == size as u64 => {
                            run.done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(n) => return run.fail(format!("echo of {size} bytes came back as {n}")),
                        Err(e) => return run.fail(e),
                    }
                }
            }));
        }
        run.measure(secs, tasks).await
    }
    .await;
    let case = shape(conns, size);
    let record = match result {
        Ok(rate) => Record::new(&bench, &case, &imp, "msgs/s", Some(rate)),
        Err(e) => Record::new(&bench, &case, &imp, "msgs/s", None).note(e),
    };
    write(record, args)
}

fn client() -> Client {
    // Plain h2c / ws:// only: the trust setting is never consulted.
    client_trusting(Trust::SpkiSha256(Vec::new()))
}

fn client_trusting(trust: Trust) -> Client {
    let mut config = ClientConfig::new(trust);
    config.max_message_size = 256 << 20;
    Client::new(config)
}

/// A connection sockets are multiplexed on: HTTP/2 or HTTP/3.
enum Mux {
    H2(H2Connection),
    H3(H3Connection),
}

impl Mux {
    async fn open(&self, path: &str, transport: Transport) -> Result<Socket, h2ws::client::Error> {
        let options = OpenOptions::default();
        match self {
            Mux::H2(c) => c.open(path, transport, &options).await,
            Mux::H3(c) => c.open(path, transport, &options).await,
        }
    }
}

fn transport(name: &str) -> Res<Transport> {
    Ok(match name {
        "native" => Transport::Native,
        "rfc8441" => Transport::Rfc8441,
        "stream" => Transport::Stream,
        "post" => Transport::Post,
        "rfc6455" => Transport::Rfc6455,
        other => return Err(format!("unknown transport {other}")),
    })
}

async fn h2_echo(args: &Args) -> Res {
    let url = args.req("url")?.to_string();
    let path = args.get("path").unwrap_or("/ws/echo").to_string();
    // HTTP/3 when given the server's certificate (QUIC is always encrypted).
    let h3_cert = args.get("h3-cert").map(str::to_string);
    if h3_cert.is_none() {
        h2ws_bench::ws::split_url(&url)?;
    }
    let name = args.req("transport")?.to_string();
    let transport = transport(&name)?;
    let conns: usize = args.num("conns", 10)?;
    let connections: usize = args.num("connections", 1)?;
    let size: usize = args.num("size", 20)?;
    let secs: f64 = args.num("secs", 5.0)?;
    let max: u64 = args.num("max-msgs", 50_000_000)?;
    let label = if h3_cert.is_some() {
        format!("{name}/h3")
    } else {
        name.clone()
    };
    let result = async {
        let client = match &h3_cert {
            Some(file) => {
                let pem = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
                client_trusting(Trust::certificates_pem(&pem).map_err(|e| e.to_string())?)
            }
            None => client(),
        };
        let mut muxes = Vec::new();
        for _ in 0..connections.max(1) {
            let mux = if h3_cert.is_some() {
                Mux::H3(client.connect_h3(&url).await.map_err(|e| e.to_string())?)
            } else {
                Mux::H2(client.connect_h2(&url).await.map_err(|e| e.to_string())?)
            };
            muxes.push(mux);
        }
        let mut sockets = Vec::with_capacity(conns);
        for i in 0..conns {
            let ws = muxes[i % muxes.len()]
                .open(&path, transport)
                .await
                .map_err(|e| format!("opening {name} socket {i}: {e}"))?;
            sockets.push(ws);
        }
        let run = Arc::new(Run::default());
        let mut tasks = Vec::new();
        for (i, mut ws) in sockets.into_iter().enumerate() {
            let run = run.clone();
            let payload: Vec<u8> = (0..size).map(|j| (i + j) as u8).collect();
            tasks.push(tokio::spawn(async move {
                while !run.should_stop(max) {
                    if let Err(e) = ws.send_binary(&payload).await {
                        return run.fail(format!("send: {e}"));
                    }
                    match tokio::time::timeout(h2ws_bench::ws::IO_TIMEOUT, ws.recv()).await {
                        Ok(Some(Message::Binary(b))) if b.len() == size => {
                            run.done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Some(other)) => return run.fail(format!("unexpected echo {other:?}")),
                        Ok(None) => {
                            return run.fail(format!("socket closed: {:?}", ws.close_status()))
                        }
                        Err(_) => return run.fail("no echo within 20 s".into()),
                    }
                }
                let _ = ws.start_close(Some(h2ws::client::CloseCode::NORMAL), "");
            }));
        }
        run.measure(secs, tasks).await
    }
    .await;
    let case = shape(conns, size);
    let imp = format!("{label} ({connections} conn)");
    let record = match result {
        Ok(rate) => Record::new("http2", &case, &label, "msgs/s", Some(rate)).note(imp),
        Err(e) => Record::new("http2", &case, &label, "msgs/s", None).note(e),
    };
    write(record, args)
}

/// The soft `Max open files` limit of a process (`self` or a pid), from `/proc/PID/limits`.
fn open_files_limit(pid: &str) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

/// Percentile `q` (0..=1) of sorted samples.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A socket the idle run keeps to measure echo round trips on while the rest sit idle.
enum Probe {
    Raw(Conn),
    Client(Socket),
}

impl Probe {
    async fn echo(&mut self, payload: &[u8]) -> Res {
        match self {
            Probe::Raw(conn) => {
                conn.write(&masked_frame(0x2, true, payload, [9, 8, 7, 6]))
                    .await?;
                let n = conn.read_message(&mut [0u8; 256]).await?;
                if n != payload.len() as u64 {
                    return Err(format!("echo of {} bytes came back as {n}", payload.len()));
                }
            }
            Probe::Client(ws) => {
                ws.send_binary(payload).await.map_err(|e| e.to_string())?;
                match tokio::time::timeout(h2ws_bench::ws::IO_TIMEOUT, ws.recv()).await {
                    Ok(Some(Message::Binary(b))) if b.len() == payload.len() => {}
                    other => return Err(format!("no echo: {other:?}")),
                }
            }
        }
        Ok(())
    }
}

/// Idle sockets: the server's RSS growth per open socket, its RSS, and echo round trips
/// while they are held.
///
/// RFC 6455 sockets connect from `--sources` loopback addresses (127.0.0.1, .2, ...; by default
/// one per 20 000 sockets), each of which has its own ephemeral ports; every held socket
/// answers the server's Pings (a run longer than the server's ping interval stays open). Stream
/// sockets share HTTP/2 connections (`--per-connection`). The last `--probes` sockets are kept
/// aside: after the settle time `--echoes` round trips go over them in turn, one at a time.
/// The count is capped by this process's and the server's open-files limits (the note says
/// so); a socket that cannot be opened ends the opening, and what was opened is measured.
async fn idle(args: &Args) -> Res {
    let url = args.req("url")?.to_string();
    let name = args.req("transport")?.to_string();
    let transport = transport(&name)?;
    let wanted: usize = args.num("sockets", 10_000)?;
    let pid: u32 = args.num("pid", 0)?;
    let per_conn: usize = args.num("per-connection", 250)?.max(1);
    let sources: usize = args
        .num("sources", wanted.div_ceil(20_000).max(1))?
        .clamp(1, 250);
    let probes: usize = args.num("probes", 10)?.max(1);
    let echoes: usize = args.num("echoes", 1000)?.max(1);
    let case = format!("{wanted} idle sockets");
    // A descriptor per socket on RFC 6455, per HTTP/2 connection on stream; room is left for
    // what else each process has open (listeners, files).
    let sockets_per_fd = if transport == Transport::Rfc6455 {
        1
    } else {
        per_conn
    };
    let mut limited = Vec::new();
    let mut n = wanted;
    for (who, pid) in [
        ("this process", "self".to_string()),
        ("the server", pid.to_string()),
    ] {
        let Some(limit) = open_files_limit(&pid) else {
            continue;
        };
        let fits = (limit.saturating_sub(200) as usize).saturating_mul(sockets_per_fd);
        if fits < n {
            limited.push(format!(
                "{who} may open {limit} files (`ulimit -n`; past the hard limit only root with \
                 CAP_SYS_RESOURCE can raise it)"
            ));
            n = fits;
        }
    }
    struct Notes {
        how: String,
        rss: String,
        p99: String,
    }
    let result: Res<(f64, u64, Notes, Vec<Duration>)> = async {
        let (path, base) = {
            let (authority, path) = h2ws_bench::ws::split_url(&url)?;
            (path, format!("http://{authority}"))
        };
        let client = client();
        // Warm-up: the first sockets pay for lazily built server state, not per-socket cost.
        let warm = 50.min(n);
        let probes = probes.min(n.saturating_sub(warm)).max(1);
        let mut held = Vec::new();
        let mut answering = 0usize;
        let mut h2_conns = Vec::new();
        let mut h2_sockets = Vec::new();
        let mut probe_sockets = Vec::new();
        let mut opened = 0usize;
        let mut before = 0u64;
        let mut stopped = None;
        let started = Instant::now();
        while opened < n {
            if opened == warm {
                tokio::time::sleep(Duration::from_millis(500)).await;
                before = rss(pid).map_err(|e| e.to_string())?.0;
            }
            let probe = opened + probes >= n;
            let result: Res = async {
                if transport == Transport::Rfc6455 {
                    let from = std::net::IpAddr::from([127, 0, 0, 1 + (opened % sources) as u8]);
                    let conn = Conn::connect_from(&url, Some(from), 1024).await?;
                    if probe {
                        probe_sockets.push(Probe::Raw(conn));
                    } else {
                        held.push(tokio::spawn(conn.answer_pings()));
                        answering += 1;
                    }
                } else {
                    if h2_conns.len() * per_conn <= opened {
                        h2_conns.push(client.connect_h2(&base).await.map_err(|e| e.to_string())?);
                    }
                    let conn = h2_conns.last().ok_or("no connection")?;
                    let ws = conn
                        .open(&path, transport, &OpenOptions::default())
                        .await
                        .map_err(|e| e.to_string())?;
                    if probe {
                        probe_sockets.push(Probe::Client(ws));
                    } else {
                        h2_sockets.push(ws);
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                if opened <= warm {
                    return Err(format!("opening socket {opened}: {e}"));
                }
                stopped = Some(format!("opening socket {} failed: {e}", opened + 1));
                break;
            }
            opened += 1;
        }
        let open_secs = started.elapsed().as_secs_f64();
        // Let the server settle (allocator, pending handshakes), then measure.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss(pid).map_err(|e| e.to_string())?.0;
        let still_open = held.iter().filter(|t| !t.is_finished()).count();
        if transport == Transport::Rfc6455 && still_open < answering {
            return Err(format!(
                "the server closed {} of {answering} idle sockets",
                answering - still_open
            ));
        }
        // Round trips one at a time over the probe sockets, the rest idle.
        let payload = [7u8; 16];
        let mut rtts = Vec::with_capacity(echoes);
        let probe_count = probe_sockets.len();
        for i in 0..echoes {
            // None when the opening stopped before the probes: no round trips then.
            let Some(probe) = probe_sockets.get_mut(i % probe_count.max(1)) else {
                break;
            };
            let t0 = Instant::now();
            probe
                .echo(&payload)
                .await
                .map_err(|e| format!("echo {i}: {e}"))?;
            rtts.push(t0.elapsed());
        }
        rtts.sort();
        let measured = opened.saturating_sub(warm).max(1);
        let per = (after as f64 - before as f64) / measured as f64;
        let mut how = format!(
            "RSS {:.1} MiB -> {:.1} MiB for {measured} sockets (after {warm} warm-up sockets); \
             opened in {open_secs:.1} s{}; echo p50 {:.2} ms, p99 {:.2} ms ({echoes} round trips \
             over {} of the sockets, the rest idle)",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            if transport == Transport::Rfc6455 {
                match sources {
                    1 => " from 127.0.0.1".to_string(),
                    k => format!(" from {k} source addresses 127.0.0.1-127.0.0.{k}"),
                }
            } else {
                format!(", {per_conn} sockets per HTTP/2 connection")
            },
            percentile(&rtts, 0.5).as_secs_f64() * 1e3,
            percentile(&rtts, 0.99).as_secs_f64() * 1e3,
            probe_sockets.len(),
        );
        // The report reads a leading "only N of M sockets opened" as a count not reached.
        let short = if opened < wanted {
            let why = stopped
                .into_iter()
                .chain(limited.iter().cloned())
                .collect::<Vec<_>>()
                .join("; ");
            let only = format!("only {opened} of {wanted} sockets opened ({why})");
            how = format!("{only}; {how}");
            format!("{only}; ")
        } else {
            String::new()
        };
        let notes = Notes {
            rss: format!("{short}the whole process with {opened} sockets open"),
            p99: format!(
                "{short}p50 {:.2} ms; {} round trips one at a time over {} sockets while \
                 {opened} are open",
                percentile(&rtts, 0.5).as_secs_f64() * 1e3,
                rtts.len(),
                probe_sockets.len()
            ),
            how,
        };
        for t in &held {
            t.abort();
        }
        drop(h2_sockets);
        drop(probe_sockets);
        Ok((per, after, notes, rtts))
    }
    .await;
    let records = match result {
        Ok((per, rss_after, notes, rtts)) => {
            let p99 = (!rtts.is_empty()).then(|| percentile(&rtts, 0.99).as_secs_f64() * 1e3);
            let rss_case = format!("{case}: server RSS");
            let p99_case = format!("{case}: echo p99");
            vec![
                Record::new("memory", &case, &name, "bytes/socket", Some(per)).note(notes.how),
                Record::new(
                    "memory",
                    &rss_case,
                    &name,
                    "RSS bytes",
                    Some(rss_after as f64),
                )
                .note(notes.rss),
                Record::new("memory", &p99_case, &name, "ms", p99).note(if p99.is_some() {
                    notes.p99
                } else {
                    format!("no probe socket left to echo on: {}", notes.p99)
                }),
            ]
        }
        Err(e) => vec![Record::new("memory", &case, &name, "bytes/socket", None).note(e)],
    };
    for r in records {
        write(r, args)?;
    }
    Ok(())
}

/// One huge message through the gateway while sampling the gateway's RSS.
async fn big(args: &Args) -> Res {
    let url = args.req("url")?.to_string();
    let size: usize = args.num("size", 100 << 20)?;
    let frame_size: usize = args.num("frame", 1 << 20)?.max(1);
    let pid: u32 = args.num("pid", 0)?;
    let backend = args.get("backend").unwrap_or("an RFC 6455 echo");
    let case = format!(
        "one {} message through the gateway, backend: {backend}",
        size_label(size)
    );
    // Warm-up: one socket through the gateway and back with a small fragmented message, so
    // `before` already holds what any served socket leaves behind once (worker threads' malloc
    // arenas, lazily built state); the growth measured then is what the big message costs.
    {
        let mut warm = Conn::connect(&url).await?;
        let piece = vec![7u8; 16 << 10];
        for i in 0..4 {
            let opcode = if i == 0 { 0x2 } else { 0x0 };
            warm.write(&masked_frame(opcode, i == 3, &piece, [1, 2, 3, 4]))
                .await?;
        }
        let mut scratch = vec![0u8; 64 << 10];
        let n = tokio::time::timeout(Duration::from_secs(10), warm.read_message(&mut scratch))
            .await
            .map_err(|_| "warm-up echo took over 10 s".to_string())??;
        if n != 4 * piece.len() as u64 {
            return Err(format!("warm-up echo came back with {n} bytes"));
        }
        drop(warm);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (before, _) = rss(pid).map_err(|e| e.to_string())?;
    let peak = Arc::new(AtomicU64::new(before));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Ok((now, _)) = rss(pid) {
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let started = Instant::now();
    let result: Res<u64> = async {
        let conn = Conn::connect(&url).await?;
        let Conn { reader, mut writer } = conn;
        let chunk: Vec<u8> = (0..frame_size).map(|i| i as u8).collect();
        let key = [0x11, 0x22, 0x33, 0x44];
        let send = async move {
            use tokio::io::AsyncWriteExt;
            let mut sent = 0usize;
            while sent < size {
                let n = frame_size.min(size - sent);
                let opcode = if sent == 0 { 0x2 } else { 0x0 };
                let frame = masked_frame(opcode, sent + n == size, &chunk[..n], key);
                tokio::time::timeout(Duration::from_secs(60), writer.write_all(&frame))
                    .await
                    .map_err(|_| format!("gateway took no data for 60 s after {sent} bytes"))?
                    .map_err(|e| format!("write after {sent} bytes: {e}"))?;
                sent += n;
            }
            Ok::<_, String>(writer)
        };
        let recv = async move {
            let mut conn = ReadOnly { reader };
            conn.read_message().await
        };
        let (sent, got) = tokio::join!(send, recv);
        let _writer = sent?;
        got
    }
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let (_, hwm) = rss(pid).map_err(|e| e.to_string())?;
    let peak = peak.load(Ordering::Relaxed).max(hwm);
    let growth = peak.saturating_sub(before);
    let record = match result {
        Ok(n) if n == size as u64 => {
            Record::new("memory", &case, "gateway", "bytes", Some(growth as f64)).note(format!(
            "RSS before {:.1} MiB (after one warm-up socket), peak {:.1} MiB; {} frames of {} up, echo back in {elapsed:.1} s",
            before as f64 / 1048576.0,
            peak as f64 / 1048576.0,
            size.div_ceil(frame_size),
            size_label(frame_size)
        ))
        }
        Ok(n) => Record::new("memory", &case, "gateway", "bytes", None)
            .note(format!("echo came back with {n} of {size} bytes")),
        Err(e) => Record::new("memory", &case, "gateway", "bytes", None).note(format!(
            "did not pass: {e} (after {elapsed:.1} s; gateway RSS grew {:.1} MiB meanwhile)",
            growth as f64 / 1048576.0
        )),
    };
    write(record, args)
}

/// The read half of a [`Conn`], for reading while the write half is busy elsewhere.
struct ReadOnly {
    reader: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
}

impl ReadOnly {
    async fn read_message(&mut self) -> Res<u64> {
        use tokio::io::AsyncReadExt;
        let mut scratch = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let mut head = [0u8; 2];
            self.read(&mut head).await?;
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.read(&mut b).await?;
                    u16::from_be_bytes(b) as u64
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.read(&mut b).await?;
                    u64::from_be_bytes(b)
                }
                n => n as u64,
            };
            let opcode = head[0] & 0x0f;
            let mut left = len;
            let mut first = Vec::new();
            while left > 0 {
                let n = (left as usize).min(scratch.len());
                tokio::time::timeout(
                    Duration::from_secs(60),
                    self.reader.read_exact(&mut scratch[..n]),
                )
                .await
                .map_err(|_| format!("no data for 60 s after {total} bytes of the echo"))?
                .map_err(|e| format!("read after {total} bytes of the echo: {e}"))?;
                if opcode == 0x8 && first.is_empty() {
                    first.extend_from_slice(&scratch[..n.min(125)]);
                }
                left -= n as u64;
            }
            match opcode {
                0x8 => {
                    let code = first
                        .get(..2)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]))
                        .unwrap_or(1005);
                    return Err(format!(
                        "gateway closed with {code} {:?} after {total} bytes of the echo",
                        String::from_utf8_lossy(first.get(2..).unwrap_or_default())
                    ));
                }
                0x9 | 0xa => {}
                _ => {
                    total += len;
                    if head[0] & 0x80 != 0 {
                        return Ok(total);
                    }
                }
            }
        }
    }

    async fn read(&mut self, buf: &mut [u8]) -> Res {
        use tokio::io::AsyncReadExt;
        tokio::time::timeout(Duration::from_secs(60), self.reader.read_exact(buf))
            .await
            .map_err(|_| "no data from the gateway for 60 s".to_string())?
            .map(drop)
            .map_err(|e| format!("read: {e}"))
    }
}
