//! Coalescing end to end (docs/protocol.md §4.4): a busy room gathers what it sends for
//! its window and flushes it as one array per v2 socket, while v1 sockets get the same
//! frames one by one; nothing is lost, duplicated or reordered; a room with a flush
//! pending still hibernates; `FLUSH_MS=0` sends everything at once.
//!
//! The window is 16 ms: a burst of frames sent back to back over loopback reaches the
//! room well within it, so the batching asserted here does not depend on timing
//! beyond that.
//!
//! Run: `cargo test --test coalescing` (from the repository root; builds the Worker
//! first if `src/` changed, and starts its own runtimes).

use roomgate_harness::admin::make_api_key;
use roomgate_harness::runtime::{server, Server, EVICTION_IDLE};
use roomgate_harness::tokens::token_for;
use roomgate_harness::ws::Client;

use serde_json::{json, Value};

const BURST: usize = 30;

/// `sender` publishes `BURST` messages, one text frame each, back to back.
async fn burst(sender: &mut Client, tag: &str) {
    for i in 0..BURST {
        sender
            .send_json(json!({"type": "publish", "data": format!("{tag}{i}")}))
            .await;
    }
}

/// The next `n` messages of `c` (presence skipped), checking that their `seq`s follow
/// on from each other.
async fn messages(c: &mut Client, n: usize) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    while out.len() < n {
        let v = c.recv_skipping_presence().await;
        assert_eq!(v["type"], "message", "{v}");
        if let Some(prev) = out.last() {
            assert_eq!(
                v["seq"],
                prev["seq"].as_u64().unwrap() + 1,
                "in order, once"
            );
        }
        out.push(v);
    }
    out
}

fn data(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["data"].as_str().unwrap().to_owned())
        .collect()
}

/// How many text frames of `c` carried messages.
fn message_texts(c: &Client) -> usize {
    c.texts
        .iter()
        .filter(|t| match t {
            Value::Array(items) => items.iter().any(|f| f["type"] == "message"),
            f => f["type"] == "message",
        })
        .count()
}

#[tokio::test]
async fn a_busy_room_sends_each_v2_socket_arrays_and_each_v1_socket_single_frames() {
    let s = server();
    let room = "co-busy";
    let (mut sender, _) = s.join_v2_welcomed(room, &token_for("co-s", "S")).await;
    let (mut two, _) = s.join_v2_welcomed(room, &token_for("co-two", "Two")).await;
    let (mut one, _) = s.join_welcomed(room, &token_for("co-one", "One")).await;
    burst(&mut sender, "m").await;
    let want: Vec<String> = (0..BURST).map(|i| format!("m{i}")).collect();
    let got_two = messages(&mut two, BURST).await;
    let got_one = messages(&mut one, BURST).await;
    let got_sender = messages(&mut sender, BURST).await;
    assert_eq!(data(&got_two), want);
    assert_eq!(data(&got_one), want);
    assert_eq!(
        got_sender, got_two,
        "the sender's echoes are the same messages"
    );
    assert_eq!(got_one, got_two);
    let arrays = message_texts(&two);
    eprintln!("{BURST} messages reached a v2 socket in {arrays} arrays");
    assert!(arrays < BURST / 2, "a busy room batches: {arrays} arrays");
    assert_eq!(message_texts(&one), BURST, "v1: one frame per message");
    for c in [&mut two, &mut one, &mut sender] {
        c.expect_silence().await;
    }

    // Stored before it was seen: history has every one, as it was sent.
    sender
        .send_json(json!({"type": "history", "limit": 30}))
        .await;
    let h = sender.recv_type("history").await;
    assert_eq!(h["messages"], Value::Array(got_one));
    for c in [sender, two, one] {
        c.close().await;
    }
}

#[tokio::test]
async fn joins_in_one_window_reach_v2_sockets_as_one_net_change_each() {
    let s = server();
    let room = "co-joins";
    let (mut watcher, _) = s.join_v2_welcomed(room, &token_for("co-w", "W")).await;
    let (mut old, _) = s.join_welcomed(room, &token_for("co-old", "Old")).await;
    assert_eq!(
        watcher.recv_type("presence").await["joined"][0]["id"],
        "co-old"
    );
    let tokens: Vec<String> = (0..10)
        .map(|i| token_for(&format!("co-j{i}"), "J"))
        .collect();
    let joined: Vec<Client> =
        futures_util::future::join_all(tokens.iter().map(|t| s.join_v2(room, t))).await;
    let mut members: Vec<String> = Vec::new();
    while members.len() < 10 {
        let p = watcher.recv_type("presence").await;
        assert_eq!(p["left"], json!([]));
        for m in p["joined"].as_array().unwrap() {
            members.push(m["id"].as_str().unwrap().to_owned());
        }
    }
    members.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("co-j{i}")).collect();
    want.sort();
    assert_eq!(members, want, "each once");
    eprintln!(
        "10 joins reached a v2 socket in {} presence frames",
        watcher.texts.len() - 2
    );
    // The v1 socket got one `join` each.
    for _ in 0..10 {
        assert_eq!(old.recv_type("join").await["type"], "join");
    }
    for c in joined {
        drop(c);
    }
    let mut gone = 0;
    while gone < 10 {
        let p = watcher.recv_type("presence").await;
        gone += p["left"].as_array().unwrap().len();
        assert_eq!(p["joined"], json!([]));
    }
    watcher.expect_silence().await;
    watcher.close().await;
    old.close().await;
}

#[tokio::test]
async fn a_room_with_a_flush_pending_still_hibernates_and_loses_nothing() {
    let s = server();
    let room = "co-evict";
    let (mut sender, _) = s.join_v2_welcomed(room, &token_for("co-e", "E")).await;
    let (mut reader, _) = s.join_v2_welcomed(room, &token_for("co-r", "R")).await;
    let before = s.room_instance(room).await;
    // The burst ends with a flush waiting for its window.
    burst(&mut sender, "e").await;
    tokio::time::sleep(EVICTION_IDLE).await;
    let after = s.room_instance(room).await;
    assert_ne!(before, after, "the room was not evicted while idle");
    let got = messages(&mut reader, BURST).await;
    assert_eq!(
        data(&got),
        (0..BURST).map(|i| format!("e{i}")).collect::<Vec<_>>()
    );
    // And the room carries on from storage.
    sender
        .send_json(json!({"type": "publish", "data": "after"}))
        .await;
    let next = messages(&mut reader, 1).await;
    assert_eq!(next[0]["seq"], got[BURST - 1]["seq"].as_u64().unwrap() + 1);
    sender.close().await;
    reader.close().await;
}

#[tokio::test]
async fn a_server_publish_goes_out_at_once_after_what_waited() {
    let s = server();
    let room = "co-api";
    let (_, key) = make_api_key(s, "co-api", &["publish"], &["co-api"]).await;
    let (mut sender, _) = s.join_v2_welcomed(room, &token_for("co-a", "A")).await;
    let (mut reader, _) = s.join_welcomed(room, &token_for("co-b", "B")).await;
    burst(&mut sender, "a").await;
    let r = s
        .http()
        .post(format!("{}/api/v1/rooms/{room}/messages", s.url))
        .bearer_auth(&key)
        .json(&json!({"data": "from the backend"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let published: Value = r.json().await.unwrap();
    let got = messages(&mut reader, BURST + 1).await;
    // Whatever of the burst had reached the room came before it, in the one order.
    let last = got.last().unwrap();
    let at = got
        .iter()
        .position(|m| m["data"] == "from the backend")
        .unwrap();
    assert_eq!(got[at]["seq"], published["seq"], "{published}");
    assert_eq!(last["seq"], got[0]["seq"].as_u64().unwrap() + BURST as u64);
    // Its answer named a stored `seq`: history has it.
    reader
        .send_json(json!({"type": "history", "before": published["seq"].as_u64().unwrap() + 1, "limit": 1}))
        .await;
    let h = reader.recv_type("history").await;
    assert_eq!(h["messages"][0]["data"], "from the backend");
    sender.close().await;
    reader.close().await;
}

#[tokio::test]
async fn flush_ms_zero_sends_every_message_at_once() {
    let s = Server::start(&[("FLUSH_MS", "0")]);
    let room = "co-off";
    let (mut sender, _) = s.join_v2_welcomed(room, &token_for("co-0", "Z")).await;
    let (mut reader, _) = s.join_v2_welcomed(room, &token_for("co-1", "Y")).await;
    burst(&mut sender, "z").await;
    let got = messages(&mut reader, BURST).await;
    assert_eq!(data(&got).len(), BURST);
    assert_eq!(message_texts(&reader), BURST, "one array per message");
    sender.close().await;
    reader.close().await;
}
