//! The socket driver: one task per socket pumping the codec `Connection` over its [`Wire`].
//!
//! It reads only while the app's event queue has room (so a slow reader backpressures the
//! peer through TCP / HTTP/2 flow control), writes what the codec queues, enforces the
//! liveness and close timeouts, and ends the transport after the close handshake.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2ws_codec::{CloseCode, Event, State as ConnState};
use tokio::time::{Instant, Sleep};

use super::socket::{CloseStatus, Shared};
use super::wire::Wire;

/// Liveness timings of one socket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timings {
    /// Longest wait for the transport to take one output unit (flow control, TCP).
    pub(crate) send_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) close_timeout: Duration,
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

pub(crate) struct Driver {
    shared: Arc<Shared>,
    wire: Wire,
    /// Native mapping: input is one frame per DATA frame.
    native: bool,
    /// Fetch transports: the downstream starts with the open preamble (an empty Pong, codec
    /// `handshake::fetch::OPEN_PREAMBLE`), part of the open rather than an event for the app.
    /// Cleared by the first event, so only a leading empty Pong is dropped.
    expect_preamble: bool,
    timings: Timings,
    phase: Phase,
    /// The unit being handed to the transport.
    out: Option<Bytes>,
    /// A unit taken from the codec that did not fit the previous coalesced one.
    stash: Option<Vec<u8>>,
    input_done: bool,
    /// The transport failed: stop at once, nothing more can be written.
    failed: bool,
    /// A protocol error on the native mapping: end with RST_STREAM(PROTOCOL_ERROR).
    protocol_error: bool,
    close_status: Option<CloseStatus>,
    last_rx: Instant,
    ping_sent: bool,
    /// When the close handshake started (either side) or the drain began.
    closing_since: Option<Instant>,
    /// Since when the unit in `out` has waited for the transport without progress.
    stalled_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>, wire: Wire, native: bool, timings: Timings) -> Self {
        let now = Instant::now();
        let expect_preamble = shared.lock().conn.framing() == h2ws_codec::Framing::Stream;
        Driver {
            shared,
            wire,
            native,
            expect_preamble,
            timings,
            phase: Phase::Running,
            out: None,
            stash: None,
            input_done: false,
            failed: false,
            protocol_error: false,
            close_status: None,
            last_rx: now,
            ping_sent: false,
            closing_since: None,
            stalled_since: None,
            timer: Box::pin(tokio::time::sleep_until(now + timings.ping_interval)),
        }
    }

    /// Spawns the driver; it ends with the socket.
    pub(crate) fn spawn(self) {
        tokio::spawn(self);
    }

    /// The next output unit. On byte streams, small frames are joined (up to
    /// [`COALESCE_LIMIT`]) so a burst of small messages costs one write / TLS record / DATA
    /// frame instead of one each; a unit that does not fit waits in `stash`.
    fn next_unit(&mut self, conn: &mut h2ws_codec::Connection) -> Option<Vec<u8>> {
        let mut unit = self.stash.take().or_else(|| conn.poll_transmit())?;
        if self.native || unit.len() >= COALESCE_LIMIT {
            return Some(unit);
        }
        while let Some(next) = conn.poll_transmit() {
            if unit.len() + next.len() > COALESCE_LIMIT {
                self.stash = Some(next);
                break;
            }
            unit.extend_from_slice(&next);
        }
        Some(unit)
    }

    /// Feeds the codec's events to the app queue (or drops them if the app is gone).
    fn take_events(&mut self, st: &mut super::socket::State) -> bool {
        let mut any = false;
        while let Some(ev) = st.conn.poll_event() {
            if std::mem::take(&mut self.expect_preamble)
                && matches!(&ev, Event::Pong(payload) if payload.is_empty())
            {
                continue;
            }
            if let Event::Closed {
                code,
                reason,
                clean,
            } = &ev
            {
                let status = CloseStatus {
                    code: code.0,
                    reason: reason.clone(),
                    clean: *clean,
                };
                st.closed = Some(status.clone());
                self.close_status = Some(status);
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

        // Input, while the app's queue has room.
        if !self.input_done && !self.failed {
            let room = {
                let mut st = shared.lock();
                register(&mut st.driver, cx);
                st.app_gone || st.events.len() < limits.recv_queue
            };
            if room {
                let native = self.native;
                let mut result = Ok(());
                let polled = self.wire.poll_input(cx, |chunk| {
                    let mut st = shared.lock();
                    result = if native {
                        st.conn.recv_data_frame(chunk)
                    } else {
                        st.conn.recv(chunk)
                    };
                });
                match polled {
                    Poll::Ready(Ok(true)) => {
                        progress = true;
                        self.last_rx = Instant::now();
                        self.ping_sent = false;
                        if result.is_err() && self.native {
                            self.protocol_error = true;
                        }
                    }
                    Poll::Ready(Ok(false)) => {
                        progress = true;
                        self.input_done = true;
                        shared.lock().conn.recv_eof();
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::debug!(error = %e, "client socket: transport failed");
                        progress = true;
                        self.input_done = true;
                        self.failed = true;
                        shared.lock().conn.recv_eof();
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
        if !self.failed {
            loop {
                if self.out.is_none() {
                    let mut st = shared.lock();
                    let before = st.conn.pending_bytes();
                    self.out = self.next_unit(&mut st.conn).map(Bytes::from);
                    if self.out.is_some() && before >= limits.send_buffer {
                        notify_app = true; // a sender may be waiting for room
                    }
                    notify_app |= self.take_events(&mut st);
                }
                let Some(out) = self.out.as_mut() else {
                    if let Poll::Ready(Err(e)) = self.wire.poll_flush(cx) {
                        tracing::debug!(error = %e, "client socket: flush failed");
                        self.fail(&mut notify_app);
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
                        tracing::debug!(error = %e, "client socket: write failed");
                        self.out = None;
                        self.fail(&mut notify_app);
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

    /// The transport is dead: the codec reports 1006 unless the close handshake already ended.
    fn fail(&mut self, notify_app: &mut bool) {
        self.failed = true;
        self.input_done = true;
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        st.conn.recv_eof();
        *notify_app |= self.take_events(&mut st);
    }

    /// Checks the liveness and close deadlines; arms the timer for the next one.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let t = self.timings;
        let state = self.shared.lock().conn.state();
        if state != ConnState::Open && self.closing_since.is_none() {
            self.closing_since = Some(now);
        }
        let mut fired = false;
        if let Some(since) = self.closing_since {
            if now >= since + t.close_timeout {
                tracing::debug!("client socket: close timeout");
                let mut notify = false;
                self.fail(&mut notify);
                if notify {
                    self.shared.app.notify_waiters();
                }
                return true;
            }
        }
        if let Some(since) = self.stalled_since {
            if now >= since + t.send_timeout {
                tracing::debug!("client socket: the transport took nothing for the send timeout");
                let mut notify = false;
                self.fail(&mut notify);
                if notify {
                    self.shared.app.notify_waiters();
                }
                return true;
            }
        }
        if self.phase == Phase::Running && now >= self.last_rx + t.idle_timeout {
            tracing::debug!("client socket: idle timeout");
            let mut notify = false;
            self.fail(&mut notify);
            if notify {
                self.shared.app.notify_waiters();
            }
            return true;
        }
        if self.phase == Phase::Running
            && !self.ping_sent
            && state == ConnState::Open
            && now >= self.last_rx + t.ping_interval
        {
            // A failed ping (the socket is closing) must not be retried in a loop either.
            self.ping_sent = true;
            fired = self.shared.lock().conn.send_ping(b"").is_ok();
        }
        let mut next = self.last_rx + t.idle_timeout;
        if !self.ping_sent && state == ConnState::Open {
            next = next.min(self.last_rx + t.ping_interval);
        }
        if let Some(since) = self.closing_since {
            next = next.min(since + t.close_timeout);
        }
        if let Some(since) = self.stalled_since {
            next = next.min(since + t.send_timeout);
        }
        // Deadlines only move later as traffic arrives, so the timer is re-armed lazily: when
        // it fires early, the checks above find nothing due and it is set to the real deadline.
        if next < self.timer.deadline() || self.timer.is_elapsed() {
            self.timer.as_mut().reset(next);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            // Already due: the caller loops and checks again.
            return true;
        }
        fired
    }

    fn finish(&mut self) {
        if self.protocol_error {
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
    }
}

impl Future for Driver {
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
                    if this.failed || (closed && this.out.is_none() && this.stash.is_none()) {
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
                            this.closing_since = Some(Instant::now());
                            progress = true;
                        }
                        Poll::Ready(Err(e)) => {
                            tracing::debug!(error = %e, "client socket: ending failed");
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

/// Stores the driver's waker for the app side, cloning it only when it changed.
fn register(slot: &mut Option<std::task::Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}
