//! The keyring: every key roomgate trusts, by `kid`, and the one it signs with.
//!
//! Each key belongs to one issuer (roomgate itself, or one of `TRUSTED_ISSUERS`) and has one
//! algorithm. Verification picks the key by the token's `kid`, then requires the header's
//! `alg` to be that key's algorithm: the token never chooses how it is checked. After the
//! signature, the claims must name the key's own issuer (`iss`) and include its audience
//! (`aud`), so a key of issuer A cannot vouch for issuer B; external users' ids carry their
//! issuer (`sub_prefix`). How the keyring is built from configuration: [`config`].

mod config;

pub use config::{build, KeySources, DEFAULT_SECRET_KID};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use jwt_compact::alg::Hs256;
use jwt_compact::prelude::*;

use super::grants;
use super::keys::{Crypto, KeyError, SigningKey, VerifyingKey};
use super::token::{
    at, has_crit, map_validation, secs, Audience, IssOnly, IssuedToken, RoomClaims, TokenError,
    TokenPolicy, MAX_TOKEN_BYTES,
};
use crate::auth::remote_keys::{RemoteKey, RemoteSource};
use crate::protocol::identity::{Identity, RoomGrants};
use crate::protocol::names::{has_hidden, MAX_JTI_BYTES, MAX_NAME_BYTES, MAX_SUB_BYTES};

/// The latest time claim (`exp`, `nbf`, `iat`) accepted, unix seconds:
/// 9999-12-31T23:59:59Z. Earlier than 1970 is refused too.
pub const MAX_CLAIM_TIME: i64 = 253_402_300_799;

/// A trusted issuer: tokens signed by its keys must carry this `iss` and `aud`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    pub iss: String,
    pub aud: String,
    /// Put in front of every `sub` from this issuer to form the user id, so that two
    /// issuers can never mint the same identity (roomgate's own issuer: empty).
    pub sub_prefix: String,
    /// The grants of a token without a `rooms` claim. `None` (roomgate's own issuer
    /// only): `ROOMS_OPEN_BY_DEFAULT` decides.
    pub default_rooms: Option<RoomGrants>,
    /// Where the issuer publishes its keys, when they are fetched rather than inline.
    pub remote: Option<RemoteSource>,
}

/// A token's issuer whose keys are published at a URL, and what the token asks of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteNeed<'a> {
    pub issuer: usize,
    pub source: &'a RemoteSource,
    pub kid: Option<String>,
}

struct KeyEntry {
    kid: String,
    issuer: usize,
    key: VerifyingKey,
}

/// Every key roomgate trusts, by `kid`, and the one it signs with.
pub struct Keyring {
    policy: TokenPolicy,
    /// `issuers[0]` is roomgate itself.
    issuers: Vec<Issuer>,
    keys: Vec<KeyEntry>,
    signer: Option<(String, SigningKey)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material is deliberately left out.
        f.debug_struct("Keyring")
            .field("policy", &self.policy)
            .field("issuers", &self.issuers)
            .field(
                "kids",
                &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// An empty keyring for roomgate's own issuer (`policy.issuer` / `policy.audience`).
    pub fn new(policy: TokenPolicy) -> Self {
        let own = Issuer {
            iss: policy.issuer.clone(),
            aud: policy.audience.clone(),
            sub_prefix: String::new(),
            default_rooms: None,
            remote: None,
        };
        Self {
            policy,
            issuers: vec![own],
            keys: Vec::new(),
            signer: None,
        }
    }

    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    fn add(&mut self, kid: String, issuer: usize, key: VerifyingKey) -> Result<(), KeyError> {
        if self.keys.iter().any(|k| k.kid == kid) {
            return Err(KeyError(format!("key id {kid:?} is configured twice")));
        }
        self.keys.push(KeyEntry { kid, issuer, key });
        Ok(())
    }

    /// Adds one of roomgate's own keys. The first own key added signs, unless
    /// [`Self::sign_with`] picks another.
    pub fn add_own(
        &mut self,
        kid: String,
        signing: SigningKey,
        verifying: VerifyingKey,
    ) -> Result<(), KeyError> {
        self.add(kid.clone(), 0, verifying)?;
        if self.signer.is_none() {
            self.signer = Some((kid, signing));
        }
        Ok(())
    }

    /// Makes `kid` (one of the own keys, given again with its signing half) the signer.
    pub fn sign_with(&mut self, kid: String, signing: SigningKey) {
        self.signer = Some((kid, signing));
    }

    /// Adds an external issuer and its keys.
    pub fn add_issuer(
        &mut self,
        issuer: Issuer,
        keys: Vec<(String, VerifyingKey)>,
    ) -> Result<(), KeyError> {
        if self.issuers.iter().any(|i| i.iss == issuer.iss) {
            return Err(KeyError(format!(
                "issuer {:?} is configured twice",
                issuer.iss
            )));
        }
        if keys.is_empty() && issuer.remote.is_none() {
            return Err(KeyError(format!("issuer {:?} has no keys", issuer.iss)));
        }
        self.issuers.push(issuer);
        let index = self.issuers.len() - 1;
        for (kid, key) in keys {
            self.add(kid, index, key)?;
        }
        Ok(())
    }

    /// How many configured keys verify (own and external; fetched ones not counted).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Whether some issuer's keys are fetched from a URL.
    pub fn has_remote_issuers(&self) -> bool {
        self.issuers.iter().any(|i| i.remote.is_some())
    }

    /// The published keys `token` needs, if its key is not configured and its (still
    /// unverified) `iss` names an issuer whose keys are fetched. `None` for anything
    /// else, which [`Self::verify`] decides on alone.
    pub fn remote_need(&self, token: &str) -> Option<RemoteNeed<'_>> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let untrusted = UntrustedToken::new(token).ok()?;
        let kid = untrusted.header().key_id.clone();
        if kid
            .as_deref()
            .is_some_and(|kid| self.keys.iter().any(|k| k.kid == kid))
        {
            return None;
        }
        let iss = untrusted
            .deserialize_claims_unchecked::<IssOnly>()
            .ok()?
            .custom
            .iss?;
        let issuer = self.issuers.iter().position(|i| i.iss == iss)?;
        let source = self.issuers[issuer].remote.as_ref()?;
        Some(RemoteNeed {
            issuer,
            source,
            kid,
        })
    }

    /// The `kid` roomgate signs with, if it can sign at all.
    pub fn signing_kid(&self) -> Option<&str> {
        self.signer.as_ref().map(|(kid, _)| kid.as_str())
    }

    /// Roomgate's own keys, for publishing the public ones.
    pub fn own_keys(&self) -> impl Iterator<Item = (&str, &VerifyingKey)> {
        self.keys
            .iter()
            .filter(|k| k.issuer == 0)
            .map(|k| (k.kid.as_str(), &k.key))
    }

    /// Issues a token for user `sub` named `name`, valid from `now` for the policy's TTL,
    /// signed with the signing key and carrying its `kid`.
    pub async fn issue(
        &self,
        sub: &str,
        name: &str,
        jti: &str,
        rooms: Option<&RoomGrants>,
        now: u64,
        crypto: &impl Crypto,
    ) -> Result<IssuedToken, TokenError> {
        let (kid, key) = self.signer.as_ref().ok_or(TokenError::Signing)?;
        let exp = now.saturating_add(self.policy.ttl_secs);
        let mut claims = Claims::new(RoomClaims {
            sub: Some(sub.to_owned()),
            name: Some(name.to_owned()),
            iss: Some(self.policy.issuer.clone()),
            aud: Some(Audience::One(self.policy.audience.clone())),
            jti: Some(jti.to_owned()),
            rooms: rooms.cloned(),
        });
        claims.issued_at = Some(at(now));
        claims.not_before = Some(at(now));
        claims.expiration = Some(at(exp));
        let token = match key {
            SigningKey::Hs256(k) => {
                let header = Header::empty()
                    .with_token_type("JWT")
                    .with_key_id(kid.clone());
                Hs256
                    .token(&header, &claims, k)
                    .map_err(|_| TokenError::Signing)?
            }
            SigningKey::EdDsa(private) => {
                let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
                let input = format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(header.to_string()),
                    URL_SAFE_NO_PAD
                        .encode(serde_json::to_vec(&claims).map_err(|_| TokenError::Signing)?)
                );
                let signature = crypto
                    .sign_ed25519(private, input.as_bytes())
                    .await
                    .ok_or(TokenError::Signing)?;
                format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
            }
        };
        Ok(IssuedToken {
            token,
            expires_in: self.policy.ttl_secs,
            exp,
        })
    }

    /// Chooses the key for a token: by `kid`, or — for a token without one — the only
    /// key of the issuer its (still unverified) `iss` names. `remote`: the published keys
    /// of one issuer, fetched for this token ([`Self::remote_need`]).
    fn key_for<'a>(
        &'a self,
        token: &UntrustedToken<'_>,
        remote: Option<(usize, &'a [RemoteKey])>,
    ) -> Result<(usize, &'a VerifyingKey), TokenError> {
        let fetched = remote
            .into_iter()
            .flat_map(|(issuer, keys)| keys.iter().map(move |(kid, key)| (issuer, kid, key)));
        let all = || {
            self.keys
                .iter()
                .map(|k| (k.issuer, &k.kid, &k.key))
                .chain(fetched.clone())
        };
        if let Some(kid) = token.header().key_id.as_deref() {
            return all()
                .find(|(_, k, _)| *k == kid)
                .map(|(issuer, _, key)| (issuer, key))
                .ok_or(TokenError::UnknownKey);
        }
        let iss = token
            .deserialize_claims_unchecked::<IssOnly>()
            .map_err(|_| TokenError::BadClaims)?
            .custom
            .iss;
        let issuer = self
            .issuers
            .iter()
            .position(|i| Some(&i.iss) == iss.as_ref())
            .ok_or(TokenError::WrongIssuer)?;
        let mut keys = all().filter(|(i, _, _)| *i == issuer);
        match (keys.next(), keys.next()) {
            (Some((_, _, only)), None) => Ok((issuer, only)),
            _ => Err(TokenError::MissingKeyId),
        }
    }

    /// Verifies `token` at time `now`: key by `kid`, algorithm pinned by that key,
    /// signature, `iss` and `aud` of the key's issuer, `exp`, `nbf`, `iat` (required, not
    /// in the future), lifetime, and the shape of `sub`, `name`, `jti` and `rooms`. All
    /// time checks allow the policy's leeway.
    pub async fn verify(
        &self,
        token: &str,
        now: u64,
        crypto: &impl Crypto,
    ) -> Result<Identity, TokenError> {
        self.verify_with(token, now, crypto, None).await
    }

    /// [`Self::verify`], also trusting `remote`: the published keys of one issuer.
    pub async fn verify_with(
        &self,
        token: &str,
        now: u64,
        crypto: &impl Crypto,
        remote: Option<(usize, &[RemoteKey])>,
    ) -> Result<Identity, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Oversized);
        }
        let untrusted = UntrustedToken::new(token).map_err(|_| TokenError::Malformed)?;
        if has_crit(token) {
            return Err(TokenError::CriticalHeader);
        }
        let (issuer_index, key) = self.key_for(&untrusted, remote)?;
        if untrusted.algorithm() != key.alg() {
            return Err(TokenError::AlgorithmMismatch {
                expected: key.alg().to_owned(),
                actual: untrusted.algorithm().to_owned(),
            });
        }
        let claims = match key {
            VerifyingKey::Hs256(k) => {
                Hs256
                    .validator::<RoomClaims>(k)
                    .validate(&untrusted)
                    .map_err(map_validation)?
                    .into_parts()
                    .1
            }
            VerifyingKey::Public(k) => {
                let signing_input = token
                    .rsplit_once('.')
                    .map(|(input, _)| input)
                    .ok_or(TokenError::Malformed)?;
                if !crypto
                    .verify(k, signing_input.as_bytes(), untrusted.signature_bytes())
                    .await
                {
                    return Err(TokenError::BadSignature);
                }
                untrusted
                    .deserialize_claims_unchecked::<RoomClaims>()
                    .map_err(map_validation)?
            }
        };
        let custom = &claims.custom;

        let issuer = &self.issuers[issuer_index];
        if custom.iss.as_deref() != Some(issuer.iss.as_str()) {
            return Err(TokenError::WrongIssuer);
        }
        if !custom.aud.as_ref().is_some_and(|a| a.contains(&issuer.aud)) {
            return Err(TokenError::WrongAudience);
        }

        // Time claims outside the range any real token uses are refused before any
        // arithmetic on them: jwt-compact subtracts the leeway from `nbf` unchecked, and
        // a timestamp near chrono's limits would overflow.
        for (name, claim) in [
            ("exp", claims.expiration),
            ("nbf", claims.not_before),
            ("iat", claims.issued_at),
        ] {
            if claim.is_some_and(|t| !(0..=MAX_CLAIM_TIME).contains(&t.timestamp())) {
                return Err(TokenError::InvalidClaim(name));
            }
        }
        let leeway = i64::try_from(self.policy.leeway_secs).unwrap_or(i64::MAX);
        let time = TimeOptions::new(Duration::seconds(leeway), move || at(now));
        claims.validate_expiration(&time).map_err(map_validation)?;
        if claims.not_before.is_some() {
            claims.validate_maturity(&time).map_err(map_validation)?;
        }
        let iat = claims
            .issued_at
            .map(secs)
            .ok_or(TokenError::MissingClaim("iat"))?;
        if iat > now.saturating_add(self.policy.leeway_secs) {
            return Err(TokenError::IssuedInFuture);
        }
        let exp = claims.expiration.map(secs).unwrap_or(0);
        if exp.saturating_sub(iat) > self.policy.max_lifetime_secs {
            return Err(TokenError::LifetimeTooLong);
        }

        let sub = custom
            .sub
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or(TokenError::MissingClaim("sub"))?;
        if sub.len() > MAX_SUB_BYTES || has_hidden(&sub) {
            return Err(TokenError::InvalidClaim("sub"));
        }
        let name = custom.name.clone().unwrap_or_else(|| sub.clone());
        if name.trim().is_empty() || name.len() > MAX_NAME_BYTES || has_hidden(&name) {
            return Err(TokenError::InvalidClaim("name"));
        }
        let sub = format!("{}{sub}", issuer.sub_prefix);
        // `api:` names the server API's keys as senders: no user may pass for one.
        if sub.starts_with(API_SENDER_PREFIX) {
            return Err(TokenError::InvalidClaim("sub"));
        }
        if custom.jti.as_ref().is_some_and(|j| j.len() > MAX_JTI_BYTES) {
            return Err(TokenError::InvalidClaim("jti"));
        }
        if custom.rooms.as_ref().is_some_and(|r| !grants::valid(r)) {
            return Err(TokenError::InvalidClaim("rooms"));
        }
        Ok(Identity {
            sub,
            name,
            exp,
            iat,
            jti: custom.jti.clone(),
            rooms: custom
                .rooms
                .clone()
                .or_else(|| issuer.default_rooms.clone()),
        })
    }
}

/// The user-id prefix of messages the server API publishes (`from.id` is
/// `api:<key name>`), which no token's user id may have.
pub const API_SENDER_PREFIX: &str = "api:";

#[cfg(test)]
mod tests;
