//! permessage-deflate (RFC 7692) as the `Connection` uses it: compressed round trips, RSV1 on
//! a message's first frame only, control frames never compressed, the RFC's own examples,
//! bounded inflation, and RSV1 without negotiation refused.
#![cfg(feature = "deflate")]

use h2ws_codec::deflate::DeflateParams;
use h2ws_codec::{
    CloseCode, Config, Connection, DeflateFailure, Event, FragmentKind, Framing, Message,
    ProtocolError, Role,
};
use proptest::prelude::*;

fn params(client_no_takeover: bool, server_no_takeover: bool) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: server_no_takeover,
        client_no_context_takeover: client_no_takeover,
        ..DeflateParams::default()
    }
}

fn config(deflate: Option<DeflateParams>) -> Config {
    Config {
        deflate,
        native_max_payload: 64,
        ..Config::default()
    }
}

fn feed(to: &mut Connection, unit: &[u8]) -> Result<(), ProtocolError> {
    to.recv(unit)
}

fn pump(from: &mut Connection, to: &mut Connection) -> Vec<Vec<u8>> {
    let units: Vec<Vec<u8>> = std::iter::from_fn(|| from.poll_transmit()).collect();
    for unit in &units {
        feed(to, unit).unwrap();
    }
    units
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// The first byte of every frame in the transmit units (one frame per unit as sent here).
fn first_bytes(units: &[Vec<u8>]) -> Vec<u8> {
    units.iter().map(|u| u[0]).collect()
}

const FRAMINGS: [Framing; 3] = [Framing::Rfc6455, Framing::Stream, Framing::Native];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn compressed_round_trip(
        framing in prop::sample::select(FRAMINGS.to_vec()),
        client_no_takeover in any::<bool>(),
        server_no_takeover in any::<bool>(),
        messages in prop::collection::vec(
            prop_oneof![
                any::<String>().prop_map(|s| Message::Text(s.repeat(3))),
                prop::collection::vec(0u8..4, 0..3000).prop_map(Message::Binary),
            ],
            1..6,
        ),
    ) {
        let p = params(client_no_takeover, server_no_takeover);
        let mut client = Connection::new(Role::Client, framing, config(Some(p))).with_mask_seed([5; 32]);
        let mut server = Connection::new(Role::Server, framing, config(Some(p)));
        for client_sends in [true, false] {
            let (from, to) = if client_sends { (&mut client, &mut server) } else { (&mut server, &mut client) };
            for m in &messages {
                match m {
                    Message::Text(s) => from.send_text(s).unwrap(),
                    Message::Binary(b) => from.send_binary(b).unwrap(),
                }
                let units = pump(from, to);
                // RSV1 on the first frame of the message only.
                let rsv1: Vec<bool> = first_bytes(&units).iter().map(|b| b & 0x40 != 0).collect();
                prop_assert!(rsv1[0]);
                prop_assert!(rsv1[1..].iter().all(|set| !set));
            }
            let got = events(to);
            let want: Vec<Event> = messages.iter().cloned().map(Event::Message).collect();
            prop_assert_eq!(got, want);
        }
    }
}

#[test]
fn compression_shrinks_repetitive_messages() {
    let p = params(false, false);
    let mut server = Connection::new(Role::Server, Framing::Stream, config(Some(p)));
    server.send_text(&"hello ".repeat(1000)).unwrap();
    let frame = server.poll_transmit().unwrap();
    assert!(frame.len() < 200, "{} bytes", frame.len());
    // With context takeover the second copy costs even less.
    server.send_text(&"hello ".repeat(1000)).unwrap();
    let second = server.poll_transmit().unwrap();
    assert!(second.len() < frame.len());
}

#[test]
fn control_frames_are_never_compressed() {
    for framing in FRAMINGS {
        let p = params(false, false);
        let mut server = Connection::new(Role::Server, framing, config(Some(p)));
        server.send_ping(b"ping ping ping ping").unwrap();
        server
            .close(Some(CloseCode::NORMAL), "bye bye bye bye")
            .unwrap();
        let units: Vec<Vec<u8>> = std::iter::from_fn(|| server.poll_transmit()).collect();
        assert_eq!(first_bytes(&units), [0x89, 0x88], "{framing:?}");
        let body = |u: &Vec<u8>| u[if framing == Framing::Native { 1 } else { 2 }..].to_vec();
        assert_eq!(body(&units[0]), b"ping ping ping ping");
        assert_eq!(body(&units[1]), b"\x03\xe8bye bye bye bye");
    }
}

#[test]
fn rfc7692_examples() {
    let p = params(false, false);
    let cases: [&[u8]; 3] = [
        // §7.2.3.1: "Hello" compressed in one frame.
        &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        // §7.2.3.1: the same, fragmented.
        &[
            0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
        ],
        // §7.2.3.3: a DEFLATE block with no compression.
        &[
            0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ],
    ];
    for bytes in cases {
        let mut client = Connection::new(Role::Client, Framing::Stream, config(Some(p)));
        client.recv(bytes).unwrap();
        assert_eq!(
            events(&mut client),
            [Event::Message(Message::Text("Hello".into()))]
        );
    }
    // §7.2.3.2: with context takeover the second "Hello" refers back to the first.
    let mut client = Connection::new(Role::Client, Framing::Stream, config(Some(p)));
    client
        .recv(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .unwrap();
    client
        .recv(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00])
        .unwrap();
    assert_eq!(
        events(&mut client),
        [
            Event::Message(Message::Text("Hello".into())),
            Event::Message(Message::Text("Hello".into()))
        ]
    );
}

#[test]
fn rsv1_without_negotiation_is_1002() {
    for framing in FRAMINGS {
        let mut server = Connection::new(Role::Server, framing, config(None));
        let frame: &[u8] = match framing {
            Framing::Rfc6455 => &[0xc1, 0x80, 0, 0, 0, 0],
            Framing::Stream => &[0xc1, 0x00],
            Framing::Native => &[0xc1],
        };
        let err = feed(&mut server, frame).unwrap_err();
        assert_eq!(err, ProtocolError::ReservedBits);
        assert_eq!(err.close_code(), CloseCode::PROTOCOL_ERROR);
    }
}

#[test]
fn rsv1_on_continuation_is_1002() {
    let mut client = Connection::new(
        Role::Client,
        Framing::Stream,
        config(Some(params(false, false))),
    );
    let err = client
        .recv(&[
            0x41, 0x03, 0xf2, 0x48, 0xcd, 0xc0, 0x04, 0xc9, 0xc9, 0x07, 0x00,
        ])
        .unwrap_err();
    assert_eq!(err, ProtocolError::ReservedBits);
}

#[test]
fn inflation_is_bounded_by_the_message_limit() {
    // 1 MiB of zeros compresses to about a kilobyte.
    let p = params(false, false);
    let mut server = Connection::new(Role::Server, Framing::Stream, config(Some(p)));
    server.send_binary(&vec![0u8; 1 << 20]).unwrap();
    let frame = server.poll_transmit().unwrap();
    assert!(frame.len() < 4096);
    let small = Config {
        max_message_size: 64 * 1024,
        ..config(Some(p))
    };
    let mut client = Connection::new(Role::Client, Framing::Stream, small);
    let err = client.recv(&frame).unwrap_err();
    assert_eq!(err, ProtocolError::Deflate(DeflateFailure::TooBig));
    assert_eq!(err.close_code(), CloseCode::TOO_BIG);
}

#[test]
fn corrupt_compressed_data_is_1007() {
    let mut client = Connection::new(
        Role::Client,
        Framing::Stream,
        config(Some(params(false, false))),
    );
    // BTYPE = 11 is reserved: not a valid DEFLATE block.
    let err = client.recv(&[0xc2, 0x02, 0xff, 0xff]).unwrap_err();
    assert_eq!(err, ProtocolError::Deflate(DeflateFailure::Corrupt));
    assert_eq!(err.close_code(), CloseCode::INVALID_PAYLOAD);
}

#[test]
fn compressed_invalid_utf8_is_1007() {
    // Compress bytes that are not UTF-8 with a binary send, then relabel the frame as text.
    let p = params(false, false);
    let mut server = Connection::new(Role::Server, Framing::Stream, config(Some(p)));
    server.send_binary(&[0x61, 0xff, 0x62]).unwrap();
    let mut frame = server.poll_transmit().unwrap();
    frame[0] = 0xc1;
    let mut client = Connection::new(Role::Client, Framing::Stream, config(Some(p)));
    assert_eq!(client.recv(&frame), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn fragments_mode_inflates_each_frame() {
    let p = params(false, false);
    let mut client = Connection::new(Role::Client, Framing::Native, config(Some(p)));
    let proxy_config = Config {
        deliver_fragments: true,
        ..config(Some(p))
    };
    let mut server = Connection::new(Role::Server, Framing::Native, proxy_config);
    // Pseudo-random letters: compressible, but not to under one 64-byte DATA frame.
    let mut x = 0x2545_f491_u32;
    let text: String = (0..2000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    client.send_text(&text).unwrap();
    let units = pump(&mut client, &mut server);
    assert!(units.len() > 1, "expected several DATA frames");
    let mut joined = Vec::new();
    for (i, ev) in events(&mut server).into_iter().enumerate() {
        let Event::Fragment {
            kind,
            rsv,
            data,
            fin,
        } = ev
        else {
            panic!("{ev:?}")
        };
        assert_eq!(
            kind,
            if i == 0 {
                FragmentKind::Text
            } else {
                FragmentKind::Continuation
            }
        );
        assert_eq!(rsv, 0, "inflated data is handed over plain");
        joined.extend(data);
        assert_eq!(fin, i + 1 == units.len());
    }
    assert_eq!(joined, text.as_bytes());
}

#[test]
fn gateway_passes_rsv1_through_untouched() {
    // A proxy that does not terminate deflate: allow_rsv1 + deliver_fragments, no params.
    let p = params(false, false);
    let mut client = Connection::new(Role::Client, Framing::Stream, config(Some(p)));
    let proxy_config = Config {
        deliver_fragments: true,
        allow_rsv1: true,
        ..config(None)
    };
    let mut proxy = Connection::new(Role::Server, Framing::Stream, proxy_config);
    let mut backend = Connection::new(Role::Server, Framing::Native, config(Some(p)));
    client.send_text("through the gateway").unwrap();
    pump(&mut client, &mut proxy);
    let Some(Event::Fragment {
        kind,
        rsv,
        data,
        fin,
    }) = proxy.poll_event()
    else {
        panic!()
    };
    assert_eq!(rsv, 0b100);
    // Forward to a Native peer that does terminate deflate.
    let mut forward = Connection::new(Role::Client, Framing::Native, config(None));
    forward.send_fragment(kind, rsv, &data, fin).unwrap();
    pump(&mut forward, &mut backend);
    assert_eq!(
        events(&mut backend),
        [Event::Message(Message::Text("through the gateway".into()))]
    );
}
