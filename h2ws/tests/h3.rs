//! HTTP/3 (`h3conn`): the server's QUIC listener at its TLS port, `Alt-Svc` on the TCP
//! listener, a `post` socket over HTTP/3 (also with its batch on HTTP/2), and bad input over
//! QUIC: frames out of order, an oversized header section, a frame longer than the guard, a
//! stream flood past the advertised limit.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use common::{test_routes, LIMIT};
use h2ws::h3conn::H3Settings;
use h2ws::{RunningServer, SocketConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// HTTP/3 error codes (RFC 9114 §8.1).
const H3_FRAME_UNEXPECTED: u64 = 0x105;
const H3_EXCESSIVE_LOAD: u64 = 0x107;

async fn start(h3: H3Settings) -> RunningServer {
    common::server(SocketConfig::default())
        .http_addr(None)
        .h3_settings(h3)
        .routes(test_routes())
        .start()
        .await
        .expect("server starts")
}

/// A QUIC client connection (ALPN h3, any certificate) to `addr`.
async fn quic(addr: SocketAddr) -> quinn::Connection {
    let mut tls = (*common::tls_client_config(&[b"h3"])).clone();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC client");
    let mut endpoint =
        quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).expect("client endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let connecting = endpoint.connect(addr, "localhost").expect("connect");
    tokio::time::timeout(LIMIT, connecting)
        .await
        .expect("QUIC handshake in time")
        .expect("QUIC handshake")
}

type H3Send = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

/// An HTTP/3 client on `conn`; its connection task runs in the background.
async fn h3_client(conn: quinn::Connection) -> H3Send {
    let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(conn))
        .await
        .expect("h3 client");
    tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
    send
}

/// One request: `(status, headers, the open response stream)` after sending `body`.
async fn request(
    client: &mut H3Send,
    req: http::Request<()>,
    body: &[u8],
) -> (
    http::response::Parts,
    h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
) {
    let mut stream = tokio::time::timeout(LIMIT, client.send_request(req))
        .await
        .expect("request sent in time")
        .expect("send_request");
    if !body.is_empty() {
        stream
            .send_data(Bytes::copy_from_slice(body))
            .await
            .expect("body");
    }
    stream.finish().await.expect("finish");
    let response = tokio::time::timeout(LIMIT, stream.recv_response())
        .await
        .expect("response in time")
        .expect("response");
    (response.into_parts().0, stream)
}

/// Reads a response body until it holds `needle` (or ends); the bytes read.
async fn read_until(
    stream: &mut h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
    needle: &[u8],
) -> Vec<u8> {
    let mut got = Vec::new();
    let read = async {
        while !got.windows(needle.len()).any(|w| w == needle) {
            match stream.recv_data().await.expect("body") {
                Some(mut chunk) => got.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining())),
                None => break,
            }
        }
    };
    tokio::time::timeout(LIMIT, read)
        .await
        .expect("body in time");
    got
}

#[tokio::test]
async fn stats_over_h3_and_alt_svc_on_the_tcp_listener() {
    let server = start(H3Settings::default()).await;
    let tls = server.tls_addr().expect("TLS listener");
    assert_eq!(server.h3_addr().map(|a| a.port()), Some(tls.port()));
    assert!(server
        .banner()
        .contains(&format!("h3 udp://{}", server.h3_addr().unwrap())));

    let mut client = h3_client(quic(tls).await).await;
    let req = http::Request::get(format!("https://localhost:{}/.h2ws/stats", tls.port()))
        .body(())
        .unwrap();
    let (head, mut body) = request(&mut client, req, b"").await;
    assert_eq!(head.status, 200);
    let json = read_until(&mut body, b"}").await;
    assert!(
        json.starts_with(b"{\"open\""),
        "{:?}",
        String::from_utf8_lossy(&json)
    );

    // HTTP/1.1 over TLS (HTTP/2 gets the same header from the same layer).
    let mut tcp = common::tls_connect(tls, &[b"http/1.1"]).await;
    tcp.write_all(b"GET /.h2ws/stats HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0u8; 4096];
    let n = tokio::time::timeout(LIMIT, tcp.read(&mut head))
        .await
        .expect("answer in time")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    let want = format!("alt-svc: h3=\":{}\"; ma=86400", tls.port());
    assert!(head.contains(&want), "{head}");
    server.shutdown().await;

    // Off: no UDP listener, no Alt-Svc.
    let server = common::server(SocketConfig::default())
        .http_addr(None)
        .h3_settings(None)
        .start()
        .await
        .unwrap();
    assert_eq!(server.h3_addr(), None);
    let tls = server.tls_addr().unwrap();
    let h2 = common::h2_tls(tls).await;
    let uri = format!("https://localhost:{}/.h2ws/stats", tls.port());
    let (status, headers, _) = common::request(&h2, http::Method::GET, &uri, &[], b"").await;
    assert_eq!(status, 200);
    assert!(headers.get("alt-svc").is_none());
    server.shutdown().await;
}

/// A `post` socket: the open over HTTP/3, batches over HTTP/3 and over HTTP/2 (a socket's
/// requests may use different HTTP versions: the session is found by its token).
#[tokio::test]
async fn post_socket_over_h3_with_batches_on_h3_and_h2() {
    let server = start(H3Settings::default()).await;
    let tls = server.tls_addr().unwrap();
    let authority = format!("localhost:{}", tls.port());
    let mut client = h3_client(quic(tls).await).await;
    let open = http::Request::post(format!("https://{authority}/ws/closer"))
        .header("h2ws-version", "1")
        .body(())
        .unwrap();
    let (head, mut down) = request(&mut client, open, b"").await;
    assert_eq!(head.status, 200);
    let token = head.headers["h2ws-session"].to_str().unwrap().to_string();

    // Text frame "info", MASK = 0 (the fetch framing).
    let info = [&[0x81u8, 0x04][..], b"info"].concat();
    let batch = http::Request::post(format!("https://{authority}/ws/closer"))
        .header("h2ws-session", &token)
        .header("h2ws-seq", "0")
        .body(())
        .unwrap();
    let (head, _) = request(&mut client, batch, &info).await;
    assert!(head.status.is_success(), "{}", head.status);
    let got = read_until(&mut down, b"HTTP/3").await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("transport=post"), "{text}");
    assert!(text.contains("version=HTTP/3"), "{text}");

    // The next batch over HTTP/2.
    let h2 = common::h2_tls(tls).await;
    let mut h2 = h2.ready().await.unwrap();
    let batch = http::Request::post(format!("https://{authority}/ws/closer"))
        .header("h2ws-session", &token)
        .header("h2ws-seq", "1")
        .body(())
        .unwrap();
    let (resp, mut send) = h2.send_request(batch, false).unwrap();
    let close = [&[0x81u8, 0x0e][..], b"close 4001 bye"].concat();
    send.send_data(Bytes::from(close), true).unwrap();
    let resp = tokio::time::timeout(LIMIT, resp).await.unwrap().unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    // The server's Close 4001 "bye" arrives on the HTTP/3 downstream.
    let got = read_until(&mut down, b"bye").await;
    let close_frame = [&[0x88u8, 0x05, 0x0f, 0xa1][..], b"bye"].concat();
    assert!(
        got.windows(close_frame.len()).any(|w| w == close_frame),
        "{got:?}"
    );
    server.shutdown().await;
}

/// A QUIC varint of 4 bytes (values < 2^30).
fn varint4(v: u32) -> [u8; 4] {
    (v | 0x8000_0000).to_be_bytes()
}

#[tokio::test]
async fn data_before_headers_closes_the_connection_with_frame_unexpected() {
    let server = start(H3Settings::default()).await;
    let conn = quic(server.tls_addr().unwrap()).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    // A DATA frame of 3 bytes where HEADERS must come first.
    send.write_all(&[0x00, 0x03, 1, 2, 3]).await.unwrap();
    send.finish().unwrap();
    let reason = tokio::time::timeout(LIMIT, conn.closed())
        .await
        .expect("connection closed in time");
    match reason {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                u64::from(close.error_code),
                H3_FRAME_UNEXPECTED,
                "{close:?}"
            )
        }
        other => panic!("expected an HTTP/3 close, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_frame_longer_than_the_guard_is_reset_unbuffered() {
    let server = start(H3Settings::default()).await;
    let conn = quic(server.tls_addr().unwrap()).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    // HEADERS declaring 1 GiB, then 4 MiB of it: the guard stops the stream at the header.
    let mut frame = vec![0x01];
    frame.extend_from_slice(&varint4(1 << 30));
    send.write_all(&frame).await.unwrap();
    let junk = vec![0x55u8; 64 << 10];
    let flood = async {
        for _ in 0..64 {
            send.write_all(&junk).await?;
        }
        Ok::<_, quinn::WriteError>(())
    };
    let written = tokio::time::timeout(LIMIT, flood)
        .await
        .expect("stopped in time");
    assert!(
        matches!(written, Err(quinn::WriteError::Stopped(code)) if u64::from(code) == H3_EXCESSIVE_LOAD),
        "{written:?}"
    );
    let read = tokio::time::timeout(LIMIT, recv.read_to_end(1 << 10))
        .await
        .expect("reset in time");
    assert!(
        matches!(read, Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) if u64::from(code) == H3_EXCESSIVE_LOAD),
        "{read:?}"
    );
    // The connection itself lives on: a request still works.
    let mut client = h3_client(conn).await;
    let req = http::Request::get("https://localhost/.h2ws/stats")
        .body(())
        .unwrap();
    assert_eq!(request(&mut client, req, b"").await.0.status, 200);
    server.shutdown().await;
}

/// A header section (QPACK, literal fields) larger than the limit once decoded: 431.
#[tokio::test]
async fn oversized_header_section_is_answered_431() {
    let server = start(H3Settings {
        max_field_section_size: 4096,
        ..H3Settings::default()
    })
    .await;
    let conn = quic(server.tls_addr().unwrap()).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    // 200 fields `x-a: b`: 5 bytes each on the wire, 36 each counted (RFC 9114 §4.2.2): 7200
    // bytes decoded, 1002 encoded (under the guard, over the limit).
    let mut section = vec![0x00, 0x00];
    for _ in 0..200 {
        section.extend_from_slice(&[0x23, b'x', b'-', b'a', 0x01, b'b']);
    }
    let mut frame = vec![0x01];
    frame.extend_from_slice(&varint4(section.len() as u32));
    frame.extend_from_slice(&section);
    send.write_all(&frame).await.unwrap();
    send.finish().unwrap();
    let answer = tokio::time::timeout(LIMIT, recv.read_to_end(1 << 16))
        .await
        .expect("answered in time")
        .expect("a response");
    assert_eq!(answer.first(), Some(&0x01), "a HEADERS frame: {answer:?}");
    // `:status` by name reference, value "431" Huffman-coded (RFC 7541 Appendix B: '4' 011010,
    // '3' 011001, '1' 00001, then EOS padding): 0x83 0x69 0x90 0xff.
    let status_431 = [0x83, 0x69, 0x90, 0xff];
    assert!(answer.windows(4).any(|w| w == status_431), "{answer:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn streams_past_the_advertised_limit_cannot_be_opened() {
    let server = start(H3Settings {
        max_concurrent_streams: 8,
        ..H3Settings::default()
    })
    .await;
    let conn = quic(server.tls_addr().unwrap()).await;
    let mut open = Vec::new();
    for _ in 0..8 {
        let (mut send, recv) = conn.open_bi().await.unwrap();
        // A stream only exists for the peer once something is sent on it.
        send.write_all(&[0x01]).await.unwrap();
        open.push((send, recv));
    }
    // QUIC flow control: the 9th waits for a MAX_STREAMS the server does not send.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), conn.open_bi())
            .await
            .is_err(),
        "a 9th concurrent stream was allowed"
    );
    // Their headers never complete: after its 10 s header timeout the server stops them
    // (STOP_SENDING); a compliant client answers with RESET_STREAM (RFC 9000 §3.5), which frees
    // the slots.
    for (send, _) in &mut open {
        let stopped = tokio::time::timeout(LIMIT, send.stopped()).await;
        assert!(matches!(stopped, Ok(Ok(Some(_)))), "{stopped:?}");
        send.reset(0u32.into()).unwrap();
    }
    let ninth = tokio::time::timeout(LIMIT, conn.open_bi()).await;
    assert!(ninth.is_ok(), "a slot came free");
    server.shutdown().await;
}

/// A client that closes its QUIC connection ends its socket on the server, as an HTTP/2
/// connection drop does (the response body pump stops, the socket's transport ends).
#[tokio::test]
async fn a_closed_connection_ends_its_sockets() {
    let server = start(H3Settings::default()).await;
    let tls = server.tls_addr().unwrap();
    let conn = quic(tls).await;
    let mut client = h3_client(conn.clone()).await;
    let open = http::Request::post(format!("https://localhost:{}/ws/closer", tls.port()))
        .header("h2ws-version", "1")
        .body(())
        .unwrap();
    let (head, _down) = request(&mut client, open, b"").await;
    assert_eq!(head.status, 200);
    assert_eq!(server.endpoint().stats().open_total(), 1);
    conn.close(0u32.into(), b"gone");
    let ended = async {
        while server.endpoint().stats().open_total() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(LIMIT, ended)
        .await
        .expect("the socket ended after its connection closed");
    server.shutdown().await;
}
