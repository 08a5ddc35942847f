//! The room's live sockets and their identities, kept in the object's memory.
//!
//! The attachments (`room::state::Connection`) stay the durable truth: they are what
//! survives hibernation. But reading one is a structured-clone copy plus a walk across
//! the wasm boundary, so the roster reads them once per in-memory instance (when the
//! instance first needs them, e.g. after a wake-up from hibernation) and is then kept in
//! step by the only code that changes membership: accept adds a seat, departure removes
//! it, and every attachment write goes through [`Roster::update`] (write-through).
//!
//! Finding the seat of the socket an event names: a JS `WeakMap` from the socket object
//! to its seat, with the connection id from the attachment as the fallback (so it stays
//! right even if the runtime hands an event a different wrapper for the same socket).
//!
//! What lives only here:
//! - each user's rate-limit bucket (`room::rate`), shared by all of the user's sockets in
//!   the room. A frame that passes changes it in memory only; a refused one also writes it
//!   to the sender's attachment, and after an eviction a user's bucket is the latest one
//!   found in their attachments. So after an eviction (which needs the sockets to have
//!   been quiet for seconds) a bucket is never emptier than it really was: lenient, never
//!   harsher;
//! - when each socket's last `refresh` reached the revocation check.
//!
//! The roster also counts each user's sockets, for `MAX_CONNECTIONS_PER_USER`, and the
//! v2 sockets, without which a room has nothing to coalesce for.

use std::collections::HashMap;

use worker::js_sys::WeakMap;
use worker::wasm_bindgen::JsValue;
use worker::WebSocket;

use crate::protocol::frames::Member;
use crate::protocol::identity::Rights;
use crate::protocol::v2::Version;
use crate::room::expiry;
use crate::room::rate::{self, Admission, Bucket, RatePolicy};
use crate::room::state::Connection;

struct Seat {
    ws: WebSocket,
    conn: Connection,
    /// When this socket's last `refresh` reached the revocation check (unix ms).
    refresh_checked_ms: Option<u64>,
}

/// What the room keeps per user while the user has a socket in it.
#[derive(Default)]
struct UserSeats {
    sockets: usize,
    /// The rate-limit bucket the user's sockets share (`None`: full).
    bucket: Option<Bucket>,
}

/// The room's live sockets and their identities, index-aligned: a copy, for decisions
/// that look at everyone.
#[derive(Default)]
pub(super) struct Live {
    pub(super) sockets: Vec<WebSocket>,
    pub(super) connections: Vec<Connection>,
}

/// Who sent a frame, as far as handling it needs.
pub(super) struct Sender {
    pub(super) user: Member,
    pub(super) conn_id: String,
    pub(super) rights: Rights,
    pub(super) version: Version,
}

pub(super) struct Roster {
    /// Socket object → seat number (an index into `seats`).
    seats_by_socket: WeakMap,
    /// The seats; a vacated one is `None` until a new socket takes it.
    seats: Vec<Option<Seat>>,
    vacant: Vec<usize>,
    len: usize,
    /// User id → that user's sockets and bucket.
    users: HashMap<String, UserSeats>,
    /// How many of the live sockets speak v2.
    v2: usize,
}

impl Roster {
    /// The live (not departed) sockets among `sockets`, with their attachments.
    pub fn load(sockets: Vec<WebSocket>) -> Self {
        let mut roster = Roster {
            seats_by_socket: WeakMap::new(),
            seats: Vec::with_capacity(sockets.len()),
            vacant: Vec::new(),
            len: 0,
            users: HashMap::new(),
            v2: 0,
        };
        for ws in sockets {
            if let Some(conn) = read_attachment(&ws).filter(|c| !c.departed) {
                roster.insert(ws, conn);
            }
        }
        roster
    }

    /// Seats a newly accepted socket.
    pub fn insert(&mut self, ws: WebSocket, conn: Connection) {
        let seat = match self.vacant.pop() {
            Some(seat) => seat,
            None => {
                self.seats.push(None);
                self.seats.len() - 1
            }
        };
        self.seats_by_socket
            .set(ws.as_ref(), &JsValue::from_f64(seat as f64));
        let user = self.users.entry(conn.user.id.clone()).or_default();
        user.sockets += 1;
        // After an eviction: the latest bucket written to any of the user's attachments.
        if let Some(stored) = conn.rate {
            if user.bucket.is_none_or(|b| b.at_ms < stored.at_ms) {
                user.bucket = Some(stored);
            }
        }
        if conn.version == Version::V2 {
            self.v2 += 1;
        }
        self.seats[seat] = Some(Seat {
            ws,
            conn,
            refresh_checked_ms: None,
        });
        self.len += 1;
    }

    /// How many live sockets user `user_id` has in the room.
    pub fn sockets_of(&self, user_id: &str) -> usize {
        self.users.get(user_id).map_or(0, |u| u.sockets)
    }

    fn seat_of(&mut self, ws: &WebSocket) -> Option<usize> {
        if let Some(seat) = self.seats_by_socket.get(ws.as_ref()).as_f64() {
            return Some(seat as usize).filter(|&s| self.seats.get(s).is_some_and(Option::is_some));
        }
        // Another wrapper for a seated socket: find it by its connection id (rare, so a
        // scan) and remember this wrapper too.
        let conn_id = read_attachment(ws)?.conn_id;
        let seat = self
            .seats
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.conn.conn_id == conn_id))?;
        self.seats_by_socket
            .set(ws.as_ref(), &JsValue::from_f64(seat as f64));
        Some(seat)
    }

    /// The identity of `ws`, if it is live.
    pub fn get(&mut self, ws: &WebSocket) -> Option<Connection> {
        let seat = self.seat_of(ws)?;
        self.seats[seat].as_ref().map(|s| s.conn.clone())
    }

    /// Takes one frame's token from the bucket of the user behind `ws` and returns the
    /// sender with the verdict; `Ok(None)` when `ws` is not live. A passing frame changes
    /// the bucket in memory only; a refused one also writes the attachment.
    pub fn admit(
        &mut self,
        ws: &WebSocket,
        policy: &RatePolicy,
        now_ms: u64,
    ) -> worker::Result<Option<(Sender, Admission)>> {
        let Some(seat) = self.seat_of(ws) else {
            return Ok(None);
        };
        let Some(Seat { conn, .. }) = self.seats[seat].as_mut() else {
            return Ok(None);
        };
        let user = self.users.entry(conn.user.id.clone()).or_default();
        let (bucket, admission) = rate::admit(user.bucket, policy, now_ms);
        user.bucket = Some(bucket);
        if admission != Admission::Pass {
            conn.rate = Some(bucket);
            write_attachment(ws, conn)?;
        }
        let sender = Sender {
            user: conn.user.clone(),
            conn_id: conn.conn_id.clone(),
            rights: conn.rights,
            version: conn.version,
        };
        Ok(Some((sender, admission)))
    }

    /// Charges the user behind `ws` `tokens` more for what its frame returned.
    pub fn charge(&mut self, ws: &WebSocket, policy: &RatePolicy, now_ms: u64, tokens: u64) {
        let Some(seat) = self.seat_of(ws) else { return };
        let Some(Seat { conn, .. }) = self.seats[seat].as_ref() else {
            return;
        };
        let user = self.users.entry(conn.user.id.clone()).or_default();
        user.bucket = Some(rate::charge(user.bucket, policy, now_ms, tokens));
    }

    /// Whether a `refresh` on `ws` may reach the revocation check at `now_ms`
    /// (`room::expiry::refresh_check_due`); when it may, the time is recorded.
    pub fn may_check_refresh(&mut self, ws: &WebSocket, now_ms: u64) -> bool {
        let Some(seat) = self.seat_of(ws) else {
            return false;
        };
        let Some(s) = self.seats[seat].as_mut() else {
            return false;
        };
        let due = expiry::refresh_check_due(s.refresh_checked_ms, now_ms);
        if due {
            s.refresh_checked_ms = Some(now_ms);
        }
        due
    }

    /// Writes `conn` to the attachment of `ws` and to the roster.
    pub fn update(&mut self, ws: &WebSocket, conn: Connection) -> worker::Result<()> {
        write_attachment(ws, &conn)?;
        if let Some(seat) = self.seat_of(ws) {
            if let Some(s) = self.seats[seat].as_mut() {
                s.conn = conn;
            }
        }
        Ok(())
    }

    /// Unseats `ws`; returns its identity if it was live.
    pub fn remove(&mut self, ws: &WebSocket) -> Option<Connection> {
        let seat = self.seat_of(ws)?;
        let gone = self.seats[seat].take()?;
        self.seats_by_socket.delete(gone.ws.as_ref());
        self.seats_by_socket.delete(ws.as_ref());
        self.vacant.push(seat);
        self.len -= 1;
        if gone.conn.version == Version::V2 {
            self.v2 -= 1;
        }
        if let Some(user) = self.users.get_mut(&gone.conn.user.id) {
            user.sockets -= 1;
            if user.sockets == 0 {
                self.users.remove(&gone.conn.user.id);
            }
        }
        Some(gone.conn)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether any live socket speaks v2.
    pub fn speaks_v2(&self) -> bool {
        self.v2 > 0
    }

    /// Every live socket with its identity.
    pub fn seats(&self) -> impl Iterator<Item = (&WebSocket, &Connection)> {
        self.seats.iter().flatten().map(|s| (&s.ws, &s.conn))
    }

    /// A copy of every live socket with its identity.
    pub fn live(&self) -> Live {
        let mut live = Live::default();
        for seat in self.seats.iter().flatten() {
            live.sockets.push(seat.ws.clone());
            live.connections.push(seat.conn.clone());
        }
        live
    }
}

/// The attachment of `ws`, straight from the runtime.
pub(super) fn read_attachment(ws: &WebSocket) -> Option<Connection> {
    let text = ws.deserialize_attachment::<String>().ok()??;
    serde_json::from_str(&text).ok()
}

/// Writes `conn` as the attachment of `ws`: as one JSON string, which crosses into the
/// runtime once and is cheap for it to clone (a JS object would be built field by field
/// across the wasm boundary, and structured-cloned field by field).
pub(super) fn write_attachment(ws: &WebSocket, conn: &Connection) -> worker::Result<()> {
    let text = serde_json::to_string(conn).map_err(|e| worker::Error::RustError(e.to_string()))?;
    ws.serialize_attachment(text)
}
