//! The Worker's requests to a room: a socket to accept, or a call ([`RoomCall`]): kick a
//! user, push a revocation, report the room's figures.

use worker::{Method, Request, Response};

use super::instance::RoomInstance;
use super::roster::Live;
use crate::auth::grants;
use crate::protocol::close::CloseCode;
use crate::protocol::internal::{Closed, RoomCall, RoomStats, CONNECT_PATH};
use crate::room::state;
use crate::runtime::env::now_secs;
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
                let closed = if grants::allows(rooms.as_deref(), &room, open) {
                    Closed { closed: 0 }
                } else {
                    let live = self.live();
                    let theirs = state::kicked(&live.connections, &user_id);
                    self.close_all(&live, &theirs, CloseCode::Forbidden)
                };
                self.deactivate_if_empty().await;
                json(200, &closed)
            }
            RoomCall::Stats => {
                let live = self.live();
                json(
                    200,
                    &RoomStats {
                        connections: live.sockets.len(),
                        runtime_sockets: self.state.get_websockets().len(),
                        members: state::members(&live.connections).len(),
                        last_seq: self.last_seq()?,
                        history_kept: self.tables.kept()?,
                        instance: self.instance_id.clone(),
                    },
                )
            }
        }
    }
}
