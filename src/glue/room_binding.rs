//! How the runtime calls the `Room` Durable Object: the class it instantiates
//! (`class_name = "Room"` in wrangler.toml) and its event handlers, which hand each event
//! to `room_object::Room`.
//!
//! Written by hand rather than with worker-rs's `#[durable_object]`. The macro makes
//! every handler an `async` export, so every frame paid for a Rust future, a JS promise
//! and a microtask-queue round trip before any room code ran (about 14 % of the CPU per
//! delivery in a 10-client room at 800 msg/s; README, Performance). Here a handler is
//! synchronous and returns `undefined` when its work is done. Only the paths that must
//! wait return a promise, which the runtime awaits just the same: a `refresh` frame
//! (token verification), the last socket leaving (an alarm write), and an internal
//! request that had to wait (`fetch`, through `run_to_first_wait`). The state lives
//! behind an `Rc` so such a promise can own it.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use worker::js_sys::Promise;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::worker_sys::{web_sys, DurableObjectState};
use worker::{console_error, Env, Request, State, WebSocket};

use super::http::without_cf;
use super::room_object::{Gone, Room};
use super::run_to_first_wait;
use crate::room::protocol::CloseCode;
use crate::room::state::Incoming;

/// The `Room` class, as the runtime sees it.
#[wasm_bindgen(js_name = Room)]
pub struct RoomObject {
    room: Rc<Room>,
}

#[wasm_bindgen(js_class = Room)]
impl RoomObject {
    #[wasm_bindgen(constructor)]
    pub fn new(state: DurableObjectState, env: Env) -> RoomObject {
        RoomObject {
            room: Rc::new(Room::new(State::from(state), env)),
        }
    }

    /// The Worker's internal requests; a socket is accepted without a promise unless
    /// the room had to wait (its first socket registers it; an earlier alarm is written).
    pub fn fetch(&self, req: web_sys::Request) -> JsValue {
        let room = Rc::clone(&self.room);
        run_to_first_wait(async move {
            let response = room.fetch(Request::from(without_cf(req))).await;
            web_sys::Response::from(response).into()
        })
    }

    pub fn alarm(&self) -> Promise {
        let room = Rc::clone(&self.room);
        future_to_promise(async move {
            room.on_alarm().await;
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
        match self.room.on_message(&ws, frame) {
            Ok(None) => JsValue::UNDEFINED,
            Ok(Some(token)) => {
                let room = Rc::clone(&self.room);
                future_to_promise(async move {
                    if let Err(e) = room.on_refresh(&ws, &token).await {
                        console_error!("room refresh: {e:?}");
                        room.close(&ws, CloseCode::ServerError);
                    }
                    Ok(JsValue::UNDEFINED)
                })
                .into()
            }
            Err(e) => {
                console_error!("room message: {e}");
                self.room.close(&ws, CloseCode::ServerError);
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
        self.room.depart(&ws, Gone::Closed);
        self.after_departure()
    }

    #[wasm_bindgen(js_name = webSocketError)]
    pub fn websocket_error(&self, ws: web_sys::WebSocket, error: JsValue) -> JsValue {
        console_error!("room socket error: {error:?}");
        self.room.depart(&WebSocket::from(ws), Gone::Closed);
        self.after_departure()
    }
}

impl RoomObject {
    /// A socket left: when it was the last, the registry entry gets its grace period
    /// (`Room::emptied`, which awaits an alarm write); otherwise nothing to wait for.
    fn after_departure(&self) -> JsValue {
        if !self.room.may_be_empty() {
            return JsValue::UNDEFINED;
        }
        let room = Rc::clone(&self.room);
        future_to_promise(async move {
            room.emptied().await;
            Ok(JsValue::UNDEFINED)
        })
        .into()
    }
}
