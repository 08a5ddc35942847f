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

/// One row of a table: its label, the JSON pointer of its figure under each target's
/// results, the decimals shown.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub pointer: String,
    pub decimals: usize,
}

/// One table of the report.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    pub note: String,
    pub rows: Vec<Row>,
    /// Does it get the column of [`BATCHED_PAIR`]'s ratio?
    pub vs_batched: bool,
}

/// The target every figure is divided by.
pub const REFERENCE: &str = "js-reference";
/// roomgate's coalesced delivery against the platform's ceiling for it: the second ratio
/// of the fan-out and CPU tables.
pub const BATCHED_PAIR: (&str, &str) = ("roomgate", "js-bare-batched");

/// The targets of `results`, in the order of `target::ALL`.
pub fn targets(results: &Value) -> Vec<(&'static str, &Value)> {
    results["targets"]
        .as_object()
        .map(|m| {
            crate::target::ALL
                .iter()
                .filter_map(|k| m.get(k.name()).map(|v| (k.name(), v)))
                .collect()
        })
        .unwrap_or_default()
}

/// The figures a fan-out room size reports as its highest sustainable rate: without a
/// confirmed rate (`"confirmed": false`) they are only what the last rate tried gave.
const NEED_CONFIRMATION: [&str; 2] = ["max_sustainable_rate_per_s", "delivered_per_s"];

/// The figure at `pointer` in `v`, as the report shows it: a fan-out figure that needs a
/// confirmed rate and has none becomes the text "<value> (unconfirmed)", which gets no
/// ratio.
pub fn figure(v: &Value, pointer: &str) -> Option<Value> {
    let found = v.pointer(pointer)?;
    let (parent, key) = pointer.rsplit_once('/')?;
    let unconfirmed = parent.starts_with("/fanout/")
        && NEED_CONFIRMATION.contains(&key)
        && v.pointer(parent).and_then(|p| p.get("confirmed")) == Some(&Value::Bool(false));
    if !unconfirmed {
        return Some(found.clone());
    }
    Some(match number(found) {
        Some(x) => Value::String(format!("{} (unconfirmed)", fmt_num(x, 0))),
        None => found.clone(),
    })
}

/// Whether fan-out room size `f` (`/fanout/<n>`) has a confirmed rate (results written
/// before confirmation was recorded count as confirmed).
pub fn confirmed(f: &Value) -> bool {
    f.get("confirmed") != Some(&Value::Bool(false))
}

/// `a / b` of two figures, when both are numbers and `b` is not 0.
pub fn ratio(a: Option<&Value>, b: Option<&Value>) -> Option<f64> {
    let (a, b) = (number(a?)?, number(b?)?);
    (b != 0.0).then(|| a / b)
}

/// One table (none when no target measures it): a column per target that measures it,
/// then, for a section with
/// `vs_batched` and both targets of [`BATCHED_PAIR`] in it, that ratio's column.
pub fn table(sec: &Section, targets: &[(&str, &Value)]) -> String {
    let find = |name: &str| targets.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let reference = find(REFERENCE);
    // A target that does not measure this section (roomgate-no-presence: upgrades only)
    // gets no column; one that failed keeps its column of "—".
    let targets: Vec<&(&str, &Value)> = targets
        .iter()
        .filter(|(_, v)| {
            v.get("error").is_some() || sec.rows.iter().any(|r| v.pointer(&r.pointer).is_some())
        })
        .collect();
    if targets.is_empty() {
        return String::new();
    }
    let pair = sec
        .vs_batched
        .then(|| Some((find(BATCHED_PAIR.0)?, find(BATCHED_PAIR.1)?)))
        .flatten()
        .filter(|(a, b)| {
            sec.rows
                .iter()
                .any(|r| ratio(a.pointer(&r.pointer), b.pointer(&r.pointer)).is_some())
        });
    let mut s = format!("### {}\n\n", sec.title);
    if !sec.note.is_empty() {
        s.push_str(&sec.note);
        s.push_str("\n\n");
    }
    s.push_str("| |");
    for (name, _) in &targets {
        s.push_str(&format!(" {name} |"));
    }
    if pair.is_some() {
        s.push_str(&format!(" {} ÷ {} |", BATCHED_PAIR.0, BATCHED_PAIR.1));
    }
    s.push_str("\n|---|");
    for _ in 0..targets.len() + usize::from(pair.is_some()) {
        s.push_str("---|");
    }
    s.push('\n');
    for r in &sec.rows {
        s.push_str(&format!("| {} |", r.label));
        let reference = reference.and_then(|v| figure(v, &r.pointer));
        for (_, v) in &targets {
            s.push_str(&format!(
                " {} |",
                cell(
                    figure(v, &r.pointer).as_ref(),
                    reference.as_ref(),
                    r.decimals
                )
            ));
        }
        if let Some((a, b)) = pair {
            let x = ratio(
                figure(a, &r.pointer).as_ref(),
                figure(b, &r.pointer).as_ref(),
            );
            s.push_str(&format!(
                " {} |",
                x.map_or("—".into(), |x| format!("×{x:.2}"))
            ));
        }
        s.push('\n');
    }
    s.push('\n');
    s
}

/// The ratios of the report's tables, for the results JSON: each target's figures over
/// js-reference's (`to_js_reference`, by target, then by pointer), and roomgate's over
/// js-bare-batched's (`roomgate_to_js_bare_batched`, by pointer). Only figures both sides
/// have.
pub fn ratios(results: &Value, sections: &[Section]) -> Value {
    let targets = targets(results);
    let find = |name: &str| targets.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let rows = || sections.iter().flat_map(|s| s.rows.iter());
    let over = |a: &Value, b: &Value, rows: &mut dyn Iterator<Item = &Row>| {
        let mut m = serde_json::Map::new();
        for r in rows {
            if let Some(x) = ratio(
                figure(a, &r.pointer).as_ref(),
                figure(b, &r.pointer).as_ref(),
            ) {
                m.insert(r.pointer.clone(), json!(x));
            }
        }
        Value::Object(m)
    };
    let mut to_reference = serde_json::Map::new();
    if let Some(reference) = find(REFERENCE) {
        for (name, v) in &targets {
            to_reference.insert((*name).into(), over(v, reference, &mut rows()));
        }
    }
    let batched = match (find(BATCHED_PAIR.0), find(BATCHED_PAIR.1)) {
        (Some(a), Some(b)) => over(
            a,
            b,
            &mut sections
                .iter()
                .filter(|s| s.vs_batched)
                .flat_map(|s| s.rows.iter()),
        ),
        _ => json!({}),
    };
    json!({
        "to_js_reference": to_reference,
        "roomgate_to_js_bare_batched": batched,
    })
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
    fn a_fan_out_figure_without_a_confirmed_rate_is_marked_and_gets_no_ratio() {
        let t = |confirmed: Option<bool>| {
            let mut n = json!({"max_sustainable_rate_per_s": 327, "delivered_per_s": {"median": 328250.0}, "p99_ms": {"median": 62.3}});
            if let Some(c) = confirmed {
                n["confirmed"] = json!(c);
            }
            json!({"fanout": {"1000": n}})
        };
        let (no, yes, old) = (t(Some(false)), t(Some(true)), t(None));
        let rate = "/fanout/1000/max_sustainable_rate_per_s";
        assert_eq!(figure(&no, rate), Some(json!("327 (unconfirmed)")));
        assert_eq!(
            figure(&no, "/fanout/1000/delivered_per_s"),
            Some(json!("328250 (unconfirmed)"))
        );
        // What the repetitions measured is still shown as it is.
        assert_eq!(
            figure(&no, "/fanout/1000/p99_ms"),
            Some(json!({"median": 62.3}))
        );
        assert_eq!(figure(&yes, rate), Some(json!(327)));
        assert_eq!(figure(&old, rate), Some(json!(327)));
        assert_eq!(
            ratio(figure(&no, rate).as_ref(), figure(&yes, rate).as_ref()),
            None
        );
        let sec = section("Fan-out", rate, false);
        let md = table(&sec, &[("roomgate", &no), ("js-reference", &yes)]);
        assert!(md.contains("| 327 (unconfirmed) | 327 (×1.00) |"), "{md}");
        let results = json!({"targets": {"roomgate": no, "js-reference": yes}});
        let r = ratios(&results, &[sec]);
        assert!(r["to_js_reference"]["roomgate"].get(rate).is_none(), "{r}");
        assert!(!confirmed(
            &results["targets"]["roomgate"]["fanout"]["1000"]
        ));
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

    fn section(title: &str, pointer: &str, vs_batched: bool) -> Section {
        Section {
            title: title.into(),
            note: String::new(),
            rows: vec![Row {
                label: "rate".into(),
                pointer: pointer.into(),
                decimals: 0,
            }],
            vs_batched,
        }
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
        let login = table(&section("Login", "/login/rate", false), &targets);
        assert!(login.contains("| | js-reference | js-bare |\n"), "{login}");
        let nobody = table(&section("Size", "/size/raw", false), &targets[1..2]);
        assert_eq!(nobody, "");
        let upgrades = table(&section("Upgrades", "/upgrades/rate", false), &targets);
        assert!(
            upgrades.contains("| | js-reference | roomgate-no-presence | js-bare |\n"),
            "{upgrades}"
        );
        assert!(
            upgrades.contains("| rate | 5 (×1.00) | 7 (×1.40) | — |"),
            "{upgrades}"
        );
    }

    #[test]
    fn fan_out_tables_also_divide_roomgate_by_js_bare_batched() {
        let rg = json!({"fanout": {"rate": {"median": 300.0, "min": 300.0, "max": 300.0, "values": [300.0]}}});
        let reference = json!({"fanout": {"rate": 100}});
        let batched = json!({"fanout": {"rate": 600}});
        let targets = [
            ("roomgate", &rg),
            ("js-reference", &reference),
            ("js-bare-batched", &batched),
        ];
        let t = table(&section("Fan-out", "/fanout/rate", true), &targets);
        assert!(
            t.contains("| | roomgate | js-reference | js-bare-batched | roomgate ÷ js-bare-batched |\n|---|---|---|---|---|\n"),
            "{t}"
        );
        assert!(
            t.contains("| rate | 300 (×3.00) | 100 (×1.00) | 600 (×6.00) | ×0.50 |"),
            "{t}"
        );
        // Not for tables without the flag, nor without both targets.
        let plain = table(&section("Fan-out", "/fanout/rate", false), &targets);
        assert!(!plain.contains("÷"), "{plain}");
        let alone = table(&section("Fan-out", "/fanout/rate", true), &targets[..2]);
        assert!(!alone.contains("÷"), "{alone}");

        let results = json!({"targets": {"roomgate": rg, "js-reference": reference, "js-bare-batched": batched}});
        let r = ratios(&results, &[section("Fan-out", "/fanout/rate", true)]);
        assert_eq!(r["to_js_reference"]["roomgate"]["/fanout/rate"], json!(3.0));
        assert_eq!(
            r["to_js_reference"]["js-bare-batched"]["/fanout/rate"],
            json!(6.0)
        );
        assert_eq!(r["roomgate_to_js_bare_batched"]["/fanout/rate"], json!(0.5));
    }
}
