//! `GET /ws/{room}`: the gate. Every check happens here, in the Worker, before a
//! WebSocketPair exists and before the room's Durable Object is called: a request that
//! fails any of them costs one Worker invocation and nothing more.
//!
//! Order: room name (400) → WebSocket upgrade (426) → configuration (500) → token
//! present and valid (401). Then the verified identity goes to the room in a handoff
//! header on a request built from scratch (see `handoff`).

use worker::{Env, Headers, Method, Request, RequestInit, Response};

use super::handoff::{Handoff, HANDOFF_HEADER};
use super::http::bearer;
use super::{config, now_secs, token_authority, ROOMS_BINDING};
use crate::auth::transport::{find_credential, UpgradeAuth};
use crate::error::ApiError;
use crate::room::is_valid_room_name;

pub async fn connect(req: Request, env: &Env, room: &str) -> Result<Response, ApiError> {
    if !is_valid_room_name(room) {
        return Err(ApiError::InvalidRoom);
    }
    let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::UpgradeRequired);
    }
    let config = config(env)?;
    let tokens = token_authority(env, &config)?;

    let protocols = req.headers().get("sec-websocket-protocol")?;
    let bearer = bearer(&req)?;
    let query_token = req
        .url()?
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let credential = find_credential(
        UpgradeAuth {
            protocols: protocols.as_deref(),
            bearer: bearer.as_deref(),
            query_token: query_token.as_deref(),
        },
        config.allow_query_token,
    )
    .ok_or_else(|| ApiError::InvalidToken("no access token presented".into()))?;
    let identity = tokens
        .verify(&credential.token, now_secs())
        .map_err(|e| ApiError::InvalidToken(e.to_string()))?;

    let handoff = Handoff {
        room: room.to_owned(),
        identity,
        protocol: credential.selected_protocol.map(str::to_owned),
    };
    // Fresh headers: nothing the client sent reaches the room.
    let headers = Headers::new();
    headers.set("upgrade", "websocket")?;
    headers.set(HANDOFF_HEADER, &handoff.encode())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let internal = Request::new_with_init("https://room.internal/connect", &init)?;

    let stub = env
        .durable_object(ROOMS_BINDING)
        .map_err(|e| {
            ApiError::Misconfigured(format!("Durable Object binding {ROOMS_BINDING}: {e}"))
        })?
        .id_from_name(room)?
        .get_stub()?;
    Ok(stub.fetch_with_request(internal).await?)
}
