//! The native mapping at the HTTP/2 frame level, against a raw `h2` server on 127.0.0.1 (h2c):
//! one WebSocket frame per DATA frame, never larger than 16384 bytes, never split by flow
//! control (the server's stream window is barely larger than one frame), control frames,
//! the close handshake, and the ENABLE_CONNECT_PROTOCOL requirement.

use std::time::Duration;

use bytes::Bytes;
use h2ws::client::{Client, ClientConfig, Error, Message, OpenOptions, Transport, Trust};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const LIMIT: Duration = Duration::from_secs(20);
/// Barely more than one 16 KiB frame: the second frame must wait for a WINDOW_UPDATE.
const SERVER_STREAM_WINDOW: u32 = 20_000;

/// What the raw server saw of the client's native stream.
#[derive(Debug)]
struct Seen {
    method: String,
    scheme: Option<String>,
    forbidden_headers: Vec<String>,
    /// Each DATA frame's payload up to the Close, as h2 handed it over (one chunk per frame).
    frames: Vec<Bytes>,
    /// DATA frames after the Close (only the empty END_STREAM one is allowed).
    after_close: Vec<Bytes>,
    /// The client ended the stream (END_STREAM, not a reset).
    ended: bool,
}

/// Serves one native socket: sends "hel", a Ping, "lo" (three native frames), records every
/// DATA frame until the client's Close, answers Close 1000 with END_STREAM.
async fn raw_server(connect_protocol: bool) -> (u16, oneshot::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut builder = h2::server::Builder::new();
        builder.initial_window_size(SERVER_STREAM_WINDOW);
        if connect_protocol {
            builder.enable_connect_protocol();
        }
        let mut conn = builder.handshake::<_, Bytes>(tcp).await.unwrap();
        let Some(Ok((req, mut respond))) = conn.accept().await else {
            return;
        };
        // Keep the connection polled while the stream is served.
        tokio::spawn(async move { while conn.accept().await.is_some() {} });
        let (parts, mut body) = req.into_parts();
        let forbidden_headers = ["upgrade", "connection", "host", "sec-websocket-key"]
            .iter()
            .filter(|h| parts.headers.contains_key(**h))
            .map(|h| h.to_string())
            .collect();
        let mut send = respond
            .send_response(http::Response::new(()), false)
            .unwrap();
        for frame in [&b"\x01hel"[..], b"\x89p", b"\x80lo"] {
            send.send_data(Bytes::from_static(frame), false).unwrap();
        }
        let mut frames = Vec::new();
        while let Some(Ok(chunk)) = body.data().await {
            let _ = body.flow_control().release_capacity(chunk.len());
            let is_close = chunk.first() == Some(&0x88);
            frames.push(chunk);
            if is_close {
                send.send_data(Bytes::from_static(b"\x88\x03\xe8"), true)
                    .unwrap();
                break;
            }
        }
        // Wait for the client's END_STREAM after the close handshake.
        let mut after_close = Vec::new();
        while let Some(Ok(chunk)) = body.data().await {
            after_close.push(chunk);
        }
        let ended = body.is_end_stream();
        let _ = tx.send(Seen {
            method: parts.method.to_string(),
            scheme: parts.uri.scheme_str().map(str::to_owned),
            forbidden_headers,
            frames,
            after_close,
            ended,
        });
    });
    (port, rx)
}

fn client() -> Client {
    let mut config = ClientConfig::new(Trust::Certificates(vec![]));
    config.close_timeout = Duration::from_secs(3);
    Client::new(config)
}

#[tokio::test]
async fn client_native_one_frame_per_data_frame_under_flow_control() {
    let (port, seen) = raw_server(true).await;
    let url = format!("ws://127.0.0.1:{port}/native");
    let mut ws = client()
        .connect(&url, Transport::Native, &OpenOptions::default())
        .await
        .expect("open");
    // Three native frames from the server, a Ping among them: one message, and a Pong back.
    assert_eq!(
        ws.recv_timeout(LIMIT).await.unwrap(),
        Some(Message::Text("hello".into()))
    );
    // 0xF0 bytes would read as FIN + reserved bits if a frame were ever split across DATA
    // frames, so a split cannot go unnoticed below.
    let message = vec![0xF0u8; 100_000];
    ws.send_binary(&message).await.unwrap();
    ws.close(1000, "").await.unwrap();
    let status = ws.closed().await.unwrap();
    assert_eq!((status.code, status.clean), (1000, true));

    let seen = tokio::time::timeout(LIMIT, seen).await.unwrap().unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.scheme.as_deref(), Some("ws"));
    assert!(
        seen.forbidden_headers.is_empty(),
        "{:?}",
        seen.forbidden_headers
    );

    let mut data = Vec::new();
    let mut data_frames = 0;
    let mut pong = false;
    let mut close = None;
    for (i, f) in seen.frames.iter().enumerate() {
        assert!(
            !f.is_empty(),
            "frame {i}: empty DATA frame before END_STREAM"
        );
        assert!(
            f.len() <= 16_384,
            "frame {i}: DATA frame of {} bytes",
            f.len()
        );
        let (fin, rsv, opcode) = (f[0] & 0x80 != 0, f[0] & 0x70, f[0] & 0x0F);
        assert_eq!(rsv, 0, "frame {i}: reserved bits (a split frame?)");
        assert!(close.is_none(), "frame {i} after the Close frame");
        match opcode {
            0x2 | 0x0 => {
                assert_eq!(opcode == 0x2, data_frames == 0, "frame {i}: opcode order");
                data.extend_from_slice(&f[1..]);
                data_frames += 1;
                assert_eq!(fin, data.len() == message.len(), "frame {i}: FIN only last");
            }
            0xA => {
                assert_eq!(&f[1..], b"p", "the Pong echoes the Ping's payload");
                pong = true;
            }
            0x8 => close = Some(f[1..].to_vec()),
            other => panic!("frame {i}: unexpected opcode {other:#x}"),
        }
    }
    assert!(pong, "the client answered the Ping");
    assert_eq!(data, message, "the payloads join to the message");
    assert!(
        data_frames >= 7,
        "100 000 bytes need at least 7 frames of 16 KiB"
    );
    assert_eq!(close.as_deref(), Some(&[0x03, 0xE8][..]), "Close 1000");
    assert!(
        seen.after_close.iter().all(|f| f.is_empty()),
        "only an empty END_STREAM DATA frame may follow the Close: {:?}",
        seen.after_close
    );
    assert!(seen.ended, "the client ended its stream with END_STREAM");
}

#[tokio::test]
async fn client_native_and_rfc8441_need_enable_connect_protocol() {
    for transport in [Transport::Native, Transport::Rfc8441] {
        let (port, _seen) = raw_server(false).await;
        let url = format!("ws://127.0.0.1:{port}/native");
        let h2 = client().connect_h2(&url).await.unwrap();
        assert!(!h2.supports_extended_connect());
        let err = h2
            .open("/native", transport, &OpenOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::NoExtendedConnect),
            "{transport:?}: {err}"
        );
    }
}

/// What the raw server saw after sending one bad native frame.
#[derive(Debug)]
struct AfterBadFrame {
    frames: Vec<Bytes>,
    reset: Option<h2::Reason>,
}

/// Sends `bad` as one native frame, then records the client's DATA frames until the stream
/// ends or is reset.
async fn bad_frame_server(bad: &'static [u8]) -> (u16, oneshot::Receiver<AfterBadFrame>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut builder = h2::server::Builder::new();
        builder.enable_connect_protocol();
        let mut conn = builder.handshake::<_, Bytes>(tcp).await.unwrap();
        let Some(Ok((req, mut respond))) = conn.accept().await else {
            return;
        };
        tokio::spawn(async move { while conn.accept().await.is_some() {} });
        let mut body = req.into_body();
        let mut send = respond
            .send_response(http::Response::new(()), false)
            .unwrap();
        send.send_data(Bytes::from_static(bad), false).unwrap();
        let mut frames = Vec::new();
        let mut reset = None;
        loop {
            match body.data().await {
                Some(Ok(chunk)) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    if chunk.first() == Some(&0x88) {
                        // Answer the Close and end our side, as a peer does.
                        let _ = send.send_data(chunk.clone(), true);
                    }
                    frames.push(chunk);
                }
                Some(Err(e)) => {
                    reset = e.reason();
                    break;
                }
                None => break,
            }
        }
        let _ = tx.send(AfterBadFrame { frames, reset });
    });
    (port, rx)
}

#[tokio::test]
async fn client_native_protocol_errors_close_then_reset() {
    // (bad frame, the close code the client must send)
    let cases: [(&'static [u8], u16); 3] = [
        (b"\x83abc", 1002),      // reserved opcode
        (b"\x81\xff\xfe", 1007), // invalid UTF-8 in a text message
        (b"\x09p", 1002),        // fragmented (FIN = 0) Ping
    ];
    for (bad, code) in cases {
        let (port, seen) = bad_frame_server(bad).await;
        let mut ws = client()
            .connect(
                &format!("ws://127.0.0.1:{port}/bad"),
                Transport::Native,
                &OpenOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(ws.recv_timeout(LIMIT).await.unwrap(), None, "{bad:?}");
        assert_eq!(ws.close_status().unwrap().code, code, "{bad:?}");
        let seen = tokio::time::timeout(LIMIT, seen).await.unwrap().unwrap();
        let close = [0x88, (code >> 8) as u8, code as u8];
        assert_eq!(
            seen.frames.first().map(|f| &f[..3]),
            Some(&close[..]),
            "{bad:?}: the client's Close"
        );
        assert_eq!(
            seen.reset,
            Some(h2::Reason::PROTOCOL_ERROR),
            "{bad:?}: then RST_STREAM(PROTOCOL_ERROR)"
        );
    }
}
