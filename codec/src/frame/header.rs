//! The RFC 6455 §5.2 base frame header, shared by RFC 6455 and the h2ws stream framing.
//!
//! Parsing borrows the caller's buffer and is incremental: with too few bytes it says how many
//! more are needed (like `httparse`), so a decoder never copies more than a header's 14 bytes.

use alloc::vec::Vec;

use super::OpCode;
use crate::error::ProtocolError;

/// The longest header: 2 bytes + 8 bytes of extended length + 4 bytes of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// The result of an incremental parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// `value` was read from the first `consumed` bytes.
    Complete { value: T, consumed: usize },
    /// At least `needed` more bytes are required before the value can be read.
    Partial { needed: usize },
}

/// A frame header. `payload_len` follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// The three RSV bits, RSV1 = `0b100`, RSV2 = `0b010`, RSV3 = `0b001`.
    pub rsv: u8,
    pub opcode: OpCode,
    /// The masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `buf`.
    ///
    /// Rejects reserved opcodes (as soon as byte 0 is there), extended lengths that a shorter
    /// form could hold, and 64-bit lengths with the top bit set. Masking, RSV and control-frame
    /// rules depend on the connection and are checked there.
    pub fn parse(buf: &[u8]) -> Result<Parsed<FrameHeader>, ProtocolError> {
        let Some(&b0) = buf.first() else {
            return Ok(Parsed::Partial { needed: 2 });
        };
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let Some(&b1) = buf.get(1) else {
            return Ok(Parsed::Partial { needed: 1 });
        };
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        let ext_len = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + ext_len + if masked { 4 } else { 0 };
        if buf.len() < header_len {
            return Ok(Parsed::Partial {
                needed: header_len - buf.len(),
            });
        }
        let payload_len = match len7 {
            126 => {
                let len = u16::from_be_bytes([buf[2], buf[3]]);
                if len < 126 {
                    return Err(ProtocolError::NonMinimalLength);
                }
                u64::from(len)
            }
            127 => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(bytes);
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthTooLarge);
                }
                if len <= u64::from(u16::MAX) {
                    return Err(ProtocolError::NonMinimalLength);
                }
                len
            }
            short => u64::from(short),
        };
        let mask = masked.then(|| {
            let at = 2 + ext_len;
            [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
        });
        Ok(Parsed::Complete {
            value: FrameHeader {
                fin: b0 & 0x80 != 0,
                rsv: (b0 >> 4) & 0b111,
                opcode,
                mask,
                payload_len,
            },
            consumed: header_len,
        })
    }

    /// Bytes [`encode`](Self::encode) writes: 2, 4 or 10, plus 4 with a mask.
    pub fn encoded_len(&self) -> usize {
        let ext = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header (always the minimal length encoding) to the start of `out`; returns the
    /// bytes written, or `None` when `out` is too short. Bits of `rsv` above the low three are
    /// ignored.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let len = self.encoded_len();
        let out = out.get_mut(..len)?;
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let at = match self.payload_len {
            short @ 0..=125 => {
                out[1] = mask_bit | short as u8;
                2
            }
            mid @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(mid as u16).to_be_bytes());
                4
            }
            long => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&long.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[at..at + 4].copy_from_slice(&key);
        }
        Some(len)
    }

    /// Appends the header to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        // A MAX_HEADER_LEN buffer always holds a header.
        if let Some(n) = self.encode(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (FrameHeader, usize) {
        match FrameHeader::parse(buf) {
            Ok(Parsed::Complete { value, consumed }) => (value, consumed),
            other => panic!("expected a complete header, got {other:?}"),
        }
    }

    #[test]
    fn rfc6455_5_7_examples() {
        // A single-frame unmasked text message "Hello".
        let (h, n) = complete(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.payload_len, n),
            (true, OpCode::Text, None, 5, 2)
        );
        // A single-frame masked text message "Hello".
        let (h, n) = complete(&[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        assert_eq!(
            (h.mask, h.payload_len, n),
            (Some([0x37, 0xfa, 0x21, 0x3d]), 5, 6)
        );
        // A fragmented unmasked text message: "Hel" then "lo".
        let (h, _) = complete(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert_eq!((h.fin, h.opcode), (false, OpCode::Text));
        let (h, _) = complete(&[0x80, 0x02, 0x6c, 0x6f]);
        assert_eq!((h.fin, h.opcode), (true, OpCode::Continuation));
        // Unmasked Ping and masked Pong.
        let (h, _) = complete(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(h.opcode, OpCode::Ping);
        let (h, _) = complete(&[
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        assert_eq!((h.opcode, h.mask.is_some()), (OpCode::Pong, true));
        // 256 bytes binary in a single unmasked frame, and 64 KiB.
        let (h, n) = complete(&[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 256, 4));
        let (h, n) = complete(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn partial_says_how_much() {
        assert_eq!(FrameHeader::parse(&[]), Ok(Parsed::Partial { needed: 2 }));
        assert_eq!(
            FrameHeader::parse(&[0x82]),
            Ok(Parsed::Partial { needed: 1 })
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 0xFE]),
            Ok(Parsed::Partial { needed: 6 })
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7F, 0]),
            Ok(Parsed::Partial { needed: 7 })
        );
        // A reserved opcode fails on the first byte, without waiting for more.
        assert_eq!(
            FrameHeader::parse(&[0x83]),
            Err(ProtocolError::ReservedOpcode(3))
        );
    }

    #[test]
    fn length_rules() {
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7E, 0x00, 0x7D]),
            Err(ProtocolError::NonMinimalLength)
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
            Err(ProtocolError::NonMinimalLength)
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::LengthTooLarge)
        );
        let (h, _) = complete(&[0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(h.payload_len, u64::MAX >> 1);
    }

    #[test]
    fn encode_round_trip() {
        for len in [0u64, 1, 125, 126, 127, 0xFFFF, 0x1_0000, u64::MAX >> 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                for (fin, rsv, opcode) in [
                    (true, 0, OpCode::Binary),
                    (false, 0b101, OpCode::Continuation),
                ] {
                    let h = FrameHeader {
                        fin,
                        rsv,
                        opcode,
                        mask,
                        payload_len: len,
                    };
                    let mut out = Vec::new();
                    h.encode_into(&mut out);
                    assert_eq!(out.len(), h.encoded_len());
                    assert_eq!(complete(&out), (h, out.len()));
                    let mut short = [0u8; 13];
                    assert_eq!(h.encode(&mut short[..h.encoded_len() - 1]), None);
                }
            }
        }
    }
}
