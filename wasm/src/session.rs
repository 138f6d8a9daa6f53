//! One socket's life on the fetch transports: open request, downstream reading, upstream
//! writing, close handshake with timeouts, failure. Drives a [`SocketCore`] and hands its
//! [`Output`]s to the JS layer through one `emit(kind, data)` callback.
//!
//! Re-entrancy: JS event handlers may call back (`send`, `close`) while an event is being
//! dispatched, so no `RefCell` borrow is ever held across a call into JS.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::{Rc, Weak};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use h2ws_codec::handshake::fetch;
use h2ws_codec::reply::ReplyMerge;
use h2ws_codec::resume::{self, ResumeError};
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
/// A re-attach request (resume) must be answered within this time, else it is retried.
const REATTACH_TIMEOUT_MS: i32 = 10_000;

/// How a re-attach attempt ended.
enum Attempt {
    /// The server took it (or the socket ended meanwhile): no more attempts.
    Taken,
    /// No answer, or a 5xx: try again after a backoff.
    Retry,
    /// Refused for good (4xx, a malformed answer, counts the codec cannot honour): the socket
    /// fails, and the console says why.
    Refused(&'static str),
}

/// The read loop's `then` callbacks for one transport generation's downstream: made once per
/// downstream, not per read. They hold the session weakly (the session holds them).
struct ReadLoop {
    generation: u32,
    on_read: Function,
    on_error: Function,
}

impl ReadLoop {
    fn new(session: Weak<Session>, generation: u32) -> ReadLoop {
        let weak = session.clone();
        let on_read = Closure::wrap(Box::new(move |result: JsValue| {
            if let Some(session) = weak.upgrade() {
                session.on_read(generation, web::read_result(result));
            }
        }) as Box<dyn FnMut(JsValue)>);
        let on_error = Closure::wrap(Box::new(move |error: JsValue| {
            if let Some(session) = session.upgrade() {
                session.on_read(generation, Err(error));
            }
        }) as Box<dyn FnMut(JsValue)>);
        ReadLoop {
            generation,
            on_read: on_read.into_js_value().unchecked_into(),
            on_error: on_error.into_js_value().unchecked_into(),
        }
    }
}

/// What `emit(kind, data)` reports to the JS layer (`EMIT_*` in wasm/js/index.js): a number,
/// because a string from the wasm costs the page a UTF-8 decode per message.
#[derive(Clone, Copy)]
enum Emit {
    Open = 0,
    Message = 1,
    Error = 2,
    Close = 3,
}

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

/// Open sockets per origin. A list, not a `HashMap`: a page talks to few origins, and
/// hashbrown + SipHash cost ~4 KB of wasm.
static OPEN_PER_ORIGIN: PageLocal<RefCell<Vec<(String, u32)>>> =
    PageLocal(RefCell::new(Vec::new()));
static MAX_PER_ORIGIN: PageLocal<Cell<u32>> = PageLocal(Cell::new(DEFAULT_MAX_PER_ORIGIN));

/// Page-wide state: what `thread_local!` gives, without std (the npm package is `no_std`).
struct PageLocal<T>(T);

// SAFETY: wasm32 without the `atomics` target feature runs one thread and shares no memory, so
// the value is never reached from two threads.
#[cfg(not(target_feature = "atomics"))]
unsafe impl<T> Sync for PageLocal<T> {}

impl<T> PageLocal<T> {
    fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.0)
    }
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
    /// The page's extra headers: a JS array of `[name, value]` pairs ([`web::build_headers`]).
    pub headers: JsValue,
    pub transport: String,
    pub request_streaming: bool,
    /// Offer lossless resume (codec `resume`) at the open.
    pub resume: bool,
}

/// How one transport generation (an open or a re-attach: its downstream, upstream and acks)
/// reports to its session. The session keeps only the current one; the transports of a lost
/// one hold a dead `Weak`, so their late failures and completions are ignored.
struct Link {
    session: Weak<Session>,
}

impl transport::Owner for Link {
    fn transmitted(self: Rc<Self>, app_bytes: usize) {
        if let Some(s) = self.session.upgrade() {
            s.transmitted(app_bytes);
        }
    }

    fn transport_failed(self: Rc<Self>) {
        if let Some(s) = self.session.upgrade() {
            s.transport_failed();
        }
    }

    fn fall_back_to_post(self: Rc<Self>, kept: Vec<socket::Transmit>) {
        if let Some(s) = self.session.upgrade() {
            s.fall_back_to_post(kept);
        }
    }

    fn warn_cannot_open(self: Rc<Self>, why: &str) {
        if let Some(s) = self.session.upgrade() {
            s.warn_cannot_open(why);
        }
    }

    fn request_started(self: Rc<Self>) {
        if let Some(s) = self.session.upgrade() {
            s.request_started();
        }
    }

    fn request_ended(self: Rc<Self>) {
        if let Some(s) = self.session.upgrade() {
            s.request_ended();
        }
    }

    fn reply(self: Rc<Self>, at: u64, frames: Vec<u8>) {
        if let Some(s) = self.session.upgrade() {
            s.post_reply(at, &frames);
        }
    }

    fn batches_settled(self: Rc<Self>) {
        if let Some(s) = self.session.upgrade() {
            if s.merge.borrow().waiting() {
                // A marker's reply was lost with its answer: the transport lost frames.
                s.transport_failed();
            }
        }
    }
}

/// Resume state of a socket whose open the server accepted it on.
struct Resuming {
    /// The single-use key of the next re-attach (each answer brings a new one).
    key: String,
    /// The upstream kind to start again after a re-attach.
    transport: Transport,
    /// `post`: the `h2ws-seq` the next batch gets (where the numbering continues).
    next_seq: Option<u64>,
    /// The last re-attach's `h2ws-attach`: its `stream` upstream carries it (the server
    /// refuses a lost transport's upstream that the browser sends again).
    generation: Option<String>,
}

pub struct Session {
    pub params: Params,
    core: RefCell<SocketCore>,
    emit: RefCell<Option<Function>>,
    /// Aborts the requests of the current transport generation (a lost one's are aborted and
    /// a new controller takes over).
    abort: RefCell<AbortController>,
    /// The current transport generation's reporting link (see [`Link`]).
    link: RefCell<Rc<Link>>,
    /// Transport generation: bumped when a transport is lost and on each re-attach attempt.
    generation: Cell<u32>,
    /// Set once the server accepted resume.
    resuming: RefCell<Option<Resuming>>,
    upstream: RefCell<Option<Upstream>>,
    reader: RefCell<Option<ReadableStreamDefaultReader>>,
    /// The generation whose read loop is running, if one is.
    driving: Cell<Option<u32>>,
    /// The read loop's callbacks for the current downstream.
    read_loop: RefCell<Option<ReadLoop>>,
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
    /// The current downstream and the `post` replies that belong in it (codec `reply`).
    merge: RefCell<ReplyMerge>,
    /// The downstream ended behind a marker whose reply had not come.
    ended_behind_reply: Cell<bool>,
}

impl Session {
    pub fn new(params: Params, emit: Function, pull_mode: bool) -> Result<Rc<Session>, JsValue> {
        let abort = AbortController::new()?;
        Ok(Rc::new_cyclic(|weak: &Weak<Session>| Session {
            params,
            core: RefCell::new(SocketCore::new(codec_config())),
            emit: RefCell::new(Some(emit)),
            abort: RefCell::new(abort),
            link: RefCell::new(Rc::new(Link {
                session: weak.clone(),
            })),
            generation: Cell::new(0),
            resuming: RefCell::new(None),
            upstream: RefCell::new(None),
            reader: RefCell::new(None),
            driving: Cell::new(None),
            read_loop: RefCell::new(None),
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
            merge: RefCell::new(ReplyMerge::new()),
            ended_behind_reply: Cell::new(false),
        }))
    }

    /// Aborts every request of the current transport generation.
    fn abort(&self) {
        self.abort.borrow().abort();
    }

    /// The current generation's abort signal.
    fn signal(&self) -> web_sys::AbortSignal {
        self.abort.borrow().signal()
    }

    pub fn core(&self) -> core::cell::Ref<'_, SocketCore> {
        self.core.borrow()
    }

    pub fn core_mut(&self) -> core::cell::RefMut<'_, SocketCore> {
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
            web::warn(&[
                "h2ws: too many open sockets to ",
                &self.params.origin,
                " (cap ",
                &cap,
                "); failing this one. See H2WebSocket.maxSocketsPerOrigin.",
            ]);
            self.fail();
            return;
        }
        if self.handshake().await.is_err() {
            // Refused or broken: release whatever the open request still holds.
            self.abort();
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
        if self.params.resume {
            headers.set(fetch::H2WS_RESUME, resume::OFFER)?;
        }
        let request = self.bodiless_request(&headers)?;
        let abort = self.abort.borrow().clone();
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
        // Resume, if offered and accepted (a malformed answer: not negotiated).
        let accepted = match self.params.resume {
            true => answer.get(fetch::H2WS_RESUME)?,
            false => None,
        };
        let resume_key = accepted
            .as_deref()
            .and_then(resume::parse_accept)
            .and_then(|a| {
                self.core
                    .borrow_mut()
                    .enable_resume(&a)
                    .then(|| a.key.to_string())
            });
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
                    &self.signal(),
                    self.params.transport != "stream",
                )?)
            }
            Transport::Post => Upstream::Post(PostUpstream::new(
                self.owner(),
                &self.params.http_url,
                self.params.headers.clone(),
                &token,
                &self.signal(),
                0,
                self.params.request_streaming,
            )),
        };
        if let Some(key) = resume_key {
            *self.resuming.borrow_mut() = Some(Resuming {
                key,
                transport,
                next_seq: None,
                generation: None,
            });
        }
        *self.upstream.borrow_mut() = Some(upstream);
        *self.reader.borrow_mut() = Some(reader);
        *self.merge.borrow_mut() = ReplyMerge::new();
        self.ended_behind_reply.set(false);
        self.core
            .borrow_mut()
            .start_timers(!self.pull_mode, web::now());
        self.arm_timer();
        let outputs = self.core.borrow_mut().opened(&protocol, &extensions);
        self.deliver(outputs);
        self.ensure_driving();
        Ok(())
    }

    /// The console message of a resumable socket that fails instead of resuming.
    fn warn_resume_failed(&self, why: &str) {
        web::warn(&[
            "h2ws: ",
            &self.params.ws_url,
            ": resume failed (",
            why,
            "): closing with 1006.",
        ]);
    }

    /// The console message of a socket that cannot open with the transport it asked for.
    pub(crate) fn warn_cannot_open(&self, why: &str) {
        web::warn(&["h2ws: cannot open ", &self.params.ws_url, ": ", why, "."]);
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
        let was_lost = self.core.borrow().is_transport_lost();
        let timed_out = self.core.borrow_mut().handle_timeout(web::now());
        let silent = self.core.borrow_mut().take_silent();
        if timed_out && was_lost {
            self.warn_resume_failed("no re-attach within the resume grace window");
        }
        if timed_out || (silent && !self.lose_transport()) {
            self.abort();
            self.fail();
        } else {
            // A resume acknowledgement may have been queued.
            self.flush();
            self.arm_timer();
        }
    }

    /// Starts the read loop of the current downstream unless one runs or none is wanted (a
    /// loop of a lost downstream ends by itself).
    pub fn ensure_driving(self: &Rc<Self>) {
        let generation = self.generation.get();
        if self.driving.get() == Some(generation) || !self.wants_data() {
            return;
        }
        self.driving.set(Some(generation));
        // The first read starts in a task of its own: callers may hold the session's cells.
        let this = self.clone();
        spawn_local(async move { this.read_next(generation) });
    }

    fn wants_data(&self) -> bool {
        if self.finished.get() || self.reader.borrow().is_none() || self.ended_behind_reply.get() {
            return false;
        }
        !self.pull_mode
            || !self.pull_waiters.borrow().is_empty()
            || self.core.borrow().ready_state() != socket::ReadyState::Open
    }

    /// The read loop's next `read()`, settling into the generation's [`ReadLoop`] callbacks.
    /// Callbacks, not an async loop: a `JsFuture` per read (two closures, a `then`, a task
    /// queued through `queueMicrotask`) was a measurable part of the page's time per message.
    fn read_next(self: &Rc<Self>, generation: u32) {
        let reader = self.reader.borrow().clone();
        let Some(reader) = reader.filter(|_| self.wants_data()) else {
            return self.drive_stopped(generation);
        };
        if self.generation.get() != generation {
            return self.drive_stopped(generation);
        }
        let read = match self.drain_deadline.borrow().as_ref() {
            Some(deadline) => web::race(&reader.read(), deadline),
            None => reader.read(),
        };
        let current = self
            .read_loop
            .borrow()
            .as_ref()
            .filter(|c| c.generation == generation)
            .map(|c| (c.on_read.clone(), c.on_error.clone()));
        let (on_read, on_error) = match current {
            Some(callbacks) => callbacks,
            None => {
                let callbacks = ReadLoop::new(Rc::downgrade(self), generation);
                let pair = (callbacks.on_read.clone(), callbacks.on_error.clone());
                *self.read_loop.borrow_mut() = Some(callbacks);
                pair
            }
        };
        // No borrow held across the call into JS (module rule).
        web::then(&read, &on_read, &on_error);
    }

    /// The loop of `generation` ended; another starts if one is wanted (a pull may have
    /// arrived while it was winding down, or a new downstream is there).
    fn drive_stopped(self: &Rc<Self>, generation: u32) {
        if self.driving.get() == Some(generation) {
            self.driving.set(None);
        }
        self.ensure_driving();
    }

    /// One settled `read()` of `generation`'s downstream.
    fn on_read(self: &Rc<Self>, generation: u32, chunk: Result<Read, JsValue>) {
        if self.generation.get() != generation {
            // A lost downstream's last read: what it carried is replayed on the new one.
            return self.drive_stopped(generation);
        }
        match chunk {
            Ok(Read::Chunk(bytes)) => {
                if self.finished.get() {
                    return self.drive_stopped(generation);
                }
                self.read_total
                    .set(self.read_total.get() + bytes.len() as u64);
                self.ack_if_due();
                let mut merged = Vec::with_capacity(bytes.len());
                let taken = self.merge.borrow_mut().downstream(&bytes, &mut merged);
                if taken.is_err() {
                    self.fail();
                    return self.drive_stopped(generation);
                }
                self.take_input(&merged);
                self.read_next(generation);
            }
            Ok(Read::Done) if self.merge.borrow().waiting() => {
                // Frames before its end left in a batch's answer still on its way
                // (codec `reply`): the end counts once they are in.
                self.ended_behind_reply.set(true);
                self.drive_stopped(generation);
            }
            Ok(Read::Done) | Err(_) => {
                self.downstream_ended();
                self.drive_stopped(generation);
            }
            Ok(Read::TimedOut) => {
                if let Some(reader) = self.reader.borrow().as_ref() {
                    web::settle(reader.cancel());
                }
                self.downstream_ended();
                self.drive_stopped(generation);
            }
        }
    }

    /// Downstream bytes in server order (after [`ReplyMerge`]) to the codec.
    fn take_input(self: &Rc<Self>, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let outputs = self.core.borrow_mut().recv_at(web::now(), bytes);
        self.deliver(outputs);
        self.flush();
        self.after_input();
        self.arm_timer();
    }

    /// A `post` batch's answer brought downstream frames (codec `reply`).
    pub fn post_reply(self: &Rc<Self>, at: u64, frames: &[u8]) {
        if self.finished.get() {
            return;
        }
        let mut merged = Vec::new();
        let taken = self.merge.borrow_mut().reply(at, frames, &mut merged);
        if taken.is_err() {
            self.fail();
            return;
        }
        self.take_input(&merged);
        if self.ended_behind_reply.get() && !self.merge.borrow().waiting() {
            self.ended_behind_reply.set(false);
            self.downstream_ended();
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
        let generation = self.generation.get();
        spawn_local(async move {
            let mut attempt = 0;
            let current = || this.generation.get() == generation;
            this.request_started();
            let outcome = loop {
                match this.send_ack(read).await {
                    Some(status) if (200..300).contains(&status) => break AckOutcome::Taken,
                    Some(410) => break AckOutcome::Ended,
                    _ if attempt < ACK_RETRIES && !this.finished.get() && current() => {
                        attempt += 1;
                        let _ = JsFuture::from(web::sleep(100 * attempt as i32)).await;
                    }
                    _ => break AckOutcome::Failed,
                }
            };
            if !current() {
                // Its downstream was lost meanwhile: the new one counts from 0 (and the lost
                // transport's requests no longer count for the watchdog).
                return;
            }
            this.request_ended();
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

    /// The open, ack and re-attach requests: no body, `fetch::METHOD` (PUT), the current
    /// generation's abort signal.
    fn bodiless_request(&self, headers: &Headers) -> Result<web_sys::Request, JsValue> {
        web::request(
            fetch::METHOD,
            &self.params.http_url,
            headers,
            None,
            false,
            &self.signal(),
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
            // With resume, a downstream that ends or breaks without a Close is a lost transport.
            if self.lose_transport() {
                return;
            }
            // No Close frame before the end: 1006.
            let outputs = self.core.borrow_mut().recv_eof();
            self.deliver(outputs);
            self.abort();
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
            // With resume a lost transport is no failure of the write: its frames are replayed
            // (a final failure ends the socket, which errors the writer anyway).
            let promise = match self.resuming.borrow().is_some() {
                true => wasm_bindgen_futures::future_to_promise(async move {
                    let _ = JsFuture::from(promise).await;
                    Ok(JsValue::UNDEFINED)
                }),
                false => promise,
            };
            last = Some(promise);
        }
        if last.is_some() {
            // Sent frames may start the resume watchdog (codec `ResumeConfig::ack_timeout`).
            self.arm_timer();
        }
        last
    }

    /// How its upstream reports back (the transports never name the session): through the
    /// current generation's [`Link`].
    fn owner(&self) -> Weak<dyn transport::Owner> {
        let link: Rc<dyn transport::Owner> = self.link.borrow().clone();
        Rc::downgrade(&link)
    }

    pub fn transmitted(&self, app_bytes: usize) {
        self.core.borrow_mut().transmitted(app_bytes);
    }

    /// An upstream request went out (resume: the ack watchdog waits for its answer too).
    pub fn request_started(self: &Rc<Self>) {
        self.core.borrow_mut().request_started();
        self.arm_timer();
    }

    /// An upstream request got its answer or failed.
    pub fn request_ended(self: &Rc<Self>) {
        self.core.borrow_mut().request_ended();
        self.arm_timer();
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
            &self.signal(),
            0,
            self.params.request_streaming,
        );
        for transmit in kept {
            web::settle(post.send(transmit));
        }
        *self.upstream.borrow_mut() = Some(Upstream::Post(post));
        if let Some(r) = self.resuming.borrow_mut().as_mut() {
            r.transport = Transport::Post;
        }
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
        if self.lose_transport() {
            return;
        }
        self.abort();
        self.fail();
    }

    // ------------------------------------------------------------------ resume

    /// With resume negotiated, the transport broke: the codec keeps the socket (no event,
    /// `readyState` unchanged, sends queue), the lost requests are aborted and re-attach
    /// attempts start. False when the socket cannot resume (the caller fails it).
    fn lose_transport(self: &Rc<Self>) -> bool {
        if self.resuming.borrow().is_none() || !self.core.borrow().can_resume() {
            return false;
        }
        if self.core.borrow().is_transport_lost() {
            return true; // re-attach attempts already run
        }
        let next_seq = match self.upstream.borrow().as_ref() {
            Some(Upstream::Post(post)) => Some(post.next_seq()),
            _ => None,
        };
        if let Some(r) = self.resuming.borrow_mut().as_mut() {
            if r.transport == Transport::Post {
                r.next_seq = next_seq.or(r.next_seq);
            }
        }
        if !self.core.borrow_mut().transport_lost(web::now()) {
            return false;
        }
        self.next_generation();
        self.arm_timer(); // the grace window
        let this = self.clone();
        spawn_local(async move { this.reattach().await });
        true
    }

    /// Leaves the current transport: its requests aborted, its reader and upstream dropped, its
    /// callbacks cut off ([`Link`]); a new abort controller for what comes next.
    fn next_generation(&self) {
        self.abort();
        if let Ok(abort) = AbortController::new() {
            *self.abort.borrow_mut() = abort;
        }
        self.generation.set(self.generation.get().wrapping_add(1));
        let session = self.link.borrow().session.clone();
        *self.link.borrow_mut() = Rc::new(Link { session });
        if let Some(reader) = self.reader.borrow_mut().take() {
            web::settle(reader.cancel());
        }
        let lost = self.upstream.borrow_mut().take();
        if let Some(upstream) = lost {
            // Its frames are the codec's to replay: not `bufferedAmount` any more.
            let app_bytes = upstream.abandon();
            self.transmitted(app_bytes);
        }
        self.ack_in_flight.set(false);
    }

    /// Re-attach attempts with backoff (codec `resume::reattach_delay_ms`) until one is taken,
    /// the server refuses for good (the socket fails), or the grace window ends the socket
    /// (the codec's timer, [`Session::on_timer`]).
    async fn reattach(self: Rc<Self>) {
        let mut failures = 0;
        loop {
            let delay = resume::reattach_delay_ms(failures);
            if delay > 0 {
                let _ = JsFuture::from(web::sleep(delay as i32)).await;
            }
            if self.finished.get() || !self.core.borrow().is_transport_lost() {
                return;
            }
            match self.reattach_once().await {
                Attempt::Taken => return,
                Attempt::Retry => failures += 1,
                Attempt::Refused(why) => {
                    if !self.finished.get() {
                        self.warn_resume_failed(why);
                        self.abort();
                        self.fail();
                    }
                    return;
                }
            }
        }
    }

    /// One re-attach request (devserver/README.md "Resume"): `h2ws-session`, `h2ws-resume:
    /// key=…[, seq=…]`, `h2ws-received`, `h2ws-acks`; a 200 answer is the new downstream, the
    /// codec then queues the frames the server lacks and a new upstream takes them.
    async fn reattach_once(self: &Rc<Self>) -> Attempt {
        // A fresh generation per attempt: a timed-out attempt's abort ends only its own request.
        self.next_generation();
        let generation = self.generation.get();
        let (key, transport, next_seq) = match self.resuming.borrow().as_ref() {
            Some(r) => (r.key.clone(), r.transport, r.next_seq),
            None => return Attempt::Refused("not negotiated"),
        };
        let token = self.token.borrow().clone();
        let received = self.core.borrow().resume_received();
        let request = (|| {
            let headers = web::build_headers(&self.params.headers)?;
            headers.set(fetch::H2WS_VERSION, fetch::VERSION)?;
            headers.set(fetch::H2WS_SESSION, &token)?;
            headers.set(fetch::H2WS_RESUME, &resume::reattach_value(&key, next_seq))?;
            headers.set(fetch::H2WS_RECEIVED, &fetch::decimal(received))?;
            headers.set(fetch::H2WS_ACKS, "1")?;
            self.bodiless_request(&headers)
        })();
        let Ok(request) = request else {
            return Attempt::Refused("the re-attach request could not be made");
        };
        let abort = self.abort.borrow().clone();
        let timeout = Timer::once(REATTACH_TIMEOUT_MS, move || abort.abort());
        let response = JsFuture::from(web::fetch(&request)).await;
        drop(timeout);
        if self.finished.get() || self.generation.get() != generation {
            return Attempt::Taken; // the socket ended meanwhile: nothing more to do
        }
        let Ok(response) = response.and_then(|r| r.dyn_into::<Response>()) else {
            return Attempt::Retry;
        };
        let status = response.status();
        if status != 200 {
            return match resume::reattach_refusal_is_final(status) {
                true => Attempt::Refused(refusal_text(status)),
                false => Attempt::Retry,
            };
        }
        let answer = response.headers();
        let header = |name: &str| answer.get(name).ok().flatten();
        let peer_received = header(fetch::H2WS_RECEIVED).and_then(|v| resume::parse_count(&v));
        let next_key = header(fetch::H2WS_RESUME)
            .and_then(|v| resume::parse_accept(&v).map(|a| a.key.to_string()));
        let (Some(peer_received), Some(next_key), Some(body)) =
            (peer_received, next_key, response.body())
        else {
            return Attempt::Refused("the re-attach answer lacks h2ws-received or h2ws-resume");
        };
        let window = header(fetch::H2WS_WINDOW).and_then(|w| fetch::parse_window(w.as_bytes()));
        if let Err(e) = self.core.borrow_mut().resume(peer_received, web::now()) {
            return Attempt::Refused(match e {
                ResumeError::AckBeyondSent { .. } => "the server received more than was sent",
                ResumeError::CountWentBack { .. } => "the server's count went back",
                ResumeError::ReplayFull => "the replay buffer is full",
                ResumeError::GraceOver => "the grace window is over",
                ResumeError::NotLost => "not lost",
            });
        }
        let generation = header(fetch::H2WS_ATTACH);
        if let Some(r) = self.resuming.borrow_mut().as_mut() {
            r.key = next_key;
            r.generation = generation.clone();
        }
        // The new downstream's read window: bytes count from 0 on it.
        self.read_window.set(window);
        self.read_total.set(0);
        self.acked.set(0);
        let upstream = match transport {
            Transport::Stream => {
                let headers = web::build_headers(&self.params.headers).and_then(|h| {
                    h.set(fetch::H2WS_SESSION, &token)?;
                    if let Some(generation) = &generation {
                        h.set(fetch::H2WS_ATTACH, generation)?;
                    }
                    Ok(h)
                });
                headers.and_then(|headers| {
                    StreamUpstream::start(
                        self.owner(),
                        &self.params.http_url,
                        &headers,
                        &self.signal(),
                        false,
                    )
                    .map(Upstream::Stream)
                })
            }
            Transport::Post => Ok(Upstream::Post(PostUpstream::new(
                self.owner(),
                &self.params.http_url,
                self.params.headers.clone(),
                &token,
                &self.signal(),
                next_seq.unwrap_or(0),
                self.params.request_streaming,
            ))),
        };
        let Ok(upstream) = upstream else {
            return Attempt::Refused("the new upstream request could not be made");
        };
        *self.upstream.borrow_mut() = Some(upstream);
        *self.reader.borrow_mut() = Some(body.get_reader().unchecked_into());
        *self.merge.borrow_mut() = ReplyMerge::new();
        self.ended_behind_reply.set(false);
        self.flush();
        self.arm_timer();
        self.ensure_driving();
        Attempt::Taken
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
                self.abort();
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
                Output::Open => self.call_emit(Emit::Open, &JsValue::UNDEFINED),
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
                        self.call_emit(Emit::Message, &data);
                    }
                }
                Output::Error => self.call_emit(Emit::Error, &JsValue::UNDEFINED),
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
                    self.call_emit(Emit::Close, &info);
                    // Taken whole, not drained: `VecDeque::drain` costs ~1 KB of wasm.
                    let waiters = core::mem::take(&mut *self.pull_waiters.borrow_mut());
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

    fn call_emit(&self, kind: Emit, data: &JsValue) {
        let emit = self.emit.borrow().clone();
        if let Some(emit) = emit {
            // Listener exceptions are reported by dispatchEvent itself.
            let _ = emit.call2(&JsValue::UNDEFINED, &JsValue::from(kind as u32), data);
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

/// Why the server refused a re-attach, for the console (devserver/README.md "Resume").
fn refusal_text(status: u16) -> &'static str {
    match status {
        403 => "403: wrong origin or resume key",
        404 | 410 => "the server no longer has the session",
        409 => "409: the server cannot resume from the counts given",
        421 => "421: the re-attach reached another server instance",
        _ => "the server refused the re-attach",
    }
}
