//! Lossless resume through `Connection` (codec `resume`): two endpoints on the `stream`
//! framing, a link between them that cuts at random byte offsets (what is in flight is lost,
//! frames are cut in half), and the check that each side's app sees every message exactly
//! once, in order, with no event from the cuts.

use core::time::Duration;

use h2ws_codec::frame::{FrameHeader, OpCode};
use h2ws_codec::resume::{encode_ack, ResumeConfig};
use h2ws_codec::timer::{Timeout, Timestamp};
use h2ws_codec::{CloseCode, Config, Connection, Event, Framing, Message, Role, State};

/// xorshift64*: deterministic randomness for the cut positions and message sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn endpoint(role: Role, config: ResumeConfig) -> Connection {
    let mut conn = Connection::new(role, Framing::Stream, Config::default());
    assert!(conn.enable_resume(config));
    conn
}

/// The payload of message `i` of a side: its number, then filler of a random length.
fn message(side: u8, i: u32, rng: &mut Rng) -> Vec<u8> {
    let mut m = vec![side];
    m.extend_from_slice(&i.to_be_bytes());
    let len = match rng.below(10) {
        0 => rng.below(20_000), // now and then a frame larger than one delivery
        _ => rng.below(200),
    };
    m.extend((0..len).map(|k| (k as u8) ^ (i as u8)));
    m
}

/// One direction of the link: bytes written and not yet delivered.
#[derive(Default)]
struct Link {
    in_flight: Vec<u8>,
}

impl Link {
    /// Takes what `from` sends, delivers a random prefix of what is in flight to `to`.
    fn step(&mut self, from: &mut Connection, to: &mut Connection, now: Timestamp, rng: &mut Rng) {
        while let Some(t) = from.poll_transmit_parts() {
            self.in_flight.extend_from_slice(&t.head);
            if let Some(tail) = &t.tail {
                self.in_flight.extend_from_slice(tail);
            }
        }
        let n = rng.below(self.in_flight.len() as u64 + 1) as usize;
        let delivered: Vec<u8> = self.in_flight.drain(..n).collect();
        // Delivered in two pieces, split anywhere.
        let cut = rng.below(delivered.len() as u64 + 1) as usize;
        to.recv_at(now, &delivered[..cut]).expect("valid input");
        to.recv_at(now, &delivered[cut..]).expect("valid input");
    }
}

/// The data messages an endpoint's app received since the last call; any other event but a
/// Pong fails the test (a cut must be invisible to the app).
fn received(conn: &mut Connection) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(ev) = conn.poll_event() {
        match ev {
            Event::Message(Message::Binary(b)) => out.push(b.to_vec()),
            other => panic!("unexpected event {other:?}"),
        }
    }
    out
}

fn check_in_order(got: &[Vec<u8>], side: u8, expected_next: &mut u32) {
    for m in got {
        assert_eq!(m[0], side, "message from the other side");
        let i = u32::from_be_bytes([m[1], m[2], m[3], m[4]]);
        assert_eq!(i, *expected_next, "lost, duplicated or reordered");
        *expected_next += 1;
    }
}

/// Both ends lose the transport and re-attach, exchanging their received counts.
fn cut_and_resume(c: &mut Connection, s: &mut Connection, links: &mut [Link; 2], now: Timestamp) {
    links[0].in_flight.clear();
    links[1].in_flight.clear();
    assert!(c.transport_lost(now));
    assert!(s.transport_lost(now));
    assert!(c.poll_transmit().is_none(), "nothing is written while lost");
    let c_received = c.resume_received().expect("resume on");
    let s_received = s.resume(c_received, now).expect("server resumes");
    let back = c.resume(s_received, now).expect("client resumes");
    assert_eq!(back, c_received);
}

fn run(seed: u64, messages: u32, cuts: u32, config: ResumeConfig) {
    let mut rng = Rng(seed);
    let mut c = endpoint(Role::Client, config);
    let mut s = endpoint(Role::Server, config);
    let mut links = [Link::default(), Link::default()];
    let (mut c_sent, mut s_sent) = (0u32, 0u32);
    let (mut c_next, mut s_next) = (0u32, 0u32);
    let mut now = Timestamp::ZERO;
    let mut cuts_left = cuts;
    // Cuts spread over the run: one each time this many more messages were delivered.
    let spacing = 2 * messages / (cuts + 3);
    let mut next_cut = spacing / 2 + rng.below(u64::from(spacing)) as u32;
    let mut steps = 0u64;
    while c_next < messages || s_next < messages {
        steps += 1;
        assert!(steps < 2_000_000, "no progress");
        now = now + core::time::Duration::from_millis(1);
        // Each app sends a few messages while it has any left and its queue is short.
        for _ in 0..rng.below(4) {
            if c_sent < messages && c.pending_bytes() < 256 << 10 {
                c.send_binary(&message(b'c', c_sent, &mut rng))
                    .expect("send");
                c_sent += 1;
            }
            if s_sent < messages && s.pending_bytes() < 256 << 10 {
                // The server hands its payloads over (large ones leave uncopied, and resume
                // keeps a copy of those for replay).
                let m = message(b's', s_sent, &mut rng);
                s.send_binary_shared(bytes::Bytes::from(m)).expect("send");
                s_sent += 1;
            }
        }
        links[0].step(&mut c, &mut s, now, &mut rng);
        links[1].step(&mut s, &mut c, now, &mut rng);
        c.handle_timeout(now);
        s.handle_timeout(now);
        check_in_order(&received(&mut s), b'c', &mut s_next);
        check_in_order(&received(&mut c), b's', &mut c_next);
        if cuts_left > 0 && c_next + s_next >= next_cut {
            cuts_left -= 1;
            next_cut += spacing / 2 + rng.below(u64::from(spacing)) as u32;
            cut_and_resume(&mut c, &mut s, &mut links, now);
            if rng.below(2) == 0 {
                // A second loss right away: part of the replay leaves and is lost again.
                let _ = c.poll_transmit();
                let _ = s.poll_transmit();
                cut_and_resume(&mut c, &mut s, &mut links, now);
            }
        }
        let (bytes, frames) = c.replay_held();
        assert!(bytes <= config.max_replay_bytes && frames <= config.max_replay_frames);
    }
    assert_eq!(cuts_left, 0, "every cut happened (raise the message count)");
    assert_eq!(c.state(), State::Open);
    assert_eq!(s.state(), State::Open);
    // Acks keep flowing: once all is delivered, the replay buffers drain.
    for _ in 0..100 {
        now = now + core::time::Duration::from_millis(5);
        links[0].step(&mut c, &mut s, now, &mut rng);
        links[1].step(&mut s, &mut c, now, &mut rng);
        c.handle_timeout(now);
        s.handle_timeout(now);
    }
    assert_eq!(
        c.replay_held(),
        (0, 0),
        "client replay buffer drained by acks"
    );
    assert_eq!(
        s.replay_held(),
        (0, 0),
        "server replay buffer drained by acks"
    );
}

#[test]
fn random_cuts_lose_duplicate_and_reorder_nothing() {
    for seed in 1..=6 {
        run(seed, 3000, 10, ResumeConfig::default());
    }
}

#[test]
fn small_replay_buffer_holds_sends_back_instead_of_failing() {
    let config = ResumeConfig {
        max_replay_frames: 8,
        max_replay_bytes: 64 << 10,
        ..ResumeConfig::default()
    };
    run(42, 2000, 10, config);
}

#[test]
fn grace_window_ends_the_socket_with_1006() {
    let mut c = endpoint(Role::Client, ResumeConfig::default());
    let t0 = Timestamp::from_millis(1000);
    assert!(c.transport_lost(t0));
    assert_eq!(c.state(), State::Open);
    assert_eq!(c.poll_timeout(), Some(t0 + ResumeConfig::default().grace));
    assert_eq!(c.handle_timeout(Timestamp::from_millis(30_999)), None);
    assert_eq!(
        c.handle_timeout(Timestamp::from_millis(31_000)),
        Some(Timeout::ResumeGrace)
    );
    match c.poll_event() {
        Some(Event::Closed { code, clean, .. }) => {
            assert_eq!(code, CloseCode::ABNORMAL);
            assert!(!clean);
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(c.resume(0, Timestamp::from_millis(31_001)).is_err());
}

/// The client's acknowledgement watchdog: a transport that stops acknowledging counts as lost
/// (Timeout::Silent) after `ack_timeout`, even with no request failing (WebKitGTK left the
/// requests of a dropped connection pending); acks that make progress keep it quiet, and each
/// loss it declares doubles the timeout.
#[test]
fn unacknowledged_frames_past_the_ack_timeout_count_as_a_loss() {
    let timeout = Duration::from_secs(5);
    let config = ResumeConfig {
        ack_timeout: Some(timeout),
        ..ResumeConfig::default()
    };
    let mut c = endpoint(Role::Client, config);
    let mut s = endpoint(Role::Server, ResumeConfig::default());
    let t = Timestamp::from_millis;
    assert_eq!(c.handle_timeout(t(1000)), None);
    assert_eq!(
        c.poll_timeout(),
        None,
        "nothing unacknowledged: no watchdog"
    );
    c.send_text("one").expect("send");
    let frame = c.poll_transmit().expect("frame");
    // The send has no time: the next timer call stamps it, and is asked for at once.
    assert!(c.poll_timeout().is_some_and(|d| d <= t(1000)));
    assert_eq!(c.handle_timeout(t(2000)), None);
    assert_eq!(c.poll_timeout(), Some(t(2000) + timeout));
    // The server acknowledges: progress, nothing outstanding, the watchdog stops.
    s.recv_at(t(2001), &frame).expect("valid");
    assert_eq!(
        s.handle_timeout(t(2001) + ResumeConfig::default().ack_delay),
        Some(Timeout::Ack)
    );
    let ack = s.poll_transmit().expect("ack");
    c.recv_at(t(2100), &ack).expect("valid");
    assert_eq!(c.handle_timeout(t(2100)), None);
    assert_eq!(c.poll_timeout(), None);
    // Another send, and this time no ack comes back.
    c.send_text("two").expect("send");
    let lost = c.poll_transmit().expect("frame");
    assert_eq!(c.handle_timeout(t(3000)), None);
    assert_eq!(c.handle_timeout(t(7999)), None);
    assert_eq!(c.handle_timeout(t(8000)), Some(Timeout::Silent));
    assert_eq!(c.state(), State::Open, "a loss, not the end");
    assert!(c.transport_lost(t(8000)));
    // The re-attach: the server never got "two"; it is replayed and watched again, with the
    // timeout doubled.
    assert!(s.transport_lost(t(8001)));
    let server_received = s
        .resume(c.resume_received().expect("on"), t(8002))
        .expect("resume");
    assert_eq!(server_received, 1, "the server has \"one\" only");
    assert_eq!(c.resume(server_received, t(8003)), Ok(0));
    let replay = c.poll_transmit().expect("replay");
    assert_eq!(replay, lost);
    assert_eq!(c.handle_timeout(t(9000)), None);
    assert_eq!(c.poll_timeout(), Some(t(9000) + timeout * 2));
    assert_eq!(c.handle_timeout(t(18_999)), None);
    assert_eq!(c.handle_timeout(t(19_000)), Some(Timeout::Silent));
}

/// The watchdog also waits for the answers of the caller's upstream requests (a `post` batch
/// whose frames were all acknowledged, but whose answer never comes: WebKitGTK leaves a request
/// on a dropped connection pending).
#[test]
fn an_unanswered_request_counts_like_an_unacknowledged_frame() {
    let timeout = Duration::from_secs(5);
    let mut c = endpoint(
        Role::Client,
        ResumeConfig {
            ack_timeout: Some(timeout),
            ..ResumeConfig::default()
        },
    );
    let t = Timestamp::from_millis;
    c.request_started();
    assert_eq!(c.handle_timeout(t(1000)), None, "stamped");
    assert_eq!(c.poll_timeout(), Some(t(1000) + timeout));
    c.request_ended();
    assert_eq!(c.handle_timeout(t(1000)), None);
    assert_eq!(c.poll_timeout(), None, "answered: nothing outstanding");
    c.request_started();
    c.request_started();
    assert_eq!(c.handle_timeout(t(2000)), None);
    c.request_ended(); // progress: counts afresh for the other one
    assert_eq!(c.handle_timeout(t(4000)), None);
    assert_eq!(c.handle_timeout(t(8999)), None);
    assert_eq!(c.handle_timeout(t(9000)), Some(Timeout::Silent));
    assert!(c.transport_lost(t(9000)));
    assert_eq!(
        c.poll_timeout(),
        Some(t(9000) + ResumeConfig::default().grace),
        "while lost only the grace window"
    );
}

/// Without `ack_timeout` (the default; the server's) unacknowledged frames arm nothing.
#[test]
fn without_an_ack_timeout_nothing_watches_the_acks() {
    let mut s = endpoint(Role::Server, ResumeConfig::default());
    s.send_text("one").expect("send");
    s.poll_transmit().expect("frame");
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.handle_timeout(Timestamp::from_millis(3_600_000)), None);
}

#[test]
fn an_ack_beyond_what_was_sent_fails_with_1002() {
    let mut s = endpoint(Role::Server, ResumeConfig::default());
    let mut pong = Vec::new();
    let ack = encode_ack(5);
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Pong,
        mask: None,
        payload_len: ack.len() as u64,
    }
    .encode_into(&mut pong);
    pong.extend_from_slice(&ack);
    assert!(s.recv(&pong).is_err());
    match s.poll_event() {
        Some(Event::Closed { code, .. }) => assert_eq!(code, CloseCode::PROTOCOL_ERROR),
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[test]
fn a_peer_that_forgot_what_it_acknowledged_is_refused() {
    let (mut c, mut s) = (
        endpoint(Role::Client, ResumeConfig::default()),
        endpoint(Role::Server, ResumeConfig::default()),
    );
    let now = Timestamp::from_millis(1);
    for i in 0..40u8 {
        c.send_binary(&[i]).expect("send");
    }
    while let Some(b) = c.poll_transmit() {
        s.recv_at(now, &b).expect("valid");
    }
    // 32 frames trigger an ack at once.
    assert_eq!(s.handle_timeout(now), Some(Timeout::Ack));
    while let Some(b) = s.poll_transmit() {
        c.recv_at(now, &b).expect("valid");
    }
    assert_eq!(c.replay_held(), (0, 0), "all 40 acknowledged");
    for i in 0..5u8 {
        c.send_binary(&[i]).expect("send");
    }
    while c.poll_transmit().is_some() {}
    assert_eq!(c.replay_held().1, 5, "5 not acknowledged yet");
    c.transport_lost(now);
    // A server restarted (or a replayed request) claims fewer than it acknowledged.
    assert!(c.resume(3, now).is_err());
}

#[test]
fn close_handshake_survives_a_cut() {
    let (mut c, mut s) = (
        endpoint(Role::Client, ResumeConfig::default()),
        endpoint(Role::Server, ResumeConfig::default()),
    );
    let now = Timestamp::from_millis(1);
    c.send_binary(b"last words").expect("send");
    c.close(Some(CloseCode::NORMAL), "bye").expect("close");
    // Written, then lost in flight.
    while c.poll_transmit().is_some() {}
    assert_eq!(c.state(), State::Closing);
    c.transport_lost(now);
    s.transport_lost(now);
    let s_received = s.resume(c.resume_received().unwrap(), now).unwrap();
    c.resume(s_received, now).unwrap();
    while let Some(b) = c.poll_transmit() {
        s.recv_at(now, &b).expect("valid");
    }
    let mut saw = Vec::new();
    while let Some(ev) = s.poll_event() {
        saw.push(ev);
    }
    assert!(matches!(&saw[0], Event::Message(Message::Binary(b)) if &b[..] == b"last words"));
    while let Some(b) = s.poll_transmit() {
        c.recv_at(now, &b).expect("valid");
    }
    assert!(s.is_closed());
    assert!(c.is_closed());
    match c.poll_event() {
        Some(Event::Closed { code, clean, .. }) => {
            assert_eq!(code, CloseCode::NORMAL);
            assert!(clean);
        }
        other => panic!("expected a clean close, got {other:?}"),
    }
}

#[test]
fn without_resume_a_lost_transport_is_1006() {
    let mut c = Connection::new(Role::Client, Framing::Stream, Config::default());
    assert!(!c.can_resume());
    assert!(!c.transport_lost(Timestamp::ZERO));
    assert!(matches!(
        c.poll_event(),
        Some(Event::Closed {
            code: CloseCode::ABNORMAL,
            ..
        })
    ));
    let mut n = Connection::new(Role::Client, Framing::Native, Config::default());
    assert!(
        !n.enable_resume(ResumeConfig::default()),
        "native does not resume"
    );
}

#[test]
fn a_frame_larger_than_the_replay_buffer_still_goes_once_the_buffer_is_empty() {
    let config = ResumeConfig {
        max_replay_bytes: 4096,
        ..ResumeConfig::default()
    };
    let (mut c, mut s) = (
        endpoint(Role::Client, config),
        endpoint(Role::Server, config),
    );
    let now = Timestamp::from_millis(1);
    s.send_binary(&[1u8; 100]).expect("send");
    s.send_binary(&[2u8; 10_000]).expect("send"); // larger than the whole buffer
                                                  // The small frame leaves; the large one waits for its acknowledgement, then leaves alone.
    assert_eq!(
        s.pending_payload_bytes(),
        10_100,
        "payloads queued, no headers"
    );
    let first = s.poll_transmit().expect("the small frame");
    assert!(
        s.poll_transmit().is_none(),
        "the large frame waits while the small one is held"
    );
    assert_eq!(
        s.pending_payload_bytes(),
        10_000,
        "the held frame's payload, without its header"
    );
    assert!(s.pending_bytes() > 10_000);
    c.recv_at(now, &first).expect("valid");
    assert_eq!(
        c.handle_timeout(now + ResumeConfig::default().ack_delay),
        Some(Timeout::Ack)
    );
    while let Some(ack) = c.poll_transmit() {
        s.recv_at(now, &ack).expect("valid");
    }
    let large = s
        .poll_transmit()
        .expect("the large frame, once nothing else is held");
    assert!(large.len() > 10_000);
    c.recv_at(now, &large).expect("valid");
    let got: Vec<usize> = core::iter::from_fn(|| c.poll_event())
        .filter_map(|e| match e {
            Event::Message(Message::Binary(b)) => Some(b.len()),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![100, 10_000]);
    // Held for replay until acknowledged, like any frame.
    assert_eq!(s.replay_held().1, 1);
}
