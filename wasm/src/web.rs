//! Small JS glue: global `fetch`, timers, promise helpers (work in windows and workers).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(request: &web_sys::Request) -> Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    /// What `ReadableStreamDefaultReader.read()` resolves to. Typed getters, not `Reflect`
    /// with `"done"` / `"value"`: those strings cost a UTF-8 decode each, per read.
    type ReadResult;
    #[wasm_bindgen(method, getter)]
    fn done(this: &ReadResult) -> bool;
    #[wasm_bindgen(method, getter)]
    fn value(this: &ReadResult) -> JsValue;
    /// A promise seen as a plain thenable, for [`then`].
    #[wasm_bindgen(extends = Promise)]
    type Thenable;
    #[wasm_bindgen(method, js_name = then)]
    fn then_functions(this: &Thenable, on_ok: &Function, on_err: &Function) -> Promise;
}

/// `promise.then(on_ok, on_err)` with plain functions (made once and reused, where a
/// `JsFuture` would make two closures per promise).
pub fn then(promise: &Promise, on_ok: &Function, on_err: &Function) {
    let _ = promise
        .unchecked_ref::<Thenable>()
        .then_functions(on_ok, on_err);
}

/// `performance.now()` as the codec's clock (monotonic milliseconds).
pub fn now() -> h2ws_codec::Timestamp {
    h2ws_codec::Timestamp::from_millis(performance_now() as u64)
}

/// `fetch(request)` through the global scope.
pub fn fetch(request: &web_sys::Request) -> Promise {
    global_fetch(request)
}

/// A promise that resolves (with `undefined`) after `ms` milliseconds.
pub fn sleep(ms: i32) -> Promise {
    Promise::new(&mut |resolve, _reject| {
        set_timeout(&resolve, ms);
    })
}

/// A one-shot timer that can be cancelled.
pub struct Timer {
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Timer {
    pub fn once(ms: i32, f: impl FnOnce() + 'static) -> Timer {
        let mut f = Some(f);
        let callback = Closure::wrap(Box::new(move || {
            if let Some(f) = f.take() {
                f()
            }
        }) as Box<dyn FnMut()>);
        let id = set_timeout(callback.as_ref().unchecked_ref(), ms);
        Timer {
            id,
            _callback: callback,
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}

/// Lets a promise settle in the background, so a rejection is handled (no console noise).
pub fn settle(promise: Promise) {
    wasm_bindgen_futures::spawn_local(async move {
        let _ = JsFuture::from(promise).await;
    });
}

/// `Promise.race([a, b])`.
pub fn race(a: &Promise, b: &Promise) -> Promise {
    Promise::race(&Array::of2(a, b))
}

/// One `reader.read()` result.
pub enum Read {
    Chunk(Vec<u8>),
    Done,
    /// The read did not settle in time (raced against a timer).
    TimedOut,
}

/// A settled `read()` promise's value (or `undefined` from a [`race`] with [`sleep`]).
pub fn read_result(result: JsValue) -> Result<Read, JsValue> {
    if result.is_undefined() {
        return Ok(Read::TimedOut);
    }
    let result: ReadResult = result.unchecked_into();
    if result.done() {
        return Ok(Read::Done);
    }
    let bytes = result.value().dyn_into::<Uint8Array>()?;
    Ok(Read::Chunk(bytes.to_vec()))
}

/// Builds a request (`method`: codec `fetch::METHOD`, or `POST` for a streamed body) with the
/// given headers, body and abort signal.
pub fn request(
    method: &str,
    url: &str,
    headers: &web_sys::Headers,
    body: Option<&JsValue>,
    half_duplex: bool,
    signal: &web_sys::AbortSignal,
) -> Result<web_sys::Request, JsValue> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(headers);
    init.set_signal(Some(signal));
    if let Some(body) = body {
        init.set_body(body);
    }
    Reflect::set(&init, &"cache".into(), &"no-store".into())?;
    // A WebSocket handshake never follows redirects (a POST would even turn into a GET).
    Reflect::set(&init, &"redirect".into(), &"error".into())?;
    if half_duplex {
        Reflect::set(&init, &"duplex".into(), &"half".into())?;
    }
    web_sys::Request::new_with_str_and_init(url, &init)
}

/// The page's console, for the per-origin cap warning: the message is `parts` joined (by a
/// loop: `concat` would link a generic join, ~1 KB of wasm).
pub fn warn(parts: &[&str]) {
    let mut message = String::new();
    for part in parts {
        message.push_str(part);
    }
    web_sys::console::warn_1(&message.into());
}

/// `Headers` from the page's extra headers (e.g. `Authorization`): the JS layer's array of
/// `[name, value]` string pairs, kept as it came (`new Headers(pairs)`).
pub fn build_headers(pairs: &JsValue) -> Result<web_sys::Headers, JsValue> {
    web_sys::Headers::new_with_str_sequence_sequence(pairs)
}
