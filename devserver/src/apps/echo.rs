//! `/ws/echo`: every message back unchanged (text as text, binary as binary). The codec
//! echoes the peer's close code.
//!
//! Subprotocols: echo speaks whatever the client asks for, so it selects the **first** offered
//! subprotocol (a client that offers protocols fails the handshake when none is chosen, as
//! browsers do), and none when none is offered.

use axum::response::Response;

use h2ws::{Socket, SocketUpgrade};

/// The `/ws/echo` route handler: accepts the socket with the first offered subprotocol.
pub async fn handle(upgrade: SocketUpgrade) -> Response {
    let first = upgrade.info().offered_protocols.first().cloned();
    upgrade.with_protocol(first).on_socket(run)
}

/// Echoes until the socket closes.
pub async fn run(mut socket: Socket) {
    while let Some(msg) = socket.recv().await {
        if socket.send(msg).await.is_err() {
            break;
        }
    }
    tracing::debug!(
        transport = %socket.transport(),
        status = ?socket.close_status(),
        "echo socket ended"
    );
}
