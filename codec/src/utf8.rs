//! Incremental UTF-8 validation across chunk and fragment boundaries.
//!
//! `simdutf8` validates the bulk of each chunk; this module only carries the 1-3 bytes of a
//! sequence cut by a boundary. A cut sequence that could still become valid is not an error
//! until [`Utf8Validator::finish`]; a byte that can never be valid fails the chunk it arrives in,
//! so a bad text message is refused at once, not when it ends (Autobahn 6.4.x).

use crate::error::ProtocolError;

/// Validates a byte stream fed in arbitrary pieces.
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    /// The start of a sequence cut by the end of the previous chunk.
    carry: [u8; 4],
    carry_len: u8,
}

/// The length of a sequence from its lead byte (only called on bytes that started an
/// incomplete-but-valid sequence, so 0xC2-0xF4).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

impl Utf8Validator {
    pub const fn new() -> Self {
        Utf8Validator {
            carry: [0; 4],
            carry_len: 0,
        }
    }

    /// Validates the next piece of the stream.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), ProtocolError> {
        if self.carry_len > 0 {
            let have = usize::from(self.carry_len);
            let need = sequence_len(self.carry[0]) - have;
            let take = need.min(chunk.len());
            self.carry[have..have + take].copy_from_slice(&chunk[..take]);
            let seq = &self.carry[..have + take];
            match core::str::from_utf8(seq) {
                Ok(_) => {}
                Err(e) if e.error_len().is_some() => return Err(ProtocolError::InvalidUtf8),
                Err(_) => {
                    // Still incomplete: the chunk was too short to finish the sequence.
                    self.carry_len = (have + take) as u8;
                    return Ok(());
                }
            }
            self.carry_len = 0;
            chunk = &chunk[take..];
        }
        match simdutf8::compat::from_utf8(chunk) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(ProtocolError::InvalidUtf8),
            Err(e) => {
                // The chunk ends inside a sequence that may still be valid (at most 3 bytes).
                let tail = &chunk[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Ends the stream: an unfinished sequence is now an error. Resets for the next message.
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        let incomplete = self.carry_len > 0;
        self.carry_len = 0;
        if incomplete {
            Err(ProtocolError::InvalidUtf8)
        } else {
            Ok(())
        }
    }

    /// Forgets any carried bytes.
    pub fn reset(&mut self) {
        self.carry_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    fn check_split(bytes: &[u8]) -> bool {
        let whole = core::str::from_utf8(bytes).is_ok();
        for cut1 in 0..=bytes.len() {
            for cut2 in cut1..=bytes.len() {
                let mut v = Utf8Validator::new();
                let ok = v.feed(&bytes[..cut1]).is_ok()
                    && v.feed(&bytes[cut1..cut2]).is_ok()
                    && v.feed(&bytes[cut2..]).is_ok()
                    && v.finish().is_ok();
                assert_eq!(ok, whole, "{bytes:x?} cut at {cut1},{cut2}");
            }
        }
        whole
    }

    #[test]
    fn valid_text_at_every_split() {
        assert!(check_split("κόσμε €𝄞 a".as_bytes()));
        assert!(check_split(&[0xF4, 0x8F, 0xBF, 0xBF]));
    }

    #[test]
    fn invalid_text_at_every_split() {
        for bad in [
            &[
                0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80,
            ][..],
            &[0xF4, 0x90, 0x80, 0x80],
            &[0xC0, 0x80],
            &[0xE0, 0x80, 0x80],
            &[0x61, 0xFF],
            &[0xE2, 0x82],
            &[0x80],
        ] {
            assert!(!check_split(bad));
        }
    }

    #[test]
    fn fails_at_first_invalid_byte_mid_message() {
        let mut v = Utf8Validator::new();
        v.feed("ok ".as_bytes()).unwrap();
        v.feed(&[0xE2]).unwrap(); // may still become '€'
        assert_eq!(v.feed(&[0x28]), Err(ProtocolError::InvalidUtf8)); // never can
        let mut v = Utf8Validator::new();
        // 0xED 0xA0 starts a surrogate: invalid as soon as the second byte is seen.
        v.feed(&[0xED]).unwrap();
        assert_eq!(v.feed(&[0xA0]), Err(ProtocolError::InvalidUtf8));
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2000))]
        /// The assembler builds `String`s unchecked on this validator's word: it must agree
        /// with `core::str::from_utf8` on any bytes, cut anywhere. Inputs mix valid text (ASCII
        /// and multi-byte) with arbitrary bytes, so both outcomes are common.
        #[test]
        fn agrees_with_core_on_any_bytes_and_cuts(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::arbitrary::any::<alloc::string::String>()
                        .prop_map(alloc::string::String::into_bytes),
                    proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..6),
                    proptest::collection::vec(0x80u8..=0xF5, 0..4),
                ],
                0..6,
            ),
            cuts in proptest::collection::vec(proptest::arbitrary::any::<usize>(), 0..5),
        ) {
            let bytes: alloc::vec::Vec<u8> = parts.concat();
            let mut at: alloc::vec::Vec<usize> =
                cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            at.sort_unstable();
            let mut v = Utf8Validator::new();
            let mut ok = true;
            let mut start = 0;
            for &cut in at.iter().chain([bytes.len()].iter()) {
                ok = ok && v.feed(&bytes[start..cut]).is_ok();
                start = cut;
            }
            ok = ok && v.finish().is_ok();
            proptest::prop_assert_eq!(ok, core::str::from_utf8(&bytes).is_ok());
        }
    }

    #[test]
    fn truncated_is_an_error_only_at_the_end() {
        let mut v = Utf8Validator::new();
        v.feed(&[0xF0, 0x9D]).unwrap();
        v.feed(&[0x84]).unwrap();
        assert_eq!(v.finish(), Err(ProtocolError::InvalidUtf8));
        // finish() reset the carry.
        v.feed(b"fresh").unwrap();
        assert_eq!(v.finish(), Ok(()));
    }
}
