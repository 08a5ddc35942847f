//! Keep-alive, end to end: `{"type":"ping"}` is answered with `{"type":"pong"}`.
//!
//! The exact text is answered by the runtime's WebSocket auto-response (set in the `Room`
//! constructor), without waking the Durable Object; other spellings of a ping reach the
//! room, which answers the same `pong`. Covers: repeated pings, the socket staying usable
//! in between (publish, presence), the pong arriving while other clients publish, and that
//! a ping is never broadcast.
//!
//! Run: `cargo test --test keepalive` (from the repository root; builds the Worker first
//! if `src/` changed, and starts its own runtime).
use roomgate_harness::runtime::server;
use roomgate_harness::tokens::token_for;
use roomgate_harness::ws::Client;

use serde_json::{json, Value};

const PING: &str = r#"{"type":"ping"}"#;

/// The next frame other than presence (`join` / `leave`).
async fn recv_skipping_presence(c: &mut Client) -> Value {
    loop {
        let v = c.recv().await;
        if v["type"] != "join" && v["type"] != "leave" {
            return v;
        }
    }
}

#[tokio::test]
async fn exact_ping_gets_pong_repeatedly_and_the_socket_stays_usable() {
    let s = server();
    let room = "ka-exact";
    let (mut a, _) = s.join_welcomed(room, &token_for("ka-a", "A")).await;
    let (mut b, _) = s.join_welcomed(room, &token_for("ka-b", "B")).await;
    a.recv_type("join").await;

    for round in 0..5 {
        for _ in 0..3 {
            a.send_text(PING).await;
            assert_eq!(a.recv().await, json!({"type": "pong"}), "round {round}");
        }
        a.publish(json!({"round": round})).await;
        let mine = a.recv_type("message").await;
        assert_eq!(mine["data"], json!({"round": round}));
        // The other member sees the message, and never a ping or pong.
        assert_eq!(b.recv_type("message").await, mine);
    }
    b.expect_silence().await;
    a.expect_silence().await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn other_spellings_of_ping_reach_the_room_and_get_pong() {
    let s = server();
    let room = "ka-spellings";
    let (mut a, _) = s.join_welcomed(room, &token_for("ka-s", "S")).await;
    for text in [
        r#"{"type": "ping"}"#,
        r#" {"type":"ping"}"#,
        r#"{"type":"ping","id":7}"#,
    ] {
        a.send_text(text).await;
        assert_eq!(a.recv().await, json!({"type": "pong"}), "{text}");
    }
    // Case matters, as for every type.
    a.send_text(r#"{"type":"PING"}"#).await;
    let e = a.recv_type("error").await;
    assert_eq!(e["code"], "unknown_type");
    a.publish(json!("still here")).await;
    assert_eq!(a.recv_type("message").await["data"], "still here");
    a.close().await;
}

#[tokio::test]
async fn pong_arrives_while_other_clients_are_busy() {
    let s = server();
    let room = "ka-busy";
    let (mut pinger, _) = s.join_welcomed(room, &token_for("ka-p", "P")).await;
    let mut talkers = Vec::new();
    for i in 0..4 {
        let (c, _) = s
            .join_welcomed(room, &token_for(&format!("ka-t{i}"), "T"))
            .await;
        talkers.push(c);
    }
    // Each talker publishes a burst, concurrently with the pings.
    const BURST: usize = 20;
    let publishers = talkers
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(async move {
                for n in 0..BURST {
                    c.publish(json!({"from": i, "n": n})).await;
                }
                c
            })
        })
        .collect::<Vec<_>>();

    let mut pongs = 0;
    let mut messages = 0;
    for _ in 0..10 {
        pinger.send_text(PING).await;
        loop {
            let v = recv_skipping_presence(&mut pinger).await;
            match v["type"].as_str() {
                Some("pong") => {
                    pongs += 1;
                    break;
                }
                Some("message") => messages += 1,
                _ => panic!("unexpected frame: {v}"),
            }
        }
    }
    assert_eq!(pongs, 10);
    // Everything published still arrives, in full.
    while messages < 4 * BURST {
        assert_eq!(recv_skipping_presence(&mut pinger).await["type"], "message");
        messages += 1;
    }
    for p in publishers {
        p.await.unwrap().close().await;
    }
    pinger.close().await;
}
