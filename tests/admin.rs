//! End to end: the admin API (`/admin/users`, `/admin/users/{username}`) — bearer-token
//! guard, create / update / rename / delete of users and their effect on `POST /login`,
//! validation refusals, and that no password hash is ever shown.
//!
//! Run with `cargo test --test admin` from the repository root (builds the Worker first
//! if `src/` changed, then serves it on workerd through Miniflare; see tests/harness).
//!
//! Tests run in parallel against one runtime: each test uses its own usernames.
use roomgate_harness::http::{fresh_address, Reply};
use roomgate_harness::runtime::{server, ADMIN_TOKEN, USERS};
use roomgate_harness::tokens::{claims_of, now};

use reqwest::Method;
use serde_json::{json, Value};

/// Asserts the body shows no password hash in any form.
fn expect_no_hash(res: &Reply, case: &str) {
    let lower = res.text.to_ascii_lowercase();
    for needle in ["pbkdf2", "hash", "password", "salt"] {
        assert!(
            !lower.contains(needle),
            "{case}: body mentions {needle:?}: {}",
            res.text
        );
    }
}

/// How a request authenticates to the admin API.
#[derive(Clone, Copy)]
enum Admin<'a> {
    /// `Authorization: Bearer <ADMIN_TOKEN>`.
    Ok,
    /// No Authorization header.
    None,
    /// This exact Authorization header value.
    Raw(&'a str),
}

async fn admin(method: Method, path: &str, auth: Admin<'_>, body: Option<Value>) -> Reply {
    let s = server();
    let mut req = s
        .http()
        .request(method, format!("{}{path}", s.url))
        .header("cf-connecting-ip", fresh_address());
    req = match auth {
        Admin::Ok => req.bearer_auth(ADMIN_TOKEN),
        Admin::None => req,
        Admin::Raw(v) => req.header("authorization", v),
    };
    if let Some(body) = body {
        req = req.json(&body);
    }
    Reply::from(req.send().await.unwrap()).await
}

async fn put_user(username: &str, body: Value) -> Reply {
    admin(
        Method::PUT,
        &format!("/admin/users/{username}"),
        Admin::Ok,
        Some(body),
    )
    .await
}

async fn delete_user(username: &str) -> Reply {
    admin(
        Method::DELETE,
        &format!("/admin/users/{username}"),
        Admin::Ok,
        None,
    )
    .await
}

async fn list_users() -> Reply {
    admin(Method::GET, "/admin/users", Admin::Ok, None).await
}

/// Logs in and returns the status and body.
async fn login(username: &str, password: &str) -> Reply {
    Reply::from(server().login(username, password).await).await
}

/// Asserts `user` is a user object with exactly id, username, name, created_at, rooms
/// (the room grants put in the user's tokens; `null` when none are set) and
/// kdf_iterations (the cost of the stored credential, never the credential).
fn expect_user_shape(user: &Value, case: &str) {
    let mut keys: Vec<&str> = user
        .as_object()
        .unwrap_or_else(|| panic!("{case}: user is not an object: {user}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "id",
            "kdf_iterations",
            "name",
            "rooms",
            "username"
        ],
        "{case}: {user}"
    );
    assert!(
        user["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{case}"
    );
    assert!(user["created_at"].is_u64(), "{case}: {user}");
}

#[tokio::test]
async fn admin_token_is_required() {
    let wrong = format!("Bearer {ADMIN_TOKEN}x");
    let prefix = format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]);
    let basic = format!("Basic {ADMIN_TOKEN}");
    let bare = ADMIN_TOKEN.to_string();
    let cases: &[(&str, Admin)] = &[
        ("no authorization", Admin::None),
        ("wrong token", Admin::Raw("Bearer not-the-admin-token")),
        ("token plus a byte", Admin::Raw(&wrong)),
        ("token minus a byte", Admin::Raw(&prefix)),
        ("basic scheme", Admin::Raw(&basic)),
        ("no scheme", Admin::Raw(&bare)),
        ("empty bearer", Admin::Raw("Bearer ")),
        (
            "a user's JWT",
            Admin::Raw("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"),
        ),
    ];
    let routes: &[(Method, &str, Option<Value>)] = &[
        (Method::GET, "/admin/users", None),
        (
            Method::PUT,
            "/admin/users/adm-guard",
            Some(json!({"password": "guarded-password", "name": "Guard"})),
        ),
        (Method::DELETE, "/admin/users/alice", None),
        (Method::GET, "/admin/no-such-route", None),
    ];
    for (case, auth) in cases {
        for (method, path, body) in routes {
            let res = admin(method.clone(), path, *auth, body.clone()).await;
            let what = format!("{case}: {method} {path}");
            res.expect_error(401, "unauthorized", &what);
            assert_eq!(
                res.header("www-authenticate"),
                Some(r#"Bearer realm="roomgate-admin""#),
                "{what}"
            );
        }
    }
    // Nothing the refused requests asked for happened.
    assert_eq!(
        login("alice", USERS[0].1).await.status,
        200,
        "alice deleted"
    );
    let list = list_users().await;
    assert!(
        !list.text.contains("adm-guard"),
        "refused PUT created a user: {}",
        list.text
    );
}

#[tokio::test]
async fn admin_token_works_and_scheme_is_case_insensitive() {
    for header in [
        format!("Bearer {ADMIN_TOKEN}"),
        format!("bearer {ADMIN_TOKEN}"),
        format!("BEARER {ADMIN_TOKEN}"),
    ] {
        let res = admin(Method::GET, "/admin/users", Admin::Raw(&header), None).await;
        assert_eq!(res.status, 200, "{header}: {}", res.text);
    }
}

#[tokio::test]
async fn create_then_update_password() {
    let user = "adm-create";
    let before = now();
    let res = put_user(
        user,
        json!({"password": "first-password", "name": "Create Me"}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.json["created"], true, "{}", res.text);
    let created = &res.json["user"];
    expect_user_shape(created, "create");
    assert_eq!(created["username"], user);
    assert_eq!(created["name"], "Create Me");
    let at = created["created_at"].as_i64().unwrap();
    assert!(
        (before - 5..=now() + 5).contains(&at),
        "created_at {at} is not now"
    );
    expect_no_hash(&res, "create");

    let ok = login(user, "first-password").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["user"]["id"], created["id"]);
    assert_eq!(ok.json["user"]["name"], "Create Me");

    // Same PUT target again: an update, same id and creation time.
    let res = put_user(user, json!({"password": "second-password"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["created"], false, "{}", res.text);
    expect_user_shape(&res.json["user"], "update");
    assert_eq!(res.json["user"]["id"], created["id"]);
    assert_eq!(res.json["user"]["created_at"], created["created_at"]);
    // A password reset without a name keeps the display name.
    assert_eq!(res.json["user"]["name"], "Create Me");
    expect_no_hash(&res, "update");

    let new = login(user, "second-password").await;
    assert_eq!(new.status, 200, "new password: {}", new.text);
    let old = login(user, "first-password").await;
    old.expect_error(401, "invalid_credentials", "old password after reset");
}

#[tokio::test]
async fn put_with_only_name_renames() {
    let user = "adm-rename";
    let res = put_user(
        user,
        json!({"password": "rename-password", "name": "Before"}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let id = res.json["user"]["id"].clone();

    let res = put_user(user, json!({"name": "After Rename"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["created"], false);
    expect_user_shape(&res.json["user"], "rename");
    assert_eq!(res.json["user"]["name"], "After Rename");
    assert_eq!(res.json["user"]["id"], id);
    expect_no_hash(&res, "rename");

    // The password is unchanged and new tokens carry the new name.
    let ok = login(user, "rename-password").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["user"]["name"], "After Rename");
    assert_eq!(
        claims_of(ok.json["token"].as_str().unwrap())["name"],
        "After Rename"
    );
}

#[tokio::test]
async fn put_refusals() {
    let user = "adm-refuse";
    // A user that exists, so refusals of an update are checked too.
    let res = put_user(
        user,
        json!({"password": "refuse-password", "name": "Refuse"}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text);

    let cases: &[(&str, &str, Value)] = &[
        ("neither password nor name", user, json!({})),
        ("neither, on a new user", "adm-refuse-new", json!({})),
        (
            "only name, on a user that does not exist",
            "adm-refuse-new",
            json!({"name": "Ghost"}),
        ),
        ("7-byte password", user, json!({"password": "1234567"})),
        (
            "7-byte password, new user",
            "adm-refuse-new",
            json!({"password": "short12"}),
        ),
        ("empty password", user, json!({"password": ""})),
        (
            "1025-byte password",
            user,
            json!({"password": "p".repeat(1025)}),
        ),
        (
            "empty name",
            user,
            json!({"password": "long-enough-password", "name": ""}),
        ),
        ("blank name", user, json!({"name": "   "})),
        ("control character in name", user, json!({"name": "a\nb"})),
        (
            "right-to-left override in name",
            user,
            json!({"name": "admin\u{202E}nimda"}),
        ),
        (
            "zero-width space in name",
            user,
            json!({"name": "a\u{200B}b"}),
        ),
        ("65-character name", user, json!({"name": "n".repeat(65)})),
        ("non-string password", user, json!({"password": 12345678})),
        ("non-string name", user, json!({"name": 7})),
    ];
    for (case, target, body) in cases {
        let res = put_user(target, body.clone()).await;
        res.expect_error(400, "bad_request", case);
    }

    // None of them changed or created anything.
    let ok = login(user, "refuse-password").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["user"]["name"], "Refuse");
    let list = list_users().await;
    assert!(!list.text.contains("adm-refuse-new"), "{}", list.text);

    // Exactly 8 bytes is accepted (multi-byte characters count as bytes).
    let res = put_user("adm-refuse-8", json!({"password": "12345678"})).await;
    assert_eq!(res.status, 201, "8-byte password: {}", res.text);
    let res = put_user("adm-refuse-8", json!({"password": "ééé"})).await;
    res.expect_error(400, "bad_request", "6-byte password of 3 characters");
    let res = put_user("adm-refuse-8", json!({"password": "éééé"})).await;
    assert_eq!(res.status, 200, "8-byte password of 4 chars: {}", res.text);
}

/// The PUT body is an object: an array holding a valid password and name in field order
/// must not be read as one (serde's derive accepts structs as sequences).
#[tokio::test]
async fn put_array_body_is_bad_request() {
    let res = put_user("adm-array", json!(["array-password", "Array"])).await;
    res.expect_error(400, "bad_request", "array body");
    let list = list_users().await;
    assert!(
        !list.text.contains("adm-array"),
        "array body created a user: {}",
        list.text
    );
}

#[tokio::test]
async fn put_body_must_be_json() {
    let s = server();
    let res = Reply::from(
        s.http()
            .put(format!("{}/admin/users/adm-media", s.url))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "text/plain")
            .body(r#"{"password": "media-password"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.expect_error(415, "unsupported_media_type", "text/plain PUT");

    let res = Reply::from(
        s.http()
            .put(format!("{}/admin/users/adm-media", s.url))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"password": "media-password", "name": "{}"}}"#,
                "x".repeat(5000)
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.expect_error(413, "payload_too_large", "5000-byte PUT");

    let res = Reply::from(
        s.http()
            .put(format!("{}/admin/users/adm-media", s.url))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.expect_error(400, "bad_request", "malformed JSON PUT");
}

#[tokio::test]
async fn invalid_usernames_are_refused() {
    let long = "u".repeat(65);
    // (case, path segment(s) after /admin/users/, status, code)
    let cases: &[(&str, &str, u16, &str)] = &[
        ("space", "bad%20name", 400, "bad_request"),
        ("non-ASCII", "%C3%BCnicode", 400, "bad_request"),
        ("65 characters", &long, 400, "bad_request"),
        ("empty", "", 400, "bad_request"),
        ("plus sign", "a+b", 400, "bad_request"),
        ("slash: not a user route", "a/b", 404, "not_found"),
    ];
    for (case, segment, status, code) in cases {
        let put = put_user(segment, json!({"password": "valid-password-1"})).await;
        put.expect_error(*status, code, &format!("PUT {case}"));
        let del = delete_user(segment).await;
        del.expect_error(*status, code, &format!("DELETE {case}"));
    }
    // Exactly 64 characters of the allowed alphabet is fine.
    let ok = format!("adm-{}", "x".repeat(60));
    let res = put_user(&ok, json!({"password": "valid-password-1"})).await;
    assert_eq!(res.status, 201, "64-character username: {}", res.text);
}

#[tokio::test]
async fn usernames_are_stored_lowercase() {
    let res = put_user(
        "Adm-MixedCase",
        json!({"password": "mixed-password", "name": "Mixed"}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.json["user"]["username"], "adm-mixedcase");
    // Another spelling of the same name is the same user.
    let res = put_user("ADM-MIXEDCASE", json!({"name": "Mixed Again"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["created"], false);
    let ok = login("adm-mixedcase", "mixed-password").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["user"]["name"], "Mixed Again");
    let res = delete_user("Adm-MIXEDcase").await;
    assert_eq!(res.status, 204, "{}", res.text);
}

#[tokio::test]
async fn list_is_sorted_and_has_no_hashes() {
    // Created out of order, so sorting is the server's doing.
    for user in ["adm-list-c", "adm-list-a", "adm-list-b"] {
        let res = put_user(user, json!({"password": "list-password", "name": user})).await;
        assert_eq!(res.status, 201, "{user}: {}", res.text);
    }
    let res = list_users().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    expect_no_hash(&res, "list");
    assert_eq!(
        res.json.as_object().map(|o| o.len()),
        Some(1),
        "{}",
        res.text
    );
    let users = res.json["users"].as_array().expect("users array");
    for u in users {
        expect_user_shape(u, "list entry");
    }
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "listing is sorted by username");
    for want in [
        "alice",
        "bob",
        "carol",
        "adm-list-a",
        "adm-list-b",
        "adm-list-c",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let alice = users.iter().find(|u| u["username"] == "alice").unwrap();
    assert_eq!(alice["name"], "Alice");
    assert_eq!(
        alice["id"].as_str(),
        Some(server().user_id("alice").await.as_str())
    );
}

#[tokio::test]
async fn delete_user_then_login_fails() {
    let user = "adm-delete";
    let res = put_user(user, json!({"password": "delete-password"})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(login(user, "delete-password").await.status, 200);

    let res = delete_user(user).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(res.text, "", "204 has no body");

    let after = login(user, "delete-password").await;
    after.expect_error(401, "invalid_credentials", "login after delete");
    let list = list_users().await;
    assert!(!list.text.contains(user), "{}", list.text);

    let again = delete_user(user).await;
    again.expect_error(404, "not_found", "second delete");

    // The name can be taken again, as a new user.
    let res = put_user(user, json!({"password": "recreated-password"})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.json["created"], true);
}

#[tokio::test]
async fn admin_methods_and_unknown_routes() {
    let cases: &[(Method, &str, u16, &str, Option<&str>)] = &[
        (
            Method::POST,
            "/admin/users",
            405,
            "method_not_allowed",
            Some("GET"),
        ),
        (
            Method::DELETE,
            "/admin/users",
            405,
            "method_not_allowed",
            Some("GET"),
        ),
        (
            Method::GET,
            "/admin/users/alice",
            405,
            "method_not_allowed",
            Some("PUT, DELETE"),
        ),
        (
            Method::POST,
            "/admin/users/alice",
            405,
            "method_not_allowed",
            Some("PUT, DELETE"),
        ),
        (Method::GET, "/admin", 404, "not_found", None),
        (Method::GET, "/admin/", 404, "not_found", None),
        (Method::GET, "/admin/nothing", 404, "not_found", None),
    ];
    for (method, path, status, code, allow) in cases {
        let res = admin(method.clone(), path, Admin::Ok, None).await;
        let case = format!("{method} {path}");
        res.expect_error(*status, code, &case);
        assert_eq!(res.header("allow"), *allow, "{case}");
    }
}
