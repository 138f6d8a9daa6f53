//! One socket's life on the fetch transports: open request, downstream reading, upstream
//! writing, close handshake with timeouts, failure. Drives a [`SocketCore`] and hands its
//! [`Output`]s to the JS layer through one `emit(kind, data)` callback.
//!
//! Re-entrancy: JS event handlers may call back (`send`, `close`) while an event is being
//! dispatched, so no `RefCell` borrow is ever held across a call into JS.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use h2ws_codec::handshake::fetch;
use h2ws_codec::Message;
use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortController, Headers, ReadableStreamDefaultReader, Response};

use crate::socket::{self, CloseAction, Output, SocketCore, Transport};
// `transport::Owner` is named, not imported: its methods (taking `Rc<Self>`) would shadow the
// session's own ones of the same names.
use crate::transport::{self, post::PostUpstream, stream::StreamUpstream, Upstream};
use crate::web::{self, Read, Timer};

/// The open request must be answered within this time.
const OPEN_TIMEOUT_MS: i32 = 30_000;
/// After the close handshake, the server ends the downstream within this time (else we cancel it).
const DRAIN_TIMEOUT_MS: i32 = 2_000;
/// Retries of an ack request that got no answer or an error status.
const ACK_RETRIES: u32 = 3;

/// How an ack request ended.
enum AckOutcome {
    Taken,
    /// `410`: the server ended the socket.
    Ended,
    Failed,
}

/// Default per-origin cap (DESIGN §1): Chromium holds at most ~256 streams per connection and
/// a socket uses two, so the cap fails fast instead of hanging.
const DEFAULT_MAX_PER_ORIGIN: u32 = 100;

thread_local! {
    /// Open sockets per origin. A list, not a `HashMap`: a page talks to few origins, and
    /// hashbrown + SipHash cost ~4 KB of wasm.
    static OPEN_PER_ORIGIN: RefCell<Vec<(String, u32)>> = const { RefCell::new(Vec::new()) };
    static MAX_PER_ORIGIN: Cell<u32> = const { Cell::new(DEFAULT_MAX_PER_ORIGIN) };
}

pub fn set_max_per_origin(max: u32) {
    MAX_PER_ORIGIN.with(|m| m.set(max));
}

/// Everything the open request needs, fixed at construction.
pub struct Params {
    pub http_url: String,
    pub ws_url: String,
    pub origin: String,
    pub protocols: Vec<String>,
    pub protocol_header: String,
    pub headers: Vec<(String, String)>,
    pub transport: String,
    pub request_streaming: bool,
}

pub struct Session {
    pub params: Params,
    core: RefCell<SocketCore>,
    emit: RefCell<Option<Function>>,
    abort: AbortController,
    upstream: RefCell<Option<Upstream>>,
    reader: RefCell<Option<ReadableStreamDefaultReader>>,
    /// A read loop is running.
    driving: Cell<bool>,
    /// `H2WebSocketStream`: read only while a `pull()` waits (backpressure).
    pull_mode: bool,
    pub(crate) pull_waiters: RefCell<VecDeque<Function>>,
    pub(crate) inbox: RefCell<VecDeque<JsValue>>,
    counted: Cell<bool>,
    pub(crate) finished: Cell<bool>,
    /// Wakes the codec's liveness timers (idle, close handshake: `h2ws_codec::timer`).
    timer: RefCell<Option<Timer>>,
    /// The deadline `timer` is set for (codec ms); re-armed only for an earlier one.
    timer_at: Cell<Option<u64>>,
    drain_deadline: RefCell<Option<Promise>>,
    /// The read window the server granted (`h2ws-window`), if any: acks are sent then.
    read_window: Cell<Option<u64>>,
    /// The session token, for ack requests.
    token: RefCell<String>,
    /// Downstream body bytes read so far, and the most acknowledged.
    read_total: Cell<u64>,
    acked: Cell<u64>,
    ack_in_flight: Cell<bool>,
}

impl Session {
    pub fn new(params: Params, emit: Function, pull_mode: bool) -> Result<Rc<Session>, JsValue> {
        Ok(Rc::new(Session {
            params,
            core: RefCell::new(SocketCore::new(codec_config())),
            emit: RefCell::new(Some(emit)),
            abort: AbortController::new()?,
            upstream: RefCell::new(None),
            reader: RefCell::new(None),
            driving: Cell::new(false),
            pull_mode,
            pull_waiters: RefCell::new(VecDeque::new()),
            inbox: RefCell::new(VecDeque::new()),
            counted: Cell::new(false),
            finished: Cell::new(false),
            timer: RefCell::new(None),
            timer_at: Cell::new(None),
            drain_deadline: RefCell::new(None),
            read_window: Cell::new(None),
            token: RefCell::new(String::new()),
            read_total: Cell::new(0),
            acked: Cell::new(0),
            ack_in_flight: Cell::new(false),
        }))
    }

    pub fn core(&self) -> std::cell::Ref<'_, SocketCore> {
        self.core.borrow()
    }

    pub fn core_mut(&self) -> std::cell::RefMut<'_, SocketCore> {
        self.core.borrow_mut()
    }

    pub fn start(self: &Rc<Self>) {
        let this = self.clone();
        spawn_local(async move { this.open().await });
    }

    async fn open(self: Rc<Self>) {
        if let Err(why) =
            socket::check_requested_transport(&self.params.transport, self.params.request_streaming)
        {
            self.warn_cannot_open(why);
            self.fail();
            return;
        }
        if !self.acquire_slot() {
            // Concatenated, not `format!`: keeps `core::fmt` out of the package.
            let cap = fetch::decimal(MAX_PER_ORIGIN.with(|m| m.get()).into());
            web::warn(
                &[
                    "h2ws: too many open sockets to ",
                    &self.params.origin,
                    " (cap ",
                    &cap,
                    "); failing this one. See H2WebSocket.maxSocketsPerOrigin.",
                ]
                .concat(),
            );
            self.fail();
            return;
        }
        if self.handshake().await.is_err() {
            // Refused or broken: release whatever the open request still holds.
            self.abort.abort();
            self.fail();
        }
    }

    async fn handshake(self: &Rc<Self>) -> Result<(), JsValue> {
        let headers = web::build_headers(&self.params.headers)?;
        headers.set("h2ws-version", "1")?;
        if !self.params.protocol_header.is_empty() {
            headers.set("h2ws-protocol", &self.params.protocol_header)?;
        }
        if let Some(offer) = extension_offer() {
            headers.set("h2ws-extensions", &offer)?;
        }
        // We acknowledge what we read: the server then bounds the downstream (codec
        // `fetch::READ_WINDOW`), the only backpressure where the engine buffers response
        // bodies without bound (Firefox, WebKit).
        headers.set(fetch::H2WS_ACKS, "1")?;
        let request = self.bodiless_request(&headers)?;
        let abort = self.abort.clone();
        let timeout = Timer::once(OPEN_TIMEOUT_MS, move || abort.abort());
        let response = JsFuture::from(web::fetch(&request)).await;
        drop(timeout);
        let response: Response = response?.dyn_into()?;
        if self.core.borrow().ready_state() != socket::ReadyState::Connecting {
            // close() during CONNECTING.
            return Err(JsValue::NULL);
        }
        if response.status() != 200 {
            return Err(JsValue::NULL);
        }
        let answer = response.headers();
        let token = answer.get("h2ws-session")?.ok_or(JsValue::NULL)?;
        let protocol = answer.get("h2ws-protocol")?.unwrap_or_default();
        if !socket::check_protocol(&self.params.protocols, &protocol) {
            return Err(JsValue::NULL);
        }
        let extensions = answer.get("h2ws-extensions")?.unwrap_or_default();
        let config = accept_extensions(&extensions).ok_or(JsValue::NULL)?;
        *self.core.borrow_mut() = SocketCore::new(config);
        let transports = answer.get("h2ws-transports")?;
        let window = answer.get(fetch::H2WS_WINDOW)?;
        self.read_window
            .set(window.and_then(|w| fetch::parse_window(w.as_bytes())));
        *self.token.borrow_mut() = token.clone();
        let body = response.body().ok_or(JsValue::NULL)?;
        let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        let transport = socket::choose_transport(
            &self.params.transport,
            self.params.request_streaming,
            transports.as_deref(),
        )
        .map_err(|why| {
            self.warn_cannot_open(why);
            JsValue::NULL
        })?;
        let upstream = match transport {
            Transport::Stream => {
                let headers = web::build_headers(&self.params.headers)?;
                headers.set("h2ws-session", &token)?;
                // `auto` may still fall back to `post` (codec `fetch::STREAM_FALLBACK_MS`); a
                // forced `stream` fails instead.
                Upstream::Stream(StreamUpstream::start(
                    self.owner(),
                    &self.params.http_url,
                    &headers,
                    &self.abort.signal(),
                    self.params.transport != "stream",
                )?)
            }
            Transport::Post => Upstream::Post(PostUpstream::new(
                self.owner(),
                &self.params.http_url,
                self.params.headers.clone(),
                &token,
                &self.abort.signal(),
            )),
        };
        *self.upstream.borrow_mut() = Some(upstream);
        *self.reader.borrow_mut() = Some(reader);
        self.core
            .borrow_mut()
            .start_timers(!self.pull_mode, web::now());
        self.arm_timer();
        let outputs = self.core.borrow_mut().opened(&protocol, &extensions);
        self.deliver(outputs);
        self.ensure_driving();
        Ok(())
    }

    /// The console message of a socket that cannot open with the transport it asked for.
    pub(crate) fn warn_cannot_open(&self, why: &str) {
        web::warn(&["h2ws: cannot open ", &self.params.ws_url, ": ", why, "."].concat());
    }

    /// Sets the timer for the codec's next deadline, unless one at least as early is set. It
    /// may fire early (input moved the deadline later): [`Session::on_timer`] then re-arms.
    fn arm_timer(self: &Rc<Self>) {
        if self.finished.get() {
            return;
        }
        let Some(deadline) = self.core.borrow().poll_timeout() else {
            return;
        };
        let deadline = deadline.as_millis();
        if self.timer_at.get().is_some_and(|at| at <= deadline) {
            return;
        }
        let delay = deadline.saturating_sub(web::now().as_millis());
        let delay = i32::try_from(delay).unwrap_or(i32::MAX);
        let weak = Rc::downgrade(self);
        self.timer_at.set(Some(deadline));
        *self.timer.borrow_mut() = Some(Timer::once(delay, move || {
            if let Some(this) = weak.upgrade() {
                // Spawned: failing drops this timer, which must not happen inside its callback.
                spawn_local(async move { this.on_timer() });
            }
        }));
    }

    fn on_timer(self: &Rc<Self>) {
        self.timer_at.set(None);
        if self.finished.get() {
            return;
        }
        let timed_out = self.core.borrow_mut().handle_timeout(web::now());
        if timed_out {
            self.abort.abort();
            self.fail();
        } else {
            self.arm_timer();
        }
    }

    /// Starts the read loop unless one runs or none is wanted.
    pub fn ensure_driving(self: &Rc<Self>) {
        if self.driving.get() || !self.wants_data() {
            return;
        }
        self.driving.set(true);
        let this = self.clone();
        spawn_local(async move {
            this.drive().await;
            this.driving.set(false);
            // A pull may have arrived while the loop was winding down.
            this.ensure_driving();
        });
    }

    fn wants_data(&self) -> bool {
        if self.finished.get() || self.reader.borrow().is_none() {
            return false;
        }
        !self.pull_mode
            || !self.pull_waiters.borrow().is_empty()
            || self.core.borrow().ready_state() != socket::ReadyState::Open
    }

    async fn drive(self: &Rc<Self>) {
        while self.wants_data() {
            let Some(reader) = self.reader.borrow().clone() else {
                return;
            };
            let read = match self.drain_deadline.borrow().as_ref() {
                Some(deadline) => web::race(&reader.read(), deadline),
                None => reader.read(),
            };
            match web::read_chunk(read).await {
                Ok(Read::Chunk(bytes)) => {
                    if self.finished.get() {
                        return;
                    }
                    self.read_total
                        .set(self.read_total.get() + bytes.len() as u64);
                    self.ack_if_due();
                    let outputs = self.core.borrow_mut().recv_at(web::now(), &bytes);
                    self.deliver(outputs);
                    self.flush();
                    self.after_input();
                    self.arm_timer();
                }
                Ok(Read::Done) | Err(_) => {
                    self.downstream_ended();
                    return;
                }
                Ok(Read::TimedOut) => {
                    web::settle(reader.cancel());
                    self.downstream_ended();
                    return;
                }
            }
        }
    }

    /// After input: a protocol error fails the socket; a finished handshake ends the upstream.
    fn after_input(self: &Rc<Self>) {
        let (must_fail, done) = {
            let core = self.core.borrow();
            (core.must_fail(), core.handshake_done())
        };
        if must_fail {
            // The codec queued a Close with the error's code (flushed above): end both ways.
            self.end_upstream();
            if let Some(reader) = self.reader.borrow().as_ref() {
                web::settle(reader.cancel());
            }
            self.fail();
        } else if done && self.drain_deadline.borrow().is_none() {
            self.timer.borrow_mut().take();
            self.timer_at.set(None);
            self.end_upstream();
            *self.drain_deadline.borrow_mut() = Some(web::sleep(DRAIN_TIMEOUT_MS));
        }
    }

    /// Acknowledges the downstream bytes read once half the read window is used (one ack
    /// request in flight at most). The server sends nothing past the window without acks, so
    /// a failed ack is retried ([`ACK_RETRIES`], backing off); when none gets through the
    /// socket fails (1006) rather than hang. `410` means the server already ended the socket:
    /// what it still had queued comes without acks, so acking just stops.
    fn ack_if_due(self: &Rc<Self>) {
        let Some(window) = self.read_window.get() else {
            return;
        };
        let read = self.read_total.get();
        if self.ack_in_flight.get()
            || self.finished.get()
            || !fetch::ack_due(read, self.acked.get(), window)
        {
            return;
        }
        self.ack_in_flight.set(true);
        let this = self.clone();
        spawn_local(async move {
            let mut attempt = 0;
            let outcome = loop {
                match this.send_ack(read).await {
                    Some(status) if (200..300).contains(&status) => break AckOutcome::Taken,
                    Some(410) => break AckOutcome::Ended,
                    _ if attempt < ACK_RETRIES && !this.finished.get() => {
                        attempt += 1;
                        let _ = JsFuture::from(web::sleep(100 * attempt as i32)).await;
                    }
                    _ => break AckOutcome::Failed,
                }
            };
            this.ack_in_flight.set(false);
            match outcome {
                AckOutcome::Taken => {
                    this.acked.set(this.acked.get().max(read));
                    this.ack_if_due();
                }
                AckOutcome::Ended => this.read_window.set(None),
                AckOutcome::Failed => this.transport_failed(),
            }
        });
    }

    /// One ack request; its status, or `None` when it did not get an answer.
    async fn send_ack(&self, read: u64) -> Option<u16> {
        let headers = web::build_headers(&self.params.headers).ok()?;
        for (name, value) in fetch::ack_request_headers(&self.token.borrow(), read) {
            headers.set(name, &value).ok()?;
        }
        let request = self.bodiless_request(&headers).ok()?;
        let response = JsFuture::from(web::fetch(&request)).await.ok()?;
        Some(Response::from(response).status())
    }

    /// The open and ack requests: no body, `fetch::METHOD` (PUT), this socket's abort signal.
    fn bodiless_request(&self, headers: &Headers) -> Result<web_sys::Request, JsValue> {
        web::request(
            fetch::METHOD,
            &self.params.http_url,
            headers,
            None,
            false,
            &self.abort.signal(),
        )
    }

    fn end_upstream(&self) {
        if let Some(upstream) = self.upstream.borrow().as_ref() {
            upstream.finish();
        }
    }

    fn downstream_ended(self: &Rc<Self>) {
        if self.finished.get() {
            return;
        }
        let done = self.core.borrow().handshake_done();
        if !done {
            // No Close frame before the end: 1006.
            let outputs = self.core.borrow_mut().recv_eof();
            self.deliver(outputs);
            self.abort.abort();
        }
        let outputs = self.core.borrow_mut().finish();
        self.deliver(outputs);
    }

    /// Queued output (data, Pong, Close) to the upstream. Returns the last send's promise.
    pub fn flush(self: &Rc<Self>) -> Option<Promise> {
        let mut last = None;
        loop {
            let Some(transmit) = self.core.borrow_mut().take_transmit() else {
                break;
            };
            let promise = match self.upstream.borrow().as_ref() {
                Some(upstream) => upstream.send(transmit),
                None => break,
            };
            last = Some(promise);
        }
        last
    }

    /// How its upstream reports back (the transports never name the session).
    fn owner(self: &Rc<Self>) -> Weak<dyn transport::Owner> {
        let weak: Weak<Session> = Rc::downgrade(self);
        weak
    }

    pub fn transmitted(&self, app_bytes: usize) {
        self.core.borrow_mut().transmitted(app_bytes);
    }

    /// The `stream` upstream failed at once (`auto` only): the same session continues with
    /// `post` batches, starting with what was written to the stream meanwhile. Safe: the
    /// server's session takes one upstream kind, so if the stream did attach, the batches are
    /// refused (409) and the socket fails instead of delivering anything twice.
    pub fn fall_back_to_post(self: &Rc<Self>, kept: Vec<socket::Transmit>) {
        if self.finished.get() {
            return;
        }
        let token = self.token.borrow().clone();
        let post = PostUpstream::new(
            self.owner(),
            &self.params.http_url,
            self.params.headers.clone(),
            &token,
            &self.abort.signal(),
        );
        for transmit in kept {
            web::settle(post.send(transmit));
        }
        *self.upstream.borrow_mut() = Some(Upstream::Post(post));
        self.flush();
    }

    /// The transport broke (a request failed or was refused).
    pub fn transport_failed(self: &Rc<Self>) {
        if self.finished.get() {
            return;
        }
        if self.core.borrow().handshake_done() {
            // Both Close frames are through; a late transport error does not make it unclean.
            let outputs = self.core.borrow_mut().finish();
            self.deliver(outputs);
            return;
        }
        self.abort.abort();
        self.fail();
    }

    /// `error` + `close` 1006, and every request aborted.
    pub fn fail(self: &Rc<Self>) {
        let outputs = self.core.borrow_mut().fail();
        self.deliver(outputs);
    }

    /// `close(code, reason)` from the page.
    pub fn close(self: &Rc<Self>, code: Option<u16>, reason: &str) {
        let action = self.core.borrow_mut().close(code, reason);
        match action {
            CloseAction::None => {}
            CloseAction::AbortHandshake => {
                // The open fetch (if any) rejects; `open` then fails the socket. Before the
                // fetch started (cap check pending) `open` sees CLOSING and fails too.
                self.abort.abort();
            }
            CloseAction::SendClose => {
                self.flush();
                // The codec's close-handshake timer (1006 when the peer's Close is late).
                self.arm_timer();
                // Pull mode must read on to see the peer's Close.
                self.ensure_driving();
            }
        }
    }

    /// Hands outputs to the page, in order, with no borrow held.
    fn deliver(self: &Rc<Self>, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Open => self.call_emit("open", &JsValue::UNDEFINED),
                Output::Message(message) => {
                    let data = message_to_js(message);
                    if self.pull_mode {
                        let waiter = self.pull_waiters.borrow_mut().pop_front();
                        match waiter {
                            Some(waiter) => {
                                let _ = waiter.call1(&JsValue::UNDEFINED, &data);
                            }
                            None => self.inbox.borrow_mut().push_back(data),
                        }
                    } else {
                        self.call_emit("message", &data);
                    }
                }
                Output::Error => self.call_emit("error", &JsValue::UNDEFINED),
                Output::Close {
                    code,
                    reason,
                    was_clean,
                } => {
                    self.finished.set(true);
                    self.timer.borrow_mut().take();
                    self.timer_at.set(None);
                    self.release_slot();
                    let info = Object::new();
                    let _ = Reflect::set(&info, &"code".into(), &code.into());
                    let _ = Reflect::set(&info, &"reason".into(), &reason.into());
                    let _ = Reflect::set(&info, &"wasClean".into(), &was_clean.into());
                    self.call_emit("close", &info);
                    let waiters: Vec<Function> = self.pull_waiters.borrow_mut().drain(..).collect();
                    for waiter in waiters {
                        let _ = waiter.call1(&JsValue::UNDEFINED, &JsValue::NULL);
                    }
                    // Break the Rust→JS reference so the page object can be collected.
                    self.emit.borrow_mut().take();
                    self.reader.borrow_mut().take();
                    self.upstream.borrow_mut().take();
                }
            }
        }
    }

    fn call_emit(&self, kind: &str, data: &JsValue) {
        let emit = self.emit.borrow().clone();
        if let Some(emit) = emit {
            // Listener exceptions are reported by dispatchEvent itself.
            let _ = emit.call2(&JsValue::UNDEFINED, &kind.into(), data);
        }
    }

    fn acquire_slot(&self) -> bool {
        let max = MAX_PER_ORIGIN.with(|m| m.get());
        let granted = OPEN_PER_ORIGIN.with(|map| {
            let mut map = map.borrow_mut();
            if !map.iter().any(|(o, _)| *o == self.params.origin) {
                map.push((self.params.origin.clone(), 0));
            }
            let Some((_, count)) = map.iter_mut().find(|(o, _)| *o == self.params.origin) else {
                return false;
            };
            if *count >= max {
                false
            } else {
                *count += 1;
                true
            }
        });
        self.counted.set(granted);
        granted
    }

    fn release_slot(&self) {
        if self.counted.replace(false) {
            OPEN_PER_ORIGIN.with(|map| {
                let mut map = map.borrow_mut();
                if let Some((_, count)) = map.iter_mut().find(|(o, _)| *o == self.params.origin) {
                    *count = count.saturating_sub(1);
                }
                map.retain(|&(_, count)| count > 0);
            });
        }
    }
}

impl transport::Owner for Session {
    fn transmitted(self: Rc<Self>, app_bytes: usize) {
        Session::transmitted(&self, app_bytes);
    }

    fn transport_failed(self: Rc<Self>) {
        Session::transport_failed(&self);
    }

    fn fall_back_to_post(self: Rc<Self>, kept: Vec<socket::Transmit>) {
        Session::fall_back_to_post(&self, kept);
    }

    fn warn_cannot_open(self: Rc<Self>, why: &str) {
        Session::warn_cannot_open(&self, why);
    }
}

fn message_to_js(message: Message) -> JsValue {
    match message {
        Message::Text(text) => JsValue::from_str(&text),
        Message::Binary(bytes) => Uint8Array::from(&bytes[..]).into(),
    }
}

fn codec_config() -> h2ws_codec::Config {
    socket::client_config()
}

#[cfg(feature = "deflate")]
fn extension_offer() -> Option<String> {
    Some(h2ws_codec::deflate::client_offer())
}

#[cfg(not(feature = "deflate"))]
fn extension_offer() -> Option<String> {
    None
}

/// The codec configuration for the server's `h2ws-extensions` answer; `None` = refuse (an
/// extension we did not offer).
#[cfg(feature = "deflate")]
fn accept_extensions(answer: &str) -> Option<h2ws_codec::Config> {
    let mut config = codec_config();
    if !answer.trim().is_empty() {
        config.deflate = Some(h2ws_codec::deflate::accept_client(answer).ok()?);
    }
    Some(config)
}

#[cfg(not(feature = "deflate"))]
fn accept_extensions(answer: &str) -> Option<h2ws_codec::Config> {
    answer.trim().is_empty().then(codec_config)
}
