//! The HTTP/2 native seed mapping (DESIGN §4): each DATA frame carries exactly one WebSocket
//! frame; byte 0 is FIN|RSV1|RSV2|RSV3|opcode, the rest of the DATA frame is the payload. There
//! is no length field and no mask: HTTP/2 already delimits the frame.

use super::OpCode;
use crate::error::ProtocolError;

/// Splits byte 0 into `(fin, rsv, opcode)`; `rsv` holds the three RSV bits (RSV1 = `0b100`).
pub fn parse_first_byte(b: u8) -> Result<(bool, u8, OpCode), ProtocolError> {
    let opcode = OpCode::from_u8(b & 0x0F)?;
    Ok((b & 0x80 != 0, (b >> 4) & 0b111, opcode))
}

/// Builds byte 0 from its parts; bits of `rsv` above the low three are ignored.
pub fn first_byte(fin: bool, rsv: u8, opcode: OpCode) -> u8 {
    (u8::from(fin) << 7) | ((rsv & 0b111) << 4) | opcode.as_u8()
}

/// A parsed DATA frame: the header fields and the borrowed payload (`data[1..]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NativeFrame<'a> {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: OpCode,
    pub payload: &'a [u8],
}

/// Parses one whole DATA frame without copying. `Ok(None)` for an empty DATA frame, which
/// carries no WebSocket frame (DESIGN §4: receivers stay unaffected by it).
pub fn parse_data_frame(data: &[u8]) -> Result<Option<NativeFrame<'_>>, ProtocolError> {
    let Some((&first, payload)) = data.split_first() else {
        return Ok(None);
    };
    let (fin, rsv, opcode) = parse_first_byte(first)?;
    Ok(Some(NativeFrame {
        fin,
        rsv,
        opcode,
        payload,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_round_trip() {
        for b in 0u8..=255 {
            match parse_first_byte(b) {
                Ok((fin, rsv, op)) => assert_eq!(first_byte(fin, rsv, op), b),
                Err(ProtocolError::ReservedOpcode(op)) => assert_eq!(op, b & 0x0F),
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(first_byte(true, 0b100, OpCode::Text), 0xC1);
    }

    #[test]
    fn data_frame() {
        assert_eq!(parse_data_frame(&[]), Ok(None));
        let f = parse_data_frame(&[0x82, 1, 2]).unwrap().unwrap();
        assert_eq!(
            (f.fin, f.rsv, f.opcode, f.payload),
            (true, 0, OpCode::Binary, &[1u8, 2][..])
        );
        assert_eq!(
            parse_data_frame(&[0x83]),
            Err(ProtocolError::ReservedOpcode(3))
        );
    }
}
