//! Revocation: refusing tokens and users before their tokens expire.
//!
//! `POST /admin/revoke` stores a revocation in D1 (`revocations`, migration 0002); from
//! then on the gate ([`ensure_not_revoked`], right after a token verifies), the rooms and
//! a room's in-band refresh refuse it. Rows expire with their `until` and are pruned on
//! every revoke, so the table holds only what still matters.
//!
//! **The gate reads a snapshot.** Each isolate keeps the revocations in force for a
//! second (`auth::revocation::Snapshot`), so an upgrade costs no D1 read (it was the
//! largest cost of an upgrade, bench/README.md). A token revoked within that second may
//! pass the gate; the room refuses it (401, no socket), because a room's own list is
//! complete: it copies every revocation in force when it registers (below) and gets
//! every later one pushed.
//!
//! **Live sockets: pushed, not polled.** Rooms don't know about each other, so the
//! revoke handler needs to find the rooms with live sockets. Each room registers itself
//! in D1 (`active_rooms`, see `room_registry`) when its first socket arrives and removes
//! itself when its last leaves; the handler reads that table and calls every listed room
//! at once through the `ROOMS` binding (`room_control`), and each closes the matching
//! sockets with 4003 `revoked` and remembers the revocation in its own storage. So a
//! revocation reaches live sockets in one round trip, and idle rooms stay asleep.
//!
//! The alternative — every non-empty room polling D1 on its alarm every few seconds —
//! needs no registry, but wakes every room with sockets every few seconds for ever (so
//! they never hibernate) and costs a D1 read per room per interval, for an event that is
//! rare. Pushing costs one D1 write when a room fills and one when it has stayed empty
//! for 30 s.
//!
//! What makes the push complete (no socket slips through while a revoke is in flight):
//! - a room registering itself (empty → first socket) reads every revocation in force in
//!   the same D1 batch, after its registration is written, into its own list: a revoke
//!   stored before that read is in it; one stored after it lists the room and reaches
//!   it. An emptied room stays registered for 30 s (`room_control::REGISTRY_GRACE_MS`),
//!   so a room whose last member reconnects writes nothing to D1;
//! - a room keeps the revocations pushed to it and checks every new socket against
//!   them, so a socket that passed the gate just before the revoke but reaches the room
//!   just after the push is refused there.
//!
//! If a room cannot be reached, the revoke answers 500 after storing the revocation (no
//! new socket or refresh gets through); revoking again is harmless and retries the push.

use futures_util::future::join_all;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result, Env, Request, Response};

use super::http::{json, read_json};
use super::{config, now_millis, now_secs, room_control, room_registry, DB_BINDING};
use crate::auth::revocation::{Revocation, RevokeRequest, Snapshot, Target};
use crate::auth::token::Identity;
use crate::error::ApiError;

const MAX_REVOKE_BODY: usize = 4 * 1024;

/// One row when a token of `sub` (`?2`) with id `jti` (`?3`, may be NULL) is revoked at
/// `?1`. Shared with the room registry's batch.
pub(super) const IS_REVOKED: &str = "SELECT 1 AS hit FROM revocations
    WHERE until > ?1 AND ((kind = 'sub' AND value = ?2) OR (kind = 'jti' AND value = ?3))
    LIMIT 1";

pub(super) fn db(env: &Env) -> Result<D1Database, ApiError> {
    env.d1(DB_BINDING)
        .map_err(|e| ApiError::Misconfigured(format!("D1 binding {DB_BINDING}: {e}")))
}

/// The [`IS_REVOKED`] statement for `identity` at `now`.
pub(super) fn is_revoked_statement(
    db: &D1Database,
    identity: &Identity,
    now: u64,
) -> Result<D1PreparedStatement, ApiError> {
    Ok(db.prepare(IS_REVOKED).bind(&[
        JsValue::from_f64(now as f64),
        identity.sub.as_str().into(),
        identity.jti.as_deref().map_or(JsValue::NULL, JsValue::from),
    ])?)
}

/// Every revocation in force at `?1`, at most [`Snapshot::MAX_ENTRIES`] + 1 of them.
pub(super) const IN_FORCE: &str = "SELECT kind, value, until FROM revocations
    WHERE until > ?1 LIMIT 10001";

/// The [`IN_FORCE`] statement at `now`.
pub(super) fn in_force_statement(
    db: &D1Database,
    now: u64,
) -> Result<D1PreparedStatement, ApiError> {
    Ok(db
        .prepare(IN_FORCE)
        .bind(&[JsValue::from_f64(now as f64)])?)
}

/// [`IN_FORCE`]'s rows as revocations (rows of an unknown kind are skipped).
pub(super) fn in_force_rows(result: &D1Result) -> Result<Vec<Revocation>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        kind: String,
        value: String,
        until: u64,
    }
    Ok(result
        .results::<Row>()?
        .into_iter()
        .filter_map(|r| {
            Target::from_stored(&r.kind, r.value).map(|target| Revocation {
                target,
                until: r.until,
            })
        })
        .collect())
}

thread_local! {
    /// This isolate's [`Snapshot`] of the revocations in force.
    static SNAPSHOT: RefCell<Option<Rc<Snapshot>>> = const { RefCell::new(None) };
    /// Whether a request of this isolate is reading the next snapshot from D1.
    static REFRESHING: Cell<bool> = const { Cell::new(false) };
}

/// Marks a snapshot read in flight until dropped (also when the read fails or the
/// request goes away mid-read).
struct Refreshing;

impl Refreshing {
    fn start() -> Self {
        REFRESHING.set(true);
        Refreshing
    }
}

impl Drop for Refreshing {
    fn drop(&mut self) {
        REFRESHING.set(false);
    }
}

/// The isolate's snapshot, read again from D1 when it is older than
/// [`Snapshot::MAX_AGE_MS`] — by one request at a time: while one reads, the others
/// use the stale one (up to [`Snapshot::MAX_STALE_MS`]; the rooms' own lists refuse
/// whatever it misses).
async fn snapshot(env: &Env, now: u64) -> Result<Rc<Snapshot>, ApiError> {
    let now_ms = now_millis();
    let current = SNAPSHOT.with_borrow(|s| s.clone());
    if let Some(snap) =
        current.filter(|s| s.is_fresh(now_ms) || (REFRESHING.get() && s.may_serve_stale(now_ms)))
    {
        return Ok(snap);
    }
    let _reading = Refreshing::start();
    let result = in_force_statement(&db(env)?, now)?.all().await?;
    let snap = Rc::new(Snapshot::new(in_force_rows(&result)?, now_ms));
    SNAPSHOT.set(Some(snap.clone()));
    Ok(snap)
}

/// Whether `identity`'s token or user is revoked at `now`, asked of D1.
pub async fn is_revoked(env: &Env, identity: &Identity, now: u64) -> Result<bool, ApiError> {
    let hit = is_revoked_statement(&db(env)?, identity, now)?
        .first::<serde_json::Value>(None)
        .await?;
    Ok(hit.is_some())
}

/// The gate's check after a token verifies: 401 `invalid_token` when it is revoked,
/// against the isolate's snapshot (at most a second old: see [`Snapshot`] for why a
/// newer revoke is still refused, by the room).
pub async fn ensure_not_revoked(env: &Env, identity: &Identity, now: u64) -> Result<(), ApiError> {
    let refused =
        match snapshot(env, now)
            .await?
            .refuses(&identity.sub, identity.jti.as_deref(), now)
        {
            Some(refused) => refused,
            None => is_revoked(env, identity, now).await?,
        };
    if refused {
        return Err(ApiError::InvalidToken("token has been revoked".into()));
    }
    Ok(())
}

/// Stores `revocation` (a repeated one keeps the later `until`: revoking never
/// shortens a revocation) and prunes the rows that no longer matter.
async fn store(env: &Env, revocation: &Revocation, now: u64) -> Result<(), ApiError> {
    let db = db(env)?;
    let now_js = JsValue::from_f64(now as f64);
    db.batch(vec![
        db.prepare("DELETE FROM revocations WHERE until <= ?1")
            .bind(std::slice::from_ref(&now_js))?,
        db.prepare(
            "INSERT INTO revocations (kind, value, until, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(kind, value) DO UPDATE SET until = MAX(until, excluded.until)",
        )
        .bind(&[
            revocation.target.kind().into(),
            revocation.target.value().into(),
            JsValue::from_f64(revocation.until as f64),
            now_js,
        ])?,
    ])
    .await?;
    Ok(())
}

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
    store(env, &revocation, now).await?;
    // This isolate's next upgrade reads it.
    SNAPSHOT.set(None);

    let rooms = room_registry::active_rooms(env).await?;
    let outcomes = join_all(
        rooms
            .iter()
            .map(|room| room_control::push_revocation(env, room, &revocation)),
    )
    .await;
    let mut closed = 0;
    let mut failed = Vec::new();
    for (room, outcome) in rooms.iter().zip(outcomes) {
        match outcome {
            Ok(n) => closed += n,
            Err(e) => failed.push(format!("{room}: {e:?}")),
        }
    }
    if !failed.is_empty() {
        return Err(ApiError::Internal(format!(
            "revocation stored, but {} of {} rooms were not reached: {}",
            failed.len(),
            rooms.len(),
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
            rooms: rooms.len(),
            closed,
        },
    )
}
