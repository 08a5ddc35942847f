//! Property tests of token verification: arbitrary bytes and arbitrary claims never make
//! it panic (every refusal is a typed [`TokenError`]), and a token roomgate issues for
//! any acceptable identity verifies back to that identity.
//!
//! `cargo test --lib props` runs a few thousand cases per property;
//! `PROPTEST_CASES=100000 cargo test --release --lib props` runs as many.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::protocol::identity::RoomGrants;

use super::TokenPolicy;
use crate::auth::keyring::{build, KeySources, Keyring};
use crate::auth::test_crypto::{block_on, RingCrypto};
use crate::protocol::names::has_hidden;
use crate::protocol::props::{config, json as any_json};

const SECRET: &str = "0123456789abcdef0123456789abcdef-props";
const NOW: u64 = 1_800_000_000;

fn keyring() -> Keyring {
    build(
        TokenPolicy {
            issuer: "roomgate".into(),
            audience: "roomgate".into(),
            ttl_secs: 3600,
            leeway_secs: 30,
            max_lifetime_secs: 86_400,
        },
        KeySources {
            jwt_secret: Some(SECRET),
            ..Default::default()
        },
        |_| None,
    )
    .unwrap()
}

/// Signs `claims` (any JSON) with HS256 under the keyring's secret, `kid` `primary`.
fn signed(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT","kid":"primary"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn good_claims() -> Value {
    json!({"sub": "u1", "name": "Alice", "iss": "roomgate", "aud": "roomgate",
           "jti": "j1", "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 100})
}

/// A claim name: one of the checked ones, or any other.
fn claim() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "sub", "name", "iss", "aud", "jti", "iat", "nbf", "exp", "rooms"
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,6}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_is_refused_with_a_typed_error(text in ".{0,300}") {
        prop_assert!(block_on(keyring().verify(&text, NOW, &RingCrypto)).is_err());
    }

    #[test]
    fn arbitrary_segments_are_refused_with_a_typed_error(
        parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 1..5),
    ) {
        let token = parts
            .iter()
            .map(|p| URL_SAFE_NO_PAD.encode(p))
            .collect::<Vec<_>>()
            .join(".");
        prop_assert!(block_on(keyring().verify(&token, NOW, &RingCrypto)).is_err());
    }

    #[test]
    fn arbitrary_signed_claims_never_panic_and_what_passes_is_bounded(
        changes in prop::collection::vec((claim(), any_json(3)), 0..5),
    ) {
        let mut claims = good_claims();
        for (name, value) in changes {
            claims[name.as_str()] = value;
        }
        if let Ok(identity) = block_on(keyring().verify(&signed(&claims), NOW, &RingCrypto)) {
            prop_assert!(!identity.sub.is_empty() && identity.sub.len() <= 128);
            prop_assert!(!has_hidden(&identity.sub) && !has_hidden(&identity.name));
            prop_assert!(identity.exp + 30 >= NOW, "accepted an expired token");
        }
    }

    #[test]
    fn a_token_of_ours_verifies_back_to_its_identity(
        sub in "[A-Za-z0-9_.@-]{1,128}",
        name in "[\\p{L}\\p{N} ._'-]{1,40}".prop_filter("shown, not blank", |n| !has_hidden(n) && !n.trim().is_empty()),
        jti in "[a-f0-9]{32}",
        rooms in prop::option::of(prop::collection::vec("[a-z0-9-]{1,20}\\*?", 0..5)),
        age in 0u64..3000,
    ) {
        let ring = keyring();
        let issued_at = NOW - age;
        let rooms = rooms.map(RoomGrants::Full);
        let issued = block_on(ring.issue(&sub, &name, &jti, rooms.as_ref(), issued_at, &RingCrypto)).unwrap();
        let identity = block_on(ring.verify(&issued.token, NOW, &RingCrypto)).unwrap();
        prop_assert_eq!(&identity.sub, &sub);
        prop_assert_eq!(&identity.name, &name);
        prop_assert_eq!(identity.jti.as_deref(), Some(jti.as_str()));
        prop_assert_eq!(identity.rooms, rooms);
        prop_assert_eq!((identity.iat, identity.exp), (issued_at, issued.exp));
    }
}
