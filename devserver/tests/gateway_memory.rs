//! The gateway's memory bound (DESIGN §5, issue 7): a 100 MiB message, sent as ONE frame and
//! as 100 frames of 1 MiB, goes
//! client → gateway → backend echo → gateway → client while the gateway process's peak RSS
//! grows by at most 2 MiB. Both devservers run as child processes (the real binary), so the
//! measurement covers exactly the gateway: its `VmHWM` is reset through `/proc/PID/clear_refs`
//! after a warm-up and read back after the transfer.

mod common;

use std::time::Duration;

use common::{proc_status_kib, DevServerProcess};

use h2ws::client::{Client, ClientConfig, Message, OpenOptions, Transport, Trust};
use h2ws::FragmentKind;

const MESSAGE: usize = 100 << 20;
const MAX_GROWTH_KIB: u64 = 2 << 10;
/// Frame size of the fragmented shape (the benchmark's).
const FRAME: usize = 1 << 20;

fn devserver(extra: &[&str]) -> DevServerProcess {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("h2ws-gwmem-cert");
    let mut args = vec!["--max-message", "209715200"];
    args.extend_from_slice(extra);
    DevServerProcess::on_ephemeral_ports(&dir, &args)
}

/// Resets the peak RSS (`VmHWM`) to the current RSS (Linux ≥ 4.0, "5" in clear_refs).
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

fn pattern(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut x: u32 = 0x1234_5678;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_streams_a_100_mib_message_with_bounded_rss() {
    let backend = devserver(&[]);
    let backend_http = backend.http.as_deref().expect("plain listener");
    let upstream = format!("--upstream=ws://{backend_http}/ws/echo");
    let gateway = devserver(&[&upstream]);
    let pid = gateway.pid();
    let gateway_http = gateway.http.clone().expect("plain listener");

    let mut config = ClientConfig::new(Trust::spki_sha256_base64(&gateway.spki).unwrap());
    config.max_message_size = 200 << 20;
    config.max_frame_size = 200 << 20;
    config.send_timeout = Duration::from_secs(120);
    config.idle_timeout = Duration::from_secs(120);
    let client = Client::new(config);
    let big = pattern(MESSAGE);
    let small = pattern(64 << 10);

    // RFC 6455 and RFC 8441 (the client sends one 100 MiB frame), native (cut to DATA frames
    // by the client) and stream (one frame in the upstream body).
    for (transport, url, fragmented) in [
        (
            Transport::Rfc6455,
            format!("ws://{gateway_http}/ws/upstream"),
        ),
        (
            Transport::Native,
            format!("wss://{}/ws/upstream", gateway.https),
        ),
        (
            Transport::Stream,
            format!("wss://{}/ws/upstream", gateway.https),
        ),
        (
            Transport::Rfc8441,
            format!("wss://{}/ws/upstream", gateway.https),
        ),
    ]
    .into_iter()
    .flat_map(|(t, url)| [(t, url.clone(), false), (t, url, true)])
    {
        let shape = if fragmented {
            "100 × 1 MiB frames"
        } else {
            "one frame"
        };
        let mut ws = client
            .connect(&url, transport, &OpenOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        // Warm-up: the connection, TLS and one small round trip are in the baseline.
        ws.send_binary(&small).await.expect("send warm-up");
        let echoed = ws
            .recv_timeout(Duration::from_secs(20))
            .await
            .expect("in time");
        assert_eq!(echoed, Some(Message::Binary(small.clone().into())));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = proc_status_kib(pid, "VmRSS:");
        assert!(reset_peak(pid), "cannot reset VmHWM of pid {pid}");
        let started = std::time::Instant::now();
        let tx = ws.sender();
        let send = async {
            if !fragmented {
                return tx.send_binary(&big).await;
            }
            for (i, frame) in big.chunks(FRAME).enumerate() {
                let kind = if i == 0 {
                    FragmentKind::Binary
                } else {
                    FragmentKind::Continuation
                };
                tx.send_fragment(kind, 0, frame, (i + 1) * FRAME >= big.len())
                    .await?;
            }
            Ok(())
        };
        let (sent, got) = tokio::join!(send, ws.recv_timeout(Duration::from_secs(300)));
        sent.expect("send 100 MiB");
        let got = got.expect("echo in time").expect("a message");
        let elapsed = started.elapsed();
        let peak = proc_status_kib(pid, "VmHWM:");
        let Message::Binary(data) = got else {
            panic!("{transport:?}: expected binary")
        };
        assert_eq!(data.len(), MESSAGE, "{transport:?}");
        assert!(data[..] == big[..], "{transport:?}: payload changed");
        let growth = peak.saturating_sub(before);
        eprintln!(
            "{transport:?}, {shape}: 100 MiB round trip through the gateway in {elapsed:.1?}; gateway RSS {before} KiB before, peak {peak} KiB (+{growth} KiB)"
        );
        assert!(
            growth <= MAX_GROWTH_KIB,
            "{transport:?}, {shape}: gateway RSS grew by {growth} KiB (> {MAX_GROWTH_KIB} KiB)"
        );
        ws.close(1000, "done").await.expect("close");
        let status = ws.closed().await.expect("close");
        assert_eq!(status.code, 1000);
    }
}
