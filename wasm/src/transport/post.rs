//! `post` upstream (DESIGN §2.3): ordered `PUT` batches with `h2ws-seq`. The batching rules
//! (numbering, coalescing, how many in flight, which answers are fine, what is resent) are the
//! codec's [`PostSender`], shared with the native client and the server's reorder buffer; this
//! file only sends the requests it hands out.

use alloc::collections::VecDeque;
use alloc::rc::{Rc, Weak};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

use h2ws_codec::handshake::fetch;
use h2ws_codec::post::{self, Batch, PostError, PostLimits, PostSender, Resend};
use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortSignal, Response};

use super::Owner;
use crate::socket::Transmit;
use crate::web;

pub struct PostUpstream {
    inner: Rc<Inner>,
}

struct Inner {
    url: String,
    /// The page's extra headers ([`web::build_headers`]).
    headers: JsValue,
    token: String,
    signal: AbortSignal,
    /// Ask for replies (codec `reply`): where the engine holds data of an unfinished response
    /// (Chromium, about 1 ms), told by it streaming request bodies (only Chromium does). In
    /// Firefox and WebKit the downstream is as fast, and an echo could then reach the page
    /// before its batch counts as sent (`bufferedAmount`, seen in the differential test).
    ask_replies: bool,
    owner: Weak<dyn Owner>,
    state: RefCell<Batching>,
    /// Application bytes handed in and not yet reported as transmitted.
    uncredited: core::cell::Cell<usize>,
}

struct Batching {
    sender: PostSender,
    /// Resolvers of the `send` promises, with the `h2ws-seq` of the batch holding their bytes,
    /// in push order.
    waiters: VecDeque<(u64, Function)>,
}

impl PostUpstream {
    pub fn new(
        owner: Weak<dyn Owner>,
        url: &str,
        headers: JsValue,
        token: &str,
        signal: &AbortSignal,
        first_seq: u64,
        ask_replies: bool,
    ) -> PostUpstream {
        // `first_seq`: 0 at the open; after a resume the numbering continues where the lost
        // upstream stopped (the re-attach told the server).
        let mut sender = PostSender::starting_at(
            PostLimits {
                // `WebSocket.send` has no backpressure: what waits is the page's
                // `bufferedAmount` (`H2WebSocketStream` writers wait on the promise `send`
                // returns).
                max_waiting: usize::MAX,
                ..PostLimits::default()
            },
            first_seq,
        );
        // The first batch leaves at once, empty: it attaches the upstream, so a socket that
        // sends nothing for a while is not closed by the server's attach timeout (DESIGN §2.2:
        // 10 s).
        sender.attach();
        let inner = Rc::new(Inner {
            url: url.to_string(),
            headers,
            token: token.to_string(),
            signal: signal.clone(),
            ask_replies,
            owner,
            state: RefCell::new(Batching {
                sender,
                waiters: VecDeque::new(),
            }),
            uncredited: Default::default(),
        });
        pump(&inner);
        PostUpstream { inner }
    }

    /// The `h2ws-seq` the next batch would get: where a resumed socket's numbering continues.
    pub fn next_seq(&self) -> u64 {
        self.inner.state.borrow().sender.next_seq()
    }

    /// The transport was lost and resume goes on without this upstream: every waiting `send`
    /// promise resolves (the codec keeps the frames for replay), and the application bytes
    /// never reported as transmitted are returned (`bufferedAmount` must not keep them).
    pub fn abandon(&self) -> usize {
        // Taken whole, not drained: `VecDeque::drain` costs ~1 KB of wasm.
        let waiters = core::mem::take(&mut self.inner.state.borrow_mut().waiters);
        for (_, resolve) in waiters {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
        self.inner.uncredited.replace(0)
    }

    pub fn send(&self, transmit: Transmit) -> Promise {
        self.inner
            .uncredited
            .set(self.inner.uncredited.get() + transmit.app_bytes);
        let promise = {
            let mut state = self.inner.state.borrow_mut();
            // `max_waiting` is unbounded: push never refuses.
            let seq = state
                .sender
                .push(&transmit.bytes, transmit.app_bytes)
                .unwrap_or(u64::MAX);
            Promise::new(&mut |resolve, _reject| state.waiters.push_back((seq, resolve)))
        };
        pump(&self.inner);
        promise
    }
}

/// Sends every batch the codec hands out (at most `post::MAX_IN_FLIGHT` at once).
fn pump(inner: &Rc<Inner>) {
    loop {
        let Some(batch) = inner.state.borrow_mut().sender.poll_batch() else {
            return;
        };
        spawn_local(post_batch(inner.clone(), batch));
    }
}

async fn post_batch(inner: Rc<Inner>, batch: Batch) {
    if let Some(owner) = inner.owner.upgrade() {
        owner.request_started();
    }
    let owner = inner.owner.clone();
    let _deadline = web::Timer::once(post::BATCH_TIMEOUT_MS as i32, move || {
        if let Some(owner) = owner.upgrade() {
            owner.transport_failed();
        }
    });
    let mut reply = None;
    let answer = loop {
        match send_once(
            &inner,
            batch.seq,
            &batch.bytes,
            inner.ask_replies && batch.app_bytes > 0,
        )
        .await
        {
            Ok((status, frames)) => {
                reply = frames;
                break inner.state.borrow_mut().sender.on_answer(batch.seq, status);
            }
            // The socket aborted its requests itself: nothing to resend.
            Err(_) if inner.signal.aborted() => break Err(PostError::Network { seq: batch.seq }),
            Err(_) => {
                let resend = inner.state.borrow_mut().sender.on_network_error(batch.seq);
                match resend {
                    Ok(Resend::After { delay_ms }) => {
                        let _ = JsFuture::from(web::sleep(delay_ms as i32)).await;
                    }
                    Err(e) => break Err(e),
                }
            }
        }
    };
    let Some(owner) = inner.owner.upgrade() else {
        return;
    };
    owner.clone().request_ended();
    if answer.is_err() {
        owner.transport_failed();
        return;
    }
    let credited = batch.app_bytes.min(inner.uncredited.get());
    inner.uncredited.set(inner.uncredited.get() - credited);
    owner.clone().transmitted(credited);
    let done: Vec<Function> = {
        let mut state = inner.state.borrow_mut();
        let mut done = Vec::new();
        state.waiters.retain(|(seq, resolve)| {
            let answered = *seq == batch.seq;
            if answered {
                done.push(resolve.clone());
            }
            !answered
        });
        done
    };
    for resolve in done {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    }
    // The frames the answer brought go in after the batch counts as sent (`bufferedAmount` no
    // longer holds it when the page sees its echo), and before the check that no reply is
    // missing: a reply is never awaited while its batch is still in flight.
    if let Some((at, frames)) = reply {
        owner.clone().reply(at, frames);
    }
    if inner.state.borrow().sender.in_flight() == 0 {
        owner.batches_settled();
    }
    pump(&inner);
}

/// One attempt: the answer's status, and the frames it brought with where they belong in the
/// downstream (codec `reply`).
async fn send_once(
    inner: &Inner,
    seq: u64,
    bytes: &[u8],
    ask_reply: bool,
) -> Result<(u16, Option<(u64, Vec<u8>)>), JsValue> {
    let headers = web::build_headers(&inner.headers)?;
    for (name, value) in fetch::upstream_request_headers(&inner.token, Some(seq)) {
        headers.set(name, &value)?;
    }
    // The answer may bring the socket's next frames (codec `reply`): no 1 ms hold in Chromium.
    // Only batches with application data ask: one of only control frames (a Pong, resume
    // acks, the Close) has nothing the app answers, and while it waited it would take the
    // answer to a later batch, reaching the page before that batch counts as sent.
    if ask_reply {
        headers.set(fetch::H2WS_REPLY, "1")?;
    }
    let body: JsValue = Uint8Array::from(bytes).into();
    // PUT (codec `fetch::METHOD`): WebKitGTK opens a connection per POST, even over HTTP/2.
    let request = web::request(
        fetch::METHOD,
        &inner.url,
        &headers,
        Some(&body),
        false,
        &inner.signal,
    )?;
    let response = Response::from(JsFuture::from(web::fetch(&request)).await?);
    let status = response.status();
    let at = response
        .headers()
        .get(fetch::H2WS_AT)?
        .and_then(|at| fetch::parse_seq(at.as_bytes()));
    let reply = match (status, at) {
        (200, Some(at)) => {
            // Read whole before the batch counts as answered.
            let body = JsFuture::from(response.array_buffer()?).await?;
            Some((at, Uint8Array::new(&body).to_vec()))
        }
        _ => None,
    };
    Ok((status, reply))
}
