//! URL parsing and the TCP (+ TLS) connection under every transport.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{tls, Error};

/// Where a socket goes: parsed from a `ws`, `wss`, `http` or `https` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `wss`/`https`: TLS; `ws`/`http`: plain TCP.
    pub tls: bool,
    /// Host name or IP literal, without brackets.
    pub host: String,
    pub port: u16,
    /// `host:port` as sent in `Host` / `:authority` (IPv6 literals in brackets).
    pub authority: String,
    /// Path and query, at least `/`.
    pub path_and_query: String,
}

impl Target {
    /// Parses a WebSocket or HTTP URL; the default ports are 80 and 443.
    pub fn parse(url: &str) -> Result<Target, Error> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))?;
        let tls = match uri.scheme_str() {
            Some("wss") | Some("https") => true,
            Some("ws") | Some("http") => false,
            other => {
                return Err(Error::InvalidUrl(format!(
                    "{url}: scheme {other:?} is not ws, wss, http or https"
                )))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| Error::InvalidUrl(format!("{url}: no host")))?;
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let authority = if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        };
        let path_and_query = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_owned());
        Ok(Target {
            tls,
            host: bare,
            port,
            authority,
            path_and_query,
        })
    }

    /// The `http`/`https` origin for the fetch transports' URLs.
    pub(crate) fn http_scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// The `ws`/`wss` scheme of the native mapping.
    pub(crate) fn ws_scheme(&self) -> &'static str {
        if self.tls {
            "wss"
        } else {
            "ws"
        }
    }
}

/// A TCP stream, with or without TLS, as one concrete type (no boxing of the hot path's I/O).
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Io {
    /// The negotiated ALPN protocol, if any.
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        match self {
            Io::Plain(_) => None,
            Io::Tls(t) => t.get_ref().1.alpn_protocol(),
        }
    }
}

/// Opens TCP (nodelay) and, for `wss`/`https`, TLS offering `alpn`; both under `timeout`.
pub(crate) async fn connect(
    target: &Target,
    trust: &tls::Trust,
    alpn: &[&[u8]],
    timeout: Duration,
) -> Result<Io, Error> {
    let work = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
        tcp.set_nodelay(true)?;
        if !target.tls {
            return Ok(Io::Plain(tcp));
        }
        let config = tls::client_config(trust, alpn)?;
        let name = ServerName::try_from(target.host.clone())
            .map_err(|e| Error::InvalidUrl(format!("host {}: {e}", target.host)))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(&config))
            .connect(name, tcp)
            .await?;
        Ok(Io::Tls(Box::new(stream)))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Error::Timeout(timeout, "connecting (TCP + TLS)"))?
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens TCP and, for `wss`/`https`, TLS offering only `http/1.1` (the HTTP/1.1 transports:
/// `rfc6455` and the fetch transports over HTTP/1.1); a server that picks another protocol is
/// refused with [`Error::Alpn`].
pub async fn connect_http11(target: &Target, config: &super::ClientConfig) -> Result<Io, Error> {
    let io = connect(
        target,
        &config.trust,
        &[tls::ALPN_HTTP11],
        config.connect_timeout,
    )
    .await?;
    if let Some(alpn) = io.alpn() {
        if alpn != tls::ALPN_HTTP11 {
            return Err(Error::Alpn {
                needed: "http/1.1",
                chosen: String::from_utf8_lossy(alpn).into_owned(),
            });
        }
    }
    Ok(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_with_default_ports_and_ipv6() {
        let t = Target::parse("wss://127.0.0.1:8443/ws/echo?x=1").unwrap();
        assert_eq!(
            (
                t.tls,
                t.port,
                t.authority.as_str(),
                t.path_and_query.as_str()
            ),
            (true, 8443, "127.0.0.1:8443", "/ws/echo?x=1")
        );
        let t = Target::parse("ws://[::1]/").unwrap();
        assert_eq!((t.tls, t.port, t.host.as_str()), (false, 80, "::1"));
        assert_eq!(t.authority, "[::1]:80");
        let t = Target::parse("https://localhost").unwrap();
        assert_eq!((t.port, t.path_and_query.as_str()), (443, "/"));
        assert!(matches!(
            Target::parse("ftp://x/"),
            Err(Error::InvalidUrl(_))
        ));
    }
}
