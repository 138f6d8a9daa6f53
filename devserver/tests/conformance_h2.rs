//! The Autobahn|Testsuite case categories replayed over the HTTP/2 transports (issue 7 item 3).
//!
//! One table of cases — framing, ping/pong, reserved bits, opcodes, fragmentation, UTF-8 (with
//! fail-fast), close codes, limits, permessage-deflate — each a list of raw frames to send and
//! the server's answers to observe. Every case runs on `/ws/echo` over RFC 6455 (HTTP/1.1, the
//! path Autobahn itself tests: the reference) and over `native`, `rfc8441` and `stream`. The
//! reference must give the table's expected answers, and every HTTP/2 transport must give
//! exactly what the reference gave.
//!
//! Frames are written raw, so invalid ones can be sent: RFC 6455 frames (masked) on HTTP/1.1
//! and RFC 8441, stream framing (MASK = 0) on `stream`, one frame per DATA frame on `native`
//! (payloads over a DATA frame are cut into continuation frames, as the mapping requires;
//! byte-level length encodings do not exist there, so those cases are byte-stream only).
//! Answers are read with the codec as a client. Where Autobahn sends a valid message and a bad
//! frame in one write (its NON-STRICT cases), the replay waits for the echo first, so the
//! verdict is deterministic on every path.

mod common;

use bytes::Bytes;
use common::*;
use h2ws::SocketConfig;
use h2ws_codec::deflate::{self, DeflateParams};
use h2ws_codec::{Config, Connection, Event, Framing, Message, Role};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Server limits for the "limits" category.
const MAX_MESSAGE: usize = 1 << 20;
/// How long one expected answer may take.
const ANSWER: Duration = Duration::from_secs(10);

/// One frame as sent, whatever its validity.
#[derive(Clone, Debug)]
struct F {
    fin: bool,
    rsv: u8,
    op: u8,
    payload: Vec<u8>,
}

fn f(fin: bool, rsv: u8, op: u8, payload: impl Into<Vec<u8>>) -> F {
    F {
        fin,
        rsv,
        op,
        payload: payload.into(),
    }
}
fn text(s: &str) -> F {
    f(true, 0, 1, s.as_bytes())
}
fn binary(b: impl Into<Vec<u8>>) -> F {
    f(true, 0, 2, b)
}
fn ping(p: &[u8]) -> F {
    f(true, 0, 9, p)
}
fn close(code: u16, reason: &[u8]) -> F {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    f(true, 0, 8, p)
}

#[derive(Clone, Debug)]
enum Step {
    Send(F),
    /// Raw bytes on the byte-stream framings (Rfc6455 masked by the runner is not applied:
    /// the bytes are the frame header only, payload follows as given). Skipped on native.
    SendRawHeader(Vec<u8>),
    /// A text message compressed with the negotiated permessage-deflate parameters.
    SendDeflated(String),
    /// Observe the server's next answer (Pings from the server are skipped).
    Recv,
}

/// What the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Obs {
    Text(String),
    Binary(usize, u32),
    Pong(Vec<u8>),
    Close(u16),
    Nothing,
}

struct Case {
    id: &'static str,
    deflate: bool,
    byte_stream_only: bool,
    steps: Vec<Step>,
    expect: Vec<Obs>,
}

fn checksum(b: &[u8]) -> u32 {
    b.iter().fold(2166136261u32, |h, &x| {
        (h ^ u32::from(x)).wrapping_mul(16777619)
    })
}
fn bin_obs(b: &[u8]) -> Obs {
    Obs::Binary(b.len(), checksum(b))
}
fn case(id: &'static str, steps: Vec<Step>, expect: Vec<Obs>) -> Case {
    Case {
        id,
        deflate: false,
        byte_stream_only: false,
        steps,
        expect,
    }
}
use Step::{Recv, Send};

fn cases() -> Vec<Case> {
    let t = |s: &str| Obs::Text(s.into());
    let c = Obs::Close;
    let big = |n: usize| pattern(n);
    let mut v = vec![
        // 1.x framing
        case("1.1.1 empty text", vec![Send(text("")), Recv], vec![t("")]),
        case(
            "1.1.2 text 125",
            vec![Send(text(&"*".repeat(125))), Recv],
            vec![t(&"*".repeat(125))],
        ),
        case(
            "1.1.3 text 126",
            vec![Send(text(&"*".repeat(126))), Recv],
            vec![t(&"*".repeat(126))],
        ),
        case(
            "1.1.4 text 65535",
            vec![Send(text(&"*".repeat(65535))), Recv],
            vec![t(&"*".repeat(65535))],
        ),
        case(
            "1.1.5 text 65536",
            vec![Send(text(&"*".repeat(65536))), Recv],
            vec![t(&"*".repeat(65536))],
        ),
        case(
            "1.2.1 empty binary",
            vec![Send(binary(vec![])), Recv],
            vec![bin_obs(&[])],
        ),
        case(
            "1.2.4 binary 65535",
            vec![Send(binary(big(65535))), Recv],
            vec![bin_obs(&big(65535))],
        ),
        case(
            "1.2.6 binary 65536",
            vec![Send(binary(big(65536))), Recv],
            vec![bin_obs(&big(65536))],
        ),
        // 2.x ping/pong
        case(
            "2.1 empty ping",
            vec![Send(ping(b"")), Recv],
            vec![Obs::Pong(vec![])],
        ),
        case(
            "2.2 ping with text",
            vec![Send(ping(b"Hello, world!")), Recv],
            vec![Obs::Pong(b"Hello, world!".to_vec())],
        ),
        case(
            "2.3 ping with binary",
            vec![Send(ping(&[0, 0xFF, 0xFE, 0xFD])), Recv],
            vec![Obs::Pong(vec![0, 0xFF, 0xFE, 0xFD])],
        ),
        case(
            "2.4 ping 125",
            vec![Send(ping(&[0xFE; 125])), Recv],
            vec![Obs::Pong(vec![0xFE; 125])],
        ),
        case(
            "2.5 ping 126",
            vec![Send(ping(&[0xFE; 126])), Recv],
            vec![c(1002)],
        ),
        case(
            "2.6 ping 125 and echo",
            vec![Send(ping(&[0xAB; 125])), Recv, Send(text("after")), Recv],
            vec![Obs::Pong(vec![0xAB; 125]), t("after")],
        ),
        case(
            "2.7 unsolicited pong",
            vec![Send(f(true, 0, 10, b"x".to_vec())), Send(text("x")), Recv],
            vec![t("x")],
        ),
        case(
            "2.8 unsolicited pong then ping",
            vec![Send(f(true, 0, 10, b"u".to_vec())), Send(ping(b"p")), Recv],
            vec![Obs::Pong(b"p".to_vec())],
        ),
        case(
            "2.10 ten pings",
            (0..10).flat_map(|i| [Send(ping(&[i])), Recv]).collect(),
            (0..10).map(|i| Obs::Pong(vec![i])).collect(),
        ),
        // 3.x reserved bits
        case(
            "3.1 text rsv=1",
            vec![Send(f(true, 1, 1, b"x".to_vec())), Recv],
            vec![c(1002)],
        ),
        case(
            "3.2 rsv=2 after a message",
            vec![
                Send(text("ok")),
                Recv,
                Send(f(true, 2, 1, b"x".to_vec())),
                Recv,
            ],
            vec![t("ok"), c(1002)],
        ),
        case(
            "3.3 rsv=3",
            vec![Send(f(true, 3, 1, b"x".to_vec())), Recv],
            vec![c(1002)],
        ),
        case(
            "3.4 rsv=4 (RSV1) without deflate",
            vec![Send(f(true, 4, 1, b"x".to_vec())), Recv],
            vec![c(1002)],
        ),
        case(
            "3.5 binary rsv=5",
            vec![Send(f(true, 5, 2, vec![1])), Recv],
            vec![c(1002)],
        ),
        case(
            "3.6 ping rsv=6",
            vec![Send(f(true, 6, 9, vec![])), Recv],
            vec![c(1002)],
        ),
        case(
            "3.7 close rsv=7",
            vec![Send(f(true, 7, 8, vec![0x03, 0xE8])), Recv],
            vec![c(1002)],
        ),
        // 4.x opcodes
        case(
            "4.1.1 opcode 3",
            vec![Send(f(true, 0, 3, vec![])), Recv],
            vec![c(1002)],
        ),
        case(
            "4.1.2 opcode 4 with payload",
            vec![Send(f(true, 0, 4, b"r".to_vec())), Recv],
            vec![c(1002)],
        ),
        case(
            "4.1.3 opcode 5 after a message",
            vec![Send(text("ok")), Recv, Send(f(true, 0, 5, vec![])), Recv],
            vec![t("ok"), c(1002)],
        ),
        case(
            "4.2.1 opcode 11",
            vec![Send(f(true, 0, 11, vec![])), Recv],
            vec![c(1002)],
        ),
        case(
            "4.2.5 opcode 15",
            vec![Send(f(true, 0, 15, b"r".to_vec())), Recv],
            vec![c(1002)],
        ),
        // 5.x fragmentation
        case(
            "5.1 fragmented ping",
            vec![
                Send(f(false, 0, 9, b"a".to_vec())),
                Send(f(true, 0, 0, b"b".to_vec())),
                Recv,
            ],
            vec![c(1002)],
        ),
        case(
            "5.2 fragmented pong",
            vec![Send(f(false, 0, 10, b"a".to_vec())), Recv],
            vec![c(1002)],
        ),
        case(
            "5.3 text in 2 fragments",
            vec![
                Send(f(false, 0, 1, b"frag".to_vec())),
                Send(f(true, 0, 0, b"ment".to_vec())),
                Recv,
            ],
            vec![t("fragment")],
        ),
        case(
            "5.6 ping between fragments",
            vec![
                Send(f(false, 0, 1, b"frag".to_vec())),
                Send(ping(b"mid")),
                Recv,
                Send(f(true, 0, 0, b"ment".to_vec())),
                Recv,
            ],
            vec![Obs::Pong(b"mid".to_vec()), t("fragment")],
        ),
        case(
            "5.9 continuation without a message",
            vec![Send(f(true, 0, 0, b"x".to_vec())), Recv],
            vec![c(1002)],
        ),
        case(
            "5.13 continuation fin=0 without a message",
            vec![Send(f(false, 0, 0, b"x".to_vec())), Recv],
            vec![c(1002)],
        ),
        case(
            "5.18 text inside a fragmented text",
            vec![Send(f(false, 0, 1, b"a".to_vec())), Send(text("b")), Recv],
            vec![c(1002)],
        ),
        case(
            "5.19 many fragments with pings",
            {
                let mut s = vec![];
                for i in 0..5u8 {
                    s.push(Send(f(
                        false,
                        0,
                        if i == 0 { 1 } else { 0 },
                        vec![b'a' + i],
                    )));
                    s.push(Send(ping(&[i])));
                    s.push(Recv);
                }
                s.push(Send(f(true, 0, 0, b"!".to_vec())));
                s.push(Recv);
                s
            },
            {
                let mut e: Vec<Obs> = (0..5u8).map(|i| Obs::Pong(vec![i])).collect();
                e.push(t("abcde!"));
                e
            },
        ),
        // 6.x UTF-8
        case(
            "6.2.1 valid multi-byte text",
            vec![Send(text("κόσμε € 𝄞")), Recv],
            vec![t("κόσμε € 𝄞")],
        ),
        case(
            "6.2.3 code points split across fragments",
            vec![
                Send(f(false, 0, 1, "κό".as_bytes()[..3].to_vec())),
                Send(f(true, 0, 0, "κόσμε".as_bytes()[3..].to_vec())),
                Recv,
            ],
            vec![t("κόσμε")],
        ),
        case(
            "6.3.1 invalid byte",
            vec![Send(f(true, 0, 1, vec![b'a', 0xFF])), Recv],
            vec![c(1007)],
        ),
        case(
            "6.4.1 fail fast in the first fragment",
            vec![
                Send(f(
                    false,
                    0,
                    1,
                    vec![
                        0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xF4,
                        0x90, 0x80, 0x80,
                    ],
                )),
                Recv,
            ],
            vec![c(1007)],
        ),
        case(
            "6.6.x overlong encoding",
            vec![Send(f(true, 0, 1, vec![0xC0, 0x80])), Recv],
            vec![c(1007)],
        ),
        case(
            "6.x surrogate",
            vec![Send(f(true, 0, 1, vec![0xED, 0xA0, 0x80])), Recv],
            vec![c(1007)],
        ),
        case(
            "6.x truncated at the end",
            vec![Send(f(true, 0, 1, vec![b'a', 0xE2, 0x82])), Recv],
            vec![c(1007)],
        ),
        case(
            "6.x truncated across the final fragment",
            vec![
                Send(f(false, 0, 1, vec![0xE2])),
                Send(f(true, 0, 0, vec![0x82])),
                Recv,
            ],
            vec![c(1007)],
        ),
        // 7.x close
        case(
            "7.1.1 close 1000 after a message",
            vec![Send(text("bye")), Recv, Send(close(1000, b"")), Recv],
            vec![t("bye"), c(1000)],
        ),
        case(
            "7.3.1 close without payload",
            vec![Send(f(true, 0, 8, vec![])), Recv],
            vec![c(1000)],
        ),
        case(
            "7.3.2 close with 1 byte",
            vec![Send(f(true, 0, 8, vec![0x03])), Recv],
            vec![c(1002)],
        ),
        case(
            "7.3.3 close with reason",
            vec![Send(close(1000, b"goodbye")), Recv],
            vec![c(1000)],
        ),
        case(
            "7.3.4 close reason 123 bytes",
            vec![Send(close(1000, &[b'*'; 123])), Recv],
            vec![c(1000)],
        ),
        case(
            "7.3.5 close reason invalid UTF-8",
            vec![Send(close(1000, &[0xFF])), Recv],
            vec![c(1007)],
        ),
        case(
            "7.3.6 close payload 126 bytes",
            vec![Send(close(1000, &[b'*'; 124])), Recv],
            vec![c(1002)],
        ),
        case(
            "7.7.x close 1001",
            vec![Send(close(1001, b"")), Recv],
            vec![c(1001)],
        ),
        case(
            "7.7.x close 1011",
            vec![Send(close(1011, b"")), Recv],
            vec![c(1011)],
        ),
        case(
            "7.7.x close 3000",
            vec![Send(close(3000, b"")), Recv],
            vec![c(3000)],
        ),
        case(
            "7.7.x close 4999",
            vec![Send(close(4999, b"")), Recv],
            vec![c(4999)],
        ),
        case(
            "7.9.1 close 0",
            vec![Send(close(0, b"")), Recv],
            vec![c(1002)],
        ),
        case(
            "7.9.x close 999",
            vec![Send(close(999, b"")), Recv],
            vec![c(1002)],
        ),
        case(
            "7.9.x close 1004",
            vec![Send(close(1004, b"")), Recv],
            vec![c(1002)],
        ),
        case(
            "7.9.x close 1005",
            vec![Send(close(1005, b"")), Recv],
            vec![c(1002)],
        ),
        case(
            "7.9.x close 1006",
            vec![Send(close(1006, b"")), Recv],
            vec![c(1002)],
        ),
        case(
            "7.9.x close 1016",
            vec![Send(close(1016, b"")), Recv],
            vec![c(1002)],
        ),
        case(
            "7.9.x close 2000",
            vec![Send(close(2000, b"")), Recv],
            vec![c(1002)],
        ),
        case(
            "7.9.x close 5000",
            vec![Send(close(5000, b"")), Recv],
            vec![c(1002)],
        ),
        case(
            "7.5.1 data after close is ignored",
            vec![Send(close(1000, b"")), Send(text("late")), Recv],
            vec![c(1000)],
        ),
        // 9.x limits (server: 1 MiB messages and frames)
        case(
            "9.x 512 KiB binary echo",
            vec![Send(binary(big(512 << 10))), Recv],
            vec![bin_obs(&big(512 << 10))],
        ),
        case(
            "9.x 512 KiB text in 64 KiB fragments",
            {
                let s = "x".repeat(64 << 10);
                let mut steps = vec![Send(f(false, 0, 1, s.as_bytes()))];
                for i in 1..8 {
                    steps.push(Send(f(i == 7, 0, 0, s.as_bytes())));
                }
                steps.push(Recv);
                steps
            },
            vec![t(&"x".repeat(512 << 10))],
        ),
        case(
            "9.x message over the limit in one frame",
            vec![Send(binary(big(MAX_MESSAGE + 1))), Recv],
            vec![c(1009)],
        ),
        case(
            "9.x message over the limit in fragments",
            {
                let chunk = big(64 << 10);
                let mut steps = vec![Send(f(false, 0, 2, chunk.clone()))];
                for _ in 0..17 {
                    steps.push(Send(f(false, 0, 0, chunk.clone())));
                }
                steps.push(Recv);
                steps
            },
            vec![c(1009)],
        ),
    ];
    // Byte-stream-only encodings (no length field on native).
    v.push(Case {
        id: "1.x non-minimal 16-bit length",
        deflate: false,
        byte_stream_only: true,
        steps: vec![Step::SendRawHeader(vec![0x81, 126, 0, 5]), Recv],
        expect: vec![c(1002)],
    });
    v.push(Case {
        id: "1.x 64-bit length with the top bit",
        deflate: false,
        byte_stream_only: true,
        steps: vec![
            Step::SendRawHeader(vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Recv,
        ],
        expect: vec![c(1002)],
    });
    // 12.x / 13.x permessage-deflate
    let deflated = |id, steps, expect| Case {
        id,
        deflate: true,
        byte_stream_only: false,
        steps,
        expect,
    };
    let long = "Hello, permessage-deflate! ".repeat(200);
    v.push(deflated(
        "12.x compressed text echo",
        vec![Step::SendDeflated(long.clone()), Recv],
        vec![t(&long)],
    ));
    v.push(deflated(
        "12.x several compressed messages",
        vec![
            Step::SendDeflated("a".repeat(1000)),
            Recv,
            Step::SendDeflated("b".repeat(70_000)),
            Recv,
            Step::SendDeflated(String::new()),
            Recv,
        ],
        vec![t(&"a".repeat(1000)), t(&"b".repeat(70_000)), t("")],
    ));
    v.push(deflated(
        "13.x uncompressed message on a deflate socket",
        vec![Send(text("plain")), Recv],
        vec![t("plain")],
    ));
    v.push(deflated(
        "13.x RSV1 on a continuation",
        vec![
            Send(f(false, 0, 1, b"a".to_vec())),
            Send(f(true, 4, 0, b"b".to_vec())),
            Recv,
        ],
        vec![c(1002)],
    ));
    v.push(deflated(
        "13.x corrupt deflate data",
        vec![Send(f(true, 4, 1, vec![0xFF; 16])), Recv],
        vec![c(1007)],
    ));
    v.push(deflated(
        "13.x RSV1 on a ping",
        vec![Send(f(true, 4, 9, vec![])), Recv],
        vec![c(1002)],
    ));
    v
}

// ------------------------------------------------------------------ the wire per transport

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Rfc6455,
    Native,
    Rfc8441,
    Stream,
}

const PATHS: [Path; 4] = [Path::Rfc6455, Path::Native, Path::Rfc8441, Path::Stream];

/// RFC 6455 over HTTP/1.1, raw.
struct Tcp {
    tcp: TcpStream,
    conn: Connection,
    ended: bool,
}

enum Wire {
    Tcp(Box<Tcp>),
    H2(Box<Peer>),
}

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

fn header(fin: bool, rsv: u8, op: u8, len: usize, masked: bool) -> Vec<u8> {
    let mut h = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (op & 0x0F)];
    let m = if masked { 0x80 } else { 0 };
    match len {
        0..=125 => h.push(m | len as u8),
        126..=0xFFFF => {
            h.push(m | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(m | 127);
            h.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if masked {
        h.extend_from_slice(&MASK);
    }
    h
}

/// The units that carry frame `x` on `path`.
fn encode(x: &F, path: Path) -> Vec<Bytes> {
    match path {
        Path::Native => {
            // One frame per DATA frame; payloads over a DATA frame are cut into continuations.
            let max = 16_383;
            if x.payload.len() <= max || (x.op & 0x08) != 0 {
                let mut u = vec![(u8::from(x.fin) << 7) | ((x.rsv & 7) << 4) | (x.op & 0x0F)];
                u.extend_from_slice(&x.payload);
                return vec![Bytes::from(u)];
            }
            let pieces: Vec<&[u8]> = x.payload.chunks(max).collect();
            let n = pieces.len();
            pieces
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    let (op, rsv) = if i == 0 { (x.op, x.rsv) } else { (0, 0) };
                    let fin = x.fin && i + 1 == n;
                    let mut u = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (op & 0x0F)];
                    u.extend_from_slice(p);
                    Bytes::from(u)
                })
                .collect()
        }
        Path::Rfc6455 | Path::Rfc8441 | Path::Stream => {
            let masked = path != Path::Stream;
            let mut u = header(x.fin, x.rsv, x.op, x.payload.len(), masked);
            let start = u.len();
            u.extend_from_slice(&x.payload);
            if masked {
                for (i, b) in u[start..].iter_mut().enumerate() {
                    *b ^= MASK[i % 4];
                }
            }
            vec![Bytes::from(u)]
        }
    }
}

fn framing(path: Path) -> Framing {
    match path {
        Path::Rfc6455 | Path::Rfc8441 => Framing::Rfc6455,
        Path::Native => Framing::Native,
        Path::Stream => Framing::Stream,
    }
}

fn reader(path: Path, deflate: Option<DeflateParams>) -> Connection {
    let config = Config {
        max_message_size: 64 << 20,
        deflate,
        ..Config::default()
    };
    Connection::new(Role::Client, framing(path), config).with_mask_seed([9; 32])
}

async fn open(
    server: &h2ws::RunningServer,
    sr: &h2::client::SendRequest<Bytes>,
    path: Path,
    deflate: bool,
) -> (Wire, Option<DeflateParams>) {
    let offer = deflate::client_offer();
    match path {
        Path::Rfc6455 => {
            let addr = http_authority(server);
            let mut tcp = TcpStream::connect(&addr).await.expect("connect");
            let ext = if deflate {
                format!("Sec-WebSocket-Extensions: {offer}\r\n")
            } else {
                String::new()
            };
            let req = format!(
                "GET /ws/echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
            );
            tcp.write_all(req.as_bytes()).await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                let n = tokio::time::timeout(LIMIT, tcp.read(&mut byte))
                    .await
                    .expect("response in time")
                    .unwrap();
                assert_eq!(n, 1, "connection closed during the handshake");
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap();
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            let answer = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("sec-websocket-extensions")
                    .then(|| v.trim().to_string())
            });
            let params = answer.map(|a| deflate::accept_response(&a).expect("deflate answer"));
            let conn = reader(path, params);
            (
                Wire::Tcp(Box::new(Tcp {
                    tcp,
                    conn,
                    ended: false,
                })),
                params,
            )
        }
        _ => {
            let kind = match path {
                Path::Native => Kind::Native,
                Path::Rfc8441 => Kind::Rfc8441,
                _ => Kind::Stream,
            };
            let name = if kind == Kind::Stream {
                "h2ws-extensions"
            } else {
                "sec-websocket-extensions"
            };
            let headers: Vec<(&str, &str)> = if deflate {
                vec![(name, offer.as_str())]
            } else {
                vec![]
            };
            let mut p = Peer::open_with(sr, &tls_authority(server), "/ws/echo", kind, &headers)
                .await
                .unwrap_or_else(|r| panic!("{path:?}: {r:?}"));
            let params = p
                .headers
                .get(name)
                .map(|v| deflate::accept_response(v.to_str().unwrap()).expect("deflate answer"));
            p.conn = reader(path, params);
            (Wire::H2(Box::new(p)), params)
        }
    }
}

impl Wire {
    async fn write(&mut self, unit: Bytes) {
        match self {
            Wire::Tcp(t) => {
                // The server may already have closed: a failed write is not the verdict.
                let _ = t.tcp.write_all(&unit).await;
            }
            Wire::H2(p) => p.write_raw(unit).await,
        }
    }

    async fn next(&mut self) -> Obs {
        let ev = match self {
            Wire::Tcp(t) => t.next_event(ANSWER).await,
            Wire::H2(p) => p.next_event_within(ANSWER).await,
        };
        match ev {
            None => Obs::Nothing,
            Some(Event::Message(Message::Text(s))) => Obs::Text(s),
            Some(Event::Message(Message::Binary(b))) => bin_obs(&b),
            Some(Event::Pong(p)) => Obs::Pong(p),
            Some(Event::Closed { code, .. }) => Obs::Close(code.0),
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
}

impl Tcp {
    async fn next_event(&mut self, limit: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            while let Some(out) = self.conn.poll_transmit() {
                let _ = self.tcp.write_all(&out).await;
            }
            if let Some(ev) = self.conn.poll_event() {
                while let Some(out) = self.conn.poll_transmit() {
                    let _ = self.tcp.write_all(&out).await;
                }
                return Some(ev);
            }
            if self.ended {
                self.conn.recv_eof();
                continue;
            }
            match tokio::time::timeout_at(deadline, self.tcp.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => self.ended = true,
                Ok(Ok(n)) => self
                    .conn
                    .recv(&buf[..n])
                    .expect("valid frames from the server"),
            }
        }
    }
}

async fn run(
    server: &h2ws::RunningServer,
    sr: &h2::client::SendRequest<Bytes>,
    case: &Case,
    path: Path,
) -> Vec<Obs> {
    let (mut wire, params) = open(server, sr, path, case.deflate).await;
    if case.deflate {
        assert!(
            params.is_some(),
            "{path:?}: permessage-deflate not accepted"
        );
    }
    let mut compressor = params.as_ref().map(|p| p.compressor(false));
    let mut seen = Vec::new();
    for step in &case.steps {
        match step {
            Step::Send(x) => {
                for unit in encode(x, path) {
                    wire.write(unit).await;
                }
            }
            Step::SendRawHeader(h) => wire.write(Bytes::from(h.clone())).await,
            Step::SendDeflated(s) => {
                let mut out = Vec::new();
                compressor
                    .as_mut()
                    .expect("deflate negotiated")
                    .compress(s.as_bytes(), &mut out);
                for unit in encode(&f(true, 4, 1, out), path) {
                    wire.write(unit).await;
                }
            }
            Recv => {
                let obs = wire.next().await;
                let ended = matches!(obs, Obs::Close(_) | Obs::Nothing);
                seen.push(obs);
                if ended {
                    break;
                }
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_categories_give_the_rfc6455_verdicts_on_every_http2_transport() {
    init_tracing();
    let (server, sr, _) = test_server(SocketConfig {
        max_message_size: MAX_MESSAGE,
        max_frame_size: MAX_MESSAGE,
        ..SocketConfig::default()
    })
    .await
    .parts();
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in cases() {
        let reference = run(&server, &sr, &case, Path::Rfc6455).await;
        runs += 1;
        if reference != case.expect {
            failures.push(format!(
                "{} on rfc6455 (the reference): expected {:?}, got {:?}",
                case.id,
                short(&case.expect),
                short(&reference)
            ));
            continue;
        }
        for path in PATHS.into_iter().skip(1) {
            if case.byte_stream_only && path == Path::Native {
                continue;
            }
            let got = run(&server, &sr, &case, path).await;
            runs += 1;
            if got != reference {
                failures.push(format!(
                    "{} on {path:?}: rfc6455 gives {:?}, {path:?} gives {:?}",
                    case.id,
                    short(&reference),
                    short(&got)
                ));
            }
        }
    }
    eprintln!("{runs} case runs, {} failures", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.shutdown().await;
}

/// Observations with long texts shortened for failure messages.
fn short(obs: &[Obs]) -> Vec<String> {
    obs.iter()
        .map(|o| match o {
            Obs::Text(s) if s.len() > 40 => format!("Text({} bytes)", s.len()),
            other => format!("{other:?}"),
        })
        .collect()
}
