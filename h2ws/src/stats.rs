//! Counters for `/.h2ws/stats`: open sockets per transport and message/byte totals each way.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::socket::Transport;

/// Live counters (atomics, updated by socket drivers).
#[derive(Default)]
pub struct Stats {
    open: [AtomicU64; Transport::ALL.len()],
    opened_total: AtomicU64,
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// A JSON snapshot of [`Stats`].
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Open sockets by transport name (`stream`, `post`, `native`, `rfc8441`, `rfc6455`).
    pub open: std::collections::BTreeMap<String, u64>,
    pub open_total: u64,
    pub opened_total: u64,
    /// Client → server.
    pub messages_in: u64,
    pub bytes_in: u64,
    /// Server → client.
    pub messages_out: u64,
    pub bytes_out: u64,
    /// Fetch sessions waiting for their upstream to attach.
    #[serde(default)]
    pub pending_attaches: u64,
    /// This server's instance id (`--instance-id`), if any.
    #[serde(default)]
    pub instance: Option<String>,
    /// Upstream requests answered 421: their token names another instance (a load balancer
    /// that does not route on the instance id or lost its stickiness).
    #[serde(default)]
    pub sessions_misdirected: u64,
    /// Upstream requests answered 404 or 410 (unknown or ended session).
    #[serde(default)]
    pub sessions_unknown: u64,
    /// The rooms of `/ws/chat` (and of apps using the same [`Rooms`](crate::Rooms)).
    #[serde(default)]
    pub rooms: Option<crate::rooms::RoomsSnapshot>,
}

impl Stats {
    fn opened(&self, t: Transport) {
        self.open[t.index()].fetch_add(1, Relaxed);
        self.opened_total.fetch_add(1, Relaxed);
    }

    /// Client → server: `messages` whole messages ended, `bytes` payload bytes.
    pub(crate) fn record_in(&self, messages: u64, bytes: usize) {
        self.messages_in.fetch_add(messages, Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
    }

    /// Server → client: `messages` whole messages ended, `bytes` payload bytes.
    pub(crate) fn record_out(&self, messages: u64, bytes: usize) {
        self.messages_out.fetch_add(messages, Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Relaxed);
    }

    /// Open sockets, all transports.
    pub fn open_total(&self) -> u64 {
        self.open.iter().map(|a| a.load(Relaxed)).sum()
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let open = Transport::ALL
            .iter()
            .map(|t| (t.as_str().to_string(), self.open[t.index()].load(Relaxed)))
            .collect();
        StatsSnapshot {
            open,
            open_total: self.open_total(),
            opened_total: self.opened_total.load(Relaxed),
            messages_in: self.messages_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            messages_out: self.messages_out.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            pending_attaches: 0,
            instance: None,
            sessions_misdirected: 0,
            sessions_unknown: 0,
            rooms: None,
        }
    }
}

/// The transport a socket is counted under. A fetch socket is counted under a guess from its
/// open (`stream` on HTTP/2, `post` on HTTP/1.1) and switches to what actually attached when
/// its upstream arrives: the server offers both on either HTTP version (behind a proxy it sees
/// HTTP/1.1 of an HTTP/2 browser) and the client decides, falling back to `post`.
pub(crate) struct TransportCell(std::sync::atomic::AtomicU8);

impl TransportCell {
    pub(crate) fn new(t: Transport) -> Self {
        TransportCell(std::sync::atomic::AtomicU8::new(t.index() as u8))
    }

    pub(crate) fn get(&self) -> Transport {
        Transport::ALL[self.0.load(Relaxed) as usize]
    }
}

/// Counts one open socket while alive.
pub(crate) struct OpenGuard {
    endpoint: crate::Endpoint,
    cell: std::sync::Arc<TransportCell>,
}

impl OpenGuard {
    pub(crate) fn new(endpoint: &crate::Endpoint, cell: std::sync::Arc<TransportCell>) -> Self {
        endpoint.stats().opened(cell.get());
        OpenGuard {
            endpoint: endpoint.clone(),
            cell,
        }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.endpoint.stats().open[self.cell.get().index()].fetch_sub(1, Relaxed);
    }
}

impl Stats {
    /// Moves one open socket counted under `cell` to transport `t`.
    pub(crate) fn switch(&self, cell: &TransportCell, t: Transport) {
        let old = cell.0.swap(t.index() as u8, Relaxed);
        if old as usize != t.index() {
            self.open[t.index()].fetch_add(1, Relaxed);
            self.open[old as usize].fetch_sub(1, Relaxed);
        }
    }
}

/// `GET /.h2ws/stats`.
pub(crate) async fn handler(
    axum::extract::Extension(endpoint): axum::extract::Extension<crate::Endpoint>,
    rooms: Option<axum::extract::Extension<crate::Rooms>>,
) -> impl axum::response::IntoResponse {
    let mut snapshot = endpoint.stats().snapshot();
    snapshot.pending_attaches = endpoint.0.sessions.pending_attaches() as u64;
    snapshot.instance = endpoint
        .config()
        .instance_id
        .as_ref()
        .map(|i| i.to_string());
    (snapshot.sessions_misdirected, snapshot.sessions_unknown) = endpoint.0.sessions.refused();
    snapshot.rooms = rooms.map(|r| r.0.snapshot());
    (
        [(http::header::CACHE_CONTROL, "no-store")],
        axum::Json(snapshot),
    )
}
