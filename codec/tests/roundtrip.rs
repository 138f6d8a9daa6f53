//! Encode → decode round trips between two `Connection`s, for every framing and direction,
//! with the byte stream re-chunked at arbitrary points.

use h2ws_codec::{
    CloseCode, Config, Connection, Event, FragmentKind, Framing, Message, Role, State,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    /// A message sent with `send_fragment`, cut at the given points (text may be cut inside a
    /// UTF-8 sequence).
    Fragmented {
        text: bool,
        data: Vec<u8>,
        cuts: Vec<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<String>().prop_map(Op::Text),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Op::Binary),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Op::Ping),
        (
            any::<bool>(),
            any::<String>(),
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(0usize..400, 0..4)
        )
            .prop_map(|(text, s, b, cuts)| Op::Fragmented {
                text,
                data: if text { s.into_bytes() } else { b },
                cuts,
            }),
    ]
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::Rfc6455),
        Just(Framing::Stream),
        Just(Framing::Native)
    ]
}

/// What the receiver must report for `op` (assembled mode).
fn expected(op: &Op) -> Event {
    match op {
        Op::Text(s) => Event::Message(Message::Text(s.clone())),
        Op::Binary(b) => Event::Message(Message::Binary(b.clone())),
        Op::Ping(p) => Event::Ping(p.clone()),
        Op::Fragmented {
            text: true, data, ..
        } => Event::Message(Message::Text(String::from_utf8(data.clone()).unwrap())),
        Op::Fragmented {
            text: false, data, ..
        } => Event::Message(Message::Binary(data.clone())),
    }
}

fn send(conn: &mut Connection, op: &Op) {
    match op {
        Op::Text(s) => conn.send_text(s).unwrap(),
        Op::Binary(b) => conn.send_binary(b).unwrap(),
        Op::Ping(p) => conn.send_ping(p).unwrap(),
        Op::Fragmented { text, data, cuts } => {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.push(data.len());
            let mut start = 0;
            for (i, &end) in cuts.iter().enumerate() {
                let kind = match (i, text) {
                    (0, true) => FragmentKind::Text,
                    (0, false) => FragmentKind::Binary,
                    _ => FragmentKind::Continuation,
                };
                conn.send_fragment(kind, 0, &data[start..end], i + 1 == cuts.len())
                    .unwrap();
                start = end;
            }
        }
    }
}

/// Collects the sender's output as transmit units.
fn drain(conn: &mut Connection) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| conn.poll_transmit()).collect()
}

/// Delivers units to `to`: Native gets each DATA frame whole; byte-stream framings get the
/// concatenation re-cut at `chunks` sizes.
fn deliver(to: &mut Connection, units: Vec<Vec<u8>>, chunks: &[usize]) {
    if to.framing() == Framing::Native {
        for unit in units {
            to.recv(&unit).unwrap();
        }
        return;
    }
    let stream: Vec<u8> = units.concat();
    let mut at = 0;
    let mut sizes = chunks.iter().cycle();
    while at < stream.len() {
        let n = (*sizes.next().unwrap()).min(stream.len() - at);
        to.recv(&stream[at..at + n]).unwrap();
        at += n;
    }
}

fn pair(framing: Framing, config: &Config, seed: [u8; 32]) -> (Connection, Connection) {
    (
        Connection::new(Role::Client, framing, config.clone()).with_mask_seed(seed),
        Connection::new(Role::Server, framing, config.clone()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn messages_survive_any_chunking(
        framing in framing(),
        client_sends in any::<bool>(),
        ops in prop::collection::vec(op(), 0..8),
        chunks in prop::collection::vec(1usize..64, 1..8),
        native_max_payload in 2usize..40,
        seed in any::<[u8; 32]>(),
    ) {
        let config = Config { native_max_payload, ..Config::default() };
        let (mut client, mut server) = pair(framing, &config, seed);
        let (tx, rx) = if client_sends { (&mut client, &mut server) } else { (&mut server, &mut client) };
        let mut units = Vec::new();
        for op in &ops {
            send(tx, op);
            units.extend(drain(tx));
        }
        if framing == Framing::Native {
            for unit in &units {
                prop_assert!(!unit.is_empty() && unit.len() <= native_max_payload.max(126));
            }
        }
        tx.close(Some(CloseCode::NORMAL), "bye").unwrap();
        units.extend(drain(tx));
        deliver(rx, units, &chunks);
        let got: Vec<Event> = std::iter::from_fn(|| rx.poll_event()).collect();
        let mut want: Vec<Event> = ops.iter().map(expected).collect();
        want.push(Event::Closed { code: CloseCode::NORMAL, reason: "bye".into(), clean: true });
        // The receiver's echo is what completes its side of the handshake.
        prop_assert_eq!(rx.state(), State::CloseReceived);
        let echo = drain(rx);
        prop_assert_eq!(rx.state(), State::Closed);
        let got_after: Vec<Event> = std::iter::from_fn(|| rx.poll_event()).collect();
        let all: Vec<Event> = got.into_iter().chain(got_after).collect();
        prop_assert_eq!(all, want);
        deliver(tx, echo, &chunks);
        prop_assert!(tx.is_closed());
    }

    #[test]
    fn fragments_mode_hands_over_every_byte(
        framing in framing(),
        ops in prop::collection::vec(op(), 0..6),
        chunks in prop::collection::vec(1usize..64, 1..8),
        native_max_payload in 2usize..40,
    ) {
        let config = Config { native_max_payload, deliver_fragments: true, ..Config::default() };
        let (mut client, mut server) = pair(framing, &config, [1; 32]);
        for op in &ops {
            send(&mut client, op);
        }
        // Keep control frames in place relative to data: drain after each op was not done, so
        // pings may jump ahead; compare data only.
        let units = drain(&mut client);
        deliver(&mut server, units, &chunks);
        let mut messages = Vec::new();
        let mut current: Option<(bool, Vec<u8>)> = None;
        while let Some(ev) = server.poll_event() {
            match ev {
                Event::Fragment { kind, rsv, data, fin } => {
                    prop_assert_eq!(rsv, 0);
                    match (kind, current.as_mut()) {
                        (FragmentKind::Continuation, Some((_, buf))) => buf.extend(data),
                        (FragmentKind::Text, None) => current = Some((true, data)),
                        (FragmentKind::Binary, None) => current = Some((false, data)),
                        other => prop_assert!(false, "bad fragment sequence {:?}", other.0),
                    }
                    if fin {
                        messages.push(current.take().unwrap());
                    }
                }
                Event::Ping(_) => {}
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        let want: Vec<(bool, Vec<u8>)> = ops.iter().filter_map(|op| match op {
            Op::Text(s) => Some((true, s.clone().into_bytes())),
            Op::Binary(b) => Some((false, b.clone())),
            Op::Fragmented { text, data, .. } => Some((*text, data.clone())),
            Op::Ping(_) => None,
        }).collect();
        prop_assert_eq!(messages, want);
    }
}
