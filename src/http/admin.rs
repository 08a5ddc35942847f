//! Admin API: user management for running roomgate in production, the room controls
//! (room stats, kick a user, revoke a token or user: `super::revoke`), and the server
//! API's keys (`super::api_keys`).
//!
//! Guarded by `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. When the
//! `ADMIN_TOKEN` secret is not set, every admin route answers 404, as if it did not
//! exist: an unconfigured deployment exposes no admin surface at all.

use serde::{Deserialize, Serialize};
use worker::{Env, Method, Request, Response};

use super::api_keys;
use super::revoke::{self, token_lifetime};
use crate::auth::grants::{self, MAX_PATTERNS};
use crate::auth::origin::same_origin;
use crate::auth::password::{check_new_password, PasswordHash, SALT_BYTES};
use crate::auth::secret::{ct_eq, random_bytes, random_id, MIN_SECRET_BYTES};
use crate::objects::limiter::client::LoginThrottle;
use crate::objects::room::client as room_client;
use crate::protocol::identity::{Revocation, RoomGrants, Target};
use crate::protocol::internal::Push;
use crate::protocol::names::{
    is_valid_room_name, normalize_username, valid_display_name, MAX_DISPLAY_NAME, MAX_USERNAME,
    MAX_USER_ID_BYTES,
};
use crate::runtime::env::{config, now_secs, string_binding, ADMIN_TOKEN};
use crate::runtime::error::ApiError;
use crate::runtime::http::{bearer, json, read_json};
use crate::runtime::webcrypto::pbkdf2_sha256;
use crate::store::users::{Grants, User, UserStore};

const MAX_ADMIN_BODY: usize = 4 * 1024;

/// Routes `/admin/...` (the segments after `admin`).
pub async fn route(req: Request, env: &Env, rest: &[&str]) -> Result<Response, ApiError> {
    // For servers and operators: a page of another origin gets nothing, whatever it holds.
    if !same_origin(&req.inner().url(), req.headers().get("origin")?.as_deref()) {
        return Err(ApiError::OriginForbidden);
    }
    authorize(&req, env).await?;
    match (req.method(), rest) {
        (Method::Get, ["users"]) => list(env).await,
        (_, ["users"]) => Err(ApiError::MethodNotAllowed("GET")),
        (Method::Put, ["users", username]) => put_user(req, env, username).await,
        (Method::Delete, ["users", username]) => delete_user(env, username).await,
        (_, ["users", _]) => Err(ApiError::MethodNotAllowed("PUT, DELETE")),
        (Method::Get, ["rooms", room]) => room_stats(env, room).await,
        (_, ["rooms", _]) => Err(ApiError::MethodNotAllowed("GET")),
        (Method::Post, ["rooms", room, "kick"]) => kick(req, env, room).await,
        (_, ["rooms", _, "kick"]) => Err(ApiError::MethodNotAllowed("POST")),
        (Method::Post, ["revoke"]) => revoke::handle(req, env).await,
        (_, ["revoke"]) => Err(ApiError::MethodNotAllowed("POST")),
        (Method::Post, ["api-keys"]) => api_keys::create(req, env).await,
        (Method::Get, ["api-keys"]) => api_keys::list(env).await,
        (_, ["api-keys"]) => Err(ApiError::MethodNotAllowed("GET, POST")),
        (Method::Delete, ["api-keys", id]) => api_keys::delete(env, id).await,
        (_, ["api-keys", _]) => Err(ApiError::MethodNotAllowed("DELETE")),
        _ => Err(ApiError::NotFound("no such admin route".into())),
    }
}

/// The admin guard: 404 without `ADMIN_TOKEN`, 500 with one too short to resist guessing,
/// 429 once the client address has failed too often (the login limits, on a counter of
/// their own), and 401 for a wrong token, compared in constant time.
async fn authorize(req: &Request, env: &Env) -> Result<(), ApiError> {
    let Some(expected) = string_binding(env, ADMIN_TOKEN).filter(|t| !t.is_empty()) else {
        return Err(ApiError::NotFound("not found".into()));
    };
    if expected.len() < MIN_SECRET_BYTES {
        return Err(ApiError::Misconfigured(format!(
            "ADMIN_TOKEN is shorter than {MIN_SECRET_BYTES} bytes"
        )));
    }
    let throttle = LoginThrottle::admin(env, req.headers().get("cf-connecting-ip")?.as_deref());
    throttle.check().await?;
    let presented = bearer(req)?.unwrap_or_default();
    let matched = ct_eq(expected.as_bytes(), presented.as_bytes());
    throttle.commit(matched).await?;
    if matched {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

fn username(raw: &str) -> Result<String, ApiError> {
    normalize_username(raw).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "usernames are 1-{MAX_USERNAME} characters of [a-z0-9_.-]"
        ))
    })
}

#[derive(Deserialize)]
struct PutUser {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// Absent: unchanged (none on create); `null`: no `rooms` claim; an array or an
    /// object of capabilities: grants.
    #[serde(default, deserialize_with = "present")]
    rooms: Option<Option<RoomGrants>>,
}

/// `Some(value)` whenever the key is present, so `null` can be told from absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<RoomGrants>>, D::Error> {
    Option::<RoomGrants>::deserialize(d).map(Some)
}

#[derive(Serialize)]
struct UserBody<'a> {
    user: &'a User,
    created: bool,
}

async fn put_user(mut req: Request, env: &Env, raw: &str) -> Result<Response, ApiError> {
    let username = username(raw)?;
    let body: PutUser = read_json(&mut req, MAX_ADMIN_BODY).await?;
    if let Some(name) = &body.name {
        if !valid_display_name(name) {
            return Err(ApiError::BadRequest(format!(
                "name must be 1-{MAX_DISPLAY_NAME} characters without control or invisible format characters"
            )));
        }
    }
    if let Some(Some(grants)) = &body.rooms {
        if !grants::valid(grants) {
            return Err(ApiError::BadRequest(format!(
                "rooms must be at most {MAX_PATTERNS} room names or prefixes ending in *, as an array or an object of capabilities"
            )));
        }
    }
    let grants: Option<Grants> = body.rooms.clone().flatten().map(Grants);
    let rooms = body.rooms.as_ref().map(|_| grants.as_ref());
    let store = UserStore::new(env)?;
    let before = store.find(&username).await?;
    let (user, created) = match body.password {
        None => {
            // No password: only a profile change of an existing user makes sense.
            if body.name.is_none() && rooms.is_none() {
                return Err(ApiError::BadRequest(
                    "give a password (to create or reset), a name and/or rooms".into(),
                ));
            }
            let user = store
                .update_profile(&username, body.name.as_deref(), rooms)
                .await?
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "user does not exist; a password is required to create it".into(),
                    )
                })?;
            (user, false)
        }
        Some(password) => {
            check_new_password(&password).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let iterations = config(env)?.pbkdf2_iterations;
            let salt = random_bytes::<SALT_BYTES>().to_vec();
            let hash = pbkdf2_sha256(password.as_bytes(), &salt, iterations).await?;
            let encoded = PasswordHash {
                iterations,
                salt,
                hash,
            }
            .encode();
            // Keep the current display name on a password reset that does not name one.
            let name = body
                .name
                .or_else(|| before.as_ref().map(|u| u.name.clone()))
                .unwrap_or_else(|| username.clone());
            store
                .upsert(&random_id(), &username, &name, &encoded, rooms, now_secs())
                .await?
        }
    };
    if let Some(before) = before.filter(|b| b.rooms != user.rooms) {
        regrant(env, &before.id, user.rooms.clone()).await?;
    }
    json(
        if created { 201 } else { 200 },
        &UserBody {
            user: &user,
            created,
        },
    )
}

/// A user's room grants changed: the tokens issued before now (which carry the old
/// grants) are revoked, and the user's sockets in rooms the new grants leave out are
/// closed with 4003 `forbidden`. A new token carries the new grants.
async fn regrant(env: &Env, user_id: &str, rooms: Option<Grants>) -> Result<(), ApiError> {
    let config = config(env)?;
    let now = now_secs();
    let revocation = Revocation {
        target: Target::SubIssuedBefore {
            sub: user_id.to_owned(),
            before: now,
        },
        until: now.saturating_add(token_lifetime(&config)),
    };
    let push = Push::Regrant {
        user_id: user_id.to_owned(),
        rooms: rooms.map(|g| g.0),
        revocation: revocation.clone(),
    };
    revoke::apply(env, &config, &revocation, push, now).await?;
    Ok(())
}

/// Deletes the user and revokes every token of theirs (by `sub`, for as long as any can
/// live), closing their sockets: a deleted account keeps no way in.
async fn delete_user(env: &Env, raw: &str) -> Result<Response, ApiError> {
    let username = username(raw)?;
    let Some(id) = UserStore::new(env)?.delete(&username).await? else {
        return Err(ApiError::NotFound(format!("no user {username:?}")));
    };
    let config = config(env)?;
    let now = now_secs();
    let revocation = Revocation {
        target: Target::Sub(id),
        until: now.saturating_add(token_lifetime(&config)),
    };
    revoke::apply(
        env,
        &config,
        &revocation,
        Push::Revoke(revocation.clone()),
        now,
    )
    .await?;
    Ok(Response::empty()?.with_status(204))
}

async fn list(env: &Env) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Users {
        users: Vec<User>,
    }
    let users = UserStore::new(env)?.list().await?;
    json(200, &Users { users })
}

/// `POST /admin/rooms/{room}/kick` `{"user_id": ...}`: closes that user's sockets in the
/// room with 4003 `kicked`. Not a ban: the user may connect again.
async fn kick(mut req: Request, env: &Env, room: &str) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Kick {
        user_id: String,
    }
    #[derive(Serialize)]
    struct Kicked<'a> {
        room: &'a str,
        user_id: &'a str,
        closed: usize,
    }
    if !is_valid_room_name(room) {
        return Err(ApiError::InvalidRoom);
    }
    let body: Kick = read_json(&mut req, MAX_ADMIN_BODY).await?;
    if body.user_id.is_empty() || body.user_id.len() > MAX_USER_ID_BYTES {
        return Err(ApiError::BadRequest(format!(
            "user_id must be 1-{MAX_USER_ID_BYTES} bytes"
        )));
    }
    let closed = room_client::kick(env, room, &body.user_id).await?;
    json(
        200,
        &Kicked {
            room,
            user_id: &body.user_id,
            closed,
        },
    )
}

/// `GET /admin/rooms/{room}`: connections, members, latest `seq` and kept history.
async fn room_stats(env: &Env, room: &str) -> Result<Response, ApiError> {
    if !is_valid_room_name(room) {
        return Err(ApiError::InvalidRoom);
    }
    json(200, &room_client::stats(env, room).await?)
}
