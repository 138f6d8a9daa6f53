//! The devserver's apps, each an ordinary socket route built with the embedding API.

pub mod chat;
pub mod echo;
pub mod gateway;

use axum::routing::any;
use axum::Router;

/// `/ws/echo` and `/ws/chat` (the chat room is on the server's [`h2ws::Rooms`]).
pub fn routes() -> Router {
    Router::new()
        .route("/ws/echo", any(echo::handle))
        .route("/ws/chat", any(chat::handle))
}
