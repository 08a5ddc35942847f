//! Revocations in D1 (`revocations`, migration 0002), and the isolate's snapshot of them.
//!
//! `POST /admin/revoke` stores one here; rows expire with their `until` and are pruned
//! on every revoke, so the table holds only what still matters.
//!
//! The gate reads a snapshot: each isolate keeps the revocations in force for a second
//! (`auth::revocation::Snapshot`), so an upgrade costs no D1 read. A token revoked
//! within that second may pass the gate; its room refuses it (401, no socket), because a
//! room's own list is complete: it copies every revocation in force when it registers
//! (`store::rooms`) and gets every later one pushed.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use worker::{D1Database, D1PreparedStatement, D1Result, Env};

use crate::auth::revocation::{RevocationRow, Snapshot};
use crate::protocol::identity::{Identity, Revocation};
use crate::runtime::d1::{db, int, text_or_null};
use crate::runtime::env::now_millis;
use crate::runtime::error::ApiError;

/// How fresh an answer about revocations must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The isolate's snapshot will do: the gate and ticket issue, where the room's own
    /// list backs it up.
    Snapshot,
    /// Ask D1 now: a room's in-band refresh, which no other list backs up.
    Latest,
}

/// One row when a token of `sub` (`?2`) with id `jti` (`?3`, may be NULL), issued at
/// `?4`, is revoked at `?1`.
const IS_REVOKED: &str = "SELECT 1 AS hit FROM revocations
    WHERE until > ?1 AND ((kind = 'sub' AND value = ?2) OR (kind = 'jti' AND value = ?3)
        OR (kind = 'sub_before' AND value = ?2 AND ?4 < issued_before))
    LIMIT 1";

/// Every revocation in force at `?1`, at most `?2` of them.
const IN_FORCE: &str = "SELECT kind, value, until, issued_before FROM revocations
    WHERE until > ?1 LIMIT ?2";

/// The statement that reads every revocation in force at `now`, at most
/// [`Snapshot::READ_LIMIT`] of them.
pub fn in_force_statement(db: &D1Database, now: u64) -> Result<D1PreparedStatement, ApiError> {
    Ok(db
        .prepare(IN_FORCE)
        .bind(&[int(now), int(Snapshot::READ_LIMIT as u64)])?)
}

/// The rows of [`in_force_statement`] as revocations (rows of an unknown kind skipped).
pub fn in_force_rows(result: &D1Result) -> Result<Vec<Revocation>, ApiError> {
    Ok(result
        .results::<RevocationRow>()?
        .into_iter()
        .filter_map(RevocationRow::into_revocation)
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
/// [`Snapshot::MAX_AGE_MS`], by one request at a time: while one reads, the others use
/// the stale one (up to [`Snapshot::MAX_STALE_MS`]; the rooms' own lists refuse whatever
/// it misses).
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

/// Whether `identity`'s token or user is revoked at `now`, as fresh as asked.
pub async fn is_revoked(
    env: &Env,
    identity: &Identity,
    now: u64,
    freshness: Freshness,
) -> Result<bool, ApiError> {
    if freshness == Freshness::Snapshot {
        if let Some(refused) = snapshot(env, now).await?.refuses(identity.into(), now) {
            return Ok(refused);
        }
    }
    let hit = db(env)?
        .prepare(IS_REVOKED)
        .bind(&[
            int(now),
            identity.sub.as_str().into(),
            text_or_null(identity.jti.as_deref()),
            int(identity.iat),
        ])?
        .first::<serde_json::Value>(None)
        .await?;
    Ok(hit.is_some())
}

/// Stores `revocation` (a repeated one keeps the later `until` and `issued_before`:
/// revoking never shortens a revocation), prunes the rows that no longer matter, and
/// makes this isolate's next check read D1 again.
pub async fn store(env: &Env, revocation: &Revocation, now: u64) -> Result<(), ApiError> {
    let db = db(env)?;
    db.batch(vec![
        db.prepare("DELETE FROM revocations WHERE until <= ?1")
            .bind(&[int(now)])?,
        db.prepare(
            "INSERT INTO revocations (kind, value, until, created_at, issued_before)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(kind, value) DO UPDATE SET until = MAX(until, excluded.until),
                 issued_before = MAX(issued_before, excluded.issued_before)",
        )
        .bind(&[
            revocation.target.kind().into(),
            revocation.target.value().into(),
            int(revocation.until),
            int(now),
            revocation
                .target
                .issued_before()
                .map_or(worker::wasm_bindgen::JsValue::NULL, int),
        ])?,
    ])
    .await?;
    SNAPSHOT.set(None);
    Ok(())
}
