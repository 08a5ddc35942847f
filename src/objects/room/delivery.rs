//! What the room sends to many sockets: messages and presence changes are gathered in
//! the instance's outbox and flushed together (`room::flush` decides when, and renders
//! what each socket gets); frames for one socket go out at once, in its protocol.
//!
//! A flush stores its messages first, in one statement, and only then sends anything:
//! the storage's output gate holds every send until the write is durable, so nobody,
//! the sender included, sees a message that could be lost. It then renders each frame
//! once: one array per v2 socket (the same JS string for all but those that arrived
//! meanwhile or sent a `ref`), and each frame once to every v1 socket.
//!
//! The window's timer is a `setTimeout` of `FLUSH_MS`: the runtime keeps an object in
//! memory while one is pending, so a room hibernates at most two windows after its last
//! send (after a window with nothing gathered no timer is set).

use serde_json::value::RawValue;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{console_error, WebSocket};

use super::history::Sequenced;
use super::instance::RoomInstance;
use super::roster::Roster;
use crate::protocol::frames::Member;
use crate::protocol::v2::{self, Version};
use crate::room::flush::{Change, Echo, Fired, Flush, Go, Item, Outgoing};
use crate::room::state::{self, Presence};
use crate::room::webhooks::Kind;
use crate::runtime::env::now_millis;

impl RoomInstance {
    /// Gives `data` from `sender` the room's next `seq` and gathers its `message` for the
    /// next flush; `echo`: the v2 sender's `ref`. Stored and sent by the flush.
    pub(super) fn gather_message(
        &self,
        sender: &Member,
        data: &RawValue,
        echo: Option<Echo>,
    ) -> worker::Result<Sequenced> {
        let seq = self.last_seq()? + 1;
        let ts = now_millis();
        let frame = state::message(seq, sender, data, ts);
        self.seq.set(Some(seq));
        self.outbox
            .borrow_mut()
            .message(Outgoing { seq, frame, echo });
        Ok(Sequenced { seq, ts })
    }

    /// Gathers a presence change: `member` joined (`joined`) or left; `v1_frame` is the
    /// `join` or `leave` v1 sockets get for it.
    pub(super) fn gather_change(&self, member: &Member, joined: bool, v1_frame: String) {
        self.outbox.borrow_mut().change(Change {
            member: member.clone(),
            joined,
            v1_frame,
        });
    }

    /// Socket `conn_id` was just welcomed: its `welcome` reflects every change gathered.
    pub(super) fn gathered_arrival(&self, conn_id: &str) {
        self.outbox.borrow_mut().arrived(conn_id);
    }

    /// After gathering: flushes now if the room is quiet (or does not coalesce), and
    /// then opens a window; while one is open, its timer flushes.
    pub(super) fn send_soon(&self) {
        let window_ms = self.config().map_or(0, |c| c.flush_ms);
        let coalesce = window_ms > 0 && self.with_roster(|r| r.speaks_v2());
        let go = self.window.borrow_mut().on_event(coalesce);
        if go == Go::Now {
            self.flush();
            if coalesce {
                self.open_window(window_ms);
            }
        }
    }

    /// Flushes now, whatever the window: for an answer that must name a `seq` already
    /// stored and sent (the server API's publish).
    pub(super) fn send_now(&self) {
        self.flush();
    }

    fn open_window(&self, window_ms: u64) {
        let generation = self.window.borrow_mut().opened();
        self.time_window(generation, window_ms, window_ms);
    }

    /// Sets the timer of window `generation` to fire after `delay_ms`.
    fn time_window(&self, generation: u64, delay_ms: u64, window_ms: u64) {
        let me = self.me.clone();
        let callback = Closure::once_into_js(move || {
            if let Some(room) = me.upgrade() {
                room.window_ended(generation, window_ms);
            }
        });
        if let Err(e) = set_timeout(callback.unchecked_ref(), delay_ms as f64) {
            console_error!("room flush timer: {e:?}");
            self.window.borrow_mut().close();
        }
    }

    /// The window's timer: flush what was gathered and open the next window, or wait one
    /// more window, or let the room be quiet (`room::flush::Window`).
    fn window_ended(&self, generation: u64, window_ms: u64) {
        let gathered = !self.outbox.borrow().is_empty();
        let fired = self.window.borrow_mut().on_timer(generation, gathered);
        match fired {
            Fired::Flush => {
                self.flush();
                self.open_window(window_ms);
            }
            Fired::Again(next) => self.time_window(next, 0, window_ms),
            Fired::Closed | Fired::Stale => {}
        }
    }

    /// Stores what was gathered, then sends it.
    fn flush(&self) {
        let outbox = std::mem::take(&mut *self.outbox.borrow_mut());
        if outbox.is_empty() {
            return;
        }
        if let Some(first) = outbox.first_seq() {
            let frames: Vec<&str> = outbox.messages().iter().map(|m| m.frame.as_str()).collect();
            let limit = self.config().map_or(0, |c| c.history_limit);
            if let Err(e) = self.tables.store_messages(first, &frames, limit) {
                // Nobody has seen these messages, so their `seq`s are given again.
                console_error!("room flush: {e}");
                self.seq.set(None);
                return;
            }
        }
        let mut flush = Flush::new(outbox);
        let announced = self.presence(None) == Presence::Announced;
        self.with_roster(|r| deliver(r, &mut flush, announced));
        if self.webhooks_on() {
            for message in flush.messages() {
                self.report(Kind::Published, None, None, Some(&message.frame));
            }
        }
    }
}

/// Sends `flush` to every live socket of `roster`.
fn deliver(roster: &Roster, flush: &mut Flush, announced: bool) {
    // The shared arrays, for sockets that see presence and for those that do not.
    let mut shared: [Option<Vec<JsValue>>; 2] = [None, None];
    let mut v1: Vec<(&WebSocket, usize, bool)> = Vec::new();
    for (ws, conn) in roster.seats() {
        let sees_presence = announced && conn.present();
        match conn.version {
            Version::V1 => v1.push((ws, flush.known_changes(&conn.conn_id), sees_presence)),
            Version::V2 if flush.is_special(&conn.conn_id) => {
                for array in flush.arrays_for(Some(&conn.conn_id), sees_presence) {
                    send_value(ws, &JsValue::from_str(&array));
                }
            }
            Version::V2 => {
                let arrays = shared[usize::from(sees_presence)].get_or_insert_with(|| {
                    flush
                        .arrays_for(None, sees_presence)
                        .iter()
                        .map(|a| JsValue::from_str(a))
                        .collect()
                });
                for array in arrays.iter() {
                    send_value(ws, array);
                }
            }
        }
    }
    if v1.is_empty() {
        return;
    }
    for &item in flush.order() {
        match item {
            Item::Message(i) => {
                let frame = JsValue::from_str(&flush.messages()[i].frame);
                for (ws, ..) in &v1 {
                    send_value(ws, &frame);
                }
            }
            Item::Change(i) => {
                let frame = JsValue::from_str(&flush.changes()[i].v1_frame);
                // A socket that arrived after this change was welcomed with its result.
                for (ws, known, sees) in &v1 {
                    if *sees && i >= *known {
                        send_value(ws, &frame);
                    }
                }
            }
        }
    }
}

/// Frames for one socket, sent at once in its protocol: each on its own to a v1
/// socket, as few arrays as fit to a v2 one.
pub(super) fn send_frames(ws: &WebSocket, version: Version, frames: &[String]) {
    match version {
        Version::V1 => {
            for frame in frames {
                let _ = ws.send_with_str(frame);
            }
        }
        Version::V2 => {
            for array in v2::arrays(frames.iter().map(String::as_str)) {
                let _ = ws.send_with_str(&array);
            }
        }
    }
}

/// One frame for one socket, at once; `reference`: the `ref` of the v2 frame it
/// answers.
pub(super) fn send_frame(ws: &WebSocket, version: Version, frame: &str, reference: Option<&str>) {
    let _ = match (version, reference) {
        (Version::V1, _) => ws.send_with_str(frame),
        (Version::V2, None) => ws.send_with_str(v2::one(frame)),
        (Version::V2, Some(r)) => ws.send_with_str(v2::one(&v2::with_ref(frame, r))),
    };
}

/// Sends one JS string to a socket. A failed send (a socket closing under the room)
/// affects only that socket; its close event will follow.
///
/// The frame crossed from wasm to JavaScript once, as one JS string that every socket
/// is handed (`send_with_str` would copy and UTF-8-decode its argument per recipient).
fn send_value(ws: &WebSocket, frame: &JsValue) {
    let socket: &SendAny = ws.as_ref().unchecked_ref();
    let _ = socket.send(frame);
}

#[wasm_bindgen]
extern "C" {
    /// The runtime's `WebSocket`, seen through `send(data)` with any JS value: web-sys
    /// only offers typed variants, of which the string one takes a Rust `&str`.
    #[wasm_bindgen(extends = worker::js_sys::Object)]
    type SendAny;

    #[wasm_bindgen(method, catch, js_name = send)]
    fn send(this: &SendAny, data: &JsValue) -> std::result::Result<(), JsValue>;

    #[wasm_bindgen(catch, js_name = setTimeout)]
    fn set_timeout(
        handler: &worker::js_sys::Function,
        ms: f64,
    ) -> std::result::Result<JsValue, JsValue>;
}
