//! Handshake helpers without I/O.

pub mod negotiate;
