//! Typed errors: what the peer did wrong ([`ProtocolError`], each mapped to a close code) and
//! why a send was refused ([`SendError`]).

use core::fmt;

use crate::close::CloseCode;

/// Why permessage-deflate data could not be inflated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeflateFailure {
    /// The message inflates past `max_message_size` (1009).
    TooBig,
    /// The compressed data is not a valid DEFLATE stream (1007).
    Corrupt,
}

/// A rule the peer broke (or, for [`ProtocolError::MissingMaskSeed`], a local misconfiguration).
/// Every variant maps to the close code sent to the peer via [`ProtocolError::close_code`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Opcode 0x3-0x7 or 0xB-0xF (1002).
    ReservedOpcode(u8),
    /// An RSV bit set that no negotiated extension defines (1002).
    ReservedBits,
    /// A masked frame where masking is not allowed: server→client in RFC 6455, either way in the
    /// stream framing (1002).
    UnexpectedMask,
    /// An unmasked client→server frame in RFC 6455 (1002).
    MissingMask,
    /// A control frame with more than 125 payload bytes (1002).
    ControlTooLong,
    /// A control frame with FIN = 0 (1002).
    FragmentedControl,
    /// A Continuation frame with no message in progress (1002).
    UnexpectedContinuation,
    /// A Text/Binary frame while a fragmented message is in progress (1002).
    ExpectedContinuation,
    /// An extended length that would fit a shorter encoding (1002).
    NonMinimalLength,
    /// A 64-bit length with its most significant bit set (1002).
    LengthTooLarge,
    /// A frame larger than `max_frame_size` (1009).
    FrameTooBig,
    /// A message larger than `max_message_size` (1009).
    MessageTooBig,
    /// Invalid UTF-8 in a text message or close reason (1007).
    InvalidUtf8,
    /// A Close frame with a code that may not be sent (1002).
    InvalidCloseCode(u16),
    /// A Close frame with a 1-byte payload (1002).
    InvalidClosePayload,
    /// permessage-deflate data that is corrupt (1007) or inflates past the limit (1009).
    Deflate(DeflateFailure),
    /// A client on RFC 6455 framing was built without [`with_mask_seed`](crate::Connection::with_mask_seed):
    /// it cannot mask the frames it must send, so it refuses to run (1011).
    MissingMaskSeed,
    /// A resume acknowledgement (codec [`crate::resume`]) the peer could not honestly send:
    /// it acknowledges frames never sent (1002).
    BadAck,
}

impl ProtocolError {
    /// The close code to send to the peer for this error.
    pub fn close_code(&self) -> CloseCode {
        use ProtocolError::*;
        match self {
            FrameTooBig | MessageTooBig | Deflate(DeflateFailure::TooBig) => CloseCode::TOO_BIG,
            InvalidUtf8 | Deflate(DeflateFailure::Corrupt) => CloseCode::INVALID_PAYLOAD,
            MissingMaskSeed => CloseCode::INTERNAL_ERROR,
            ReservedOpcode(_)
            | ReservedBits
            | UnexpectedMask
            | MissingMask
            | ControlTooLong
            | FragmentedControl
            | UnexpectedContinuation
            | ExpectedContinuation
            | NonMinimalLength
            | LengthTooLarge
            | InvalidCloseCode(_)
            | InvalidClosePayload
            | BadAck => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason, also used as the Close frame's reason text (always ≤ 123 bytes).
    pub fn reason(&self) -> &'static str {
        use ProtocolError::*;
        match self {
            ReservedOpcode(_) => "reserved opcode",
            ReservedBits => "reserved bits set",
            UnexpectedMask => "unexpected masked frame",
            MissingMask => "unmasked client frame",
            ControlTooLong => "control frame too long",
            FragmentedControl => "fragmented control frame",
            UnexpectedContinuation => "unexpected continuation frame",
            ExpectedContinuation => "expected continuation frame",
            NonMinimalLength => "non-minimal payload length",
            LengthTooLarge => "payload length has its top bit set",
            FrameTooBig => "frame too big",
            MessageTooBig => "message too big",
            InvalidUtf8 => "invalid UTF-8",
            InvalidCloseCode(_) => "invalid close code",
            InvalidClosePayload => "invalid close payload",
            Deflate(DeflateFailure::TooBig) => "message too big after inflation",
            Deflate(DeflateFailure::Corrupt) => "invalid compressed data",
            MissingMaskSeed => "client on RFC 6455 framing has no mask seed",
            BadAck => "acknowledgement beyond the frames sent",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            other => f.write_str(other.reason()),
        }?;
        write!(f, " (close {})", self.close_code())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProtocolError {}

/// Why a send was refused. Nothing was queued.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// A Close frame was already sent (or the connection is closed): no more frames.
    Closed,
    /// A Ping/Pong payload over 125 bytes.
    ControlTooLong,
    /// `close()` with a code that may not be sent (see [`CloseCode::is_sendable`]).
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes.
    ReasonTooLong,
    /// `send_fragment` out of order (Continuation without a start, a new start before FIN,
    /// or a whole message while a fragmented one is open).
    FragmentSequence,
    /// A client on RFC 6455 framing was built without `with_mask_seed`.
    MissingMaskSeed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("connection is closing or closed"),
            SendError::ControlTooLong => f.write_str("control frame payload over 125 bytes"),
            SendError::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            SendError::ReasonTooLong => f.write_str("close reason over 123 bytes"),
            SendError::FragmentSequence => f.write_str("fragment out of sequence"),
            SendError::MissingMaskSeed => {
                f.write_str("client on RFC 6455 framing needs with_mask_seed() before sending")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SendError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes() {
        assert_eq!(
            ProtocolError::ReservedBits.close_code(),
            CloseCode::PROTOCOL_ERROR
        );
        assert_eq!(
            ProtocolError::InvalidUtf8.close_code(),
            CloseCode::INVALID_PAYLOAD
        );
        assert_eq!(
            ProtocolError::MessageTooBig.close_code(),
            CloseCode::TOO_BIG
        );
        assert_eq!(
            ProtocolError::Deflate(DeflateFailure::TooBig).close_code(),
            CloseCode::TOO_BIG
        );
        assert_eq!(
            ProtocolError::Deflate(DeflateFailure::Corrupt).close_code(),
            CloseCode::INVALID_PAYLOAD
        );
        assert_eq!(
            ProtocolError::InvalidCloseCode(1005).close_code(),
            CloseCode::PROTOCOL_ERROR
        );
    }

    #[test]
    fn display_mentions_code() {
        let s = alloc::format!("{}", ProtocolError::ReservedOpcode(3));
        assert_eq!(s, "reserved opcode 0x3 (close 1002)");
    }
}
