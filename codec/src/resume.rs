//! Lossless resume of a fetch-transport session (issue 14): the bookkeeping both ends keep so
//! that a socket whose HTTP requests broke can continue on new ones with nothing lost,
//! duplicated or reordered.
//!
//! The rule is the one TCP uses, one level up: each side counts the frames it sends and the
//! frames it receives, tells the peer now and then how many it has received (a cumulative
//! acknowledgement), and keeps every frame the peer has not acknowledged yet. After a loss the
//! client re-attaches with its received count, the server answers with its own, and each side
//! replays what the other lacks, byte for byte as first encoded (so a permessage-deflate
//! context stays in step: the receiver never processed the frames it is sent again).
//!
//! What is counted: **data frames (text, binary, continuation) and Close** — what the app sees
//! or must see. Pings and Pongs are not counted or replayed: they test one transport's
//! liveness, and the acknowledgements themselves travel as Pongs ([`encode_ack`]). An
//! unsolicited Pong is legal RFC 6455 (§5.5.3), so a peer that did not negotiate resume never
//! sees anything it must not: acks are only sent once both sides agreed on the open.
//!
//! Nothing here does I/O or reads a clock (the `quinn-proto` way): [`Resume`] takes frames,
//! acks and the time in, and hands out ack payloads, the frames to replay and a deadline
//! ([`Resume::poll_timeout`] / [`Resume::handle_timeout`], as in [`crate::timer`]). Every
//! buffer is bounded by [`ResumeConfig`]; a peer that acknowledges frames never sent, or asks
//! for frames already dropped, gets a typed [`ResumeError`].

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use crate::handshake::fetch::{decimal, parse_seq, session_token, validate_upstream};
use crate::handshake::{single_header, HandshakeError};
use crate::timer::Timestamp;

pub use crate::handshake::fetch::{H2WS_RECEIVED, H2WS_RESUME};

/// First bytes of an acknowledgement Pong's payload; a big-endian `u64` count follows.
pub const ACK_TAG: &[u8; 8] = b"h2ws-ack";
/// Length of an acknowledgement Pong's payload.
pub const ACK_LEN: usize = 16;
/// The value of [`H2WS_RESUME`] on an open: the client offers resume.
pub const OFFER: &str = "1";
/// Length of a resume key: 32 random bytes, base64url without padding.
pub const KEY_LEN: usize = 43;

/// Re-attach attempts that failed on the network are retried after this delay, doubled per
/// failure up to [`MAX_REATTACH_DELAY_MS`] (the first attempt goes at once); the grace window
/// bounds the whole.
pub const FIRST_REATTACH_DELAY_MS: u32 = 50;
/// Longest wait between two re-attach attempts.
pub const MAX_REATTACH_DELAY_MS: u32 = 2000;

/// How long to wait before the next re-attach attempt after `failures` failed ones.
pub fn reattach_delay_ms(failures: u32) -> u32 {
    match failures {
        0 => 0,
        n => FIRST_REATTACH_DELAY_MS
            .saturating_mul(1u32 << (n - 1).min(16))
            .min(MAX_REATTACH_DELAY_MS),
    }
}

/// Whether a re-attach answered with `status` (not 200) is final: a refusal by the server
/// (403 wrong key or origin, 404/410 session gone, 409 a count it cannot honour). 5xx (a proxy
/// in front of a restarting server, the server's own 503) is retried like a network failure.
pub fn reattach_refusal_is_final(status: u16) -> bool {
    status < 500
}

/// Grace window: how long a side keeps a session whose transport broke (30 s).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// Replay buffer limit in bytes (1 MiB of frames the peer has not acknowledged).
pub const DEFAULT_MAX_REPLAY_BYTES: usize = 1 << 20;
/// Replay buffer limit in frames.
pub const DEFAULT_MAX_REPLAY_FRAMES: usize = 4096;
/// Acknowledge after this many counted frames received...
pub const DEFAULT_ACK_EVERY_FRAMES: u32 = 32;
/// ...or this many bytes...
pub const DEFAULT_ACK_EVERY_BYTES: usize = 64 << 10;
/// ...or this long after the first frame not yet acknowledged, whichever comes first: at most
/// one ack per frame batch, and never a frame left unacknowledged for long.
pub const DEFAULT_ACK_DELAY: Duration = Duration::from_millis(20);
/// A client's acknowledgement watchdog ([`ResumeConfig::ack_timeout`]): frames sent and not
/// acknowledged for this long (while the peer acknowledges within [`DEFAULT_ACK_DELAY`] of
/// receiving) mean the transport is dead even though no request failed. Browsers can leave a
/// request on a dropped connection pending for minutes (WebKitGTK did after a relay cut; TCP
/// itself gives up only after its retransmission timeouts), and a re-attach that was not
/// needed costs one request and nothing else.
pub const CLIENT_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// The watchdog's timeout doubles after each loss it declared, up to this many times (a slow
/// link whose frames take longer than the timeout to cross settles at a longer one).
const MAX_ACK_TIMEOUT_DOUBLINGS: u32 = 3;

/// Limits and acknowledgement policy of one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeConfig {
    /// How long a session outlives its transport, waiting for a re-attach.
    pub grace: Duration,
    /// Most bytes of unacknowledged frames kept for replay.
    pub max_replay_bytes: usize,
    /// Most unacknowledged frames kept for replay.
    pub max_replay_frames: usize,
    pub ack_every_frames: u32,
    pub ack_every_bytes: usize,
    pub ack_delay: Duration,
    /// The acknowledgement watchdog: while frames are unacknowledged (or the caller's requests
    /// unanswered: [`Resume::request_started`]), the peer's acks or the answers must make
    /// progress within this long, or the transport counts as lost
    /// ([`ResumeTimeout::AckOverdue`]). Clients set [`CLIENT_ACK_TIMEOUT`]; `None` (the
    /// default, and the server's) relies on transport errors and the idle timeout.
    pub ack_timeout: Option<Duration>,
}

impl Default for ResumeConfig {
    fn default() -> Self {
        ResumeConfig {
            grace: DEFAULT_GRACE,
            max_replay_bytes: DEFAULT_MAX_REPLAY_BYTES,
            max_replay_frames: DEFAULT_MAX_REPLAY_FRAMES,
            ack_every_frames: DEFAULT_ACK_EVERY_FRAMES,
            ack_every_bytes: DEFAULT_ACK_EVERY_BYTES,
            ack_delay: DEFAULT_ACK_DELAY,
            ack_timeout: None,
        }
    }
}

impl ResumeConfig {
    /// The server's answer to an offer ([`H2WS_RESUME`] on the open's response, and again on
    /// each re-attach's): `grace=MS, bytes=N, key=KEY`. `key` is the single-use secret of the
    /// next re-attach ([`new_key`]).
    pub fn accept(&self, key: &str) -> String {
        let mut out = String::with_capacity(40 + key.len());
        out.push_str("grace=");
        out.push_str(&decimal(self.grace.as_millis() as u64));
        out.push_str(", bytes=");
        out.push_str(&decimal(self.max_replay_bytes as u64));
        out.push_str(", key=");
        out.push_str(key);
        out
    }
}

/// What a client reads from a server's [`H2WS_RESUME`] answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted<'a> {
    /// How long the server keeps the session after a loss.
    pub grace: Duration,
    /// The server's replay buffer: the client keeps no more than this.
    pub bytes: usize,
    /// The secret of the next re-attach (used once; each answer brings a new one).
    pub key: &'a str,
}

/// Reads a server's answer ([`ResumeConfig::accept`]). `None` when it is malformed: the client
/// then treats resume as not negotiated. Unknown parameters are skipped (room to grow).
pub fn parse_accept(value: &str) -> Option<Accepted<'_>> {
    let (mut grace, mut bytes, mut key) = (None, None, None);
    for (name, val) in params(value)? {
        match name {
            "grace" => grace = Some(Duration::from_millis(parse_seq(val.as_bytes())?)),
            "bytes" => bytes = Some(usize::try_from(parse_seq(val.as_bytes())?).ok()?),
            "key" => key = Some(val).filter(|k| is_valid_key(k)),
            _ => {}
        }
    }
    Some(Accepted {
        grace: grace?,
        bytes: bytes?,
        key: key?,
    })
}

/// A re-attach request's [`H2WS_RESUME`] value: the key of the last answer, and for a `post`
/// upstream the `h2ws-seq` of the client's next batch (batches of the lost transport, all
/// numbered below it, are then ignored if they still arrive: their frames are replayed).
pub fn reattach_value(key: &str, next_seq: Option<u64>) -> String {
    let mut out = String::with_capacity(KEY_LEN + 30);
    out.push_str("key=");
    out.push_str(key);
    if let Some(seq) = next_seq {
        out.push_str(", seq=");
        out.push_str(&decimal(seq));
    }
    out
}

/// A re-attach request as the server reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reattach<'a> {
    pub key: &'a str,
    pub next_seq: Option<u64>,
}

/// Reads a re-attach's [`H2WS_RESUME`] value ([`reattach_value`]); `None` if malformed.
pub fn parse_reattach(value: &str) -> Option<Reattach<'_>> {
    let (mut key, mut next_seq) = (None, None);
    for (name, val) in params(value)? {
        match name {
            "key" if is_valid_key(val) => key = Some(val),
            "key" => return None,
            "seq" => next_seq = Some(parse_seq(val.as_bytes())?),
            _ => {}
        }
    }
    Some(Reattach {
        key: key?,
        next_seq,
    })
}

/// `name=value` pairs separated by commas; `None` if one has no `=` or there are too many.
fn params(value: &str) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    for part in value.split(',') {
        let (name, val) = part.trim().split_once('=')?;
        out.push((name.trim(), val.trim()));
        if out.len() > 8 {
            return None;
        }
    }
    Some(out)
}

/// A re-attach request (codec `resume`) as the server reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReattachRequest<'a> {
    pub session: &'a str,
    /// The key of the last open or re-attach answer, and the next `post` batch's seq.
    pub resume: Reattach<'a>,
    /// Counted frames the client received ([`H2WS_RECEIVED`]).
    pub received: u64,
}

/// Server side: checks a re-attach's headers: `h2ws-session`, `h2ws-resume: key=…[, seq=N]`,
/// `h2ws-received: N`. Whether the key is right is the server's check (403).
pub fn validate_reattach<'a>(
    headers: &[(&str, &'a [u8])],
) -> Result<ReattachRequest<'a>, HandshakeError> {
    let up = validate_upstream(headers)?;
    if up.seq.is_some() || up.read.is_some() {
        return Err(HandshakeError::bad_request(
            "a re-attach carries no h2ws-seq or h2ws-read",
        ));
    }
    let value = single_header(headers, H2WS_RESUME, "duplicate h2ws-resume header")?
        .and_then(|v| core::str::from_utf8(v).ok())
        .ok_or(HandshakeError::bad_request("missing h2ws-resume"))?;
    let resume =
        parse_reattach(value).ok_or(HandshakeError::bad_request("malformed h2ws-resume"))?;
    let received = single_header(headers, H2WS_RECEIVED, "duplicate h2ws-received header")?
        .ok_or(HandshakeError::bad_request("missing h2ws-received"))?;
    let received =
        parse_seq(received).ok_or(HandshakeError::bad_request("malformed h2ws-received"))?;
    Ok(ReattachRequest {
        session: up.session,
        resume,
        received,
    })
}

/// Server side: whether the open request offers resume (`h2ws-resume: 1`).
pub fn resume_offered(headers: &[(&str, &[u8])]) -> bool {
    headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case(H2WS_RESUME) && v.trim_ascii() == OFFER.as_bytes())
}

/// A resume key from 32 caller-supplied random bytes (the OS RNG: the codec has none).
pub fn new_key(random: &[u8; 32]) -> String {
    session_token(random)
}

/// A well-formed key: [`KEY_LEN`] base64url characters.
pub fn is_valid_key(key: &str) -> bool {
    key.len() == KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Compares a presented key with the expected one in time independent of where they differ.
pub fn keys_match(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses a count header ([`H2WS_RECEIVED`]): a strict decimal, as `h2ws-seq`.
pub fn parse_count(value: &str) -> Option<u64> {
    parse_seq(value.trim().as_bytes())
}

/// The payload of an acknowledgement Pong: [`ACK_TAG`] + the count, big-endian.
pub fn encode_ack(received: u64) -> [u8; ACK_LEN] {
    let mut out = [0u8; ACK_LEN];
    out[..8].copy_from_slice(ACK_TAG);
    out[8..].copy_from_slice(&received.to_be_bytes());
    out
}

/// The count of an acknowledgement Pong, or `None` for any other Pong.
pub fn parse_ack(payload: &[u8]) -> Option<u64> {
    if payload.len() != ACK_LEN || &payload[..8] != ACK_TAG {
        return None;
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&payload[8..]);
    Some(u64::from_be_bytes(count))
}

/// Why a resume step was refused. Each ends the session as it would have ended without resume
/// (1006 to the app), never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeError {
    /// The peer acknowledged more frames than were ever sent: a forged or confused peer.
    AckBeyondSent { acked: u64, sent: u64 },
    /// The peer claims fewer frames than it already acknowledged: it lost state (a restart),
    /// or the request is a replay of an old one.
    CountWentBack { claimed: u64, acked: u64 },
    /// Keeping this frame would exceed the replay limits: resume can no longer be lossless.
    ReplayFull,
    /// The grace window ended before a re-attach.
    GraceOver,
    /// A re-attach while the transport is still up, or a second one for the same loss.
    NotLost,
}

impl core::fmt::Display for ResumeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ResumeError::AckBeyondSent { acked, sent } => {
                write!(f, "peer acknowledged {acked} frames, only {sent} sent")
            }
            ResumeError::CountWentBack { claimed, acked } => write!(
                f,
                "peer claims {claimed} frames received, it already acknowledged {acked}"
            ),
            ResumeError::ReplayFull => f.write_str("replay buffer full"),
            ResumeError::GraceOver => f.write_str("grace window over"),
            ResumeError::NotLost => f.write_str("transport not lost"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ResumeError {}

/// What [`Resume::handle_timeout`] found due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeTimeout {
    /// An acknowledgement is due: send a Pong with [`Resume::take_ack`]'s payload.
    Ack,
    /// The grace window ended: the session fails (1006).
    GraceOver,
    /// The acknowledgement watchdog ([`ResumeConfig::ack_timeout`]): sent frames went
    /// unacknowledged, or requests unanswered, too long. The caller treats the transport as lost and re-attaches.
    AckOverdue,
}

/// The acknowledgement watchdog's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watch {
    /// Nothing unacknowledged or unanswered (or the transport is lost): no deadline.
    Idle,
    /// Frames went out, or acks made progress, with no time at hand (sending takes none): the
    /// next [`Resume::handle_timeout`] stamps the start, and is asked for at once.
    Unstamped,
    /// Something outstanding, and the last progress (or the first send) was then.
    Since(Timestamp),
}

/// One side's resume state: its counters, the replay buffer and the two deadlines.
#[derive(Debug)]
pub struct Resume {
    config: ResumeConfig,
    /// Counted frames sent (the last one's sequence number; the first frame is 1).
    sent: u64,
    /// Highest count the peer acknowledged; frames up to it are gone from `replay`.
    acked: u64,
    /// Frames `acked + 1 ..= sent`, as encoded.
    replay: VecDeque<Vec<u8>>,
    replay_bytes: usize,
    /// Counted frames received.
    received: u64,
    /// The count last sent in an ack (or in a re-attach header).
    received_acked: u64,
    /// Bytes of counted frames received since the last ack.
    unacked_bytes: usize,
    ack_due: Option<Timestamp>,
    /// When the transport broke, if it is broken.
    lost_at: Option<Timestamp>,
    watch: Watch,
    /// Losses the watchdog declared (each doubles its timeout, up to a limit).
    overdue: u32,
    /// The caller's upstream requests not answered yet ([`Resume::request_started`]).
    requests: u32,
}

impl Resume {
    pub fn new(config: ResumeConfig) -> Self {
        Resume {
            config,
            sent: 0,
            acked: 0,
            replay: VecDeque::new(),
            replay_bytes: 0,
            received: 0,
            received_acked: 0,
            unacked_bytes: 0,
            ack_due: None,
            lost_at: None,
            watch: Watch::Idle,
            overdue: 0,
            requests: 0,
        }
    }

    pub fn config(&self) -> &ResumeConfig {
        &self.config
    }

    /// Counted frames sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Counted frames received so far: the value of [`H2WS_RECEIVED`] on a re-attach.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes held for replay (what resume costs this socket in memory).
    pub fn replay_bytes(&self) -> usize {
        self.replay_bytes
    }

    /// Frames held for replay.
    pub fn replay_frames(&self) -> usize {
        self.replay.len()
    }

    /// Whether another frame of `len` bytes fits the replay buffer: a sender holds back (its
    /// app's sends wait) while it does not, instead of failing. A frame larger than the whole
    /// buffer fits once the buffer is empty (it is then the only one held, bounded by the frame
    /// and message limits): a large message must wait, not wait forever.
    pub fn has_room(&self, len: usize) -> bool {
        if self.replay.is_empty() {
            return self.config.max_replay_frames > 0;
        }
        self.replay.len() < self.config.max_replay_frames
            && self.replay_bytes.saturating_add(len) <= self.config.max_replay_bytes
    }

    /// A counted frame is being sent: keeps its bytes until the peer acknowledges it and
    /// returns its sequence number. [`ResumeError::ReplayFull`] when it does not fit (check
    /// [`Resume::has_room`] first to wait instead).
    pub fn on_send(&mut self, frame: &[u8]) -> Result<u64, ResumeError> {
        if !self.has_room(frame.len()) {
            return Err(ResumeError::ReplayFull);
        }
        self.sent += 1;
        self.replay_bytes += frame.len();
        self.replay.push_back(frame.to_vec());
        if self.watch == Watch::Idle && self.config.ack_timeout.is_some() {
            self.watch = Watch::Unstamped;
        }
        Ok(self.sent)
    }

    /// A counted frame of `len` bytes arrived at `now`: arms the acknowledgement.
    pub fn on_receive(&mut self, len: usize, now: Timestamp) {
        self.received += 1;
        self.unacked_bytes = self.unacked_bytes.saturating_add(len);
        let by_count =
            self.received - self.received_acked >= u64::from(self.config.ack_every_frames);
        let by_bytes = self.unacked_bytes >= self.config.ack_every_bytes;
        if by_count || by_bytes {
            self.ack_due = Some(now);
        } else if self.ack_due.is_none() {
            self.ack_due = Some(now + self.config.ack_delay);
        }
    }

    /// The peer acknowledged `count` frames: drops them from the replay buffer. A stale
    /// (smaller) count is ignored: acks may be overtaken by a re-attach's header. Progress
    /// restarts the watchdog (stamped by the next timer call: input may come without a time).
    pub fn on_ack(&mut self, count: u64) -> Result<(), ResumeError> {
        let progress = count > self.acked;
        self.drop_acked(count)?;
        if progress && self.watch != Watch::Idle {
            self.restart_watch();
        }
        Ok(())
    }

    /// Progress: the watchdog counts afresh if anything is still outstanding.
    fn restart_watch(&mut self) {
        self.watch = if self.acked == self.sent && self.requests == 0 {
            Watch::Idle
        } else {
            Watch::Unstamped
        };
    }

    /// The caller sent an upstream request (a `post` batch, a read-window ack) whose answer
    /// proves the transport works: until it is answered the watchdog runs, as for an
    /// unacknowledged frame. (A browser may leave a request on a dropped connection pending
    /// with no error, and a request's frames may all be acknowledged while its answer never
    /// comes: then nothing else would notice.)
    pub fn request_started(&mut self) {
        if self.is_lost() {
            return; // a lost transport's requests do not count (a loss forgets them too)
        }
        self.requests = self.requests.saturating_add(1);
        if self.watch == Watch::Idle && self.config.ack_timeout.is_some() {
            self.watch = Watch::Unstamped;
        }
    }

    /// An upstream request of [`Resume::request_started`] got its answer (or failed, which the
    /// caller handles): progress.
    pub fn request_ended(&mut self) {
        self.requests = self.requests.saturating_sub(1);
        if self.watch != Watch::Idle {
            self.restart_watch();
        }
    }

    fn drop_acked(&mut self, count: u64) -> Result<(), ResumeError> {
        if count > self.sent {
            return Err(ResumeError::AckBeyondSent {
                acked: count,
                sent: self.sent,
            });
        }
        while self.acked < count {
            if let Some(frame) = self.replay.pop_front() {
                self.replay_bytes -= frame.len();
            }
            self.acked += 1;
        }
        Ok(())
    }

    /// The payload of an acknowledgement Pong, if one is due at `now` (and the transport is
    /// up): the caller sends it right away.
    pub fn take_ack(&mut self, now: Timestamp) -> Option<[u8; ACK_LEN]> {
        match self.ack_due {
            Some(due) if due <= now && self.lost_at.is_none() => {
                self.mark_acked();
                Some(encode_ack(self.received))
            }
            _ => None,
        }
    }

    fn mark_acked(&mut self) {
        self.received_acked = self.received;
        self.unacked_bytes = 0;
        self.ack_due = None;
    }

    /// The transport broke at `now`: the grace window starts (a second loss before a
    /// re-attach keeps the first one's start).
    pub fn transport_lost(&mut self, now: Timestamp) {
        if self.lost_at.is_none() {
            self.lost_at = Some(now);
        }
        self.watch = Watch::Idle;
        self.requests = 0; // the lost transport's requests are abandoned
    }

    /// Whether the transport is broken and a re-attach awaited.
    pub fn is_lost(&self) -> bool {
        self.lost_at.is_some()
    }

    /// End of the grace window, if the transport is broken.
    pub fn grace_deadline(&self) -> Option<Timestamp> {
        self.lost_at.map(|at| at + self.config.grace)
    }

    /// A re-attach at `now`, the peer having received `peer_received` counted frames: returns
    /// the frames to send again, oldest first (the caller queues them before anything new).
    /// The received count to tell the peer is [`Resume::received`], which this call also
    /// counts as acknowledged.
    pub fn resume(
        &mut self,
        peer_received: u64,
        now: Timestamp,
    ) -> Result<impl Iterator<Item = &[u8]> + '_, ResumeError> {
        let Some(deadline) = self.grace_deadline() else {
            return Err(ResumeError::NotLost);
        };
        if now > deadline {
            return Err(ResumeError::GraceOver);
        }
        if peer_received < self.acked {
            return Err(ResumeError::CountWentBack {
                claimed: peer_received,
                acked: self.acked,
            });
        }
        self.drop_acked(peer_received)?;
        self.lost_at = None;
        self.mark_acked();
        // What is replayed is watched afresh on the new transport.
        if self.acked < self.sent && self.config.ack_timeout.is_some() {
            self.watch = Watch::Unstamped;
        }
        Ok(self.replay.iter().map(Vec::as_slice))
    }

    /// The next deadline: an acknowledgement due, the watchdog's, or the end of the grace
    /// window.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if let Some(grace) = self.grace_deadline() {
            return Some(grace); // no acks while lost
        }
        match (self.ack_due, self.watch_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the watchdog fires (`ZERO`, i.e. at once, while a send waits for its stamp).
    fn watch_deadline(&self) -> Option<Timestamp> {
        let timeout = self.config.ack_timeout?;
        match self.watch {
            Watch::Idle => None,
            Watch::Unstamped => Some(Timestamp::ZERO),
            Watch::Since(at) => {
                Some(at + timeout * (1 << self.overdue.min(MAX_ACK_TIMEOUT_DOUBLINGS)))
            }
        }
    }

    /// What is due at `now`, if anything. [`ResumeTimeout::GraceOver`] is final: the caller
    /// fails the session.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Option<ResumeTimeout> {
        if let Some(grace) = self.grace_deadline() {
            return (now >= grace).then_some(ResumeTimeout::GraceOver);
        }
        if self.watch == Watch::Unstamped {
            self.watch = Watch::Since(now);
        }
        if self.watch_deadline().is_some_and(|due| now >= due) {
            self.watch = Watch::Idle;
            self.overdue = self.overdue.saturating_add(1);
            return Some(ResumeTimeout::AckOverdue);
        }
        match self.ack_due {
            Some(due) if due <= now => Some(ResumeTimeout::Ack),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn ack_payload_round_trips_and_other_pongs_are_not_acks() {
        for n in [0, 1, 255, 1 << 40, u64::MAX] {
            assert_eq!(parse_ack(&encode_ack(n)), Some(n));
        }
        assert_eq!(parse_ack(b""), None); // the open preamble's empty Pong
        assert_eq!(parse_ack(b"h2ws"), None);
        assert_eq!(parse_ack(b"h2ws-acx\0\0\0\0\0\0\0\x01"), None);
        assert_eq!(parse_ack(&encode_ack(7)[..15]), None);
    }

    #[test]
    fn counts_and_offers_parse_strictly() {
        assert_eq!(parse_count("0"), Some(0));
        assert_eq!(parse_count(" 42 "), Some(42));
        assert_eq!(parse_count("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "-1",
            "+1",
            "1e3",
            "18446744073709551616",
            "0x10",
            "1 2",
            "007",
        ] {
            assert_eq!(parse_count(bad), None, "{bad:?}");
        }
        let key = new_key(&[9; 32]);
        assert!(is_valid_key(&key));
        let cfg = ResumeConfig::default();
        let answer = cfg.accept(&key);
        assert_eq!(
            answer,
            alloc::format!("grace=30000, bytes=1048576, key={key}")
        );
        assert_eq!(
            parse_accept(&answer),
            Some(Accepted {
                grace: DEFAULT_GRACE,
                bytes: DEFAULT_MAX_REPLAY_BYTES,
                key: &key
            })
        );
        let odd = alloc::format!("bytes=10,key={key},grace=5,future=1");
        assert_eq!(
            parse_accept(&odd).map(|a| (a.grace, a.bytes)),
            Some((Duration::from_millis(5), 10))
        );
        assert_eq!(parse_accept("grace=5, bytes=10"), None, "no key");
        assert_eq!(parse_accept("grace=5, bytes=10, key=short"), None);
        assert_eq!(parse_accept("1"), None);
        let re = reattach_value(&key, Some(17));
        assert_eq!(
            parse_reattach(&re),
            Some(Reattach {
                key: &key,
                next_seq: Some(17)
            })
        );
        assert_eq!(
            parse_reattach(&reattach_value(&key, None)).map(|r| r.next_seq),
            Some(None)
        );
        assert_eq!(parse_reattach("key=abc"), None);
        assert_eq!(parse_reattach("seq=1"), None);
        assert!(keys_match(&key, &key));
        assert!(!keys_match(&key, &new_key(&[8; 32])));
        assert!(!keys_match("", &key));
    }

    #[test]
    fn reattach_backoff_and_final_refusals() {
        let delays: Vec<u32> = (0..9).map(reattach_delay_ms).collect();
        assert_eq!(delays, [0, 50, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(reattach_delay_ms(u32::MAX), MAX_REATTACH_DELAY_MS);
        for status in [400, 403, 404, 409, 410] {
            assert!(reattach_refusal_is_final(status), "{status}");
        }
        for status in [500, 502, 503] {
            assert!(!reattach_refusal_is_final(status), "{status}");
        }
    }

    #[test]
    fn replay_holds_exactly_what_is_unacknowledged() {
        let mut r = Resume::new(ResumeConfig::default());
        for i in 0..5u8 {
            assert_eq!(r.on_send(&[i; 10]), Ok(u64::from(i) + 1));
        }
        assert_eq!((r.replay_frames(), r.replay_bytes()), (5, 50));
        r.on_ack(3).unwrap();
        assert_eq!((r.replay_frames(), r.replay_bytes()), (2, 20));
        r.on_ack(2).unwrap(); // stale: ignored
        assert_eq!(r.replay_frames(), 2);
        assert_eq!(
            r.on_ack(6),
            Err(ResumeError::AckBeyondSent { acked: 6, sent: 5 })
        );
        r.on_ack(5).unwrap();
        assert_eq!((r.replay_frames(), r.replay_bytes()), (0, 0));
    }

    #[test]
    fn replay_limits_are_enforced() {
        let mut r = Resume::new(ResumeConfig {
            max_replay_bytes: 100,
            max_replay_frames: 3,
            ..ResumeConfig::default()
        });
        assert!(r.has_room(100));
        // Larger than the whole buffer: only while nothing else is held (then alone).
        assert!(r.has_room(101));
        r.on_send(&[0; 101]).unwrap();
        assert!(!r.has_room(1));
        r.on_ack(1).unwrap();
        r.on_send(&[0; 60]).unwrap();
        assert!(!r.has_room(101));
        assert_eq!(r.on_send(&[0; 41]), Err(ResumeError::ReplayFull));
        r.on_send(&[0; 40]).unwrap();
        r.on_ack(2).unwrap();
        r.on_send(&[0; 1]).unwrap();
        r.on_send(&[0; 1]).unwrap();
        assert_eq!(r.on_send(&[0; 1]), Err(ResumeError::ReplayFull)); // 3 frames
        assert_eq!(r.sent(), 5, "a refused frame is not counted");
    }

    #[test]
    fn acks_are_bounded_in_frequency() {
        let mut r = Resume::new(ResumeConfig::default());
        r.on_receive(10, t(100));
        assert_eq!(r.poll_timeout(), Some(t(120)), "delayed by ack_delay");
        assert_eq!(r.take_ack(t(110)), None);
        for i in 0..30 {
            r.on_receive(10, t(101 + i));
        }
        assert_eq!(r.poll_timeout(), Some(t(120)), "31 frames: still delayed");
        r.on_receive(10, t(115));
        assert_eq!(
            r.poll_timeout(),
            Some(t(115)),
            "the 32nd frame makes it due"
        );
        assert_eq!(r.handle_timeout(t(115)), Some(ResumeTimeout::Ack));
        assert_eq!(r.take_ack(t(115)), Some(encode_ack(32)));
        assert_eq!(r.poll_timeout(), None);
        r.on_receive(DEFAULT_ACK_EVERY_BYTES, t(200));
        assert_eq!(
            r.take_ack(t(200)),
            Some(encode_ack(33)),
            "64 KiB: due at once"
        );
    }

    #[test]
    fn resume_replays_what_the_peer_lacks_once() {
        let mut r = Resume::new(ResumeConfig::default());
        for i in 1..=6u8 {
            r.on_send(&[i]).unwrap();
        }
        r.on_ack(2).unwrap();
        r.on_receive(1, t(0));
        assert!(matches!(r.resume(4, t(1)), Err(ResumeError::NotLost)));
        r.transport_lost(t(1000));
        r.transport_lost(t(5000)); // the first loss starts the window
        assert_eq!(r.take_ack(t(5000)), None, "no acks while lost");
        assert_eq!(r.poll_timeout(), Some(t(31_000)));
        let replay: Vec<Vec<u8>> = r.resume(4, t(2000)).unwrap().map(<[u8]>::to_vec).collect();
        assert_eq!(replay, [[5u8].to_vec(), [6u8].to_vec()]);
        assert!(!r.is_lost());
        assert_eq!(
            r.poll_timeout(),
            None,
            "the re-attach header acknowledged what we got"
        );
        assert!(
            matches!(r.resume(4, t(2001)), Err(ResumeError::NotLost)),
            "once per loss"
        );
    }

    #[test]
    fn resume_refuses_inconsistent_counts_and_late_attaches() {
        let mut r = Resume::new(ResumeConfig::default());
        for _ in 0..4 {
            r.on_send(b"x").unwrap();
        }
        r.on_ack(3).unwrap();
        r.transport_lost(t(0));
        assert!(matches!(
            r.resume(2, t(1)),
            Err(ResumeError::CountWentBack {
                claimed: 2,
                acked: 3
            })
        ));
        assert!(matches!(
            r.resume(9, t(1)),
            Err(ResumeError::AckBeyondSent { acked: 9, sent: 4 })
        ));
        assert_eq!(r.handle_timeout(t(29_999)), None);
        assert_eq!(r.handle_timeout(t(30_000)), Some(ResumeTimeout::GraceOver));
        assert!(matches!(
            r.resume(4, t(30_001)),
            Err(ResumeError::GraceOver)
        ));
    }

    /// Two ends over a lossy "transport": whatever is cut, each side ends up with every frame
    /// exactly once, in order.
    #[test]
    fn exactly_once_in_order_across_cuts() {
        let cfg = ResumeConfig {
            max_replay_frames: 1 << 16,
            max_replay_bytes: 1 << 24,
            ..ResumeConfig::default()
        };
        let mut a = Resume::new(cfg);
        let mut b = Resume::new(cfg);
        let mut got = Vec::new();
        let mut in_flight: VecDeque<Vec<u8>> = VecDeque::new();
        let mut now = 0u64;
        let mut next = 0u32;
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut step = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        while got.len() < 5000 {
            now += 1;
            for _ in 0..step() % 4 {
                let frame = next.to_be_bytes().to_vec();
                a.on_send(&frame).unwrap();
                in_flight.push_back(frame);
                next += 1;
            }
            // The transport delivers a prefix of what is in flight, then maybe breaks.
            let deliver = (step() % 4) as usize;
            for _ in 0..deliver.min(in_flight.len()) {
                let frame = in_flight.pop_front().unwrap();
                b.on_receive(frame.len(), Timestamp::from_millis(now));
                got.push(u32::from_be_bytes(frame.try_into().unwrap()));
            }
            if let Some(ack) = b.take_ack(Timestamp::from_millis(now)) {
                if step() % 3 != 0 {
                    a.on_ack(parse_ack(&ack).unwrap()).unwrap(); // acks get lost too
                }
            }
            if step() % 50 == 0 {
                in_flight.clear();
                let at = Timestamp::from_millis(now);
                a.transport_lost(at);
                b.transport_lost(at);
                let b_received = b.received();
                assert_eq!(b.resume(a.received(), at).map(Iterator::count), Ok(0));
                let replay: Vec<Vec<u8>> = a
                    .resume(b_received, at)
                    .unwrap()
                    .map(<[u8]>::to_vec)
                    .collect();
                in_flight.extend(replay);
            }
        }
        assert!(got.iter().enumerate().all(|(i, &n)| n == i as u32));
    }
}
