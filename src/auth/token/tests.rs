//! Token table: every way a token can be wrong, verified at a fixed clock.

use super::*;
use crate::auth::keyring::{build, KeySources, Keyring};
use crate::auth::test_crypto::{block_on, RingCrypto};
use crate::protocol::identity::{Identity, RoomGrants};
use crate::protocol::names::MAX_SUB_BYTES;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_compact::alg::{Hs256, Hs256Key, Hs512, Hs512Key};
use jwt_compact::prelude::*;
use serde_json::{json, Value};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";
const NOW: u64 = 1_800_000_000;

fn policy() -> TokenPolicy {
    TokenPolicy {
        issuer: "roomgate".into(),
        audience: "roomgate".into(),
        ttl_secs: 3600,
        leeway_secs: 30,
        max_lifetime_secs: 86_400,
    }
}

fn authority() -> Keyring {
    build(
        policy(),
        KeySources {
            jwt_secret: Some(std::str::from_utf8(SECRET).unwrap()),
            ..Default::default()
        },
        |_| None,
    )
    .unwrap()
}

/// Signs arbitrary claims with HS256 under `secret`, bypassing the issuer's rules.
fn forge(secret: &[u8], claims: Value) -> String {
    let mut c = Claims::new(claims);
    c.expiration = None;
    Hs256
        .token(&Header::empty(), &c, &Hs256Key::new(secret))
        .unwrap()
}

/// Signs `header.payload` (both already base64url) with HS256.
fn forge_with_header(secret: &[u8], header: &str, payload: &str) -> String {
    use hmac::{Hmac, Mac};
    let input = format!("{header}.{payload}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn claims_at(iat: i64, nbf: i64, exp: i64) -> Value {
    json!({"sub": "u1", "name": "Alice", "iss": "roomgate", "aud": "roomgate",
           "jti": "j1", "iat": iat, "nbf": nbf, "exp": exp})
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn good() -> String {
    block_on(authority().issue("u1", "Alice", "j1", None, NOW, &RingCrypto))
        .unwrap()
        .token
}

fn with_segment(token: &str, index: usize, replace: impl FnOnce(&str) -> String) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[index] = replace(&parts[index]);
    parts.join(".")
}

#[test]
fn issued_token_verifies_with_all_claims() {
    let issued = block_on(authority().issue("u1", "Alice", "j1", None, NOW, &RingCrypto)).unwrap();
    assert_eq!(issued.expires_in, 3600);
    assert_eq!(issued.exp, NOW + 3600);
    let id = block_on(authority().verify(&issued.token, NOW, &RingCrypto)).unwrap();
    assert_eq!(
        id,
        Identity {
            sub: "u1".into(),
            name: "Alice".into(),
            exp: NOW + 3600,
            iat: NOW,
            jti: Some("j1".into()),
            rooms: None,
        }
    );
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(issued.token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    for claim in ["sub", "name", "iat", "nbf", "exp", "iss", "aud", "jti"] {
        assert!(payload.get(claim).is_some(), "missing {claim} in {payload}");
    }
    assert_eq!(payload["iat"], json!(NOW));
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(issued.token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], "primary");
}

#[test]
fn token_table() {
    let n = NOW as i64;
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims_at(n, n, n + 60))
    );
    let hs512 = {
        let mut c = Claims::new(claims_at(n, n, n + 60));
        c.expiration = None;
        Hs512
            .token(&Header::empty(), &c, &Hs512Key::new(SECRET))
            .unwrap()
    };
    let tampered_payload = with_segment(&good(), 1, |_| {
        b64(
            &json!({"sub": "admin", "name": "Mallory", "iss": "roomgate", "aud": "roomgate",
                    "iat": n, "nbf": n, "exp": n + 3600}),
        )
    });
    let tampered_signature = with_segment(&good(), 2, |sig| {
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bytes[0] ^= 0x01;
        URL_SAFE_NO_PAD.encode(bytes)
    });

    let cases: Vec<(&str, String, Result<(), TokenError>)> = vec![
        ("valid", good(), Ok(())),
        (
            "valid within leeway after exp",
            forge(SECRET, claims_at(n - 100, n - 100, n - 20)),
            Ok(()),
        ),
        (
            "expired",
            forge(SECRET, claims_at(n - 100, n - 100, n - 31)),
            Err(TokenError::Expired),
        ),
        (
            "not yet valid",
            forge(SECRET, claims_at(n, n + 31, n + 3600)),
            Err(TokenError::NotYetValid),
        ),
        (
            "nbf within leeway",
            forge(SECRET, claims_at(n, n + 29, n + 3600)),
            Ok(()),
        ),
        (
            "iat in the future",
            forge(SECRET, claims_at(n + 31, n, n + 3600)),
            Err(TokenError::IssuedInFuture),
        ),
        (
            "wrong secret",
            forge(
                b"another-secret-that-is-long-enough!!",
                claims_at(n, n, n + 60),
            ),
            Err(TokenError::BadSignature),
        ),
        (
            "wrong iss",
            forge(
                SECRET,
                json!({"sub": "u1", "iss": "someone-else", "aud": "roomgate", "iat": n, "exp": n + 60}),
            ),
            Err(TokenError::WrongIssuer),
        ),
        (
            "missing iss",
            forge(
                SECRET,
                json!({"sub": "u1", "aud": "roomgate", "exp": n + 60}),
            ),
            Err(TokenError::WrongIssuer),
        ),
        (
            "wrong aud",
            forge(
                SECRET,
                json!({"sub": "u1", "iss": "roomgate", "aud": "other", "iat": n, "exp": n + 60}),
            ),
            Err(TokenError::WrongAudience),
        ),
        (
            "aud array containing us",
            forge(
                SECRET,
                json!({"sub": "u1", "iss": "roomgate", "aud": ["x", "roomgate"], "iat": n, "exp": n + 60}),
            ),
            Ok(()),
        ),
        (
            "missing exp",
            forge(
                SECRET,
                json!({"sub": "u1", "iss": "roomgate", "aud": "roomgate"}),
            ),
            Err(TokenError::MissingClaim("exp")),
        ),
        (
            "missing iat",
            forge(
                SECRET,
                json!({"sub": "u1", "iss": "roomgate", "aud": "roomgate", "exp": n + 60}),
            ),
            Err(TokenError::MissingClaim("iat")),
        ),
        (
            "lifetime over the maximum",
            forge(SECRET, claims_at(n, n, n + 86_401)),
            Err(TokenError::LifetimeTooLong),
        ),
        (
            "lifetime at the maximum",
            forge(SECRET, claims_at(n, n, n + 86_400)),
            Ok(()),
        ),
        (
            "rooms claim not patterns",
            forge(
                SECRET,
                json!({"sub": "u1", "iss": "roomgate", "aud": "roomgate", "iat": n,
                       "exp": n + 60, "rooms": ["a b"]}),
            ),
            Err(TokenError::InvalidClaim("rooms")),
        ),
        (
            "unknown kid",
            {
                let c = Claims::new(claims_at(n, n, n + 60));
                Hs256
                    .token(
                        &Header::empty().with_key_id("nope"),
                        &c,
                        &Hs256Key::new(SECRET),
                    )
                    .unwrap()
            },
            Err(TokenError::UnknownKey),
        ),
        (
            "missing sub",
            forge(
                SECRET,
                json!({"iss": "roomgate", "aud": "roomgate", "iat": n, "exp": n + 60}),
            ),
            Err(TokenError::MissingClaim("sub")),
        ),
        (
            "oversized sub",
            forge(
                SECRET,
                json!({"sub": "u".repeat(MAX_SUB_BYTES + 1), "iss": "roomgate",
                       "aud": "roomgate", "iat": n, "exp": n + 60}),
            ),
            Err(TokenError::InvalidClaim("sub")),
        ),
        (
            "a sub that passes for a server API key",
            forge(
                SECRET,
                json!({"sub": "api:orders", "iss": "roomgate",
                       "aud": "roomgate", "iat": n, "exp": n + 60}),
            ),
            Err(TokenError::InvalidClaim("sub")),
        ),
        (
            "signature not base64url",
            format!(
                "{}.{}.x",
                b64(&json!({"alg": "HS256"})),
                URL_SAFE_NO_PAD.encode("[1,2]")
            ),
            Err(TokenError::Malformed),
        ),
        (
            "tampered payload",
            tampered_payload,
            Err(TokenError::BadSignature),
        ),
        (
            "tampered signature",
            tampered_signature,
            Err(TokenError::BadSignature),
        ),
        (
            "alg none",
            alg_none,
            Err(TokenError::AlgorithmMismatch {
                expected: "HS256".into(),
                actual: "none".into(),
            }),
        ),
        (
            "HS512 header",
            hs512,
            Err(TokenError::AlgorithmMismatch {
                expected: "HS256".into(),
                actual: "HS512".into(),
            }),
        ),
        (
            "crit header",
            {
                let c = Claims::new(claims_at(n, n, n + 60));
                let token = Hs256
                    .token(&Header::empty(), &c, &Hs256Key::new(SECRET))
                    .unwrap();
                // Same claims and key, header swapped for one that carries `crit`.
                let header = b64(&json!({"alg": "HS256", "crit": ["exp"], "exp": 1}));
                let payload = token.split('.').nth(1).unwrap();
                forge_with_header(SECRET, &header, payload)
            },
            Err(TokenError::CriticalHeader),
        ),
        (
            "control character in sub",
            forge(
                SECRET,
                json!({"sub": "u1\nadmin", "iss": "roomgate", "aud": "roomgate", "iat": n,
                       "exp": n + 60}),
            ),
            Err(TokenError::InvalidClaim("sub")),
        ),
        (
            "control character in name",
            forge(
                SECRET,
                json!({"sub": "u1", "name": "A\u{0}", "iss": "roomgate", "aud": "roomgate",
                       "iat": n, "exp": n + 60}),
            ),
            Err(TokenError::InvalidClaim("name")),
        ),
        ("garbage", "not-a-token".into(), Err(TokenError::Malformed)),
        ("two segments", "abc.def".into(), Err(TokenError::Malformed)),
        ("empty", String::new(), Err(TokenError::Malformed)),
        (
            "oversized",
            "a".repeat(MAX_TOKEN_BYTES + 1),
            Err(TokenError::Oversized),
        ),
    ];

    let auth = authority();
    for (name, token, want) in cases {
        let got = block_on(auth.verify(&token, NOW, &RingCrypto)).map(|_| ());
        assert_eq!(got, want, "case {name:?}");
    }
}

#[test]
fn name_defaults_to_sub() {
    let n = NOW as i64;
    let t = forge(
        SECRET,
        json!({"sub": "device-7", "iss": "roomgate", "aud": "roomgate", "iat": n, "exp": n + 60}),
    );
    let id = block_on(authority().verify(&t, NOW, &RingCrypto)).unwrap();
    assert_eq!(id.name, "device-7");
    assert_eq!(id.jti, None);
}

#[test]
fn expiry_boundary_is_exp_plus_leeway() {
    let issued = block_on(authority().issue("u1", "A", "j", None, NOW, &RingCrypto)).unwrap();
    let auth = authority();
    assert!(block_on(auth.verify(&issued.token, NOW + 3600 + 30, &RingCrypto)).is_ok());
    assert_eq!(
        block_on(auth.verify(&issued.token, NOW + 3600 + 31, &RingCrypto)),
        Err(TokenError::Expired)
    );
}

#[test]
fn grants_travel_in_the_rooms_claim() {
    let full = RoomGrants::Full(vec!["lobby".to_owned(), "team-*".to_owned()]);
    let scoped: RoomGrants = serde_json::from_value(
        json!({"lobby": ["subscribe", "presence"], "dash.*": ["subscribe"]}),
    )
    .unwrap();
    for rooms in [full, scoped] {
        let t =
            block_on(authority().issue("u1", "A", "j", Some(&rooms), NOW, &RingCrypto)).unwrap();
        let id = block_on(authority().verify(&t.token, NOW, &RingCrypto)).unwrap();
        assert_eq!(id.rooms, Some(rooms));
    }
}

#[test]
fn debug_output_hides_the_key() {
    let s = format!("{:?}", authority());
    assert!(!s.contains("0123456789abcdef"), "{s}");
}

#[test]
fn extreme_time_claims_are_refused_without_panicking() {
    use crate::auth::keyring::MAX_CLAIM_TIME;
    let chrono_min = chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp();
    let chrono_max = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp();
    // Outside 1970..=9999 or not a number: refused, whichever claim carries it.
    let refused: Vec<Value> = vec![
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(chrono_min),
        json!(chrono_max),
        json!(-10_000_000_000_000_i64),
        json!(10_000_000_000_000_i64),
        json!(-1e13),
        json!(1e13),
        json!(-1),
        json!(MAX_CLAIM_TIME + 1),
        json!("1800000000"),
        json!(null),
        json!([NOW]),
        json!({"t": NOW}),
    ];
    // Numbers in range, whole or not: whatever the verdict, no panic.
    let in_range = [json!(NOW as f64 + 0.5), json!(0), json!(MAX_CLAIM_TIME)];
    let auth = authority();
    for claim in ["exp", "nbf", "iat"] {
        for value in &refused {
            let mut c = claims_at(NOW as i64 - 10, NOW as i64 - 10, NOW as i64 + 100);
            c[claim] = value.clone();
            let token = forge(SECRET, c);
            let verdict = block_on(auth.verify(&token, NOW, &RingCrypto));
            assert!(verdict.is_err(), "{claim} = {value}: {verdict:?}");
        }
        for value in &in_range {
            let mut c = claims_at(NOW as i64 - 10, NOW as i64 - 10, NOW as i64 + 100);
            c[claim] = value.clone();
            let _ = block_on(auth.verify(&forge(SECRET, c), NOW, &RingCrypto));
        }
    }
    // A token of a sane shape still verifies after all that (no state was touched).
    assert!(block_on(auth.verify(&good(), NOW, &RingCrypto)).is_ok());
}
