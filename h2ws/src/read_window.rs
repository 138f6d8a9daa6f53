//! The fetch downstream's read window (codec `handshake::fetch::READ_WINDOW`): when the client
//! offered acks (`h2ws-acks: 1`), the open response body sends at most `window` bytes beyond
//! what the client acknowledged having read (`h2ws-read` ack requests).
//!
//! Why: Firefox and WebKit buffer a `fetch()` response body as it arrives, read or not
//! (measured: 400 MiB into an `H2WebSocketStream` nobody read), so HTTP/2 flow control never
//! pushes back. With the window, a page that stops reading stops the body, the driver's output
//! queue fills and the app's `send` waits: the same backpressure Chromium gets from HTTP/2.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use futures_util::task::AtomicWaker;

pub(crate) struct ReadWindow {
    window: u64,
    /// Body bytes handed to the HTTP layer.
    sent: AtomicU64,
    /// Body bytes the client says it has read (cumulative, only grows).
    read: AtomicU64,
    /// The body stream, waiting for an ack.
    waker: AtomicWaker,
    /// The socket ended: nothing more is produced, so what is still queued (at most the
    /// driver's output queue, ending with its Close frame) goes out regardless of the window.
    /// The session is gone by then, so no ack could reopen it.
    released: AtomicBool,
}

/// An ack that cannot be right: more read than was ever sent.
#[derive(Debug)]
pub(crate) struct AckBeyondSent;

impl ReadWindow {
    pub(crate) fn new(window: u64) -> Arc<Self> {
        Arc::new(ReadWindow {
            window,
            sent: AtomicU64::new(0),
            read: AtomicU64::new(0),
            waker: AtomicWaker::new(),
            released: AtomicBool::new(false),
        })
    }

    pub(crate) fn window(&self) -> u64 {
        self.window
    }

    /// The client has read `read` body bytes in all; reopens the window if that frees room.
    /// Old (smaller) acks arriving late change nothing.
    pub(crate) fn ack(&self, read: u64) -> Result<(), AckBeyondSent> {
        if read > self.sent.load(Ordering::Acquire) {
            return Err(AckBeyondSent);
        }
        self.read.fetch_max(read, Ordering::AcqRel);
        self.waker.wake();
        Ok(())
    }

    /// The socket ended (see `released`).
    pub(crate) fn release(&self) {
        self.released.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn has_room(&self) -> bool {
        if self.released.load(Ordering::Acquire) {
            return true;
        }
        let sent = self.sent.load(Ordering::Acquire);
        let read = self.read.load(Ordering::Acquire);
        sent.saturating_sub(read) < self.window
    }

    /// `body` held to the window: the next chunk is taken only while fewer than `window`
    /// bytes are unacknowledged (one chunk may overshoot by its own size).
    pub(crate) fn gate<S, E>(
        self: Arc<Self>,
        body: S,
    ) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    {
        let mut body = Box::pin(body);
        stream::poll_fn(move |cx| {
            if !self.has_room() {
                self.waker.register(cx.waker());
                // An ack may have landed between the check and the registration.
                if !self.has_room() {
                    return Poll::Pending;
                }
            }
            let next = Pin::new(&mut body).poll_next(cx);
            if let Poll::Ready(Some(Ok(chunk))) = &next {
                self.sent.fetch_add(chunk.len() as u64, Ordering::AcqRel);
            }
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn the_body_stops_at_the_window_and_acks_reopen_it() {
        let window = ReadWindow::new(10);
        let chunks = (0..6).map(|i| Ok::<_, ()>(Bytes::from(vec![i; 4])));
        let mut body = Box::pin(window.clone().gate(stream::iter(chunks)));
        // 4 + 4 + 4 = 12 ≥ 10 after three chunks: the fourth waits.
        for _ in 0..3 {
            assert_eq!(body.next().await.map(|c| c.map(|b| b.len())), Some(Ok(4)));
        }
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), body.next()).await;
        assert!(waiting.is_err(), "held at the window");
        assert!(
            window.ack(13).is_err(),
            "cannot have read more than was sent"
        );
        window.ack(4).expect("ack");
        // 12 - 4 = 8 < 10: one more chunk, then held again (16 - 4 = 12).
        assert!(body.next().await.is_some());
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), body.next()).await;
        assert!(waiting.is_err(), "held again");
        window.ack(3).expect("a late, smaller ack is harmless");
        window.ack(16).expect("ack all");
        assert_eq!(body.collect::<Vec<_>>().await.len(), 2);
    }

    #[tokio::test]
    async fn an_ended_socket_flushes_what_is_queued_without_acks() {
        let window = ReadWindow::new(4);
        let chunks = (0..3).map(|i| Ok::<_, ()>(Bytes::from(vec![i; 4])));
        let mut body = Box::pin(window.clone().gate(stream::iter(chunks)));
        assert!(body.next().await.is_some());
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), body.next()).await;
        assert!(waiting.is_err(), "held at the window");
        window.release();
        assert_eq!(
            body.collect::<Vec<_>>().await.len(),
            2,
            "the rest, ending with the Close"
        );
    }
}
