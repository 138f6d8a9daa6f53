//! h2ws-codec (under construction: see API.md).
#![no_std]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod close;
pub mod error;
pub mod frame;
pub mod mask;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use error::{DeflateFailure, ProtocolError, SendError};
pub use frame::{FrameHeader, OpCode, Parsed};

pub mod handshake;
#[cfg(feature = "deflate")]
pub mod deflate;
