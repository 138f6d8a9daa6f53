//! RFC 6455 echo server on `fastwebsockets` (its own echo example: hyper HTTP/1.1 upgrade,
//! `FragmentCollector` for whole messages), on the same tokio runtime as the devserver
//! (`#[tokio::main]`: multi-thread, one worker per core). Prints `listening ws://ADDR`.
//!
//! With `--frames 1` it echoes frame by frame instead (no message assembly): the bounded-memory
//! backend for the gateway benchmark.
//!
//! Usage: `echo-fastwebsockets [--addr 127.0.0.1:0] [--frames 1]`

use fastwebsockets::{upgrade, FragmentCollector, Frame, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tokio::net::TcpListener;

async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn echo_frames(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = fut.await?;
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                // A read frame keeps its (already applied) client mask: send it unmasked.
                let out = Frame::new(frame.fin, frame.opcode, None, frame.payload);
                ws.write_frame(out).await?
            }
            _ => {}
        }
    }
    Ok(())
}

async fn upgrade(
    mut req: Request<Incoming>,
    frames: bool,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::spawn(async move {
        let _ = if frames {
            echo_frames(fut).await
        } else {
            echo(fut).await
        };
    });
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = h2ws_bench::Args::from_env();
    let addr = args.get("addr").unwrap_or("127.0.0.1:0");
    let frames = args.get("frames").is_some_and(|v| v == "1");
    let listener = TcpListener::bind(addr).await?;
    println!("listening ws://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = http1::Builder::new()
                .serve_connection(io, service_fn(move |req| upgrade(req, frames)))
                .with_upgrades()
                .await;
        });
    }
}
