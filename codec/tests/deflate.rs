//! permessage-deflate integration tests: round trips under every parameter combination with
//! arbitrary frame splits, bounded inflation of compression bombs, garbage never panics, and an
//! independent check that small-window compressors never reach back further than agreed.
#![cfg(feature = "deflate")]

use h2ws_codec::deflate::{DeflateError, DeflateParams};
use proptest::prelude::*;

/// Feeds `wire` to `d` split at the given cut points (one `decompress` call per piece).
fn inflate_split(
    d: &mut h2ws_codec::deflate::Decompressor,
    wire: &[u8],
    cuts: &[usize],
    limit: usize,
) -> Result<Vec<u8>, DeflateError> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in points {
        d.decompress(&wire[prev..p], false, &mut out, limit)?;
        prev = p;
    }
    d.decompress(&wire[prev..], true, &mut out, limit)?;
    Ok(out)
}

/// Messages with structure worth compressing: repeats of a short random alphabet.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        (proptest::collection::vec(any::<u8>(), 1..8), 0usize..20_000).prop_map(|(alpha, n)| {
            (0..n)
                .map(|i| alpha[(i * 7 + i / 13) % alpha.len()])
                .collect()
        }),
    ]
}

fn params() -> impl Strategy<Value = DeflateParams> {
    (any::<bool>(), any::<bool>(), 8u8..=15, 8u8..=15).prop_map(|(s, c, sb, cb)| DeflateParams {
        server_no_context_takeover: s,
        client_no_context_takeover: c,
        server_max_window_bits: sb,
        client_max_window_bits: cb,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn round_trip_any_params_any_split(
        p in params(),
        is_server in any::<bool>(),
        level in 0u8..=10,
        msgs in proptest::collection::vec(message(), 1..5),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut tx = p.compressor_with_level(is_server, level);
        let mut rx = p.decompressor(!is_server);
        for m in &msgs {
            let mut wire = Vec::new();
            tx.compress(m, &mut wire);
            let back = inflate_split(&mut rx, &wire, &cuts, m.len()).unwrap();
            prop_assert_eq!(&back, m);
            // The exact size is the limit: one byte less must be refused.
            if !m.is_empty() {
                let mut probe = p.decompressor(!is_server);
                // Only meaningful for a fresh stream: first message or no context takeover.
                let fresh = std::ptr::eq(m, &msgs[0])
                    || if is_server { p.server_no_context_takeover } else { p.client_no_context_takeover };
                if fresh {
                    prop_assert_eq!(
                        inflate_split(&mut probe, &wire, &cuts, m.len() - 1),
                        Err(DeflateError::TooBig)
                    );
                }
            }
        }
    }

    #[test]
    fn garbage_never_panics(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..4),
        limit in 0usize..100_000,
        takeover in any::<bool>(),
    ) {
        let p = DeflateParams { client_no_context_takeover: takeover, ..Default::default() };
        let mut d = p.decompressor(true);
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            match d.decompress(f, i + 1 == frames.len(), &mut out, limit) {
                Ok(()) => {}
                Err(DeflateError::TooBig) | Err(DeflateError::Corrupt) => break,
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
            prop_assert!(out.len() <= limit);
        }
        prop_assert!(out.len() <= limit);
    }

    #[test]
    fn mutated_streams_never_panic(
        m in message(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
        limit in 0usize..40_000,
    ) {
        // Valid compressed data with a few bytes changed reaches deep into the decoder
        // (Huffman tables, distances), which purely random bytes rarely do.
        let mut wire = Vec::new();
        DeflateParams::default().compressor(false).compress(&m, &mut wire);
        for (at, x) in &flips {
            let i = at % wire.len();
            wire[i] ^= x | 1;
        }
        let mut d = DeflateParams::default().decompressor(true);
        let mut out = Vec::new();
        let split = cut % (wire.len() + 1);
        let r = d
            .decompress(&wire[..split], false, &mut out, limit)
            .and_then(|()| d.decompress(&wire[split..], true, &mut out, limit));
        prop_assert!(matches!(r, Ok(()) | Err(DeflateError::TooBig) | Err(DeflateError::Corrupt)));
        prop_assert!(out.len() <= limit);
    }

    #[test]
    fn compressor_output_decodes_independently_within_its_window(
        bits in 8u8..=15,
        msgs in proptest::collection::vec(message(), 1..4),
        level in 1u8..=10,
    ) {
        let p = DeflateParams { server_max_window_bits: bits, ..Default::default() };
        let mut tx = p.compressor_with_level(true, level);
        let mut stream = Vec::new();
        for m in &msgs {
            tx.compress(m, &mut stream);
            stream.extend_from_slice(&[0, 0, 0xff, 0xff]);
        }
        let (data, max_dist) = checker::inflate(&stream).expect("independent inflater");
        prop_assert_eq!(data, msgs.concat());
        prop_assert!(max_dist <= 1 << bits, "distance {} > window 2^{}", max_dist, bits);
    }
}

#[test]
fn full_window_compressor_uses_long_distances() {
    // The checker itself can see distances: a 15-bit compressor does reach back 1000 bytes.
    let unit: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
    let data = unit.repeat(5);
    let mut wire = Vec::new();
    DeflateParams::default()
        .compressor(true)
        .compress(&data, &mut wire);
    wire.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let (back, max_dist) = checker::inflate(&wire).unwrap();
    assert_eq!(back, data);
    assert!(max_dist >= 1000, "{max_dist}");
}

/// Builds one compressed message that inflates to `n_mib` MiB of zeros: 1 MiB compressed with
/// an empty window, then the next 1 MiB compressed with a window full of zeros, repeated.
/// Joined by their sync markers they form one continuous DEFLATE stream, and every repeat of
/// the second piece decodes the same way because the window it sees is the same.
fn bomb(n_mib: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut c = DeflateParams::default().compressor(false);
    let (mut first, mut next) = (Vec::new(), Vec::new());
    c.compress(&zeros, &mut first);
    c.compress(&zeros, &mut next);
    let mut wire = first;
    for _ in 1..n_mib {
        wire.extend_from_slice(&[0, 0, 0xff, 0xff]);
        wire.extend_from_slice(&next);
    }
    wire
}

#[test]
fn bomb_stops_at_the_limit_with_bounded_memory() {
    let wire = bomb(100);
    // DEFLATE tops out near 1:1032, so 100 MiB needs about 100 KB of input.
    assert!(wire.len() < 150_000, "{}", wire.len());
    let limit = 1 << 20;
    let mut d = DeflateParams::default().decompressor(true);
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut result = Ok(());
    // Deliver in 1 KiB frames, as a connection would; stop at the first error.
    for chunk in wire.chunks(1024) {
        consumed += chunk.len();
        result = d.decompress(chunk, consumed == wire.len(), &mut out, limit);
        assert!(out.len() <= limit && out.capacity() <= limit);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(DeflateError::TooBig));
    // It gave up near the limit's worth of input (~1 KB per MiB), not after inflating it all.
    assert!(
        consumed <= 4 * 1024,
        "consumed {consumed} of {}",
        wire.len()
    );
    assert_eq!(out.len(), limit);
    assert!(out.iter().all(|&b| b == 0));
}

#[test]
fn bomb_in_one_frame_is_refused_too() {
    let wire = bomb(20);
    let mut d = DeflateParams::default().decompressor(true);
    let mut out = Vec::new();
    assert_eq!(
        d.decompress(&wire, true, &mut out, 64 * 1024),
        Err(DeflateError::TooBig)
    );
    assert!(out.len() <= 64 * 1024 && out.capacity() <= 64 * 1024);
    // With a large enough limit the same message inflates completely.
    let mut d = DeflateParams::default().decompressor(true);
    let mut out = Vec::new();
    d.decompress(&wire, true, &mut out, 20 << 20).unwrap();
    assert_eq!(out.len(), 20 << 20);
}

#[test]
fn the_limit_counts_what_out_already_holds() {
    let mut wire = Vec::new();
    DeflateParams::default()
        .compressor(true)
        .compress(b"0123456789", &mut wire);
    let mut d = DeflateParams::default().decompressor(false);
    let mut out = b"prefix".to_vec();
    assert_eq!(
        d.decompress(&wire, true, &mut out, 15),
        Err(DeflateError::TooBig)
    );
    let mut d = DeflateParams::default().decompressor(false);
    let mut out = b"prefix".to_vec();
    d.decompress(&wire, true, &mut out, 16).unwrap();
    assert_eq!(out, b"prefix0123456789");
}

/// A small, independent DEFLATE decoder (RFC 1951) for tests: it reports the largest
/// back-reference distance, which `miniz_oxide` cannot tell us.
mod checker {
    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
        bit: u32,
    }

    impl Bits<'_> {
        fn bit(&mut self) -> Option<u32> {
            let byte = *self.data.get(self.pos)?;
            let b = (u32::from(byte) >> self.bit) & 1;
            self.bit += 1;
            if self.bit == 8 {
                self.bit = 0;
                self.pos += 1;
            }
            Some(b)
        }
        fn bits(&mut self, n: u32) -> Option<u32> {
            let mut v = 0;
            for i in 0..n {
                v |= self.bit()? << i;
            }
            Some(v)
        }
        fn align(&mut self) {
            if self.bit != 0 {
                self.bit = 0;
                self.pos += 1;
            }
        }
    }

    /// Canonical Huffman code as (length, code) -> symbol, decoded bit by bit.
    struct Huffman {
        counts: [u16; 16],
        symbols: Vec<u16>,
    }

    impl Huffman {
        fn new(lengths: &[u8]) -> Self {
            let mut counts = [0u16; 16];
            for &l in lengths {
                counts[l as usize] += 1;
            }
            counts[0] = 0;
            let mut offs = [0u16; 16];
            for i in 1..16 {
                offs[i] = offs[i - 1] + counts[i - 1];
            }
            let mut symbols = vec![0u16; lengths.len()];
            for (s, &l) in lengths.iter().enumerate() {
                if l != 0 {
                    symbols[offs[l as usize] as usize] = s as u16;
                    offs[l as usize] += 1;
                }
            }
            Self { counts, symbols }
        }
        fn decode(&self, b: &mut Bits) -> Option<u16> {
            let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
            for len in 1..16 {
                code |= b.bit()? as i32;
                let count = i32::from(self.counts[len]);
                if code - count < first {
                    return self.symbols.get((index + (code - first)) as usize).copied();
                }
                index += count;
                first += count;
                first <<= 1;
                code <<= 1;
            }
            None
        }
    }

    const LEN_BASE: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const LEN_EXTRA: [u8; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    const DIST_BASE: [u16; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ];
    const DIST_EXTRA: [u8; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];

    /// Inflates a raw DEFLATE stream that ends at its input (sync-flushed, no BFINAL needed);
    /// returns the data and the largest distance used.
    pub fn inflate(data: &[u8]) -> Option<(Vec<u8>, usize)> {
        let mut b = Bits {
            data,
            pos: 0,
            bit: 0,
        };
        let mut out: Vec<u8> = Vec::new();
        let mut max_dist = 0usize;
        while b.pos < data.len() {
            let last = b.bit()?;
            let kind = b.bits(2)?;
            match kind {
                0 => {
                    b.align();
                    let len = u16::from_le_bytes([*data.get(b.pos)?, *data.get(b.pos + 1)?]);
                    let nlen = u16::from_le_bytes([*data.get(b.pos + 2)?, *data.get(b.pos + 3)?]);
                    if len != !nlen {
                        return None;
                    }
                    b.pos += 4;
                    out.extend_from_slice(data.get(b.pos..b.pos + len as usize)?);
                    b.pos += len as usize;
                }
                1 | 2 => {
                    let (lit, dist) = if kind == 1 {
                        let mut l = [8u8; 288];
                        l[144..256].fill(9);
                        l[256..280].fill(7);
                        (Huffman::new(&l), Huffman::new(&[5u8; 30]))
                    } else {
                        let hlit = b.bits(5)? as usize + 257;
                        let hdist = b.bits(5)? as usize + 1;
                        let hclen = b.bits(4)? as usize + 4;
                        const ORDER: [usize; 19] = [
                            16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
                        ];
                        let mut cl = [0u8; 19];
                        for &i in ORDER.iter().take(hclen) {
                            cl[i] = b.bits(3)? as u8;
                        }
                        let clh = Huffman::new(&cl);
                        let mut lens = Vec::with_capacity(hlit + hdist);
                        while lens.len() < hlit + hdist {
                            match clh.decode(&mut b)? {
                                s @ 0..=15 => lens.push(s as u8),
                                16 => {
                                    let prev = *lens.last()?;
                                    for _ in 0..3 + b.bits(2)? {
                                        lens.push(prev);
                                    }
                                }
                                17 => lens.extend(std::iter::repeat_n(0, 3 + b.bits(3)? as usize)),
                                _ => lens.extend(std::iter::repeat_n(0, 11 + b.bits(7)? as usize)),
                            }
                        }
                        (
                            Huffman::new(&lens[..hlit]),
                            Huffman::new(&lens[hlit..hlit + hdist]),
                        )
                    };
                    loop {
                        let sym = lit.decode(&mut b)?;
                        if sym < 256 {
                            out.push(sym as u8);
                        } else if sym == 256 {
                            break;
                        } else {
                            let i = (sym - 257) as usize;
                            let len = LEN_BASE.get(i)? + b.bits(u32::from(LEN_EXTRA[i]))? as u16;
                            let d = dist.decode(&mut b)? as usize;
                            let distance = (DIST_BASE.get(d)?
                                + b.bits(u32::from(DIST_EXTRA[d]))? as u16)
                                as usize;
                            if distance > out.len() {
                                return None;
                            }
                            max_dist = max_dist.max(distance);
                            for _ in 0..len {
                                out.push(out[out.len() - distance]);
                            }
                        }
                    }
                }
                _ => return None,
            }
            if last == 1 {
                break;
            }
        }
        Some((out, max_dist))
    }
}

/// Pseudo-random lowercase text: compressible, but needing real Huffman + LZ77 work.
fn text(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b"etaoin shrdlu\n"[(x % 14) as usize]
        })
        .collect()
}

#[test]
fn valid_streams_never_stall_at_window_boundaries() {
    // Exact limits at multiples of the 32 KiB window, fed in odd frame sizes, several messages
    // sharing one context: every one must inflate completely, never be mistaken for corrupt.
    for (len, chunk) in [
        (32 * 1024, 1),
        (64 * 1024, 13),
        (96 * 1024, 1000),
        (200_000, 70_000),
    ] {
        let p = DeflateParams::default();
        let mut c = p.compressor(true);
        let mut d = p.decompressor(false);
        for seed in 1..4 {
            let m = text(len, seed);
            let mut wire = Vec::new();
            c.compress(&m, &mut wire);
            let mut out = Vec::new();
            let pieces: Vec<&[u8]> = wire.chunks(chunk).collect();
            for (i, piece) in pieces.iter().enumerate() {
                d.decompress(piece, i + 1 == pieces.len(), &mut out, len)
                    .unwrap();
            }
            assert_eq!(out, m, "len {len} chunk {chunk} seed {seed}");
        }
    }
}

#[test]
fn mid_size_windows_still_compress_structured_data() {
    // 12 to 14-bit windows compress window-sized pieces with full LZ77 matching, so repetitive
    // data still shrinks well (run-length matching alone would leave it at over half its size).
    let mut data = Vec::new();
    let mut i = 0u32;
    while data.len() < 100_000 {
        data.extend_from_slice(
            format!(
                "{{\"id\":{i},\"user\":\"user{}\",\"text\":\"hello number {}\"}},",
                i % 37,
                i * 7 % 1000
            )
            .as_bytes(),
        );
        i += 1;
    }
    for bits in 12u8..=14 {
        let p = DeflateParams {
            server_max_window_bits: bits,
            ..Default::default()
        };
        let mut wire = Vec::new();
        p.compressor(true).compress(&data, &mut wire);
        assert!(
            wire.len() * 4 < data.len(),
            "bits {bits}: {} of {}",
            wire.len(),
            data.len()
        );
        wire.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let (back, max_dist) = checker::inflate(&wire).unwrap();
        assert_eq!(back, data);
        assert!(max_dist <= 1 << bits, "bits {bits}: distance {max_dist}");
    }
}
