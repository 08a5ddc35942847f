//! The gate, end to end: `GET /ws/{room}` on the real workerd runtime.
//!
//! Covers what a client of the upgrade endpoint notices:
//! - each token transport is accepted (subprotocol, `Authorization: Bearer`, `?token=`),
//!   with the right subprotocol selected in the 101 and the token never echoed back;
//!   `?token=` is refused unless `ALLOW_QUERY_TOKEN` is on (off by default), with a 401
//!   that names the setting;
//! - the transport order (the first transport present wins, bad or not);
//! - every refusal (bad room name, no upgrade, wrong method, missing or refused token)
//!   answers with a status and JSON error code and opens no socket; 401s carry
//!   `WWW-Authenticate: Bearer ...`; refused attempts leave nothing behind in the room;
//! - identity cannot be spoofed with the internal handoff header or look-alike headers.
//!
//! Run: `cargo test --test gate` (from the repository root; builds the Worker first if
//! `src/` changed, and starts its own runtimes).
use roomgate_harness::runtime::{server, Server, JWT_SECRET};
use roomgate_harness::tokens::{claims, claims_of, mint, now, token_for};
use roomgate_harness::ws::Auth;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// The three transports, for tables that try a token through each of them.
fn transports(token: &str) -> [(&'static str, Auth<'_>); 3] {
    [
        ("subprotocol", Auth::Subprotocol(token)),
        ("authorization header", Auth::Header(token)),
        ("query parameter", Auth::Query(token)),
    ]
}

/// A refused upgrade as a client sees it: status, headers and the JSON error body.
struct Refusal {
    status: u16,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

/// Attempts the upgrade and asserts it is refused (no socket was opened).
async fn refuse(s: &Server, path: &str, auth: Auth<'_>, extra: &[(&str, &str)]) -> Refusal {
    match s.connect_with(path, auth, extra).await {
        Ok(mut c) => panic!(
            "{path} ({auth:?}): a socket was opened: {:?}",
            c.next_event().await
        ),
        Err(r) => {
            assert!(
                r.json.is_object(),
                "{path} ({auth:?}): error body is not JSON: {:?}",
                r.body
            );
            Refusal {
                status: r.status,
                headers: r.headers,
                json: r.json,
            }
        }
    }
}

impl Refusal {
    /// Asserts the status and the JSON error code (and that a message comes with it).
    fn expect(&self, status: u16, code: &str, what: &str) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(code)),
            "{what}: refusal body {}",
            self.json
        );
        assert!(self.json["message"].is_string(), "{what}: no message");
    }

    /// Asserts a 401 `invalid_token` with a Bearer challenge.
    fn expect_invalid_token(&self, what: &str) {
        self.expect(401, "invalid_token", what);
        let challenge = self
            .headers
            .get("www-authenticate")
            .unwrap_or_else(|| panic!("{what}: 401 without www-authenticate"))
            .to_str()
            .unwrap();
        assert!(
            challenge.starts_with("Bearer"),
            "{what}: www-authenticate is {challenge:?}"
        );
    }
}

fn hs256() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// `claims(sub, name)` with some fields changed (`null` removes the field).
fn claims_with(sub: &str, changes: Value) -> Value {
    let mut c = claims(sub, &format!("Name of {sub}"));
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// Valid claims, signed with the test secret after `changes`.
fn signed(sub: &str, changes: Value) -> String {
    mint(JWT_SECRET.as_bytes(), &hs256(), &claims_with(sub, changes))
}

// ---------------------------------------------------------------------------------------
// Accepted transports

#[tokio::test]
async fn subprotocol_transport_selects_roomgate_v1_and_never_echoes_the_token() {
    let s = server();
    let token = s.token("alice").await;
    let sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();
    let (c, welcome) = s.join_welcomed("gate-subprotocol", &token).await;
    let selected = c.protocol.as_deref().expect("a protocol is selected");
    assert_eq!(selected, "roomgate.v1");
    assert!(!selected.contains(&token), "the 101 echoed the token");
    assert!(
        !selected.contains("bearer"),
        "the 101 echoed the bearer entry"
    );
    assert_eq!(welcome["user"]["id"], sub);
    c.close().await;
}

#[tokio::test]
async fn authorization_header_transport_selects_nothing_unless_offered() {
    let s = server();
    let token = s.token("bob").await;
    let sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();

    // No subprotocol offered: none selected (a selected one would fail the handshake).
    let mut c = s
        .connect("/ws/gate-header", Auth::Header(&token))
        .await
        .unwrap_or_else(|r| panic!("refused: {} {}", r.status, r.body));
    assert_eq!(c.protocol, None);
    let welcome = c.recv_type("welcome").await;
    assert_eq!(welcome["user"]["id"], sub);
    assert_eq!(welcome["user"]["name"], "Bob");
    c.close().await;

    // roomgate.v1 offered alongside header auth: it is selected.
    let mut c = s
        .connect_with(
            "/ws/gate-header",
            Auth::Header(&token),
            &[("sec-websocket-protocol", "roomgate.v1")],
        )
        .await
        .unwrap_or_else(|r| panic!("refused: {} {}", r.status, r.body));
    assert_eq!(c.protocol.as_deref(), Some("roomgate.v1"));
    assert_eq!(c.recv_type("welcome").await["user"]["id"], sub);
    c.close().await;
}

#[tokio::test]
async fn query_parameter_transport_is_accepted_by_default() {
    let s = server();
    let token = s.token("carol").await;
    let sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();
    let mut c = s
        .connect("/ws/gate-query", Auth::Query(&token))
        .await
        .unwrap_or_else(|r| panic!("refused: {} {}", r.status, r.body));
    assert_eq!(c.protocol, None);
    let welcome = c.recv_type("welcome").await;
    assert_eq!(welcome["user"]["id"], sub);
    assert_eq!(welcome["user"]["name"], "Carol");
    c.close().await;
}

#[tokio::test]
async fn query_parameter_is_refused_by_default_and_the_refusal_names_the_setting() {
    // Unset: the product's default (the harness switches `?token=` on for its other tests).
    let s = tokio::task::spawn_blocking(|| Server::start(&[("ALLOW_QUERY_TOKEN", "")]))
        .await
        .unwrap();
    let token = s.token("alice").await;

    let refused = refuse(&s, "/ws/gate-noquery", Auth::Query(&token), &[]).await;
    refused.expect_invalid_token("?token= off by default");
    let message = refused.json["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("ALLOW_QUERY_TOKEN"),
        "the refusal names the setting: {message:?}"
    );
    // Explicitly off: the same.
    let off = tokio::task::spawn_blocking(|| Server::start(&[("ALLOW_QUERY_TOKEN", "false")]))
        .await
        .unwrap();
    let off_token = off.token("alice").await;
    refuse(&off, "/ws/gate-noquery", Auth::Query(&off_token), &[])
        .await
        .expect_invalid_token("?token= switched off");

    // The same token through the other transports still works on that runtime.
    for (what, auth) in transports(&token).into_iter().take(2) {
        let mut c = s
            .connect("/ws/gate-noquery", auth)
            .await
            .unwrap_or_else(|r| panic!("{what}: refused {} {}", r.status, r.body));
        c.recv_type("welcome").await;
        c.close().await;
    }
}

#[tokio::test]
async fn first_transport_present_wins_without_fallback() {
    let s = server();
    let by_protocol = token_for("order-protocol", "By Protocol");
    let by_header = token_for("order-header", "By Header");
    let by_query = token_for("order-query", "By Query");
    let room = "gate-order";
    let path_with_query = |t: &str| format!("/ws/{room}?token={t}");

    let protocol_header = format!("roomgate.v1, bearer.{by_protocol}");
    let bad_protocol_header = "roomgate.v1, bearer.garbage".to_owned();
    let header_auth = format!("Bearer {by_header}");
    // (case, path, auth, extra headers, expected user id or None for 401)
    type Case<'a> = (
        &'a str,
        String,
        Auth<'a>,
        Vec<(&'a str, &'a str)>,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "subprotocol beats header and query",
            path_with_query(&by_query),
            Auth::Header(&by_header),
            vec![("sec-websocket-protocol", protocol_header.as_str())],
            Some("order-protocol"),
        ),
        (
            "header beats query",
            path_with_query(&by_query),
            Auth::Header(&by_header),
            vec![],
            Some("order-header"),
        ),
        (
            "bad subprotocol token does not fall back to a good header",
            format!("/ws/{room}"),
            Auth::None,
            vec![
                ("sec-websocket-protocol", bad_protocol_header.as_str()),
                ("authorization", header_auth.as_str()),
            ],
            None,
        ),
        (
            "bad header token does not fall back to a good query token",
            path_with_query(&by_query),
            Auth::Header("garbage"),
            vec![],
            None,
        ),
    ];
    for (case, path, auth, headers, want) in cases {
        match want {
            Some(id) => {
                let mut c = s
                    .connect_with(&path, auth, &headers)
                    .await
                    .unwrap_or_else(|r| panic!("{case}: refused {} {}", r.status, r.body));
                assert_eq!(c.recv_type("welcome").await["user"]["id"], id, "{case}");
                c.close().await;
            }
            None => refuse(s, &path, auth, &headers)
                .await
                .expect_invalid_token(case),
        }
    }
}

#[tokio::test]
async fn time_claims_within_the_leeway_are_accepted() {
    let s = server();
    let n = now();
    let cases = [
        ("expired 10s ago", json!({"exp": n - 10})),
        ("nbf 10s ahead", json!({"nbf": n + 10})),
        ("iat 10s ahead", json!({"iat": n + 10})),
        ("no nbf", json!({"nbf": null})),
    ];
    for (case, changes) in cases {
        let token = signed("leeway-user", changes);
        let mut c = s
            .connect("/ws/gate-leeway", Auth::Subprotocol(&token))
            .await
            .unwrap_or_else(|r| panic!("{case}: refused {} {}", r.status, r.body));
        assert_eq!(
            c.recv_type("welcome").await["user"]["id"],
            "leeway-user",
            "{case}"
        );
        c.close().await;
    }
}

#[tokio::test]
async fn longest_valid_room_name_is_accepted() {
    let s = server();
    let room = format!("gate-long-{}", "r".repeat(64 - "gate-long-".len()));
    assert_eq!(room.len(), 64);
    let token = s.token("alice").await;
    let (c, welcome) = s.join_welcomed(&room, &token).await;
    assert_eq!(welcome["room"], room);
    c.close().await;
}

// ---------------------------------------------------------------------------------------
// Refusals

/// Every way a token can be wrong, as a token string.
async fn bad_tokens(s: &Server) -> Vec<(&'static str, String)> {
    let n = now();
    let wrong_secret = b"some-other-secret-that-is-long-enough-0123456789";
    let alice = s.token("alice").await;

    // alice's real token with the payload swapped for mallory's; signature kept.
    let mut parts: Vec<String> = alice.split('.').map(str::to_owned).collect();
    let mut payload = claims_of(&alice);
    payload["sub"] = json!("mallory");
    payload["name"] = json!("Mallory");
    parts[1] = b64(&payload);
    let tampered = parts.join(".");

    let none_header = json!({"alg": "none", "typ": "JWT"});
    let alg_none = format!(
        "{}.{}.",
        b64(&none_header),
        b64(&claims_with("mallory", json!({})))
    );

    vec![
        ("garbage", "garbage".to_owned()),
        ("three garbage segments", "aaa.bbb.ccc".to_owned()),
        (
            "expired beyond the leeway",
            signed(
                "expired",
                json!({"iat": n - 7200, "nbf": n - 7200, "exp": n - 120}),
            ),
        ),
        (
            "nbf in the future",
            signed("early", json!({"nbf": n + 300})),
        ),
        (
            "iat in the future",
            signed("early", json!({"iat": n + 300})),
        ),
        ("no exp", signed("forever", json!({"exp": null}))),
        (
            "wrong secret",
            mint(wrong_secret, &hs256(), &claims_with("alice", json!({}))),
        ),
        ("wrong iss", signed("x", json!({"iss": "someone-else"}))),
        ("no iss", signed("x", json!({"iss": null}))),
        ("wrong aud", signed("x", json!({"aud": "another-service"}))),
        (
            "aud list without us",
            signed("x", json!({"aud": ["a", "b"]})),
        ),
        ("alg none", alg_none),
        (
            "HS512 header",
            mint(
                JWT_SECRET.as_bytes(),
                &json!({"alg": "HS512", "typ": "JWT"}),
                &claims_with("x", json!({})),
            ),
        ),
        ("tampered payload", tampered),
        ("missing sub", signed("x", json!({"sub": null}))),
        ("empty sub", signed("x", json!({"sub": ""}))),
    ]
}

#[tokio::test]
async fn refused_tokens_open_no_socket_and_leave_nothing_behind() {
    let s = server();
    let room = "gate-refusals";
    let path = format!("/ws/{room}");

    refuse(s, &path, Auth::None, &[])
        .await
        .expect_invalid_token("no token");

    for (case, token) in bad_tokens(s).await {
        for (transport, auth) in transports(&token) {
            let what = format!("{case} via {transport}");
            refuse(s, &path, auth, &[])
                .await
                .expect_invalid_token(&what);
        }
    }

    // Nothing lingered: a valid client is alone in the room.
    let token = s.token("alice").await;
    let sub = claims_of(&token)["sub"].clone();
    let (mut alice, welcome) = s.join_welcomed(room, &token).await;
    assert_eq!(
        welcome["members"],
        json!([{"id": sub, "name": "Alice"}]),
        "refused upgrades must not be room members"
    );

    // And a refused attempt while someone is in the room is invisible to them.
    for (case, token) in bad_tokens(s).await.into_iter().take(4) {
        refuse(s, &path, Auth::Subprotocol(&token), &[])
            .await
            .expect_invalid_token(case);
    }
    alice.expect_silence().await;
    alice.close().await;
}

#[tokio::test]
async fn bad_room_names_are_refused_before_anything_else() {
    let s = server();
    let token = s.token("alice").await;
    let too_long = format!("/ws/{}", "a".repeat(65));
    let paths = [
        "/ws/bad%20name",
        "/ws/",
        "/ws/a/b",
        too_long.as_str(),
        "/ws/semi;colon",
        "/ws/caf%C3%A9",
    ];
    for path in paths {
        for (what, auth) in [
            ("valid token", Auth::Subprotocol(&token)),
            ("no token", Auth::None),
        ] {
            refuse(s, path, auth, &[]).await.expect(
                400,
                "invalid_room",
                &format!("{path} ({what})"),
            );
        }
    }
}

#[tokio::test]
async fn plain_http_requests_are_refused() {
    let s = server();
    let http = s.http();

    // (method, path, status, code)
    let cases = [
        ("GET", "/ws/gate-plain", 426, "upgrade_required"),
        // Room name is checked before the upgrade.
        ("GET", "/ws/bad%20name", 400, "invalid_room"),
        ("POST", "/ws/x", 405, "method_not_allowed"),
        ("PUT", "/ws/x", 405, "method_not_allowed"),
        ("DELETE", "/ws/x", 405, "method_not_allowed"),
    ];
    for (method, path, status, code) in cases {
        let res = http
            .request(method.parse().unwrap(), format!("{}{path}", s.url))
            .bearer_auth(token_for("plain", "Plain"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{method} {path}");
        let headers = res.headers().clone();
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], code, "{method} {path}: {body}");
        assert!(body["message"].is_string(), "{method} {path}: {body}");
        if status == 405 {
            assert_eq!(headers["allow"], "GET", "{method} {path}");
        }
    }

    // Upgrade is checked before the token: a plain GET without a token is 426, not 401.
    let res = http
        .get(format!("{}/ws/gate-plain", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 426);
}

// ---------------------------------------------------------------------------------------
// Identity spoofing

fn forged_handoff(room: &str) -> String {
    let handoff = json!({
        "room": room,
        "identity": {"sub": "mallory", "name": "Mallory", "exp": now() + 3600},
        "protocol": null,
    });
    b64(&handoff)
}

#[tokio::test]
async fn forged_identity_headers_are_ignored() {
    let s = server();
    let room = "gate-spoof";
    let token = s.token("alice").await;
    let alice_sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();
    let handoff = forged_handoff(room);
    let forged = [
        ("x-roomgate-handoff", handoff.as_str()),
        ("x-roomgate-identity", "mallory"),
        ("x-user-id", "mallory"),
        ("x-user-name", "Mallory"),
    ];

    for (transport, auth) in transports(&token) {
        let mut c = s
            .connect_with(&format!("/ws/{room}"), auth, &forged)
            .await
            .unwrap_or_else(|r| panic!("{transport}: refused {} {}", r.status, r.body));
        let welcome = c.recv_type("welcome").await;
        assert_eq!(welcome["user"]["id"], alice_sub, "{transport}: {welcome}");
        assert_eq!(welcome["user"]["name"], "Alice", "{transport}: {welcome}");
        assert!(
            !welcome.to_string().contains("mallory"),
            "{transport}: mallory appears in {welcome}"
        );

        c.publish(json!({"via": transport})).await;
        let m = c.recv_type("message").await;
        assert_eq!(m["from"]["id"], alice_sub, "{transport}: {m}");
        assert_eq!(m["from"]["name"], "Alice", "{transport}: {m}");
        assert_eq!(m["data"], json!({"via": transport}));
        c.close().await;
    }

    // The forged headers alone are no credential.
    refuse(s, &format!("/ws/{room}"), Auth::None, &forged)
        .await
        .expect_invalid_token("forged headers without a token");
}
