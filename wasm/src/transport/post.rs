//! `post` upstream (DESIGN §2.3): ordered `POST` batches with `h2ws-seq`, at most
//! [`MAX_IN_FLIGHT`] in flight; what waits meanwhile is coalesced into the next batch.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortSignal, Response};

use crate::session::Session;
use crate::socket::Transmit;
use crate::web;
use h2ws_codec::handshake::fetch;

/// Batches in flight at once (DESIGN §2.3; the server holds up to 16 ahead).
pub const MAX_IN_FLIGHT: usize = 4;
/// Network-error retries of one batch (a repeated `seq` is ignored by the server: safe).
const RETRIES: u32 = 2;
/// A batch not answered within this time fails the socket (1006).
const BATCH_TIMEOUT_MS: i32 = 30_000;

pub struct PostUpstream {
    inner: Rc<Inner>,
}

struct Inner {
    url: String,
    headers: Vec<(String, String)>,
    token: String,
    signal: AbortSignal,
    session: Weak<Session>,
    state: RefCell<Batching>,
}

#[derive(Default)]
struct Batching {
    pending: Vec<u8>,
    pending_app: usize,
    /// Resolvers of the `send` promises whose bytes are in `pending`.
    pending_waiters: Vec<Function>,
    in_flight: usize,
    next_seq: u64,
}

impl PostUpstream {
    pub fn new(
        session: &Rc<Session>,
        url: &str,
        headers: Vec<(String, String)>,
        token: &str,
        signal: &AbortSignal,
    ) -> PostUpstream {
        let inner = Rc::new(Inner {
            url: url.to_string(),
            headers,
            token: token.to_string(),
            signal: signal.clone(),
            session: Rc::downgrade(session),
            state: RefCell::new(Batching {
                in_flight: 1,
                next_seq: 1,
                ..Batching::default()
            }),
        });
        // Batch 0 is empty: it attaches the upstream at once, so a socket that sends nothing
        // for a while is not closed by the server's attach timeout (DESIGN §2.2: 10 s).
        spawn_local(post_batch(inner.clone(), (0, Vec::new(), 0, Vec::new())));
        PostUpstream { inner }
    }

    pub fn send(&self, transmit: Transmit) -> Promise {
        let promise = {
            let mut state = self.inner.state.borrow_mut();
            state.pending.extend_from_slice(&transmit.bytes);
            state.pending_app += transmit.app_bytes;
            Promise::new(&mut |resolve, _reject| state.pending_waiters.push(resolve))
        };
        pump(&self.inner);
        promise
    }
}

fn pump(inner: &Rc<Inner>) {
    loop {
        let batch = {
            let mut state = inner.state.borrow_mut();
            if state.in_flight >= MAX_IN_FLIGHT || state.pending.is_empty() {
                return;
            }
            state.in_flight += 1;
            let seq = state.next_seq;
            state.next_seq += 1;
            (
                seq,
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.pending_app),
                std::mem::take(&mut state.pending_waiters),
            )
        };
        spawn_local(post_batch(inner.clone(), batch));
    }
}

async fn post_batch(
    inner: Rc<Inner>,
    (seq, bytes, app_bytes, waiters): (u64, Vec<u8>, usize, Vec<Function>),
) {
    let weak = inner.session.clone();
    let _deadline = web::Timer::once(BATCH_TIMEOUT_MS, move || {
        if let Some(session) = weak.upgrade() {
            session.transport_failed();
        }
    });
    let mut attempts = 0;
    let ok = loop {
        match send_once(&inner, seq, &bytes).await {
            Ok(status) => break (200..300).contains(&status),
            Err(_) if attempts < RETRIES && !inner.signal.aborted() => {
                attempts += 1;
                let _ = JsFuture::from(web::sleep(50 * attempts as i32)).await;
            }
            Err(_) => break false,
        }
    };
    let Some(session) = inner.session.upgrade() else {
        return;
    };
    if !ok {
        session.transport_failed();
        return;
    }
    session.transmitted(app_bytes);
    for waiter in waiters {
        let _ = waiter.call0(&JsValue::UNDEFINED);
    }
    inner.state.borrow_mut().in_flight -= 1;
    pump(&inner);
}

async fn send_once(inner: &Inner, seq: u64, bytes: &[u8]) -> Result<u16, JsValue> {
    let headers = crate::session::build_headers(&inner.headers)?;
    headers.set("h2ws-session", &inner.token)?;
    headers.set("h2ws-seq", &fetch::decimal(seq))?;
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
    Ok(response.status())
}
