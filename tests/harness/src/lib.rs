//! Test support for roomgate's end-to-end tests (`tests/*.rs`): the built Worker on the
//! real workerd runtime, and real HTTP and WebSocket clients talking to it over loopback
//! sockets. A dev-only library, so it compiles once for every test binary.
//!
//! - [`runtime`]: starting, restarting and stopping a runtime ([`runtime::Server`], the
//!   shared [`runtime::server`]), its vars, the test secrets and the seeded users.
//! - [`http`]: HTTP responses as a test looks at them ([`http::Reply`]), logins, tickets.
//! - [`admin`]: the admin API (room stats, users, revocations).
//! - [`ws`]: WebSocket upgrades and the [`ws::Client`] that reads frames with timeouts.
//! - [`tokens`]: HS256 test tokens, claims, and token mangling.
//! - [`issuers`]: key fixtures, external issuers and tokens signed by them.
//! - [`loopback`]: a real HTTP server on loopback for roomgate to call (key sets).
//! - [`node`]: Node scripts driving Chromium and the JavaScript client library.

use std::path::{Path, PathBuf};

pub mod admin;
pub mod http;
pub mod issuers;
pub mod loopback;
pub mod node;
pub mod runtime;
pub mod tokens;
pub mod ws;

/// The repository root (this crate lives in `tests/harness/`).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/harness is two levels below the repository root")
        .to_path_buf()
}
