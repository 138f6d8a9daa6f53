//! `cargo xtask dev`: the one-command dev loop (npm package + devserver + demo page).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::run::Step;
use crate::{setup, Result};

pub fn build_pkg(release: bool) -> Result {
    setup::wasm_target()?;
    setup::wasm_pack()?;
    setup::wasm_bindgen_cli()?;
    if release {
        setup::binaryen()?;
    }
    let profile = if release { "--release" } else { "--dev" };
    let script = format!("bash wasm/build.sh {profile}");
    Step::new(&script, 1800).run().map(drop)
}

/// Defaults for the devserver, each dropped when the user passes that flag after `--`.
const DEFAULTS: &[(&str, &str)] = &[
    ("--addr", "127.0.0.1:8443"),
    ("--www", "www"),
    ("--pkg", "wasm/pkg"),
];

pub fn run(args: &[String]) -> Result {
    let release = args.iter().any(|a| a == "--release");
    let passthrough: Vec<String> = match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => Vec::new(),
    };
    build_pkg(release)?;
    Step::new("cargo build --release -p h2ws-devserver", 3600).run()?;

    let mut server_args: Vec<String> = Vec::new();
    for (flag, value) in DEFAULTS {
        let given = passthrough
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        if !given {
            server_args.extend([flag.to_string(), value.to_string()]);
        }
    }
    server_args.extend(passthrough);
    let bin = crate::root().join("target/release/h2ws-devserver");
    let mut child = Command::new(&bin)
        .args(&server_args)
        .current_dir(crate::root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("devserver has no stdout")?;
    let mut https = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        println!("{line}");
        if let Some(url) = line.strip_prefix("listening https://") {
            https = Some(url.replacen("127.0.0.1", "localhost", 1));
        }
        if let Some(spki) = line.strip_prefix("spki-sha256 ") {
            let url = https.as_deref().unwrap_or("localhost:8443");
            println!();
            println!("The demo: https://{url}/  (Ctrl-C stops the server)");
            println!("The certificate is a local one. Trust it, or open the demo in a throwaway Chromium profile:");
            println!(
                "  chromium --user-data-dir=\"$(mktemp -d)\" --ignore-certificate-errors-spki-list={spki} https://{url}/"
            );
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the devserver: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the devserver exited: {status}"))
    }
}
