//! Property tests of the building blocks against references: masking against the scalar
//! loop, UTF-8 against `core::str::from_utf8`, frame headers encode → parse.

use h2ws_codec::mask::{apply_mask, apply_mask_scalar, apply_mask_word};
use h2ws_codec::utf8::Utf8Validator;
use h2ws_codec::{FrameHeader, OpCode, Parsed};
use proptest::prelude::*;

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn mask_matches_scalar(
        data in prop::collection::vec(any::<u8>(), 0..2100),
        align in 0usize..32,
        offset in 0usize..16,
        key in any::<[u8; 4]>(),
    ) {
        // `align` shifts the slice start so every alignment of the SIMD loads is exercised.
        let align = align.min(data.len());
        let mut expected = data.clone();
        apply_mask_scalar(&mut expected[align..], key, offset);
        let mut fast = data.clone();
        apply_mask(&mut fast[align..], key, offset);
        prop_assert_eq!(&fast, &expected);
        let mut word = data.clone();
        apply_mask_word(&mut word[align..], key, offset);
        prop_assert_eq!(&word, &expected);
        // Masking is its own inverse.
        apply_mask(&mut fast[align..], key, offset);
        prop_assert_eq!(fast, data);
    }

    #[test]
    fn mask_in_pieces_equals_whole(
        data in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        key in any::<[u8; 4]>(),
    ) {
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(data.len());
        let mut pieces = data.clone();
        let mut start = 0;
        for end in cuts {
            apply_mask(&mut pieces[start..end], key, start);
            start = end;
        }
        prop_assert_eq!(pieces, whole);
    }

    #[test]
    fn utf8_valid_strings_any_split(s in any::<String>(), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let bytes = s.as_bytes();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for end in cuts {
            prop_assert!(v.feed(&bytes[start..end]).is_ok());
            start = end;
        }
        prop_assert!(v.finish().is_ok());
    }

    /// Fed one byte at a time, the validator fails exactly at the first byte after which the
    /// input can no longer be the prefix of valid UTF-8.
    #[test]
    fn utf8_fails_at_first_invalid_byte(
        prefix in any::<String>(),
        noise in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let mut input = prefix.into_bytes();
        input.extend(noise);
        let first_bad = (0..input.len()).find(|&i| {
            matches!(std::str::from_utf8(&input[..=i]), Err(e) if e.error_len().is_some())
        });
        let mut v = Utf8Validator::new();
        let failed_at = (0..input.len()).find(|&i| v.feed(&input[i..=i]).is_err());
        prop_assert_eq!(failed_at, first_bad);
    }

    #[test]
    fn header_encode_parse(
        fin in any::<bool>(), rsv in 0u8..8, opcode in opcode(),
        mask in any::<Option<[u8; 4]>>(), len in prop_oneof![0u64..200, 0u64..70000, 0u64..(1 << 63)],
        extra in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        let header = FrameHeader { fin, rsv, opcode, mask, payload_len: len };
        let mut buf = Vec::new();
        header.encode_into(&mut buf);
        prop_assert_eq!(buf.len(), header.encoded_len());
        let encoded = buf.len();
        buf.extend(&extra);
        prop_assert_eq!(FrameHeader::parse(&buf), Ok(Parsed::Complete { value: header, consumed: encoded }));
        // Every strict prefix is Partial, and `needed` never overshoots.
        for cut in 0..encoded {
            match FrameHeader::parse(&buf[..cut]) {
                Ok(Parsed::Partial { needed }) => prop_assert!(cut + needed <= encoded),
                other => prop_assert!(false, "prefix {} gave {:?}", cut, other),
            }
        }
    }
}
