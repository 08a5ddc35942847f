//! The machine description and the markdown tables.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn cmd_out(root: &Path, prog: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(prog)
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (UTC).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

pub fn machine(root: &Path) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned());
    // SAFETY: sysconf has no preconditions. (Not available_parallelism: the generator's
    // own affinity is one core.)
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let workerd = std::fs::read_to_string(root.join("node_modules/workerd/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned));
    let wrangler = std::fs::read_to_string(root.join("node_modules/wrangler/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned));
    let dirty = cmd_out(root, "git", &["status", "--porcelain"]).map(|s| !s.is_empty());
    json!({
        "cpu_model": model,
        "cores": cores,
        "kernel": cmd_out(root, "uname", &["-srm"]),
        "date": utc(crate::token::now_unix()),
        "git_commit": cmd_out(root, "git", &["rev-parse", "HEAD"]),
        "git_dirty": dirty,
        "workerd_version": workerd,
        "wrangler_version": wrangler,
        "node_version": cmd_out(root, "node", &["--version"]),
        "rustc_version": cmd_out(root, "rustc", &["--version"]),
        "clk_tck": crate::target::clk_tck(),
        "pinning": "server on core 0, generator on core 1 (taskset)",
    })
}

/// A figure: the median of a spread, or a plain number.
fn number(v: &Value) -> Option<f64> {
    v.get("median")
        .and_then(Value::as_f64)
        .or_else(|| v.as_f64())
}

fn fmt_num(x: f64, decimals: usize) -> String {
    format!("{x:.decimals$}")
}

/// "absolute [min–max] (×ratio)", or a string value, or "—".
pub fn cell(v: Option<&Value>, reference: Option<&Value>, decimals: usize) -> String {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return "—".into();
    };
    if let Some(s) = v.as_str() {
        return s.to_owned();
    }
    if let Some(b) = v.as_bool() {
        return if b { "yes" } else { "no" }.into();
    }
    let Some(x) = number(v) else {
        return "—".into();
    };
    let mut out = fmt_num(x, decimals);
    if let (Some(min), Some(max)) = (
        v.get("min").and_then(Value::as_f64),
        v.get("max").and_then(Value::as_f64),
    ) {
        if v.get("values")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1)
        {
            out.push_str(&format!(
                " [{}–{}]",
                fmt_num(min, decimals),
                fmt_num(max, decimals)
            ));
        }
    }
    if let Some(r) = reference.and_then(number) {
        if r != 0.0 {
            out.push_str(&format!(" (×{:.2})", x / r));
        }
    }
    out
}

/// One table: rows of (label, JSON pointer under each target, decimals).
pub fn table(
    title: &str,
    note: &str,
    targets: &[(&str, &Value)],
    rows: &[(String, String, usize)],
) -> String {
    let reference = targets
        .iter()
        .find(|(n, _)| *n == "js-reference")
        .map(|(_, v)| *v);
    // A target that does not measure this section (roomgate-no-presence: upgrades only)
    // gets no column; one that failed keeps its column of "—".
    let targets: Vec<&(&str, &Value)> = targets
        .iter()
        .filter(|(_, v)| {
            v.get("error").is_some() || rows.iter().any(|(_, p, _)| v.pointer(p).is_some())
        })
        .collect();
    let mut s = format!("### {title}\n\n");
    if !note.is_empty() {
        s.push_str(note);
        s.push_str("\n\n");
    }
    s.push_str("| |");
    for (name, _) in &targets {
        s.push_str(&format!(" {name} |"));
    }
    s.push_str("\n|---|");
    for _ in &targets {
        s.push_str("---|");
    }
    s.push('\n');
    for (label, pointer, decimals) in rows {
        s.push_str(&format!("| {label} |"));
        let r = reference.and_then(|r| r.pointer(pointer));
        for (_, v) in &targets {
            s.push_str(&format!(" {} |", cell(v.pointer(pointer), r, *decimals)));
        }
        s.push('\n');
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_706_403), "2026-11-26T15:20:03Z");
    }

    #[test]
    fn cells_carry_spread_and_ratio() {
        let v =
            json!({"median": 200.0, "min": 190.0, "max": 210.0, "values": [190.0, 200.0, 210.0]});
        let r = json!({"median": 100.0, "min": 100.0, "max": 100.0, "values": [100.0]});
        assert_eq!(cell(Some(&v), Some(&r), 0), "200 [190–210] (×2.00)");
        assert_eq!(cell(Some(&r), Some(&r), 1), "100.0 (×1.00)");
        assert_eq!(cell(Some(&json!(3)), None, 0), "3");
        assert_eq!(cell(Some(&json!("n/a")), Some(&r), 0), "n/a");
        assert_eq!(cell(None, Some(&r), 0), "—");
    }

    #[test]
    fn a_target_without_the_section_gets_no_column_a_failed_one_does() {
        let measured = json!({"upgrades": {"rate": 5}, "login": {"rate": 3}});
        let upgrades_only = json!({"upgrades": {"rate": 7}});
        let failed = json!({"error": "did not start"});
        let targets = [
            ("js-reference", &measured),
            ("roomgate-no-presence", &upgrades_only),
            ("js-bare", &failed),
        ];
        let login = table(
            "Login",
            "",
            &targets,
            &[("logins/s".into(), "/login/rate".into(), 0)],
        );
        assert!(login.contains("| | js-reference | js-bare |\n"), "{login}");
        let upgrades = table(
            "Upgrades",
            "",
            &targets,
            &[("upgrades/s".into(), "/upgrades/rate".into(), 0)],
        );
        assert!(
            upgrades.contains("| | js-reference | roomgate-no-presence | js-bare |\n"),
            "{upgrades}"
        );
        assert!(
            upgrades.contains("| upgrades/s | 5 (×1.00) | 7 (×1.40) | — |"),
            "{upgrades}"
        );
    }
}
