//! `cargo xtask dev`: the one-command dev loop (npm package + devserver + demo page).

use crate::run::Step;
use crate::{setup, Result};

pub fn build_pkg(release: bool) -> Result {
    setup::wasm_target()?;
    setup::wasm_pack()?;
    setup::wasm_bindgen_cli()?;
    let profile = if release { "--release" } else { "--dev" };
    let script = format!("bash wasm/build.sh {profile}");
    Step::new(&script, 1800).run().map(drop)
}

pub fn run(args: &[String]) -> Result {
    let release = args.iter().any(|a| a == "--release");
    let passthrough: Vec<&str> = match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].iter().map(String::as_str).collect(),
        None => Vec::new(),
    };
    build_pkg(release)?;
    let mut server_args = vec![
        "--addr",
        "127.0.0.1:8443",
        "--www",
        "www",
        "--pkg",
        "wasm/pkg",
    ];
    server_args.extend(passthrough);
    let script = format!(
        "cargo run --release -p h2ws-devserver -- {}",
        server_args
            .iter()
            .map(|a| crate::run::shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("\nServing the demo on https://localhost:8443 (Ctrl-C to stop).");
    println!("The certificate is a local one: trust it, or start a throwaway Chromium with");
    println!("  chromium --user-data-dir=$(mktemp -d) --ignore-certificate-errors-spki-list=<spki-sha256 printed below> https://localhost:8443/");
    // A dev server runs until the user stops it: a long bound, not none.
    Step::new(&script, 7 * 24 * 3600).run().map(drop)
}
