//! wasm-bindgen-test unit tests of the bindings in headless Chromium:
//! `CHROMEDRIVER=/usr/bin/chromedriver wasm-pack test --headless --chrome wasm`.
#![cfg(target_arch = "wasm32")]

mod common;

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
    let emit = Closure::<dyn FnMut(u32, JsValue)>::new(move |kind: u32, data: JsValue| {
        let kind = common::kind_name(kind);
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

/// A core for `wss://127.0.0.1:9/` (the JS layer resolves and checks URLs and subprotocols;
/// the rules are tested with it: tests/consumers/rules.test.mjs and the browser API suite).
fn core(protocols: &[&str]) -> Core {
    let list: Array = protocols.iter().map(|p| JsValue::from_str(p)).collect();
    Core::new(
        "wss://127.0.0.1:9/".into(),
        "https://127.0.0.1:9/".into(),
        "wss://127.0.0.1:9".into(),
        list,
        "auto".into(),
        true,
        Array::new(),
        recorder().0,
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

#[wasm_bindgen_test]
fn close_while_connecting_moves_to_closing() {
    let c = core(&["chat"]);
    assert_eq!(c.ready_state(), 0);
    c.close(None, "");
    assert_eq!(c.ready_state(), 2);
}

#[wasm_bindgen_test]
async fn unreachable_server_fires_error_then_close_1006() {
    let (emit, log) = recorder();
    // Port 9 (discard) on loopback: nothing listens, the open fetch fails.
    let c = Core::new(
        "wss://127.0.0.1:9/ws".into(),
        "https://127.0.0.1:9/ws".into(),
        "wss://127.0.0.1:9".into(),
        Array::new(),
        "auto".into(),
        true,
        Array::new(),
        emit,
        false,
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
    let _ = c.send_text("abc");
    assert_eq!(c.buffered_amount(), 3.0);
}
