//! `H2WebSocketStream` (the WebSocketStream shape) on a [`Session`] in pull mode: the response
//! body is read only while the page's `ReadableStream` asks for a message, so a slow reader
//! leaves data in HTTP/2 flow control and the server's socket feels the backpressure; writes
//! resolve once the upstream took their bytes.

use alloc::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use crate::session::Session;
use crate::socket::{self, ApiError};
use crate::{api_error, Core};

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
    /// Readable side: see [`Session::pull`].
    pub fn pull(&self) -> Promise {
        self.session.pull()
    }

    /// Writable side, text chunk: resolves when the upstream took it.
    pub fn write_text(&self, text: &str) -> Result<Promise, JsValue> {
        self.check_writable()?;
        Ok(self.session.send_with(|core| core.send_text(text)))
    }

    /// Writable side, binary chunk: resolves when the upstream took it.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<Promise, JsValue> {
        self.check_writable()?;
        Ok(self.session.send_with(|core| core.send_binary(bytes)))
    }

    fn check_writable(&self) -> Result<(), JsValue> {
        if self.session.core().ready_state() != socket::ReadyState::Open {
            return Err(api_error(&ApiError {
                name: "InvalidStateError",
                message: "The H2WebSocketStream is not open.".into(),
            }));
        }
        Ok(())
    }
}
