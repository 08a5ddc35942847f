//! The room's sockets: a socket arrives ([`RoomInstance::accept`]), sends a frame
//! ([`RoomInstance::on_message`]), and leaves ([`RoomInstance::depart`]).
//!
//! Sockets are accepted with the hibernation API (`accept_web_socket`), so an idle room
//! is evicted from memory while its clients stay connected, and wakes per event. The
//! room core (`room::state`) decides what each event means; this carries it out.
//! Messages and presence changes are gathered for the next flush (`super::delivery`);
//! answers to the sender alone go out at once. Sequencing happens without an `await`,
//! so no other event can interleave and every client sees one total order.

use worker::{console_error, Request, Response, WebSocket, WebSocketPair};

use super::delivery::send_frames;
use super::instance::RoomInstance;
use super::roster::{read_attachment, write_attachment};
use crate::auth::secret::random_id;
use crate::authn::REVOKED;
use crate::protocol::close::CloseCode;
use crate::protocol::frames::{self, Member};
use crate::protocol::identity::{Capability, Rights};
use crate::protocol::internal::{Handoff, HANDOFF_HEADER};
use crate::protocol::v2::{self, Version};
use crate::room::flush::Echo;
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
    /// A `refresh` frame (with its v2 `ref`): its token must be verified
    /// (`super::expiry`), which waits for WebCrypto and D1.
    Refresh {
        token: String,
        reference: Option<String>,
    },
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
            version: Version::of(handoff.protocol.as_deref()),
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

        // Up to the latest stored message: what waits for the flush comes in it.
        let stored_seq = self.stored_seq()?;
        let presence = self.presence(Some(&handoff.room));
        let joined = state::join(
            &handoff.room,
            &conn,
            &others.connections,
            stored_seq,
            presence,
        );
        let mut first = vec![joined.welcome];
        if let Some(since) = handoff.since {
            first.extend(self.replay(since, stored_seq)?);
        }
        send_frames(&pair.server, conn.version, &first);
        if let Some(frame) = joined.announce {
            self.gather_change(&conn.user, true, frame);
        }
        self.gathered_arrival(&conn.conn_id);
        self.send_soon();
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

    /// One client frame, handled without waiting for anything. From a v2 socket it may
    /// be an array of frames, each handled as a frame of its own (one rate-limit token
    /// each); the answers that go to the sender alone go back together.
    pub(super) fn on_message(&self, ws: &WebSocket, frame: Incoming) -> worker::Result<Pending> {
        let config = self
            .config()
            .map_err(|e| worker::Error::RustError(format!("{e:?}")))?;
        let limits = config.room;
        // The rate limit comes first, so a flood costs no parsing. A passing frame
        // updates the bucket in memory; a refused one also writes it to the attachment,
        // so a flooder's state survives hibernation (`super::roster`).
        let now = now_millis();
        let Some((sender, mut admission)) = self.with_roster(|r| r.admit(ws, &limits.rate, now))?
        else {
            // Not live: a frame that raced this socket's departure is dropped.
            return match read_attachment(ws) {
                Some(c) if c.departed => Ok(Pending::Nothing),
                _ => Err(worker::Error::RustError("socket has no identity".into())),
            };
        };
        let v2 = sender.version == Version::V2;
        let items = match admission {
            // Only a dropped frame's `ref` is read.
            Admission::Limited if v2 => match frame {
                Incoming::Text(t) => v2::elements(t)
                    .unwrap_or_else(|_| vec![t])
                    .into_iter()
                    .map(|t| Ok(Incoming::Text(t)))
                    .collect(),
                binary => vec![Ok(binary)],
            },
            _ => match state::split(frame, sender.version, &limits) {
                Ok(items) => items.into_iter().map(Ok).collect(),
                Err(decision) => vec![Err(decision)],
            },
        };
        let mut replies: Vec<String> = Vec::new();
        let mut pending = Pending::Nothing;
        let mut gathered = false;
        let mut closing = None;
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                admission = match self.with_roster(|r| r.admit(ws, &limits.rate, now))? {
                    Some((_, admission)) => admission,
                    None => break,
                };
            }
            match admission {
                Admission::Pass => {}
                Admission::Limited => {
                    let reference = match &item {
                        Ok(Incoming::Text(t)) if v2 => frames::reference_of(t),
                        _ => None,
                    };
                    replies.push(answer(state::rate_limited(), reference.as_deref()));
                    continue;
                }
                Admission::Close => {
                    closing = Some(CloseCode::PolicyViolation);
                    break;
                }
            }
            let (decision, reference) = match item {
                Ok(item) => state::decide(item, sender.version, &limits),
                Err(decision) => (decision, None),
            };
            match state::permitted(decision, sender.rights) {
                Decision::Publish(data) => {
                    let echo = reference.map(|reference| Echo {
                        conn_id: sender.conn_id.clone(),
                        reference,
                    });
                    self.gather_message(&sender.user, &data, echo)?;
                    gathered = true;
                }
                Decision::Reply(frame) => replies.push(answer(frame, reference.as_deref())),
                Decision::History(page) => {
                    let page = self.history_page(page)?;
                    // What the answer returned costs like publishing it would.
                    let extra = history::extra_tokens(page.len(), limits.max_frame_bytes);
                    self.with_roster(|r| r.charge(ws, &limits.rate, now, extra));
                    replies.push(answer(page, reference.as_deref()));
                }
                Decision::Close(code) => {
                    closing = Some(code);
                    break;
                }
                Decision::Refresh(token) => match pending {
                    Pending::Nothing => pending = Pending::Refresh { token, reference },
                    Pending::Refresh { .. } => {
                        let refused = state::bad_frame("one refresh per array of frames");
                        replies.push(answer(refused, reference.as_deref()));
                    }
                },
            }
        }
        send_frames(ws, sender.version, &replies);
        if gathered {
            self.send_soon();
        }
        if let Some(code) = closing {
            self.close(ws, code);
            return Ok(Pending::Nothing);
        }
        Ok(pending)
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
                self.gather_change(&old.user, false, frame);
                self.send_soon();
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
            self.gather_change(&conn.user, false, frame);
            self.send_soon();
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

/// `frame` as the answer to a frame that carried `reference` (v2 only).
fn answer(frame: String, reference: Option<&str>) -> String {
    match reference {
        Some(r) => v2::with_ref(&frame, r),
        None => frame,
    }
}
