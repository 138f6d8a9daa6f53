//! RFC 6455 §5.7 examples as fixed vectors, through the frame encoder and a `Connection`.

use h2ws_codec::mask::apply_mask;
use h2ws_codec::{Config, Connection, Event, FrameHeader, Framing, Message, OpCode, Role};

const HELLO_UNMASKED: [u8; 7] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const HELLO_MASKED: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
const HEL: [u8; 5] = [0x01, 0x03, 0x48, 0x65, 0x6c];
const LO: [u8; 4] = [0x80, 0x02, 0x6c, 0x6f];
const PING_HELLO: [u8; 7] = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const PONG_HELLO_MASKED: [u8; 11] = [
    0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

fn client() -> Connection {
    Connection::new(Role::Client, Framing::Rfc6455, Config::default()).with_mask_seed([0; 32])
}

fn server() -> Connection {
    Connection::new(Role::Server, Framing::Rfc6455, Config::default())
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

#[test]
fn single_frame_unmasked_text_to_client() {
    let mut c = client();
    c.recv(&HELLO_UNMASKED).unwrap();
    assert_eq!(
        events(&mut c),
        [Event::Message(Message::Text("Hello".into()))]
    );
}

#[test]
fn single_frame_masked_text_to_server() {
    let mut s = server();
    s.recv(&HELLO_MASKED).unwrap();
    assert_eq!(
        events(&mut s),
        [Event::Message(Message::Text("Hello".into()))]
    );
}

#[test]
fn fragmented_unmasked_text_to_client() {
    let mut c = client();
    c.recv(&HEL).unwrap();
    assert_eq!(events(&mut c), []);
    c.recv(&LO).unwrap();
    assert_eq!(
        events(&mut c),
        [Event::Message(Message::Text("Hello".into()))]
    );
}

#[test]
fn ping_then_masked_pong() {
    // The client gets the unmasked Ping and answers with a masked Pong carrying "Hello".
    let mut c = client();
    c.recv(&PING_HELLO).unwrap();
    assert_eq!(events(&mut c), [Event::Ping(b"Hello".to_vec())]);
    let pong = c.poll_transmit().unwrap();
    assert_eq!((pong[0], pong[1]), (0x8a, 0x85));
    let mut payload = pong[6..].to_vec();
    apply_mask(&mut payload, [pong[2], pong[3], pong[4], pong[5]], 0);
    assert_eq!(payload, b"Hello");
    // The RFC's masked Pong reaches a server as a Pong.
    let mut s = server();
    s.recv(&PONG_HELLO_MASKED).unwrap();
    assert_eq!(events(&mut s), [Event::Pong(b"Hello".to_vec())]);
}

#[test]
fn long_binary_lengths() {
    // 256 bytes and 64 KiB in a single unmasked frame.
    for (len, header) in [
        (256usize, &[0x82, 0x7E, 0x01, 0x00][..]),
        (65536, &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0][..]),
    ] {
        let mut s = server();
        s.send_binary(&vec![0x5a; len]).unwrap();
        let frame = s.poll_transmit().unwrap();
        assert_eq!(&frame[..header.len()], header);
        assert_eq!(frame.len(), header.len() + len);
        let mut c = client();
        c.recv(&frame).unwrap();
        assert_eq!(
            events(&mut c),
            [Event::Message(Message::Binary(vec![0x5a; len]))]
        );
    }
}

#[test]
fn encoder_reproduces_the_examples() {
    let mut out = Vec::new();
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Text,
        mask: None,
        payload_len: 5,
    }
    .encode_into(&mut out);
    out.extend_from_slice(b"Hello");
    assert_eq!(out, HELLO_UNMASKED);
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = Vec::new();
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Text,
        mask: Some(key),
        payload_len: 5,
    }
    .encode_into(&mut out);
    let start = out.len();
    out.extend_from_slice(b"Hello");
    apply_mask(&mut out[start..], key, 0);
    assert_eq!(out, HELLO_MASKED);
    let mut s = server();
    s.send_ping(b"Hello").unwrap();
    assert_eq!(s.poll_transmit().unwrap(), PING_HELLO);
    // Our server's own "Hello" is byte for byte the RFC's.
    s.send_text("Hello").unwrap();
    assert_eq!(s.poll_transmit().unwrap(), HELLO_UNMASKED);
}
