//! `h2ws-devserver` command line (see `--help`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use h2ws_devserver::{CertSource, Server, SocketConfig};

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
    /// Also allow this Origin (repeatable; same origin and localhost are always allowed).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// Largest incoming message in bytes (larger: close 1009).
    #[arg(long, value_name = "BYTES")]
    max_message: Option<usize>,
    /// Most open sockets at once.
    #[arg(long, value_name = "N")]
    max_sockets: Option<usize>,
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
        ..SocketConfig::default()
    };
    if let Some(n) = cli.max_message {
        config.max_message_size = n;
        config.max_frame_size = config.max_frame_size.min(n.max(125));
    }
    if let Some(n) = cli.max_sockets {
        config.max_sockets = n;
    }
    let mut server = Server::new()
        .tls_addr(cli.addr)
        .http_addr((!cli.no_http).then_some(cli.http_addr))
        .socket_config(config);
    if let Some(www) = cli.www {
        server = server.www(www);
    }
    if let Some(pkg) = cli.pkg {
        server = server.pkg(pkg);
    }
    if let (Some(cert), Some(key)) = (cli.cert, cli.key) {
        server = server.cert(CertSource::Files { cert, key });
    } else if let Some(dir) = cli.cert_dir {
        server = server.cert(CertSource::Generated { dir });
    }
    if let Some(upstream) = cli.upstream {
        server = server.upstream(upstream);
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
