//! Frame headers for the three framings: parse and encode only, no state (as h2's `frame/`).
//!
//! * RFC 6455 and the h2ws stream framing share [`FrameHeader`] (§5.2 base framing); which
//!   masking is allowed is the connection's rule, not the parser's.
//! * The native mapping carries one frame per HTTP/2 DATA frame: see [`native`].

pub mod header;
pub mod native;
pub mod opcode;

pub use header::{FrameHeader, Parsed, MAX_HEADER_LEN};
pub use opcode::OpCode;
