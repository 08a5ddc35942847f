//! The runtime under test: the built Worker on workerd (Miniflare, driven by
//! `tests/support/runtime.mjs` from `wrangler.toml`), started with test vars and seeded
//! with [`USERS`].
//!
//! Each test binary starts one shared runtime ([`server`]), on first use, with its own
//! fresh D1 and Durable Object state; a test may start more with [`Server::start`]. A
//! runtime stops when the test process exits, however it exits: its stdin is a pipe from
//! this process (EOF stops it) and it gets SIGTERM if this process dies
//! (`PR_SET_PDEATHSIG`). Worker logs go to `tests/artifacts/<binary>.log`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};

use crate::repo_root;

/// Test secrets (never used outside tests).
pub const JWT_SECRET: &str = "e2e-test-jwt-secret-0123456789abcdef";
pub const ADMIN_TOKEN: &str = "e2e-test-admin-token-0123456789abcdef";
/// Longer than workerd's 10 s inactivity eviction of a Durable Object (see
/// `tests/hibernation.rs` for how an eviction is shown).
pub const EVICTION_IDLE: Duration = Duration::from_secs(13);

/// Dev-style users every runtime is seeded with: (username, password, display name).
pub const USERS: &[(&str, &str, &str)] = &[
    ("alice", "alice-test-password", "Alice"),
    ("bob", "bob-test-password", "Bob"),
    ("carol", "carol-test-password", "Carol"),
];

/// A running runtime. Its HTTP helpers are in [`crate::http`] and [`crate::admin`], its
/// WebSocket helpers in [`crate::ws`].
pub struct Server {
    pub url: String,
    /// The vars this runtime was started with (on top of wrangler.toml's).
    pub vars: Vec<(String, String)>,
    /// Where D1 and Durable Object state persist ([`Server::restart`] reuses it).
    state: PathBuf,
    // Dropping the stdin pipe stops the runtime; kept for the process lifetime.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| s.rsplit_once('-').map(|(n, _)| n.to_owned()).unwrap_or(s))
        .unwrap_or_else(|| "tests".into())
}

/// Builds the Worker if `src/` changed (a no-op otherwise), once per process.
fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(repo_root().join("scripts/build"))
            .status()
            .expect("run scripts/build");
        assert!(status.success(), "scripts/build failed");
    });
}

impl Server {
    /// Starts a runtime with `vars` layered over wrangler.toml's `[vars]` (the default
    /// test secrets are included unless overridden; a value of "" unbinds nothing but sets
    /// the empty string). Blocks until it serves and is seeded with [`USERS`].
    pub fn start(vars: &[(&str, &str)]) -> Server {
        ensure_built();
        let mut all: Vec<(String, String)> = vec![
            ("JWT_SECRET".into(), JWT_SECRET.into()),
            ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
            // Every transport is exercised, the legacy `?token=` one included (off by
            // default; `tests/gate.rs` checks the default with the value unset).
            ("ALLOW_QUERY_TOKEN".into(), "true".into()),
        ];
        for (k, v) in vars {
            all.retain(|(key, _)| key != k);
            all.push((k.to_string(), v.to_string()));
        }
        let state = std::env::temp_dir().join(format!(
            "roomgate-e2e-{}-{}-{}",
            binary_name(),
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&state);
        let server = Self::spawn(all, state, true);
        server.seed_users();
        server
    }

    /// Stops this runtime and starts a new one on the same state (D1, Durable Objects)
    /// with the same vars: what a redeploy or a machine restart looks like to the Worker.
    /// Blocks until the old runtime has exited and the new one serves. For a runtime a
    /// test owns (not the shared [`server`]); the URL changes.
    pub fn restart(self) -> Server {
        self.restart_with(&[])
    }

    /// [`Server::restart`] with some vars changed: a redeploy with a new configuration.
    pub fn restart_with(self, changes: &[(&str, &str)]) -> Server {
        let Server {
            vars,
            state,
            _stdin,
            _child,
            ..
        } = self;
        drop(_stdin);
        // Its exit status is no signal: the script takes its process group (workerd and
        // itself) down with SIGKILL once Miniflare is disposed.
        let _ = _child
            .into_inner()
            .unwrap()
            .wait()
            .expect("wait for runtime");
        let mut vars = vars;
        for (k, v) in changes {
            vars.retain(|(key, _)| key != k);
            vars.push((k.to_string(), v.to_string()));
        }
        Self::spawn(vars, state, false)
    }

    /// Starts the runtime process on `state`; `fresh`: apply the D1 migrations (a new
    /// state directory) rather than reuse what is there.
    fn spawn(all: Vec<(String, String)>, state: PathBuf, fresh: bool) -> Server {
        let artifacts = repo_root().join("tests/artifacts");
        std::fs::create_dir_all(&artifacts).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(!fresh)
            .write(true)
            .truncate(fresh)
            .open(artifacts.join(format!("{}.log", binary_name())))
            .unwrap();

        let vars_json: serde_json::Map<String, Value> =
            all.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let opts = json!({"stateDir": state, "vars": vars_json, "migrate": fresh}).to_string();
        let mut cmd = Command::new("node");
        cmd.arg(repo_root().join("tests/support/runtime.mjs"))
            .arg(opts)
            .current_dir(repo_root())
            .env("ROOMGATE_RUNTIME_PGID_LEADER", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        // SAFETY: setpgid and prctl are async-signal-safe and touch only the child.
        unsafe {
            cmd.pre_exec(|| {
                // Own process group, so the script can take workerd down with it.
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        // PR_SET_PDEATHSIG fires when the *thread* that spawned the child exits, and test
        // threads end with their test: spawn from a thread that lives as long as the
        // process.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tx.send(cmd.spawn()).unwrap();
            loop {
                std::thread::park();
            }
        });
        let mut child = rx
            .recv()
            .unwrap()
            .expect("spawn node (is Node.js installed?)");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read runtime url");
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!(
                "runtime did not start (see tests/artifacts/{}.log): {line:?}",
                binary_name()
            )
        });
        Server {
            url: ready["url"].as_str().unwrap().to_owned(),
            vars: all,
            state,
            _stdin: Mutex::new(stdin),
            _child: Mutex::new(child),
        }
    }

    fn seed_users(&self) {
        // Without a usable admin token there is no admin API to seed through.
        if self.var("ADMIN_TOKEN").is_none_or(|t| t.len() < 32) {
            return;
        }
        let url = self.url.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                for (user, password, name) in USERS {
                    let res = reqwest::Client::new()
                        .put(format!("{url}/admin/users/{user}"))
                        .bearer_auth(ADMIN_TOKEN)
                        .json(&json!({"password": password, "name": name}))
                        .send()
                        .await
                        .expect("seed user");
                    assert!(
                        res.status().is_success(),
                        "seeding {user}: {}",
                        res.status()
                    );
                }
            })
        })
        .join()
        .expect("seeding users");
    }

    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.url.replacen("http", "ws", 1))
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The runtime shared by every test in this binary, started on first use with the
/// default test configuration.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(&[]))
}
