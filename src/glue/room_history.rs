//! The `Room` object's message history in its SQLite storage: storing each broadcast
//! `message` frame (and trimming to `HISTORY_LIMIT` in the same synchronous step), the
//! replay for a resuming socket, `history` pages, and the admin's room stats.
//!
//! Every method here is synchronous on purpose: the SQLite API needs no `await`, so a
//! message is sequenced, stored and broadcast — and a resuming socket is welcomed and
//! replayed to — with no other event in between. That is what makes a resume free of
//! gaps and duplicates: a live message either was stored before the replay (and is in
//! it) or is broadcast after it (to the socket, which is live by then).
//! What to keep, replay and page is decided in `room::history`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use worker::{Env, Method, Response, SqlStorageValue, WebSocket};

use super::http::json;
use super::room_control::STATS_PATH;
use super::room_object::Room;
use super::{call_object, object_stub, ROOMS_BINDING};
use crate::error::ApiError;
use crate::room::history::{self, Page};
use crate::room::state;

/// The table of kept messages: the `message` frame text exactly as broadcast, by `seq`.
pub(super) const MESSAGE_TABLE: &str = "CREATE TABLE IF NOT EXISTS message (
    seq INTEGER PRIMARY KEY,
    frame TEXT NOT NULL
)";

/// What `GET /admin/rooms/{room}` shows (and the room answers on [`STATS_PATH`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct RoomStats {
    /// Open sockets.
    pub connections: usize,
    /// Sockets the runtime still lists for the room (`getWebSockets()`): the open ones
    /// plus any the room is closing and whose client has not answered yet. A socket
    /// whose client closed (or dropped) it is no longer listed, which is why its
    /// departure needs no mark in its attachment (`room_object::Gone`).
    pub runtime_sockets: usize,
    /// Distinct users among them.
    pub members: usize,
    /// The latest `seq` (0: no message yet).
    pub last_seq: u64,
    /// Messages kept for resume and `history`.
    pub history_kept: u64,
    /// Id of the in-memory instance that answered; a new one after every eviction
    /// (diagnostics: shows hibernation at work).
    pub instance: String,
}

/// Asks `room` for its [`RoomStats`].
pub async fn stats(env: &Env, room: &str) -> Result<RoomStats, ApiError> {
    let stub = object_stub(env, ROOMS_BINDING, room)?;
    let url = format!("https://room.internal{STATS_PATH}");
    call_object(&stub, Method::Get, &url, None).await
}

/// SQLite integers are signed: seq bounds above `i64::MAX` mean "no bound".
fn sql_seq(seq: u64) -> SqlStorageValue {
    SqlStorageValue::from(i64::try_from(seq).unwrap_or(i64::MAX))
}

#[derive(Deserialize)]
struct FrameRow {
    frame: String,
}

impl Room {
    /// The room's latest `seq` (0 before its first message): the newest kept message's,
    /// or the counter when messages are not kept (`HISTORY_LIMIT=0`) — whichever is
    /// higher, so changing the limit either way never reuses a `seq` (see
    /// `store_message`). Read once per instance; the room's messages go through it.
    pub(super) fn last_seq(&self) -> worker::Result<u64> {
        if let Some(seq) = self.seq.get() {
            return Ok(seq);
        }
        let seq = self
            .first_value(
                "SELECT MAX(
                    COALESCE((SELECT value FROM room_meta WHERE key = 'seq'), 0),
                    COALESCE((SELECT MAX(seq) FROM message), 0)
                ) AS value",
                vec![],
            )?
            .unwrap_or(0);
        self.seq.set(Some(seq));
        Ok(seq)
    }

    /// The integer column `value` of the first row `query` returns (`None`: no row).
    pub(super) fn first_value(
        &self,
        query: &str,
        args: Vec<SqlStorageValue>,
    ) -> worker::Result<Option<u64>> {
        #[derive(Deserialize)]
        struct Row {
            value: i64,
        }
        let rows: Vec<Row> = self.state.storage().sql().exec(query, args)?.to_array()?;
        rows.first()
            .map(|r| {
                u64::try_from(r.value)
                    .map_err(|_| worker::Error::RustError(format!("negative value: {query}")))
            })
            .transpose()
    }

    /// Records message `seq`: keeps `frame` and drops what falls outside the last
    /// `limit`. The kept row is also the durable record of the `seq` (the newest row is
    /// never trimmed while `limit` ≥ 1), so a message costs one write and one trim; with
    /// nothing kept (`limit` 0) the `seq` goes to the `room_meta` counter instead.
    /// Nothing is awaited: no other event can come between sequencing and fan-out.
    pub(super) fn store_message(&self, seq: u64, frame: &str, limit: u64) -> worker::Result<()> {
        let sql = self.state.storage().sql();
        if limit == 0 {
            sql.exec(
                "INSERT INTO room_meta (key, value) VALUES ('seq', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                vec![sql_seq(seq)],
            )?;
            sql.exec("DELETE FROM message", None)?;
            return Ok(());
        }
        sql.exec(
            "INSERT INTO message (seq, frame) VALUES (?1, ?2)",
            vec![sql_seq(seq), frame.into()],
        )?;
        if let Some(through) = history::trim_through(seq, limit) {
            sql.exec(
                "DELETE FROM message WHERE seq <= ?1",
                vec![sql_seq(through)],
            )?;
        }
        Ok(())
    }

    /// Sends a resuming socket what it missed after `since`: a `gap` for what is no
    /// longer kept, then every kept message after `since`, in order.
    pub(super) fn replay(&self, ws: &WebSocket, since: u64, last_seq: u64) -> worker::Result<()> {
        let Some(replay) = history::replay(since, last_seq, self.oldest_kept()?) else {
            return Ok(());
        };
        if let Some((from, to)) = replay.gap {
            ws.send_with_str(history::gap_frame(from, to))?;
        }
        let rows: Vec<FrameRow> = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT frame FROM message WHERE seq > ?1 ORDER BY seq",
                vec![sql_seq(replay.after)],
            )?
            .to_array()?;
        for row in rows {
            ws.send_with_str(&row.frame)?;
        }
        Ok(())
    }

    /// The `history` answer for `page`.
    pub(super) fn history_page(&self, page: Page) -> worker::Result<String> {
        let rows: Vec<FrameRow> = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT frame FROM message WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
                vec![sql_seq(page.before), sql_seq(page.limit)],
            )?
            .to_array()?;
        let frames = rows
            .into_iter()
            .map(|r| RawValue::from_string(r.frame))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| worker::Error::RustError(format!("stored frame: {e}")))?;
        Ok(history::history_frame(&frames))
    }

    pub(super) fn on_stats(&self) -> Result<Response, ApiError> {
        #[derive(Deserialize)]
        struct Count {
            kept: i64,
        }
        let kept: Count = self
            .state
            .storage()
            .sql()
            .exec("SELECT COUNT(*) AS kept FROM message", None)?
            .one()?;
        let live = self.live();
        json(
            200,
            &RoomStats {
                connections: live.sockets.len(),
                runtime_sockets: self.state.get_websockets().len(),
                members: state::members(&live.connections).len(),
                last_seq: self.last_seq()?,
                history_kept: u64::try_from(kept.kept).unwrap_or(0),
                instance: self.instance.clone(),
            },
        )
    }

    fn oldest_kept(&self) -> worker::Result<Option<u64>> {
        #[derive(Deserialize)]
        struct Oldest {
            oldest: Option<i64>,
        }
        let row: Oldest = self
            .state
            .storage()
            .sql()
            .exec("SELECT MIN(seq) AS oldest FROM message", None)?
            .one()?;
        Ok(row.oldest.and_then(|s| u64::try_from(s).ok()))
    }
}
