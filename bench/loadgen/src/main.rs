//! roomgate-bench: runs every scenario of bench/README.md against every target and writes
//! bench/results/. Started by `./bench/run` (pinned to core 1; the servers get core 0).
//!
//! `cli.rs` reads the command line; `bench_target.rs` runs the scenarios (`scenario/`)
//! against each target with the shared `context.rs`, printing its progress
//! (`progress.rs`); `markdown.rs` writes the report and `svg.rs` its chart.
//! The other modules are the drivers the scenarios use.

mod bench_target;
mod cli;
mod context;
mod fanout;
mod http;
mod login;
mod markdown;
mod progress;
mod quiet;
mod report;
mod scan;
mod scenario;
mod size;
mod stats;
mod svg;
mod sweep;
mod target;
mod token;
mod upgrades;
mod wire;
mod ws;

use bench_target::bench_target;
use context::{say, Ctx};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use target::Secrets;

/// The repository root: the first ancestor of the working directory with wrangler.toml
/// and bench/.
fn repo_root() -> PathBuf {
    let cwd = std::env::current_dir().expect("working directory");
    cwd.ancestors()
        .find(|p| p.join("wrangler.toml").is_file() && p.join("bench").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or(cwd)
}

/// Rooms of 1000 clients need 1000+ descriptors in the generator (and in the servers,
/// which inherit the limit): raises the soft RLIMIT_NOFILE to the hard limit.
fn raise_fd_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return None;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
        Some(r.rlim_cur)
    }
}

/// Writes the report and the chart of `results` into `dir`, as `<stem>.{md,svg}` (and
/// `<stem>.json` when `json` is given); returns the markdown.
fn write_reports(
    dir: &Path,
    stem: &str,
    results: &Value,
    json: Option<&str>,
) -> Result<String, String> {
    let svg_name = format!("{stem}.svg");
    // Each report shows the chart written next to it.
    let md = markdown::markdown(results, Some(&svg_name));
    let svg = svg::chart(results);
    let json_name = format!("{stem}.json");
    let md_name = format!("{stem}.md");
    let mut files = vec![(md_name.as_str(), md.as_str()), (&svg_name, &svg)];
    if let Some(j) = json {
        files.push((&json_name, j));
    }
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(md)
}

/// `--render`: the report and chart of an earlier run, next to its JSON (or in `--out`).
fn render(path: &Path, out: Option<&Path>) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut results: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    results["ratios"] = report::ratios(&results, &markdown::sections(&results["config"]));
    let dir = out.or(path.parent()).unwrap_or(Path::new("."));
    let stem = path
        .file_stem()
        .map_or("render".into(), |s| s.to_string_lossy().into_owned());
    write_reports(dir, &stem, &results, None)?;
    say!("wrote {}/{stem}.{{md,svg}}", dir.display());
    Ok(())
}

async fn run() -> Result<(), String> {
    let cfg = cli::parse_args()?;
    if let Some(path) = &cfg.render {
        return render(path, cfg.out.as_deref());
    }
    let root = repo_root();
    let results_dir = cfg
        .out
        .clone()
        .unwrap_or_else(|| root.join("bench/results"));
    let logs = results_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    ws::start();
    let fd_limit = raise_fd_limit();
    let biggest_room = if cfg.has("fanout") {
        cfg.fanout_n.iter().copied().max().unwrap_or(0)
    } else {
        0
    };
    if let Some(l) = fd_limit {
        if (l as usize) < biggest_room + 256 {
            say!("open-file limit {l} is too low for a room of {biggest_room} clients: raise the hard limit (ulimit -Hn)");
        }
    }
    let secrets = Secrets {
        jwt_secret: token::random_alnum(48),
        admin_token: token::random_alnum(32),
    };
    let tokens = Rc::new(
        (0..1024)
            .map(|i| token::mint(&secrets.jwt_secret, i))
            .collect::<Vec<_>>(),
    );
    say!(
        "root {}; targets {:?}; scenarios {:?}",
        root.display(),
        cfg.targets,
        cfg.scenarios
    );
    let ctx = Ctx {
        root: root.clone(),
        cfg: cfg.clone(),
        secrets,
        tokens,
        logs,
        progress: progress::Progress::new(&cfg),
    };
    say!(
        "estimated length of the run: {} (nominal costs, bench/README.md)",
        progress::duration(std::time::Duration::from_secs_f64(
            ctx.progress.nominal_total()
        ))
    );
    let started = token::now_unix();
    let mut per_target = serde_json::Map::new();
    for &kind in &cfg.kinds {
        per_target.insert(kind.name().into(), bench_target(&ctx, kind).await);
    }
    let mut results = json!({
        "machine": report::machine(&root),
        "config": cfg,
        "duration_s": token::now_unix() - started,
        "targets": per_target,
    });
    results["ratios"] = report::ratios(&results, &markdown::sections(&results["config"]));
    let stamp = report::utc(started).replace([':', '-'], "");
    let json_text = serde_json::to_string_pretty(&results).unwrap();
    let md = write_reports(&results_dir, "latest", &results, Some(&json_text))?;
    write_reports(&results_dir, &stamp, &results, Some(&json_text))?;
    println!("{md}");
    say!(
        "wrote {}/latest.{{md,json,svg}} and {stamp}.{{md,json,svg}}",
        results_dir.display()
    );
    Ok(())
}

fn main() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        target::kill_all();
        default_hook(info);
    }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let code = local.block_on(&rt, async {
        tokio::task::spawn_local(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("[bench] interrupted: stopping the targets");
            target::kill_all();
            std::process::exit(130);
        });
        match run().await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("roomgate-bench: {e}");
                2
            }
        }
    });
    target::kill_all();
    std::process::exit(code);
}
