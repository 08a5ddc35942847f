//! Smoke: the runtime starts, a user logs in and exchanges a message with themself.
use roomgate_harness::runtime::server;
use serde_json::json;

#[tokio::test]
async fn login_then_publish_round_trip() {
    let s = server();
    let token = s.token("alice").await;
    let (mut c, welcome) = s.join_welcomed("smoke", &token).await;
    assert_eq!(c.protocol.as_deref(), Some("roomgate.v1"));
    assert_eq!(welcome["room"], "smoke");
    c.publish(json!({"text": "hi"})).await;
    let m = c.recv_type("message").await;
    assert_eq!(m["seq"], 1);
    assert_eq!(m["data"], json!({"text": "hi"}));
    assert_eq!(m["from"]["name"], "Alice");
}
