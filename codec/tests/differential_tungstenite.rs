//! Differential tests against `tungstenite` (the RFC 6455 implementation most Rust servers
//! use): the same frames, fragmented messages and close handshakes must mean the same thing
//! to both, and the same bad input must be refused by both.

use std::collections::VecDeque;
use std::io::{self, Cursor, Read, Write};

use h2ws_codec::{
    CloseCode, Config, Connection, Event, FragmentKind, FrameHeader, Framing, Message, OpCode,
    Parsed, ProtocolError, Role,
};
use proptest::prelude::*;
use tungstenite::protocol::frame::coding::{CloseCode as TCloseCode, Data, OpCode as TOpCode};
use tungstenite::protocol::frame::{
    CloseFrame as TCloseFrame, Frame as TFrame, FrameHeader as THeader,
};
use tungstenite::protocol::{Role as TRole, WebSocket};
use tungstenite::{Error as TError, Message as TMessage};

/// An in-memory transport: reads what the test put in, records what the socket wrote.
#[derive(Default)]
struct Pipe {
    input: VecDeque<u8>,
    output: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len());
        for (dst, src) in buf.iter_mut().zip(self.input.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tws(role: TRole) -> WebSocket<Pipe> {
    WebSocket::from_raw_socket(Pipe::default(), role, None)
}

/// Everything tungstenite reads until it would block (or ends).
fn tws_read_all(ws: &mut WebSocket<Pipe>) -> (Vec<TMessage>, Option<TError>) {
    let mut out = Vec::new();
    loop {
        match ws.read() {
            Ok(m) => out.push(m),
            Err(TError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn ours_to_t(conn: &mut Connection, ws: &mut WebSocket<Pipe>) {
    while let Some(bytes) = conn.poll_transmit() {
        ws.get_mut().input.extend(bytes);
    }
}

fn t_to_ours(ws: &mut WebSocket<Pipe>, conn: &mut Connection) -> Result<(), ProtocolError> {
    let _ = ws.flush();
    let bytes = std::mem::take(&mut ws.get_mut().output);
    conn.recv(&bytes)
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

#[derive(Clone, Debug)]
enum Op {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    /// (is_text, pieces): a message in several frames.
    Fragmented(bool, Vec<Vec<u8>>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<String>().prop_map(Op::Text),
        prop::collection::vec(any::<u8>(), 0..70_000).prop_map(Op::Binary),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Op::Ping),
        (any::<String>(), 1usize..5).prop_map(|(s, n)| {
            // Split text at arbitrary byte positions (possibly inside a character).
            let b = s.into_bytes();
            let step = b.len() / n + 1;
            let mut pieces: Vec<Vec<u8>> = b.chunks(step).map(<[u8]>::to_vec).collect();
            if pieces.is_empty() {
                pieces.push(Vec::new());
            }
            Op::Fragmented(true, pieces)
        }),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 1..4)
            .prop_map(|p| Op::Fragmented(false, p)),
    ]
}

fn joined(pieces: &[Vec<u8>]) -> Vec<u8> {
    pieces.concat()
}

fn ours_send(conn: &mut Connection, op: &Op) {
    match op {
        Op::Text(s) => conn.send_text(s).unwrap(),
        Op::Binary(b) => conn.send_binary(b).unwrap(),
        Op::Ping(p) => conn.send_ping(p).unwrap(),
        Op::Fragmented(text, pieces) => {
            for (i, piece) in pieces.iter().enumerate() {
                let kind = match (i, text) {
                    (0, true) => FragmentKind::Text,
                    (0, false) => FragmentKind::Binary,
                    _ => FragmentKind::Continuation,
                };
                conn.send_fragment(kind, 0, piece, i + 1 == pieces.len())
                    .unwrap();
            }
        }
    }
}

fn t_send(ws: &mut WebSocket<Pipe>, op: &Op) {
    match op {
        Op::Text(s) => ws.send(TMessage::text(s.clone())).unwrap(),
        Op::Binary(b) => ws.send(TMessage::binary(b.clone())).unwrap(),
        Op::Ping(p) => ws.send(TMessage::Ping(p.clone().into())).unwrap(),
        Op::Fragmented(text, pieces) => {
            for (i, piece) in pieces.iter().enumerate() {
                let data = match (i, text) {
                    (0, true) => Data::Text,
                    (0, false) => Data::Binary,
                    _ => Data::Continue,
                };
                let frame =
                    TFrame::message(piece.clone(), TOpCode::Data(data), i + 1 == pieces.len());
                ws.send(TMessage::Frame(frame)).unwrap();
            }
        }
    }
}

fn as_t_message(op: &Op) -> TMessage {
    match op {
        Op::Text(s) => TMessage::text(s.clone()),
        Op::Binary(b) => TMessage::binary(b.clone()),
        Op::Ping(p) => TMessage::Ping(p.clone().into()),
        Op::Fragmented(true, p) => TMessage::text(String::from_utf8(joined(p)).unwrap()),
        Op::Fragmented(false, p) => TMessage::binary(joined(p)),
    }
}

fn as_event(op: &Op) -> Event {
    match op {
        Op::Text(s) => Event::Message(Message::Text(s.clone())),
        Op::Binary(b) => Event::Message(Message::Binary(b.clone())),
        Op::Ping(p) => Event::Ping(p.clone()),
        Op::Fragmented(true, p) => {
            Event::Message(Message::Text(String::from_utf8(joined(p)).unwrap()))
        }
        Op::Fragmented(false, p) => Event::Message(Message::Binary(joined(p))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Our client (masking with seeded keys) → tungstenite server, then a close we start.
    #[test]
    fn our_client_to_tungstenite_server(ops in prop::collection::vec(op(), 0..6), seed in any::<[u8; 32]>()) {
        let mut client = Connection::new(Role::Client, Framing::Rfc6455, Config::default()).with_mask_seed(seed);
        let mut server = tws(TRole::Server);
        for op in &ops {
            ours_send(&mut client, op);
            ours_to_t(&mut client, &mut server);
        }
        let (got, err) = tws_read_all(&mut server);
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(got, ops.iter().map(as_t_message).collect::<Vec<_>>());
        // tungstenite answered every Ping; our client reports the Pongs.
        t_to_ours(&mut server, &mut client).unwrap();
        let pongs: Vec<Event> = ops.iter().filter_map(|op| match op {
            Op::Ping(p) => Some(Event::Pong(p.clone())),
            _ => None,
        }).collect();
        prop_assert_eq!(events(&mut client), pongs);

        client.close(Some(CloseCode(4001)), "done").unwrap();
        ours_to_t(&mut client, &mut server);
        let (got, _) = tws_read_all(&mut server);
        prop_assert_eq!(got, vec![TMessage::Close(Some(TCloseFrame { code: TCloseCode::from(4001), reason: "done".into() }))]);
        t_to_ours(&mut server, &mut client).unwrap();
        // tungstenite echoes the reason too.
        prop_assert_eq!(events(&mut client), vec![Event::Closed { code: CloseCode(4001), reason: "done".into(), clean: true }]);
        prop_assert!(client.is_closed());
    }

    /// tungstenite client (its own masking) → our server, then a close tungstenite starts.
    #[test]
    fn tungstenite_client_to_our_server(ops in prop::collection::vec(op(), 0..6), chunk in 1usize..3000) {
        let mut client = tws(TRole::Client);
        let mut server = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
        for op in &ops {
            t_send(&mut client, op);
        }
        let bytes = std::mem::take(&mut client.get_mut().output);
        for piece in bytes.chunks(chunk) {
            server.recv(piece).unwrap();
        }
        prop_assert_eq!(events(&mut server), ops.iter().map(as_event).collect::<Vec<_>>());
        // Our auto-Pongs reach tungstenite as Pongs with the same payloads.
        ours_to_t(&mut server, &mut client);
        let (got, _) = tws_read_all(&mut client);
        let pongs: Vec<TMessage> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Ping(p) => Some(TMessage::Pong(p.clone().into())),
                _ => None,
            })
            .collect();
        prop_assert_eq!(got, pongs);

        client.close(Some(TCloseFrame { code: TCloseCode::Away, reason: "bye".into() })).unwrap();
        t_to_ours(&mut client, &mut server).unwrap();
        ours_to_t(&mut server, &mut client);
        prop_assert_eq!(events(&mut server), vec![Event::Closed { code: CloseCode::GOING_AWAY, reason: "bye".into(), clean: true }]);
        // tungstenite sees our echo and completes its handshake.
        let (got, err) = tws_read_all(&mut client);
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(got, vec![TMessage::Close(Some(TCloseFrame { code: TCloseCode::Away, reason: "".into() }))]);
    }

    /// Our server's frames as tungstenite's client reads them.
    #[test]
    fn our_server_to_tungstenite_client(ops in prop::collection::vec(op(), 0..6)) {
        let mut server = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
        let mut client = tws(TRole::Client);
        for op in &ops {
            ours_send(&mut server, op);
            ours_to_t(&mut server, &mut client);
        }
        let (got, err) = tws_read_all(&mut client);
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(got, ops.iter().map(as_t_message).collect::<Vec<_>>());
    }

    /// Header parsing agrees with tungstenite on arbitrary bytes wherever both accept, and
    /// every disagreement is a rule tungstenite does not check (reserved opcodes, minimal
    /// length encoding, the 64-bit length's top bit).
    #[test]
    fn header_parse_agrees(input in prop::collection::vec(any::<u8>(), 0..16)) {
        let mut cursor = Cursor::new(&input);
        let theirs = THeader::parse(&mut cursor);
        let ours = FrameHeader::parse(&input);
        if theirs.is_err() {
            // tungstenite refuses reserved opcodes once the header is complete; so do we
            // (earlier, from byte 0).
            prop_assert!(matches!(ours, Err(ProtocolError::ReservedOpcode(_))), "{:?}", ours);
            return Ok(());
        }
        let theirs = theirs.unwrap();
        match ours {
            Ok(Parsed::Complete { value, consumed }) => {
                let (t, len) = theirs.expect("tungstenite needs no more bytes than we do");
                prop_assert_eq!(cursor.position() as usize, consumed);
                prop_assert_eq!(len, value.payload_len);
                prop_assert_eq!(t.is_final, value.fin);
                prop_assert_eq!((t.rsv1, t.rsv2, t.rsv3), (value.rsv & 4 != 0, value.rsv & 2 != 0, value.rsv & 1 != 0));
                prop_assert_eq!(u8::from(t.opcode), value.opcode.as_u8());
                prop_assert_eq!(t.mask, value.mask);
            }
            Ok(Parsed::Partial { .. }) => prop_assert!(theirs.is_none()),
            Err(ProtocolError::ReservedOpcode(op)) => prop_assert!(OpCode::from_u8(op).is_err()),
            Err(ProtocolError::NonMinimalLength) => {
                let (_, len) = theirs.unwrap();
                let short = if input[1] & 0x7F == 126 { len < 126 } else { len <= 0xFFFF };
                prop_assert!(short);
            }
            Err(ProtocolError::LengthTooLarge) => prop_assert!(input[2] & 0x80 != 0),
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }

    /// Frames tungstenite formats (any fields, any length class) parse to the same fields here.
    #[test]
    fn tungstenite_frames_parse_here(
        fin in any::<bool>(), rsv in 0u8..8, op in prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
        mask in any::<Option<[u8; 4]>>(), payload in prop::collection::vec(any::<u8>(), 0..70_000),
    ) {
        let header = THeader { is_final: fin, rsv1: rsv & 4 != 0, rsv2: rsv & 2 != 0, rsv3: rsv & 1 != 0, opcode: TOpCode::from(op), mask };
        let mut bytes = Vec::new();
        TFrame::from_payload(header, payload.clone().into()).format(&mut bytes).unwrap();
        let Ok(Parsed::Complete { value, consumed }) = FrameHeader::parse(&bytes) else {
            return Err(TestCaseError::fail("tungstenite's frame did not parse"));
        };
        prop_assert_eq!((value.fin, value.rsv, value.opcode.as_u8(), value.mask), (fin, rsv, op, mask));
        prop_assert_eq!(value.payload_len as usize, payload.len());
        let mut body = bytes[consumed..].to_vec();
        if let Some(key) = value.mask {
            h2ws_codec::mask::apply_mask(&mut body, key, 0);
        }
        prop_assert_eq!(body, payload);
    }
}

/// Masked client frame bytes (key 0) as a server reads them.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

/// The same bad input is refused by tungstenite and by us, with the close code RFC 6455 asks.
#[test]
fn both_refuse_bad_input() {
    let cases: Vec<(&str, Vec<u8>, CloseCode)> = vec![
        (
            "reserved opcode",
            client_frame(0x83, b""),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "reserved control opcode",
            client_frame(0x8B, b""),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "RSV1 unnegotiated",
            client_frame(0xC1, b"x"),
            CloseCode::PROTOCOL_ERROR,
        ),
        ("RSV3", client_frame(0x92, b"x"), CloseCode::PROTOCOL_ERROR),
        (
            "fragmented ping",
            client_frame(0x09, b""),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "ping over 125",
            client_frame(0x89, &[0; 126]),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "continuation first",
            client_frame(0x80, b"x"),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "text inside fragmented message",
            [client_frame(0x01, b"a"), client_frame(0x81, b"b")].concat(),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "unmasked client frame",
            vec![0x81, 0x01, b'x'],
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "invalid UTF-8",
            client_frame(0x81, &[0xCE, 0xBA, 0xED, 0xA0, 0x80]),
            CloseCode::INVALID_PAYLOAD,
        ),
        (
            "invalid UTF-8 across fragments",
            [client_frame(0x01, &[0xF0]), client_frame(0x80, &[0x28])].concat(),
            CloseCode::INVALID_PAYLOAD,
        ),
        (
            "text ends mid-character",
            client_frame(0x81, &[0xE2, 0x82]),
            CloseCode::INVALID_PAYLOAD,
        ),
        (
            "close with 1 byte",
            client_frame(0x88, &[0x03]),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "close reason not UTF-8",
            client_frame(0x88, &[0x03, 0xE8, 0xFF]),
            CloseCode::INVALID_PAYLOAD,
        ),
    ];
    for (name, bytes, code) in cases {
        let mut theirs = tws(TRole::Server);
        theirs.get_mut().input.extend(bytes.iter());
        let (_, err) = tws_read_all(&mut theirs);
        assert!(
            matches!(err, Some(TError::Protocol(_)) | Some(TError::Utf8(_))),
            "tungstenite accepted {name}: {err:?}"
        );
        let mut ours = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
        let got = ours.recv(&bytes).expect_err(name);
        assert_eq!(got.close_code(), code, "{name}");
    }
}

/// The Close a server answers with, as a code: tungstenite's reply next to ours.
fn close_reply_code(output: &[u8]) -> Option<u16> {
    match output {
        [0x88, len, hi, lo, ..] if *len >= 2 => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}

/// Close codes: tungstenite answers the same reserved/unassigned codes with 1002, as we do.
#[test]
fn both_refuse_bad_close_codes() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let bytes = client_frame(0x88, &code.to_be_bytes());
        let mut theirs = tws(TRole::Server);
        theirs.get_mut().input.extend(bytes.iter());
        let _ = tws_read_all(&mut theirs);
        let _ = theirs.flush();
        assert_eq!(
            close_reply_code(&theirs.get_ref().output),
            Some(1002),
            "tungstenite, close {code}"
        );
        let mut ours = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
        assert_eq!(
            ours.recv(&bytes),
            Err(ProtocolError::InvalidCloseCode(code))
        );
        assert_eq!(close_reply_code(&ours.poll_transmit().unwrap()), Some(1002));
    }
    for code in [1000u16, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
        let bytes = client_frame(0x88, &code.to_be_bytes());
        let mut theirs = tws(TRole::Server);
        theirs.get_mut().input.extend(bytes.iter());
        let (got, _) = tws_read_all(&mut theirs);
        assert!(
            matches!(&got[..], [TMessage::Close(Some(_))]),
            "tungstenite refused close {code}"
        );
        let mut ours = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
        ours.recv(&bytes).unwrap();
    }
}
