//! End to end: `POST /login` (body shape, token claims, every refusal and its JSON error),
//! plus the small public routes around it (`GET /healthz`, unknown paths) and the issued
//! token being accepted at `/ws/{room}`.
//!
//! Run with `cargo test --test login` from the repository root (builds the Worker first
//! if `src/` changed, then serves it on workerd through Miniflare; see tests/harness).
use roomgate_harness::admin::admin_put_user;
use roomgate_harness::http::Reply;
use roomgate_harness::runtime::{server, Server, ADMIN_TOKEN, USERS};
use roomgate_harness::tokens::{claims_of, now};
use roomgate_harness::ws::{Auth, FRAME_TIMEOUT};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The login body limit (`MAX_LOGIN_BODY` in src/http/login.rs).
const MAX_LOGIN_BODY: usize = 4 * 1024;

fn alice() -> (&'static str, &'static str, &'static str) {
    USERS[0]
}

/// `POST /login` with a raw body and optional content type.
async fn post_login(content_type: Option<&str>, body: impl Into<reqwest::Body>) -> Reply {
    let s = server();
    let mut req = s.http().post(format!("{}/login", s.url)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    Reply::from(req.send().await.unwrap()).await
}

#[tokio::test]
async fn success_body_shape() {
    let s = server();
    let (user, password, name) = alice();
    let res = Reply::from(s.login(user, password).await).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.header("cache-control"), Some("no-store"));

    let body = &res.json;
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        {
            let mut k = keys.clone();
            k.sort();
            k
        },
        ["expires_in", "token", "token_type", "user"],
        "{}",
        res.text
    );
    assert!(body["token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let user_obj = body["user"].as_object().expect("user object");
    assert_eq!(user_obj.len(), 2, "user has only id and name: {}", res.text);
    assert!(body["user"]["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(body["user"]["name"], name);
}

#[tokio::test]
async fn token_claims() {
    let s = server();
    let (user, password, name) = alice();
    let before = now();
    let body: Value = s.login(user, password).await.json().await.unwrap();
    let after = now();
    let c = claims_of(body["token"].as_str().unwrap());

    assert_eq!(c["sub"], body["user"]["id"], "sub is the user id: {c}");
    assert_eq!(c["name"], name);
    assert_eq!(c["iss"], "roomgate");
    assert_eq!(c["aud"], "roomgate");
    let iat = c["iat"].as_i64().expect("iat is a number");
    // workerd's clock only advances across I/O; allow a little slack either way.
    assert!(
        (before - 5..=after + 5).contains(&iat),
        "iat {iat} not near now ({before}..{after})"
    );
    assert_eq!(c["nbf"].as_i64(), Some(iat), "nbf = iat: {c}");
    assert_eq!(c["exp"].as_i64(), Some(iat + 3600), "exp = iat + 3600: {c}");
    assert!(
        c["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "jti present: {c}"
    );

    // A second login gets a distinct token id.
    let again: Value = s.login(user, password).await.json().await.unwrap();
    let c2 = claims_of(again["token"].as_str().unwrap());
    assert_ne!(c["jti"], c2["jti"], "two logins share a jti");
    assert_eq!(c["sub"], c2["sub"]);
}

#[tokio::test]
async fn usernames_are_case_insensitive() {
    let s = server();
    let (user, password, name) = alice();
    let id = s.user_id(user).await;
    for spelling in ["ALICE", "Alice", "aLiCe"] {
        let res = Reply::from(s.login(spelling, password).await).await;
        assert_eq!(res.status, 200, "{spelling}: {}", res.text);
        assert_eq!(
            res.json["user"]["id"].as_str(),
            Some(id.as_str()),
            "{spelling}"
        );
        assert_eq!(res.json["user"]["name"], name, "{spelling}");
    }
}

#[tokio::test]
async fn malformed_bodies_are_bad_requests() {
    let (user, password, _) = alice();
    let cases: &[(&str, String)] = &[
        ("not JSON", "username=alice".into()),
        (
            "truncated JSON",
            format!(r#"{{"username": "{user}", "password": "#),
        ),
        ("empty body", String::new()),
        ("missing password", json!({"username": user}).to_string()),
        (
            "missing username",
            json!({"password": password}).to_string(),
        ),
        (
            "non-string password",
            json!({"username": user, "password": 123}).to_string(),
        ),
        (
            "non-string username",
            json!({"username": ["alice"], "password": password}).to_string(),
        ),
        (
            "null password",
            json!({"username": user, "password": null}).to_string(),
        ),
        ("empty array", "[]".into()),
        ("one-element array", json!([user]).to_string()),
        ("string body", json!("alice").to_string()),
        ("number body", "42".into()),
        ("null body", "null".into()),
    ];
    for (case, body) in cases {
        let res = post_login(Some("application/json"), body.clone()).await;
        res.expect_error(400, "bad_request", case);
    }
}

/// The login body is an object. A JSON array holding a valid username and password in
/// field order must not be read as one (serde's derive accepts structs as sequences).
#[tokio::test]
async fn array_body_with_valid_credentials_is_bad_request() {
    let (user, password, _) = alice();
    let res = post_login(
        Some("application/json"),
        json!([user, password]).to_string(),
    )
    .await;
    res.expect_error(400, "bad_request", "array body");
}

#[tokio::test]
async fn content_type_must_be_json() {
    let (user, password, _) = alice();
    let body = json!({"username": user, "password": password}).to_string();
    let cases: &[(&str, Option<&str>)] = &[
        ("text/plain", Some("text/plain")),
        ("form", Some("application/x-www-form-urlencoded")),
        ("json suffix type", Some("application/problem+json")),
        ("no content type", None),
    ];
    for (case, ct) in cases {
        let res = post_login(*ct, body.clone()).await;
        res.expect_error(415, "unsupported_media_type", case);
    }
    // Parameters and case are accepted.
    for ct in ["application/json; charset=utf-8", "Application/JSON"] {
        let res = post_login(Some(ct), body.clone()).await;
        assert_eq!(res.status, 200, "{ct}: {}", res.text);
    }
}

/// A body just over the limit, which is otherwise a valid login.
fn oversized_login_body() -> Vec<u8> {
    let (user, password, _) = alice();
    let base = json!({"username": user, "password": password, "pad": ""}).to_string();
    let pad = MAX_LOGIN_BODY + 1 - base.len();
    let body = json!({"username": user, "password": password, "pad": "x".repeat(pad)}).to_string();
    assert_eq!(body.len(), MAX_LOGIN_BODY + 1);
    body.into_bytes()
}

#[tokio::test]
async fn oversized_body_with_content_length() {
    // reqwest sends a byte body with its exact Content-Length.
    let res = post_login(Some("application/json"), oversized_login_body()).await;
    res.expect_error(413, "payload_too_large", "content-length body");

    // Exactly at the limit is fine (still a valid login).
    let (user, password, _) = alice();
    let base = json!({"username": user, "password": password, "pad": ""}).to_string();
    let body = json!({"username": user, "password": password,
                      "pad": "x".repeat(MAX_LOGIN_BODY - base.len())})
    .to_string();
    assert_eq!(body.len(), MAX_LOGIN_BODY);
    let res = post_login(Some("application/json"), body).await;
    assert_eq!(res.status, 200, "body at the limit: {}", res.text);
}

#[tokio::test]
async fn oversized_body_chunked_without_content_length() {
    let body = oversized_login_body();
    let (status, text) = raw_chunked_post("/login", "application/json", &body).await;
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(
        (status, json["error"].as_str()),
        (413, Some("payload_too_large")),
        "chunked oversized body: {text}"
    );
}

/// Sends `POST path` over a raw socket with `Transfer-Encoding: chunked` (so there is no
/// Content-Length), and returns the status and the (de-chunked) response body.
async fn raw_chunked_post(path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let s = server();
    let authority = s.url.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(authority).await.unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: {content_type}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(1000) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    sock.write_all(&req).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(FRAME_TIMEOUT, sock.read_to_end(&mut raw))
        .await
        .expect("response within the timeout")
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").expect("http response head");
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, tail) = rest.split_once("\r\n").expect("chunk size line");
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_indistinguishable() {
    let s = server();
    let (user, _, _) = alice();
    let wrong = Reply::from(s.login(user, "not-alices-password").await).await;
    let unknown = Reply::from(s.login("nobody-here", "not-alices-password").await).await;
    let invalid_name = Reply::from(s.login("bad name!", "whatever-password").await).await;
    wrong.expect_error(401, "invalid_credentials", "wrong password");
    unknown.expect_error(401, "invalid_credentials", "unknown user");
    invalid_name.expect_error(401, "invalid_credentials", "unacceptable username");
    assert_eq!(wrong.text, unknown.text, "bodies differ");
    assert_eq!(wrong.text, invalid_name.text, "bodies differ");
    // Another user's password is just a wrong password.
    let crossed = Reply::from(s.login(user, USERS[1].1).await).await;
    assert_eq!(crossed.status, 401);
    assert_eq!(crossed.text, wrong.text);
}

#[tokio::test]
async fn login_only_accepts_post() {
    let s = server();
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let res = Reply::from(
            s.http()
                .request(method.clone(), format!("{}/login", s.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        res.expect_error(405, "method_not_allowed", method.as_str());
        assert_eq!(res.header("allow"), Some("POST"), "{method}");
    }
}

#[tokio::test]
async fn issued_token_joins_a_room() {
    let s = server();
    let (user, password, name) = alice();
    let body: Value = s.login(user, password).await.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let (c, welcome) = s.join_welcomed("login-e2e", token).await;
    assert_eq!(welcome["room"], "login-e2e", "{welcome}");
    assert_eq!(c.protocol.as_deref(), Some("roomgate.v1"));
    assert_eq!(
        welcome["user"], body["user"],
        "welcome is for the logged-in user"
    );
    assert_eq!(welcome["user"]["name"], name);
    assert_eq!(
        welcome["expires_at"],
        claims_of(token)["exp"],
        "the session ends when the token does"
    );
    c.close().await;

    // The Authorization header transport accepts the same token.
    let c = s
        .connect("/ws/login-e2e", Auth::Header(token))
        .await
        .unwrap_or_else(|r| panic!("refused: {} {}", r.status, r.body));
    let mut c = c;
    c.recv_type("welcome").await;
    c.close().await;
}

#[tokio::test]
async fn unknown_path_is_json_not_found() {
    let s = server();
    for path in [
        "/nope",
        "/login/extra",
        "/index.html",
        "/app.js/x",
        "/healthz/x",
    ] {
        let res = Reply::from(
            s.http()
                .get(format!("{}{path}", s.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        res.expect_error(404, "not_found", path);
    }
}

#[tokio::test]
async fn healthz() {
    let s = server();
    let res = Reply::from(
        s.http()
            .get(format!("{}/healthz", s.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json, json!({"status": "ok"}));
    assert_eq!(res.header("content-type"), Some("application/json"));

    let res = Reply::from(
        s.http()
            .post(format!("{}/healthz", s.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.expect_error(405, "method_not_allowed", "POST /healthz");
    assert_eq!(res.header("allow"), Some("GET"));
}

#[tokio::test]
async fn a_login_rehashes_a_password_stored_at_another_iteration_count() {
    let s = tokio::task::spawn_blocking(|| Server::start(&[("PBKDF2_ITERATIONS", "5000")]))
        .await
        .unwrap();
    let password = "rehash-me-password";
    let created =
        admin_put_user(&s, "rehash-me", &json!({"password": password, "name": "R"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["user"]["kdf_iterations"], 5000);

    // A redeploy with a higher cost: the next successful login stores the new cost.
    let s = tokio::task::spawn_blocking(move || s.restart_with(&[("PBKDF2_ITERATIONS", "6000")]))
        .await
        .unwrap();
    let iterations = |s: &Server| {
        let url = format!("{}/admin/users", s.url);
        let http = s.http();
        async move {
            let list =
                Reply::from(http.get(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap()).await;
            let users = list.json["users"].as_array().cloned().unwrap_or_default();
            users
                .into_iter()
                .find(|u| u["username"] == "rehash-me")
                .map(|u| u["kdf_iterations"].clone())
        }
    };
    assert_eq!(
        iterations(&s).await,
        Some(json!(5000)),
        "not before a login"
    );
    let wrong = Reply::from(s.login("rehash-me", "not-the-password").await).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        iterations(&s).await,
        Some(json!(5000)),
        "a failed login changes nothing"
    );
    let ok = Reply::from(s.login("rehash-me", password).await).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        iterations(&s).await,
        Some(json!(6000)),
        "re-hashed at the new cost"
    );
    // The new hash is the same password.
    let again = Reply::from(s.login("rehash-me", password).await).await;
    assert_eq!(again.status, 200, "{}", again.text);
}
