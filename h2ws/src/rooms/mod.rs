//! Rooms: publish/subscribe between sockets, on this server or across several instances
//! through a broker (Redis pub/sub). `/ws/chat` is one room; apps use [`Rooms`] for their own.
//!
//! Structure: a [`Broker`] carries each published message to every instance (this one
//! included); each instance's [`Hub`] hands it to the local members of the topic. A message
//! reaches the members of *every* instance only through the broker, never as a local shortcut,
//! so each member sees each message exactly once and all members see one sender's messages in
//! the order that sender published them (one sender awaits each publish; Redis keeps the order
//! of one connection's commands and delivers to subscribers in that order).
//!
//! Backpressure: a member has a bounded queue ([`RoomsConfig::member_queue`] messages,
//! [`RoomsConfig::member_queue_bytes`] bytes; one message over the byte bound still fits into an
//! empty queue). Delivery never
//! waits for a member: a member whose queue is full is **evicted** (removed from the room; its
//! [`Member::recv`] ends and [`Member::evicted`] is true; [`Rooms::serve`] then closes its
//! socket with 1008 "too slow for the room"), so one slow member cannot stall a room.
//!
//! Broker outages (Redis): a publish while the broker is unreachable fails at once, or within
//! [`RoomsConfig::publish_timeout`], with [`RoomError::Unavailable`]; nothing is buffered, so
//! nobody gets that message ([`Rooms::serve`] closes the sender's socket with 1013 "broker
//! unavailable": the client knows its message went nowhere and may reconnect and resend).
//! Members stay open; the broker reconnects with capped exponential backoff and fan-out resumes.

mod redis;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{Message, Socket};

// The one two-file import pair in the crate: `redis` implements this module's `Broker` for
// Redis pub/sub and this module re-exports it, so the public path stays `rooms::RedisBroker`.
pub use self::redis::RedisBroker;

/// Limits and timers of [`Rooms`].
#[derive(Clone, Debug)]
pub struct RoomsConfig {
    /// Largest message a member may publish, bytes (larger → [`RoomError::TooLarge`]; 1 MiB).
    pub max_message_size: usize,
    /// Messages queued for one member before it is evicted as too slow (1024).
    pub member_queue: usize,
    /// Bytes queued for one member before it is evicted as too slow (4 MiB).
    pub member_queue_bytes: usize,
    /// Longest wait for the broker to take one publish (2 s).
    pub publish_timeout: Duration,
    /// Longest wait to connect to the broker (2 s).
    pub connect_timeout: Duration,
    /// Reconnect backoff: first wait, doubled after each failure up to the cap (100 ms, 5 s).
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Longest wait for a member's socket to take one message in [`Rooms::serve`] (5 s).
    pub member_send_timeout: Duration,
    /// Redis channel prefix; topic `T` is channel `PREFIX + T` (`h2ws:room:`).
    pub channel_prefix: String,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            max_message_size: 1 << 20,
            member_queue: 1024,
            member_queue_bytes: 4 << 20,
            publish_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            member_send_timeout: Duration::from_secs(5),
            channel_prefix: "h2ws:room:".into(),
        }
    }
}

/// Why a room operation failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RoomError {
    #[error("message of {0} bytes is larger than the room limit")]
    TooLarge(usize),
    #[error("topic must be 1 to 200 bytes without control characters")]
    BadTopic,
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    #[error("broker address {0:?}: {1}")]
    BadUrl(String, String),
}

/// Carries published messages to every instance's [`Hub`], this one's included. Implemented
/// in-process ([`InProcess`]) and over Redis pub/sub ([`RedisBroker`]); other brokers can be
/// plugged in with [`Rooms::with_broker`].
pub trait Broker: Send + Sync + 'static {
    /// Publishes `msg` on `topic`; Ok once the broker took it (then every subscribed instance
    /// delivers it). Must not wait longer than the broker's own timeouts.
    fn publish<'a>(&'a self, topic: &'a str, msg: Message) -> BoxFuture<'a, Result<(), RoomError>>;
    /// `"in-process"`, `"redis"`, ...
    fn kind(&self) -> &'static str;
    /// Whether the broker can deliver right now (subscribed and reachable).
    fn connected(&self) -> bool;
    /// Times the broker reconnected after losing its connection.
    fn reconnects(&self) -> u64;
}

/// The local members of each topic, fed by a broker. Never blocks: see the module docs.
pub struct Hub {
    topics: Mutex<HashMap<String, HashMap<u64, Slot>>>,
    next_id: AtomicU64,
    depth: usize,
    max_bytes: usize,
    delivered: AtomicU64,
    evicted: AtomicU64,
}

struct Slot {
    tx: mpsc::Sender<Message>,
    evicted: Arc<AtomicBool>,
    queued_bytes: Arc<AtomicUsize>,
}

impl Hub {
    fn new(depth: usize, max_bytes: usize) -> Self {
        Hub {
            topics: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            depth: depth.max(1),
            max_bytes,
            delivered: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// Hands `msg` to every local member of `topic`; evicts members whose queue is full.
    pub fn deliver(&self, topic: &str, msg: &Message) {
        let Ok(mut topics) = self.topics.lock() else {
            return;
        };
        let Some(members) = topics.get_mut(topic) else {
            return;
        };
        let len = msg.len();
        members.retain(|_, slot| {
            let queued = slot.queued_bytes.load(Relaxed);
            let sent = if queued > 0 && queued + len > self.max_bytes {
                Err(mpsc::error::TrySendError::Full(()))
            } else {
                slot.tx.try_send(msg.clone()).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => mpsc::error::TrySendError::Full(()),
                    mpsc::error::TrySendError::Closed(_) => mpsc::error::TrySendError::Closed(()),
                })
            };
            match sent {
                Ok(()) => {
                    slot.queued_bytes.fetch_add(len, Relaxed);
                    self.delivered.fetch_add(1, Relaxed);
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    slot.evicted.store(true, Relaxed);
                    self.evicted.fetch_add(1, Relaxed);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if members.is_empty() {
            topics.remove(topic);
        }
    }

    fn join(self: &Arc<Self>, topic: &str) -> Member {
        let (tx, rx) = mpsc::channel(self.depth);
        let evicted = Arc::new(AtomicBool::new(false));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let id = self.next_id.fetch_add(1, Relaxed);
        if let Ok(mut topics) = self.topics.lock() {
            topics.entry(topic.to_string()).or_default().insert(
                id,
                Slot {
                    tx,
                    evicted: evicted.clone(),
                    queued_bytes: queued_bytes.clone(),
                },
            );
        }
        Member {
            topic: topic.to_string(),
            id,
            rx,
            evicted,
            queued_bytes,
            hub: Arc::downgrade(self),
        }
    }

    fn leave(&self, topic: &str, id: u64) {
        if let Ok(mut topics) = self.topics.lock() {
            if let Some(members) = topics.get_mut(topic) {
                members.remove(&id);
                if members.is_empty() {
                    topics.remove(topic);
                }
            }
        }
    }

    fn members(&self) -> u64 {
        self.topics
            .lock()
            .map(|t| t.values().map(|m| m.len() as u64).sum())
            .unwrap_or(0)
    }
}

/// One socket's (or any task's) membership in a topic; leaves the topic when dropped.
pub struct Member {
    topic: String,
    id: u64,
    rx: mpsc::Receiver<Message>,
    evicted: Arc<AtomicBool>,
    queued_bytes: Arc<AtomicUsize>,
    hub: Weak<Hub>,
}

impl Member {
    /// The next message published on the topic (by anyone, this member's own included);
    /// `None` once evicted as too slow (see [`Member::evicted`]).
    pub async fn recv(&mut self) -> Option<Message> {
        let msg = self.rx.recv().await?;
        self.queued_bytes.fetch_sub(msg.len(), Relaxed);
        Some(msg)
    }

    /// Whether the room dropped this member because its queue was full.
    pub fn evicted(&self) -> bool {
        self.evicted.load(Relaxed)
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.leave(&self.topic, self.id);
        }
    }
}

/// The in-process broker: publishing is delivering to this server's hub.
pub struct InProcess {
    hub: Arc<Hub>,
}

impl Broker for InProcess {
    fn publish<'a>(&'a self, topic: &'a str, msg: Message) -> BoxFuture<'a, Result<(), RoomError>> {
        self.hub.deliver(topic, &msg);
        Box::pin(async { Ok(()) })
    }
    fn kind(&self) -> &'static str {
        "in-process"
    }
    fn connected(&self) -> bool {
        true
    }
    fn reconnects(&self) -> u64 {
        0
    }
}

/// `/.h2ws/stats` → `rooms`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoomsSnapshot {
    pub broker: String,
    pub connected: bool,
    pub reconnects: u64,
    /// Local room members now.
    pub members: u64,
    pub published: u64,
    /// Publishes refused (broker unavailable, too large).
    pub publish_failures: u64,
    /// Messages handed to local members.
    pub delivered: u64,
    /// Members dropped as too slow.
    pub evicted: u64,
}

/// Topics with members and a broker (cheap to clone; clones share everything).
#[derive(Clone)]
pub struct Rooms {
    hub: Arc<Hub>,
    broker: Arc<dyn Broker>,
    config: Arc<RoomsConfig>,
    published: Arc<AtomicU64>,
    publish_failures: Arc<AtomicU64>,
}

impl Default for Rooms {
    fn default() -> Self {
        Rooms::in_process(RoomsConfig::default())
    }
}

impl Rooms {
    /// Rooms within this process only.
    pub fn in_process(config: RoomsConfig) -> Self {
        Rooms::with_broker(config, |hub| Arc::new(InProcess { hub }))
    }

    /// Rooms shared by every instance connected to the Redis server at `url`
    /// (`redis://HOST:PORT[/DB]`). Fails if the first connection does not succeed within the
    /// connect timeout (a typo should not start a server that silently fans out nowhere);
    /// later outages are retried with backoff.
    pub async fn redis(url: &str, config: RoomsConfig) -> Result<Self, RoomError> {
        let hub = Arc::new(Hub::new(config.member_queue, config.member_queue_bytes));
        let broker = RedisBroker::connect(url, &config, hub.clone()).await?;
        Ok(Rooms::assemble(config, hub, Arc::new(broker)))
    }

    /// Rooms on a broker of your own: `make` gets the hub the broker must deliver into.
    pub fn with_broker(
        config: RoomsConfig,
        make: impl FnOnce(Arc<Hub>) -> Arc<dyn Broker>,
    ) -> Self {
        let hub = Arc::new(Hub::new(config.member_queue, config.member_queue_bytes));
        let broker = make(hub.clone());
        Rooms::assemble(config, hub, broker)
    }

    fn assemble(config: RoomsConfig, hub: Arc<Hub>, broker: Arc<dyn Broker>) -> Self {
        Rooms {
            hub,
            broker,
            config: Arc::new(config),
            published: Arc::default(),
            publish_failures: Arc::default(),
        }
    }

    pub fn config(&self) -> &RoomsConfig {
        &self.config
    }

    /// Joins `topic`: the member receives every message published on it from now on.
    pub fn join(&self, topic: &str) -> Result<Member, RoomError> {
        check_topic(topic)?;
        Ok(self.hub.join(topic))
    }

    /// Publishes `msg` to every member of `topic` on every instance (the publisher's own
    /// memberships included).
    pub async fn publish(&self, topic: &str, msg: Message) -> Result<(), RoomError> {
        check_topic(topic)?;
        let result = if msg.len() > self.config.max_message_size {
            Err(RoomError::TooLarge(msg.len()))
        } else {
            self.broker.publish(topic, msg).await
        };
        match &result {
            Ok(()) => self.published.fetch_add(1, Relaxed),
            Err(_) => self.publish_failures.fetch_add(1, Relaxed),
        };
        result
    }

    /// Serves `socket` as a member of `topic` until it closes: everything it sends is
    /// published, everything published is sent to it. Closes it with 1008 when evicted as too
    /// slow, 1009 for a message over the room limit, 1013 when the broker is unavailable.
    pub async fn serve(&self, socket: Socket, topic: &str) {
        let (sender, mut receiver) = socket.split();
        let mut member = match self.join(topic) {
            Ok(m) => m,
            Err(e) => {
                let _ = sender.close(1011, &e.to_string()).await;
                return;
            }
        };
        let send_timeout = self.config.member_send_timeout;
        // Its own task: the publish loop below may run many messages without yielding, and the
        // member's queue must drain meanwhile (else a fast sender would evict itself).
        let forward = tokio::spawn({
            let sender = sender.clone();
            async move {
                while let Some(msg) = member.recv().await {
                    match tokio::time::timeout(send_timeout, sender.send(msg)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => break,
                    }
                }
                // Evicted, or too slow to take one message.
                let _ = sender.close(1008, "too slow for the room").await;
            }
        });
        let forward = AbortOnDrop(forward);
        while let Some(msg) = receiver.recv().await {
            match self.publish(topic, msg).await {
                Ok(()) => {}
                Err(RoomError::TooLarge(_)) => {
                    let _ = sender.close(1009, "message too large for the room").await;
                    break;
                }
                Err(e) => {
                    tracing::warn!("room {topic}: {e}");
                    let _ = sender.close(1013, "broker unavailable").await;
                    break;
                }
            }
        }
        drop(forward);
        // Let the close handshake finish (the receiver reads the peer's Close).
        let _ = tokio::time::timeout(send_timeout, async {
            while receiver.recv().await.is_some() {}
        })
        .await;
    }

    pub fn snapshot(&self) -> RoomsSnapshot {
        RoomsSnapshot {
            broker: self.broker.kind().to_string(),
            connected: self.broker.connected(),
            reconnects: self.broker.reconnects(),
            members: self.hub.members(),
            published: self.published.load(Relaxed),
            publish_failures: self.publish_failures.load(Relaxed),
            delivered: self.hub.delivered.load(Relaxed),
            evicted: self.hub.evicted.load(Relaxed),
        }
    }
}

/// Aborts the task when dropped (a member's forwarder ends with its socket's serve).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn check_topic(topic: &str) -> Result<(), RoomError> {
    if (1..=200).contains(&topic.len()) && !topic.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(RoomError::BadTopic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_member_gets_every_message_in_order_and_a_slow_one_is_evicted() {
        let rooms = Rooms::in_process(RoomsConfig {
            member_queue: 4,
            max_message_size: 8,
            ..RoomsConfig::default()
        });
        let mut a = rooms.join("t").unwrap();
        let mut b = rooms.join("t").unwrap();
        let mut slow = rooms.join("t").unwrap();
        let mut other = rooms.join("u").unwrap();
        for i in 0..10 {
            rooms
                .publish("t", Message::Text(i.to_string()))
                .await
                .unwrap();
            assert_eq!(a.recv().await, Some(Message::Text(i.to_string())));
            assert_eq!(b.recv().await, Some(Message::Text(i.to_string())));
        }
        // `slow` read nothing: evicted at the 5th message, holding the first 4, then ended.
        assert!(slow.evicted() && !a.evicted());
        for i in 0..4 {
            assert_eq!(slow.recv().await, Some(Message::Text(i.to_string())));
        }
        assert_eq!(slow.recv().await, None);
        assert_eq!(
            rooms.publish("t", Message::Text("123456789".into())).await,
            Err(RoomError::TooLarge(9))
        );
        assert!(matches!(rooms.join(""), Err(RoomError::BadTopic)));
        // The byte bound: 2 queued bytes of 3 allowed, a third 2-byte message evicts.
        let small = Rooms::in_process(RoomsConfig {
            member_queue_bytes: 3,
            ..RoomsConfig::default()
        });
        let mut m = small.join("t").unwrap();
        small
            .publish("t", Message::Text("ab".into()))
            .await
            .unwrap();
        assert!(!m.evicted());
        small
            .publish("t", Message::Text("cd".into()))
            .await
            .unwrap();
        assert!(m.evicted());
        assert_eq!(m.recv().await, Some(Message::Text("ab".into())));
        assert_eq!(m.recv().await, None);
        let snap = rooms.snapshot();
        assert_eq!(
            (
                snap.members,
                snap.evicted,
                snap.published,
                snap.publish_failures
            ),
            (3, 1, 10, 1)
        );
        drop(b);
        assert_eq!(rooms.snapshot().members, 2);
        assert!(other.rx.try_recv().is_err(), "topics are separate");
    }
}
