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

use worker::{Env, Headers, Method, Request, RequestInit, Response};

use super::handoff::{Handoff, HANDOFF_HEADER};
use super::http::bearer;
use super::revocation::ensure_not_revoked;
use super::webcrypto::WebCrypto;
use super::{config, now_secs, object_stub, tickets, token_authority, ROOMS_BINDING};
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
const READ_HEADERS: [&str; 3] = ["authorization", "sec-websocket-protocol", "origin"];

pub async fn connect(req: Request, env: &Env, room: &str) -> Result<Response, ApiError> {
    if !is_valid_room_name(room) {
        return Err(ApiError::InvalidRoom);
    }
    let url = req.url()?;
    if url.as_str().len() > MAX_URL_BYTES {
        return Err(ApiError::UriTooLong(MAX_URL_BYTES));
    }
    for name in READ_HEADERS {
        if req
            .headers()
            .get(name)?
            .is_some_and(|v| v.len() > MAX_HEADER_BYTES)
        {
            return Err(ApiError::HeaderTooLarge(name));
        }
    }
    let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::UpgradeRequired);
    }
    let config = config(env)?;
    check_origin(&req, &config)?;

    let protocols = req.headers().get("sec-websocket-protocol")?;
    let query = |key: &str| {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    // Resume point: a query parameter, like the other transports a browser's `WebSocket`
    // constructor can carry (it sets no headers).
    let since = query("since")
        .map(|raw| {
            raw.parse::<u64>()
                .map_err(|_| ApiError::BadRequest("since must be a whole number (a seq)".into()))
        })
        .transpose()?;
    let now = now_secs();
    let (identity, protocol) = match query("ticket") {
        // A ticket is its own transport: it replaces the token entirely.
        Some(ticket) => (
            tickets::redeem(env, &ticket, room, now).await?,
            selected_protocol(protocols.as_deref()),
        ),
        None => {
            let keyring = token_authority(env, &config)?;
            let bearer = bearer(&req)?;
            let query_token = query("token");
            let credential = find_credential(
                UpgradeAuth {
                    protocols: protocols.as_deref(),
                    bearer: bearer.as_deref(),
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
    enter_room(env, room, identity, protocol, since).await
}

/// Cross-site WebSocket hijacking defence: browsers always send `Origin` on an upgrade,
/// and a page on another site must not open sockets with the user's credentials. Clients
/// that send no `Origin` (servers, devices) are not browsers and pass.
fn check_origin(req: &Request, config: &Config) -> Result<(), ApiError> {
    let (Some(allowed), Some(origin)) = (&config.allowed_origins, req.headers().get("origin")?)
    else {
        return Ok(());
    };
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if allowed.contains(&origin) {
        Ok(())
    } else {
        Err(ApiError::OriginForbidden)
    }
}

async fn enter_room(
    env: &Env,
    room: &str,
    identity: Identity,
    protocol: Option<&'static str>,
    since: Option<u64>,
) -> Result<Response, ApiError> {
    let handoff = Handoff {
        room: room.to_owned(),
        identity,
        protocol: protocol.map(str::to_owned),
        since,
    };
    // Fresh headers: nothing the client sent reaches the room.
    let headers = Headers::new();
    headers.set("upgrade", "websocket")?;
    headers.set(HANDOFF_HEADER, &handoff.encode())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let internal = Request::new_with_init("https://room.internal/connect", &init)?;

    let stub = object_stub(env, ROOMS_BINDING, room)?;
    Ok(stub.fetch_with_request(internal).await?)
}
