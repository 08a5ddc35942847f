//! Presence per room, end to end: `PRESENCE_ROOMS` chooses the rooms that tell their
//! members about each other (`members` in `welcome`, `join`, `leave`). The runtime here
//! announces presence in `chat-*` only, so every other room is silent: its `welcome` has
//! no `members`, nobody hears anyone join or leave, and messages flow exactly as in any
//! room. A silent room stays silent after its Durable Object was evicted, when it learns
//! its name from storage instead of from a connect (see `tests/hibernation.rs` for how
//! eviction is shown).
//!
//! Run: `cargo test --test presence` (from the repository root; builds the Worker first if
//! `src/` changed, and starts its own runtime).
use roomgate_harness::runtime::{Server, EVICTION_IDLE};
use roomgate_harness::tokens::token_for;

use std::sync::OnceLock;

use serde_json::json;

/// A runtime whose `chat-*` rooms announce presence, and no others.
fn chat_presence_only() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(&[("PRESENCE_ROOMS", r#"["chat-*"]"#)]))
}

#[tokio::test]
async fn a_room_outside_presence_rooms_lists_and_announces_nobody() {
    let s = chat_presence_only();
    let room = "feed-1";
    let (mut a, welcome) = s.join_welcomed(room, &token_for("feed-a", "A")).await;
    assert_eq!(welcome.get("members"), None, "{welcome}");
    assert_eq!(welcome["room"], room);
    assert_eq!(welcome["user"], json!({"id": "feed-a", "name": "A"}));

    let (mut b, welcome) = s.join_welcomed(room, &token_for("feed-b", "B")).await;
    assert_eq!(welcome.get("members"), None, "{welcome}");
    a.expect_silence().await;

    // Messages are unaffected: both get it, with the same seq.
    b.publish(json!("tick")).await;
    let to_a = a.recv_type("message").await;
    let to_b = b.recv_type("message").await;
    assert_eq!(to_a, to_b);
    assert_eq!(to_a["data"], "tick");
    assert_eq!(to_a["from"], json!({"id": "feed-b", "name": "B"}));

    b.close().await;
    a.expect_silence().await;
    a.close().await;
}

#[tokio::test]
async fn a_room_matching_presence_rooms_announces_as_usual() {
    let s = chat_presence_only();
    let room = "chat-1";
    let alice = json!({"id": "chat-a", "name": "A"});
    let bob = json!({"id": "chat-b", "name": "B"});
    let (mut a, welcome) = s.join_welcomed(room, &token_for("chat-a", "A")).await;
    assert_eq!(welcome["members"], json!([alice]));

    let (b, welcome) = s.join_welcomed(room, &token_for("chat-b", "B")).await;
    assert_eq!(welcome["members"], json!([alice, bob]));
    assert_eq!(a.recv().await, json!({"type": "join", "user": bob}));

    b.close().await;
    assert_eq!(a.recv().await, json!({"type": "leave", "user": bob}));
    a.close().await;
}

#[tokio::test]
async fn a_silent_room_stays_silent_after_eviction() {
    let s = chat_presence_only();
    let room = "feed-evicted";
    let (mut a, _) = s.join_welcomed(room, &token_for("evict-a", "A")).await;
    let (b, _) = s.join_welcomed(room, &token_for("evict-b", "B")).await;
    a.expect_silence().await;

    let before = s.room_instance(room).await;
    tokio::time::sleep(EVICTION_IDLE).await;
    assert_ne!(
        s.room_instance(room).await,
        before,
        "the room was not evicted"
    );

    // The new instance's first socket event is this close: no `leave` for A.
    b.close().await;
    a.expect_silence().await;
    // And a newcomer's welcome still lists nobody.
    let (c, welcome) = s.join_welcomed(room, &token_for("evict-c", "C")).await;
    assert_eq!(welcome.get("members"), None, "{welcome}");
    a.expect_silence().await;
    c.close().await;
    a.close().await;
}
