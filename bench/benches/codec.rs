//! Codec benchmarks, h2ws beside `tungstenite` and `fastwebsockets`, each through its public
//! socket-level API on the same bytes (issue 8, benchmark 1):
//!
//! - `decode/<lib>/<size>`: a server reads masked client text frames: parse, unmask, validate
//!   UTF-8, hand over the message. Every library reads from the same in-memory stream that
//!   replays the same frames, so each uses its own buffering strategy, as on a socket.
//! - `mask/<lib>/<size>`: masking alone (tungstenite keeps its masking function private: no
//!   public equivalent, not measured).
//! - `encode/<lib>/<size>`: a server queues a binary message and writes the frame out.
//!
//! Small frames are processed in batches (about 64 KiB per iteration) so the per-iteration
//! overhead of the harness and of the async executor stays out of the figure; the report
//! divides by the batch (`throughput` in criterion's `benchmark.json`).
//!
//! `H2WS_BENCH_SMOKE=1` shrinks warm-up and measurement to a few milliseconds (CI smoke mode).

use std::hint::black_box;
use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// The frame sizes of issue 8.
const SIZES: [usize; 4] = [20, 1024, 16 * 1024, 1 << 20];
/// Bytes of payload per iteration for small frames.
const BATCH_BYTES: usize = 64 * 1024;
/// What a socket read hands the h2ws codec at most (the devserver reads in chunks like this).
const READ_CHUNK: usize = 64 * 1024;
const MASK_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn batch(size: usize) -> usize {
    (BATCH_BYTES / size).max(1)
}

/// Valid UTF-8 text of exactly `len` bytes: mostly ASCII with 2-, 3- and 4-byte sequences.
fn text(len: usize) -> String {
    const PATTERN: &str = "Grüße, κόσμε, 🌍 and plain ASCII text. ";
    let mut s = String::with_capacity(len + PATTERN.len());
    while s.len() < len {
        for c in PATTERN.chars() {
            if s.len() + c.len_utf8() > len {
                break;
            }
            s.push(c);
        }
        if s.len() + 4 > len {
            while s.len() < len {
                s.push('.');
            }
        }
    }
    s
}

/// One masked client text frame (RFC 6455 §5.2), built by hand so no library encodes another's
/// input.
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x81); // FIN + text
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK_KEY);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK_KEY[i % 4]));
    out
}

/// An endless in-memory stream that replays `data`; writes are discarded.
struct Replay {
    data: Vec<u8>,
    pos: usize,
}

impl Replay {
    fn new(data: Vec<u8>) -> Self {
        Replay { data, pos: 0 }
    }

    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.data.len() {
            self.pos = 0;
        }
        n
    }
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(self.fill(buf))
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncRead for Replay {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let n = this.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// A socket stand-in for encoding: every write is copied once, as into a kernel socket buffer,
/// so a library that hands its payload over by reference (vectored writes) still pays for the
/// bytes it sends, like every other one.
#[derive(Default)]
struct Sink {
    buffer: Vec<u8>,
    written: usize,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.clear();
        self.buffer.extend_from_slice(buf);
        self.written = self.written.wrapping_add(black_box(&self.buffer).len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Read for Sink {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
}

macro_rules! async_write_discard {
    ($t:ty) => {
        impl tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                let _ = Write::write(this, buf);
                Poll::Ready(Ok(buf.len()))
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<std::io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
    };
}
async_write_discard!(Replay);
async_write_discard!(Sink);

impl tokio::io::AsyncRead for Sink {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread tokio runtime")
}

fn smoke() -> bool {
    std::env::var_os("H2WS_BENCH_SMOKE").is_some_and(|v| v != "0" && !v.is_empty())
}

fn tune(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    if smoke() {
        group
            .warm_up_time(Duration::from_millis(20))
            .measurement_time(Duration::from_millis(60))
            .sample_size(10);
    } else {
        group
            .warm_up_time(Duration::from_millis(700))
            .measurement_time(Duration::from_secs(2))
            .sample_size(30);
    }
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    tune(&mut group);
    let rt = runtime();
    for size in SIZES {
        let n = batch(size);
        let payload = text(size);
        let frame = masked_text_frame(payload.as_bytes());
        let input: Vec<u8> = frame
            .iter()
            .copied()
            .cycle()
            .take(frame.len() * n)
            .collect();
        group.throughput(Throughput::Bytes((size * n) as u64));

        group.bench_with_input(BenchmarkId::new("h2ws", size), &size, |b, _| {
            use h2ws_codec::{Config, Connection, Event, Framing, Message, Role};
            let mut conn = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
            b.iter(|| {
                let mut got = 0;
                for chunk in input.chunks(READ_CHUNK) {
                    conn.recv(black_box(chunk)).expect("valid frames");
                    while let Some(event) = conn.poll_event() {
                        match event {
                            Event::Message(Message::Text(t)) => {
                                got += 1;
                                black_box(t);
                            }
                            other => panic!("unexpected event {other:?}"),
                        }
                    }
                }
                assert_eq!(got, n);
            });
        });

        group.bench_with_input(BenchmarkId::new("tungstenite", size), &size, |b, _| {
            use tungstenite::protocol::{Role, WebSocket};
            let mut ws = WebSocket::from_raw_socket(Replay::new(input.clone()), Role::Server, None);
            b.iter(|| {
                for _ in 0..n {
                    match ws.read().expect("valid frames") {
                        tungstenite::Message::Text(t) => {
                            black_box(t);
                        }
                        other => panic!("unexpected message {other:?}"),
                    }
                }
            });
        });

        group.bench_with_input(BenchmarkId::new("fastwebsockets", size), &size, |b, _| {
            use fastwebsockets::{OpCode, Role, WebSocket};
            let mut ws = WebSocket::after_handshake(Replay::new(input.clone()), Role::Server);
            ws.set_max_message_size(64 << 20);
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..n {
                        let frame = ws.read_frame().await.expect("valid frames");
                        assert_eq!(frame.opcode, OpCode::Text);
                        black_box(&frame.payload);
                    }
                })
            });
        });
    }
    group.finish();
}

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    tune(&mut group);
    for size in SIZES {
        let n = batch(size);
        let mut buf = vec![0xa5u8; size];
        group.throughput(Throughput::Bytes((size * n) as u64));
        group.bench_with_input(BenchmarkId::new("h2ws", size), &size, |b, _| {
            b.iter(|| {
                for _ in 0..n {
                    h2ws_codec::mask::apply_mask(black_box(&mut buf), MASK_KEY, 0);
                }
            })
        });
        group.bench_with_input(BenchmarkId::new("fastwebsockets", size), &size, |b, _| {
            b.iter(|| {
                for _ in 0..n {
                    fastwebsockets::unmask(black_box(&mut buf), MASK_KEY);
                }
            })
        });
    }
    group.finish();
}

/// The payload as `Bytes` whose clones cost nothing: each iteration hands the encoder an owned
/// message without a copy or a reference count (the payload is leaked, once per size), so
/// h2ws and tungstenite (which take `Bytes`) pay for the encoding only, like fastwebsockets
/// with its borrowed payload.
fn static_bytes(payload: &[u8]) -> bytes::Bytes {
    bytes::Bytes::from_static(Box::leak(payload.to_vec().into_boxed_slice()))
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    tune(&mut group);
    let rt = runtime();
    for size in SIZES {
        let n = batch(size);
        let payload = vec![0x5au8; size];
        group.throughput(Throughput::Bytes((size * n) as u64));

        group.bench_with_input(BenchmarkId::new("h2ws", size), &size, |b, _| {
            use h2ws_codec::{Config, Connection, Framing, Role};
            let mut conn = Connection::new(Role::Server, Framing::Rfc6455, Config::default());
            let mut sink = Sink::default();
            // The payload handed over as shared bytes (what a server socket's `send` does with
            // a `Message`), like tungstenite's below: a reference count, not a copy. A large
            // payload then leaves apart from its header (`Transmit::tail`), as a transport
            // writes it (two writes here; vectored on a socket).
            let bytes = static_bytes(&payload);
            b.iter(|| {
                for _ in 0..n {
                    conn.send_binary_shared(black_box(bytes.clone()))
                        .expect("open");
                    while let Some(t) = conn.poll_transmit_parts() {
                        let _ = sink.write(&t.head);
                        if let Some(tail) = &t.tail {
                            let _ = sink.write(tail);
                        }
                    }
                }
            });
            black_box(sink.written);
        });

        group.bench_with_input(BenchmarkId::new("tungstenite", size), &size, |b, _| {
            use tungstenite::protocol::{Role, WebSocket};
            let mut ws = WebSocket::from_raw_socket(Sink::default(), Role::Server, None);
            let bytes = static_bytes(&payload);
            b.iter(|| {
                for _ in 0..n {
                    // Bytes clones are reference counts: the payload is not copied here.
                    ws.send(tungstenite::Message::Binary(black_box(bytes.clone())))
                        .expect("open");
                }
            });
            black_box(ws.get_ref().written);
        });

        group.bench_with_input(BenchmarkId::new("fastwebsockets", size), &size, |b, _| {
            use fastwebsockets::{Frame, Payload, Role, WebSocket};
            let mut ws = WebSocket::after_handshake(Sink::default(), Role::Server);
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..n {
                        let frame = Frame::binary(Payload::Borrowed(black_box(&payload)));
                        ws.write_frame(frame).await.expect("open");
                    }
                })
            });
        });
    }
    group.finish();
}

fn config() -> Criterion {
    let c = Criterion::default().without_plots();
    if smoke() {
        // Fewer bootstrap resamples: the smoke run only shows that every benchmark still runs.
        c.nresamples(1_000)
    } else {
        c
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode, mask, encode
}
criterion_main!(benches);
