//! Shared helpers for the key, token, ticket and limit tests (`tests/token_corpus.rs`,
//! `tests/keys.rs`, `tests/tickets.rs`, `tests/limits.rs`): the fixture issuer and its
//! `TRUSTED_ISSUERS` entry, tokens minted with an independent JWT library
//! (`jsonwebtoken`, ring backend) from the fixture PEMs, raw HS256 forgeries, segment
//! surgery, tickets, revocations, and an upgrade that keeps the whole 101 response.
//!
//! Not a test binary of its own (a `mod.rs` in a subdirectory); each test file pulls it
//! in with `mod tokens;` next to `mod common;`.
#![allow(dead_code)]

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response as UpgradeResponse;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::common::{claims, now, Reply, Server, ADMIN_TOKEN, JWT_SECRET};

/// `iss` and `aud` of the pretend external issuer whose keys are the fixture PEMs.
pub const EXT_ISS: &str = "https://id.fixture.test";
/// Deliberately not roomgate's own audience, so a token for one cannot pass as the other.
pub const EXT_AUD: &str = "roomgate-fixture";

/// A second external issuer that shares an HS256 secret with roomgate (a Worker secret).
pub const PARTNER_ISS: &str = "partner";
pub const PARTNER_AUD: &str = "roomgate";
pub const PARTNER_KID: &str = "partner-hs";
pub const PARTNER_BINDING: &str = "PARTNER_SECRET";
pub const PARTNER_SECRET: &str = "partner-shared-secret-0123456789abcdef-test";

/// Kid of roomgate's own Ed25519 key in `tests/fixtures/own-ed25519.jwk.json`.
pub const OWN_ED_KID: &str = "rg-ed-1";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The text of a file in `tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The fixture issuer's public JWK Set, optionally without the weak 1024-bit RSA key.
pub fn issuer_jwks(with_weak_rsa: bool) -> Value {
    let mut set: Value = serde_json::from_str(&fixture("issuer-public.jwks.json")).unwrap();
    if !with_weak_rsa {
        set["keys"]
            .as_array_mut()
            .unwrap()
            .retain(|k| k["kid"] != "rsa-weak");
    }
    set
}

/// One public JWK of the fixture issuer by kid.
pub fn issuer_jwk(kid: &str) -> Value {
    issuer_jwks(true)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("no fixture jwk {kid}"))
        .clone()
}

/// The `TRUSTED_ISSUERS` entry of the fixture issuer.
pub fn fixture_issuer(with_weak_rsa: bool) -> Value {
    json!({"iss": EXT_ISS, "aud": EXT_AUD, "jwks": issuer_jwks(with_weak_rsa)})
}

/// The `TRUSTED_ISSUERS` entry of the shared-secret partner (needs [`PARTNER_BINDING`]).
pub fn partner_issuer() -> Value {
    json!({"iss": PARTNER_ISS, "aud": PARTNER_AUD,
           "secret": {"kid": PARTNER_KID, "binding": PARTNER_BINDING}})
}

/// roomgate's own Ed25519 private JWK (test-only).
pub fn own_ed_jwk() -> Value {
    serde_json::from_str(&fixture("own-ed25519.jwk.json")).unwrap()
}

/// An `oct` JWK holding `secret`.
pub fn oct_jwk(kid: &str, secret: &[u8]) -> Value {
    json!({"kty": "oct", "kid": kid, "k": URL_SAFE_NO_PAD.encode(secret)})
}

/// Base64url (no padding) of a JSON value's text.
pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Base64url (no padding) of raw text.
pub fn b64_text(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// The decoded header of a JWT (unverified).
pub fn header_of(token: &str) -> Value {
    let header = token.split('.').next().expect("jwt header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// `base` with some fields changed; a `null` in `changes` removes the field.
pub fn with(base: Value, changes: Value) -> Value {
    let mut c = base;
    for (k, v) in changes.as_object().expect("changes is an object") {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// Valid claims for the fixture issuer, valid for an hour.
pub fn ext_claims(sub: &str) -> Value {
    with(
        claims(sub, &format!("Ext {sub}")),
        json!({"iss": EXT_ISS, "aud": EXT_AUD}),
    )
}

/// Valid claims for the partner issuer.
pub fn partner_claims(sub: &str) -> Value {
    with(
        claims(sub, &format!("Partner {sub}")),
        json!({"iss": PARTNER_ISS, "aud": PARTNER_AUD}),
    )
}

/// HS256 over arbitrary header and payload *text* (for non-JSON or odd payloads).
pub fn hs256_raw(secret: &[u8], header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64_text(header), b64_text(payload));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// An own HS256 token signed with the test `JWT_SECRET`, with `kid` if given.
pub fn own_hs(kid: Option<&str>, claims: &Value) -> String {
    let mut header = json!({"alg": "HS256", "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    super::common::mint(JWT_SECRET.as_bytes(), &header, claims)
}

/// The fixture issuer's private keys, by algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext {
    Rs256,
    Es256,
    EdDsa,
}

impl Ext {
    pub const ALL: [Ext; 3] = [Ext::Rs256, Ext::Es256, Ext::EdDsa];

    pub fn kid(self) -> &'static str {
        match self {
            Ext::Rs256 => "rsa-1",
            Ext::Es256 => "ec-1",
            Ext::EdDsa => "ed-1",
        }
    }

    pub fn alg(self) -> Algorithm {
        match self {
            Ext::Rs256 => Algorithm::RS256,
            Ext::Es256 => Algorithm::ES256,
            Ext::EdDsa => Algorithm::EdDSA,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Ext::Rs256 => "RS256",
            Ext::Es256 => "ES256",
            Ext::EdDsa => "EdDSA",
        }
    }

    pub fn key(self) -> EncodingKey {
        let pem = |f: &str| fixture(f).into_bytes();
        match self {
            Ext::Rs256 => EncodingKey::from_rsa_pem(&pem("rsa-2048.pem")),
            Ext::Es256 => EncodingKey::from_ec_pem(&pem("ec-p256.pem")),
            Ext::EdDsa => EncodingKey::from_ed_pem(&pem("ed25519.pem")),
        }
        .unwrap_or_else(|e| panic!("fixture key for {self:?}: {e}"))
    }

    /// A token signed by this key with the given header `alg` and `kid`.
    pub fn sign_as(self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.key())
            .unwrap_or_else(|e| panic!("jsonwebtoken encode {self:?}: {e}"))
    }

    /// A proper token of this key: its own alg and kid.
    pub fn sign(self, claims: &Value) -> String {
        self.sign_as(self.alg(), Some(self.kid()), claims)
    }
}

/// A token whose header names the weak RSA key (`rsa-weak`). ring refuses to sign with a
/// 1024-bit key, so it is signed with the 2048-bit one: only the `kid` matters to a gate
/// that does not have that key configured.
pub fn weak_rsa_kid_token(claims: &Value) -> String {
    Ext::Rs256.sign_as(Algorithm::RS256, Some("rsa-weak"), claims)
}

/// `token` with segment `index` replaced by `f(segment)`.
pub fn replace_segment(token: &str, index: usize, f: impl FnOnce(&str) -> String) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[index] = f(&parts[index]);
    parts.join(".")
}

/// `token` with its header re-encoded after `changes` (signature kept).
pub fn with_header(token: &str, changes: Value) -> String {
    let header = with(header_of(token), changes);
    replace_segment(token, 0, |_| b64(&header))
}

/// `token` with its payload re-encoded after `changes` (signature kept).
pub fn with_payload(token: &str, changes: Value) -> String {
    let payload = with(super::common::claims_of(token), changes);
    replace_segment(token, 1, |_| b64(&payload))
}

/// `token` with one character of its signature changed (the first: always a data bit).
pub fn flip_signature(token: &str) -> String {
    replace_segment(token, 2, |sig| {
        let mut chars: Vec<char> = sig.chars().collect();
        chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect()
    })
}

/// The shortest own HS256 token (valid, signed, padded with a `pad` claim) of at least
/// `len` bytes: base64 grows in steps, so it is at most a few bytes longer.
pub fn token_of_at_least(sub: &str, len: usize) -> String {
    let make = |pad: usize| {
        own_hs(
            None,
            &with(claims(sub, sub), json!({"pad": "p".repeat(pad)})),
        )
    };
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if make(mid).len() >= len {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    make(lo)
}

/// `POST {path}` with the admin token and a JSON body.
pub async fn admin_post(s: &Server, path: &str, body: &Value) -> Reply {
    Reply::from(
        s.http()
            .post(format!("{}{path}", s.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// `PUT /admin/users/{user}` with a JSON body.
pub async fn admin_put_user(s: &Server, user: &str, body: &Value) -> Reply {
    Reply::from(
        s.http()
            .put(format!("{}/admin/users/{user}", s.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Revokes one token by `jti` (asserting 200).
pub async fn revoke_jti(s: &Server, jti: &str) {
    let r = admin_post(s, "/admin/revoke", &json!({"jti": jti})).await;
    assert_eq!(r.status, 200, "revoke jti {jti}: {}", r.text);
}

/// Revokes every token of `sub` for the next hour (asserting 200).
pub async fn revoke_sub(s: &Server, sub: &str) {
    let r = admin_post(
        s,
        "/admin/revoke",
        &json!({"sub": sub, "until": now() + 3600}),
    )
    .await;
    assert_eq!(r.status, 200, "revoke sub {sub}: {}", r.text);
}

/// `POST /ws-ticket` with `bearer` (if any) and a JSON `body` (if any).
pub async fn ticket_request(s: &Server, bearer: Option<&str>, body: Option<&Value>) -> Reply {
    let mut req = s.http().post(format!("{}/ws-ticket", s.url));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// A ticket for `token`, bound to `room` if given (asserting 200).
pub async fn ticket(s: &Server, token: &str, room: Option<&str>) -> String {
    let body = room.map(|r| json!({"room": r}));
    let r = ticket_request(s, Some(token), body.as_ref()).await;
    assert_eq!(r.status, 200, "ticket for {room:?}: {}", r.text);
    r.json["ticket"].as_str().expect("ticket").to_owned()
}

/// A WebSocket upgrade that keeps the whole 101 response (headers included). A refusal
/// is its status and whatever body arrived with the response head (possibly cut short).
///
/// Unlike `Server::connect`, a refusal is never replayed: a replay would redeem a
/// single-use ticket a second time and see a different answer.
pub async fn upgrade_raw(
    s: &Server,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<
    (
        WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
        UpgradeResponse,
    ),
    (u16, String),
> {
    let mut req = s.ws_url(path).into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(pair) => Ok(pair),
        Err(WsError::Http(res)) => {
            let status = res.status().as_u16();
            let body = res
                .into_body()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            Err((status, body))
        }
        Err(e) => panic!("upgrade {path}: {e}"),
    }
}
