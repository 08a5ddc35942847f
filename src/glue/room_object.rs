//! The `Room` Durable Object: one per room name, owning that room's sockets.
//!
//! Sockets are accepted with the hibernation API (`accept_web_socket`), so an idle room is
//! evicted from memory while its clients stay connected, and wakes per event. Hence:
//! nothing lives in fields between events. Each socket's identity is its attachment
//! (`room::state::Connection`), members are derived from the live sockets on every event,
//! and the message sequence is a row in the object's SQLite storage.
//!
//! Sequencing and fan-out happen without an `await` in between: the SQLite API is
//! synchronous, so no other event can interleave and every client sees one total order.

use serde::Deserialize;
use worker::{
    console_error, durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use super::handoff::{Handoff, HANDOFF_HEADER};
use super::{now_millis, string_binding};
use crate::auth::secret::random_id;
use crate::config::Config;
use crate::error::ApiError;
use crate::room::protocol::{CloseCode, Member};
use crate::room::state::{self, Connection, Decision, Incoming, RoomLimits};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS room_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
)";
/// Durable counters: `seq` (messages) and `joined` (connections, for member order).
const BUMP: &str = "INSERT INTO room_meta (key, value) VALUES (?1, 1)
    ON CONFLICT(key) DO UPDATE SET value = value + 1
    RETURNING value";

#[durable_object]
pub struct Room {
    state: State,
    /// Read from `[vars]` once per instance (an instance lives until eviction); an
    /// unusable value is reported on every event rather than silently defaulted.
    limits: std::result::Result<RoomLimits, String>,
}

impl DurableObject for Room {
    fn new(state: State, env: Env) -> Self {
        let limits = Config::from_lookup(|k| string_binding(&env, k))
            .map(|c| c.room)
            .map_err(|e| e.to_string());
        if let Err(e) = state.storage().sql().exec(SCHEMA, None) {
            console_error!("room schema: {e}");
        }
        Self { state, limits }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        Ok(self.accept(&req).unwrap_or_else(ApiError::into_response))
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        if let Err(e) = self.on_message(&ws, &message) {
            console_error!("room message: {e}");
            self.close(&ws, CloseCode::ServerError);
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        // Answer the client's close frame (1005/1006 are not sendable codes), then
        // announce the departure if nobody has yet.
        let echo = match code {
            1000..=1003 | 1007..=1014 | 3000..=4999 => code as u16,
            _ => 1000,
        };
        let _ = ws.close(Some(echo), Some("closing"));
        self.depart(&ws);
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, error: worker::Error) -> Result<()> {
        console_error!("room socket error: {error}");
        self.depart(&ws);
        Ok(())
    }
}

impl Room {
    /// Accepts the socket the gate vouched for: attachment, `welcome`, `join`.
    fn accept(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        let handoff = req
            .headers()
            .get(HANDOFF_HEADER)?
            .as_deref()
            .and_then(Handoff::decode)
            .ok_or_else(|| ApiError::BadRequest("rooms are entered through /ws/{room}".into()))?;
        if let Err(e) = &self.limits {
            return Err(ApiError::Misconfigured(e.clone()));
        }

        let others = self.live();
        let pair = WebSocketPair::new()?;
        let conn = Connection {
            conn_id: random_id(),
            joined: self.bump("joined")?,
            user: Member {
                id: handoff.identity.sub,
                name: handoff.identity.name,
            },
            exp: handoff.identity.exp,
            jti: handoff.identity.jti,
            departed: false,
        };
        self.state.accept_web_socket(&pair.server);
        pair.server.serialize_attachment(&conn)?;

        let joined = state::join(&handoff.room, &conn, &others.connections);
        pair.server.send_with_str(&joined.welcome)?;
        if let Some(frame) = joined.announce {
            broadcast(&others.sockets, &frame);
        }

        let mut response = Response::from_websocket(pair.client)?;
        if let Some(protocol) = handoff.protocol {
            response
                .headers_mut()
                .set("sec-websocket-protocol", &protocol)?;
        }
        Ok(response)
    }

    fn on_message(&self, ws: &WebSocket, message: &WebSocketIncomingMessage) -> Result<()> {
        let Some(conn) = attachment(ws) else {
            return Err(worker::Error::RustError("socket has no identity".into()));
        };
        if conn.departed {
            return Ok(());
        }
        let limits = self.limits.clone().map_err(worker::Error::RustError)?;
        let incoming = match message {
            WebSocketIncomingMessage::String(text) => Incoming::Text(text),
            WebSocketIncomingMessage::Binary(bytes) => Incoming::Binary { len: bytes.len() },
        };
        match state::on_frame(incoming, &limits) {
            Decision::Publish(data) => {
                let seq = self.bump("seq")?;
                let frame = state::message(seq, &conn.user, &data, now_millis());
                // Every socket, without reading attachments: per-recipient work on the
                // hot path stays one send. A socket that is closing just fails its send.
                broadcast(&self.state.get_websockets(), &frame);
            }
            Decision::Reply(frame) => ws.send_with_str(&frame)?,
            Decision::Close(code) => self.close(ws, code),
        }
        Ok(())
    }

    /// Increments the durable counter `key` and returns its new value, in one
    /// synchronous statement (no `await`: nothing can interleave with the caller).
    fn bump(&self, key: &str) -> Result<u64> {
        #[derive(Deserialize)]
        struct Row {
            value: i64,
        }
        let row: Row = self
            .state
            .storage()
            .sql()
            .exec(BUMP, vec![key.into()])?
            .one()?;
        u64::try_from(row.value).map_err(|_| worker::Error::RustError("negative counter".into()))
    }

    /// Every live socket with its identity. Sockets already departed (closing) are left
    /// out, and so is `except` (a connection id).
    fn live_except(&self, except: Option<&str>) -> Live {
        let mut live = Live::default();
        for ws in self.state.get_websockets() {
            if let Some(c) = attachment(&ws) {
                if !c.departed && Some(c.conn_id.as_str()) != except {
                    live.sockets.push(ws);
                    live.connections.push(c);
                }
            }
        }
        live
    }

    fn live(&self) -> Live {
        self.live_except(None)
    }

    /// Closes a socket from our side, announcing its departure first.
    fn close(&self, ws: &WebSocket, code: CloseCode) {
        self.depart(ws);
        let _ = ws.close(Some(code.code()), Some(code.reason()));
    }

    /// Marks the socket departed and, if it was its user's last connection, tells the
    /// rest of the room. Idempotent: the second call for a socket does nothing.
    fn depart(&self, ws: &WebSocket) {
        let Some(mut conn) = attachment(ws) else {
            return;
        };
        if conn.departed {
            return;
        }
        conn.departed = true;
        if let Err(e) = ws.serialize_attachment(&conn) {
            console_error!("room depart: {e}");
        }
        let remaining = self.live_except(Some(&conn.conn_id));
        if let Some(frame) = state::leave(&conn, &remaining.connections) {
            broadcast(&remaining.sockets, &frame);
        }
    }
}

/// The room's live sockets and their identities, index-aligned.
#[derive(Default)]
struct Live {
    sockets: Vec<WebSocket>,
    connections: Vec<Connection>,
}

fn attachment(ws: &WebSocket) -> Option<Connection> {
    ws.deserialize_attachment::<Connection>().ok().flatten()
}

/// Sends one rendered frame to many sockets. A failed send (a socket closing under us)
/// affects only that socket; its close event will follow.
fn broadcast(sockets: &[WebSocket], frame: &str) {
    for ws in sockets {
        let _ = ws.send_with_str(frame);
    }
}
