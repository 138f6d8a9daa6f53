//! `h2ws-devserver` command line (see `--help`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use h2ws::h2conn::H2Settings;
use h2ws::h3conn::H3Settings;
use h2ws::{Server, SocketConfig};
use h2ws_devserver::apps::gateway::Gateway;
use h2ws_devserver::cert::CertSource;
use h2ws_devserver::{apps, files};

/// HTTPS + HTTP/2 development server hosting every h2ws transport on one path.
#[derive(Parser, Debug)]
#[command(name = "h2ws-devserver", version)]
struct Cli {
    /// HTTPS listener (HTTP/2 and HTTP/1.1 by ALPN).
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    /// Plain listener (HTTP/1.1 and h2c prior knowledge).
    #[arg(long, default_value = "127.0.0.1:8080", conflicts_with = "no_http")]
    http_addr: SocketAddr,
    /// No plain listener.
    #[arg(long)]
    no_http: bool,
    /// No HTTP/3 (by default it is served on UDP at the --addr port and advertised with
    /// `Alt-Svc` on the HTTPS listener's responses).
    #[arg(long)]
    no_h3: bool,
    /// Directory served at `/` (the demo page).
    #[arg(long)]
    www: Option<PathBuf>,
    /// Directory served at `/pkg/` (the built npm package, wasm/pkg).
    #[arg(long)]
    pkg: Option<PathBuf>,
    /// Certificate chain (PEM); needs --key.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM); needs --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Where the generated localhost certificate is kept (default: per-user cache dir).
    #[arg(long, conflicts_with = "cert")]
    cert_dir: Option<PathBuf>,
    /// Enables /ws/upstream, bridged to this RFC 6455 backend.
    #[arg(long, value_name = "ws://HOST:PORT/PATH")]
    upstream: Option<String>,
    /// Certificate(s) a wss:// upstream must present (PEM; pinned, no name or date checks).
    #[arg(long, value_name = "PEM", requires = "upstream")]
    upstream_cert: Option<PathBuf>,
    /// Also allow this Origin (repeatable; same origin and localhost are always allowed).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// Largest incoming message in bytes (larger: close 1009).
    #[arg(long, value_name = "BYTES")]
    max_message: Option<usize>,
    /// Most open sockets at once.
    #[arg(long, value_name = "N")]
    max_sockets: Option<usize>,
    /// Ping a socket after this many seconds without traffic (default 30).
    #[arg(long, value_name = "SECS")]
    ping_interval: Option<f64>,
    /// Drop a socket (1006) after this many seconds without traffic (default 60).
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<f64>,
    /// Close a fetch session whose upstream has not attached within this many seconds with
    /// 1011 (default 10).
    #[arg(long, value_name = "SECS")]
    attach_timeout: Option<f64>,
    /// Most fetch sessions waiting for their upstream at once; further opens → 503 (default 1000).
    #[arg(long, value_name = "N")]
    max_pending_attaches: Option<usize>,
    /// Resume: how long a fetch session whose transport broke waits for its client to
    /// re-attach (default 30; 0 turns resume off: clients that offer it are not answered).
    #[arg(long, value_name = "SECS")]
    resume_grace: Option<f64>,
    /// Resume: the most bytes of unacknowledged frames a session keeps for replay, each way
    /// (default 1048576).
    #[arg(long, value_name = "BYTES")]
    resume_buffer: Option<usize>,
    /// Largest request header block, bytes: HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE, HTTP/3
    /// SETTINGS_MAX_FIELD_SECTION_SIZE and the HTTP/1.1 request head (default 65536; larger → 431).
    #[arg(long, value_name = "BYTES")]
    max_header_bytes: Option<u32>,
    /// This instance's name behind a load balancer (1 to 32 of A-Z a-z 0-9 - _): fetch session
    /// tokens start with `ID.` so the balancer can route on them; another instance's token → 421.
    #[arg(long, value_name = "ID")]
    instance_id: Option<h2ws::InstanceId>,
    /// Fan `/ws/chat` out through this Redis server's pub/sub, to every instance using it
    /// (default: in-process). Must be reachable at start; later outages are retried.
    #[arg(long, value_name = "redis://HOST:PORT")]
    broker: Option<String>,
    /// Close HTTP/2 connections without open streams after this many seconds (default 180).
    #[arg(long, value_name = "SECS")]
    h2_idle_timeout: Option<f64>,
}

/// Seconds from the command line as a duration (clap already checked it is a number).
fn secs(s: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(s.max(0.001)).unwrap_or(std::time::Duration::MAX)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut config = SocketConfig {
        allowed_origins: cli.allow_origin,
        instance_id: cli.instance_id,
        ..SocketConfig::default()
    };
    if let Some(n) = cli.max_message {
        config.max_message_size = n;
        config.max_frame_size = config.max_frame_size.min(n.max(125));
    }
    if let Some(n) = cli.max_sockets {
        config.max_sockets = n;
    }
    if let Some(s) = cli.ping_interval {
        config.ping_after = secs(s);
    }
    if let Some(s) = cli.idle_timeout {
        config.idle_timeout = secs(s);
    }
    if let Some(s) = cli.attach_timeout {
        config.attach_timeout = secs(s);
    }
    if let Some(n) = cli.max_pending_attaches {
        config.max_pending_attaches = n;
    }
    if let Some(s) = cli.resume_grace {
        config.resume = (s > 0.0).then(|| h2ws_codec::resume::ResumeConfig {
            grace: secs(s),
            ..config.resume.unwrap_or_default()
        });
    }
    if let (Some(n), Some(resume)) = (cli.resume_buffer, config.resume.as_mut()) {
        resume.max_replay_bytes = n;
    }
    let mut h2 = H2Settings::default();
    let mut max_head_bytes = 64 << 10;
    let mut h3 = H3Settings::default();
    if let Some(n) = cli.max_header_bytes {
        h2.max_header_list_size = n;
        h3.max_field_section_size = n;
        max_head_bytes = n as usize;
    }
    if let Some(s) = cli.h2_idle_timeout {
        h2.idle_timeout = secs(s);
    }
    let mut server = Server::new()
        .tls_addr(cli.addr)
        .http_addr((!cli.no_http).then_some(cli.http_addr))
        .socket_config(config)
        .h2_settings(h2)
        .h3_settings((!cli.no_h3).then_some(h3))
        .http1_limits(100, max_head_bytes)
        .routes(apps::routes());
    if let Some(www) = cli.www {
        server = server.fallback(files::www(www));
    }
    if let Some(pkg) = cli.pkg {
        server = server.routes(files::pkg(pkg));
    }
    let cert = match (cli.cert, cli.key, cli.cert_dir) {
        (Some(cert), Some(key), _) => Ok(CertSource::Files { cert, key }),
        (_, _, Some(dir)) => Ok(CertSource::Generated { dir }),
        _ => CertSource::default_generated(),
    };
    match cert.and_then(|source| source.load()) {
        Ok(identity) => server = server.tls_identity(identity),
        Err(e) => {
            eprintln!("h2ws-devserver: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    if let Some(url) = cli.broker {
        match h2ws::Rooms::redis(&url, h2ws::RoomsConfig::default()).await {
            Ok(rooms) => server = server.rooms(rooms),
            Err(e) => {
                eprintln!("h2ws-devserver: --broker: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    if let Some(upstream) = cli.upstream {
        let mut gateway = match Gateway::new(&upstream) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("h2ws-devserver: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        if let Some(pem) = cli.upstream_cert {
            let trust = std::fs::read(&pem)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    h2ws::client::Trust::certificates_pem(&bytes).map_err(|e| e.to_string())
                });
            match trust {
                Ok(t) => gateway = gateway.with_trust(t),
                Err(e) => {
                    eprintln!("h2ws-devserver: --upstream-cert {}: {e}", pem.display());
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        server = server.routes(gateway.routes());
    }
    let running = match server.start().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("h2ws-devserver: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    for line in running.banner() {
        println!("{line}");
    }
    wait_for_signal().await;
    tracing::info!("shutting down: closing sockets with 1001");
    running.shutdown().await;
    std::process::ExitCode::SUCCESS
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
