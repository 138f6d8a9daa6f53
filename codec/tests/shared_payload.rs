//! The shared-payload send API (`send_binary_shared`, `send_text_owned`,
//! `poll_transmit_parts`): a payload that needs no change leaves as a reference to the caller's
//! bytes, not a copy, and arrives as the same message on every framing; where bytes must change
//! (a client's masking) it is copied as before.

use bytes::Bytes;
use h2ws_codec::{Config, Connection, Event, Framing, Message, Role};

fn deliver(from: &mut Connection, to: &mut Connection) -> Vec<Message> {
    while let Some(t) = from.poll_transmit_parts() {
        if from.framing() == Framing::Native {
            // One DATA frame = head + tail.
            let mut frame = t.head.clone();
            frame.extend_from_slice(t.tail.as_deref().unwrap_or(&[]));
            to.recv(&frame).expect("valid");
        } else {
            to.recv(&t.head).expect("valid");
            if let Some(tail) = &t.tail {
                to.recv(tail).expect("valid");
            }
        }
    }
    core::iter::from_fn(|| to.poll_event())
        .map(|e| match e {
            Event::Message(m) => m,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn a_servers_large_payload_leaves_uncopied_and_arrives_whole_on_every_framing() {
    for framing in [Framing::Rfc6455, Framing::Stream, Framing::Native] {
        let mut server = Connection::new(Role::Server, framing, Config::default());
        let mut client =
            Connection::new(Role::Client, framing, Config::default()).with_mask_seed([3; 32]);
        let payload = Bytes::from((0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        server.send_binary_shared(payload.clone()).expect("send");
        assert!(server.pending_bytes() >= payload.len());
        // The first part's tail points into the caller's buffer: no copy was made.
        let mut parts = Vec::new();
        while let Some(t) = server.poll_transmit_parts() {
            parts.push(t);
        }
        let first_tail = parts[0].tail.as_ref().expect("a shared tail");
        assert_eq!(
            first_tail.as_ptr(),
            payload.as_ptr(),
            "{framing:?}: not copied"
        );
        // Re-send and deliver for real.
        server.send_binary_shared(payload.clone()).expect("send");
        server.send_text_owned("é".repeat(2000)).expect("send text");
        let got = deliver(&mut server, &mut client);
        assert_eq!(
            got,
            vec![
                Message::Binary(payload.to_vec()),
                Message::Text("é".repeat(2000))
            ],
            "{framing:?}"
        );
        assert_eq!(server.pending_bytes(), 0);
    }
}

#[test]
fn small_payloads_and_masked_frames_are_copied_as_before() {
    // A client on RFC 6455 masks: its bytes must change, so they are copied (no tail).
    let mut client =
        Connection::new(Role::Client, Framing::Rfc6455, Config::default()).with_mask_seed([5; 32]);
    let mut server = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
    let payload = Bytes::from(vec![9u8; 50_000]);
    client.send_binary_shared(payload.clone()).expect("send");
    let t = client.poll_transmit_parts().expect("a frame");
    assert!(t.tail.is_none(), "masked: copied");
    server.recv(&t.head).expect("valid");
    assert!(
        matches!(server.poll_event(), Some(Event::Message(Message::Binary(b))) if b[..] == payload[..])
    );
    // A small payload goes with its header, one piece.
    let mut s2 = Connection::new(Role::Server, Framing::Stream, Config::default());
    s2.send_binary_shared(Bytes::from_static(b"tiny"))
        .expect("send");
    let t = s2.poll_transmit_parts().expect("a frame");
    assert!(t.tail.is_none());
    assert_eq!(t.head, b"\x82\x04tiny");
    // `poll_transmit` joins a shared frame into one piece.
    s2.send_binary_shared(payload.clone()).expect("send");
    let joined = s2.poll_transmit().expect("a frame");
    assert_eq!(joined.len(), 4 + payload.len());
    assert_eq!(&joined[4..], &payload[..]);
}
