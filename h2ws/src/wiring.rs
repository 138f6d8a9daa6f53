//! What a transport hands the socket driver ([`Wiring`]: an input stream of chunks, an output
//! queue of units, the socket's options), the handle kept on a running socket, and the rule for
//! reading a request body after a clean close. A leaf module apart from `driver`: the fetch
//! sessions feed a driver's input without importing the driver (which reads the endpoint that
//! owns the sessions).

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use h2ws_codec::Framing;
use tokio::sync::mpsc;

use crate::h2conn::ResetStream;
use crate::socket::Command;

/// A chunk from the transport.
pub(crate) enum Input {
    /// Bytes of the byte stream (Rfc6455/Stream framing) or one DATA frame (Native).
    Chunk(Bytes),
    /// The transport's inbound side ended cleanly (END_STREAM, EOF, request body end).
    End,
    /// The transport failed (reset, connection lost).
    Failed,
}

/// A unit for the transport. `Err` asks the transport to reset the stream with that reason.
pub(crate) type Output = Result<Bytes, ResetStream>;

/// What a transport hands to the driver.
pub(crate) struct Wiring {
    pub framing: Framing,
    pub input: BoxStream<'static, Input>,
    pub output: mpsc::Sender<Output>,
    /// Native: after a protocol error's Close, reset the stream with PROTOCOL_ERROR.
    pub reset_after_protocol_error: bool,
    /// Deliver data frames one by one (proxies).
    pub deliver_fragments: bool,
    /// Let RSV1 through untouched (a proxy forwarding permessage-deflate it does not terminate).
    pub allow_rsv1: bool,
    pub deflate: Option<h2ws_codec::deflate::DeflateParams>,
    /// Native: largest DATA frame the peer accepts.
    pub native_max_payload: usize,
    /// Runs when the driver ends (fetch sessions forget their token).
    pub on_end: Option<Box<dyn FnOnce() + Send>>,
    /// The input is a request body on our own HTTP/2 loop (rfc8441, native): after a clean
    /// close, read it to its end ([`drain_after_close`]) instead of dropping it.
    pub drain_input_after_close: bool,
}

/// How long and how many bytes the server keeps reading a request body after a clean close
/// handshake, waiting for the client's END_STREAM. Why: dropping an unfinished request body
/// makes h2 reset the stream (RST_STREAM NO_ERROR, RFC 9113 §8.1), which proxies log as a
/// server abort (HAProxy `SD--`) although the exchange was complete; a client ends its
/// direction right after the handshake. Bounded: a client that never ends it is reset after
/// this.
pub(crate) const DRAIN_AFTER_CLOSE_TIME: std::time::Duration = std::time::Duration::from_secs(2);
pub(crate) const DRAIN_AFTER_CLOSE_BYTES: usize = 1 << 20;

/// Reads a finished socket's request body until it ends, within the bounds above; dropping it
/// then leaves nothing to reset. `chunk_len` says how many body bytes an item is, `None` for an
/// item that ends the reading (an error, the end of the input). One rule for every kind of
/// body: a driver's [`Input`] (rfc8441, native) and a `stream` upstream's data (sessions).
pub(crate) async fn drain_after_close<S: futures_util::Stream + Unpin>(
    mut body: S,
    chunk_len: impl Fn(&S::Item) -> Option<usize>,
) {
    let mut left = DRAIN_AFTER_CLOSE_BYTES;
    let drain = async {
        while let Some(len) = body.next().await.as_ref().and_then(&chunk_len) {
            left = left.saturating_sub(len);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_AFTER_CLOSE_TIME, drain).await;
}

/// The body bytes of a driver's input item (for [`drain_after_close`]).
pub(crate) fn input_len(input: &Input) -> Option<usize> {
    match input {
        Input::Chunk(chunk) => Some(chunk.len()),
        _ => None,
    }
}

/// A handle the server keeps on a socket (fetch sessions use it to close unattached sockets).
pub(crate) type CommandHandle = mpsc::WeakSender<Command>;
