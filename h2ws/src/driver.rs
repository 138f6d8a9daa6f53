//! The socket driver: one task per socket that owns the sans-IO codec [`Connection`] and
//! moves data between the transport (an input stream of chunks, an output queue of units)
//! and the app's [`Socket`] queues. Transport-specific code only builds the input and
//! output; everything about frames and close happens here, the liveness rules (ping, idle,
//! close-handshake deadlines) in the codec's timers ([`h2ws_codec::timer`]), driven from here.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use h2ws_codec::timer::{Timeout, Timeouts, Timestamp, SERVER_PING_PAYLOAD};
use h2ws_codec::{CloseCode, Config, Connection, Event, Role, State};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::endpoint::Endpoint;
use crate::h2conn::ResetStream;
use crate::socket::TransportCell;
use crate::socket::{CloseStatus, Command, FragmentKind, HandshakeInfo, Incoming, Message, Socket};
use crate::wiring::{drain_after_close, input_len, CommandHandle, Input, Output, Wiring};

/// Stop taking app commands while this much codec output waits for the transport.
const HIGH_WATER: usize = 256 << 10;

/// Fragment mode: a data frame is handed to the app in pieces of about this size.
pub(crate) const FRAGMENT_CHUNK: usize = 16 << 10;

/// Fragment mode: queue depth each way between driver and app. A proxy's queues hold pieces
/// of frames in flight, not messages an app is working through: four pieces (64 KiB) each way
/// keep a gateway streaming at full speed while bounding what a socket holds.
const FRAGMENT_QUEUE_DEPTH: usize = 4;

/// Starts the driver task; returns the app's socket and a weak command handle.
pub(crate) fn spawn(
    endpoint: &Endpoint,
    info: Arc<HandshakeInfo>,
    cell: Arc<TransportCell>,
    mut wiring: Wiring,
) -> (Socket, CommandHandle) {
    let cfg = endpoint.config();
    let depth = if wiring.deliver_fragments {
        FRAGMENT_QUEUE_DEPTH.min(cfg.queue_depth)
    } else {
        cfg.queue_depth
    }
    .max(1);
    let (cmd_tx, cmd_rx) = mpsc::channel(depth);
    let (ev_tx, ev_rx) = mpsc::channel(depth);
    let config = Config {
        max_frame_size: cfg.max_frame_size,
        max_message_size: cfg.max_message_size,
        deliver_fragments: wiring.deliver_fragments,
        // A proxy socket forwards a large frame in pieces instead of holding it whole.
        fragment_chunk: if wiring.deliver_fragments {
            FRAGMENT_CHUNK
        } else {
            0
        },
        allow_rsv1: wiring.allow_rsv1,
        native_max_payload: wiring.native_max_payload,
        deflate: wiring.deflate,
        ..Config::default()
    };
    let conn = Connection::new(Role::Server, wiring.framing, config);
    let guard = OpenGuard::new(endpoint, cell.clone());
    let weak = cmd_tx.downgrade();
    let driver = Driver {
        endpoint: endpoint.clone(),
        conn,
        input: wiring.input,
        output: wiring.output,
        reset_after_protocol_error: wiring.reset_after_protocol_error,
        drain_input_after_close: wiring.drain_input_after_close,
        cmds: cmd_rx,
        events: ev_tx,
        on_end: wiring.on_end.take(),
        _guard: guard,
    };
    endpoint.0.tasks.spawn(driver.run());
    (Socket::new(info, cell, cmd_tx, ev_rx), weak)
}

struct Driver {
    endpoint: Endpoint,
    conn: Connection,
    input: BoxStream<'static, Input>,
    output: mpsc::Sender<Output>,
    reset_after_protocol_error: bool,
    drain_input_after_close: bool,
    cmds: mpsc::Receiver<Command>,
    events: mpsc::Sender<Incoming>,
    on_end: Option<Box<dyn FnOnce() + Send>>,
    _guard: OpenGuard,
}

/// Why the loop ended.
#[derive(PartialEq, Eq)]
enum End {
    /// Close handshake done, or our Close after a protocol error flushed.
    Done,
    /// The transport is gone.
    Lost,
    /// No Close from the peer in time, or idle: stop without one.
    TimedOut,
}

impl Driver {
    async fn run(self) {
        let Driver {
            endpoint,
            mut conn,
            mut input,
            output,
            reset_after_protocol_error,
            drain_input_after_close,
            mut cmds,
            events,
            mut on_end,
            _guard,
        } = self;
        let cfg = endpoint.config().clone();
        let shutdown = endpoint.0.shutdown.clone();
        let mut staged: Option<Bytes> = None;
        let mut pending: VecDeque<Incoming> = VecDeque::new();
        let mut status: Option<CloseStatus> = None;
        let mut protocol_error = false;
        let mut input_done = false;
        let mut cmds_done = false;
        let mut app_gone = false;
        let mut shutdown_seen = false;
        // The codec's clock: milliseconds since the socket started.
        let epoch = Instant::now();
        let now = || Timestamp::from_millis(epoch.elapsed().as_millis() as u64);
        conn.set_timeouts(
            Timeouts {
                ping_after: Some(cfg.ping_after),
                ping_payload: SERVER_PING_PAYLOAD,
                idle_timeout: Some(cfg.idle_timeout),
                close_timeout: Some(cfg.close_timeout),
            },
            Timestamp::ZERO,
        );
        // The close handshake started (or input ended): no more app commands.
        let mut closing = false;
        // The codec is done but a unit waits for the transport: bounded like the handshake.
        let mut flush_deadline: Option<Instant> = None;

        let end = loop {
            if staged.is_none() {
                staged = conn.poll_transmit().map(Bytes::from);
            }
            while let Some(event) = conn.poll_event() {
                on_event(&endpoint, event, &mut pending, &mut status);
            }
            if staged.is_none() && (conn.is_closed() || protocol_error) {
                break End::Done;
            }
            if conn.state() == State::Closed && flush_deadline.is_none() {
                flush_deadline = Some(Instant::now() + cfg.close_timeout);
            }
            let deadline = conn
                .poll_timeout()
                .map(|t| epoch + std::time::Duration::from_millis(t.as_millis()))
                .or(flush_deadline);
            let can_read = !input_done && pending.is_empty() && !protocol_error;
            let can_command =
                !cmds_done && staged.is_none() && conn.pending_bytes() < HIGH_WATER && !closing;
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if !shutdown_seen => {
                    shutdown_seen = true;
                    if conn.close(Some(CloseCode::GOING_AWAY), "server shutting down").is_ok() {
                        closing = true;
                    }
                }
                permit = output.reserve(), if staged.is_some() => match permit {
                    Ok(permit) => {
                        if let Some(unit) = staged.take() {
                            permit.send(Ok(unit));
                        }
                    }
                    Err(_) => break End::Lost,
                },
                _ = output.closed(), if staged.is_none() => break End::Lost,
                permit = events.reserve(), if !pending.is_empty() && !app_gone => match permit {
                    Ok(permit) => {
                        if let Some(ev) = pending.pop_front() {
                            permit.send(ev);
                        }
                    }
                    Err(_) => {
                        app_gone = true;
                        pending.clear();
                    }
                },
                cmd = cmds.recv(), if can_command => match cmd {
                    Some(cmd) => {
                        if on_command(&endpoint, &mut conn, cmd) {
                            closing = true;
                        }
                    }
                    None => {
                        cmds_done = true;
                        if conn.close(Some(CloseCode::NORMAL), "").is_ok() {
                            closing = true;
                        }
                    }
                },
                input = input.next(), if can_read => {
                    let result = match input {
                        // Native: h2 drops empty DATA frames without END_STREAM; the codec
                        // takes an empty one as nothing but activity.
                        Some(Input::Chunk(chunk)) => conn.recv_at(now(), &chunk),
                        Some(Input::End) | None => {
                            input_done = true;
                            // A peer may end its side right after its Close (RFC 8441
                            // END_STREAM, fetch upstream end): our echo completes the handshake.
                            if conn.state() != State::CloseReceived {
                                conn.recv_eof();
                            }
                            Ok(())
                        }
                        Some(Input::Failed) => {
                            input_done = true;
                            conn.recv_eof();
                            Ok(())
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!("protocol error from peer: {e}");
                        protocol_error = true;
                        status.get_or_insert(CloseStatus {
                            code: e.close_code().0,
                            reason: e.reason().to_string(),
                            clean: false,
                        });
                    }
                    if input_done {
                        // Input ended: once our output drains (bounded by the codec's close
                        // timer, or the flush deadline), nothing else can happen.
                        closing = true;
                    }
                },
                _ = tokio::time::sleep_until(deadline.unwrap_or(epoch)), if deadline.is_some() => {
                    match conn.handle_timeout(now()) {
                        Some(Timeout::Idle) => {
                            tracing::debug!("no traffic for {:?}: dropping the socket", cfg.idle_timeout);
                            break End::TimedOut;
                        }
                        Some(Timeout::CloseHandshake) => break End::TimedOut,
                        Some(Timeout::Ping) | None => {}
                    }
                    if flush_deadline.is_some_and(|d| d <= Instant::now()) {
                        break End::TimedOut;
                    }
                }
            }
        };

        while let Some(event) = conn.poll_event() {
            on_event(&endpoint, event, &mut pending, &mut status);
        }
        if end != End::Lost {
            if protocol_error && reset_after_protocol_error {
                let _ = output.try_send(Err(ResetStream(h2::Reason::PROTOCOL_ERROR)));
            } else if end == End::TimedOut && reset_after_protocol_error {
                let _ = output.try_send(Err(ResetStream(h2::Reason::CANCEL)));
            }
        }
        // Dropping the output ends the transport (END_STREAM, body end, TCP shutdown).
        drop(output);
        if drain_input_after_close && end == End::Done && !protocol_error {
            tokio::spawn(drain_after_close(input, input_len));
        } else {
            drop(input);
        }
        if let Some(on_end) = on_end.take() {
            on_end();
        }
        let status = status.unwrap_or(CloseStatus {
            code: CloseCode::ABNORMAL.0,
            reason: String::new(),
            clean: false,
        });
        if !pending.iter().any(|ev| matches!(ev, Incoming::Closed(_))) {
            pending.push_back(Incoming::Closed(status));
        }
        if !app_gone {
            let deliver = async {
                for ev in pending {
                    if events.send(ev).await.is_err() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(cfg.idle_timeout, deliver).await;
        }
    }
}

/// Applies an app command to the codec; true if it started the close handshake.
fn on_command(endpoint: &Endpoint, conn: &mut Connection, cmd: Command) -> bool {
    let stats = endpoint.stats();
    let result = match cmd {
        Command::Message(Message::Text(text)) => {
            stats.record_out(1, text.len());
            conn.send_text(&text)
        }
        Command::Message(Message::Binary(data)) => {
            stats.record_out(1, data.len());
            conn.send_binary(&data)
        }
        Command::Fragment {
            kind,
            rsv,
            data,
            fin,
        } => {
            stats.record_out(u64::from(fin), data.len());
            conn.send_fragment(codec_kind(kind), rsv, &data, fin)
        }
        Command::Ping(payload) => conn.send_ping(&payload),
        Command::Close(code, reason) => {
            return conn.close(code, &reason).is_ok();
        }
    };
    if let Err(e) = result {
        tracing::debug!("send refused: {e}");
    }
    false
}

fn on_event(
    endpoint: &Endpoint,
    event: Event,
    pending: &mut VecDeque<Incoming>,
    status: &mut Option<CloseStatus>,
) {
    let stats = endpoint.stats();
    match event {
        Event::Message(h2ws_codec::Message::Text(text)) => {
            stats.record_in(1, text.len());
            pending.push_back(Incoming::Message(Message::Text(text)));
        }
        Event::Message(h2ws_codec::Message::Binary(data)) => {
            stats.record_in(1, data.len());
            pending.push_back(Incoming::Message(Message::Binary(data.into())));
        }
        Event::Fragment {
            kind,
            rsv,
            data,
            fin,
        } => {
            stats.record_in(u64::from(fin), data.len());
            pending.push_back(Incoming::Fragment {
                kind: socket_kind(kind),
                rsv,
                data: data.into(),
                fin,
            });
        }
        Event::Ping(_) | Event::Pong(_) => {}
        Event::Closed {
            code,
            reason,
            clean,
        } => {
            let s = status.get_or_insert(CloseStatus {
                code: code.0,
                reason,
                clean,
            });
            pending.push_back(Incoming::Closed(s.clone()));
        }
    }
}

fn codec_kind(kind: FragmentKind) -> h2ws_codec::FragmentKind {
    match kind {
        FragmentKind::Text => h2ws_codec::FragmentKind::Text,
        FragmentKind::Binary => h2ws_codec::FragmentKind::Binary,
        FragmentKind::Continuation => h2ws_codec::FragmentKind::Continuation,
    }
}

fn socket_kind(kind: h2ws_codec::FragmentKind) -> FragmentKind {
    match kind {
        h2ws_codec::FragmentKind::Text => FragmentKind::Text,
        h2ws_codec::FragmentKind::Binary => FragmentKind::Binary,
        h2ws_codec::FragmentKind::Continuation => FragmentKind::Continuation,
    }
}

/// Counts one open socket while alive.
pub(crate) struct OpenGuard {
    endpoint: Endpoint,
    cell: std::sync::Arc<TransportCell>,
}

impl OpenGuard {
    pub(crate) fn new(endpoint: &Endpoint, cell: std::sync::Arc<TransportCell>) -> Self {
        endpoint.stats().opened(cell.get());
        OpenGuard {
            endpoint: endpoint.clone(),
            cell,
        }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.endpoint.stats().closed(self.cell.get());
    }
}
