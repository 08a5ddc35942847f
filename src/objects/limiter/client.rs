//! The only way anything else reaches the `Limiter` objects: the [`LoginThrottle`]
//! that `POST /login` (and the admin guard) holds each attempt to, and [`spend`] for a
//! rate counter.

use worker::Env;

use crate::auth::throttle;
use crate::protocol::internal::{LimiterCall, LoginOutcome, Standing};
use crate::runtime::env::LIMITER_BINDING;
use crate::runtime::error::ApiError;
use crate::runtime::object::{call, stub};

/// Counts one use of the rate counter `key`, at most `max` per `window_secs`: `None`
/// when counted, else the whole seconds until one more can be.
pub async fn spend(
    env: &Env,
    key: &str,
    max: u32,
    window_secs: u64,
) -> Result<Option<u64>, ApiError> {
    let counter = stub(env, LIMITER_BINDING, key)?;
    Ok(
        match call(&counter, &LimiterCall::Spend { max, window_secs }).await? {
            Standing::Open => None,
            Standing::Locked { retry_after_secs } => Some(retry_after_secs),
        },
    )
}

/// The counters one login attempt is held to: its client address's and its username's.
///
/// Either may be missing: a username that cannot exist (outside the username rules) has
/// no account to protect and counts on its address only; a request without a usable
/// `CF-Connecting-IP` (which Cloudflare always sets; only unusual local setups lack it)
/// counts on its username only.
pub struct LoginThrottle<'a> {
    env: &'a Env,
    /// Asked in this order, each with whether a success resets it. The username's
    /// counter, the only one a success clears, comes last: nothing asked after it can
    /// still turn the attempt into a refusal.
    counters: Vec<(String, bool)>,
}

impl<'a> LoginThrottle<'a> {
    pub fn new(env: &'a Env, username: Option<&str>, address_header: Option<&str>) -> Self {
        let address = address_header
            .and_then(throttle::address_key)
            .map(|k| (k, false));
        let user = username.map(|u| (throttle::user_key(u), true));
        Self {
            env,
            counters: address.into_iter().chain(user).collect(),
        }
    }

    /// The counter a client address's failed admin authentications are held to.
    pub fn admin(env: &'a Env, address_header: Option<&str>) -> Self {
        let address = address_header.and_then(throttle::admin_address_key);
        Self {
            env,
            counters: address.into_iter().map(|k| (k, false)).collect(),
        }
    }

    /// Before the password is checked: 429 if any counter is locked.
    pub async fn check(&self) -> Result<(), ApiError> {
        for (key, _) in &self.counters {
            if let Some(secs) = self.ask(key, LimiterCall::Standing).await? {
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
    pub async fn commit(&self, succeeded: bool) -> Result<(), ApiError> {
        let mut retry: Option<u64> = None;
        // Counters told of a success that recorded nothing.
        let mut spared = Vec::new();
        for (key, resets) in &self.counters {
            let outcome = if succeeded && retry.is_none() {
                LoginOutcome::Succeeded { reset: *resets }
            } else {
                LoginOutcome::Failed
            };
            match self.ask(key, LimiterCall::Commit(outcome)).await? {
                Some(secs) => retry = Some(retry.map_or(secs, |r| r.max(secs))),
                None if outcome != LoginOutcome::Failed => spared.push(key),
                None => {}
            }
        }
        let Some(secs) = retry else { return Ok(()) };
        // A right password refused must leave the same trace as a wrong one.
        for key in spared {
            self.ask(key, LimiterCall::Commit(LoginOutcome::Failed))
                .await?;
        }
        Err(ApiError::TooManyAttempts {
            retry_after_secs: secs,
        })
    }

    /// One call to the counter `key`; its `Retry-After` if locked.
    async fn ask(&self, key: &str, limiter_call: LimiterCall) -> Result<Option<u64>, ApiError> {
        let counter = stub(self.env, LIMITER_BINDING, key)?;
        Ok(match call(&counter, &limiter_call).await? {
            Standing::Open => None,
            Standing::Locked { retry_after_secs } => Some(retry_after_secs),
        })
    }
}
