//! The browser client (`GET /`) in a real headless Chromium: two users log in through the
//! page, chat both ways, see each other as members, and a dropped connection comes back
//! by itself without showing anything twice or out of order.
//!
//! The browser side is `tests/browser/chat.mjs` (playwright-core driving Debian's
//! `/usr/bin/chromium`, both installed by `scripts/setup`); this test starts the runtime,
//! runs it, and checks the JSON summary it prints. Screenshot:
//! `tests/artifacts/browser-chat.png`. `tests/browser/cors.mjs`: an app served from another
//! origin, listed in `ALLOWED_ORIGINS` or not.

use roomgate_harness::runtime::{server, Server, ADMIN_TOKEN, USERS};
use serde_json::{json, Value};

/// Runs `tests/browser/<script>` with node: see [`roomgate_harness::node::run_script`].
fn run_script(script: &str, args: &[&str], envs: &[(&str, String)]) -> Value {
    roomgate_harness::node::run_script(&format!("tests/browser/{script}"), args, envs)
}

#[test]
fn two_users_chat_in_the_browser_and_a_dropped_socket_catches_up() {
    let s = server();
    let users: Vec<Value> = USERS[..2]
        .iter()
        .map(|(user, password, name)| json!([user, password, name]))
        .collect();
    let summary = run_script(
        "chat.mjs",
        &[&s.url],
        &[("ROOMGATE_USERS", Value::from(users).to_string())],
    );

    eprintln!("browser summary: {summary}");

    // Each sees both members.
    for user in ["alice", "bob"] {
        let names = summary["members"][user].as_array().unwrap();
        assert!(
            names
                .iter()
                .any(|n| n.as_str().unwrap().starts_with("Alice")),
            "{summary}"
        );
        assert!(
            names.iter().any(|n| n.as_str().unwrap().starts_with("Bob")),
            "{summary}"
        );
    }
    // Bob's page: each message once, by seq; the reconnect asked to resume after the last
    // one it had.
    let seqs: Vec<u64> = summary["bob_sees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let resume = &summary["resume"];
    assert_eq!(
        resume["since"],
        resume["last_seq_before_drop"].to_string().as_str()
    );
    assert_eq!(resume["server_supports_resume"], true, "{summary:#}");
    assert_eq!(summary["missed_on_bob"], json!([]), "{summary:#}");
    assert_eq!(seqs.len(), 6, "{summary:#}");
    assert!(std::path::Path::new(summary["screenshot"].as_str().unwrap()).exists());
}

/// How long Chromium takes to see a close the room starts: printed, not asserted (the
/// codes are). A close started outside a socket event (a kick, from the room's fetch) is
/// sent at once, but workerd closes the TCP connection only about ten seconds later, and
/// the browser fires `onclose` when it gives up waiting for that; one started inside a
/// socket event is complete at once (docs/protocol.md, "Closes").
#[test]
fn a_kick_reaches_the_browser_and_the_time_to_onclose_is_printed() {
    let s = server();
    let (user, password, _) = USERS[2];
    let summary = run_script(
        "closes.mjs",
        &[&s.url],
        &[
            ("ROOMGATE_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
            ("ROOMGATE_USER", json!([user, password]).to_string()),
        ],
    );
    assert_eq!(summary["kick"]["code"], 4003, "{summary}");
    assert_eq!(summary["in_event"]["code"], 1003, "{summary}");
    eprintln!(
        "kick -> onclose: {} ms; close inside a socket event -> onclose: {} ms",
        summary["kick"]["onclose_ms"], summary["in_event"]["onclose_ms"]
    );
}

/// A free loopback port (bound and released; the script binds it again at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// CORS in a real browser: a page served from an origin in `ALLOWED_ORIGINS` logs in,
/// gets a ticket and chats; the same page from an unlisted origin reads the public JWKS
/// and nothing else, because the browser refuses every other answer.
#[test]
fn an_app_on_a_listed_origin_logs_in_and_chats_and_an_unlisted_one_is_refused() {
    let (listed, unlisted) = (free_port(), free_port());
    let origin = format!("http://127.0.0.1:{listed}");
    let s = Server::start(&[("ALLOWED_ORIGINS", origin.as_str())]);
    let (user, password, _) = USERS[0];
    let summary = run_script(
        "cors.mjs",
        &[&s.url, &listed.to_string(), &unlisted.to_string()],
        &[("ROOMGATE_USER", json!([user, password]).to_string())],
    );
    assert_eq!(
        summary["listed"]["steps"],
        json!([
            "jwks 200",
            "login 200",
            "ticket 200",
            format!("chat from {origin}")
        ]),
        "{summary:#}"
    );
    assert_eq!(summary["listed"]["error"], Value::Null, "{summary:#}");
    // The JWKS is public; the login's answer never reaches the unlisted page.
    assert_eq!(
        summary["unlisted"]["steps"],
        json!(["jwks 200"]),
        "{summary:#}"
    );
    let error = summary["unlisted"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("Failed to fetch"), "{summary:#}");
    let console = summary["unlisted"]["console_errors"].to_string();
    assert!(
        console.contains("CORS"),
        "the browser names CORS: {summary:#}"
    );
}
