//! The Redis pub/sub broker: topic `T` is channel `PREFIX T`; every instance subscribes to
//! `PREFIX*` once (one pattern, so a join never waits for a SUBSCRIBE round trip and cannot
//! miss messages published right after it); a message is one byte of kind (`t` text, `b`
//! binary) then the payload.
//!
//! Two connections: a subscriber task (reconnects with capped exponential backoff) and a
//! multiplexed publish connection (reopened on the first publish after a failure, not before
//! the backoff allows). Publishing is refused while the subscriber is down: this instance's own
//! members would miss the message, so nobody should get it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tokio::time::{timeout, Instant};

use super::{Broker, Hub, RoomError, RoomsConfig};
use crate::Message;

/// Subscriber state shared with the publish side.
#[derive(Default)]
struct Link {
    subscribed: AtomicBool,
    /// Bumped on every (re)subscription: a publish connection older than that is reopened.
    generation: AtomicU64,
    reconnects: AtomicU64,
}

struct Publisher {
    conn: Option<(u64, redis::aio::MultiplexedConnection)>,
    /// No reconnect before this, unless the subscriber reconnected since (`failed_in`).
    retry_at: Instant,
    failed_in: u64,
    backoff: Duration,
}

/// See the module docs. Dropping it stops the subscriber task.
pub struct RedisBroker {
    client: redis::Client,
    link: Arc<Link>,
    publisher: tokio::sync::Mutex<Publisher>,
    config: RoomsConfig,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn unavailable(e: impl std::fmt::Display) -> RoomError {
    RoomError::Unavailable(e.to_string())
}

impl RedisBroker {
    /// Connects (subscriber and publisher) within the connect timeout, then keeps the
    /// subscription alive in a task that delivers into `hub`.
    pub async fn connect(
        url: &str,
        config: &RoomsConfig,
        hub: Arc<Hub>,
    ) -> Result<Self, RoomError> {
        let client =
            redis::Client::open(url).map_err(|e| RoomError::BadUrl(url.into(), e.to_string()))?;
        let pattern = format!("{}*", config.channel_prefix);
        let first = subscribe(&client, &pattern, config.connect_timeout).await?;
        let link = Arc::new(Link::default());
        link.subscribed.store(true, Relaxed);
        let task = tokio::spawn(run_subscriber(
            client.clone(),
            pattern,
            config.clone(),
            hub,
            link.clone(),
            first,
        ));
        let broker = RedisBroker {
            client,
            link,
            publisher: tokio::sync::Mutex::new(Publisher {
                conn: None,
                retry_at: Instant::now(),
                failed_in: 0,
                backoff: config.reconnect_min,
            }),
            config: config.clone(),
            task,
        };
        broker.connection().await?;
        Ok(broker)
    }

    /// The publish connection, reopened if it failed or predates the current subscription.
    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, RoomError> {
        let generation = self.link.generation.load(Relaxed);
        let mut p = self.publisher.lock().await;
        if let Some((g, conn)) = &p.conn {
            if *g == generation {
                return Ok(conn.clone());
            }
        }
        p.conn = None;
        if p.failed_in == generation && Instant::now() < p.retry_at {
            return Err(unavailable("reconnecting"));
        }
        let opened = timeout(
            self.config.connect_timeout,
            self.client.get_multiplexed_async_connection(),
        )
        .await;
        match opened {
            Ok(Ok(conn)) => {
                p.backoff = self.config.reconnect_min;
                p.conn = Some((generation, conn.clone()));
                Ok(conn)
            }
            failed => {
                p.retry_at = Instant::now() + p.backoff;
                p.failed_in = generation;
                p.backoff = (p.backoff * 2).min(self.config.reconnect_max);
                Err(match failed {
                    Ok(Err(e)) => unavailable(e),
                    _ => unavailable("connect timed out"),
                })
            }
        }
    }

    async fn publish_inner(&self, topic: &str, msg: Message) -> Result<(), RoomError> {
        if !self.link.subscribed.load(Relaxed) {
            return Err(unavailable("not subscribed"));
        }
        let mut conn = self.connection().await?;
        let mut payload = Vec::with_capacity(msg.len() + 1);
        match &msg {
            Message::Text(t) => {
                payload.push(b't');
                payload.extend_from_slice(t.as_bytes());
            }
            Message::Binary(b) => {
                payload.push(b'b');
                payload.extend_from_slice(b);
            }
        }
        let channel = format!("{}{}", self.config.channel_prefix, topic);
        let sent = timeout(
            self.config.publish_timeout,
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async::<i64>(&mut conn),
        )
        .await;
        match sent {
            Ok(Ok(_receivers)) => Ok(()),
            failed => {
                // Reopen next time (after the backoff).
                let mut p = self.publisher.lock().await;
                p.conn = None;
                Err(match failed {
                    Ok(Err(e)) => unavailable(e),
                    _ => unavailable("publish timed out"),
                })
            }
        }
    }
}

impl Broker for RedisBroker {
    fn publish<'a>(&'a self, topic: &'a str, msg: Message) -> BoxFuture<'a, Result<(), RoomError>> {
        Box::pin(self.publish_inner(topic, msg))
    }
    fn kind(&self) -> &'static str {
        "redis"
    }
    fn connected(&self) -> bool {
        self.link.subscribed.load(Relaxed)
    }
    fn reconnects(&self) -> u64 {
        self.link.reconnects.load(Relaxed)
    }
}

async fn subscribe(
    client: &redis::Client,
    pattern: &str,
    limit: Duration,
) -> Result<redis::aio::PubSub, RoomError> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.psubscribe(pattern).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match timeout(limit, attempt).await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable("connect timed out")),
    }
}

fn decode(payload: &[u8]) -> Option<Message> {
    match payload.split_first()? {
        (b't', text) => std::str::from_utf8(text)
            .ok()
            .map(|t| Message::Text(t.into())),
        (b'b', bin) => Some(Message::Binary(bytes::Bytes::copy_from_slice(bin))),
        _ => None,
    }
}

async fn run_subscriber(
    client: redis::Client,
    pattern: String,
    config: RoomsConfig,
    hub: Arc<Hub>,
    link: Arc<Link>,
    first: redis::aio::PubSub,
) {
    let mut pubsub = Some(first);
    let mut backoff = config.reconnect_min;
    loop {
        if let Some(p) = pubsub.take() {
            let mut messages = p.into_on_message();
            while let Some(msg) = messages.next().await {
                let topic = msg
                    .get_channel_name()
                    .strip_prefix(config.channel_prefix.as_str());
                // Oversized or malformed payloads (another publisher on our channels) are dropped.
                let payload = msg.get_payload_bytes();
                if payload.len() > config.max_message_size + 1 {
                    continue;
                }
                if let (Some(topic), Some(m)) = (topic, decode(payload)) {
                    hub.deliver(topic, &m);
                }
            }
            link.subscribed.store(false, Relaxed);
            tracing::warn!("redis broker: subscription lost; reconnecting");
        }
        tokio::time::sleep(backoff).await;
        match subscribe(&client, &pattern, config.connect_timeout).await {
            Ok(p) => {
                link.generation.fetch_add(1, Relaxed);
                link.reconnects.fetch_add(1, Relaxed);
                link.subscribed.store(true, Relaxed);
                tracing::info!("redis broker: subscribed again");
                backoff = config.reconnect_min;
                pubsub = Some(p);
            }
            Err(e) => {
                tracing::debug!("redis broker: {e}");
                backoff = (backoff * 2).min(config.reconnect_max);
            }
        }
    }
}
