//! Autobahn|Testsuite (fuzzingclient) against the devserver: `/ws/echo` over RFC 6455, and the
//! gateway path (fuzzingclient → devserver `/ws/upstream` → a second devserver's `/ws/echo`).

use crate::run::{Step, Tally};
use crate::server::DevServer;
use crate::Result;

const RUNNER: &str = "../shared/tools/autobahn/run.sh";
/// The Autobahn venv, ported sources and downloads: our own, under target/, because we add a
/// module to its venv (below) and must not touch a shared `~/.cache/autobahn-py3`.
const AUTOBAHN_HOME: &str = "target/autobahn-home";
/// Verdict-preserving fast path for the fuzzing client's pure-Python UTF-8 validator, and its
/// differential test against the original DFA.
const FAST_UTF8: &str = "xtask/autobahn/h2ws_fast_utf8.py";
const FAST_UTF8_TEST: &str = "xtask/autobahn/test_h2ws_fast_utf8.py";

/// How much of the suite to run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Groups 1–7, 9, 10, 12, 13: all 517 cases, both paths side by side (`cargo xtask
    /// conformance` and the `autobahn` stage of `cargo xtask test`): ~14 min on 2 cores, most
    /// of it the Python client in the permessage-deflate groups.
    Full,
    /// Groups 1–7, 9, 10 whole, and the first five cases (the small messages) of every
    /// permessage-deflate subgroup, 12.1–12.5 and 13.1–13.7, so every negotiated parameter set
    /// is still exercised: about a minute, for quick checks while working.
    Quick,
}

/// The case list for run.sh (one wstest run per path), or None for its default groups.
fn cases(scope: Scope) -> Option<String> {
    match scope {
        Scope::Full => None,
        Scope::Quick => {
            let mut cases: Vec<String> = ["1", "2", "3", "4", "5", "6", "7", "9", "10"]
                .iter()
                .map(|g| format!("\"{g}.*\""))
                .collect();
            // Exact ids: wstest matches `*` patterns as prefixes ("12.*.1" would take 12.x.1x too).
            for (group, subgroups) in [(12, 5), (13, 7)] {
                for sub in 1..=subgroups {
                    cases.extend((1..=5).map(|n| format!("\"{group}.{sub}.{n}\"")));
                }
            }
            Some(format!("'[{}]'", cases.join(",")))
        }
    }
}

pub fn run(scope: Scope) -> Result {
    let runner = crate::root().join(RUNNER);
    if !runner.exists() {
        return Err(format!(
            "{} is missing (the shared tools sit beside the repository)",
            runner.display()
        ));
    }
    Step::new("cargo build -p h2ws-devserver", 1800).run()?;
    // Install the venv and port the sources once, before two runs share them.
    let home = crate::root().join(AUTOBAHN_HOME);
    std::env::set_var("AUTOBAHN_HOME", &home);
    Step::new(
        &format!(
            "CASE_GROUPS=' ' bash {RUNNER} ws://127.0.0.1:9/ target/autobahn-prime >/dev/null"
        ),
        900,
    )
    .run()?;
    install_fast_utf8(&home)?;
    let echo = DevServer::start(&["--addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])?;
    let echo_url = format!("{}/ws/echo", echo.ws_base()?);
    let gateway_upstream = format!("--upstream={echo_url}");
    let gateway = DevServer::start(&[
        "--addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        &gateway_upstream,
    ])?;
    let gateway_url = format!("{}/ws/upstream", gateway.ws_base()?);

    // The two runs are independent (each Python client is single-threaded): run them side by side.
    let out = crate::root().join("target/autobahn");
    // The deflate groups are CPU-bound in the Python client; two runs side by side on a busy
    // 2-core machine need more than run.sh's default 900 s per group.
    let limits = "DEFLATE_TIMEOUT=${DEFLATE_TIMEOUT:-1800} GROUP_TIMEOUT=${GROUP_TIMEOUT:-600}";
    let cases = cases(scope).unwrap_or_default();
    let direct = format!(
        "{limits} bash {RUNNER} {echo_url} {}/echo {cases}",
        out.display()
    );
    let bridged = format!(
        "{limits} AGENT=gateway bash {RUNNER} {gateway_url} {}/gateway {cases}",
        out.display()
    );
    let both = format!("rm -rf {o} && mkdir -p {o} && ( {bridged} > {o}/gateway.log 2>&1 & pid=$!; {direct}; rc=$?; wait $pid; rc2=$?; echo; echo '--- gateway path'; tail -n 40 {o}/gateway.log; [ $rc = 0 ] && [ $rc2 = 0 ] )", o = out.display());
    Step::new(&both, 2700).run()?;
    for path in ["echo", "gateway"] {
        check_summary(&out.join(path), path)?;
    }
    Ok(())
}

/// Puts `h2ws_fast_utf8` into the Autobahn venv (loaded by a `.pth` file at interpreter start)
/// and checks that it agrees with the DFA it speeds up before any verdict depends on it. The
/// pure-Python validator is most of the client's CPU time in groups 12 and 13 (profiled: 26 of
/// 41 s for 12.1.10 + 12.2.10); without it the full suite does not fit in CI's time.
fn install_fast_utf8(home: &std::path::Path) -> Result {
    let python = home.join("venv/bin/python");
    let purelib = std::process::Command::new(&python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    let purelib = std::path::PathBuf::from(String::from_utf8_lossy(&purelib.stdout).trim());
    if !purelib.is_dir() {
        return Err(format!("no site-packages for {}", python.display()));
    }
    std::fs::copy(
        crate::root().join(FAST_UTF8),
        purelib.join("h2ws_fast_utf8.py"),
    )
    .map_err(|e| format!("installing {FAST_UTF8}: {e}"))?;
    std::fs::write(
        purelib.join("h2ws-fast-utf8.pth"),
        "import h2ws_fast_utf8\n",
    )
    .map_err(|e| format!("writing the .pth file: {e}"))?;
    Step::new(
        &format!(
            "PYTHONPATH={src} {py} {FAST_UTF8_TEST}",
            src = home.join("src").display(),
            py = python.display()
        ),
        300,
    )
    .run()?;
    Ok(())
}

/// A run that reached no server prints "0 passed, 0 failed": demand real verdicts, no timeouts.
fn check_summary(dir: &std::path::Path, path: &str) -> Result {
    let summary = std::fs::read_to_string(dir.join("summary.txt"))
        .map_err(|e| format!("{path}: no Autobahn summary in {}: {e}", dir.display()))?;
    let last = summary.lines().last().unwrap_or_default();
    let mut tally = Tally::default();
    tally.scan_line(last);
    let timeouts = std::fs::read_to_string(dir.join("timeouts.txt")).unwrap_or_default();
    if tally.passed == 0 || tally.failed > 0 || !timeouts.trim().is_empty() {
        return Err(format!(
            "{path}: Autobahn says `{last}`; timeouts: `{}`",
            timeouts.trim()
        ));
    }
    println!("--- autobahn {path} ({})\n{summary}", dir.display());
    println!("autobahn {path}: {last}");
    Ok(())
}
