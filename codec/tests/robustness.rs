//! "Never panics, never loops, never grows without bound": arbitrary and mutated input into
//! every decoder. A failure is a panic, a hang (the test would not finish) or a broken
//! invariant checked below.

use h2ws_codec::frame::native;
use h2ws_codec::utf8::Utf8Validator;
use h2ws_codec::{
    CloseFrame, Config, Connection, Event, FrameHeader, Framing, Parsed, Role, State,
};
use proptest::prelude::*;

fn config(variant: u8) -> Config {
    Config {
        max_frame_size: if variant & 1 != 0 { 64 } else { 1 << 20 },
        max_message_size: if variant & 1 != 0 { 100 } else { 1 << 20 },
        deliver_fragments: variant & 2 != 0,
        allow_rsv1: variant & 4 != 0,
        #[cfg(feature = "deflate")]
        deflate: (variant & 8 != 0).then(h2ws_codec::deflate::DeflateParams::default),
        ..Config::default()
    }
}

/// Checks what must hold after any input: an error leaves the connection Closed with exactly
/// one Closed event and further input ignored; output stays bounded by the input.
fn feed_stream(role: Role, framing: Framing, variant: u8, input: &[u8], chunks: &[usize]) {
    let mut conn = Connection::new(role, framing, config(variant)).with_mask_seed([3; 32]);
    let mut at = 0;
    let mut sizes = chunks.iter().cycle();
    let mut failed = false;
    while at < input.len() {
        let n = (*sizes.next().unwrap()).clamp(1, input.len() - at);
        let res = conn.recv(&input[at..at + n]);
        at += n;
        if res.is_err() {
            assert!(
                !failed,
                "an error after the first is ignored input, not a new error"
            );
            failed = true;
            assert_eq!(conn.state(), State::Closed);
        }
    }
    check_after(conn, failed, input.len());
}

fn check_after(mut conn: Connection, failed: bool, input_len: usize) {
    // Output: at most 16 unsent auto-Pongs (newer Pings then replace the newest) and one
    // Close, each ≤ 14 + 125 bytes.
    assert!(
        conn.pending_bytes() <= 17 * (14 + 125),
        "pending {}",
        conn.pending_bytes()
    );
    let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
    let closed = events
        .iter()
        .filter(|e| matches!(e, Event::Closed { .. }))
        .count();
    assert!(closed <= 1);
    if failed {
        assert_eq!(closed, 1);
    }
    // Each event needs at least one frame, and each frame at least one byte.
    assert!(events.len() <= input_len + 1);
    while conn.poll_transmit().is_some() {}
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Client), Just(Role::Server)]
}

fn byte_framing() -> impl Strategy<Value = Framing> {
    prop_oneof![Just(Framing::Rfc6455), Just(Framing::Stream)]
}

/// A plausible frame stream: valid-looking headers with random fields, to get past the first
/// byte more often than uniform noise does.
fn frames() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            any::<u8>(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..140),
        ),
        0..6,
    )
    .prop_map(|frames| {
        let mut out = Vec::new();
        for (b0, masked, payload) in frames {
            let ops = [0x0, 0x1, 0x2, 0x8, 0x9, 0xA];
            let b0 = (b0 & 0xF0) | ops[usize::from(b0 & 0x0F) % ops.len()];
            out.push(b0);
            let m = if masked { 0x80 } else { 0 };
            if payload.len() < 126 {
                out.push(m | payload.len() as u8);
            } else {
                out.push(m | 126);
                out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            }
            if masked {
                out.extend_from_slice(&[0, 0, 0, 0]);
            }
            out.extend_from_slice(&payload);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn recv_arbitrary_bytes(
        role in role(), framing in byte_framing(), variant in 0u8..16,
        input in prop::collection::vec(any::<u8>(), 0..600),
        chunks in prop::collection::vec(1usize..50, 1..6),
    ) {
        feed_stream(role, framing, variant, &input, &chunks);
    }

    #[test]
    fn recv_plausible_frames(
        role in role(), framing in byte_framing(), variant in 0u8..16,
        input in frames(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        chunks in prop::collection::vec(1usize..50, 1..6),
    ) {
        let mut input = input;
        for (at, x) in flips {
            if !input.is_empty() {
                let i = at % input.len();
                input[i] ^= x;
            }
        }
        feed_stream(role, framing, variant, &input, &chunks);
    }

    #[test]
    fn recv_native_arbitrary(
        role in role(), variant in 0u8..16,
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..8),
    ) {
        let mut conn = Connection::new(role, Framing::Native, config(variant));
        let mut failed = false;
        let mut total = 0;
        for f in &frames {
            total += f.len();
            if conn.recv(f).is_err() {
                prop_assert!(!failed);
                failed = true;
            }
        }
        check_after(conn, failed, total.max(frames.len()));
    }

    #[test]
    fn frame_header_parse_arbitrary(input in prop::collection::vec(any::<u8>(), 0..20)) {
        match FrameHeader::parse(&input) {
            Ok(Parsed::Complete { value, consumed }) => {
                prop_assert!(consumed <= input.len() && consumed <= 14);
                // What parses re-encodes to the same bytes (minimal lengths are enforced).
                let mut out = Vec::new();
                value.encode_into(&mut out);
                prop_assert_eq!(&out[..], &input[..consumed]);
            }
            Ok(Parsed::Partial { needed }) => {
                prop_assert!(needed >= 1 && input.len() + needed <= 14);
                // Fewer than `needed` more bytes can never complete the header.
                let mut more = input.clone();
                more.extend(std::iter::repeat_n(0u8, needed - 1));
                let still_partial = matches!(FrameHeader::parse(&more), Ok(Parsed::Partial { .. }));
                prop_assert!(still_partial);
            }
            Err(_) => {}
        }
    }

    #[test]
    fn native_first_byte_arbitrary(b in any::<u8>()) {
        if let Ok((fin, rsv, op)) = native::parse_first_byte(b) {
            prop_assert_eq!(native::first_byte(fin, rsv, op), b);
        }
    }

    #[test]
    fn close_payload_arbitrary(payload in prop::collection::vec(any::<u8>(), 0..130)) {
        if let Ok(Some(frame)) = CloseFrame::parse(&payload) {
            prop_assert!(frame.code.is_sendable());
            prop_assert_eq!(frame.reason.as_bytes(), &payload[2..]);
        }
    }

    #[test]
    fn utf8_arbitrary_bytes_any_chunking(
        input in prop::collection::vec(any::<u8>(), 0..200),
        cuts in prop::collection::vec(any::<usize>(), 0..5),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut v = Utf8Validator::new();
        let mut start = 0;
        let mut ok = true;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            if v.feed(&input[start..end]).is_err() {
                ok = false;
                break;
            }
            start = end;
        }
        ok = ok && v.finish().is_ok();
        prop_assert_eq!(ok, std::str::from_utf8(&input).is_ok());
    }
}
