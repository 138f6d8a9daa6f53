//! Socket limits and timeouts ([`SocketConfig`]) and the rules that read only them (the Origin
//! allowlist). A leaf module: the endpoint, the fetch sessions and the request toolbox all read
//! the config, so it imports none of them.

use std::time::Duration;

/// Limits and timeouts for sockets. `Default` gives the documented values.
#[derive(Clone, Debug)]
pub struct SocketConfig {
    /// Largest incoming message (after inflation), bytes; larger → Close 1009.
    pub max_message_size: usize,
    /// Largest incoming frame, bytes; larger → Close 1009.
    pub max_frame_size: usize,
    /// At most this many open sockets per endpoint (fetch opens past it → 503, others → 503).
    pub max_sockets: usize,
    /// Send a Ping after this long without receiving anything (DESIGN §2.5: 30 s).
    pub ping_after: Duration,
    /// Drop a socket after this long without receiving anything (DESIGN §2.5: 60 s).
    pub idle_timeout: Duration,
    /// A fetch session whose upstream has not attached by then is closed with 1011 (10 s).
    pub attach_timeout: Duration,
    /// After our Close frame, wait this long for the peer's before ending the transport.
    pub close_timeout: Duration,
    /// Longest wait for the peer to take one outgoing frame (flow control, TCP).
    pub send_timeout: Duration,
    /// Extra allowed `Origin`s (exact `scheme://host[:port]`); same origin and
    /// `localhost` / `127.0.0.1` / `[::1]` on any port are always allowed.
    pub allowed_origins: Vec<String>,
    /// Messages queued between a socket's driver and the app, each way.
    pub queue_depth: usize,
    /// How long an ended fetch session's token is remembered (→ 410 instead of 404).
    pub expired_token_ttl: Duration,
    /// At most this many fetch sessions waiting for their upstream at once (further opens → 503).
    pub max_pending_attaches: usize,
    /// This server's name among several behind one load balancer. Fetch session tokens then
    /// start with `ID.` so the balancer can send a session's upstream requests to the instance
    /// that holds it without shared state; a token of another instance is answered 421.
    pub instance_id: Option<InstanceId>,
    /// Lossless resume of fetch sessions (codec `resume`) for clients that offer it: how long a
    /// session whose transport broke waits for a re-attach, and how much it keeps for replay.
    /// `None` = never offered (clients then see a transport loss as 1006, as without resume).
    pub resume: Option<h2ws_codec::resume::ResumeConfig>,
}

/// A server instance's name in session tokens: 1 to 32 of `A-Z a-z 0-9 - _`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InstanceId(String);

/// Why a string is not an [`InstanceId`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("instance id {0:?}: use 1 to 32 of A-Z a-z 0-9 - _")]
pub struct InvalidInstanceId(pub String);

impl InstanceId {
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidInstanceId> {
        let id = id.into();
        if h2ws_codec::handshake::fetch::is_valid_instance_id(id.as_bytes()) {
            Ok(InstanceId(id))
        } else {
            Err(InvalidInstanceId(id))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for InstanceId {
    type Err = InvalidInstanceId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InstanceId::new(s)
    }
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            max_message_size: 64 << 20,
            max_frame_size: 16 << 20,
            max_sockets: 10_000,
            ping_after: h2ws_codec::timer::PING_AFTER,
            idle_timeout: h2ws_codec::timer::IDLE_TIMEOUT,
            attach_timeout: h2ws_codec::timer::ATTACH_TIMEOUT,
            close_timeout: h2ws_codec::timer::CLOSE_TIMEOUT,
            send_timeout: Duration::from_secs(30),
            allowed_origins: Vec::new(),
            queue_depth: 16,
            expired_token_ttl: Duration::from_secs(300),
            max_pending_attaches: 1_000,
            instance_id: None,
            resume: Some(h2ws_codec::resume::ResumeConfig::default()),
        }
    }
}

/// Same origin, loopback names on any port, or an exact match in `extra`.
pub(crate) fn origin_allowed(origin: &str, authority: Option<&str>, extra: &[String]) -> bool {
    if extra
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some((_scheme, host_port)) = origin.split_once("://") else {
        return false;
    };
    if authority.is_some_and(|a| a.eq_ignore_ascii_case(host_port)) {
        return true;
    }
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, _)) => h,
            None => return false,
        }
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1") || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn origins() {
        assert!(origin_allowed("https://localhost:8443", None, &[]));
        assert!(origin_allowed("http://127.0.0.1:1", None, &[]));
        assert!(origin_allowed("https://[::1]:9", None, &[]));
        assert!(origin_allowed(
            "https://example.com",
            Some("example.com"),
            &[]
        ));
        assert!(!origin_allowed(
            "https://evil.com",
            Some("example.com"),
            &[]
        ));
        assert!(!origin_allowed("https://localhost.evil.com", None, &[]));
        assert!(!origin_allowed("null", None, &[]));
        assert!(origin_allowed(
            "https://app.test",
            None,
            &["https://app.test".into()]
        ));
    }
}
