//! A minimal RFC 6455 client for the load generator: it writes precomputed masked frames and
//! reads the server's unmasked frames with no per-message work beyond the header, so the load
//! generator costs the same against every server (the uWebSockets `load_test` approach).

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A client frame (RFC 6455 §5.2) with the given opcode, FIN bit and mask key.
pub fn masked_frame(opcode: u8, fin: bool, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A frame header as the server sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: u8,
    pub len: u64,
}

/// One RFC 6455 client connection, past its handshake.
pub struct Conn {
    pub reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    pub writer: tokio::net::tcp::OwnedWriteHalf,
}

async fn timed<T>(
    what: &str,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(IO_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no progress in {IO_TIMEOUT:?}")),
    }
}

/// `ws://127.0.0.1:PORT/PATH` → (`127.0.0.1:PORT`, `/PATH`). Only loopback targets are accepted.
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url}: not a ws:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    if !matches!(host, "127.0.0.1" | "[::1]" | "localhost") {
        return Err(format!("{url}: benchmarks only target loopback"));
    }
    Ok((authority.to_string(), path.to_string()))
}

impl Conn {
    /// Connects and completes the HTTP/1.1 upgrade (checks the 101 status line).
    pub async fn connect(url: &str) -> Result<Conn, String> {
        Self::connect_from(url, None, 64 * 1024).await
    }

    /// [`Conn::connect`] from the local address `from` (a loopback address: many sources give
    /// many more ports than one), reading through a buffer of `read_buffer` bytes.
    pub async fn connect_from(
        url: &str,
        from: Option<std::net::IpAddr>,
        read_buffer: usize,
    ) -> Result<Conn, String> {
        let (authority, path) = split_url(url)?;
        let stream = match from {
            None => timed("connect", TcpStream::connect(&authority)).await?,
            Some(ip) => {
                let target: std::net::SocketAddr =
                    authority.parse().map_err(|e| format!("{authority}: {e}"))?;
                let socket = if target.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
                .map_err(|e| format!("socket: {e}"))?;
                socket
                    .bind(std::net::SocketAddr::new(ip, 0))
                    .map_err(|e| format!("bind {ip}: {e}"))?;
                timed("connect", socket.connect(target)).await?
            }
        };
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (read, mut writer) = stream.into_split();
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).map_err(|e| e.to_string())?;
        let key = h2ws_codec::handshake::rfc6455::client_key(key);
        let key = std::str::from_utf8(&key).map_err(|e| e.to_string())?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        timed("handshake write", writer.write_all(request.as_bytes())).await?;
        let mut reader = BufReader::with_capacity(read_buffer.max(512), read);
        let mut status = String::new();
        timed("handshake read", reader.read_line(&mut status)).await?;
        if !status.starts_with("HTTP/1.1 101") {
            return Err(format!("{url}: handshake refused: {}", status.trim()));
        }
        loop {
            let mut line = String::new();
            let n = timed("handshake read", reader.read_line(&mut line)).await?;
            if n == 0 {
                return Err(format!("{url}: connection ended in the handshake"));
            }
            if line == "\r\n" {
                break;
            }
        }
        Ok(Conn { reader, writer })
    }

    /// Holds an idle connection open for as long as the server does: answers the server's
    /// Pings (masked Pongs, so the server's idle timeout never ends it) and skips anything else,
    /// without a deadline. Returns when the server closes or the connection fails.
    pub async fn answer_pings(mut self) {
        let mut payload = [0u8; 125];
        loop {
            let mut head = [0u8; 2];
            if self.reader.read_exact(&mut head).await.is_err() {
                return;
            }
            let opcode = head[0] & 0x0f;
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    if self.reader.read_exact(&mut b).await.is_err() {
                        return;
                    }
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    if self.reader.read_exact(&mut b).await.is_err() {
                        return;
                    }
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            if opcode == 0x8 {
                return;
            }
            let mut left = len;
            while left > 0 {
                let n = (left as usize).min(payload.len());
                if self.reader.read_exact(&mut payload[..n]).await.is_err() {
                    return;
                }
                left -= n as u64;
            }
            if opcode == 0x9 {
                let n = len.min(125) as usize;
                let pong = masked_frame(0xa, true, &payload[..n], [0x5a, 0x1d, 0x7e, 0x33]);
                if self.writer.write_all(&pong).await.is_err() {
                    return;
                }
            }
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        timed("write", self.writer.write_all(bytes)).await
    }

    /// Reads one frame header.
    pub async fn read_header(&mut self) -> Result<Header, String> {
        let mut head = [0u8; 2];
        timed("read", self.reader.read_exact(&mut head)).await?;
        if head[1] & 0x80 != 0 {
            return Err("server sent a masked frame".into());
        }
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                timed("read", self.reader.read_exact(&mut b)).await?;
                u16::from_be_bytes(b) as u64
            }
            127 => {
                let mut b = [0u8; 8];
                timed("read", self.reader.read_exact(&mut b)).await?;
                u64::from_be_bytes(b)
            }
            n => n as u64,
        };
        Ok(Header {
            fin: head[0] & 0x80 != 0,
            opcode: head[0] & 0x0f,
            len,
        })
    }

    /// Reads (and drops) `len` payload bytes through `scratch`.
    pub async fn skip(&mut self, mut len: u64, scratch: &mut [u8]) -> Result<(), String> {
        while len > 0 {
            let n = (len as usize).min(scratch.len());
            timed("read", self.reader.read_exact(&mut scratch[..n])).await?;
            len -= n as u64;
        }
        Ok(())
    }

    /// Reads one whole data message (any fragmentation) and returns its length. A Close from
    /// the server is an error carrying its code; Pings are skipped (this client never pongs:
    /// benchmark runs are far shorter than any server's ping interval).
    pub async fn read_message(&mut self, scratch: &mut [u8]) -> Result<u64, String> {
        let mut total = 0u64;
        loop {
            let h = self.read_header().await?;
            match h.opcode {
                0x8 => {
                    let mut body = vec![0u8; h.len as usize];
                    timed("read", self.reader.read_exact(&mut body)).await?;
                    let code = body
                        .get(..2)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]))
                        .unwrap_or(1005);
                    return Err(format!(
                        "server closed with {code} {:?}",
                        String::from_utf8_lossy(body.get(2..).unwrap_or_default())
                    ));
                }
                0x9 | 0xa => self.skip(h.len, scratch).await?,
                _ => {
                    self.skip(h.len, scratch).await?;
                    total += h.len;
                    if h.fin {
                        return Ok(total);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_use_minimal_lengths() {
        assert_eq!(masked_frame(2, true, &[0; 125], [0; 4])[1], 0x80 | 125);
        let f = masked_frame(2, true, &[0; 126], [0; 4]);
        assert_eq!(&f[1..4], &[0x80 | 126, 0, 126]);
        let f = masked_frame(0, false, &[0; 70_000], [0; 4]);
        assert_eq!(f[0], 0);
        assert_eq!(&f[1..10], &[0x80 | 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn only_loopback_urls() {
        assert_eq!(
            split_url("ws://127.0.0.1:9/ws/echo").unwrap(),
            ("127.0.0.1:9".to_string(), "/ws/echo".to_string())
        );
        assert!(split_url("ws://10.0.0.1:9/").is_err());
        assert!(split_url("https://127.0.0.1:9/").is_err());
    }
}
