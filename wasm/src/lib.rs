//! The h2ws browser library (npm package `h2ws`): `H2WebSocket`, a drop-in for the browser's
//! `WebSocket` that rides `fetch()` streams on HTTP/2, and `H2WebSocketStream`.
//!
//! The wire work is the codec's ([`h2ws_codec::Connection`] with stream framing); this crate adds
//! the WHATWG API rules ([`socket`]), the two fetch transports (`transport`) and the bindings.
//! The JS layer (`wasm/js/`) only wraps them in an `EventTarget` and converts values.
//!
//! The core is plain Rust and runs anywhere:
//! ```
//! use h2ws_wasm::socket::{Output, ReadyState, SocketCore};
//!
//! let mut socket = SocketCore::new(h2ws_codec::Config::default());
//! assert!(socket.send_text("too early").is_err()); // InvalidStateError while CONNECTING
//! assert_eq!(socket.opened("", ""), vec![Output::Open]);
//! socket.send_text("hi").unwrap();
//! let transmit = socket.take_transmit().unwrap();
//! assert_eq!(transmit.bytes, b"\x81\x02hi"); // FIN|Text, MASK 0, length 2 (DESIGN §3)
//! assert_eq!(socket.ready_state(), ReadyState::Open);
//! ```

pub mod socket;

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
pub(crate) use bindings::api_error;

#[cfg(target_arch = "wasm32")]
mod bindings {
    use std::rc::Rc;

    use js_sys::{Array, Function, Promise};
    use wasm_bindgen::prelude::*;
    use web_sys::{DomException, Url};

    use crate::session::{self, Params, Session};
    use crate::socket::{self, ApiError, SocketCore};

    /// One socket, as the JS classes see it.
    #[wasm_bindgen]
    pub struct Core {
        pub(crate) session: Rc<Session>,
    }

    pub(crate) fn api_error(error: &ApiError) -> JsValue {
        match DomException::new_with_message_and_name(&error.message, error.name) {
            Ok(exception) => exception.into(),
            Err(other) => other,
        }
    }

    fn syntax_error(message: String) -> JsValue {
        api_error(&ApiError {
            name: "SyntaxError",
            message,
        })
    }

    #[wasm_bindgen]
    impl Core {
        /// Validates the arguments like the `WebSocket` constructor (throwing `SyntaxError`) and
        /// starts the open request. `emit(kind, data)` receives `open`, `message`, `error`, `close`.
        #[wasm_bindgen(constructor)]
        #[allow(clippy::too_many_arguments)]
        pub fn new(
            url: &str,
            base: Option<String>,
            protocols: Array,
            transport: &str,
            request_streaming: bool,
            headers: Array,
            emit: Function,
            pull_mode: bool,
        ) -> Result<Core, JsValue> {
            let parsed = match base.as_deref() {
                Some(base) => Url::new_with_base(url, base),
                None => Url::new(url),
            }
            .map_err(|_| {
                syntax_error(format!(
                    "Failed to construct 'H2WebSocket': The URL '{url}' is invalid."
                ))
            })?;
            let href = parsed.href();
            let (ws_scheme, http_scheme) =
                socket::map_scheme(&parsed.protocol(), href.split_once('#').map(|(_, f)| f))
                    .map_err(|e| api_error(&e))?;
            parsed.set_protocol(ws_scheme);
            let ws_url = parsed.href();
            let origin = parsed.origin();
            parsed.set_protocol(http_scheme);
            let http_url = parsed.href();

            let protocols: Vec<String> = protocols
                .iter()
                .map(|p| p.as_string().unwrap_or_default())
                .collect();
            let protocol_header =
                socket::validate_protocols(&protocols).map_err(|e| api_error(&e))?;
            let mut header_pairs = Vec::new();
            for pair in headers.iter() {
                let pair = Array::from(&pair);
                let name = pair.get(0).as_string().unwrap_or_default();
                let value = pair.get(1).as_string().unwrap_or_default();
                header_pairs.push((name, value));
            }
            // Reject bad header names/values now, as a TypeError from the constructor.
            session::build_headers(&header_pairs)?;
            let params = Params {
                http_url,
                ws_url,
                origin,
                protocols,
                protocol_header,
                headers: header_pairs,
                transport: transport.to_string(),
                request_streaming: socket::request_streaming_to(http_scheme, request_streaming),
            };
            let session = Session::new(params, emit, pull_mode)?;
            session.start();
            Ok(Core { session })
        }

        /// The per-origin cap on open sockets (default 100; DESIGN §1).
        pub fn set_max_sockets_per_origin(max: u32) {
            session::set_max_per_origin(max);
        }

        #[wasm_bindgen(getter)]
        pub fn url(&self) -> String {
            self.session.params.ws_url.clone()
        }

        /// The ws/wss origin (`MessageEvent.origin`).
        #[wasm_bindgen(getter)]
        pub fn origin(&self) -> String {
            self.session.params.origin.clone()
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

        pub fn send_text(&self, text: &str) -> Result<(), JsValue> {
            self.session
                .send_with(|core| core.send_text(text))
                .map(drop)
        }

        pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), JsValue> {
            self.session
                .send_with(|core| core.send_binary(bytes))
                .map(drop)
        }

        /// `send(Blob)`: count `len` now; the bytes follow via `send_reserved_*`.
        pub fn reserve(&self, len: f64) -> Result<(), JsValue> {
            self.session
                .send_with(|core| core.reserve(len as u64))
                .map(drop)
        }

        pub fn send_reserved_bytes(&self, bytes: &[u8]) {
            let _ = self.session.send_with(|core| {
                core.send_reserved_binary(bytes);
                Ok(())
            });
        }

        pub fn send_reserved_text(&self, text: &str) {
            let _ = self.session.send_with(|core| {
                core.send_reserved_text(text);
                Ok(())
            });
        }

        /// `close(code?, reason?)`; throws `InvalidAccessError` / `SyntaxError`.
        pub fn close(&self, code: Option<u16>, reason: Option<String>) -> Result<(), JsValue> {
            self.session
                .close(code, reason.as_deref())
                .map_err(|e| api_error(&e))
        }
    }

    impl Session {
        /// Runs a send on the core and flushes; the promise resolves when the upstream took
        /// the bytes (or at once when nothing was queued, e.g. while closing).
        pub(crate) fn send_with(
            self: &Rc<Self>,
            f: impl FnOnce(&mut SocketCore) -> Result<(), ApiError>,
        ) -> Result<Promise, JsValue> {
            f(&mut self.core_mut()).map_err(|e| api_error(&e))?;
            Ok(self
                .flush()
                .unwrap_or_else(|| Promise::resolve(&JsValue::UNDEFINED)))
        }
    }
}
