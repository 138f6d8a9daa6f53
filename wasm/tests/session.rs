//! wasm-bindgen-test tests of the session logic against a scripted server: `fetch` is replaced
//! by a fake that answers the open request with a response body the test feeds frame by frame
//! and records every upstream byte and batch. Runs in headless Chromium:
//! `CHROMEDRIVER=/usr/bin/chromedriver wasm-pack test --headless --chrome wasm`.
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use h2ws_wasm::Core;
use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
export function install_fake_server(status, headers) {
  const state = { requests: [], upstream: [], upstreamEnded: false, batches: [], controller: null };
  globalThis.fetch = async (request) => {
    const h = Object.fromEntries(request.headers);
    state.requests.push(h);
    if (h['h2ws-version']) {
      const body = new ReadableStream({ start(c) { state.controller = c; } });
      return new Response(body, { status, headers });
    }
    if (h['h2ws-seq'] !== undefined) {
      const bytes = new Uint8Array(await request.arrayBuffer());
      state.batches.push({ seq: Number(h['h2ws-seq']), bytes: Array.from(bytes) });
      return new Response(null, { status: 200 });
    }
    const reader = request.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      state.upstream.push(...value);
    }
    state.upstreamEnded = true;
    return new Response(null, { status: 200 });
  };
  return state;
}
export function push(state, bytes) { state.controller.enqueue(new Uint8Array(bytes)); }
export function end(state) { state.controller.close(); }
export function upstream(state) { return new Uint8Array(state.upstream); }
export function batches(state) {
  return state.batches.slice().sort((a, b) => a.seq - b.seq).map((b) => `${b.seq}:${b.bytes.length}`).join(' ');
}
export function batch_bytes(state) {
  return new Uint8Array(state.batches.slice().sort((a, b) => a.seq - b.seq).flatMap((b) => b.bytes));
}
"#)]
extern "C" {
    fn install_fake_server(status: u16, headers: &Object) -> JsValue;
    fn push(state: &JsValue, bytes: &[u8]);
    fn end(state: &JsValue);
    fn upstream(state: &JsValue) -> Vec<u8>;
    fn batches(state: &JsValue) -> String;
    fn batch_bytes(state: &JsValue) -> Vec<u8>;
}

type Log = Rc<RefCell<Vec<String>>>;
/// (status, response headers, offered subprotocols)
type Refusal<'a> = (u16, &'a [(&'a str, &'a str)], &'a [&'a str]);

fn recorder() -> (Function, Log) {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let sink = log.clone();
    let emit = Closure::<dyn FnMut(u32, JsValue)>::new(move |kind: u32, data: JsValue| {
        let kind = common::kind_name(kind);
        let entry = match kind.as_str() {
            "close" => {
                let get = |k: &str| Reflect::get(&data, &k.into()).unwrap();
                format!(
                    "close {} {} {}",
                    get("code").as_f64().unwrap(),
                    get("reason").as_string().unwrap(),
                    get("wasClean").as_bool().unwrap()
                )
            }
            "message" => match data.as_string() {
                Some(text) => format!("text {text}"),
                None => format!("binary {:?}", data.unchecked_into::<Uint8Array>().to_vec()),
            },
            _ => kind,
        };
        sink.borrow_mut().push(entry);
    });
    let function = emit.as_ref().unchecked_ref::<Function>().clone();
    emit.forget();
    (function, log)
}

fn headers(pairs: &[(&str, &str)]) -> Object {
    let object = Object::new();
    for (k, v) in pairs {
        Reflect::set(&object, &(*k).into(), &(*v).into()).unwrap();
    }
    object
}

const OK: &[(&str, &str)] = &[("h2ws-session", "tok"), ("h2ws-transports", "stream, post")];

fn socket(transport: &str, protocols: &[&str], emit: Function) -> Core {
    let protocols: Array = protocols.iter().map(|p| JsValue::from_str(p)).collect();
    Core::new(
        "wss://fake.test/ws".into(),
        "https://fake.test/ws".into(),
        "wss://fake.test".into(),
        protocols,
        transport.into(),
        true,
        Array::new(),
        emit,
        false,
        false,
    )
    .unwrap()
}

async fn sleep(ms: i32) {
    let global = js_sys::global();
    let set_timeout: Function = Reflect::get(&global, &"setTimeout".into()).unwrap().into();
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout.call2(&global, &resolve, &ms.into()).unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

/// Waits (bounded) until `done()` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        sleep(10).await;
    }
    panic!("timed out waiting for {what}");
}

#[wasm_bindgen_test]
async fn server_ping_is_answered_with_pong_upstream() {
    let server = install_fake_server(200, &headers(OK));
    let (emit, log) = recorder();
    let _ws = socket("stream", &[], emit);
    until("open", || {
        log.borrow().first().map(String::as_str) == Some("open")
    })
    .await;
    push(&server, &[0x89, 2, b'h', b'i']);
    until("pong", || upstream(&server) == [0x8a, 2, b'h', b'i']).await;
    assert_eq!(*log.borrow(), vec!["open"]);
}

#[wasm_bindgen_test]
async fn messages_split_across_chunks_are_delivered_whole() {
    let server = install_fake_server(200, &headers(OK));
    let (emit, log) = recorder();
    let _ws = socket("stream", &[], emit);
    until("open", || !log.borrow().is_empty()).await;
    push(&server, &[0x81, 5, b'h']);
    push(&server, b"ell");
    push(&server, &[b'o', 0x82, 2, 7]);
    push(&server, &[8]);
    until("messages", || log.borrow().len() == 3).await;
    assert_eq!(*log.borrow(), vec!["open", "text hello", "binary [7, 8]"]);
}

#[wasm_bindgen_test]
async fn masked_server_frame_sends_close_1002_and_fails_with_1006() {
    let server = install_fake_server(200, &headers(OK));
    let (emit, log) = recorder();
    let ws = socket("stream", &[], emit);
    until("open", || !log.borrow().is_empty()).await;
    push(&server, &[0x81, 0x81, 1, 2, 3, 4, b'x' ^ 1]);
    until("close", || log.borrow().len() == 3).await;
    assert_eq!(*log.borrow(), vec!["open", "error", "close 1006  false"]);
    let sent = upstream(&server);
    assert_eq!(
        &sent[..4],
        &[0x88, sent[1], 0x03, 0xea],
        "Close 1002 went upstream"
    );
    assert_eq!(ws.ready_state(), 3);
}

#[wasm_bindgen_test]
async fn server_close_is_echoed_then_clean_close_when_the_body_ends() {
    let server = install_fake_server(200, &headers(OK));
    let (emit, log) = recorder();
    let ws = socket("stream", &[], emit);
    until("open", || !log.borrow().is_empty()).await;
    push(&server, &[0x88, 5, 0x03, 0xe9, b'b', b'y', b'e']);
    until("echo", || upstream(&server).len() >= 4).await;
    assert_eq!(&upstream(&server)[..4], &[0x88, 2, 0x03, 0xe9]);
    assert_eq!(ws.ready_state(), 2, "CLOSING until the transport ends");
    until("upstream ended", || {
        Reflect::get(&server, &"upstreamEnded".into())
            .unwrap()
            .is_truthy()
    })
    .await;
    end(&server);
    until("close", || log.borrow().len() == 2).await;
    assert_eq!(*log.borrow(), vec!["open", "close 1001 bye true"]);
}

#[wasm_bindgen_test]
async fn refused_handshakes_fail_with_1006() {
    let cases: &[Refusal] = &[
        (403, OK, &[]),
        (200, &[("h2ws-transports", "stream")], &[]), // no session token
        (
            200,
            &[("h2ws-session", "t"), ("h2ws-protocol", "other")],
            &["chat"],
        ), // not offered
        (200, &[("h2ws-session", "t")], &["chat"]),   // offered, none chosen (as Chromium)
        (
            200,
            &[("h2ws-session", "t"), ("h2ws-extensions", "x-unknown")],
            &[],
        ),
    ];
    for (status, answer, offered) in cases {
        install_fake_server(*status, &headers(answer));
        let (emit, log) = recorder();
        let _ws = socket("stream", offered, emit);
        until("close", || log.borrow().len() == 2).await;
        assert_eq!(
            *log.borrow(),
            vec!["error", "close 1006  false"],
            "{status} {answer:?}"
        );
    }
}

#[wasm_bindgen_test]
async fn chosen_protocol_is_exposed() {
    install_fake_server(
        200,
        &headers(&[("h2ws-session", "t"), ("h2ws-protocol", "chat")]),
    );
    let (emit, log) = recorder();
    let ws = socket("stream", &["superchat", "chat"], emit);
    until("open", || !log.borrow().is_empty()).await;
    assert_eq!(*log.borrow(), vec!["open"]);
    assert_eq!(ws.protocol(), "chat");
}

#[wasm_bindgen_test]
async fn post_sends_ordered_batches_starting_with_an_empty_attach() {
    let server = install_fake_server(200, &headers(OK));
    let (emit, log) = recorder();
    let ws = socket("post", &[], emit);
    until("open", || !log.borrow().is_empty()).await;
    for text in ["a", "bb", "ccc"] {
        let _ = ws.send_text(text);
    }
    assert_eq!(ws.buffered_amount(), 6.0);
    until("batches", || batch_bytes(&server).len() == 3 + 4 + 5).await;
    assert_eq!(
        batch_bytes(&server),
        [0x81, 1, b'a', 0x81, 2, b'b', b'b', 0x81, 3, b'c', b'c', b'c']
    );
    assert!(
        batches(&server).starts_with("0:0 1:"),
        "{}",
        batches(&server)
    );
    until("acknowledged", || ws.buffered_amount() == 0.0).await;
}

#[wasm_bindgen_test]
async fn auto_uses_post_when_the_server_lacks_stream() {
    let server = install_fake_server(
        200,
        &headers(&[("h2ws-session", "t"), ("h2ws-transports", "post")]),
    );
    let (emit, log) = recorder();
    let ws = socket("auto", &[], emit);
    until("open", || !log.borrow().is_empty()).await;
    let _ = ws.send_text("x");
    until("batch", || batch_bytes(&server) == [0x81, 1, b'x']).await;
    assert!(upstream(&server).is_empty());
}

#[wasm_bindgen_test]
async fn downstream_ending_without_close_is_error_then_1006() {
    let server = install_fake_server(200, &headers(OK));
    let (emit, log) = recorder();
    let _ws = socket("stream", &[], emit);
    until("open", || !log.borrow().is_empty()).await;
    end(&server);
    until("close", || log.borrow().len() == 3).await;
    assert_eq!(*log.borrow(), vec!["open", "error", "close 1006  false"]);
}

#[wasm_bindgen_test]
async fn extra_headers_go_with_every_request() {
    let server = install_fake_server(200, &headers(OK));
    let (emit, log) = recorder();
    let pair: Array = ["authorization", "Bearer x"]
        .iter()
        .map(|s| JsValue::from_str(s))
        .collect();
    let extra: Array = std::iter::once(JsValue::from(pair)).collect();
    let ws = Core::new(
        "wss://fake.test/ws".into(),
        "https://fake.test/ws".into(),
        "wss://fake.test".into(),
        Array::new(),
        "post".into(),
        true,
        extra,
        emit,
        false,
        false,
    )
    .unwrap();
    until("open", || !log.borrow().is_empty()).await;
    let _ = ws.send_text("x");
    until("batch", || !batch_bytes(&server).is_empty()).await;
    let requests: Array = Reflect::get(&server, &"requests".into()).unwrap().into();
    assert!(requests.length() >= 2);
    for request in requests.iter() {
        let auth = Reflect::get(&request, &"authorization".into()).unwrap();
        assert_eq!(auth.as_string().as_deref(), Some("Bearer x"));
    }
}

#[wasm_bindgen_test]
async fn close_without_the_peers_close_times_out_with_1006() {
    let server = install_fake_server(200, &headers(OK));
    let (emit, log) = recorder();
    let ws = socket("stream", &[], emit);
    until("open", || !log.borrow().is_empty()).await;
    let started = js_sys::Date::now();
    ws.close(Some(1000), "bye");
    until("our Close upstream", || {
        upstream(&server).first() == Some(&0x88)
    })
    .await;
    // The server stays silent: the codec's close timer (5 s) fails the socket.
    for _ in 0..70 {
        if log.borrow().len() == 3 {
            break;
        }
        sleep(100).await;
    }
    let waited = js_sys::Date::now() - started;
    assert_eq!(*log.borrow(), vec!["open", "error", "close 1006  false"]);
    assert!((4_900.0..6_500.0).contains(&waited), "{waited} ms");
}
