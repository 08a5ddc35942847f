//! The `LoginLimiter` Durable Object: failed-login limits across isolates, one object per
//! counter key (`user:<name>`, `ip:<address>`; see `auth::throttle`).
//!
//! Why a Durable Object: a login may land on any isolate in any location, so the count
//! must live in one place per key. (The platform's rate-limiting binding is per location
//! and cannot reset a counter on success.) Each object's events run one at a time, and
//! every decision is a synchronous load → decide → store on its SQLite storage with no
//! `await` in between, so concurrent logins never lose or double-count a failure.
//!
//! Storage holds only failures younger than the window; an alarm after the window
//! deletes the rest, so the objects for spent keys (one per username ever tried) do not
//! keep data.
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

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS failures (at_ms INTEGER NOT NULL)";
const TABLE_EXISTS: &str =
    "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'failures'";

#[durable_object]
pub struct LoginLimiter {
    state: State,
    env: Env,
}

impl DurableObject for LoginLimiter {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let call = read_call::<LimiterCall>(&mut req).await;
        match call.and_then(|call| self.on_call(call)) {
            Ok((standing, recorded)) => {
                if recorded {
                    self.expire_later().await;
                }
                Ok(json(200, &standing).unwrap_or_else(ApiError::into_response))
            }
            Err(e) => Ok(e.into_response()),
        }
    }

    /// One window after the last recorded failure: drop what expired, and all storage
    /// once nothing is left (a failure recorded meanwhile re-arms the alarm instead).
    async fn alarm(&self) -> Result<Response> {
        let policy = self
            .policy()
            .map_err(|e| worker::Error::RustError(format!("{e:?}")))?;
        let now = now_millis();
        let ledger = self.load(&policy, now)?;
        match ledger.failures().last() {
            None => self.state.storage().delete_all().await?,
            Some(&newest) => {
                let wait = (newest + policy.window_secs * 1000).saturating_sub(now);
                self.state
                    .storage()
                    .set_alarm(Duration::from_millis(wait.max(1)))
                    .await?;
            }
        }
        Response::empty()
    }
}

impl LoginLimiter {
    /// The failed-login limit, from the isolate's configuration.
    fn policy(&self) -> std::result::Result<ThrottlePolicy, ApiError> {
        Ok(config(&self.env)?.login_throttle)
    }

    /// Answers one call, synchronous from load to store; also says whether a failure was
    /// recorded (and cleanup must be scheduled).
    fn on_call(&self, call: LimiterCall) -> std::result::Result<(Standing, bool), ApiError> {
        let policy = self.policy()?;
        let now = now_millis();
        let mut ledger = self.load(&policy, now)?;
        let outcome = match call {
            LimiterCall::Standing => return Ok((ledger.standing(&policy, now), false)),
            LimiterCall::Commit(outcome) => outcome,
        };
        let (effect, standing) = ledger.commit(&policy, now, outcome);
        let sql = self.state.storage().sql();
        match effect {
            Effect::Nothing => {}
            Effect::Record(at) => {
                sql.exec(SCHEMA, None)?;
                sql.exec(
                    "INSERT INTO failures (at_ms) VALUES (?1)",
                    vec![(at as i64).into()],
                )?;
            }
            Effect::Clear => {
                sql.exec("DELETE FROM failures", None)?;
            }
        }
        Ok((standing, matches!(effect, Effect::Record(_))))
    }

    /// The key's live failures; deletes the expired ones on the way.
    fn load(&self, policy: &ThrottlePolicy, now: u64) -> Result<Ledger> {
        #[derive(Deserialize)]
        struct Row {
            at_ms: i64,
        }
        #[derive(Deserialize)]
        struct Count {
            n: i64,
        }
        let sql = self.state.storage().sql();
        // The table exists only while there are failures to keep: created by the first
        // one, dropped by the alarm's `delete_all`. Asking never creates storage, so a
        // key that only ever succeeds leaves nothing behind.
        let table: Count = sql.exec(TABLE_EXISTS, None)?.one()?;
        if table.n == 0 {
            return Ok(Ledger::default());
        }
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

    /// Schedules the cleanup one window from now. Each recorded failure pushes it back;
    /// if events interleave and an earlier time wins, the alarm re-arms itself.
    async fn expire_later(&self) {
        let Ok(policy) = self.policy() else { return };
        let window = Duration::from_secs(policy.window_secs);
        if let Err(e) = self.state.storage().set_alarm(window).await {
            console_error!("login limiter alarm: {e}");
        }
    }
}
