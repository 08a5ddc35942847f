//! Failed-login limits across isolates: the `LoginLimiter` Durable Object, one per
//! counter key (`user:<name>`, `ip:<address>`; see `auth::throttle`), and the
//! [`LoginThrottle`] that `POST /login` uses to ask them.
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

use std::time::Duration;

use serde::{Deserialize, Serialize};
use worker::{
    console_error, durable_object, DurableObject, Env, Method, ObjectNamespace, Request, Response,
    Result, State,
};

use super::{call_object, now_millis, string_binding, LOGIN_LIMITER_BINDING};
use crate::auth::throttle::{self, Effect, Ledger, Outcome, Standing, ThrottlePolicy};
use crate::config::Config;
use crate::error::ApiError;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS failures (at_ms INTEGER NOT NULL)";
const TABLE_EXISTS: &str =
    "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'failures'";

/// What the object answers to both of its requests.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    /// `Some(seconds)` when locked.
    retry_after: Option<u64>,
}

impl From<Standing> for Answer {
    fn from(s: Standing) -> Self {
        Self {
            retry_after: match s {
                Standing::Open => None,
                Standing::Locked { retry_after_secs } => Some(retry_after_secs),
            },
        }
    }
}

/// `?outcome=` of a commit request.
fn outcome_param(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Failed => "failed",
        Outcome::Succeeded { reset: false } => "succeeded",
        Outcome::Succeeded { reset: true } => "succeeded-reset",
    }
}

fn parse_outcome(param: &str) -> Option<Outcome> {
    match param {
        "failed" => Some(Outcome::Failed),
        "succeeded" => Some(Outcome::Succeeded { reset: false }),
        "succeeded-reset" => Some(Outcome::Succeeded { reset: true }),
        _ => None,
    }
}

#[durable_object]
pub struct LoginLimiter {
    state: State,
    /// Read from `[vars]` once per instance, as the Worker reads it per request.
    policy: std::result::Result<ThrottlePolicy, String>,
}

impl DurableObject for LoginLimiter {
    fn new(state: State, env: Env) -> Self {
        let policy = Config::from_lookup(|k| string_binding(&env, k))
            .map(|c| c.login_throttle)
            .map_err(|e| e.to_string());
        Self { state, policy }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let answer = match self.answer(&req) {
            Ok((answer, recorded)) => {
                if recorded {
                    self.expire_later().await;
                }
                answer
            }
            Err(e) => return Ok(e.into_response()),
        };
        Response::from_json(&answer)
    }

    /// One window after the last recorded failure: drop what expired, and all storage
    /// once nothing is left (a failure recorded meanwhile re-arms the alarm instead).
    async fn alarm(&self) -> Result<Response> {
        let policy = self.policy.clone().map_err(worker::Error::RustError)?;
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
    /// `GET /standing` or `POST /commit?outcome=...`. Synchronous from load to store.
    /// Also says whether a failure was recorded (and cleanup must be scheduled).
    fn answer(&self, req: &Request) -> std::result::Result<(Answer, bool), ApiError> {
        let policy = self.policy.clone().map_err(ApiError::Misconfigured)?;
        let now = now_millis();
        let url = req.url()?;
        match (req.method(), url.path()) {
            (Method::Get, "/standing") => {
                let ledger = self.load(&policy, now)?;
                Ok((ledger.standing(&policy, now).into(), false))
            }
            (Method::Post, "/commit") => {
                let outcome = url
                    .query_pairs()
                    .find(|(k, _)| k == "outcome")
                    .and_then(|(_, v)| parse_outcome(&v))
                    .ok_or_else(|| ApiError::BadRequest("unknown outcome".into()))?;
                let mut ledger = self.load(&policy, now)?;
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
                Ok((standing.into(), matches!(effect, Effect::Record(_))))
            }
            _ => Err(ApiError::NotFound("no such limiter operation".into())),
        }
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
        let Ok(policy) = &self.policy else { return };
        let window = Duration::from_secs(policy.window_secs);
        if let Err(e) = self.state.storage().set_alarm(window).await {
            console_error!("login limiter alarm: {e}");
        }
    }
}

/// The counters one login attempt is held to: its client address's and its username's.
///
/// Either may be missing: a username that cannot exist (outside the username rules) has
/// no account to protect and counts on its address only; a request without a usable
/// `CF-Connecting-IP` (which Cloudflare always sets; only unusual local setups lack it)
/// counts on its username only.
pub struct LoginThrottle {
    namespace: ObjectNamespace,
    /// Asked in this order. The username's counter, the only one a success clears, comes
    /// last: nothing asked after it can still turn the attempt into a refusal.
    counters: Vec<(String, bool)>,
}

impl LoginThrottle {
    pub fn new(
        env: &Env,
        username: Option<&str>,
        address_header: Option<&str>,
    ) -> std::result::Result<Self, ApiError> {
        let namespace = env.durable_object(LOGIN_LIMITER_BINDING).map_err(|e| {
            ApiError::Misconfigured(format!(
                "Durable Object binding {LOGIN_LIMITER_BINDING}: {e}"
            ))
        })?;
        let address = address_header
            .and_then(throttle::address_key)
            .map(|k| (k, false));
        let user = username.map(|u| (throttle::user_key(u), true));
        Ok(Self {
            namespace,
            counters: address.into_iter().chain(user).collect(),
        })
    }

    /// Before the password is checked: 429 if any counter is locked.
    pub async fn check(&self) -> std::result::Result<(), ApiError> {
        for (key, _) in &self.counters {
            if let Some(secs) = self.ask(key, Method::Get, "/standing").await? {
                return Err(ApiError::TooManyAttempts {
                    retry_after_secs: secs,
                });
            }
        }
        Ok(())
    }

    /// After the password check: reports the outcome to every counter, and answers 429
    /// if one of them was locked by concurrent attempts in the meantime. Then the attempt
    /// counts as a failure everywhere, whatever its password (see `auth::throttle`).
    pub async fn commit(&self, succeeded: bool) -> std::result::Result<(), ApiError> {
        let mut retry: Option<u64> = None;
        // Counters told of a success that recorded nothing.
        let mut spared = Vec::new();
        for (key, resets) in &self.counters {
            let outcome = if succeeded && retry.is_none() {
                Outcome::Succeeded { reset: *resets }
            } else {
                Outcome::Failed
            };
            match self.commit_one(key, outcome).await? {
                Some(secs) => retry = Some(retry.map_or(secs, |r| r.max(secs))),
                None if outcome != Outcome::Failed => spared.push(key),
                None => {}
            }
        }
        let Some(secs) = retry else { return Ok(()) };
        // A right password refused must leave the same trace as a wrong one.
        for key in spared {
            self.commit_one(key, Outcome::Failed).await?;
        }
        Err(ApiError::TooManyAttempts {
            retry_after_secs: secs,
        })
    }

    async fn commit_one(
        &self,
        key: &str,
        outcome: Outcome,
    ) -> std::result::Result<Option<u64>, ApiError> {
        let path = format!("/commit?outcome={}", outcome_param(outcome));
        self.ask(key, Method::Post, &path).await
    }

    /// One request to the counter `key`; its `Retry-After` if locked.
    async fn ask(
        &self,
        key: &str,
        method: Method,
        path: &str,
    ) -> std::result::Result<Option<u64>, ApiError> {
        let stub = self.namespace.id_from_name(key)?.get_stub()?;
        let url = format!("https://login-limiter.internal{path}");
        let answer: Answer = call_object(&stub, method, &url, None).await?;
        Ok(answer.retry_after)
    }
}
