//! `GET /ws/{room}`: the gate. Every check happens here, in the Worker, before a
//! WebSocketPair exists and before the room's Durable Object is called: a request that
//! fails any of them costs one Worker invocation and nothing more.
//!
//! Order: room name (400) → URL and header sizes (414 / 431, before anything is parsed)
//! → WebSocket upgrade (426) → configuration (500) → `Origin` allowlist (403) → `since`
//! (400, when present) → a ticket, or a usable keyring (500) and a token, valid and not
//! revoked (401) → room granted (403). Then the verified identity goes to the room in a
//! handoff (`objects::room::client::connect`).

use worker::wasm_bindgen::JsValue;
use worker::{Env, Request};

use crate::auth::grants;
use crate::auth::origin::origin_allowed;
use crate::auth::ticket::{well_formed, TicketError};
use crate::auth::token::MAX_TOKEN_BYTES;
use crate::auth::transport::{bearer_token, find_token, selected_protocol, Query, UpgradeAuth};
use crate::authn::{authenticate, Credential};
use crate::objects::room::client as room;
use crate::objects::tickets::client as tickets;
use crate::protocol::identity::Identity;
use crate::protocol::internal::Handoff;
use crate::protocol::names::is_valid_room_name;
use crate::runtime::env::{config, keyring, now_secs};
use crate::runtime::error::ApiError;
use crate::store::revocations::Freshness;

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
    if !origin_allowed(config.allowed_origins.as_deref(), origin.as_deref()) {
        return Err(ApiError::OriginForbidden);
    }

    let query = Query::of(&url);
    let since = query
        .since()
        .map_err(|why| ApiError::BadRequest(why.into()))?;
    let now = now_secs();
    let offered;
    let (credential, protocol) = match query.get("ticket") {
        // A ticket is its own transport: it replaces the token entirely.
        Some(ticket) => (
            Credential::Redeemed(redeem(env, &ticket, room, now).await?),
            selected_protocol(protocols.as_deref()),
        ),
        None => {
            // The keys are checked before the request is: a deployment without a usable
            // key says so to every request, with or without a token.
            keyring(env)?;
            offered = find_token(
                UpgradeAuth {
                    protocols: protocols.as_deref(),
                    bearer: bearer_token(authorization.as_deref()),
                    query_token: query.get("token").as_deref(),
                },
                config.allow_query_token,
            )
            .map_err(|why| ApiError::InvalidToken(why.to_string()))?;
            (Credential::Token(&offered.token), offered.selected_protocol)
        }
    };
    let identity = authenticate(env, credential, Some(room), Freshness::Snapshot, now).await?;
    let rights = grants::rights(identity.rooms.as_ref(), room, config.rooms_open_by_default);
    let handoff = Handoff {
        room: room.to_owned(),
        identity,
        protocol: protocol.map(str::to_owned),
        since,
        rights,
    };
    room::connect(env, &handoff)
}

/// Redeems `ticket` for `room`: the identity it was issued to, once. A ticket that was
/// not issued under the deployment's key costs no call to a ticket box.
async fn redeem(env: &Env, ticket: &str, room: &str, now: u64) -> Result<Identity, ApiError> {
    let refuse = |e: TicketError| ApiError::InvalidToken(e.to_string());
    if !well_formed(ticket) {
        return Err(refuse(TicketError::Unknown));
    }
    let key = tickets::key(env).await?;
    if !key.issued(ticket) {
        return Err(refuse(TicketError::Unknown));
    }
    let record = tickets::take(env, &key, ticket)
        .await?
        .ok_or(refuse(TicketError::Unknown))?;
    record.redeem(room, now).map_err(refuse)
}
