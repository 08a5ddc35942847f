//! The server API, `/api/v1/...`: a team's backend publishes into rooms, reads who is
//! present, pages through history and lists active rooms (README, "Server API").
//!
//! Every request carries `Authorization: Bearer <API key>` (`auth::api_keys`, stored in
//! `store::api_keys`). In order: a request from a browser page of another origin is
//! refused (403 `origin_forbidden`), the key is checked (401), its rate spent (429 with
//! `Retry-After`), then the route's scope and room (403). A server publish goes through
//! the room's sequencer like a client's (`objects::room::control`).

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use worker::{Env, Method, Request, Response};

use crate::auth::api_keys::{self, ApiKey, Denied, Scope, MAX_IDEMPOTENCY_KEY};
use crate::auth::origin::same_origin;
use crate::auth::throttle::api_key_rate_key;
use crate::auth::transport::Query;
use crate::objects::limiter::client as limiter;
use crate::objects::room::client as room_client;
use crate::protocol::frames::{nests_deeper_than, Member, MAX_DATA_DEPTH};
use crate::protocol::internal::{MemberConnections, Published};
use crate::protocol::names::is_valid_room_name;
use crate::room::history;
use crate::runtime::env::config;
use crate::runtime::error::ApiError;
use crate::runtime::http::{bearer, json, read_json};
use crate::store::api_keys::ApiKeyStore;
use crate::store::rooms;

/// Rooms one `POST /api/v1/publish` may name.
pub const MAX_PUBLISH_ROOMS: usize = 100;
/// What a publish body may hold besides `data` (at most `MAX_FRAME_BYTES`): the room
/// list of a batch and the idempotency key.
const ONE_ROOM_OVERHEAD: usize = 1024;
const BATCH_OVERHEAD: usize = 8 * 1024;
/// Rooms one `GET /api/v1/rooms` page reads.
pub const DEFAULT_ROOMS_PAGE: u32 = 50;
pub const MAX_ROOMS_PAGE: u32 = 100;

/// Routes `/api/v1/...` (the segments after `v1`).
pub async fn route(req: Request, env: &Env, rest: &[&str]) -> Result<Response, ApiError> {
    if !same_origin(&req.inner().url(), req.headers().get("origin")?.as_deref()) {
        return Err(ApiError::OriginForbidden);
    }
    let key = authenticate(&req, env).await?;
    let per_minute = config(env)?.api_requests_per_minute;
    if let Some(retry_after_secs) =
        limiter::spend(env, &api_key_rate_key(&key.id), per_minute, 60).await?
    {
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    match (req.method(), rest) {
        (Method::Post, ["rooms", room, "messages"]) => {
            permit(&key, Scope::Publish, Some(room))?;
            publish_one(req, env, &key, room).await
        }
        (Method::Get, ["rooms", room, "messages"]) => {
            permit(&key, Scope::History, Some(room))?;
            messages(&req, env, room).await
        }
        (_, ["rooms", _, "messages"]) => Err(ApiError::MethodNotAllowed("GET, POST")),
        (Method::Get, ["rooms", room, "members"]) => {
            permit(&key, Scope::Presence, Some(room))?;
            members(env, room).await
        }
        (_, ["rooms", _, "members"]) => Err(ApiError::MethodNotAllowed("GET")),
        (Method::Get, ["rooms"]) => {
            permit(&key, Scope::Rooms, None)?;
            list_rooms(&req, env, &key).await
        }
        (_, ["rooms"]) => Err(ApiError::MethodNotAllowed("GET")),
        (Method::Post, ["publish"]) => {
            permit(&key, Scope::Publish, None)?;
            publish_many(req, env, &key).await
        }
        (_, ["publish"]) => Err(ApiError::MethodNotAllowed("POST")),
        _ => Err(ApiError::NotFound("no such server API route".into())),
    }
}

/// The key the request presents: 401 for none, a malformed one (refused before any
/// lookup), an unknown one or a wrong secret.
async fn authenticate(req: &Request, env: &Env) -> Result<ApiKey, ApiError> {
    let presented = bearer(req)?.ok_or(ApiError::ApiKeyRequired)?;
    let id = api_keys::key_id(&presented).ok_or(ApiError::ApiKeyRequired)?;
    ApiKeyStore::new(env)?
        .verify(id, &presented)
        .await?
        .ok_or(ApiError::ApiKeyRequired)
}

/// 400 for a bad room name; 403 for a scope the key lacks or a room it does not cover.
fn permit(key: &ApiKey, scope: Scope, room: Option<&str>) -> Result<(), ApiError> {
    if room.is_some_and(|r| !is_valid_room_name(r)) {
        return Err(ApiError::InvalidRoom);
    }
    key.permits(scope, room).map_err(|denied| match denied {
        Denied::Scope(scope) => {
            ApiError::Forbidden(format!("this API key lacks the {} scope", scope.name()))
        }
        Denied::Room => ApiError::RoomForbidden,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OneRoom {
    data: Box<RawValue>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManyRooms {
    rooms: Vec<String>,
    data: Box<RawValue>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Serialize)]
struct Sequenced {
    seq: u64,
    ts: u64,
}

/// What a publish carries, checked as a client's `publish` is: `data` at most
/// `MAX_FRAME_BYTES` of JSON (413) nesting at most `MAX_DATA_DEPTH` levels (400), and an
/// idempotency key of 1-128 bytes. The key is scoped to the API key, so two backends
/// never collide.
fn checked(
    key: &ApiKey,
    data: &RawValue,
    idempotency_key: Option<&str>,
    max_frame_bytes: usize,
) -> Result<Option<String>, ApiError> {
    if data.get().len() > max_frame_bytes {
        return Err(ApiError::PayloadTooLarge(max_frame_bytes));
    }
    if nests_deeper_than(data.get(), MAX_DATA_DEPTH) {
        return Err(ApiError::BadRequest(format!(
            "data may nest at most {MAX_DATA_DEPTH} levels"
        )));
    }
    idempotency_key
        .map(|k| {
            if api_keys::valid_idempotency_key(k) {
                Ok(format!("{}:{k}", key.id))
            } else {
                Err(ApiError::BadRequest(format!(
                    "idempotency_key must be 1-{MAX_IDEMPOTENCY_KEY} bytes without control characters"
                )))
            }
        })
        .transpose()
}

fn sender(key: &ApiKey) -> Member {
    Member {
        id: key.sender_id(),
        name: key.name.clone(),
    }
}

/// `POST /api/v1/rooms/{room}/messages` `{"data", "idempotency_key"?}`: 201 `{seq, ts}`.
async fn publish_one(
    mut req: Request,
    env: &Env,
    key: &ApiKey,
    room: &str,
) -> Result<Response, ApiError> {
    let max = config(env)?.room.max_frame_bytes;
    let body: OneRoom = read_json(&mut req, max + ONE_ROOM_OVERHEAD).await?;
    let idempotency = checked(key, &body.data, body.idempotency_key.as_deref(), max)?;
    let published = room_client::publish(
        env,
        room,
        sender(key),
        body.data.get().to_owned(),
        idempotency,
    )
    .await?;
    answer_published(published)
}

fn answer_published(p: Published) -> Result<Response, ApiError> {
    let mut res = json(
        201,
        &Sequenced {
            seq: p.seq,
            ts: p.ts,
        },
    )?;
    if p.duplicate {
        res.headers_mut().set("idempotent-replayed", "true")?;
    }
    Ok(res)
}

/// One room's outcome in a batch: its `seq` and `ts`, or its error.
#[derive(Serialize)]
struct RoomOutcome {
    room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl RoomOutcome {
    fn of(room: String, result: Result<Published, ApiError>) -> Self {
        match result {
            Ok(p) => Self {
                room,
                seq: Some(p.seq),
                ts: Some(p.ts),
                error: None,
                message: None,
            },
            Err(e) => {
                if let ApiError::Internal(detail) = &e {
                    worker::console_error!("publish to {room}: {detail}");
                }
                Self {
                    room,
                    seq: None,
                    ts: None,
                    error: Some(e.code()),
                    message: Some(e.message()),
                }
            }
        }
    }
}

/// `POST /api/v1/publish` `{"rooms": [...], "data", "idempotency_key"?}`: 200 with each
/// room's outcome in the order given. A room that fails (a bad name, one the key does not
/// cover, one that could not be reached) is reported; the others still publish.
async fn publish_many(mut req: Request, env: &Env, key: &ApiKey) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Outcomes {
        results: Vec<RoomOutcome>,
        published: usize,
        failed: usize,
    }
    let max = config(env)?.room.max_frame_bytes;
    let body: ManyRooms = read_json(&mut req, max + BATCH_OVERHEAD).await?;
    if body.rooms.is_empty() || body.rooms.len() > MAX_PUBLISH_ROOMS {
        return Err(ApiError::BadRequest(format!(
            "rooms must name 1-{MAX_PUBLISH_ROOMS} rooms"
        )));
    }
    if (1..body.rooms.len()).any(|i| body.rooms[..i].contains(&body.rooms[i])) {
        return Err(ApiError::BadRequest("rooms must not repeat a room".into()));
    }
    let idempotency = checked(key, &body.data, body.idempotency_key.as_deref(), max)?;
    let data = body.data.get();
    let calls = body.rooms.iter().map(|room| {
        let idempotency = idempotency.clone();
        async move {
            permit(key, Scope::Publish, Some(room))?;
            room_client::publish(env, room, sender(key), data.to_owned(), idempotency).await
        }
    });
    let results: Vec<RoomOutcome> = body
        .rooms
        .iter()
        .cloned()
        .zip(join_all(calls).await)
        .map(|(room, result)| RoomOutcome::of(room, result))
        .collect();
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    json(
        200,
        &Outcomes {
            published: results.len() - failed,
            failed,
            results,
        },
    )
}

/// `?name=<whole number>`: `Ok(None)` when absent.
fn number(query: &Query, name: &str) -> Result<Option<u64>, ApiError> {
    query
        .get(name)
        .map(|raw| {
            raw.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("{name} must be a whole number")))
        })
        .transpose()
}

/// `GET /api/v1/rooms/{room}/messages?before=&limit=`: the kept messages before `before`
/// (newest when absent), oldest first, at most `limit` (1-100, default 50).
async fn messages(req: &Request, env: &Env, room: &str) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Messages<'a> {
        room: &'a str,
        messages: Vec<Box<RawValue>>,
    }
    let url = req.inner().url();
    let query = Query::of(&url);
    let (before, limit) = (number(&query, "before")?, number(&query, "limit")?);
    history::page(before, limit).map_err(ApiError::BadRequest)?;
    let page = room_client::history(env, room, before, limit).await?;
    json(
        200,
        &Messages {
            room,
            messages: page.messages,
        },
    )
}

/// `GET /api/v1/rooms/{room}/members`: each present user with their socket count.
async fn members(env: &Env, room: &str) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Members<'a> {
        room: &'a str,
        connections: usize,
        viewers: usize,
        members: Vec<MemberConnections>,
    }
    let found = room_client::members(env, room).await?;
    json(
        200,
        &Members {
            room,
            connections: found.connections,
            viewers: found.viewers,
            members: found.members,
        },
    )
}

/// `GET /api/v1/rooms?cursor=&limit=`: the active rooms (those in the registry) the key
/// covers, by name, with their connection and member counts. A page reads `limit` rooms
/// of the registry (1-100, default 50) and shows the ones the key covers, so it may
/// hold fewer; `next_cursor` is `null` on the last page.
async fn list_rooms(req: &Request, env: &Env, key: &ApiKey) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Active {
        room: String,
        connections: usize,
        members: usize,
        viewers: usize,
    }
    #[derive(Serialize)]
    struct Rooms {
        rooms: Vec<Active>,
        next_cursor: Option<String>,
    }
    let url = req.inner().url();
    let query = Query::of(&url);
    let cursor = query.get("cursor");
    if cursor.as_deref().is_some_and(|c| !is_valid_room_name(c)) {
        return Err(ApiError::BadRequest(
            "cursor must be a next_cursor this route answered".into(),
        ));
    }
    let limit = match number(&query, "limit")? {
        None => DEFAULT_ROOMS_PAGE,
        Some(n) if (1..=u64::from(MAX_ROOMS_PAGE)).contains(&n) => n as u32,
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "limit must be 1..={MAX_ROOMS_PAGE}"
            )))
        }
    };
    let scanned = rooms::page_after(env, cursor.as_deref(), limit).await?;
    let next_cursor = (scanned.len() == limit as usize)
        .then(|| scanned.last().cloned())
        .flatten();
    let covered: Vec<String> = scanned.into_iter().filter(|r| key.covers(r)).collect();
    let stats = join_all(covered.iter().map(|room| room_client::stats(env, room))).await;
    let mut rooms = Vec::with_capacity(covered.len());
    for (room, stats) in covered.into_iter().zip(stats) {
        let stats = stats?;
        rooms.push(Active {
            room,
            connections: stats.connections,
            members: stats.members,
            viewers: stats.viewers,
        });
    }
    json(200, &Rooms { rooms, next_cursor })
}
