//! Handshake helpers without I/O.
