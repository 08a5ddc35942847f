//! What one in-memory instance of a `Room` object holds.
//!
//! The durable truth is in the sockets' attachments and in [`RoomTables`]; an instance
//! keeps copies of what it has read from there (the roster, the latest `seq`, the
//! room's revocations, whether it announces presence) for as long as it lives, which is
//! until the runtime evicts it. Only this instance writes the storage it mirrors, so the
//! copies stay exact.
//!
//! The fields are visible to the files of `objects/room/` and nowhere else.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use worker::worker_sys::DurableObjectStorage;
use worker::{console_error, Env, State, WebSocket};

use super::roster::{Live, Roster};
use super::tables::RoomTables;
use crate::auth::secret::random_id;
use crate::config::Config;
use crate::protocol::frames::{PING, PONG};
use crate::protocol::identity::Revocation;
use crate::room::expiry::ExpiryPolicy;
use crate::room::flush::{Outbox, Window};
use crate::room::registration::Registration;
use crate::room::state::{Connection, Presence};
use crate::runtime::env::config;
use crate::runtime::error::ApiError;

pub(super) struct RoomInstance {
    /// This instance itself, for the flush timer's callback (`super::delivery`).
    pub(super) me: Weak<RoomInstance>,
    pub(super) state: State,
    pub(super) env: Env,
    pub(super) tables: RoomTables,
    /// The room's entry in the registry of active rooms (`super::registry`): its marks,
    /// read from storage once per instance, and the requests in flight.
    pub(super) registration: RefCell<Option<Registration>>,
    /// Random per in-memory instance, reported by the room's stats: it changes when the
    /// runtime evicted the object and built it again (hibernation made observable).
    pub(super) instance_id: String,
    /// The live sockets and identities: read from the attachments once per instance,
    /// then kept in step.
    roster: RefCell<Option<Roster>>,
    /// The latest `seq` given, once read in this instance: stored, or waiting in
    /// `outbox` for its flush.
    pub(super) seq: Cell<Option<u64>>,
    /// What the room gathered for its next flush, and when that goes out
    /// (`super::delivery`). In memory only: nobody has seen any of it yet.
    pub(super) outbox: RefCell<Outbox>,
    pub(super) window: RefCell<Window>,
    /// The alarm this instance set and that has not fired yet (unix ms), if any: a new
    /// deadline after it needs no storage write, because that alarm reschedules
    /// (`super::expiry`).
    pub(super) alarm_at: Cell<Option<u64>>,
    /// The room's revocations, once read in this instance (`super::registry`).
    pub(super) revoked: RefCell<Option<Vec<Revocation>>>,
    /// Whether this room announces presence (`PRESENCE_ROOMS`), once its name is known
    /// in this instance.
    presence: Cell<Option<Presence>>,
    /// The room's name, once read or learnt in this instance.
    name: RefCell<Option<String>>,
    /// The storage binding itself, for an alarm set without waiting (`alarm_soon`).
    raw_storage: Option<DurableObjectStorage>,
    /// A webhook delivery is running (`super::webhooks`): one at a time, in order.
    pub(super) delivering: Cell<bool>,
    /// Webhook deliveries that failed in a row, for the backoff.
    pub(super) delivery_failures: Cell<u32>,
    /// No webhook delivery before this time (unix ms): the backoff after a failure.
    pub(super) delivery_not_before: Cell<u64>,
}

impl RoomInstance {
    pub(super) fn new(
        me: Weak<RoomInstance>,
        state: State,
        raw_storage: Option<DurableObjectStorage>,
        env: Env,
    ) -> Self {
        let tables = RoomTables::open(state.storage().sql());
        // Keep-alive without waking the object: the runtime answers an exact `PING` with
        // `PONG` itself, even while the object is evicted. Set on every construction (the
        // setting is per instance); other spellings of a ping reach the room.
        match worker::worker_sys::WebSocketRequestResponsePair::new(PING, PONG) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => console_error!("room auto-response: {e:?}"),
        }
        Self {
            me,
            state,
            env,
            tables,
            registration: RefCell::new(None),
            instance_id: random_id(),
            roster: RefCell::new(None),
            seq: Cell::new(None),
            outbox: RefCell::new(Outbox::default()),
            window: RefCell::new(Window::default()),
            alarm_at: Cell::new(None),
            revoked: RefCell::new(None),
            presence: Cell::new(None),
            name: RefCell::new(None),
            raw_storage,
            delivering: Cell::new(false),
            delivery_failures: Cell::new(0),
            delivery_not_before: Cell::new(0),
        }
    }

    /// The room's name: `known` (from a socket's handoff or a call), else what storage
    /// keeps. Cached per instance.
    pub(super) fn room_name(&self, known: Option<&str>) -> Option<String> {
        if let Some(name) = known {
            if self.name.borrow().as_deref() != Some(name) {
                *self.name.borrow_mut() = Some(name.to_owned());
            }
            return Some(name.to_owned());
        }
        if let Some(name) = self.name.borrow().clone() {
            return Some(name);
        }
        let stored = self.tables.name();
        self.name.borrow_mut().clone_from(&stored);
        stored
    }

    /// Makes sure the alarm fires at `at_ms` or earlier, without waiting for the write
    /// (the storage's output gate still holds every answer until it is durable). For
    /// the paths that wait for nothing: recording a webhook event.
    pub(super) fn alarm_soon(&self, at_ms: u64) {
        if self.alarm_at.get().is_some_and(|set| set <= at_ms) {
            return;
        }
        let Some(storage) = &self.raw_storage else {
            return;
        };
        let at = worker::js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at_ms as f64));
        match storage.set_alarm(at, worker::js_sys::Object::new()) {
            Ok(_) => self.alarm_at.set(Some(at_ms)),
            Err(e) => console_error!("room alarm: {e:?}"),
        }
    }

    /// The isolate's configuration; an unusable one is reported on every event rather
    /// than silently defaulted.
    pub(super) fn config(&self) -> Result<Rc<Config>, ApiError> {
        config(&self.env)
    }

    pub(super) fn expiry_policy(&self) -> Result<ExpiryPolicy, ApiError> {
        let config = self.config()?;
        Ok(ExpiryPolicy {
            leeway_secs: config.tokens.leeway_secs,
            warning_secs: config.room.expiry_warning_secs,
        })
    }

    /// Runs `f` on the roster, reading it from the attachments first if this instance
    /// has not yet.
    pub(super) fn with_roster<R>(&self, f: impl FnOnce(&mut Roster) -> R) -> R {
        let mut roster = self.roster.borrow_mut();
        let roster = roster.get_or_insert_with(|| Roster::load(self.state.get_websockets()));
        f(roster)
    }

    /// Every live socket with its identity. Sockets already departed (closing) are left
    /// out.
    pub(super) fn live(&self) -> Live {
        self.with_roster(|r| r.live())
    }

    /// The identity of `ws` if it is live.
    pub(super) fn identity(&self, ws: &WebSocket) -> Option<Connection> {
        self.with_roster(|r| r.get(ws))
    }

    /// The room's latest `seq` given (0 before its first message), read once per
    /// instance: the room's messages all go through it. It may still wait for its
    /// flush; [`Self::stored_seq`] is the latest anyone can have seen.
    pub(super) fn last_seq(&self) -> worker::Result<u64> {
        if let Some(seq) = self.seq.get() {
            return Ok(seq);
        }
        let seq = self.tables.latest_seq()?;
        self.seq.set(Some(seq));
        Ok(seq)
    }

    /// The latest `seq` stored (0 before the first): what `welcome`, replays and
    /// history pages go up to. Messages after it wait for their flush.
    pub(super) fn stored_seq(&self) -> worker::Result<u64> {
        match self.outbox.borrow().first_seq() {
            Some(first) => Ok(first - 1),
            None => self.last_seq(),
        }
    }

    /// Whether this room announces presence: from `room` (its name, known on a connect)
    /// or the name it stored when it was first entered. A room that cannot tell (no name
    /// stored, configuration unusable) announces, as every room does by default.
    pub(super) fn presence(&self, room: Option<&str>) -> Presence {
        if let Some(known) = self.presence.get() {
            return known;
        }
        let Ok(config) = self.config() else {
            return Presence::Announced;
        };
        let Some(name) = room.map(str::to_owned).or_else(|| self.tables.name()) else {
            return Presence::Announced;
        };
        let presence = if config.presence_in(&name) {
            Presence::Announced
        } else {
            Presence::Silent
        };
        self.presence.set(Some(presence));
        presence
    }
}
