//! `/ws/echo`: every message back unchanged (text as text, binary as binary). The codec
//! echoes the peer's close code.

use crate::Socket;

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
