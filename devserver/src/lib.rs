//! `h2ws-devserver`: one HTTPS + HTTP/2 server hosting every h2ws transport on one path.
//!
//! - **Transports** (DESIGN §1), all ending in one app-facing [`Socket`]: fetch `stream` and
//!   `post` (browsers, `H2WebSocket`), the `native` mapping (one WebSocket frame per HTTP/2
//!   DATA frame), `rfc8441` (extended CONNECT), `rfc6455` (HTTP/1.1 upgrade).
//! - **Embedding**: [`route`] / [`SocketUpgrade`] serve h2ws sockets on a route of your own
//!   axum app. In a plain axum/hyper server that gives `stream`, `post`, `rfc8441` (with
//!   hyper's `enable_connect_protocol`) and `rfc6455`; `native` needs the devserver's own
//!   HTTP/2 loop ([`h2conn`]), used by [`Server`], and is refused with 501 elsewhere.
//!   Limits, timeouts, the Origin allowlist, fetch sessions and stats live in an [`Endpoint`]:
//!   add `.layer(axum::Extension(Endpoint::new(config)))` to your router to set them, else a
//!   process-wide default endpoint is used.
//! - **Rooms** ([`rooms`]): publish/subscribe between sockets ([`Rooms::serve`], `join`,
//!   `publish`), in-process or across server instances through Redis pub/sub; bounded member
//!   queues (a slow member is dropped, never waited for). `/ws/chat` is one room.
//! - **Several instances**: [`SocketConfig::instance_id`] puts the instance's name in fetch
//!   session tokens (`ID.RANDOM`) so a load balancer can route on it; another instance's token
//!   is answered 421.
//! - **Server**: TLS with a cached localhost certificate ([`tls`]), ALPN `h2`/`http/1.1`, a
//!   plain listener (HTTP/1.1 + h2c), apps (`/ws/echo`, `/ws/chat`, `/ws/upstream`), static
//!   files, `/.h2ws/stats`, graceful shutdown (sockets get Close 1001).
//!
//! ```no_run
//! # async fn demo() -> Result<(), h2ws_devserver::ServerError> {
//! use h2ws_devserver::{Server, Socket};
//!
//! // Serve your own app on every transport, next to the built-in ones.
//! let my_routes = axum::Router::new().route(
//!     "/ws/shout",
//!     h2ws_devserver::route(|mut socket: Socket| async move {
//!         while let Some(msg) = socket.recv().await {
//!             let reply = match msg {
//!                 h2ws_devserver::Message::Text(t) => t.to_uppercase().into(),
//!                 other => other,
//!             };
//!             if socket.send(reply).await.is_err() {
//!                 break;
//!             }
//!         }
//!     }),
//! );
//! let server = Server::new()
//!     .tls_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
//!     .http_addr(None)
//!     .routes(my_routes)
//!     .start()
//!     .await?;
//! println!("{}", server.tls_url().unwrap());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod apps;
pub mod client;
mod driver;
pub mod endpoint;
pub mod files;
pub mod h2conn;
mod listen;
pub mod rooms;
mod sessions;
pub mod socket;
pub mod stats;
pub mod tls;
mod transport;
pub mod upgrade;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::routing::{any, get};
use axum::{Extension, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use endpoint::{Endpoint, InstanceId, InvalidInstanceId, SocketConfig};
pub use rooms::{Broker, Member, RoomError, Rooms, RoomsConfig, RoomsSnapshot};
pub use socket::{
    CloseStatus, FragmentKind, HandshakeInfo, Incoming, Message, Socket, SocketError,
    SocketReceiver, SocketSender, Transport,
};
pub use stats::StatsSnapshot;
pub use tls::CertSource;
pub use upgrade::{route, Refusal, SocketUpgrade};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Gateway(#[from] apps::gateway::GatewayError),
    #[error("the server needs at least one listener")]
    NoListener,
}

/// Builder for the devserver.
#[derive(Clone)]
pub struct Server {
    tls_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    www: Option<PathBuf>,
    pkg: Option<PathBuf>,
    cert: Option<CertSource>,
    upstream: Option<String>,
    upstream_trust: Option<client::Trust>,
    config: SocketConfig,
    h2: h2conn::H2Settings,
    max_headers: usize,
    max_head_bytes: usize,
    routes: Option<Router>,
    apps: bool,
    rooms: Option<Rooms>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// HTTPS on 127.0.0.1:8443, plain HTTP on 127.0.0.1:8080, the built-in apps.
    pub fn new() -> Self {
        Server {
            tls_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8443))),
            http_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            www: None,
            pkg: None,
            cert: None,
            upstream: None,
            upstream_trust: None,
            config: SocketConfig::default(),
            h2: h2conn::H2Settings::default(),
            max_headers: 100,
            max_head_bytes: 64 << 10,
            routes: None,
            apps: true,
            rooms: None,
        }
    }

    /// The HTTPS listener (`None`: no TLS listener). Port 0 picks a free port.
    pub fn tls_addr(mut self, addr: impl Into<Option<SocketAddr>>) -> Self {
        self.tls_addr = addr.into();
        self
    }

    /// The plain listener (HTTP/1.1 + h2c; `None`: none). Port 0 picks a free port.
    pub fn http_addr(mut self, addr: impl Into<Option<SocketAddr>>) -> Self {
        self.http_addr = addr.into();
        self
    }

    /// The directory served at `/`.
    pub fn www(mut self, dir: impl Into<PathBuf>) -> Self {
        self.www = Some(dir.into());
        self
    }

    /// The directory served at `/pkg/` (the built npm package).
    pub fn pkg(mut self, dir: impl Into<PathBuf>) -> Self {
        self.pkg = Some(dir.into());
        self
    }

    /// Where the certificate comes from (default: generated, cached per user).
    pub fn cert(mut self, source: CertSource) -> Self {
        self.cert = Some(source);
        self
    }

    /// Enables `/ws/upstream`, bridged to this RFC 6455 backend (`ws://HOST:PORT/PATH` or
    /// `wss://HOST:PORT/PATH`).
    pub fn upstream(mut self, url: impl Into<String>) -> Self {
        self.upstream = Some(url.into());
        self
    }

    /// Which certificates a `wss://` upstream may present (default: none is trusted).
    pub fn upstream_trust(mut self, trust: client::Trust) -> Self {
        self.upstream_trust = Some(trust);
        self
    }

    /// Socket limits and timeouts (liveness, attach, close, Origin allowlist...).
    pub fn socket_config(mut self, config: SocketConfig) -> Self {
        self.config = config;
        self
    }

    /// HTTP/2 limits and timers of the server's own HTTP/2 loop (header list size, rapid-reset
    /// limits, idle connection timeout...). Its `send_timeout` is taken from the socket config.
    pub fn h2_settings(mut self, settings: h2conn::H2Settings) -> Self {
        self.h2 = settings;
        self
    }

    /// HTTP/1.1 request-head limits: at most `max_headers` fields and `max_bytes` bytes
    /// (default 100 and 64 KiB; larger → 431). HTTP/2 has its own, see [`Server::h2_settings`].
    pub fn http1_limits(mut self, max_headers: usize, max_bytes: usize) -> Self {
        self.max_headers = max_headers;
        self.max_head_bytes = max_bytes;
        self
    }

    /// Extra routes, merged with the built-in ones (paths must not overlap).
    pub fn routes(mut self, routes: Router) -> Self {
        self.routes = Some(routes);
        self
    }

    /// The rooms `/ws/chat` uses, e.g. [`Rooms::redis`] to fan out across instances (default:
    /// in-process). Their counters appear in `/.h2ws/stats` under `rooms`.
    pub fn rooms(mut self, rooms: Rooms) -> Self {
        self.rooms = Some(rooms);
        self
    }

    /// Whether to mount `/ws/echo`, `/ws/chat` (default: yes).
    pub fn builtin_apps(mut self, enabled: bool) -> Self {
        self.apps = enabled;
        self
    }

    /// The axum router the server serves (apps, stats, static files, extra routes), with the
    /// endpoint in its request extensions.
    pub fn router(&self, endpoint: &Endpoint) -> Result<Router, ServerError> {
        let mut router = Router::new().route("/.h2ws/stats", get(stats::handler));
        let rooms = self.rooms.clone().unwrap_or_default();
        if self.apps {
            let chat = apps::chat::Chat::with_rooms(rooms.clone());
            router = router
                .route("/ws/echo", any(apps::echo::handle))
                .route("/ws/chat", route(move |socket| chat.clone().run(socket)));
        }
        if let Some(url) = &self.upstream {
            let mut gateway = apps::gateway::Gateway::new(url)?;
            if let Some(trust) = &self.upstream_trust {
                gateway = gateway.with_trust(trust.clone());
            }
            router = router.route(
                "/ws/upstream",
                any(move |upgrade: SocketUpgrade| gateway.clone().handle(upgrade)),
            );
        }
        if let Some(extra) = &self.routes {
            router = router.merge(extra.clone());
        }
        if self.www.is_none() {
            router = router.fallback(|| async {
                Refusal::new(http::StatusCode::NOT_FOUND, "no such endpoint")
            });
        }
        router = files::routes(router, self.www.clone(), self.pkg.clone());
        Ok(router
            .layer(Extension(rooms))
            .layer(Extension(endpoint.clone())))
    }

    /// Binds the listeners and starts serving.
    pub async fn start(self) -> Result<RunningServer, ServerError> {
        if self.tls_addr.is_none() && self.http_addr.is_none() {
            return Err(ServerError::NoListener);
        }
        let endpoint = Endpoint::new(self.config.clone());
        let router = self.router(&endpoint)?;
        let shutdown = CancellationToken::new();
        let connections = TaskTracker::new();
        let h2 = h2conn::H2Settings {
            send_timeout: self.config.send_timeout,
            ..self.h2.clone()
        };
        let serving = listen::Serving {
            router,
            h2,
            http1: listen::Http1Limits {
                max_headers: self.max_headers,
                max_head_bytes: self.max_head_bytes,
            },
            shutdown: shutdown.clone(),
            connections: connections.clone(),
        };
        let mut running = RunningServer {
            tls_addr: None,
            http_addr: None,
            spki_sha256: None,
            endpoint,
            shutdown,
            connections,
            listeners: TaskTracker::new(),
        };
        if let Some(addr) = self.tls_addr {
            let source = match &self.cert {
                Some(s) => s.clone(),
                None => CertSource::default_generated()?,
            };
            let identity = tls::Identity::load(&source)?;
            let config = identity.server_config()?;
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?;
            running.tls_addr = listener.local_addr().ok();
            running.spki_sha256 = Some(identity.spki_sha256.clone());
            running
                .listeners
                .spawn(listen::run_tls(listener, config, serving.clone()));
        }
        if let Some(addr) = self.http_addr {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?;
            running.http_addr = listener.local_addr().ok();
            running
                .listeners
                .spawn(listen::run_plain(listener, serving.clone()));
        }
        Ok(running)
    }
}

/// A started server.
pub struct RunningServer {
    tls_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    spki_sha256: Option<String>,
    endpoint: Endpoint,
    shutdown: CancellationToken,
    connections: TaskTracker,
    listeners: TaskTracker,
}

impl RunningServer {
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// `https://127.0.0.1:PORT`
    pub fn tls_url(&self) -> Option<String> {
        self.tls_addr.map(|a| format!("https://{a}"))
    }

    /// `http://127.0.0.1:PORT`
    pub fn http_url(&self) -> Option<String> {
        self.http_addr.map(|a| format!("http://{a}"))
    }

    /// base64(sha256(SPKI)) of the TLS certificate.
    pub fn spki_sha256(&self) -> Option<&str> {
        self.spki_sha256.as_deref()
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The stable start-up lines tests and scripts parse:
    /// `listening https://ADDR`, `listening http://ADDR`, `spki-sha256 BASE64`.
    pub fn banner(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(url) = self.tls_url() {
            lines.push(format!("listening {url}"));
        }
        if let Some(url) = self.http_url() {
            lines.push(format!("listening {url}"));
        }
        if let Some(spki) = &self.spki_sha256 {
            lines.push(format!("spki-sha256 {spki}"));
        }
        lines
    }

    /// Graceful shutdown: every socket gets Close 1001 (waiting up to the close timeout for
    /// the handshake), then listeners stop and connections end.
    pub async fn shutdown(self) {
        let close_timeout = self.endpoint.config().close_timeout;
        self.endpoint.shutdown();
        let _ = tokio::time::timeout(
            close_timeout + Duration::from_secs(1),
            self.endpoint.wait_closed(),
        )
        .await;
        self.shutdown.cancel();
        self.listeners.close();
        self.listeners.wait().await;
        self.connections.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.connections.wait()).await;
    }
}
