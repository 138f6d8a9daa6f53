//! The devserver's apps, each an ordinary socket route built with the embedding API.

pub mod chat;
pub mod echo;
pub mod faults;
pub mod gateway;

use axum::Router;
use h2ws::upgrade_route;

/// `/ws/echo`, `/ws/chat` (the chat room is on the server's [`h2ws::Rooms`]) and
/// `/demo/drop-connection` (a network loss on demand: [`faults`]).
pub fn routes() -> Router {
    Router::new()
        .route("/ws/echo", upgrade_route(echo::handle))
        .route("/ws/chat", upgrade_route(chat::handle))
        .route(
            "/demo/drop-connection",
            axum::routing::post(faults::drop_connection),
        )
}
