//! The `h2ws-devserver` binary: stable start-up lines (`listening URL`, `h3 udp://ADDR`,
//! `spki-sha256 B64`),
//! port 0, the served certificate matching the printed SPKI hash, `--cert/--key`, and SIGTERM
//! closing sockets with 1001 before a clean exit.

mod common;

use std::process::Command;

use common::*;

/// The binary with ARGS; its start-up lines must be only the listeners and the pin.
fn run(args: &[&str]) -> DevServerProcess {
    let server = DevServerProcess::start(args);
    assert!(
        server.other_lines.is_empty(),
        "unexpected start-up lines {:?}",
        server.other_lines
    );
    server
}

fn cli_cert_dir() -> String {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("h2ws-cli-cert")
        .to_string_lossy()
        .into_owned()
}

#[tokio::test]
async fn prints_listeners_and_spki_and_closes_sockets_with_1001_on_sigterm() {
    let dir = cli_cert_dir();
    let mut server = run(&[
        "--addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--cert-dir",
        &dir,
    ]);
    assert!(server.https.starts_with("127.0.0.1:") && !server.https.ends_with(":0"));
    assert!(server
        .http
        .as_deref()
        .is_some_and(|h| h.starts_with("127.0.0.1:")));
    assert_eq!(server.spki.len(), 44, "base64 of a sha256");
    assert_eq!(
        server.h3.as_deref(),
        Some(server.https.as_str()),
        "HTTP/3 on UDP at the HTTPS port"
    );

    // The certificate served is the one whose SPKI hash was printed.
    let addr: std::net::SocketAddr = server.https.parse().unwrap();
    let tls = tls_connect(addr, &[b"h2"]).await;
    let leaf = tls.get_ref().1.peer_certificates().expect("certificate")[0].clone();
    assert_eq!(h2ws::spki::sha256_base64(&leaf).unwrap(), server.spki);
    drop(tls);

    // A socket open at SIGTERM gets Close 1001, then the process exits successfully.
    let sr = h2_tls(addr).await;
    let mut p = Peer::open(&sr, &server.https, "/ws/echo", Kind::Native)
        .await
        .expect("open");
    p.send_text("before").await;
    assert_eq!(
        p.recv_message().await,
        h2ws_codec::Message::Text("before".into())
    );
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (code, _, clean) = p.closed().await;
    assert_eq!((code, clean), (1001, true));
    let exit = tokio::task::spawn_blocking(move || server.child.wait())
        .await
        .unwrap()
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn given_cert_and_key_and_no_plain_listener() {
    // Reuse the cached generated pair (one PEM with both) as --cert/--key.
    let dir = cli_cert_dir();
    let without_h3 = run(&[
        "--addr",
        "127.0.0.1:0",
        "--no-http",
        "--no-h3",
        "--cert-dir",
        &dir,
    ]);
    assert_eq!(without_h3.h3, None, "--no-h3");
    drop(without_h3);
    let pem = format!("{dir}/localhost.pem");
    let server = run(&[
        "--addr",
        "127.0.0.1:0",
        "--no-http",
        "--cert",
        &pem,
        "--key",
        &pem,
    ]);
    assert!(server.http.is_none());
    let addr: std::net::SocketAddr = server.https.parse().unwrap();
    let sr = h2_tls(addr).await;
    let mut p = Peer::open(&sr, &server.https, "/ws/echo", Kind::Stream)
        .await
        .expect("open");
    p.send_text("hi").await;
    assert_eq!(
        p.recv_message().await,
        h2ws_codec::Message::Text("hi".into())
    );
}

#[test]
fn help_lists_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_h2ws-devserver"))
        .arg("--help")
        .output()
        .expect("run --help");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--addr",
        "--http-addr",
        "--no-http",
        "--no-h3",
        "--www",
        "--pkg",
        "--cert",
        "--key",
        "--cert-dir",
        "--upstream",
        "--allow-origin",
        "--max-message",
        "--max-sockets",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}:\n{help}");
    }
}
