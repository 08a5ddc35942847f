//! The room's sockets: a socket arrives ([`RoomInstance::accept`]), sends a frame
//! ([`RoomInstance::on_message`]), and leaves ([`RoomInstance::depart`]).
//!
//! Sockets are accepted with the hibernation API (`accept_web_socket`), so an idle room
//! is evicted from memory while its clients stay connected, and wakes per event. The
//! room core (`room::state`) decides what each event means; this carries it out.
//! Sequencing and fan-out happen without an `await` in between: the SQLite API is
//! synchronous, so no other event can interleave and every client sees one total order.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{console_error, Request, Response, WebSocket, WebSocketPair};

use super::instance::RoomInstance;
use super::roster::{read_attachment, write_attachment};
use crate::auth::secret::random_id;
use crate::authn::REVOKED;
use crate::protocol::close::CloseCode;
use crate::protocol::frames::Member;
use crate::protocol::identity::{Capability, Rights};
use crate::protocol::internal::{Handoff, HANDOFF_HEADER};
use crate::room::history;
use crate::room::rate::Admission;
use crate::room::state::{self, Connection, Decision, Incoming, Presence};
use crate::room::webhooks::Kind;
use crate::runtime::env::{now_millis, now_secs};
use crate::runtime::error::ApiError;

/// What a frame still waits for once [`RoomInstance::on_message`] has returned.
pub(super) enum Pending {
    /// Nothing: the frame is handled.
    Nothing,
    /// A `refresh` frame: its token must be verified (`super::expiry`), which waits for
    /// WebCrypto and D1.
    Refresh(String),
}

/// How a departing socket leaves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Gone {
    /// The room is closing it: it stays listed by the runtime until the client answers.
    Closing,
    /// Its close (or error) event arrived and it has been closed: the runtime no longer
    /// lists it, so there is nothing to mark in its attachment.
    Closed,
}

impl RoomInstance {
    /// Accepts the socket the gate vouched for: attachment, `welcome`, the replay when
    /// it resumes (`since`), `join`, alarm.
    pub(super) async fn accept(&self, req: &Request) -> Result<Response, ApiError> {
        let handoff = req
            .headers()
            .get(HANDOFF_HEADER)?
            .as_deref()
            .and_then(Handoff::decode)
            .ok_or_else(|| ApiError::BadRequest("rooms are entered through /ws/{room}".into()))?;
        let config = self.config()?;
        let identity = &handoff.identity;
        // No socket without a registry entry: a room not listed registers first (and
        // waits for D1; others may come and go meanwhile, so the live sockets are read
        // after it).
        self.activate(&handoff.room, identity).await?;
        let others = self.live();

        // From here to the response nothing is awaited: no other event can come between
        // the revocation check, the member list and the welcome.
        if self.locally_revoked(identity, now_secs())? {
            return Err(ApiError::InvalidToken(REVOKED.into()));
        }
        // Before any socket exists: a full room answers 503, and a user with as many
        // sockets as one may hold 429; either opens nothing.
        let limits = &config.room;
        if state::is_full(others.sockets.len(), limits) {
            return Err(ApiError::RoomFull(limits.max_connections));
        }
        let own = self.with_roster(|r| r.sockets_of(&identity.sub));
        if state::is_full_for_user(own, limits) {
            return Err(ApiError::TooManyConnections(
                limits.max_connections_per_user,
            ));
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
            iat: identity.iat,
            jti: identity.jti.clone(),
            departed: false,
            warned: false,
            rate: None,
            rights: handoff.rights,
        };
        self.state.accept_web_socket(&pair.server);
        write_attachment(&pair.server, &conn)?;
        self.with_roster(|r| r.insert(pair.server.clone(), conn.clone()));
        if others.connections.is_empty() {
            self.report(Kind::Occupied, Some(&handoff.room), None, None);
        }
        if state::first_visible(&conn, &others.connections) {
            self.report(Kind::Joined, Some(&handoff.room), Some(&conn.user), None);
        }

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
            broadcast(others.presence_sockets(), &frame);
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

    /// One client frame, handled without waiting for anything.
    pub(super) fn on_message(&self, ws: &WebSocket, frame: Incoming) -> worker::Result<Pending> {
        let config = self
            .config()
            .map_err(|e| worker::Error::RustError(format!("{e:?}")))?;
        let limits = config.room;
        // The rate limit comes first, so a flood costs no parsing. A passing frame
        // updates the bucket in memory; a refused one also writes it to the attachment,
        // so a flooder's state survives hibernation (`super::roster`).
        let now = now_millis();
        let Some((sender, rights, admission)) =
            self.with_roster(|r| r.admit(ws, &limits.rate, now))?
        else {
            // Not live: a frame that raced this socket's departure is dropped.
            return match read_attachment(ws) {
                Some(c) if c.departed => Ok(Pending::Nothing),
                _ => Err(worker::Error::RustError("socket has no identity".into())),
            };
        };
        match admission {
            Admission::Pass => {}
            Admission::Limited => {
                ws.send_with_str(state::rate_limited())?;
                return Ok(Pending::Nothing);
            }
            Admission::Close => {
                self.close(ws, CloseCode::PolicyViolation);
                return Ok(Pending::Nothing);
            }
        }
        match state::permitted(state::on_frame(frame, &limits), rights) {
            Decision::Publish(data) => {
                let frame = self.sequence(&sender, &data, config.history_limit)?.frame;
                // Every live socket, from memory: per-recipient work on the hot path
                // stays one send. A socket that is closing just fails its send.
                self.with_roster(|r| broadcast(r.sockets(), &frame));
                self.report(Kind::Published, None, None, Some(&frame));
            }
            Decision::Reply(frame) => ws.send_with_str(&frame)?,
            Decision::History(page) => {
                let answer = self.history_page(page)?;
                ws.send_with_str(&answer)?;
                // What the answer returned costs like publishing it would.
                let extra = history::extra_tokens(answer.len(), limits.max_frame_bytes);
                self.with_roster(|r| r.charge(ws, &limits.rate, now, extra));
            }
            Decision::Close(code) => self.close(ws, code),
            Decision::Refresh(token) => return Ok(Pending::Refresh(token)),
        }
        Ok(Pending::Nothing)
    }

    /// Gives the live socket `ws` the rights its token now has in this room
    /// (`room::state::changed_rights`); one that stops being visible leaves the others'
    /// member lists at once.
    pub(super) fn apply_rights(&self, ws: &WebSocket, new: Rights) -> worker::Result<()> {
        let Some(old) = self.identity(ws) else {
            return Ok(());
        };
        let rights = state::changed_rights(old.rights, new);
        if rights == old.rights {
            return Ok(());
        }
        let conn = Connection {
            rights,
            ..old.clone()
        };
        self.with_roster(|r| r.update(ws, conn))?;
        if old.present() && !rights.has(Capability::Presence) {
            let presence = self.presence(None);
            let remaining = self.live();
            if let Some(frame) = state::leave(&old, &remaining.connections, presence) {
                broadcast(remaining.presence_sockets(), &frame);
            }
            if state::first_visible(&old, &remaining.connections) {
                self.report(Kind::Left, None, Some(&old.user), None);
            }
        }
        Ok(())
    }

    /// Closes a socket from the room's side, announcing its departure first.
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
        let webhooks = self.webhooks_on();
        if presence == Presence::Silent && !webhooks {
            // Nothing to announce: the remaining sockets need not even be listed.
            return;
        }
        let remaining = self.live();
        if let Some(frame) = state::leave(&conn, &remaining.connections, presence) {
            broadcast(remaining.presence_sockets(), &frame);
        }
        // The user's last visible socket, the room's last socket.
        if webhooks && state::first_visible(&conn, &remaining.connections) {
            self.report(Kind::Left, None, Some(&conn.user), None);
        }
        if webhooks && remaining.connections.is_empty() {
            self.report(Kind::Vacated, None, None, None);
        }
    }
}

/// Sends one rendered frame to many sockets. A failed send (a socket closing under the
/// room) affects only that socket; its close event will follow.
///
/// The frame crosses from wasm to JavaScript once: it becomes one JS string, and every
/// socket is handed that same string (`send_with_str` would copy and UTF-8-decode its
/// argument once per recipient).
pub(super) fn broadcast<'a>(sockets: impl IntoIterator<Item = &'a WebSocket>, frame: &str) {
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
