//! The registry of rooms with live sockets (D1 `active_rooms`), so a revocation can be
//! pushed to every room that might hold a matching socket (`http::revoke`).
//!
//! A room registers itself when it goes from no sockets to one ([`activate`]) and
//! removes itself when its last socket leaves ([`deactivate`]). Those two writes come
//! from different events of one Durable Object and may land in D1 in either order, so
//! each carries a *mark*: a counter in the room's storage, bumped at every activation.
//! A removal deletes the row only if its mark is not newer than the last activation the
//! room had seen when it found itself empty — so a late removal never erases a newer
//! registration. A stale row (a room reset by a deploy, without close events) costs one
//! wasted call on the next revoke, after which the room removes itself.

use serde::Deserialize;
use worker::Env;

use super::revocations::{in_force_rows, in_force_statement};
use crate::protocol::identity::Revocation;
use crate::runtime::d1::{db, int, signed};
use crate::runtime::error::ApiError;

/// Registers `room` (with `mark`, and `bucket` if it is new) and, in the same batch and
/// after that write, reads every revocation in force: with the ones pushed to it from
/// then on, the room knows them all.
pub async fn activate(
    env: &Env,
    room: &str,
    mark: u64,
    bucket: i64,
    now: u64,
) -> Result<Vec<Revocation>, ApiError> {
    let db = db(env)?;
    let register = db
        .prepare(
            "INSERT INTO active_rooms (room, mark, since, bucket) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(room) DO UPDATE SET mark = MAX(mark, excluded.mark)",
        )
        .bind(&[room.into(), int(mark), int(now), signed(bucket)])?;
    let in_force = in_force_statement(&db, now)?;
    let results = db.batch(vec![register, in_force]).await?;
    let rows = results
        .get(1)
        .ok_or_else(|| ApiError::Internal("registry batch returned one result".into()))?;
    in_force_rows(rows)
}

/// Removes `room` unless it was activated again after `mark`.
pub async fn deactivate(env: &Env, room: &str, mark: u64) -> Result<(), ApiError> {
    db(env)?
        .prepare("DELETE FROM active_rooms WHERE room = ?1 AND mark <= ?2")
        .bind(&[room.into(), int(mark)])?
        .run()
        .await?;
    Ok(())
}

/// How many registered rooms have a bucket in `lo..hi`. (Bucket bounds cross into D1 as
/// JavaScript numbers, exact below 2^53, so comparisons with them are exact.)
pub async fn count_in(env: &Env, lo: i64, hi: i64) -> Result<u64, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        rooms: u64,
    }
    let row = db(env)?
        .prepare("SELECT COUNT(*) AS rooms FROM active_rooms WHERE bucket >= ?1 AND bucket < ?2")
        .bind(&[signed(lo), signed(hi)])?
        .first::<Row>(None)
        .await?;
    Ok(row.map_or(0, |r| r.rooms))
}

/// Every registered room with a bucket in `lo..hi`.
pub async fn rooms_in(env: &Env, lo: i64, hi: i64) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        room: String,
    }
    let rows = db(env)?
        .prepare("SELECT room FROM active_rooms WHERE bucket >= ?1 AND bucket < ?2")
        .bind(&[signed(lo), signed(hi)])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows.into_iter().map(|r| r.room).collect())
}

/// Up to `limit` registered rooms named after `cursor` (all from the first, without
/// one), in name order.
pub async fn page_after(
    env: &Env,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        room: String,
    }
    let rows = db(env)?
        .prepare("SELECT room FROM active_rooms WHERE room > ?1 ORDER BY room LIMIT ?2")
        .bind(&[cursor.unwrap_or("").into(), int(u64::from(limit))])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows.into_iter().map(|r| r.room).collect())
}
