//! The socket driver, one for client and server sockets: a future per socket that pumps the
//! codec `Connection` (held in the socket's [`Shared`] state, the quinn way) over its
//! transport, an [`Io`].
//!
//! It reads only while the app's event queue has room (so a slow reader backpressures the
//! peer through TCP / HTTP/2 flow control), writes what the codec queues (joined into larger
//! units on byte streams), runs the codec's timers (ping, idle, close handshake, a fetch
//! session's attach deadline: [`h2ws_codec::timer`]), bounds the transport (send stall, ending
//! our direction) and ends the transport after the close handshake. What differs between roles and transports is data
//! ([`Spec`]) or the [`Io`] adapter: the client's `Wire` (it polls TCP, TLS and h2 itself) and
//! the server's [`QueueIo`](crate::wiring::QueueIo) (a transport's input stream and output
//! queue).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2ws_codec::timer::{Timeout, Timeouts, Timestamp};
use h2ws_codec::{CloseCode, Event, State as ConnState, Transmit};
use tokio::time::{Instant, Sleep};

use crate::socket::{CloseStatus, Shared, Traffic};

/// A transport edge the driver can pump: where input comes from and output goes.
pub(crate) trait Io: Send + Unpin + 'static {
    type Error: std::fmt::Display;

    /// Reads the next input unit (bytes of the byte stream, or one DATA frame on the native
    /// mapping) and hands it to `feed`. `Ready(Ok(false))` = the peer ended its direction.
    fn poll_input(
        &mut self,
        cx: &mut Context<'_>,
        feed: impl FnOnce(&[u8]),
    ) -> Poll<Result<bool, Self::Error>>;

    /// Hands `out` to the transport; `Ready(Ok)` once all of it is taken (a partly taken unit
    /// stays in `out`).
    fn poll_output(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Bytes,
    ) -> Poll<Result<(), Self::Error>>;

    /// Pushes buffered output further; `Ready` when nothing waits. An error here (the
    /// transport went away while idle) fails the socket.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;

    /// Ends our direction after the close handshake. `protocol_error`: the handshake ended on
    /// a protocol error (transports that reset after one do it here or in [`Io::reset`]).
    fn poll_end(
        &mut self,
        cx: &mut Context<'_>,
        protocol_error: bool,
    ) -> Poll<Result<(), Self::Error>>;

    /// After ending our direction: waits for (or arranges) the peer's end. `Ready` = done.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    /// The socket ends after a protocol error whose Close has left (transports that answer it
    /// with a reset).
    fn reset(&mut self);

    /// The socket ends without ending the transport properly: `timed_out` (idle, close or
    /// stall deadline) or the transport failed.
    fn abort(&mut self, timed_out: bool);

    /// Resume (codec `resume`): the transport broke and the socket lives on; drop what is left
    /// of it (a client starts reconnecting).
    fn detach(&mut self) {}

    /// Whether a shared payload (codec `Transmit::tail`) may go as a unit of its own after its
    /// header's, uncopied. True where a unit is a write to a connection (the driver's own
    /// byte streams); a queue of body chunks (bounded in units, not bytes) takes a frame
    /// joined instead, so a large message still counts as one of its few slots.
    fn takes_parts(&self) -> bool {
        false
    }

    /// Resume: a new transport is ready — the server got a re-attach request (even while the
    /// old transport still looked alive: the client noticed its loss first), the client's
    /// reconnect was answered. `received` is what this side received (the client sends it);
    /// `Ready(Ok(n))`: the peer received `n`. `Ready(Err)`: no new transport will come (the
    /// server refused the client). Transports that never resume stay `Pending`.
    fn poll_reattach(
        &mut self,
        _cx: &mut Context<'_>,
        _received: u64,
    ) -> Poll<Result<u64, Self::Error>> {
        Poll::Pending
    }

    /// Resume: the codec's verdict on the new transport, `Ok(received)` to tell the peer (the
    /// server answers the re-attach request with it), or why it was refused.
    fn reattached(&mut self, _result: Result<u64, h2ws_codec::resume::ResumeError>) {}
}

/// What makes one socket's driving differ: the role and the transport's shape, as data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    /// Input and output are byte streams (units may be joined); false on the native mapping
    /// (one unit = one DATA frame). From the codec's `Framing::is_byte_stream`.
    pub(crate) byte_stream: bool,
    /// Client on a fetch transport: the downstream starts with the open preamble (an empty
    /// Pong, codec `handshake::fetch::OPEN_PREAMBLE`), part of the open rather than an event.
    pub(crate) expect_preamble: bool,
    /// After a protocol error's Close, the transport answers with a reset ([`Io::reset`]).
    pub(crate) reset_after_protocol_error: bool,
    /// Longest wait for the transport to take one output unit; `None` = no limit.
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) ping_after: Duration,
    pub(crate) ping_payload: &'static [u8],
    pub(crate) idle_timeout: Duration,
    pub(crate) close_timeout: Duration,
    /// Fetch sessions (server): the codec's attach deadline; `None` elsewhere.
    pub(crate) attach_timeout: Option<Duration>,
}

/// Largest coalesced output unit on byte streams.
const COALESCE_LIMIT: usize = 16 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Exchanging frames.
    Running,
    /// The close handshake is over (or the transport failed): ending our direction.
    Ending,
    /// Our direction ended: waiting for the peer's end (bounded by the close timeout).
    Draining,
}

/// Server extras: the endpoint's statistics and shutdown, and what runs when the socket ends.
pub(crate) struct Hooks {
    pub(crate) traffic: Option<Arc<dyn Traffic>>,
    /// Fires on a graceful shutdown: the socket is closed with 1001.
    pub(crate) shutdown: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Dropped when the driver ends (the open-socket count, session bookkeeping).
    pub(crate) on_end: Option<Box<dyn Send>>,
}

impl Hooks {
    pub(crate) fn none() -> Self {
        Hooks {
            traffic: None,
            shutdown: None,
            on_end: None,
        }
    }
}

pub(crate) struct Driver<W: Io> {
    shared: Arc<Shared>,
    wire: W,
    spec: Spec,
    hooks: Hooks,
    expect_preamble: bool,
    phase: Phase,
    /// The unit being handed to the transport.
    out: Option<Bytes>,
    /// A unit taken from the codec that did not fit the previous coalesced one.
    stash: Option<Transmit>,
    /// A shared payload (codec `Transmit::tail`) to write right after the unit before it: a
    /// large payload the app handed over leaves as the app's own bytes, never copied.
    tail_next: Option<Bytes>,
    input_done: bool,
    /// The transport failed: stop at once, nothing more can be written.
    failed: bool,
    /// Resume: the transport broke, the socket waits for a new one (codec grace window).
    lost: bool,
    /// A deadline ended the socket (reported to the transport by [`Io::abort`]).
    timed_out: bool,
    /// The peer broke the protocol: our Close with its code is queued; input is not read.
    protocol_error: bool,
    close_status: Option<CloseStatus>,
    /// The origin of the codec's clock ([`Timestamp`] 0).
    epoch: Instant,
    /// Since when the codec is done (or the drain began): writing what is left and ending the
    /// transport are bounded by the close timeout too.
    ending_since: Option<Instant>,
    /// Since when the unit in `out` has waited for the transport without progress.
    stalled_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl<W: Io> Driver<W> {
    pub(crate) fn new(shared: Arc<Shared>, wire: W, spec: Spec, hooks: Hooks) -> Self {
        let now = Instant::now();
        shared.lock().conn.set_timeouts(
            Timeouts {
                ping_after: Some(spec.ping_after),
                ping_payload: spec.ping_payload,
                idle_timeout: Some(spec.idle_timeout),
                close_timeout: Some(spec.close_timeout),
                attach_timeout: spec.attach_timeout,
            },
            Timestamp::ZERO,
        );
        Driver {
            shared,
            wire,
            expect_preamble: spec.expect_preamble,
            spec,
            hooks,
            phase: Phase::Running,
            out: None,
            stash: None,
            tail_next: None,
            input_done: false,
            failed: false,
            lost: false,
            timed_out: false,
            protocol_error: false,
            close_status: None,
            epoch: now,
            ending_since: None,
            stalled_since: None,
            timer: Box::pin(tokio::time::sleep_until(now + spec.ping_after)),
        }
    }

    /// The next output unit. On byte streams, small frames are joined (up to
    /// [`COALESCE_LIMIT`]) so a burst of small messages costs one write / TLS record / DATA
    /// frame instead of one each; a unit that does not fit waits in `stash`. A shared payload
    /// (codec `Transmit::tail`) is a unit of its own right after its header's, not copied,
    /// where units are writes to a connection ([`Io::takes_parts`]); into a queue of body
    /// chunks it goes joined. On the native mapping a unit is one DATA frame: joined too.
    fn next_unit(&mut self, conn: &mut h2ws_codec::Connection) -> Option<Bytes> {
        if let Some(tail) = self.tail_next.take() {
            return Some(tail);
        }
        let first = self.stash.take().or_else(|| conn.poll_transmit_parts())?;
        if !self.spec.byte_stream {
            let mut frame = first.head;
            if let Some(tail) = first.tail {
                frame.extend_from_slice(&tail);
            }
            return Some(Bytes::from(frame));
        }
        let apart = self.wire.takes_parts();
        let mut unit = first.head;
        match first.tail {
            Some(tail) if apart => {
                self.tail_next = Some(tail);
                return Some(Bytes::from(unit));
            }
            Some(tail) => unit.extend_from_slice(&tail),
            None => {}
        }
        while unit.len() < COALESCE_LIMIT {
            let Some(next) = conn.poll_transmit_parts() else {
                break;
            };
            let joined_tail = if apart {
                0
            } else {
                next.tail.as_ref().map_or(0, Bytes::len)
            };
            if unit.len() + next.head.len() + joined_tail > COALESCE_LIMIT {
                self.stash = Some(next);
                break;
            }
            unit.extend_from_slice(&next.head);
            match next.tail {
                Some(tail) if apart => {
                    self.tail_next = Some(tail);
                    break;
                }
                Some(tail) => unit.extend_from_slice(&tail),
                None => {}
            }
        }
        Some(Bytes::from(unit))
    }

    /// Feeds the codec's events to the app queue (or drops them if the app is gone).
    fn take_events(&mut self, st: &mut crate::socket::State) -> bool {
        let mut any = false;
        while let Some(ev) = st.conn.poll_event() {
            if std::mem::take(&mut self.expect_preamble)
                && matches!(&ev, Event::Pong(payload) if payload.is_empty())
            {
                continue;
            }
            match &ev {
                Event::Closed {
                    code,
                    reason,
                    clean,
                } => {
                    let status = CloseStatus {
                        code: code.0,
                        reason: reason.clone(),
                        clean: *clean,
                    };
                    st.closed = Some(status.clone());
                    self.close_status = Some(status);
                }
                Event::Message(m) => {
                    if let Some(t) = &self.hooks.traffic {
                        let len = match m {
                            h2ws_codec::Message::Text(t) => t.len(),
                            h2ws_codec::Message::Binary(b) => b.len(),
                        };
                        t.record_in(1, len);
                    }
                }
                Event::Fragment { data, fin, .. } => {
                    if let Some(t) = &self.hooks.traffic {
                        t.record_in(u64::from(*fin), data.len());
                    }
                }
                Event::Ping(_) | Event::Pong(_) => {}
            }
            if !st.app_gone {
                st.events.push_back(ev);
                any = true;
            }
        }
        any
    }

    /// One pass over input, output and timers; true if anything moved.
    fn step(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let mut notify_app = false;
        let shared = Arc::clone(&self.shared);
        let limits = shared.limits;

        if let Some(shutdown) = self.hooks.shutdown.as_mut() {
            if shutdown.as_mut().poll(cx).is_ready() {
                self.hooks.shutdown = None;
                if self.lost {
                    // No transport to say goodbye on, and no re-attach will be served: end now
                    // (1006) instead of holding the shutdown for the grace window.
                    self.fail(&mut notify_app);
                } else {
                    let _ = shared
                        .lock()
                        .conn
                        .close(Some(CloseCode::GOING_AWAY), "server shutting down");
                }
                progress = true;
            }
        }

        progress |= self.poll_reattach(cx);

        // Input, while the app's queue has room (none after a protocol error: nothing read
        // matters then).
        if !self.input_done && !self.failed && !self.protocol_error && !self.lost {
            let room = {
                let mut st = shared.lock();
                register(&mut st.driver, cx);
                st.app_gone || st.events.len() < limits.recv_queue
            };
            if room {
                let epoch = self.epoch;
                let mut result = Ok(());
                let polled = self.wire.poll_input(cx, |chunk| {
                    let now = stamp(epoch, Instant::now());
                    result = shared.lock().conn.recv_at(now, chunk);
                });
                match polled {
                    Poll::Ready(Ok(true)) => {
                        progress = true;
                        if let Err(e) = result {
                            tracing::debug!("protocol error from peer: {e}");
                            self.protocol_error = true;
                        }
                    }
                    Poll::Ready(Ok(false)) => {
                        progress = true;
                        let resumes = {
                            let st = shared.lock();
                            st.conn.can_resume() && st.conn.state() != ConnState::CloseReceived
                        };
                        if resumes {
                            // An end without the peer's Close is a broken transport (also while
                            // our Close waits for its answer: the handshake resumes too).
                            self.lose_transport();
                        } else {
                            self.input_done = true;
                            let mut st = shared.lock();
                            // A peer may end its side right after its Close (RFC 8441
                            // END_STREAM, fetch upstream end): our echo completes the handshake.
                            if st.conn.state() != ConnState::CloseReceived {
                                st.conn.recv_eof();
                            }
                        }
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::debug!(error = %e, "socket transport failed");
                        progress = true;
                        if !self.lose_transport() {
                            self.input_done = true;
                            self.failed = true;
                            shared.lock().conn.recv_eof();
                        }
                    }
                    Poll::Pending => {}
                }
                if progress {
                    let mut st = shared.lock();
                    notify_app |= self.take_events(&mut st);
                }
            }
        } else {
            register(&mut shared.lock().driver, cx);
        }

        // Output: control frames first is the codec's order; write one unit at a time.
        if !self.failed && !self.lost {
            loop {
                if self.out.is_none() {
                    let mut st = shared.lock();
                    let before = st.conn.pending_bytes();
                    self.out = self.next_unit(&mut st.conn);
                    if self.out.is_some() && before >= limits.send_buffer {
                        notify_app = true; // a sender may be waiting for room
                    }
                    notify_app |= self.take_events(&mut st);
                }
                let Some(out) = self.out.as_mut() else {
                    if let Poll::Ready(Err(e)) = self.wire.poll_flush(cx) {
                        tracing::debug!(error = %e, "socket transport: flush failed");
                        if !self.lose_transport() {
                            self.fail(&mut notify_app);
                        }
                        progress = true;
                    }
                    break;
                };
                let before = out.len();
                match self.wire.poll_output(cx, out) {
                    Poll::Ready(Ok(())) => {
                        self.out = None;
                        self.stalled_since = None;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::debug!(error = %e, "socket transport: write failed");
                        self.out = None;
                        if !self.lose_transport() {
                            self.fail(&mut notify_app);
                        }
                        progress = true;
                        break;
                    }
                    Poll::Pending => {
                        if self.out.as_ref().map(Bytes::len) != Some(before) {
                            self.stalled_since = None; // partly taken: not stalled
                        } else if self.stalled_since.is_none() {
                            self.stalled_since = Some(Instant::now());
                        }
                        break;
                    }
                }
            }
        }

        if notify_app {
            shared.app.notify_waiters();
        }
        progress
    }

    /// The transport broke. With resume negotiated the socket lives on (codec
    /// `transport_lost`): what was taken from the codec but not written is dropped (the codec
    /// keeps it for replay), the transport is detached, and a new one is awaited. Returns false
    /// when the socket cannot resume (the caller fails it).
    fn lose_transport(&mut self) -> bool {
        self.mark_lost(true)
    }

    /// [`lose_transport`](Self::lose_transport); `detach`: tell the transport (not when it
    /// already holds its replacement).
    fn mark_lost(&mut self, detach: bool) -> bool {
        let now = stamp(self.epoch, Instant::now());
        let resumed = {
            let mut st = self.shared.lock();
            st.conn.can_resume() && st.conn.transport_lost(now)
        };
        if !resumed {
            return false;
        }
        tracing::debug!("socket transport lost: waiting for a re-attach");
        self.lost = true;
        self.out = None;
        self.stash = None;
        self.tail_next = None;
        self.stalled_since = None;
        if detach {
            self.wire.detach();
        }
        true
    }

    /// Resume: takes a new transport when one is ready and resumes the codec on it (replaying
    /// what the peer lacks). True if anything moved.
    fn poll_reattach(&mut self, cx: &mut Context<'_>) -> bool {
        let received = {
            let st = self.shared.lock();
            if !st.conn.can_resume() {
                return false;
            }
            st.conn.resume_received().unwrap_or(0)
        };
        let peer_received = match self.wire.poll_reattach(cx, received) {
            Poll::Pending => return false,
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "resume refused");
                let mut notify = false;
                self.fail(&mut notify);
                self.shared.app.notify_waiters();
                return true;
            }
        };
        let now = stamp(self.epoch, Instant::now());
        // A re-attach while the old transport still looked fine replaces it (the transport
        // already swapped itself: only the codec and the driver's own state are told).
        if !self.lost {
            self.mark_lost(false);
        }
        let (result, replayed) = {
            let mut st = self.shared.lock();
            let before = st.conn.replayed_bytes();
            let result = st.conn.resume(peer_received, now);
            (result, st.conn.replayed_bytes() - before)
        };
        if let Some(t) = &self.hooks.traffic {
            t.record_replay(replayed);
        }
        let ok = result.is_ok();
        if let Err(e) = &result {
            tracing::debug!("resume refused by the codec: {e}");
        }
        self.wire.reattached(result);
        if ok {
            self.lost = false;
            self.input_done = false;
            // The new downstream starts with the open preamble too.
            self.expect_preamble = self.spec.expect_preamble;
        } else {
            let mut notify = false;
            self.fail(&mut notify);
            self.shared.app.notify_waiters();
        }
        true
    }

    /// The transport is dead: the codec reports 1006 unless the close handshake already ended.
    fn fail(&mut self, notify_app: &mut bool) {
        self.failed = true;
        self.input_done = true;
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        st.conn.recv_eof();
        *notify_app |= self.take_events(&mut st);
    }

    /// Runs the codec's timers and the transport deadlines; arms the timer for the next one.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let close_timeout = self.spec.close_timeout;
        let (fired, state, codec_deadline) = {
            let mut st = self.shared.lock();
            let fired = st.conn.handle_timeout(stamp(self.epoch, now));
            (fired, st.conn.state(), st.conn.poll_timeout())
        };
        let timed_out = match fired {
            Some(Timeout::Idle) => Some("idle timeout"),
            Some(Timeout::ResumeGrace) => Some("no re-attach within the resume grace window"),
            Some(Timeout::CloseHandshake) => Some("close timeout"),
            Some(Timeout::Attach) => {
                tracing::debug!("no upstream attached in time: closing with 1011");
                None
            }
            Some(Timeout::Silent) => {
                // The transport died without a word: resume instead of ending (codec rule).
                tracing::debug!(
                    "peer silent (idle timeout, or sent frames unacknowledged): the transport counts as lost"
                );
                if self.lose_transport() {
                    return true;
                }
                Some("idle timeout")
            }
            Some(Timeout::Ping | Timeout::Ack) | None => None,
        };
        if state == ConnState::Closed && self.ending_since.is_none() {
            self.ending_since = Some(now);
        }
        let ending_late = self
            .ending_since
            .is_some_and(|since| now >= since + close_timeout);
        let stall_limit = |since: Instant| self.spec.send_timeout.map(|t| since + t);
        let stalled = self
            .stalled_since
            .and_then(stall_limit)
            .is_some_and(|limit| now >= limit);
        let timed_out = timed_out
            .or(ending_late.then_some("close timeout (ending the transport)"))
            .or(stalled.then_some("the transport took nothing for the send timeout"));
        if let Some(why) = timed_out {
            tracing::debug!("socket: {why}");
            self.timed_out = true;
            let mut notify = false;
            self.fail(&mut notify);
            if notify {
                self.shared.app.notify_waiters();
            }
            return true;
        }
        let mut next = codec_deadline.map(|d| self.epoch + Duration::from_millis(d.as_millis()));
        for deadline in [
            self.ending_since.map(|since| since + close_timeout),
            self.stalled_since.and_then(stall_limit),
        ]
        .into_iter()
        .flatten()
        {
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        }
        let Some(next) = next else {
            return false;
        };
        // Deadlines only move later as traffic arrives, so the timer is re-armed lazily: when
        // it fires early, the checks above find nothing due and it is set to the real deadline.
        if next < self.timer.deadline() || self.timer.is_elapsed() {
            self.timer.as_mut().reset(next);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            // Already due: the caller loops and checks again.
            return true;
        }
        // A queued Ping or Close (attach deadline) is progress: the caller writes it.
        matches!(fired, Some(Timeout::Ping | Timeout::Attach | Timeout::Ack))
    }

    fn finish(&mut self) {
        if self.failed {
            self.wire.abort(self.timed_out);
        } else if self.protocol_error && self.spec.reset_after_protocol_error {
            self.wire.reset();
        }
        let status = self.close_status.clone().unwrap_or(CloseStatus {
            code: CloseCode::ABNORMAL.0,
            reason: String::new(),
            clean: false,
        });
        {
            let mut st = self.shared.lock();
            st.finished = Some(status);
            st.driver = None;
        }
        self.shared.app.notify_waiters();
        self.hooks.on_end = None;
    }
}

impl<W: Io> Future for Driver<W> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Bounded passes per wake so one busy socket cannot starve the executor.
        for _ in 0..64 {
            let mut progress = false;
            match this.phase {
                Phase::Running => {
                    progress |= this.step(cx);
                    let closed = this.shared.lock().conn.is_closed();
                    let drained =
                        this.out.is_none() && this.stash.is_none() && this.tail_next.is_none();
                    if this.failed || (closed && drained) {
                        this.phase = Phase::Ending;
                        progress = true;
                    }
                }
                Phase::Ending => {
                    if this.failed {
                        this.finish();
                        return Poll::Ready(());
                    }
                    match this.wire.poll_end(cx, this.protocol_error) {
                        Poll::Ready(Ok(())) => {
                            this.phase = Phase::Draining;
                            this.ending_since = Some(Instant::now());
                            progress = true;
                        }
                        Poll::Ready(Err(e)) => {
                            tracing::debug!(error = %e, "socket transport: ending failed");
                            this.finish();
                            return Poll::Ready(());
                        }
                        Poll::Pending => {}
                    }
                }
                Phase::Draining => {
                    if this.input_done || this.wire.poll_drain(cx).is_ready() {
                        this.finish();
                        return Poll::Ready(());
                    }
                }
            }
            if this.failed && this.phase == Phase::Draining {
                this.finish();
                return Poll::Ready(());
            }
            progress |= this.poll_timers(cx);
            if this.failed && this.phase != Phase::Running {
                this.finish();
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// `at` on the codec's clock (milliseconds since `epoch`).
fn stamp(epoch: Instant, at: Instant) -> Timestamp {
    Timestamp::from_millis(at.saturating_duration_since(epoch).as_millis() as u64)
}

/// Stores the driver's waker for the app side, cloning it only when it changed.
fn register(slot: &mut Option<std::task::Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}
