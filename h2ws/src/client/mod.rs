//! The native h2ws client: every transport over real TCP + TLS.
//!
//! * [`Transport::Rfc6455`]: classic WebSocket, HTTP/1.1 `Upgrade` (ws:// and wss://), one
//!   TCP connection per socket.
//! * [`Transport::Rfc8441`]: extended CONNECT (`:protocol websocket`) on HTTP/2.
//! * [`Transport::Native`]: the seed mapping, `:scheme ws|wss`, one WebSocket frame per DATA
//!   frame (DESIGN §4).
//! * [`Transport::Stream`] and [`Transport::Post`]: the two-request fetch transports (DESIGN §2)
//!   with stream framing (MASK = 0); `post` also over HTTP/1.1
//!   ([`Client::connect_post_http1`]). A `stream` socket whose upstream request fails at once
//!   (answered or reset within codec `fetch::STREAM_FALLBACK_MS` while its body streams: a
//!   proxy that refuses streamed bodies) continues with `post` batches on the same session;
//!   [`Socket::transport`] still says what was asked for, the server's `/.h2ws/stats` what
//!   attached.
//!
//! HTTP/3: [`Client::connect_h3`] opens an [`H3Connection`] (QUIC, TLS 1.3 with ALPN `h3`,
//! the same [`Trust`]) for `stream` and `post` sockets, the two transports the server serves
//! over HTTP/3; the others are refused with [`Error::NotOverH3`]. The HTTP version is chosen
//! by which connection the socket is opened on, as for HTTP/2: no Alt-Svc discovery.
//!
//! The HTTP/2 transports multiplex: open an [`H2Connection`] once and as many sockets on it as
//! the server allows. Each socket is one [`Socket`] (`recv` / `send` / `close`, the type the server's handlers get) driven
//! by one task that pumps the sans-IO codec `Connection` over the transport; nothing is spawned
//! per message, and outgoing payloads are copied once (into the codec's frame buffer).
//!
//! ```no_run
//! use h2ws::client::{Client, ClientConfig, Message, OpenOptions, Transport, Trust};
//! # async fn demo(cert_pem: &[u8]) -> Result<(), h2ws::client::Error> {
//! let client = Client::new(ClientConfig::new(Trust::certificates_pem(cert_pem)?));
//! // One socket, its own connection:
//! let mut ws = client
//!     .connect("wss://127.0.0.1:8443/ws/echo", Transport::Rfc6455, &OpenOptions::default())
//!     .await?;
//! ws.send_text("hello").await?;
//! assert_eq!(ws.recv().await, Some(Message::Text("hello".into())));
//! ws.close(1000, "bye").await?; // starts the close handshake
//! while ws.recv().await.is_some() {} // the server's last messages, then its Close
//! let status = ws.closed().await?;
//! assert!(status.clean);
//! // Many sockets on one HTTP/2 connection:
//! let h2 = client.connect_h2("https://127.0.0.1:8443").await?;
//! let a = h2.open("/ws/echo", Transport::Native, &OpenOptions::default()).await?;
//! let b = h2.open("/ws/echo", Transport::Stream, &OpenOptions::default()).await?;
//! a.send_binary(b"x").await?;
//! b.send_binary(b"y").await?;
//! # Ok(()) }
//! ```

mod connect;
mod error;
mod fetch1;
mod h2conn;
mod h3conn;
mod h3wire;
mod http1;
mod reconnect;
mod resume;
mod tls;
mod wire;

use std::sync::Arc;
use std::time::Duration;

/// The one socket type and its vocabulary, re-exported for client code: a client socket is
/// the same [`Socket`] the server hands to its handlers.
pub use crate::socket::{
    CloseStatus, FragmentKind, Handshake, Incoming, Message, Role, Socket, SocketError,
    SocketReceiver, SocketSender, Transport,
};
pub use connect::Target;
pub use error::Error;
pub use h2conn::H2Connection;
pub use h2ws_codec::{CloseCode, Event};
pub use h3conn::H3Connection;
pub use reconnect::{Reconnect, ReconnectError, ReconnectEvent, ReconnectingSocket};
pub use tls::{spki_sha256_base64, Trust};

/// Limits and timeouts of every connection and socket a [`Client`] opens.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Which server certificates to accept (`wss`/`https` only).
    pub trust: Trust,
    /// TCP connect + TLS handshake (+ HTTP/2 preface and SETTINGS).
    pub connect_timeout: Duration,
    /// From the opening request to its response headers.
    pub handshake_timeout: Duration,
    /// After our Close frame: how long to wait for the peer's before giving up (code 1006).
    pub close_timeout: Duration,
    /// How long a send waits for room in the socket's send buffer.
    pub send_timeout: Duration,
    /// Ping after this much silence from the peer.
    pub ping_interval: Duration,
    /// Drop the socket (code 1006) after this much silence from the peer.
    pub idle_timeout: Duration,
    /// Largest incoming message (after inflate); larger → Close 1009.
    pub max_message_size: usize,
    /// Largest incoming frame; larger → Close 1009.
    pub max_frame_size: usize,
    /// Queued outgoing bytes above which sends wait (backpressure toward the app).
    pub send_buffer: usize,
    /// Received events held for the app before the socket stops reading (backpressure toward
    /// the peer through TCP / HTTP/2 flow control).
    pub recv_queue: usize,
    /// Upper bound on any one HTTP/1.1 response head.
    pub max_response_head: usize,
}

impl ClientConfig {
    /// Defaults: 10 s connect and handshake, 5 s close, 30 s send, ping after 30 s and drop
    /// after 60 s of silence, 64 MiB messages, 1 MiB send buffer, 64 queued events.
    pub fn new(trust: Trust) -> Self {
        ClientConfig {
            trust,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: h2ws_codec::timer::CLOSE_TIMEOUT,
            send_timeout: Duration::from_secs(30),
            ping_interval: h2ws_codec::timer::PING_AFTER,
            idle_timeout: h2ws_codec::timer::IDLE_TIMEOUT,
            max_message_size: 64 << 20,
            max_frame_size: 16 << 20,
            send_buffer: 1 << 20,
            recv_queue: 64,
            max_response_head: 16 << 10,
        }
    }
}

/// Per-socket options of the opening request.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Offered subprotocols (`Sec-WebSocket-Protocol` / `h2ws-protocol`).
    pub protocols: Vec<String>,
    /// `Origin` header, if any.
    pub origin: Option<String>,
    /// Extra request headers (e.g. `authorization`, `cookie`).
    pub headers: Vec<(String, String)>,
    /// Deliver every frame as [`Event::Fragment`] instead of assembled messages (proxies).
    pub fragments: bool,
    /// Let RSV1 pass through untouched (a proxy forwarding an extension it does not terminate;
    /// needs `fragments`).
    pub allow_rsv1: bool,
    /// Offer permessage-deflate (RFC 7692) and compress / inflate messages if the server agrees.
    pub deflate: bool,
    /// Extension offer sent as given and not terminated here (a gateway forwarding its client's
    /// offer; see [`Handshake::extensions`] for the answer). Ignored when `deflate` is set.
    pub extensions: Option<String>,
    /// `stream` and `post` over HTTP/2: offer lossless resume (codec `resume`). If the server
    /// agrees ([`Handshake::resume`]), a broken connection no longer ends the socket: the
    /// client reconnects, re-attaches the session and both ends replay what the other lacks,
    /// with no event for the app; only a refused re-attach or the server's grace window (30 s
    /// by default) ends it (1006).
    pub resume: bool,
}

/// Opens sockets and HTTP/2 connections with one [`ClientConfig`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    config: Arc<ClientConfig>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Self {
        Client {
            config: Arc::new(config),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Opens one socket on its own connection: `url` is `ws://`, `wss://`, `http://` or
    /// `https://` (all mean the same origin + path).
    pub async fn connect(
        &self,
        url: &str,
        transport: Transport,
        options: &OpenOptions,
    ) -> Result<Socket, Error> {
        let target = Target::parse(url)?;
        if transport == Transport::Rfc6455 {
            return http1::open(&self.config, &target, options).await;
        }
        let conn = H2Connection::connect(self.config.clone(), &target).await?;
        conn.open(&target.path_and_query, transport, options).await
    }

    /// Opens a `post` socket over HTTP/1.1 (what browsers without HTTP/2 use): the downstream
    /// response on one connection, the POST batches on a second one.
    pub async fn connect_post_http1(
        &self,
        url: &str,
        options: &OpenOptions,
    ) -> Result<Socket, Error> {
        let target = Target::parse(url)?;
        fetch1::open_post(&self.config, &target, options).await
    }

    /// Opens an HTTP/2 connection (TLS with ALPN `h2`, or h2c prior knowledge for `ws://` /
    /// `http://`) to share among many sockets. Waits for the server's SETTINGS.
    pub async fn connect_h2(&self, url: &str) -> Result<H2Connection, Error> {
        let target = Target::parse(url)?;
        H2Connection::connect(self.config.clone(), &target).await
    }

    /// Opens an HTTP/3 connection (QUIC, TLS 1.3 with ALPN `h3`, the same [`Trust`]) to
    /// `wss://` / `https://` `url`'s origin, to share among many `stream` and `post` sockets:
    /// [`H3Connection::open`]. HTTP/3 is chosen explicitly, like HTTP/2 with
    /// [`connect_h2`](Client::connect_h2) (no Alt-Svc discovery): the server serves it on the
    /// UDP port of its TLS listener.
    pub async fn connect_h3(&self, url: &str) -> Result<H3Connection, Error> {
        let target = Target::parse(url)?;
        H3Connection::connect(self.config.clone(), &target).await
    }
}

/// Largest DATA frame payload every HTTP/2 peer accepts (the SETTINGS_MAX_FRAME_SIZE floor):
/// h2 0.4 does not expose the peer's own value, so native frames are cut to this.
const NATIVE_MAX_DATA_FRAME: usize = 16_384;

/// The extension offer of an opening request: the header value and the offered names.
struct ExtensionOffer {
    header: Option<String>,
    names: Vec<String>,
}

impl ExtensionOffer {
    fn new(options: &OpenOptions) -> Result<Self, Error> {
        let header = if options.deflate {
            Some(h2ws_codec::deflate::client_offer())
        } else {
            options.extensions.clone().filter(|e| !e.trim().is_empty())
        };
        let names = match &header {
            Some(h) => h2ws_codec::handshake::negotiate::parse_extensions(h)
                .map_err(|e| Error::InvalidHeader(format!("extension offer {h:?}: {e:?}")))?
                .into_iter()
                .map(|o| o.name)
                .collect(),
            None => Vec::new(),
        };
        Ok(ExtensionOffer { header, names })
    }

    fn names(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }

    /// The permessage-deflate parameters to run, when we offered to terminate it and the
    /// server's answer (already checked against the offer) accepted it.
    fn deflate(
        &self,
        options: &OpenOptions,
        answer: Option<&str>,
    ) -> Result<Option<h2ws_codec::deflate::DeflateParams>, Error> {
        match answer {
            Some(a) if options.deflate => h2ws_codec::deflate::accept_response(a)
                .map(Some)
                .map_err(|e| Error::Handshake(format!("permessage-deflate answer {a:?}: {e}"))),
            _ => Ok(None),
        }
    }
}

/// Codec limits and modes of one socket.
fn codec_config(
    config: &ClientConfig,
    options: &OpenOptions,
    deflate: Option<h2ws_codec::deflate::DeflateParams>,
) -> h2ws_codec::Config {
    h2ws_codec::Config {
        max_frame_size: config.max_frame_size,
        max_message_size: config.max_message_size,
        deliver_fragments: options.fragments,
        // Fragment mode (proxies): a large frame is handed over in pieces, never held whole.
        fragment_chunk: if options.fragments { 16 << 10 } else { 0 },
        allow_rsv1: options.allow_rsv1,
        native_max_payload: NATIVE_MAX_DATA_FRAME,
        deflate,
        ..h2ws_codec::Config::default()
    }
}

/// Fresh randomness (mask seeds, handshake keys). The OS RNG failing is not recoverable.
fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the OS random number generator failed");
    out
}

/// Where and how a socket re-attaches: fixed for its life.
pub(crate) struct Route {
    pub(crate) config: Arc<ClientConfig>,
    /// The replacement of the broken connection, shared with its other sockets.
    pub(crate) successor: h2conn::Successor,
    pub(crate) target: Target,
    /// The socket's URL (the open's).
    pub(crate) uri: String,
    pub(crate) options: OpenOptions,
    pub(crate) transport: Transport,
    pub(crate) session: String,
}

/// The re-attach state of a fetch socket that negotiated resume (`resume.rs`), made here so
/// the connection modules and `resume` do not import each other.
fn resumer(route: Route, key: String) -> resume::Resumer {
    resume::Resumer::new(route, key)
}

/// Starts the driver task of a socket whose handshake succeeded and returns its handle;
/// `resumer`: the socket negotiated resume (its codec has it enabled).
fn start(
    config: &ClientConfig,
    conn: h2ws_codec::Connection,
    wire: wire::Wire,
    handshake: Handshake,
    resumer: Option<resume::Resumer>,
) -> Socket {
    let framing = conn.framing();
    let shared = crate::socket::Shared::new(
        conn,
        crate::socket::Limits {
            send_buffer: config.send_buffer,
            recv_queue: config.recv_queue.max(1),
            send_timeout: Some(config.send_timeout),
            close_timeout: config.close_timeout,
        },
    );
    let spec = crate::driver::Spec {
        byte_stream: framing.is_byte_stream(),
        // The fetch transports' downstream starts with the open preamble.
        expect_preamble: framing == h2ws_codec::Framing::Stream,
        // Native mapping: RST_STREAM(PROTOCOL_ERROR) once our Close after an error has left.
        reset_after_protocol_error: !framing.is_byte_stream(),
        send_timeout: Some(config.send_timeout),
        ping_after: config.ping_interval,
        ping_payload: b"",
        idle_timeout: config.idle_timeout,
        close_timeout: config.close_timeout,
        attach_timeout: None, // the server's rule
    };
    let io = ClientIo {
        wire: Some(wire),
        native: !framing.is_byte_stream(),
        resumer,
    };
    tokio::spawn(crate::driver::Driver::new(
        shared.clone(),
        io,
        spec,
        crate::driver::Hooks::none(),
    ));
    Socket::client(shared, handshake)
}

/// The client's transports as the one driver's [`Io`](crate::driver::Io): the `Wire` polls
/// TCP, TLS and h2 itself.
struct ClientIo {
    /// `None` while a resumable socket's transport is lost.
    wire: Option<wire::Wire>,
    /// Native mapping: a protocol error is answered with RST_STREAM(PROTOCOL_ERROR) once our
    /// Close has left, instead of ending the stream.
    native: bool,
    /// A resumable fetch socket: finds it a new transport after a loss.
    resumer: Option<resume::Resumer>,
}

/// The wire is gone (a lost transport not yet replaced).
fn no_wire() -> Error {
    Error::Io(std::io::ErrorKind::NotConnected.into())
}

impl crate::driver::Io for ClientIo {
    type Error = Error;

    fn poll_input(
        &mut self,
        cx: &mut std::task::Context<'_>,
        feed: impl FnOnce(&[u8]),
    ) -> std::task::Poll<Result<bool, Error>> {
        match self.wire.as_mut() {
            Some(wire) => wire.poll_input(cx, feed),
            None => std::task::Poll::Ready(Err(no_wire())),
        }
    }

    fn poll_output(
        &mut self,
        cx: &mut std::task::Context<'_>,
        out: &mut bytes::Bytes,
    ) -> std::task::Poll<Result<(), Error>> {
        match self.wire.as_mut() {
            Some(wire) => wire.poll_output(cx, out),
            None => std::task::Poll::Ready(Err(no_wire())),
        }
    }

    fn poll_flush(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Error>> {
        match self.wire.as_mut() {
            Some(wire) => wire.poll_flush(cx),
            None => std::task::Poll::Ready(Ok(())),
        }
    }

    fn poll_end(
        &mut self,
        cx: &mut std::task::Context<'_>,
        protocol_error: bool,
    ) -> std::task::Poll<Result<(), Error>> {
        match self.wire.as_mut() {
            Some(wire) => wire.poll_end(cx, protocol_error && self.native),
            None => std::task::Poll::Ready(Ok(())),
        }
    }

    fn poll_drain(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        match self.wire.as_mut() {
            Some(wire) => wire.poll_drain(cx),
            None => std::task::Poll::Ready(()),
        }
    }

    fn reset(&mut self) {
        if let Some(wire) = self.wire.as_mut() {
            wire.reset()
        }
    }

    /// Dropping the wire ends the transport (an unfinished h2 stream is reset by h2).
    fn abort(&mut self, _timed_out: bool) {}

    fn detach(&mut self) {
        let wire = self.wire.take();
        if let Some(resumer) = self.resumer.as_mut() {
            resumer.lost(wire.as_ref());
        }
    }

    fn poll_reattach(
        &mut self,
        cx: &mut std::task::Context<'_>,
        received: u64,
    ) -> std::task::Poll<Result<u64, Error>> {
        let Some(resumer) = self.resumer.as_mut().filter(|_| self.wire.is_none()) else {
            return std::task::Poll::Pending;
        };
        let (wire, peer_received) = std::task::ready!(resumer.poll(cx, received))?;
        self.wire = Some(wire);
        std::task::Poll::Ready(Ok(peer_received))
    }
}

/// The raw `sec-websocket-extensions` answer, if any (already checked against the offer).
fn raw_extensions(headers: &[(&str, &[u8])]) -> Option<String> {
    let values: Vec<&[u8]> =
        h2ws_codec::handshake::header_values(headers, "sec-websocket-extensions").collect();
    if values.is_empty() {
        return None;
    }
    let joined: Vec<String> = values
        .iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    Some(joined.join(", "))
}
