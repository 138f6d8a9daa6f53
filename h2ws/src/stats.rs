//! Counters for `/.h2ws/stats`: open sockets per transport and message/byte totals each way.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::socket::{Transport, TransportCell};

/// Live counters (atomics, updated by socket drivers).
#[derive(Default)]
pub struct Stats {
    open: [AtomicU64; Transport::ALL.len()],
    opened_total: AtomicU64,
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    resume_replayed_bytes: AtomicU64,
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
    /// Re-attaches that resumed a fetch socket after its transport broke (codec `resume`).
    #[serde(default)]
    pub resumes: u64,
    /// Re-attaches refused (wrong key or origin, a count the socket cannot honour, socket gone).
    #[serde(default)]
    pub resumes_refused: u64,
    /// Bytes the server sent again on re-attaches: what its clients had not acknowledged when
    /// their transport broke.
    #[serde(default)]
    pub resume_replayed_bytes: u64,
    /// The rooms of `/ws/chat` (and of apps using the same [`Rooms`](crate::Rooms)).
    #[serde(default)]
    pub rooms: Option<crate::rooms::RoomsSnapshot>,
}

impl Stats {
    pub(crate) fn opened(&self, t: Transport) {
        self.open[t.index()].fetch_add(1, Relaxed);
        self.opened_total.fetch_add(1, Relaxed);
    }

    /// Client → server: `messages` whole messages ended, `bytes` payload bytes.
    pub(crate) fn closed(&self, t: Transport) {
        self.open[t.index()].fetch_sub(1, Relaxed);
    }

    pub(crate) fn record_in(&self, messages: u64, bytes: usize) {
        self.messages_in.fetch_add(messages, Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
    }

    /// Server → client: `messages` whole messages ended, `bytes` payload bytes.
    /// Bytes a re-attach sent again (resume).
    pub(crate) fn record_replay(&self, bytes: u64) {
        self.resume_replayed_bytes.fetch_add(bytes, Relaxed);
    }

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
            resumes: 0,
            resumes_refused: 0,
            resume_replayed_bytes: self.resume_replayed_bytes.load(Relaxed),
            rooms: None,
        }
    }
}

impl Stats {
    /// Moves one open socket counted under `cell` to transport `t`.
    pub(crate) fn switch(&self, cell: &TransportCell, t: Transport) {
        let old = cell.replace(t);
        if old != t {
            self.open[t.index()].fetch_add(1, Relaxed);
            self.open[old.index()].fetch_sub(1, Relaxed);
        }
    }
}
