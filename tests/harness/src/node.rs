//! Node scripts that drive a client the Rust side cannot be: Chromium (`tests/browser/`)
//! and the JavaScript client library (`tests/client/`). Each prints a JSON summary as its
//! last JSON line and exits 0 only if its own checks passed.
use std::process::Command;

use serde_json::Value;

use crate::repo_root;

/// Runs `node <script> <args>` (the path relative to the repository root) and returns the
/// last JSON line it printed, after checking that it exited 0 and reported `"ok": true`.
pub fn run_script(script: &str, args: &[&str], envs: &[(&str, String)]) -> Value {
    let path = repo_root().join(script);
    let mut command = Command::new("node");
    command.arg(&path).args(args);
    for (key, value) in envs {
        command.env(key, value);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("run node {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!("no JSON summary from {script}\nstdout: {stdout}\nstderr: {stderr}")
        });
    assert!(
        out.status.success() && summary["ok"] == true,
        "{script} failed ({}): {summary:#}\nstderr: {stderr}",
        out.status
    );
    summary
}
