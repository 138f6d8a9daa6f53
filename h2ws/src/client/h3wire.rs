//! The HTTP/3 pieces of a socket's `Wire`: a `stream` upstream
//! written through h3's `async fn`s, response bodies read by polling, `post` batches as
//! boxed futures. Apart from the `h3conn` module (which opens the connection and the requests)
//! so the wire does not depend on the connection code.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use http::Request;

use super::Error;

pub(crate) type H3Requests = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;
pub(crate) type H3SendHalf = h3::client::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;
pub(crate) type H3RecvHalf = h3::client::RequestStream<h3_quinn::RecvStream, Bytes>;
type H3Stream = h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

fn stream_gone() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the HTTP/3 upstream was already finished",
    ))
}

/// h3 sends only through `async fn`s: a write in progress owns the send half and gives it
/// back when done.
type Sending =
    Pin<Box<dyn Future<Output = (Box<H3SendHalf>, Result<(), h3::error::StreamError>)> + Send>>;

/// The `stream` upstream's send half: ready, writing one output unit (h3 waits for QUIC flow
/// control, so at most one unit is held beyond the codec), or finished. The half is boxed:
/// it is several hundred bytes and moves in and out of each write.
pub(crate) enum UpState {
    Idle(Box<H3SendHalf>),
    Busy(Sending),
    Finishing(Sending),
    Finished,
}

/// A `stream` socket over HTTP/3: the open request's response body down, one streamed request
/// body up.
pub(crate) struct H3Wire {
    down: H3RecvHalf,
    up: UpState,
    /// The upstream's response side, held so its stream is not stopped while the body flows.
    _up_recv: H3RecvHalf,
}

impl H3Wire {
    /// `down`: the open request's response body; `up`: the upstream request, split.
    pub(crate) fn new(down: H3RecvHalf, up: H3SendHalf, up_recv: H3RecvHalf) -> Self {
        H3Wire {
            down,
            up: UpState::Idle(Box::new(up)),
            _up_recv: up_recv,
        }
    }
}

impl H3Wire {
    /// Completes the write in progress, if any. `Ready(Ok)` = the send half is idle.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match &mut self.up {
            UpState::Busy(f) => {
                let (send, r) = ready!(f.as_mut().poll(cx));
                self.up = UpState::Idle(send);
                Poll::Ready(r.map_err(Error::from))
            }
            UpState::Finishing(f) => {
                let (_, r) = ready!(f.as_mut().poll(cx));
                self.up = UpState::Finished;
                Poll::Ready(r.map_err(Error::from))
            }
            UpState::Idle(_) => Poll::Ready(Ok(())),
            UpState::Finished => Poll::Ready(Err(stream_gone())),
        }
    }

    pub(crate) fn poll_input(
        &mut self,
        cx: &mut Context<'_>,
        feed: impl FnOnce(&[u8]),
    ) -> Poll<Result<bool, Error>> {
        poll_h3_input(&mut self.down, cx, feed)
    }

    /// Takes `out` as one DATA frame once the previous one is written.
    pub(crate) fn poll_output(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Bytes,
    ) -> Poll<Result<(), Error>> {
        ready!(self.poll_idle(cx))?;
        let UpState::Idle(mut send) = std::mem::replace(&mut self.up, UpState::Finished) else {
            return Poll::Ready(Err(stream_gone()));
        };
        let chunk = std::mem::take(out);
        self.up = UpState::Busy(Box::pin(async move {
            let r = send.send_data(chunk).await;
            (send, r)
        }));
        // Start it now (registers the waker); its end is collected by the next call.
        if let Poll::Ready(Err(e)) = self.poll_idle(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(()))
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self.up {
            UpState::Busy(_) => self.poll_idle(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Ends the upstream body (QUIC FIN) after the last write.
    pub(crate) fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            match &mut self.up {
                UpState::Finished => return Poll::Ready(Ok(())),
                UpState::Busy(_) | UpState::Finishing(_) => ready!(self.poll_idle(cx))?,
                UpState::Idle(_) => {
                    let UpState::Idle(mut send) =
                        std::mem::replace(&mut self.up, UpState::Finished)
                    else {
                        continue;
                    };
                    self.up = UpState::Finishing(Box::pin(async move {
                        let r = send.finish().await;
                        (send, r)
                    }));
                }
            }
        }
    }
}

/// Reads the next chunk of an HTTP/3 response body. `Ready(Ok(false))` = the body ended.
pub(crate) fn poll_h3_input(
    recv: &mut H3RecvHalf,
    cx: &mut Context<'_>,
    feed: impl FnOnce(&[u8]),
) -> Poll<Result<bool, Error>> {
    loop {
        match ready!(recv.poll_recv_data(cx)) {
            Ok(None) => return Poll::Ready(Ok(false)),
            Err(e) => return Poll::Ready(Err(e.into())),
            Ok(Some(mut chunk)) => {
                if !chunk.has_remaining() {
                    continue;
                }
                let data = chunk.copy_to_bytes(chunk.remaining());
                feed(&data);
                return Poll::Ready(Ok(true));
            }
        }
    }
}

/// One `post` batch over HTTP/3: its request, body and answer. Boxed: h3 only offers
/// `async fn`s.
pub(crate) type BatchFuture = Pin<Box<dyn Future<Output = Result<http::StatusCode, Error>> + Send>>;

pub(crate) fn send_batch(mut requests: H3Requests, req: Request<()>, body: Bytes) -> BatchFuture {
    Box::pin(async move {
        let mut stream: H3Stream = requests.send_request(req).await?;
        if !body.is_empty() {
            stream.send_data(body).await?;
        }
        stream.finish().await?;
        Ok(stream.recv_response().await?.status())
    })
}
