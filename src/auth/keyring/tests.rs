//! Keyring tests: own keys (HS256, EdDSA), rotation, external issuers with RS256 / ES256 /
//! EdDSA / HS256 keys, and every way a key can be misused. External tokens are minted
//! with `jsonwebtoken`, an implementation independent of the verifier's.

use super::*;
use crate::auth::keys::public_jwk;
use crate::auth::test_crypto::{block_on, RingCrypto};
use crate::auth::token::{TokenError, TokenPolicy};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "0123456789abcdef0123456789abcdef-own";
const ISSUER_JWKS: &str = include_str!("../../../tests/fixtures/issuer-public.jwks.json");
const OWN_ED: &str = include_str!("../../../tests/fixtures/own-ed25519.jwk.json");
const RSA_PEM: &[u8] = include_bytes!("../../../tests/fixtures/rsa-2048.pem");
const RSA_WEAK_PEM: &[u8] = include_bytes!("../../../tests/fixtures/rsa-1024.pem");
const EC_PEM: &[u8] = include_bytes!("../../../tests/fixtures/ec-p256.pem");
const ED_PEM: &[u8] = include_bytes!("../../../tests/fixtures/ed25519.pem");

fn policy() -> TokenPolicy {
    TokenPolicy {
        issuer: "roomgate".into(),
        audience: "roomgate".into(),
        ttl_secs: 3600,
        leeway_secs: 30,
        max_lifetime_secs: 86_400,
    }
}

/// The fixture JWKS without the weak RSA key.
fn strong_issuer_jwks() -> Value {
    let mut set: Value = serde_json::from_str(ISSUER_JWKS).unwrap();
    set["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] != "rsa-weak");
    set
}

fn issuers() -> String {
    json!([
        {"iss": "https://id.example", "aud": "roomgate-sockets", "jwks": strong_issuer_jwks()},
        {"iss": "partner", "aud": "roomgate", "secret": {"kid": "partner-hs", "binding": "PARTNER_SECRET"}}
    ])
    .to_string()
}

fn ring() -> Keyring {
    let issuers = issuers();
    build(
        policy(),
        KeySources {
            jwt_secret: Some(SECRET),
            trusted_issuers: Some(&issuers),
            ..Default::default()
        },
        |name| (name == "PARTNER_SECRET").then(|| "partner-shared-secret-0123456789abcdef".into()),
    )
    .unwrap()
}

fn claims(iss: &str, aud: &str) -> Value {
    let n = NOW as i64;
    json!({"sub": "ext-1", "name": "External", "iss": iss, "aud": aud,
           "iat": n, "nbf": n, "exp": n + 600})
}

fn mint(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    encode(&header, claims, key).unwrap()
}

fn ext() -> Value {
    claims("https://id.example", "roomgate-sockets")
}

#[test]
fn external_issuer_algorithms_verify() {
    let ring = ring();
    let cases = [
        (
            Algorithm::RS256,
            "rsa-1",
            EncodingKey::from_rsa_pem(RSA_PEM).unwrap(),
        ),
        (
            Algorithm::ES256,
            "ec-1",
            EncodingKey::from_ec_pem(EC_PEM).unwrap(),
        ),
        (
            Algorithm::EdDSA,
            "ed-1",
            EncodingKey::from_ed_pem(ED_PEM).unwrap(),
        ),
    ];
    for (alg, kid, key) in cases {
        let token = mint(alg, kid, &key, &ext());
        let id = block_on(ring.verify(&token, NOW, &RingCrypto))
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(
            id.sub, "https://id.example#ext-1",
            "external ids carry their issuer"
        );
        assert_eq!(id.name, "External");
    }
    let partner = mint(
        Algorithm::HS256,
        "partner-hs",
        &EncodingKey::from_secret(b"partner-shared-secret-0123456789abcdef"),
        &claims("partner", "roomgate"),
    );
    assert_eq!(
        block_on(ring.verify(&partner, NOW, &RingCrypto))
            .unwrap()
            .sub,
        "partner#ext-1"
    );
}

#[test]
fn misuse_table() {
    let ring = ring();
    let rsa = EncodingKey::from_rsa_pem(RSA_PEM).unwrap();
    let ec = EncodingKey::from_ec_pem(EC_PEM).unwrap();
    let jwks: Value = serde_json::from_str(ISSUER_JWKS).unwrap();
    // The classic confusion: HMAC keyed with the public key material everyone can read.
    let rsa_n = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["n"].as_str().unwrap())
        .unwrap();
    let confused = |kid: &str, secret: &[u8]| {
        mint(
            Algorithm::HS256,
            kid,
            &EncodingKey::from_secret(secret),
            &ext(),
        )
    };
    let cases: Vec<(&str, String, TokenError)> = vec![
        (
            "HS256 keyed with the RSA modulus, kid of the RSA key",
            confused("rsa-1", &rsa_n),
            TokenError::AlgorithmMismatch {
                expected: "RS256".into(),
                actual: "HS256".into(),
            },
        ),
        (
            "HS256 keyed with the JWK text, kid of the EC key",
            confused("ec-1", jwks["keys"][2].to_string().as_bytes()),
            TokenError::AlgorithmMismatch {
                expected: "ES256".into(),
                actual: "HS256".into(),
            },
        ),
        (
            "RS256 token claiming the EC key",
            mint(Algorithm::RS256, "ec-1", &rsa, &ext()),
            TokenError::AlgorithmMismatch {
                expected: "ES256".into(),
                actual: "RS256".into(),
            },
        ),
        (
            "ES256 token signed by another EC key's kid",
            mint(
                Algorithm::ES256,
                "ec-1",
                &ec,
                &claims("partner", "roomgate"),
            ),
            TokenError::WrongIssuer,
        ),
        (
            "unknown kid",
            mint(Algorithm::RS256, "rsa-404", &rsa, &ext()),
            TokenError::UnknownKey,
        ),
        (
            "kid of another issuer (own HS key, external iss)",
            mint(
                Algorithm::HS256,
                "primary",
                &EncodingKey::from_secret(SECRET.as_bytes()),
                &ext(),
            ),
            TokenError::WrongIssuer,
        ),
        (
            "right key, wrong audience",
            mint(
                Algorithm::RS256,
                "rsa-1",
                &rsa,
                &claims("https://id.example", "roomgate"),
            ),
            TokenError::WrongAudience,
        ),
        (
            "external token without kid (issuer has several keys)",
            encode(&Header::new(Algorithm::RS256), &ext(), &rsa).unwrap(),
            TokenError::MissingKeyId,
        ),
        (
            "lifetime too long for any issuer",
            {
                let mut c = ext();
                c["exp"] = json!(NOW + 86_401);
                mint(Algorithm::RS256, "rsa-1", &rsa, &c)
            },
            TokenError::LifetimeTooLong,
        ),
    ];
    for (name, token, want) in cases {
        assert_eq!(
            block_on(ring.verify(&token, NOW, &RingCrypto)).unwrap_err(),
            want,
            "{name}"
        );
    }
}

#[test]
fn own_eddsa_signing_and_rotation() {
    let old_hs = json!({"kid": "hs-old", "kty": "oct",
                        "k": URL_SAFE_NO_PAD.encode("an-older-secret-still-verifying-0123")});
    let own: Value = serde_json::from_str(OWN_ED).unwrap();
    let keys = json!({"keys": [own, old_hs]}).to_string();
    let ring = build(
        policy(),
        KeySources {
            jwt_keys: Some(&keys),
            signing_kid: Some("rg-ed-1"),
            ..Default::default()
        },
        |_| None,
    )
    .unwrap();
    assert_eq!(ring.signing_kid(), Some("rg-ed-1"));
    let issued = block_on(ring.issue("u1", "Alice", "j", None, NOW, &RingCrypto)).unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(issued.token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("EdDSA"), Some("rg-ed-1"))
    );
    assert_eq!(
        block_on(ring.verify(&issued.token, NOW, &RingCrypto))
            .unwrap()
            .sub,
        "u1"
    );

    // A token from before the rotation (signed by the old HS key) still verifies.
    let old = mint(
        Algorithm::HS256,
        "hs-old",
        &EncodingKey::from_secret(b"an-older-secret-still-verifying-0123"),
        &claims("roomgate", "roomgate"),
    );
    assert!(block_on(ring.verify(&old, NOW, &RingCrypto)).is_ok());

    // Only the Ed25519 key is published, and without its private part.
    let published: Vec<Value> = ring
        .own_keys()
        .filter_map(|(kid, key)| public_jwk(kid, key))
        .map(|j| serde_json::to_value(j).unwrap())
        .collect();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["kid"], "rg-ed-1");
    assert_eq!(published[0]["alg"], "EdDSA");
    assert_eq!(published[0]["x"], own["x"]);
    assert!(published[0].get("d").is_none());
}

#[test]
fn configuration_errors() {
    let weak_jwks = json!([{"iss": "w", "aud": "a", "jwks": serde_json::from_str::<Value>(ISSUER_JWKS).unwrap()}]).to_string();
    let private_in_issuer = json!([{"iss": "p", "aud": "a", "jwks": {"keys": [serde_json::from_str::<Value>(OWN_ED).unwrap()]}}]).to_string();
    let mislabeled = json!([{"iss": "m", "aud": "a", "jwks": {"keys": [{"kid": "x", "alg": "HS256", "kty": "RSA",
        "n": strong_issuer_jwks()["keys"][0]["n"], "e": "AQAB"}]}}]).to_string();
    let missing_secret =
        json!([{"iss": "s", "aud": "a", "secret": {"kid": "s1", "binding": "NOPE"}}]).to_string();
    let duplicate_kid =
        json!([{"iss": "d", "aud": "a", "secret": {"kid": "primary", "binding": "B"}}]).to_string();
    let cases: Vec<(&str, KeySources<'_>)> = vec![
        ("nothing configured", KeySources::default()),
        (
            "short JWT_SECRET",
            KeySources {
                jwt_secret: Some("short"),
                ..Default::default()
            },
        ),
        (
            "weak RSA key",
            KeySources {
                jwt_secret: Some(SECRET),
                trusted_issuers: Some(&weak_jwks),
                ..Default::default()
            },
        ),
        (
            "private key given to verify",
            KeySources {
                jwt_secret: Some(SECRET),
                trusted_issuers: Some(&private_in_issuer),
                ..Default::default()
            },
        ),
        (
            "alg that does not match the key type",
            KeySources {
                jwt_secret: Some(SECRET),
                trusted_issuers: Some(&mislabeled),
                ..Default::default()
            },
        ),
        (
            "issuer secret not set",
            KeySources {
                jwt_secret: Some(SECRET),
                trusted_issuers: Some(&missing_secret),
                ..Default::default()
            },
        ),
        (
            "kid used twice",
            KeySources {
                jwt_secret: Some(SECRET),
                trusted_issuers: Some(&duplicate_kid),
                ..Default::default()
            },
        ),
        (
            "signing kid that is not an own key",
            KeySources {
                jwt_secret: Some(SECRET),
                signing_kid: Some("ec-1"),
                ..Default::default()
            },
        ),
        (
            "TRUSTED_ISSUERS not JSON",
            KeySources {
                jwt_secret: Some(SECRET),
                trusted_issuers: Some("nope"),
                ..Default::default()
            },
        ),
    ];
    for (name, sources) in cases {
        let got = build(policy(), sources, |n| (n == "B").then(|| "b".repeat(40)));
        assert!(got.is_err(), "{name}: built anyway");
    }
    // The weak key alone is refused with a reason that says why.
    let msg = build(
        policy(),
        KeySources {
            jwt_secret: Some(SECRET),
            trusted_issuers: Some(&weak_jwks),
            ..Default::default()
        },
        |_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("2048"), "{msg}");
    let _ = RSA_WEAK_PEM;
}

#[test]
fn external_issuers_only_can_verify_but_not_sign() {
    let issuers = issuers();
    let ring = build(
        policy(),
        KeySources {
            trusted_issuers: Some(&issuers),
            ..Default::default()
        },
        |_| Some("partner-shared-secret-0123456789abcdef".into()),
    )
    .unwrap();
    assert_eq!(ring.signing_kid(), None);
    assert_eq!(
        block_on(ring.issue("u", "U", "j", None, NOW, &RingCrypto)),
        Err(TokenError::Signing)
    );
    let token = mint(
        Algorithm::EdDSA,
        "ed-1",
        &EncodingKey::from_ed_pem(ED_PEM).unwrap(),
        &ext(),
    );
    assert!(block_on(ring.verify(&token, NOW, &RingCrypto)).is_ok());
}

#[test]
fn an_external_token_without_rooms_gets_its_issuers_default_and_none_without_one() {
    use crate::protocol::identity::RoomGrants;
    let partner_token = |claims: &Value| {
        mint(
            Algorithm::HS256,
            "partner-hs",
            &EncodingKey::from_secret(b"partner-shared-secret-0123456789abcdef"),
            claims,
        )
    };
    let secret = |name: &str| {
        (name == "PARTNER_SECRET").then(|| "partner-shared-secret-0123456789abcdef".into())
    };
    let ring_with = |issuer: Value| {
        let issuers = json!([issuer]).to_string();
        build(
            policy(),
            KeySources {
                jwt_secret: Some(SECRET),
                trusted_issuers: Some(&issuers),
                ..Default::default()
            },
            secret,
        )
    };
    let partner = json!({"iss": "partner", "aud": "roomgate",
        "secret": {"kid": "partner-hs", "binding": "PARTNER_SECRET"}});
    let token = partner_token(&claims("partner", "roomgate"));

    // No default: closed.
    let closed = ring_with(partner.clone()).unwrap();
    let id = block_on(closed.verify(&token, NOW, &RingCrypto)).unwrap();
    assert_eq!(id.rooms, Some(RoomGrants::Full(vec![])));

    // A default, in either form, for tokens without the claim; a claim wins over it.
    let mut with_default = partner.clone();
    with_default["default_rooms"] = json!({"support-*": ["subscribe", "publish"]});
    let open = ring_with(with_default).unwrap();
    let id = block_on(open.verify(&token, NOW, &RingCrypto)).unwrap();
    let want: RoomGrants =
        serde_json::from_value(json!({"support-*": ["subscribe", "publish"]})).unwrap();
    assert_eq!(id.rooms, Some(want));
    let mut claimed = claims("partner", "roomgate");
    claimed["rooms"] = json!(["lobby"]);
    let id = block_on(open.verify(&partner_token(&claimed), NOW, &RingCrypto)).unwrap();
    assert_eq!(id.rooms, Some(RoomGrants::Full(vec!["lobby".into()])));

    // An unusable default is a configuration error.
    let mut bad = partner;
    bad["default_rooms"] = json!(["not a room"]);
    assert!(ring_with(bad).is_err());
}
