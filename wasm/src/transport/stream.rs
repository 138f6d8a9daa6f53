//! `stream` upstream (DESIGN §2.2): one `POST` whose body is a `ReadableStream` fed through a
//! `TransformStream` writer (§2.4: the tightest tails of the feeding options measured).
//!
//! With `transport: 'auto'` the upstream may still fall back to `post`: the server offers
//! `stream` whatever HTTP version it sees (codec `fetch::SERVER_TRANSPORTS`), because behind a
//! proxy it cannot know what the browser speaks; if the request fails within
//! `fetch::STREAM_FALLBACK_MS` (Chromium rejects a streamed body on an HTTP/1.1 connection at
//! once; a proxy may refuse it), what was written meanwhile is handed to a `post` upstream on
//! the same session.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;

use h2ws_codec::handshake::fetch;
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortSignal, Headers, Response, TransformStream, WritableStreamDefaultWriter};

use super::Owner;
use crate::socket::Transmit;
use crate::web::{self, Timer};

/// Most bytes kept for a fallback; a socket that writes more within the fallback window gives
/// up the fallback (a later failure is then an ordinary transport error).
const FALLBACK_KEEP_MAX: usize = 1 << 20;

/// Why a forced `stream` failed right after `open` (its upstream request was refused at once).
pub const STREAM_FAILED_AT_ONCE: &str = "the 'stream' upstream request failed at once: the \
     connection is HTTP/1.1 (browsers stream request bodies only over HTTP/2) or a proxy refuses \
     streamed request bodies; use transport 'auto' (falls back to 'post') or 'post'";

/// A write not settled yet: its `bufferedAmount` bytes, and its index among the kept transmits.
type Unsettled = (usize, Option<usize>);

pub struct StreamUpstream {
    writer: WritableStreamDefaultWriter,
    /// Application bytes written and not yet reported as transmitted.
    uncredited: Rc<core::cell::Cell<usize>>,
    fallback: Rc<Fallback>,
    /// One entry per write not yet settled, in write order (a writer settles its writes in
    /// order): what it counts for `bufferedAmount`, and its place among the kept transmits.
    pending: Rc<RefCell<VecDeque<Unsettled>>>,
    /// The callbacks every write's promise settles into: made once, not per write. A spawned
    /// future per write (a `JsFuture`: two closures, a `then`, a task) cost the page more CPU
    /// than the write itself (measured: it was most of H2WebSocket's RTT above the fetch floor).
    /// JS functions owning their closures (`into_js_value`): a write settling after the
    /// upstream is gone still finds them alive (the JS GC frees them).
    on_written: js_sys::Function,
    on_failed: js_sys::Function,
}

/// What was written while a fallback to `post` is still possible.
struct Fallback {
    /// `Some` while the window is open: each transmit, its `app_bytes` zeroed once the stream
    /// took it (so a resend is not counted twice in `bufferedAmount`).
    kept: RefCell<Option<Vec<Transmit>>>,
    kept_bytes: core::cell::Cell<usize>,
    timer: RefCell<Option<Timer>>,
    /// The body was ended ([`StreamUpstream::finish`]): its answer is expected now.
    finished: core::cell::Cell<bool>,
}

impl Fallback {
    fn armed(&self) -> bool {
        self.kept.borrow().is_some()
    }

    fn disarm(&self) {
        self.kept.borrow_mut().take();
        self.timer.borrow_mut().take();
    }
}

impl StreamUpstream {
    /// Starts the upstream request; it stays open until [`StreamUpstream::finish`]. With
    /// `fallback`, a failure within `fetch::STREAM_FALLBACK_MS` switches the session to `post`.
    pub fn start(
        owner: Weak<dyn Owner>,
        url: &str,
        headers: &Headers,
        signal: &AbortSignal,
        fallback: bool,
    ) -> Result<StreamUpstream, JsValue> {
        let pipe = TransformStream::new()?;
        let writer = pipe.writable().get_writer()?;
        // A streamed body is always POST.
        let request = web::request("POST", url, headers, Some(&pipe.readable()), true, signal)?;
        let response = web::fetch(&request);
        let state = Rc::new(Fallback {
            kept: RefCell::new(fallback.then(Vec::new)),
            kept_bytes: Default::default(),
            timer: RefCell::new(None),
            finished: Default::default(),
        });
        let started = js_sys::Date::now();
        if fallback {
            let weak = Rc::downgrade(&state);
            *state.timer.borrow_mut() =
                Some(Timer::once(fetch::STREAM_FALLBACK_MS as i32, move || {
                    if let Some(state) = weak.upgrade() {
                        state.kept.borrow_mut().take();
                    }
                }));
        }
        let weak = owner.clone();
        let watch = state.clone();
        spawn_local(async move {
            // Settles after the body ended (close) or on a transport error; while the window
            // is open, any settling is a refusal (a healthy upstream is answered at its end).
            let ok = match JsFuture::from(response).await {
                Ok(response) => Response::from(response).ok(),
                Err(_) => false,
            };
            let Some(owner) = weak.upgrade() else {
                return;
            };
            let kept = watch.kept.borrow_mut().take();
            watch.timer.borrow_mut().take();
            match kept {
                Some(kept) => owner.fall_back_to_post(kept),
                _ if !ok => {
                    // A forced `stream` refused at once: say why, like the other cannot-open cases.
                    let at_once =
                        js_sys::Date::now() - started < f64::from(fetch::STREAM_FALLBACK_MS);
                    if !fallback && at_once && !watch.finished.get() {
                        owner.clone().warn_cannot_open(STREAM_FAILED_AT_ONCE);
                    }
                    owner.transport_failed()
                }
                _ => {}
            }
        });
        let pending: Rc<RefCell<VecDeque<Unsettled>>> = Rc::default();
        let uncredited: Rc<core::cell::Cell<usize>> = Rc::default();
        let on_written = {
            let (pending, fallback, weak) = (pending.clone(), state.clone(), owner.clone());
            let uncredited = uncredited.clone();
            Closure::wrap(Box::new(move |_: JsValue| {
                let Some((app_bytes, index)) = pending.borrow_mut().pop_front() else {
                    return;
                };
                if let (Some(i), Some(kept)) = (index, fallback.kept.borrow_mut().as_mut()) {
                    if let Some(t) = kept.get_mut(i) {
                        t.app_bytes = 0; // the fallback's resend is not counted twice
                    }
                }
                // What `abandon` already took off `bufferedAmount` is not credited again.
                let credited = app_bytes.min(uncredited.get());
                uncredited.set(uncredited.get() - credited);
                if let Some(owner) = weak.upgrade() {
                    owner.transmitted(credited);
                }
            }) as Box<dyn FnMut(JsValue)>)
            .into_js_value()
            .unchecked_into()
        };
        let on_failed = {
            let (pending, fallback, weak) = (pending.clone(), state.clone(), owner.clone());
            Closure::wrap(Box::new(move |_: JsValue| {
                pending.borrow_mut().pop_front();
                // While a fallback is possible the request's own result decides.
                if fallback.armed() {
                    return;
                }
                if let Some(owner) = weak.upgrade() {
                    owner.transport_failed();
                }
            }) as Box<dyn FnMut(JsValue)>)
            .into_js_value()
            .unchecked_into()
        };
        Ok(StreamUpstream {
            writer,
            uncredited,
            fallback: state,
            pending,
            on_written,
            on_failed,
        })
    }

    pub fn send(&self, transmit: Transmit) -> Promise {
        let chunk = Uint8Array::from(&transmit.bytes[..]);
        let written = self.writer.write_with_chunk(&chunk);
        let app_bytes = transmit.app_bytes;
        self.uncredited.set(self.uncredited.get() + app_bytes);
        // Keep a copy while a fallback is possible (bounded).
        let mut index = None;
        if self.fallback.armed() {
            let total = self.fallback.kept_bytes.get() + transmit.bytes.len();
            if total > FALLBACK_KEEP_MAX {
                self.fallback.disarm();
            } else if let Some(kept) = self.fallback.kept.borrow_mut().as_mut() {
                self.fallback.kept_bytes.set(total);
                index = Some(kept.len());
                kept.push(transmit);
            }
        }
        self.pending.borrow_mut().push_back((app_bytes, index));
        web::then(&written, &self.on_written, &self.on_failed);
        if index.is_some() {
            // A write the fallback will resend must not reject toward the page.
            return wasm_bindgen_futures::future_to_promise(async move {
                let _ = JsFuture::from(written).await;
                Ok(JsValue::UNDEFINED)
            });
        }
        written
    }

    /// The transport was lost and resume goes on without this upstream: the application bytes
    /// never reported as transmitted (the codec keeps their frames for replay).
    pub fn abandon(&self) -> usize {
        self.uncredited.replace(0)
    }

    pub fn finish(&self) {
        // The body ends now: its answer is expected, no refusal any more.
        self.fallback.disarm();
        self.fallback.finished.set(true);
        // A rejection here means the request already failed; that path reports itself.
        web::settle(self.writer.close());
    }
}
