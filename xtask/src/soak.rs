//! `cargo xtask soak [--release] [H2WS_SOAK_ARGS...]`: runs `h2ws-soak` (devserver/src/bin) —
//! N sockets × M sequenced messages on every transport at once against an in-process
//! devserver — and fails on any lost, duplicated, reordered or corrupted message. Bounded in
//! time: the soak's own `--duration` + `--drain`, and a hard limit here.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::Result;

/// Default run: 20 sockets per transport, 60 s of sending.
const DEFAULT_ARGS: [&str; 4] = ["--sockets", "20", "--duration", "60"];
/// Build + run never take longer than this.
const HARD_LIMIT: Duration = Duration::from_secs(1800);

pub fn run(args: &[String]) -> Result {
    let release = args.iter().any(|a| a == "--release");
    let mut soak_args: Vec<String> = args.iter().filter(|a| *a != "--release").cloned().collect();
    if soak_args.is_empty() {
        soak_args = DEFAULT_ARGS.iter().map(|s| s.to_string()).collect();
    }
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(crate::root())
        .args(["run", "-p", "h2ws-devserver", "--bin", "h2ws-soak"]);
    if release {
        cmd.arg("--release");
    }
    cmd.arg("--").args(&soak_args);
    eprintln!("xtask soak: {cmd:?}");
    let mut child = cmd.spawn().map_err(|e| format!("running cargo: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("h2ws-soak failed ({status})")),
            Ok(None) if start.elapsed() > HARD_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("h2ws-soak ran past {HARD_LIMIT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("waiting for h2ws-soak: {e}")),
        }
    }
}
