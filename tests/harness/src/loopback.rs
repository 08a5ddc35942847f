//! A real HTTP server on loopback that roomgate calls out to (an identity provider's key
//! set, a discovery document, a webhook receiver), with each path's answer set and
//! changed by the test, and every request to it counted and kept.
//!
//! HTTP/1.1, one request per connection (`Connection: close`), enough for the runtime's
//! `fetch`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How a path answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this JSON text.
    Json(String),
    /// This status, with an empty body.
    Status(u16),
    /// 200 with this body, after a delay.
    Slow(Duration, String),
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    pub body: String,
    /// The status it was answered with.
    pub status: u16,
}

#[derive(Default)]
struct Routes {
    answers: HashMap<String, Answer>,
    hits: HashMap<String, usize>,
    seen: HashMap<String, Vec<Seen>>,
}

/// A running server; it stops with the test process.
#[derive(Clone)]
pub struct Loopback {
    pub base: String,
    routes: Arc<Mutex<Routes>>,
}

impl Loopback {
    /// Binds a free port on 127.0.0.1 and serves from a task of the current runtime.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<Routes>> = Arc::default();
        let served = routes.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let routes = served.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    let head_end = loop {
                        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head_text = String::from_utf8_lossy(&request[..head_end]).into_owned();
                    let path = head_text
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .to_owned();
                    let headers: HashMap<String, String> = head_text
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while request.len() < head_end + length {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body =
                        String::from_utf8_lossy(&request[head_end..head_end + length]).into_owned();
                    let answer = {
                        let mut r = routes.lock().unwrap();
                        *r.hits.entry(path.clone()).or_default() += 1;
                        r.answers.get(&path).cloned()
                    };
                    let (status, body_out) = match answer {
                        None => (404, String::new()),
                        Some(Answer::Json(body)) => (200, body),
                        Some(Answer::Status(status)) => (status, String::new()),
                        Some(Answer::Slow(delay, body)) => {
                            tokio::time::sleep(delay).await;
                            (200, body)
                        }
                    };
                    routes
                        .lock()
                        .unwrap()
                        .seen
                        .entry(path.clone())
                        .or_default()
                        .push(Seen {
                            headers,
                            body,
                            status,
                        });
                    let body = body_out;
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { base, routes }
    }

    /// [`Self::start`] on a thread of its own, so the server outlives any one test's
    /// runtime (for a server shared by the tests of a binary).
    pub fn start_in_background() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                tx.send(Self::start().await).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// From now on `path` answers `answer`.
    pub fn set(&self, path: &str, answer: Answer) {
        self.routes
            .lock()
            .unwrap()
            .answers
            .insert(path.to_owned(), answer);
    }

    /// How many requests `path` has had.
    pub fn hits(&self, path: &str) -> usize {
        self.routes
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The requests `path` has answered so far, in order.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.routes
            .lock()
            .unwrap()
            .seen
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}
