//! The `Room` Durable Object: one per room name, owning that room's sockets.
//!
//! This file is the class the runtime instantiates (`class_name = "Room"` in
//! wrangler.toml) and its entry points: `fetch`, `alarm` and the socket events. Each
//! hands its event to the behaviour in the other files, all methods of the one
//! in-memory [`instance::RoomInstance`]:
//! - `sockets`: a socket arrives, sends a frame, leaves;
//! - `history`: sequencing, the replay on resume, `history` pages;
//! - `expiry`: the alarm (token expiry, the registry's grace period) and `refresh`;
//! - `registry`: the entry in the registry of active rooms and the room's revocations;
//! - `delivery`: gathering what the room sends and flushing it (`room::flush`), one
//!   array per v2 socket;
//! - `control`: the Worker's requests (a socket to accept, kick, revoke, stats, the
//!   server API's calls);
//! - `webhooks`: the outbox of events for the team's backend, delivered from the alarm;
//! - `tables`: the whole SQLite schema; `roster`: the live sockets in memory.
//!
//! [`client`] is the only way anything else calls this object.
//!
//! The class is written by hand rather than with worker-rs's `#[durable_object]`, whose
//! handlers are all `async` exports: every frame would pay for a Rust future, a JS
//! promise and a microtask-queue round trip before any room code ran. Here a handler is
//! synchronous and returns `undefined` when its work is done. Only the paths that must
//! wait return a promise, which the runtime awaits just the same: a `refresh` frame
//! (token verification), the last socket leaving (an alarm write), and an internal
//! request that had to wait (`fetch`, through `run_to_first_wait`). The instance lives
//! behind an `Rc` so such a promise can own it.

pub mod client;
mod control;
mod delivery;
mod expiry;
mod history;
mod instance;
mod registry;
mod roster;
mod sockets;
mod tables;
mod webhooks;

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use worker::js_sys::Promise;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::worker_sys::{web_sys, DurableObjectState};
use worker::{console_error, Env, Request, State, WebSocket};

use instance::RoomInstance;
use sockets::{Gone, Pending};

use crate::protocol::close::CloseCode;
use crate::room::state::Incoming;
use crate::runtime::executor::run_to_first_wait;
use crate::runtime::http::without_cf;

/// The `Room` class, as the runtime sees it.
#[wasm_bindgen]
pub struct Room {
    instance: Rc<RoomInstance>,
}

#[wasm_bindgen]
impl Room {
    #[wasm_bindgen(constructor)]
    pub fn new(state: DurableObjectState, env: Env) -> Room {
        // The storage's own binding, for setting an alarm without waiting on it.
        let storage = state.storage().ok();
        let state = State::from(state);
        Room {
            instance: Rc::new_cyclic(|me| RoomInstance::new(me.clone(), state, storage, env)),
        }
    }

    /// The Worker's internal requests; a socket is accepted without a promise unless
    /// the room had to wait (its first socket registers it; an earlier alarm is written).
    pub fn fetch(&self, req: web_sys::Request) -> JsValue {
        let instance = Rc::clone(&self.instance);
        run_to_first_wait(async move {
            let response = instance.fetch(Request::from(without_cf(req))).await;
            web_sys::Response::from(response).into()
        })
    }

    pub fn alarm(&self) -> Promise {
        let instance = Rc::clone(&self.instance);
        future_to_promise(async move {
            instance.on_alarm().await;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(js_name = webSocketMessage)]
    pub fn websocket_message(&self, ws: web_sys::WebSocket, message: JsValue) -> JsValue {
        let ws = WebSocket::from(ws);
        let text = message.as_string();
        let frame = match &text {
            Some(text) => Incoming::Text(text),
            // An ArrayBuffer: only its size matters (binary frames are refused).
            None => Incoming::Binary {
                len: worker::js_sys::ArrayBuffer::from(message).byte_length() as usize,
            },
        };
        match self.instance.on_message(&ws, frame) {
            Ok(Pending::Nothing) => JsValue::UNDEFINED,
            Ok(Pending::Refresh { token, reference }) => {
                let instance = Rc::clone(&self.instance);
                future_to_promise(async move {
                    if let Err(e) = instance.on_refresh(&ws, &token, reference).await {
                        console_error!("room refresh: {e:?}");
                        instance.close(&ws, CloseCode::ServerError);
                    }
                    Ok(JsValue::UNDEFINED)
                })
                .into()
            }
            Err(e) => {
                console_error!("room message: {e}");
                self.instance.close(&ws, CloseCode::ServerError);
                JsValue::UNDEFINED
            }
        }
    }

    #[wasm_bindgen(js_name = webSocketClose)]
    pub fn websocket_close(
        &self,
        ws: web_sys::WebSocket,
        code: u16,
        _reason: String,
        _clean: bool,
    ) -> JsValue {
        let ws = WebSocket::from(ws);
        // Answer the client's close frame (1005/1006 are not sendable codes), then
        // announce the departure if nobody has yet.
        let echo = match code {
            1000..=1003 | 1007..=1014 | 3000..=4999 => code,
            _ => 1000,
        };
        let _ = ws.close(Some(echo), Some("closing"));
        self.instance.depart(&ws, Gone::Closed);
        self.after_departure()
    }

    #[wasm_bindgen(js_name = webSocketError)]
    pub fn websocket_error(&self, ws: web_sys::WebSocket, error: JsValue) -> JsValue {
        console_error!("room socket error: {error:?}");
        self.instance.depart(&WebSocket::from(ws), Gone::Closed);
        self.after_departure()
    }
}

impl Room {
    /// A socket left: when it was the last, the registry entry gets its grace period
    /// (`RoomInstance::emptied`, which awaits an alarm write); otherwise nothing to wait
    /// for.
    fn after_departure(&self) -> JsValue {
        if !self.instance.may_be_empty() {
            return JsValue::UNDEFINED;
        }
        let instance = Rc::clone(&self.instance);
        future_to_promise(async move {
            instance.emptied().await;
            Ok(JsValue::UNDEFINED)
        })
        .into()
    }
}
