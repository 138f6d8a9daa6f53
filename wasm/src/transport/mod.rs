//! The two upstream transports (DESIGN §2.2 `stream`, §2.3 `post`). The downstream (open
//! response body) is the same for both and is read by the session.

pub mod post;
pub mod stream;

use js_sys::Promise;

use crate::socket::Transmit;

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

    /// The close handshake is over: end the upstream gracefully.
    pub fn finish(&self) {
        match self {
            Upstream::Stream(up) => up.finish(),
            Upstream::Post(_) => {}
        }
    }
}
