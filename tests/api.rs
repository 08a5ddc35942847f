//! End to end: the server API (`/api/v1/...`) and its keys (`/admin/api-keys`).
//!
//! Covers making, listing and deleting keys (shown once, never listed, a deleted one
//! refused within 10 s); a server publish in the room's one order with clients'
//! messages, in history and in a resume; idempotent retries; a publish into an empty
//! room; the multi-room publish with per-room failures; members and the active-room
//! listing with its cursor; scopes and room patterns (401/403); bounded and malformed
//! bodies (413/400/415); cross-origin refusals; and the per-key rate (429, on a runtime
//! of its own with `API_REQUESTS_PER_MINUTE=3`).
//!
//! Run: `cargo test --test api` (from the repository root; builds the Worker first if
//! `src/` changed). Tests share one runtime; each uses its own key names and rooms.
use roomgate_harness::admin::make_api_key as make_key;
use roomgate_harness::http::{fresh_address, Reply};
use roomgate_harness::runtime::{server, Server, ADMIN_TOKEN};
use roomgate_harness::tokens::token_for;
use roomgate_harness::ws::Auth;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

/// `{method} /admin/api-keys...` with the admin token.
async fn admin(s: &Server, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut req = s
        .http()
        .request(method, format!("{}/admin/api-keys{path}", s.url))
        .header("cf-connecting-ip", fresh_address())
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// `{method} /api/v1{path}` with `key` (if any) and a JSON body (if any).
async fn api(
    s: &Server,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut req = s.http().request(method, format!("{}/api/v1{path}", s.url));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    Reply::from(req.send().await.unwrap()).await
}

async fn publish(s: &Server, key: &str, room: &str, body: Value) -> Reply {
    api(
        s,
        Method::POST,
        &format!("/rooms/{room}/messages"),
        Some(key),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn keys_are_shown_once_listed_without_secrets_and_deleted() {
    let s = server();
    let (id, key) = make_key(s, "keys-life", &["rooms", "publish"], &["life-*"]).await;
    assert!(key.starts_with("rgk_") && key.contains(&id), "{key}");

    let listed = admin(s, Method::GET, "", None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let secret = key.rsplit('_').next().unwrap();
    assert!(
        !listed.text.contains(secret),
        "listing shows the key: {}",
        listed.text
    );
    assert!(!listed.text.contains("hash"), "{}", listed.text);
    let mine = listed.json["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap_or_else(|| panic!("key not listed: {}", listed.text))
        .clone();
    assert_eq!(mine["name"], "keys-life");
    assert_eq!(mine["scopes"], json!(["publish", "rooms"]));
    assert_eq!(mine["rooms"], json!(["life-*"]));
    assert!(mine["created_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(mine.get("key"), None);

    // The name is taken; bad requests say why.
    let again = admin(
        s,
        Method::POST,
        "",
        Some(json!({"name": "keys-life", "scopes": ["rooms"], "rooms": ["*"]})),
    )
    .await;
    again.expect_error(409, "conflict", "duplicate name");
    for (case, body) in [
        (
            "unknown scope",
            json!({"name": "k-bad1", "scopes": ["admin"], "rooms": ["*"]}),
        ),
        (
            "no scope",
            json!({"name": "k-bad2", "scopes": [], "rooms": ["*"]}),
        ),
        (
            "no rooms",
            json!({"name": "k-bad3", "scopes": ["rooms"], "rooms": []}),
        ),
        (
            "bad pattern",
            json!({"name": "k-bad4", "scopes": ["rooms"], "rooms": ["a b"]}),
        ),
        (
            "bad name",
            json!({"name": "has space", "scopes": ["rooms"], "rooms": ["*"]}),
        ),
        (
            "unknown field",
            json!({"name": "k-bad5", "scopes": ["rooms"], "rooms": ["*"], "x": 1}),
        ),
        (
            "missing rooms",
            json!({"name": "k-bad6", "scopes": ["rooms"]}),
        ),
    ] {
        admin(s, Method::POST, "", Some(body))
            .await
            .expect_error(400, "bad_request", case);
    }

    // Works, then is deleted and stops working (this isolate drops it at once; others
    // within 10 s).
    assert_eq!(
        api(s, Method::GET, "/rooms", Some(&key), None).await.status,
        200
    );
    let gone = admin(s, Method::DELETE, &format!("/{id}"), None).await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let r = api(s, Method::GET, "/rooms", Some(&key), None).await;
        if r.status == 401 {
            r.expect_error(401, "unauthorized", "deleted key");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deleted key still works: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    admin(s, Method::DELETE, &format!("/{id}"), None)
        .await
        .expect_error(404, "not_found", "deleted twice");
    // Without the admin token there is nothing to see.
    let r = Reply::from(
        s.http()
            .get(format!("{}/admin/api-keys", s.url))
            .header("cf-connecting-ip", fresh_address())
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.expect_error(401, "unauthorized", "no admin token");
}

#[tokio::test]
async fn a_server_publish_takes_its_place_in_the_rooms_one_order() {
    let s = server();
    let (_, key) = make_key(s, "orders", &["publish", "history"], &["order-*"]).await;
    let room = "order-feed";
    let (mut alice, welcome) = s.join_welcomed(room, &token_for("ord-a", "Alice")).await;
    let base = welcome["last_seq"].as_u64().unwrap();

    alice.publish(json!({"text": "first"})).await;
    let first = alice.recv_message().await;
    let r = publish(
        s,
        &key,
        room,
        json!({"data": {"order": 17, "status": "shipped"}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let from_api = alice.recv_message().await;
    alice.publish(json!({"text": "third"})).await;
    let third = alice.recv_message().await;

    assert_eq!(first["seq"].as_u64(), Some(base + 1));
    assert_eq!(from_api["seq"].as_u64(), Some(base + 2));
    assert_eq!(third["seq"].as_u64(), Some(base + 3));
    assert_eq!(r.json["seq"], from_api["seq"]);
    assert_eq!(r.json["ts"], from_api["ts"]);
    assert_eq!(
        from_api["from"],
        json!({"id": "api:orders", "name": "orders"})
    );
    assert_eq!(from_api["data"], json!({"order": 17, "status": "shipped"}));

    // History pages hold the same frames as clients received them.
    let h = api(
        s,
        Method::GET,
        &format!("/rooms/{room}/messages?limit=3"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(h.status, 200, "{}", h.text);
    assert_eq!(h.json["room"], room);
    assert_eq!(h.json["messages"], json!([first, from_api, third]));
    let older = api(
        s,
        Method::GET,
        &format!("/rooms/{room}/messages?before={}&limit=1", base + 3),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(older.json["messages"], json!([from_api]));

    // A client resuming from before it is replayed the server's message in its place.
    let mut late = s
        .connect(
            &format!("/ws/{room}?since={base}"),
            Auth::Subprotocol(&token_for("ord-b", "Bob")),
        )
        .await
        .unwrap();
    late.recv_type("welcome").await;
    for want in [&first, &from_api, &third] {
        assert_eq!(&late.recv().await, want);
    }

    for (case, query) in [
        ("limit 0", "?limit=0"),
        ("limit 101", "?limit=101"),
        ("before not a number", "?before=x"),
    ] {
        api(
            s,
            Method::GET,
            &format!("/rooms/{room}/messages{query}"),
            Some(&key),
            None,
        )
        .await
        .expect_error(400, "bad_request", case);
    }
}

#[tokio::test]
async fn a_retried_publish_with_its_idempotency_key_publishes_once() {
    let s = server();
    let (_, key) = make_key(s, "retrier", &["publish"], &["idem-*"]).await;
    let (_, other) = make_key(s, "retrier-2", &["publish"], &["idem-*"]).await;
    let room = "idem-1";
    let (mut c, _) = s.join_welcomed(room, &token_for("idem-u", "U")).await;

    let body = json!({"data": {"n": 1}, "idempotency_key": "order-17-shipped"});
    let first = publish(s, &key, room, body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let seen = c.recv_message().await;
    assert_eq!(seen["seq"], first.json["seq"]);

    let retry = publish(s, &key, room, body.clone()).await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(
        retry.json, first.json,
        "a retry answers the first seq and ts"
    );
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    c.expect_silence().await;

    // Another key, or another idempotency key, is another message.
    let theirs = publish(s, &other, room, body).await;
    assert_eq!(
        theirs.json["seq"].as_u64(),
        first.json["seq"].as_u64().map(|n| n + 1)
    );
    let fresh = publish(
        s,
        &key,
        room,
        json!({"data": {"n": 2}, "idempotency_key": "another"}),
    )
    .await;
    assert_eq!(
        fresh.json["seq"].as_u64(),
        first.json["seq"].as_u64().map(|n| n + 2)
    );
    assert_eq!(c.recv_message().await["seq"], theirs.json["seq"]);
    assert_eq!(c.recv_message().await["seq"], fresh.json["seq"]);
}

#[tokio::test]
async fn a_publish_into_an_empty_room_is_kept_for_history_and_resume() {
    let s = server();
    let (_, key) = make_key(s, "empty-room", &["publish", "history"], &["empty-*"]).await;
    let room = "empty-7";
    let r = publish(s, &key, room, json!({"data": "while nobody was here"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["seq"], 1);

    let h = api(
        s,
        Method::GET,
        &format!("/rooms/{room}/messages"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(h.json["messages"][0]["data"], "while nobody was here");
    let (mut c, welcome) = {
        let mut c = s
            .connect(
                &format!("/ws/{room}?since=0"),
                Auth::Subprotocol(&token_for("empty-u", "U")),
            )
            .await
            .unwrap();
        let w = c.recv_type("welcome").await;
        (c, w)
    };
    assert_eq!(welcome["last_seq"], 1);
    assert_eq!(c.recv().await, h.json["messages"][0]);
}

#[tokio::test]
async fn a_batch_publish_reports_each_room_and_publishes_the_others() {
    let s = server();
    let (_, key) = make_key(s, "batcher", &["publish"], &["batch-a*"]).await;
    let (mut a1, _) = s
        .join_welcomed("batch-a1", &token_for("batch-u", "U"))
        .await;
    let (mut a2, _) = s
        .join_welcomed("batch-a2", &token_for("batch-u", "U"))
        .await;

    let r = api(
        s,
        Method::POST,
        "/publish",
        Some(&key),
        Some(
            json!({"rooms": ["batch-a1", "batch-b", "bad room", "batch-a2"], "data": {"alert": 1}}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json["published"].as_u64(), r.json["failed"].as_u64()),
        (Some(2), Some(2))
    );
    let results = r.json["results"].as_array().unwrap();
    let rooms: Vec<&str> = results
        .iter()
        .map(|x| x["room"].as_str().unwrap())
        .collect();
    assert_eq!(rooms, ["batch-a1", "batch-b", "bad room", "batch-a2"]);
    assert_eq!(results[1]["error"], "room_forbidden");
    assert_eq!(results[2]["error"], "invalid_room");
    assert!(results[1]["message"].is_string() && results[1].get("seq").is_none());
    for (result, client) in [(&results[0], &mut a1), (&results[3], &mut a2)] {
        let m = client.recv_message().await;
        assert_eq!(m["seq"], result["seq"]);
        assert_eq!(m["ts"], result["ts"]);
        assert_eq!(m["data"], json!({"alert": 1}));
    }

    let many: Vec<String> = (0..101).map(|i| format!("batch-a{i}")).collect();
    for (case, body) in [
        ("too many rooms", json!({"rooms": many, "data": 1})),
        ("no rooms", json!({"rooms": [], "data": 1})),
        (
            "a room twice",
            json!({"rooms": ["batch-a1", "batch-a1"], "data": 1}),
        ),
        ("no data", json!({"rooms": ["batch-a1"]})),
    ] {
        api(s, Method::POST, "/publish", Some(&key), Some(body))
            .await
            .expect_error(400, "bad_request", case);
    }
}

#[tokio::test]
async fn members_and_active_rooms_are_listed() {
    let s = server();
    let (_, key) = make_key(s, "watcher", &["presence", "rooms"], &["mem-*"]).await;
    let bob = token_for("mem-bob", "Bob");
    let (_c1, _) = s.join_welcomed("mem-1", &token_for("mem-ann", "Ann")).await;
    let (_c2, _) = s.join_welcomed("mem-1", &bob).await;
    let (_c3, _) = s.join_welcomed("mem-1", &bob).await;
    let (_c4, _) = s.join_welcomed("mem-2", &bob).await;
    // An invisible viewer: a token without `presence` in these rooms.
    let viewer = roomgate_harness::tokens::mint(
        roomgate_harness::runtime::JWT_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &roomgate_harness::tokens::with(
            roomgate_harness::tokens::claims("mem-viewer", "V"),
            json!({"rooms": {"mem-*": ["subscribe"]}}),
        ),
    );
    let (_c5, _) = s.join_welcomed("mem-1", &viewer).await;

    let m = api(s, Method::GET, "/rooms/mem-1/members", Some(&key), None).await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(
        m.json,
        json!({"room": "mem-1", "connections": 4, "viewers": 1, "members": [
            {"id": "mem-ann", "name": "Ann", "connections": 1},
            {"id": "mem-bob", "name": "Bob", "connections": 2},
        ]})
    );
    let nobody = api(s, Method::GET, "/rooms/mem-none/members", Some(&key), None).await;
    assert_eq!(
        nobody.json,
        json!({"room": "mem-none", "connections": 0, "viewers": 0, "members": []})
    );

    // Every page, one room at a time, through the cursor: only rooms the key covers.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let path = match &cursor {
            Some(c) => format!("/rooms?limit=1&cursor={c}"),
            None => "/rooms?limit=1".to_owned(),
        };
        let page = api(s, Method::GET, &path, Some(&key), None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(page.json["rooms"].as_array().unwrap().iter().cloned());
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert!(
        seen.iter()
            .all(|r| r["room"].as_str().unwrap().starts_with("mem-")),
        "{seen:?}"
    );
    let find = |name: &str| seen.iter().find(|r| r["room"] == name).cloned();
    assert_eq!(
        find("mem-1"),
        Some(json!({"room": "mem-1", "connections": 4, "members": 2, "viewers": 1}))
    );
    assert_eq!(
        find("mem-2"),
        Some(json!({"room": "mem-2", "connections": 1, "members": 1, "viewers": 0}))
    );
    for (case, query) in [("limit 0", "?limit=0"), ("bad cursor", "?cursor=a%20b")] {
        api(s, Method::GET, &format!("/rooms{query}"), Some(&key), None)
            .await
            .expect_error(400, "bad_request", case);
    }
}

#[tokio::test]
async fn a_key_is_held_to_its_scopes_and_rooms() {
    let s = server();
    let (id, key) = make_key(s, "reader", &["history"], &["read-*"]).await;
    let body = Some(json!({"data": 1}));
    let cases = [
        (
            "publish without the scope",
            Method::POST,
            "/rooms/read-1/messages",
            403,
            "forbidden",
        ),
        (
            "members without the scope",
            Method::GET,
            "/rooms/read-1/members",
            403,
            "forbidden",
        ),
        (
            "rooms without the scope",
            Method::GET,
            "/rooms",
            403,
            "forbidden",
        ),
        (
            "batch without the scope",
            Method::POST,
            "/publish",
            403,
            "forbidden",
        ),
        (
            "a room outside the key",
            Method::GET,
            "/rooms/other/messages",
            403,
            "room_forbidden",
        ),
        (
            "a bad room",
            Method::GET,
            "/rooms/a%20b/messages",
            400,
            "invalid_room",
        ),
        ("no such route", Method::GET, "/nothing", 404, "not_found"),
        (
            "wrong method",
            Method::DELETE,
            "/rooms/read-1/messages",
            405,
            "method_not_allowed",
        ),
    ];
    for (case, method, path, status, code) in cases {
        api(s, method, path, Some(&key), body.clone())
            .await
            .expect_error(status, code, case);
    }
    assert_eq!(
        api(s, Method::GET, "/rooms/read-1/messages", Some(&key), None)
            .await
            .status,
        200
    );

    // 401 for no key, a malformed one, a wrong secret under a real id, the admin token.
    let wrong_secret = format!("rgk_{id}_{}", "A".repeat(43));
    let user_token = token_for("read-u", "U");
    for (case, presented) in [
        ("no key", None),
        ("malformed", Some("rgk_nope")),
        ("wrong secret", Some(wrong_secret.as_str())),
        ("admin token", Some(ADMIN_TOKEN)),
        ("a user token", Some(user_token.as_str())),
    ] {
        let r = api(s, Method::GET, "/rooms/read-1/messages", presented, None).await;
        r.expect_error(401, "unauthorized", case);
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="roomgate-api""#)
        );
    }
}

#[tokio::test]
async fn bodies_are_checked_and_bounded() {
    let s = server();
    let (_, key) = make_key(s, "bodies", &["publish"], &["body-*"]).await;
    let path = format!("{}/api/v1/rooms/body-1/messages", s.url);
    let send = |body: String, content_type: &'static str| {
        let req = s
            .http()
            .post(&path)
            .bearer_auth(&key)
            .header("content-type", content_type)
            .body(body);
        async move { Reply::from(req.send().await.unwrap()).await }
    };
    // MAX_FRAME_BYTES is 16384 in wrangler.toml.
    let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(16_400));
    send(big, "application/json").await.expect_error(
        413,
        "payload_too_large",
        "data over MAX_FRAME_BYTES",
    );
    let huge = format!(r#"{{"data":1,"idempotency_key":"{}"}}"#, "k".repeat(20_000));
    send(huge, "application/json").await.expect_error(
        413,
        "payload_too_large",
        "body over the bound",
    );
    let deep = format!(r#"{{"data":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
    send(deep, "application/json")
        .await
        .expect_error(400, "bad_request", "too deep");
    for (case, body) in [
        ("not JSON", "{nope".to_owned()),
        ("no data", r#"{"idempotency_key":"a"}"#.to_owned()),
        ("unknown field", r#"{"data":1,"room":"x"}"#.to_owned()),
        (
            "empty idempotency key",
            r#"{"data":1,"idempotency_key":""}"#.to_owned(),
        ),
        (
            "idempotency key too long",
            format!(r#"{{"data":1,"idempotency_key":"{}"}}"#, "k".repeat(129)),
        ),
        ("an array", "[1]".to_owned()),
    ] {
        send(body, "application/json")
            .await
            .expect_error(400, "bad_request", case);
    }
    send(r#"{"data":1}"#.into(), "text/plain")
        .await
        .expect_error(415, "unsupported_media_type", "text/plain");
    // `null` is data like any other.
    assert_eq!(
        send(r#"{"data":null}"#.into(), "application/json")
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn server_routes_refuse_other_origins() {
    let s = server();
    let (_, key) = make_key(s, "origins", &["rooms"], &["*"]).await;
    for path in ["/api/v1/rooms", "/admin/api-keys"] {
        let bearer = if path.starts_with("/api") {
            key.as_str()
        } else {
            ADMIN_TOKEN
        };
        let r = Reply::from(
            s.http()
                .get(format!("{}{path}", s.url))
                .bearer_auth(bearer)
                .header("origin", "https://elsewhere.example")
                .header("cf-connecting-ip", fresh_address())
                .send()
                .await
                .unwrap(),
        )
        .await;
        r.expect_error(403, "origin_forbidden", path);
        assert_eq!(r.header("access-control-allow-origin"), None);
        let same = Reply::from(
            s.http()
                .get(format!("{}{path}", s.url))
                .bearer_auth(bearer)
                .header("origin", &s.url)
                .header("cf-connecting-ip", fresh_address())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            same.status, 200,
            "{path} from its own origin: {}",
            same.text
        );
    }
}

#[tokio::test]
async fn each_key_is_held_to_its_rate() {
    let s = Server::start(&[("API_REQUESTS_PER_MINUTE", "3")]);
    let (_, key) = make_key(&s, "rated", &["rooms"], &["*"]).await;
    let (_, other) = make_key(&s, "rated-2", &["rooms"], &["*"]).await;
    for _ in 0..3 {
        assert_eq!(
            api(&s, Method::GET, "/rooms", Some(&key), None)
                .await
                .status,
            200
        );
    }
    let r = api(&s, Method::GET, "/rooms", Some(&key), None).await;
    r.expect_error(429, "rate_limited", "fourth request in a minute");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another key has a rate of its own.
    assert_eq!(
        api(&s, Method::GET, "/rooms", Some(&other), None)
            .await
            .status,
        200
    );
}
