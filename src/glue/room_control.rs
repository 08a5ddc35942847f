//! The internal API between the Worker and a `Room` object, both sides in one place:
//! the paths and bodies, the Worker's calls (admin kick, revocation push), and the
//! object's handlers for them, plus the object's entry in the registry of active rooms.
//!
//! A Durable Object has no public address: only code holding the `ROOMS` binding — this
//! Worker — can call it, with requests the Worker builds from scratch. So the object
//! trusts these requests as it trusts the gate's handoff; the admin guard runs in the
//! Worker before any of them is made.

use serde::{Deserialize, Serialize};

use worker::{console_error, Env, Method, Request, Response, SqlStorageValue};

use super::http::json;
use super::room_object::Room;
use super::{call_object, now_millis, now_secs, object_stub, room_registry, ROOMS_BINDING};
use crate::auth::revocation::{Revocation, Target};
use crate::auth::token::Identity;
use crate::error::ApiError;
use crate::room::protocol::CloseCode;
use crate::room::state;

/// `GET`: the gate hands over a socket (`handoff`).
pub const CONNECT_PATH: &str = "/connect";
/// `POST` [`Kick`]: close a user's sockets with 4003 `kicked`.
pub const KICK_PATH: &str = "/kick";
/// `POST` [`Push`]: close a revoked token's or user's sockets with 4003 `revoked`, and
/// refuse them from now on.
pub const REVOKE_PATH: &str = "/revoke";
/// `GET`: the room's `RoomStats` (connections, members, seq, kept history); the call and
/// the handler are in `room_history`.
pub const STATS_PATH: &str = "/stats";

#[derive(Serialize, Deserialize)]
struct Kick {
    user_id: String,
}

#[derive(Serialize, Deserialize)]
struct Push {
    /// The room's name, for its registry entry (an object does not know its own name).
    room: String,
    revocation: Revocation,
}

/// What the room answers: how many sockets it closed.
#[derive(Serialize, Deserialize)]
struct Closed {
    closed: usize,
}

/// Closes `user_id`'s sockets in `room`; returns how many.
pub async fn kick(env: &Env, room: &str, user_id: &str) -> Result<usize, ApiError> {
    let body = Kick {
        user_id: user_id.to_owned(),
    };
    call(env, room, KICK_PATH, &body).await
}

/// Pushes `revocation` to `room`; returns how many sockets it closed there.
pub async fn push_revocation(
    env: &Env,
    room: &str,
    revocation: &Revocation,
) -> Result<usize, ApiError> {
    let body = Push {
        room: room.to_owned(),
        revocation: revocation.clone(),
    };
    call(env, room, REVOKE_PATH, &body).await
}

async fn call(env: &Env, room: &str, path: &str, body: &impl Serialize) -> Result<usize, ApiError> {
    let text = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let stub = object_stub(env, ROOMS_BINDING, room)?;
    let url = format!("https://room.internal{path}");
    let closed: Closed = call_object(&stub, Method::Post, &url, Some(text)).await?;
    Ok(closed.closed)
}

/// Reads an internal JSON body (from the Worker: no limits to enforce beyond sanity).
async fn body<T: serde::de::DeserializeOwned>(mut req: Request) -> Result<T, ApiError> {
    let text = req.text().await?;
    serde_json::from_str(&text).map_err(|e| ApiError::BadRequest(format!("internal body: {e}")))
}

/// How long an emptied room stays in the registry of active rooms before it removes
/// itself (its alarm): a revoke in that time makes one call to it that closes nothing.
pub const REGISTRY_GRACE_MS: u64 = 30_000;

/// Durable counters in `room_meta`: `activations` (registry marks, see `room_registry`).
/// (`seq` is stored there too, with a plain write, when no messages are kept.)
const BUMP: &str = "INSERT INTO room_meta (key, value) VALUES (?1, 1)
    ON CONFLICT(key) DO UPDATE SET value = value + 1
    RETURNING value";

impl Room {
    /// Increments the durable counter `key` and returns its new value, in one
    /// synchronous statement (no `await`: nothing can interleave with the caller).
    pub(super) fn bump(&self, key: &str) -> worker::Result<u64> {
        self.first_value(BUMP, vec![key.into()])?
            .ok_or_else(|| worker::Error::RustError(format!("counter {key}: no row")))
    }

    /// The durable counter `key` (0 when never bumped).
    pub(super) fn counter(&self, key: &str) -> worker::Result<u64> {
        Ok(self
            .first_value(
                "SELECT value FROM room_meta WHERE key = ?1",
                vec![key.into()],
            )?
            .unwrap_or(0))
    }

    pub(super) async fn on_kick(&self, req: Request) -> Result<Response, ApiError> {
        let Kick { user_id } = body(req).await?;
        let live = self.live();
        let kicked = state::kicked(&live.connections, &user_id);
        for &i in &kicked {
            self.close(&live.sockets[i], CloseCode::Kicked);
        }
        self.emptied().await;
        json(
            200,
            &Closed {
                closed: kicked.len(),
            },
        )
    }

    pub(super) async fn on_revoke(&self, req: Request) -> Result<Response, ApiError> {
        let Push { room, revocation } = body(req).await?;
        let now = now_secs();
        self.remember_name(&room)?;
        self.remember_revocation(&revocation, now)?;
        let live = self.live();
        let revoked = state::revoked(&live.connections, &revocation, now);
        for &i in &revoked {
            self.close(&live.sockets[i], CloseCode::Revoked);
        }
        self.deactivate_if_empty().await;
        json(
            200,
            &Closed {
                closed: revoked.len(),
            },
        )
    }

    /// Registers the room as active (it is about to get its first socket), copies every
    /// revocation in force into the room's own list — read after the registration is
    /// written, so a revoke is either in that read or finds this room in the registry
    /// and is pushed to it (`revocation`) — and refuses `identity` if it is revoked. So
    /// the room's list is complete while it is registered, and every new socket is
    /// checked against it (`accept`).
    ///
    /// A room still registered from before (it emptied less than [`REGISTRY_GRACE_MS`]
    /// ago) writes nothing: its list is still complete.
    pub(super) async fn activate(&self, room: &str, identity: &Identity) -> Result<(), ApiError> {
        if self.registered()? {
            return Ok(());
        }
        self.remember_name(room)?;
        let mark = self.bump("activations")?;
        self.activating.set(self.activating.get() + 1);
        let now = now_secs();
        let outcome = room_registry::activate(&self.env, room, mark, now).await;
        self.activating.set(self.activating.get() - 1);
        for revocation in outcome? {
            self.remember_revocation(&revocation, now)?;
        }
        if self.locally_revoked(identity, now)? {
            self.deactivate_if_empty().await;
            return Err(ApiError::InvalidToken("token has been revoked".into()));
        }
        Ok(())
    }

    /// Whether the registry lists this room (its last activation was not removed).
    fn registered(&self) -> Result<bool, ApiError> {
        Ok(self.counter("activations")? > self.counter("deactivated")?)
    }

    /// The room may just have lost its last socket: leave the registry
    /// [`REGISTRY_GRACE_MS`] from now if it is still empty then (the alarm calls
    /// [`Room::deactivate_if_empty`]). Rooms that empty and fill again — a chat where
    /// one person reconnects — so write D1 once per grace period, not per socket.
    pub(super) async fn emptied(&self) {
        if !self.may_be_empty() {
            return;
        }
        if let Err(e) = self.schedule_at(now_millis() + REGISTRY_GRACE_MS).await {
            console_error!("room registry: {e:?}");
        }
    }

    /// No socket is live and none is on its way in: [`Room::emptied`] has work to do.
    pub(super) fn may_be_empty(&self) -> bool {
        self.activating.get() == 0 && self.with_roster(|r| r.is_empty())
    }

    /// Removes the room from the registry when it has no sockets left (and none on the
    /// way in). A failure is logged: the stale entry costs one call on the next revoke,
    /// which removes it.
    pub(super) async fn deactivate_if_empty(&self) {
        if self.activating.get() > 0 || !self.with_roster(|r| r.is_empty()) {
            return;
        }
        let Some(room) = self.name() else {
            return;
        };
        let (mark, done) = match (self.counter("activations"), self.counter("deactivated")) {
            (Ok(mark), Ok(done)) => (mark, done),
            (Err(e), _) | (_, Err(e)) => {
                console_error!("room registry: {e}");
                return;
            }
        };
        if mark == 0 || done >= mark {
            return;
        }
        match room_registry::deactivate(&self.env, &room, mark).await {
            Ok(()) => {
                let set = self.state.storage().sql().exec(
                    "INSERT OR REPLACE INTO room_meta (key, value) VALUES ('deactivated', ?1)",
                    vec![SqlStorageValue::from(mark as i64)],
                );
                if let Err(e) = set {
                    console_error!("room registry: {e}");
                }
            }
            Err(e) => console_error!("room registry: {e:?}"),
        }
    }

    /// The room's name, once it has had a socket or a revocation.
    pub(super) fn name(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Row {
            name: String,
        }
        let rows: Vec<Row> = self
            .state
            .storage()
            .sql()
            .exec("SELECT name FROM room_name WHERE id = 1", None)
            .and_then(|c| c.to_array())
            .ok()?;
        rows.into_iter().next().map(|r| r.name)
    }

    fn remember_name(&self, room: &str) -> Result<(), ApiError> {
        self.state.storage().sql().exec(
            "INSERT OR REPLACE INTO room_name (id, name) VALUES (1, ?1)",
            vec![room.into()],
        )?;
        Ok(())
    }

    /// Keeps `revocation` (and drops the ones that have run out), so sockets arriving
    /// after the push are refused here too.
    fn remember_revocation(&self, revocation: &Revocation, now: u64) -> Result<(), ApiError> {
        let sql = self.state.storage().sql();
        sql.exec(
            "DELETE FROM revoked WHERE until <= ?1",
            vec![SqlStorageValue::from(now as i64)],
        )?;
        sql.exec(
            "INSERT INTO revoked (kind, value, until) VALUES (?1, ?2, ?3)
             ON CONFLICT(kind, value) DO UPDATE SET until = MAX(until, excluded.until)",
            vec![
                revocation.target.kind().into(),
                revocation.target.value().into(),
                SqlStorageValue::from(revocation.until as i64),
            ],
        )?;
        // Keep the in-memory list (if read) in step: the newer `until` wins, as above.
        if let Some(list) = self.revoked.borrow_mut().as_mut() {
            list.retain(|r| r.until > now);
            match list.iter_mut().find(|r| r.target == revocation.target) {
                Some(known) => known.until = known.until.max(revocation.until),
                None => list.push(revocation.clone()),
            }
        }
        Ok(())
    }

    /// Whether a revocation this room knows refuses `identity` at `now`: from memory,
    /// after the first check of an instance reads the room's list.
    pub(super) fn locally_revoked(&self, identity: &Identity, now: u64) -> Result<bool, ApiError> {
        let jti = identity.jti.as_deref();
        if let Some(list) = self.revoked.borrow().as_ref() {
            return Ok(list.iter().any(|r| r.applies_to(&identity.sub, jti, now)));
        }
        #[derive(Deserialize)]
        struct Row {
            kind: String,
            value: String,
            until: i64,
        }
        let rows: Vec<Row> = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT kind, value, until FROM revoked WHERE until > ?1",
                vec![SqlStorageValue::from(now as i64)],
            )?
            .to_array()?;
        let list: Vec<Revocation> = rows
            .into_iter()
            .filter_map(|r| {
                Some(Revocation {
                    target: Target::from_stored(&r.kind, r.value)?,
                    until: u64::try_from(r.until).ok()?,
                })
            })
            .collect();
        let refused = list.iter().any(|r| r.applies_to(&identity.sub, jti, now));
        *self.revoked.borrow_mut() = Some(list);
        Ok(refused)
    }
}
