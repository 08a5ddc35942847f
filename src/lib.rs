//! roomgate: authenticated realtime rooms on Cloudflare Workers.
//!
//! This file holds only the entry point and the route table. The layers, each using only
//! the ones above it:
//! - [`protocol`]: what crosses a boundary (wire frames, close codes, names, the calls
//!   between the Worker and its objects);
//! - [`auth`]: tokens, keys, passwords, grants, revocation rules, tickets;
//! - [`room`]: the room core (membership, fan-out decisions, history, rate, expiry);
//! - [`config`]: every setting;
//! - [`runtime`]: platform plumbing (bindings, errors, HTTP, the object client, D1,
//!   WebCrypto);
//! - [`store`]: D1 (users, revocations, the registry of active rooms, API keys);
//! - [`authn`]: the one authentication step;
//! - [`objects`]: the Durable Objects, each with its `client`;
//! - [`http`]: the Worker's routes.
//!
//! The first four are plain Rust, host-tested; the rest run only inside the Workers
//! runtime and are tested end to end in `tests/`.

pub mod auth;
pub mod authn;
pub mod config;
pub mod http;
pub mod objects;
pub mod protocol;
pub mod room;
pub mod runtime;
pub mod store;

use serde_json::json;
use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsValue};
use worker::worker_sys::web_sys;
use worker::{event, Env, Method, Request, Response};

use crate::http::cors::{self, Readers};
use crate::http::page::{self, Asset};
use crate::http::{admin, api, gate, jwks, login, tickets};
use crate::runtime::error::ApiError;
use crate::runtime::executor::run_to_first_wait;
use crate::runtime::http::without_cf;

pub use crate::objects::fanout::Fanout;
pub use crate::objects::limiter::Limiter;
pub use crate::objects::room::Room;
pub use crate::objects::tickets::TicketBox;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The Worker's `fetch` handler. Exported by hand rather than with `#[event(fetch)]`,
/// whose `async` export answers every request with a promise and runs it from the
/// microtask queue: here a request that waits for nothing is answered directly, and the
/// gate hands back the room's answer as the promise it already is
/// (`runtime::executor`).
#[wasm_bindgen(js_name = fetch)]
pub fn fetch(req: web_sys::Request, env: Env, _ctx: worker::worker_sys::Context) -> JsValue {
    run_to_first_wait(async move {
        let req = Request::from(without_cf(req));
        match route(req, &env).await {
            Ok(Routed::Passed(raw)) => raw,
            Ok(Routed::Built(res)) => web_sys::Response::from(res).into(),
            Err(e) => web_sys::Response::from(e.into_response()).into(),
        }
    })
}

/// What a route answers: a response built in Rust, or a Durable Object's answer passed
/// through as it is (the gate's 101 with its socket, as a promise of it).
enum Routed {
    Built(Response),
    Passed(JsValue),
}

async fn route(req: Request, env: &Env) -> Result<Routed, ApiError> {
    let path = req.path();
    if req.method() == Method::Get {
        if let Some(room) = path.strip_prefix("/ws/") {
            return gate::connect(req, env, room).await.map(Routed::Passed);
        }
        if path == "/ws" {
            return Err(ApiError::InvalidRoom);
        }
    }
    api(req, env).await.map(Routed::Built)
}

async fn api(req: Request, env: &Env) -> Result<Response, ApiError> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (Method::Get, [""]) => page::serve(&req, Asset::Index),
        (Method::Get, ["app.js"]) => page::serve(&req, Asset::Script),
        (Method::Get, ["app.css"]) => page::serve(&req, Asset::Style),
        (Method::Get, ["roomgate-client.js"]) => page::serve(&req, Asset::Client),
        (_, [""] | ["app.js"] | ["app.css"] | ["roomgate-client.js"]) => {
            Err(ApiError::MethodNotAllowed("GET"))
        }
        (Method::Get, ["healthz"]) => runtime::http::json(200, &json!({"status": "ok"})),
        (_, ["healthz"]) => Err(ApiError::MethodNotAllowed("GET")),
        // The routes a browser app on another origin calls (`http::cors`).
        (Method::Options, ["login"] | ["ws-ticket"]) => {
            cors::preflight(&req, env, Readers::Listed, "POST")
        }
        (Method::Options, [".well-known", "jwks.json"]) => {
            cors::preflight(&req, env, Readers::Anyone, "GET")
        }
        (Method::Post, ["login"]) => {
            let cors = cors::Answer::for_request(&req, env, Readers::Listed);
            cors.finish(login::handle(req, env).await)
        }
        (_, ["login"]) => Err(ApiError::MethodNotAllowed("POST")),
        (Method::Get, [".well-known", "jwks.json"]) => {
            cors::Answer::for_request(&req, env, Readers::Anyone).finish(jwks::handle(env))
        }
        (_, [".well-known", "jwks.json"]) => Err(ApiError::MethodNotAllowed("GET")),
        (Method::Post, ["ws-ticket"]) => {
            let cors = cors::Answer::for_request(&req, env, Readers::Listed);
            cors.finish(tickets::issue(req, env).await)
        }
        (_, ["ws-ticket"]) => Err(ApiError::MethodNotAllowed("POST")),
        // The room is everything after `/ws/`, so `/ws/a/b` is the invalid room `a/b`.
        // GET /ws/... never gets here (`route`).
        (_, ["ws", ..]) => Err(ApiError::MethodNotAllowed("GET")),
        (_, ["admin", rest @ ..]) => admin::route(req, env, rest).await,
        // Boxed: the server API's state machine stays out of every other route's.
        (_, ["api", "v1", rest @ ..]) => Box::pin(api::route(req, env, rest)).await,
        _ => Err(ApiError::NotFound(format!("no route for {path}"))),
    }
}
