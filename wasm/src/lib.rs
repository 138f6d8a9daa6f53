//! The h2ws browser library (npm package `h2ws`): `H2WebSocket`, a drop-in for the browser's
//! `WebSocket` that rides `fetch()` streams on HTTP/2, and `H2WebSocketStream`.
//!
//! The wire work is the codec's ([`h2ws_codec::Connection`] with stream framing); this crate adds
//! the WHATWG socket state rules ([`socket`]), the two fetch transports (`transport`) and the
//! bindings. The JS layer (`wasm/js/`) wraps them in an `EventTarget`, converts values and owns
//! the API rules that throw synchronously (URL, subprotocols, `send()` while CONNECTING, `close()`
//! arguments): it loads the wasm lazily, so those must answer before the wasm is there.
//!
//! The core is plain Rust and runs anywhere:
//! ```
//! use h2ws_wasm::socket::{Output, ReadyState, SocketCore};
//!
//! let mut socket = SocketCore::new(h2ws_codec::Config::default());
//! assert_eq!(socket.ready_state(), ReadyState::Connecting);
//! assert_eq!(socket.opened("", ""), vec![Output::Open]);
//! socket.send_text("hi");
//! let transmit = socket.take_transmit().unwrap();
//! assert_eq!(transmit.bytes, b"\x81\x02hi"); // FIN|Text, MASK 0, length 2 (DESIGN §3)
//! assert_eq!(socket.ready_state(), ReadyState::Open);
//! ```

// The npm package builds without `std` (feature `std`, see Cargo.toml): no std panic machinery.
#![cfg_attr(all(target_arch = "wasm32", not(feature = "std")), no_std)]

extern crate alloc;

pub mod socket;

/// Without std (the npm package): a panic traps at once, as std's handler ends under
/// panic=abort on wasm32 (the page sees a `RuntimeError: unreachable`), minus the message it
/// formats for a stderr that wasm32-unknown-unknown does not have.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// Talc instead of the default dlmalloc: the same job in a fraction of the wasm. Sound here: the
/// package is single-threaded wasm (no `atomics`), which is what talc's wasm allocator requires.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[cfg(target_arch = "wasm32")]
mod session;
#[cfg(target_arch = "wasm32")]
mod stream_api;
#[cfg(target_arch = "wasm32")]
mod transport;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(target_arch = "wasm32")]
pub use bindings::Core;

#[cfg(target_arch = "wasm32")]
mod bindings {
    use alloc::rc::Rc;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    use js_sys::{Array, Function, Promise};
    use wasm_bindgen::prelude::*;

    use crate::session::{self, Params, Session};
    use crate::socket::{self, SocketCore};

    /// One socket, as the JS classes see it.
    #[wasm_bindgen]
    pub struct Core {
        pub(crate) session: Rc<Session>,
    }

    #[wasm_bindgen]
    impl Core {
        /// Starts the open request of a socket whose arguments the JS layer checked and
        /// resolved: `url` the ws(s) URL, `http_url` the one fetched, `origin` the ws(s) origin.
        /// `emit(kind, data)` receives `open`, `message`, `error`, `close` as 0–3
        /// (`session::Emit`). `resume`: offer lossless resume at the open (codec `resume`).
        /// `headers`: the page's extra headers as `[name, value]` string pairs
        /// (`[...new Headers(options.headers)]`).
        #[wasm_bindgen(constructor)]
        #[allow(clippy::too_many_arguments)]
        pub fn new(
            url: String,
            http_url: String,
            origin: String,
            protocols: Array,
            transport: String,
            request_streaming: bool,
            headers: Array,
            emit: Function,
            pull_mode: bool,
            resume: bool,
        ) -> Result<Core, JsValue> {
            let protocols: Vec<String> = protocols
                .iter()
                .map(|p| p.as_string().unwrap_or_default())
                .collect();
            let protocol_header = socket::protocol_header(&protocols);
            // Request bodies stream over HTTP/2 only, which browsers speak only over TLS.
            let http_scheme = if http_url.starts_with("https:") {
                "https:"
            } else {
                "http:"
            };
            let request_streaming = socket::request_streaming_to(http_scheme, request_streaming);
            let params = Params {
                http_url,
                ws_url: url,
                origin,
                protocols,
                protocol_header,
                headers: headers.into(),
                transport,
                request_streaming,
                resume,
            };
            let session = Session::new(params, emit, pull_mode)?;
            session.start();
            Ok(Core { session })
        }

        /// The per-origin cap on open sockets (default 100; DESIGN §1).
        pub fn set_max_sockets_per_origin(max: u32) {
            session::set_max_per_origin(max);
        }

        #[wasm_bindgen(getter, js_name = readyState)]
        pub fn ready_state(&self) -> u16 {
            self.session.core().ready_state() as u16
        }

        #[wasm_bindgen(getter, js_name = bufferedAmount)]
        pub fn buffered_amount(&self) -> f64 {
            self.session.core().buffered_amount() as f64
        }

        #[wasm_bindgen(getter)]
        pub fn protocol(&self) -> String {
            self.session.core().protocol().to_string()
        }

        #[wasm_bindgen(getter)]
        pub fn extensions(&self) -> String {
            self.session.core().extensions().to_string()
        }

        /// `send(string)`, and the stream API's text chunk: the promise resolves when the
        /// upstream took it (the WebSocket API ignores it). The JS layer checks the state.
        pub fn send_text(&self, text: &str) -> Promise {
            self.session.send_with(|core| core.send_text(text))
        }

        /// `send(bytes)`, and the stream API's binary chunk: see [`Core::send_text`].
        pub fn send_bytes(&self, bytes: &[u8]) -> Promise {
            self.session.send_with(|core| core.send_binary(bytes))
        }

        /// `send(Blob)`: count `len` now; the bytes follow via `send_reserved_*`.
        pub fn reserve(&self, len: f64) {
            self.session.core_mut().reserve(len as u64);
        }

        pub fn send_reserved_bytes(&self, bytes: &[u8]) {
            let _ = self
                .session
                .send_with(|core| core.send_reserved_binary(bytes));
        }

        pub fn send_reserved_text(&self, text: &str) {
            let _ = self.session.send_with(|core| core.send_reserved_text(text));
        }

        /// `close(code?, reason?)` with arguments the JS layer checked.
        pub fn close(&self, code: Option<u16>, reason: &str) {
            self.session.close(code, reason);
        }
    }

    impl Session {
        /// Runs a send on the core and flushes; the promise resolves when the upstream took
        /// the bytes (or at once when nothing was queued, e.g. while closing).
        pub(crate) fn send_with(self: &Rc<Self>, f: impl FnOnce(&mut SocketCore)) -> Promise {
            f(&mut self.core_mut());
            self.flush()
                .unwrap_or_else(|| Promise::resolve(&JsValue::UNDEFINED))
        }
    }
}
