//! The `Room` object's SQLite storage: its whole schema and every statement run on it.
//!
//! Every method is synchronous: the SQLite API needs no `await`, so the object can
//! sequence, store and broadcast a message (or welcome and replay to a resuming socket)
//! with no other event in between.
//!
//! Tables:
//! - `message`: the kept `message` frames, exactly as broadcast, by `seq`;
//! - `room_meta`: integer counters: `seq` when no messages are kept, and the registry
//!   marks (`room::registration::Marks`): `activations` (issued), `listed` and
//!   `deactivated` (removed);
//! - `room_name`: the room's own name (a Durable Object does not know the name it was
//!   created from), for the registry and for grant checks on refresh;
//! - `revoked`: revocations pushed to this room or copied when it registered, checked on
//!   every new socket;
//! - `webhook_outbox`: webhook events not yet taken by the receiver, by their number `n`
//!   (`room_meta` keeps the last `n` given, `webhook_n`, and how many were dropped,
//!   `webhook_dropped`);
//! - `idempotency`: the `idempotency_key`s of recent server publishes, with the `seq` and
//!   `ts` each got, for as long as a retry repeats the first answer.

use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

use crate::auth::revocation::RevocationRow;
use crate::protocol::identity::Revocation;
use crate::room::history;
use crate::room::registration::Marks;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS room_meta (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS room_name (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS revoked (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        until INTEGER NOT NULL,
        issued_before INTEGER,
        PRIMARY KEY (kind, value)
    )",
    "CREATE TABLE IF NOT EXISTS message (
        seq INTEGER PRIMARY KEY,
        frame TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS webhook_outbox (
        n INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        event TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS idempotency (
        key TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL
    )",
];

/// SQLite integers are signed: bounds above `i64::MAX` mean "no bound".
fn int(n: u64) -> SqlStorageValue {
    SqlStorageValue::from(i64::try_from(n).unwrap_or(i64::MAX))
}

#[derive(Deserialize)]
struct FrameRow {
    frame: String,
}

/// The room's tables, through the object's SQL handle.
pub(super) struct RoomTables {
    sql: SqlStorage,
}

impl RoomTables {
    /// Opens the storage and creates any table that does not exist yet. A failure is
    /// logged; the statements that need the table then fail on their own.
    pub(super) fn open(sql: SqlStorage) -> Self {
        for statement in SCHEMA {
            if let Err(e) = sql.exec(statement, None) {
                worker::console_error!("room schema: {e}");
            }
        }
        // A room made before `revoked` had the column gets it now.
        let tables = Self { sql };
        if let Err(e) = tables.add_column_if_missing("revoked", "issued_before", "INTEGER") {
            worker::console_error!("room schema: {e}");
        }
        tables
    }

    fn add_column_if_missing(&self, table: &str, column: &str, kind: &str) -> worker::Result<()> {
        let present = self
            .first_value(
                "SELECT COUNT(*) AS value FROM pragma_table_info(?1) WHERE name = ?2",
                vec![table.into(), column.into()],
            )?
            .unwrap_or(0);
        if present == 0 {
            self.sql.exec(
                &format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"),
                None,
            )?;
        }
        Ok(())
    }

    /// The integer column `value` of the first row `query` returns (`None`: no row, or
    /// `NULL`).
    fn first_value(&self, query: &str, args: Vec<SqlStorageValue>) -> worker::Result<Option<u64>> {
        #[derive(Deserialize)]
        struct Row {
            value: Option<i64>,
        }
        let rows: Vec<Row> = self.sql.exec(query, args)?.to_array()?;
        rows.first()
            .and_then(|r| r.value)
            .map(|v| {
                u64::try_from(v)
                    .map_err(|_| worker::Error::RustError(format!("negative value: {query}")))
            })
            .transpose()
    }

    /// The room's latest `seq` (0 before its first message): the newest kept message's,
    /// or the counter when messages are not kept (`HISTORY_LIMIT=0`), whichever is
    /// higher, so changing the limit either way never reuses a `seq`.
    pub(super) fn latest_seq(&self) -> worker::Result<u64> {
        Ok(self
            .first_value(
                "SELECT MAX(
                    COALESCE((SELECT value FROM room_meta WHERE key = 'seq'), 0),
                    COALESCE((SELECT MAX(seq) FROM message), 0)
                ) AS value",
                vec![],
            )?
            .unwrap_or(0))
    }

    /// Records messages `first_seq`, `first_seq + 1`, ... (`frames`, in order): keeps
    /// them and drops what falls outside the last `limit`. The kept rows are also the
    /// durable record of the `seq` (the newest row is never trimmed while `limit` ≥ 1),
    /// so a flush costs one insert and one trim however many messages it holds; with
    /// nothing kept (`limit` 0) the last `seq` goes to the `room_meta` counter instead.
    pub(super) fn store_messages(
        &self,
        first_seq: u64,
        frames: &[&str],
        limit: u64,
    ) -> worker::Result<()> {
        let Some(count) = (frames.len() as u64).checked_sub(1) else {
            return Ok(());
        };
        let last_seq = first_seq + count;
        if limit == 0 {
            self.sql.exec(
                "INSERT INTO room_meta (key, value) VALUES ('seq', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                vec![int(last_seq)],
            )?;
            self.sql.exec("DELETE FROM message", None)?;
            return Ok(());
        }
        if let [frame] = frames {
            self.sql.exec(
                "INSERT INTO message (seq, frame) VALUES (?1, ?2)",
                vec![int(first_seq), (*frame).into()],
            )?;
        } else {
            // One statement for the lot: the frames travel as one JSON array of strings
            // (SQLite decodes each string exactly), since a statement's bound parameters
            // are few.
            let list = serde_json::to_string(frames)
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
            self.sql.exec(
                "INSERT INTO message (seq, frame) SELECT ?1 + key, value FROM json_each(?2)",
                vec![int(first_seq), list.into()],
            )?;
        }
        if let Some(through) = history::trim_through(last_seq, limit) {
            self.sql
                .exec("DELETE FROM message WHERE seq <= ?1", vec![int(through)])?;
        }
        Ok(())
    }

    /// Every kept frame with a seq above `after`, oldest first.
    pub(super) fn frames_after(&self, after: u64) -> worker::Result<Vec<String>> {
        let rows: Vec<FrameRow> = self
            .sql
            .exec(
                "SELECT frame FROM message WHERE seq > ?1 ORDER BY seq",
                vec![int(after)],
            )?
            .to_array()?;
        Ok(rows.into_iter().map(|r| r.frame).collect())
    }

    /// The newest `limit` kept frames with a seq below `before`, newest first.
    pub(super) fn frames_before(&self, before: u64, limit: u64) -> worker::Result<Vec<String>> {
        let rows: Vec<FrameRow> = self
            .sql
            .exec(
                "SELECT frame FROM message WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
                vec![int(before), int(limit)],
            )?
            .to_array()?;
        Ok(rows.into_iter().map(|r| r.frame).collect())
    }

    /// How many messages are kept.
    pub(super) fn kept(&self) -> worker::Result<u64> {
        Ok(self
            .first_value("SELECT COUNT(*) AS value FROM message", vec![])?
            .unwrap_or(0))
    }

    /// The seq of the oldest kept message, if any.
    pub(super) fn oldest_kept(&self) -> worker::Result<Option<u64>> {
        self.first_value("SELECT MIN(seq) AS value FROM message", vec![])
    }

    /// The registry marks (0 for any never written).
    pub(super) fn marks(&self) -> worker::Result<Marks> {
        let counter = |key: &str| {
            self.first_value(
                "SELECT value FROM room_meta WHERE key = ?1",
                vec![key.into()],
            )
            .map(|v| v.unwrap_or(0))
        };
        Ok(Marks {
            issued: counter("activations")?,
            listed: counter("listed")?,
            removed: counter("deactivated")?,
        })
    }

    /// Stores the registry marks.
    pub(super) fn save_marks(&self, marks: Marks) -> worker::Result<()> {
        for (key, value) in [
            ("activations", marks.issued),
            ("listed", marks.listed),
            ("deactivated", marks.removed),
        ] {
            self.sql.exec(
                "INSERT OR REPLACE INTO room_meta (key, value) VALUES (?1, ?2)",
                vec![key.into(), int(value)],
            )?;
        }
        Ok(())
    }

    /// The room's name, once it has had a socket or a revocation.
    pub(super) fn name(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Row {
            name: String,
        }
        let rows: Vec<Row> = self
            .sql
            .exec("SELECT name FROM room_name WHERE id = 1", None)
            .and_then(|c| c.to_array())
            .ok()?;
        rows.into_iter().next().map(|r| r.name)
    }

    pub(super) fn set_name(&self, room: &str) -> worker::Result<()> {
        self.sql.exec(
            "INSERT OR REPLACE INTO room_name (id, name) VALUES (1, ?1)",
            vec![room.into()],
        )?;
        Ok(())
    }

    /// Every revocation this room keeps that is in force at `now`.
    pub(super) fn revocations(&self, now: u64) -> worker::Result<Vec<Revocation>> {
        let rows: Vec<RevocationRow> = self
            .sql
            .exec(
                "SELECT kind, value, until, issued_before FROM revoked WHERE until > ?1",
                vec![int(now)],
            )?
            .to_array()?;
        Ok(rows
            .into_iter()
            .filter_map(RevocationRow::into_revocation)
            .collect())
    }

    /// Keeps `revocation` (a target kept already keeps the later `until` and
    /// `issued_before`) and drops the ones that have run out at `now`.
    pub(super) fn keep_revocation(&self, revocation: &Revocation, now: u64) -> worker::Result<()> {
        self.sql
            .exec("DELETE FROM revoked WHERE until <= ?1", vec![int(now)])?;
        self.sql.exec(
            "INSERT INTO revoked (kind, value, until, issued_before) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(kind, value) DO UPDATE SET until = MAX(until, excluded.until),
                 issued_before = MAX(issued_before, excluded.issued_before)",
            vec![
                revocation.target.kind().into(),
                revocation.target.value().into(),
                int(revocation.until),
                revocation
                    .target
                    .issued_before()
                    .map_or(SqlStorageValue::Null, int),
            ],
        )?;
        Ok(())
    }

    /// The `seq` and `ts` a server publish with `key` got at or after `since` (unix ms).
    pub(super) fn idempotent(&self, key: &str, since: u64) -> worker::Result<Option<(u64, u64)>> {
        #[derive(Deserialize)]
        struct Row {
            seq: i64,
            ts: i64,
        }
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT seq, ts FROM idempotency WHERE key = ?1 AND ts >= ?2",
                vec![key.into(), int(since)],
            )?
            .to_array()?;
        Ok(rows
            .first()
            .map(|r| (r.seq.max(0) as u64, r.ts.max(0) as u64)))
    }

    /// Remembers that the server publish with `key` got `seq` at `ts`, and forgets the
    /// keys older than `expired_before`.
    pub(super) fn remember_idempotent(
        &self,
        key: &str,
        seq: u64,
        ts: u64,
        expired_before: u64,
    ) -> worker::Result<()> {
        self.sql.exec(
            "DELETE FROM idempotency WHERE ts < ?1",
            vec![int(expired_before)],
        )?;
        self.sql.exec(
            "INSERT OR REPLACE INTO idempotency (key, seq, ts) VALUES (?1, ?2, ?3)",
            vec![key.into(), int(seq), int(ts)],
        )?;
        Ok(())
    }

    /// Adds `by` to the `room_meta` counter `key`.
    fn bump(&self, key: &str, by: u64) -> worker::Result<()> {
        self.sql.exec(
            "INSERT INTO room_meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            vec![key.into(), int(by)],
        )?;
        Ok(())
    }

    /// Keeps the webhook event `render(n)` makes for the room's next event number `n`,
    /// recorded at `at` (unix ms). With `max` events waiting already it is dropped and
    /// counted instead (answers `false`).
    pub(super) fn enqueue_event(
        &self,
        at: u64,
        max: u64,
        render: impl FnOnce(u64) -> String,
    ) -> worker::Result<bool> {
        let waiting = self
            .first_value("SELECT COUNT(*) AS value FROM webhook_outbox", vec![])?
            .unwrap_or(0);
        if waiting >= max {
            self.bump("webhook_dropped", 1)?;
            return Ok(false);
        }
        let n = self
            .first_value(
                "SELECT value FROM room_meta WHERE key = 'webhook_n'",
                vec![],
            )?
            .unwrap_or(0)
            + 1;
        self.sql.exec(
            "INSERT OR REPLACE INTO room_meta (key, value) VALUES ('webhook_n', ?1)",
            vec![int(n)],
        )?;
        self.sql.exec(
            "INSERT INTO webhook_outbox (n, at, event) VALUES (?1, ?2, ?3)",
            vec![int(n), int(at), render(n).into()],
        )?;
        Ok(true)
    }

    /// The oldest waiting events, at most `limit`, with their numbers; those recorded
    /// before `expired_before` (unix ms) are dropped and counted first.
    pub(super) fn waiting_events(
        &self,
        limit: u64,
        expired_before: u64,
    ) -> worker::Result<Vec<(u64, String)>> {
        #[derive(Deserialize)]
        struct Row {
            n: i64,
            event: String,
        }
        let expired = self
            .first_value(
                "SELECT COUNT(*) AS value FROM webhook_outbox WHERE at < ?1",
                vec![int(expired_before)],
            )?
            .unwrap_or(0);
        if expired > 0 {
            self.sql.exec(
                "DELETE FROM webhook_outbox WHERE at < ?1",
                vec![int(expired_before)],
            )?;
            self.bump("webhook_dropped", expired)?;
        }
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT n, event FROM webhook_outbox ORDER BY n LIMIT ?1",
                vec![int(limit)],
            )?
            .to_array()?;
        Ok(rows
            .into_iter()
            .map(|r| (r.n.max(0) as u64, r.event))
            .collect())
    }

    /// Forgets the events through number `n`: the receiver took them.
    pub(super) fn delivered_through(&self, n: u64) -> worker::Result<()> {
        self.sql
            .exec("DELETE FROM webhook_outbox WHERE n <= ?1", vec![int(n)])?;
        Ok(())
    }

    /// Webhook events waiting, and dropped so far (a full backlog, or a day undelivered).
    pub(super) fn webhook_figures(&self) -> worker::Result<(u64, u64)> {
        let waiting = self
            .first_value("SELECT COUNT(*) AS value FROM webhook_outbox", vec![])?
            .unwrap_or(0);
        let dropped = self
            .first_value(
                "SELECT value FROM room_meta WHERE key = 'webhook_dropped'",
                vec![],
            )?
            .unwrap_or(0);
        Ok((waiting, dropped))
    }
}
