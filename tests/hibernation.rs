//! Hibernation, end to end: a room behaves identically after its Durable Object has had
//! every chance to be evicted from memory, because everything a socket needs lives in its
//! attachment (identity, expiry, departure) or in storage (`seq`, history).
//!
//! **How eviction is shown.** Neither Miniflare nor workerd offers a way to force an
//! eviction from outside. workerd evicts a Durable Object after 10 s without events, and
//! one whose sockets are all hibernatable is then hibernated (workerd PR #1138, "Evict
//! actors after 10 sec inactivity"). So the test goes quiet for `EVICTION_IDLE` (longer
//! than that), and observes the eviction through the admin stats' `instance` (random per
//! in-memory instance, `Server::room_instance`): a different instance answers after the
//! idle period. Then it
//! checks that presence, ordering, keep-alive and history carry on from the sockets'
//! attachments and storage alone. What survives a restart of the
//! whole runtime (`seq` and history; every socket is dropped) is tested in
//! `tests/history.rs` (`Server::restart`).
//!
//! Run: `cargo test --test hibernation` (from the repository root; builds the Worker first
//! if `src/` changed, and starts its own runtime).
use roomgate_harness::runtime::{server, EVICTION_IDLE};
use roomgate_harness::tokens::token_for;

use serde_json::json;

#[tokio::test]
async fn room_carries_on_after_an_idle_period_long_enough_to_evict_it() {
    let s = server();
    let room = "hib";
    let (mut a, _) = s.join_welcomed(room, &token_for("hib-a", "A")).await;
    let (mut b1, _) = s.join_welcomed(room, &token_for("hib-b", "B")).await;
    let (b2, _) = s.join_welcomed(room, &token_for("hib-b", "B")).await;
    assert_eq!(a.recv_type("join").await["user"]["id"], "hib-b");
    a.publish(json!("before")).await;
    let first = a.recv_type("message").await;
    assert_eq!(b1.recv_type("message").await, first);

    // The room reports which in-memory instance answered: after the idle period a new
    // one answers, so the object really was evicted while its sockets stayed open.
    let before = s.room_instance(room).await;
    tokio::time::sleep(EVICTION_IDLE).await;
    let after = s.room_instance(room).await;
    assert_ne!(before, after, "the room was not evicted while idle");

    // Keep-alive first: the exact ping is answered by the runtime, asleep or not.
    a.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(a.recv().await, json!({"type": "pong"}));

    // Ordering continues from storage.
    b1.publish(json!("after")).await;
    let second = b1.recv_type("message").await;
    assert_eq!(second["seq"], first["seq"].as_u64().unwrap() + 1);
    assert_eq!(second["from"], json!({"id": "hib-b", "name": "B"}));
    assert_eq!(a.recv_type("message").await, second);

    // Presence comes from the attachments: a newcomer sees A and B (once), in order.
    let (c, welcome) = s.join_welcomed(room, &token_for("hib-c", "C")).await;
    assert_eq!(
        welcome["members"],
        json!([{"id": "hib-a", "name": "A"}, {"id": "hib-b", "name": "B"},
               {"id": "hib-c", "name": "C"}])
    );
    assert_eq!(welcome["last_seq"], second["seq"]);
    assert_eq!(a.recv_type("join").await["user"]["id"], "hib-c");

    tokio::time::sleep(EVICTION_IDLE).await;

    // One of B's two sockets goes: no leave. The other goes: one leave.
    b2.close().await;
    a.expect_silence().await;
    drop(b1);
    assert_eq!(a.recv_type("leave").await["user"]["id"], "hib-b");
    c.close().await;
    assert_eq!(a.recv_type("leave").await["user"]["id"], "hib-c");
    a.expect_silence().await;

    // History is in storage.
    a.send_json(json!({"type": "history"})).await;
    let h = a.recv_type("history").await;
    assert_eq!(h["messages"], json!([first, second]));
    a.close().await;
}
