//! End to end: starts the real binary and talks to it over loopback.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

const SECRET: &str = "e2e-secret-e2e-secret-e2e-secret-0123";
const WAIT: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<TcpStream>;

/// The running binary; killed on drop if a test fails before closing its stdin.
struct Native {
    child: Child,
    addr: String,
}

impl Native {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_roomgate-bench-native"))
            .env("JWT_SECRET", SECRET)
            .env_remove("JWT_ISSUER")
            .env_remove("JWT_AUDIENCE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start roomgate-bench-native");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line).expect("ready line is JSON");
        let url = ready["url"].as_str().expect("ready line has url");
        let addr = url.strip_prefix("http://").unwrap().to_owned();
        Self { child, addr }
    }

    async fn connect(&self, room: &str, token: Option<&str>) -> Result<Ws, WsError> {
        let mut req = format!("ws://{}/ws/{room}", self.addr)
            .into_client_request()
            .unwrap();
        if let Some(token) = token {
            req.headers_mut().insert(
                header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        let tcp = TcpStream::connect(&self.addr).await.unwrap();
        let (ws, resp) = tokio_tungstenite::client_async(req, tcp).await?;
        assert_eq!(resp.status(), 101);
        Ok(ws)
    }
}

impl Drop for Native {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(sub: &str, name: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    sign(
        &json!({"alg": "HS256", "typ": "JWT", "kid": "primary"}),
        &json!({
            "iss": "roomgate", "aud": "roomgate", "sub": sub, "name": name,
            "iat": now, "exp": now + 600, "jti": format!("jti-{sub}"),
        }),
    )
}

fn sign(header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// The next text frame, raw.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        match timeout(WAIT, ws.next()).await.expect("frame in time") {
            Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn next_json(ws: &mut Ws) -> Value {
    serde_json::from_str(&next_text(ws).await).unwrap()
}

#[tokio::test]
async fn two_clients_share_one_ordered_room() {
    let native = Native::start();
    let mut alice = native
        .connect("lobby", Some(&token("u1", "Alice")))
        .await
        .unwrap();
    let mut bob = native
        .connect("lobby", Some(&token("u2", "Bob")))
        .await
        .unwrap();

    let w = next_json(&mut alice).await;
    assert_eq!(w["type"], "welcome");
    assert_eq!(w["room"], "lobby");
    assert_eq!(w["user"], json!({"id": "u1", "name": "Alice"}));
    assert_eq!(w["last_seq"], 0);
    let w = next_json(&mut bob).await;
    assert_eq!(w["type"], "welcome");
    assert_eq!(w["user"], json!({"id": "u2", "name": "Bob"}));

    // `data` is relayed byte for byte, odd spacing and key order included.
    let data1 = r#"{ "z":1,  "a" : [1, 2.50, "é\u00e9"] }"#;
    alice
        .send(Message::text(format!(
            r#"{{"type":"publish","data":{data1}}}"#
        )))
        .await
        .unwrap();
    // Bob publishes once Alice's message is sequenced, so the order is known.
    let alice_first = next_text(&mut alice).await;
    bob.send(Message::text(
        r#"{"data":"two","type":"publish","extra":true}"#,
    ))
    .await
    .unwrap();
    let bob_first = next_text(&mut bob).await;

    for (ws, first) in [(&mut alice, alice_first), (&mut bob, bob_first)] {
        assert!(
            first.contains(&format!(r#""data":{data1},"#)),
            "data kept verbatim: {first}"
        );
        let first: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(first["type"], "message");
        assert_eq!(first["seq"], 1);
        assert_eq!(first["from"], json!({"id": "u1", "name": "Alice"}));
        assert!(first["ts"].as_u64().unwrap() > 1_600_000_000_000);

        let second = next_json(ws).await;
        assert_eq!(second["seq"], 2);
        assert_eq!(second["from"], json!({"id": "u2", "name": "Bob"}));
        assert_eq!(second["data"], "two");
    }

    // A later joiner learns the room's seq; another room has its own.
    let mut carol = native
        .connect("lobby", Some(&token("u3", "Carol")))
        .await
        .unwrap();
    assert_eq!(next_json(&mut carol).await["last_seq"], 2);
    let mut dave = native
        .connect("other.room-1", Some(&token("u4", "Dave")))
        .await
        .unwrap();
    assert_eq!(next_json(&mut dave).await["last_seq"], 0);

    // A closed socket leaves the room; the others keep getting messages.
    bob.close(None).await.unwrap();
    drop(bob);
    carol
        .send(Message::text(r#"{"type":"publish","data":3}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut alice).await["seq"], 3);
    assert_eq!(next_json(&mut carol).await["seq"], 3);
}

#[tokio::test]
async fn refused_upgrades_get_http_errors() {
    let native = Native::start();
    let expired = {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        sign(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &json!({"iss": "roomgate", "aud": "roomgate", "sub": "u1",
                    "iat": now - 7200, "exp": now - 3600}),
        )
    };
    let cases = [
        ("lobby", None, 401),
        ("lobby", Some("not.a.jwt".to_owned()), 401),
        ("lobby", Some(expired), 401),
        ("bad%20room", Some(token("u1", "A")), 400),
        (&"x".repeat(65), Some(token("u1", "A")), 400),
    ];
    for (room, token, want) in cases {
        let err = native
            .connect(room, token.as_deref())
            .await
            .expect_err("upgrade refused");
        let WsError::Http(resp) = err else {
            panic!("expected an HTTP refusal, got {err:?}");
        };
        assert_eq!(resp.status(), want, "{room} {token:?}");
        let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
        assert!(body["message"].is_string());
        if want == 401 {
            assert_eq!(body["error"], "invalid_token");
            let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
        }
    }
}

#[tokio::test]
async fn frame_errors_ping_and_size_limit() {
    let native = Native::start();
    let mut ws = native
        .connect("lobby", Some(&token("u1", "Alice")))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "welcome");

    for (frame, code) in [
        ("not json", "bad_frame"),
        ("[1,2]", "bad_frame"),
        ("{}", "bad_frame"),
        (r#"{"type":7}"#, "bad_frame"),
        (r#"{"type":"publish"}"#, "bad_frame"),
        (r#"{"type":"dance"}"#, "unknown_type"),
    ] {
        ws.send(Message::text(frame)).await.unwrap();
        let reply = next_json(&mut ws).await;
        assert_eq!(reply["type"], "error", "{frame}");
        assert_eq!(reply["code"], code, "{frame}");
    }
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    assert_eq!(next_text(&mut ws).await, r#"{"type":"pong"}"#);

    // Exactly the limit is fine (a valid publish padded to 16,384 bytes)...
    let prefix = r#"{"type":"publish","data":""#;
    let pad = 16 * 1024 - prefix.len() - 2;
    let at_limit = format!("{prefix}{}\"}}", "x".repeat(pad));
    assert_eq!(at_limit.len(), 16 * 1024);
    ws.send(Message::text(at_limit)).await.unwrap();
    assert_eq!(next_json(&mut ws).await["seq"], 1);

    // ...one byte more closes the socket with 1009.
    ws.send(Message::text("x".repeat(16 * 1024 + 1)))
        .await
        .unwrap();
    let closed = loop {
        match timeout(WAIT, ws.next()).await.expect("close in time") {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed.unwrap().code, CloseCode::Size);
}

/// Waits up to [`WAIT`] for the server to exit, and asserts it exited with success.
fn exits_successfully(native: &mut Native) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = native.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exits_cleanly_when_stdin_closes() {
    let mut native = Native::start();
    drop(native.child.stdin.take());
    exits_successfully(&mut native);
}

#[test]
fn refuses_a_short_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_roomgate-bench-native"))
        .env("JWT_SECRET", "too-short")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET"));
}

#[test]
fn exits_cleanly_on_sigterm() {
    let mut native = Native::start();
    let status = Command::new("kill")
        .args(["-TERM", &native.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    exits_successfully(&mut native);
}
