//! The measurements of scenario 5 (`scenario/size.rs`): artefact sizes and one cold start.

use crate::target::{self, Kind, Secrets};
use crate::ws::{upgrade, Upgrade};
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize, Clone)]
pub struct FileSize {
    pub path: String,
    pub raw_bytes: u64,
    /// flate2 at level 9 with the file name in the header, as `gzip -9c <file>` writes it.
    pub gzip9_bytes: u64,
    /// `gzip -9c <file> | wc -c` (what tests/deploy.rs measures), when gzip is installed.
    pub gzip_cli_bytes: Option<u64>,
}

/// gzip -9 of `data`, with `name` as the stored file name (like `gzip -9c <file>`).
pub fn gzip9_len(data: &[u8], name: Option<&str>) -> u64 {
    let mut enc: GzEncoder<Vec<u8>> = match name {
        Some(n) => GzBuilder::new()
            .filename(n)
            .write(Vec::new(), Compression::new(9)),
        None => GzEncoder::new(Vec::new(), Compression::new(9)),
    };
    enc.write_all(data).expect("write to memory");
    enc.finish().expect("finish gzip").len() as u64
}

pub fn measure_file(root: &Path, rel: &str) -> Result<FileSize, String> {
    let path = root.join(rel);
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let cli = Command::new("gzip")
        .arg("-9c")
        .arg(&path)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| o.stdout.len() as u64);
    Ok(FileSize {
        path: rel.to_owned(),
        raw_bytes: data.len() as u64,
        gzip9_bytes: gzip9_len(&data, name.as_deref()),
        gzip_cli_bytes: cli,
    })
}

/// The `main` of a wrangler.toml, relative to the repository root.
pub fn wrangler_main(root: &Path, toml_rel: &str) -> Result<String, String> {
    let text =
        std::fs::read_to_string(root.join(toml_rel)).map_err(|e| format!("{toml_rel}: {e}"))?;
    let main = text
        .lines()
        .map(str::trim)
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "main").then(|| v.trim().trim_matches('"').trim_matches('\'').to_owned())
        })
        .ok_or_else(|| format!("{toml_rel}: no main"))?;
    let dir = Path::new(toml_rel).parent().unwrap_or(Path::new(""));
    Ok(dir.join(main).to_string_lossy().into_owned())
}

/// What gets shipped for `kind`: roomgate's wasm (plus its JS glue), the JS workers' main
/// script, the native server's binary.
pub fn artefacts(root: &Path, kind: Kind) -> Vec<Result<FileSize, String>> {
    match kind {
        Kind::Roomgate | Kind::RoomgateV1 | Kind::RoomgateNoPresence => vec![
            measure_file(root, "build/index_bg.wasm"),
            measure_file(root, "build/index.js"),
        ],
        Kind::Native => vec![measure_file(root, target::NATIVE_BIN)],
        _ => {
            vec![wrangler_main(root, kind.wrangler_toml().unwrap())
                .and_then(|m| measure_file(root, &m))]
        }
    }
}

#[derive(Debug, Serialize, Clone)]
pub struct ColdStart {
    /// Spawn → first 101 on /ws/cold, ms.
    pub to_first_101_ms: f64,
    /// Spawn → the runtime printed its URL, ms.
    pub to_url_ms: f64,
    /// Connect attempts before the 101.
    pub attempts: u64,
}

/// Starts a fresh `kind` (new state directory) and polls an upgrade every 10 ms until the
/// first 101; stops it again.
pub async fn cold_start(
    root: &Path,
    kind: Kind,
    secrets: &Secrets,
    log: &Path,
    token: Option<&str>,
) -> Result<ColdStart, String> {
    let t0 = Instant::now();
    let mut running = target::start(kind, root, secrets, log)?;
    let to_url = t0.elapsed();
    let mut attempts = 0;
    let result = loop {
        attempts += 1;
        let protocol = kind.wire().subprotocol();
        match upgrade(
            &running.addr,
            "/ws/cold",
            token,
            protocol,
            Duration::from_secs(10),
        )
        .await
        {
            Upgrade::Open(ws, _) => {
                let at = t0.elapsed();
                drop(ws);
                break Ok(at);
            }
            Upgrade::Refused(s, body, _) if s != 503 && s != 502 => {
                break Err(format!(
                    "cold start: status {s}: {}",
                    String::from_utf8_lossy(&body)
                ))
            }
            _ => {}
        }
        if t0.elapsed() > Duration::from_secs(60) {
            break Err("cold start: no 101 within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    running.stop();
    let at = result?;
    Ok(ColdStart {
        to_first_101_ms: at.as_secs_f64() * 1000.0,
        to_url_ms: to_url.as_secs_f64() * 1000.0,
        attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same bytes as `gzip -9c` would give, header included: compare with the real gzip
    /// when it is installed (deflate implementations may differ by a few bytes).
    #[test]
    fn gzip_header_carries_the_name_like_gzip_does() {
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let named = gzip9_len(&data, Some("index_bg.wasm"));
        let unnamed = gzip9_len(&data, None);
        assert_eq!(named, unnamed + "index_bg.wasm".len() as u64 + 1);
    }

    #[test]
    fn finds_main_in_wrangler_toml() {
        let dir = std::env::temp_dir().join(format!("rgb-size-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("t")).unwrap();
        std::fs::write(
            dir.join("t/wrangler.toml"),
            "name = \"x\"\nmain = \"src/index.js\"\n",
        )
        .unwrap();
        assert_eq!(
            wrangler_main(&dir, "t/wrangler.toml").unwrap(),
            "t/src/index.js"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
