//! Installing what the tests need on a fresh Debian machine (as root), each step only when missing.
//!
//! Everything comes from the registries this project may use: rustup's wasm32 target, crates.io
//! (`cargo install`), Debian apt and npm. Nothing downloads prebuilt binaries from elsewhere.

use crate::run::{output, probe, Step};
use crate::Result;

pub const WASM_PACK_VERSION: &str = "0.15.1";
/// Debian packages: the three browser engines (Chromium + its driver; Firefox ESR, driven over
/// WebDriver BiDi by npm puppeteer-core; WebKitGTK's WebKitWebDriver + MiniBrowser, which need an
/// X server: Xvfb) and the real infrastructure the proxy and scale-out tests start as
/// their own child processes on loopback (HAProxy 2.6, nginx 1.22, Redis 7).
pub const APT_PACKAGES: &[&str] = &[
    "chromium",
    "chromium-driver",
    "firefox-esr",
    "webkit2gtk-driver",
    "xvfb",
    "haproxy",
    "nginx-light",
    "redis-server",
];
/// A file each of [`APT_PACKAGES`] installs.
const APT_FILES: &[&str] = &[
    "/usr/bin/chromium",
    "/usr/bin/chromedriver",
    "/usr/bin/firefox-esr",
    "/usr/bin/WebKitWebDriver",
    "/usr/bin/Xvfb",
    "/usr/sbin/haproxy",
    "/usr/sbin/nginx",
    "/usr/bin/redis-server",
];

pub fn all() -> Result {
    wasm_target()?;
    apt_packages()?;
    wasm_pack()?;
    wasm_bindgen_cli()?;
    node()?;
    binaryen()?;
    python()?;
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
    let missing = APT_FILES.iter().any(|p| !std::path::Path::new(p).exists());
    if !missing {
        return Ok(());
    }
    if output("id -u").as_deref() != Some("0") {
        return Err(format!(
            "the browsers, their drivers and Xvfb are needed; run as root or install \
             them: sudo apt-get install -y {}",
            APT_PACKAGES.join(" ")
        ));
    }
    // haproxy, nginx and redis-server start a system service on install where policy allows it
    // (nginx on 0.0.0.0:80). The tests run their own instances on loopback only, so service starts
    // are denied for the duration of the install (the usual Docker `policy-rc.d`), unless the
    // machine already has a policy of its own.
    let script = format!(
        "own=0; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\\nexit 101\\n' \
         > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own=1; fi; \
         apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {}; rc=$?; \
         if [ $own = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $rc",
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

/// The package build's optimisers from npm, into `target/tools/binaryen` where `wasm/build.sh`
/// looks for them: binaryen (`wasm-opt` compiled to wasm, runs on node) and esbuild (minifies the
/// JS modules). One `npm install`, ~5 s, ~115 MB. Debian bookworm's binaryen 108 cannot be used:
/// it reads wasm-bindgen's externref table as GC `anyref`.
pub const BINARYEN_VERSION: &str = "132.0.0";
pub const ESBUILD_VERSION: &str = "0.28.2";

pub fn binaryen() -> Result {
    let dir = crate::root().join("target/tools/binaryen");
    let version = |name: &str| {
        output(&format!(
            "node -p \"require('{}/node_modules/{name}/package.json').version\" 2>/dev/null",
            dir.display()
        ))
        .unwrap_or_default()
    };
    if version("binaryen") == BINARYEN_VERSION && version("esbuild") == ESBUILD_VERSION {
        return Ok(());
    }
    let script = format!(
        "mkdir -p {dir} && npm install --prefix {dir} --no-audit --no-fund \
         binaryen@{BINARYEN_VERSION} esbuild@{ESBUILD_VERSION}",
        dir = dir.display()
    );
    Step::new(&script, 600).run().map(drop)
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

/// The interop tests build their own venvs (python-hyper `h2`, Autobahn) from PyPI.
pub fn python() -> Result {
    if probe("python3 -m venv --help") {
        return Ok(());
    }
    Err("python3 with the venv module is needed for the interop tests: apt-get install -y python3-venv".into())
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
