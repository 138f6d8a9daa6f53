//! h2ws-codec (under construction: see API.md).
#![no_std]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod close;
pub mod connection;
pub mod error;
pub mod frame;
pub mod mask;
pub mod message;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use connection::{Config, Connection, Event, Framing, Role, State};
pub use error::{DeflateFailure, ProtocolError, SendError};
pub use frame::{FrameHeader, OpCode, Parsed};
pub use message::{FragmentKind, Message};

pub mod handshake;
#[cfg(feature = "deflate")]
pub mod deflate;
