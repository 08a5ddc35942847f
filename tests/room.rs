//! Rooms, end to end: what connected clients see on the real workerd runtime.
//!
//! Covers the `welcome` frame's fields; fan-out (every member, the sender included,
//! receives every message with the same gap-free `seq` order, the right `from`, a plausible
//! `ts` and `data` exactly as sent); room isolation; presence (`join`/`leave` once per
//! user, however many tabs); error frames for bad client frames (sender only, the
//! connection stays usable); and the close codes for oversize (1009) and binary (1003)
//! frames, after which the room carries on.
//!
//! Run: `cargo test --test room` (from the repository root; builds the Worker first if
//! `src/` changed, and starts its own runtime).
use roomgate_harness::runtime::{server, JWT_SECRET};
use roomgate_harness::tokens::{claims, claims_of, mint, now, token_for};
use roomgate_harness::ws::{Client, FRAME_TIMEOUT};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Default `MAX_FRAME_BYTES`.
const MAX_FRAME_BYTES: usize = 16384;

/// The next text frame exactly as the server sent it (pings skipped).
async fn recv_raw(c: &mut Client) -> String {
    loop {
        let msg = tokio::time::timeout(FRAME_TIMEOUT, c.ws.next())
            .await
            .expect("timed out waiting for a frame");
        match msg {
            Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The next frame, skipping `join` frames (for rooms filled by many clients).
async fn recv_skipping_joins(c: &mut Client) -> Value {
    loop {
        let v = c.recv().await;
        if v["type"] != "join" {
            return v;
        }
    }
}

/// A `members` list sorted by id, for checks that are about who is listed, not the order
/// (the order has its own test).
fn sorted_members(members: &Value) -> Value {
    let mut list = members.as_array().expect("members is an array").clone();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Value::Array(list)
}

fn sorted(list: &[&Value]) -> Value {
    sorted_members(&Value::Array(list.iter().map(|v| (*v).clone()).collect()))
}

fn sub_of(token: &str) -> String {
    claims_of(token)["sub"].as_str().unwrap().to_owned()
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A `publish` frame of exactly `len` bytes (a string payload padded with `x`).
fn publish_frame_of_len(len: usize) -> String {
    let empty = r#"{"type":"publish","data":""}"#;
    let text = format!(
        r#"{{"type":"publish","data":"{}"}}"#,
        "x".repeat(len - empty.len())
    );
    assert_eq!(text.len(), len);
    text
}

#[tokio::test]
async fn welcome_describes_room_user_members_and_expiry() {
    let s = server();
    let room = "room-welcome";
    let alice_token = s.token("alice").await;
    let bob_token = s.token("bob").await;
    let alice = json!({"id": sub_of(&alice_token), "name": "Alice"});
    let bob = json!({"id": sub_of(&bob_token), "name": "Bob"});

    let (a, welcome) = s.join_welcomed(room, &alice_token).await;
    assert_eq!(
        welcome,
        json!({
            "type": "welcome",
            "room": room,
            "user": alice,
            "members": [alice],
            "expires_at": claims_of(&alice_token)["exp"],
            "last_seq": 0,
        })
    );

    let (b, welcome) = s.join_welcomed(room, &bob_token).await;
    assert_eq!(
        welcome,
        json!({
            "type": "welcome",
            "room": room,
            "user": bob,
            "members": [alice, bob],
            "expires_at": claims_of(&bob_token)["exp"],
            "last_seq": 0,
        })
    );

    // A token minted elsewhere: expires_at is that token's own exp, the name its own.
    let exp = now() + 1234;
    let mut c = claims("welcome-minted", "Zoë 🌟");
    c["exp"] = json!(exp);
    let token = mint(
        JWT_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &c,
    );
    let (m, welcome) = s.join_welcomed(room, &token).await;
    assert_eq!(welcome["expires_at"], exp);
    assert_eq!(
        welcome["user"],
        json!({"id": "welcome-minted", "name": "Zoë 🌟"})
    );
    assert_eq!(
        sorted_members(&welcome["members"]),
        sorted(&[
            &alice,
            &bob,
            &json!({"id": "welcome-minted", "name": "Zoë 🌟"})
        ]),
    );

    for c in [a, b, m] {
        c.close().await;
    }
}

/// docs/protocol.md: `members` lists everyone "in order of their first connection".
#[tokio::test]
async fn members_are_listed_in_order_of_first_connection() {
    let s = server();
    let room = "room-member-order";
    let member = |i: usize| json!({"id": format!("o{i}"), "name": format!("Order {i}")});
    let token = |i: usize| token_for(&format!("o{i}"), &format!("Order {i}"));

    let mut clients = Vec::new();
    for i in 0..5 {
        let (c, welcome) = s.join_welcomed(room, &token(i)).await;
        let want: Vec<Value> = (0..=i).map(member).collect();
        assert_eq!(
            welcome["members"],
            json!(want),
            "welcome of member o{i} (joined in order o0..o{i})"
        );
        clients.push(c);
    }

    // A second tab of the first member does not move it.
    let (tab, welcome) = s.join_welcomed(room, &token(0)).await;
    let want: Vec<Value> = (0..5).map(member).collect();
    assert_eq!(
        welcome["members"],
        json!(want),
        "after o0 opens a second tab"
    );

    // o1 leaves; a newcomer sees the others in their order, then itself.
    clients.remove(1).close().await;
    let (late, welcome) = s.join_welcomed(room, &token(5)).await;
    let want: Vec<Value> = [0, 2, 3, 4, 5].into_iter().map(member).collect();
    assert_eq!(
        welcome["members"],
        json!(want),
        "after o1 left and o5 joined"
    );

    for c in clients.into_iter().chain([tab, late]) {
        c.close().await;
    }
}

#[tokio::test]
async fn two_members_receive_every_message_in_one_order() {
    let s = server();
    let room = "room-two";
    let alice_token = s.token("alice").await;
    let bob_token = s.token("bob").await;
    let alice = json!({"id": sub_of(&alice_token), "name": "Alice"});
    let bob = json!({"id": sub_of(&bob_token), "name": "Bob"});
    let (mut a, _) = s.join_welcomed(room, &alice_token).await;
    let (mut b, _) = s.join_welcomed(room, &bob_token).await;
    assert_eq!(a.recv_type("join").await["user"], bob);

    // (sender is alice?, data exactly as sent)
    let cases: &[(bool, &str)] = &[
        (true, r#""hello""#),
        (false, "42"),
        (true, "-1.5e3"),
        (false, "null"),
        (true, "true"),
        (false, r#"[1,"two",null,[3]]"#),
        (
            true,
            r#"{"z":1,"a":{"nested":[true,false,{"deep":"é ✓"}]},"m":""}"#,
        ),
        (false, r#"{ "spaced" : [ 1 , 2 ] }"#),
        (true, "[]"),
        (false, "{}"),
    ];
    let mut last_seq = 0;
    for (i, &(from_alice, data)) in cases.iter().enumerate() {
        let sender = if from_alice { &mut a } else { &mut b };
        sender
            .send_text(&format!(r#"{{"type":"publish","data":{data}}}"#))
            .await;
        let before = now_millis();

        let raw_a = recv_raw(&mut a).await;
        let raw_b = recv_raw(&mut b).await;
        assert_eq!(raw_a, raw_b, "both members get the same frame");
        assert!(
            raw_a.contains(&format!(r#""data":{data},"#)),
            "data must be copied verbatim: sent {data}, got {raw_a}"
        );
        let m: Value = serde_json::from_str(&raw_a).unwrap();
        assert_eq!(m["type"], "message", "{m}");
        let seq = m["seq"].as_u64().expect("numeric seq");
        if i == 0 {
            assert_eq!(seq, 1, "a fresh room starts at seq 1");
        } else {
            assert_eq!(seq, last_seq + 1, "seq must go up by one");
        }
        last_seq = seq;
        assert_eq!(
            &m["from"],
            if from_alice { &alice } else { &bob },
            "case {i}"
        );
        assert_eq!(m["data"], serde_json::from_str::<Value>(data).unwrap());
        let ts = m["ts"].as_u64().expect("ts is a whole number");
        assert!(
            ts + 60_000 > before && ts < before + 60_000,
            "ts {ts} is not a unix-ms time near {before}"
        );
    }

    a.expect_silence().await;
    b.expect_silence().await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn ten_members_publishing_concurrently_see_one_gap_free_order() {
    const CLIENTS: usize = 10;
    const EACH: usize = 5;
    const TOTAL: usize = CLIENTS * EACH;
    let s = server();
    let room = "room-ten";

    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (c, welcome) = s
            .join_welcomed(room, &token_for(&format!("u{i}"), &format!("User {i}")))
            .await;
        assert_eq!(welcome["members"].as_array().unwrap().len(), i + 1);
        clients.push(c);
    }

    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(async move {
                for k in 0..EACH {
                    c.publish(json!({"client": i, "k": k})).await;
                }
                let mut got = Vec::new();
                while got.len() < TOTAL {
                    let m = recv_skipping_joins(&mut c).await;
                    assert_eq!(m["type"], "message", "client {i}: {m}");
                    got.push((
                        m["seq"].as_u64().unwrap(),
                        m["from"].clone(),
                        m["data"].clone(),
                    ));
                }
                c.expect_silence().await;
                (got, c)
            })
        })
        .collect();
    // Nobody closes before every client has listened for its silence: a close is a
    // `leave` for the others, and a client can be well behind another one under load.
    let mut seen = Vec::new();
    let mut done = Vec::new();
    for t in tasks {
        let (got, c) = t.await.unwrap();
        seen.push(got);
        done.push(c);
    }
    for c in done {
        c.close().await;
    }

    let first = &seen[0];
    for (i, other) in seen.iter().enumerate() {
        assert_eq!(
            other, first,
            "client {i} saw a different order than client 0"
        );
    }
    let seqs: Vec<u64> = first.iter().map(|(seq, _, _)| *seq).collect();
    let want: Vec<u64> = (1..=TOTAL as u64).collect();
    assert_eq!(
        seqs, want,
        "seq must be 1..={TOTAL} without gaps or duplicates"
    );

    // Every published message arrived once, from its sender, each sender's in its order.
    for i in 0..CLIENTS {
        let ks: Vec<u64> = first
            .iter()
            .filter(|(_, _, data)| data["client"] == i)
            .map(|(_, from, data)| {
                assert_eq!(
                    from,
                    &json!({"id": format!("u{i}"), "name": format!("User {i}")})
                );
                data["k"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(ks, (0..EACH as u64).collect::<Vec<_>>(), "client {i}");
    }
}

#[tokio::test]
async fn rooms_are_isolated() {
    let s = server();
    let token = s.token("alice").await;
    let bob_token = s.token("bob").await;
    let (mut a, _) = s.join_welcomed("room-iso-a", &token).await;
    let (mut b, welcome) = s.join_welcomed("room-iso-b", &bob_token).await;
    assert_eq!(
        welcome["members"].as_array().unwrap().len(),
        1,
        "alice in another room is not a member here"
    );
    a.expect_silence().await; // bob's join in room B is not announced in room A

    a.publish(json!("only for A")).await;
    let m = a.recv_type("message").await;
    assert_eq!(
        (m["seq"].clone(), m["data"].clone()),
        (json!(1), json!("only for A"))
    );
    b.expect_silence().await;

    b.publish(json!("only for B")).await;
    let m = b.recv_type("message").await;
    assert_eq!(
        (m["seq"].clone(), m["data"].clone()),
        (json!(1), json!("only for B")),
        "each room has its own sequence"
    );
    a.expect_silence().await;

    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn presence_is_per_user_not_per_tab() {
    let s = server();
    let room = "room-presence";
    let alice_token = s.token("alice").await;
    let bob_token = s.token("bob").await;
    let alice = json!({"id": sub_of(&alice_token), "name": "Alice"});
    let bob = json!({"id": sub_of(&bob_token), "name": "Bob"});

    let (mut a, welcome) = s.join_welcomed(room, &alice_token).await;
    assert_eq!(welcome["members"], json!([alice]));

    let (mut b1, welcome) = s.join_welcomed(room, &bob_token).await;
    assert_eq!(welcome["members"], json!([alice, bob]));
    assert_eq!(
        a.recv().await,
        json!({"type": "join", "user": bob}),
        "alice hears bob join"
    );

    // Bob's second tab: not a new member.
    let (mut b2, welcome) = s.join_welcomed(room, &s.token("bob").await).await;
    assert_eq!(
        sorted_members(&welcome["members"]),
        sorted(&[&alice, &bob]),
        "bob is listed once however many tabs he has"
    );
    a.expect_silence().await;
    b1.expect_silence().await;

    // Closing one tab: bob is still here.
    b1.close().await;
    a.expect_silence().await;
    b2.expect_silence().await;
    // ... and his remaining tab still takes part.
    b2.publish(json!("still here")).await;
    assert_eq!(a.recv_type("message").await["from"], bob);
    assert_eq!(b2.recv_type("message").await["data"], "still here");

    // Closing the last tab: bob leaves.
    b2.close().await;
    assert_eq!(a.recv().await, json!({"type": "leave", "user": bob}));
    a.expect_silence().await;

    // A newcomer does not see bob.
    let (c, welcome) = s.join_welcomed(room, &s.token("carol").await).await;
    let carol = json!({"id": welcome["user"]["id"], "name": "Carol"});
    assert_eq!(
        sorted_members(&welcome["members"]),
        sorted(&[&alice, &carol])
    );
    c.close().await;
    a.close().await;
}

#[tokio::test]
async fn bad_frames_get_an_error_for_the_sender_only() {
    let s = server();
    let room = "room-bad-frames";
    let (mut a, _) = s.join_welcomed(room, &s.token("alice").await).await;
    let (mut b, _) = s.join_welcomed(room, &s.token("bob").await).await;
    a.recv_type("join").await;

    let cases: &[(&str, &str)] = &[
        ("not json", "bad_frame"),
        ("", "bad_frame"),
        ("[1]", "bad_frame"),
        ("\"publish\"", "bad_frame"),
        ("{}", "bad_frame"),
        (r#"{"type":7,"data":1}"#, "bad_frame"),
        (r#"{"type":"publish"}"#, "bad_frame"),
        (r#"{"type":"publish","data":}"#, "bad_frame"),
        (r#"{"type":"dance"}"#, "unknown_type"),
        (r#"{"type":"PUBLISH","data":1}"#, "unknown_type"),
    ];
    for (i, &(frame, code)) in cases.iter().enumerate() {
        a.send_text(frame).await;
        let err = a.recv().await;
        assert_eq!(err["type"], "error", "{frame:?}: {err}");
        assert_eq!(err["code"], code, "{frame:?}: {err}");
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{frame:?}: {err}"
        );

        // The same connection still publishes; bob's next frame is that message.
        a.publish(json!({"after": i})).await;
        let mine = a.recv_type("message").await;
        assert_eq!(mine["data"], json!({"after": i}), "{frame:?}");
        let theirs = b.recv().await;
        assert_eq!(theirs["type"], "message", "{frame:?}: bob got {theirs}");
        assert_eq!(theirs["data"], json!({"after": i}), "{frame:?}");
        assert_eq!(theirs["seq"], mine["seq"]);
    }
    b.expect_silence().await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn frame_of_exactly_the_limit_is_delivered() {
    let s = server();
    let room = "room-limit-exact";
    let (mut a, _) = s.join_welcomed(room, &s.token("alice").await).await;
    let (mut b, _) = s.join_welcomed(room, &s.token("bob").await).await;
    a.recv_type("join").await;

    let frame = publish_frame_of_len(MAX_FRAME_BYTES);
    a.send_text(&frame).await;
    let want = json!("x".repeat(MAX_FRAME_BYTES - r#"{"type":"publish","data":""}"#.len()));
    assert_eq!(a.recv_type("message").await["data"], want);
    assert_eq!(b.recv_type("message").await["data"], want);
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn oversize_frame_closes_only_the_sender_with_1009() {
    let s = server();
    let room = "room-limit-over";
    let alice_token = s.token("alice").await;
    let alice = json!({"id": sub_of(&alice_token), "name": "Alice"});
    let (mut a, _) = s.join_welcomed(room, &alice_token).await;
    let (mut b, _) = s.join_welcomed(room, &s.token("bob").await).await;
    a.recv_type("join").await;

    a.send_text(&publish_frame_of_len(MAX_FRAME_BYTES + 1))
        .await;
    assert_eq!(a.expect_close().await, Some(1009), "close code for too big");

    // Bob never sees the oversize payload; he sees alice leave, and carries on.
    assert_eq!(b.recv().await, json!({"type": "leave", "user": alice}));
    b.publish(json!("after the oversize frame")).await;
    let m = b.recv_type("message").await;
    assert_eq!(m["data"], "after the oversize frame");
    assert_eq!(m["seq"], 1, "the oversize frame was not sequenced");
    b.expect_silence().await;
    b.close().await;
}

#[tokio::test]
async fn binary_frame_closes_the_sender_with_1003() {
    let s = server();
    let room = "room-binary";
    let alice_token = s.token("alice").await;
    let alice = json!({"id": sub_of(&alice_token), "name": "Alice"});
    let (mut a, _) = s.join_welcomed(room, &alice_token).await;
    let (mut b, _) = s.join_welcomed(room, &s.token("bob").await).await;
    a.recv_type("join").await;

    let publish = br#"{"type":"publish","data":"binary"}"#.to_vec();
    a.ws.send(Message::binary(publish)).await.unwrap();
    assert_eq!(a.expect_close().await, Some(1003), "close code for binary");

    assert_eq!(b.recv().await, json!({"type": "leave", "user": alice}));
    b.publish(json!("still open")).await;
    let m = b.recv_type("message").await;
    assert_eq!(m["data"], "still open");
    assert_eq!(m["seq"], 1, "the binary frame was not sequenced");
    b.close().await;
}
