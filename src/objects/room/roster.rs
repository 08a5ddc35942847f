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
//! One thing lives only here: the rate-limit bucket between refusals (`room::rate`). A
//! frame that passes changes the bucket in memory only; a refused one also writes it to
//! the attachment. So after an eviction (which needs the sockets to have been quiet for
//! seconds) a socket's bucket is never emptier than it really was: lenient, never harsher.

use worker::js_sys::WeakMap;
use worker::wasm_bindgen::JsValue;
use worker::WebSocket;

use crate::protocol::frames::Member;
use crate::room::rate::{self, Admission, RatePolicy};
use crate::room::state::Connection;

struct Seat {
    ws: WebSocket,
    conn: Connection,
}

/// The room's live sockets and their identities, index-aligned: a copy, for decisions
/// that look at everyone.
#[derive(Default)]
pub(super) struct Live {
    pub(super) sockets: Vec<WebSocket>,
    pub(super) connections: Vec<Connection>,
}

pub(super) struct Roster {
    /// Socket object → seat number (an index into `seats`).
    seats_by_socket: WeakMap,
    /// The seats; a vacated one is `None` until a new socket takes it.
    seats: Vec<Option<Seat>>,
    vacant: Vec<usize>,
    len: usize,
}

impl Roster {
    /// The live (not departed) sockets among `sockets`, with their attachments.
    pub fn load(sockets: Vec<WebSocket>) -> Self {
        let mut roster = Roster {
            seats_by_socket: WeakMap::new(),
            seats: Vec::with_capacity(sockets.len()),
            vacant: Vec::new(),
            len: 0,
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
        self.seats[seat] = Some(Seat { ws, conn });
        self.len += 1;
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

    /// Takes one frame's token from the rate-limit bucket of `ws` and returns the
    /// sender with the verdict; `Ok(None)` when `ws` is not live. A passing frame
    /// changes the bucket in memory only; a refused one also writes the attachment.
    pub fn admit(
        &mut self,
        ws: &WebSocket,
        policy: &RatePolicy,
        now_ms: u64,
    ) -> worker::Result<Option<(Member, Admission)>> {
        let Some(seat) = self.seat_of(ws) else {
            return Ok(None);
        };
        let Some(Seat { conn, .. }) = self.seats[seat].as_mut() else {
            return Ok(None);
        };
        let (bucket, admission) = rate::admit(conn.rate, policy, now_ms);
        conn.rate = Some(bucket);
        if admission != Admission::Pass {
            write_attachment(ws, conn)?;
        }
        Ok(Some((conn.user.clone(), admission)))
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
        Some(gone.conn)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every live socket.
    pub fn sockets(&self) -> impl Iterator<Item = &WebSocket> {
        self.seats.iter().flatten().map(|s| &s.ws)
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
