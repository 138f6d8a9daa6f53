//! `/ws/chat`: every message to every socket on the route, the sender included, whatever
//! their transports, on every instance sharing the broker (`--broker redis://...`); one room
//! of [`Rooms`], which has the delivery, ordering, backpressure and outage
//! rules.

use crate::rooms::Rooms;
use crate::Socket;

/// The topic `/ws/chat` uses.
pub const TOPIC: &str = "chat";

/// The chat room (cheap to clone).
#[derive(Clone, Default)]
pub struct Chat {
    rooms: Rooms,
}

impl Chat {
    /// A chat within this process.
    pub fn new() -> Self {
        Self::default()
    }

    /// A chat on these rooms (and their broker).
    pub fn with_rooms(rooms: Rooms) -> Self {
        Chat { rooms }
    }

    /// Members of all rooms on this instance.
    pub fn len(&self) -> usize {
        self.rooms.snapshot().members as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Serves one socket until it closes.
    pub async fn run(self, socket: Socket) {
        self.rooms.serve(socket, TOPIC).await
    }
}
