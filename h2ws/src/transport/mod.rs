//! Transports: each turns an accepted request into a [`Wiring`](crate::wiring::Wiring) for the
//! socket driver (an input stream of chunks and an output queue) and ends in a
//! [`Socket`](crate::Socket).

pub(crate) mod fetch;
pub(crate) mod native;
pub(crate) mod rfc6455;
pub(crate) mod rfc8441;

use axum::body::Body;
use futures_util::stream::{self, BoxStream};
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;

use crate::wiring::{queue, Input, Output};

/// Output units queued between the driver and the transport. Small, so a control frame the
/// codec puts ahead of queued data is never far from the wire.
pub(crate) const OUTPUT_DEPTH: usize = 2;

/// A request body as driver input: one chunk per body frame (per DATA frame on the own
/// HTTP/2 loop), then `End`, or `Failed` on a body error.
pub(crate) fn body_input(body: Body) -> BoxStream<'static, Input> {
    body.into_data_stream()
        .map(|chunk| match chunk {
            Ok(bytes) => Input::Chunk(bytes),
            Err(e) => {
                tracing::debug!("request body failed: {e}");
                Input::Failed
            }
        })
        .chain(stream::once(async { Input::End }))
        .boxed()
}

/// A streaming response body fed by the driver's output queue; the body ends when the
/// driver drops the sender, and an `Err` unit resets the stream.
pub(crate) fn body_output() -> (queue::Sender<Output>, Body) {
    let (tx, rx) = queue::channel::<Output>(OUTPUT_DEPTH);
    (tx, Body::from_stream(rx))
}

/// [`body_output`] for a fetch downstream: units a waiting `post` batch takes leave in its
/// answer (`replies`, [`crate::reply`]), and the body is held to a read window when there is
/// one (the client acks).
pub(crate) fn downstream_output(
    window: Option<std::sync::Arc<crate::read_window::ReadWindow>>,
    replies: std::sync::Arc<crate::reply::Replies>,
) -> (queue::Sender<Output>, Body) {
    let (tx, rx) = queue::channel::<Output>(OUTPUT_DEPTH);
    let diverted = replies.divert(rx);
    let body = match window {
        Some(window) => Body::from_stream(window.gate(diverted)),
        None => Body::from_stream(diverted),
    };
    (tx, body)
}

/// The driver wiring for a transport, with the negotiated codec parameters.
pub(crate) fn wiring(
    framing: h2ws_codec::Framing,
    edge: crate::wiring::Edge,
    params: crate::request::Negotiated,
) -> crate::wiring::Wiring {
    crate::wiring::Wiring {
        framing,
        edge,
        reset_after_protocol_error: false,
        deliver_fragments: params.deliver_fragments,
        allow_rsv1: params.allow_rsv1,
        deflate: params.deflate,
        native_max_payload: 16_384,
        on_end: None,
        drain_input_after_close: false,
        attach_timeout: None,
        resume: None,
    }
}

/// Starts the driver for an accepted socket and hands the socket to the app.
pub(crate) fn start(
    endpoint: &crate::Endpoint,
    info: std::sync::Arc<crate::HandshakeInfo>,
    wiring: crate::wiring::Wiring,
    run: impl FnOnce(crate::Socket),
) -> crate::wiring::CommandHandle {
    let cell = std::sync::Arc::new(crate::socket::TransportCell::new(info.transport));
    let (socket, handle) = spawn_socket(endpoint, info, cell, wiring);
    run(socket);
    handle
}

/// Fragment mode: a data frame is handed to the app in pieces of about this size.
const FRAGMENT_CHUNK: usize = 16 << 10;

/// Fragment mode: events queued for the app. A proxy's queue holds pieces of frames in
/// flight, not messages an app is working through: four pieces (64 KiB) keep a gateway
/// streaming at full speed while bounding what a socket holds.
const FRAGMENT_QUEUE_DEPTH: usize = 4;

/// Starts the one socket driver (`driver.rs`) for a server socket over its transport's
/// queues; returns the app's socket and a handle that can close it without keeping it open.
pub(crate) fn spawn_socket(
    endpoint: &crate::Endpoint,
    info: std::sync::Arc<crate::HandshakeInfo>,
    cell: std::sync::Arc<crate::socket::TransportCell>,
    mut wiring: crate::wiring::Wiring,
) -> (crate::Socket, crate::wiring::CommandHandle) {
    use std::sync::Arc;

    use crate::driver::{Driver, Hooks, Spec};
    use crate::socket::{Limits, Shared, Traffic, SERVER_SEND_BUFFER};
    use crate::wiring::Edge;

    let cfg = endpoint.config();
    let recv_queue = if wiring.deliver_fragments {
        FRAGMENT_QUEUE_DEPTH.min(cfg.queue_depth)
    } else {
        cfg.queue_depth
    }
    .max(1);
    let config = h2ws_codec::Config {
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
        ..h2ws_codec::Config::default()
    };
    let mut conn = h2ws_codec::Connection::new(h2ws_codec::Role::Server, wiring.framing, config);
    let reattach = wiring.resume.take().map(|(resume, rx)| {
        conn.enable_resume(resume);
        rx
    });
    let shared = Shared::new(
        conn,
        Limits {
            send_buffer: SERVER_SEND_BUFFER,
            recv_queue,
            send_timeout: None,
            close_timeout: cfg.close_timeout,
        },
    );
    let traffic: Arc<dyn Traffic> = Arc::new(endpoint.clone());
    let on_end = (
        OpenGuard::new(endpoint, cell.clone()),
        wiring.on_end.take().map(OnEnd),
    );
    let hooks = Hooks {
        traffic: Some(traffic.clone()),
        shutdown: Some(Box::pin(endpoint.0.shutdown.clone().cancelled_owned())),
        on_end: Some(Box::new(on_end)),
    };
    let mut spec = Spec {
        byte_stream: wiring.framing.is_byte_stream(),
        expect_preamble: false,
        reset_after_protocol_error: wiring.reset_after_protocol_error,
        send_timeout: None,
        ping_after: cfg.ping_after,
        ping_payload: h2ws_codec::timer::SERVER_PING_PAYLOAD,
        idle_timeout: cfg.idle_timeout,
        close_timeout: cfg.close_timeout,
        attach_timeout: wiring.attach_timeout,
    };
    match wiring.edge {
        Edge::Queues { input, output } => {
            let io = crate::wiring::QueueIo::new(
                input,
                output,
                wiring.reset_after_protocol_error,
                wiring.drain_input_after_close,
            )
            .with_reattach(reattach);
            endpoint
                .0
                .tasks
                .spawn(Driver::new(shared.clone(), io, spec, hooks));
        }
        Edge::Upgraded(upgraded) => {
            // Written by the driver itself: a write that makes no progress for the send
            // timeout ends the socket.
            spec.send_timeout = Some(cfg.send_timeout);
            let io = crate::wiring::ByteIo::new(TokioIo::new(upgraded));
            endpoint
                .0
                .tasks
                .spawn(Driver::new(shared.clone(), io, spec, hooks));
        }
    }
    let socket = crate::Socket::new(info, cell, shared, Some(traffic));
    let handle = socket.sender().closer();
    (socket, handle)
}

impl crate::socket::Traffic for crate::Endpoint {
    fn record_in(&self, messages: u64, bytes: usize) {
        self.stats().record_in(messages, bytes);
    }

    fn record_out(&self, messages: u64, bytes: usize) {
        self.stats().record_out(messages, bytes);
    }

    fn record_replay(&self, bytes: u64) {
        self.stats().record_replay(bytes);
    }
}

/// Runs a transport's end callback when the driver ends (fetch sessions forget their token).
struct OnEnd(Box<dyn FnOnce() + Send>);

impl Drop for OnEnd {
    fn drop(&mut self) {
        let f = std::mem::replace(&mut self.0, Box::new(|| {}));
        f();
    }
}

/// Counts one open socket while alive.
struct OpenGuard {
    endpoint: crate::Endpoint,
    cell: std::sync::Arc<crate::socket::TransportCell>,
}

impl OpenGuard {
    fn new(endpoint: &crate::Endpoint, cell: std::sync::Arc<crate::socket::TransportCell>) -> Self {
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
