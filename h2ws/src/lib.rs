//! `h2ws`: WebSockets over HTTP/2 and over browser fetch() streams, on tokio. The sans-IO
//! protocol lives in `h2ws-codec`; this crate drives it on sockets (as `quinn` drives
//! `quinn-proto`).
//!
//! - **Transports** (DESIGN §1), all ending in one app-facing [`Socket`]: fetch `stream` and
//!   `post` (browsers, `H2WebSocket`), the `native` mapping (one WebSocket frame per HTTP/2
//!   DATA frame), `rfc8441` (extended CONNECT), `rfc6455` (HTTP/1.1 upgrade).
//! - **Embedding**: [`route`] / [`SocketUpgrade`] serve h2ws sockets on a route of your own
//!   axum app. In a plain axum/hyper server that gives `stream`, `post`, `rfc8441` (with
//!   hyper's `enable_connect_protocol`) and `rfc6455`; `native` needs this crate's own
//!   HTTP/2 loop ([`h2conn`]), used by [`Server`], and is refused with 501 elsewhere.
//!   Limits, timeouts, the Origin allowlist, fetch sessions and stats live in an [`Endpoint`]:
//!   add `.layer(axum::Extension(Endpoint::new(config)))` to your router ([`Server`] does it
//!   for its routes; a route without one answers 500 and logs why).
//!   [`upgrade_route`] takes a handler of yours (with a [`SocketUpgrade`]) for the opens.
//! - **Rooms** ([`rooms`]): publish/subscribe between sockets ([`Rooms::serve`], `join`,
//!   `publish`), in-process or across server instances through Redis pub/sub; bounded member
//!   queues (a slow member is dropped, never waited for).
//! - **Several instances**: [`SocketConfig::instance_id`] puts the instance's name in fetch
//!   session tokens (`ID.RANDOM`) so a load balancer can route on it; another instance's token
//!   is answered 421.
//! - **Server**: TLS from a PEM certificate and key ([`tls::Identity`]), ALPN `h2`/`http/1.1`,
//!   HTTP/3 over QUIC on the same port ([`h3conn`], advertised with `Alt-Svc`), a plain listener
//!   (HTTP/1.1 + h2c), your routes, `/.h2ws/stats`, graceful shutdown (sockets get Close 1001).
//! - **Client** ([`client`]): every transport from native code (HTTP/2, HTTP/1.1, TLS pins),
//!   handing out the same [`Socket`] as the server ([`Socket::role`] tells the ends apart).
//!
//! ```no_run
//! # async fn demo() -> Result<(), h2ws::ServerError> {
//! use h2ws::{Server, Socket};
//!
//! let my_routes = axum::Router::new().route(
//!     "/ws/shout",
//!     h2ws::route(|mut socket: Socket| async move {
//!         while let Some(msg) = socket.recv().await {
//!             let reply = match msg {
//!                 h2ws::Message::Text(t) => t.to_uppercase().into(),
//!                 other => other,
//!             };
//!             if socket.send(reply).await.is_err() {
//!                 break;
//!             }
//!         }
//!     }),
//! );
//! let identity = h2ws::tls::Identity::from_pem_files("cert.pem".as_ref(), "key.pem".as_ref())?;
//! let server = Server::new()
//!     .tls_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
//!     .tls_identity(identity)
//!     .http_addr(None)
//!     .routes(my_routes)
//!     .start()
//!     .await?;
//! println!("{}", server.tls_url().unwrap());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod client;
mod config;
mod driver;
pub mod endpoint;
pub mod h2conn;
pub mod h3conn;
mod listen;
mod read_window;
mod reply;
mod request;
pub mod rooms;
mod sessions;
pub mod socket;
pub mod spki;
pub mod stats;
pub mod tls;
mod transport;
pub mod upgrade;
mod wiring;

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use endpoint::{Endpoint, InstanceId, InvalidInstanceId, SocketConfig};
pub use request::Refusal;
pub use rooms::{Broker, Member, RoomError, Rooms, RoomsConfig, RoomsSnapshot};
pub use socket::{
    CloseStatus, FragmentKind, Handshake, HandshakeInfo, Incoming, Message, Role, Socket,
    SocketError, SocketReceiver, SocketSender, Transport,
};
pub use stats::StatsSnapshot;
pub use tls::{Identity, TlsError};
pub use upgrade::{route, upgrade_route, SocketUpgrade};

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
    #[error("a TLS listener needs a certificate: set Server::tls_identity")]
    NoIdentity,
    #[error("the server needs at least one listener")]
    NoListener,
    #[error(transparent)]
    H3(#[from] h3conn::H3Error),
}

/// Builder for a server hosting every transport: TLS (HTTP/2 by ALPN, HTTP/1.1), HTTP/3 on UDP
/// at the TLS port, and plain (HTTP/1.1 + h2c) listeners running this crate's own HTTP/2 and
/// HTTP/3 loops, your axum routes, `/.h2ws/stats`.
#[derive(Clone)]
pub struct Server {
    tls_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    identity: Option<tls::Identity>,
    config: SocketConfig,
    h2: h2conn::H2Settings,
    h3: Option<h3conn::H3Settings>,
    max_headers: usize,
    max_head_bytes: usize,
    routes: Router,
    fallback: Option<Router>,
    rooms: Option<Rooms>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// HTTPS on 127.0.0.1:8443 (needs [`Server::tls_identity`]), plain HTTP on
    /// 127.0.0.1:8080, no routes of yours yet.
    pub fn new() -> Self {
        Server {
            tls_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8443))),
            http_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            identity: None,
            config: SocketConfig::default(),
            h2: h2conn::H2Settings::default(),
            h3: Some(h3conn::H3Settings::default()),
            max_headers: 100,
            max_head_bytes: 64 << 10,
            routes: Router::new(),
            fallback: None,
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

    /// The certificate chain and key of the TLS listener.
    pub fn tls_identity(mut self, identity: tls::Identity) -> Self {
        self.identity = Some(identity);
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

    /// HTTP/3 on UDP at the TLS listener's port (default: on, with [`h3conn::H3Settings`]
    /// defaults; `None`: off). The TLS listener's HTTP/2 and HTTP/1.1 responses then carry
    /// `Alt-Svc: h3=":PORT"; ma=86400`, which is how browsers learn to use it. Its
    /// `send_timeout` is taken from the socket config.
    pub fn h3_settings(mut self, settings: impl Into<Option<h3conn::H3Settings>>) -> Self {
        self.h3 = settings.into();
        self
    }

    /// HTTP/1.1 request-head limits: at most `max_headers` fields and `max_bytes` bytes
    /// (default 100 and 64 KiB; larger → 431). HTTP/2 has its own, see [`Server::h2_settings`].
    pub fn http1_limits(mut self, max_headers: usize, max_bytes: usize) -> Self {
        self.max_headers = max_headers;
        self.max_head_bytes = max_bytes;
        self
    }

    /// Routes to serve, merged with those given before and with `/.h2ws/stats` (paths must not
    /// overlap; a router with a fallback of its own panics here, give that to
    /// [`Server::fallback`]).
    pub fn routes(mut self, routes: Router) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// What answers requests no route matches (default: 404 "no such endpoint"), e.g. a static
    /// file service.
    pub fn fallback(mut self, fallback: Router) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// The rooms of this server, in every request's extensions (`Extension<Rooms>`), e.g.
    /// [`Rooms::redis`] to fan out across instances (default: in-process). Their counters
    /// appear in `/.h2ws/stats` under `rooms`.
    pub fn rooms(mut self, rooms: Rooms) -> Self {
        self.rooms = Some(rooms);
        self
    }

    /// The axum router the server serves (your routes, stats, the fallback), with the endpoint
    /// and the rooms in its request extensions.
    pub fn router(&self, endpoint: &Endpoint) -> Router {
        let router = Router::new()
            .route("/.h2ws/stats", get(endpoint::stats_handler))
            .merge(self.routes.clone());
        let router = match &self.fallback {
            Some(fallback) => router.fallback_service(fallback.clone()),
            None => router.fallback(|| async {
                Refusal::new(http::StatusCode::NOT_FOUND, "no such endpoint")
            }),
        };
        router
            .layer(Extension(self.rooms.clone().unwrap_or_default()))
            .layer(Extension(endpoint.clone()))
    }

    /// Binds the listeners and starts serving.
    pub async fn start(self) -> Result<RunningServer, ServerError> {
        if self.tls_addr.is_none() && self.http_addr.is_none() {
            return Err(ServerError::NoListener);
        }
        let endpoint = Endpoint::new(self.config.clone());
        let router = self.router(&endpoint);
        let shutdown = CancellationToken::new();
        let connections = TaskTracker::new();
        let h2 = h2conn::H2Settings {
            send_timeout: self.config.send_timeout,
            ..self.h2.clone()
        };
        let serving = listen::Serving {
            router: router.clone(),
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
            h3_addr: None,
            http_addr: None,
            spki_sha256: None,
            endpoint,
            shutdown,
            connections,
            listeners: TaskTracker::new(),
        };
        if let Some(addr) = self.tls_addr {
            let identity = self.identity.as_ref().ok_or(ServerError::NoIdentity)?;
            let config = identity.server_config()?;
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| ServerError::Bind { addr, source })?;
            running.tls_addr = Some(bound);
            running.spki_sha256 = Some(identity.spki_sha256.clone());
            let mut tls_serving = serving.clone();
            if let Some(h3) = &self.h3 {
                let h3 = h3conn::H3Settings {
                    send_timeout: self.config.send_timeout,
                    ..h3.clone()
                };
                let quic = h3conn::server_config(identity.quic_server_config()?, &h3)?;
                let endpoint =
                    quinn::Endpoint::server(quic, bound).map_err(|source| ServerError::Bind {
                        addr: bound,
                        source,
                    })?;
                running.h3_addr = endpoint.local_addr().ok();
                tls_serving.router = listen::with_alt_svc(router.clone(), bound.port());
                running.listeners.spawn(h3conn::run(
                    endpoint,
                    router.clone(),
                    h3,
                    serving.shutdown.clone(),
                    serving.connections.clone(),
                ));
            }
            running
                .listeners
                .spawn(listen::run_tls(listener, config, tls_serving));
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
    h3_addr: Option<SocketAddr>,
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

    /// The UDP address HTTP/3 is served on (the TLS listener's, unless turned off).
    pub fn h3_addr(&self) -> Option<SocketAddr> {
        self.h3_addr
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
    /// `listening https://ADDR`, `listening http://ADDR`, `h3 udp://ADDR` (HTTP/3 on),
    /// `spki-sha256 BASE64`.
    pub fn banner(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(url) = self.tls_url() {
            lines.push(format!("listening {url}"));
        }
        if let Some(url) = self.http_url() {
            lines.push(format!("listening {url}"));
        }
        if let Some(addr) = self.h3_addr {
            lines.push(format!("h3 udp://{addr}"));
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
