//! `h2ws-devserver`: the development server binary around the `h2ws` library. This library
//! target only shares the binary's parts with its soak tool and its tests:
//!
//! - [`apps`]: `/ws/echo`, `/ws/chat` and the `/ws/upstream` gateway, each an ordinary socket
//!   route built with the embedding API;
//! - [`files`]: the demo page (`--www`) and the npm package (`--pkg`);
//! - [`cert`]: the dev certificate (generated once for localhost, or `--cert`/`--key`).
//!
//! The server itself ([`h2ws::Server`]), the sockets and the client are in `h2ws`.

pub mod apps;
pub mod cert;
pub mod files;
