//! The 4-bit frame opcode (RFC 6455 §5.2, §11.8).

use crate::error::ProtocolError;

/// A defined opcode. Reserved values (0x3-0x7, 0xB-0xF) are rejected when parsed, so holding an
/// `OpCode` means it is one the protocol knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    /// Decodes the low 4 bits of a frame's first byte.
    pub const fn from_u8(bits: u8) -> Result<OpCode, ProtocolError> {
        Ok(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// The 4-bit wire value.
    pub const fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, Ping and Pong: at most 125 bytes, never fragmented, may interleave a message.
    pub const fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reserved() {
        for bits in 0u8..16 {
            match OpCode::from_u8(bits) {
                Ok(op) => assert_eq!(op.as_u8(), bits),
                Err(e) => {
                    assert!(matches!(bits, 3..=7 | 0xB..=0xF));
                    assert_eq!(e, ProtocolError::ReservedOpcode(bits));
                }
            }
        }
        assert!(OpCode::Ping.is_control() && !OpCode::Text.is_control());
    }
}
