//! Protocol v2 end to end (docs/protocol.md §4): the `roomgate.v2` subprotocol, arrays
//! both ways, `presence`, `ref`, and v1 and v2 sockets in one room seeing one order.
//! Coalescing itself (a busy room's window, eviction with a flush pending, `FLUSH_MS=0`)
//! is in `tests/coalescing.rs`.
//!
//! Run: `cargo test --test v2` (from the repository root; builds the Worker first if
//! `src/` changed, and starts its own runtime).

use roomgate_harness::runtime::{server, JWT_SECRET};
use roomgate_harness::tokens::{claims, mint, token_for, with};
use roomgate_harness::ws::Client;

use serde_json::{json, Value};

/// An own token for `sub` with `rooms` as its claim.
fn token_with_rooms(sub: &str, rooms: Value) -> String {
    mint(
        JWT_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &with(claims(sub, &format!("N {sub}")), json!({"rooms": rooms})),
    )
}

/// The next frame of `c` that is not `presence`, `join` or `leave`, asserting its type.
async fn next_of(c: &mut Client, kind: &str) -> Value {
    let v = c.recv_skipping_presence().await;
    assert_eq!(v["type"], kind, "unexpected frame: {v}");
    v
}

#[tokio::test]
async fn v2_is_chosen_by_subprotocol_and_every_frame_comes_in_an_array() {
    let s = server();
    let mut a = s.join_v2("v2-basic", &token_for("v2b-a", "A")).await;
    assert_eq!(a.protocol.as_deref(), Some("roomgate.v2"));
    let welcome = a.recv_type("welcome").await;
    assert_eq!(welcome["members"], json!([{"id": "v2b-a", "name": "A"}]));
    assert!(a.texts[0].is_array(), "welcome in an array: {:?}", a.texts);

    // A single frame object is still a frame; a quiet room sends at once.
    a.send_json(json!({"type": "publish", "data": "hi", "ref": "p1"}))
        .await;
    let echo = a.recv_type("message").await;
    assert_eq!((&echo["data"], &echo["ref"]), (&json!("hi"), &json!("p1")));
    assert_eq!(echo["seq"], welcome["last_seq"].as_u64().unwrap() + 1);

    // The exact ping is the runtime's: a bare pong. Any other spelling is the room's.
    a.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(a.recv().await, json!({"type": "pong"}));
    assert!(!a.texts.last().unwrap().is_array());
    a.send_text(r#"{"type": "ping"}"#).await;
    assert_eq!(a.recv().await, json!({"type": "pong"}));
    assert_eq!(a.texts.last().unwrap(), &json!([{"type": "pong"}]));
    a.close().await;
}

#[tokio::test]
async fn v1_and_v2_sockets_share_a_room_and_its_one_order() {
    let s = server();
    let room = "v2-mixed";
    let (mut one, _) = s.join_welcomed(room, &token_for("v2m-one", "One")).await;
    assert_eq!(one.protocol.as_deref(), Some("roomgate.v1"));
    let (mut two, welcome) = s.join_v2_welcomed(room, &token_for("v2m-two", "Two")).await;
    assert_eq!(welcome["members"].as_array().unwrap().len(), 2);
    // The v1 socket hears of the v2 one the v1 way.
    assert_eq!(one.recv_type("join").await["user"]["id"], "v2m-two");

    for i in 0..10 {
        if i % 2 == 0 {
            one.publish(json!(i)).await;
        } else {
            two.send_json(json!({"type": "publish", "data": i, "ref": format!("r{i}")}))
                .await;
        }
    }
    let mut seen_one = Vec::new();
    let mut seen_two = Vec::new();
    for _ in 0..10 {
        seen_one.push(next_of(&mut one, "message").await);
        seen_two.push(next_of(&mut two, "message").await);
    }
    let seqs = |v: &[Value]| {
        v.iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let first = seqs(&seen_one)[0];
    assert_eq!(seqs(&seen_one), (first..first + 10).collect::<Vec<_>>());
    assert_eq!(
        seqs(&seen_one),
        seqs(&seen_two),
        "one order for both protocols"
    );
    for (v1, v2) in seen_one.iter().zip(&seen_two) {
        assert_eq!(v1.get("ref"), None, "v1 never gets a ref: {v1}");
        let mut without_ref = v2.clone();
        let r = without_ref.as_object_mut().unwrap().remove("ref");
        assert_eq!(&without_ref, v1, "the same message for both");
        // Only the v2 sender's own messages carry its refs.
        let own = v2["from"]["id"] == "v2m-two";
        assert_eq!(r.is_some(), own, "{v2}");
        if own {
            assert_eq!(r.unwrap(), format!("r{}", v2["data"]));
        }
    }
    // v1 got one frame per message.
    assert!(one.texts.iter().all(|t| t.is_object()));

    // Leaving: `leave` to the v1 socket, `presence` to the v2 one.
    one.close().await;
    let p = two.recv_type("presence").await;
    assert_eq!(
        p,
        json!({"type": "presence", "joined": [], "left": [{"id": "v2m-one", "name": "One"}]})
    );
    let (mut three, _) = s
        .join_welcomed(room, &token_for("v2m-three", "Three"))
        .await;
    let p = two.recv_type("presence").await;
    assert_eq!(p["joined"], json!([{"id": "v2m-three", "name": "Three"}]));
    assert_eq!(p["left"], json!([]));
    two.close().await;
    assert_eq!(three.recv_type("leave").await["user"]["id"], "v2m-two");
    three.close().await;
}

#[tokio::test]
async fn an_array_of_frames_is_handled_frame_by_frame_with_refs_on_every_answer() {
    let s = server();
    let room = "v2-batch";
    let (mut a, welcome) = s.join_v2_welcomed(room, &token_for("v2a-a", "A")).await;
    let (mut b, _) = s.join_v2_welcomed(room, &token_for("v2a-b", "B")).await;
    let last = welcome["last_seq"].as_u64().unwrap();
    a.send_json(json!([
        {"type": "publish", "data": {"n": 1}, "ref": "one"},
        {"type": "publish", "ref": "no-data"},
        {"type": "publish", "data": {"n": 2}, "ref": 7},
        "not a frame",
        {"type": "nope", "ref": "what"},
        {"type": "history", "limit": 1, "ref": "h"},
        {"type": "publish", "data": {"n": 3}, "ref": "three"},
    ]))
    .await;
    // The answers for A alone come together, in order, at once.
    let mut answers = Vec::new();
    let mut echoes = Vec::new();
    while answers.len() < 5 || echoes.len() < 2 {
        let v = a.recv_skipping_presence().await;
        match v["type"].as_str() {
            Some("message") => echoes.push(v),
            _ => answers.push(v),
        }
    }
    let brief: Vec<(Value, Value)> = answers
        .iter()
        .map(|v| (v["code"].clone(), v["ref"].clone()))
        .collect();
    assert_eq!(
        brief,
        [
            (json!("bad_frame"), json!("no-data")),
            (json!("bad_frame"), Value::Null),
            (json!("bad_frame"), Value::Null),
            (json!("unknown_type"), json!("what")),
            (Value::Null, json!("h")),
        ],
        "{answers:?}"
    );
    assert_eq!(answers[4]["type"], "history");
    let echoed: Vec<(Value, Value, Value)> = echoes
        .iter()
        .map(|m| (m["seq"].clone(), m["data"].clone(), m["ref"].clone()))
        .collect();
    assert_eq!(
        echoed,
        [
            (json!(last + 1), json!({"n": 1}), json!("one")),
            (json!(last + 2), json!({"n": 3}), json!("three")),
        ],
        "a publish with a bad ref is not published"
    );
    // B gets the same two messages, without refs, in one array.
    let m1 = next_of(&mut b, "message").await;
    let m2 = next_of(&mut b, "message").await;
    assert_eq!((m1.get("ref"), m2.get("ref")), (None, None));
    assert_eq!((&m1["seq"], &m2["seq"]), (&echoed[0].0, &echoed[1].0));
    assert_eq!(b.last_text_len(), 2, "{:?}", b.texts.last());
    b.expect_silence().await;

    // An empty array is one bad frame.
    a.send_text("[]").await;
    assert_eq!(a.recv_type("error").await["code"], "bad_frame");
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn refused_publishes_carry_their_refs() {
    let s = server();
    let room = "v2-refused";
    let reader = token_with_rooms("v2r-reader", json!({room: ["subscribe", "presence"]}));
    let (mut r, _) = s.join_v2_welcomed(room, &reader).await;
    r.send_json(json!({"type": "publish", "data": 1, "ref": "nope"}))
        .await;
    let e = r.recv_type("error").await;
    assert_eq!(
        (&e["code"], &e["ref"]),
        (&json!("forbidden"), &json!("nope"))
    );

    // Each element costs a token: past the burst (40), each gets `rate_limited`.
    let (mut w, _) = s
        .join_v2_welcomed(room, &token_for("v2r-writer", "W"))
        .await;
    let batch: Vec<Value> = (0..45)
        .map(|i| json!({"type": "publish", "data": i, "ref": format!("w{i}")}))
        .collect();
    w.send_json(Value::Array(batch)).await;
    let mut limited = Vec::new();
    let mut published = Vec::new();
    while limited.len() + published.len() < 45 {
        let v = w.recv_skipping_presence().await;
        match v["type"].as_str() {
            Some("message") => published.push(v["ref"].as_str().unwrap().to_owned()),
            Some("error") => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                limited.push(v["ref"].as_str().unwrap().to_owned());
            }
            other => panic!("unexpected {other:?}: {v}"),
        }
    }
    let want: Vec<String> = (0..45).map(|i| format!("w{i}")).collect();
    assert_eq!(published, want[..40]);
    assert_eq!(limited, want[40..]);
    // The reader, who may not publish, still got all forty.
    for i in 0..40 {
        assert_eq!(next_of(&mut r, "message").await["data"], i);
    }
    r.close().await;
    w.close().await;
}

#[tokio::test]
async fn a_v2_resume_replays_in_arrays() {
    let s = server();
    let room = "v2-resume";
    let (mut a, welcome) = s.join_v2_welcomed(room, &token_for("v2s-a", "A")).await;
    let since = welcome["last_seq"].as_u64().unwrap();
    let batch: Vec<Value> = (0..5)
        .map(|i| json!({"type": "publish", "data": i}))
        .collect();
    a.send_json(Value::Array(batch)).await;
    for _ in 0..5 {
        next_of(&mut a, "message").await;
    }
    let t = token_for("v2s-b", "B");
    let mut b = s
        .connect(
            &format!("/ws/{room}?since={since}"),
            roomgate_harness::ws::Auth::SubprotocolV2(&t),
        )
        .await
        .unwrap();
    let w = b.recv_type("welcome").await;
    assert_eq!(w["last_seq"], since + 5);
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(next_of(&mut b, "message").await["data"].clone());
    }
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert_eq!(
        b.texts.len(),
        1,
        "welcome and replay in one array: {:?}",
        b.texts
    );
    a.close().await;
    b.close().await;
}
