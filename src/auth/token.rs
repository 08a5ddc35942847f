//! Access tokens: issuing and verifying the JWTs that open sockets.
//!
//! HS256 through `jwt-compact`. The algorithm is fixed by the key this module holds, never
//! read from the token: `jwt-compact`'s validator refuses any header whose `alg` differs
//! from the algorithm it was built for, so `alg: none`, HS512 or RS256 headers are all
//! refused before a signature is even looked at.
//!
//! Time is injected: every call takes `now` (unix seconds) and builds its
//! [`TimeOptions`] from it, so expiry is tested with a fixed clock and never by sleeping.
//! `jwt-compact`'s `clock` feature (which would read the system clock, absent in wasm) is
//! deliberately off.

use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::prelude::*;
use jwt_compact::{Claim, ValidationError};
use serde::{Deserialize, Serialize};

/// Shortest HMAC secret we will sign or verify with (RFC 7518 §3.2: a key of at least the
/// hash size).
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest token we will parse. Anything longer is refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest `sub`, `name` and `jti` claims accepted (bytes): they are kept in the socket's
/// attachment (capped at 2,048 bytes by the platform) and copied into frames, so they are
/// bounded like any other input.
pub const MAX_SUB_BYTES: usize = 128;
pub const MAX_NAME_BYTES: usize = 128;
pub const MAX_JTI_BYTES: usize = 128;

/// The verified identity behind a socket: what the gate hands the room, and what the room
/// keeps in the socket's attachment. Never the raw token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// User id (`sub`).
    pub sub: String,
    /// Display name (`name`, or `sub` when the issuer sent none).
    pub name: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Token id, when the token carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Issuer-side settings: who we are, who tokens are for, how long they live, how much
/// clock skew verification tolerates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    pub issuer: String,
    pub audience: String,
    pub ttl_secs: u64,
    pub leeway_secs: u64,
}

/// A freshly signed token and the numbers `/login` reports with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    pub exp: u64,
}

/// Why the signing key is unusable. Surfaces as a 500 `misconfigured`, never as a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    Missing,
    TooShort { len: usize },
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("JWT_SECRET is not set"),
            Self::TooShort { len } => write!(
                f,
                "JWT_SECRET is {len} bytes; at least {MIN_SECRET_BYTES} are required"
            ),
        }
    }
}

/// Why a token was refused. Every variant is answered with `invalid_token`; the
/// `Display` text is the human-readable reason given alongside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Oversized,
    Malformed,
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
    WrongIssuer,
    WrongAudience,
    /// Signing failed (only on issue; not expected with an HMAC key).
    Signing,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Oversized => write!(f, "token is longer than {MAX_TOKEN_BYTES} bytes"),
            Self::Malformed => f.write_str("token is not a well-formed JWT"),
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
            Self::WrongIssuer => f.write_str("token issuer is not trusted"),
            Self::WrongAudience => f.write_str("token audience does not include this service"),
            Self::Signing => f.write_str("token could not be signed"),
        }
    }
}

/// `aud` may be a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::One(a) => a == wanted,
            Self::Many(all) => all.iter().any(|a| a == wanted),
        }
    }
}

/// The claims besides `exp`/`nbf`/`iat` (which `jwt-compact` carries itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RoomClaims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

fn at(unix_secs: u64) -> DateTime<Utc> {
    i64::try_from(unix_secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn secs(moment: DateTime<Utc>) -> u64 {
    u64::try_from(moment.timestamp()).unwrap_or(0)
}

/// Signs and verifies roomgate's own HS256 tokens.
pub struct TokenAuthority {
    key: Hs256Key,
    policy: TokenPolicy,
}

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is deliberately left out.
        f.debug_struct("TokenAuthority")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl TokenAuthority {
    /// Builds the authority from the configured secret. `None` or a short secret is a
    /// configuration error: we never sign with a weak key.
    pub fn new(secret: Option<&[u8]>, policy: TokenPolicy) -> Result<Self, KeyError> {
        let secret = secret.filter(|s| !s.is_empty()).ok_or(KeyError::Missing)?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::TooShort { len: secret.len() });
        }
        Ok(Self {
            key: Hs256Key::new(secret),
            policy,
        })
    }

    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// Issues a token for user `sub` named `name`, valid from `now` for the policy's TTL.
    pub fn issue(
        &self,
        sub: &str,
        name: &str,
        jti: &str,
        now: u64,
    ) -> Result<IssuedToken, TokenError> {
        let exp = now.saturating_add(self.policy.ttl_secs);
        let mut claims = Claims::new(RoomClaims {
            sub: Some(sub.to_owned()),
            name: Some(name.to_owned()),
            iss: Some(self.policy.issuer.clone()),
            aud: Some(Audience::One(self.policy.audience.clone())),
            jti: Some(jti.to_owned()),
        });
        claims.issued_at = Some(at(now));
        claims.not_before = Some(at(now));
        claims.expiration = Some(at(exp));
        let header = Header::empty().with_token_type("JWT");
        let token = Hs256
            .token(&header, &claims, &self.key)
            .map_err(|_| TokenError::Signing)?;
        Ok(IssuedToken {
            token,
            expires_in: self.policy.ttl_secs,
            exp,
        })
    }

    /// Verifies `token` at time `now`: algorithm (pinned to HS256), signature, `exp`,
    /// `nbf`, `iat` (none in the future), `iss`, `aud`, and the presence of `sub`; all
    /// time checks allow the policy's leeway.
    pub fn verify(&self, token: &str, now: u64) -> Result<Identity, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Oversized);
        }
        let untrusted = UntrustedToken::new(token).map_err(|_| TokenError::Malformed)?;
        let verified = Hs256
            .validator::<RoomClaims>(&self.key)
            .validate(&untrusted)
            .map_err(map_validation)?;
        let claims = verified.claims();

        let leeway = i64::try_from(self.policy.leeway_secs).unwrap_or(i64::MAX);
        let time = TimeOptions::new(Duration::seconds(leeway), move || at(now));
        claims.validate_expiration(&time).map_err(map_validation)?;
        if claims.not_before.is_some() {
            claims.validate_maturity(&time).map_err(map_validation)?;
        }
        if let Some(iat) = claims.issued_at {
            if secs(iat) > now.saturating_add(self.policy.leeway_secs) {
                return Err(TokenError::IssuedInFuture);
            }
        }

        let custom = &claims.custom;
        if custom.iss.as_deref() != Some(self.policy.issuer.as_str()) {
            return Err(TokenError::WrongIssuer);
        }
        if !custom
            .aud
            .as_ref()
            .is_some_and(|a| a.contains(&self.policy.audience))
        {
            return Err(TokenError::WrongAudience);
        }
        let sub = custom
            .sub
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or(TokenError::MissingClaim("sub"))?;
        if sub.len() > MAX_SUB_BYTES {
            return Err(TokenError::InvalidClaim("sub"));
        }
        let name = custom.name.clone().unwrap_or_else(|| sub.clone());
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(TokenError::InvalidClaim("name"));
        }
        if custom.jti.as_ref().is_some_and(|j| j.len() > MAX_JTI_BYTES) {
            return Err(TokenError::InvalidClaim("jti"));
        }
        let exp = claims.expiration.map(secs).unwrap_or(0);
        Ok(Identity {
            sub,
            name,
            exp,
            jti: custom.jti.clone(),
        })
    }
}

fn map_validation(err: ValidationError) -> TokenError {
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
