//! Access tokens: the rules every token meets ([`TokenPolicy`]), why one is refused
//! ([`TokenError`]), and the claims as they travel. A verified token becomes a
//! [`crate::protocol::identity::Identity`].
//! Issuing and verifying live in [`super::keyring`], which holds the keys.
//!
//! HS256 is signed and checked by `jwt-compact`; public-key signatures (EdDSA, ES256,
//! RS256) by the runtime's WebCrypto through `keys::Crypto`, which is why issuing and
//! verifying are `async`. Time is injected: every check takes `now` (unix seconds) and
//! builds `jwt-compact`'s `TimeOptions` from it, so expiry is tested with a fixed clock,
//! never by sleeping.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jwt_compact::{Claim, ValidationError};
use serde::{Deserialize, Serialize};

use crate::protocol::identity::RoomGrants;

pub use super::keys::KeyError;

/// Longest token parsed. Anything longer is refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Rules every token must meet, whoever issued it, and how roomgate issues its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenPolicy {
    /// `iss` of roomgate's own tokens.
    pub issuer: String,
    /// `aud` of roomgate's own tokens.
    pub audience: String,
    pub ttl_secs: u64,
    pub leeway_secs: u64,
    /// Longest accepted `exp - iat`, for every issuer.
    pub max_lifetime_secs: u64,
}

/// A freshly signed token and the numbers `/login` reports with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    pub exp: u64,
}

/// Why a token was refused. Every variant is answered with `invalid_token`; the
/// `Display` text is the human-readable reason given alongside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Oversized,
    Malformed,
    /// The header lists `crit` extensions; roomgate implements none (RFC 7515 §4.1.11).
    CriticalHeader,
    UnknownKey,
    MissingKeyId,
    AlgorithmMismatch {
        expected: String,
        actual: String,
    },
    BadSignature,
    BadClaims,
    MissingClaim(&'static str),
    InvalidClaim(&'static str),
    Expired,
    NotYetValid,
    IssuedInFuture,
    LifetimeTooLong,
    WrongIssuer,
    WrongAudience,
    /// Signing failed or no signing key is configured (only on issue).
    Signing,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Oversized => write!(f, "token is longer than {MAX_TOKEN_BYTES} bytes"),
            Self::Malformed => f.write_str("token is not a well-formed JWT"),
            Self::CriticalHeader => f.write_str("token header has critical extensions (crit)"),
            Self::UnknownKey => f.write_str("token key id (kid) is not trusted"),
            Self::MissingKeyId => f.write_str("token has no key id (kid)"),
            Self::AlgorithmMismatch { expected, actual } => {
                write!(
                    f,
                    "token algorithm {actual:?} is not accepted (expected {expected})"
                )
            }
            Self::BadSignature => f.write_str("token signature is invalid"),
            Self::BadClaims => f.write_str("token claims are malformed"),
            Self::MissingClaim(c) => write!(f, "token has no `{c}` claim"),
            Self::InvalidClaim(c) => write!(f, "token `{c}` claim is invalid"),
            Self::Expired => f.write_str("token has expired"),
            Self::NotYetValid => f.write_str("token is not valid yet"),
            Self::IssuedInFuture => f.write_str("token is issued in the future"),
            Self::LifetimeTooLong => f.write_str("token lifetime (exp - iat) is too long"),
            Self::WrongIssuer => f.write_str("token issuer is not trusted for this key"),
            Self::WrongAudience => f.write_str("token audience does not include this service"),
            Self::Signing => f.write_str("token could not be signed"),
        }
    }
}

/// `aud` may be a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub(crate) fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::One(a) => a == wanted,
            Self::Many(all) => all.iter().any(|a| a == wanted),
        }
    }
}

/// The claims besides `exp`/`nbf`/`iat` (which `jwt-compact` carries itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RoomClaims {
    #[serde(default)]
    pub(crate) sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) iss: Option<String>,
    #[serde(default)]
    pub(crate) aud: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rooms: Option<RoomGrants>,
}

/// Just `iss`, read unverified to choose the key of a token without `kid`.
#[derive(Deserialize)]
pub(crate) struct IssOnly {
    #[serde(default)]
    pub(crate) iss: Option<String>,
}

pub(crate) fn at(unix_secs: u64) -> DateTime<Utc> {
    i64::try_from(unix_secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(crate) fn secs(moment: DateTime<Utc>) -> u64 {
    u64::try_from(moment.timestamp()).unwrap_or(0)
}

/// True when the (already well-formed) token's header has a `crit` member. `jwt-compact`'s
/// typed header drops unknown members, so the raw header is read for this one check.
pub(crate) fn has_crit(token: &str) -> bool {
    #[derive(Deserialize)]
    struct Crit {
        #[serde(default)]
        crit: Option<serde::de::IgnoredAny>,
    }
    token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Crit>(&h).ok())
        .is_some_and(|h| h.crit.is_some())
}

pub(crate) fn map_validation(err: ValidationError) -> TokenError {
    match err {
        ValidationError::AlgorithmMismatch { expected, actual } => {
            TokenError::AlgorithmMismatch { expected, actual }
        }
        ValidationError::InvalidSignatureLen { .. }
        | ValidationError::MalformedSignature(_)
        | ValidationError::InvalidSignature => TokenError::BadSignature,
        ValidationError::MalformedClaims(_) => TokenError::BadClaims,
        ValidationError::NoClaim(Claim::Expiration) => TokenError::MissingClaim("exp"),
        ValidationError::NoClaim(_) => TokenError::MissingClaim("nbf"),
        ValidationError::Expired => TokenError::Expired,
        ValidationError::NotMature => TokenError::NotYetValid,
        _ => TokenError::BadClaims,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
