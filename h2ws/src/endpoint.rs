//! The shared state behind every socket route: limits, timeouts, the Origin allowlist, fetch
//! sessions, statistics and the shutdown signal. One [`Endpoint`] per server; routes find it in
//! the request extensions (the [`Server`](crate::Server) inserts it; an app of its own adds
//! `.layer(axum::Extension(endpoint))`). There is no process-wide default: a route without one
//! answers 500 and logs why.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::origin_allowed;
pub use crate::config::{InstanceId, InvalidInstanceId, SocketConfig};
use crate::sessions::Sessions;
use crate::stats::Stats;

pub(crate) struct Inner {
    pub(crate) config: SocketConfig,
    pub(crate) sessions: Sessions,
    pub(crate) stats: Stats,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
}

/// Shared state for socket routes (cheap to clone).
#[derive(Clone)]
pub struct Endpoint(pub(crate) Arc<Inner>);

impl Endpoint {
    pub fn new(config: SocketConfig) -> Self {
        Endpoint(Arc::new(Inner {
            sessions: Sessions::new(config.expired_token_ttl),
            config,
            stats: Stats::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }))
    }

    pub fn config(&self) -> &SocketConfig {
        &self.0.config
    }

    pub fn stats(&self) -> &Stats {
        &self.0.stats
    }

    /// Start a graceful shutdown: every open socket is closed with 1001.
    pub fn shutdown(&self) {
        self.0.shutdown.cancel();
    }

    /// Waits until every socket task of this endpoint ended (call after [`shutdown`](Self::shutdown)).
    pub async fn wait_closed(&self) {
        self.0.tasks.close();
        self.0.tasks.wait().await;
    }

    /// Answers a fetch upstream request (`stream` attach, `post` batch, read ack) from this
    /// endpoint's sessions. The head is checked before the future is made, which holds only
    /// what serving the request needs (a `stream` upstream is served as long as its socket
    /// lives).
    pub(crate) fn serve_upstream(
        &self,
        parts: http::request::Parts,
        body: axum::body::Body,
    ) -> impl std::future::Future<Output = axum::response::Response> + Send + 'static {
        let checked = crate::sessions::check(&self.upstream(), parts);
        let endpoint = self.clone();
        async move { crate::sessions::serve(&endpoint.upstream(), checked, body).await }
    }

    fn upstream(&self) -> crate::sessions::Upstream<'_> {
        crate::sessions::Upstream {
            sessions: &self.0.sessions,
            config: &self.0.config,
            stats: &self.0.stats,
        }
    }

    /// Whether `origin` may open a socket on a request whose authority is `authority`.
    pub fn origin_allowed(&self, origin: &str, authority: Option<&str>) -> bool {
        origin_allowed(origin, authority, &self.0.config.allowed_origins)
    }
}

/// `/.h2ws/stats`: the endpoint's counters, its fetch sessions' and the rooms'. Here, not in
/// `stats`, because it reads the whole endpoint: `stats` stays a leaf the driver counts into.
pub(crate) async fn stats_handler(
    axum::extract::Extension(endpoint): axum::extract::Extension<Endpoint>,
    rooms: Option<axum::extract::Extension<crate::rooms::Rooms>>,
) -> impl axum::response::IntoResponse {
    let mut snapshot = endpoint.stats().snapshot();
    snapshot.pending_attaches = endpoint.0.sessions.pending_attaches() as u64;
    snapshot.instance = endpoint
        .config()
        .instance_id
        .as_ref()
        .map(|i| i.to_string());
    (snapshot.sessions_misdirected, snapshot.sessions_unknown) = endpoint.0.sessions.refused();
    (snapshot.resumes, snapshot.resumes_refused) = endpoint.0.sessions.resumes();
    snapshot.rooms = rooms.map(|r| r.0.snapshot());
    (
        [(http::header::CACHE_CONTROL, "no-store")],
        axum::Json(snapshot),
    )
}
