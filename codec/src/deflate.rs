//! permessage-deflate (RFC 7692) on `miniz_oxide`: negotiation of the four parameters, a
//! per-message [`Compressor`] and a bounded, streaming [`Decompressor`].
//!
//! Window sizes: `miniz_oxide` always inflates with a 32 KiB window, which reads any smaller
//! window, so every `*_max_window_bits` value is accepted on the receiving side. On the sending
//! side a compressor must never reference data further back than the agreed window
//! (RFC 7692 §7.1.2.1), and `miniz_oxide` has no true small-window LZ77 mode (its "window bits"
//! setting in 0.9 only lowers the level). So for a 12 to 14-bit window we compress each message
//! in window-sized pieces with the context reset before each piece (distances stay inside a
//! piece), and below 12 bits we use run-length matching (distance 1 only). Both honour the
//! window, at some cost in ratio, so no offer has to be declined for its window size. A test
//! checks every distance with an independent decoder.
//!
//! Limits of the inflater: `miniz_oxide` reads a back-reference to before the start of the
//! stream as zero bytes instead of failing (zlib reports "distance too far back"), so such
//! corrupt input yields zeros rather than [`DeflateError::Corrupt`]. It never reads memory it
//! should not and never sees another connection's or (after a reset) another message's data.
//!
//! ```
//! use h2ws_codec::deflate::DeflateParams;
//! let params = DeflateParams::default();
//! let (mut tx, mut rx) = (params.compressor(false), params.decompressor(true));
//! let mut wire = Vec::new();
//! tx.compress(b"Hello", &mut wire);
//! let mut plain = Vec::new();
//! rx.decompress(&wire, true, &mut plain, 1 << 20).unwrap();
//! assert_eq!(plain, b"Hello");
//! ```

use crate::handshake::negotiate::{parse_extensions, ExtensionOffer};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressionStrategy, CompressorOxide, TDEFLFlush,
    TDEFLStatus,
};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// The extension token.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The empty stored block a sync flush ends with; stripped by senders, re-appended by receivers
/// (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compression level used by [`DeflateParams::compressor`]: zlib's default trade-off.
pub const DEFAULT_LEVEL: u8 = 6;

/// Inflate output is produced in steps of at most this many bytes, so the output buffer never
/// grows more than one step beyond what was actually produced (and never past the limit).
const INFLATE_STEP: usize = 32 * 1024;

/// First inflate step, grown by doubling while output keeps filling it: small messages then
/// do not pay for zero-filling a full step.
const INFLATE_FIRST_STEP: usize = 1024;

/// Consecutive no-progress inflate calls tolerated before the input counts as corrupt
/// (observed: at most one in a row).
const MAX_STALLS: u8 = 3;

/// Compressor output step (see [`Compressor::compress`]).
const COMPRESS_STEP: usize = 64 * 1024;

/// permessage-deflate failures: data errors while inflating and negotiation errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeflateError {
    /// The inflated message would exceed the caller's limit (close 1009).
    TooBig,
    /// The compressed data is not valid DEFLATE; the connection fails it (close 1002 or 1007,
    /// the connection's choice: RFC 7692 does not name one).
    Corrupt,
    /// The server's `permessage-deflate` response is malformed or unacceptable (fail the
    /// connection, RFC 7692 §5); the reason says which rule broke.
    Negotiation(&'static str),
}

impl fmt::Display for DeflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooBig => f.write_str("inflated message exceeds the size limit"),
            Self::Corrupt => f.write_str("invalid compressed data"),
            Self::Negotiation(r) => write!(f, "permessage-deflate negotiation failed: {r}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DeflateError {}

/// The agreed permessage-deflate parameters (RFC 7692 §7.1), from either side's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compression context after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message.
    pub client_no_context_takeover: bool,
    /// Largest LZ77 window (log2, 8..=15) the server may compress with.
    pub server_max_window_bits: u8,
    /// Largest LZ77 window (log2, 8..=15) the client may compress with.
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    /// Context takeover both ways, 32 KiB windows: what a bare `permessage-deflate` agrees to.
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateParams {
    /// The compressor for our outgoing messages (`is_server` = our role).
    pub fn compressor(&self, is_server: bool) -> Compressor {
        self.compressor_with_level(is_server, DEFAULT_LEVEL)
    }

    /// Like [`compressor`](Self::compressor) with an explicit level (0 = stored, 1 = fastest,
    /// 9 = best); levels trade CPU for ratio and do not change the wire format.
    pub fn compressor_with_level(&self, is_server: bool, level: u8) -> Compressor {
        let (no_takeover, bits) = if is_server {
            (self.server_no_context_takeover, self.server_max_window_bits)
        } else {
            (self.client_no_context_takeover, self.client_max_window_bits)
        };
        Compressor::new(level, bits, no_takeover)
    }

    /// The decompressor for the peer's messages (`is_server` = our role).
    pub fn decompressor(&self, is_server: bool) -> Decompressor {
        let peer_no_takeover = if is_server {
            self.client_no_context_takeover
        } else {
            self.server_no_context_takeover
        };
        Decompressor::new(peer_no_takeover)
    }

    /// The response header value a server sends for these parameters, echoing what the offer
    /// asked for (see [`negotiate_server`]).
    fn response(&self, offered: &OfferParams) -> String {
        let mut s = String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if offered.server_max_window_bits.is_some() {
            push_bits(
                &mut s,
                "server_max_window_bits",
                self.server_max_window_bits,
            );
        }
        if let Some(Some(_)) = offered.client_max_window_bits {
            push_bits(
                &mut s,
                "client_max_window_bits",
                self.client_max_window_bits,
            );
        }
        s
    }
}

fn push_bits(s: &mut String, name: &str, bits: u8) {
    s.push_str("; ");
    s.push_str(name);
    s.push('=');
    if bits >= 10 {
        s.push('1');
    }
    s.push((b'0' + bits % 10) as char);
}

/// The parameters of one `permessage-deflate` element, syntax-checked (RFC 7692 §7.1).
#[derive(Default)]
struct OfferParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (allowed only in a client's offer).
    client_max_window_bits: Option<Option<u8>>,
}

/// `8`..`15`, decimal without leading zeros (RFC 7692 §7.1.2.1 ABNF `%x38-39 / "1" %x30-35`).
fn window_bits(v: &str) -> Option<u8> {
    match v.as_bytes() {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// Checks one element's parameters: known names, each at most once, values where required.
/// `in_offer` allows the bare `client_max_window_bits` a client may offer.
fn parse_params(offer: &ExtensionOffer, in_offer: bool) -> Result<OfferParams, &'static str> {
    let mut p = OfferParams::default();
    let mut seen = [false; 4];
    for (name, value) in &offer.params {
        let idx = match name.as_str() {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return Err("unknown parameter"),
        };
        if core::mem::replace(&mut seen[idx], true) {
            return Err("duplicate parameter");
        }
        match (idx, value.as_deref()) {
            (0, None) => p.server_no_context_takeover = true,
            (1, None) => p.client_no_context_takeover = true,
            (0 | 1, Some(_)) => return Err("no_context_takeover takes no value"),
            (2, Some(v)) => {
                p.server_max_window_bits = Some(window_bits(v).ok_or("window bits not 8..15")?)
            }
            (2, None) => return Err("server_max_window_bits needs a value"),
            (3, Some(v)) => {
                p.client_max_window_bits =
                    Some(Some(window_bits(v).ok_or("window bits not 8..15")?))
            }
            (3, None) if in_offer => p.client_max_window_bits = Some(None),
            (3, None) => return Err("client_max_window_bits needs a value"),
            _ => return Err("unknown parameter"),
        }
    }
    Ok(p)
}

/// Server side: picks the first acceptable `permessage-deflate` offer (RFC 7692 §5: offers are
/// in the client's preference order) and returns the agreed parameters and the
/// `Sec-WebSocket-Extensions` response value. Malformed offers are declined, as §7.1 asks;
/// `None` means answer without permessage-deflate.
///
/// Every valid offer can be honoured (see the module docs on windows), so the response
/// accepts the client's parameters as given: no_context_takeover flags are echoed, an offered
/// `server_max_window_bits` is echoed and obeyed, and a `client_max_window_bits` with a value is
/// echoed (a bare one is left out: we inflate any window, so the client may use 15).
pub fn negotiate_server(offers: &[ExtensionOffer]) -> Option<(DeflateParams, String)> {
    offers
        .iter()
        .filter(|o| o.name.eq_ignore_ascii_case(EXTENSION_NAME))
        .find_map(|o| {
            let p = parse_params(o, true).ok()?;
            let params = DeflateParams {
                server_no_context_takeover: p.server_no_context_takeover,
                client_no_context_takeover: p.client_no_context_takeover,
                server_max_window_bits: p.server_max_window_bits.unwrap_or(15),
                client_max_window_bits: p.client_max_window_bits.flatten().unwrap_or(15),
            };
            let response = params.response(&p);
            Some((params, response))
        })
}

/// Client side: the offer to send. A bare `client_max_window_bits` tells the server it may ask
/// for a smaller client window, which we can honour.
pub fn client_offer() -> String {
    String::from("permessage-deflate; client_max_window_bits")
}

/// Client side: checks the server's `Sec-WebSocket-Extensions` value against [`client_offer`]
/// and returns the agreed parameters. Anything but exactly one valid `permessage-deflate`
/// element is an error, and the client must fail the connection (RFC 7692 §5).
pub fn accept_response(value: &str) -> Result<DeflateParams, DeflateError> {
    let offers =
        parse_extensions(value).map_err(|_| DeflateError::Negotiation("malformed header"))?;
    let [offer] = offers.as_slice() else {
        return Err(DeflateError::Negotiation("expected exactly one extension"));
    };
    if !offer.name.eq_ignore_ascii_case(EXTENSION_NAME) {
        return Err(DeflateError::Negotiation("extension was not offered"));
    }
    let p = parse_params(offer, false).map_err(DeflateError::Negotiation)?;
    Ok(DeflateParams {
        server_no_context_takeover: p.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover,
        server_max_window_bits: p.server_max_window_bits.unwrap_or(15),
        client_max_window_bits: p.client_max_window_bits.flatten().unwrap_or(15),
    })
}

/// Alias of [`accept_response`] under the name used in `API.md`.
pub fn accept_client(value: &str) -> Result<DeflateParams, DeflateError> {
    accept_response(value)
}

/// Compresses whole messages for one direction of one connection.
pub struct Compressor {
    /// Allocated on first use (~200 KiB of tables), so a socket that never sends costs nothing.
    inner: Option<Box<CompressorOxide>>,
    flags: u32,
    /// `Some(n)`: the agreed window (12 to 14 bits) is smaller than miniz's 32 KiB, so messages
    /// are compressed in independent pieces of at most `n` (= window) bytes, the context reset
    /// before each: no back-reference can reach further than the window (RFC 7692 §7.1.2.1).
    piece: Option<usize>,
    no_context_takeover: bool,
    /// True while the context is empty (fresh or just reset), to skip a needless reset.
    fresh: bool,
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    fn new(level: u8, window_bits: u8, no_context_takeover: bool) -> Self {
        let level = level.min(10);
        let bits = window_bits.clamp(8, 15);
        // Below 12 bits a context reset (about 200 KiB of tables to clear) per window-sized
        // piece would cost more than the compression; run-length matching, whose only distance
        // is 1, fits any window instead. (Level 1 would select miniz's fast path, which ignores
        // the RLE flag, hence at least 2.)
        let (level, strategy, piece) = match bits {
            15 => (level, CompressionStrategy::Default, None),
            12..=14 => (level, CompressionStrategy::Default, Some(1usize << bits)),
            _ if level == 0 => (0, CompressionStrategy::Default, None),
            _ => (level.max(2), CompressionStrategy::RLE, None),
        };
        // Negative window bits = raw DEFLATE, no zlib header.
        let flags = create_comp_flags_from_zip_params(i32::from(level), -15, strategy as i32);
        Self {
            inner: None,
            flags,
            piece,
            no_context_takeover,
            fresh: true,
        }
    }

    /// Appends one compressed message to `out`: DEFLATE blocks ending in a sync flush, with the
    /// trailing `00 00 ff ff` removed (RFC 7692 §7.2.1). With no_context_takeover the context is
    /// reset first, so the message never refers to an earlier one.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let flags = self.flags;
        let inner = self
            .inner
            .get_or_insert_with(|| Box::new(CompressorOxide::new(flags)));
        let start = out.len();
        match self.piece {
            None => {
                if self.no_context_takeover && !self.fresh {
                    inner.reset();
                }
                self.fresh = false;
                compress_flushed(inner, payload, out);
            }
            Some(n) => {
                // Each piece ends in a byte-aligned sync flush, so the pieces simply follow one
                // another as blocks of one stream; the reset forgets everything before.
                let mut pieces = payload.chunks(n);
                let first = pieces.next().unwrap_or(&[]);
                for piece in core::iter::once(first).chain(pieces) {
                    if !self.fresh {
                        inner.reset();
                    }
                    self.fresh = false;
                    compress_flushed(inner, piece, out);
                }
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
    }
}

/// Compresses `input` and sync-flushes, appending to `out`. Output goes straight into `out`, in
/// steps no larger than the worst case (stored blocks + flush marker) and at most 64 KiB, so a
/// large message is not zero-filled twice its size up front; usually one call suffices.
fn compress_flushed(inner: &mut CompressorOxide, mut input: &[u8], out: &mut Vec<u8>) {
    let step = (input.len() + input.len() / 64 + 64).min(COMPRESS_STEP);
    loop {
        let len = out.len();
        out.resize(len + step, 0);
        let (status, consumed, written) = compress(inner, input, &mut out[len..], TDEFLFlush::Sync);
        out.truncate(len + written);
        input = &input[consumed..];
        // Done once all input is taken and the output was not filled (nothing pending).
        // (Had it been filled exactly, one more call adds an empty sync block: harmless.)
        if status != TDEFLStatus::Okay || (input.is_empty() && written < step) {
            break;
        }
    }
}

/// Inflates the peer's messages for one connection, frame by frame, within a size limit.
pub struct Decompressor {
    /// Allocated on first use (~43 KiB), like the compressor.
    state: Option<Box<InflateState>>,
    reset_after_message: bool,
    /// The current message's DEFLATE stream reached a final block (BFINAL = 1): anything after
    /// it in this message is ignored and the next message starts a fresh stream.
    ended: bool,
}

impl fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decompressor")
            .field("reset_after_message", &self.reset_after_message)
            .finish_non_exhaustive()
    }
}

impl Decompressor {
    fn new(reset_after_message: bool) -> Self {
        Self {
            state: None,
            reset_after_message,
            ended: false,
        }
    }

    /// Inflates one frame's payload of a compressed message, appending to `out`; on the last
    /// frame (`fin`) also the stripped `00 00 ff ff`. `out` never grows past `limit` bytes in
    /// total: output that would cross it is [`DeflateError::TooBig`], detected before it is
    /// stored, so a small "bomb" costs at most `limit` bytes of memory.
    pub fn decompress(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DeflateError> {
        self.feed(input, out, limit)?;
        if fin {
            self.feed(&TAIL, out, limit)?;
            if self.reset_after_message || self.ended {
                if let Some(state) = self.state.as_mut() {
                    state.reset(DataFormat::Raw);
                }
            }
            self.ended = false;
        }
        Ok(())
    }

    fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DeflateError> {
        let mut step = input
            .len()
            .saturating_mul(4)
            .clamp(INFLATE_FIRST_STEP, INFLATE_STEP);
        let mut stalls = 0u8;
        let state = self
            .state
            .get_or_insert_with(|| InflateState::new_boxed(DataFormat::Raw));
        loop {
            if self.ended {
                // Bytes after a final block (such as the re-appended tail) carry nothing.
                return Ok(());
            }
            let start = out.len();
            let room = limit.saturating_sub(start).min(step);
            let (res, capacity) = if room == 0 {
                // At the limit: a 1-byte probe tells whether more output is coming.
                let mut probe = [0u8; 1];
                let r = inflate(state, input, &mut probe, MZFlush::None);
                if r.bytes_written > 0 {
                    return Err(DeflateError::TooBig);
                }
                (r, 1)
            } else {
                grow_within(out, start + room, limit);
                out.resize(start + room, 0);
                let r = inflate(state, input, &mut out[start..], MZFlush::None);
                out.truncate(start + r.bytes_written);
                (r, room)
            };
            input = &input[res.bytes_consumed..];
            match res.status {
                Ok(MZStatus::StreamEnd) => self.ended = true,
                // `Buf` = no input to go on; output produced in the same call still counts,
                // and any that did not fit is pushed out by the next call below.
                Ok(_) | Err(MZError::Buf) => {}
                Err(_) => return Err(DeflateError::Corrupt),
            }
            let filled = res.bytes_written == capacity;
            if input.is_empty() && !filled {
                return Ok(());
            }
            if !filled && res.bytes_consumed == 0 && !self.ended {
                // miniz_oxide sometimes returns once without progress (reporting more output at
                // the wrap of its internal window) and moves on when called again; a run of
                // such calls means it is stuck, and we never spin on it.
                stalls += 1;
                if stalls > MAX_STALLS {
                    return Err(DeflateError::Corrupt);
                }
            } else {
                stalls = 0;
            }
            if filled {
                step = (step * 2).min(INFLATE_STEP);
            }
        }
    }
}

/// Makes room for `needed` bytes with amortized doubling, but never reserves past `limit`, so
/// the allocation stays within the caller's bound as well as the length.
fn grow_within(out: &mut Vec<u8>, needed: usize, limit: usize) {
    if out.capacity() < needed {
        let target = out
            .capacity()
            .saturating_mul(2)
            .max(needed)
            .min(limit.max(needed));
        out.reserve_exact(target - out.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn inflate_all(
        d: &mut Decompressor,
        parts: &[&[u8]],
        limit: usize,
    ) -> Result<Vec<u8>, DeflateError> {
        let mut out = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            d.decompress(p, i + 1 == parts.len(), &mut out, limit)?;
        }
        Ok(out)
    }

    fn hello_vectors() -> [&'static [u8]; 4] {
        [
            // §7.2.3.1 one fixed-Huffman block
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            // §7.2.3.3 one stored block (no compression)
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            // §7.2.3.4 a block with BFINAL = 1
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            // §7.2.3.5 two blocks in one message
            &[
                0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
            ],
        ]
    }

    #[test]
    fn rfc7692_vectors_inflate() {
        for v in hello_vectors() {
            let mut d = DeflateParams::default().decompressor(false);
            assert_eq!(inflate_all(&mut d, &[v], 5).unwrap(), b"Hello", "{v:02x?}");
            // One byte less than needed is too big.
            let mut d = DeflateParams::default().decompressor(false);
            assert_eq!(
                inflate_all(&mut d, &[v], 4),
                Err(DeflateError::TooBig),
                "{v:02x?}"
            );
            // Twice on one decompressor: the state after each message is ready for the next.
            let mut d = DeflateParams::default().decompressor(false);
            assert_eq!(inflate_all(&mut d, &[v], 5).unwrap(), b"Hello");
            assert_eq!(inflate_all(&mut d, &[v], 5).unwrap(), b"Hello");
        }
    }

    #[test]
    fn rfc7692_fragmented_and_shared_window() {
        // §7.2.3.1 fragmented across two frames.
        let mut d = DeflateParams::default().decompressor(false);
        assert_eq!(
            inflate_all(
                &mut d,
                &[&[0xf2, 0x48, 0xcd], &[0xc9, 0xc9, 0x07, 0x00]],
                64
            )
            .unwrap(),
            b"Hello"
        );
        // §7.2.3.2 second message refers back into the first one's window.
        assert_eq!(
            inflate_all(&mut d, &[&[0xf2, 0x00, 0x11, 0x00, 0x00]], 64).unwrap(),
            b"Hello"
        );
        // A fresh window cannot resolve them. (miniz_oxide reads a reference before the start
        // of the stream as zero bytes instead of failing like zlib; either way no earlier data.)
        let mut fresh = DeflateParams::default().decompressor(false);
        assert_ne!(
            inflate_all(&mut fresh, &[&[0xf2, 0x00, 0x11, 0x00, 0x00]], 64),
            Ok(b"Hello".to_vec())
        );
    }

    #[test]
    fn rfc7692_vectors_compress() {
        let mut c = DeflateParams::default().compressor(true);
        let mut out = Vec::new();
        c.compress(b"Hello", &mut out);
        assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        out.clear();
        c.compress(b"Hello", &mut out);
        assert_eq!(out, [0xf2, 0x00, 0x11, 0x00, 0x00]);
        // §7.2.3.6: an empty message compresses to a single 0x00.
        out.clear();
        DeflateParams::default()
            .compressor(true)
            .compress(b"", &mut out);
        assert_eq!(out, [0x00]);
    }

    #[test]
    fn no_context_takeover_resets_compressor() {
        let params = DeflateParams {
            server_no_context_takeover: true,
            ..Default::default()
        };
        let mut c = params.compressor(true);
        for _ in 0..3 {
            let mut out = Vec::new();
            c.compress(b"Hello", &mut out);
            assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        }
        // The client side of the same params keeps its context.
        let mut c = params.compressor(false);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        c.compress(b"Hello", &mut a);
        c.compress(b"Hello", &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn decompressor_resets_when_peer_does_not_take_over() {
        let params = DeflateParams {
            client_no_context_takeover: true,
            ..Default::default()
        };
        let mut d = params.decompressor(true);
        assert_eq!(
            inflate_all(&mut d, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]], 64).unwrap(),
            b"Hello"
        );
        // The window was dropped: a back-reference no longer finds the first message.
        assert_ne!(
            inflate_all(&mut d, &[&[0xf2, 0x00, 0x11, 0x00, 0x00]], 64),
            Ok(b"Hello".to_vec())
        );
    }

    #[test]
    fn small_window_uses_only_distance_one() {
        // Data with long repeats at distance 100: a 15-bit compressor shrinks it a lot, the
        // RLE compressor used for smaller windows cannot (it only repeats the previous byte).
        let unit: Vec<u8> = (0..100u8).collect();
        let data: Vec<u8> = unit.iter().cycle().take(10_000).copied().collect();
        let mut big = Vec::new();
        DeflateParams::default()
            .compressor(true)
            .compress(&data, &mut big);
        let small_params = DeflateParams {
            server_max_window_bits: 9,
            ..Default::default()
        };
        let mut small = Vec::new();
        small_params.compressor(true).compress(&data, &mut small);
        assert!(big.len() < 200, "{}", big.len());
        assert!(small.len() > 5_000, "{}", small.len());
        let mut d = small_params.decompressor(false);
        assert_eq!(inflate_all(&mut d, &[&small], 20_000).unwrap(), data);
    }

    #[test]
    fn negotiation_bare_offer() {
        let offers = parse_extensions("permessage-deflate").unwrap();
        let (p, resp) = negotiate_server(&offers).unwrap();
        assert_eq!(p, DeflateParams::default());
        assert_eq!(resp, "permessage-deflate");
        assert_eq!(accept_response(&resp).unwrap(), p);
    }

    #[test]
    fn negotiation_all_parameters() {
        let offers = parse_extensions(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=12",
        )
        .unwrap();
        let (p, resp) = negotiate_server(&offers).unwrap();
        assert_eq!(
            p,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 10,
                client_max_window_bits: 12,
            }
        );
        assert_eq!(
            resp,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=12"
        );
        assert_eq!(accept_response(&resp).unwrap(), p);
    }

    #[test]
    fn negotiation_declines_invalid_offers_and_takes_next() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=99",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; x=1",
            "x-other",
        ] {
            assert_eq!(
                negotiate_server(&parse_extensions(bad).unwrap()),
                None,
                "{bad}"
            );
        }
        let offers =
            parse_extensions("permessage-deflate; foo, permessage-deflate; client_max_window_bits")
                .unwrap();
        let (p, resp) = negotiate_server(&offers).unwrap();
        assert_eq!(p, DeflateParams::default());
        assert_eq!(resp, "permessage-deflate");
        // Quoted values are accepted once unescaped (RFC 6455 §9.1).
        let offers = parse_extensions("permessage-deflate; server_max_window_bits=\"9\"").unwrap();
        assert_eq!(
            negotiate_server(&offers).unwrap().0.server_max_window_bits,
            9
        );
    }

    #[test]
    fn client_accept_rules() {
        assert_eq!(
            parse_extensions(&client_offer()).unwrap()[0].param("client_max_window_bits"),
            Some(None)
        );
        let p = accept_response("permessage-deflate; client_max_window_bits=8").unwrap();
        assert_eq!(p.client_max_window_bits, 8);
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate, permessage-deflate",
            "x-foo",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits=20",
            "permessage-deflate;",
            "",
        ] {
            assert!(
                matches!(accept_response(bad), Err(DeflateError::Negotiation(_))),
                "{bad}"
            );
        }
        assert_eq!(
            accept_client("permessage-deflate").unwrap(),
            DeflateParams::default()
        );
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let mut d = DeflateParams::default().decompressor(false);
        // Block type 3 is reserved.
        assert_eq!(
            inflate_all(&mut d, &[&[0xff, 0xff, 0xff]], 1024),
            Err(DeflateError::Corrupt)
        );
        // Stored block whose length complement is wrong.
        let mut d = DeflateParams::default().decompressor(false);
        assert_eq!(
            inflate_all(
                &mut d,
                &[&[0x00, 0x05, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5]],
                1024
            ),
            Err(DeflateError::Corrupt)
        );
    }

    #[test]
    fn output_never_passes_limit() {
        let data = vec![b'a'; 100_000];
        let mut wire = Vec::new();
        DeflateParams::default()
            .compressor(true)
            .compress(&data, &mut wire);
        for limit in [0, 1, 99_999, 32 * 1024, 32 * 1024 + 1] {
            let mut d = DeflateParams::default().decompressor(false);
            let mut out = Vec::new();
            assert_eq!(
                d.decompress(&wire, true, &mut out, limit),
                Err(DeflateError::TooBig)
            );
            assert!(out.len() <= limit && out.capacity() <= limit, "{limit}");
        }
        let mut d = DeflateParams::default().decompressor(false);
        assert_eq!(inflate_all(&mut d, &[&wire], 100_000).unwrap(), data);
    }
}
