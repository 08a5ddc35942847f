//! End to end: capabilities in the `rooms` claim (`subscribe`, `publish`, `presence`,
//! `history`) and external issuers closed by default.
//!
//! Covers the union of matching entries; a room without `subscribe` refused with 403; a
//! `publish` or `history` frame without the right answered with an `error` frame
//! `forbidden` while the socket stays open and nothing is stored or sent; an invisible
//! viewer (no `presence`): not in `members`, no `join`/`leave` for it nor to it, counted
//! as a viewer in the admin stats; tickets carrying the rights of the token that minted
//! them; an in-band `refresh` whose token lost rights (presence gone at once, with a
//! `leave`; no `subscribe`: closed with 4003); user records with object grants; and an
//! external issuer whose tokens without `rooms` get its `default_rooms`, or no room.
//!
//! Run: `cargo test --test capabilities` (builds the Worker first if `src/` changed).
use roomgate_harness::admin::admin_put_user;
use roomgate_harness::http::ticket;
use roomgate_harness::issuers::{
    partner_claims, PARTNER_AUD, PARTNER_BINDING, PARTNER_ISS, PARTNER_KID, PARTNER_SECRET,
};
use roomgate_harness::runtime::{server, Server, ADMIN_TOKEN, JWT_SECRET};
use roomgate_harness::tokens::{claims, mint, with};
use roomgate_harness::ws::Auth;

use std::time::Duration;

use serde_json::{json, Value};

/// An own token for `sub` with `rooms` as its claim.
fn token(sub: &str, rooms: Value) -> String {
    mint(
        JWT_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &with(claims(sub, &format!("N {sub}")), json!({"rooms": rooms})),
    )
}

async fn stats(s: &Server, room: &str) -> Value {
    let r = s.room_stats(room, Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

#[tokio::test]
async fn rights_are_the_union_of_the_matching_entries_and_each_is_enforced() {
    let s = server();
    let room = "cap-dash.sales";
    let full = token("cap-owner", json!(["cap-*"]));
    let viewer = token(
        "cap-viewer",
        json!({"cap-dash.*": ["subscribe"], "cap-dash.sales": ["history"], "other": ["publish"]}),
    );
    let (mut owner, welcome) = s.join_welcomed(room, &full).await;
    assert_eq!(welcome["members"].as_array().unwrap().len(), 1);
    owner.publish(json!("first")).await;
    let first = owner.recv_skipping_presence().await;

    // The viewer: in, with history, but not visible and told of nobody.
    let (mut v, vwelcome) = s.join_welcomed(room, &viewer).await;
    assert_eq!(vwelcome.get("members"), None, "{vwelcome}");
    owner.expect_silence().await; // no `join` for an invisible viewer
    let st = stats(s, room).await;
    assert_eq!(
        (
            st["connections"].as_u64(),
            st["members"].as_u64(),
            st["viewers"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{st}"
    );

    // Publishing is not among its rights: an error frame, the socket stays, nothing sent.
    v.publish(json!("may I?")).await;
    let refused = v.recv_type("error").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    owner.expect_silence().await;
    assert_eq!(stats(s, room).await["last_seq"], first["seq"]);

    // History it has (from the second entry); messages it receives.
    v.send_json(json!({"type": "history"})).await;
    let page = v.recv_type("history").await;
    assert_eq!(page["messages"], json!([first]));
    owner.publish(json!("second")).await;
    assert_eq!(owner.recv_skipping_presence().await["data"], "second");
    assert_eq!(v.recv_type("message").await["data"], "second");

    // Others coming and going are not announced to it.
    let (other, _) = s
        .join_welcomed(room, &token("cap-other", json!(["*"])))
        .await;
    assert_eq!(owner.recv_type("join").await["user"]["id"], "cap-other");
    other.close().await;
    assert_eq!(owner.recv_type("leave").await["user"]["id"], "cap-other");
    v.expect_silence().await;

    // A room where the viewer has `subscribe` but no `history`.
    let (mut v2, _) = s.join_welcomed("cap-dash.ops", &viewer).await;
    v2.send_json(json!({"type": "history"})).await;
    assert_eq!(v2.recv_type("error").await["code"], "forbidden");

    // `publish` alone is no way in.
    let refused = s
        .connect("/ws/other", Auth::Subprotocol(&viewer))
        .await
        .err()
        .expect("refused");
    refused.expect(403, "room_forbidden");
    // The viewer's leave is silent too.
    v.close().await;
    owner.expect_silence().await;
}

#[tokio::test]
async fn a_ticket_carries_the_rights_of_the_token_that_minted_it() {
    let s = server();
    let scoped = token("cap-ticket", json!({"cap-t*": ["subscribe", "presence"]}));
    let t = ticket(s, &scoped, Some("cap-t1")).await;
    let mut c = s
        .connect(&format!("/ws/cap-t1?ticket={t}"), Auth::None)
        .await
        .unwrap();
    let w = c.recv_type("welcome").await;
    assert_eq!(w["members"][0]["id"], "cap-ticket", "{w}");
    c.publish(json!("x")).await;
    assert_eq!(c.recv_type("error").await["code"], "forbidden");
}

#[tokio::test]
async fn a_refresh_applies_the_new_tokens_rights_at_once() {
    let s = server();
    let room = "cap-refresh";
    let (mut watcher, _) = s.join_welcomed(room, &token("cap-w", json!(["*"]))).await;
    let (mut c, _) = s.join_welcomed(room, &token("cap-r", json!(["*"]))).await;
    assert_eq!(watcher.recv_type("join").await["user"]["id"], "cap-r");

    // Same user, fewer rights: presence and publish are gone at once.
    c.send_json(json!({"type": "refresh", "token": token("cap-r", json!({room: ["subscribe"]}))}))
        .await;
    assert_eq!(c.recv_type("refreshed").await["type"], "refreshed");
    assert_eq!(watcher.recv_type("leave").await["user"]["id"], "cap-r");
    c.publish(json!("still?")).await;
    assert_eq!(c.recv_type("error").await["code"], "forbidden");
    watcher.expect_silence().await;
    let st = stats(s, room).await;
    assert_eq!(
        (st["members"].as_u64(), st["viewers"].as_u64()),
        (Some(1), Some(1)),
        "{st}"
    );

    // A gained right other than presence counts at once; presence needs a new socket.
    // (A socket's refresh is checked at most once per 10 s.)
    tokio::time::sleep(Duration::from_millis(10_200)).await;
    c.send_json(json!({"type": "refresh", "token": token("cap-r", json!(["*"]))}))
        .await;
    c.recv_type("refreshed").await;
    c.publish(json!("again")).await;
    assert_eq!(c.recv_skipping_presence().await["data"], "again");
    // The watcher's next frame is that message: no `join`, the socket is still invisible.
    let m = watcher.recv().await;
    assert_eq!(
        (m["type"].as_str(), m["data"].as_str()),
        (Some("message"), Some("again")),
        "{m}"
    );
    watcher.expect_silence().await;

    // A token that no longer grants the room closes the socket: 4003.
    let (mut d, _) = s.join_welcomed(room, &token("cap-d", json!(["*"]))).await;
    d.send_json(json!({"type": "refresh", "token": token("cap-d", json!(["elsewhere"]))}))
        .await;
    let closed = d
        .closed_within(Duration::from_secs(15))
        .await
        .expect("closed");
    assert_eq!(closed.code, Some(4003), "{closed:?}");
}

#[tokio::test]
async fn user_records_take_grants_with_capabilities() {
    let s = server();
    let put = admin_put_user(
        s,
        "capuser",
        &json!({"password": "capuser-password", "name": "Cap", "rooms": {"cap-u*": ["subscribe", "history"]}}),
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.text);
    assert_eq!(
        put.json["user"]["rooms"],
        json!({"cap-u*": ["subscribe", "history"]})
    );
    let login = s.login("capuser", "capuser-password").await;
    let body: Value = login.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let (mut c, w) = s.join_welcomed("cap-u1", token).await;
    assert_eq!(w.get("members"), None);
    c.publish(json!(1)).await;
    assert_eq!(c.recv_type("error").await["code"], "forbidden");
    for (case, rooms) in [
        ("unknown capability", json!({"a": ["admin"]})),
        ("not a list", json!({"a": "subscribe"})),
        ("bad pattern", json!({"a b": ["subscribe"]})),
    ] {
        admin_put_user(s, "capuser", &json!({"rooms": rooms}))
            .await
            .expect_error(400, "bad_request", case);
    }
}

#[tokio::test]
async fn an_external_issuers_tokens_get_its_default_rooms_or_none() {
    let partner = |default: Option<Value>| {
        let mut entry = json!({"iss": PARTNER_ISS, "aud": PARTNER_AUD,
            "secret": {"kid": PARTNER_KID, "binding": PARTNER_BINDING}});
        if let Some(d) = default {
            entry["default_rooms"] = d;
        }
        json!([entry]).to_string()
    };
    let sign = |claims: &Value| {
        mint(
            PARTNER_SECRET.as_bytes(),
            &json!({"alg": "HS256", "typ": "JWT", "kid": PARTNER_KID}),
            claims,
        )
    };
    let closed = partner(None);
    let s = Server::start(&[
        ("TRUSTED_ISSUERS", closed.as_str()),
        (PARTNER_BINDING, PARTNER_SECRET),
    ]);
    let plain = sign(&partner_claims("p1"));
    s.connect("/ws/support-1", Auth::Subprotocol(&plain))
        .await
        .err()
        .expect("closed by default")
        .expect(403, "room_forbidden");
    // Its own claim still works; ROOMS_OPEN_BY_DEFAULT is about own tokens only.
    let claimed = sign(&with(partner_claims("p1"), json!({"rooms": ["support-1"]})));
    s.join_welcomed("support-1", &claimed).await;
    s.join_welcomed("support-1", &token("own-user", Value::Null))
        .await;

    let open = partner(Some(json!({"support-*": ["subscribe", "presence"]})));
    let s = s.restart_with(&[("TRUSTED_ISSUERS", open.as_str())]);
    let (mut c, w) = s.join_welcomed("support-2", &plain).await;
    assert_eq!(w["user"]["id"], "partner#p1");
    c.publish(json!("hi")).await;
    assert_eq!(c.recv_type("error").await["code"], "forbidden");
    s.connect("/ws/lobby", Auth::Subprotocol(&plain))
        .await
        .err()
        .expect("outside the default")
        .expect(403, "room_forbidden");
}
