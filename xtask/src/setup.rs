//! Installing what the tests need on a fresh Debian machine (as root), each step only when missing.
//!
//! Everything comes from the registries this project may use: rustup's wasm32 target, crates.io
//! (`cargo install`), Debian apt and npm. Nothing downloads prebuilt binaries from elsewhere.

use crate::run::{output, probe, Step};
use crate::Result;

pub const WASM_PACK_VERSION: &str = "0.15.1";
pub const APT_PACKAGES: &[&str] = &["chromium", "chromium-driver", "binaryen"];
/// Python peers for interop tests live in their own venv, never in the system interpreter.
pub const PY_VENV: &str = "target/py-venv";
pub const PY_PACKAGES: &str = "h2==4.2.0 websockets==15.0.1";

pub fn all() -> Result {
    wasm_target()?;
    apt_packages()?;
    wasm_pack()?;
    wasm_bindgen_cli()?;
    node()?;
    python_venv()?;
    Ok(())
}

pub fn wasm_target() -> Result {
    if probe("rustup target list --installed | grep -qx wasm32-unknown-unknown") {
        return Ok(());
    }
    Step::new("rustup target add wasm32-unknown-unknown", 600)
        .run()
        .map(drop)
}

pub fn apt_packages() -> Result {
    let missing = ["/usr/bin/chromium", "/usr/bin/chromedriver"]
        .iter()
        .any(|p| !std::path::Path::new(p).exists())
        || !probe("command -v wasm-opt");
    if !missing {
        return Ok(());
    }
    if output("id -u").as_deref() != Some("0") {
        return Err(format!(
            "chromium, chromium-driver and binaryen are needed; run as root or install them: \
             sudo apt-get install -y {}",
            APT_PACKAGES.join(" ")
        ));
    }
    let script = format!(
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {}",
        APT_PACKAGES.join(" ")
    );
    Step::new(&script, 1200).run().map(drop)
}

pub fn wasm_pack() -> Result {
    let have = output("wasm-pack --version").unwrap_or_default();
    if have.ends_with(WASM_PACK_VERSION) {
        return Ok(());
    }
    let script = format!("cargo install wasm-pack --locked --version {WASM_PACK_VERSION}");
    Step::new(&script, 1800).run().map(drop)
}

/// wasm-bindgen-cli must match the `wasm-bindgen` crate in Cargo.lock exactly.
pub fn wasm_bindgen_cli() -> Result {
    let want = locked_version("wasm-bindgen")
        .ok_or("Cargo.lock has no wasm-bindgen entry (run `cargo generate-lockfile`)")?;
    let have = output("wasm-bindgen --version").unwrap_or_default();
    if have.split_whitespace().nth(1) == Some(want.as_str()) {
        return Ok(());
    }
    // Without --locked: one of its locked dependencies is missing from the registry.
    let script = format!("cargo install wasm-bindgen-cli --version {want}");
    Step::new(&script, 1800).run().map(drop)
}

pub fn node() -> Result {
    if probe("command -v node && command -v npm") {
        return Ok(());
    }
    Err("node and npm are needed for the browser tests: apt-get install -y nodejs npm".into())
}

pub fn npm_packages() -> Result {
    let lock = crate::root().join("tests/package-lock.json");
    let script = if lock.exists() {
        "cd tests && npm ci --no-audit --no-fund"
    } else {
        "cd tests && npm install --no-audit --no-fund"
    };
    Step::new(script, 900).run().map(drop)
}

pub fn python_venv() -> Result {
    let py = format!("{PY_VENV}/bin/python");
    let check = format!(
        "cd {} && {py} -c 'import h2, websockets'",
        crate::run::shell_quote(&crate::root().to_string_lossy())
    );
    if probe(&check) {
        return Ok(());
    }
    let script = format!("python3 -m venv {PY_VENV} && {py} -m pip install -q {PY_PACKAGES}");
    Step::new(&script, 900).run().map(drop)
}

/// The version of `name` recorded in the workspace's Cargo.lock.
pub fn locked_version(name: &str) -> Option<String> {
    let lock = std::fs::read_to_string(crate::root().join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{name}\"") {
            let version = lines
                .next()?
                .strip_prefix("version = \"")?
                .strip_suffix('"')?;
            return Some(version.to_string());
        }
    }
    None
}
