//! The Worker's requests to a room: a socket to accept, or a call ([`RoomCall`]): kick a
//! user, push a revocation, report the room's figures, and the server API's publish,
//! members and history.

use serde_json::value::RawValue;
use worker::{Method, Request, Response};

use super::instance::RoomInstance;
use super::roster::Live;
use crate::auth::grants;
use crate::protocol::close::CloseCode;
use crate::protocol::frames::Member;
use crate::protocol::identity::Capability;
use crate::protocol::internal::{
    Closed, MemberConnections, Published, RoomCall, RoomMembers, RoomStats, CONNECT_PATH,
    IDEMPOTENCY_WINDOW_MS,
};
use crate::room::{history, state};
use crate::runtime::env::{now_millis, now_secs};
use crate::runtime::error::ApiError;
use crate::runtime::http::json;
use crate::runtime::object::read_call;

impl RoomInstance {
    /// Answers one internal request; every error becomes the API's JSON error response.
    pub(super) async fn fetch(&self, mut req: Request) -> Response {
        let answer = match (req.method(), req.path().as_str()) {
            (Method::Get, CONNECT_PATH) => self.accept(&req).await,
            _ => match read_call::<RoomCall>(&mut req).await {
                Ok(call) => self.on_call(call).await,
                Err(e) => Err(e),
            },
        };
        answer.unwrap_or_else(ApiError::into_response)
    }

    /// Closes the sockets at `positions` of `live` with `code`.
    fn close_all(&self, live: &Live, positions: &[usize], code: CloseCode) -> Closed {
        for &i in positions {
            self.close(&live.sockets[i], code);
        }
        Closed {
            closed: positions.len(),
        }
    }

    async fn on_call(&self, call: RoomCall) -> Result<Response, ApiError> {
        match call {
            RoomCall::Kick { user_id } => {
                let live = self.live();
                let closed = self.close_all(
                    &live,
                    &state::kicked(&live.connections, &user_id),
                    CloseCode::Kicked,
                );
                self.emptied().await;
                json(200, &closed)
            }
            RoomCall::Revoke { room, revocation } => {
                let now = now_secs();
                self.tables.set_name(&room)?;
                self.remember_revocation(&revocation, now)?;
                let live = self.live();
                let revoked = state::revoked(&live.connections, &revocation, now);
                let closed = self.close_all(&live, &revoked, CloseCode::Revoked);
                self.deactivate_if_empty().await;
                json(200, &closed)
            }
            RoomCall::Regrant {
                room,
                user_id,
                rooms,
                revocation,
            } => {
                let now = now_secs();
                self.tables.set_name(&room)?;
                self.remember_revocation(&revocation, now)?;
                let open = self.config()?.rooms_open_by_default;
                let rights = grants::rights(rooms.as_ref(), &room, open);
                let live = self.live();
                let theirs = state::kicked(&live.connections, &user_id);
                let closed = if rights.has(Capability::Subscribe) {
                    for &i in &theirs {
                        self.apply_rights(&live.sockets[i], rights)?;
                    }
                    Closed { closed: 0 }
                } else {
                    self.close_all(&live, &theirs, CloseCode::Forbidden)
                };
                self.deactivate_if_empty().await;
                json(200, &closed)
            }
            RoomCall::Stats => {
                let live = self.live();
                let (webhook_backlog, webhook_dropped) = self.tables.webhook_figures()?;
                json(
                    200,
                    &RoomStats {
                        connections: live.sockets.len(),
                        runtime_sockets: self.state.get_websockets().len(),
                        members: state::members(&live.connections).len(),
                        viewers: state::viewers(&live.connections),
                        last_seq: self.stored_seq()?,
                        history_kept: self.tables.kept()?,
                        instance: self.instance_id.clone(),
                        webhook_backlog,
                        webhook_dropped,
                    },
                )
            }
            RoomCall::Publish {
                room,
                from,
                data,
                idempotency_key,
            } => json(200, &self.publish(&room, &from, data, idempotency_key)?),
            RoomCall::Members => {
                let live = self.live();
                let members = state::member_connections(&live.connections)
                    .into_iter()
                    .map(|(m, connections)| MemberConnections {
                        id: m.id,
                        name: m.name,
                        connections,
                    })
                    .collect();
                json(
                    200,
                    &RoomMembers {
                        connections: live.sockets.len(),
                        viewers: state::viewers(&live.connections),
                        members,
                    },
                )
            }
            RoomCall::History { before, limit } => {
                let page = history::page(before, limit).map_err(ApiError::BadRequest)?;
                let frame = RawValue::from_string(self.history_page(page)?)
                    .map_err(|e| ApiError::Internal(format!("history frame: {e}")))?;
                json(200, &frame)
            }
        }
    }

    /// A server publish: sequenced like a client's, and flushed at once with whatever
    /// waits, with nothing awaited in between, so it takes its place in the one total
    /// order. A repeated
    /// `idempotency_key` answers the first publish's `seq` and publishes nothing.
    fn publish(
        &self,
        room: &str,
        from: &Member,
        data: String,
        idempotency_key: Option<String>,
    ) -> Result<Published, ApiError> {
        if self.tables.name().as_deref() != Some(room) {
            self.tables.set_name(room)?;
        }
        let now = now_millis();
        let window_start = now.saturating_sub(IDEMPOTENCY_WINDOW_MS);
        if let Some(key) = &idempotency_key {
            if let Some((seq, ts)) = self.tables.idempotent(key, window_start)? {
                return Ok(Published {
                    seq,
                    ts,
                    duplicate: true,
                });
            }
        }
        let data = RawValue::from_string(data)
            .map_err(|e| ApiError::BadRequest(format!("data is not JSON: {e}")))?;
        let message = self.gather_message(from, &data, None)?;
        if let Some(key) = &idempotency_key {
            self.tables
                .remember_idempotent(key, message.seq, message.ts, window_start)?;
        }
        // With whatever else waits: the answer names a `seq` stored and sent.
        self.send_now();
        Ok(Published {
            seq: message.seq,
            ts: message.ts,
            duplicate: false,
        })
    }
}
