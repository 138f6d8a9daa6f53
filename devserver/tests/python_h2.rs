//! Interop with a third-party HTTP/2 peer: python-hyper `h2` drives the native mapping and
//! RFC 8441 at the frame level (tests/python/h2_peer.py), in a venv the test creates under
//! the target directory. Skips (loudly) only when python3 is missing; a failed `pip install`
//! fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use h2ws::SocketConfig;

fn python3() -> Option<PathBuf> {
    let out = Command::new("python3")
        .arg("-c")
        .arg("import sys; print(sys.executable)")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// A venv with `h2`, created once and reused.
fn venv(python: &Path) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("h2ws-pyenv");
    let py = dir.join("bin").join("python");
    let has_h2 = |py: &Path| {
        Command::new(py)
            .args(["-c", "import h2.connection"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if py.exists() && has_h2(&py) {
        return py;
    }
    let status = Command::new(python)
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .expect("run python3 -m venv");
    assert!(status.success(), "python3 -m venv {} failed", dir.display());
    let out = Command::new(&py)
        .args(["-m", "pip", "install", "--quiet", "h2>=4.1"])
        .output()
        .expect("run pip");
    assert!(
        out.status.success(),
        "pip install h2 failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(has_h2(&py), "h2 importable after pip install");
    py
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_h2_peer_native_and_rfc8441() {
    init_tracing();
    let Some(python) = python3() else {
        eprintln!(
            "\n!!!!! SKIPPED python_h2_peer_native_and_rfc8441: python3 not found on PATH !!!!!\n"
        );
        return;
    };
    let py = tokio::task::spawn_blocking(move || venv(&python))
        .await
        .expect("venv");
    let server = start(SocketConfig::default()).await;
    let addr = tls_authority(&server);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/h2_peer.py");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || Command::new(py).arg(script).arg(addr).output()),
    )
    .await
    .expect("python peer finished in time")
    .expect("join")
    .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "python h2 peer failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ALL OK"), "{stdout}");
    server.shutdown().await;
}
