//! Rows of the bad-input table (h2ws/CONFORMANCE.md) that no other test covered: each
//! bad input gets its documented answer, never a panic or a hang.

mod common;

use bytes::Bytes;
use common::*;
use h2ws::SocketConfig;
use http::{Method, StatusCode};

/// A `post` batch larger than the message limit: 413 for the batch, Close 1009 on the socket.
#[tokio::test]
async fn bad_input_post_batch_over_the_message_limit_is_413_and_1009() {
    init_tracing();
    let (server, sr, a) = test_server(small_limits()).await.parts();
    let mut p = Peer::open(&sr, &a, "/ws/echo", Kind::Post)
        .await
        .expect("open");
    // Two valid 600-byte frames in one batch: each frame fits, the batch does not.
    let mut batch = Vec::new();
    for _ in 0..2 {
        batch.extend_from_slice(&[0x82, 126, 0x02, 0x58]);
        batch.extend_from_slice(&[1u8; 600]);
    }
    p.write_raw(Bytes::from(batch)).await;
    assert_eq!(p.post_statuses, vec![StatusCode::PAYLOAD_TOO_LARGE]);
    let (code, _, _) = p.closed().await;
    assert_eq!(code, 1009);
    server.shutdown().await;
}

/// A native request carrying an HTTP/1.1 handshake header (`host`, `sec-websocket-key`) is
/// refused with 400 (DESIGN §4). (`upgrade` / `connection` cannot even be sent: they are
/// malformed HTTP/2, RFC 9113 §8.2.2, and the `h2` crate refuses them on both ends.)
#[tokio::test]
async fn bad_input_native_with_http1_headers_is_400() {
    init_tracing();
    let (server, sr, a) = test_server(SocketConfig::default()).await.parts();
    for (name, value) in [
        ("host", "localhost"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ] {
        let r = Peer::open_with(&sr, &a, "/ws/echo", Kind::Native, &[(name, value)])
            .await
            .err()
            .unwrap_or_else(|| panic!("native with {name} accepted"));
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.body);
    }
    server.shutdown().await;
}

/// A fetch upstream for a token that never existed → 404; a request on a socket path that is
/// no transport's shape → 400 with a reason.
#[tokio::test]
async fn bad_input_unknown_token_404_and_unknown_shape_400() {
    init_tracing();
    let (server, sr, _) = test_server(SocketConfig::default()).await.parts();
    let url = format!("https://{}/ws/echo", tls_authority(&server));
    let (st, _, _) = request(
        &sr,
        Method::POST,
        &url,
        &[("h2ws-session", "AAAAAAAAAAAAAAAAAAAAAA")],
        b"",
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, body) = request(&sr, Method::PUT, &url, &[], b"").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(!body.trim().is_empty(), "a one-line reason");
    server.shutdown().await;
}
