//! `cargo xtask test`: every test stage, in dependency order, with a tally at the end.

use crate::run::Step;
use crate::{setup, Result};

pub struct Stage {
    pub name: &'static str,
    pub what: &'static str,
    /// Runs the stage; the closing count comes from every step's own output (`run::seen`).
    run: fn() -> Result,
}

pub const STAGES: &[Stage] = &[
    Stage { name: "setup", what: "install missing tools (wasm target, wasm-pack, wasm-bindgen-cli, chromium, chromedriver, firefox-esr, webkit2gtk-driver, xvfb, haproxy, nginx, redis-server; npm binaryen + esbuild for wasm/build.sh)", run: stage_setup },
    Stage { name: "codec-wasm32", what: "h2ws-codec builds for wasm32 without std", run: codec_wasm32 },
    Stage { name: "rust", what: "cargo test: codec, h2ws, devserver, xtask (unit, property, integration, interop, doctests; no import circles between library modules, xtask modgraph)", run: rust },
    Stage { name: "scale", what: "scale-out: 3 devservers behind HAProxy with the deploy/scale-out recipes (instance-id routing, stick table; 300 sockets over every transport), chat fan-out through redis-server (exactly once, in order, instance killed, Redis restarted)", run: scale },
    Stage { name: "soak", what: "h2ws-soak: 20 sockets per transport, all five at once, 20 s of sequenced messages: none lost, duplicated, reordered or corrupted", run: soak },
    Stage { name: "autobahn", what: "Autobahn|Testsuite on /ws/echo over RFC 6455 and through the gateway (all 517 cases: groups 1-7, 9, 10, 12, 13; the same as cargo xtask conformance)", run: autobahn },
    Stage { name: "pkg", what: "build the npm package h2ws (wasm-pack) and check it packs and would publish without warnings", run: pkg },
    Stage { name: "consumers", what: "the packed npm package in throwaway apps built with default configs (Vite 5, Vite 8, webpack 5, esbuild, Rollup) echoing in Chromium, Firefox and WebKit; strict TypeScript (moduleResolution bundler, node16); Vite dev servers; imported and used in Node, Bun and Deno", run: consumers },
    Stage { name: "wasm-unit", what: "wasm-bindgen tests of the browser core in headless Chromium", run: wasm_unit },
    Stage { name: "browser", what: "end-to-end tests: playwright-core + Chromium against the devserver (API, transports, demo page)", run: browser },
    Stage { name: "browser-h3", what: "the transport, server-ending and H2WebSocketStream tests again over HTTP/3 in Chromium (QUIC forced to the devserver's port, certificate pinned by SPKI) and Firefox ESR (alt-svc test mapping); the page's and every socket's requests asserted h3 by nextHopProtocol; about 4 min", run: browser_h3 },
    Stage { name: "browser-firefox", what: "the same browser suite and the demo page in Firefox ESR (puppeteer-core over WebDriver BiDi)", run: browser_firefox },
    Stage { name: "browser-webkit", what: "the same browser suite and the demo page in WebKitGTK, Safari's engine (WebKitWebDriver + MiniBrowser under Xvfb)", run: browser_webkit },
    Stage { name: "proxies", what: "the deploy/ recipes with the real HAProxy 2.6 and nginx 1.22 in front of the devserver: every transport with the native client, Chromium (all back ends, 100 sockets, auto's fallback), Firefox and WebKit (smoke)", run: proxies },
];

pub fn run(args: &[String]) -> Result {
    let only: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--stage")
        .map(|w| w[1].as_str())
        .collect();
    for name in &only {
        if !STAGES.iter().any(|s| s.name == *name) {
            return Err(format!(
                "no stage named `{name}` (see `cargo xtask stages`)"
            ));
        }
    }
    let mut failures = Vec::new();
    let mut ran = Vec::new();
    for stage in STAGES
        .iter()
        .filter(|s| only.is_empty() || only.contains(&s.name))
    {
        println!("\n=== stage {}: {}", stage.name, stage.what);
        let started = std::time::Instant::now();
        let outcome = (stage.run)();
        let took = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => {
                println!("=== stage {} passed in {took:.0} s", stage.name);
                ran.push(stage.name)
            }
            Err(e) => {
                println!("=== stage {} FAILED after {took:.0} s: {e}", stage.name);
                failures.push((stage.name, e));
                // Without the tools nothing else can run; any other stage failing still leaves
                // the later ones worth running, so one CI run reports everything.
                if stage.name == "setup" {
                    break;
                }
            }
        }
    }
    println!("\n=== stages passed: {}", ran.join(", "));
    for (name, e) in &failures {
        println!("=== stage failed: {name}: {e}");
    }
    let total = crate::run::seen();
    if total.ignored > 0 {
        println!("({} tests ignored)", total.ignored);
    }
    // A stage that failed without failing tests (a build error, a timeout) still counts as a failure.
    let failed = total.failed.max(failures.len() as u64);
    println!("xtask: {} passed, {} failed", total.passed, failed);
    if failures.is_empty() && total.failed == 0 {
        Ok(())
    } else {
        Err("some tests failed".into())
    }
}

fn autobahn() -> Result {
    crate::conformance::run(crate::conformance::Scope::Full)
}

fn stage_setup() -> Result {
    setup::all()
}

fn codec_wasm32() -> Result {
    Step::new(
        "cargo build -p h2ws-codec --target wasm32-unknown-unknown --no-default-features",
        900,
    )
    .run()?;
    Step::new("cargo build -p h2ws-codec --target wasm32-unknown-unknown --no-default-features --features deflate", 900)
        .run()?;
    Ok(())
}

fn rust() -> Result {
    // Unit, property, integration and interop tests and doctests of every crate (the browser
    // library's pure logic natively; its wasm side runs in stage wasm-unit). The bench crate is
    // exercised by `cargo xtask bench --smoke`, not here.
    // The scale-out tests (devserver/tests/scale_out.rs, every name starting `scale_out_`) run
    // in stage scale: they start HAProxy and redis-server, and run once, not twice.
    Step::new(
        "cargo test --workspace --exclude h2ws-bench --no-fail-fast -- --skip scale_out_",
        2400,
    )
    .run()?;
    Ok(())
}

fn scale() -> Result {
    Step::new("cargo test -p h2ws-devserver --test scale_out", 600).run()?;
    Ok(())
}

fn soak() -> Result {
    // `cargo xtask soak` shortened (its default is 60 s): 100 sockets at once against one
    // devserver, figures per transport including per-socket fairness and the longest wait.
    let args = ["--sockets", "20", "--duration", "20"].map(String::from);
    crate::soak::run(&args)
}

fn pkg() -> Result {
    Step::new("bash wasm/build.sh --release", 1800).run()?;
    Step::new(
        "cd wasm/pkg && npm pack --dry-run --json >/dev/null && echo 'npm pack: ok'",
        300,
    )
    .run()?;
    // Any warning but the one a dry run without an npm login always prints (npm fixing up
    // package.json fields, a missing file...) fails the stage.
    Step::new(
        "cd wasm/pkg && out=$(npm publish --dry-run 2>&1) || { echo \"$out\"; exit 1; }; \
         warnings=$(echo \"$out\" | grep -i 'npm warn' | grep -v 'requires you to be logged in'); \
         if [ -n \"$warnings\" ]; then echo \"$warnings\"; exit 1; fi; echo 'npm publish --dry-run: no warnings'",
        300,
    )
    .run()?;
    Ok(())
}

/// The packed package as apps use it (tests/consumers): its tools pinned by package-lock.json,
/// the harness's devserver and engines from tests/.
fn consumers() -> Result {
    setup::npm_packages()?;
    Step::new("cd tests/consumers && npm ci --no-audit --no-fund", 900).run()?;
    Step::new("cargo build -p h2ws-devserver", 1800).run()?;
    Step::new(
        "cd tests/consumers && node --test --test-concurrency=1 node.test.mjs bundlers.test.mjs",
        1800,
    )
    .run()?;
    Ok(())
}

fn wasm_unit() -> Result {
    Step::new("wasm-pack test --headless --chrome wasm", 1200)
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .run()?;
    Ok(())
}

fn browser() -> Result {
    engine_suite("chromium", "browser/ demo/")
}

/// Chromium and Firefox over HTTP/3: tests/browser/harness.mjs reads `H2WS_HTTP3`.
fn browser_h3() -> Result {
    setup::npm_packages()?;
    Step::new("cargo build -p h2ws-devserver", 1800).run()?;
    let files = "browser/h3.test.mjs browser/transports.test.mjs browser/lifecycle.test.mjs \
                 browser/stream-api.test.mjs";
    for engine in ["chromium", "firefox"] {
        Step::new(
            &format!("cd tests && node --test --test-concurrency=1 {files}"),
            900,
        )
        .env("H2WS_ENGINE", engine)
        .env("H2WS_HTTP3", "1")
        .run()?;
    }
    Ok(())
}

fn browser_firefox() -> Result {
    engine_suite("firefox", "browser/ demo/engines.test.mjs")
}

fn browser_webkit() -> Result {
    engine_suite("webkit", "browser/ demo/engines.test.mjs")
}

/// The proxy tests: the native-client matrix (also part of stage `rust`, repeated here so the
/// stage stands alone; it takes about a second once built) and the browser suite in
/// tests/proxy/ in all three engines (Chromium in full, the others a smoke).
fn proxies() -> Result {
    Step::new(
        "cargo test -p h2ws-devserver --test proxies --test clean_end",
        1800,
    )
    .run()?;
    setup::npm_packages()?;
    Step::new("cargo build -p h2ws-devserver", 1800).run()?;
    if !crate::root().join("wasm/pkg/index.js").exists() {
        Step::new("bash wasm/build.sh --release", 1800).run()?;
    }
    for engine in ["chromium", "firefox", "webkit"] {
        Step::new("cd tests && node --test --test-concurrency=1 proxy/", 600)
            .env("H2WS_ENGINE", engine)
            .run()?;
    }
    Ok(())
}

/// The end-to-end suites in one engine (tests/browser/harness.mjs reads `H2WS_ENGINE`).
fn engine_suite(engine: &str, files: &str) -> Result {
    setup::npm_packages()?;
    // The suites start target/debug/h2ws-devserver (already built when stage rust ran).
    Step::new("cargo build -p h2ws-devserver", 1800).run()?;
    let script = format!("cd tests && node --test --test-concurrency=1 {files}");
    Step::new(&script, 1800).env("H2WS_ENGINE", engine).run()?;
    Ok(())
}
