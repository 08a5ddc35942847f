//! `roomgate-bench-native`: a native WebSocket broadcast server speaking roomgate's wire
//! subset (bench/README.md), the "machine's limit" target of the benchmarks.
//!
//! One thread, like a workerd isolate: a current-thread tokio runtime with a `LocalSet`
//! (the harness also pins the process to one core). Usage:
//!
//! ```text
//! JWT_SECRET=... roomgate-bench-native [--port N]
//! ```
//!
//! Binds 127.0.0.1 (port 0 = any free port), prints `{"url":"http://127.0.0.1:<port>"}`
//! once ready, and exits 0 when stdin reaches EOF or on SIGTERM/SIGINT.

mod server;
mod token;

use std::io::{Read, Write};
use std::process::ExitCode;
use std::rc::Rc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::LocalSet;

use crate::server::Server;
use crate::token::Verifier;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomgate-bench-native: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let port = parse_port(std::env::args().skip(1))?;
    let secret = std::env::var("JWT_SECRET").map_err(|_| "JWT_SECRET is not set")?;
    let issuer = std::env::var("JWT_ISSUER").unwrap_or_else(|_| "roomgate".into());
    let audience = std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "roomgate".into());
    let verifier = Verifier::new(secret.as_bytes(), issuer, audience)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    LocalSet::new().block_on(&runtime, serve(port, verifier))
}

/// `[--port N]` (also `--port=N`).
fn parse_port(mut args: impl Iterator<Item = String>) -> Result<u16, String> {
    const USAGE: &str = "usage: roomgate-bench-native [--port N]";
    let mut port = 0;
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--port" => args.next().ok_or(USAGE)?,
            _ => match arg.strip_prefix("--port=") {
                Some(v) => v.to_owned(),
                None if arg == "-h" || arg == "--help" => return Err(USAGE.into()),
                None => return Err(format!("unexpected argument {arg:?}; {USAGE}")),
            },
        };
        port = value
            .parse()
            .map_err(|_| format!("bad port {value:?}; {USAGE}"))?;
    }
    Ok(port)
}

async fn serve(port: u16, verifier: Verifier) -> Result<(), String> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot bind 127.0.0.1:{port}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;

    // Handlers first: a SIGTERM sent right after the ready line must not kill the
    // process with the default action.
    let terminated = terminate_signal()?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, r#"{{"url":"http://{addr}"}}"#)
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(stdout);

    let server = Rc::new(Server::new(verifier));
    let accept = async {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::task::spawn_local(Rc::clone(&server).serve(stream));
                }
                Err(e) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    eprintln!("roomgate-bench-native: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    };

    tokio::select! {
        () = accept => {}
        () = stdin_closed() => {}
        () = terminated => {}
    }
    Ok(())
}

/// Resolves when stdin reaches EOF (or fails). A plain thread blocks on the read: it never
/// keeps the process alive, unlike a runtime blocking task.
async fn stdin_closed() {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 256];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// Installs the SIGTERM and SIGINT handlers; the future resolves on either.
fn terminate_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind| signal(kind).map_err(|e| format!("cannot handle signals: {e}"));
    let mut term = install(SignalKind::terminate())?;
    let mut int = install(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::parse_port;

    fn args(a: &[&str]) -> impl Iterator<Item = String> {
        a.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn port_argument() {
        assert_eq!(parse_port(args(&[])), Ok(0));
        assert_eq!(parse_port(args(&["--port", "8080"])), Ok(8080));
        assert_eq!(parse_port(args(&["--port=9"])), Ok(9));
        assert!(parse_port(args(&["--port"])).is_err());
        assert!(parse_port(args(&["--port", "x"])).is_err());
        assert!(parse_port(args(&["--port", "70000"])).is_err());
        assert!(parse_port(args(&["--verbose"])).is_err());
    }
}
