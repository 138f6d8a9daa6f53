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
//! loadgen idle --url ws://127.0.0.1:P/ws/echo --transport rfc6455|stream --sockets N --pid PID --out F
//!     Opens N sockets and holds them; records the server's RSS growth per socket.
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

/// Idle sockets: the server's RSS growth per open socket.
async fn idle(args: &Args) -> Res {
    let url = args.req("url")?.to_string();
    let name = args.req("transport")?.to_string();
    let transport = transport(&name)?;
    let n: usize = args.num("sockets", 10_000)?;
    let pid: u32 = args.num("pid", 0)?;
    let per_conn: usize = args.num("per-connection", 250)?;
    let case = format!("{n} idle sockets");
    let result: Res<(f64, String)> = async {
        let (path, base) = {
            let (authority, path) = h2ws_bench::ws::split_url(&url)?;
            (path, format!("http://{authority}"))
        };
        let client = client();
        // Warm-up: the first sockets pay for lazily built server state, not per-socket cost.
        let warm = 50.min(n);
        let mut raw = Vec::new();
        let mut h2_conns = Vec::new();
        let mut h2_sockets = Vec::new();
        let mut opened = 0usize;
        let mut before = 0u64;
        let started = Instant::now();
        while opened < n {
            if opened == warm {
                tokio::time::sleep(Duration::from_millis(500)).await;
                before = rss(pid).map_err(|e| e.to_string())?.0;
            }
            if transport == Transport::Rfc6455 {
                raw.push(Conn::connect(&url).await?);
            } else {
                if h2_conns.len() * per_conn <= opened {
                    h2_conns.push(client.connect_h2(&base).await.map_err(|e| e.to_string())?);
                }
                let conn = h2_conns.last().ok_or("no connection")?;
                h2_sockets.push(
                    conn.open(&path, transport, &OpenOptions::default())
                        .await
                        .map_err(|e| format!("opening socket {opened}: {e}"))?,
                );
            }
            opened += 1;
        }
        let open_secs = started.elapsed().as_secs_f64();
        // Let the server settle (allocator, pending handshakes), then check it still answers.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss(pid).map_err(|e| e.to_string())?.0;
        if let Some(ws) = h2_sockets.last_mut() {
            ws.send_binary(b"still there?").await.map_err(|e| e.to_string())?;
            match tokio::time::timeout(Duration::from_secs(10), ws.recv()).await {
                Ok(Some(Message::Binary(_))) => {}
                other => return Err(format!("last socket did not echo: {other:?}")),
            }
        }
        if let Some(conn) = raw.last_mut() {
            conn.write(&masked_frame(0x2, true, b"still there?", [9, 8, 7, 6]))
                .await?;
            conn.read_message(&mut [0u8; 64]).await?;
        }
        let per = (after as f64 - before as f64) / (n - warm) as f64;
        let how = format!(
            "RSS {:.1} MiB -> {:.1} MiB for {} sockets (after {warm} warm-up sockets); opened in {open_secs:.1} s{}",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            n - warm,
            if transport == Transport::Rfc6455 {
                String::new()
            } else {
                format!(", {per_conn} sockets per HTTP/2 connection")
            }
        );
        drop(h2_sockets);
        drop(raw);
        Ok((per, how))
    }
    .await;
    let record = match result {
        Ok((per, how)) => Record::new("memory", &case, &name, "bytes/socket", Some(per)).note(how),
        Err(e) => Record::new("memory", &case, &name, "bytes/socket", None).note(e),
    };
    write(record, args)
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
