//! Glue: the parts that only exist inside the Workers runtime.
//!
//! Handlers here wire a request to the pure `auth` and `room` logic and carry out what it
//! decides against the bindings: D1 (`users`), WebCrypto (`webcrypto`), the `ROOMS`
//! Durable Object namespace (`gate` hands sockets to `room_object`). Tested end to end
//! against workerd (`tests/`), not on the host.

pub mod admin;
pub mod gate;
pub mod handoff;
pub mod http;
pub mod login;
pub mod login_limiter;
pub mod room_object;
pub mod users;
pub mod webcrypto;

use worker::Env;

use crate::auth::token::TokenAuthority;
use crate::config::Config;
use crate::error::ApiError;

/// Binding names, as declared in `wrangler.toml`.
pub const DB_BINDING: &str = "DB";
pub const ROOMS_BINDING: &str = "ROOMS";
pub const LOGIN_LIMITER_BINDING: &str = "LOGIN_LIMITER";
pub const JWT_SECRET: &str = "JWT_SECRET";
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";

/// Current time in unix seconds, from the runtime's clock. In workerd this clock only
/// advances across I/O (a Spectre mitigation), which is fine for token expiry.
pub fn now_secs() -> u64 {
    worker::Date::now().as_millis() / 1000
}

pub fn now_millis() -> u64 {
    worker::Date::now().as_millis()
}

/// A string binding (`[vars]`, `.dev.vars` or a secret), if bound.
pub fn string_binding(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

/// The request's configuration, read once.
pub fn config(env: &Env) -> Result<Config, ApiError> {
    Ok(Config::from_lookup(|k| string_binding(env, k))?)
}

/// The token signer/verifier, or 500 `misconfigured` when `JWT_SECRET` is missing or weak.
pub fn token_authority(env: &Env, config: &Config) -> Result<TokenAuthority, ApiError> {
    let secret = string_binding(env, JWT_SECRET);
    Ok(TokenAuthority::new(
        secret.as_deref().map(str::as_bytes),
        config.tokens.clone(),
    )?)
}
