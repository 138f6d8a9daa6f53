//! `h2ws-codec`: a `no_std` sans-IO WebSocket codec for every h2ws mapping.
//!
//! One state machine, [`Connection`], speaks three framings ([`Framing`]):
//!
//! * **RFC 6455**: classic WebSocket (HTTP/1.1 upgrade, or RFC 8441 over HTTP/2); client frames
//!   are masked.
//! * **Stream**: the h2ws fetch framing (RFC 6455 headers, never masked), carried in HTTP/2
//!   request/response bodies that may split or join frames anywhere.
//! * **Native**: the HTTP/2 seed mapping, one WebSocket frame per DATA frame with a 1-byte
//!   header.
//!
//! The connection does no I/O and keeps no clock: feed it what the transport read through its
//! one entry, [`Connection::recv`] (whose unit is the framing's: any piece of a byte stream, or
//! one DATA frame on Native; [`Framing::is_byte_stream`]), take the
//! [`Event`]s, queue sends, and write what [`Connection::poll_transmit`] hands out (the style of
//! `quinn-proto` and `rustls`). The liveness rules are timers with the time passed in
//! ([`timer`]: `poll_timeout` / `handle_timeout`, as in `quinn-proto`), decided here once for
//! the server, the native client and the browser. Bad input becomes a typed [`ProtocolError`] plus the Close frame
//! with the right code (1002 / 1007 / 1009) queued for the peer; it never panics, and every
//! buffer is bounded by [`Config`]'s limits.
//!
//! The pieces are usable on their own: [`frame`] (zero-copy incremental header parsing and
//! encoding), [`mask`] (SIMD masking), [`utf8`] (incremental validation), [`message`] (frame
//! rules and assembly), [`handshake`] (request/response validation without I/O), [`post`] (the
//! `post` upstream's batching and reordering, both sides) and, with the
//! `deflate` feature, [`deflate`] (permessage-deflate, RFC 7692).
//!
//! Features: `std` (run-time AVX2 detection for masking, `std::error::Error` impls) and
//! `deflate`, both on by default. With neither the crate builds for `wasm32-unknown-unknown`.
//!
//! # Example
//!
//! A client and a server talking over an in-memory "transport":
//!
//! ```
//! use h2ws_codec::{CloseCode, Config, Connection, Event, Framing, Message, Role};
//!
//! // A client on RFC 6455 must mask with unpredictable keys: seed it from the OS RNG.
//! let seed = [42u8; 32]; // e.g. getrandom::fill(&mut seed) in real code
//! let mut client = Connection::new(Role::Client, Framing::Rfc6455, Config::default())
//!     .with_mask_seed(seed);
//! let mut server = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
//!
//! client.send_text("hello")?;
//! client.send_ping(b"are you there?")?;
//! // Write what the client queued; the server may receive it in any chunking.
//! while let Some(bytes) = client.poll_transmit() {
//!     for chunk in bytes.chunks(3) {
//!         server.recv(chunk)?;
//!     }
//! }
//! // Control frames jump ahead of queued data, so the Ping arrives first.
//! assert_eq!(server.poll_event(), Some(Event::Ping(b"are you there?".to_vec())));
//! assert_eq!(server.poll_event(), Some(Event::Message(Message::Text("hello".into()))));
//!
//! // The server answered the Ping by itself; now it closes.
//! server.close(Some(CloseCode::NORMAL), "done")?;
//! while let Some(bytes) = server.poll_transmit() {
//!     client.recv(&bytes)?;
//! }
//! assert_eq!(client.poll_event(), Some(Event::Pong(b"are you there?".to_vec())));
//! // The client echoes the Close; once the echo is written its handshake is complete.
//! while let Some(bytes) = client.poll_transmit() {
//!     server.recv(&bytes)?;
//! }
//! assert!(matches!(
//!     client.poll_event(),
//!     Some(Event::Closed { code: CloseCode::NORMAL, clean: true, .. })
//! ));
//! assert!(matches!(server.poll_event(), Some(Event::Closed { clean: true, .. })));
//! assert!(client.is_closed() && server.is_closed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod close;
pub mod connection;
pub mod error;
pub mod frame;
pub mod mask;
pub mod message;
pub mod resume;
pub mod timer;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use connection::{Config, Connection, Event, Framing, Role, State, Transmit};
pub use error::{DeflateFailure, ProtocolError, SendError};
pub use frame::{FrameHeader, OpCode, Parsed};
pub use message::{FragmentKind, Message};
pub use timer::{Timeout, Timeouts, Timestamp};

#[cfg(feature = "deflate")]
pub mod deflate;
pub mod handshake;
/// The `post` upstream's batching rules, both sides (next to `handshake::fetch`, whose headers
/// they number).
pub mod post;
/// `post` replies: downstream frames in a batch's answer, put back in order on the client.
pub mod reply;
