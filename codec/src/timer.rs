//! Liveness timers, decided once for every caller (the `quinn-proto` way).
//!
//! The codec has no clock: the caller passes the time in. [`Connection::set_timeouts`] arms the
//! timers, [`Connection::recv_at`] carries the time of each input (activity postpones the
//! ping and the idle deadline), [`Connection::poll_timeout`] says when to call
//! [`Connection::handle_timeout`] next, and that call acts through the connection's usual
//! outputs: a Ping queued for [`Connection::poll_transmit`], or [`Event::Closed`] (1006,
//! unclean; queued output dropped) when the peer went silent or the close handshake did not
//! finish in time. Its return value only says what happened (for logs and transport resets).
//!
//! Like `quinn-proto`, input carries its own `now` instead of being stamped at the next timer
//! call: a chunk read just after a timer call would otherwise count as read up to one ping
//! interval later, postponing the ping and the idle deadline by as much. State changes made
//! without a time (`close`, `recv_eof`, a peer's Close) are stamped by the next
//! `handle_timeout`, which `poll_timeout` asks for at once (it answers the latest time seen).
//!
//! Time is a caller-supplied monotonic [`Timestamp`] in milliseconds (tokio: elapsed since the
//! socket started; browsers: `performance.now()`). A time earlier than one already seen is
//! taken as the latest one seen: a clock going backwards never moves a deadline.
//!
//! [`Connection::set_timeouts`]: crate::Connection::set_timeouts
//! [`Connection::recv_at`]: crate::Connection::recv_at
//! [`Connection::poll_timeout`]: crate::Connection::poll_timeout
//! [`Connection::handle_timeout`]: crate::Connection::handle_timeout
//! [`Connection::poll_transmit`]: crate::Connection::poll_transmit
//! [`Event::Closed`]: crate::Event::Closed

use core::time::Duration;

/// Ping after this much silence from the peer (server and native client default).
pub const PING_AFTER: Duration = Duration::from_secs(30);
/// Give up on a peer silent for this long, ping included (1006; server and native client).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Give up on the close handshake this long after it started (1006).
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Browser sockets do not ping (the server does, every [`PING_AFTER`] of silence, DESIGN
/// §2.5): a downstream silent for this long is dead.
pub const BROWSER_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// A fetch session whose upstream has not attached this long after the open is closed by the
/// server with 1011 "no upstream attached" (DESIGN §2.2). Clients attach at once (the `post`
/// transport's empty batch 0, the `stream` upstream), so this only ends sessions whose client
/// went away or cannot send.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);
/// The server's Ping payload.
pub const SERVER_PING_PAYLOAD: &[u8] = b"h2ws";

/// A point on the caller's monotonic clock, in milliseconds from an origin of its choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }
}

/// `t + d`: whole milliseconds (sub-millisecond parts dropped), saturating.
impl core::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, d: Duration) -> Timestamp {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }
}

/// Which deadlines a connection keeps; `None` = that timer is off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Ping after this much silence from the peer (one Ping per silence).
    pub ping_after: Option<Duration>,
    /// The payload of those Pings.
    pub ping_payload: &'static [u8],
    /// Fail (1006) after this much silence from the peer.
    pub idle_timeout: Option<Duration>,
    /// Fail (1006) when the close handshake (either side's Close, or the transport's end with
    /// output still queued) has not finished this long after it started.
    pub close_timeout: Option<Duration>,
    /// Fetch sessions (server side): close with 1011 "no upstream attached" unless
    /// [`Connection::upstream_attached`](crate::Connection::upstream_attached) is called within
    /// this long of [`Connection::set_timeouts`](crate::Connection::set_timeouts)
    /// ([`ATTACH_TIMEOUT`]). `None` for every other socket.
    pub attach_timeout: Option<Duration>,
}

impl Timeouts {
    /// No timers.
    pub const NONE: Timeouts = Timeouts {
        ping_after: None,
        ping_payload: b"",
        idle_timeout: None,
        close_timeout: None,
        attach_timeout: None,
    };
    /// [`PING_AFTER`], [`IDLE_TIMEOUT`], [`CLOSE_TIMEOUT`]; empty Pings.
    pub const DEFAULT: Timeouts = Timeouts {
        ping_after: Some(PING_AFTER),
        ping_payload: b"",
        idle_timeout: Some(IDLE_TIMEOUT),
        close_timeout: Some(CLOSE_TIMEOUT),
        attach_timeout: None,
    };
    /// A browser socket: no Pings, [`BROWSER_IDLE_TIMEOUT`] (or none: a reader that pulls may
    /// leave data unread for any time), [`CLOSE_TIMEOUT`].
    pub const fn browser(idle: bool) -> Timeouts {
        Timeouts {
            ping_after: None,
            ping_payload: b"",
            idle_timeout: if idle {
                Some(BROWSER_IDLE_TIMEOUT)
            } else {
                None
            },
            close_timeout: Some(CLOSE_TIMEOUT),
            attach_timeout: None,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::DEFAULT
    }
}

/// What [`Connection::handle_timeout`](crate::Connection::handle_timeout) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// A Ping is queued.
    Ping,
    /// The peer was silent for the idle timeout: `Closed{1006, "idle timeout"}` reported.
    Idle,
    /// The close handshake did not finish in time: `Closed{1006}` reported.
    CloseHandshake,
    /// No upstream attached within [`Timeouts::attach_timeout`]: a Close 1011 "no upstream
    /// attached" is queued (the close handshake then runs its own deadline).
    Attach,
    /// Resume (codec [`crate::resume`]): an acknowledgement Pong is queued.
    Ack,
    /// Resume: the transport stayed lost for the grace window: `Closed{1006, "resume grace
    /// over"}` reported.
    ResumeGrace,
    /// Resume: the peer was silent for the idle timeout on a connection that can resume — a
    /// transport that died without a word (no reset, no end). Nothing is reported: the caller
    /// treats the transport as lost ([`crate::Connection::transport_lost`]) and re-attaches;
    /// until it does, this fires again.
    Silent,
}

/// The timer state of one connection.
#[derive(Clone, Debug)]
pub(crate) struct Timers {
    pub(crate) timeouts: Timeouts,
    /// The latest time seen (never goes back).
    now: Timestamp,
    /// The last input from the peer (or the start).
    last_rx: Timestamp,
    /// A Ping went out since `last_rx`.
    pub(crate) ping_sent: bool,
    /// When the connection left state Open (stamped by the first timer call after).
    pub(crate) close_started: Option<Timestamp>,
    /// The attach deadline, until the upstream attaches.
    pub(crate) attach_by: Option<Timestamp>,
}

impl Timers {
    pub(crate) fn new(timeouts: Timeouts, now: Timestamp) -> Self {
        Timers {
            timeouts,
            now,
            last_rx: now,
            ping_sent: false,
            close_started: None,
            attach_by: timeouts.attach_timeout.map(|t| now + t),
        }
    }

    /// Takes `now` in (ignoring a step back); the time to use.
    /// The latest time seen.
    pub(crate) fn now(&self) -> Timestamp {
        self.now
    }

    pub(crate) fn advance(&mut self, now: Timestamp) -> Timestamp {
        self.now = self.now.max(now);
        self.now
    }

    pub(crate) fn input(&mut self, now: Timestamp) {
        self.last_rx = self.advance(now);
        self.ping_sent = false;
    }

    /// The next deadline while the connection is Open.
    pub(crate) fn open_deadline(&self) -> Option<Timestamp> {
        let ping = match self.timeouts.ping_after {
            Some(p) if !self.ping_sent => Some(self.last_rx + p),
            _ => None,
        };
        let idle = self.timeouts.idle_timeout.map(|i| self.last_rx + i);
        [ping, idle, self.attach_by].into_iter().flatten().min()
    }

    pub(crate) fn attach_due(&self, now: Timestamp) -> bool {
        self.attach_by.is_some_and(|by| now >= by)
    }

    /// The close deadline once the connection left Open (`now` if not yet stamped).
    pub(crate) fn close_deadline(&self) -> Option<Timestamp> {
        let close = self.timeouts.close_timeout?;
        Some(self.close_started.map_or(self.now, |s| s + close))
    }

    pub(crate) fn idle_due(&self, now: Timestamp) -> bool {
        self.timeouts
            .idle_timeout
            .is_some_and(|i| now >= self.last_rx + i)
    }

    pub(crate) fn ping_due(&self, now: Timestamp) -> bool {
        !self.ping_sent
            && self
                .timeouts
                .ping_after
                .is_some_and(|p| now >= self.last_rx + p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CloseCode, Config, Connection, Event, Framing, Role, State};
    use alloc::vec;
    use alloc::vec::Vec;

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    const T: Timeouts = Timeouts {
        ping_after: Some(Duration::from_millis(100)),
        ping_payload: b"p",
        idle_timeout: Some(Duration::from_millis(300)),
        close_timeout: Some(Duration::from_millis(50)),
        attach_timeout: None,
    };

    /// A server on stream framing (unmasked, no seed needed) armed at 1000 ms.
    fn server() -> Connection {
        let mut c = Connection::new(Role::Server, Framing::Stream, Config::default());
        c.set_timeouts(T, ms(1000));
        c
    }

    fn events(c: &mut Connection) -> Vec<Event> {
        core::iter::from_fn(|| c.poll_event()).collect()
    }

    fn closed(code: CloseCode, reason: &str) -> Event {
        Event::Closed {
            code,
            reason: reason.into(),
            clean: false,
        }
    }

    /// An unmasked binary frame from the peer (a client on stream framing does not mask).
    const DATA: [u8; 3] = [0x82, 0x01, 0x2a];
    /// The peer's Close 1000.
    const CLOSE: [u8; 4] = [0x88, 0x02, 0x03, 0xe8];

    #[test]
    fn unarmed_connection_has_no_timer() {
        let mut c = Connection::new(Role::Server, Framing::Stream, Config::default());
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.handle_timeout(ms(u64::MAX)), None);
        assert_eq!(c.poll_transmit(), None);
        c.set_timeouts(Timeouts::NONE, ms(0));
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.handle_timeout(ms(u64::MAX)), None);
    }

    #[test]
    fn pings_once_after_silence_then_fails_idle() {
        let mut c = server();
        assert_eq!(c.poll_timeout(), Some(ms(1100)));
        // Early: nothing.
        assert_eq!(c.handle_timeout(ms(1099)), None);
        assert_eq!(c.poll_transmit(), None);
        // Deadline exactly now: due.
        assert_eq!(c.handle_timeout(ms(1100)), Some(Timeout::Ping));
        assert_eq!(c.poll_transmit(), Some(vec![0x89, 0x01, b'p']));
        // One Ping per silence; next is the idle deadline, from the last input.
        assert_eq!(c.poll_timeout(), Some(ms(1300)));
        assert_eq!(c.handle_timeout(ms(1200)), None);
        assert_eq!(c.poll_transmit(), None);
        assert_eq!(c.handle_timeout(ms(1300)), Some(Timeout::Idle));
        assert_eq!(
            events(&mut c),
            vec![closed(CloseCode::ABNORMAL, "idle timeout")]
        );
        assert_eq!(c.state(), State::Closed);
        assert!(c.is_closed());
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.handle_timeout(ms(9999)), None);
        assert!(events(&mut c).is_empty());
    }

    #[test]
    fn activity_postpones_ping_and_idle() {
        let mut c = server();
        c.recv_at(ms(1050), &DATA).unwrap();
        assert_eq!(c.poll_timeout(), Some(ms(1150)));
        assert_eq!(c.handle_timeout(ms(1100)), None);
        assert_eq!(c.handle_timeout(ms(1150)), Some(Timeout::Ping));
        assert_eq!(c.poll_timeout(), Some(ms(1350)));
        // An answer (any input) re-arms the ping and moves idle.
        c.recv_at(ms(1340), &[0x8a, 0x00]).unwrap();
        assert_eq!(c.poll_timeout(), Some(ms(1440)));
        assert_eq!(c.handle_timeout(ms(1350)), None);
        assert_eq!(c.handle_timeout(ms(1440)), Some(Timeout::Ping));
        // Input split anywhere counts as activity too (half a frame).
        c.recv_at(ms(1500), &DATA[..1]).unwrap();
        assert_eq!(c.poll_timeout(), Some(ms(1600)));
        assert_eq!(c.handle_timeout(ms(1799)), Some(Timeout::Ping));
        assert_eq!(c.handle_timeout(ms(1800)), Some(Timeout::Idle));
    }

    #[test]
    fn time_going_backwards_is_ignored() {
        let mut c = server();
        assert_eq!(c.handle_timeout(ms(1100)), Some(Timeout::Ping));
        // Input stamped earlier than the latest time seen counts as that time.
        c.recv_at(ms(500), &DATA).unwrap();
        assert_eq!(c.poll_timeout(), Some(ms(1200)));
        assert_eq!(c.handle_timeout(ms(0)), None);
        assert_eq!(c.poll_timeout(), Some(ms(1200)));
        // A late timer call with an old time does not fire anything.
        assert_eq!(c.handle_timeout(ms(1150)), None);
        assert_eq!(c.handle_timeout(ms(1200)), Some(Timeout::Ping));
        // Once closing, an old time does not start the close deadline earlier.
        c.close(None, "").unwrap();
        assert_eq!(c.poll_timeout(), Some(ms(1200)));
        assert_eq!(c.handle_timeout(ms(100)), None);
        assert_eq!(c.poll_timeout(), Some(ms(1250)));
    }

    #[test]
    fn armed_later_counts_from_then() {
        let mut c = Connection::new(Role::Server, Framing::Stream, Config::default());
        c.set_timeouts(T, ms(5000));
        assert_eq!(c.poll_timeout(), Some(ms(5100)));
    }

    #[test]
    fn close_handshake_times_out() {
        let mut c = server();
        c.send_binary(b"queued").unwrap();
        c.close(Some(CloseCode::NORMAL), "bye").unwrap();
        // The start is stamped by the next timer call, which is asked for at once.
        assert_eq!(c.poll_timeout(), Some(ms(1000)));
        assert_eq!(c.handle_timeout(ms(1020)), None);
        assert_eq!(c.poll_timeout(), Some(ms(1070)));
        // No ping or idle while closing, even past their deadlines.
        assert_eq!(c.handle_timeout(ms(1069)), None);
        assert!(c.pending_bytes() > 0);
        assert_eq!(c.handle_timeout(ms(1070)), Some(Timeout::CloseHandshake));
        assert_eq!(events(&mut c), vec![closed(CloseCode::ABNORMAL, "")]);
        // What was still queued is dropped: nothing more is written.
        assert_eq!(c.pending_bytes(), 0);
        assert_eq!(c.poll_transmit(), None);
        assert!(c.is_closed());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn close_handshake_done_in_time_stops_the_timer() {
        let mut c = server();
        c.close(None, "").unwrap();
        assert_eq!(c.handle_timeout(ms(1000)), None);
        assert_eq!(c.poll_transmit(), Some(vec![0x88, 0x00]));
        assert_eq!(c.poll_timeout(), Some(ms(1050)));
        c.recv_at(ms(1040), &CLOSE).unwrap();
        assert!(matches!(
            events(&mut c)[..],
            [Event::Closed { clean: true, .. }]
        ));
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.handle_timeout(ms(2000)), None);
        assert!(events(&mut c).is_empty());
    }

    #[test]
    fn peer_close_echo_unwritten_times_out() {
        let mut c = server();
        c.recv_at(ms(1010), &CLOSE).unwrap();
        assert_eq!(c.state(), State::CloseReceived);
        assert_eq!(c.poll_timeout(), Some(ms(1010)));
        assert_eq!(c.handle_timeout(ms(1010)), None);
        assert_eq!(c.poll_timeout(), Some(ms(1060)));
        // The echo never leaves (transport stuck): give up.
        assert_eq!(c.handle_timeout(ms(1060)), Some(Timeout::CloseHandshake));
        assert_eq!(events(&mut c), vec![closed(CloseCode::ABNORMAL, "")]);
    }

    #[test]
    fn eof_with_output_queued_bounds_the_flush() {
        let mut c = server();
        c.send_binary(b"x").unwrap();
        c.recv_eof();
        assert_eq!(events(&mut c), vec![closed(CloseCode::ABNORMAL, "")]);
        assert!(!c.is_closed());
        assert_eq!(c.handle_timeout(ms(1001)), None);
        assert_eq!(c.poll_timeout(), Some(ms(1051)));
        assert_eq!(c.handle_timeout(ms(1051)), Some(Timeout::CloseHandshake));
        // Closed was reported once already.
        assert!(events(&mut c).is_empty());
        assert!(c.is_closed());
    }

    #[test]
    fn attach_deadline_closes_1011_unless_the_upstream_attaches() {
        let attach = Timeouts {
            attach_timeout: Some(Duration::from_millis(200)),
            ..T
        };
        // Not attached: at 200 ms a Close 1011 goes out, then the close deadline runs.
        let mut c = Connection::new(Role::Server, Framing::Stream, Config::default());
        c.set_timeouts(attach, ms(0));
        assert_eq!(c.handle_timeout(ms(100)), Some(Timeout::Ping));
        c.recv_at(ms(150), &[]).unwrap(); // activity does not postpone the attach deadline
        assert_eq!(c.poll_timeout(), Some(ms(200)));
        assert_eq!(c.handle_timeout(ms(200)), Some(Timeout::Attach));
        assert_eq!(c.state(), State::Closing);
        let mut out = Vec::new();
        while let Some(b) = c.poll_transmit() {
            out.extend(b);
        }
        assert!(
            out.windows(2).any(|w| w == [0x03, 0xF3]),
            "Close 1011: {out:?}"
        );
        assert!(out.ends_with(b"no upstream attached"));
        assert_eq!(c.handle_timeout(ms(249)), None);
        assert_eq!(c.handle_timeout(ms(250)), Some(Timeout::CloseHandshake));
        // Attached in time: no attach deadline any more, only ping and idle.
        let mut c = Connection::new(Role::Server, Framing::Stream, Config::default());
        c.set_timeouts(attach, ms(0));
        c.upstream_attached();
        assert_eq!(c.poll_timeout(), Some(ms(100)));
        assert_eq!(c.handle_timeout(ms(100)), Some(Timeout::Ping));
        assert_eq!(c.handle_timeout(ms(250)), None);
        assert_eq!(c.state(), State::Open);
        assert_eq!(Timeouts::DEFAULT.attach_timeout, None);
    }

    #[test]
    fn idle_only_and_ping_only() {
        let mut c = Connection::new(Role::Client, Framing::Stream, Config::default());
        c.set_timeouts(Timeouts::browser(true), ms(0));
        assert_eq!(c.poll_timeout(), Some(ms(75_000)));
        assert_eq!(c.handle_timeout(ms(74_999)), None);
        assert_eq!(c.poll_transmit(), None);
        assert_eq!(c.handle_timeout(ms(75_000)), Some(Timeout::Idle));
        let mut c = Connection::new(Role::Client, Framing::Stream, Config::default());
        c.set_timeouts(Timeouts::browser(false), ms(0));
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.handle_timeout(ms(u64::MAX)), None);
        let mut c = server();
        c.set_timeouts(
            Timeouts {
                idle_timeout: None,
                ..T
            },
            ms(0),
        );
        assert_eq!(c.handle_timeout(ms(100)), Some(Timeout::Ping));
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.handle_timeout(ms(u64::MAX)), None);
    }

    #[test]
    fn native_input_counts_and_empty_data_frames_are_nothing() {
        let mut c = Connection::new(Role::Server, Framing::Native, Config::default());
        c.set_timeouts(T, ms(0));
        c.recv_at(ms(40), &[]).unwrap();
        assert_eq!(c.poll_timeout(), Some(ms(140)));
        c.recv_at(ms(60), &[0x82, 7]).unwrap();
        assert_eq!(
            events(&mut c),
            vec![Event::Message(crate::Message::Binary(vec![7]))]
        );
        assert_eq!(c.poll_timeout(), Some(ms(160)));
        // Native: the Ping is one DATA frame (1 header byte + payload).
        assert_eq!(c.handle_timeout(ms(160)), Some(Timeout::Ping));
        assert_eq!(c.poll_transmit(), Some(vec![0x89, b'p']));
    }

    #[test]
    fn masked_client_pings_with_its_payload() {
        let mut c = Connection::new(Role::Client, Framing::Rfc6455, Config::default())
            .with_mask_seed([1; 32]);
        c.set_timeouts(Timeouts::DEFAULT, ms(0));
        assert_eq!(c.poll_timeout(), Some(ms(30_000)));
        assert_eq!(c.handle_timeout(ms(30_000)), Some(Timeout::Ping));
        let ping = c.poll_transmit().unwrap();
        assert_eq!(&ping[..2], &[0x89, 0x80]);
        assert_eq!(c.poll_timeout(), Some(ms(60_000)));
    }

    #[test]
    fn timestamp_add_saturates() {
        assert_eq!(ms(u64::MAX - 1) + Duration::from_secs(1), ms(u64::MAX));
        assert_eq!(ms(1) + Duration::from_micros(1500), ms(2));
    }
}
