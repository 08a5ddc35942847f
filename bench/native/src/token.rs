//! The HS256 gate: the same checks roomgate applies to an upgrade's bearer token.
//!
//! The algorithm is fixed by the server (HS256 with the `JWT_SECRET` key); the token's
//! `alg` header must name it exactly, so `none`, `HS512`, `RS256`, ... are refused before
//! any signature work. The clock is passed in (`now`, Unix seconds) so the time checks
//! are testable.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::de::IgnoredAny;
use serde::Deserialize;
use sha2::Sha256;

/// Longest token accepted (bytes), as in roomgate.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Shortest accepted `JWT_SECRET` (bytes).
pub const MIN_SECRET_BYTES: usize = 32;
/// Clock skew allowed on `exp`, `iat` and `nbf` (seconds).
pub const LEEWAY_SECS: i64 = 30;
/// Longest `sub` and `name` claims (bytes).
pub const MAX_SUB_BYTES: usize = 128;
pub const MAX_NAME_BYTES: usize = 128;
/// The only `kid` accepted (the header may also omit it).
pub const KEY_ID: &str = "primary";

/// The authenticated user a token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sub`.
    pub id: String,
    /// `name`, or `sub` when the token has none.
    pub name: String,
    /// `exp` (Unix seconds).
    pub exp: i64,
}

/// Why a token was refused; the `Display` text is the 401's `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Oversized,
    Malformed,
    AlgorithmNotAccepted,
    CriticalHeader,
    UnknownKey,
    BadSignature,
    BadClaims,
    MissingClaim(&'static str),
    InvalidClaim(&'static str),
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    IssuedInFuture,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("missing bearer token"),
            Self::Oversized => write!(f, "token is longer than {MAX_TOKEN_BYTES} bytes"),
            Self::Malformed => f.write_str("token is not a well-formed JWT"),
            Self::AlgorithmNotAccepted => f.write_str("token algorithm is not accepted"),
            Self::CriticalHeader => f.write_str("token header has critical extensions (crit)"),
            Self::UnknownKey => f.write_str("token key id (kid) is not trusted"),
            Self::BadSignature => f.write_str("token signature is invalid"),
            Self::BadClaims => f.write_str("token claims are malformed"),
            Self::MissingClaim(c) => write!(f, "token has no {c} claim"),
            Self::InvalidClaim(c) => write!(f, "token {c} claim is invalid"),
            Self::WrongIssuer => f.write_str("token issuer is not accepted"),
            Self::WrongAudience => f.write_str("token audience is not accepted"),
            Self::Expired => f.write_str("token has expired"),
            Self::NotYetValid => f.write_str("token is not valid yet"),
            Self::IssuedInFuture => f.write_str("token is issued in the future"),
        }
    }
}

impl std::error::Error for TokenError {}

/// The JOSE header fields the gate looks at; anything else (`typ`, ...) is ignored.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, want: &str) -> bool {
        match self {
            Self::One(a) => a == want,
            Self::Many(all) => all.iter().any(|a| a == want),
        }
    }
}

/// The registered and roomgate claims. Numeric dates must be JSON integers: a string or
/// a fraction fails deserialisation and the token is refused as malformed.
#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    sub: Option<String>,
    name: Option<String>,
}

/// Verifies HS256 tokens for one issuer/audience with one key.
#[derive(Clone)]
pub struct Verifier {
    /// The keyed MAC state, computed once; each verification clones it (a copy of two
    /// SHA-256 states) instead of re-deriving the HMAC pads from the secret.
    mac: Hmac<Sha256>,
    issuer: String,
    audience: String,
}

impl Verifier {
    /// A verifier for `secret`, which must be at least [`MIN_SECRET_BYTES`] long.
    pub fn new(secret: &[u8], issuer: String, audience: String) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (got {})",
                secret.len()
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| e.to_string())?;
        Ok(Self {
            mac,
            issuer,
            audience,
        })
    }

    /// Checks `token` at time `now` (Unix seconds): header, signature, then claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Identity, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Oversized);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };

        // The header first: the algorithm is the server's, not the token's.
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| TokenError::Malformed)?;
        let header: Header<'_> =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
        if header.alg != "HS256" {
            return Err(TokenError::AlgorithmNotAccepted);
        }
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        if header.kid.is_some_and(|kid| kid != KEY_ID) {
            return Err(TokenError::UnknownKey);
        }

        // The signature covers the ASCII `header.claims` exactly as sent.
        let signature = URL_SAFE_NO_PAD
            .decode(sig_b64)
            .map_err(|_| TokenError::Malformed)?;
        let signed_len = header_b64.len() + 1 + claims_b64.len();
        let mut mac = self.mac.clone();
        mac.update(&token.as_bytes()[..signed_len]);
        // `verify_slice` compares in constant time (and refuses a wrong length).
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;

        let claims_json = URL_SAFE_NO_PAD
            .decode(claims_b64)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims =
            serde_json::from_slice(&claims_json).map_err(|_| TokenError::BadClaims)?;
        self.check_claims(claims, now)
    }

    fn check_claims(&self, claims: Claims, now: i64) -> Result<Identity, TokenError> {
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(TokenError::WrongIssuer);
        }
        if !claims.aud.is_some_and(|aud| aud.contains(&self.audience)) {
            return Err(TokenError::WrongAudience);
        }
        let exp = claims.exp.ok_or(TokenError::MissingClaim("exp"))?;
        let iat = claims.iat.ok_or(TokenError::MissingClaim("iat"))?;
        if now > exp.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::Expired);
        }
        if iat > now.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::IssuedInFuture);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
        {
            return Err(TokenError::NotYetValid);
        }
        let sub = claims.sub.ok_or(TokenError::MissingClaim("sub"))?;
        if !is_valid_label(&sub, MAX_SUB_BYTES) {
            return Err(TokenError::InvalidClaim("sub"));
        }
        let name = match claims.name {
            Some(name) if !is_valid_label(&name, MAX_NAME_BYTES) => {
                return Err(TokenError::InvalidClaim("name"))
            }
            Some(name) => name,
            None => sub.clone(),
        };
        Ok(Identity { id: sub, name, exp })
    }
}

/// Non-empty, at most `max` bytes, no control characters.
fn is_valid_label(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const SECRET: &[u8] = b"an-hs256-test-secret-of-32-bytes!";
    const NOW: i64 = 1_700_000_000;

    fn verifier() -> Verifier {
        Verifier::new(SECRET, "roomgate".into(), "roomgate".into()).unwrap()
    }

    fn b64(v: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    /// Signs `header.claims` with `key` (HS256), whatever the header says.
    fn sign_with(key: &[u8], header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
    }

    fn header() -> Value {
        json!({"alg": "HS256", "typ": "JWT", "kid": "primary"})
    }

    fn claims() -> Value {
        json!({
            "iss": "roomgate", "aud": "roomgate", "sub": "u1", "name": "Alice",
            "iat": NOW - 10, "exp": NOW + 900, "jti": "j1",
        })
    }

    fn with(mut base: Value, key: &str, value: Value) -> Value {
        base[key] = value;
        base
    }

    fn without(mut base: Value, key: &str) -> Value {
        base.as_object_mut().unwrap().remove(key);
        base
    }

    fn check(header: &Value, claims: &Value) -> Result<Identity, TokenError> {
        verifier().verify(&sign_with(SECRET, header, claims), NOW)
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(Verifier::new(&[7; 31], "i".into(), "a".into()).is_err());
        assert!(Verifier::new(&[7; 32], "i".into(), "a".into()).is_ok());
    }

    #[test]
    fn valid_token_is_accepted() {
        let id = check(&header(), &claims()).unwrap();
        assert_eq!(
            id,
            Identity {
                id: "u1".into(),
                name: "Alice".into(),
                exp: NOW + 900
            }
        );
    }

    #[test]
    fn optional_parts_are_optional() {
        // No kid, no name (defaults to sub), aud as an array, nbf in the past.
        let h = without(header(), "kid");
        let c = with(
            with(
                without(claims(), "name"),
                "aud",
                json!(["other", "roomgate"]),
            ),
            "nbf",
            json!(NOW - 5),
        );
        let id = check(&h, &c).unwrap();
        assert_eq!((id.id.as_str(), id.name.as_str()), ("u1", "u1"));
    }

    #[test]
    fn leeway_is_thirty_seconds_each_way() {
        let v = verifier();
        let expired_at =
            |exp: i64| sign_with(SECRET, &header(), &with(claims(), "exp", json!(exp)));
        assert!(v.verify(&expired_at(NOW - 30), NOW).is_ok());
        assert_eq!(
            v.verify(&expired_at(NOW - 31), NOW),
            Err(TokenError::Expired)
        );
        let issued_at = |iat: i64| sign_with(SECRET, &header(), &with(claims(), "iat", json!(iat)));
        assert!(v.verify(&issued_at(NOW + 30), NOW).is_ok());
        assert_eq!(
            v.verify(&issued_at(NOW + 31), NOW),
            Err(TokenError::IssuedInFuture)
        );
        let nbf = |nbf: i64| sign_with(SECRET, &header(), &with(claims(), "nbf", json!(nbf)));
        assert!(v.verify(&nbf(NOW + 30), NOW).is_ok());
        assert_eq!(v.verify(&nbf(NOW + 31), NOW), Err(TokenError::NotYetValid));
    }

    #[test]
    fn bad_signature_is_refused() {
        let other_key = b"another-secret-that-is-32-bytes-long";
        let token = sign_with(other_key, &header(), &claims());
        assert_eq!(
            verifier().verify(&token, NOW),
            Err(TokenError::BadSignature)
        );

        // A valid token with one claim changed after signing.
        let good = sign_with(SECRET, &header(), &claims());
        let parts: Vec<&str> = good.split('.').collect();
        let forged_claims = b64(with(claims(), "sub", json!("admin")).to_string().as_bytes());
        let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
        assert_eq!(
            verifier().verify(&forged, NOW),
            Err(TokenError::BadSignature)
        );

        // A truncated signature.
        let truncated = &good[..good.len() - 2];
        assert!(verifier().verify(truncated, NOW).is_err());
    }

    #[test]
    fn other_algorithms_are_refused() {
        // `none` with an empty signature: the classic downgrade.
        let none = format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"}).to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        assert_eq!(
            verifier().verify(&none, NOW),
            Err(TokenError::AlgorithmNotAccepted)
        );
        for alg in ["HS512", "HS384", "RS256", "hs256", "NONE"] {
            assert_eq!(
                check(&with(header(), "alg", json!(alg)), &claims()),
                Err(TokenError::AlgorithmNotAccepted),
                "{alg}"
            );
        }
        assert_eq!(
            check(&without(header(), "alg"), &claims()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn other_key_ids_are_refused() {
        assert_eq!(
            check(&with(header(), "kid", json!("secondary")), &claims()),
            Err(TokenError::UnknownKey)
        );
        assert_eq!(
            check(&with(header(), "crit", json!(["exp"])), &claims()),
            Err(TokenError::CriticalHeader)
        );
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        assert_eq!(
            check(&header(), &with(claims(), "exp", json!(NOW - 3600))),
            Err(TokenError::Expired)
        );
        assert_eq!(
            check(&header(), &with(claims(), "iat", json!(NOW + 3600))),
            Err(TokenError::IssuedInFuture)
        );
        assert_eq!(
            check(&header(), &with(claims(), "nbf", json!(NOW + 3600))),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn wrong_issuer_or_audience_is_refused() {
        for (key, value, want) in [
            ("iss", json!("someone-else"), TokenError::WrongIssuer),
            ("iss", json!(null), TokenError::WrongIssuer),
            ("aud", json!("someone-else"), TokenError::WrongAudience),
            ("aud", json!(["a", "b"]), TokenError::WrongAudience),
        ] {
            assert_eq!(
                check(&header(), &with(claims(), key, value.clone())),
                Err(want),
                "{key}={value}"
            );
        }
        assert_eq!(
            check(&header(), &without(claims(), "aud")),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn claims_must_have_the_right_shape() {
        let cases = [
            (without(claims(), "sub"), TokenError::MissingClaim("sub")),
            (
                with(claims(), "sub", json!("")),
                TokenError::InvalidClaim("sub"),
            ),
            (
                with(claims(), "sub", json!("x".repeat(129))),
                TokenError::InvalidClaim("sub"),
            ),
            (with(claims(), "sub", json!(7)), TokenError::BadClaims),
            (without(claims(), "exp"), TokenError::MissingClaim("exp")),
            (without(claims(), "iat"), TokenError::MissingClaim("iat")),
            (with(claims(), "exp", json!("soon")), TokenError::BadClaims),
            (with(claims(), "exp", json!(1.5)), TokenError::BadClaims),
            (
                with(claims(), "name", json!("")),
                TokenError::InvalidClaim("name"),
            ),
        ];
        for (c, want) in cases {
            assert_eq!(check(&header(), &c), Err(want), "{c}");
        }
        assert!(check(&header(), &with(claims(), "sub", json!("x".repeat(128)))).is_ok());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = sign_with(SECRET, &header(), &claims());
        let v = verifier();
        for bad in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!.??.**",
            &format!("{good}.extra"),
            &format!("{good}="),
        ] {
            assert!(v.verify(bad, NOW).is_err(), "{bad:?}");
        }
        assert_eq!(
            v.verify(&"a".repeat(MAX_TOKEN_BYTES + 1), NOW),
            Err(TokenError::Oversized)
        );
    }
}
