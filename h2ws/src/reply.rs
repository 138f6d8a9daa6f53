//! The server side of `post` replies (codec `reply`): a batch sent with `h2ws-reply: 1` waits
//! up to `fetch::REPLY_WAIT_MS` after it was applied; the next output unit of the socket
//! leaves as that batch's answer instead of on the downstream, and the downstream carries
//! `fetch::MOVED_MARKER` in its place. Why: Chromium holds small data of an unfinished response
//! up to 1 ms before a page sees it, not data of a response that ends.
//!
//! One [`Replies`] per downstream (a re-attach's new downstream gets a new one, so a unit of
//! a lost downstream never goes into an answer on the new transport).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use h2ws_codec::handshake::fetch;
use tokio::sync::oneshot;

/// Frames for a batch's answer, and where they stand in the downstream.
pub(crate) struct Reply {
    /// Downstream body bytes sent before the marker (`h2ws-at`).
    pub(crate) at: u64,
    pub(crate) frames: Bytes,
}

/// A batch waiting for a reply.
pub(crate) struct Parked {
    replies: Arc<Replies>,
    id: u64,
    rx: oneshot::Receiver<Reply>,
}

impl Parked {
    /// Waits up to `wait` for the socket's next output unit.
    pub(crate) async fn wait(mut self, wait: Duration) -> Option<Reply> {
        if let Ok(reply) = tokio::time::timeout(wait, &mut self.rx).await {
            return reply.ok();
        }
        let id = self.id;
        let replies = &self.replies;
        let still_parked = replies.parked.lock().ok().and_then(|mut parked| {
            let i = parked.iter().position(|(p, _)| *p == id)?;
            let removed = parked.remove(i);
            replies.count.store(parked.len(), Ordering::Release);
            removed
        });
        match still_parked {
            Some(_) => None,
            // Taken meanwhile: the downstream sent it under the lock, so it is there.
            None => self.rx.await.ok(),
        }
    }
}

/// Batches waiting for a reply, oldest first.
#[derive(Default)]
pub(crate) struct Replies {
    parked: Mutex<VecDeque<(u64, oneshot::Sender<Reply>)>>,
    /// How many are parked, read without the lock: the downstream passes units straight on
    /// while it is 0 (every `stream` socket, and `post` ones between batches).
    count: AtomicUsize,
    next_id: AtomicU64,
}

impl Replies {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Parks a batch before its frames are applied, so that what the socket answers cannot
    /// slip onto the downstream before the batch waits; then [`Parked::wait`].
    pub(crate) fn park(self: &Arc<Self>) -> Option<Parked> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut parked = self.parked.lock().ok()?;
        // Batches whose requests went away mid-wait (their futures dropped) leave their
        // sender behind: bounded by dropping them here.
        parked.retain(|(_, tx)| !tx.is_closed());
        parked.push_back((id, tx));
        self.count.store(parked.len(), Ordering::Release);
        Some(Parked {
            replies: self.clone(),
            id,
            rx,
        })
    }

    /// Parks and waits up to `wait` for the socket's next output unit.
    #[cfg(test)]
    async fn wait(self: &Arc<Self>, wait: Duration) -> Option<Reply> {
        self.park()?.wait(wait).await
    }

    /// Hands `unit` to the oldest waiting batch; gives it back when none takes it.
    fn offer(&self, at: u64, unit: Bytes) -> Result<(), Bytes> {
        let Ok(mut parked) = self.parked.lock() else {
            return Err(unit);
        };
        let mut reply = Reply { at, frames: unit };
        let taken = loop {
            let Some((_, tx)) = parked.pop_front() else {
                break Err(reply.frames);
            };
            // A batch whose request went away (its future dropped) no longer takes it.
            match tx.send(reply) {
                Ok(()) => break Ok(()),
                Err(back) => reply = back,
            }
        };
        self.count.store(parked.len(), Ordering::Release);
        taken
    }

    /// The downstream body: `body`, with each unit that a waiting batch takes replaced by the
    /// marker. Only units of whole frames, at most `fetch::MAX_REPLY` bytes, go.
    pub(crate) fn divert<S, E>(
        self: Arc<Self>,
        body: S,
    ) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    {
        let mut body = Box::pin(body);
        let mut sent: u64 = 0;
        stream::poll_fn(move |cx| {
            let next = Pin::new(&mut body).poll_next(cx);
            let Poll::Ready(Some(Ok(unit))) = next else {
                return next;
            };
            let unit = if self.count.load(Ordering::Acquire) > 0
                && unit.len() <= fetch::MAX_REPLY
                && h2ws_codec::reply::whole_frames(&unit)
            {
                match self.offer(sent, unit) {
                    Ok(()) => Bytes::from_static(&fetch::MOVED_MARKER),
                    Err(unit) => unit,
                }
            } else {
                unit
            };
            sent += unit.len() as u64;
            Poll::Ready(Some(Ok(unit)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn frame(payload: &[u8]) -> Bytes {
        let mut f = vec![0x82, payload.len() as u8];
        f.extend_from_slice(payload);
        Bytes::from(f)
    }

    #[tokio::test]
    async fn a_waiting_batch_takes_the_next_unit_and_the_downstream_gets_the_marker() {
        let replies = Replies::new();
        let (tx, rx) = crate::wiring::queue::channel::<Result<Bytes, ()>>(4);
        let mut body = Box::pin(replies.clone().divert(rx));
        tx.try_send(Ok(frame(b"before"))).expect("room");
        assert_eq!(body.next().await, Some(Ok(frame(b"before"))));
        let waiting = {
            let replies = replies.clone();
            tokio::spawn(async move { replies.wait(Duration::from_secs(5)).await })
        };
        // Until the batch is parked the units go downstream.
        while replies.parked.lock().expect("lock").is_empty() {
            tokio::task::yield_now().await;
        }
        tx.try_send(Ok(frame(b"echo"))).expect("room");
        tx.try_send(Ok(frame(b"after"))).expect("room");
        assert_eq!(
            body.next().await,
            Some(Ok(Bytes::from_static(&fetch::MOVED_MARKER)))
        );
        assert_eq!(body.next().await, Some(Ok(frame(b"after"))));
        let reply = waiting.await.expect("task").expect("a reply");
        assert_eq!(reply.at, frame(b"before").len() as u64);
        assert_eq!(reply.frames, frame(b"echo"));
    }

    #[tokio::test]
    async fn without_output_the_wait_ends_empty_and_leaves_nothing_parked() {
        let replies = Replies::new();
        let started = std::time::Instant::now();
        assert!(replies.wait(Duration::from_millis(20)).await.is_none());
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(replies.parked.lock().expect("lock").is_empty());
        // A later unit is not taken by anyone.
        assert!(replies.offer(0, frame(b"x")).is_err());
    }

    #[tokio::test]
    async fn a_dropped_wait_gives_the_unit_back_to_the_downstream() {
        let replies = Replies::new();
        let wait = replies.wait(Duration::from_secs(5));
        let mut wait = Box::pin(wait);
        // Parked, then the request goes away.
        assert!(futures_util::poll!(wait.as_mut()).is_pending());
        drop(wait);
        assert_eq!(replies.offer(0, frame(b"x")).err(), Some(frame(b"x")));
    }

    #[tokio::test]
    async fn waits_whose_requests_went_away_do_not_pile_up() {
        let replies = Replies::new();
        for _ in 0..100 {
            let mut wait = Box::pin(replies.wait(Duration::from_secs(5)));
            assert!(futures_util::poll!(wait.as_mut()).is_pending());
        }
        assert!(replies.parked.lock().expect("lock").len() <= 1);
    }

    #[tokio::test]
    async fn partial_frames_and_large_units_stay_on_the_downstream() {
        let replies = Replies::new();
        let parked = {
            let replies = replies.clone();
            tokio::spawn(async move { replies.wait(Duration::from_millis(300)).await })
        };
        while replies.parked.lock().expect("lock").is_empty() {
            tokio::task::yield_now().await;
        }
        let partial = frame(b"abc").slice(..3);
        let mut large = vec![0x82, 127];
        large.extend_from_slice(&((fetch::MAX_REPLY as u64) + 1).to_be_bytes());
        large.resize(large.len() + fetch::MAX_REPLY + 1, 0);
        let units = vec![Ok::<_, ()>(partial.clone()), Ok(Bytes::from(large.clone()))];
        let out: Vec<_> = replies.clone().divert(stream::iter(units)).collect().await;
        assert_eq!(out, vec![Ok(partial), Ok(Bytes::from(large))]);
        assert!(parked.await.expect("task").is_none());
    }
}
