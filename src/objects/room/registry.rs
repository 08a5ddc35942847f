//! The room's entry in the registry of active rooms (`store::rooms`), and the room's own
//! list of revocations, which together make a revocation reach every live socket.
//!
//! A room registers itself when it goes from no sockets to one, and copies every
//! revocation in force into its own list in the same D1 batch, read after its
//! registration is written: a revoke stored before that read is in it; one stored after
//! it finds the room in the registry and is pushed to it (`http::revoke`). So the room's
//! list is complete while it is registered, and every new socket is checked against it,
//! which also refuses a token that passed the gate just before a revoke.
//!
//! When and how the entry is written and removed, also while other events of the room
//! go on, is `room::registration`'s state machine; this file carries it out. An emptied
//! room stays registered for `REGISTRY_GRACE_SECONDS` (its alarm removes it), so a room
//! whose last member reconnects writes nothing to D1.

use worker::console_error;

use super::instance::RoomInstance;
use crate::auth::revocation;
use crate::auth::secret::random_bytes;
use crate::authn::REVOKED;
use crate::protocol::identity::{Identity, Revocation, TokenFacts};
use crate::room::registration::{self, Registration};
use crate::runtime::env::{now_millis, now_secs};
use crate::runtime::error::ApiError;
use crate::store::rooms;

impl RoomInstance {
    /// Runs `f` on the room's registration (restored from storage first if this
    /// instance has not yet), and stores its marks if `f` changed them.
    fn with_registration<R>(&self, f: impl FnOnce(&mut Registration) -> R) -> Result<R, ApiError> {
        let mut slot = self.registration.borrow_mut();
        let registration = match slot.as_mut() {
            Some(registration) => registration,
            None => slot.insert(Registration::restore(self.tables.marks()?)),
        };
        let before = registration.marks();
        let out = f(registration);
        if registration.marks() != before {
            self.tables.save_marks(registration.marks())?;
        }
        Ok(out)
    }

    /// Makes sure the room is registered before a socket of `identity` is accepted,
    /// copies every revocation in force into its own list when it registers, and
    /// refuses `identity` if it is revoked. A room still listed (it emptied less than the
    /// grace period ago) writes nothing: its list is still complete.
    pub(super) async fn activate(&self, room: &str, identity: &Identity) -> Result<(), ApiError> {
        if self.with_registration(|r| r.is_listed())? {
            return Ok(());
        }
        self.tables.set_name(room)?;
        let mark = self.with_registration(Registration::begin_add)?;
        let now = now_secs();
        // A random bucket spreads the registry for pushes (kept if the row exists).
        let bucket = registration::bucket_of(random_bytes::<8>());
        let outcome = rooms::activate(&self.env, room, mark, bucket, now).await;
        self.with_registration(|r| r.added(mark, outcome.is_ok()))?;
        let in_force = match outcome {
            Ok(in_force) => in_force,
            Err(e) => {
                // The write may have happened: the grace alarm removes what it left.
                self.emptied().await;
                return Err(e);
            }
        };
        for revocation in in_force {
            self.remember_revocation(&revocation, now)?;
        }
        if self.locally_revoked(identity, now)? {
            self.deactivate_if_empty().await;
            return Err(ApiError::InvalidToken(REVOKED.into()));
        }
        Ok(())
    }

    /// The room may just have lost its last socket: leave the registry after the grace
    /// period if it is still empty then (the alarm calls
    /// [`RoomInstance::deactivate_if_empty`]). Rooms that empty and fill again (a chat
    /// where one person reconnects) so write D1 once per grace period, not per socket.
    pub(super) async fn emptied(&self) {
        if !self.may_be_empty() {
            return;
        }
        let grace_ms = match self.config() {
            Ok(config) => config.registry_grace_secs * 1000,
            Err(e) => return console_error!("room registry: {e:?}"),
        };
        if let Err(e) = self.schedule_at(now_millis() + grace_ms).await {
            console_error!("room registry: {e:?}");
        }
    }

    /// No socket is live and none is on its way in: [`RoomInstance::emptied`] has work
    /// to do.
    pub(super) fn may_be_empty(&self) -> bool {
        let arriving = self
            .registration
            .borrow()
            .as_ref()
            .is_some_and(Registration::is_adding);
        !arriving && self.with_roster(|r| r.is_empty())
    }

    /// Removes the room from the registry when it has no sockets left (and none on the
    /// way in). A failure is logged and retried after the grace period; until the
    /// removal is confirmed, a new socket registers the room again.
    pub(super) async fn deactivate_if_empty(&self) {
        if !self.may_be_empty() {
            return;
        }
        let Some(room) = self.tables.name() else {
            return;
        };
        let mark = match self.with_registration(|r| r.begin_remove(0)) {
            Ok(Some(mark)) => mark,
            Ok(None) => return,
            Err(e) => return console_error!("room registry: {e:?}"),
        };
        let outcome = rooms::deactivate(&self.env, &room, mark).await;
        if let Err(e) = self.with_registration(|r| r.removed(mark, outcome.is_ok())) {
            console_error!("room registry: {e:?}");
        }
        if let Err(e) = outcome {
            console_error!("room registry: {e:?}");
            self.emptied().await;
        }
    }

    /// Keeps `revocation` in storage and in memory, so sockets arriving after it are
    /// refused here too.
    pub(super) fn remember_revocation(
        &self,
        revocation: &Revocation,
        now: u64,
    ) -> Result<(), ApiError> {
        self.tables.keep_revocation(revocation, now)?;
        if let Some(list) = self.revoked.borrow_mut().as_mut() {
            revocation::merge(list, revocation, now);
        }
        Ok(())
    }

    /// Whether a revocation this room knows refuses `identity` at `now`: from memory,
    /// after the first check of an instance reads the room's list.
    pub(super) fn locally_revoked(&self, identity: &Identity, now: u64) -> Result<bool, ApiError> {
        let token = TokenFacts::from(identity);
        let refuses = |list: &[Revocation]| list.iter().any(|r| r.applies_to(token, now));
        if let Some(list) = self.revoked.borrow().as_ref() {
            return Ok(refuses(list));
        }
        let list = self.tables.revocations(now)?;
        let refused = refuses(&list);
        *self.revoked.borrow_mut() = Some(list);
        Ok(refused)
    }
}
