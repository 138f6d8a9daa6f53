//! The devserver tests' fixture: the library's (h2ws/tests/common, included here, not copied)
//! with the devserver's apps (`/ws/echo`, `/ws/chat`, `/ws/upstream`) and its dev certificate
//! on top, the `h2ws-devserver` binary as a child process, and [`proxy`] for other servers.
#![allow(dead_code)]

#[path = "../../../h2ws/tests/common/mod.rs"]
mod library;
pub mod proxy;

pub use library::*;

use h2ws::{RunningServer, Server, SocketConfig};
use h2ws_devserver::apps::gateway::Gateway;
use h2ws_devserver::cert::CertSource;

pub fn cert_dir() -> std::path::PathBuf {
    // One cached certificate for all test binaries (generated on first use), shared with the
    // devserver processes and proxies the tests start (`--cert-dir`, HAProxy's PEM).
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("h2ws-test-cert")
}

/// The shared dev certificate in [`cert_dir`].
pub fn identity() -> h2ws::Identity {
    CertSource::Generated { dir: cert_dir() }
        .load()
        .expect("test certificate")
}

/// A server on 127.0.0.1:0 (TLS and plain) with the devserver's apps (`/ws/echo`, `/ws/chat`).
pub fn server(config: SocketConfig) -> Server {
    server_with(identity(), config).routes(h2ws_devserver::apps::routes())
}

/// [`server`], started.
pub async fn start(config: SocketConfig) -> RunningServer {
    server(config).start().await.expect("server starts")
}

/// [`TestServer::start`] on [`server`]`(config)`: the usual test setup in one call.
pub async fn test_server(config: SocketConfig) -> TestServer {
    TestServer::start(server(config)).await
}

/// Limits small enough to cross with a test message: 1000-byte messages and frames.
pub fn small_limits() -> SocketConfig {
    SocketConfig {
        max_message_size: 1000,
        max_frame_size: 1000,
        ..SocketConfig::default()
    }
}

/// An `Origin` that no default allowlist accepts.
pub const FOREIGN_ORIGIN: &str = "https://evil.example";

/// Opens `/ws/echo` with [`FOREIGN_ORIGIN`] on every HTTP/2 transport ([`Kind::ALL`]): each is
/// refused with 403 and a reason naming the origin (the protocol and the security tests).
pub async fn assert_foreign_origin_refused(
    sr: &h2::client::SendRequest<bytes::Bytes>,
    authority: &str,
) {
    for kind in Kind::ALL {
        let refused = Peer::open_with(
            sr,
            authority,
            "/ws/echo",
            kind,
            &[("origin", FOREIGN_ORIGIN)],
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("{kind:?}: foreign origin accepted"));
        assert_eq!(refused.status, http::StatusCode::FORBIDDEN, "{kind:?}");
        assert!(
            refused.body.contains("origin"),
            "{kind:?}: {}",
            refused.body
        );
    }
}

/// A permessage-deflate message through a socket that hands RSV1 frames over untouched.
pub struct CompressedEcho {
    /// What was sent: `text` compressed, as one RSV1 frame.
    pub sent: Vec<u8>,
    /// The echo's frame payloads as they arrived (still compressed).
    pub received: Vec<u8>,
    /// The echo inflated.
    pub inflated: String,
}

/// Sends `text` compressed with the negotiated `params` as one RSV1 frame on `ws` (opened with
/// `fragments` and `allow_rsv1`), then reads the echo fragment by fragment (text, RSV1 on its
/// first) and inflates it. `what` labels the failures (gateway and client tests).
pub async fn compressed_echo(
    ws: &mut h2ws::client::Socket,
    params: &h2ws_codec::deflate::DeflateParams,
    text: &str,
    what: &str,
) -> CompressedEcho {
    use h2ws::client::{FragmentKind, Incoming};
    let mut sent = Vec::new();
    params
        .compressor(false)
        .compress(text.as_bytes(), &mut sent);
    ws.send_fragment(FragmentKind::Text, 0b100, &sent, true)
        .await
        .unwrap_or_else(|e| panic!("{what}: send: {e}"));
    let mut received = Vec::new();
    let mut inflated = Vec::new();
    let mut inflate = params.decompressor(false);
    loop {
        match tokio::time::timeout(LIMIT, ws.recv_frame()).await {
            Ok(Incoming::Fragment {
                kind,
                rsv,
                data,
                fin,
            }) => {
                if kind != FragmentKind::Continuation {
                    assert_eq!((kind, rsv), (FragmentKind::Text, 0b100), "{what}");
                }
                received.extend_from_slice(&data);
                inflate
                    .decompress(&data, fin, &mut inflated, 1 << 20)
                    .unwrap_or_else(|e| panic!("{what}: inflate: {e:?}"));
                if fin {
                    break;
                }
            }
            Ok(other) => panic!("{what}: unexpected {other:?}"),
            Err(_) => panic!("{what}: no echo within {LIMIT:?}"),
        }
    }
    CompressedEcho {
        sent,
        received,
        inflated: String::from_utf8(inflated).unwrap_or_else(|e| panic!("{what}: {e}")),
    }
}

/// `/ws/upstream` bridged to `url` (the devserver's `--upstream`).
pub fn upstream(url: &str) -> axum::Router {
    Gateway::new(url).expect("upstream URL").routes()
}

/// The real `h2ws-devserver` binary as a child process (RUST_LOG=warn, stderr discarded),
/// killed when dropped.
pub struct DevServerProcess {
    pub child: std::process::Child,
    /// `host:port` of the TLS listener.
    pub https: String,
    /// `host:port` of the plain listener (None with `--no-http`).
    pub http: Option<String>,
    /// base64(sha256(SPKI)) of the served certificate.
    pub spki: String,
    /// `host:port` of the HTTP/3 (UDP) listener (None with `--no-h3`).
    pub h3: Option<String>,
    /// Start-up lines that are neither a listener nor the pin.
    pub other_lines: Vec<String>,
}

impl DevServerProcess {
    /// Runs `h2ws-devserver ARGS` and reads its start-up lines up to the SPKI pin, which comes
    /// last (the whole banner is read: a pipe closed before it would fail the server's println).
    pub fn start(args: &[&str]) -> DevServerProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_h2ws-devserver"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn h2ws-devserver");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let (mut https, mut http, mut h3, mut other_lines) = (None, None, None, Vec::new());
        let spki = loop {
            let line = lines.next().expect("a start-up line").expect("utf-8");
            if let Some(a) = line.strip_prefix("listening https://") {
                https = Some(a.to_string());
            } else if let Some(a) = line.strip_prefix("listening http://") {
                http = Some(a.to_string());
            } else if let Some(a) = line.strip_prefix("h3 udp://") {
                h3 = Some(a.to_string());
            } else if let Some(b64) = line.strip_prefix("spki-sha256 ") {
                break b64.to_string();
            } else {
                other_lines.push(line);
            }
        };
        DevServerProcess {
            child,
            https: https.expect("a `listening https://` line"),
            http,
            spki,
            h3,
            other_lines,
        }
    }

    /// `h2ws-devserver --addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --cert-dir DIR ARGS`.
    pub fn on_ephemeral_ports(cert_dir: &std::path::Path, args: &[&str]) -> DevServerProcess {
        let mut all = vec![
            "--addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--cert-dir",
            cert_dir.to_str().expect("utf-8 path"),
        ];
        all.extend_from_slice(args);
        DevServerProcess::start(&all)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `https://host:port`.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.https)
    }
}

impl Drop for DevServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
