//! Deployability: `wrangler deploy --dry-run` bundles the built Worker (JS + wasm) from
//! wrangler.toml without contacting Cloudflare, and the wasm stays within the gzipped size
//! budget (Workers' upload limit is on the compressed size).
//!
//! Run with `cargo test --test deploy` from the repository root. Needs no runtime: it
//! builds with `scripts/build` (a no-op when up to date) and runs the local wrangler from
//! `node_modules/.bin`.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Gzipped wasm size budget in bytes (`gzip -9`).
const GZIP_BUDGET: usize = 400_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// PATH with the repository's `node_modules/.bin` first, as scripts/env.sh sets it.
fn path_with_node_bin() -> String {
    let bin = root().join("node_modules/.bin");
    match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{}:{p}", bin.display()),
        _ => bin.display().to_string(),
    }
}

/// Runs `cmd` from the repository root with wrangler's telemetry and network fetches off.
fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .current_dir(root())
        .env("PATH", path_with_node_bin())
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        // The dry-run summary prints at wrangler's default level ("log"); a caller's
        // WRANGLER_LOG=warn would hide it.
        .env("WRANGLER_LOG", "log")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn build() {
    run(
        &mut Command::new(root().join("scripts/build")),
        "scripts/build",
    );
}

/// A fresh, empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "roomgate-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files_in(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn wrangler_dry_run_bundles_js_and_wasm() {
    build();
    let out = TempDir::new("deploy-dry-run");
    let result = run(
        Command::new(root().join("node_modules/.bin/wrangler"))
            .args(["deploy", "--dry-run", "--outdir"])
            .arg(&out.0),
        "wrangler deploy --dry-run",
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        stdout.contains("--dry-run: exiting now."),
        "dry run did not finish as one:\n{stdout}"
    );
    // The bindings a deploy gets come from wrangler.toml.
    for binding in ["env.ROOMS (Room)", "env.DB (roomgate)"] {
        assert!(stdout.contains(binding), "{binding} missing:\n{stdout}");
    }

    let files = files_in(&out.0);
    eprintln!("dry-run output: {files:?}");
    let main = files.iter().find(|(name, _)| name == "index.js");
    assert!(
        main.is_some_and(|(_, size)| *size > 0),
        "no bundled index.js in {files:?}"
    );
    let wasm: Vec<_> = files
        .iter()
        .filter(|(name, _)| name.ends_with(".wasm"))
        .collect();
    assert_eq!(wasm.len(), 1, "expected one .wasm module in {files:?}");
    // It is the built module, byte for byte.
    let built = std::fs::read(root().join("build/index_bg.wasm")).unwrap();
    let bundled = std::fs::read(out.0.join(&wasm[0].0)).unwrap();
    assert!(
        bundled == built,
        "bundled wasm differs from build/index_bg.wasm"
    );
    assert!(bundled.starts_with(b"\0asm"), "not a wasm module");
}

#[test]
fn wasm_gzips_within_budget() {
    build();
    let wasm = root().join("build/index_bg.wasm");
    let raw = std::fs::metadata(&wasm).unwrap().len();
    let out = run(Command::new("gzip").arg("-9c").arg(&wasm), "gzip -9c");
    let gzipped = out.stdout.len();
    eprintln!(
        "build/index_bg.wasm: {raw} bytes, {gzipped} bytes gzipped (-9); budget {GZIP_BUDGET}"
    );
    assert!(gzipped > 0, "gzip produced nothing");
    assert!(
        gzipped < GZIP_BUDGET,
        "wasm gzips to {gzipped} bytes, over the {GZIP_BUDGET}-byte budget"
    );
}
