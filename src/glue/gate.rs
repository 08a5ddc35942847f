//! `GET /ws/{room}`: the gate. Every check happens here, in the Worker, before a
//! WebSocketPair exists and before the room's Durable Object is called: a request that
//! fails any of them costs one Worker invocation and nothing more.
//!
//! Order: room name (400) → URL and header sizes (414 / 431, before anything is parsed)
//! → WebSocket upgrade (426) → `Origin` allowlist (403) → configuration (500) → `since`
//! (400, when present) → ticket or
//! token present and valid, not revoked (401) → room granted (403). Then the verified
//! identity goes to the room in a handoff header on a request built from scratch (see
//! `handoff`).

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::worker_sys::web_sys;
use worker::{js_sys, Env, Request};

use super::handoff::{Handoff, HANDOFF_HEADER};
use super::http::bearer_token;
use super::revocation::ensure_not_revoked;
use super::room_control::CONNECT_PATH;
use super::webcrypto::WebCrypto;
use super::{config, now_secs, tickets, token_authority, ROOMS_BINDING};
use crate::auth::grants;
use crate::auth::token::{Identity, MAX_TOKEN_BYTES};
use crate::auth::transport::{find_credential, selected_protocol, UpgradeAuth};
use crate::config::Config;
use crate::error::ApiError;
use crate::room::is_valid_room_name;

/// Longest URL the gate reads: a room name, a token or ticket, and some room to spare.
pub const MAX_URL_BYTES: usize = MAX_TOKEN_BYTES + 2048;
/// Longest value of each header the gate reads (`Authorization`,
/// `Sec-WebSocket-Protocol`, `Origin`): a token plus framing.
pub const MAX_HEADER_BYTES: usize = MAX_TOKEN_BYTES + 512;

/// Every check, then the room: the answer is the promise of the room's response (its 101
/// with the socket, or the room's own refusal), passed on without waiting for it.
pub async fn connect(req: Request, env: &Env, room: &str) -> Result<JsValue, ApiError> {
    if !is_valid_room_name(room) {
        return Err(ApiError::InvalidRoom);
    }
    // The URL as the runtime has it: only its query is read, so it is not parsed
    // unless it has one.
    let url = req.inner().url();
    if url.len() > MAX_URL_BYTES {
        return Err(ApiError::UriTooLong(MAX_URL_BYTES));
    }
    // Each header is read once (a read crosses into the runtime and copies the value).
    let header = |name: &'static str| -> Result<Option<String>, ApiError> {
        match req.headers().get(name)? {
            Some(v) if v.len() > MAX_HEADER_BYTES => Err(ApiError::HeaderTooLarge(name)),
            v => Ok(v),
        }
    };
    let authorization = header("authorization")?;
    let protocols = header("sec-websocket-protocol")?;
    let origin = header("origin")?;
    let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::UpgradeRequired);
    }
    let config = config(env)?;
    check_origin(origin.as_deref(), &config)?;

    let query = Query::of(&url);
    // Resume point: a query parameter, like the other transports a browser's `WebSocket`
    // constructor can carry (it sets no headers).
    let since = query
        .get("since")
        .map(|raw| {
            raw.parse::<u64>()
                .map_err(|_| ApiError::BadRequest("since must be a whole number (a seq)".into()))
        })
        .transpose()?;
    let now = now_secs();
    let (identity, protocol) = match query.get("ticket") {
        // A ticket is its own transport: it replaces the token entirely.
        Some(ticket) => (
            tickets::redeem(env, &ticket, room, now).await?,
            selected_protocol(protocols.as_deref()),
        ),
        None => {
            let keyring = token_authority(env, &config)?;
            let query_token = query.get("token");
            let credential = find_credential(
                UpgradeAuth {
                    protocols: protocols.as_deref(),
                    bearer: bearer_token(authorization.as_deref()),
                    query_token: query_token.as_deref(),
                },
                config.allow_query_token,
            )
            .ok_or_else(|| ApiError::InvalidToken("no access token presented".into()))?;
            let identity = keyring
                .verify(&credential.token, now, &WebCrypto)
                .await
                .map_err(|e| ApiError::InvalidToken(e.to_string()))?;
            (identity, credential.selected_protocol)
        }
    };
    // Also for tickets: a revocation may have landed since the ticket was issued.
    ensure_not_revoked(env, &identity, now).await?;
    if !grants::allows(
        identity.rooms.as_deref(),
        room,
        config.rooms_open_by_default,
    ) {
        return Err(ApiError::RoomForbidden);
    }
    enter_room(env, room, identity, protocol, since)
}

/// The query parameters of a URL (none when it has no `?`).
struct Query<'a>(Option<&'a str>);

impl<'a> Query<'a> {
    fn of(url: &'a str) -> Self {
        let without_fragment = url.split('#').next().unwrap_or("");
        Query(without_fragment.split_once('?').map(|(_, q)| q))
    }

    /// The first value of `key`, percent-decoded.
    fn get(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.0?.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

/// Cross-site WebSocket hijacking defence: browsers always send `Origin` on an upgrade,
/// and a page on another site must not open sockets with the user's credentials. Clients
/// that send no `Origin` (servers, devices) are not browsers and pass.
fn check_origin(origin: Option<&str>, config: &Config) -> Result<(), ApiError> {
    let (Some(allowed), Some(origin)) = (&config.allowed_origins, origin) else {
        return Ok(());
    };
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if allowed.contains(&origin) {
        Ok(())
    } else {
        Err(ApiError::OriginForbidden)
    }
}

/// Calls the room with the verified identity. Not `async`: the room's answer goes back to
/// the client as it comes (no copy into a `worker::Response` and back, and no round
/// through the Rust executor to wait for it). Only a failure to reach the room is
/// turned into this API's 500 on the way.
fn enter_room(
    env: &Env,
    room: &str,
    identity: Identity,
    protocol: Option<&'static str>,
    since: Option<u64>,
) -> Result<JsValue, ApiError> {
    let handoff = Handoff {
        room: room.to_owned(),
        identity,
        protocol: protocol.map(str::to_owned),
        since,
    };
    // Fresh headers, as a plain object: nothing the client sent reaches the room.
    let headers = js_sys::Object::new();
    js_sys::Reflect::set(&headers, &"upgrade".into(), &"websocket".into())
        .map_err(worker::Error::from)?;
    js_sys::Reflect::set(
        &headers,
        &HANDOFF_HEADER.into(),
        &handoff.encode().as_str().into(),
    )
    .map_err(worker::Error::from)?;
    let init = web_sys::RequestInit::new();
    init.set_headers(&headers);
    let stub: RoomStub = env
        .durable_object(ROOMS_BINDING)
        .map_err(|e| {
            ApiError::Misconfigured(format!("Durable Object binding {ROOMS_BINDING}: {e}"))
        })?
        .get_by_name(room)?
        .into_rpc();
    let url = format!("https://room.internal{CONNECT_PATH}");
    let answer = stub.fetch(&url, &init).map_err(worker::Error::from)?;
    Ok(ROOM_UNREACHABLE
        .with(|handler| answer.catch_with(handler.as_ref().unchecked_ref()))
        .into())
}

thread_local! {
    /// Turns a failed call to a room (the object threw, or could not be reached) into
    /// the API's JSON 500, as an error before the upgrade. One function per isolate,
    /// attached to every upgrade's promise.
    static ROOM_UNREACHABLE: Closure<dyn FnMut(JsValue) -> JsValue> =
        Closure::new(|e: JsValue| -> JsValue {
            let error = ApiError::from(worker::Error::from(e));
            web_sys::Response::from(error.into_response()).into()
        });
}

#[wasm_bindgen]
extern "C" {
    /// A room's Durable Object stub, seen through `fetch(url, init)`.
    #[wasm_bindgen(extends = js_sys::Object)]
    type RoomStub;

    #[wasm_bindgen(method, catch)]
    fn fetch(
        this: &RoomStub,
        url: &str,
        init: &web_sys::RequestInit,
    ) -> Result<RoomAnswer, JsValue>;

    /// The promise of a room's response.
    #[wasm_bindgen(extends = js_sys::Promise)]
    type RoomAnswer;

    /// `promise.catch(handler)`, with a plain JS function (one made once, above).
    #[wasm_bindgen(method, js_name = catch)]
    fn catch_with(this: &RoomAnswer, handler: &js_sys::Function) -> js_sys::Promise;
}
