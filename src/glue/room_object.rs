//! The `Room` Durable Object: one per room name, owning that room's sockets.
//!
//! Sockets are accepted with the hibernation API (`accept_web_socket`), so an idle room is
//! evicted from memory while its clients stay connected, and wakes per event. What must
//! survive that is stored: each socket's identity in its attachment
//! (`room::state::Connection`), the messages and their `seq` in the object's SQLite
//! storage (`room_history`). What an instance keeps in memory is read back from there
//! when it is built: the roster of live sockets (`room_roster`) and the latest `seq`.
//!
//! Sequencing and fan-out happen without an `await` in between: the SQLite API is
//! synchronous, so no other event can interleave and every client sees one total order.
//!
//! This file holds the socket lifecycle (accept, frames, presence); `room_binding` is
//! how the runtime's events reach it. Token lifetimes — the alarm, `expiring`, 4001,
//! `refresh` — are in `room_expiry`; the Worker's internal requests (kick, revocation
//! push) and the registry of active rooms in `room_control`.
//! Only the Worker can reach this object (through the `ROOMS` binding), and it tells the
//! object what it wants by path: `/connect`, `/kick`, `/revoke`, `/stats`.

use std::cell::{Cell, RefCell};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{
    console_error, Env, Method, Request, Response, Result, State, WebSocket, WebSocketPair,
};

use super::handoff::{Handoff, HANDOFF_HEADER};
use super::room_control::{CONNECT_PATH, KICK_PATH, REVOKE_PATH, STATS_PATH};
use super::room_history::MESSAGE_TABLE;
use super::room_roster::{read_attachment, write_attachment, Roster};
use super::{now_millis, now_secs, string_binding};
use crate::auth::secret::random_id;
use crate::config::Config;
use crate::error::ApiError;
use crate::room::expiry::ExpiryPolicy;
use crate::room::protocol::{CloseCode, Member, PING, PONG};
use crate::room::rate::Admission;
use crate::room::state::{self, Connection, Decision, Incoming, Presence};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS room_meta (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    )",
    // The room's own name (a Durable Object does not know the name it was created
    // from), for the registry and for grant checks on refresh.
    "CREATE TABLE IF NOT EXISTS room_name (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL
    )",
    // Revocations pushed to this room, checked on every new socket (`room_control`).
    "CREATE TABLE IF NOT EXISTS revoked (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        until INTEGER NOT NULL,
        PRIMARY KEY (kind, value)
    )",
    MESSAGE_TABLE,
];
/// The object's state; the runtime reaches it through `room_binding::RoomObject`.
pub struct Room {
    pub(super) state: State,
    pub(super) env: Env,
    /// Read from `[vars]` once per instance (an instance lives until eviction); an
    /// unusable value is reported on every event rather than silently defaulted.
    config: std::result::Result<Config, String>,
    /// Registrations in flight (`room_control::activate`). The one thing kept in memory,
    /// on purpose: it describes requests still running in this instance, and an instance
    /// cannot be evicted while one runs.
    pub(super) activating: Cell<u32>,
    /// Random per in-memory instance, reported by the admin stats: it changes when the
    /// runtime evicted the object and built it again (hibernation made observable).
    pub(super) instance: String,
    /// The live sockets and identities (`room_roster`): read from the attachments once
    /// per instance, then kept in step.
    roster: RefCell<Option<Roster>>,
    /// The durable `seq`, once read in this instance. Only this instance writes it.
    pub(super) seq: Cell<Option<u64>>,
    /// The alarm this instance set and that has not fired yet (unix ms), if any: a new
    /// deadline after it needs no storage write, that alarm reschedules (`room_expiry`).
    pub(super) alarm_at: Cell<Option<u64>>,
    /// The room's revocations (`room_control`), once read in this instance.
    pub(super) revoked: RefCell<Option<Vec<crate::auth::revocation::Revocation>>>,
    /// Whether this room announces presence (`PRESENCE_ROOMS`), once its name is known
    /// in this instance.
    presence: Cell<Option<Presence>>,
}

impl Room {
    pub(super) fn new(state: State, env: Env) -> Self {
        let config = Config::from_lookup(|k| string_binding(&env, k)).map_err(|e| e.to_string());
        for statement in SCHEMA {
            if let Err(e) = state.storage().sql().exec(statement, None) {
                console_error!("room schema: {e}");
            }
        }
        // Keep-alive without waking the object: the runtime answers an exact `PING` with
        // `PONG` itself, even while the object is evicted. Set on every construction (the
        // setting is per instance); other spellings of a ping reach `on_frame`.
        match worker::worker_sys::WebSocketRequestResponsePair::new(PING, PONG) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => console_error!("room auto-response: {e:?}"),
        }
        Self {
            state,
            env,
            config,
            activating: Cell::new(0),
            instance: crate::auth::secret::random_id(),
            roster: RefCell::new(None),
            seq: Cell::new(None),
            alarm_at: Cell::new(None),
            revoked: RefCell::new(None),
            presence: Cell::new(None),
        }
    }

    pub(super) async fn fetch(&self, req: Request) -> Response {
        let path = req.path();
        let answer = match (req.method(), path.as_str()) {
            (Method::Get, CONNECT_PATH) => self.accept(&req).await,
            (Method::Post, KICK_PATH) => self.on_kick(req).await,
            (Method::Post, REVOKE_PATH) => self.on_revoke(req).await,
            (Method::Get, STATS_PATH) => self.on_stats(),
            _ => Err(ApiError::NotFound(format!("no room route {path}"))),
        };
        answer.unwrap_or_else(ApiError::into_response)
    }

    pub(super) fn config(&self) -> std::result::Result<&Config, ApiError> {
        self.config
            .as_ref()
            .map_err(|e| ApiError::Misconfigured(e.clone()))
    }

    pub(super) fn expiry_policy(&self) -> std::result::Result<ExpiryPolicy, ApiError> {
        let config = self.config()?;
        Ok(ExpiryPolicy {
            leeway_secs: config.tokens.leeway_secs,
            warning_secs: config.room.expiry_warning_secs,
        })
    }

    /// Accepts the socket the gate vouched for: attachment, `welcome`, the replay when
    /// it resumes (`since`), `join`, alarm.
    async fn accept(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        let handoff = req
            .headers()
            .get(HANDOFF_HEADER)?
            .as_deref()
            .and_then(Handoff::decode)
            .ok_or_else(|| ApiError::BadRequest("rooms are entered through /ws/{room}".into()))?;
        self.config()?;
        let identity = &handoff.identity;
        // The live sockets, from the roster; read again only when the activation below
        // awaited (others may have come and gone meanwhile).
        let mut others = self.live();
        if others.sockets.is_empty() {
            self.activate(&handoff.room, identity).await?;
            others = self.live();
        }

        // From here to the response nothing is awaited: no other event can come between
        // the revocation check, the member list and the welcome.
        if self.locally_revoked(identity, now_secs())? {
            return Err(ApiError::InvalidToken("token has been revoked".into()));
        }
        // Before any socket exists: a full room answers 503 and opens nothing.
        let limits = &self.config()?.room;
        if state::is_full(others.sockets.len(), limits) {
            return Err(ApiError::RoomFull(limits.max_connections));
        }
        let pair = WebSocketPair::new()?;
        let conn = Connection {
            conn_id: random_id(),
            joined: state::next_joined(&others.connections),
            user: Member {
                id: identity.sub.clone(),
                name: identity.name.clone(),
            },
            exp: identity.exp,
            jti: identity.jti.clone(),
            departed: false,
            warned: false,
            rate: None,
        };
        self.state.accept_web_socket(&pair.server);
        write_attachment(&pair.server, &conn)?;
        self.with_roster(|r| r.insert(pair.server.clone(), conn.clone()));

        let last_seq = self.last_seq()?;
        let presence = self.presence(Some(&handoff.room));
        let joined = state::join(
            &handoff.room,
            &conn,
            &others.connections,
            last_seq,
            presence,
        );
        pair.server.send_with_str(&joined.welcome)?;
        if let Some(since) = handoff.since {
            self.replay(&pair.server, since, last_seq)?;
        }
        if let Some(frame) = joined.announce {
            broadcast(&others.sockets, &frame);
        }
        let mut everyone = others.connections;
        everyone.push(conn);

        let mut response = Response::from_websocket(pair.client)?;
        if let Some(protocol) = handoff.protocol {
            response
                .headers_mut()
                .set("sec-websocket-protocol", &protocol)?;
        }
        // The new socket may be the one that expires first. The socket is accepted by
        // now, so a failure here must not turn into an error response (the client would
        // never get the socket the room now lists): log it; the next event reschedules.
        if let Err(e) = self.schedule(&everyone).await {
            console_error!("room alarm: {e:?}");
        }
        Ok(response)
    }

    /// One client frame, handled without waiting for anything; `Some(token)`: a
    /// `refresh` frame, whose verification the caller awaits (`room_expiry`).
    pub(super) fn on_message(&self, ws: &WebSocket, frame: Incoming) -> Result<Option<String>> {
        let config = self
            .config()
            .map_err(|e| worker::Error::RustError(format!("{e:?}")))?;
        let limits = config.room;
        // The rate limit comes first, so a flood costs no parsing. A passing frame
        // updates the bucket in memory; a refused one also writes it to the attachment,
        // so a flooder's state survives hibernation (`room_roster`).
        let now = now_millis();
        let Some((sender, admission)) = self.with_roster(|r| r.admit(ws, &limits.rate, now))?
        else {
            // Not live: a frame that raced this socket's departure is dropped.
            return match read_attachment(ws) {
                Some(c) if c.departed => Ok(None),
                _ => Err(worker::Error::RustError("socket has no identity".into())),
            };
        };
        match admission {
            Admission::Pass => {}
            Admission::Limited => return ws.send_with_str(state::rate_limited()).map(|()| None),
            Admission::Close => {
                self.close(ws, CloseCode::PolicyViolation);
                return Ok(None);
            }
        }
        match state::on_frame(frame, &limits) {
            Decision::Publish(data) => {
                let seq = self.last_seq()? + 1;
                let frame = state::message(seq, &sender, &data, now_millis());
                self.store_message(seq, &frame, config.history_limit)?;
                self.seq.set(Some(seq));
                // Every live socket, from memory: per-recipient work on the hot path
                // stays one send. A socket that is closing just fails its send.
                self.with_roster(|r| broadcast(r.sockets(), &frame));
            }
            Decision::Reply(frame) => ws.send_with_str(&frame)?,
            Decision::History(page) => ws.send_with_str(self.history_page(page)?)?,
            Decision::Close(code) => self.close(ws, code),
            Decision::Refresh(token) => return Ok(Some(token)),
        }
        Ok(None)
    }

    /// Runs `f` on the roster, reading it from the attachments first if this instance
    /// has not yet.
    pub(super) fn with_roster<R>(&self, f: impl FnOnce(&mut Roster) -> R) -> R {
        let mut roster = self.roster.borrow_mut();
        let roster = roster.get_or_insert_with(|| Roster::load(self.state.get_websockets()));
        f(roster)
    }

    /// Every live socket with its identity. Sockets already departed (closing) are left
    /// out.
    pub(super) fn live(&self) -> Live {
        self.with_roster(|r| r.live())
    }

    /// The identity of `ws` if it is live.
    pub(super) fn identity(&self, ws: &WebSocket) -> Option<Connection> {
        self.with_roster(|r| r.get(ws))
    }

    /// Closes a socket from our side, announcing its departure first.
    pub(super) fn close(&self, ws: &WebSocket, code: CloseCode) {
        self.depart(ws, Gone::Closing);
        let _ = ws.close(Some(code.code()), Some(code.reason()));
    }

    /// Takes the socket off the roster and, if it was its user's last connection, tells
    /// the rest of the room. Idempotent: the second call for a socket does nothing.
    pub(super) fn depart(&self, ws: &WebSocket, gone: Gone) {
        let Some(mut conn) = self.with_roster(|r| r.remove(ws)) else {
            return;
        };
        if gone == Gone::Closing {
            // The runtime keeps listing the socket until the client answers the close,
            // also after a hibernation: the attachment says it is no member.
            conn.departed = true;
            if let Err(e) = write_attachment(ws, &conn) {
                console_error!("room depart: {e}");
            }
        }
        let presence = self.presence(None);
        if presence == Presence::Silent {
            // Nothing to announce: the remaining sockets need not even be listed.
            return;
        }
        let remaining = self.live();
        if let Some(frame) = state::leave(&conn, &remaining.connections, presence) {
            broadcast(&remaining.sockets, &frame);
        }
    }

    /// Whether this room announces presence: from `room` (its name, known on a connect)
    /// or the name it stored when it was first entered. A room that cannot tell (no name
    /// stored, configuration unusable) announces, as every room does by default.
    fn presence(&self, room: Option<&str>) -> Presence {
        if let Some(known) = self.presence.get() {
            return known;
        }
        let Ok(config) = self.config() else {
            return Presence::Announced;
        };
        let Some(name) = room.map(str::to_owned).or_else(|| self.name()) else {
            return Presence::Announced;
        };
        let presence = if config.presence_in(&name) {
            Presence::Announced
        } else {
            Presence::Silent
        };
        self.presence.set(Some(presence));
        presence
    }
}

/// How a departing socket leaves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Gone {
    /// We are closing it: it stays listed by the runtime until the client answers.
    Closing,
    /// Its close (or error) event arrived and it has been closed: the runtime no longer
    /// lists it, so there is nothing to mark in its attachment.
    Closed,
}

/// The room's live sockets and their identities, index-aligned.
#[derive(Default)]
pub(super) struct Live {
    pub(super) sockets: Vec<WebSocket>,
    pub(super) connections: Vec<Connection>,
}

/// Sends one rendered frame to many sockets. A failed send (a socket closing under us)
/// affects only that socket; its close event will follow.
///
/// The frame crosses from wasm to JavaScript once: it becomes one JS string, and every
/// socket is handed that same string. (`send_with_str` copies and UTF-8-decodes its
/// argument on every call, which made fan-out cost one decode per recipient.)
fn broadcast<'a>(sockets: impl IntoIterator<Item = &'a WebSocket>, frame: &str) {
    let frame = JsValue::from_str(frame);
    for ws in sockets {
        let socket: &SendAny = ws.as_ref().unchecked_ref();
        let _ = socket.send(&frame);
    }
}

#[wasm_bindgen]
extern "C" {
    /// The runtime's `WebSocket`, seen through `send(data)` with any JS value: web-sys
    /// only offers typed variants, of which the string one takes a Rust `&str`.
    #[wasm_bindgen(extends = worker::js_sys::Object)]
    type SendAny;

    #[wasm_bindgen(method, catch, js_name = send)]
    fn send(this: &SendAny, data: &JsValue) -> std::result::Result<(), JsValue>;
}
