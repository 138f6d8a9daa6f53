//! Throughput of the hot paths, without a benchmark framework (keeps the dev-dependency
//! tree small): masking (scalar / word / dispatched SIMD), UTF-8 validation, and a whole
//! `Connection` receiving and sending. Run with `cargo bench -p h2ws-codec`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use h2ws_codec::mask::{apply_mask, apply_mask_scalar, apply_mask_word};
use h2ws_codec::utf8::Utf8Validator;
use h2ws_codec::{Config, Connection, Framing, Role};

/// Runs `f` (which processes `bytes` bytes) for about 300 ms; prints GiB/s.
fn bench(name: &str, bytes: usize, mut f: impl FnMut()) {
    // `cargo bench -p h2ws-codec -- mask` runs only the benchmarks whose name contains "mask".
    if let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        if !name.contains(&filter) {
            return;
        }
    }
    for _ in 0..3 {
        f();
    }
    let mut iters = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(300) {
        for _ in 0..16 {
            f();
        }
        iters += 16;
    }
    let secs = start.elapsed().as_secs_f64();
    let gib = (bytes as f64 * iters as f64) / secs / (1u64 << 30) as f64;
    let ns = secs * 1e9 / iters as f64;
    println!("{name:<44} {bytes:>8} B  {gib:>8.2} GiB/s  {ns:>10.1} ns/iter");
}

fn main() {
    let key = [0x12, 0x34, 0x56, 0x78];
    for size in [16usize, 125, 1024, 64 * 1024, 1 << 20] {
        let mut buf = vec![0xA5u8; size + 1];
        bench(&format!("mask/scalar/{size}"), size, || {
            apply_mask_scalar(black_box(&mut buf[1..]), key, 1)
        });
        bench(&format!("mask/word/{size}"), size, || {
            apply_mask_word(black_box(&mut buf[1..]), key, 1)
        });
        bench(&format!("mask/dispatch/{size}"), size, || {
            apply_mask(black_box(&mut buf[1..]), key, 1)
        });
    }

    let text: String = "Grüße, κόσμε, 🌍 and plain ASCII text. ".repeat(30_000);
    let bytes = text.as_bytes();
    bench("utf8/core::str::from_utf8", bytes.len(), || {
        black_box(core::str::from_utf8(black_box(bytes)).is_ok());
    });
    bench("utf8/Utf8Validator (16 KiB chunks)", bytes.len(), || {
        let mut v = Utf8Validator::new();
        for chunk in bytes.chunks(16 * 1024 + 1) {
            v.feed(black_box(chunk)).unwrap();
        }
        v.finish().unwrap();
    });

    for (framing, size) in [
        (Framing::Rfc6455, 64 * 1024),
        (Framing::Rfc6455, 128),
        (Framing::Stream, 64 * 1024),
        (Framing::Native, 64 * 1024),
    ] {
        // 64 messages per iteration, pre-encoded by a client.
        let mut client =
            Connection::new(Role::Client, framing, Config::default()).with_mask_seed([9; 32]);
        let payload = vec![7u8; size];
        for _ in 0..64 {
            client.send_binary(&payload).unwrap();
        }
        let units: Vec<Vec<u8>> = std::iter::from_fn(|| client.poll_transmit()).collect();
        let total = size * 64;
        bench(
            &format!("connection/recv/{framing:?}/{size}"),
            total,
            || {
                let mut server = Connection::new(Role::Server, framing, Config::default());
                // As an application would: take the events after each read.
                for unit in &units {
                    match framing {
                        Framing::Native => server.recv(unit).unwrap(),
                        // A transport hands over 16 KiB reads.
                        _ => unit.chunks(16 * 1024).for_each(|c| server.recv(c).unwrap()),
                    }
                    while let Some(ev) = server.poll_event() {
                        black_box(ev);
                    }
                }
            },
        );
        bench(
            &format!("connection/send/client/{framing:?}/{size}"),
            total,
            || {
                let mut c = Connection::new(Role::Client, framing, Config::default())
                    .with_mask_seed([9; 32]);
                // As a transport would: write out after each send.
                for _ in 0..64 {
                    c.send_binary(black_box(&payload)).unwrap();
                    while let Some(out) = c.poll_transmit() {
                        black_box(out);
                    }
                }
            },
        );
    }
}
