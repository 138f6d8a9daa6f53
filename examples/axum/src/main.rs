//! A user's own axum app serving h2ws sockets on its own route.
//!
//! ```sh
//! cargo xtask pkg                       # build the npm package into wasm/pkg (once)
//! cargo run -p h2ws-example-axum        # then open http://127.0.0.1:3000/ (an address argument overrides)
//! ```
//!
//! `/ws/room?NAME` is a chat room per NAME on [`Rooms`]: in-process, or shared by every instance
//! of the app when `H2WS_BROKER=redis://HOST:PORT` is set (README "Scaling out").
//!
//! Plain `axum::serve` speaks HTTP/1.1 here, so browsers use the `post` transport (and their own
//! WebSocket over RFC 6455); for `stream` and the native mapping, mount the same routes on the
//! HTTPS + HTTP/2 loop of `h2ws::Server` with `Server::new().tls_identity(..).routes(app)`
//! (without the `Endpoint` layer below: the server gives its routes its own, which its graceful
//! shutdown closes; an inner layer would replace it).

use axum::response::Html;
use axum::routing::get;
use axum::{Extension, Router};
use h2ws::{route, Endpoint, Message, Rooms, RoomsConfig, Socket, SocketConfig};
use tower_http::services::ServeDir;

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>h2ws + axum</title>
<input id="t" value="hello"> <button id="b">Send</button><pre id="log"></pre>
<script type="module">
  import { H2WebSocket } from '/pkg/index.js';
  const log = (l) => (document.getElementById('log').textContent += l + '\n');
  const ws = new H2WebSocket('/ws/shout');
  ws.onopen = () => log('open');
  ws.onmessage = (e) => log(e.data);
  ws.onclose = (e) => log(`close ${e.code}`);
  document.getElementById('b').onclick = () => ws.send(document.getElementById('t').value);
</script>"#;

/// The app: every text message comes back in capitals. One `Socket` type whatever the transport.
async fn shout(mut socket: Socket) {
    while let Some(message) = socket.recv().await {
        let reply = match message {
            Message::Text(text) => Message::Text(text.to_uppercase()),
            binary => binary,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

/// A room per query string (`/ws/room?lobby`): everything a member sends goes to every member,
/// on every instance sharing the broker. `Rooms::serve` bounds each member's queue and closes a
/// member too slow to keep up (1008), so one slow reader never stalls the room.
async fn room(rooms: Rooms, socket: Socket) {
    // A server socket always has its opening request (`info` is `None` only on client sockets).
    let name = socket
        .info()
        .and_then(|info| info.query())
        .unwrap_or("lobby")
        .to_string();
    rooms.serve(socket, &name).await
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let rooms = match std::env::var("H2WS_BROKER") {
        Ok(url) => Rooms::redis(&url, RoomsConfig::default())
            .await
            .map_err(std::io::Error::other)?,
        Err(_) => Rooms::in_process(RoomsConfig::default()),
    };
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/ws/shout", route(shout))
        .route(
            "/ws/room",
            route(move |socket: Socket| room(rooms.clone(), socket)),
        )
        .nest_service("/pkg", ServeDir::new("wasm/pkg"))
        // The sockets' limits, timeouts, fetch sessions and stats: h2ws routes read it here.
        .layer(Extension(Endpoint::new(SocketConfig::default())));
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
