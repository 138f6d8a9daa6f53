//! A small bounded queue between a socket's driver and its transport (the output units of a
//! response body, the chunks of a fetch upstream), in place of `tokio::sync::mpsc`.
//!
//! Why not mpsc: a tokio channel allocates its first block of 32 slots and a cache-padded
//! shared state up front (about 1.5 KiB for a queue of 2 to 4 units), and an idle socket has
//! two of them. This one is a mutex over a `VecDeque` that holds at most `depth` items (and
//! no buffer once drained), plus the wakers of the one receiver and of the senders waiting:
//! about 120 bytes while idle.
//!
//! Semantics as in mpsc where the transports rely on them: a send fails once the receiver is
//! gone (and gives the item back), the receiver ends once every sender is gone and the queue is
//! drained, [`Sender::closed`] resolves when the receiver is gone.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_util::Stream;

struct State<T> {
    items: VecDeque<T>,
    depth: usize,
    senders: usize,
    receiver_gone: bool,
    /// The receiver waiting for an item or the end.
    receiver: Option<Waker>,
    /// Senders waiting for room or for the receiver to go.
    senders_waiting: Wakers,
}

/// Wakers of the tasks waiting, at most one per task: the first inline (there is rarely a
/// second), so an idle queue allocates nothing for them.
#[derive(Default)]
struct Wakers {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Wakers {
    fn register(&mut self, cx: &Context<'_>) {
        let new = cx.waker();
        match &self.first {
            None => self.first = Some(new.clone()),
            Some(w) if w.will_wake(new) => {}
            Some(_) => {
                if !self.more.iter().any(|w| w.will_wake(new)) {
                    self.more.push(new.clone());
                }
            }
        }
    }

    fn wake_all(self) {
        self.first
            .into_iter()
            .chain(self.more)
            .for_each(Waker::wake);
    }
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    /// The state holds no invariant a panic elsewhere could break halfway: keep going.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending end; cloneable.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end: a [`Stream`] of the items, ending once every sender is gone.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A queue holding at most `depth` (at least 1) items.
pub(crate) fn channel<T>(depth: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            depth: depth.max(1),
            senders: 1,
            receiver_gone: false,
            receiver: None,
            senders_waiting: Wakers::default(),
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Queues `item` if there is room; gives it back if the queue is full or the receiver gone.
    pub(crate) fn try_send(&self, item: T) -> Result<(), T> {
        let mut st = self.shared.lock();
        if st.receiver_gone || st.items.len() >= st.depth {
            return Err(item);
        }
        st.items.push_back(item);
        let waker = st.receiver.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Queues the item in `slot` (taking it) once there is room; `Ready(Err)`, the item left
    /// in `slot`, once the receiver is gone. An empty `slot` is `Ready(Ok)` at once.
    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        slot: &mut Option<T>,
    ) -> Poll<Result<(), Gone>> {
        let mut st = self.shared.lock();
        if st.receiver_gone {
            return Poll::Ready(Err(Gone));
        }
        if st.items.len() >= st.depth {
            st.senders_waiting.register(cx);
            return Poll::Pending;
        }
        let Some(item) = slot.take() else {
            return Poll::Ready(Ok(()));
        };
        st.items.push_back(item);
        let waker = st.receiver.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }

    /// Waits for room, then queues `item`; gives it back if the receiver is gone.
    pub(crate) async fn send(&self, item: T) -> Result<(), T> {
        let mut slot = Some(item);
        let sent = poll_fn(|cx| self.poll_send(cx, &mut slot)).await;
        match (sent, slot) {
            (Err(Gone), Some(item)) => Err(item),
            _ => Ok(()),
        }
    }

    /// `Ready` once the receiver is gone.
    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.shared.lock();
        if st.receiver_gone {
            return Poll::Ready(());
        }
        st.senders_waiting.register(cx);
        Poll::Pending
    }

    /// Resolves once the receiver is gone.
    pub(crate) async fn closed(&self) {
        poll_fn(|cx| self.poll_closed(cx)).await
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.senders -= 1;
        let waker = if st.senders == 0 {
            st.receiver.take()
        } else {
            None
        };
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is drained.
    #[cfg(test)]
    pub(crate) async fn recv(&mut self) -> Option<T> {
        futures_util::StreamExt::next(self).await
    }
}

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut st = self.shared.lock();
        if let Some(item) = st.items.pop_front() {
            if st.items.is_empty() {
                // Drained: an idle socket's queue holds no buffer (it is a few items at most,
                // so allocating it again for the next burst is cheap).
                st.items = VecDeque::new();
            }
            let waiting = std::mem::take(&mut st.senders_waiting);
            drop(st);
            waiting.wake_all();
            return Poll::Ready(Some(item));
        }
        if st.senders == 0 {
            return Poll::Ready(None);
        }
        if !st
            .receiver
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            st.receiver = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.receiver_gone = true;
        let items = std::mem::take(&mut st.items);
        let waiting = std::mem::take(&mut st.senders_waiting);
        drop(st);
        drop(items);
        waiting.wake_all();
    }
}

/// The receiver is gone.
#[derive(Debug)]
pub(crate) struct Gone;

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn bounded_in_order_and_ends_with_the_senders() {
        let (tx, mut rx) = channel::<u32>(2);
        assert!(tx.try_send(1).is_ok());
        assert!(tx.try_send(2).is_ok());
        assert_eq!(tx.try_send(3), Err(3), "full at the depth");
        let tx2 = tx.clone();
        let sending = tokio::spawn(async move { tx2.send(3).await });
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(sending.await.ok(), Some(Ok(())), "room made by a receive");
        drop(tx);
        assert_eq!(rx.next().await, Some(2));
        assert_eq!(rx.next().await, Some(3));
        assert_eq!(rx.next().await, None, "every sender gone, queue drained");
    }

    #[tokio::test]
    async fn a_gone_receiver_fails_sends_and_wakes_the_waiting() {
        let (tx, rx) = channel::<u32>(1);
        assert!(tx.try_send(1).is_ok());
        let tx2 = tx.clone();
        let blocked = tokio::spawn(async move { tx2.send(2).await });
        let tx3 = tx.clone();
        let watcher = tokio::spawn(async move { tx3.closed().await });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(blocked.await.ok(), Some(Err(2)));
        assert!(watcher.await.is_ok());
        assert_eq!(tx.try_send(5), Err(5));
        assert_eq!(tx.send(6).await, Err(6));
    }
}
