//! `stream` upstream (DESIGN §2.2): one `POST` whose body is a `ReadableStream` fed through a
//! `TransformStream` writer (§2.4: the tightest tails of the feeding options measured).

use std::rc::{Rc, Weak};

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortSignal, Headers, Response, TransformStream, WritableStreamDefaultWriter};

use crate::session::Session;
use crate::socket::Transmit;
use crate::web;

pub struct StreamUpstream {
    writer: WritableStreamDefaultWriter,
    session: Weak<Session>,
}

impl StreamUpstream {
    /// Starts the upstream request; it stays open until [`StreamUpstream::finish`].
    pub fn start(
        session: &Rc<Session>,
        url: &str,
        headers: &Headers,
        signal: &AbortSignal,
    ) -> Result<StreamUpstream, JsValue> {
        let pipe = TransformStream::new()?;
        let writer = pipe.writable().get_writer()?;
        // A streamed body is always POST.
        let request = web::request("POST", url, headers, Some(&pipe.readable()), true, signal)?;
        let response = web::fetch(&request);
        let weak = Rc::downgrade(session);
        spawn_local(async move {
            // Settles after the body ended (close) or on a transport error.
            let ok = match JsFuture::from(response).await {
                Ok(response) => Response::from(response).ok(),
                Err(_) => false,
            };
            if !ok {
                if let Some(session) = weak.upgrade() {
                    session.transport_failed();
                }
            }
        });
        Ok(StreamUpstream {
            writer,
            session: Rc::downgrade(session),
        })
    }

    pub fn send(&self, transmit: Transmit) -> Promise {
        let chunk = Uint8Array::from(&transmit.bytes[..]);
        let written = self.writer.write_with_chunk(&chunk);
        let weak = self.session.clone();
        let app_bytes = transmit.app_bytes;
        let taken = written.clone();
        spawn_local(async move {
            let result = JsFuture::from(taken).await;
            if let Some(session) = weak.upgrade() {
                match result {
                    Ok(_) => session.transmitted(app_bytes),
                    Err(_) => session.transport_failed(),
                }
            }
        });
        written
    }

    pub fn finish(&self) {
        // A rejection here means the request already failed; that path reports itself.
        web::settle(self.writer.close());
    }
}
