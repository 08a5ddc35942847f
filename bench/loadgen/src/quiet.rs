//! Starting every measured phase on a quiet server.
//!
//! workerd does not release the server side of a closed WebSocket while it is busy: after
//! a closed loop of upgrades, thousands of its sockets sit in CLOSE-WAIT (the client's
//! FIN received, the descriptor still open) until the runtime is next idle, and then it
//! releases them all at once, keeping its core busy meanwhile (bench/README.md, "A quiet
//! server"). A phase that starts right after one that opened sockets would pay for the
//! previous phase's sockets: its first connections would wait out that release, and its
//! connect p99 would grow with every repetition on the same runtime.
//!
//! The same holds for work queued inside the runtime: after a fan-out step the server
//! could not keep up with, it goes on delivering that step's backlog after the generator
//! stops sending, and a next step started meanwhile would measure that backlog's latency
//! instead of its own rate.
//!
//! So the harness waits, before each measured phase, until the server holds no more
//! descriptors than it did at rest after the warm-up (plus [`SLACK`]) and its CPU has
//! been idle for one [`TICK`]; between the steps of a fan-out room, whose sockets stay
//! open, until its CPU has been idle. How long each wait took is recorded in the JSON.

use crate::target::{QuietWait, Running};
use std::time::{Duration, Instant};

/// CPU is sampled over this window.
pub const TICK: Duration = Duration::from_millis(250);
/// Descriptors above the server's resting count that still count as quiet.
pub const SLACK: usize = 32;
/// At most this long per wait; a phase then starts anyway (recorded as not settled).
pub const LIMIT: Duration = Duration::from_secs(30);
/// Idle: less CPU than this share of one core over a tick.
pub const IDLE_SHARE: f64 = 0.10;

/// Open descriptors of `pid` (/proc/<pid>/fd).
pub fn open_fds(pid: i32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Whether a server is quiet: no more descriptors than at rest (+ [`SLACK`]; no resting
/// count known: descriptors are not checked) and under [`IDLE_SHARE`] of a core used in
/// the last tick.
pub fn is_quiet(fds: Option<usize>, rest: Option<usize>, cpu_us: u64, tick: Duration) -> bool {
    let fds_ok = match (fds, rest) {
        (Some(now), Some(rest)) => now <= rest + SLACK,
        _ => true,
    };
    fds_ok && (cpu_us as f64) < IDLE_SHARE * tick.as_micros() as f64
}

/// The server's descriptors at rest, measured once after the warm-up: waits for an idle
/// tick, then for the count to stop falling (at most [`LIMIT`]).
pub async fn measure_rest(t: &Running) -> Option<usize> {
    until_quiet(t, "rest", None).await;
    let deadline = Instant::now() + LIMIT;
    let mut rest = open_fds(t.server_pid)?;
    while Instant::now() < deadline {
        tokio::time::sleep(TICK).await;
        let now = open_fds(t.server_pid)?;
        if now >= rest {
            break;
        }
        rest = now;
    }
    Some(rest)
}

/// Waits until `t` is quiet (see [`is_quiet`]; its resting count from
/// [`measure_rest`], kept in `Running::rest_fds`) before the phase `before`, and records
/// the wait on `t`.
pub async fn wait(t: &Running, before: &str) -> QuietWait {
    until_quiet(t, before, t.rest_fds.get()).await
}

/// Waits until `t`'s core is idle (descriptors not checked: for a phase that keeps
/// sockets open across it, such as a fan-out room between steps), and records the wait.
pub async fn wait_idle(t: &Running, before: &str) -> QuietWait {
    until_quiet(t, before, None).await
}

async fn until_quiet(t: &Running, before: &str, rest: Option<usize>) -> QuietWait {
    let start = Instant::now();
    let fds_at_start = open_fds(t.server_pid);
    let mut last = t.cpu_us();
    let mut settled = false;
    while start.elapsed() < LIMIT {
        tokio::time::sleep(TICK).await;
        let now = t.cpu_us();
        let (Some(a), Some(b)) = (last, now) else {
            // The process is gone: nothing to wait for (the phase will report it).
            break;
        };
        if is_quiet(open_fds(t.server_pid), rest, b.saturating_sub(a), TICK) {
            settled = true;
            break;
        }
        last = now;
    }
    let w = QuietWait {
        before: before.to_owned(),
        waited_s: start.elapsed().as_secs_f64(),
        settled,
        fds_at_start,
        fds_at_end: open_fds(t.server_pid),
    };
    if !settled {
        eprintln!(
            "[bench] {}: server not quiet after {:.0} s (before {before}; descriptors {:?} → {:?}, at rest {rest:?}); starting anyway",
            t.kind.name(),
            LIMIT.as_secs_f64(),
            w.fds_at_start,
            w.fds_at_end
        );
    } else if w.waited_s > 1.0 {
        eprintln!(
            "[bench] {}: waited {:.1} s for a quiet server before {before} (descriptors {:?} → {:?})",
            t.kind.name(),
            w.waited_s,
            w.fds_at_start,
            w.fds_at_end
        );
    }
    t.quiet_log.borrow_mut().push(w.clone());
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_needs_both_few_descriptors_and_an_idle_core() {
        let tick = Duration::from_millis(250);
        // 10 % of 250 ms is 25,000 µs.
        assert!(is_quiet(Some(200), Some(180), 24_999, tick));
        assert!(!is_quiet(Some(200), Some(180), 25_000, tick));
        assert!(is_quiet(Some(180 + SLACK), Some(180), 0, tick));
        assert!(!is_quiet(Some(181 + SLACK), Some(180), 0, tick));
        // No resting count (or no /proc): only the CPU decides.
        assert!(is_quiet(Some(6_000), None, 0, tick));
        assert!(is_quiet(None, Some(180), 0, tick));
    }

    #[test]
    fn counts_descriptors_of_live_processes_only() {
        // Other tests open files concurrently, so only bounds are certain here.
        let n = open_fds(std::process::id() as i32).expect("/proc/<own pid>/fd");
        assert!(n >= 3, "stdin, stdout and stderr at least: {n}");
        assert_eq!(open_fds(i32::MAX), None);
    }
}
