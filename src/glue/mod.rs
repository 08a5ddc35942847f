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
pub mod jwks;
pub mod login;
pub mod login_limiter;
pub mod page;
pub mod revocation;
pub mod room_binding;
pub mod room_control;
pub mod room_expiry;
pub mod room_history;
pub mod room_object;
pub mod room_registry;
pub mod room_roster;
pub mod tickets;
pub mod users;
pub mod webcrypto;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::Env;

use crate::auth::keyring::Keyring;
use crate::auth::keyring::{self, KeySources};
use crate::config::Config;
use crate::error::ApiError;

/// Binding names, as declared in `wrangler.toml`.
pub const DB_BINDING: &str = "DB";
pub const ROOMS_BINDING: &str = "ROOMS";
pub const TICKETS_BINDING: &str = "TICKETS";
pub const LOGIN_LIMITER_BINDING: &str = "LOGIN_LIMITER";
pub const JWT_SECRET: &str = "JWT_SECRET";
pub const JWT_KEYS: &str = "JWT_KEYS";
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";

/// Current time in unix seconds, from the runtime's clock. In workerd this clock only
/// advances across I/O (a Spectre mitigation), which is fine for token expiry.
pub fn now_secs() -> u64 {
    worker::Date::now().as_millis() / 1000
}

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

/// Runs `work` on the caller's stack as far as it gets without waiting, and answers the
/// runtime with its value, or with a promise of it when it had to wait.
///
/// An `async` export (worker-rs's `#[event(fetch)]`, wasm-bindgen's `async fn`) always
/// answers with a promise and starts its body from the microtask queue, and each `await`
/// on a JS promise is another round through wasm-bindgen's executor. Most requests here
/// wait for nothing before their answer: a room accepting a socket writes nothing
/// asynchronously unless it has to, and the gate's only wait, the room's 101, is handed
/// back as the promise it is (`gate::enter_room`). So the future is polled once here.
/// Finished: its value goes back directly. Not finished (a D1 read, WebCrypto, an alarm
/// write): the same future goes on in wasm-bindgen's executor, and the runtime awaits
/// its promise, as before.
///
/// Sound because everything this crate awaits is a JS promise (`JsFuture`, directly or
/// inside worker-rs), and a `JsFuture` keeps the waker of its latest poll: the executor's
/// next poll replaces the no-op waker of this one, and a promise that settled in
/// between is read from the future's slot, not lost.
pub fn run_to_first_wait<F>(work: F) -> JsValue
where
    F: Future<Output = JsValue> + 'static,
{
    let mut work = Box::pin(work);
    match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => future_to_promise(async move { Ok(work.await) }).into(),
    }
}

/// The stub of the Durable Object named `name` in namespace `binding`.
pub fn object_stub(env: &Env, binding: &str, name: &str) -> Result<worker::Stub, ApiError> {
    Ok(env
        .durable_object(binding)
        .map_err(|e| ApiError::Misconfigured(format!("Durable Object binding {binding}: {e}")))?
        .id_from_name(name)?
        .get_stub()?)
}

/// Calls a Durable Object of ours with an internal request (a JSON `body` when given) and
/// decodes its JSON answer. Only the Worker reaches our objects, so anything but 200 is
/// a server fault.
pub async fn call_object<T: serde::de::DeserializeOwned>(
    stub: &worker::Stub,
    method: worker::Method,
    url: &str,
    body: Option<String>,
) -> Result<T, ApiError> {
    let mut init = worker::RequestInit::new();
    init.with_method(method);
    if let Some(text) = body {
        let headers = worker::Headers::new();
        headers.set("content-type", "application/json")?;
        init.with_headers(headers)
            .with_body(Some(worker::wasm_bindgen::JsValue::from_str(&text)));
    }
    let req = worker::Request::new_with_init(url, &init)?;
    let mut res = stub.fetch_with_request(req).await?;
    if res.status_code() != 200 {
        let detail = res.text().await.unwrap_or_default();
        return Err(ApiError::Internal(format!(
            "{url}: {} {detail}",
            res.status_code()
        )));
    }
    Ok(res.json::<T>().await?)
}

thread_local! {
    /// The configuration this isolate read from `[vars]`. Vars and secrets only change
    /// with a new deployment, which starts new isolates, so they are read (about twenty
    /// lookups across the wasm boundary, each parsed) on the first request only. An
    /// unusable value is not kept: every request reports it until it is fixed.
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

/// The Worker's configuration (read once per isolate; see [`CONFIG`]).
pub fn config(env: &Env) -> Result<Rc<Config>, ApiError> {
    if let Some(config) = CONFIG.with_borrow(|c| c.clone()) {
        return Ok(config);
    }
    let config = Rc::new(Config::from_lookup(|k| string_binding(env, k))?);
    CONFIG.set(Some(config.clone()));
    Ok(config)
}

thread_local! {
    /// The keyring built for this isolate. Parsing JWKs (RSA keys especially) costs far
    /// more than a token check, and secrets and vars only change with a new deployment
    /// (a new isolate), so it is built once, like [`CONFIG`] (reading the two secrets to
    /// check whether they changed was about 3 % of an upgrade's CPU time). A
    /// configuration without a usable key is not kept: every request reports it.
    static KEYRING: RefCell<Option<Rc<Keyring>>> = const { RefCell::new(None) };
}

/// The keyring (own keys + trusted issuers), or 500 `misconfigured` when no usable key is
/// configured (`JWT_SECRET` missing or under 32 bytes, a bad JWK, ...).
pub fn token_authority(env: &Env, config: &Config) -> Result<Rc<Keyring>, ApiError> {
    if let Some(ring) = KEYRING.with_borrow(|c| c.clone()) {
        return Ok(ring);
    }
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
        },
        |name| string_binding(env, name),
    )?);
    KEYRING.set(Some(ring.clone()));
    Ok(ring)
}
