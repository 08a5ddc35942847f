//! `POST /ws-ticket` and the `TicketBox` Durable Object that stores tickets.
//!
//! Tickets must be single-use even when two upgrades race to redeem the same one, so they
//! live in Durable Objects (strongly consistent, one event at a time), not in KV.
//! Redemption is one `DELETE ... RETURNING` statement: whoever runs it first gets the
//! record, everyone after gets nothing. Tickets are spread over 64 objects by their first
//! character (`auth::ticket::shard`); each object prunes expired rows as it goes.

use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Headers, Method, Request, RequestInit, Response, Result,
    State,
};

use super::http::{bearer, json, read_json};
use super::revocation::ensure_not_revoked;
use super::webcrypto::WebCrypto;
use super::{config, now_secs, object_stub, token_authority, TICKETS_BINDING};
use crate::auth::grants;
use crate::auth::ticket::{new_ticket, shard, ticket_hash, well_formed, TicketError, TicketRecord};
use crate::auth::token::Identity;
use crate::error::ApiError;
use crate::room::is_valid_room_name;

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

/// `POST /ws-ticket`: `Authorization: Bearer <jwt>`, optional body `{"room": R}`.
pub async fn issue(mut req: Request, env: &Env) -> std::result::Result<Response, ApiError> {
    let config = config(env)?;
    let keyring = token_authority(env, &config)?;
    let token =
        bearer(&req)?.ok_or_else(|| ApiError::InvalidToken("no access token presented".into()))?;
    let now = now_secs();
    let identity = keyring
        .verify(&token, now, &WebCrypto)
        .await
        .map_err(|e| ApiError::InvalidToken(e.to_string()))?;
    ensure_not_revoked(env, &identity, now).await?;

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
    if let Some(room) = &body.room {
        if !is_valid_room_name(room) {
            return Err(ApiError::InvalidRoom);
        }
        if !grants::allows(
            identity.rooms.as_deref(),
            room,
            config.rooms_open_by_default,
        ) {
            return Err(ApiError::RoomForbidden);
        }
    }

    let ticket = new_ticket();
    let record = TicketRecord::new(identity, body.room, now);
    let expires_in = record.expires_in(now);
    call_box(
        env,
        &ticket,
        "put",
        &Stored {
            hash: ticket_hash(&ticket),
            record: Some(record),
        },
    )
    .await?;
    json(
        200,
        &TicketResponse {
            ticket: &ticket,
            expires_in,
        },
    )
}

/// Redeems `ticket` for `room`: the identity it was issued to, once.
pub async fn redeem(
    env: &Env,
    ticket: &str,
    room: &str,
    now: u64,
) -> std::result::Result<Identity, ApiError> {
    let refuse = |e: TicketError| ApiError::InvalidToken(e.to_string());
    if !well_formed(ticket) {
        return Err(refuse(TicketError::Unknown));
    }
    let taken = call_box(
        env,
        ticket,
        "take",
        &Stored {
            hash: ticket_hash(ticket),
            record: None,
        },
    )
    .await?
    .ok_or(refuse(TicketError::Unknown))?;
    taken.redeem(room, now).map_err(refuse)
}

/// What travels between the Worker and a `TicketBox`.
#[derive(Serialize, Deserialize)]
struct Stored {
    hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<TicketRecord>,
}

async fn call_box(
    env: &Env,
    ticket: &str,
    action: &str,
    body: &Stored,
) -> std::result::Result<Option<TicketRecord>, ApiError> {
    let stub = object_stub(env, TICKETS_BINDING, &shard(ticket))?;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(
            serde_json::to_string(body)
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .into(),
        ));
    let req = Request::new_with_init(&format!("https://tickets.internal/{action}"), &init)?;
    let mut res = stub.fetch_with_request(req).await?;
    match res.status_code() {
        200 => Ok(res.json::<Stored>().await?.record),
        404 => Ok(None),
        s => Err(ApiError::Internal(format!("ticket box answered {s}"))),
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tickets (
    hash TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    expires_at INTEGER NOT NULL
)";

#[durable_object]
pub struct TicketBox {
    state: State,
}

impl DurableObject for TicketBox {
    fn new(state: State, _env: Env) -> Self {
        if let Err(e) = state.storage().sql().exec(SCHEMA, None) {
            worker::console_error!("ticket schema: {e}");
        }
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let body: Stored = req.json().await?;
        let sql = self.state.storage().sql();
        let now = now_secs() as i64;
        sql.exec(
            "DELETE FROM tickets WHERE expires_at <= ?1",
            vec![now.into()],
        )?;
        match req.path().as_str() {
            "/put" => {
                let record = body
                    .record
                    .ok_or_else(|| worker::Error::RustError("put without a record".into()))?;
                sql.exec(
                    "INSERT INTO tickets (hash, record, expires_at) VALUES (?1, ?2, ?3)",
                    vec![
                        body.hash.into(),
                        serde_json::to_string(&record)?.into(),
                        (record.expires_at as i64).into(),
                    ],
                )?;
                Response::from_json(&Stored {
                    hash: String::new(),
                    record: None,
                })
            }
            "/take" => {
                #[derive(Deserialize)]
                struct Row {
                    record: String,
                }
                let rows: Vec<Row> = sql
                    .exec(
                        "DELETE FROM tickets WHERE hash = ?1 RETURNING record",
                        vec![body.hash.into()],
                    )?
                    .to_array()?;
                match rows.into_iter().next() {
                    Some(row) => Response::from_json(&Stored {
                        hash: String::new(),
                        record: Some(serde_json::from_str(&row.record)?),
                    }),
                    None => Ok(Response::empty()?.with_status(404)),
                }
            }
            _ => Ok(Response::empty()?.with_status(404)),
        }
    }
}
