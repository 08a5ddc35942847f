//! WebSocket clients of a runtime: upgrades with each token transport ([`Auth`]), the
//! [`Refused`] answer when no socket opens, a [`Client`] that reads frames with timeouts
//! ([`Event`], [`ClosedWith`]), and [`upgrade_raw`], which keeps the whole 101 response.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response as UpgradeResponse;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::runtime::Server;

/// How long to wait for a frame that should arrive. Generous: only a failure waits it out.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to listen for a frame that must NOT arrive.
pub const QUIET_PERIOD: Duration = Duration::from_millis(400);

impl Server {
    /// Opens `/ws/{room}` speaking protocol v2 (`roomgate.v2`, token in the subprotocol).
    pub async fn join_v2(&self, room: &str, token: &str) -> Client {
        self.connect(&format!("/ws/{room}"), Auth::SubprotocolV2(token))
            .await
            .unwrap_or_else(|f| panic!("upgrade refused: {} {}", f.status, f.body))
    }

    /// [`Self::join_v2`], consuming the `welcome` frame.
    pub async fn join_v2_welcomed(&self, room: &str, token: &str) -> (Client, Value) {
        let mut c = self.join_v2(room, token).await;
        let welcome = c.recv_type("welcome").await;
        (c, welcome)
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
            Auth::SubprotocolV2(t) => {
                h.insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_str(&format!("roomgate.v2, bearer.{t}")).unwrap(),
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
                queued: Default::default(),
                texts: Vec::new(),
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

/// How an upgrade carries its token.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    Subprotocol(&'a str),
    /// `roomgate.v2, bearer.<token>`.
    SubprotocolV2(&'a str),
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
    /// On a v2 socket: the frames of the last array not yet returned.
    queued: std::collections::VecDeque<Value>,
    /// Every text frame received so far, as the JSON it was (a v2 array whole).
    pub texts: Vec<Value>,
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

    /// Whether the server selected protocol v2 for this socket.
    pub fn is_v2(&self) -> bool {
        self.protocol.as_deref() == Some("roomgate.v2")
    }

    /// The next frame or close within `wait`. On a v2 socket every text frame must be
    /// an array (the runtime's bare `pong` aside), whose frames come one at a time.
    pub async fn next_event_within(&mut self, wait: Duration) -> Option<Event> {
        if let Some(v) = self.queued.pop_front() {
            return Some(Event::Frame(v));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value =
                        serde_json::from_str(t.as_str()).expect("server sent invalid JSON");
                    self.texts.push(v.clone());
                    if !self.is_v2() {
                        return Some(Event::Frame(v));
                    }
                    match v {
                        Value::Array(items) => {
                            assert!(!items.is_empty(), "v2: an empty array");
                            self.queued.extend(items);
                            return self.queued.pop_front().map(Event::Frame);
                        }
                        bare => {
                            assert_eq!(bare, json!({"type": "pong"}), "v2: a bare frame");
                            return Some(Event::Frame(bare));
                        }
                    }
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

    /// The next frame that is not presence (`join` / `leave`, v2's `presence`).
    pub async fn recv_skipping_presence(&mut self) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] != "join" && v["type"] != "leave" && v["type"] != "presence" {
                return v;
            }
        }
    }

    /// The next `message` frame; any other frame but presence fails the test.
    pub async fn recv_message(&mut self) -> Value {
        let v = self.recv_skipping_presence().await;
        assert_eq!(v["type"], "message", "unexpected frame: {v}");
        v
    }

    /// The next frame, asserting its `type`.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], kind, "unexpected frame: {v}");
        v
    }

    /// How many frames the last received text frame held (1 on a v1 socket).
    pub fn last_text_len(&self) -> usize {
        self.texts
            .last()
            .map_or(0, |v| v.as_array().map_or(1, Vec::len))
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
        let mut frames: Vec<Value> = self.queued.drain(..).collect();
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value =
                        serde_json::from_str(t.as_str()).expect("server sent invalid JSON");
                    self.texts.push(v.clone());
                    match v {
                        Value::Array(items) if self.is_v2() => frames.extend(items),
                        v => frames.push(v),
                    }
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

/// A WebSocket upgrade that keeps the whole 101 response (headers included). A refusal
/// is its status and whatever body arrived with the response head (possibly cut short).
///
/// Unlike `Server::connect`, a refusal is never replayed: a replay would redeem a
/// single-use ticket a second time and see a different answer.
pub async fn upgrade_raw(
    s: &Server,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<
    (
        WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
        UpgradeResponse,
    ),
    (u16, String),
> {
    let mut req = s.ws_url(path).into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(pair) => Ok(pair),
        Err(WsError::Http(res)) => {
            let status = res.status().as_u16();
            let body = res
                .into_body()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            Err((status, body))
        }
        Err(e) => panic!("upgrade {path}: {e}"),
    }
}
