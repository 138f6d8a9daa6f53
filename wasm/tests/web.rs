//! wasm-bindgen-test unit tests of the bindings in headless Chromium:
//! `CHROMEDRIVER=/usr/bin/chromedriver wasm-pack test --headless --chrome wasm`.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use h2ws_wasm::Core;
use js_sys::{Array, Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

type Log = Rc<RefCell<Vec<String>>>;

/// An `emit` callback that records `kind` (and the close details).
fn recorder() -> (Function, Log) {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let sink = log.clone();
    let emit = Closure::<dyn FnMut(String, JsValue)>::new(move |kind: String, data: JsValue| {
        let entry = if kind == "close" {
            let get = |k: &str| Reflect::get(&data, &k.into()).unwrap();
            format!(
                "close {} {}",
                get("code").as_f64().unwrap(),
                get("wasClean").as_bool().unwrap()
            )
        } else {
            kind
        };
        sink.borrow_mut().push(entry);
    });
    let function: Function = emit.as_ref().unchecked_ref::<Function>().clone();
    emit.forget();
    (function, log)
}

fn core(url: &str, base: Option<&str>, protocols: &[&str]) -> Result<Core, JsValue> {
    let list: Array = protocols.iter().map(|p| JsValue::from_str(p)).collect();
    Core::new(
        url,
        base.map(String::from),
        list,
        "auto",
        true,
        Array::new(),
        recorder().0,
        false,
    )
}

fn error_name(error: JsValue) -> String {
    error
        .dyn_into::<web_sys::DomException>()
        .map(|e| e.name())
        .unwrap_or_else(|v| format!("{v:?}"))
}

async fn sleep(ms: i32) {
    let global = js_sys::global();
    let set_timeout: Function = Reflect::get(&global, &"setTimeout".into()).unwrap().into();
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout.call2(&global, &resolve, &ms.into()).unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

#[wasm_bindgen_test]
fn url_is_resolved_and_mapped_to_ws_schemes() {
    let c = core(
        "/ws/echo?x=1",
        Some("https://example.test:8443/page/index.html"),
        &[],
    )
    .unwrap();
    assert_eq!(c.url(), "wss://example.test:8443/ws/echo?x=1");
    assert_eq!(c.origin(), "wss://example.test:8443");
    c.close(None, None).unwrap();
    let c = core("http://127.0.0.1:9/p", None, &[]).unwrap();
    assert_eq!(c.url(), "ws://127.0.0.1:9/p");
    c.close(None, None).unwrap();
}

#[wasm_bindgen_test]
fn bad_urls_throw_syntax_error() {
    for url in [
        "ftp://x/",
        "wss://x/#frag",
        "wss://x/#",
        "http://[::1",
        "/relative-without-base",
    ] {
        let err = core(url, None, &[])
            .err()
            .unwrap_or_else(|| panic!("{url} accepted"));
        assert_eq!(error_name(err), "SyntaxError", "{url}");
    }
}

#[wasm_bindgen_test]
fn bad_protocol_lists_throw_syntax_error() {
    for list in [&["a", "a"][..], &[""], &["a b"]] {
        let err = core("wss://127.0.0.1:9/", None, list).err().unwrap();
        assert_eq!(error_name(err), "SyntaxError", "{list:?}");
    }
}

#[wasm_bindgen_test]
fn constants_and_connecting_rules() {
    let c = core("wss://127.0.0.1:9/", None, &["chat"]).unwrap();
    assert_eq!(c.ready_state(), 0);
    assert_eq!(
        error_name(c.send_text("x").unwrap_err()),
        "InvalidStateError"
    );
    assert_eq!(
        error_name(c.close(Some(1001), None).unwrap_err()),
        "InvalidAccessError"
    );
    let long = "x".repeat(124);
    assert_eq!(
        error_name(c.close(Some(1000), Some(long)).unwrap_err()),
        "SyntaxError"
    );
    c.close(None, None).unwrap();
    assert_eq!(c.ready_state(), 2);
}

#[wasm_bindgen_test]
async fn unreachable_server_fires_error_then_close_1006() {
    let (emit, log) = recorder();
    // Port 9 (discard) on loopback: nothing listens, the open fetch fails.
    let c = Core::new(
        "wss://127.0.0.1:9/ws",
        None,
        Array::new(),
        "auto",
        true,
        Array::new(),
        emit,
        false,
    )
    .unwrap();
    for _ in 0..100 {
        if log.borrow().len() >= 2 {
            break;
        }
        sleep(50).await;
    }
    assert_eq!(
        *log.borrow(),
        vec!["error".to_string(), "close 1006 false".to_string()]
    );
    assert_eq!(c.ready_state(), 3);
    // Sends after the end count into bufferedAmount and go nowhere.
    c.send_text("abc").unwrap();
    assert_eq!(c.buffered_amount(), 3.0);
}
