//! The JavaScript client library (`client/`) end to end: the same scenario
//! (`tests/client/scenario.mjs`) in Node, with the `ws` package's WebSocket, and in real
//! Chromium, importing the copy the server serves at `/roomgate-client.js`. Both transports,
//! members and presence, acknowledged publishes in order, a dropped socket that reconnects
//! and resumes, history pages, refusals that settle their own publish, a refusal that ends
//! the client, and the in-band token refresh through the token callback.
//!
//! The runtime issues tokens that live `TTL` seconds, so that the refresh happens during
//! the run; a refresh within 10 s of the last check is refused, hence not shorter.
//!
//! Run: `cargo test --test client` (builds the Worker first if `src/` changed, starts its
//! own runtime; Chromium as for `tests/browser.rs`).
use std::sync::OnceLock;

use roomgate_harness::node::run_script;
use roomgate_harness::runtime::{Server, USERS};
use serde_json::{json, Value};

const TTL: &str = "16";

fn runtime() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        Server::start(&[
            ("TOKEN_TTL_SECONDS", TTL),
            ("CLOCK_LEEWAY_SECONDS", "0"),
            ("EXPIRY_WARNING_SECONDS", "4"),
        ])
    })
}

fn run(script: &str) -> Value {
    let users: Vec<Value> = USERS
        .iter()
        .map(|(user, password, name)| json!([user, password, name]))
        .collect();
    let summary = run_script(
        script,
        &[&runtime().url],
        &[
            ("ROOMGATE_USERS", Value::from(users).to_string()),
            ("ROOMGATE_TTL", TTL.to_owned()),
        ],
    );
    eprintln!("{script}: {summary}");
    // The scenario checked each step; these are the facts it reports.
    assert_eq!(summary["bob_seqs"].as_array().unwrap().len(), 35);
    assert_eq!(summary["refused_ticket"]["code"], "invalid_token");
    assert_eq!(summary["refused_ticket"]["status"], 401);
    assert!(summary["rate_limit"]["refused"].as_u64().unwrap() > 0);
    assert!(summary["refresh"]["after"].as_i64() > summary["refresh"]["before"].as_i64());
    summary
}

#[test]
fn the_client_library_in_node_publishes_resumes_pages_and_refreshes() {
    run("tests/client/node.mjs");
}

#[test]
fn the_client_library_in_chromium_publishes_resumes_pages_and_refreshes() {
    let summary = run("tests/browser/client.mjs");
    // The one refusal the browser reports itself: the ticket for a token that is not one.
    let errors = summary["console_errors"].as_array().unwrap();
    assert!(
        errors.len() == 1 && errors[0].as_str().unwrap().contains("401"),
        "{summary:#}"
    );
}
