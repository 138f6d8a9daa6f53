use h2ws_codec::mask::{apply_mask, apply_mask_scalar};
use h2ws_codec::utf8::Utf8Validator;

/// Checks run inside a wasm32 build with simd128 on (see run.sh).

/// Returns the number of mismatches between the dispatched masking and the scalar reference.
#[no_mangle]
pub extern "C" fn check_mask() -> u32 {
    let data: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut bad = 0;
    for start in 0..20 {
        for len in (0..1200).step_by(7) {
            for offset in 0..4 {
                let key = [0x11, 0x93, 0x5c, 0xe7];
                let mut a = data[start..start + len].to_vec();
                let mut b = data.clone();
                apply_mask_scalar(&mut a, key, offset);
                apply_mask(&mut b[start..start + len], key, offset);
                if a[..] != b[start..start + len] {
                    bad += 1;
                }
            }
        }
    }
    bad
}

#[no_mangle]
pub extern "C" fn check_utf8() -> u32 {
    let s = "Grüße κόσμε 🌍 ".repeat(100);
    let mut v = Utf8Validator::new();
    let mut ok = s.as_bytes().chunks(5).all(|c| v.feed(c).is_ok()) && v.finish().is_ok();
    let mut v = Utf8Validator::new();
    ok &= v.feed(&[0xED, 0xA0, 0x80]).is_err();
    u32::from(!ok)
}
