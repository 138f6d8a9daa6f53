//! `/ws/chat`: every message to every socket on the route, the sender included, whatever
//! their transports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Message, Socket, SocketSender};

/// A member slower than this to take one message is dropped from the room.
const MEMBER_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// One chat room.
#[derive(Clone, Default)]
pub struct Chat {
    members: Arc<Mutex<HashMap<u64, SocketSender>>>,
    next_id: Arc<AtomicU64>,
}

impl Chat {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of sockets in the room.
    pub fn len(&self) -> usize {
        self.members.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Serves one socket until it closes.
    pub async fn run(self, socket: Socket) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, mut receiver) = socket.split();
        if let Ok(mut m) = self.members.lock() {
            m.insert(id, sender);
        }
        while let Some(msg) = receiver.recv().await {
            self.broadcast(msg).await;
        }
        if let Ok(mut m) = self.members.lock() {
            m.remove(&id);
        }
    }

    async fn broadcast(&self, msg: Message) {
        let members: Vec<(u64, SocketSender)> = match self.members.lock() {
            Ok(m) => m.iter().map(|(id, s)| (*id, s.clone())).collect(),
            Err(_) => return,
        };
        for (id, member) in members {
            let sent = tokio::time::timeout(MEMBER_SEND_TIMEOUT, member.send(msg.clone())).await;
            if !matches!(sent, Ok(Ok(()))) {
                if let Ok(mut m) = self.members.lock() {
                    m.remove(&id);
                }
            }
        }
    }
}
