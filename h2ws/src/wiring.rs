//! What a server transport hands the socket driver ([`Wiring`]: an input stream of chunks, an
//! output queue of units, the socket's options), its adapter into the one driver
//! ([`QueueIo`]), the handle kept on a running socket, and the rule for reading a request body
//! after a clean close. The fetch sessions feed a driver's input through this module without
//! importing the endpoint's spawning code.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use h2ws_codec::Framing;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub(crate) mod queue;

use crate::driver::Io;
use crate::h2conn::ResetStream;

/// A chunk from the transport.
pub(crate) enum Input {
    /// Bytes of the byte stream (Rfc6455/Stream framing) or one DATA frame (Native).
    Chunk(Bytes),
    /// The transport's inbound side ended cleanly (END_STREAM, EOF, request body end).
    End,
    /// The transport failed (reset, connection lost).
    Failed,
}

/// A unit for the transport. `Err` asks the transport to reset the stream with that reason.
pub(crate) type Output = Result<Bytes, ResetStream>;

/// Where a socket's bytes come from and go to.
pub(crate) enum Edge {
    /// An input stream and an output queue: request and response bodies, fetch sessions.
    Queues {
        input: BoxStream<'static, Input>,
        output: queue::Sender<Output>,
    },
    /// A connection the driver reads and writes itself ([`ByteIo`]): RFC 6455 and RFC 8441
    /// upgraded by hyper. No queue, no writer task and no read buffer of its own while idle.
    Upgraded(hyper::upgrade::Upgraded),
}

/// What a transport hands to the driver.
pub(crate) struct Wiring {
    pub framing: Framing,
    pub edge: Edge,
    /// Native: after a protocol error's Close, reset the stream with PROTOCOL_ERROR.
    pub reset_after_protocol_error: bool,
    /// Deliver data frames one by one (proxies).
    pub deliver_fragments: bool,
    /// Let RSV1 through untouched (a proxy forwarding permessage-deflate it does not terminate).
    pub allow_rsv1: bool,
    pub deflate: Option<h2ws_codec::deflate::DeflateParams>,
    /// Native: largest DATA frame the peer accepts.
    pub native_max_payload: usize,
    /// Runs when the driver ends (fetch sessions forget their token).
    pub on_end: Option<Box<dyn FnOnce() + Send>>,
    /// The input is a request body on our own HTTP/2 loop (rfc8441, native): after a clean
    /// close, read it to its end ([`drain_after_close`]) instead of dropping it.
    pub drain_input_after_close: bool,
    /// Fetch sessions: the codec's attach deadline (`Timeouts::attach_timeout`).
    pub attach_timeout: Option<std::time::Duration>,
    /// Fetch sessions that negotiated resume: the limits, and where re-attaches arrive.
    pub resume: Option<(
        h2ws_codec::resume::ResumeConfig,
        tokio::sync::mpsc::Receiver<Reattach>,
    )>,
}

/// A resumed session's new transport, from its re-attach request to the socket's driver
/// ([`crate::sessions`] → [`QueueIo`]).
pub(crate) struct Reattach {
    /// Counted frames the client received (`h2ws-received`).
    pub peer_received: u64,
    /// The new upstream's chunks (fed by the next `stream` attach or `post` batches).
    pub input: BoxStream<'static, Input>,
    /// The new downstream (the re-attach's response body).
    pub output: queue::Sender<Output>,
    /// The codec's verdict: what the server received (the answer's `h2ws-received`), or why
    /// not.
    pub reply: tokio::sync::oneshot::Sender<Result<u64, h2ws_codec::resume::ResumeError>>,
}

/// How long and how many bytes the server keeps reading a request body after a clean close
/// handshake, waiting for the client's END_STREAM. Why: dropping an unfinished request body
/// makes h2 reset the stream (RST_STREAM NO_ERROR, RFC 9113 §8.1), which proxies log as a
/// server abort (HAProxy `SD--`) although the exchange was complete; a client ends its
/// direction right after the handshake. Bounded: a client that never ends it is reset after
/// this.
pub(crate) const DRAIN_AFTER_CLOSE_TIME: std::time::Duration = std::time::Duration::from_secs(2);
pub(crate) const DRAIN_AFTER_CLOSE_BYTES: usize = 1 << 20;

/// Reads a finished socket's request body until it ends, within the bounds above; dropping it
/// then leaves nothing to reset. `chunk_len` says how many body bytes an item is, `None` for an
/// item that ends the reading (an error, the end of the input). One rule for every kind of
/// body: a driver's [`Input`] (rfc8441, native) and a `stream` upstream's data (sessions).
pub(crate) async fn drain_after_close<S: futures_util::Stream + Unpin>(
    mut body: S,
    chunk_len: impl Fn(&S::Item) -> Option<usize>,
) {
    let mut left = DRAIN_AFTER_CLOSE_BYTES;
    let drain = async {
        while let Some(len) = body.next().await.as_ref().and_then(&chunk_len) {
            left = left.saturating_sub(len);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_AFTER_CLOSE_TIME, drain).await;
}

/// The body bytes of a driver's input item (for [`drain_after_close`]).
pub(crate) fn input_len(input: &Input) -> Option<usize> {
    match input {
        Input::Chunk(chunk) => Some(chunk.len()),
        _ => None,
    }
}

/// A handle the server keeps on a socket (fetch sessions use it to close unattached sockets).
pub(crate) type CommandHandle = crate::socket::Closer;

/// The server transports' edge as the driver sees it: the input stream, the output queue (its
/// receiver is the response body, the TCP writer task or the HTTP/2 loop), and what ends them.
pub(crate) struct QueueIo {
    input: Option<BoxStream<'static, Input>>,
    /// Its receiver going away while nothing is to be written fails the flush.
    output: Option<queue::Sender<Output>>,
    /// Native: reset the stream after a protocol error's Close (PROTOCOL_ERROR) and when a
    /// deadline ends the socket (CANCEL).
    reset_after_protocol_error: bool,
    drain_input_after_close: bool,
    /// Set by `poll_end`: the handshake ended on a protocol error, so the input is not drained.
    protocol_error: bool,
    /// Resume: where re-attaches arrive, and the reply owed to the one being taken.
    reattach: Option<tokio::sync::mpsc::Receiver<Reattach>>,
    reply: Option<tokio::sync::oneshot::Sender<Result<u64, h2ws_codec::resume::ResumeError>>>,
}

/// Bytes read from a [`ByteIo`] at a time (into the worker thread's buffer).
const READ_CHUNK: usize = 16 << 10;

thread_local! {
    /// One read buffer per worker thread, shared by every [`ByteIo`] it polls: a read happens
    /// only once the connection is readable and its bytes go straight to the codec, so an idle
    /// socket holds no read buffer.
    static READ_BUF: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice());
}

/// A byte-stream connection the driver reads and writes itself (an upgraded RFC 6455 or
/// RFC 8441 connection): reads go through the thread's shared buffer straight into the codec,
/// writes straight to the connection. The send deadline is the driver's stall timeout.
pub(crate) struct ByteIo<T> {
    io: T,
    needs_flush: bool,
}

impl<T> ByteIo<T> {
    pub(crate) fn new(io: T) -> Self {
        ByteIo {
            io,
            needs_flush: false,
        }
    }
}

/// Reads once from `io` into `buf` and feeds what came (`Ready(Ok(false))` at EOF).
fn read_into<T: AsyncRead + Unpin>(
    io: &mut T,
    cx: &mut Context<'_>,
    buf: &mut [u8],
    feed: impl FnOnce(&[u8]),
) -> Poll<std::io::Result<bool>> {
    let mut rb = ReadBuf::new(buf);
    std::task::ready!(Pin::new(io).poll_read(cx, &mut rb))?;
    let n = rb.filled().len();
    if n == 0 {
        return Poll::Ready(Ok(false));
    }
    feed(&buf[..n]);
    Poll::Ready(Ok(true))
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for ByteIo<T> {
    type Error = std::io::Error;

    fn poll_input(
        &mut self,
        cx: &mut Context<'_>,
        feed: impl FnOnce(&[u8]),
    ) -> Poll<std::io::Result<bool>> {
        let io = &mut self.io;
        let mut feed = Some(feed);
        let polled = READ_BUF
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut buf) => feed.take().map(|feed| read_into(io, cx, &mut buf, feed)),
                Err(_) => None,
            })
            .ok()
            .flatten();
        match (polled, feed) {
            (Some(polled), _) => polled,
            // The thread's buffer is unavailable (being torn down, or in use further up the
            // stack): read into a small one of our own for this call.
            (None, Some(feed)) => read_into(&mut self.io, cx, &mut [0u8; 2048], feed),
            // Not reached: `feed` is only taken for a read that was made.
            (None, None) => Poll::Pending,
        }
    }

    /// A header and its shared payload are two writes to the connection: no copy.
    fn takes_parts(&self) -> bool {
        true
    }

    fn poll_output(&mut self, cx: &mut Context<'_>, out: &mut Bytes) -> Poll<std::io::Result<()>> {
        while !out.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, out))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            let _ = out.split_to(n);
            self.needs_flush = true;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.needs_flush {
            std::task::ready!(Pin::new(&mut self.io).poll_flush(cx))?;
            self.needs_flush = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Flushes, then shuts our direction down (TCP FIN); bounded by the driver's close timeout.
    fn poll_end(
        &mut self,
        cx: &mut Context<'_>,
        _protocol_error: bool,
    ) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.poll_flush(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    /// The connection is closed when the driver drops it.
    fn poll_drain(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }

    fn reset(&mut self) {}

    fn abort(&mut self, _timed_out: bool) {}
}

/// The transport is gone.
#[derive(Debug)]
pub(crate) struct TransportGone;

impl std::fmt::Display for TransportGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the transport is gone")
    }
}

impl QueueIo {
    pub(crate) fn new(
        input: BoxStream<'static, Input>,
        output: queue::Sender<Output>,
        reset_after_protocol_error: bool,
        drain_input_after_close: bool,
    ) -> Self {
        let mut io = QueueIo {
            input: None,
            output: None,
            reset_after_protocol_error,
            drain_input_after_close,
            protocol_error: false,
            reattach: None,
            reply: None,
        };
        io.attach(input, output);
        io
    }

    /// Resume: re-attach requests arrive on `rx`.
    pub(crate) fn with_reattach(
        mut self,
        rx: Option<tokio::sync::mpsc::Receiver<Reattach>>,
    ) -> Self {
        self.reattach = rx;
        self
    }

    fn attach(&mut self, input: BoxStream<'static, Input>, output: queue::Sender<Output>) {
        self.input = Some(input);
        self.output = Some(output);
    }

    /// Drops the output queue (ending the transport: END_STREAM, body end, TCP shutdown),
    /// after queueing a reset with `reason` if given.
    fn end_output(&mut self, reason: Option<h2::Reason>) {
        if let (Some(reason), Some(tx)) = (reason, self.output.as_ref()) {
            let _ = tx.try_send(Err(ResetStream(reason)));
        }
        self.output = None;
    }
}

impl Io for QueueIo {
    type Error = TransportGone;

    fn poll_input(
        &mut self,
        cx: &mut Context<'_>,
        feed: impl FnOnce(&[u8]),
    ) -> Poll<Result<bool, TransportGone>> {
        let Some(input) = self.input.as_mut() else {
            return Poll::Ready(Ok(false));
        };
        match std::task::ready!(input.poll_next_unpin(cx)) {
            // Native: h2 drops empty DATA frames without END_STREAM; the codec takes an empty
            // one as nothing but activity.
            Some(Input::Chunk(chunk)) => {
                feed(&chunk);
                Poll::Ready(Ok(true))
            }
            Some(Input::End) | None => Poll::Ready(Ok(false)),
            Some(Input::Failed) => Poll::Ready(Err(TransportGone)),
        }
    }

    fn poll_output(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Bytes,
    ) -> Poll<Result<(), TransportGone>> {
        let Some(tx) = self.output.as_ref() else {
            return Poll::Ready(Err(TransportGone));
        };
        let mut slot = Some(Ok(std::mem::take(out)));
        let sent = tx.poll_send(cx, &mut slot);
        if let Some(Ok(unsent)) = slot {
            *out = unsent;
        }
        match sent {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(queue::Gone)) => Poll::Ready(Err(TransportGone)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportGone>> {
        let gone = self
            .output
            .as_ref()
            .is_some_and(|tx| tx.poll_closed(cx).is_ready());
        if gone {
            Poll::Ready(Err(TransportGone))
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn poll_end(
        &mut self,
        _cx: &mut Context<'_>,
        protocol_error: bool,
    ) -> Poll<Result<(), TransportGone>> {
        self.protocol_error = protocol_error;
        let reset = (protocol_error && self.reset_after_protocol_error)
            .then_some(h2::Reason::PROTOCOL_ERROR);
        self.end_output(reset);
        Poll::Ready(Ok(()))
    }

    fn poll_drain(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        if let Some(input) = self.input.take() {
            if self.drain_input_after_close && !self.protocol_error {
                tokio::spawn(drain_after_close(input, input_len));
            }
        }
        Poll::Ready(())
    }

    /// Already done in `poll_end`, which the driver always runs before.
    fn reset(&mut self) {}

    fn abort(&mut self, timed_out: bool) {
        let reset = (timed_out && self.reset_after_protocol_error).then_some(h2::Reason::CANCEL);
        self.end_output(reset);
        self.input = None;
    }

    fn detach(&mut self) {
        self.end_output(None);
        self.input = None;
    }

    fn poll_reattach(
        &mut self,
        cx: &mut Context<'_>,
        _received: u64,
    ) -> Poll<Result<u64, TransportGone>> {
        let Some(rx) = self.reattach.as_mut() else {
            return Poll::Pending;
        };
        match std::task::ready!(rx.poll_recv(cx)) {
            Some(new) => {
                // The old transport (if still there) ends here: its body ends, its input is
                // no longer read.
                self.end_output(None);
                self.attach(new.input, new.output);
                self.reply = Some(new.reply);
                Poll::Ready(Ok(new.peer_received))
            }
            None => {
                self.reattach = None; // the session is gone: no re-attach can come
                Poll::Pending
            }
        }
    }

    fn reattached(&mut self, result: Result<u64, h2ws_codec::resume::ResumeError>) {
        if result.is_err() {
            self.end_output(None);
            self.input = None;
        }
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use std::task::Waker;

    fn queue_io(reset_after_protocol_error: bool) -> (QueueIo, queue::Receiver<Output>) {
        let (tx, rx) = queue::channel(4);
        let io = QueueIo::new(
            stream::pending().boxed(),
            tx,
            reset_after_protocol_error,
            false,
        );
        (io, rx)
    }

    /// What the transport receives after the unit `x`: `Some(reason)` for a reset, `None`
    /// for a plain end (the queue closes).
    async fn after_unit(rx: &mut queue::Receiver<Output>) -> Option<h2::Reason> {
        assert_eq!(rx.recv().await.unwrap().unwrap(), Bytes::from_static(b"x"));
        let reset = match rx.recv().await {
            Some(Err(ResetStream(reason))) => Some(reason),
            None => return None,
            Some(Ok(unit)) => panic!("a unit after the end: {unit:?}"),
        };
        assert!(rx.recv().await.is_none(), "the queue ends after the reset");
        reset
    }

    #[tokio::test]
    async fn ends_the_queue_with_the_reset_the_transport_asks_for() {
        let mut cx = Context::from_waker(Waker::noop());
        // (resets after a protocol error, the end was a protocol error, expected reset)
        for (resets, protocol_error, expected) in [
            (true, true, Some(h2::Reason::PROTOCOL_ERROR)),
            (true, false, None),
            (false, true, None),
        ] {
            let (mut io, mut rx) = queue_io(resets);
            let mut unit = Bytes::from_static(b"x");
            assert!(matches!(
                io.poll_output(&mut cx, &mut unit),
                Poll::Ready(Ok(()))
            ));
            assert!(matches!(
                io.poll_end(&mut cx, protocol_error),
                Poll::Ready(Ok(()))
            ));
            assert_eq!(
                after_unit(&mut rx).await,
                expected,
                "{resets} {protocol_error}"
            );
        }
        // A deadline that ends the socket: CANCEL where resets are the transport's way.
        for (resets, timed_out, expected) in [
            (true, true, Some(h2::Reason::CANCEL)),
            (true, false, None),
            (false, true, None),
        ] {
            let (mut io, mut rx) = queue_io(resets);
            let mut unit = Bytes::from_static(b"x");
            assert!(matches!(
                io.poll_output(&mut cx, &mut unit),
                Poll::Ready(Ok(()))
            ));
            io.abort(timed_out);
            assert_eq!(after_unit(&mut rx).await, expected, "{resets} {timed_out}");
        }
    }

    #[tokio::test]
    async fn a_transport_gone_while_idle_fails_the_flush() {
        let (mut io, rx) = queue_io(false);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(io.poll_flush(&mut cx), Poll::Ready(Ok(()))));
        drop(rx);
        assert!(matches!(
            io.poll_flush(&mut cx),
            Poll::Ready(Err(TransportGone))
        ));
        let mut unit = Bytes::from_static(b"x");
        assert!(matches!(
            io.poll_output(&mut cx, &mut unit),
            Poll::Ready(Err(TransportGone))
        ));
    }
}
