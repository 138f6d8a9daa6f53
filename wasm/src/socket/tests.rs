//! Native tests of the WHATWG rules and the socket core on the codec.

use super::*;
use h2ws_codec::Config;

fn open_socket() -> SocketCore {
    let mut socket = SocketCore::new(Config::default());
    assert_eq!(socket.opened("chat", ""), vec![Output::Open]);
    socket
}

/// A server→client frame in stream framing (MASK = 0), payload < 126 bytes.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![first, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

/// What a socket that fails reports: `error`, then `close` 1006, not clean, no reason.
fn failed_unclean() -> Vec<Output> {
    vec![
        Output::Error,
        Output::Close {
            code: 1006,
            reason: String::new(),
            was_clean: false,
        },
    ]
}

/// What a completed close handshake reports: `close` with the peer's code and reason, clean.
fn closed_clean(code: u16, reason: &str) -> Vec<Output> {
    vec![Output::Close {
        code,
        reason: reason.into(),
        was_clean: true,
    }]
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    out.extend_from_slice(reason.as_bytes());
    out
}

#[test]
fn opened_sets_state_protocol_and_only_once() {
    let mut socket = open_socket();
    assert_eq!(socket.ready_state(), ReadyState::Open);
    assert_eq!(socket.protocol(), "chat");
    assert!(socket.opened("other", "").is_empty());
    assert_eq!(socket.protocol(), "chat");
}

#[test]
fn sends_frame_unmasked_and_account_buffered_amount() {
    let mut socket = open_socket();
    socket.send_text("héllo"); // 6 UTF-8 bytes
    socket.send_binary(&[1, 2, 3]);
    assert_eq!(socket.buffered_amount(), 9);
    let transmit = socket.take_transmit().unwrap();
    assert_eq!(transmit.app_bytes, 9);
    let mut expected = vec![0x81, 6];
    expected.extend_from_slice("héllo".as_bytes());
    expected.extend_from_slice(&[0x82, 3, 1, 2, 3]);
    assert_eq!(transmit.bytes, expected);
    assert!(socket.take_transmit().is_none());
    assert_eq!(
        socket.buffered_amount(),
        9,
        "still buffered until the transport took it"
    );
    socket.transmitted(transmit.app_bytes);
    assert_eq!(socket.buffered_amount(), 0);
}

#[test]
fn large_message_uses_extended_length() {
    let mut socket = open_socket();
    socket.send_binary(&vec![7u8; 70_000]);
    let transmit = socket.take_transmit().unwrap();
    assert_eq!(&transmit.bytes[..2], &[0x82, 127]);
    assert_eq!(
        u64::from_be_bytes(transmit.bytes[2..10].try_into().unwrap()),
        70_000
    );
    assert_eq!(transmit.bytes.len(), 10 + 70_000);
}

#[test]
fn reserved_sends_count_first_and_queue_later() {
    let mut socket = open_socket();
    socket.reserve(4);
    assert_eq!(socket.buffered_amount(), 4);
    assert!(socket.take_transmit().is_none());
    socket.send_reserved_binary(&[9, 9, 9, 9]);
    socket.send_reserved_text("ok");
    assert_eq!(
        socket.buffered_amount(),
        4,
        "reserved text was counted by its own reserve"
    );
    let transmit = socket.take_transmit().unwrap();
    assert_eq!(
        transmit.bytes,
        vec![0x82, 4, 9, 9, 9, 9, 0x81, 2, b'o', b'k']
    );
}

#[test]
fn client_close_handshake_is_clean_with_peer_code() {
    let mut socket = open_socket();
    assert_eq!(socket.close(Some(4001), "done"), CloseAction::SendClose);
    assert_eq!(socket.ready_state(), ReadyState::Closing);
    let transmit = socket.take_transmit().unwrap();
    assert_eq!(transmit.bytes, frame(0x88, &close_payload(4001, "done")));
    assert_eq!(transmit.app_bytes, 0);
    // A second close() is a no-op.
    assert_eq!(socket.close(Some(1000), ""), CloseAction::None);
    assert!(!socket.handshake_done());
    // Messages arriving while CLOSING are dropped (WHATWG).
    assert!(socket.recv(&frame(0x81, b"late")).is_empty());
    assert!(socket
        .recv(&frame(0x88, &close_payload(4001, "done")))
        .is_empty());
    assert!(socket.handshake_done());
    assert_eq!(socket.finish(), closed_clean(4001, "done"));
    assert_eq!(socket.ready_state(), ReadyState::Closed);
    assert!(socket.finish().is_empty());
}

#[test]
fn close_without_code_reports_1005() {
    let mut socket = open_socket();
    socket.close(None, "");
    assert_eq!(socket.take_transmit().unwrap().bytes, vec![0x88, 0]);
    socket.recv(&[0x88, 0]);
    assert_eq!(
        socket.finish(),
        vec![Output::Close {
            code: 1005,
            reason: String::new(),
            was_clean: true
        }]
    );
}

#[test]
fn sends_after_close_only_count() {
    let mut socket = open_socket();
    socket.close(Some(1000), "");
    socket.take_transmit().unwrap();
    socket.send_text("12345");
    socket.send_binary(&[0; 7]);
    assert_eq!(socket.buffered_amount(), 12);
    assert!(
        socket.take_transmit().is_none(),
        "nothing is sent after close()"
    );
    socket.recv(&frame(0x88, &close_payload(1000, "")));
    socket.finish();
    socket.send_text("x");
    assert_eq!(socket.buffered_amount(), 13);
}

#[test]
fn server_close_is_echoed_then_clean() {
    let mut socket = open_socket();
    let outputs = socket.recv(&frame(0x88, &close_payload(1001, "going")));
    assert!(outputs.is_empty());
    assert_eq!(socket.ready_state(), ReadyState::Closing);
    let echo = socket.take_transmit().unwrap();
    assert_eq!(&echo.bytes[..4], &[0x88, 2, 0x03, 0xe9]);
    assert!(socket.handshake_done());
    assert_eq!(socket.finish(), closed_clean(1001, "going"));
}

#[test]
fn messages_reassemble_across_any_chunking() {
    let mut socket = open_socket();
    let mut wire = frame(0x01, b"hel"); // text, not FIN
    wire.extend(frame(0x89, b"p")); // ping in between
    wire.extend(frame(0x80, "lo wörld".as_bytes())); // continuation, FIN
    wire.extend(frame(0x82, &[1, 2]));
    let mut outputs = Vec::new();
    for byte in &wire {
        outputs.extend(socket.recv(std::slice::from_ref(byte)));
    }
    assert_eq!(
        outputs,
        vec![
            Output::Message(Message::Text("hello wörld".into())),
            Output::Message(Message::Binary(vec![1, 2])),
        ]
    );
    // The ping was answered with a pong carrying its payload.
    assert_eq!(socket.take_transmit().unwrap().bytes, frame(0x8a, b"p"));
}

#[test]
fn masked_server_frame_fails_with_1002_on_the_wire_and_1006_locally() {
    let mut socket = open_socket();
    let outputs = socket.recv(&[0x81, 0x81, 1, 2, 3, 4, b'x' ^ 1]);
    assert!(outputs.is_empty());
    assert!(socket.must_fail());
    let close = socket.take_transmit().unwrap();
    assert_eq!(&close.bytes[..4], &[0x88, close.bytes[1], 0x03, 0xea]); // 1002
    assert_eq!(socket.fail(), failed_unclean());
    assert!(socket.fail().is_empty());
}

#[test]
fn invalid_utf8_fails_with_1007() {
    let mut socket = open_socket();
    socket.recv(&frame(0x81, &[0xff, 0xfe]));
    assert!(socket.must_fail());
    let close = socket.take_transmit().unwrap();
    assert_eq!(&close.bytes[2..4], &1007u16.to_be_bytes());
}

#[test]
fn eof_without_close_is_error_then_1006() {
    let mut socket = open_socket();
    assert!(socket.recv_eof().is_empty());
    assert!(socket.handshake_done());
    assert_eq!(socket.finish(), failed_unclean());
}

#[test]
fn close_while_connecting_aborts_then_fails() {
    let mut socket = SocketCore::new(Config::default());
    assert_eq!(socket.close(None, ""), CloseAction::AbortHandshake);
    assert_eq!(socket.ready_state(), ReadyState::Closing);
    assert!(
        socket.opened("", "").is_empty(),
        "a late open response is ignored"
    );
    assert_eq!(socket.fail().len(), 2);
    assert_eq!(socket.ready_state(), ReadyState::Closed);
}

#[test]
fn transport_choice() {
    let both = Some("stream, post");
    assert_eq!(choose_transport("auto", true, both), Ok(Transport::Stream));
    assert_eq!(
        choose_transport("auto", true, Some("post")),
        Ok(Transport::Post)
    );
    assert_eq!(choose_transport("auto", false, both), Ok(Transport::Post));
    assert_eq!(choose_transport("auto", true, None), Ok(Transport::Stream));
    assert_eq!(choose_transport("post", true, both), Ok(Transport::Post));
    assert_eq!(
        choose_transport("post", false, Some("post")),
        Ok(Transport::Post)
    );
    assert_eq!(
        choose_transport("stream", true, both),
        Ok(Transport::Stream)
    );
    // Forced `stream` where it cannot work fails (before `open`) with a reason to log.
    assert_eq!(
        choose_transport("stream", true, Some("post")),
        Err(SERVER_WITHOUT_STREAM)
    );
    assert_eq!(
        choose_transport("stream", false, both),
        Err(NO_REQUEST_STREAMING)
    );
}

#[test]
fn request_bodies_stream_only_to_https() {
    assert!(request_streaming_to("https:", true));
    assert!(!request_streaming_to("http:", true));
    assert!(!request_streaming_to("https:", false));
}

#[test]
fn forced_stream_without_request_streaming_fails_before_the_open_request() {
    assert_eq!(
        check_requested_transport("stream", false),
        Err(NO_REQUEST_STREAMING)
    );
    assert_eq!(check_requested_transport("stream", true), Ok(()));
    assert_eq!(check_requested_transport("auto", false), Ok(()));
    assert_eq!(check_requested_transport("post", false), Ok(()));
}

#[test]
fn chosen_protocol_must_be_offered() {
    let offered = vec!["chat".to_string()];
    assert!(check_protocol(&offered, "chat"));
    assert!(
        !check_protocol(&offered, ""),
        "offered but none chosen fails, as in Chromium"
    );
    assert!(!check_protocol(&offered, "superchat"));
    assert!(!check_protocol(&[], "chat"));
    assert!(check_protocol(&[], ""));
}

#[test]
fn large_messages_leave_as_fragments_of_at_most_one_mib() {
    let mut socket = SocketCore::new(client_config());
    socket.opened("", "");
    let data = vec![5u8; 2 * MAX_OUTGOING_FRAME + 10];
    socket.send_binary(&data);
    let transmit = socket.take_transmit().unwrap();
    assert_eq!(transmit.app_bytes, data.len());
    // Walk the frames: Binary (no FIN), Continuation (no FIN), Continuation + FIN.
    let mut at = 0;
    let mut firsts = Vec::new();
    let mut total = 0;
    while at < transmit.bytes.len() {
        let first = transmit.bytes[at];
        let (len, header) = match transmit.bytes[at + 1] {
            127 => (
                u64::from_be_bytes(transmit.bytes[at + 2..at + 10].try_into().unwrap()) as usize,
                10,
            ),
            126 => (
                u16::from_be_bytes(transmit.bytes[at + 2..at + 4].try_into().unwrap()) as usize,
                4,
            ),
            n => (n as usize, 2),
        };
        assert!(len <= MAX_OUTGOING_FRAME);
        firsts.push(first);
        total += len;
        at += header + len;
    }
    assert_eq!(firsts, vec![0x02, 0x00, 0x80]);
    assert_eq!(total, data.len());
}

#[test]
fn large_text_fragments_on_char_boundaries_and_reassembles() {
    let mut socket = SocketCore::new(client_config());
    socket.opened("", "");
    // 3-byte characters: 1 MiB is not a multiple of 3, so a naive split would cut one.
    let text = "€".repeat(MAX_OUTGOING_FRAME / 3 * 2 + 7);
    socket.send_text(&text);
    let bytes = socket.take_transmit().unwrap().bytes;
    // A peer on the same codec (server role, stream framing) gets the text back whole.
    let mut server = Connection::new(Role::Server, Framing::Stream, client_config());
    server.recv(&bytes).unwrap();
    match server.poll_event() {
        Some(Event::Message(Message::Text(got))) => assert_eq!(got, text),
        other => panic!("expected the text message, got {other:?}"),
    }
    assert_eq!(&bytes[..1], &[0x01], "first fragment is Text without FIN");
}

#[test]
fn utf8_chunks_respect_boundaries() {
    let pieces: Vec<&[u8]> = utf8_chunks("aé€😀", 3).collect();
    assert_eq!(
        pieces,
        vec!["aé".as_bytes(), "€".as_bytes(), "😀".as_bytes()]
    );
    assert!(pieces.iter().all(|p| std::str::from_utf8(p).is_ok()));
    assert_eq!(utf8_chunks("", 3).count(), 0);
}

#[test]
fn client_accepts_frames_as_large_as_a_message() {
    let config = client_config();
    assert_eq!(config.max_frame_size, MAX_MESSAGE_SIZE);
    assert_eq!(config.max_message_size, MAX_MESSAGE_SIZE);
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

#[test]
fn a_silent_downstream_times_out_after_the_browser_idle_timeout() {
    let idle = h2ws_codec::timer::BROWSER_IDLE_TIMEOUT.as_millis() as u64;
    let mut socket = open_socket();
    socket.start_timers(true, at(1_000));
    assert_eq!(socket.poll_timeout(), Some(at(1_000 + idle)));
    // Input postpones it; the browser never pings.
    let outputs = socket.recv_at(at(2_000), &frame(0x81, b"hi"));
    assert_eq!(outputs, vec![Output::Message(Message::Text("hi".into()))]);
    assert_eq!(socket.poll_timeout(), Some(at(2_000 + idle)));
    assert!(!socket.handle_timeout(at(1_999 + idle)));
    assert_eq!(socket.take_transmit(), None);
    assert!(socket.handle_timeout(at(2_000 + idle)));
    assert_eq!(socket.fail(), failed_unclean());
}

#[test]
fn a_pulling_reader_has_no_idle_timeout_but_a_close_timeout() {
    let close = h2ws_codec::timer::CLOSE_TIMEOUT.as_millis() as u64;
    let mut socket = open_socket();
    socket.start_timers(false, at(0));
    assert_eq!(socket.poll_timeout(), None);
    assert!(!socket.handle_timeout(at(u64::MAX / 2)));
    assert_eq!(socket.close(Some(1000), ""), CloseAction::SendClose);
    assert!(socket.take_transmit().is_some());
    // The start of the handshake is stamped by the next timer call, asked for at once.
    assert!(!socket.handle_timeout(at(u64::MAX / 2)));
    assert_eq!(socket.poll_timeout(), Some(at(u64::MAX / 2 + close)));
    assert!(socket.handle_timeout(at(u64::MAX / 2 + close)));
    assert!(socket.handshake_done());
}

/// Resume on the core: a lost transport changes nothing the page sees (no output, OPEN, sends
/// counted in `bufferedAmount`), and after the re-attach the frames the server lacks go first,
/// then what was sent meanwhile, each once.
#[test]
fn resume_keeps_the_socket_and_replays_what_the_server_lacks() {
    use h2ws_codec::resume::{parse_accept, ResumeConfig};
    use h2ws_codec::{Connection, Event, Framing, Message, Role, Timestamp};
    let t = Timestamp::from_millis;
    let mut socket = open_socket();
    let key = "k".repeat(43);
    let answer = ResumeConfig::default().accept(&key);
    assert!(socket.enable_resume(&parse_accept(&answer).unwrap()));
    let mut server = Connection::new(Role::Server, Framing::Stream, Config::default());
    assert!(server.enable_resume(ResumeConfig::default()));
    socket.send_text("one");
    socket.send_text("two");
    let first = socket.take_transmit().unwrap();
    // The server got only "one" before the loss.
    server.recv_at(t(1), &first.bytes[..5]).unwrap();
    assert!(socket.can_resume());
    assert!(socket.transport_lost(t(2)));
    assert!(socket.is_transport_lost());
    assert_eq!(socket.ready_state(), ReadyState::Open);
    socket.send_text("three");
    assert_eq!(socket.take_transmit(), None, "nothing leaves while lost");
    socket.transmitted(first.app_bytes);
    assert_eq!(
        socket.buffered_amount(),
        5,
        "the send while lost is counted"
    );
    assert!(server.transport_lost(t(3)));
    let server_received = server.resume(socket.resume_received(), t(4)).unwrap();
    assert_eq!(server_received, 1);
    assert_eq!(socket.resume(server_received, t(5)), Ok(0));
    let replay = socket.take_transmit().unwrap();
    assert_eq!(
        replay.app_bytes, 5,
        "only the new send counts as application bytes"
    );
    server.recv_at(t(6), &replay.bytes).unwrap();
    let mut got = Vec::new();
    while let Some(e) = server.poll_event() {
        if let Event::Message(Message::Text(text)) = e {
            got.push(text);
        }
    }
    assert_eq!(got, ["one", "two", "three"]);
}

/// With resume, large messages leave in frames that fit the replay buffer whole.
#[test]
fn resume_cuts_large_messages_into_replayable_frames() {
    use h2ws_codec::resume::{parse_accept, ResumeConfig};
    let mut socket = open_socket();
    let answer = ResumeConfig::default().accept(&"k".repeat(43));
    socket.enable_resume(&parse_accept(&answer).unwrap());
    socket.send_binary(&vec![7u8; 1 << 20]);
    // Four frames of 256 KiB: three fit the 1 MiB replay buffer with their headers, the
    // fourth waits for the server's acknowledgement (a tagged Pong).
    let first = socket.take_transmit().unwrap();
    assert_eq!(first.bytes.len(), 3 * ((256 << 10) + 10));
    socket.transmitted(first.app_bytes);
    // Held until acknowledged: its payload is counted, not its frame header.
    assert_eq!(socket.buffered_amount(), 256 << 10);
    let ack = h2ws_codec::resume::encode_ack(3);
    let mut pong = vec![0x8A, ack.len() as u8];
    pong.extend_from_slice(&ack);
    assert!(socket.recv(&pong).is_empty(), "an ack is no event");
    let rest = socket.take_transmit().unwrap();
    assert_eq!(rest.bytes.len(), (256 << 10) + 10);
    socket.transmitted(rest.app_bytes);
    assert_eq!(socket.buffered_amount(), 0);
}
