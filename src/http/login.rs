//! `POST /login`: username + password against D1, answered with a signed access token.
//!
//! An unknown user and a wrong password get the same 401 body, and cost the same PBKDF2
//! work (the unknown user is checked against a decoy hash at the cost most stored hashes
//! have), so neither the answer nor its timing tells whether an account exists. A success
//! against a hash of another cost re-hashes the password at `PBKDF2_ITERATIONS`. The
//! password is never logged, and stored only as a hash.
//!
//! Failed logins are limited per username and per client address (`CF-Connecting-IP`) by
//! the `Limiter` objects (`objects::limiter`): a locked key is refused with 429
//! before any PBKDF2 work, and every outcome is reported afterwards. Unknown users count
//! exactly like wrong passwords.

use serde::{Deserialize, Serialize};
use worker::{Env, Request, Response};

use crate::auth::password::{decoy_iterations, PasswordHash, SALT_BYTES};
use crate::auth::secret::{random_bytes, random_id};
use crate::objects::limiter::client::LoginThrottle;
use crate::protocol::frames::Member;
use crate::protocol::names::normalize_username;
use crate::runtime::env::{config, keyring, now_secs};
use crate::runtime::error::ApiError;
use crate::runtime::http::{json, read_json};
use crate::runtime::webcrypto::{pbkdf2_sha256, WebCrypto};
use crate::store::users::UserStore;

/// Largest accepted login body.
pub const MAX_LOGIN_BODY: usize = 4 * 1024;

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct LoginResponse<'a> {
    token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    user: &'a Member,
}

pub async fn handle(mut req: Request, env: &Env) -> Result<Response, ApiError> {
    let config = config(env)?;
    // Refuse to run at all with a weak or missing key, before touching credentials.
    let tokens = keyring(env)?;
    if tokens.signing_kid().is_none() {
        return Err(ApiError::Misconfigured(
            "no signing key: set JWT_SECRET or JWT_KEYS".into(),
        ));
    }
    let body: LoginRequest = read_json(&mut req, MAX_LOGIN_BODY).await?;
    let throttle = LoginThrottle::new(
        env,
        normalize_username(&body.username).as_deref(),
        req.headers().get("cf-connecting-ip")?.as_deref(),
    );
    throttle.check().await?;

    let store = UserStore::new(env)?;
    // Asked on every login, before the lookup: whether the user exists changes nothing
    // before the password work starts.
    let decoy = decoy_iterations(store.typical_iterations().await?, config.pbkdf2_iterations);
    let found = match normalize_username(&body.username) {
        Some(username) => store.credentials(&username).await?,
        None => None,
    };
    let grants = found.as_ref().and_then(|c| c.rooms.clone());
    let stored_text = found.as_ref().map(|c| c.password_hash.clone());
    let (stored, user) = match found {
        Some(c) => {
            let hash = PasswordHash::parse(&c.password_hash)
                .map_err(|e| ApiError::Internal(format!("user {}: {e}", c.id)))?;
            (
                hash,
                Some(Member {
                    id: c.id,
                    name: c.name,
                }),
            )
        }
        None => (PasswordHash::decoy(decoy), None),
    };
    let derived = pbkdf2_sha256(body.password.as_bytes(), &stored.salt, stored.iterations).await?;
    let matched = stored.matches(&derived);
    let user = user.filter(|_| matched);
    // Reported either way; 429 instead if the limit was reached meanwhile.
    throttle.commit(user.is_some()).await?;
    let user = user.ok_or(ApiError::InvalidCredentials)?;
    if stored.iterations != config.pbkdf2_iterations {
        if let Some(old) = stored_text {
            rehash(
                &store,
                &user.id,
                &old,
                &body.password,
                config.pbkdf2_iterations,
            )
            .await;
        }
    }

    let issued = tokens
        .issue(
            &user.id,
            &user.name,
            &random_id(),
            grants.as_ref().map(|g| &g.0),
            now_secs(),
            &WebCrypto,
        )
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    json(
        200,
        &LoginResponse {
            token: &issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            user: &user,
        },
    )
}

/// Stores the password hashed at the current `PBKDF2_ITERATIONS`, after a login proved it
/// against a hash made at another count. A failure only means it is tried again on the
/// next login.
async fn rehash(store: &UserStore, id: &str, old: &str, password: &str, iterations: u32) {
    let salt = random_bytes::<SALT_BYTES>().to_vec();
    let renewed = match pbkdf2_sha256(password.as_bytes(), &salt, iterations).await {
        Ok(hash) => PasswordHash {
            iterations,
            salt,
            hash,
        }
        .encode(),
        Err(e) => return worker::console_error!("rehash {id}: {e:?}"),
    };
    if let Err(e) = store.replace_hash(id, old, &renewed).await {
        worker::console_error!("rehash {id}: {e:?}");
    }
}
