//! `cargo xtask bench [--smoke] [--only STEP,...]`: every benchmark of issue 8 in one run,
//! written to `BENCHMARKS.md` (smoke mode: tiny counts, written to
//! `target/bench/BENCHMARKS-smoke.md` so the committed figures are never replaced by smoke
//! figures). `--only` runs some steps (package, codec, echo, http2, memory, browser; e.g.
//! `--only echo,http2` for the echo tables and their ratios) without installing anything,
//! written to `target/bench/BENCHMARKS-partial.md`.
//!
//! `H2WS_BENCH_NOTE="..."` adds a note to the machine table (e.g. that the machine was shared).
//!
//! Order: install what is missing (h2load, Chromium, wasm tools, npm packages) → release builds →
//! package sizes (`wasm/build.sh` with and without deflate) → codec (criterion) → RFC 6455 echo
//! (h2ws vs fastwebsockets vs tokio-tungstenite, interleaved per shape) → HTTP/2 echo (native,
//! rfc8441, stream; stream and post over HTTP/3) + h2load → memory (10 000 idle sockets on
//! every transport, 100 000 on rfc6455 and stream, each with the server's RSS and an echo p99
//! under them; 100 MiB through the gateway) →
//! browser → report. Every figure lands in `target/bench/results.jsonl`; `report` renders it.
//! Every server binds 127.0.0.1:0 and is killed when its step ends; every step has a time limit.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::run::{output, probe, shell_quote, Step};
use crate::{setup, Result};

/// Counts for one mode.
struct Plan {
    smoke: bool,
    /// Seconds each echo measurement runs (after its warm-up).
    echo_secs: f64,
    /// Interleaved rounds of every echo measurement; the report shows the median.
    rounds: usize,
    /// (connections, message size) of the echo benchmarks (uWebSockets load_test shapes).
    shapes: &'static [(usize, usize)],
    /// Idle-socket runs: a count and the transports measured at it.
    idle_sockets: &'static [(usize, &'static [&'static str])],
    big_message: usize,
    h2load_requests: usize,
}

const SHAPES: &[(usize, usize)] = &[(100, 20), (10, 1024), (10, 16 * 1024), (200, 16 * 1024)];

/// Every transport the idle-socket runs can open (native client; `post` and the HTTP/2
/// transports on h2c connections of 250 sockets).
const ALL_TRANSPORTS: &[&str] = &["rfc6455", "stream", "post", "native", "rfc8441"];

/// The open-files limit every benchmark process asks for (100 000 idle sockets are as many
/// descriptors in the server and in the load generator); where it is not allowed (not root,
/// a lower hard limit), the hard limit is used and the idle runs measure what fits.
const NOFILE: u32 = 262_144;

impl Plan {
    fn new(smoke: bool) -> Self {
        if smoke {
            Plan {
                smoke,
                echo_secs: 0.3,
                rounds: 1,
                shapes: SHAPES,
                idle_sockets: &[(300, ALL_TRANSPORTS)],
                big_message: 4 << 20,
                h2load_requests: 2_000,
            }
        } else {
            Plan {
                smoke,
                echo_secs: 1.5,
                rounds: 3,
                shapes: SHAPES,
                // Every transport at 10 000; at 100 000 the two shapes (RFC 6455 from
                // several source addresses, stream multiplexed on HTTP/2 connections).
                idle_sockets: &[(10_000, ALL_TRANSPORTS), (100_000, &["rfc6455", "stream"])],
                big_message: 100 << 20,
                h2load_requests: 200_000,
            }
        }
    }
}

/// The steps `--only` can pick.
const STEPS: &[&str] = &["package", "codec", "echo", "http2", "memory", "browser"];

pub fn run(args: &[String]) -> Result {
    let mut smoke = false;
    let mut only: Option<Vec<String>> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => smoke = true,
            "--only" => {
                let list = it
                    .next()
                    .ok_or("bench: --only needs a list, e.g. echo,http2")?;
                let steps: Vec<String> = list.split(',').map(str::to_string).collect();
                if let Some(bad) = steps.iter().find(|s| !STEPS.contains(&s.as_str())) {
                    return Err(format!(
                        "bench: unknown step {bad} (steps: {})",
                        STEPS.join(",")
                    ));
                }
                only = Some(steps);
            }
            other => {
                return Err(format!(
                    "bench: unknown argument {other} (--smoke, --only STEP,...)"
                ))
            }
        }
    }
    let wanted = |step: &str| only.as_ref().is_none_or(|o| o.iter().any(|s| s == step));
    let plan = Plan::new(smoke);
    let started = Instant::now();
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let root = crate::root();
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let results = dir.join("results.jsonl");
    let _ = std::fs::remove_file(&results);
    let mut meta = vec![
        (
            "date",
            output("date -u '+%Y-%m-%d %H:%M UTC'").unwrap_or_default(),
        ),
        (
            "load average at start (1/5/15 min)",
            std::fs::read_to_string("/proc/loadavg")
                .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        ),
        (
            "git commit",
            output("git rev-parse --short HEAD").unwrap_or_default(),
        ),
        ("rustc", output("rustc --version").unwrap_or_default()),
    ];
    // What the figures cannot show by themselves (e.g. "the machine was shared").
    if let Ok(note) = std::env::var("H2WS_BENCH_NOTE") {
        meta.push(("note", note));
    }

    if let Some(only) = &only {
        meta.push(("steps run", format!("only {} (`--only`)", only.join(","))));
    }
    if only.is_none() {
        install()?;
    }
    meta.push((
        "chromium",
        output("/usr/bin/chromium --version").unwrap_or_default(),
    ));
    meta.push(("h2load", output("h2load --version").unwrap_or_default()));
    Step::new(
        "cargo build --release -p h2ws-devserver -p h2ws-bench --bins --benches",
        2400,
    )
    .run()?;

    // Each benchmark records its own failures as results; a step that cannot run at all is
    // noted here and the run goes on, so one broken piece does not hide the others.
    let mut failures = Vec::new();
    let mut step = |name: &str, r: Result| {
        if let Err(e) = r {
            eprintln!("xtask bench: {name}: {e}");
            failures.push(format!("{name}: {e}"));
        }
    };
    if wanted("package") {
        step("package size", package(&plan, &results));
    }
    if wanted("codec") {
        step("codec", codec(&plan));
    }
    if wanted("echo") {
        step("rfc6455 echo", echo(&plan, &results));
    }
    if wanted("http2") {
        step("http2 echo", http2(&plan, &results));
    }
    if wanted("memory") {
        step("memory", memory(&plan, &results));
    }
    if wanted("browser") {
        step("browser", browser(&plan, &results));
    }

    let elapsed = started.elapsed().as_secs();
    meta.push((
        "run time",
        format!(
            "{} min {} s (`cargo xtask bench{}`)",
            elapsed / 60,
            elapsed % 60,
            if smoke { " --smoke" } else { "" }
        ),
    ));
    meta.push((
        "load average at end",
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    ));
    if !failures.is_empty() {
        meta.push(("steps that failed", failures.join("; ")));
    }
    let meta_path = dir.join("meta.txt");
    let meta_text: String = meta
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", v.replace('\n', " ").replace('|', "/")))
        .collect();
    std::fs::write(&meta_path, meta_text).map_err(|e| e.to_string())?;
    // A partial run never replaces the committed BENCHMARKS.md either.
    let out = if smoke {
        dir.join("BENCHMARKS-smoke.md")
    } else if only.is_some() {
        dir.join("BENCHMARKS-partial.md")
    } else {
        root.join("BENCHMARKS.md")
    };
    let script = format!(
        "target/release/report --results {} --criterion target/criterion --since {since} --out {} --mode {} --meta {}",
        q(&results),
        q(&out),
        if smoke { "smoke" } else { "full" },
        q(&meta_path)
    );
    Step::new(&script, 60).run()?;
    println!(
        "\nxtask bench: wrote {} in {} min {} s",
        out.display(),
        elapsed / 60,
        elapsed % 60
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "some benchmark steps failed: {}",
            failures.join("; ")
        ))
    }
}

fn q(p: &Path) -> String {
    shell_quote(&p.to_string_lossy())
}

/// Installs what the benchmarks need, each piece only when missing.
fn install() -> Result {
    if !probe("command -v h2load") {
        if output("id -u").as_deref() != Some("0") {
            return Err("h2load is needed: sudo apt-get install -y nghttp2-client".into());
        }
        Step::new(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client",
            900,
        )
        .run()?;
    }
    setup::apt_packages()?; // the three browser engines, their drivers, xvfb
    setup::wasm_target()?;
    setup::wasm_pack()?;
    setup::wasm_bindgen_cli()?;
    setup::node()?;
    setup::binaryen()?; // wasm-opt and esbuild for wasm/build.sh
    if !crate::root()
        .join("tests/node_modules/playwright-core/package.json")
        .exists()
    {
        setup::npm_packages()?;
    }
    Ok(())
}

/// A child process started for a benchmark, killed when dropped.
struct Proc {
    child: Child,
    /// The first `listening ws://` / `http://` / `https://` URLs it printed.
    urls: Vec<String>,
}

impl Proc {
    /// Starts `sh -c 'ulimit -n N; exec BIN ARGS'` (the pid stays the binary's) and waits up to
    /// 30 s for `want` `listening` lines.
    fn start(bin: &str, args: &[&str], want: usize) -> Result<Proc> {
        let cmd = std::iter::once(bin)
            .chain(args.iter().copied())
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {NOFILE} 2>/dev/null || ulimit -n $(ulimit -Hn); exec {cmd}"
            ))
            .current_dir(crate::root())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        let name = Path::new(bin)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                println!("[{name}] {line}");
                let _ = tx.send(line);
            }
        });
        let mut proc = Proc {
            child,
            urls: Vec::new(),
        };
        while proc.urls.len() < want {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| format!("{bin} printed no `listening` line within 30 s"))?;
            if let Some(url) = line.strip_prefix("listening ") {
                proc.urls.push(url.trim().trim_end_matches('/').to_string());
            }
        }
        Ok(proc)
    }

    fn url(&self, scheme: &str) -> Result<String> {
        self.urls
            .iter()
            .find(|u| u.starts_with(scheme))
            .cloned()
            .ok_or_else(|| format!("no {scheme} listener in {:?}", self.urls))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const DEVSERVER: &str = "target/release/h2ws-devserver";
const LOADGEN: &str = "target/release/loadgen";

/// The release devserver on ephemeral ports (HTTPS + plain), its own certificate directory.
fn devserver(extra: &[&str]) -> Result<Proc> {
    let cert_dir = crate::root().join("target/bench/cert");
    let cert_dir = cert_dir.to_string_lossy().into_owned();
    let mut args = vec![
        "--addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--cert-dir",
        cert_dir.as_str(),
    ];
    args.extend_from_slice(extra);
    Proc::start(DEVSERVER, &args, 2)
}

fn loadgen(args: &str, results: &Path, timeout: u64) -> Result {
    let script = format!(
        "ulimit -n {NOFILE} 2>/dev/null || ulimit -n $(ulimit -Hn); exec {LOADGEN} {args} --out {}",
        q(results)
    );
    Step::new(&script, timeout).run().map(drop)
}

fn codec(plan: &Plan) -> Result {
    let step = Step::new(
        "cargo bench --profile release -p h2ws-devserver -p h2ws-bench --bench codec",
        1200,
    );
    let step = if plan.smoke {
        step.env("H2WS_BENCH_SMOKE", "1")
    } else {
        step
    };
    step.run().map(drop)
}

fn echo(plan: &Plan, results: &Path) -> Result {
    let h2ws = devserver(&[])?;
    let fast = Proc::start("target/release/echo-fastwebsockets", &[], 1)?;
    let tung = Proc::start("target/release/echo-tungstenite", &[], 1)?;
    let servers = [
        (
            "h2ws",
            format!(
                "{}/ws/echo",
                h2ws.url("http://")?.replacen("http://", "ws://", 1)
            ),
        ),
        ("fastwebsockets", format!("{}/", fast.url("ws://")?)),
        ("tokio-tungstenite", format!("{}/", tung.url("ws://")?)),
    ];
    // Interleaved per shape and round, so drifting background load hits every server alike.
    for &(conns, size) in plan.shapes {
        for (imp, url) in servers.iter().cycle().take(servers.len() * plan.rounds) {
            loadgen(
                &format!(
                    "ws --url {url} --imp {imp} --conns {conns} --size {size} --secs {}",
                    plan.echo_secs
                ),
                results,
                120,
            )?;
        }
    }
    Ok(())
}

fn http2(plan: &Plan, results: &Path) -> Result {
    let server = devserver(&[])?;
    let http = server.url("http://")?;
    let https = server.url("https://")?;
    // The fetch transports also over HTTP/3 (QUIC on the TLS port, the devserver's own
    // certificate trusted), in the same rounds so drifting load hits both alike.
    let pem = crate::root().join("target/bench/cert/localhost.pem");
    let h3 = format!("--url {https} --h3-cert {}", q(&pem));
    let h2c = format!("--url {http}");
    // `rfc8441/node`: the independent client (Node's `http2`, tests/bench/h2echo.mjs).
    let runs = [
        ("native", &h2c),
        ("rfc8441", &h2c),
        ("stream", &h2c),
        ("rfc8441/node", &h2c),
        ("stream", &h3),
        ("post", &h3),
    ];
    for &(conns, size) in plan.shapes {
        let connections = (conns / 50).max(1);
        for (transport, target) in runs.iter().cycle().take(runs.len() * plan.rounds) {
            if *transport == "rfc8441/node" {
                let script = format!(
                    "ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec node tests/bench/h2echo.mjs \
                     --url {} --conns {conns} --connections {connections} --size {size} --secs {} --out {}",
                    shell_quote(&format!("{http}/ws/echo")),
                    plan.echo_secs,
                    q(results)
                );
                Step::new(&script, 120).run()?;
                continue;
            }
            loadgen(
                &format!(
                    "h2 {target} --path /ws/echo --transport {transport} --conns {conns} \
                     --connections {connections} --size {size} --secs {}",
                    plan.echo_secs
                ),
                results,
                120,
            )?;
        }
    }
    // The ceiling: plain HTTP/2 requests on the same server (h2c and TLS).
    for (label, base) in [("h2c", &http), ("TLS", &https)] {
        let (c, m) = (4, 64);
        let case = format!(
            "{label}: GET /.h2ws/stats, {} requests, {c} connections × {m} streams, 1 thread",
            plan.h2load_requests
        );
        let script = format!(
            "h2load -n {} -c {c} -m {m} -t 1 {base}/.h2ws/stats",
            plan.h2load_requests
        );
        let record = match output(&format!("timeout 120 {script} 2>&1")) {
            Some(out) => match parse_h2load(&out) {
                Some((rps, ok, total)) if ok == total => {
                    Record::value("h2load", &case, "devserver", "req/s", rps)
                        .note(&format!("`{script}`; {ok}/{total} succeeded"))
                }
                Some((_, ok, total)) => Record::failed(
                    "h2load",
                    &case,
                    "devserver",
                    "req/s",
                    &format!("only {ok}/{total} requests succeeded"),
                ),
                None => Record::failed("h2load", &case, "devserver", "req/s", "no summary line"),
            },
            None => Record::failed("h2load", &case, "devserver", "req/s", "h2load failed"),
        };
        record.append(results)?;
    }
    Ok(())
}

/// `finished in 1.23s, 12345.67 req/s, ...` and `requests: N total, N started, N done, N succeeded`.
fn parse_h2load(out: &str) -> Option<(f64, u64, u64)> {
    let rps = out.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("finished in ")?;
        let (_, after) = rest.split_once(", ")?;
        after.split_whitespace().next()?.parse::<f64>().ok()
    })?;
    let req = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("requests: "))?;
    let num = |word: &str| -> Option<u64> {
        req.split(", ")
            .find(|p| p.ends_with(word))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((rps, num("succeeded")?, num("total")?))
}

fn memory(plan: &Plan, results: &Path) -> Result {
    for &(sockets, transports) in plan.idle_sockets {
        let max_sockets = (sockets * 2).to_string();
        for transport in transports {
            // A fresh server per run: its RSS baseline holds nothing from earlier runs.
            let server = devserver(&["--max-sockets", &max_sockets])?;
            let url = format!(
                "{}/ws/echo",
                server.url("http://")?.replacen("http://", "ws://", 1)
            );
            // RFC 6455 from one loopback source address per 20 000 sockets (each has its own
            // ephemeral ports); the load generator caps the count at the open-files limits
            // and says so in the result.
            loadgen(
                &format!(
                    "idle --url {url} --transport {transport} --sockets {sockets} --sources {} \
                     --pid {}",
                    sockets.div_ceil(20_000),
                    server.pid()
                ),
                results,
                // Opening runs at a few thousand sockets a second; bounded either way.
                (120 + sockets / 100) as u64,
            )?;
        }
    }
    // The gateway: to a second devserver's /ws/echo (which echoes a message as one frame), and
    // to a frame-by-frame echo (fastwebsockets without message assembly), the latter in rounds
    // (a fresh gateway each) because whether it passes depends on timing.
    let max_message = (plan.big_message * 2).to_string();
    let devserver_backend = devserver(&["--max-message", &max_message])?;
    let frame_backend = Proc::start("target/release/echo-fastwebsockets", &["--frames", "1"], 1)?;
    let runs = [
        (
            "devserver /ws/echo",
            format!(
                "{}/ws/echo",
                devserver_backend
                    .url("http://")?
                    .replacen("http://", "ws://", 1)
            ),
        ),
        (
            "frame-by-frame echo",
            format!("{}/", frame_backend.url("ws://")?),
        ),
    ];
    let frame_rounds = std::iter::repeat_n(&runs[1], plan.rounds.saturating_sub(1));
    for (label, upstream) in runs.iter().chain(frame_rounds) {
        let gateway = devserver(&["--max-message", &max_message, "--upstream", upstream])?;
        let url = format!(
            "{}/ws/upstream",
            gateway.url("http://")?.replacen("http://", "ws://", 1)
        );
        loadgen(
            &format!(
                "big --url {url} --size {} --frame {} --pid {} --backend {}",
                plan.big_message,
                1 << 20,
                gateway.pid(),
                shell_quote(label)
            ),
            results,
            600,
        )?;
    }
    Ok(())
}

fn browser(plan: &Plan, results: &Path) -> Result {
    let root = crate::root();
    let pkg = root.join("target/bench/pkg");
    let script = format!(
        "node tests/bench/browser.mjs --out {}{}",
        q(results),
        if plan.smoke { " --smoke" } else { "" }
    );
    let pkg = if pkg.join("index.js").exists() {
        pkg
    } else {
        root.join("wasm/pkg")
    };
    Step::new(&script, 900)
        .env("H2WS_DEVSERVER", root.join(DEVSERVER).to_string_lossy())
        .env("H2WS_PKG", pkg.to_string_lossy())
        .run()
        .map(drop)
}

/// Builds the npm package with and without deflate (deflate first, so `wasm/pkg` ends as the
/// default build) and records what a page downloads, raw and gzip -9. Each build is copied to
/// `target/bench/pkg-*`; the default one also to `target/bench/pkg` for the browser benchmark.
///
/// Smoke mode measures the `wasm/pkg` already there (when there is one) instead of building
/// twice: it only shows that the measuring works.
fn package(plan: &Plan, results: &Path) -> Result {
    let root = crate::root();
    let mut first_error = None;
    let reuse = plan.smoke && root.join("wasm/pkg/index.js").exists();
    let builds: &[(&str, &str, &str)] = if reuse {
        &[("wasm/pkg as found (smoke mode: not rebuilt)", "", "pkg")]
    } else {
        &[
            (
                "with deflate (H2WS_FEATURES=deflate)",
                "deflate",
                "pkg-deflate",
            ),
            ("default (no deflate)", "", "pkg"),
        ]
    };
    for &(label, features, dir) in builds {
        let built = if reuse {
            Ok(())
        } else {
            Step::new("bash wasm/build.sh", 1800)
                .env("H2WS_FEATURES", features)
                .run()
                .map(drop)
        };
        let dest = root.join("target/bench").join(dir);
        let copied = built.and_then(|_| {
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
            for entry in std::fs::read_dir(root.join("wasm/pkg")).map_err(|e| e.to_string())? {
                let entry = entry.map_err(|e| e.to_string())?;
                std::fs::copy(entry.path(), dest.join(entry.file_name()))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        if let Err(e) = copied {
            Record::failed("package", label, "total gzip", "bytes", &e).append(results)?;
            first_error.get_or_insert(e);
            continue;
        }
        let size = |f: &str| -> Result<(u64, u64)> {
            let p = dest.join(f);
            let raw = std::fs::metadata(&p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .len();
            let gz = output(&format!("gzip -9 -c {} | wc -c", q(&p)))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| format!("gzip of {}", p.display()))?;
            Ok((raw, gz))
        };
        let wasm = size("h2ws_wasm_bg.wasm")?;
        let glue = size("h2ws_wasm.js")?;
        let index = size("index.js")?;
        let js = (glue.0 + index.0, glue.1 + index.1);
        for (imp, v) in [
            ("wasm raw", wasm.0),
            ("wasm gzip", wasm.1),
            ("js raw", js.0),
            ("js gzip", js.1),
            ("total raw", wasm.0 + js.0),
            ("total gzip", wasm.1 + js.1),
        ] {
            Record::value("package", label, imp, "bytes", v as f64).append(results)?;
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// One line of `results.jsonl`, written by hand (xtask has no dependencies); the field names
/// are `h2ws_bench::Record`'s.
struct Record {
    line: String,
}

impl Record {
    fn value(bench: &str, case: &str, imp: &str, metric: &str, value: f64) -> Self {
        Record {
            line: format!(
                "{{\"bench\":{},\"case\":{},\"imp\":{},\"metric\":{},\"value\":{value}",
                json(bench),
                json(case),
                json(imp),
                json(metric)
            ),
        }
    }

    fn failed(bench: &str, case: &str, imp: &str, metric: &str, why: &str) -> Self {
        Record {
            line: format!(
                "{{\"bench\":{},\"case\":{},\"imp\":{},\"metric\":{},\"value\":null,\"note\":{}",
                json(bench),
                json(case),
                json(imp),
                json(metric),
                json(why)
            ),
        }
    }

    fn note(mut self, note: &str) -> Self {
        self.line.push_str(&format!(",\"note\":{}", json(note)));
        self
    }

    fn append(self, path: &Path) -> Result {
        use std::io::Write;
        let line = if self.line.contains("\"note\"") {
            format!("{}}}", self.line)
        } else {
            format!("{},\"note\":\"\"}}", self.line)
        };
        println!("result {line}");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(f, "{line}").map_err(|e| e.to_string())
    }
}

fn json(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_h2load_summary() {
        let out = "finished in 1.02s, 196078.43 req/s, 20.00MB/s\n\
                   requests: 200000 total, 200000 started, 200000 done, 199990 succeeded, 10 failed, 0 errored, 0 timeout\n";
        assert_eq!(parse_h2load(out), Some((196078.43, 199990, 200000)));
        assert_eq!(parse_h2load("nothing"), None);
    }

    #[test]
    fn escapes_json() {
        assert_eq!(json("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        let r = Record::failed("b", "c", "i", "m", "why").line + "}";
        assert!(r.ends_with("\"note\":\"why\"}"));
    }
}
