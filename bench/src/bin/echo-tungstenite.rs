//! RFC 6455 echo server on `tokio-tungstenite` (`accept_async`, read a message, send it back),
//! on the same tokio runtime as the devserver (`#[tokio::main]`: multi-thread, one worker per
//! core). Prints `listening ws://ADDR`.
//!
//! Usage: `echo-tungstenite [--addr 127.0.0.1:0]`

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = h2ws_bench::Args::from_env();
    let addr = args.get("addr").unwrap_or("127.0.0.1:0");
    let listener = TcpListener::bind(addr).await?;
    println!("listening ws://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_close() {
                    break;
                }
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                    break;
                }
            }
        });
    }
}
