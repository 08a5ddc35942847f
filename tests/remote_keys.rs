//! End to end: issuers whose keys are published at a URL (`jwks_uri`, `discovery`),
//! against a real HTTP server on loopback (`roomgate_harness::loopback`).
//!
//! Covers the first fetch; a rotation picked up when the cached set expires (the new
//! `kid` accepted, the removed one refused); an unknown `kid` refetching at once but at
//! most once per 30 s; an outage after a good fetch (the cached keys keep working); no
//! set at all (503 `issuer_unavailable` with `Retry-After`, and no fetch per request); a
//! slow server (the 2 s timeout); garbage; an OpenID discovery document; and the URL
//! rules (`http` only to loopback and only with `ALLOW_LOOPBACK_URLS=true`).
//!
//! Run: `cargo test --test remote_keys` (builds the Worker first if `src/` changed).
use roomgate_harness::issuers::{issuer_jwk, Ext};
use roomgate_harness::loopback::{Answer, Loopback};
use roomgate_harness::runtime::Server;
use roomgate_harness::tokens::{claims, with};
use roomgate_harness::ws::Auth;

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

/// Each scenario is an issuer of its own, with its keys at its own path.
const SCENARIOS: &[(&str, u64)] = &[
    ("rotation", 2),
    ("kid", 600),
    ("outage", 2),
    ("never", 600),
    ("slow", 600),
    ("junk", 600),
];

struct World {
    keys: Loopback,
    server: Server,
}

fn set_of(kids: &[&str]) -> String {
    json!({"keys": kids.iter().map(|k| issuer_jwk(k)).collect::<Vec<Value>>()}).to_string()
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let keys = Loopback::start_in_background();
        let mut issuers: Vec<Value> = SCENARIOS
            .iter()
            .map(|(name, cache)| {
                json!({"iss": format!("https://{name}.test"), "aud": "roomgate",
                       "jwks_uri": keys.url(&format!("/{name}/jwks")),
                       "jwks_cache_seconds": cache, "default_rooms": ["*"]})
            })
            .collect();
        issuers.push(json!({"iss": "https://disc.test", "aud": "roomgate",
            "discovery": keys.url("/disc/.well-known/openid-configuration"),
            "default_rooms": ["*"]}));
        // What each path answers before the runtime starts (it fetches nothing until a
        // token needs it).
        for (name, _) in SCENARIOS {
            keys.set(&format!("/{name}/jwks"), Answer::Json(set_of(&["rsa-1"])));
        }
        keys.set("/never/jwks", Answer::Status(503));
        keys.set(
            "/slow/jwks",
            Answer::Slow(Duration::from_secs(6), set_of(&["rsa-1"])),
        );
        keys.set("/junk/jwks", Answer::Json("{\"keys\": not json".into()));
        keys.set(
            "/disc/.well-known/openid-configuration",
            Answer::Json(
                json!({"issuer": "https://disc.test", "jwks_uri": keys.url("/disc/keys")})
                    .to_string(),
            ),
        );
        keys.set("/disc/keys", Answer::Json(set_of(&["ed-1"])));
        let config = Value::from(issuers).to_string();
        let server = Server::start(&[
            ("TRUSTED_ISSUERS", config.as_str()),
            ("ALLOW_LOOPBACK_URLS", "true"),
        ]);
        World { keys, server }
    })
}

/// A token of issuer `name`, signed by `key` (with its kid).
fn token(name: &str, key: Ext, sub: &str) -> String {
    key.sign(&with(
        claims(sub, sub),
        json!({"iss": format!("https://{name}.test"), "aud": "roomgate"}),
    ))
}

/// The status of an upgrade with `token` (101 when a socket opened), and the refusal's
/// JSON.
async fn upgrade(token: &str) -> (u16, Value) {
    match world()
        .server
        .connect("/ws/keys", Auth::Subprotocol(token))
        .await
    {
        Ok(c) => {
            c.close().await;
            (101, Value::Null)
        }
        Err(refused) => (refused.status, refused.json),
    }
}

#[tokio::test]
async fn a_rotation_is_picked_up_when_the_cached_set_expires() {
    let w = world();
    assert_eq!(upgrade(&token("rotation", Ext::Rs256, "r1")).await.0, 101);
    assert_eq!(w.keys.hits("/rotation/jwks"), 1);
    // The provider rotates: ec-1 in, rsa-1 out. Within the cache time the old set serves.
    w.keys
        .set("/rotation/jwks", Answer::Json(set_of(&["ec-1"])));
    assert_eq!(upgrade(&token("rotation", Ext::Rs256, "r1")).await.0, 101);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        upgrade(&token("rotation", Ext::Es256, "r2")).await.0,
        101,
        "the new kid"
    );
    let (status, body) = upgrade(&token("rotation", Ext::Rs256, "r1")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token")),
        "the removed kid: {body}"
    );
    assert_eq!(w.keys.hits("/rotation/jwks"), 2);
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_per_thirty_seconds() {
    let w = world();
    assert_eq!(upgrade(&token("kid", Ext::Rs256, "k1")).await.0, 101);
    w.keys
        .set("/kid/jwks", Answer::Json(set_of(&["rsa-1", "ec-1"])));
    // Just fetched: an unknown kid is refused without asking again.
    assert_eq!(upgrade(&token("kid", Ext::Es256, "k2")).await.0, 401);
    assert_eq!(w.keys.hits("/kid/jwks"), 1);
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(
        upgrade(&token("kid", Ext::Es256, "k2")).await.0,
        101,
        "refetched for the new kid"
    );
    assert_eq!(w.keys.hits("/kid/jwks"), 2);
    // Another unknown kid right after: refused, no third fetch.
    assert_eq!(upgrade(&token("kid", Ext::EdDsa, "k3")).await.0, 401);
    assert_eq!(w.keys.hits("/kid/jwks"), 2);
}

#[tokio::test]
async fn an_outage_leaves_the_cached_keys_working() {
    let w = world();
    assert_eq!(upgrade(&token("outage", Ext::Rs256, "o1")).await.0, 101);
    w.keys.set("/outage/jwks", Answer::Status(500));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        upgrade(&token("outage", Ext::Rs256, "o1")).await.0,
        101,
        "last good keys"
    );
    assert_eq!(
        w.keys.hits("/outage/jwks"),
        2,
        "the expired set was asked for again"
    );
    // And not again on every request while it is down.
    assert_eq!(upgrade(&token("outage", Ext::Rs256, "o1")).await.0, 101);
    assert_eq!(w.keys.hits("/outage/jwks"), 2);
}

#[tokio::test]
async fn no_keys_at_all_is_503_and_retryable_not_401() {
    let w = world();
    for (name, case) in [
        ("never", "server error"),
        ("slow", "timeout"),
        ("junk", "garbage"),
    ] {
        let (status, body) = upgrade(&token(name, Ext::Rs256, "n1")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("issuer_unavailable")),
            "{case}: {body}"
        );
        assert_eq!(w.keys.hits(&format!("/{name}/jwks")), 1, "{case}");
        // Within 30 s the issuer is not asked again: still 503, no new request.
        let (status, _) = upgrade(&token(name, Ext::Rs256, "n2")).await;
        assert_eq!(status, 503, "{case}");
        assert_eq!(
            w.keys.hits(&format!("/{name}/jwks")),
            1,
            "{case}: asked again"
        );
    }
    let refused = w
        .server
        .connect(
            "/ws/keys",
            Auth::Subprotocol(&token("never", Ext::Rs256, "n3")),
        )
        .await
        .err()
        .expect("no socket");
    assert_eq!(refused.headers["retry-after"], "30");
}

#[tokio::test]
async fn a_discovery_document_names_the_key_set() {
    let w = world();
    assert_eq!(upgrade(&token("disc", Ext::EdDsa, "d1")).await.0, 101);
    assert_eq!(w.keys.hits("/disc/.well-known/openid-configuration"), 1);
    assert_eq!(w.keys.hits("/disc/keys"), 1);
    // Cached: no second fetch of either.
    assert_eq!(upgrade(&token("disc", Ext::EdDsa, "d2")).await.0, 101);
    assert_eq!(w.keys.hits("/disc/keys"), 1);
}

#[tokio::test]
async fn key_urls_must_be_https_or_allowed_loopback() {
    for (case, url, loopback) in [
        ("http elsewhere", "http://id.example/jwks", "true"),
        (
            "loopback without the setting",
            "http://127.0.0.1:9/jwks",
            "false",
        ),
    ] {
        let config =
            json!([{"iss": "https://x.test", "aud": "roomgate", "jwks_uri": url}]).to_string();
        let s = Server::start(&[
            ("TRUSTED_ISSUERS", config.as_str()),
            ("ALLOW_LOOPBACK_URLS", loopback),
        ]);
        let refused = s
            .connect("/ws/keys", Auth::Subprotocol(&token("x", Ext::Rs256, "x1")))
            .await
            .err()
            .unwrap_or_else(|| panic!("{case}: a socket opened"));
        refused.expect(500, "misconfigured");
    }
}
