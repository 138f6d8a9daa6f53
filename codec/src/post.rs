//! The `post` upstream's batching rules (README "Wire protocol", `post` transport; devserver
//! README "Wire details"), once for the browser library, the native client, the server and
//! the test clients. No I/O: the caller sends the requests and reports their answers.
//!
//! The wire: after the open, the client sends its frames (stream framing, MASK = 0) as the
//! bodies of numbered requests, `h2ws-session` + `h2ws-seq: N` (codec
//! [`fetch::upstream_request_headers`](crate::handshake::fetch::upstream_request_headers)),
//! `N` = 0, 1, 2, ... The server applies the bodies in `h2ws-seq` order whatever order they
//! arrive in, so several batches may be in flight at once:
//!
//! * client ([`PostSender`]): batch 0 is sent at once and may be empty (it attaches the
//!   upstream, so a quiet socket is not closed by the attach timeout); what is written while
//!   [`MAX_IN_FLIGHT`] batches are in flight waits, coalesced into the next batch up to
//!   [`MAX_BATCH`] bytes (a batch only ever holds whole transmit units, i.e. whole frames); a
//!   batch answered 200 or 204 is done, any other status fails the socket; a batch that failed
//!   on the network is resent as it was, with the same `h2ws-seq`, at most
//!   [`NETWORK_RETRIES`] times (safe: a repeat is answered 204 and ignored).
//! * server ([`PostReorder`]): a batch below the next expected one, or one already held, is a
//!   repeat (204, ignored); one more than [`MAX_AHEAD`] ahead is refused (409); one ahead within
//!   that is held (200) until the gap is filled, at most one batch limit of bytes held in all
//!   (409 beyond); the next expected one is applied together with the run of held ones behind
//!   it.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;

/// Batches a client keeps in flight at once.
pub const MAX_IN_FLIGHT: usize = 4;
/// Batches the server holds ahead of the next expected one (so a client may have that many in
/// flight and answered out of order).
pub const MAX_AHEAD: u64 = 16;
/// Largest batch a client builds by coalescing (one transmit unit larger than this still goes
/// alone, as one batch). Why bounded: the server refuses a batch larger than its message limit
/// plus a frame header ([`max_batch_body`]) with 413 and Close 1009, so coalescing many small
/// messages without a bound could fail a socket that never sent a message too big.
pub const MAX_BATCH: usize = 256 << 10;
/// Resends of one batch after network errors (not after an answer: any answer is final).
pub const NETWORK_RETRIES: u32 = 2;
/// A batch not answered within this time fails the socket (close 1006).
pub const BATCH_TIMEOUT_MS: u32 = 30_000;
/// The longest frame header (RFC 6455: 2 + 8 bytes of length + 4 of mask key).
const MAX_FRAME_HEADER: usize = 14;

const _: () = assert!(MAX_IN_FLIGHT as u64 <= MAX_AHEAD);

/// The largest batch body a server takes for a socket with message limit `max_message`: a batch
/// holds whole frames, so one frame of the largest message plus its header must fit.
pub fn max_batch_body(max_message: usize) -> usize {
    max_message.saturating_add(MAX_FRAME_HEADER)
}

/// Whether a batch answer means done: 200 (applied or held) or 204 (a repeat).
pub fn is_batch_answer_ok(status: u16) -> bool {
    matches!(status, 200 | 204)
}

/// How long to wait before resend number `attempt` (1-based) of a batch.
pub fn retry_delay_ms(attempt: u32) -> u32 {
    50 * attempt
}

/// A client's limits; [`PostLimits::default`] is what the browser library and the native client
/// use on HTTP/2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostLimits {
    /// Batches in flight at once ([`MAX_IN_FLIGHT`]; 1 where requests cannot be multiplexed,
    /// e.g. the native client's HTTP/1.1 upstream connection).
    pub max_in_flight: usize,
    /// Largest coalesced batch ([`MAX_BATCH`]).
    pub max_batch: usize,
    /// Batches waiting to be sent; [`PostSender::push`] refuses more (the caller waits for an
    /// answer). The browser's `WebSocket.send` has no backpressure (what waits is its
    /// `bufferedAmount`), so it passes `usize::MAX`; the native client 1.
    pub max_waiting: usize,
}

impl Default for PostLimits {
    fn default() -> Self {
        PostLimits {
            max_in_flight: MAX_IN_FLIGHT,
            max_batch: MAX_BATCH,
            max_waiting: 1,
        }
    }
}

/// One batch: its `h2ws-seq` and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub seq: u64,
    pub bytes: Vec<u8>,
    /// The application payload bytes in it (the caller's `bufferedAmount` accounting).
    pub app_bytes: usize,
}

/// [`PostSender::push`] found no room: send batches and wait for an answer first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// Why a `post` upstream failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostError {
    /// A batch was answered with a status other than 200 / 204.
    Refused { seq: u64, status: u16 },
    /// A batch failed on the network more than [`NETWORK_RETRIES`] times.
    Network { seq: u64 },
    /// An answer for a batch that is not in flight (a caller bug, reported rather than ignored).
    NotInFlight { seq: u64 },
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Refused { seq, status } => {
                write!(f, "post batch {seq} refused with status {status}")
            }
            PostError::Network { seq } => write!(
                f,
                "post batch {seq} failed on the network {} times",
                NETWORK_RETRIES + 1
            ),
            PostError::NotInFlight { seq } => write!(f, "post batch {seq} is not in flight"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PostError {}

/// What to do with a batch that failed on the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resend {
    /// Send the same batch (same `h2ws-seq`, same bytes) again after this many ms.
    After { delay_ms: u32 },
}

/// The client side: numbers batches, coalesces what waits, bounds what is in flight and decides
/// on answers. The caller sends what [`poll_batch`](Self::poll_batch) hands out and reports each
/// answer ([`on_answer`](Self::on_answer)) or network failure
/// ([`on_network_error`](Self::on_network_error)).
#[derive(Debug)]
pub struct PostSender {
    limits: PostLimits,
    /// Built, not yet sent, in `seq` order; only the last one still takes bytes.
    waiting: VecDeque<Batch>,
    /// Sent, not yet answered: `seq` and network failures so far.
    in_flight: VecDeque<(u64, u32)>,
    next_seq: u64,
    /// The first batch's `h2ws-seq` (0, or where a resumed sender continues).
    first_seq: u64,
}

impl PostSender {
    /// A sender whose first batch is `h2ws-seq: 0`. Nothing is queued: a client that wants the
    /// upstream attached at once calls [`attach`](Self::attach).
    pub fn new(limits: PostLimits) -> Self {
        Self::starting_at(limits, 0)
    }

    /// A sender whose first batch is `h2ws-seq: next`: after a resume (codec `resume`) the
    /// client continues its numbering ([`next_seq`](Self::next_seq) of the lost sender) and
    /// tells the server in the re-attach.
    pub fn starting_at(limits: PostLimits, next: u64) -> Self {
        PostSender {
            limits: PostLimits {
                max_in_flight: limits.max_in_flight.max(1),
                max_waiting: limits.max_waiting.max(1),
                ..limits
            },
            waiting: VecDeque::new(),
            in_flight: VecDeque::new(),
            next_seq: next,
            first_seq: next,
        }
    }

    /// The `h2ws-seq` the next new batch gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Queues a batch even if nothing is written before it leaves: an empty batch 0 attaches the
    /// upstream at once, so a socket that sends nothing for a while is not closed by the
    /// server's attach timeout. What is pushed before it is sent still goes into it.
    pub fn attach(&mut self) {
        if self.waiting.is_empty() && self.in_flight.is_empty() && self.next_seq == self.first_seq {
            self.new_batch();
        }
    }

    /// Whether [`push`](Self::push) of `len` bytes would succeed now.
    pub fn has_room(&self, len: usize) -> bool {
        self.open_batch_takes(len) || self.waiting.len() < self.limits.max_waiting
    }

    /// Adds one transmit unit (whole frames) to the batch being built, or to a new one when it
    /// would exceed the batch size. Returns the `h2ws-seq` of the batch it went into (the
    /// caller's send completions hang on that batch's answer).
    pub fn push(&mut self, bytes: &[u8], app_bytes: usize) -> Result<u64, Full> {
        if !self.open_batch_takes(bytes.len()) {
            if self.waiting.len() >= self.limits.max_waiting {
                return Err(Full);
            }
            self.new_batch();
        }
        let batch = self.waiting.back_mut().ok_or(Full)?;
        batch.bytes.extend_from_slice(bytes);
        batch.app_bytes += app_bytes;
        Ok(batch.seq)
    }

    /// The next batch to send, if one waits and fewer than `max_in_flight` are in flight.
    pub fn poll_batch(&mut self) -> Option<Batch> {
        if self.in_flight.len() >= self.limits.max_in_flight {
            return None;
        }
        let batch = self.waiting.pop_front()?;
        self.in_flight.push_back((batch.seq, 0));
        Some(batch)
    }

    /// A batch was answered with `status`: done on 200 / 204, else the socket fails.
    pub fn on_answer(&mut self, seq: u64, status: u16) -> Result<(), PostError> {
        self.remove_in_flight(seq)?;
        if is_batch_answer_ok(status) {
            Ok(())
        } else {
            Err(PostError::Refused { seq, status })
        }
    }

    /// A batch failed on the network (no answer): resend it as it was, or give up.
    pub fn on_network_error(&mut self, seq: u64) -> Result<Resend, PostError> {
        let entry = self
            .in_flight
            .iter_mut()
            .find(|(s, _)| *s == seq)
            .ok_or(PostError::NotInFlight { seq })?;
        if entry.1 >= NETWORK_RETRIES {
            self.remove_in_flight(seq)?;
            return Err(PostError::Network { seq });
        }
        entry.1 += 1;
        Ok(Resend::After {
            delay_ms: retry_delay_ms(entry.1),
        })
    }

    /// Whether [`poll_batch`](Self::poll_batch) would hand out a batch now (the caller may
    /// first wait until its connection can take a request).
    pub fn can_send(&self) -> bool {
        !self.waiting.is_empty() && self.in_flight.len() < self.limits.max_in_flight
    }

    /// Batches sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Nothing waits and nothing is in flight.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.in_flight.is_empty()
    }

    fn open_batch_takes(&self, len: usize) -> bool {
        self.waiting.back().is_some_and(|b| {
            b.bytes.is_empty() || b.bytes.len().saturating_add(len) <= self.limits.max_batch
        })
    }

    fn new_batch(&mut self) {
        self.waiting.push_back(Batch {
            seq: self.next_seq,
            bytes: Vec::new(),
            app_bytes: 0,
        });
        self.next_seq += 1;
    }

    fn remove_in_flight(&mut self, seq: u64) -> Result<(), PostError> {
        let i = self
            .in_flight
            .iter()
            .position(|(s, _)| *s == seq)
            .ok_or(PostError::NotInFlight { seq })?;
        self.in_flight.remove(i);
        Ok(())
    }
}

/// A batch the server does not apply: its status and one-line reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchRefusal {
    /// More than [`MAX_AHEAD`] ahead of the next expected batch (409).
    TooFarAhead { seq: u64, next: u64 },
    /// Holding it would exceed the bytes held ahead (409).
    HeldTooMuch,
}

impl BatchRefusal {
    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        409
    }
}

impl fmt::Display for BatchRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchRefusal::TooFarAhead { seq, next } => {
                write!(f, "h2ws-seq {seq} is more than {MAX_AHEAD} ahead of {next}")
            }
            BatchRefusal::HeldTooMuch => f.write_str("too much data held ahead of the next batch"),
        }
    }
}

/// What the server does with a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied<B> {
    /// Already applied or held: answer 204, ignore it.
    Repeat,
    /// Ahead of a gap: kept until the gap is filled; answer 200.
    Held,
    /// The next expected batch and the held ones behind it, in order: apply them; answer 200.
    Run(Vec<B>),
}

/// The server side: puts a session's batches back in `h2ws-seq` order. Generic over the body
/// type (`B` = the server's byte buffer).
#[derive(Debug)]
pub struct PostReorder<B> {
    next: u64,
    held: BTreeMap<u64, B>,
    held_bytes: usize,
    max_held_bytes: usize,
}

impl<B: AsRef<[u8]>> PostReorder<B> {
    /// Expects batch 0 first; holds at most `max_held_bytes` ahead of a gap (the server passes
    /// its batch limit, [`max_batch_body`]).
    pub fn new(max_held_bytes: usize) -> Self {
        Self::starting_at(max_held_bytes, 0)
    }

    /// Expects batch `next` first: a resumed session (codec `resume`) continues the client's
    /// numbering, so batches of the lost transport (all below `next`) count as repeats and are
    /// ignored — their frames are replayed in new batches.
    pub fn starting_at(max_held_bytes: usize, next: u64) -> Self {
        PostReorder {
            next,
            held: BTreeMap::new(),
            held_bytes: 0,
            max_held_bytes,
        }
    }

    /// The check before the body is read: `Ok(true)` = a repeat (answer 204 without reading
    /// it), `Ok(false)` = read it and [`accept`](Self::accept) it.
    pub fn check(&self, seq: u64) -> Result<bool, BatchRefusal> {
        if seq < self.next || self.held.contains_key(&seq) {
            return Ok(true);
        }
        if seq > self.next.saturating_add(MAX_AHEAD) {
            return Err(BatchRefusal::TooFarAhead {
                seq,
                next: self.next,
            });
        }
        Ok(false)
    }

    /// Takes a batch's body (checked again: other batches may have arrived while it was read).
    pub fn accept(&mut self, seq: u64, body: B) -> Result<Applied<B>, BatchRefusal> {
        if self.check(seq)? {
            return Ok(Applied::Repeat);
        }
        if seq != self.next {
            let len = body.as_ref().len();
            if self.held_bytes.saturating_add(len) > self.max_held_bytes {
                return Err(BatchRefusal::HeldTooMuch);
            }
            self.held_bytes += len;
            self.held.insert(seq, body);
            return Ok(Applied::Held);
        }
        let mut run = alloc::vec![body];
        self.next += 1;
        while let Some(b) = self.held.remove(&self.next) {
            self.held_bytes -= b.as_ref().len();
            run.push(b);
            self.next += 1;
        }
        Ok(Applied::Run(run))
    }

    /// The batch expected next.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Bytes held ahead of a gap.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sent(s: &mut PostSender) -> Vec<(u64, Vec<u8>)> {
        core::iter::from_fn(|| s.poll_batch())
            .map(|b| (b.seq, b.bytes))
            .collect()
    }

    #[test]
    fn batch_zero_attaches_and_takes_what_is_written_before_it_leaves() {
        let mut s = PostSender::new(PostLimits::default());
        assert!(s.is_idle());
        s.attach();
        assert!(!s.is_idle());
        assert_eq!(s.push(b"ab", 2), Ok(0));
        assert_eq!(sent(&mut s), vec![(0, b"ab".to_vec())]);
        s.attach(); // only ever batch 0
        assert!(s.poll_batch().is_none());
        assert_eq!(s.on_answer(0, 200), Ok(()));
        assert!(s.is_idle());

        let mut quiet = PostSender::new(PostLimits::default());
        quiet.attach();
        assert_eq!(sent(&mut quiet), vec![(0, vec![])]);
    }

    #[test]
    fn coalesces_while_in_flight_is_full_and_numbers_in_order() {
        let limits = PostLimits {
            max_waiting: usize::MAX,
            ..PostLimits::default()
        };
        let mut s = PostSender::new(limits);
        for i in 0..MAX_IN_FLIGHT as u8 {
            s.push(&[i], 1).unwrap();
            assert_eq!(s.poll_batch().map(|b| b.seq), Some(u64::from(i)));
        }
        assert_eq!(s.in_flight(), MAX_IN_FLIGHT);
        // What is written now waits, coalesced into one batch.
        assert_eq!(s.push(b"x", 1), Ok(4));
        assert_eq!(s.push(b"yz", 2), Ok(4));
        assert!(s.poll_batch().is_none());
        // Answers may come in any order.
        s.on_answer(2, 200).unwrap();
        let b = s.poll_batch().expect("room again");
        assert_eq!(
            (b.seq, b.bytes.as_slice(), b.app_bytes),
            (4, &b"xyz"[..], 3)
        );
        assert_eq!(s.on_answer(2, 200), Err(PostError::NotInFlight { seq: 2 }));
    }

    #[test]
    fn batches_are_bounded_but_a_large_unit_goes_alone() {
        let limits = PostLimits {
            max_in_flight: 1,
            max_batch: 10,
            max_waiting: 2,
        };
        let mut s = PostSender::new(limits);
        s.attach();
        assert_eq!(sent(&mut s), vec![(0, vec![])]);
        assert_eq!(s.push(&[1; 6], 6), Ok(1));
        assert_eq!(s.push(&[2; 4], 4), Ok(1)); // exactly 10
        assert_eq!(s.push(&[3; 30], 30), Ok(2)); // too big for batch 1: alone in batch 2
        assert!(!s.has_room(1));
        assert_eq!(s.push(&[4], 1), Err(Full)); // two batches wait already
        s.on_answer(0, 204).unwrap();
        assert_eq!(s.poll_batch().map(|b| b.bytes.len()), Some(10));
        assert!(s.has_room(1));
        assert_eq!(s.push(&[4], 1), Ok(3));
    }

    #[test]
    fn only_200_and_204_are_done() {
        for (status, ok) in [
            (200, true),
            (204, true),
            (202, false),
            (409, false),
            (410, false),
        ] {
            let mut s = PostSender::new(PostLimits::default());
            s.attach();
            s.poll_batch().unwrap();
            assert_eq!(s.on_answer(0, status).is_ok(), ok, "{status}");
            if !ok {
                assert_eq!(
                    s.on_answer(0, status),
                    Err(PostError::NotInFlight { seq: 0 })
                );
            }
        }
    }

    #[test]
    fn network_errors_resend_the_same_batch_a_few_times() {
        let mut s = PostSender::new(PostLimits::default());
        s.push(b"a", 1).unwrap();
        let b = s.poll_batch().unwrap();
        for attempt in 1..=NETWORK_RETRIES {
            assert_eq!(
                s.on_network_error(b.seq),
                Ok(Resend::After {
                    delay_ms: retry_delay_ms(attempt)
                })
            );
            assert_eq!(s.in_flight(), 1);
        }
        assert_eq!(
            s.on_network_error(b.seq),
            Err(PostError::Network { seq: b.seq })
        );
        assert!(s.is_idle());
    }

    #[test]
    fn reorder_applies_in_seq_order_holds_and_ignores_repeats() {
        let mut r: PostReorder<Vec<u8>> = PostReorder::new(100);
        assert_eq!(r.accept(2, b"two".to_vec()), Ok(Applied::Held));
        assert_eq!(r.accept(1, b"one".to_vec()), Ok(Applied::Held));
        assert_eq!(r.check(1), Ok(true));
        assert_eq!(r.accept(2, b"again".to_vec()), Ok(Applied::Repeat));
        assert_eq!(r.held_bytes(), 6);
        assert_eq!(
            r.accept(0, b"zero".to_vec()),
            Ok(Applied::Run(vec![
                b"zero".to_vec(),
                b"one".to_vec(),
                b"two".to_vec()
            ]))
        );
        assert_eq!((r.next(), r.held_bytes()), (3, 0));
        assert_eq!(r.check(0), Ok(true));
        assert_eq!(r.accept(1, vec![]), Ok(Applied::Repeat));
        assert_eq!(r.accept(3, vec![]), Ok(Applied::Run(vec![vec![]])));
    }

    #[test]
    fn reorder_bounds_how_far_ahead_and_how_much_is_held() {
        let mut r: PostReorder<Vec<u8>> = PostReorder::new(10);
        assert_eq!(r.check(MAX_AHEAD), Ok(false));
        let refusal = r.check(MAX_AHEAD + 1).unwrap_err();
        assert_eq!(
            refusal,
            BatchRefusal::TooFarAhead {
                seq: MAX_AHEAD + 1,
                next: 0
            }
        );
        assert_eq!(refusal.status(), 409);
        assert_eq!(
            alloc::string::ToString::to_string(&refusal),
            "h2ws-seq 17 is more than 16 ahead of 0"
        );
        assert_eq!(r.accept(1, vec![0; 8]), Ok(Applied::Held));
        assert_eq!(r.accept(2, vec![0; 3]), Err(BatchRefusal::HeldTooMuch));
        assert_eq!(
            r.check(u64::MAX),
            Err(BatchRefusal::TooFarAhead {
                seq: u64::MAX,
                next: 0
            })
        );
    }

    #[test]
    fn a_sender_and_a_reorder_agree_whatever_the_answer_order() {
        // Batches sent 4 at a time, delivered to the server in reverse: the bytes come out in
        // the order they were pushed.
        let mut s = PostSender::new(PostLimits {
            max_batch: 3,
            max_waiting: usize::MAX,
            ..PostLimits::default()
        });
        let mut r: PostReorder<Vec<u8>> = PostReorder::new(max_batch_body(1 << 10));
        s.attach();
        let input: Vec<u8> = (0..40).collect();
        for unit in input.chunks(2) {
            s.push(unit, unit.len()).unwrap();
        }
        let mut out = Vec::new();
        while !s.is_idle() {
            let mut flight = sent(&mut s);
            flight.reverse();
            for (seq, bytes) in flight {
                match r.accept(seq, bytes).unwrap() {
                    Applied::Run(run) => run.into_iter().for_each(|b| out.extend(b)),
                    Applied::Held => {}
                    Applied::Repeat => panic!("no repeats sent"),
                }
                s.on_answer(seq, 200).unwrap();
            }
        }
        assert_eq!(out, input);
    }
}
