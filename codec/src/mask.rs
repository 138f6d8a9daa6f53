//! Payload masking (RFC 6455 §5.3): `byte[i] ^= key[(offset + i) % 4]`.
//!
//! `offset` is the position of `buf[0]` within the frame payload, so a payload that arrives in
//! pieces can be unmasked in place, piece by piece. [`apply_mask`] picks the fastest path:
//! AVX2 (x86_64, detected at run time, feature `std`), SSE2 (always there on x86_64), simd128
//! (wasm32 built with `-C target-feature=+simd128`), else 8 bytes at a time. The scalar and
//! word versions are public so tests and benchmarks can compare against them.

/// The key as seen from payload position `offset`.
#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    // Byte i of the result is key[(offset + i) % 4]: a rotation of the key's bytes, done on the
    // u32 (endian-aware) rather than through `<[u8]>::rotate_left`.
    let shift = 8 * (offset % 4) as u32;
    let k = u32::from_le_bytes(key);
    k.rotate_right(shift).to_le_bytes()
}

/// The reference: one byte at a time.
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(offset + i) % 4];
    }
}

/// Eight bytes at a time (portable; the compiler may vectorise it further).
pub fn apply_mask_word(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let k = rotate(key, offset);
    mask_words(buf, k);
}

/// `buf` starts at a key boundary for `k` (already rotated).
#[inline]
fn mask_words(buf: &mut [u8], k: [u8; 4]) {
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    // A multiple of 8 was consumed, so the tail (< 8 bytes) starts at a key boundary again:
    // one 4-byte word, then single bytes.
    let tail = chunks.into_remainder();
    let (word, bytes) = tail.split_at_mut(tail.len() & !3);
    if let Ok(word) = <&mut [u8; 4]>::try_from(word) {
        *word = (u32::from_ne_bytes(*word) ^ u32::from_ne_bytes(k)).to_ne_bytes();
    }
    for (byte, key) in bytes.iter_mut().zip(k) {
        *byte ^= key;
    }
}

/// Below this many bytes the word loop beats any SIMD path once its dispatch is counted.
const SIMD_MIN: usize = 32;

/// Masks (or unmasks: it is its own inverse) `buf`, which starts at payload position `offset`.
///
/// Inlined, so a small payload (a chat message, a control frame) is masked in place by the
/// word loop without a call; larger ones go to [`mask_large`] and its SIMD dispatch.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let k = rotate(key, offset);
    if buf.len() < SIMD_MIN {
        mask_words(buf, k);
    } else {
        mask_large(buf, k);
    }
}

/// `buf` (at least [`SIMD_MIN`] bytes) starts at a key boundary for `k`. SSE2 (x86_64
/// baseline) and simd128 need no detection and stay inline; AVX2's run-time detection is paid
/// only from [`AVX2_MIN`] bytes, out of line.
#[inline]
fn mask_large(buf: &mut [u8], k: [u8; 4]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[cfg(feature = "std")]
        if buf.len() >= AVX2_MIN {
            x86::mask_detect(buf, k);
            return;
        }
        x86::mask_sse2(buf, k);
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        wasm::mask_simd128(buf, k);
    }
    #[cfg(not(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )))]
    mask_words(buf, k);
}

/// From this size AVX2 (128 bytes per iteration) pays for its detection and call.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
const AVX2_MIN: usize = 2048;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// AVX2 when the CPU has it, else SSE2.
    #[cfg(feature = "std")]
    #[inline(never)]
    pub(super) fn mask_detect(buf: &mut [u8], k: [u8; 4]) {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 support was just detected at run time.
            unsafe { mask_avx2(buf, k) };
        } else {
            mask_sse2(buf, k);
        }
    }

    /// SSE2 is part of the x86_64 baseline, so no detection is needed.
    #[inline]
    pub(super) fn mask_sse2(buf: &mut [u8], k: [u8; 4]) {
        let mut chunks = buf.chunks_exact_mut(64);
        // SAFETY: SSE2 is always available on x86_64; every load/store is an unaligned access
        // to 16 bytes inside a 64-byte chunk of `buf`.
        unsafe {
            let key = _mm_set1_epi32(i32::from_ne_bytes(k));
            for chunk in &mut chunks {
                let p = chunk.as_mut_ptr().cast::<__m128i>();
                // Four independent lanes per iteration keep the load/store ports busy.
                let (a, b, c, d) = (
                    _mm_loadu_si128(p),
                    _mm_loadu_si128(p.add(1)),
                    _mm_loadu_si128(p.add(2)),
                    _mm_loadu_si128(p.add(3)),
                );
                _mm_storeu_si128(p, _mm_xor_si128(a, key));
                _mm_storeu_si128(p.add(1), _mm_xor_si128(b, key));
                _mm_storeu_si128(p.add(2), _mm_xor_si128(c, key));
                _mm_storeu_si128(p.add(3), _mm_xor_si128(d, key));
            }
        }
        super::mask_words(chunks.into_remainder(), k);
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(feature = "std")]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn mask_avx2(buf: &mut [u8], k: [u8; 4]) {
        let mut chunks = buf.chunks_exact_mut(128);
        let key = _mm256_set1_epi32(i32::from_ne_bytes(k));
        for chunk in &mut chunks {
            let p = chunk.as_mut_ptr().cast::<__m256i>();
            // SAFETY: unaligned 32-byte accesses inside a 128-byte chunk of `buf`; AVX2 is the
            // caller's promise.
            unsafe {
                let (a, b, c, d) = (
                    _mm256_loadu_si256(p),
                    _mm256_loadu_si256(p.add(1)),
                    _mm256_loadu_si256(p.add(2)),
                    _mm256_loadu_si256(p.add(3)),
                );
                _mm256_storeu_si256(p, _mm256_xor_si256(a, key));
                _mm256_storeu_si256(p.add(1), _mm256_xor_si256(b, key));
                _mm256_storeu_si256(p.add(2), _mm256_xor_si256(c, key));
                _mm256_storeu_si256(p.add(3), _mm256_xor_si256(d, key));
            }
        }
        // Fewer than 128 bytes left: SSE2 takes 64 at a time, then words.
        mask_sse2(chunks.into_remainder(), k);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use core::arch::wasm32::*;

    pub(super) fn mask_simd128(buf: &mut [u8], k: [u8; 4]) {
        let key = u32x4_splat(u32::from_ne_bytes(k));
        let mut chunks = buf.chunks_exact_mut(16);
        for chunk in &mut chunks {
            let p = chunk.as_mut_ptr().cast::<v128>();
            // SAFETY: simd128 is enabled at compile time; v128_load/store allow unaligned
            // access and the 16 bytes lie inside `buf`.
            unsafe { v128_store(p, v128_xor(v128_load(p), key)) };
        }
        super::mask_words(chunks.into_remainder(), k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn rfc6455_example() {
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
        let mut buf = *b"Hello";
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(buf, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn all_paths_match_scalar() {
        let key = [0x11, 0x22, 0x44, 0x88];
        let data: Vec<u8> = (0..700u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..9 {
            for len in [
                0,
                1,
                3,
                7,
                8,
                15,
                16,
                31,
                32,
                33,
                127,
                128,
                129,
                300,
                691 - start,
            ] {
                for offset in 0..5 {
                    let mut expected = data[start..start + len].to_vec();
                    apply_mask_scalar(&mut expected, key, offset);
                    let mut fast = data.clone();
                    apply_mask(&mut fast[start..start + len], key, offset);
                    assert_eq!(&fast[start..start + len], &expected[..]);
                    let mut word = data.clone();
                    apply_mask_word(&mut word[start..start + len], key, offset);
                    assert_eq!(&word[start..start + len], &expected[..]);
                }
            }
        }
    }

    #[test]
    fn large_paths_match_scalar() {
        // Around the AVX2 threshold (2048) and past several 128-byte blocks with a ragged tail.
        let key = [0xde, 0xad, 0xbe, 0xef];
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 + 7) as u8).collect();
        for len in [2047, 2048, 2049, 2048 + 127, 4999] {
            for offset in 0..4 {
                let mut expected = data[1..1 + len].to_vec();
                apply_mask_scalar(&mut expected, key, offset);
                let mut fast = data[1..1 + len].to_vec();
                apply_mask(&mut fast, key, offset);
                assert_eq!(fast, expected, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn piecewise_equals_whole() {
        let key = [9, 8, 7, 6];
        let mut whole: Vec<u8> = (0..200u8).collect();
        let mut pieces = whole.clone();
        apply_mask(&mut whole, key, 0);
        let mut at = 0;
        for step in [1, 5, 64, 3, 127] {
            apply_mask(&mut pieces[at..at + step], key, at);
            at += step;
        }
        assert_eq!(whole, pieces);
    }
}
