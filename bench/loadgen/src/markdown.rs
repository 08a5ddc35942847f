//! The Markdown report (latest.md): the machine, then one table per scenario, each row a
//! JSON pointer into every target's results (`report::table`).

use crate::report;
use crate::target;
use serde_json::{json, Value};

pub fn markdown(results: &Value) -> String {
    let targets: Vec<(&str, &Value)> = results["targets"]
        .as_object()
        .map(|m| {
            target::ALL
                .iter()
                .filter_map(|k| m.get(k.name()).map(|v| (k.name(), v)))
                .collect()
        })
        .unwrap_or_default();
    let m = &results["machine"];
    let c = &results["config"];
    let s = |v: &Value| {
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
    };
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
    md.push_str(
        "Each cell: median [min–max over repetitions] (×ratio to js-reference: the target's figure divided by js-reference's, for every figure, latencies and costs included). \"—\": not measured or failed (see latest.json).\n",
    );
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
    let row = |l: &str, p: &str, d: usize| (l.to_owned(), p.to_owned(), d);
    md.push_str(&report::table(
        "1. Upgrades",
        &format!(
            "(a) {} upgrades scheduled open loop at {}/s, room up-<i % 50>, valid token; latency = TCP connect start → 101. (b) closed loop, {} in flight, {} s; a runtime that releases the phase's sockets only after it (bench/README.md, \"A quiet server\") has that release counted: upgrades / (phase + release). (c) the same with wrongly signed tokens: each answer must be 401 invalid_token. Every phase starts on a quiet server (its descriptors back to their count at rest, its core idle: bench/README.md, \"A quiet server\"); (a)'s CPU runs until the runtime has released its sockets. roomgate-no-presence: roomgate with `PRESENCE_ROOMS = []` (no `members`, `join` or `leave`; js-reference has no presence either), measured on upgrades only.",
            s(&c["upgrade_k"]), s(&c["upgrade_rate"]), s(&c["closed_in_flight"]), s(&c["closed_secs"])
        ),
        &targets,
        &[
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
    ));
    let mut fan_rows = vec![];
    for n in c["fanout_n"].as_array().cloned().unwrap_or_default() {
        let n = n.as_u64().unwrap_or(0);
        let p = |k: &str| format!("/fanout/{n}/{k}");
        fan_rows.push((
            format!("N={n}: max sustainable send rate (msg/s)"),
            p("max_sustainable_rate_per_s"),
            0,
        ));
        fan_rows.push((
            format!("N={n}: sweep's best rate, before confirmation (msg/s)"),
            p("sweep_best_rate_per_s"),
            0,
        ));
        fan_rows.push((
            format!("N={n}: sweep stopped at its cap"),
            p("sweep_hit_cap"),
            0,
        ));
        fan_rows.push((
            format!("N={n}: generator-limited (its core ≥ 90 % busy)"),
            p("generator_limited"),
            0,
        ));
        fan_rows.push((
            format!("N={n}: repetitions sustainable"),
            p("repetitions_sustainable"),
            0,
        ));
        fan_rows.push((format!("N={n}: delivered msg/s"), p("delivered_per_s"), 0));
        fan_rows.push((format!("N={n}: latency p50 (ms)"), p("p50_ms"), 2));
        fan_rows.push((format!("N={n}: latency p99 (ms)"), p("p99_ms"), 2));
        fan_rows.push((format!("N={n}: latency p99.9 (ms)"), p("p999_ms"), 2));
        fan_rows.push((format!("N={n}: loss"), p("loss"), 0));
        fan_rows.push((format!("N={n}: reorders"), p("reorders"), 0));
        fan_rows.push((
            format!("N={n}: server CPU µs / delivery"),
            p("cpu_us_per_delivery"),
            2,
        ));
        fan_rows.push((
            format!("N={n}: generator core busy (share)"),
            p("generator_cpu_share"),
            2,
        ));
    }
    md.push_str(&report::table(
        "2. Fan-out at the highest sustainable rate",
        &format!(
            "One room of N clients, min(N, 10) senders, open loop. Sustainable: p99 < 50 ms, no loss, no reorder, ≥ 95 % of the offered send rate. Sweep from {}/s doubling, then 3 bisections (a rate fails only when two steps at it fail in a row); then {} repetitions at the sweep's best rate, which stands only if more than half of them are sustainable — otherwise the rate is lowered by a fifth and repeated, at most 3 times ({} s warm-up + {} s measured per step). Max sustainable rate, delivered msg/s, latency and CPU: from the repetitions at the confirmed rate. Loss/reorders: totals over the repetitions. Generator-limited \"yes\": the generator's own core (one core, pinned) was ≥ 90 % busy at or above the best rate, so the maximum is the generator's limit and only a lower bound for the target.",
            s(&c["start_rate"]), s(&c["reps"]), s(&c["warmup_secs"]), s(&c["step_secs"])
        ),
        &targets,
        &fan_rows,
    ));
    md.push_str(&report::table(
        "4. Server CPU per delivered message at a fixed load",
        &format!(
            "N={}, {} msg/s offered ({} deliveries/s); server process utime+stime over the measured window / deliveries in the window.",
            s(&c["cpu_n"]), s(&c["cpu_rate"]),
            c["cpu_n"].as_u64().unwrap_or(0) * c["cpu_rate"].as_u64().unwrap_or(0)
        ),
        &targets,
        &[
            row("server CPU µs / delivery", "/cpu/cpu_us_per_delivery", 2),
            row("delivered msg/s", "/cpu/delivered_per_s", 0),
            row("latency p99 (ms)", "/cpu/p99_ms", 2),
            row("loss", "/cpu/loss", 0),
        ],
    ));
    md.push_str(&report::table(
        "3. Login",
        &format!(
            "POST /login, closed loop, {} in flight, {} s; every answer must be 200 with a token. Both targets hash with PBKDF2-SHA256 at 100,000 iterations, which dominates.",
            s(&c["login_in_flight"]), s(&c["login_secs"])
        ),
        &targets,
        &[
            row("logins/s", "/login/logins_per_s", 2),
            row("p50 (ms)", "/login/p50_ms", 1),
            row("p99 (ms)", "/login/p99_ms", 1),
            row("failures", "/login/failures", 0),
        ],
    ));
    md.push_str(&report::table(
        "5. Size and cold start",
        "Artefact: roomgate build/index_bg.wasm, the JS workers' main script, the native server binary. gzip: level 9 (flate2, file name in the header like `gzip -9c`); gzip -9c: the system gzip, as tests/deploy.rs measures. Cold start: spawning a fresh runtime (new state) → first 101 on /ws/cold, polled every 10 ms.",
        &targets,
        &[
            row("artefact", "/size/main_path", 0),
            row("raw bytes", "/size/main_raw_bytes", 0),
            row("gzip -9 bytes (flate2)", "/size/main_gzip9_bytes", 0),
            row("gzip -9c bytes (system gzip)", "/size/main_gzip_cli_bytes", 0),
            row("cold start → first 101 (ms)", "/size/cold_start_ms", 0),
            row("cold start → URL printed (ms)", "/size/cold_start_to_url_ms", 0),
        ],
    ));
    md
}
