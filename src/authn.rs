//! The one authentication step: a credential becomes an identity, the identity must not
//! be revoked, and it must be granted the room.
//!
//! Every way in goes through [`authenticate`]: the gate (`GET /ws/{room}`, with a token
//! or a redeemed ticket), ticket issue (`POST /ws-ticket`) and a room's in-band
//! `refresh`. The steps run in that order, and a refusal says how far the credential
//! got ([`Refusal`]), so each caller answers in its own terms (a JSON error before an
//! upgrade, an `error` frame on a live socket) from the same decision.

use worker::Env;

use crate::auth::grants;
use crate::protocol::identity::Identity;
use crate::runtime::env::{config, keyring};
use crate::runtime::error::ApiError;
use crate::runtime::remote_keys;
use crate::runtime::webcrypto::WebCrypto;
use crate::store::revocations::{self, Freshness};

/// What a client presented.
pub enum Credential<'a> {
    /// An access token, from any transport (`auth::transport`).
    Token(&'a str),
    /// The identity a single-use ticket was issued to. The ticket proved itself by being
    /// taken from its box; the identity is checked again because a revocation may have
    /// landed since the ticket was issued.
    Redeemed(Identity),
}

/// Why a credential was refused, with what it had proven by then.
#[derive(Debug)]
pub enum Refusal {
    /// It proves no identity: the token's reason, safe to show.
    Invalid(String),
    /// A valid credential whose token or user is revoked.
    Revoked(Identity),
    /// A valid, unrevoked credential that does not grant the room.
    Forbidden(Identity),
    /// The check itself failed (configuration, D1): a server fault.
    Failed(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Self::Failed(e)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid(reason) => ApiError::InvalidToken(reason),
            Refusal::Revoked(_) => ApiError::InvalidToken(REVOKED.into()),
            Refusal::Forbidden(_) => ApiError::RoomForbidden,
            Refusal::Failed(e) => e,
        }
    }
}

/// The reason given for a revoked token, wherever it is refused.
pub const REVOKED: &str = "token has been revoked";

/// Credential → identity → revocation → grant, at `now` (unix seconds). `room`: the room
/// the identity must be granted, if any yet; `freshness`: how fresh the revocation check
/// must be.
pub async fn authenticate(
    env: &Env,
    credential: Credential<'_>,
    room: Option<&str>,
    freshness: Freshness,
    now: u64,
) -> Result<Identity, Refusal> {
    let identity = prove(env, credential, now).await?;
    admit(env, identity, room, freshness, now).await
}

/// The first step on its own: the identity a credential proves, at `now`.
pub async fn prove(env: &Env, credential: Credential<'_>, now: u64) -> Result<Identity, Refusal> {
    match credential {
        Credential::Token(token) => {
            let ring = keyring(env)?;
            // An issuer that publishes its keys at a URL: fetch them first if need be.
            // (Only then is the token read twice.)
            let need = if ring.has_remote_issuers() {
                ring.remote_need(token)
            } else {
                None
            };
            let remote = match need {
                Some(need) => {
                    let loopback = config(env)?.allow_loopback_urls;
                    Some((
                        need.issuer,
                        remote_keys::keys_for(&need, loopback, now).await?,
                    ))
                }
                None => None,
            };
            let fetched = remote
                .as_ref()
                .map(|(issuer, keys)| (*issuer, keys.as_slice()));
            ring.verify_with(token, now, &WebCrypto, fetched)
                .await
                .map_err(|e| Refusal::Invalid(e.to_string()))
        }
        Credential::Redeemed(identity) => Ok(identity),
    }
}

/// The steps after [`prove`]: revocation, then the grant of `room` (if any).
pub async fn admit(
    env: &Env,
    identity: Identity,
    room: Option<&str>,
    freshness: Freshness,
    now: u64,
) -> Result<Identity, Refusal> {
    if revocations::is_revoked(env, &identity, now, freshness).await? {
        return Err(Refusal::Revoked(identity));
    }
    match room {
        Some(room) => grant(env, identity, room),
        None => Ok(identity),
    }
}

/// The last step on its own, for a room named after the identity was proven: whether
/// `identity` may enter `room` (`subscribe` under its grants, or under
/// `ROOMS_OPEN_BY_DEFAULT` for an own token without them).
pub fn grant(env: &Env, identity: Identity, room: &str) -> Result<Identity, Refusal> {
    let open = config(env)?.rooms_open_by_default;
    if grants::enters(identity.rooms.as_ref(), room, open) {
        Ok(identity)
    } else {
        Err(Refusal::Forbidden(identity))
    }
}
