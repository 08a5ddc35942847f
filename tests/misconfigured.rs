//! End to end: a deployment with unusable secrets fails closed and says so without leaking
//! them — a short or empty `JWT_SECRET` makes `POST /login` and `GET /ws/{room}` answer
//! 500 `misconfigured`; an empty `ADMIN_TOKEN` hides every admin route (404 `not_found`).
//!
//! Run with `cargo test --test misconfigured` from the repository root. Each
//! configuration gets its own runtime (`Server::start`), shared by the tests that use it.
use roomgate_harness::runtime::{Server, ADMIN_TOKEN, USERS};
use roomgate_harness::tokens::{claims, mint, token_for};
use roomgate_harness::ws::{Auth, Refused};

use std::sync::OnceLock;

use reqwest::Method;
use serde_json::{json, Value};

const SHORT_SECRET: &str = "too-short";

/// JWT_SECRET shorter than the 32 bytes required. Seeding works: admin needs no JWT key.
fn short_secret() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(&[("JWT_SECRET", SHORT_SECRET)]))
}

/// JWT_SECRET set to the empty string.
fn empty_secret() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(&[("JWT_SECRET", "")]))
}

/// ADMIN_TOKEN shorter than the 32 bytes required (and so no seeded users).
fn short_admin() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(&[("ADMIN_TOKEN", SHORT_ADMIN_TOKEN)]))
}

const SHORT_ADMIN_TOKEN: &str = "admin-token-of-31-bytes-0123456";

/// ADMIN_TOKEN set to the empty string: no admin surface (and so no seeded users).
fn no_admin() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(&[("ADMIN_TOKEN", "")]))
}

async fn send(
    s: &Server,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut req = s.http().request(method, format!("{}{path}", s.url));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, text, json)
}

fn expect_error(got: &(u16, String, Value), status: u16, code: &str, case: &str) {
    let (s, text, json) = got;
    assert_eq!(
        (*s, json["error"].as_str()),
        (status, Some(code)),
        "{case}: body {text}"
    );
    assert!(json["message"].is_string(), "{case}: no message: {text}");
}

/// A 500 `misconfigured` whose body does not give away the secret or its details.
fn expect_misconfigured(status: u16, body: &str, secret: &str, case: &str) {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    assert_eq!(
        (status, json["error"].as_str()),
        (500, Some("misconfigured")),
        "{case}: body {body}"
    );
    let message = json["message"].as_str().expect("message");
    assert!(!message.is_empty(), "{case}");
    if !secret.is_empty() {
        assert!(
            !body.contains(secret),
            "{case}: body leaks the secret: {body}"
        );
    }
    // The detail (which key, how long) belongs in the server log, not the response.
    for detail in ["JWT_SECRET", "bytes"] {
        assert!(
            !body.contains(detail),
            "{case}: body has detail {detail:?}: {body}"
        );
    }
}

async fn login_as_alice(s: &Server) -> (u16, String) {
    let (user, password, _) = USERS[0];
    let res = s.login(user, password).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

/// A token that would be valid but for the server's configuration.
fn some_token() -> String {
    token_for("u-misconfigured", "Someone")
}

/// Attempts `GET path` as a WebSocket upgrade, which must be refused (no socket).
async fn refused(s: &Server, path: &str, auth: Auth<'_>) -> Refused {
    match s.connect(path, auth).await {
        Err(r) => r,
        Ok(_) => panic!("{path} via {auth:?}: the upgrade was accepted"),
    }
}

#[tokio::test]
async fn short_secret_login_is_misconfigured() {
    let s = short_secret();
    let (status, body) = login_as_alice(s).await;
    expect_misconfigured(status, &body, SHORT_SECRET, "short secret: POST /login");
    // Refused before credentials are looked at: a wrong password gets the same answer.
    let res = s.login("alice", "wrong-password").await;
    let (status2, body2) = (res.status().as_u16(), res.text().await.unwrap());
    assert_eq!((status2, &body2), (status, &body), "wrong password");
}

#[tokio::test]
async fn short_secret_ws_is_misconfigured() {
    let s = short_secret();
    let token = some_token();
    // A token signed with the short secret itself is not accepted either.
    let weak = mint(
        SHORT_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims("u-weak", "Weak"),
    );
    let offers = [
        ("header", Auth::Header(&token)),
        ("subprotocol", Auth::Subprotocol(&token)),
        ("query", Auth::Query(&token)),
        ("token signed with the short secret", Auth::Header(&weak)),
        // Even without a token the configuration is checked first.
        ("no token", Auth::None),
    ];
    for (case, auth) in offers {
        let r = refused(s, "/ws/lobby", auth).await;
        r.expect(500, "misconfigured");
        expect_misconfigured(
            r.status,
            &r.body,
            SHORT_SECRET,
            &format!("short secret: /ws/lobby via {case}"),
        );
    }
}

#[tokio::test]
async fn short_secret_leaves_admin_working() {
    // Seeding succeeded (Server::start asserts it); the admin API answers normally.
    let s = short_secret();
    let (status, text, json) = send(s, Method::GET, "/admin/users", Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(json["users"].as_array().map(Vec::len), Some(USERS.len()));
}

#[tokio::test]
async fn empty_secret_is_misconfigured() {
    let s = empty_secret();
    let (status, body) = login_as_alice(s).await;
    expect_misconfigured(status, &body, "", "empty secret: POST /login");

    let token = some_token();
    let r = refused(s, "/ws/lobby", Auth::Header(&token)).await;
    r.expect(500, "misconfigured");
    expect_misconfigured(r.status, &r.body, "", "empty secret: /ws/lobby");

    // The public routes that need no secret still work.
    let (status, text, json) = send(s, Method::GET, "/healthz", None, None).await;
    assert_eq!((status, json), (200, json!({"status": "ok"})), "{text}");
}

#[tokio::test]
async fn short_admin_token_makes_every_admin_route_misconfigured() {
    let s = short_admin();
    assert_eq!(SHORT_ADMIN_TOKEN.len(), 31);
    for bearer in [Some(SHORT_ADMIN_TOKEN), None, Some("x")] {
        for path in ["/admin/users", "/admin/rooms/lobby"] {
            let (status, body, _) = send(s, Method::GET, path, bearer, None).await;
            expect_misconfigured(
                status,
                &body,
                SHORT_ADMIN_TOKEN,
                &format!("{path} with bearer {bearer:?}"),
            );
        }
    }
    // The rest of the Worker is unaffected.
    let (status, text, json) = send(s, Method::GET, "/healthz", None, None).await;
    assert_eq!((status, json), (200, json!({"status": "ok"})), "{text}");
}

#[tokio::test]
async fn unset_admin_token_hides_every_admin_route() {
    let s = no_admin();
    let put_body = json!({"password": "some-password-1", "name": "X"});
    let routes: &[(Method, &str, Option<Value>)] = &[
        (Method::GET, "/admin/users", None),
        (Method::PUT, "/admin/users/x", Some(put_body)),
        (Method::DELETE, "/admin/users/x", None),
        (Method::POST, "/admin/users", None),
        (Method::GET, "/admin/anything", None),
    ];
    // Neither no token, nor any token, nor the empty string as a token gets in.
    let bearers = [None, Some(ADMIN_TOKEN), Some("x"), Some("")];
    for (method, path, body) in routes {
        for bearer in bearers {
            let got = send(s, method.clone(), path, bearer, body.clone()).await;
            expect_error(
                &got,
                404,
                "not_found",
                &format!("{method} {path} with bearer {bearer:?}"),
            );
        }
    }
    // Nothing was created: no users exist, so a login is refused as usual.
    let res = s.login("x", "some-password-1").await;
    assert_eq!(res.status(), 401);
}
