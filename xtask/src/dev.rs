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
    let mut h3 = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        println!("{line}");
        if let Some(url) = line.strip_prefix("listening https://") {
            https = Some(url.replacen("127.0.0.1", "localhost", 1));
        }
        if let Some(addr) = line.strip_prefix("h3 udp://") {
            h3 = Some(addr.to_string());
        }
        if let Some(spki) = line.strip_prefix("spki-sha256 ") {
            let url = https.as_deref().unwrap_or("localhost:8443");
            println!();
            println!("The demo: https://{url}/  (Ctrl-C stops the server)");
            println!("The certificate is a local one. Trust it, or open the demo in a throwaway Chromium profile:");
            println!(
                "  chromium --user-data-dir=\"$(mktemp -d)\" --ignore-certificate-errors-spki-list={spki} https://{url}/"
            );
            if let Some(addr) = &h3 {
                print_h3_command(url, addr, spki);
            }
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

/// The Chromium command for the demo over HTTP/3: QUIC forced to the origin (no Alt-Svc round
/// first), `localhost` mapped to the IPv4 address the server listens on (forced QUIC tries
/// `::1` first and fails with ERR_QUIC_HANDSHAKE_FAILED otherwise), the certificate pinned by
/// SPKI (`--ignore-certificate-errors` does not cover QUIC).
fn print_h3_command(url: &str, h3_addr: &str, spki: &str) {
    println!("Over HTTP/3 (QUIC on UDP {h3_addr}; the Network panel shows protocol h3):");
    println!("  {}", h3_command(url, h3_addr, spki));
}

fn h3_command(url: &str, h3_addr: &str, spki: &str) -> String {
    let (ip, port) = h3_addr.rsplit_once(':').unwrap_or((h3_addr, "8443"));
    let host = url.rsplit_once(':').map_or(url, |(host, _)| host);
    // An IPv6 listener needs no rule: forced QUIC tries ::1 first anyway.
    let map = if ip.starts_with('[') {
        String::new()
    } else {
        format!(" --host-resolver-rules=\"MAP {host} {ip}\"")
    };
    format!(
        "chromium --user-data-dir=\"$(mktemp -d)\" --ignore-certificate-errors-spki-list={spki} \
         --origin-to-force-quic-on={host}:{port}{map} https://{url}/"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn h3_command_forces_quic_maps_localhost_and_pins() {
        let cmd = super::h3_command("localhost:8443", "127.0.0.1:8443", "AbC=");
        assert_eq!(
            cmd,
            "chromium --user-data-dir=\"$(mktemp -d)\" --ignore-certificate-errors-spki-list=AbC= \
             --origin-to-force-quic-on=localhost:8443 \
             --host-resolver-rules=\"MAP localhost 127.0.0.1\" https://localhost:8443/"
        );
    }
}
