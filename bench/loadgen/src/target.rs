//! Starting, measuring and stopping the servers under test.
//!
//! Each target runs in its own process group (`setpgid`) with `PR_SET_PDEATHSIG`, pinned
//! to core 0 with `taskset`. Its stdin is a pipe that stays open while it runs: closing it
//! stops the target; whatever is left of the group is killed afterwards, and every group
//! still registered is killed if the generator panics or is interrupted.

use crate::wire::Wire;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// roomgate with protocol v2 clients (`roomgate.v2`: arrays of frames, coalesced).
    Roomgate,
    /// The same build with protocol v1 clients: one frame per message.
    RoomgateV1,
    /// roomgate with presence off in every room (`PRESENCE_ROOMS = []`): the same job as
    /// js-reference, which has no presence. Upgrades only: presence changes nothing else
    /// the benchmark measures (fan-out frames, logins, the artefact).
    RoomgateNoPresence,
    JsReference,
    JsBare,
    /// js-bare with roomgate's flush policy: the platform's ceiling for coalesced
    /// delivery, as js-bare is for one frame per message.
    JsBareBatched,
    Native,
}

pub const ALL: [Kind; 7] = [
    Kind::Roomgate,
    Kind::RoomgateV1,
    Kind::RoomgateNoPresence,
    Kind::JsReference,
    Kind::JsBare,
    Kind::JsBareBatched,
    Kind::Native,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Roomgate => "roomgate",
            Kind::RoomgateV1 => "roomgate-v1",
            Kind::RoomgateNoPresence => "roomgate-no-presence",
            Kind::JsReference => "js-reference",
            Kind::JsBare => "js-bare",
            Kind::JsBareBatched => "js-bare-batched",
            Kind::Native => "native",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        ALL.into_iter().find(|k| k.name() == s)
    }

    /// How its clients speak to it.
    pub fn wire(self) -> Wire {
        match self {
            Kind::Roomgate => Wire::FrameArrays,
            Kind::JsBare => Wire::Echo,
            Kind::JsBareBatched => Wire::EchoArrays,
            Kind::RoomgateV1 | Kind::RoomgateNoPresence | Kind::JsReference | Kind::Native => {
                Wire::Frames
            }
        }
    }

    /// Does it check tokens (and send a welcome frame)?
    pub fn has_auth(self) -> bool {
        self.wire().has_welcome()
    }

    /// Does it serve `POST /login`?
    pub fn has_login(self) -> bool {
        matches!(self, Kind::Roomgate | Kind::JsReference)
    }

    /// Is it a roomgate build (the repository's, or `ROOMGATE_BENCH_CONFIG`'s)?
    pub fn is_roomgate(self) -> bool {
        matches!(
            self,
            Kind::Roomgate | Kind::RoomgateV1 | Kind::RoomgateNoPresence
        )
    }

    /// Is `scenario` measured for it? A variant is measured only where it differs from
    /// the target it varies: roomgate-no-presence on upgrades; roomgate-v1 where the
    /// protocol matters (not logins, not the artefact, which are roomgate's);
    /// js-bare-batched not on upgrades, which it serves with js-bare's code.
    pub fn measures(self, scenario: &str) -> bool {
        match self {
            Kind::RoomgateNoPresence => scenario == "upgrades",
            Kind::RoomgateV1 => matches!(scenario, "upgrades" | "fanout" | "cpu"),
            Kind::JsBareBatched => matches!(scenario, "fanout" | "cpu" | "size"),
            _ => true,
        }
    }

    /// The wrangler.toml of a workerd target, relative to the repository root.
    pub fn wrangler_toml(self) -> Option<&'static str> {
        match self {
            Kind::Roomgate | Kind::RoomgateV1 | Kind::RoomgateNoPresence => Some("wrangler.toml"),
            Kind::JsReference => Some("bench/targets/js-reference/wrangler.toml"),
            Kind::JsBare => Some("bench/targets/js-bare/wrangler.toml"),
            Kind::JsBareBatched => Some("bench/targets/js-bare-batched/wrangler.toml"),
            Kind::Native => None,
        }
    }
}

pub const NATIVE_BIN: &str = "bench/target/release/roomgate-bench-native";

/// Process groups of the targets currently running.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Kills every target's process group still registered (panic, Ctrl-C, exit).
pub fn kill_all() {
    if let Ok(groups) = GROUPS.lock() {
        for &pgid in groups.iter() {
            // SAFETY: kill(2) on a process group this process created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Secrets {
    pub jwt_secret: String,
    pub admin_token: String,
}

/// One wait for a quiet server before a phase (`quiet::wait`), as recorded on the
/// target and in the results (`quiet_waits`).
#[derive(Debug, serde::Serialize, Clone)]
pub struct QuietWait {
    pub before: String,
    pub waited_s: f64,
    pub settled: bool,
    pub fds_at_start: Option<usize>,
    pub fds_at_end: Option<usize>,
}

pub struct Running {
    pub kind: Kind,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The process doing the serving (workerd, or the native server).
    pub server_pid: i32,
    /// How the server pid was found ("reported", "found in /proc", "own pid").
    pub pid_source: &'static str,
    /// The server's open descriptors at rest after the warm-up (`quiet::measure_rest`).
    pub rest_fds: std::cell::Cell<Option<usize>>,
    /// Every wait for a quiet server before a phase (`quiet::wait`), in order.
    pub quiet_log: std::cell::RefCell<Vec<QuietWait>>,
    child: Child,
    stdin: Option<ChildStdin>,
    pgid: i32,
    state_dir: Option<PathBuf>,
}

/// Names a wrangler.toml whose `main` is another roomgate build to measure instead of
/// the repository's `build/` (bench/README.md: "Comparing two builds").
pub const ROOMGATE_CONFIG_ENV: &str = "ROOMGATE_BENCH_CONFIG";
/// `ROOMGATE_BENCH_INSPECTOR=<port>`: the started target listens for a V8 inspector there.
pub const INSPECTOR_ENV: &str = "ROOMGATE_BENCH_INSPECTOR";

fn start_command(kind: Kind, root: &Path, secrets: &Secrets, state: &Path) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg("0").current_dir(root);
    match kind {
        Kind::Native => {
            cmd.arg(root.join(NATIVE_BIN))
                .env("JWT_SECRET", &secrets.jwt_secret);
        }
        _ => {
            let mut vars = serde_json::Map::new();
            let mut set = |k: &str, v: &str| {
                vars.insert(k.into(), serde_json::Value::String(v.into()));
            };
            match kind {
                Kind::Roomgate | Kind::RoomgateV1 | Kind::RoomgateNoPresence => {
                    if kind == Kind::RoomgateNoPresence {
                        set("PRESENCE_ROOMS", "[]");
                    }
                    set("JWT_SECRET", &secrets.jwt_secret);
                    set("ADMIN_TOKEN", &secrets.admin_token);
                    // roomgate's limits must not refuse benchmark traffic (the limiter
                    // still runs on every frame).
                    set("RATE_LIMIT_PER_SECOND", "10000");
                    set("RATE_LIMIT_BURST", "10000");
                    set("MAX_CONNECTIONS_PER_ROOM", "32768");
                }
                Kind::JsReference => {
                    set("JWT_SECRET", &secrets.jwt_secret);
                    set("ADMIN_TOKEN", &secrets.admin_token);
                }
                _ => {}
            }
            let mut opts = serde_json::json!({ "stateDir": state, "vars": vars });
            if !kind.is_roomgate() {
                opts["config"] = kind.wrangler_toml().unwrap().into();
            } else if let Ok(config) = std::env::var(ROOMGATE_CONFIG_ENV) {
                // A/B runs: another roomgate build (a copy of build/ next to a
                // wrangler.toml), e.g. the one before an optimisation.
                opts["config"] = config.into();
            }
            // Profiling (bench/README.md): open this target's V8 inspector on that port.
            if let Ok(port) = std::env::var(INSPECTOR_ENV) {
                if let Ok(port) = port.parse::<u16>() {
                    opts["inspectorPort"] = port.into();
                }
            }
            cmd.arg("node")
                .arg("tests/support/runtime.mjs")
                .arg(opts.to_string())
                .env("ROOMGATE_RUNTIME_PGID_LEADER", "1");
        }
    }
    cmd
}

/// Starts `kind` on a fresh state directory and waits for its URL line (up to 120 s).
/// Its stderr goes to `log`.
pub fn start(kind: Kind, root: &Path, secrets: &Secrets, log: &Path) -> Result<Running, String> {
    let state = std::env::temp_dir().join(format!(
        "roomgate-bench-{}-{}-{}",
        kind.name(),
        std::process::id(),
        crate::token::random_alnum(8)
    ));
    std::fs::create_dir_all(&state).map_err(|e| format!("state dir: {e}"))?;
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("log {}: {e}", log.display()))?;
    let mut cmd = start_command(kind, root, secrets, &state);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file));
    // SAFETY: setpgid and prctl are async-signal-safe and touch only the child. The
    // generator spawns from its main thread, which lives as long as the process, so
    // PR_SET_PDEATHSIG fires only when the generator is gone.
    unsafe {
        cmd.pre_exec(|| {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", kind.name()))?;
    let pid = child.id() as i32;
    GROUPS.lock().unwrap().push(pid);
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let r = reader.read_line(&mut line).map(|_| line);
        let _ = tx.send(r);
        // Keep reading (and discarding) so the target never blocks on a full pipe.
        let mut sink = String::new();
        while matches!(reader.read_line(&mut sink), Ok(n) if n > 0) {
            sink.clear();
        }
    });
    let mut running = Running {
        kind,
        url: String::new(),
        addr: String::new(),
        server_pid: pid,
        pid_source: "own pid",
        rest_fds: Default::default(),
        quiet_log: Default::default(),
        child,
        stdin,
        pgid: pid,
        state_dir: Some(state),
    };
    let line = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(line)) if !line.trim().is_empty() => line,
        Ok(Ok(_)) => {
            return Err(format!(
                "{} exited before printing its URL (see {})",
                kind.name(),
                log.display()
            ))
        }
        Ok(Err(e)) => return Err(format!("{}: reading its URL: {e}", kind.name())),
        Err(_) => return Err(format!("{} printed no URL within 120 s", kind.name())),
    };
    let ready: serde_json::Value = serde_json::from_str(line.trim())
        .map_err(|_| format!("{}: unexpected first line {line:?}", kind.name()))?;
    running.url = ready["url"]
        .as_str()
        .ok_or_else(|| format!("{}: no url in {line:?}", kind.name()))?
        .trim_end_matches('/')
        .to_owned();
    running.addr = crate::http::authority(&running.url).to_owned();
    if kind != Kind::Native {
        if let Some(p) = ready["workerd_pid"].as_i64() {
            running.server_pid = p as i32;
            running.pid_source = "reported";
        } else {
            running.server_pid =
                find_descendant(pid, "workerd").ok_or("workerd process not found under node")?;
            running.pid_source = "found in /proc";
        }
    }
    Ok(running)
}

/// The first descendant of `pid` whose command name is `comm`.
pub fn find_descendant(pid: i32, comm: &str) -> Option<i32> {
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for c in children
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
            {
                let name = std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
                if name.trim() == comm {
                    return Some(c);
                }
                queue.push(c);
            }
        }
    }
    None
}

/// Clock ticks per second (sysconf).
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// utime + stime of `pid` (fields 14 and 15 of /proc/<pid>/stat), in microseconds.
pub fn cpu_us(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|t| t * 1_000_000 / clk_tck())
}

/// utime + stime in ticks from the text of /proc/<pid>/stat.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parentheses: fields resume after
    // the last ')'; the first of them is field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

impl Running {
    pub fn cpu_us(&self) -> Option<u64> {
        cpu_us(self.server_pid)
    }

    /// Is the server still alive?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Closes stdin, waits up to 10 s, then kills what is left of the process group.
    pub fn stop(&mut self) {
        if self.pgid == 0 {
            return;
        }
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        // workerd is in the same group: nothing of it may outlive the run.
        // SAFETY: kill(2) on the group this process created.
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
        }
        GROUPS.lock().unwrap().retain(|&g| g != self.pgid);
        self.pgid = 0;
        if let Some(state) = self.state_dir.take() {
            let _ = std::fs::remove_dir_all(state);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime() {
        let stat =
            "1234 (work (er) d) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_cpu_ticks(&own).is_some());
    }

    #[test]
    fn names_round_trip() {
        for k in ALL {
            assert_eq!(Kind::parse(k.name()), Some(k));
        }
        assert_eq!(Kind::parse("nope"), None);
    }
}
