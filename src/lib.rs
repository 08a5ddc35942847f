//! roomgate: authenticated realtime rooms on Cloudflare Workers.
//!
//! This file holds only the entry point and the router. The three parts a reader looks
//! for:
//! - [`auth`]: tokens, password hashes, secrets — plain Rust, host-tested;
//! - [`room`]: membership, fan-out decisions, the wire protocol — plain Rust, host-tested;
//! - [`glue`]: handlers, the `Room` Durable Object, D1 and WebCrypto — runtime only,
//!   tested end to end in `tests/`.

pub mod auth;
pub mod config;
pub mod error;
pub mod glue;
pub mod room;

use serde_json::json;
use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsValue};
use worker::worker_sys::web_sys;
use worker::{event, Env, Method, Request, Response};

use crate::error::ApiError;
use crate::glue::page::{self, Asset};
use crate::glue::{admin, gate, http, jwks, login, run_to_first_wait, tickets};

pub use crate::glue::login_limiter::LoginLimiter;
pub use crate::glue::room_binding::RoomObject;
pub use crate::glue::tickets::TicketBox;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The Worker's `fetch` handler. Exported by hand rather than with `#[event(fetch)]`,
/// whose `async` export answers every request with a promise and runs it from the
/// microtask queue: here a request that waits for nothing is answered directly, and the
/// gate hands back the room's answer as the promise it already is
/// (`glue::run_to_first_wait`).
#[wasm_bindgen(js_name = fetch)]
pub fn fetch(req: web_sys::Request, env: Env, _ctx: worker::worker_sys::Context) -> JsValue {
    run_to_first_wait(async move {
        let req = Request::from(http::without_cf(req));
        match route(req, &env).await {
            Ok(Answer::Passed(raw)) => raw,
            Ok(Answer::Built(res)) => web_sys::Response::from(res).into(),
            Err(e) => web_sys::Response::from(e.into_response()).into(),
        }
    })
}

/// A handler's answer: built in Rust, or a Durable Object's answer passed through as it
/// is (the gate's 101 with its socket, as a promise of it).
enum Answer {
    Built(Response),
    Passed(JsValue),
}

async fn route(req: Request, env: &Env) -> Result<Answer, ApiError> {
    let path = req.path();
    if req.method() == Method::Get {
        if let Some(room) = path.strip_prefix("/ws/") {
            return gate::connect(req, env, room).await.map(Answer::Passed);
        }
        if path == "/ws" {
            return Err(ApiError::InvalidRoom);
        }
    }
    api(req, env).await.map(Answer::Built)
}

async fn api(req: Request, env: &Env) -> Result<Response, ApiError> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (Method::Get, [""]) => page::serve(&req, Asset::Index),
        (Method::Get, ["app.js"]) => page::serve(&req, Asset::Script),
        (Method::Get, ["app.css"]) => page::serve(&req, Asset::Style),
        (_, [""] | ["app.js"] | ["app.css"]) => Err(ApiError::MethodNotAllowed("GET")),
        (Method::Get, ["healthz"]) => http::json(200, &json!({"status": "ok"})),
        (_, ["healthz"]) => Err(ApiError::MethodNotAllowed("GET")),
        (Method::Post, ["login"]) => login::handle(req, env).await,
        (_, ["login"]) => Err(ApiError::MethodNotAllowed("POST")),
        (Method::Get, [".well-known", "jwks.json"]) => jwks::handle(env),
        (_, [".well-known", "jwks.json"]) => Err(ApiError::MethodNotAllowed("GET")),
        (Method::Post, ["ws-ticket"]) => tickets::issue(req, env).await,
        (_, ["ws-ticket"]) => Err(ApiError::MethodNotAllowed("POST")),
        // The room is everything after `/ws/`, so `/ws/a/b` is the invalid room `a/b`.
        // GET /ws/... never gets here (`route`).
        (_, ["ws", ..]) => Err(ApiError::MethodNotAllowed("GET")),
        (_, ["admin", rest @ ..]) => admin::route(req, env, rest).await,
        _ => Err(ApiError::NotFound(format!("no route for {path}"))),
    }
}
