//! A frame-length guard between `h3` and `h3-quinn`.
//!
//! `h3` 0.0.8 buffers any frame but DATA whole before decoding it (HEADERS, unknown and
//! reserved types), with no length limit of its own, and reading from quinn grants the peer
//! more flow-control credit: a peer declaring a 1 GiB HEADERS or unknown frame could make the
//! server buffer all of it. This layer watches the HTTP/3 frame headers on request streams and
//! on the peer's control stream as the bytes pass (nothing is copied or changed) and stops a
//! stream whose non-DATA frame is longer than the limit: the request stream is reset with
//! H3_EXCESSIVE_LOAD, before its body is buffered. DATA frames of any length stream through.

use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use h3::error::Code;
use h3::quic::{self, ConnectionErrorIncoming, StreamErrorIncoming, StreamId, WriteBuf};

/// HTTP/3 frame type of DATA (RFC 9114 §7.2.1).
const DATA: u64 = 0x00;
/// Unidirectional stream type of the control stream (RFC 9114 §6.2.1).
const CONTROL_STREAM: u64 = 0x00;

/// Follows the frame headers of one stream's bytes.
#[derive(Debug)]
struct FrameScanner {
    state: State,
    /// Longest frame other than DATA allowed through.
    limit: usize,
    /// A varint being read (bytes so far).
    varint: [u8; 8],
    varint_len: usize,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// A unidirectional stream's type varint comes first.
    StreamType,
    /// Not a control stream: its bytes are not HTTP/3 frames (QPACK streams) or are ignored.
    PassThrough,
    FrameType,
    FrameLength {
        frame_type: u64,
    },
    Payload {
        remaining: u64,
    },
}

/// A frame longer than the guard allows.
#[derive(Debug, thiserror::Error)]
#[error("HTTP/3 frame type {frame_type:#x} of {length} bytes is longer than {limit}")]
pub(crate) struct FrameTooLong {
    frame_type: u64,
    length: u64,
    limit: usize,
}

impl FrameScanner {
    fn new(limit: usize, unidirectional: bool) -> Self {
        FrameScanner {
            state: if unidirectional {
                State::StreamType
            } else {
                State::FrameType
            },
            limit,
            varint: [0; 8],
            varint_len: 0,
        }
    }

    /// Feeds the next bytes of the stream.
    fn scan(&mut self, mut bytes: &[u8]) -> Result<(), FrameTooLong> {
        while !bytes.is_empty() {
            match self.state {
                State::PassThrough => return Ok(()),
                State::Payload { remaining } => {
                    let skip = remaining.min(bytes.len() as u64);
                    bytes = &bytes[skip as usize..];
                    self.state = if remaining == skip {
                        State::FrameType
                    } else {
                        State::Payload {
                            remaining: remaining - skip,
                        }
                    };
                }
                State::StreamType | State::FrameType | State::FrameLength { .. } => {
                    let Some(value) = self.read_varint(&mut bytes) else {
                        return Ok(());
                    };
                    self.state = match self.state {
                        State::StreamType if value == CONTROL_STREAM => State::FrameType,
                        State::StreamType => State::PassThrough,
                        State::FrameType => State::FrameLength { frame_type: value },
                        State::FrameLength { frame_type } => {
                            if frame_type != DATA && value > self.limit as u64 {
                                return Err(FrameTooLong {
                                    frame_type,
                                    length: value,
                                    limit: self.limit,
                                });
                            }
                            State::Payload { remaining: value }
                        }
                        other => other,
                    };
                    if let State::Payload { remaining: 0 } = self.state {
                        self.state = State::FrameType;
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes bytes of a QUIC varint (RFC 9000 §16); its value once complete.
    fn read_varint(&mut self, bytes: &mut &[u8]) -> Option<u64> {
        while let Some((&b, rest)) = bytes.split_first() {
            *bytes = rest;
            self.varint[self.varint_len] = b;
            self.varint_len += 1;
            let want = 1usize << (self.varint[0] >> 6);
            if self.varint_len == want {
                let mut value = u64::from(self.varint[0] & 0x3f);
                for &b in &self.varint[1..want] {
                    value = (value << 8) | u64::from(b);
                }
                self.varint_len = 0;
                return Some(value);
            }
        }
        None
    }
}

/// Wraps an `h3-quinn` connection so its incoming streams are guarded.
pub(crate) struct Connection {
    inner: h3_quinn::Connection,
    limit: usize,
}

impl Connection {
    /// `limit`: the longest frame other than DATA accepted on a request or control stream.
    pub(crate) fn new(inner: h3_quinn::Connection, limit: usize) -> Self {
        Connection { inner, limit }
    }
}

/// An incoming stream's receiving side with its scanner.
pub(crate) struct RecvStream<R> {
    inner: R,
    scanner: FrameScanner,
}

impl<R: quic::RecvStream<Buf = Bytes>> RecvStream<R> {
    /// Polls the inner stream and scans what arrives; on a violation, STOP_SENDING.
    fn poll_scanned(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
        let polled = self.inner.poll_data(cx);
        if let Poll::Ready(Ok(Some(bytes))) = &polled {
            if let Err(e) = self.scanner.scan(bytes) {
                tracing::debug!("HTTP/3 stream {}: {e}", self.inner.recv_id());
                self.inner.stop_sending(Code::H3_EXCESSIVE_LOAD.value());
                return Poll::Ready(Err(StreamErrorIncoming::StreamTerminated {
                    error_code: Code::H3_EXCESSIVE_LOAD.value(),
                }));
            }
        }
        polled
    }
}

impl<R: quic::RecvStream<Buf = Bytes>> quic::RecvStream for RecvStream<R> {
    type Buf = Bytes;

    fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
        self.poll_scanned(cx)
    }

    fn stop_sending(&mut self, error_code: u64) {
        self.inner.stop_sending(error_code)
    }

    fn recv_id(&self) -> StreamId {
        self.inner.recv_id()
    }
}

/// A request stream: the guarded receiving side and the sending side, which is reset too when
/// the request is refused for a long frame (so the client is not left waiting for a response).
pub(crate) struct BidiStream<S> {
    recv: RecvStream<S>,
}

impl<S, B> quic::SendStream<B> for BidiStream<S>
where
    S: quic::SendStream<B>,
    B: Buf,
{
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        self.recv.inner.poll_ready(cx)
    }

    fn send_data<T: Into<WriteBuf<B>>>(&mut self, data: T) -> Result<(), StreamErrorIncoming> {
        self.recv.inner.send_data(data)
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        self.recv.inner.poll_finish(cx)
    }

    fn reset(&mut self, reset_code: u64) {
        self.recv.inner.reset(reset_code)
    }

    fn send_id(&self) -> StreamId {
        self.recv.inner.send_id()
    }
}

impl<B: Buf> quic::RecvStream for BidiStream<h3_quinn::BidiStream<B>> {
    type Buf = Bytes;

    fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
        let polled = self.recv.poll_scanned(cx);
        if let Poll::Ready(Err(StreamErrorIncoming::StreamTerminated { error_code })) = &polled {
            if *error_code == Code::H3_EXCESSIVE_LOAD.value() {
                quic::SendStream::<B>::reset(&mut self.recv.inner, *error_code);
            }
        }
        polled
    }

    fn stop_sending(&mut self, error_code: u64) {
        self.recv.inner.stop_sending(error_code)
    }

    fn recv_id(&self) -> StreamId {
        self.recv.inner.recv_id()
    }
}

impl<B: Buf> quic::BidiStream<B> for BidiStream<h3_quinn::BidiStream<B>> {
    type SendStream = h3_quinn::SendStream<B>;
    type RecvStream = RecvStream<h3_quinn::RecvStream>;

    fn split(self) -> (Self::SendStream, Self::RecvStream) {
        let (send, recv) = self.recv.inner.split();
        (
            send,
            RecvStream {
                inner: recv,
                scanner: self.recv.scanner,
            },
        )
    }
}

/// Opens streams (the server's own control and QPACK streams) unguarded.
pub(crate) struct Opener<O> {
    inner: O,
    limit: usize,
}

impl<B: Buf> quic::OpenStreams<B> for Opener<h3_quinn::OpenStreams> {
    type BidiStream = BidiStream<h3_quinn::BidiStream<B>>;
    type SendStream = h3_quinn::SendStream<B>;

    fn poll_open_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, StreamErrorIncoming>> {
        let limit = self.limit;
        quic::OpenStreams::<B>::poll_open_bidi(&mut self.inner, cx)
            .map_ok(|inner| guard_bidi(inner, limit))
    }

    fn poll_open_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::SendStream, StreamErrorIncoming>> {
        quic::OpenStreams::<B>::poll_open_send(&mut self.inner, cx)
    }

    fn close(&mut self, code: Code, reason: &[u8]) {
        quic::OpenStreams::<B>::close(&mut self.inner, code, reason)
    }
}

fn guard_bidi<S>(inner: S, limit: usize) -> BidiStream<S> {
    BidiStream {
        recv: RecvStream {
            inner,
            scanner: FrameScanner::new(limit, false),
        },
    }
}

impl<B: Buf> quic::OpenStreams<B> for Connection {
    type BidiStream = BidiStream<h3_quinn::BidiStream<B>>;
    type SendStream = h3_quinn::SendStream<B>;

    fn poll_open_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, StreamErrorIncoming>> {
        let limit = self.limit;
        quic::OpenStreams::<B>::poll_open_bidi(&mut self.inner, cx)
            .map_ok(|inner| guard_bidi(inner, limit))
    }

    fn poll_open_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::SendStream, StreamErrorIncoming>> {
        quic::OpenStreams::<B>::poll_open_send(&mut self.inner, cx)
    }

    fn close(&mut self, code: Code, reason: &[u8]) {
        quic::OpenStreams::<B>::close(&mut self.inner, code, reason)
    }
}

impl<B: Buf> quic::Connection<B> for Connection {
    type RecvStream = RecvStream<h3_quinn::RecvStream>;
    type OpenStreams = Opener<h3_quinn::OpenStreams>;

    fn poll_accept_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::RecvStream, ConnectionErrorIncoming>> {
        let limit = self.limit;
        quic::Connection::<B>::poll_accept_recv(&mut self.inner, cx).map_ok(|inner| RecvStream {
            inner,
            scanner: FrameScanner::new(limit, true),
        })
    }

    fn poll_accept_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, ConnectionErrorIncoming>> {
        let limit = self.limit;
        quic::Connection::<B>::poll_accept_bidi(&mut self.inner, cx)
            .map_ok(|inner| guard_bidi(inner, limit))
    }

    fn opener(&self) -> Self::OpenStreams {
        Opener {
            inner: quic::Connection::<B>::opener(&self.inner),
            limit: self.limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame header: type and length as QUIC varints.
    fn header(frame_type: u64, length: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [frame_type, length] {
            match v {
                0..=63 => out.push(v as u8),
                64..=16_383 => out.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes()),
                16_384..=1_073_741_823 => {
                    out.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes())
                }
                _ => out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes()),
            }
        }
        out
    }

    #[test]
    fn long_data_frames_pass_long_headers_do_not() {
        let mut s = FrameScanner::new(1000, false);
        let mut bytes = header(0x01, 900);
        bytes.extend(std::iter::repeat_n(0u8, 900));
        bytes.extend(header(DATA, 1 << 40));
        s.scan(&bytes)
            .expect("a 900-byte HEADERS and a huge DATA frame pass");
        s.scan(&[0u8; 4096]).expect("DATA payload passes");

        let mut s = FrameScanner::new(1000, false);
        let bytes = header(0x01, 1001);
        // Split across reads, byte by byte.
        let (last, head) = bytes.split_last().unwrap();
        for b in head {
            s.scan(std::slice::from_ref(b)).expect("incomplete header");
        }
        assert!(s.scan(std::slice::from_ref(last)).is_err());

        // A reserved (grease) frame type is held to the same limit.
        let mut s = FrameScanner::new(1000, false);
        assert!(s.scan(&header(0x21, 1 << 30)).is_err());
    }

    #[test]
    fn control_stream_is_scanned_other_unidirectional_streams_are_not() {
        let mut s = FrameScanner::new(1000, true);
        let mut bytes = vec![CONTROL_STREAM as u8];
        bytes.extend(header(0x04, 1 << 20));
        assert!(s.scan(&bytes).is_err(), "a 1 MiB SETTINGS frame");

        let mut s = FrameScanner::new(1000, true);
        let mut bytes = vec![0x02]; // QPACK encoder stream: not frames
        bytes.extend(header(0x04, 1 << 20));
        s.scan(&bytes).expect("not framed");
    }
}
