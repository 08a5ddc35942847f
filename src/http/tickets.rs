//! `POST /ws-ticket`: trades a verified access token for a single-use ticket, so a
//! browser can open a socket without putting a reusable JWT in a URL
//! (`auth::ticket`; the records live in `objects::tickets`).

use serde::{Deserialize, Serialize};
use worker::{Env, Request, Response};

use crate::auth::throttle::ticket_issue_key;
use crate::auth::ticket::TicketRecord;
use crate::authn::{authenticate, grant, Credential};
use crate::objects::limiter::client as limiter;
use crate::objects::tickets::client as tickets;
use crate::protocol::names::is_valid_room_name;
use crate::runtime::env::{config, keyring, now_secs};
use crate::runtime::error::ApiError;
use crate::runtime::http::{bearer, json, read_json};
use crate::store::revocations::Freshness;

const MAX_TICKET_BODY: usize = 1024;

#[derive(Deserialize, Default)]
struct TicketRequest {
    #[serde(default)]
    room: Option<String>,
}

#[derive(Serialize)]
struct TicketResponse<'a> {
    ticket: &'a str,
    expires_in: u64,
}

/// `Authorization: Bearer <jwt>`, optional body `{"room": R}` binding the ticket to one
/// room.
pub async fn issue(mut req: Request, env: &Env) -> Result<Response, ApiError> {
    keyring(env)?;
    let token =
        bearer(&req)?.ok_or_else(|| ApiError::InvalidToken("no access token presented".into()))?;
    let now = now_secs();
    let credential = Credential::Token(&token);
    let identity = authenticate(env, credential, None, Freshness::Snapshot, now).await?;
    // Per token: one stolen token must not mint tickets without end.
    let per_minute = config(env)?.tickets_per_minute;
    if let Some(retry_after_secs) =
        limiter::spend(env, &ticket_issue_key(&token), per_minute, 60).await?
    {
        return Err(ApiError::RateLimited { retry_after_secs });
    }

    // The body is optional: no body (or no content type) means "any room".
    let has_body = match req.headers().get("content-length")?.as_deref() {
        Some(n) => n.trim() != "0",
        None => req.headers().get("content-type")?.is_some(),
    };
    let body: TicketRequest = if has_body {
        read_json(&mut req, MAX_TICKET_BODY).await?
    } else {
        TicketRequest::default()
    };
    let identity = match &body.room {
        Some(room) if !is_valid_room_name(room) => return Err(ApiError::InvalidRoom),
        Some(room) => grant(env, identity, room)?,
        None => identity,
    };

    let key = tickets::key(env).await?;
    let ticket = key.new_ticket();
    let record = TicketRecord::new(identity, body.room, now);
    let expires_in = record.expires_in(now);
    tickets::put(env, &key, &ticket, &record).await?;
    json(
        200,
        &TicketResponse {
            ticket: &ticket,
            expires_in,
        },
    )
}
