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
//! An emptied room stays registered for [`REGISTRY_GRACE_MS`] (its alarm removes it), so
//! a room whose last member reconnects writes nothing to D1.

use worker::console_error;

use super::instance::RoomInstance;
use crate::auth::revocation;
use crate::authn::REVOKED;
use crate::protocol::identity::{Identity, Revocation};
use crate::runtime::env::{now_millis, now_secs};
use crate::runtime::error::ApiError;
use crate::store::rooms;

/// How long an emptied room stays in the registry of active rooms before it removes
/// itself (its alarm): a revoke in that time makes one call to it that closes nothing.
pub(super) const REGISTRY_GRACE_MS: u64 = 30_000;

impl RoomInstance {
    /// Registers the room as active (it is about to get its first socket), copies every
    /// revocation in force into its own list, and refuses `identity` if it is revoked.
    /// A room still registered (it emptied less than [`REGISTRY_GRACE_MS`] ago) writes
    /// nothing: its list is still complete.
    pub(super) async fn activate(&self, room: &str, identity: &Identity) -> Result<(), ApiError> {
        if self.registered()? {
            return Ok(());
        }
        self.tables.set_name(room)?;
        let mark = self.tables.next_activation()?;
        self.activating.set(self.activating.get() + 1);
        let now = now_secs();
        let outcome = rooms::activate(&self.env, room, mark, now).await;
        self.activating.set(self.activating.get() - 1);
        for revocation in outcome? {
            self.remember_revocation(&revocation, now)?;
        }
        if self.locally_revoked(identity, now)? {
            self.deactivate_if_empty().await;
            return Err(ApiError::InvalidToken(REVOKED.into()));
        }
        Ok(())
    }

    /// Whether the registry lists this room (its last activation was not removed).
    fn registered(&self) -> Result<bool, ApiError> {
        let (activations, deactivated) = self.tables.registration()?;
        Ok(activations > deactivated)
    }

    /// The room may just have lost its last socket: leave the registry
    /// [`REGISTRY_GRACE_MS`] from now if it is still empty then (the alarm calls
    /// [`RoomInstance::deactivate_if_empty`]). Rooms that empty and fill again (a chat
    /// where one person reconnects) so write D1 once per grace period, not per socket.
    pub(super) async fn emptied(&self) {
        if !self.may_be_empty() {
            return;
        }
        if let Err(e) = self.schedule_at(now_millis() + REGISTRY_GRACE_MS).await {
            console_error!("room registry: {e:?}");
        }
    }

    /// No socket is live and none is on its way in: [`RoomInstance::emptied`] has work
    /// to do.
    pub(super) fn may_be_empty(&self) -> bool {
        self.activating.get() == 0 && self.with_roster(|r| r.is_empty())
    }

    /// Removes the room from the registry when it has no sockets left (and none on the
    /// way in). A failure is logged: the stale entry costs one call on the next revoke,
    /// which removes it.
    pub(super) async fn deactivate_if_empty(&self) {
        if !self.may_be_empty() {
            return;
        }
        let Some(room) = self.tables.name() else {
            return;
        };
        let (mark, done) = match self.tables.registration() {
            Ok(marks) => marks,
            Err(e) => {
                console_error!("room registry: {e}");
                return;
            }
        };
        if mark == 0 || done >= mark {
            return;
        }
        match rooms::deactivate(&self.env, &room, mark).await {
            Ok(()) => {
                if let Err(e) = self.tables.record_deactivation(mark) {
                    console_error!("room registry: {e}");
                }
            }
            Err(e) => console_error!("room registry: {e:?}"),
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
        let jti = identity.jti.as_deref();
        let refuses =
            |list: &[Revocation]| list.iter().any(|r| r.applies_to(&identity.sub, jti, now));
        if let Some(list) = self.revoked.borrow().as_ref() {
            return Ok(refuses(list));
        }
        let list = self.tables.revocations(now)?;
        let refused = refuses(&list);
        *self.revoked.borrow_mut() = Some(list);
        Ok(refused)
    }
}
