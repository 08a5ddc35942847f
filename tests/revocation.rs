//! Kicks and revocations, end to end: `POST /admin/rooms/{room}/kick` closes one user's
//! sockets in one room with 4003 `kicked` (the others stay and get `leave`);
//! `POST /admin/revoke` by `jti` or by `sub` refuses new sockets (401) and refreshes, and
//! closes the live sockets it covers in every room with 4003 `revoked` within 5 s; a
//! `sub` revocation ends at its `until`. Both routes need the admin token (401), and do
//! not exist without one (404).
//!
//! Tests run in parallel against one runtime: each uses its own users and rooms. Closes
//! "within 5 s" are awaited for up to 8 s; only `until` is waited out by sleeping.
//!
//! Run: `cargo test --test revocation` (from the repository root; builds the Worker first
//! if `src/` changed, and starts its own runtime).
use roomgate_harness::http::{fresh_address, Reply};
use roomgate_harness::runtime::{server, Server, ADMIN_TOKEN, JWT_SECRET};
use roomgate_harness::tokens::{claims, mint, now};
use roomgate_harness::ws::{Auth, Client, FRAME_TIMEOUT};

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

/// The spec says 5 s; the tests allow 8 on a busy machine.
const REVOKE_WITHIN: Duration = Duration::from_secs(8);

async fn admin_as(
    s: &Server,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Value,
) -> Reply {
    let mut req = s
        .http()
        .request(method, format!("{}{path}", s.url))
        .header("cf-connecting-ip", fresh_address());
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    Reply::from(req.json(&body).send().await.unwrap()).await
}

async fn admin(path: &str, body: Value) -> Reply {
    admin_as(server(), Method::POST, path, Some(ADMIN_TOKEN), body).await
}

async fn kick(room: &str, user_id: &str) -> Reply {
    admin(
        &format!("/admin/rooms/{room}/kick"),
        json!({"user_id": user_id}),
    )
    .await
}

/// A token for `sub` with its own `jti`.
fn token(sub: &str, jti: &str) -> String {
    let mut c = claims(sub, sub);
    c["jti"] = json!(jti);
    mint(
        JWT_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &c,
    )
}

/// Asserts the socket is closed with 4003 and `reason` within `wait`.
async fn expect_closed(c: &mut Client, reason: &str, wait: Duration, case: &str) {
    let closed = c
        .closed_within(wait)
        .await
        .unwrap_or_else(|| panic!("{case}: still open after {wait:?}"));
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (Some(4003), reason),
        "{case}: frames before the close: {:?}",
        closed.frames
    );
}

/// Asserts the socket is open and served: its own message comes back.
async fn expect_alive(c: &mut Client, case: &str) {
    c.publish(json!(case)).await;
    loop {
        let v = c.recv().await;
        if v["type"] == "message" {
            assert_eq!(v["data"], case);
            return;
        }
        assert!(
            v["type"] == "join" || v["type"] == "leave",
            "{case}: unexpected {v}"
        );
    }
}

/// Asserts an upgrade with `token` is refused as revoked.
async fn expect_refused_as_revoked(room: &str, token: &str, case: &str) {
    let refused = server()
        .connect(&format!("/ws/{room}"), Auth::Subprotocol(token))
        .await
        .err()
        .unwrap_or_else(|| panic!("{case}: a revoked token got a socket"));
    refused.expect(401, "invalid_token");
    assert_eq!(refused.json["message"], "token has been revoked", "{case}");
}

#[tokio::test]
async fn kick_closes_only_that_users_sockets_in_that_room() {
    let s = server();
    let alice = token("kick-alice", "kick-alice-1");
    let bob = token("kick-bob", "kick-bob-1");
    let (mut tab1, _) = s.join_welcomed("kick-room", &alice).await;
    let (mut tab2, _) = s.join_welcomed("kick-room", &alice).await;
    let (mut b, _) = s.join_welcomed("kick-room", &bob).await;
    let (mut elsewhere, _) = s.join_welcomed("kick-other-room", &alice).await;
    tab1.recv_type("join").await; // bob

    let res = kick("kick-room", "kick-alice").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        res.json,
        json!({"room": "kick-room", "user_id": "kick-alice", "closed": 2})
    );
    expect_closed(&mut tab1, "kicked", FRAME_TIMEOUT, "tab 1").await;
    expect_closed(&mut tab2, "kicked", FRAME_TIMEOUT, "tab 2").await;

    // Bob stays, and hears once that Alice left.
    assert_eq!(
        b.recv().await,
        json!({"type": "leave", "user": {"id": "kick-alice", "name": "kick-alice"}})
    );
    b.expect_silence().await;
    expect_alive(&mut b, "bob after the kick").await;
    // Alice's socket in another room is untouched.
    expect_alive(&mut elsewhere, "alice elsewhere").await;
    // Not a ban: she can come back.
    let (back, _) = s.join_welcomed("kick-room", &alice).await;

    let again = kick("kick-room", "nobody-here").await;
    assert_eq!(again.json["closed"], 0, "{}", again.text);
    for c in [b, elsewhere, back] {
        c.close().await;
    }
}

#[tokio::test]
async fn kick_refusals() {
    let cases = [
        (
            "/admin/rooms/bad%20room/kick",
            json!({"user_id": "u"}),
            400,
            "invalid_room",
        ),
        ("/admin/rooms/r/kick", json!({}), 400, "bad_request"),
        (
            "/admin/rooms/r/kick",
            json!({"user_id": ""}),
            400,
            "bad_request",
        ),
        (
            "/admin/rooms/r/kick",
            json!({"user_id": 7}),
            400,
            "bad_request",
        ),
    ];
    for (path, body, status, code) in cases {
        admin(path, body.clone())
            .await
            .expect_error(status, code, &format!("{path} {body}"));
    }
    admin_as(
        server(),
        Method::GET,
        "/admin/rooms/r/kick",
        Some(ADMIN_TOKEN),
        json!({}),
    )
    .await
    .expect_error(405, "method_not_allowed", "GET kick");
}

#[tokio::test]
async fn revoke_by_jti_closes_that_token_in_every_room_and_refuses_it() {
    let s = server();
    let revoked = token("jti-user", "jti-to-revoke");
    let other = token("jti-user", "jti-kept");
    let (mut in_a, _) = s.join_welcomed("jti-room-a", &revoked).await;
    let (mut in_b, _) = s.join_welcomed("jti-room-b", &revoked).await;
    let (mut kept, _) = s.join_welcomed("jti-room-a", &other).await;

    let res = admin("/admin/revoke", json!({"jti": "jti-to-revoke"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["revoked"]["jti"], "jti-to-revoke");
    assert!(res.json["revoked"]["until"].as_i64().unwrap() > now());

    expect_closed(&mut in_a, "revoked", REVOKE_WITHIN, "room a").await;
    expect_closed(&mut in_b, "revoked", REVOKE_WITHIN, "room b").await;
    expect_refused_as_revoked("jti-room-a", &revoked, "same room").await;
    expect_refused_as_revoked("jti-room-fresh", &revoked, "a room never used").await;

    // The user's other token is not affected.
    expect_alive(&mut kept, "other token").await;
    let (c, _) = s.join_welcomed("jti-room-b", &other).await;
    c.close().await;
    kept.close().await;
}

#[tokio::test]
async fn revoke_by_sub_closes_every_token_of_the_user_until_until() {
    let s = server();
    let t1 = token("sub-user", "sub-user-1");
    let t2 = token("sub-user", "sub-user-2");
    let bystander = token("sub-bystander", "sub-bystander-1");
    let (mut c1, _) = s.join_welcomed("sub-room-c", &t1).await;
    let (mut c2, _) = s.join_welcomed("sub-room-d", &t2).await;
    let (mut b, _) = s.join_welcomed("sub-room-c", &bystander).await;

    let until = now() + 4;
    let res = admin("/admin/revoke", json!({"sub": "sub-user", "until": until})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        res.json["revoked"],
        json!({"sub": "sub-user", "until": until})
    );

    expect_closed(&mut c1, "revoked", REVOKE_WITHIN, "token 1").await;
    expect_closed(&mut c2, "revoked", REVOKE_WITHIN, "token 2").await;
    assert_eq!(b.recv_type("leave").await["user"]["id"], "sub-user");
    expect_alive(&mut b, "bystander").await;

    let t3 = token("sub-user", "sub-user-3");
    expect_refused_as_revoked("sub-room-c", &t1, "old token").await;
    expect_refused_as_revoked("sub-room-e", &t3, "a token minted after the revoke").await;

    // Once `until` has passed, the user is welcome again.
    let wait = (until - now() + 1).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let (c3, _) = s.join_welcomed("sub-room-c", &t3).await;
    c3.close().await;
    b.close().await;
}

#[tokio::test]
async fn revoked_token_cannot_refresh() {
    let s = server();
    let live = token("refresh-user", "refresh-live");
    let stolen = token("refresh-user", "refresh-stolen");
    let (mut c, _) = s.join_welcomed("refresh-room", &live).await;

    let res = admin("/admin/revoke", json!({"jti": "refresh-stolen"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    // The live socket runs on another token: it stays.
    c.expect_silence().await;

    c.send_json(json!({"type": "refresh", "token": stolen}))
        .await;
    let err = c.recv_type("error").await;
    assert_eq!(err["code"], "invalid_token", "{err}");
    assert_eq!(err["message"], "token has been revoked");
    expect_alive(&mut c, "after a refused refresh").await;

    // A good token still refreshes (on another socket: one socket's refresh reaches the
    // revocation check at most once every 10 s).
    c.close().await;
    let (mut c, welcome) = s.join_welcomed("refresh-room", &live).await;
    let mut fresh_claims = claims("refresh-user", "x");
    fresh_claims["jti"] = json!("refresh-fresh");
    fresh_claims["exp"] = json!(welcome["expires_at"].as_i64().unwrap() + 60);
    let fresh = mint(
        JWT_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &fresh_claims,
    );
    c.send_json(json!({"type": "refresh", "token": fresh}))
        .await;
    assert_eq!(
        c.recv_type("refreshed").await["expires_at"],
        fresh_claims["exp"]
    );
    c.close().await;
}

#[tokio::test]
async fn revoke_refusals() {
    let n = now();
    let cases = [
        json!({}),
        json!({"jti": "a", "sub": "b", "until": n + 60}),
        json!({"sub": "b"}),
        json!({"sub": "b", "until": n - 1}),
        json!({"jti": ""}),
        json!({"jti": "x".repeat(129)}),
        json!({"jti": 5}),
        json!({"sub": "b", "until": "tomorrow"}),
    ];
    for body in cases {
        admin("/admin/revoke", body.clone()).await.expect_error(
            400,
            "bad_request",
            &body.to_string(),
        );
    }
    admin_as(
        server(),
        Method::GET,
        "/admin/revoke",
        Some(ADMIN_TOKEN),
        json!({}),
    )
    .await
    .expect_error(405, "method_not_allowed", "GET revoke");
}

#[tokio::test]
async fn admin_token_is_required_on_both_routes() {
    let routes = [
        ("/admin/revoke", json!({"jti": "never-revoked"})),
        ("/admin/rooms/guarded/kick", json!({"user_id": "u"})),
    ];
    for (path, body) in &routes {
        for (auth, case) in [(None, "no token"), (Some("wrong-token"), "wrong token")] {
            admin_as(server(), Method::POST, path, auth, body.clone())
                .await
                .expect_error(401, "unauthorized", &format!("{path}: {case}"));
        }
    }
    // The refused revoke did nothing.
    let (c, _) = server()
        .join_welcomed("guarded", &token("guard-user", "never-revoked"))
        .await;
    c.close().await;

    // Without an admin token configured, the routes do not exist.
    let bare = tokio::task::spawn_blocking(|| Server::start(&[("ADMIN_TOKEN", "")]))
        .await
        .unwrap();
    for (path, body) in &routes {
        for auth in [None, Some(ADMIN_TOKEN), Some("")] {
            admin_as(&bare, Method::POST, path, auth, body.clone())
                .await
                .expect_error(404, "not_found", &format!("{path} without ADMIN_TOKEN"));
        }
    }
}

/// A runtime whose emptied rooms leave the registry after 1 s.
fn short_grace() -> &'static Server {
    static S: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    S.get_or_init(|| Server::start(&[("REGISTRY_GRACE_SECONDS", "1")]))
}

#[tokio::test]
async fn a_socket_that_arrives_as_its_room_leaves_the_registry_is_still_revoked() {
    let s = tokio::task::spawn_blocking(short_grace).await.unwrap();
    // Each room empties, then gets a new socket around the moment its grace alarm
    // removes it from the registry: a little before, during, a little after.
    let sub = "grace-user";
    let rounds = (0..80u64).map(|i| async move {
        let room = format!("grace-{i}");
        let (first, _) = s.join_welcomed(&room, &token(sub, &format!("a{i}"))).await;
        first.close().await;
        tokio::time::sleep(Duration::from_micros(900_000 + 2_500 * i)).await;
        let (mut second, _) = s.join_welcomed(&room, &token(sub, &format!("b{i}"))).await;
        expect_alive(&mut second, "arrived around the grace alarm").await;
        (room, second)
    });
    let sockets = futures_util::future::join_all(rounds).await;
    let revoked = admin_as(
        s,
        Method::POST,
        "/admin/revoke",
        Some(ADMIN_TOKEN),
        json!({"sub": sub, "until": now() + 3600}),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    for (room, mut socket) in sockets {
        expect_closed(&mut socket, "revoked", Duration::from_secs(5), &room).await;
    }
}

#[tokio::test]
async fn a_revoke_reaches_every_room_in_pages_whatever_the_names() {
    // Ten calls per request: sixty rooms take parts handed from object to object.
    let s = tokio::task::spawn_blocking(|| Server::start(&[("REVOKE_PAGE_SIZE", "10")]))
        .await
        .unwrap();
    let sub = "wide-user";
    let s = &s;
    // Names that sort first, as an attacker would pick them.
    let joins = (0..60).map(|i| {
        let room = format!("-{i:04}");
        let token = token(sub, &format!("wide-{i}"));
        async move { (s.join_welcomed(&room, &token).await.0, room) }
    });
    let sockets = futures_util::future::join_all(joins).await;
    let revoked = admin_as(
        s,
        Method::POST,
        "/admin/revoke",
        Some(ADMIN_TOKEN),
        json!({"sub": sub, "until": now() + 3600}),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(
        revoked.json["rooms"], 60,
        "every room reached: {}",
        revoked.text
    );
    assert_eq!(revoked.json["closed"], 60, "{}", revoked.text);
    let closes = sockets.into_iter().map(|(mut c, room)| async move {
        expect_closed(&mut c, "revoked", Duration::from_secs(5), &room).await;
    });
    futures_util::future::join_all(closes).await;
}

/// Creates (or resets) `username` with `body` and logs in: the user's id and a token.
async fn user_with(username: &str, body: Value) -> (String, String) {
    let s = server();
    let put = admin_as(
        s,
        Method::PUT,
        &format!("/admin/users/{username}"),
        Some(ADMIN_TOKEN),
        body,
    )
    .await;
    assert!(put.status == 200 || put.status == 201, "{}", put.text);
    let password = put_password(username);
    let login = Reply::from(s.login(username, &password).await).await;
    assert_eq!(login.status, 200, "{}", login.text);
    (
        put.json["user"]["id"].as_str().unwrap().to_owned(),
        login.json["token"].as_str().unwrap().to_owned(),
    )
}

fn put_password(username: &str) -> String {
    format!("{username}-long-password")
}

#[tokio::test]
async fn deleting_a_user_revokes_their_tokens_and_closes_their_sockets() {
    let s = server();
    let name = "del-live";
    let (_, token) = user_with(name, json!({"password": put_password(name), "name": "D"})).await;
    let (mut c, _) = s.join_welcomed("delete-room", &token).await;

    let deleted = admin_as(
        s,
        Method::DELETE,
        &format!("/admin/users/{name}"),
        Some(ADMIN_TOKEN),
        json!({}),
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    expect_closed(
        &mut c,
        "revoked",
        Duration::from_secs(5),
        "the deleted user's socket",
    )
    .await;
    expect_refused_as_revoked("delete-room", &token, "the deleted user's token").await;
    let ticket = roomgate_harness::http::ticket_request(s, Some(&token), None).await;
    ticket.expect_error(401, "invalid_token", "no ticket for a deleted user's token");
}

#[tokio::test]
async fn changing_a_users_grants_closes_the_rooms_they_lost_and_revokes_their_old_tokens() {
    let s = server();
    let name = "regrant-user";
    let body = json!({"password": put_password(name), "name": "G", "rooms": ["regrant-kept", "regrant-lost"]});
    let (_, old) = user_with(name, body).await;
    let (mut kept, _) = s.join_welcomed("regrant-kept", &old).await;
    let (mut lost, _) = s.join_welcomed("regrant-lost", &old).await;
    // Tokens carry whole seconds: the change comes a second after the old token.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let changed = admin_as(
        s,
        Method::PUT,
        &format!("/admin/users/{name}"),
        Some(ADMIN_TOKEN),
        json!({"rooms": ["regrant-kept"]}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    expect_closed(
        &mut lost,
        "forbidden",
        Duration::from_secs(5),
        "the room no longer granted",
    )
    .await;
    expect_alive(&mut kept, "a room still granted keeps its socket").await;
    // The old token, with the old grants, opens nothing any more.
    expect_refused_as_revoked("regrant-kept", &old, "the old token").await;
    // A new token carries the new grants.
    let login = Reply::from(s.login(name, &put_password(name)).await).await;
    let new = login.json["token"].as_str().unwrap().to_owned();
    let (again, _) = s.join_welcomed("regrant-kept", &new).await;
    let refused = s
        .connect("/ws/regrant-lost", Auth::Subprotocol(&new))
        .await
        .err()
        .expect("the lost room is refused");
    refused.expect(403, "room_forbidden");
    kept.close().await;
    again.close().await;
}
