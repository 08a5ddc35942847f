//! Building the keyring from configuration: roomgate's own keys and trusted issuers.
//!
//! Own keys:
//! - `JWT_SECRET` (secret): an HMAC key, `kid` = `JWT_SECRET_KID` (default `primary`).
//! - `JWT_KEYS` (secret, optional): a JWK Set of more own keys — `oct` secrets (HS256) and
//!   Ed25519 private keys (`OKP` with `d`, EdDSA) — each with a `kid`.
//! - `JWT_SIGNING_KID` (var, optional): which own key signs. Default: `JWT_SECRET`'s key
//!   if set, else the first key of `JWT_KEYS`. Every other own key only verifies: that
//!   is how keys rotate (README: "Key rotation").
//!
//! Trusted issuers (`TRUSTED_ISSUERS`, a JSON array): each `{"iss", "aud", "jwks"?,
//! "secret"?, "sub_prefix"?, "default_rooms"?}`, where `jwks` is an inline JWK Set of public keys (EdDSA,
//! ES256, RS256 ≥ 2048 bits, or `oct` HS256) and `secret` is `{"kid", "binding"}` naming a
//! Worker secret that holds a shared HS256 key. An external user's id is `sub_prefix` +
//! `sub` (default prefix `"<iss>#"`), so no issuer can mint another issuer's — or
//! roomgate's own — users. Instead of (or besides) inline keys, `jwks_uri` or
//! `discovery` names where the issuer publishes them, fetched and cached at run time
//! (`auth::remote_keys`; `jwks_cache_seconds`, default 600). A token of theirs without a
//! `rooms` claim gets
//! `default_rooms` (either form of the claim), and with none set, no room at all.

use serde::Deserialize;

use super::{Issuer, Keyring};
use crate::auth::grants::{self, MAX_PATTERNS};
use crate::auth::keys::{
    hmac_key, own_key, verifying_key, JwkSet, KeyError, SigningKey, VerifyingKey,
};
use crate::auth::remote_keys::{check_url, RemoteSource, DEFAULT_CACHE_SECS, MAX_CACHE_SECS};
use crate::auth::token::TokenPolicy;
use crate::protocol::identity::RoomGrants;
use crate::protocol::names::MAX_SUB_PREFIX;

/// Default `kid` of the `JWT_SECRET` key.
pub const DEFAULT_SECRET_KID: &str = "primary";

/// Where the keyring's material comes from (values of the bindings; `None` when unset).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeySources<'a> {
    pub jwt_secret: Option<&'a str>,
    pub jwt_secret_kid: Option<&'a str>,
    pub jwt_keys: Option<&'a str>,
    pub signing_kid: Option<&'a str>,
    pub trusted_issuers: Option<&'a str>,
    /// `ALLOW_LOOPBACK_URLS`: a key URL may be `http` to a loopback host.
    pub allow_loopback_urls: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerConfig {
    iss: String,
    aud: String,
    #[serde(default)]
    jwks: Option<JwkSet>,
    #[serde(default)]
    secret: Option<SharedSecret>,
    /// Prefix of this issuer's user ids; default `"<iss>#"`.
    #[serde(default)]
    sub_prefix: Option<String>,
    /// The grants of this issuer's tokens that carry no `rooms` claim; default none.
    #[serde(default)]
    default_rooms: Option<RoomGrants>,
    /// Where the issuer publishes its keys (`auth::remote_keys`): a JWK Set URL, or an
    /// OpenID configuration URL whose `jwks_uri` is used.
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    discovery: Option<String>,
    #[serde(default)]
    jwks_cache_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SharedSecret {
    kid: String,
    binding: String,
}

/// Where an issuer entry says its keys are published, checked.
fn remote_source(
    issuer: &IssuerConfig,
    allow_loopback: bool,
) -> Result<Option<RemoteSource>, KeyError> {
    let bad = |why: String| KeyError(format!("issuer {:?}: {why}", issuer.iss));
    let (url, discovery) = match (&issuer.jwks_uri, &issuer.discovery) {
        (None, None) => {
            if issuer.jwks_cache_seconds.is_some() {
                return Err(bad("jwks_cache_seconds needs jwks_uri or discovery".into()));
            }
            return Ok(None);
        }
        (Some(url), None) => (url, false),
        (None, Some(url)) => (url, true),
        (Some(_), Some(_)) => return Err(bad("give jwks_uri or discovery, not both".into())),
    };
    check_url(url, allow_loopback).map_err(bad)?;
    let cache_secs = issuer.jwks_cache_seconds.unwrap_or(DEFAULT_CACHE_SECS);
    if !(1..=MAX_CACHE_SECS).contains(&cache_secs) {
        return Err(bad(format!(
            "jwks_cache_seconds must be 1-{MAX_CACHE_SECS}"
        )));
    }
    Ok(Some(RemoteSource {
        url: url.clone(),
        discovery,
        cache_secs,
    }))
}

fn set(text: &str, what: &str) -> Result<JwkSet, KeyError> {
    serde_json::from_str(text).map_err(|e| KeyError(format!("{what} is not a JWK Set: {e}")))
}

/// Builds the keyring. `secret` reads a Worker secret by name (for issuers' shared
/// secrets). Fails when no key at all is configured, or any configured key is unusable —
/// a half-loaded keyring would silently refuse or accept the wrong tokens.
pub fn build(
    policy: TokenPolicy,
    sources: KeySources<'_>,
    secret: impl Fn(&str) -> Option<String>,
) -> Result<Keyring, KeyError> {
    let mut ring = Keyring::new(policy);
    let mut signers: Vec<(String, SigningKey)> = Vec::new();

    if let Some(raw) = sources.jwt_secret.filter(|s| !s.is_empty()) {
        let kid = sources
            .jwt_secret_kid
            .unwrap_or(DEFAULT_SECRET_KID)
            .to_owned();
        let key = hmac_key("JWT_SECRET", raw.as_bytes())?;
        let signing = SigningKey::Hs256(key.clone());
        ring.add_own(kid.clone(), signing.clone(), VerifyingKey::Hs256(key))?;
        signers.push((kid, signing));
    }
    if let Some(text) = sources.jwt_keys.filter(|s| !s.trim().is_empty()) {
        for value in set(text, "JWT_KEYS")?.keys {
            let (kid, signing, verifying) = own_key(&value)?;
            ring.add_own(kid.clone(), signing.clone(), verifying)?;
            signers.push((kid, signing));
        }
    }
    if let Some(wanted) = sources.signing_kid.filter(|s| !s.is_empty()) {
        let (kid, key) = signers
            .into_iter()
            .find(|(kid, _)| kid == wanted)
            .ok_or_else(|| KeyError(format!("JWT_SIGNING_KID {wanted:?} is not an own key")))?;
        ring.sign_with(kid, key);
    }

    if let Some(text) = sources.trusted_issuers.filter(|s| !s.trim().is_empty()) {
        let issuers: Vec<IssuerConfig> =
            serde_json::from_str(text).map_err(|e| KeyError(format!("TRUSTED_ISSUERS: {e}")))?;
        for issuer in issuers {
            let mut keys = Vec::new();
            if let Some(jwks) = &issuer.jwks {
                for value in &jwks.keys {
                    keys.push(verifying_key(value)?);
                }
            }
            if let Some(shared) = &issuer.secret {
                let raw = secret(&shared.binding)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        KeyError(format!(
                            "issuer {:?}: secret {} is not set",
                            issuer.iss, shared.binding
                        ))
                    })?;
                keys.push((
                    shared.kid.clone(),
                    VerifyingKey::Hs256(hmac_key(&shared.kid, raw.as_bytes())?),
                ));
            }
            let remote = remote_source(&issuer, sources.allow_loopback_urls)?;
            let sub_prefix = issuer
                .sub_prefix
                .unwrap_or_else(|| format!("{}#", issuer.iss));
            if sub_prefix.len() > MAX_SUB_PREFIX {
                return Err(KeyError(format!(
                    "issuer {:?}: sub_prefix is over {MAX_SUB_PREFIX} bytes",
                    issuer.iss
                )));
            }
            if issuer
                .default_rooms
                .as_ref()
                .is_some_and(|g| !grants::valid(g))
            {
                return Err(KeyError(format!(
                    "issuer {:?}: default_rooms must be at most {MAX_PATTERNS} room patterns",
                    issuer.iss
                )));
            }
            ring.add_issuer(
                Issuer {
                    iss: issuer.iss,
                    aud: issuer.aud,
                    remote,
                    sub_prefix,
                    // Closed by default: no claim and no default is no room.
                    default_rooms: Some(
                        issuer
                            .default_rooms
                            .unwrap_or_else(|| RoomGrants::Full(Vec::new())),
                    ),
                },
                keys,
            )?;
        }
    }

    if ring.key_count() == 0 && !ring.has_remote_issuers() {
        return Err(KeyError(
            "JWT_SECRET is not set (no keys configured)".into(),
        ));
    }
    Ok(ring)
}
