//! Streams end cleanly (issue 13 item 3): after a complete exchange every request stream ends
//! with END_STREAM both ways and the server sends no RST_STREAM; a reset is left for real
//! errors (here: an upstream refused while its body is still open). Proxies log a server reset
//! as an abort (HAProxy `SD--`) even when the client got its answer.

mod common;

use std::future::poll_fn;
use std::time::Duration;

use std::net::SocketAddr;

use bytes::Bytes;
use common::{Kind, Peer, LIMIT};
use h2::client::{ResponseFuture, SendRequest};
use h2::SendStream;
use h2ws::SocketConfig;
use h2ws_codec::{Config, Connection, Framing, Role};
use http::{Request, StatusCode};

/// How long we look for a late RST_STREAM.
const RESET_WATCH: Duration = Duration::from_millis(300);

/// A devserver-app server and an HTTP/2 connection to it.
async fn start() -> (h2ws::RunningServer, SendRequest<Bytes>, SocketAddr) {
    common::init_tracing();
    let server = common::start(SocketConfig::default()).await;
    let addr = server.tls_addr().expect("tls");
    let sr = common::h2_tls(addr).await;
    (server, sr, addr)
}

/// Sends a request on a new stream; `end` = no body.
async fn send(
    sr: &SendRequest<Bytes>,
    req: Request<()>,
    end: bool,
) -> (ResponseFuture, SendStream<Bytes>) {
    let mut sr = sr.clone().ready().await.expect("ready");
    sr.send_request(req, end).expect("request sent")
}

/// The response, within [`LIMIT`].
async fn answered(resp: ResponseFuture, what: &str) -> http::Response<h2::RecvStream> {
    tokio::time::timeout(LIMIT, resp)
        .await
        .unwrap_or_else(|_| panic!("{what} answered in time"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// No RST_STREAM from the server on our request stream within [`RESET_WATCH`].
async fn assert_not_reset(send: &mut SendStream<Bytes>, after: &str) {
    let reset = tokio::time::timeout(RESET_WATCH, poll_fn(|cx| send.poll_reset(cx))).await;
    assert!(
        !matches!(reset, Ok(Ok(_))),
        "RST_STREAM after {after}: {reset:?}"
    );
}

/// One echo, then a clean close handshake from the client; the downstream ends without reset.
async fn echo_and_close(peer: &mut Peer) {
    let kind = peer.kind;
    peer.send_text("hello").await;
    assert_eq!(
        peer.recv_message().await,
        h2ws_codec::Message::Text("hello".into())
    );
    peer.close(1000, "bye").await;
    let (code, _, clean) = peer.closed().await;
    assert_eq!((code, clean), (1000, true), "{kind:?}");
    // The downstream (open response) ends with END_STREAM, not a reset.
    peer.wait_down_end().await;
    assert_eq!(peer.reset, None, "{kind:?}: the server reset its direction");
}

#[tokio::test]
async fn stream_upstream_ends_without_reset_after_the_close_handshake() {
    let (_server, sr, addr) = start().await;
    let mut peer = Peer::open(&sr, &addr.to_string(), "/ws/echo", Kind::Stream)
        .await
        .expect("open");
    echo_and_close(&mut peer).await;
    // A client (or a proxy relaying it) ends its upstream body a moment after the handshake:
    // the server must wait for that end instead of answering early and resetting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut response = peer
        .upstream_response
        .take()
        .expect("stream upstream response");
    let early = tokio::time::timeout(Duration::from_millis(1), &mut response).await;
    assert!(
        early.is_err(),
        "the upstream was answered before its body ended: {early:?}"
    );
    peer.end_upstream();
    assert_eq!(
        answered(response, "upstream").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        peer.upstream_reset_within(RESET_WATCH).await,
        None,
        "RST_STREAM after a complete upstream"
    );
}

/// A `post` batch and an ack (bodiless) on a session opened with acks: 200 / 204, END_STREAM,
/// no reset.
#[tokio::test]
async fn post_batch_and_ack_end_without_reset() {
    let (_server, sr, addr) = start().await;
    let uri = format!("https://{addr}/ws/echo");
    let open = Request::put(&uri)
        .header("h2ws-version", "1")
        .header("h2ws-acks", "1")
        .body(())
        .expect("request");
    let (resp, _) = send(&sr, open, true).await;
    let resp = answered(resp, "open").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let token = resp.headers()["h2ws-session"]
        .to_str()
        .expect("token")
        .to_owned();
    let mut down = resp.into_body();

    let mut codec = Connection::new(Role::Client, Framing::Stream, Config::default());
    codec.send_text("ping-me").expect("send");
    let mut frames = Vec::new();
    while let Some(unit) = codec.poll_transmit() {
        frames.extend_from_slice(&unit);
    }
    let batch = Request::put(&uri)
        .header("h2ws-session", &token)
        .header("h2ws-seq", "0")
        .body(())
        .expect("request");
    let (resp, mut body) = send(&sr, batch, false).await;
    // The body in two DATA frames, the last with END_STREAM.
    let (a, b) = frames.split_at(frames.len() / 2);
    body.reserve_capacity(frames.len());
    body.send_data(Bytes::copy_from_slice(a), false)
        .expect("data");
    body.send_data(Bytes::copy_from_slice(b), true)
        .expect("data");
    let resp = answered(resp, "batch").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.into_body().is_end_stream(),
        "batch answer carries END_STREAM"
    );
    assert_not_reset(&mut body, "a complete batch").await;

    // Read the echo (preamble first), then acknowledge what we read.
    let mut read = 0usize;
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut got = Vec::new();
    while !got.windows(7).any(|w| w == b"ping-me") {
        let chunk = tokio::time::timeout_at(deadline, down.data())
            .await
            .expect("echo in time")
            .expect("downstream open")
            .expect("downstream data");
        let _ = down.flow_control().release_capacity(chunk.len());
        read += chunk.len();
        got.extend_from_slice(&chunk);
    }
    let ack = Request::put(&uri)
        .header("h2ws-session", &token)
        .header("h2ws-read", read.to_string())
        .body(())
        .expect("request");
    let (resp, mut body) = send(&sr, ack, true).await;
    assert_eq!(answered(resp, "ack").await.status(), StatusCode::NO_CONTENT);
    assert_not_reset(&mut body, "an ack").await;
}

/// A real error still resets: an upstream for an unknown session is refused (404) while its
/// body is open, and the server stops reading it (RST_STREAM NO_ERROR, RFC 9113 §8.1).
#[tokio::test]
async fn refused_upstream_with_open_body_is_reset() {
    let (_server, sr, addr) = start().await;
    let req = Request::post(format!("https://{addr}/ws/echo"))
        .header("h2ws-session", "A".repeat(43))
        .body(())
        .expect("request");
    let (resp, mut body) = send(&sr, req, false).await;
    body.send_data(Bytes::from_static(&[0x81, 0x00]), false)
        .expect("data");
    assert_eq!(
        answered(resp, "upstream").await.status(),
        StatusCode::NOT_FOUND
    );
    let reset = tokio::time::timeout(LIMIT, poll_fn(|cx| body.poll_reset(cx))).await;
    assert!(
        matches!(reset, Ok(Ok(h2::Reason::NO_ERROR))),
        "expected RST_STREAM NO_ERROR, got {reset:?}"
    );
}

/// The one-stream transports (rfc8441, native): after a normal close handshake both directions
/// end with END_STREAM, no reset either way.
#[tokio::test]
async fn one_stream_transports_end_without_reset_after_the_close_handshake() {
    let (_server, sr, addr) = start().await;
    for kind in [Kind::Rfc8441, Kind::Native] {
        let mut peer = Peer::open(&sr, &addr.to_string(), "/ws/echo", kind)
            .await
            .expect("open");
        echo_and_close(&mut peer).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        peer.end_upstream();
        assert_eq!(
            peer.upstream_reset_within(RESET_WATCH).await,
            None,
            "{kind:?}: RST_STREAM after a complete exchange"
        );
    }
}
