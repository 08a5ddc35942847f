//! The `Limiter` Durable Object: counters that hold across isolates, one object per key
//! (`auth::throttle`): failed logins per username and per client address, failed admin
//! authentications per address, and tickets issued per access token.
//!
//! Why a Durable Object: a request may land on any isolate in any location, so a count
//! must live in one place per key. (The platform's rate-limiting binding is per location
//! and cannot reset a counter on success.) Each object's events run one at a time, and
//! every decision is a synchronous load → decide → store on its SQLite storage with no
//! `await` in between, so concurrent requests never lose or double-count an event.
//!
//! Storage holds only events younger than their window (failed logins in `failures`,
//! counted uses in `spent`, with the time each stops counting); an alarm after the
//! window deletes the rest, so the objects for spent keys (one per username ever tried)
//! do not keep data.
//!
//! [`client`] is the only way anything else calls this object.

pub mod client;

use std::time::Duration;

use serde::Deserialize;
use worker::{console_error, durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::auth::throttle::{Effect, Ledger, ThrottlePolicy};
use crate::protocol::internal::{LimiterCall, Standing};
use crate::runtime::env::{config, now_millis};
use crate::runtime::error::ApiError;
use crate::runtime::http::json;
use crate::runtime::object::read_call;

const FAILURES: &str = "CREATE TABLE IF NOT EXISTS failures (at_ms INTEGER NOT NULL)";
const SPENT: &str =
    "CREATE TABLE IF NOT EXISTS spent (at_ms INTEGER NOT NULL, until_ms INTEGER NOT NULL)";
/// Whether a table exists: the tables are made by their first row, so that asking never
/// creates storage and a key that only ever succeeds leaves nothing behind.
const TABLE_EXISTS: &str =
    "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?1";

#[durable_object]
pub struct Limiter {
    state: State,
    env: Env,
}

impl DurableObject for Limiter {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let call = read_call::<LimiterCall>(&mut req).await;
        match call.and_then(|call| self.on_call(call)) {
            Ok((standing, recorded)) => {
                if let Some(window_secs) = recorded {
                    self.expire_later(window_secs).await;
                }
                Ok(json(200, &standing).unwrap_or_else(ApiError::into_response))
            }
            Err(e) => Ok(e.into_response()),
        }
    }

    /// One window after the last recorded event: drop what expired, and all storage
    /// once nothing is left (an event recorded meanwhile re-arms the alarm instead).
    async fn alarm(&self) -> Result<Response> {
        let policy = self
            .policy()
            .map_err(|e| worker::Error::RustError(format!("{e:?}")))?;
        let now = now_millis();
        let failures_until = self
            .load(&policy, now)?
            .failures()
            .last()
            .map(|&newest| newest + policy.window_secs * 1000);
        let spent_until = self.spent(now)?.into_iter().map(|(_, until)| until).max();
        match failures_until.max(spent_until) {
            None => self.state.storage().delete_all().await?,
            Some(until) => {
                let wait = until.saturating_sub(now);
                self.state
                    .storage()
                    .set_alarm(Duration::from_millis(wait.max(1)))
                    .await?;
            }
        }
        Response::empty()
    }
}

impl Limiter {
    /// The failed-login limit, from the isolate's configuration.
    fn policy(&self) -> std::result::Result<ThrottlePolicy, ApiError> {
        Ok(config(&self.env)?.login_throttle)
    }

    /// Answers one call, synchronous from load to store; also says, when an event was
    /// recorded, the window after which it may be cleaned up.
    fn on_call(&self, call: LimiterCall) -> std::result::Result<(Standing, Option<u64>), ApiError> {
        let now = now_millis();
        let sql = self.state.storage().sql();
        if let LimiterCall::Spend { max, window_secs } = call {
            let policy = ThrottlePolicy {
                max_failures: max,
                window_secs,
            };
            let uses = self.spent(now)?.into_iter().map(|(at, _)| at).collect();
            let (effect, standing) = Ledger::new(&policy, now, uses).spend(&policy, now);
            if let Effect::Record(at) = effect {
                sql.exec(SPENT, None)?;
                sql.exec(
                    "INSERT INTO spent (at_ms, until_ms) VALUES (?1, ?2)",
                    vec![
                        (at as i64).into(),
                        ((at + window_secs * 1000) as i64).into(),
                    ],
                )?;
                return Ok((standing, Some(window_secs)));
            }
            return Ok((standing, None));
        }
        let policy = self.policy()?;
        let mut ledger = self.load(&policy, now)?;
        let outcome = match call {
            LimiterCall::Commit(outcome) => outcome,
            _ => return Ok((ledger.standing(&policy, now), None)),
        };
        let (effect, standing) = ledger.commit(&policy, now, outcome);
        match effect {
            Effect::Nothing => {}
            Effect::Record(at) => {
                sql.exec(FAILURES, None)?;
                sql.exec(
                    "INSERT INTO failures (at_ms) VALUES (?1)",
                    vec![(at as i64).into()],
                )?;
                return Ok((standing, Some(policy.window_secs)));
            }
            Effect::Clear => {
                sql.exec("DELETE FROM failures", None)?;
            }
        }
        Ok((standing, None))
    }

    /// Whether `table` exists (see [`TABLE_EXISTS`]).
    fn has_table(&self, table: &str) -> Result<bool> {
        #[derive(Deserialize)]
        struct Count {
            n: i64,
        }
        let sql = self.state.storage().sql();
        let count: Count = sql.exec(TABLE_EXISTS, vec![table.into()])?.one()?;
        Ok(count.n > 0)
    }

    /// The counted uses still in their window, as (counted at, stops counting at), unix
    /// ms; deletes the others on the way.
    fn spent(&self, now: u64) -> Result<Vec<(u64, u64)>> {
        #[derive(Deserialize)]
        struct Row {
            at_ms: i64,
            until_ms: i64,
        }
        if !self.has_table("spent")? {
            return Ok(Vec::new());
        }
        let sql = self.state.storage().sql();
        sql.exec(
            "DELETE FROM spent WHERE until_ms <= ?1",
            vec![(now as i64).into()],
        )?;
        let rows: Vec<Row> = sql
            .exec("SELECT at_ms, until_ms FROM spent", None)?
            .to_array()?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some((
                    u64::try_from(r.at_ms).ok()?,
                    u64::try_from(r.until_ms).ok()?,
                ))
            })
            .collect())
    }

    /// The key's live failures; deletes the expired ones on the way.
    fn load(&self, policy: &ThrottlePolicy, now: u64) -> Result<Ledger> {
        #[derive(Deserialize)]
        struct Row {
            at_ms: i64,
        }
        if !self.has_table("failures")? {
            return Ok(Ledger::default());
        }
        let sql = self.state.storage().sql();
        sql.exec(
            "DELETE FROM failures WHERE at_ms <= ?1",
            vec![(policy.cutoff(now) as i64).into()],
        )?;
        let rows: Vec<Row> = sql.exec("SELECT at_ms FROM failures", None)?.to_array()?;
        let failures = rows
            .into_iter()
            .filter_map(|r| u64::try_from(r.at_ms).ok())
            .collect();
        Ok(Ledger::new(policy, now, failures))
    }

    /// Schedules the cleanup one window from now. Each recorded event pushes it back;
    /// if events interleave and an earlier time wins, the alarm re-arms itself.
    async fn expire_later(&self, window_secs: u64) {
        let window = Duration::from_secs(window_secs);
        if let Err(e) = self.state.storage().set_alarm(window).await {
            console_error!("limiter alarm: {e}");
        }
    }
}
