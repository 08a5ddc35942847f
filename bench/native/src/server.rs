//! Connections and rooms.
//!
//! Everything runs on one thread (a current-thread runtime plus a `LocalSet`), so the
//! shared state is an `Rc` with a `RefCell`: no locks, and a borrow is never held across
//! an `.await`. Each socket is split in two: the connection task reads frames and acts
//! on them; a writer task drains the socket's unbounded queue, so a slow reader only
//! grows its own queue and never stalls the room. A broadcast is rendered once and the
//! same buffer is queued to every member (cloning a `Utf8Bytes` is a refcount bump).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::token::{Identity, TokenError, Verifier};

/// Largest client text frame (bytes); a larger one closes the socket with 1009.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// Longest room name.
const MAX_ROOM_BYTES: usize = 64;
/// The subprotocol roomgate selects when a client offers it.
const SUBPROTOCOL: &str = "roomgate.v1";
/// The `www-authenticate` value roomgate sends with a 401.
const WWW_AUTHENTICATE: &str = r#"Bearer realm="roomgate", error="invalid_token""#;
/// How long a connection may take to send its upgrade request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most frames a writer takes off its queue before one flush.
const WRITE_BATCH: usize = 64;

const PONG: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"pong"}"#);

/// The process-wide state: the token gate and the rooms.
pub struct Server {
    verifier: Verifier,
    rooms: RefCell<HashMap<Box<str>, Room>>,
    next_conn_id: Cell<u64>,
}

#[derive(Default)]
struct Room {
    /// The last `seq` given out (0 before the first message). Rooms are kept after their
    /// last member leaves so `seq` never goes back, as with roomgate's durable counter.
    seq: u64,
    members: Vec<Peer>,
}

struct Peer {
    conn_id: u64,
    tx: mpsc::UnboundedSender<Message>,
}

/// A member as frames name them; serialised once per connection.
#[derive(Serialize)]
struct Member<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame<'a> {
    Welcome {
        room: &'a str,
        user: &'a RawValue,
        last_seq: u64,
        expires_at: i64,
    },
    Message {
        seq: u64,
        from: &'a RawValue,
        data: &'a RawValue,
        ts: u64,
    },
    Error {
        code: &'a str,
        message: &'a str,
    },
}

impl ServerFrame<'_> {
    fn render(&self) -> Utf8Bytes {
        // Only strings, integers and already-valid raw JSON: serialising cannot fail.
        serde_json::to_string(self)
            .expect("server frames always serialize")
            .into()
    }
}

/// A client frame, parsed in one pass: unknown fields are ignored, `data` is kept as the
/// exact JSON text that was sent. A non-string `type` fails the parse (`bad_frame`).
#[derive(Deserialize)]
struct ClientFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// What the handshake callback decided about an upgrade that was let through.
struct Admitted {
    room: String,
    identity: Identity,
    /// The client offered [`SUBPROTOCOL`]: select it, as roomgate does.
    subprotocol: bool,
}

/// Why an upgrade was refused.
enum Refusal {
    NotFound,
    InvalidRoom,
    InvalidToken(TokenError),
}

impl Refusal {
    /// The HTTP answer, with roomgate's JSON error body.
    fn into_response(self) -> ErrorResponse {
        let (status, error, message) = match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found", "no such route".into()),
            Self::InvalidRoom => (
                StatusCode::BAD_REQUEST,
                "invalid_room",
                "room names are 1-64 characters from A-Z a-z 0-9 _ . -".into(),
            ),
            Self::InvalidToken(why) => (StatusCode::UNAUTHORIZED, "invalid_token", why.to_string()),
        };
        let body = serde_json::json!({ "error": error, "message": message }).to_string();
        let mut resp = ErrorResponse::new(None);
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        *resp.body_mut() = Some(body);
        resp
    }
}

/// The handshake callback: runs [`Server::admit`] and hands the result back through
/// `admitted` (the callback is consumed by the handshake).
struct Gate<'a> {
    server: &'a Server,
    admitted: &'a mut Option<Admitted>,
}

impl Callback for Gate<'_> {
    fn on_request(self, req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
        let who = self.server.admit(req).map_err(Refusal::into_response)?;
        if who.subprotocol {
            resp.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(SUBPROTOCOL),
            );
        }
        *self.admitted = Some(who);
        Ok(resp)
    }
}

impl Server {
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            rooms: RefCell::default(),
            next_conn_id: Cell::new(0),
        }
    }

    /// Serves one accepted TCP connection until it closes.
    pub async fn serve(self: Rc<Self>, stream: TcpStream) {
        // Broadcast frames are small; don't let Nagle hold them back.
        let _ = stream.set_nodelay(true);

        // The gate runs once the request head is read and before the 101 is written, so a
        // refused upgrade never becomes a socket.
        let mut admitted = None;
        let gate = Gate {
            server: &self,
            admitted: &mut admitted,
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME_BYTES))
            .max_frame_size(Some(MAX_FRAME_BYTES));
        let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, gate, Some(config));
        let Ok(Ok(ws)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await else {
            return; // Not a WebSocket upgrade, refused, too slow, or the peer went away.
        };
        let Some(Admitted { room, identity, .. }) = admitted else {
            return;
        };
        self.run_socket(ws, room, identity).await;
    }

    /// The gate's checks: path, then token.
    fn admit(&self, req: &Request) -> Result<Admitted, Refusal> {
        let room = match req.uri().path().strip_prefix("/ws/") {
            Some(room) if is_valid_room_name(room) => room.to_owned(),
            Some(_) => return Err(Refusal::InvalidRoom),
            None => return Err(Refusal::NotFound),
        };
        let identity = bearer_token(req)
            .ok_or(TokenError::Missing)
            .and_then(|token| self.verifier.verify(token, unix_secs()))
            .map_err(Refusal::InvalidToken)?;
        let subprotocol = req
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == SUBPROTOCOL);
        Ok(Admitted {
            room,
            identity,
            subprotocol,
        })
    }

    /// An open socket: welcome, join, then read frames until it closes.
    async fn run_socket(&self, ws: WebSocketStream<TcpStream>, room: String, who: Identity) {
        let (sink, mut frames) = ws.split();
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::task::spawn_local(write_loop(sink, rx));

        let conn_id = self.next_conn_id.get();
        self.next_conn_id.set(conn_id + 1);
        let member = Member {
            id: &who.id,
            name: &who.name,
        };
        let member_json = serde_json::to_string(&member).expect("member always serializes");
        let member_json = RawValue::from_string(member_json).expect("serde_json output is JSON");

        // Welcome and join in one borrow: no message can slip between `last_seq` and the
        // membership, and the welcome is queued ahead of every broadcast.
        {
            let mut rooms = self.rooms.borrow_mut();
            let state = rooms.entry(room.as_str().into()).or_default();
            let welcome = ServerFrame::Welcome {
                room: &room,
                user: &member_json,
                last_seq: state.seq,
                expires_at: who.exp,
            };
            let _ = tx.send(Message::Text(welcome.render()));
            state.members.push(Peer {
                conn_id,
                tx: tx.clone(),
            });
        }

        while let Some(frame) = frames.next().await {
            let reply = match frame {
                Ok(Message::Text(text)) => self.on_text(&room, &member_json, &text),
                Ok(Message::Binary(_)) => Some(close(
                    CloseCode::Unsupported,
                    "binary frames are not accepted",
                )),
                // Pings are answered by tungstenite; a close is echoed by it too.
                Ok(Message::Close(_)) => break,
                Ok(_) => None,
                Err(WsError::Capacity(_)) => Some(close(CloseCode::Size, "frame too large")),
                Err(_) => break,
            };
            if let Some(reply) = reply {
                let closing = reply.is_close();
                let _ = tx.send(reply);
                if closing {
                    break;
                }
            }
        }

        self.leave(&room, conn_id);
        // With the last sender gone the writer drains its queue, closes and ends.
        drop(tx);
        let _ = writer.await;
    }

    /// Handles one text frame; returns the reply for this socket only, if any.
    fn on_text(&self, room: &str, from: &RawValue, text: &str) -> Option<Message> {
        if text.len() > MAX_FRAME_BYTES {
            // Unreachable with the configured limit; kept so the rule stands on its own.
            return Some(close(CloseCode::Size, "frame too large"));
        }
        // A struct also deserialises from a JSON array; frames must be objects.
        if !text.trim_start().starts_with('{') {
            return Some(error_frame("bad_frame", "frame is not a JSON object"));
        }
        let frame: ClientFrame<'_> = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(_) => return Some(error_frame("bad_frame", "frame is not valid JSON")),
        };
        match frame.kind.as_deref() {
            Some("publish") => match frame.data {
                Some(data) => {
                    self.publish(room, from, data);
                    None
                }
                None => Some(error_frame("bad_frame", "publish needs data")),
            },
            Some("ping") => Some(Message::Text(PONG)),
            Some(_) => Some(error_frame("unknown_type", "unknown frame type")),
            None => Some(error_frame("bad_frame", "frame has no type")),
        }
    }

    /// Gives the message the room's next `seq` and queues it to every member.
    fn publish(&self, room: &str, from: &RawValue, data: &RawValue) {
        let mut rooms = self.rooms.borrow_mut();
        let Some(state) = rooms.get_mut(room) else {
            return;
        };
        state.seq += 1;
        let frame = ServerFrame::Message {
            seq: state.seq,
            from,
            data,
            ts: unix_millis(),
        }
        .render();
        for peer in &state.members {
            // A failed send means that socket's writer is gone; its reader removes it.
            let _ = peer.tx.send(Message::Text(frame.clone()));
        }
    }

    fn leave(&self, room: &str, conn_id: u64) {
        if let Some(state) = self.rooms.borrow_mut().get_mut(room) {
            if let Some(i) = state.members.iter().position(|p| p.conn_id == conn_id) {
                state.members.swap_remove(i);
            }
        }
    }
}

/// Drains a socket's queue: takes what is queued (up to [`WRITE_BATCH`] frames), writes it
/// and flushes once, so a burst of broadcasts costs one write syscall, not one each.
async fn write_loop(
    mut sink: SplitSink<WebSocketStream<TcpStream>, Message>,
    mut rx: mpsc::UnboundedReceiver<Message>,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while rx.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        for msg in batch.drain(..) {
            let closing = msg.is_close();
            if sink.feed(msg).await.is_err() {
                return;
            }
            if closing {
                let _ = sink.flush().await;
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    // Every sender is gone: the reader is done. Finish the close handshake if needed.
    let _ = sink.close().await;
}

fn error_frame(code: &str, message: &str) -> Message {
    Message::Text(ServerFrame::Error { code, message }.render())
}

fn close(code: CloseCode, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// `[A-Za-z0-9_.-]{1,64}`.
pub fn is_valid_room_name(name: &str) -> bool {
    (1..=MAX_ROOM_BYTES).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn unix_secs() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        for (name, ok) in [
            ("lobby", true),
            ("a.b-c_D9", true),
            (&"x".repeat(64), true),
            (&"x".repeat(65), false),
            ("", false),
            ("a/b", false),
            ("a b", false),
            ("é", false),
        ] {
            assert_eq!(is_valid_room_name(name), ok, "{name:?}");
        }
    }
}
