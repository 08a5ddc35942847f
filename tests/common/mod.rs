//! End-to-end harness: the built Worker on the real workerd runtime (Miniflare, driven by
//! `tests/support/runtime.mjs` from `wrangler.toml`), real HTTP and WebSocket clients over
//! loopback sockets.
//!
//! Each test binary starts one runtime, on first use, with its own fresh D1 and Durable
//! Object state. The runtime stops when the test process exits, however it exits: its
//! stdin is a pipe from this process (EOF stops it) and it gets SIGTERM if this process
//! dies (`PR_SET_PDEATHSIG`). Worker logs go to `tests/artifacts/<binary>.log`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Test secrets (never used outside tests).
pub const JWT_SECRET: &str = "e2e-test-jwt-secret-0123456789abcdef";
pub const ADMIN_TOKEN: &str = "e2e-test-admin-token";
/// How long to wait for a frame that should arrive. Generous: only a failure waits it out.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to listen for a frame that must NOT arrive.
pub const QUIET_PERIOD: Duration = Duration::from_millis(400);
/// Longer than workerd's 10 s inactivity eviction of a Durable Object (see
/// `tests/hibernation.rs` for how an eviction is shown).
pub const EVICTION_IDLE: Duration = Duration::from_secs(13);

/// Dev-style users every runtime is seeded with: (username, password, display name).
pub const USERS: &[(&str, &str, &str)] = &[
    ("alice", "alice-test-password", "Alice"),
    ("bob", "bob-test-password", "Bob"),
    ("carol", "carol-test-password", "Carol"),
];

pub struct Server {
    pub url: String,
    /// The vars this runtime was started with (on top of wrangler.toml's).
    pub vars: Vec<(String, String)>,
    /// Where D1 and Durable Object state persist ([`Server::restart`] reuses it).
    state: PathBuf,
    // Dropping the stdin pipe stops the runtime; kept for the process lifetime.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| s.rsplit_once('-').map(|(n, _)| n.to_owned()).unwrap_or(s))
        .unwrap_or_else(|| "tests".into())
}

/// Builds the Worker if `src/` changed (a no-op otherwise), once per process.
fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(root().join("scripts/build"))
            .status()
            .expect("run scripts/build");
        assert!(status.success(), "scripts/build failed");
    });
}

impl Server {
    /// Starts a runtime with `vars` layered over wrangler.toml's `[vars]` (the default
    /// test secrets are included unless overridden; a value of "" unbinds nothing but sets
    /// the empty string). Blocks until it serves and is seeded with [`USERS`].
    pub fn start(vars: &[(&str, &str)]) -> Server {
        ensure_built();
        let mut all: Vec<(String, String)> = vec![
            ("JWT_SECRET".into(), JWT_SECRET.into()),
            ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        ];
        for (k, v) in vars {
            all.retain(|(key, _)| key != k);
            all.push((k.to_string(), v.to_string()));
        }
        let state = std::env::temp_dir().join(format!(
            "roomgate-e2e-{}-{}-{}",
            binary_name(),
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&state);
        let server = Self::spawn(all, state, true);
        server.seed_users();
        server
    }

    /// Stops this runtime and starts a new one on the same state (D1, Durable Objects)
    /// with the same vars: what a redeploy or a machine restart looks like to the Worker.
    /// Blocks until the old runtime has exited and the new one serves. For a runtime a
    /// test owns (not the shared [`server`]); the URL changes.
    pub fn restart(self) -> Server {
        self.restart_with(&[])
    }

    /// [`Server::restart`] with some vars changed: a redeploy with a new configuration.
    pub fn restart_with(self, changes: &[(&str, &str)]) -> Server {
        let Server {
            vars,
            state,
            _stdin,
            _child,
            ..
        } = self;
        drop(_stdin);
        // Its exit status is no signal: the script takes its process group (workerd and
        // itself) down with SIGKILL once Miniflare is disposed.
        let _ = _child
            .into_inner()
            .unwrap()
            .wait()
            .expect("wait for runtime");
        let mut vars = vars;
        for (k, v) in changes {
            vars.retain(|(key, _)| key != k);
            vars.push((k.to_string(), v.to_string()));
        }
        Self::spawn(vars, state, false)
    }

    /// Starts the runtime process on `state`; `fresh`: apply the D1 migrations (a new
    /// state directory) rather than reuse what is there.
    fn spawn(all: Vec<(String, String)>, state: PathBuf, fresh: bool) -> Server {
        let artifacts = root().join("tests/artifacts");
        std::fs::create_dir_all(&artifacts).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(!fresh)
            .write(true)
            .truncate(fresh)
            .open(artifacts.join(format!("{}.log", binary_name())))
            .unwrap();

        let vars_json: serde_json::Map<String, Value> =
            all.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let opts = json!({"stateDir": state, "vars": vars_json, "migrate": fresh}).to_string();
        let mut cmd = Command::new("node");
        cmd.arg(root().join("tests/support/runtime.mjs"))
            .arg(opts)
            .current_dir(root())
            .env("ROOMGATE_RUNTIME_PGID_LEADER", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        // SAFETY: setpgid and prctl are async-signal-safe and touch only the child.
        unsafe {
            cmd.pre_exec(|| {
                // Own process group, so the script can take workerd down with it.
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        // PR_SET_PDEATHSIG fires when the *thread* that spawned the child exits, and test
        // threads end with their test: spawn from a thread that lives as long as the
        // process.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tx.send(cmd.spawn()).unwrap();
            loop {
                std::thread::park();
            }
        });
        let mut child = rx
            .recv()
            .unwrap()
            .expect("spawn node (is Node.js installed?)");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read runtime url");
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!(
                "runtime did not start (see tests/artifacts/{}.log): {line:?}",
                binary_name()
            )
        });
        Server {
            url: ready["url"].as_str().unwrap().to_owned(),
            vars: all,
            state,
            _stdin: Mutex::new(stdin),
            _child: Mutex::new(child),
        }
    }

    fn seed_users(&self) {
        if self.var("ADMIN_TOKEN").is_none_or(str::is_empty) {
            return;
        }
        let url = self.url.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                for (user, password, name) in USERS {
                    let res = reqwest::Client::new()
                        .put(format!("{url}/admin/users/{user}"))
                        .bearer_auth(ADMIN_TOKEN)
                        .json(&json!({"password": password, "name": name}))
                        .send()
                        .await
                        .expect("seed user");
                    assert!(
                        res.status().is_success(),
                        "seeding {user}: {}",
                        res.status()
                    );
                }
            })
        })
        .join()
        .expect("seeding users");
    }

    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.url.replacen("http", "ws", 1))
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// `GET /admin/rooms/{room}` (the room's stats), with `admin_token` if given.
    pub async fn room_stats(&self, room: &str, admin_token: Option<&str>) -> Reply {
        let mut req = self.http().get(format!("{}/admin/rooms/{room}", self.url));
        if let Some(t) = admin_token {
            req = req.bearer_auth(t);
        }
        Reply::from(req.send().await.unwrap()).await
    }

    /// The random id of the in-memory instance of `room` that answers its admin stats: a
    /// different one after an eviction.
    pub async fn room_instance(&self, room: &str) -> String {
        let stats = self.room_stats(room, Some(ADMIN_TOKEN)).await;
        assert_eq!(stats.status, 200, "{}", stats.text);
        stats.json["instance"].as_str().unwrap().to_owned()
    }

    /// `POST /login` with a JSON body.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.http()
            .post(format!("{}/login", self.url))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Logs a seeded user in and returns the token.
    pub async fn token(&self, username: &str) -> String {
        let (_, password, _) = USERS
            .iter()
            .find(|(u, _, _)| *u == username)
            .expect("seeded user");
        let res = self.login(username, password).await;
        assert_eq!(res.status(), 200, "login {username}");
        let body: Value = res.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// The user id of a seeded user (from a login).
    pub async fn user_id(&self, username: &str) -> String {
        let token = self.token(username).await;
        claims_of(&token)["sub"].as_str().unwrap().to_owned()
    }

    /// Opens `/ws/{room}` with the token in the browser transport (subprotocol).
    pub async fn join(&self, room: &str, token: &str) -> Client {
        self.connect(&format!("/ws/{room}"), Auth::Subprotocol(token))
            .await
            .unwrap_or_else(|f| panic!("upgrade refused: {} {}", f.status, f.body))
    }

    /// Joins and consumes the `welcome` frame, returning both.
    pub async fn join_welcomed(&self, room: &str, token: &str) -> (Client, Value) {
        let mut c = self.join(room, token).await;
        let welcome = c.recv_type("welcome").await;
        (c, welcome)
    }

    /// Attempts a WebSocket upgrade at `path` with `auth`.
    pub async fn connect(&self, path: &str, auth: Auth<'_>) -> Result<Client, Refused> {
        self.connect_with(path, auth, &[]).await
    }

    /// Attempts an upgrade with extra request headers.
    pub async fn connect_with(
        &self,
        path: &str,
        auth: Auth<'_>,
        headers: &[(&str, &str)],
    ) -> Result<Client, Refused> {
        let mut url = self.ws_url(path);
        let mut req = match &auth {
            Auth::Query(t) => {
                url.push_str(if url.contains('?') { "&" } else { "?" });
                url.push_str("token=");
                url.push_str(t);
                url.as_str().into_client_request().unwrap()
            }
            _ => url.as_str().into_client_request().unwrap(),
        };
        let h = req.headers_mut();
        match auth {
            Auth::Subprotocol(t) => {
                h.insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_str(&format!("roomgate.v1, bearer.{t}")).unwrap(),
                );
            }
            Auth::Header(t) => {
                h.insert(
                    "authorization",
                    HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
                );
            }
            Auth::Query(_) | Auth::None => {}
        }
        for (k, v) in headers {
            h.insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let (sent_url, sent_headers) = (req.uri().to_string(), req.headers().clone());
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, response)) => Ok(Client {
                ws,
                protocol: response
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap().to_owned()),
            }),
            Err(WsError::Http(response)) => {
                let (parts, body) = response.into_parts();
                let status = parts.status.as_u16();
                let mut body = body
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                // tungstenite keeps only the body bytes that arrived together with the
                // response head, so a refusal's body can be cut short. Replay the
                // identical request over plain HTTP to read all of it.
                if serde_json::from_str::<Value>(&body).is_err() {
                    let mut replay = self.http().get(sent_url.replacen("ws", "http", 1));
                    for (k, v) in &sent_headers {
                        replay = replay.header(k.as_str(), v.as_bytes());
                    }
                    let res = replay.send().await.unwrap();
                    assert_eq!(
                        res.status().as_u16(),
                        status,
                        "replayed refusal changed status"
                    );
                    body = res.text().await.unwrap();
                }
                Err(Refused {
                    status,
                    headers: parts.headers,
                    json: serde_json::from_str(&body).unwrap_or(Value::Null),
                    body,
                })
            }
            Err(e) => panic!("websocket connect to {path}: {e}"),
        }
    }
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The runtime shared by every test in this binary, started on first use with the
/// default test configuration.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(&[]))
}

/// How an upgrade carries its token.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    Subprotocol(&'a str),
    Header(&'a str),
    Query(&'a str),
    None,
}

/// An upgrade the server refused: no socket was opened.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub headers: tokio_tungstenite::tungstenite::http::HeaderMap,
    pub body: String,
    pub json: Value,
}

impl Refused {
    /// Asserts the status and the JSON error code.
    pub fn expect(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(code)),
            "refusal body: {}",
            self.body
        );
        assert!(
            self.json["message"].is_string(),
            "no message: {}",
            self.body
        );
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server selected in its 101.
    pub protocol: Option<String>,
}

/// What a socket saw next.
#[derive(Debug)]
pub enum Event {
    Frame(Value),
    Closed(Option<u16>),
}

impl Client {
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn publish(&mut self, data: Value) {
        self.send_json(json!({"type": "publish", "data": data}))
            .await;
    }

    /// The next text frame or close, within [`FRAME_TIMEOUT`]. Pings are skipped.
    pub async fn next_event(&mut self) -> Event {
        self.next_event_within(FRAME_TIMEOUT)
            .await
            .expect("timed out waiting for a frame")
    }

    pub async fn next_event_within(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Some(Event::Frame(
                        serde_json::from_str(t.as_str()).expect("server sent invalid JSON"),
                    ))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(Event::Closed(frame.map(|f| u16::from(f.code))))
                }
                Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame"),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Event::Closed(None)),
            }
        }
    }

    /// The next frame, which must be a JSON text frame.
    pub async fn recv(&mut self) -> Value {
        match self.next_event().await {
            Event::Frame(v) => v,
            Event::Closed(code) => panic!("socket closed ({code:?}) while expecting a frame"),
        }
    }

    /// The next frame, asserting its `type`.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], kind, "unexpected frame: {v}");
        v
    }

    /// Asserts that no frame arrives within [`QUIET_PERIOD`].
    pub async fn expect_silence(&mut self) {
        if let Some(e) = self.next_event_within(QUIET_PERIOD).await {
            panic!("expected silence, got {e:?}");
        }
    }

    /// Waits for the server to close the socket and returns the close code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next_event().await {
                Event::Closed(code) => return code,
                Event::Frame(_) => continue,
            }
        }
    }

    /// Waits up to `wait` for the server to close the socket: the close code, its
    /// reason, and the frames that arrived before it (in order). `None` when the socket is
    /// still open after `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> Option<ClosedWith> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut frames = Vec::new();
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    frames.push(serde_json::from_str(t.as_str()).expect("server sent invalid JSON"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(ClosedWith {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                        frames,
                    })
                }
                Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame"),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    return Some(ClosedWith {
                        code: None,
                        reason: String::new(),
                        frames,
                    })
                }
            }
        }
    }

    /// Closes the socket normally and waits for the server's answer.
    pub async fn close(mut self) {
        let _ = self
            .ws
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(FRAME_TIMEOUT, self.ws.next()).await {}
    }
}

/// How the server closed a socket ([`Client::closed_within`]).
#[derive(Debug)]
pub struct ClosedWith {
    pub code: Option<u16>,
    pub reason: String,
    /// Frames received before the close.
    pub frames: Vec<Value>,
}

/// An HTTP response as a test looks at it: status, headers, raw text, and the JSON (or
/// `Null` when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub async fn from(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts status, JSON error code, a message, nothing else in the body, and the
    /// JSON content type.
    pub fn expect_error(&self, status: u16, code: &str, case: &str) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(code)),
            "{case}: body {}",
            self.text
        );
        assert!(
            self.json["message"].is_string(),
            "{case}: no message: {}",
            self.text
        );
        assert_eq!(
            self.json.as_object().map(|o| o.len()),
            Some(2),
            "{case}: error body has exactly error and message: {}",
            self.text
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{case}"
        );
    }
}

/// Decodes a JWT's payload without verifying it (to read `sub`, `exp`, ...).
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("jwt payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Mints an HS256-signed JWT with any header and claims — an implementation independent
/// of the server's, so tests can forge exactly the token they mean.
pub fn mint(secret: &[u8], header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Valid roomgate claims for `sub`/`name`, valid for an hour from now.
pub fn claims(sub: &str, name: &str) -> Value {
    let n = now();
    json!({"sub": sub, "name": name, "iss": "roomgate", "aud": "roomgate",
           "iat": n, "nbf": n, "exp": n + 3600, "jti": format!("jti-{sub}-{n}")})
}

/// A valid token for an arbitrary identity, signed with the test secret.
pub fn token_for(sub: &str, name: &str) -> String {
    mint(
        JWT_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims(sub, name),
    )
}
