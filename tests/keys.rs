//! Keys, end to end: roomgate's own EdDSA signing key and its JWKS, key rotation, external
//! issuers, and a keyring that refuses to load.
//!
//! - EdDSA round trip (`JWT_KEYS` = the fixture's own Ed25519 JWK, `JWT_SIGNING_KID` =
//!   `rg-ed-1`): `/login` issues an EdDSA token with kid `rg-ed-1`;
//!   `GET /.well-known/jwks.json` publishes that key (alg EdDSA, no `d`, content type
//!   `application/jwk-set+json`) and never an `oct` key; the login token verifies with an
//!   independent library (`jsonwebtoken`) against the *published* JWK, and opens a socket.
//! - Rotation: with an old `oct` key (kid `hs-old`) left in `JWT_KEYS` next to the Ed25519
//!   signer, tokens the old key signed still open sockets; it is never published.
//! - External issuers (`TRUSTED_ISSUERS`): RS256, ES256 and EdDSA tokens minted with
//!   `jsonwebtoken` from the fixture PEMs are accepted through every transport, and so is
//!   an HS256 issuer whose shared secret is a Worker secret (`PARTNER_SECRET`).
//! - A `TRUSTED_ISSUERS` with the weak 1024-bit RSA key makes `/ws`, `/login` (and the
//!   other keyring routes) answer 500 `misconfigured`, without leaking the detail; so
//!   does every other bad entry the README lists (private key as issuer key, alg/type
//!   mismatch, duplicate kid, missing or short shared secret, ...), one runtime each.
//!
//! - Defaults (README "Own keys"): with external issuers only, `/ws` works and `/login`
//!   is 500 `misconfigured`; with `JWT_KEYS` only and no `JWT_SIGNING_KID`, the first key
//!   of `JWT_KEYS` signs.
//!
//! Each configuration is its own runtime, started on first use and shared by its tests.
//! Run: `cargo test --test keys` (from the repository root; builds the Worker if `src/`
//! changed).
use roomgate_harness::admin::{admin_post, revoke_sub};
use roomgate_harness::http::Reply;
use roomgate_harness::issuers::{
    ext_claims, fixture_issuer, issuer_jwk, oct_jwk, own_ed_jwk, partner_claims, partner_issuer,
    Ext, EXT_AUD, EXT_ISS, OWN_ED_KID, PARTNER_BINDING, PARTNER_ISS, PARTNER_KID, PARTNER_SECRET,
};
use roomgate_harness::runtime::{Server, USERS};
use roomgate_harness::tokens::{
    claims, claims_of, header_of, mint, own_hs, token_for, with, with_payload,
};
use roomgate_harness::ws::Auth;

use std::sync::OnceLock;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

/// The secret of the old HS256 key kept for verification during a rotation.
const OLD_HS_SECRET: &[u8] = b"the-old-hs256-key-kept-for-rotation-0123456789";

fn own_keys(extra: &[Value]) -> String {
    let mut keys = extra.to_vec();
    keys.push(own_ed_jwk());
    json!({ "keys": keys }).to_string()
}

/// Own keys: `JWT_SECRET` (kid `primary`) and the Ed25519 key, which signs.
fn ed_signer() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let keys = own_keys(&[]);
        Server::start(&[("JWT_KEYS", keys.as_str()), ("JWT_SIGNING_KID", OWN_ED_KID)])
    })
}

/// Mid-rotation: the old `oct` key `hs-old` still verifies; the Ed25519 key signs.
fn rotating() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let keys = own_keys(&[oct_jwk("hs-old", OLD_HS_SECRET)]);
        Server::start(&[("JWT_KEYS", keys.as_str()), ("JWT_SIGNING_KID", OWN_ED_KID)])
    })
}

/// The fixture issuer (without the weak key) and the shared-secret partner.
fn issuers() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let issuers = json!([fixture_issuer(false), partner_issuer()]).to_string();
        Server::start(&[
            ("TRUSTED_ISSUERS", issuers.as_str()),
            (PARTNER_BINDING, PARTNER_SECRET),
        ])
    })
}

/// No own key at all (`JWT_SECRET` empty, no `JWT_KEYS`): external issuers only.
fn external_only() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let issuers = json!([fixture_issuer(false)]).to_string();
        Server::start(&[("JWT_SECRET", ""), ("TRUSTED_ISSUERS", issuers.as_str())])
    })
}

/// `JWT_KEYS` only (`JWT_SECRET` empty, no `JWT_SIGNING_KID`): the first key signs.
fn keys_only() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let keys = own_keys(&[oct_jwk("hs-first", OLD_HS_SECRET)]);
        Server::start(&[("JWT_SECRET", ""), ("JWT_KEYS", keys.as_str())])
    })
}

/// The fixture issuer *with* the 1024-bit RSA key: the keyring must not load.
fn weak() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let issuers = json!([fixture_issuer(true)]).to_string();
        Server::start(&[("TRUSTED_ISSUERS", issuers.as_str())])
    })
}

async fn get(s: &Server, path: &str) -> Reply {
    Reply::from(
        s.http()
            .get(format!("{}{path}", s.url))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// `GET /.well-known/jwks.json`, asserting 200, its content type, and that nothing
/// secret is in it: no private `d`, no `oct` key, no `k`, and only EdDSA keys.
async fn jwks(s: &Server, case: &str) -> Vec<Value> {
    let r = get(s, "/.well-known/jwks.json").await;
    assert_eq!(r.status, 200, "{case}: {}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/jwk-set+json"),
        "{case}"
    );
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=300"),
        "{case}: cacheable for 5 minutes"
    );
    let keys = r.json["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: no keys array: {}", r.text))
        .clone();
    for key in &keys {
        assert_ne!(key["kty"], "oct", "{case}: an HMAC key is published: {key}");
        for secret in ["d", "k", "p", "q", "dp", "dq", "qi"] {
            assert!(
                key.get(secret).is_none(),
                "{case}: published key has `{secret}`: {key}"
            );
        }
        assert_eq!(key["alg"], "EdDSA", "{case}: {key}");
    }
    keys
}

fn login_password(user: &str) -> &'static str {
    USERS.iter().find(|(u, _, _)| *u == user).unwrap().1
}

/// Logs in and returns the whole answer's token, asserting 200.
async fn login_token(s: &Server, user: &str) -> String {
    let res = s.login(user, login_password(user)).await;
    let r = Reply::from(res).await;
    assert_eq!(r.status, 200, "login {user}: {}", r.text);
    r.json["token"].as_str().unwrap().to_owned()
}

async fn expect_welcome(s: &Server, room: &str, auth: Auth<'_>, sub: &str, name: &str, what: &str) {
    let mut c = s
        .connect(&format!("/ws/{room}"), auth)
        .await
        .unwrap_or_else(|r| panic!("{what}: refused {} {}", r.status, r.body));
    let welcome = c.recv_type("welcome").await;
    assert_eq!(welcome["user"]["id"], sub, "{what}: {welcome}");
    assert_eq!(welcome["user"]["name"], name, "{what}: {welcome}");
    c.close().await;
}

fn transports(token: &str) -> [(&'static str, Auth<'_>); 3] {
    [
        ("subprotocol", Auth::Subprotocol(token)),
        ("authorization header", Auth::Header(token)),
        ("query parameter", Auth::Query(token)),
    ]
}

// ---------------------------------------------------------------------------------------
// Own EdDSA key: login, JWKS, independent verification

#[tokio::test]
async fn login_issues_eddsa_tokens_with_the_signing_kid() {
    let s = ed_signer();
    let token = login_token(s, "alice").await;
    let header = header_of(&token);
    assert_eq!(header["alg"], "EdDSA", "{header}");
    assert_eq!(header["kid"], OWN_ED_KID, "{header}");
    let claims = claims_of(&token);
    assert_eq!(claims["iss"], "roomgate");
    assert_eq!(claims["aud"], "roomgate");
    assert_eq!(claims["name"], "Alice");
    assert!(
        claims["sub"].is_string() && claims["jti"].is_string(),
        "{claims}"
    );
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600, "{claims}");
}

#[tokio::test]
async fn jwks_publishes_the_ed25519_public_key_and_nothing_secret() {
    let s = ed_signer();
    let keys = jwks(s, "ed signer").await;
    let fixture = own_ed_jwk();
    let published: Vec<&Value> = keys.iter().filter(|k| k["kid"] == OWN_ED_KID).collect();
    assert_eq!(published.len(), 1, "rg-ed-1 listed once: {keys:?}");
    let key = published[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(
        key["x"], fixture["x"],
        "the public half of the configured key"
    );
    assert_eq!(key["use"], "sig");
    // JWT_SECRET's key (kid primary) is an HMAC secret: never listed.
    assert_eq!(keys.len(), 1, "only the Ed25519 key: {keys:?}");

    // An HS256-only keyring with external issuers publishes nothing at all: external
    // keys are not roomgate's, and HMAC secrets are never published.
    assert_eq!(jwks(issuers(), "issuers").await, Vec::<Value>::new());
}

#[tokio::test]
async fn login_token_verifies_with_jsonwebtoken_against_the_published_jwk() {
    let s = ed_signer();
    let token = login_token(s, "bob").await;
    let keys = jwks(s, "ed signer").await;
    let published = keys
        .iter()
        .find(|k| k["kid"] == header_of(&token)["kid"])
        .expect("the token's kid is published");
    let jwk: Jwk = serde_json::from_value(published.clone()).expect("a JWK jsonwebtoken reads");
    let key = DecodingKey::from_jwk(&jwk).expect("decoding key from the published JWK");

    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["roomgate"]);
    validation.set_issuer(&["roomgate"]);
    validation.set_required_spec_claims(&["exp", "iat", "nbf", "sub", "iss", "aud"]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation)
        .unwrap_or_else(|e| panic!("jsonwebtoken refuses roomgate's token: {e}"));
    assert_eq!(data.header.kid.as_deref(), Some(OWN_ED_KID));
    assert_eq!(data.claims["name"], "Bob");

    // The check is real: a tampered payload or a key of another issuer fails it.
    let tampered = with_payload(&token, json!({"name": "Mallory"}));
    assert!(jsonwebtoken::decode::<Value>(&tampered, &key, &validation).is_err());
    let other =
        DecodingKey::from_jwk(&serde_json::from_value(issuer_jwk("ed-1")).unwrap()).unwrap();
    assert!(jsonwebtoken::decode::<Value>(&token, &other, &validation).is_err());
}

#[tokio::test]
async fn eddsa_login_token_opens_a_socket_through_every_transport() {
    let s = ed_signer();
    let token = login_token(s, "carol").await;
    let sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();
    for (what, auth) in transports(&token) {
        expect_welcome(s, "keys-ed", auth, &sub, "Carol", what).await;
    }
}

#[tokio::test]
async fn with_two_own_keys_hs256_needs_its_kid() {
    let s = ed_signer();
    // JWT_SECRET still verifies under its kid...
    let with_kid = own_hs(Some("primary"), &claims("keys-primary", "Primary"));
    expect_welcome(
        s,
        "keys-ed",
        Auth::Header(&with_kid),
        "keys-primary",
        "Primary",
        "kid primary",
    )
    .await;
    // ...but roomgate now has two keys, so a token without kid names none of them.
    let without = own_hs(None, &claims("keys-nokid", "NoKid"));
    let r = s
        .connect("/ws/keys-ed", Auth::Header(&without))
        .await
        .err()
        .expect("a kid-less token with two own keys must be refused");
    r.expect(401, "invalid_token");
}

// ---------------------------------------------------------------------------------------
// Rotation

#[tokio::test]
async fn rotation_old_hs256_key_still_verifies_new_key_signs() {
    let s = rotating();
    let old = mint(
        OLD_HS_SECRET,
        &json!({"alg": "HS256", "typ": "JWT", "kid": "hs-old"}),
        &claims("keys-rotated", "Rotated"),
    );
    for (what, auth) in transports(&old) {
        expect_welcome(s, "keys-rotation", auth, "keys-rotated", "Rotated", what).await;
    }

    // New tokens come from the Ed25519 key.
    let token = login_token(s, "alice").await;
    assert_eq!(header_of(&token)["alg"], "EdDSA");
    assert_eq!(header_of(&token)["kid"], OWN_ED_KID);
    expect_welcome(
        s,
        "keys-rotation",
        Auth::Subprotocol(&token),
        claims_of(&token)["sub"].as_str().unwrap(),
        "Alice",
        "new login token",
    )
    .await;

    // The old key is pinned to HS256 under its own kid: it cannot pose as the new one.
    let posing = mint(
        OLD_HS_SECRET,
        &json!({"alg": "HS256", "typ": "JWT", "kid": OWN_ED_KID}),
        &claims("keys-posing", "Posing"),
    );
    s.connect("/ws/keys-rotation", Auth::Header(&posing))
        .await
        .err()
        .expect("old secret under the new kid")
        .expect(401, "invalid_token");

    // The old HMAC key is a secret: the JWKS lists the Ed25519 key only.
    let keys = jwks(s, "rotating").await;
    let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, vec![OWN_ED_KID]);
}

// ---------------------------------------------------------------------------------------
// External issuers

#[tokio::test]
async fn external_public_key_tokens_are_accepted_through_every_transport() {
    let s = issuers();
    for ext in Ext::ALL {
        let sub = format!("ext-{}", ext.kid());
        let token = ext.sign(&ext_claims(&sub));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(ext.kid()));
        assert_eq!(header.alg, ext.alg());
        for (what, auth) in transports(&token) {
            let case = format!("{} via {what}", ext.name());
            // External users are `<iss>#<sub>`: no issuer can mint another's users.
            let id = format!("{EXT_ISS}#{sub}");
            expect_welcome(s, "keys-ext", auth, &id, &format!("Ext {sub}"), &case).await;
        }
    }
}

#[tokio::test]
async fn external_hs256_issuer_with_a_shared_secret_is_accepted() {
    let s = issuers();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": PARTNER_KID});
    let token = mint(
        PARTNER_SECRET.as_bytes(),
        &header,
        &partner_claims("partner-user"),
    );
    for (what, auth) in transports(&token) {
        expect_welcome(
            s,
            "keys-partner",
            auth,
            &format!("{PARTNER_ISS}#partner-user"),
            "Partner partner-user",
            what,
        )
        .await;
    }
    // The partner has exactly one key, so its tokens may leave out the kid.
    let no_kid = mint(
        PARTNER_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &partner_claims("partner-nokid"),
    );
    expect_welcome(
        s,
        "keys-partner",
        Auth::Header(&no_kid),
        &format!("{PARTNER_ISS}#partner-nokid"),
        "Partner partner-nokid",
        "no kid",
    )
    .await;
    // roomgate's own login still works next to external issuers.
    let own = login_token(s, "bob").await;
    assert_eq!(header_of(&own)["alg"], "HS256");
    assert_eq!(header_of(&own)["kid"], "primary");
}

#[tokio::test]
async fn the_longest_external_user_id_can_be_kicked_and_revoked() {
    let s = issuers();
    // The longest `sub` an issuer may send, behind the issuer's prefix: an id over the
    // length of any one claim.
    let sub = "s".repeat(128);
    let id = format!("{PARTNER_ISS}#{sub}");
    let token = mint(
        PARTNER_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT", "kid": PARTNER_KID}),
        &with(
            partner_claims(&sub),
            json!({"name": "Long", "jti": "long-id"}),
        ),
    );
    let join = || async {
        let mut c = s
            .connect("/ws/keys-longid", Auth::Header(&token))
            .await
            .unwrap_or_else(|r| panic!("refused {} {}", r.status, r.body));
        assert_eq!(c.recv_type("welcome").await["user"]["id"], id.as_str());
        c
    };

    let mut kicked = join().await;
    let kick = admin_post(s, "/admin/rooms/keys-longid/kick", &json!({"user_id": id})).await;
    assert_eq!(
        (kick.status, &kick.json["closed"]),
        (200, &json!(1)),
        "{}",
        kick.text
    );
    assert_eq!(kicked.expect_close().await, Some(4003));

    let mut revoked = join().await;
    revoke_sub(s, &id).await;
    assert_eq!(revoked.expect_close().await, Some(4003));
    let refused = s
        .connect("/ws/keys-longid", Auth::Header(&token))
        .await
        .err()
        .expect("a revoked user gets no socket");
    refused.expect(401, "invalid_token");
}

// ---------------------------------------------------------------------------------------
// A keyring that does not load

#[tokio::test]
async fn weak_rsa_issuer_key_makes_the_keyring_routes_misconfigured() {
    let s = weak();
    let check = |r: &Reply, case: &str| {
        r.expect_error(500, "misconfigured", case);
        assert!(
            !r.text.contains("rsa-weak") && !r.text.contains("2048"),
            "{case}: detail leaked: {}",
            r.text
        );
    };

    let res = s.login("alice", login_password("alice")).await;
    check(&Reply::from(res).await, "POST /login");

    // The upgrade: a valid own token, and a token of the strong key of the same issuer.
    let own = own_hs(None, &claims("weak-own", "Weak"));
    let strong = Ext::Rs256.sign(&ext_claims("weak-ext"));
    for (what, token) in [("own token", &own), ("external RS256 token", &strong)] {
        for (via, auth) in transports(token) {
            let r = s
                .connect("/ws/keys-weak", auth)
                .await
                .err()
                .unwrap_or_else(|| panic!("{what} via {via}: a socket was opened"));
            r.expect(500, "misconfigured");
            assert!(!r.body.contains("rsa-weak"), "{what} via {via}: {}", r.body);
        }
    }

    let r = Reply::from(
        s.http()
            .post(format!("{}/ws-ticket", s.url))
            .bearer_auth(&own)
            .send()
            .await
            .unwrap(),
    )
    .await;
    check(&r, "POST /ws-ticket");
    check(
        &get(s, "/.well-known/jwks.json").await,
        "GET /.well-known/jwks.json",
    );
}

#[tokio::test]
async fn with_external_issuers_only_the_gate_works_and_login_is_misconfigured() {
    let s = external_only();
    let token = Ext::EdDsa.sign(&ext_claims("ext-only"));
    expect_welcome(
        s,
        "keys-ext-only",
        Auth::Subprotocol(&token),
        &format!("{EXT_ISS}#ext-only"),
        "Ext ext-only",
        "external token",
    )
    .await;
    // Nothing of roomgate's own verifies: the test secret is not configured.
    s.connect(
        "/ws/keys-ext-only",
        Auth::Header(&token_for("ext-only-own", "O")),
    )
    .await
    .err()
    .expect("own HS256 token without JWT_SECRET")
    .expect(401, "invalid_token");
    // And nothing signs.
    let r = Reply::from(s.login("alice", login_password("alice")).await).await;
    r.expect_error(500, "misconfigured", "POST /login without a signing key");
    assert_eq!(jwks(s, "external only").await, Vec::<Value>::new());
}

#[tokio::test]
async fn without_jwt_secret_or_signing_kid_the_first_of_jwt_keys_signs() {
    let s = keys_only();
    let token = login_token(s, "alice").await;
    assert_eq!(header_of(&token)["alg"], "HS256", "{}", header_of(&token));
    assert_eq!(
        header_of(&token)["kid"],
        "hs-first",
        "{}",
        header_of(&token)
    );
    let sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();
    expect_welcome(
        s,
        "keys-first",
        Auth::Subprotocol(&token),
        &sub,
        "Alice",
        "first key's token",
    )
    .await;
    // The Ed25519 key verifies without signing, and is published.
    let kids: Vec<String> = jwks(s, "keys only")
        .await
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids, vec![OWN_ED_KID.to_owned()]);
}

/// Every bad keyring entry the README lists ("A bad entry ... makes the gate answer 500
/// `misconfigured` rather than run with half a keyring"), each in a runtime of its own
/// (started, checked and stopped one after the other): `/login` and `/ws` answer 500.
#[tokio::test]
async fn every_bad_keyring_entry_fails_closed() {
    let ec = issuer_jwk("ec-1");
    let issuer = |keys: Vec<Value>| {
        json!([{"iss": EXT_ISS, "aud": EXT_AUD, "jwks": {"keys": keys}}]).to_string()
    };
    let mut public_only_ed = own_ed_jwk();
    public_only_ed.as_object_mut().unwrap().remove("d");
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "a private key where a public one belongs",
            vec![("TRUSTED_ISSUERS", issuer(vec![own_ed_jwk()]))],
        ),
        (
            "an alg that does not match the key type",
            vec![("TRUSTED_ISSUERS", issuer(vec![with(ec.clone(), json!({"alg": "RS256"}))]))],
        ),
        (
            "a duplicate kid (an issuer key named like JWT_SECRET's)",
            vec![("TRUSTED_ISSUERS", issuer(vec![with(ec.clone(), json!({"kid": "primary"}))]))],
        ),
        (
            "a duplicate kid within one issuer",
            vec![("TRUSTED_ISSUERS", issuer(vec![ec.clone(), with(issuer_jwk("rsa-1"), json!({"kid": "ec-1"}))]))],
        ),
        (
            "a missing shared secret",
            vec![("TRUSTED_ISSUERS", json!([partner_issuer()]).to_string())],
        ),
        (
            "a shared secret under 32 bytes",
            vec![
                ("TRUSTED_ISSUERS", json!([partner_issuer()]).to_string()),
                (PARTNER_BINDING, "too-short".into()),
            ],
        ),
        (
            "an issuer without keys",
            vec![("TRUSTED_ISSUERS", json!([{"iss": EXT_ISS, "aud": EXT_AUD}]).to_string())],
        ),
        (
            "a key URL that is not https",
            vec![(
                "TRUSTED_ISSUERS",
                json!([{"iss": EXT_ISS, "aud": EXT_AUD, "jwks_uri": "http://id.fixture.test/jwks.json"}]).to_string(),
            )],
        ),
        (
            "both jwks_uri and discovery",
            vec![(
                "TRUSTED_ISSUERS",
                json!([{"iss": EXT_ISS, "aud": EXT_AUD, "jwks_uri": "https://id.fixture.test/jwks.json",
                        "discovery": "https://id.fixture.test/.well-known/openid-configuration"}]).to_string(),
            )],
        ),
        ("TRUSTED_ISSUERS that is not JSON", vec![("TRUSTED_ISSUERS", "[{iss: nope".into())]),
        (
            "JWT_SIGNING_KID naming no own key",
            vec![
                ("TRUSTED_ISSUERS", json!([fixture_issuer(false)]).to_string()),
                ("JWT_SIGNING_KID", "ec-1".into()),
            ],
        ),
        (
            "an own Ed25519 key without its private half",
            vec![("JWT_KEYS", json!({"keys": [public_only_ed]}).to_string())],
        ),
    ];
    let own = own_hs(None, &claims("bad-config", "Bad"));
    let mut failures = Vec::new();
    for (case, vars) in cases {
        let s = tokio::task::spawn_blocking(move || {
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Server::start(&vars)
        })
        .await
        .unwrap();
        let login = Reply::from(s.login("alice", login_password("alice")).await).await;
        if (login.status, login.json["error"].as_str()) != (500, Some("misconfigured")) {
            failures.push(format!(
                "{case}: POST /login answered {} {}",
                login.status, login.text
            ));
        }
        match s.connect("/ws/keys-bad", Auth::Header(&own)).await {
            Ok(c) => {
                failures.push(format!("{case}: /ws opened a socket"));
                c.close().await;
            }
            Err(r) if (r.status, r.json["error"].as_str()) != (500, Some("misconfigured")) => {
                failures.push(format!("{case}: /ws answered {} {}", r.status, r.body));
            }
            Err(_) => {}
        }
        drop(s); // closes its stdin: the runtime stops
    }
    assert!(
        failures.is_empty(),
        "misbehaving configurations:\n  {}",
        failures.join("\n  ")
    );
}

/// An external issuer cannot become one of roomgate's own users (or another issuer's):
/// its users' ids are `<iss>#<sub>`, whatever `sub` it mints.
#[tokio::test]
async fn external_issuers_cannot_mint_own_users() {
    let s = issuers();
    let alice = login_token(s, "alice").await;
    let alice_id = claims_of(&alice)["sub"].as_str().unwrap().to_owned();
    let (mut own, _) = s.join_welcomed("keys-collision", &alice).await;

    let ext = Ext::ALL[1];
    let forged = ext.sign(&{
        let mut c = ext_claims(&alice_id);
        c["name"] = json!("Alice");
        c
    });
    let (mut other, welcome) = s.join_welcomed("keys-collision", &forged).await;
    let ext_id = format!("{EXT_ISS}#{alice_id}");
    assert_eq!(welcome["user"]["id"], ext_id.as_str());
    assert_eq!(welcome["members"].as_array().unwrap().len(), 2, "{welcome}");
    // Alice sees a new member arrive, not a second tab of herself.
    let join = own.recv_type("join").await;
    assert_eq!(join["user"]["id"], ext_id.as_str());

    other.publish(json!("hi")).await;
    let m = own.recv_type("message").await;
    assert_eq!(m["from"]["id"], ext_id.as_str());
    other.close().await;
    own.close().await;
}
