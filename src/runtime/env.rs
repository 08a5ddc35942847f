//! The Worker's environment: its bindings, the clock, and what an isolate reads from them
//! once.
//!
//! Vars and secrets change only with a new deployment, which starts new isolates, so the
//! configuration and the keyring are built on an isolate's first request and kept. The
//! Worker and its Durable Objects run in the same isolate and share both. A value that
//! cannot be used is not kept: every request reports it until it is fixed.

use std::cell::RefCell;
use std::rc::Rc;

use worker::Env;

use super::error::ApiError;
use crate::auth::keyring::{self, KeySources, Keyring};
use crate::config::Config;

/// Binding names, as declared in `wrangler.toml`.
pub const DB_BINDING: &str = "DB";
pub const ROOMS_BINDING: &str = "ROOMS";
pub const TICKETS_BINDING: &str = "TICKETS";
pub const LIMITER_BINDING: &str = "LIMITER";
pub const FANOUT_BINDING: &str = "FANOUT";
/// Secrets (`wrangler secret put`, or `.dev.vars` locally).
pub const JWT_SECRET: &str = "JWT_SECRET";
pub const JWT_KEYS: &str = "JWT_KEYS";
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
pub const WEBHOOK_SECRET: &str = "WEBHOOK_SECRET";

/// Current time in unix seconds, from the runtime's clock. In workerd this clock only
/// advances across I/O (a Spectre mitigation), which is fine for token expiry.
pub fn now_secs() -> u64 {
    worker::Date::now().as_millis() / 1000
}

/// Current time in unix milliseconds (same clock as [`now_secs`]).
pub fn now_millis() -> u64 {
    worker::Date::now().as_millis()
}

/// A string binding (`[vars]`, `.dev.vars` or a secret), if bound. A `[vars]` value
/// written as a TOML table or array arrives as a JS object; it is handed over as JSON text.
pub fn string_binding(env: &Env, name: &str) -> Option<String> {
    match env.var(name) {
        Ok(v) => Some(v.to_string()),
        Err(_) => env
            .object_var::<serde_json::Value>(name)
            .ok()
            .map(|v| v.to_string()),
    }
}

thread_local! {
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
    static KEYRING: RefCell<Option<Rc<Keyring>>> = const { RefCell::new(None) };
}

/// The isolate's configuration, or 500 `misconfigured` naming the unusable key.
pub fn config(env: &Env) -> Result<Rc<Config>, ApiError> {
    if let Some(config) = CONFIG.with_borrow(|c| c.clone()) {
        return Ok(config);
    }
    let config = Rc::new(Config::from_lookup(|k| string_binding(env, k))?);
    CONFIG.set(Some(config.clone()));
    Ok(config)
}

/// The isolate's keyring (own keys and trusted issuers), or 500 `misconfigured` when no
/// usable key is configured (`JWT_SECRET` missing or under 32 bytes, a bad JWK, ...).
/// Parsing keys (RSA ones especially) costs far more than checking a token, which is
/// why it is built once.
pub fn keyring(env: &Env) -> Result<Rc<Keyring>, ApiError> {
    if let Some(ring) = KEYRING.with_borrow(|c| c.clone()) {
        return Ok(ring);
    }
    let config = config(env)?;
    let secret = string_binding(env, JWT_SECRET);
    let own_keys = string_binding(env, JWT_KEYS);
    let ring = Rc::new(keyring::build(
        config.tokens.clone(),
        KeySources {
            jwt_secret: secret.as_deref(),
            jwt_secret_kid: config.keys.secret_kid.as_deref(),
            jwt_keys: own_keys.as_deref(),
            signing_kid: config.keys.signing_kid.as_deref(),
            trusted_issuers: config.keys.trusted_issuers.as_deref(),
            allow_loopback_urls: config.allow_loopback_urls,
        },
        |name| string_binding(env, name),
    )?);
    KEYRING.set(Some(ring.clone()));
    Ok(ring)
}
