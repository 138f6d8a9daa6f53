//! `Rooms::serve` on real sockets (in-process rooms, a devserver in this process): the limits a
//! member meets. Fan-out across instances over Redis is in `scale_out.rs`.

mod common;

use std::time::Duration;

use h2ws::client::{Client, ClientConfig, H2Connection, Message, OpenOptions, Transport, Trust};
use h2ws::{Rooms, RoomsConfig, SocketConfig};

const WAIT: Duration = Duration::from_secs(20);

async fn chat_server(rooms: RoomsConfig) -> (h2ws::RunningServer, H2Connection) {
    let server = common::server(SocketConfig::default())
        .rooms(Rooms::in_process(rooms))
        .start()
        .await
        .expect("server starts");
    let pin = server.spki_sha256().expect("pin").to_string();
    let client = Client::new(ClientConfig::new(Trust::spki_sha256_base64(&pin).unwrap()));
    let h2 = client
        .connect_h2(&server.tls_url().unwrap())
        .await
        .expect("h2 connection");
    (server, h2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_room_limit_closes_its_sender_with_1009() {
    let (server, h2) = chat_server(RoomsConfig {
        max_message_size: 16,
        ..RoomsConfig::default()
    })
    .await;
    let mut ws = h2
        .open("/ws/chat", Transport::Rfc8441, &OpenOptions::default())
        .await
        .unwrap();
    ws.send_text("sixteen bytes ok").await.unwrap();
    assert_eq!(
        ws.recv_timeout(WAIT).await.unwrap(),
        Some(Message::Text("sixteen bytes ok".into()))
    );
    ws.send_text("seventeen bytes!!").await.unwrap();
    assert_eq!(ws.recv_timeout(WAIT).await.unwrap(), None);
    assert_eq!(ws.close_status().map(|s| s.code), Some(1009));
    server.shutdown().await;
}

/// A member that does not read is dropped (1008) once its bounded queue is full, while the
/// sender and a reading member get everything: the room never waits for the slow one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_too_slow_for_the_room_is_closed_with_1008_and_the_room_goes_on() {
    let (server, h2) = chat_server(RoomsConfig {
        // Enough for a member that reads (the sender) to keep up on a loaded machine; far
        // less than the 25 MB a member that does not read is sent.
        member_queue: 32,
        member_send_timeout: Duration::from_secs(1),
        ..RoomsConfig::default()
    })
    .await;
    let opts = OpenOptions::default();
    let open = || h2.open("/ws/chat", Transport::Rfc8441, &opts);
    let (sender, mut slow) = (open().await.unwrap(), open().await.unwrap());
    let count = 400;
    let payload = vec![7u8; 64 << 10];
    // `_keep` holds the socket open after the writing task (and its clone) is done.
    let (_keep, mut writer) = sender.split();
    {
        let w = _keep.clone();
        let payload = payload.clone();
        tokio::spawn(async move {
            for _ in 0..count {
                w.send_binary(&payload).await.unwrap();
            }
        });
    }
    // The sender (a member too) reads all of its own messages.
    for i in 0..count {
        match writer.recv_timeout(WAIT).await.unwrap() {
            Some(Message::Binary(b)) if b.len() == payload.len() => {}
            Some(_) => panic!("message {i}: not the 64 KiB binary sent"),
            None => panic!("sender closed at message {i}: {:?}", writer.close_status()),
        }
    }
    // The slow member now reads: what was queued before it was dropped, then Close 1008.
    let mut got = 0;
    while let Some(_m) = slow.recv_timeout(WAIT).await.unwrap() {
        got += 1;
    }
    assert_eq!(
        slow.close_status().map(|s| s.code),
        Some(1008),
        "after {got} messages"
    );
    assert!(got < count, "evicted before the end: got {got}");
    server.shutdown().await;
}
