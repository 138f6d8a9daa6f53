//! `post` replies: downstream frames that leave in a batch's answer instead of on the
//! downstream (codec [`fetch::H2WS_REPLY`]), put back in order on the client. No I/O.
//!
//! The wire: a batch sent with `h2ws-reply: 1` may be answered `200` with a body of whole
//! frames and `h2ws-at: N`. The server took those frames off the downstream and wrote
//! [`fetch::MOVED_MARKER`] there instead, after `N` downstream body bytes. So the frames belong
//! exactly where the marker is. The two requests race: Chromium delivers the batch's answer at
//! once (the response ended) and the downstream's small data up to 1 ms late, which is why the
//! reply exists; the other order happens too (a slow answer, a proxy).
//!
//! [`ReplyMerge`] takes both and hands out one byte stream for the codec, in the server's
//! order:
//! * a reply whose `N` equals the downstream bytes already passed on goes out at once (the
//!   marker, still to come, is then skipped);
//! * a reply from further ahead waits until the downstream reaches `N`;
//! * a marker reached before its reply holds the downstream behind it until the reply comes
//!   (bounded: [`MAX_HELD`]). A reply that never comes (its answer was lost on the network and
//!   the resent batch was answered as a repeat) leaves the merge [`waiting`](ReplyMerge::waiting)
//!   with no batch in flight: the caller treats that as a lost transport.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use crate::frame::header::{FrameHeader, Parsed};
use crate::frame::OpCode;
use crate::handshake::fetch;

/// The most downstream bytes held behind a marker whose reply has not come.
pub const MAX_HELD: usize = 4 << 20;

/// Why the merge cannot go on: the server broke the reply rules (fail the socket, 1002).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeError {
    /// A reply placed before downstream bytes already passed on, or inside a frame.
    Misplaced { at: u64, passed: u64 },
    /// The downstream is not a frame stream.
    Malformed,
    /// More than [`MAX_HELD`] downstream bytes behind a marker.
    TooMuchHeld,
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeError::Misplaced { at, passed } => write!(
                f,
                "a reply placed at downstream byte {at}, but {passed} were already passed on"
            ),
            MergeError::Malformed => f.write_str("the downstream is not a frame stream"),
            MergeError::TooMuchHeld => f.write_str("too many downstream bytes held for a reply"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MergeError {}

/// Whether `bytes` is one or more whole frames: what a server may move into a reply.
pub fn whole_frames(mut bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return false;
    }
    while !bytes.is_empty() {
        let Ok(Parsed::Complete { value, consumed }) = FrameHeader::parse(bytes) else {
            return false;
        };
        let len = consumed as u64 + value.payload_len;
        if len > bytes.len() as u64 {
            return false;
        }
        bytes = &bytes[len as usize..];
    }
    true
}

/// One downstream (a re-attach starts a new one) and the replies that belong in it.
#[derive(Debug, Default)]
pub struct ReplyMerge {
    /// Downstream bytes passed on (or skipped as markers): the offset of the next one.
    passed: u64,
    /// Bytes of the current downstream frame still to pass on (0 at a frame boundary).
    in_frame: u64,
    /// Downstream bytes not passed on yet: a partial header at a boundary, or everything from
    /// a marker whose reply has not come.
    held: Vec<u8>,
    /// Replies from further ahead, `(at, frames)`, in `at` order.
    early: VecDeque<(u64, Vec<u8>)>,
    /// Offsets of markers whose reply already went out: skipped when they come.
    skip: VecDeque<u64>,
}

impl ReplyMerge {
    pub fn new() -> Self {
        Self::default()
    }

    /// Downstream body bytes as they arrive; appends what the codec may have now to `out`.
    pub fn downstream(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), MergeError> {
        if self.held.is_empty() {
            let rest = self.pass(bytes, out)?;
            if !rest.is_empty() {
                self.hold(rest)?;
            }
            Ok(())
        } else {
            let mut held = core::mem::take(&mut self.held);
            held.extend_from_slice(bytes);
            let rest = self.pass(&held, out)?.len();
            let from = held.len() - rest;
            held.drain(..from);
            self.held = held;
            self.check_held()
        }
    }

    /// A batch's answer carried `frames`, placed after `at` downstream bytes.
    pub fn reply(&mut self, at: u64, frames: &[u8], out: &mut Vec<u8>) -> Result<(), MergeError> {
        if at < self.passed || (at == self.passed && self.in_frame != 0) {
            return Err(MergeError::Misplaced {
                at,
                passed: self.passed,
            });
        }
        if at > self.passed {
            let i = self.early.iter().take_while(|(a, _)| *a < at).count();
            self.early.insert(i, (at, frames.to_vec()));
            return Ok(());
        }
        out.extend_from_slice(frames);
        self.skip.push_back(at);
        // A marker reached before this reply may be holding the downstream.
        self.downstream(&[], out)
    }

    /// A marker was reached and its reply has not come: the downstream waits for it.
    pub fn waiting(&self) -> bool {
        self.in_frame == 0 && self.held.starts_with(&fetch::MOVED_MARKER) && !self.skip_next()
    }

    /// Downstream bytes passed on so far.
    pub fn passed(&self) -> u64 {
        self.passed
    }

    fn skip_next(&self) -> bool {
        self.skip.front() == Some(&self.passed)
    }

    fn hold(&mut self, rest: &[u8]) -> Result<(), MergeError> {
        self.held.extend_from_slice(rest);
        self.check_held()
    }

    fn check_held(&self) -> Result<(), MergeError> {
        if self.held.len() > MAX_HELD {
            return Err(MergeError::TooMuchHeld);
        }
        Ok(())
    }

    /// Passes on what it can of `bytes`; returns the rest, to be held.
    fn pass<'a>(&mut self, mut bytes: &'a [u8], out: &mut Vec<u8>) -> Result<&'a [u8], MergeError> {
        loop {
            if self.in_frame > 0 {
                let n = (self.in_frame.min(bytes.len() as u64)) as usize;
                out.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                self.in_frame -= n as u64;
                self.passed += n as u64;
                if bytes.is_empty() {
                    return Ok(bytes);
                }
                continue;
            }
            // At a frame boundary: a reply that belongs here goes first (one the downstream
            // went past inside a frame was misplaced).
            if let Some(&(at, _)) = self.early.front() {
                if at < self.passed {
                    return Err(MergeError::Misplaced {
                        at,
                        passed: self.passed,
                    });
                }
            }
            if self.early.front().is_some_and(|(at, _)| *at == self.passed) {
                if let Some((at, frames)) = self.early.pop_front() {
                    out.extend_from_slice(&frames);
                    self.skip.push_back(at);
                }
                continue;
            }
            if bytes.is_empty() {
                return Ok(bytes);
            }
            let header = match FrameHeader::parse(bytes) {
                Ok(Parsed::Complete { value, consumed }) => (value, consumed),
                Ok(Parsed::Partial { .. }) => return Ok(bytes),
                Err(_) => return Err(MergeError::Malformed),
            };
            let marker = &fetch::MOVED_MARKER;
            if header.0.opcode == OpCode::Pong && header.0.payload_len == (marker.len() - 2) as u64
            {
                if bytes.len() < marker.len() {
                    return Ok(bytes);
                }
                if bytes[..marker.len()] == marker[..] {
                    if !self.skip_next() {
                        // Its reply has not come: hold from here.
                        return Ok(bytes);
                    }
                    self.skip.pop_front();
                    self.passed += marker.len() as u64;
                    bytes = &bytes[marker.len()..];
                    continue;
                }
            }
            self.in_frame = header.1 as u64 + header.0.payload_len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn frame(payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut f = vec![0x82, payload.len() as u8];
        f.extend_from_slice(payload);
        f
    }

    fn feed(m: &mut ReplyMerge, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        m.downstream(bytes, &mut out).expect("downstream");
        out
    }

    fn reply(m: &mut ReplyMerge, at: u64, frames: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        m.reply(at, frames, &mut out).expect("reply");
        out
    }

    #[test]
    fn without_replies_the_downstream_passes_through_in_any_split() {
        let stream: Vec<u8> = [frame(b"a"), frame(&[7; 100]), frame(b"")].concat();
        for split in 0..stream.len() {
            let mut m = ReplyMerge::new();
            let mut out = feed(&mut m, &stream[..split]);
            out.extend(feed(&mut m, &stream[split..]));
            assert_eq!(out, stream, "split at {split}");
            assert!(!m.waiting());
        }
    }

    #[test]
    fn a_reply_before_its_marker_goes_out_at_once_and_the_marker_is_skipped() {
        let mut m = ReplyMerge::new();
        let first = frame(b"first");
        assert_eq!(feed(&mut m, &first), first);
        let echo = frame(b"echo");
        assert_eq!(reply(&mut m, first.len() as u64, &echo), echo);
        let after = frame(b"after");
        let rest = [fetch::MOVED_MARKER.to_vec(), after.clone()].concat();
        assert_eq!(feed(&mut m, &rest), after);
        assert_eq!(m.passed(), (first.len() + rest.len()) as u64);
    }

    #[test]
    fn a_marker_before_its_reply_holds_the_downstream() {
        let mut m = ReplyMerge::new();
        let after = frame(b"after");
        let stream = [fetch::MOVED_MARKER.to_vec(), after.clone()].concat();
        assert!(feed(&mut m, &stream).is_empty());
        assert!(m.waiting());
        let echo = frame(b"echo");
        assert_eq!(reply(&mut m, 0, &echo), [echo, after].concat());
        assert!(!m.waiting());
    }

    #[test]
    fn a_reply_from_ahead_waits_for_the_downstream_to_reach_it() {
        let mut m = ReplyMerge::new();
        let first = frame(b"first");
        let echo = frame(b"echo");
        assert!(reply(&mut m, first.len() as u64, &echo).is_empty());
        // Split inside the first frame: the reply still waits for its end.
        assert_eq!(feed(&mut m, &first[..3]), first[..3]);
        let mut rest = first[3..].to_vec();
        rest.extend_from_slice(&fetch::MOVED_MARKER[..5]);
        assert_eq!(feed(&mut m, &rest), [first[3..].to_vec(), echo].concat());
        assert!(feed(&mut m, &fetch::MOVED_MARKER[5..]).is_empty());
        assert_eq!(m.passed(), (first.len() + fetch::MOVED_MARKER.len()) as u64);
    }

    #[test]
    fn replies_in_a_row_keep_their_order() {
        // Server order: r1, r2 (two markers back to back), then d.
        let r1 = frame(b"r1");
        let r2 = frame(b"r2");
        let d = frame(b"d");
        let m12 = fetch::MOVED_MARKER.len() as u64;
        let stream = [
            fetch::MOVED_MARKER.to_vec(),
            fetch::MOVED_MARKER.to_vec(),
            d.clone(),
        ]
        .concat();
        // Every arrival order of r1, r2 and the downstream gives the same bytes.
        let expected = [r1.clone(), r2.clone(), d.clone()].concat();
        for order in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let mut m = ReplyMerge::new();
            let mut out = Vec::new();
            for step in order {
                match step {
                    0 => m.reply(0, &r1, &mut out).expect("r1"),
                    1 => m.reply(m12, &r2, &mut out).expect("r2"),
                    _ => m.downstream(&stream, &mut out).expect("downstream"),
                }
            }
            assert_eq!(out, expected, "order {order:?}");
            assert!(!m.waiting());
        }
    }

    #[test]
    fn whole_frames_are_told_from_pieces() {
        let two = [frame(b"a"), frame(b"bc")].concat();
        assert!(whole_frames(&two));
        assert!(!whole_frames(&two[..two.len() - 1]));
        assert!(!whole_frames(&[]));
        assert!(!whole_frames(&[0x83, 0]));
    }

    #[test]
    fn an_app_pong_that_is_not_the_marker_passes() {
        let mut m = ReplyMerge::new();
        let pong = [&[0x8A, 10][..], b"h2ws-other"].concat();
        assert_eq!(feed(&mut m, &pong), pong);
    }

    #[test]
    fn bad_input_is_an_error_not_a_hang() {
        let mut m = ReplyMerge::new();
        feed(&mut m, &frame(b"abc"));
        let mut out = Vec::new();
        assert_eq!(
            m.reply(0, b"x", &mut out),
            Err(MergeError::Misplaced { at: 0, passed: 5 })
        );
        // Reserved opcode 3.
        assert_eq!(
            m.downstream(&[0x83, 0], &mut out),
            Err(MergeError::Malformed)
        );
        // Held without bound behind a marker whose reply never comes.
        let mut m = ReplyMerge::new();
        feed(&mut m, &fetch::MOVED_MARKER);
        let big = vec![0u8; MAX_HELD];
        assert_eq!(m.downstream(&big, &mut out), Err(MergeError::TooMuchHeld));
    }
}
