//! The two upstream transports (DESIGN §2.2 `stream`, §2.3 `post`). The downstream (open
//! response body) is the same for both and is read by the session.
//!
//! The session creates and drives its upstream, so the transports never name it back: they
//! report to an [`Owner`] (no import circle `session` ↔ `transport`, checked by
//! `cargo xtask test --stage rust`, xtask `modgraph`).

pub mod post;
pub mod stream;

use alloc::rc::Rc;
use alloc::vec::Vec;

use js_sys::Promise;

use crate::socket::Transmit;

/// What an upstream reports to the socket session that owns it (the session implements it;
/// the transports hold a `Weak<dyn Owner>`, so a dropped socket ends their callbacks).
pub trait Owner {
    /// The transport took `app_bytes` of application payload (`bufferedAmount` accounting).
    fn transmitted(self: Rc<Self>, app_bytes: usize);
    /// A request failed or was refused: the socket fails (close 1006).
    fn transport_failed(self: Rc<Self>);
    /// A `stream` upstream failed at once: continue with `post` on the same session, resending
    /// `kept` (what was written to the stream meanwhile).
    fn fall_back_to_post(self: Rc<Self>, kept: Vec<Transmit>);
    /// Tell the page why the socket cannot work (a console message).
    fn warn_cannot_open(self: Rc<Self>, why: &str);
    /// A request went out / got its answer (or failed): resume's ack watchdog waits for
    /// answers too (codec `Connection::request_started`).
    fn request_started(self: Rc<Self>);
    fn request_ended(self: Rc<Self>);
    /// A `post` batch's answer carried downstream frames, placed after `at` downstream bytes
    /// (codec `reply`).
    fn reply(self: Rc<Self>, at: u64, frames: Vec<u8>);
    /// No `post` batch is in flight any more: a reply still awaited never comes.
    fn batches_settled(self: Rc<Self>);
}

/// Where client→server frames go.
pub enum Upstream {
    Stream(stream::StreamUpstream),
    Post(post::PostUpstream),
}

impl Upstream {
    /// Hands `transmit` to the transport; the promise resolves once the transport took it
    /// (`bufferedAmount` accounting and `H2WebSocketStream` write backpressure).
    pub fn send(&self, transmit: Transmit) -> Promise {
        match self {
            Upstream::Stream(up) => up.send(transmit),
            Upstream::Post(up) => up.send(transmit),
        }
    }

    /// Resume goes on without this upstream (its transport was lost): pending `send` promises
    /// settle, and the application bytes it never reported as transmitted are returned.
    pub fn abandon(&self) -> usize {
        match self {
            Upstream::Stream(up) => up.abandon(),
            Upstream::Post(up) => up.abandon(),
        }
    }

    /// The close handshake is over: end the upstream gracefully.
    pub fn finish(&self) {
        match self {
            Upstream::Stream(up) => up.finish(),
            Upstream::Post(_) => {}
        }
    }
}
