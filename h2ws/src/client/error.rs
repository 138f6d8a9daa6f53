//! Typed errors of the native client: one variant per way an open or a socket can fail.

use std::time::Duration;

use h2ws_codec::{ProtocolError, SendError};

/// Why a connection, a handshake or a socket operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL cannot be used (scheme, host, port or path).
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A request header name or value is not valid HTTP.
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    /// TCP connect, read or write failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS configuration is unusable (bad certificate, PEM or pin).
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    /// The server chose an application protocol this transport cannot use.
    #[error("ALPN: the transport needs {needed}, the server chose {chosen}")]
    Alpn {
        needed: &'static str,
        chosen: String,
    },
    /// An HTTP/2 error (connection or stream).
    #[error("HTTP/2: {0}")]
    H2(#[from] h2::Error),
    /// The HTTP/1.1 response could not be parsed or is too large.
    #[error("HTTP/1.1 response: {0}")]
    Http1(String),
    /// The server answered the opening request with a refusal; `reason` is the body's first line.
    #[error("handshake refused: HTTP {status}: {reason}")]
    Refused { status: u16, reason: String },
    /// QUIC (HTTP/3) could not start: bad address or endpoint configuration.
    #[error("QUIC connect: {0}")]
    QuicConnect(#[from] quinn::ConnectError),
    /// The QUIC connection failed or was closed (handshake, certificate, idle timeout).
    #[error("QUIC: {0}")]
    Quic(#[from] quinn::ConnectionError),
    /// An HTTP/3 connection error.
    #[error("HTTP/3: {0}")]
    H3(#[from] h3::error::ConnectionError),
    /// An HTTP/3 stream (request) error.
    #[error("HTTP/3 stream: {0}")]
    H3Stream(#[from] h3::error::StreamError),
    /// The server serves only the fetch transports (`stream`, `post`) over HTTP/3: RFC 9220
    /// and the native mapping are not available there.
    #[error("transport {0} is not served over HTTP/3 (only stream and post)")]
    NotOverH3(crate::Transport),
    /// The server's answer breaks the transport's handshake rules.
    #[error("handshake: {0}")]
    Handshake(String),
    /// RFC 8441 and the native mapping need SETTINGS_ENABLE_CONNECT_PROTOCOL from the server.
    #[error("the server did not enable the extended CONNECT protocol (SETTINGS_ENABLE_CONNECT_PROTOCOL)")]
    NoExtendedConnect,
    /// A wait took longer than its configured limit.
    #[error("timed out after {0:?} while {1}")]
    Timeout(Duration, &'static str),
    /// The peer broke the WebSocket protocol.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The codec refused an outgoing frame (closed socket, bad close code, too long control).
    #[error("cannot send: {0}")]
    Send(#[from] SendError),
    /// A socket operation failed (closed socket, timeout): the one socket error, so `?`
    /// works on socket calls inside functions returning this error.
    #[error(transparent)]
    Socket(#[from] crate::SocketError),
}

impl Error {
    /// The HTTP status of a refused handshake, if this is one.
    pub fn refusal_status(&self) -> Option<u16> {
        match self {
            Error::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}
