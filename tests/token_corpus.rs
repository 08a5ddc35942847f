//! A bad-token corpus for the gate, end to end: every class of bad credential a client can
//! present to `GET /ws/{room}` is refused with the documented status and JSON code, and
//! no socket is opened (the upgrade fails with an HTTP answer, never a 101).
//!
//! The runtime trusts, besides roomgate's own `JWT_SECRET` (kid `primary`), the fixture
//! issuer (`tests/fixtures/issuer-public.jwks.json` without the weak RSA key: kids `rsa-1`,
//! `ec-1`, `ed-1`) and a shared-secret partner issuer, and runs with `ALLOWED_ORIGINS`.
//! Tokens are forged with an independent implementation (`jsonwebtoken` from the fixture
//! PEMs, and a plain HMAC for HS256), never with roomgate's own code.
//!
//! Classes (each a named row, most tried through all three token transports):
//! - signature and algorithm: `alg: none`; alg confusion (HS256 keyed with the RSA
//!   modulus, the EC JWK text, the Ed25519 `x`, under those keys' kids); RS256 header on
//!   the EC key and other header/key swaps; unknown kid; the weak RSA key's kid (not
//!   configured); a kid of another issuer (own `primary` with an external `iss`, and the
//!   reverse); no kid when the issuer has several keys; wrong secret;
//! - claims, for an own HS256 token and for an external public-key token: expired, `nbf`
//!   and `iat` in the future, missing `iat`, lifetime over 24 h, wrong `aud`, `aud` list
//!   without ours, wrong `iss`, missing `sub`, empty, non-string and over-long `sub`,
//!   empty or over-long `name`, over-long `jti`, missing `exp`, invalid `rooms` patterns;
//! - structure: tampered header / payload / signature, truncated mid-signature, 4 and 5
//!   segments, non-base64url segments, signed non-JSON claims, signed claims that are a
//!   JSON array, garbage, an empty bearer, no credential, over 8 KiB (401 on every
//!   transport: still under the 10 KiB URL and 8.5 KiB header bounds);
//! - state: revoked `jti`, revoked `sub`, a reused ticket, an expired ticket (its token
//!   expired 2 s after issue: a ticket never outlives its token), a ticket for another
//!   room, an unknown ticket; a room the token's `rooms` claim does not grant (403
//!   `room_forbidden`); a forbidden `Origin` (403 `origin_forbidden`) while no `Origin`
//!   and a listed one are allowed;
//! - critical header parameters: a `crit` header naming an extension roomgate does not
//!   implement makes the JWS invalid (RFC 7515 §4.1.11, "MUST").
//!
//! Every 401 must carry `WWW-Authenticate: Bearer`. Each table checks all its rows and
//! fails once, listing every row that misbehaved. Controls (the untampered tokens, and
//! every signer through every transport) prove the refusals are about the defect.
//! `-- --nocapture` prints the gate's reason for every refused attempt.
//!
//! Run: `cargo test --test token_corpus` (from the repository root; builds the Worker if
//! `src/` changed and starts its own runtime).
use roomgate_harness::admin::{revoke_jti, revoke_sub};
use roomgate_harness::http::{ticket, ticket_request};
use roomgate_harness::issuers::{
    ext_claims, fixture_issuer, issuer_jwk, partner_claims, partner_issuer, weak_rsa_kid_token,
    Ext, EXT_ISS, PARTNER_BINDING, PARTNER_KID, PARTNER_SECRET,
};
use roomgate_harness::runtime::{Server, JWT_SECRET};
use roomgate_harness::tokens::{
    b64, b64_text, claims, claims_of, flip_signature, hs256_raw, mint, now, own_hs,
    replace_segment, token_of_at_least, with, with_header, with_payload,
};
use roomgate_harness::ws::Auth;

use std::sync::OnceLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

const ALLOWED_ORIGIN: &str = "https://app.corpus.test";

/// The corpus runtime: own key, fixture issuer, partner issuer, origin allowlist.
fn corpus() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let issuers = json!([fixture_issuer(false), partner_issuer()]).to_string();
        Server::start(&[
            ("TRUSTED_ISSUERS", issuers.as_str()),
            (PARTNER_BINDING, PARTNER_SECRET),
            ("ALLOWED_ORIGINS", ALLOWED_ORIGIN),
        ])
    })
}

#[derive(Debug, Clone, Copy)]
enum Via {
    Subprotocol,
    Header,
    Query,
}

const ALL: &[Via] = &[Via::Subprotocol, Via::Header, Via::Query];

/// One row: a credential (or none), where it goes, what the gate must answer.
struct Case {
    name: String,
    path: String,
    token: Option<String>,
    via: &'static [Via],
    headers: Vec<(String, String)>,
    status: u16,
    code: &'static str,
}

impl Case {
    /// A token refused with 401 `invalid_token` through every transport.
    fn invalid(name: impl Into<String>, token: String) -> Case {
        Case {
            name: name.into(),
            path: "/ws/corpus".into(),
            token: Some(token),
            via: ALL,
            headers: Vec::new(),
            status: 401,
            code: "invalid_token",
        }
    }

    /// An upgrade with no token (e.g. a ticket in the path).
    fn bare(name: impl Into<String>, path: String, status: u16, code: &'static str) -> Case {
        Case {
            name: name.into(),
            path,
            token: None,
            via: &[],
            headers: Vec::new(),
            status,
            code,
        }
    }

    fn expect(mut self, status: u16, code: &'static str) -> Case {
        self.status = status;
        self.code = code;
        self
    }

    fn header(mut self, name: &str, value: &str) -> Case {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Tries one case (through each of its transports) and describes every misbehaviour.
async fn check(s: &Server, case: &Case) -> Vec<String> {
    let attempts: Vec<(String, Auth<'_>)> = match &case.token {
        None => vec![("no token".into(), Auth::None)],
        Some(t) => case
            .via
            .iter()
            .map(|via| {
                let auth = match via {
                    Via::Subprotocol => Auth::Subprotocol(t),
                    Via::Header => Auth::Header(t),
                    Via::Query => Auth::Query(t),
                };
                (format!("{via:?}"), auth)
            })
            .collect(),
    };
    let headers: Vec<(&str, &str)> = case
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut failures = Vec::new();
    for (via, auth) in attempts {
        let what = format!("{} via {via}", case.name);
        match s.connect_with(&case.path, auth, &headers).await {
            Ok(mut c) => {
                let first = c.next_event_within(Duration::from_secs(2)).await;
                failures.push(format!(
                    "{what}: a socket was opened (want {} {}); first event {first:?}",
                    case.status, case.code
                ));
                c.close().await;
            }
            Err(r) => {
                // Shown with `--nocapture`: why the gate refused each row.
                println!("{what}: {} {}", r.status, r.json["message"]);
                if (r.status, r.json["error"].as_str()) != (case.status, Some(case.code))
                    || !r.json["message"].is_string()
                {
                    failures.push(format!(
                        "{what}: want {} {}, got {} {}",
                        case.status, case.code, r.status, r.body
                    ));
                } else if r.status == 401 {
                    let challenge = r
                        .headers
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if !challenge.starts_with("Bearer") {
                        failures.push(format!("{what}: 401 with www-authenticate {challenge:?}"));
                    }
                }
            }
        }
    }
    failures
}

/// Checks every row; fails once, listing every row that misbehaved.
async fn run(s: &Server, table: &[Case]) {
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for case in table {
        assert!(
            names.insert(&case.name),
            "duplicate case name {}",
            case.name
        );
        failures.extend(check(s, case).await);
    }
    assert!(
        failures.is_empty(),
        "{} attempts misbehaved ({} rows in the table):\n  {}",
        failures.len(),
        table.len(),
        failures.join("\n  ")
    );
}

/// Asserts that `token` opens a socket at `room` through `auth` as user `sub`.
async fn expect_accepted(
    s: &Server,
    room: &str,
    auth: Auth<'_>,
    headers: &[(&str, &str)],
    sub: &str,
    what: &str,
) {
    let mut c = s
        .connect_with(&format!("/ws/{room}"), auth, headers)
        .await
        .unwrap_or_else(|r| panic!("{what}: refused {} {}", r.status, r.body));
    let welcome = c.recv_type("welcome").await;
    assert_eq!(
        welcome["user"]["id"],
        user_id(auth, sub),
        "{what}: {welcome}"
    );
    c.close().await;
}

/// The user id a token with `sub` gets: `sub` for roomgate's own tokens, `<iss>#<sub>`
/// for an external issuer's (so that no issuer can mint another's users).
fn user_id(auth: Auth<'_>, sub: &str) -> String {
    let token = match auth {
        Auth::Subprotocol(t) | Auth::SubprotocolV2(t) | Auth::Header(t) | Auth::Query(t) => t,
        Auth::None => return sub.to_owned(),
    };
    match claims_of(token)["iss"].as_str() {
        Some(iss) if iss != "roomgate" => format!("{iss}#{sub}"),
        _ => sub.to_owned(),
    }
}

/// Who signs a claims-class row.
#[derive(Debug, Clone, Copy)]
enum Signer {
    /// roomgate's own `JWT_SECRET` (HS256, kid `primary`).
    Own,
    /// The fixture issuer's key.
    External(Ext),
}

impl Signer {
    fn label(self) -> String {
        match self {
            Signer::Own => "HS256 own".into(),
            Signer::External(e) => format!("{} external", e.name()),
        }
    }

    fn claims(self, sub: &str) -> Value {
        match self {
            Signer::Own => claims(sub, sub),
            Signer::External(_) => ext_claims(sub),
        }
    }

    fn sign(self, claims: &Value) -> String {
        match self {
            Signer::Own => own_hs(Some("primary"), claims),
            Signer::External(e) => e.sign(claims),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Controls: what the corpus tampers with is accepted untampered.

#[tokio::test]
async fn controls_every_signer_is_accepted_through_every_transport() {
    let s = corpus();
    let mut signed: Vec<(String, String, String)> = vec![
        (
            "own HS256 with kid".into(),
            "ctl-own".into(),
            own_hs(Some("primary"), &claims("ctl-own", "o")),
        ),
        (
            "own HS256 without kid".into(),
            "ctl-own2".into(),
            own_hs(None, &claims("ctl-own2", "o")),
        ),
        (
            "partner HS256".into(),
            "ctl-partner".into(),
            mint(
                PARTNER_SECRET.as_bytes(),
                &json!({"alg": "HS256", "typ": "JWT", "kid": PARTNER_KID}),
                &partner_claims("ctl-partner"),
            ),
        ),
    ];
    for e in Ext::ALL {
        let sub = format!("ctl-{}", e.kid());
        signed.push((
            format!("{} external", e.name()),
            sub.clone(),
            e.sign(&ext_claims(&sub)),
        ));
    }
    // Exactly the longest accepted lifetime (24 h) passes.
    let n = now();
    signed.push((
        "lifetime exactly 24 h".into(),
        "ctl-24h".into(),
        own_hs(
            None,
            &with(
                claims("ctl-24h", "x"),
                json!({"iat": n - 100, "nbf": n - 100, "exp": n - 100 + 86_400}),
            ),
        ),
    ));
    for (what, sub, token) in &signed {
        for auth in [
            Auth::Subprotocol(token),
            Auth::Header(token),
            Auth::Query(token),
        ] {
            expect_accepted(s, "corpus", auth, &[], sub, &format!("{what} {auth:?}")).await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Signature, algorithm and key selection

#[tokio::test]
async fn refuses_bad_algorithms_and_keys() {
    let s = corpus();
    let rsa_n = URL_SAFE_NO_PAD
        .decode(issuer_jwk("rsa-1")["n"].as_str().unwrap())
        .unwrap();
    let rsa_n_text = issuer_jwk("rsa-1")["n"].as_str().unwrap().to_owned();
    let ec_jwk_text = issuer_jwk("ec-1").to_string();
    let ed_x = URL_SAFE_NO_PAD
        .decode(issuer_jwk("ed-1")["x"].as_str().unwrap())
        .unwrap();
    let hs = |secret: &[u8], kid: &str, claims: &Value| {
        mint(
            secret,
            &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
            claims,
        )
    };
    let none = |header: Value, claims: &Value| format!("{}.{}.", b64(&header), b64(claims));
    let ext = ext_claims("mallory");
    let own = claims("mallory", "Mallory");

    let table = vec![
        Case::invalid(
            "alg none, no kid",
            none(json!({"alg": "none", "typ": "JWT"}), &own),
        ),
        Case::invalid(
            "alg none, own kid",
            none(json!({"alg": "none", "kid": "primary"}), &own),
        ),
        Case::invalid(
            "alg none, external kid",
            none(json!({"alg": "none", "kid": "ec-1"}), &ext),
        ),
        Case::invalid(
            "alg none with a valid HS256 signature kept",
            with_header(&own_hs(Some("primary"), &own), json!({"alg": "none"})),
        ),
        Case::invalid(
            "alg confusion: HS256 keyed with the RSA modulus bytes, kid rsa-1",
            hs(&rsa_n, "rsa-1", &ext),
        ),
        Case::invalid(
            "alg confusion: HS256 keyed with the RSA modulus text, kid rsa-1",
            hs(rsa_n_text.as_bytes(), "rsa-1", &ext),
        ),
        Case::invalid(
            "alg confusion: HS256 keyed with the EC JWK text, kid ec-1",
            hs(ec_jwk_text.as_bytes(), "ec-1", &ext),
        ),
        Case::invalid(
            "alg confusion: HS256 keyed with the Ed25519 x, kid ed-1",
            hs(&ed_x, "ed-1", &ext),
        ),
        Case::invalid(
            "RS256 header on the EC key (RSA-signed, kid ec-1)",
            Ext::Rs256.sign_as(Algorithm::RS256, Some("ec-1"), &ext),
        ),
        Case::invalid(
            "ES256 header on the RSA key (EC-signed, kid rsa-1)",
            Ext::Es256.sign_as(Algorithm::ES256, Some("rsa-1"), &ext),
        ),
        Case::invalid(
            "EdDSA header on the EC key (Ed-signed, kid ec-1)",
            Ext::EdDsa.sign_as(Algorithm::EdDSA, Some("ec-1"), &ext),
        ),
        Case::invalid(
            "RS256 header on the own HS256 key (kid primary)",
            Ext::Rs256.sign_as(Algorithm::RS256, Some("primary"), &own),
        ),
        Case::invalid(
            "HS512 on the own key",
            mint(
                JWT_SECRET.as_bytes(),
                &json!({"alg": "HS512", "kid": "primary"}),
                &own,
            ),
        ),
        Case::invalid(
            "PS256 with the RSA key",
            Ext::Rs256.sign_as(Algorithm::PS256, Some("rsa-1"), &ext),
        ),
        Case::invalid("unknown kid (HS256)", own_hs(Some("no-such-kid"), &own)),
        Case::invalid(
            "unknown kid (RS256)",
            Ext::Rs256.sign_as(Algorithm::RS256, Some("rsa-2"), &ext),
        ),
        Case::invalid(
            "kid of the weak RSA key (not configured)",
            weak_rsa_kid_token(&ext),
        ),
        Case::invalid(
            "kid of another issuer: own primary key with the external iss/aud",
            own_hs(Some("primary"), &ext),
        ),
        Case::invalid(
            "kid of another issuer: external ec-1 with roomgate's iss/aud",
            Ext::Es256.sign(&own),
        ),
        Case::invalid(
            "kid of another issuer: partner key with the fixture issuer's iss/aud",
            mint(
                PARTNER_SECRET.as_bytes(),
                &json!({"alg": "HS256", "kid": PARTNER_KID}),
                &ext,
            ),
        ),
        Case::invalid(
            "no kid, issuer has several keys",
            Ext::Es256.sign_as(Algorithm::ES256, None, &ext),
        ),
        Case::invalid(
            "wrong secret",
            mint(
                b"another-secret-that-is-long-enough-0123456789",
                &json!({"alg": "HS256", "kid": "primary"}),
                &own,
            ),
        ),
        Case::invalid("empty kid", own_hs(Some(""), &own)),
    ];
    run(s, &table).await;
}

// ---------------------------------------------------------------------------------------
// Claims, for an own HS256 token and for external public-key tokens

#[tokio::test]
async fn refuses_bad_claims_from_every_kind_of_key() {
    let s = corpus();
    let n = now();
    // (class, changes to valid claims)
    let classes: Vec<(&str, Value)> = vec![
        (
            "expired",
            json!({"iat": n - 7200, "nbf": n - 7200, "exp": n - 120}),
        ),
        ("nbf in the future", json!({"nbf": n + 300})),
        ("iat in the future", json!({"iat": n + 300, "nbf": null})),
        ("missing iat", json!({"iat": null})),
        (
            "lifetime too long (exp - iat = 24 h + 100 s)",
            json!({"iat": n - 50, "nbf": n - 50, "exp": n + 86_450}),
        ),
        ("wrong aud", json!({"aud": "another-service"})),
        ("aud list without ours", json!({"aud": ["a", "b"]})),
        ("missing aud", json!({"aud": null})),
        ("wrong iss", json!({"iss": "https://evil.test"})),
        ("missing iss", json!({"iss": null})),
        ("missing sub", json!({"sub": null})),
        ("empty sub", json!({"sub": ""})),
        ("sub over 128 bytes", json!({"sub": "s".repeat(129)})),
        ("name over 128 bytes", json!({"name": "n".repeat(129)})),
        ("missing exp", json!({"exp": null})),
        ("exp not a number", json!({"exp": "tomorrow"})),
        ("invalid rooms pattern", json!({"rooms": ["a b"]})),
        (
            "rooms over 64 patterns",
            json!({"rooms": (0..65).map(|i| format!("r{i}")).collect::<Vec<_>>()}),
        ),
        ("sub not a string", json!({"sub": 42})),
        ("empty name", json!({"name": ""})),
        ("jti over 128 bytes", json!({"jti": "j".repeat(129)})),
        ("rooms not an array", json!({"rooms": "lobby"})),
        (
            "name with a right-to-left override",
            json!({"name": "admin\u{202E}nimda"}),
        ),
        ("name with an isolate", json!({"name": "Bob\u{2066}"})),
        (
            "name with a zero-width space",
            json!({"name": "Mal\u{200B}lory"}),
        ),
        ("sub with a direction mark", json!({"sub": "u\u{200F}1"})),
    ];
    let mut table = Vec::new();
    for (i, (class, changes)) in classes.iter().enumerate() {
        // Own HS256, and one external public-key algorithm per class (rotating).
        for signer in [Signer::Own, Signer::External(Ext::ALL[i % 3])] {
            let sub = format!("claims-{i}");
            let token = signer.sign(&with(signer.claims(&sub), changes.clone()));
            table.push(Case::invalid(
                format!("{class} [{}]", signer.label()),
                token,
            ));
        }
    }
    run(s, &table).await;
}

// ---------------------------------------------------------------------------------------
// Structure

#[tokio::test]
async fn refuses_malformed_and_tampered_tokens() {
    let s = corpus();
    let own = own_hs(Some("primary"), &claims("struct-user", "Struct"));
    let es = Ext::Es256.sign(&ext_claims("struct-ext"));
    let ed = Ext::EdDsa.sign(&ext_claims("struct-ed"));
    let rs = Ext::Rs256.sign(&ext_claims("struct-rs"));
    let own_header = r#"{"alg":"HS256","typ":"JWT","kid":"primary"}"#;
    let secret = JWT_SECRET.as_bytes();
    let oversized = token_of_at_least("oversized", 8 * 1024 + 200);
    assert!(
        oversized.len() > 8192 && oversized.len() < 8600,
        "{}",
        oversized.len()
    );

    let table = vec![
        Case::invalid(
            "tampered header: typ changed (HS256)",
            with_header(&own, json!({"typ": "JWS"})),
        ),
        Case::invalid(
            "tampered header: kid removed (HS256)",
            with_header(&own, json!({"kid": null})),
        ),
        Case::invalid(
            "tampered header: kid ec-1 -> ed-1 (ES256)",
            with_header(&es, json!({"kid": "ed-1"})),
        ),
        Case::invalid(
            "tampered header: alg ES256 -> ES384 (ES256)",
            with_header(&es, json!({"alg": "ES384"})),
        ),
        Case::invalid(
            "tampered header: extra member (EdDSA)",
            with_header(&ed, json!({"x5u": "https://evil.test"})),
        ),
        Case::invalid(
            "tampered payload: sub changed (HS256)",
            with_payload(&own, json!({"sub": "admin"})),
        ),
        Case::invalid(
            "tampered payload: exp extended (EdDSA)",
            with_payload(&ed, json!({"exp": now() + 7200})),
        ),
        Case::invalid(
            "tampered payload: rooms added (RS256)",
            with_payload(&rs, json!({"rooms": ["*"]})),
        ),
        Case::invalid("tampered signature (HS256)", flip_signature(&own)),
        Case::invalid("tampered signature (ES256)", flip_signature(&es)),
        Case::invalid("tampered signature (EdDSA)", flip_signature(&ed)),
        Case::invalid("tampered signature (RS256)", flip_signature(&rs)),
        Case::invalid(
            "signature of another token (HS256)",
            replace_segment(&own, 2, |_| {
                own_hs(Some("primary"), &claims("other", "o"))
                    .split('.')
                    .nth(2)
                    .unwrap()
                    .to_owned()
            }),
        ),
        Case::invalid(
            "signature removed (HS256)",
            replace_segment(&own, 2, |_| String::new()),
        ),
        Case::invalid(
            "truncated mid-signature (HS256)",
            own[..own.len() - 10].to_owned(),
        ),
        Case::invalid(
            "truncated mid-signature (RS256)",
            rs[..rs.len() - 100].to_owned(),
        ),
        Case::invalid(
            "truncated after the payload",
            own[..own.rfind('.').unwrap()].to_owned(),
        ),
        Case::invalid(
            "4 segments (extra trailing segment)",
            format!("{own}.{}", b64_text("extra")),
        ),
        Case::invalid("5 segments (JWE-shaped)", format!("{own}.AAAA.BBBB")),
        Case::invalid(
            "non-base64url header",
            replace_segment(&own, 0, |h| format!("{}!*", &h[..h.len() - 2])),
        ),
        Case::invalid(
            "non-base64url payload",
            replace_segment(&own, 1, |p| format!("*{}", &p[1..])),
        ),
        Case::invalid(
            "non-base64url signature",
            replace_segment(&own, 2, |sig| format!("{}~!", &sig[..sig.len() - 2])),
        ),
        Case::invalid(
            "padded standard base64 payload",
            replace_segment(&own, 1, |p| {
                let raw = URL_SAFE_NO_PAD.decode(p).unwrap();
                base64::engine::general_purpose::STANDARD.encode(raw)
            }),
        ),
        Case::invalid(
            "non-JSON claims (signed)",
            hs256_raw(secret, own_header, "not json at all"),
        ),
        Case::invalid(
            "claims JSON array (signed)",
            hs256_raw(
                secret,
                own_header,
                &json!([claims("arr", "Arr")]).to_string(),
            ),
        ),
        Case::invalid(
            "claims JSON string (signed)",
            hs256_raw(secret, own_header, "\"sub\""),
        ),
        Case::invalid(
            "claims JSON null (signed)",
            hs256_raw(secret, own_header, "null"),
        ),
        Case::invalid(
            "non-JSON header (signed)",
            hs256_raw(secret, "alg=HS256", &claims("h", "h").to_string()),
        ),
        Case::invalid(
            "header JSON array (signed)",
            hs256_raw(secret, r#"["HS256"]"#, &claims("h", "h").to_string()),
        ),
        Case::invalid("garbage", "garbage".into()),
        Case::invalid("three empty segments", "..".into()),
        Case::invalid("oversized: over 8 KiB, validly signed", oversized),
        Case::bare(
            "no credential at all",
            "/ws/corpus".into(),
            401,
            "invalid_token",
        ),
        Case::bare("empty bearer", "/ws/corpus".into(), 401, "invalid_token")
            .header("authorization", "Bearer "),
        Case::bare(
            "empty query token",
            "/ws/corpus?token=".into(),
            401,
            "invalid_token",
        ),
        Case::bare(
            "bearer entry without roomgate.v1",
            "/ws/corpus".into(),
            401,
            "invalid_token",
        )
        .header("sec-websocket-protocol", &format!("bearer.{own}")),
        Case::bare(
            "Basic instead of Bearer",
            "/ws/corpus".into(),
            401,
            "invalid_token",
        )
        .header("authorization", &format!("Basic {own}")),
    ];
    // The untampered originals are accepted (so each row fails for its defect).
    for (token, sub) in [
        (&own, "struct-user"),
        (&es, "struct-ext"),
        (&ed, "struct-ed"),
        (&rs, "struct-rs"),
    ] {
        expect_accepted(
            s,
            "corpus",
            Auth::Subprotocol(token),
            &[],
            sub,
            "untampered original",
        )
        .await;
    }
    run(s, &table).await;
}

// ---------------------------------------------------------------------------------------
// State: revocations and tickets

#[tokio::test]
async fn refuses_revoked_tokens() {
    let s = corpus();
    let jti = format!("corpus-revoked-jti-{}", now());
    let by_jti = own_hs(
        None,
        &with(claims("rev-jti-user", "R"), json!({"jti": jti})),
    );
    let ext_jti = format!("corpus-revoked-ext-jti-{}", now());
    let ext_by_jti = Ext::Es256.sign(&with(ext_claims("rev-ext-user"), json!({"jti": ext_jti})));
    let by_sub = own_hs(None, &claims("rev-sub-user", "R"));
    let by_sub_no_jti = own_hs(
        None,
        &with(claims("rev-sub-user", "R"), json!({"jti": null})),
    );
    let by_sub_ext = Ext::EdDsa.sign(&ext_claims("rev-sub-user-ext"));

    // Before the revocations, each opens a socket.
    for (token, sub) in [
        (&by_jti, "rev-jti-user"),
        (&ext_by_jti, "rev-ext-user"),
        (&by_sub, "rev-sub-user"),
        (&by_sub_ext, "rev-sub-user-ext"),
    ] {
        expect_accepted(
            s,
            "corpus-rev",
            Auth::Header(token),
            &[],
            sub,
            "before revocation",
        )
        .await;
    }
    revoke_jti(s, &jti).await;
    revoke_jti(s, &ext_jti).await;
    revoke_sub(s, "rev-sub-user").await;
    // External users are revoked by their full id, `<iss>#<sub>`.
    revoke_sub(s, &format!("{EXT_ISS}#rev-sub-user-ext")).await;

    let table = vec![
        Case::invalid("revoked jti (own HS256)", by_jti),
        Case::invalid("revoked jti (external ES256)", ext_by_jti),
        Case::invalid("revoked sub (own HS256)", by_sub),
        Case::invalid("revoked sub, token without jti", by_sub_no_jti),
        Case::invalid(
            "revoked sub, a new token minted after the revocation",
            own_hs(
                None,
                &with(claims("rev-sub-user", "R"), json!({"jti": "fresh"})),
            ),
        ),
        Case::invalid("revoked sub (external EdDSA)", by_sub_ext),
    ];
    run(s, &table).await;

    // A revocation is about that jti / sub only.
    let other = own_hs(None, &claims("rev-bystander", "B"));
    expect_accepted(
        s,
        "corpus-rev",
        Auth::Header(&other),
        &[],
        "rev-bystander",
        "not revoked",
    )
    .await;
}

#[tokio::test]
async fn refuses_used_expired_and_misdirected_tickets() {
    let s = corpus();
    let token = own_hs(None, &claims("ticket-user", "T"));

    // Reused: the first redemption opens a socket, the second is refused.
    let reused = ticket(s, &token, None).await;
    let mut first = s
        .connect(&format!("/ws/corpus-t?ticket={reused}"), Auth::None)
        .await
        .unwrap_or_else(|r| panic!("first redemption refused: {} {}", r.status, r.body));
    assert_eq!(
        first.recv_type("welcome").await["user"]["id"],
        "ticket-user"
    );
    first.close().await;

    // Expired: a ticket never outlives its token, and this token expires in 2 s.
    let n = now();
    let short = own_hs(
        None,
        &with(
            claims("ticket-short", "T"),
            json!({"iat": n, "nbf": n, "exp": n + 2}),
        ),
    );
    let issued = ticket_request(s, Some(&short), None).await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let expires_in = issued.json["expires_in"].as_u64().expect("expires_in");
    assert!(
        expires_in <= 2,
        "ticket outlives its token: expires_in {expires_in}"
    );
    let expired = issued.json["ticket"].as_str().unwrap().to_owned();

    // Bound to one room, redeemed at another.
    let bound = ticket(s, &token, Some("corpus-t-a")).await;

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let table = vec![
        Case::bare(
            "reused ticket",
            format!("/ws/corpus-t?ticket={reused}"),
            401,
            "invalid_token",
        ),
        Case::bare(
            "expired ticket (token expired 2 s after issue)",
            format!("/ws/corpus-t?ticket={expired}"),
            401,
            "invalid_token",
        ),
        Case::bare(
            "ticket for another room",
            format!("/ws/corpus-t-b?ticket={bound}"),
            401,
            "invalid_token",
        ),
        Case::bare(
            "the other-room attempt used the ticket up",
            format!("/ws/corpus-t-a?ticket={bound}"),
            401,
            "invalid_token",
        ),
        Case::bare(
            "unknown well-formed ticket",
            format!("/ws/corpus-t?ticket={}", "A".repeat(43)),
            401,
            "invalid_token",
        ),
        Case::bare(
            "malformed ticket",
            "/ws/corpus-t?ticket=short".into(),
            401,
            "invalid_token",
        ),
        Case::bare(
            "a JWT as the ticket",
            format!("/ws/corpus-t?ticket={token}"),
            401,
            "invalid_token",
        ),
    ];
    run(s, &table).await;
    // The short token itself is still inside the clock leeway: only the ticket expired.
    expect_accepted(
        s,
        "corpus-t",
        Auth::Header(&short),
        &[],
        "ticket-short",
        "short token within leeway",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// 403s: room grants and origins

#[tokio::test]
async fn refuses_ungranted_rooms_and_forbidden_origins() {
    let s = corpus();
    let granted_other = own_hs(
        None,
        &with(claims("grant-user", "G"), json!({"rooms": ["other"]})),
    );
    let granted_ext = Ext::Rs256.sign(&with(ext_claims("grant-ext"), json!({"rooms": ["team-*"]})));
    let valid = own_hs(None, &claims("origin-user", "O"));

    let table = vec![
        Case::invalid("room not granted: rooms [\"other\"]", granted_other.clone())
            .expect(403, "room_forbidden"),
        Case::invalid(
            "room not granted: empty rooms",
            own_hs(None, &with(claims("g0", "G"), json!({"rooms": []}))),
        )
        .expect(403, "room_forbidden"),
        Case::invalid(
            "room not granted: prefix team-* vs corpus",
            granted_ext.clone(),
        )
        .expect(403, "room_forbidden"),
        Case::invalid(
            "room not granted: exact name is not a prefix",
            own_hs(None, &with(claims("g1", "G"), json!({"rooms": ["corpu"]}))),
        )
        .expect(403, "room_forbidden"),
        Case::invalid("forbidden origin", valid.clone())
            .header("origin", "https://evil.test")
            .expect(403, "origin_forbidden"),
        Case::invalid(
            "forbidden origin: allowed host as a subdomain prefix",
            valid.clone(),
        )
        .header("origin", "https://app.corpus.test.evil.test")
        .expect(403, "origin_forbidden"),
        Case::invalid("forbidden origin: other scheme", valid.clone())
            .header("origin", "http://app.corpus.test")
            .expect(403, "origin_forbidden"),
        Case::invalid("forbidden origin: null", valid.clone())
            .header("origin", "null")
            .expect(403, "origin_forbidden"),
        Case::invalid(
            "forbidden origin is checked before the token",
            "garbage".into(),
        )
        .header("origin", "https://evil.test")
        .expect(403, "origin_forbidden"),
    ];
    run(s, &table).await;

    // Granted rooms, a listed origin and no origin at all are let in.
    expect_accepted(
        s,
        "other",
        Auth::Subprotocol(&granted_other),
        &[],
        "grant-user",
        "granted exact room",
    )
    .await;
    expect_accepted(
        s,
        "team-x",
        Auth::Subprotocol(&granted_ext),
        &[],
        "grant-ext",
        "granted prefix",
    )
    .await;
    expect_accepted(
        s,
        "corpus",
        Auth::Subprotocol(&valid),
        &[],
        "origin-user",
        "no Origin header",
    )
    .await;
    expect_accepted(
        s,
        "corpus",
        Auth::Subprotocol(&valid),
        &[("origin", ALLOWED_ORIGIN)],
        "origin-user",
        "listed origin",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Critical header parameters (RFC 7515 §4.1.11)

/// A JWS whose `crit` header lists an extension the recipient does not understand "MUST"
/// be rejected (RFC 7515 §4.1.11; RFC 7797 §6 for `b64`): the issuer declared that the
/// token means something else to anyone who ignores that parameter. roomgate supports no
/// JWS extension, so every token with `crit` must be refused — for its own key and for
/// external keys alike.
#[tokio::test]
async fn refuses_tokens_with_critical_header_parameters() {
    let s = corpus();
    let own = claims("crit-user", "Crit");
    let ext = ext_claims("crit-ext");
    let hs_crit = |extra: Value| {
        let mut header = json!({"alg": "HS256", "typ": "JWT", "kid": "primary"});
        for (k, v) in extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        mint(JWT_SECRET.as_bytes(), &header, &own)
    };
    // jsonwebtoken's Header has no `crit`: sign the ES256 input with its raw signer.
    let es_input = format!(
        "{}.{}",
        b64(&json!({"alg": "ES256", "kid": "ec-1", "crit": ["x-unknown"], "x-unknown": true})),
        b64(&ext)
    );
    let es_sig =
        jsonwebtoken::crypto::sign(es_input.as_bytes(), &Ext::Es256.key(), Algorithm::ES256)
            .unwrap();
    let table = vec![
        Case::invalid(
            "crit lists an unknown extension (HS256 own)",
            hs_crit(json!({"crit": ["x-unknown"], "x-unknown": 1})),
        ),
        Case::invalid(
            "crit b64=false, unencoded payload (HS256 own)",
            hs_crit(json!({"crit": ["b64"], "b64": false})),
        ),
        Case::invalid(
            "crit lists an unknown extension (ES256 external)",
            format!("{es_input}.{es_sig}"),
        ),
    ];
    run(s, &table).await;
}
