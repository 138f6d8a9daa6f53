//! h2ws-codec (under construction: see API.md).
#![no_std]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod close;
pub mod error;

pub use close::{CloseCode, CloseFrame};
pub use error::{DeflateFailure, ProtocolError, SendError};

pub mod handshake;
#[cfg(feature = "deflate")]
pub mod deflate;
