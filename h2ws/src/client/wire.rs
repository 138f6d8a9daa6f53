//! The transport edge of a socket: how its bytes or DATA frames move, one variant per shape.
//!
//! * `Bytes`: one byte stream (RFC 6455 over TCP/TLS).
//! * `H2`: bytes in DATA frames of HTTP/2 streams (RFC 8441 one stream; `stream` a downstream
//!   response + an upstream request body). With `whole_frames` (native mapping) each output
//!   unit is one DATA frame, sent only once flow-control capacity for all of it is granted.
//! * `H3`: `stream` over HTTP/3 (a response body down, a streamed request body up; see
//!   the `h3conn` and `h3wire` modules).
//! * `Post`: downstream response + ordered POST batches upstream (DESIGN §2.3), on HTTP/2,
//!   HTTP/3 or two HTTP/1.1 connections.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use h2::client::{ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use http_body_util::Full;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use h2ws_codec::post::{PostLimits, PostSender};

use super::connect::Io;
use super::Error;

/// Bytes read from a byte stream at a time.
const READ_CHUNK: usize = 64 << 10;

pub(crate) enum Wire {
    Bytes(BytesWire),
    H2(H2Wire),
    /// Boxed: the pending write future and two stream halves.
    H3(Box<super::h3wire::H3Wire>),
    /// Boxed: the request template makes it several times larger than the other variants.
    Post(Box<PostWire>),
}

pub(crate) struct BytesWire {
    io: Io,
    rbuf: Box<[u8]>,
    /// Bytes the HTTP/1.1 handshake read past the response head.
    leftover: Option<Vec<u8>>,
    needs_flush: bool,
}

pub(crate) struct H2Wire {
    send: SendStream<Bytes>,
    /// Always `Some`, except for the moment a fallback moves it into a [`PostWire`].
    recv: Option<RecvStream>,
    /// Native mapping: one output unit = one DATA frame.
    whole_frames: bool,
    /// `stream` transport: the upstream request's response (polled while draining).
    upstream_response: Option<ResponseFuture>,
    /// `stream` transport: how to continue as `post` while the upstream may still fail at once.
    fallback: Option<Box<StreamFallback>>,
}

/// Most bytes a `stream` socket keeps for a fallback; writing more within the window gives the
/// fallback up (a later failure is then an ordinary transport error).
const FALLBACK_KEEP_MAX: usize = 1 << 20;

/// A `stream` upstream that fails at once, within codec `fetch::STREAM_FALLBACK_MS` (its
/// request is answered while its body still streams, i.e. refused, or reset), makes the socket
/// continue with `post` batches on the same session, starting with what was written to the
/// stream. Safe: the server's session takes one upstream kind, so if the stream did attach the
/// batches are refused (409) and the socket fails instead of delivering anything twice.
pub(crate) struct StreamFallback {
    until: std::time::Instant,
    requests: SendRequest<Bytes>,
    /// The `post` batch request (URI and headers; `h2ws-seq` is added per batch).
    template: http::Request<()>,
    kept: BytesMut,
}

impl StreamFallback {
    pub(crate) fn new(requests: SendRequest<Bytes>, template: http::Request<()>) -> Box<Self> {
        let window = std::time::Duration::from_millis(
            h2ws_codec::handshake::fetch::STREAM_FALLBACK_MS.into(),
        );
        Box::new(StreamFallback {
            until: std::time::Instant::now() + window,
            requests,
            template,
            kept: BytesMut::new(),
        })
    }
}

pub(crate) struct PostWire {
    down: Down,
    up: Up,
    /// The upstream request's URI and headers, cloned per batch with its `h2ws-seq`.
    template: http::Request<()>,
    /// The batching rules (codec `post`): numbering, coalescing, what may be in flight.
    sender: PostSender,
}

impl PostWire {
    /// The batching limits for this upstream.
    fn limits_for(up: &Up) -> PostLimits {
        PostLimits {
            // HTTP/1.1 cannot multiplex: one batch at a time on the upstream connection.
            max_in_flight: match up {
                Up::H2 { .. } | Up::H3 { .. } => h2ws_codec::post::MAX_IN_FLIGHT,
                Up::H1 { .. } => 1,
            },
            ..PostLimits::default()
        }
    }

    fn sender_limits(&self) -> PostLimits {
        Self::limits_for(&self.up)
    }

    /// Batch 0 leaves at once, even if empty (codec `PostSender::attach`), carrying `first`.
    fn new(down: Down, up: Up, template: http::Request<()>, first: &[u8]) -> Self {
        let limits = Self::limits_for(&up);
        let mut sender = PostSender::new(limits);
        sender.attach();
        if !first.is_empty() {
            // Batch 0 is empty and waiting: it takes `first` whatever its size.
            let _ = sender.push(first, first.len());
        }
        PostWire {
            down,
            up,
            template,
            sender,
        }
    }
}

/// A `post` socket's downstream: the open request's response body.
pub(crate) enum Down {
    H2(RecvStream),
    H1(hyper::body::Incoming),
    H3(super::h3wire::H3RecvHalf),
}

/// A `post` socket's upstream: where batches go.
pub(crate) enum Up {
    /// Multiplexed: up to codec `post::MAX_IN_FLIGHT` batch requests at once, with their
    /// `h2ws-seq`.
    H2 {
        requests: SendRequest<Bytes>,
        in_flight: VecDeque<(u64, ResponseFuture)>,
    },
    /// HTTP/1.1 cannot multiplex: one batch at a time on a keep-alive connection of its own.
    H1 {
        requests: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        in_flight: Option<(u64, H1Response)>,
    },
    /// Multiplexed like HTTP/2; each batch is one boxed future (h3 has only `async fn`s), all
    /// polled, their answers taken in `h2ws-seq` order.
    H3 {
        requests: super::h3wire::H3Requests,
        in_flight: VecDeque<H3Batch>,
    },
}

/// A `post` batch in flight over HTTP/3: its `h2ws-seq`, its answer once in, its future.
pub(crate) type H3Batch = (
    u64,
    Option<Result<http::StatusCode, Error>>,
    super::h3wire::BatchFuture,
);

type H1Response = Pin<
    Box<dyn Future<Output = Result<http::Response<hyper::body::Incoming>, hyper::Error>> + Send>,
>;

impl Wire {
    pub(crate) fn bytes(io: Io, leftover: Vec<u8>) -> Self {
        Wire::Bytes(BytesWire {
            io,
            rbuf: vec![0u8; READ_CHUNK].into_boxed_slice(),
            leftover: (!leftover.is_empty()).then_some(leftover),
            needs_flush: false,
        })
    }

    pub(crate) fn h2(
        send: SendStream<Bytes>,
        recv: RecvStream,
        whole_frames: bool,
        upstream_response: Option<ResponseFuture>,
    ) -> Self {
        Wire::H2(H2Wire {
            send,
            recv: Some(recv),
            whole_frames,
            upstream_response,
            fallback: None,
        })
    }

    /// A `stream` socket that may still fall back to `post` ([`StreamFallback`]).
    pub(crate) fn with_fallback(mut self, fallback: Box<StreamFallback>) -> Self {
        if let Wire::H2(w) = &mut self {
            w.fallback = Some(fallback);
        }
        self
    }

    /// Whether the `stream` upstream failed within the fallback window; switches this wire to
    /// `post` if so. Past the window (or the keep limit) the fallback is dropped.
    fn poll_fallback(&mut self, cx: &mut Context<'_>) {
        let Wire::H2(w) = self else { return };
        let Some(fb) = &w.fallback else { return };
        if std::time::Instant::now() > fb.until || fb.kept.len() > FALLBACK_KEEP_MAX {
            w.fallback = None;
            return;
        }
        let Some(resp) = w.upstream_response.as_mut() else {
            return;
        };
        // A healthy upstream is answered only when its body ends: any answer (or error) now
        // is a refusal.
        if Pin::new(resp).poll(cx).is_ready() {
            self.fall_back(Bytes::new());
        }
    }

    /// Continues as `post` ([`StreamFallback`]), `unsent` after what was kept.
    fn fall_back(&mut self, unsent: Bytes) -> bool {
        let Wire::H2(w) = self else { return false };
        let (Some(fb), Some(recv)) = (w.fallback.take(), w.recv.take()) else {
            return false;
        };
        let StreamFallback {
            requests,
            template,
            mut kept,
            ..
        } = *fb;
        kept.extend_from_slice(&unsent);
        tracing::debug!(
            kept = kept.len(),
            "stream upstream failed at once: continuing with post"
        );
        let up = Up::H2 {
            requests,
            in_flight: VecDeque::new(),
        };
        *self = Wire::Post(Box::new(PostWire::new(Down::H2(recv), up, template, &kept)));
        true
    }

    pub(crate) fn post(down: Down, up: Up, template: http::Request<()>) -> Self {
        Wire::Post(Box::new(PostWire::new(down, up, template, &[])))
    }

    /// A resumed `post` socket's wire: batches numbered on from `next_seq` (the re-attach told
    /// the server), the first one at once.
    pub(crate) fn post_from(
        down: Down,
        up: Up,
        template: http::Request<()>,
        next_seq: u64,
    ) -> Self {
        let mut wire = PostWire::new(down, up, template, &[]);
        wire.sender = PostSender::starting_at(wire.sender_limits(), next_seq);
        wire.sender.attach();
        Wire::Post(Box::new(wire))
    }

    /// A `post` wire's next batch number (where a resumed socket continues).
    pub(crate) fn post_next_seq(&self) -> Option<u64> {
        match self {
            Wire::Post(p) => Some(p.sender.next_seq()),
            _ => None,
        }
    }

    /// Reads the next chunk (one DATA frame on HTTP/2) and hands it to `feed`.
    /// `Ready(Ok(false))` = the peer ended its direction.
    pub(crate) fn poll_input(
        &mut self,
        cx: &mut Context<'_>,
        feed: impl FnOnce(&[u8]),
    ) -> Poll<Result<bool, Error>> {
        self.poll_fallback(cx);
        match self {
            Wire::Bytes(w) => {
                if let Some(left) = w.leftover.take() {
                    feed(&left);
                    return Poll::Ready(Ok(true));
                }
                let mut rb = ReadBuf::new(&mut w.rbuf);
                ready!(Pin::new(&mut w.io).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(false));
                }
                feed(&w.rbuf[..n]);
                Poll::Ready(Ok(true))
            }
            Wire::H2(w) => match w.recv.as_mut() {
                Some(recv) => poll_h2_input(recv, cx, feed),
                None => Poll::Ready(Err(stream_gone())),
            },
            Wire::H3(w) => w.poll_input(cx, feed),
            Wire::Post(w) => match &mut w.down {
                Down::H2(recv) => poll_h2_input(recv, cx, feed),
                Down::H1(body) => poll_h1_input(body, cx, feed),
                Down::H3(recv) => super::h3wire::poll_h3_input(recv, cx, feed),
            },
        }
    }

    /// Hands `out` to the transport; `Ready(Ok)` once all of it is taken.
    pub(crate) fn poll_output(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Bytes,
    ) -> Poll<Result<(), Error>> {
        match self {
            Wire::Bytes(w) => {
                while !out.is_empty() {
                    let n = ready!(Pin::new(&mut w.io).poll_write(cx, out))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
                    }
                    let _ = out.split_to(n);
                    w.needs_flush = true;
                }
                Poll::Ready(Ok(()))
            }
            Wire::H2(w) if w.whole_frames => {
                // Native mapping: the whole frame in one DATA frame, never split by h2.
                let need = out.len();
                w.send.reserve_capacity(need);
                while w.send.capacity() < need {
                    match ready!(w.send.poll_capacity(cx)) {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Poll::Ready(Err(e.into())),
                        None => return Poll::Ready(Err(stream_gone())),
                    }
                }
                w.send.send_data(std::mem::take(out), false)?;
                Poll::Ready(Ok(()))
            }
            Wire::H2(w) => {
                // Byte stream over DATA frames: send what flow control allows, keep the rest.
                let mut failed = None;
                while !out.is_empty() {
                    w.send.reserve_capacity(out.len());
                    let cap = w.send.capacity();
                    if cap == 0 {
                        match ready!(w.send.poll_capacity(cx)) {
                            Some(Ok(_)) => continue,
                            Some(Err(e)) => failed = Some(e.into()),
                            None => failed = Some(stream_gone()),
                        }
                        break;
                    }
                    let chunk = out.split_to(cap.min(out.len()));
                    if let Some(fb) = w.fallback.as_mut() {
                        fb.kept.extend_from_slice(&chunk);
                    }
                    if let Err(e) = w.send.send_data(chunk, false) {
                        failed = Some(e.into());
                        break;
                    }
                }
                match failed {
                    None => Poll::Ready(Ok(())),
                    // Within the fallback window the refusal is the cause: continue as post.
                    Some(_) if self.fall_back(std::mem::take(out)) => Poll::Ready(Ok(())),
                    Some(e) => Poll::Ready(Err(e)),
                }
            }
            Wire::H3(w) => w.poll_output(cx, out),
            Wire::Post(w) => {
                if !w.sender.has_room(out.len()) {
                    if let Poll::Ready(Err(e)) = w.poll_send_batches(cx) {
                        return Poll::Ready(Err(e));
                    }
                }
                // Still no room: a batch waits for an answer, whose waker is registered.
                if w.sender.push(out, out.len()).is_err() {
                    return Poll::Pending;
                }
                out.clear();
                Poll::Ready(Ok(()))
            }
        }
    }

    /// Pushes buffered output further (TLS flush, POST batches); `Ready` when nothing waits.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self {
            Wire::Bytes(w) => {
                if w.needs_flush {
                    ready!(Pin::new(&mut w.io).poll_flush(cx))?;
                    w.needs_flush = false;
                }
                Poll::Ready(Ok(()))
            }
            Wire::H2(_) => Poll::Ready(Ok(())),
            Wire::H3(w) => w.poll_flush(cx),
            Wire::Post(w) => w.poll_send_batches(cx),
        }
    }

    /// Ends our direction after the close handshake: TCP/TLS shutdown, END_STREAM (an empty
    /// DATA frame, the only one the native mapping allows), or the last POST batch answered.
    /// `reset` (a protocol error on the native mapping) leaves the stream open here: the
    /// RST_STREAM comes from [`reset`](Wire::reset) once the Close has reached the peer.
    pub(crate) fn poll_end(
        &mut self,
        cx: &mut Context<'_>,
        reset: bool,
    ) -> Poll<Result<(), Error>> {
        match self {
            Wire::Bytes(w) => {
                if w.needs_flush {
                    ready!(Pin::new(&mut w.io).poll_flush(cx))?;
                    w.needs_flush = false;
                }
                Pin::new(&mut w.io).poll_shutdown(cx).map_err(Error::from)
            }
            Wire::H2(_) if reset => Poll::Ready(Ok(())),
            Wire::H2(w) => {
                w.send.send_data(Bytes::new(), true)?;
                Poll::Ready(Ok(()))
            }
            Wire::H3(w) => w.poll_end(cx),
            Wire::Post(w) => w.poll_send_batches(cx),
        }
    }

    /// RST_STREAM(PROTOCOL_ERROR) after a native protocol error's Close. h2 drops DATA still
    /// queued on a stream it resets, so this runs only after the peer answered the Close (or
    /// the close timeout passed): by then the Close frame has left.
    pub(crate) fn reset(&mut self) {
        if let Wire::H2(w) = self {
            w.send.send_reset(h2::Reason::PROTOCOL_ERROR);
        }
    }

    /// After ending our direction: reads and discards until the peer ends too. `Ready` = done.
    pub(crate) fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Wire::H2(H2Wire {
            upstream_response: Some(resp),
            ..
        }) = self
        {
            if Pin::new(resp).poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Wire::H2(w) = self {
                w.upstream_response = None;
            }
        }
        loop {
            match ready!(self.poll_input(cx, |_| {})) {
                Ok(true) => continue,
                Ok(false) | Err(_) => return Poll::Ready(()),
            }
        }
    }
}

fn poll_h2_input(
    recv: &mut RecvStream,
    cx: &mut Context<'_>,
    feed: impl FnOnce(&[u8]),
) -> Poll<Result<bool, Error>> {
    loop {
        match ready!(recv.poll_data(cx)) {
            None => return Poll::Ready(Ok(false)),
            Some(Err(e)) => return Poll::Ready(Err(e.into())),
            // h2 hands over one chunk per DATA frame; an empty one (END_STREAM aside) carries
            // nothing for the codec, so skip it (DESIGN §4: stay unaffected by it).
            Some(Ok(data)) if data.is_empty() => continue,
            Some(Ok(data)) => {
                feed(&data);
                // The data is consumed: hand the window back so the peer may send more.
                let _ = recv.flow_control().release_capacity(data.len());
                return Poll::Ready(Ok(true));
            }
        }
    }
}

fn stream_gone() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the HTTP/2 stream was reset or closed",
    ))
}

fn poll_h1_input(
    body: &mut hyper::body::Incoming,
    cx: &mut Context<'_>,
    feed: impl FnOnce(&[u8]),
) -> Poll<Result<bool, Error>> {
    use http_body::Body as _;
    loop {
        match ready!(Pin::new(&mut *body).poll_frame(cx)) {
            None => return Poll::Ready(Ok(false)),
            Some(Err(e)) => return Poll::Ready(Err(Error::Http1(e.to_string()))),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => {
                    feed(&data);
                    return Poll::Ready(Ok(true));
                }
                _ => continue, // empty chunk or trailers
            },
        }
    }
}

/// A batch answer (codec `PostSender::on_answer`: 200, or 204 for a repeat, are done;
/// anything else fails the socket).
fn check_batch_status(
    sender: &mut PostSender,
    seq: u64,
    status: http::StatusCode,
) -> Result<(), Error> {
    sender
        .on_answer(seq, status.as_u16())
        .map_err(|e| Error::Refused {
            status: status.as_u16(),
            reason: e.to_string(),
        })
}

impl PostWire {
    /// Sends waiting batches and collects their answers. `Ready` when nothing waits.
    fn poll_send_batches(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            let mut progress = false;
            match &mut self.up {
                Up::H2 { in_flight, .. } => {
                    while let Some((seq, front)) = in_flight.front_mut() {
                        let resp = match Pin::new(front).poll(cx) {
                            Poll::Pending => break,
                            Poll::Ready(r) => r?,
                        };
                        let seq = *seq;
                        in_flight.pop_front();
                        progress = true;
                        check_batch_status(&mut self.sender, seq, resp.status())?;
                    }
                }
                Up::H3 { in_flight, .. } => {
                    for (_, answer, fut) in in_flight.iter_mut() {
                        if answer.is_none() {
                            if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                                *answer = Some(r);
                            }
                        }
                    }
                    while let Some((seq, answer @ Some(_), _)) = in_flight.front_mut() {
                        let (seq, answer) = (*seq, answer.take());
                        in_flight.pop_front();
                        progress = true;
                        if let Some(answer) = answer {
                            check_batch_status(&mut self.sender, seq, answer?)?;
                        }
                    }
                }
                Up::H1 { in_flight, .. } => {
                    if let Some((seq, fut)) = in_flight {
                        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                            let seq = *seq;
                            *in_flight = None;
                            progress = true;
                            let resp = r.map_err(|e| Error::Http1(e.to_string()))?;
                            check_batch_status(&mut self.sender, seq, resp.status())?;
                        }
                    }
                }
            }
            if self.sender.can_send() {
                match &mut self.up {
                    Up::H2 { requests, .. } => ready!(requests.poll_ready(cx))?,
                    Up::H1 { requests, .. } => {
                        ready!(requests.poll_ready(cx)).map_err(|e| Error::Http1(e.to_string()))?
                    }
                    // h3 waits for a QUIC stream inside the batch's own future.
                    Up::H3 { .. } => {}
                }
            }
            if let Some(batch) = self.sender.poll_batch() {
                let mut req = http::Request::new(());
                *req.method_mut() = self.template.method().clone();
                *req.uri_mut() = self.template.uri().clone();
                *req.headers_mut() = self.template.headers().clone();
                req.headers_mut().insert(
                    h2ws_codec::handshake::fetch::H2WS_SEQ,
                    http::HeaderValue::from(batch.seq),
                );
                let body = Bytes::from(batch.bytes);
                match &mut self.up {
                    Up::H2 {
                        requests,
                        in_flight,
                    } => {
                        let (resp, mut stream) = requests.send_request(req, false)?;
                        stream.send_data(body, true)?;
                        in_flight.push_back((batch.seq, resp));
                    }
                    Up::H1 {
                        requests,
                        in_flight,
                    } => {
                        let (parts, ()) = req.into_parts();
                        let req = http::Request::from_parts(parts, Full::new(body));
                        *in_flight = Some((batch.seq, Box::pin(requests.send_request(req))));
                    }
                    Up::H3 {
                        requests,
                        in_flight,
                    } => {
                        let mut fut = super::h3wire::send_batch(requests.clone(), req, body);
                        // Started now so its waker is registered.
                        let answer = match fut.as_mut().poll(cx) {
                            Poll::Ready(r) => Some(r),
                            Poll::Pending => None,
                        };
                        in_flight.push_back((batch.seq, answer, fut));
                    }
                }
                progress = true;
            }
            if self.sender.is_idle() {
                return Poll::Ready(Ok(()));
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }
}
