//! WebSocket upgrades over plain TCP.

use futures_util::{SinkExt, StreamExt};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

static START: OnceLock<Instant> = OnceLock::new();

/// The generator's time origin (every send timestamp is relative to it).
pub fn start() -> Instant {
    *START.get_or_init(Instant::now)
}

/// Nanoseconds since [`start`].
pub fn now_ns() -> u64 {
    start().elapsed().as_nanos() as u64
}

/// The client sockets' settings. tungstenite's default read buffer is 128 KiB, and every
/// read zero-fills the unused part of it (`resize(capacity, 0)` before `read`): each frame
/// takes two reads (the frame, then WouldBlock), so each delivery would cost two 128 KiB
/// memsets, and a room of 1000 clients would touch 128 MB. A 4 KiB buffer holds many of
/// the benchmark's frames and keeps that cost off the generator's core.
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

pub enum Upgrade {
    /// 101: the socket and the time from the start of the TCP connect to the 101.
    Open(Box<Ws>, Duration),
    /// An HTTP answer other than 101: status and body.
    Refused(u16, Vec<u8>, Duration),
    /// No HTTP answer (connect error, reset, timeout).
    Failed(String),
}

/// `GET ws://addr/path` with `Authorization: Bearer <token>` and `Sec-WebSocket-Protocol:
/// <protocol>` when given. A 101 that does not select the protocol offered is `Failed`.
pub async fn upgrade(
    addr: &str,
    path: &str,
    token: Option<&str>,
    protocol: Option<&str>,
    timeout: Duration,
) -> Upgrade {
    let mut req = match format!("ws://{addr}{path}").into_client_request() {
        Ok(r) => r,
        Err(e) => return Upgrade::Failed(format!("request: {e}")),
    };
    if let Some(t) = token {
        match HeaderValue::from_str(&format!("Bearer {t}")) {
            Ok(v) => {
                req.headers_mut().insert("Authorization", v);
            }
            Err(e) => return Upgrade::Failed(format!("header: {e}")),
        }
    }
    if let Some(p) = protocol {
        match HeaderValue::from_str(p) {
            Ok(v) => {
                req.headers_mut().insert("Sec-WebSocket-Protocol", v);
            }
            Err(e) => return Upgrade::Failed(format!("header: {e}")),
        }
    }
    let t0 = Instant::now();
    let fut = async {
        let tcp = TcpStream::connect(addr).await.map_err(WsError::Io)?;
        let _ = tcp.set_nodelay(true);
        tokio_tungstenite::client_async_with_config(req, tcp, Some(client_config())).await
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Upgrade::Failed(format!("no answer within {timeout:?}")),
        Ok(Ok((ws, _resp))) => Upgrade::Open(Box::new(ws), t0.elapsed()),
        Ok(Err(WsError::Http(resp))) => {
            let status = resp.status().as_u16();
            Upgrade::Refused(status, resp.into_body().unwrap_or_default(), t0.elapsed())
        }
        Ok(Err(e)) => Upgrade::Failed(e.to_string()),
    }
}

/// The upgrade request of [`upgrade`] sent by the plain HTTP client, for the rejection
/// path: its answer (status and whole body) is read exactly. A 101 is reported as
/// `Refused(101, ..)` (and the connection dropped).
pub async fn upgrade_expecting_refusal(
    addr: &str,
    path: &str,
    token: Option<&str>,
    protocol: Option<&str>,
) -> Upgrade {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    if let Some(p) = protocol {
        headers.push(("Sec-WebSocket-Protocol", p));
    }
    let t0 = Instant::now();
    match crate::http::request_with(addr, "GET", path, &headers, b"", "Upgrade").await {
        Ok(r) => Upgrade::Refused(r.status, r.body, t0.elapsed()),
        Err(e) => Upgrade::Failed(e),
    }
}

/// Sends a close frame and waits (at most `linger`) for the server's close or EOF.
pub async fn close_politely(mut ws: Ws, linger: Duration) {
    let _ = tokio::time::timeout(linger, async {
        if ws.send(Message::Close(None)).await.is_err() {
            return;
        }
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
}

/// Reads frames until one satisfies `pred` (text frames only); false on close, error or
/// timeout.
pub async fn wait_for_text(ws: &mut Ws, timeout: Duration, pred: impl Fn(&[u8]) -> bool) -> bool {
    tokio::time::timeout(timeout, async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Text(t)) if pred(t.as_bytes()) => return true,
                Ok(Message::Close(_)) | Err(_) => return false,
                Ok(_) => {}
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}
