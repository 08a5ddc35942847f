//! The Markdown report (latest.md): the machine, the chart (`svg.rs`), then one table per
//! scenario ([`sections`]), each row a JSON pointer into every target's results
//! (`report::table`). The same rows give the ratios in the results JSON
//! (`report::ratios`).

use crate::report::{self, Row, Section, BATCHED_PAIR};
use serde_json::{json, Value};

/// A figure's text: a string as it is, anything else as JSON.
fn s(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

fn row(label: &str, pointer: &str, decimals: usize) -> Row {
    Row {
        label: label.to_owned(),
        pointer: pointer.to_owned(),
        decimals,
    }
}

/// Every table of the report, in order, for a run with settings `c`.
pub fn sections(c: &Value) -> Vec<Section> {
    let mut fan_rows = vec![];
    for n in c["fanout_n"].as_array().cloned().unwrap_or_default() {
        let n = n.as_u64().unwrap_or(0);
        let r = |label: &str, key: &str, d: usize| {
            row(&format!("N={n}: {label}"), &format!("/fanout/{n}/{key}"), d)
        };
        fan_rows.extend([
            r(
                "max sustainable send rate (msg/s)",
                "max_sustainable_rate_per_s",
                0,
            ),
            r(
                "sweep's best rate, before confirmation (msg/s)",
                "sweep_best_rate_per_s",
                0,
            ),
            r("sweep stopped at its cap", "sweep_hit_cap", 0),
            r(
                "generator-limited (its core ≥ 90 % busy)",
                "generator_limited",
                0,
            ),
            r("repetitions sustainable", "repetitions_sustainable", 0),
            r("delivered msg/s", "delivered_per_s", 0),
            r("latency p50 (ms)", "p50_ms", 2),
            r("latency p99 (ms)", "p99_ms", 2),
            r("latency p99.9 (ms)", "p999_ms", 2),
            r("loss", "loss", 0),
            r("reorders", "reorders", 0),
            r("server CPU µs / delivery", "cpu_us_per_delivery", 2),
            r("generator core busy (share)", "generator_cpu_share", 2),
        ]);
    }
    vec![
        Section {
            title: "1. Upgrades".into(),
            note: format!(
                "(a) {} upgrades scheduled open loop at {}/s, room up-<i % 50>, valid token; latency = TCP connect start → 101. (b) closed loop, {} in flight, {} s; a runtime that releases the phase's sockets only after it (bench/README.md, \"A quiet server\") has that release counted: upgrades / (phase + release). (c) the same with wrongly signed tokens: each answer must be 401 invalid_token. Every phase starts on a quiet server (its descriptors back to their count at rest, its core idle: bench/README.md, \"A quiet server\"); (a)'s CPU runs until the runtime has released its sockets. roomgate's clients offer `roomgate.v2`, roomgate-v1's none. roomgate-no-presence: roomgate with `PRESENCE_ROOMS = []` (no `members`, `join` or `leave`; js-reference has no presence either), measured on upgrades only.",
                s(&c["upgrade_k"]), s(&c["upgrade_rate"]), s(&c["closed_in_flight"]), s(&c["closed_secs"])
            ),
            rows: vec![
                row("(a) achieved upgrades/s", "/upgrades/open_loop/achieved_per_s", 1),
                row("(a) connect p50 (ms)", "/upgrades/open_loop/p50_ms", 2),
                row("(a) connect p99 (ms)", "/upgrades/open_loop/p99_ms", 2),
                row("(a) server CPU µs / upgrade", "/upgrades/open_loop/server_cpu_us_per_upgrade", 0),
                row("(a) failures", "/upgrades/open_loop/failures", 0),
                row("(b) upgrades/s, counting the release after it", "/upgrades/closed_loop/ok_per_s_with_release", 0),
                row("(b) upgrades/s within the phase", "/upgrades/closed_loop/ok_per_s", 0),
                row("(b) release after the phase (s)", "/upgrades/closed_loop/release_s", 2),
                row("(b) server CPU µs / upgrade, release included", "/upgrades/closed_loop/server_cpu_us_per_upgrade", 0),
                row("(b) failures", "/upgrades/closed_loop/failures", 0),
                row("(c) 401s/s", "/upgrades/rejection/rejected_per_s", 0),
                row("(c) answers not 401", "/upgrades/rejection/not_401", 0),
            ],
            vs_batched: false,
        },
        Section {
            title: "2. Fan-out at the highest sustainable rate".into(),
            note: format!(
                "One room of N clients, min(N, 10) senders, open loop. Sustainable: p99 < 50 ms, no loss, no reorder, ≥ 95 % of the offered send rate. Sweep from {}/s doubling, then 3 bisections (a rate fails only when two steps at it fail in a row); then {} repetitions at the sweep's best rate, which stands only if more than half of them are sustainable — otherwise the rate is lowered by a fifth and repeated, at most 3 times ({} s warm-up + {} s measured per step). Max sustainable rate, delivered msg/s, latency and CPU: from the repetitions at the confirmed rate. Loss/reorders: totals over the repetitions. Generator-limited \"yes\": the generator's own core (one core, pinned) was ≥ 90 % busy at or above the best rate, so the maximum is the generator's limit and only a lower bound for the target. roomgate: protocol v2 clients (arrays of frames, coalesced per `FLUSH_MS` window), each message of an array a delivery of its own, its latency from the arrival of its array; roomgate-v1: the same build with v1 clients; js-bare-batched: js-bare with roomgate's flush policy (the platform's ceiling for coalesced delivery).",
                s(&c["start_rate"]), s(&c["reps"]), s(&c["warmup_secs"]), s(&c["step_secs"])
            ),
            rows: fan_rows,
            vs_batched: true,
        },
        Section {
            title: "4. Server CPU per delivered message at a fixed load".into(),
            note: format!(
                "N={}, {} msg/s offered ({} deliveries/s); server process utime+stime over the measured window / deliveries in the window.",
                s(&c["cpu_n"]), s(&c["cpu_rate"]),
                c["cpu_n"].as_u64().unwrap_or(0) * c["cpu_rate"].as_u64().unwrap_or(0)
            ),
            rows: vec![
                row("server CPU µs / delivery", "/cpu/cpu_us_per_delivery", 2),
                row("delivered msg/s", "/cpu/delivered_per_s", 0),
                row("latency p99 (ms)", "/cpu/p99_ms", 2),
                row("loss", "/cpu/loss", 0),
            ],
            vs_batched: true,
        },
        Section {
            title: "5. A quiet room".into(),
            note: format!(
                "The same room of N={} right after scenario 4, at {} msg/s offered: a room that is quiet for longer than the flush window between messages, {} repetitions (a quiet step carries few messages, so one stall of the machine sets its p99). Latency = receive time − the sender's clock reading just before it wrote the frame.",
                s(&c["cpu_n"]), s(&c["quiet_rate"]), s(&c["quiet_reps"])
            ),
            rows: vec![
                row("latency p50 (ms)", "/cpu/quiet/p50_ms", 2),
                row("latency p99 (ms)", "/cpu/quiet/p99_ms", 2),
                row("delivered msg/s", "/cpu/quiet/delivered_per_s", 0),
                row("loss", "/cpu/quiet/loss", 0),
            ],
            vs_batched: true,
        },
        Section {
            title: "3. Login".into(),
            note: format!(
                "POST /login, closed loop, {} in flight, {} s; every answer must be 200 with a token. Both targets hash with PBKDF2-SHA256 at 100,000 iterations, which dominates. Measured once for the roomgate build (roomgate-v1 is the same build).",
                s(&c["login_in_flight"]), s(&c["login_secs"])
            ),
            rows: vec![
                row("logins/s", "/login/logins_per_s", 2),
                row("p50 (ms)", "/login/p50_ms", 1),
                row("p99 (ms)", "/login/p99_ms", 1),
                row("failures", "/login/failures", 0),
            ],
            vs_batched: false,
        },
        Section {
            title: "5. Size and cold start".into(),
            note: "Artefact: roomgate build/index_bg.wasm (measured once for the build), the JS workers' main script, the native server binary. gzip: level 9 (flate2, file name in the header like `gzip -9c`); gzip -9c: the system gzip, as tests/deploy.rs measures. Cold start: spawning a fresh runtime (new state) → first 101 on /ws/cold, polled every 10 ms.".into(),
            rows: vec![
                row("artefact", "/size/main_path", 0),
                row("raw bytes", "/size/main_raw_bytes", 0),
                row("gzip -9 bytes (flate2)", "/size/main_gzip9_bytes", 0),
                row("gzip -9c bytes (system gzip)", "/size/main_gzip_cli_bytes", 0),
                row("cold start → first 101 (ms)", "/size/cold_start_ms", 0),
                row("cold start → URL printed (ms)", "/size/cold_start_to_url_ms", 0),
            ],
            vs_batched: false,
        },
    ]
}

/// The report; `chart`: the file name of the run's chart, shown under the header.
pub fn markdown(results: &Value, chart: Option<&str>) -> String {
    let targets = report::targets(results);
    let m = &results["machine"];
    let c = &results["config"];
    let mut md = String::from("# roomgate benchmarks\n\n");
    md.push_str(&format!(
        "Machine: {} ({} cores), {}; {}; commit {}{}; workerd {} (wrangler {}); {}; node {}. {}.\n\n",
        s(&m["cpu_model"]),
        s(&m["cores"]),
        s(&m["kernel"]),
        s(&m["date"]),
        s(&m["git_commit"]).chars().take(12).collect::<String>(),
        if m["git_dirty"] == json!(true) { " (dirty)" } else { "" },
        s(&m["workerd_version"]),
        s(&m["wrangler_version"]),
        s(&m["rustc_version"]),
        s(&m["node_version"]),
        s(&m["pinning"]),
    ));
    md.push_str(&format!(
        "Each cell: median [min–max over repetitions] (×ratio to js-reference: the target's figure divided by js-reference's, for every figure, latencies and costs included). \"—\": not measured or failed (see latest.json). In the fan-out and CPU tables, the column \"{} ÷ {}\" is roomgate's figure divided by js-bare-batched's: coalesced delivery against the platform's ceiling for it.\n",
        BATCHED_PAIR.0, BATCHED_PAIR.1
    ));
    if c["quick"] == json!(true) {
        md.push_str(
            "\n**--quick run: short steps, one repetition; a smoke test, not a measurement.**\n",
        );
    }
    md.push('\n');
    let errors: Vec<String> = targets
        .iter()
        .filter_map(|(n, v)| {
            v.get("error")
                .and_then(Value::as_str)
                .map(|e| format!("- {n}: {e}"))
        })
        .collect();
    if !errors.is_empty() {
        md.push_str(&format!(
            "Targets that did not run:\n{}\n\n",
            errors.join("\n")
        ));
    }
    if let Some(chart) = chart {
        md.push_str(&format!(
            "![Delivered messages/s by room size, and p99 latency against send rate]({chart})\n\n"
        ));
    }
    for sec in sections(c) {
        md.push_str(&report::table(&sec, &targets));
    }
    md
}
