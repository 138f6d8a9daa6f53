//! `H2WebSocketStream` (the WebSocketStream shape) on a [`Session`] in pull mode: the response
//! body is read only while the page's `ReadableStream` asks for a message, so a slow reader
//! leaves data in HTTP/2 flow control and the server's socket feels the backpressure; writes
//! resolve once the upstream took their bytes.

use alloc::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use crate::session::Session;
use crate::socket;
use crate::Core;

impl Session {
    /// The next message (string or `Uint8Array`), or `null` once closed.
    pub fn pull(self: &Rc<Self>) -> Promise {
        if let Some(message) = self.inbox.borrow_mut().pop_front() {
            return Promise::resolve(&message);
        }
        if self.finished.get() || self.core().ready_state() == socket::ReadyState::Closed {
            return Promise::resolve(&JsValue::NULL);
        }
        let promise =
            Promise::new(&mut |resolve, _reject| self.pull_waiters.borrow_mut().push_back(resolve));
        self.ensure_driving();
        promise
    }
}

#[wasm_bindgen]
impl Core {
    /// Readable side: see [`Session::pull`]. The writable side is `send_text`/`send_bytes`
    /// (their promise resolves when the upstream took the chunk; the JS layer throws
    /// `InvalidStateError` for a write when the socket is not open).
    pub fn pull(&self) -> Promise {
        self.session.pull()
    }
}
