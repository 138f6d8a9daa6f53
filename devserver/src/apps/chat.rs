//! `/ws/chat`: every message to every socket on the route, the sender included, whatever
//! their transports, on every instance sharing the broker (`--broker redis://...`); one room
//! of the server's [`Rooms`] (its `Extension<Rooms>`), which has the delivery, ordering,
//! backpressure and outage rules.

use axum::response::Response;
use axum::Extension;
use h2ws::{Rooms, SocketUpgrade};

/// The topic `/ws/chat` uses.
pub const TOPIC: &str = "chat";

/// The `/ws/chat` route handler: serves each socket in the room until it closes.
pub async fn handle(Extension(rooms): Extension<Rooms>, upgrade: SocketUpgrade) -> Response {
    upgrade.on_socket(move |socket| async move { rooms.serve(socket, TOPIC).await })
}
