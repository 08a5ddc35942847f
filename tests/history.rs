//! Rooms that lose nothing, end to end: the kept history and what clients see of it.
//!
//! Covers `welcome.last_seq`; resume with `?since=<seq>` after a forced disconnect
//! (exactly the missed messages, in order, then live ones — no gap, no duplicate);
//! `since` beyond `last_seq` (nothing replayed) and malformed (400 `bad_request`); the
//! `gap` frame when the missed messages outran `HISTORY_LIMIT` (a second runtime started
//! with `HISTORY_LIMIT=5`); paging back with `history` frames and their `bad_frame`
//! refusals; `GET /admin/rooms/{room}` stats; and that `seq` and the history survive a
//! restart of the runtime on the same state (`Server::restart`).
//!
//! Run: `cargo test --test history` (from the repository root; builds the Worker first if
//! `src/` changed, and starts its own runtimes).
use roomgate_harness::runtime::{server, Server, ADMIN_TOKEN};
use roomgate_harness::tokens::token_for;
use roomgate_harness::ws::{Auth, Client};

use std::sync::OnceLock;

use serde_json::{json, Value};

/// The small history of [`small_server`].
const SMALL_LIMIT: u64 = 5;

/// A runtime whose rooms keep only [`SMALL_LIMIT`] messages.
fn small_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(&[("HISTORY_LIMIT", "5")]))
}

/// Publishes each of `data` from `c` and returns the broadcasts as `c` received them.
async fn publish_all(c: &mut Client, data: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for d in data {
        c.publish(d.clone()).await;
        let m = c.recv_message().await;
        assert_eq!(&m["data"], d);
        out.push(m);
    }
    out
}

fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect()
}

/// Opens `/ws/{room}?since=<since>` and consumes the `welcome`.
async fn resume(s: &Server, room: &str, token: &str, since: &str) -> (Client, Value) {
    let mut c = s
        .connect(
            &format!("/ws/{room}?since={since}"),
            Auth::Subprotocol(token),
        )
        .await
        .unwrap_or_else(|f| panic!("resume refused: {} {}", f.status, f.body));
    let welcome = c.recv_type("welcome").await;
    (c, welcome)
}

/// Sends a `history` request and returns the answer.
async fn page(c: &mut Client, request: Value) -> Value {
    c.send_json(request).await;
    c.recv_type("history").await
}

#[tokio::test]
async fn welcome_carries_the_latest_seq() {
    let s = server();
    let room = "hist-welcome";
    let (mut a, welcome) = s.join_welcomed(room, &token_for("hw-a", "A")).await;
    assert_eq!(welcome["last_seq"], 0, "a room without messages");
    let sent = publish_all(&mut a, &[json!(1), json!(2), json!(3)]).await;
    assert_eq!(seqs(&sent), [1, 2, 3]);
    let (b, welcome) = s.join_welcomed(room, &token_for("hw-b", "B")).await;
    assert_eq!(welcome["last_seq"], 3);
    b.close().await;
    a.close().await;
}

#[tokio::test]
async fn resume_replays_exactly_the_missed_messages_then_live_ones() {
    let s = server();
    let room = "hist-resume";
    let b_token = token_for("hr-b", "B");
    let (mut a, _) = s.join_welcomed(room, &token_for("hr-a", "A")).await;
    let (mut b, _) = s.join_welcomed(room, &b_token).await;

    a.publish(json!("before")).await;
    let seen = b.recv_message().await;
    a.recv_message().await;
    let since = seen["seq"].as_u64().unwrap();

    // Forced disconnect: the TCP connection goes away without a close frame.
    drop(b);
    let missed = publish_all(&mut a, &[json!("m1"), json!({"n": 2}), json!([3])]).await;

    let (mut b, welcome) = resume(s, room, &b_token, &since.to_string()).await;
    assert_eq!(welcome["last_seq"], since + 3);
    for want in &missed {
        assert_eq!(&b.recv().await, want, "replayed exactly as broadcast");
    }
    a.publish(json!("live")).await;
    let live = b.recv_type("message").await;
    assert_eq!(
        (live["seq"].as_u64(), &live["data"]),
        (Some(since + 4), &json!("live"))
    );
    b.expect_silence().await;

    // Up to date, or ahead of the room: nothing is replayed.
    for ahead in [since + 4, since + 1000] {
        let (mut c, welcome) = resume(s, room, &token_for("hr-c", "C"), &ahead.to_string()).await;
        assert_eq!(welcome["last_seq"], since + 4);
        c.expect_silence().await;
        c.close().await;
    }
    // since=0: everything kept, from the first message.
    let (mut d, _) = resume(s, room, &token_for("hr-d", "D"), "0").await;
    let all: Vec<Value> = [
        d.recv_type("message").await,
        d.recv_type("message").await,
        d.recv_type("message").await,
        d.recv_type("message").await,
        d.recv_type("message").await,
    ]
    .into();
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
    assert_eq!(all[0]["data"], "before");
    d.expect_silence().await;

    for c in [a, b, d] {
        c.close().await;
    }
}

#[tokio::test]
async fn malformed_since_is_refused() {
    let s = server();
    let token = token_for("hs-a", "A");
    for bad in ["abc", "-1", "1.5", "", "18446744073709551616"] {
        let refused = s
            .connect(
                &format!("/ws/hist-since?since={bad}"),
                Auth::Subprotocol(&token),
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("since={bad:?} was accepted"));
        refused.expect(400, "bad_request");
    }
}

#[tokio::test]
async fn gap_is_reported_when_history_was_outrun() {
    let s = small_server();
    let room = "hist-gap";
    let b_token = token_for("hg-b", "B");
    let (mut a, _) = s.join_welcomed(room, &token_for("hg-a", "A")).await;
    let data: Vec<Value> = (1..=8).map(|i| json!(i)).collect();
    let sent = publish_all(&mut a, &data).await;
    assert_eq!(seqs(&sent), (1..=8).collect::<Vec<_>>());

    // Missed 2..=8, but only the last 5 (4..=8) are kept.
    let (mut b, welcome) = resume(s, room, &b_token, "1").await;
    assert_eq!(welcome["last_seq"], 8);
    assert_eq!(b.recv().await, json!({"type": "gap", "from": 2, "to": 3}));
    for want in &sent[3..] {
        assert_eq!(&b.recv().await, want);
    }
    b.expect_silence().await;
    b.close().await;

    // Missed only kept messages: no gap.
    let (mut c, _) = resume(s, room, &b_token, "4").await;
    for want in &sent[4..] {
        assert_eq!(&c.recv().await, want);
    }
    c.expect_silence().await;
    c.close().await;

    let stats = s.room_stats(room, Some(ADMIN_TOKEN)).await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_eq!(stats.json["last_seq"], 8);
    assert_eq!(stats.json["history_kept"], SMALL_LIMIT);
    a.close().await;
}

#[tokio::test]
async fn history_pages_backwards_in_ascending_order() {
    let s = server();
    let room = "hist-page";
    let (mut a, _) = s.join_welcomed(room, &token_for("hp-a", "A")).await;
    let data: Vec<Value> = (1..=7).map(|i| json!({"i": i, "text": "é 🌟"})).collect();
    let sent = publish_all(&mut a, &data).await;

    let h = page(&mut a, json!({"type": "history", "before": 6, "limit": 3})).await;
    assert_eq!(h, json!({"type": "history", "messages": sent[2..5]}));
    let h = page(&mut a, json!({"type": "history", "limit": 2})).await;
    assert_eq!(
        h["messages"],
        json!(sent[5..7]),
        "no before: from the newest"
    );
    let h = page(&mut a, json!({"type": "history", "before": 3})).await;
    assert_eq!(h["messages"], json!(sent[0..2]), "default limit");
    let h = page(&mut a, json!({"type": "history", "before": 1})).await;
    assert_eq!(h["messages"], json!([]), "nothing before the first");

    for bad in [
        json!({"type": "history", "limit": 0}),
        json!({"type": "history", "limit": 101}),
        json!({"type": "history", "before": "6"}),
        json!({"type": "history", "before": -1}),
    ] {
        a.send_json(bad.clone()).await;
        let e = a.recv_type("error").await;
        assert_eq!(e["code"], "bad_frame", "{bad}");
    }
    a.expect_silence().await;
    a.close().await;
}

#[tokio::test]
async fn admin_sees_room_stats() {
    let s = server();
    let room = "hist-stats";
    let (mut a1, _) = s.join_welcomed(room, &token_for("ht-a", "A")).await;
    let (a2, _) = s.join_welcomed(room, &token_for("ht-a", "A")).await;
    let (b, _) = s.join_welcomed(room, &token_for("ht-b", "B")).await;
    publish_all(&mut a1, &[json!(1), json!(2)]).await;

    let mut stats = s.room_stats(room, Some(ADMIN_TOKEN)).await;
    let instance = stats.json.as_object_mut().unwrap().remove("instance");
    assert!(
        instance
            .as_ref()
            .and_then(|i| i.as_str())
            .is_some_and(|i| i.len() == 32),
        "instance id: {instance:?}"
    );
    assert_eq!(
        stats.json,
        json!({"connections": 3, "runtime_sockets": 3, "members": 2, "viewers": 0, "last_seq": 2, "history_kept": 2, "webhook_backlog": 0, "webhook_dropped": 0}),
        "{}",
        stats.text
    );
    let mut empty = s
        .room_stats("hist-stats-never-used", Some(ADMIN_TOKEN))
        .await;
    empty.json.as_object_mut().unwrap().remove("instance");
    assert_eq!(
        empty.json,
        json!({"connections": 0, "runtime_sockets": 0, "members": 0, "viewers": 0, "last_seq": 0, "history_kept": 0, "webhook_backlog": 0, "webhook_dropped": 0})
    );
    s.room_stats(room, None)
        .await
        .expect_error(401, "unauthorized", "no admin token");
    s.room_stats(room, Some("wrong"))
        .await
        .expect_error(401, "unauthorized", "wrong admin token");
    s.room_stats("bad%20name", Some(ADMIN_TOKEN))
        .await
        .expect_error(400, "invalid_room", "bad room name");

    for c in [a1, a2, b] {
        c.close().await;
    }
}

#[tokio::test]
async fn seq_and_history_survive_a_runtime_restart() {
    let s = Server::start(&[]);
    let room = "hist-restart";
    let token = token_for("hx-a", "A");
    let (mut a, _) = s.join_welcomed(room, &token).await;
    let before = publish_all(&mut a, &[json!("one"), json!("two"), json!("three")]).await;
    drop(a);

    let s = tokio::task::spawn_blocking(move || s.restart())
        .await
        .unwrap();
    let (mut a, welcome) = resume(&s, room, &token, "1").await;
    assert_eq!(welcome["last_seq"], 3);
    for want in &before[1..] {
        assert_eq!(&a.recv().await, want);
    }
    let after = publish_all(&mut a, &[json!("four")]).await;
    assert_eq!(seqs(&after), [4], "seq continues, never reused");
    let h = page(&mut a, json!({"type": "history"})).await;
    assert_eq!(seqs(h["messages"].as_array().unwrap()), [1, 2, 3, 4]);
    a.close().await;
}

#[tokio::test]
async fn seq_is_never_reused_when_history_limit_changes_between_deploys() {
    // Kept messages record the latest seq; with nothing kept a counter does. Switching
    // between the two across redeploys must carry on from the highest seq either way.
    let room = "hist-limit-switch";
    let token = token_for("hx-switch", "S");
    let mut s = Server::start(&[("HISTORY_LIMIT", "0")]);
    let mut expected_last = 0;
    for (limit, published) in [("0", 3), ("5", 2), ("0", 1), ("5", 1)] {
        if expected_last > 0 {
            s = tokio::task::spawn_blocking(move || s.restart_with(&[("HISTORY_LIMIT", limit)]))
                .await
                .unwrap();
        }
        let (mut a, welcome) = s.join_welcomed(room, &token).await;
        assert_eq!(welcome["last_seq"], expected_last, "limit {limit}");
        let msgs: Vec<Value> = (0..published).map(|i| json!(i)).collect();
        let got = publish_all(&mut a, &msgs).await;
        let want: Vec<u64> = (expected_last + 1..=expected_last + published).collect();
        assert_eq!(seqs(&got), want, "limit {limit}");
        expected_last += published;
        let kept = page(&mut a, json!({"type": "history"})).await;
        let kept = seqs(kept["messages"].as_array().unwrap());
        if limit == "0" {
            assert!(kept.is_empty(), "nothing kept at limit 0: {kept:?}");
        } else {
            assert_eq!(kept.last(), Some(&expected_last), "{kept:?}");
        }
        a.close().await;
    }
}
