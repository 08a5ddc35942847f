//! `POST /admin/revoke`: refusing a token or a user before their tokens expire.
//!
//! The revocation is stored in D1 (`store::revocations`); from then on the gate, the
//! rooms and a room's in-band refresh refuse it. Then it is pushed to every room with
//! live sockets, which closes the matching ones with 4003 `revoked`.
//!
//! **Live sockets: pushed, not polled.** Rooms don't know about each other, so the
//! handler finds the rooms with live sockets in the registry (`store::rooms`, where each
//! room lists itself while it has sockets) and calls every listed room, in pages of
//! `REVOKE_PAGE_SIZE` handed from request to request (`objects::fanout`). Each closes the matching sockets and keeps the revocation
//! in its own list (`objects::room` registry), so a revocation reaches live sockets in
//! one round trip, and idle rooms stay asleep. The alternative, every non-empty room
//! polling D1 on its alarm every few seconds, needs no registry, but wakes every room
//! with sockets every few seconds for ever (so they never hibernate) and costs a D1 read
//! per room per interval, for an event that is rare. Pushing costs one D1 write when a
//! room fills and one when it has stayed empty for `REGISTRY_GRACE_SECONDS`.
//!
//! If a room cannot be reached, the revoke answers 500 after storing the revocation (no
//! new socket or refresh gets through); revoking again is harmless and retries the push.

use serde::Serialize;
use worker::{Env, Request, Response};

use crate::auth::revocation::RevokeRequest;
use crate::config::Config;
use crate::objects::fanout::client as fanout;
use crate::protocol::identity::Revocation;
use crate::protocol::internal::{Push, Reach};
use crate::runtime::env::{config, now_secs};
use crate::runtime::error::ApiError;
use crate::runtime::http::{json, read_json};
use crate::store::revocations;

const MAX_REVOKE_BODY: usize = 4 * 1024;

/// How long a token of ours, or a trusted issuer's, can live: what a revocation must
/// last to outlive every token it refuses.
pub fn token_lifetime(config: &Config) -> u64 {
    config
        .tokens
        .max_lifetime_secs
        .saturating_add(config.tokens.leeway_secs)
}

/// Stores `revocation` and delivers `push` (which carries it) to every room with live
/// sockets: from then on no new socket or refresh gets through, and the rooms close what
/// the push says. 500 after storing when a room could not be reached (pushing again is
/// harmless).
pub async fn apply(
    env: &Env,
    config: &Config,
    revocation: &Revocation,
    push: Push,
    now: u64,
) -> Result<Reach, ApiError> {
    revocations::store(env, revocation, now).await?;
    let reach = fanout::reach(env, &push, config.revoke_page_size).await;
    if !reach.failed.is_empty() {
        return Err(ApiError::Internal(format!(
            "revocation stored, but {} room(s) or range(s) were not reached ({} were): {}",
            reach.failed.len(),
            reach.rooms,
            reach.failed.join("; ")
        )));
    }
    Ok(reach)
}

/// `POST /admin/revoke`: `{"jti": ...}` or `{"sub": ..., "until": <unix s>}`.
pub async fn handle(mut req: Request, env: &Env) -> Result<Response, ApiError> {
    let config = config(env)?;
    let body: RevokeRequest = read_json(&mut req, MAX_REVOKE_BODY).await?;
    let now = now_secs();
    let revocation = body
        .into_revocation(now, token_lifetime(&config))
        .map_err(ApiError::BadRequest)?;
    let reach = apply(
        env,
        &config,
        &revocation,
        Push::Revoke(revocation.clone()),
        now,
    )
    .await?;

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
            rooms: reach.rooms,
            closed: reach.closed,
        },
    )
}
