//! `POST /admin/revoke`: refusing a token or a user before their tokens expire.
//!
//! The revocation is stored in D1 (`store::revocations`); from then on the gate, the
//! rooms and a room's in-band refresh refuse it. Then it is pushed to every room with
//! live sockets, which closes the matching ones with 4003 `revoked`.
//!
//! **Live sockets: pushed, not polled.** Rooms don't know about each other, so the
//! handler finds the rooms with live sockets in the registry (`store::rooms`, where each
//! room lists itself while it has sockets) and calls every listed room at once
//! (`objects::room::client`). Each closes the matching sockets and keeps the revocation
//! in its own list (`objects::room` registry), so a revocation reaches live sockets in
//! one round trip, and idle rooms stay asleep. The alternative, every non-empty room
//! polling D1 on its alarm every few seconds, needs no registry, but wakes every room
//! with sockets every few seconds for ever (so they never hibernate) and costs a D1 read
//! per room per interval, for an event that is rare. Pushing costs one D1 write when a
//! room fills and one when it has stayed empty for 30 s.
//!
//! If a room cannot be reached, the revoke answers 500 after storing the revocation (no
//! new socket or refresh gets through); revoking again is harmless and retries the push.

use futures_util::future::join_all;
use serde::Serialize;
use worker::{Env, Request, Response};

use crate::auth::revocation::RevokeRequest;
use crate::objects::room::client as room_client;
use crate::protocol::identity::Revocation;
use crate::runtime::env::{config, now_secs};
use crate::runtime::error::ApiError;
use crate::runtime::http::{json, read_json};
use crate::store::{revocations, rooms};

const MAX_REVOKE_BODY: usize = 4 * 1024;

/// `POST /admin/revoke`: `{"jti": ...}` or `{"sub": ..., "until": <unix s>}`.
pub async fn handle(mut req: Request, env: &Env) -> Result<Response, ApiError> {
    let config = config(env)?;
    let body: RevokeRequest = read_json(&mut req, MAX_REVOKE_BODY).await?;
    let now = now_secs();
    // A token of ours, or a trusted issuer's, lives at most this long (plus leeway).
    let default_jti_secs = config
        .tokens
        .max_lifetime_secs
        .saturating_add(config.tokens.leeway_secs);
    let revocation = body
        .into_revocation(now, default_jti_secs)
        .map_err(ApiError::BadRequest)?;
    revocations::store(env, &revocation, now).await?;

    let active = rooms::active_rooms(env).await?;
    let outcomes = join_all(
        active
            .iter()
            .map(|room| room_client::push_revocation(env, room, &revocation)),
    )
    .await;
    let mut closed = 0;
    let mut failed = Vec::new();
    for (room, outcome) in active.iter().zip(outcomes) {
        match outcome {
            Ok(n) => closed += n,
            Err(e) => failed.push(format!("{room}: {e:?}")),
        }
    }
    if !failed.is_empty() {
        return Err(ApiError::Internal(format!(
            "revocation stored, but {} of {} rooms were not reached: {}",
            failed.len(),
            active.len(),
            failed.join("; ")
        )));
    }

    #[derive(Serialize)]
    struct Revoked<'a> {
        revoked: &'a Revocation,
        rooms: usize,
        closed: usize,
    }
    json(
        200,
        &Revoked {
            revoked: &revocation,
            rooms: active.len(),
            closed,
        },
    )
}
