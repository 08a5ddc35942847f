//! Token lifetimes in the room: the alarm that warns (`expiring`) and closes (4001)
//! sockets whose token runs out, and in-band `refresh`.
//!
//! The decisions are `room::expiry`'s; this carries them out. The object has a single
//! alarm, always set to the earliest deadline of any live socket (recomputed whenever a
//! deadline may have moved: a socket arrives, a refresh lands, the alarm fires). An
//! alarm wakes a hibernated object, so an idle room still closes expired sockets on
//! time; no timer runs in between. The same alarm ends the registry's grace period
//! (`super::registry`).

use chrono::DateTime;
use worker::{console_error, WebSocket};

use super::delivery::send_frame;
use super::instance::RoomInstance;
use crate::auth::grants;
use crate::authn::{admit, prove, Credential, Refusal};
use crate::protocol::close::CloseCode;
use crate::room::expiry::{self, Refresh};
use crate::room::state::Connection;
use crate::runtime::env::{now_millis, now_secs};
use crate::runtime::error::ApiError;
use crate::store::revocations::Freshness;

impl RoomInstance {
    /// The alarm fired: warn who is due, close who is past their token's expiry, set the
    /// alarm for the next deadline, and leave the registry if the room stayed empty.
    pub(super) async fn on_alarm(&self) {
        self.alarm_at.set(None);
        let policy = match self.expiry_policy() {
            Ok(p) => p,
            Err(e) => return console_error!("room alarm: {e:?}"),
        };
        let live = self.live();
        let sweep = expiry::sweep(&live.connections, now_millis(), &policy);
        for (i, frame) in &sweep.warn {
            let mut conn = live.connections[*i].clone();
            conn.warned = true;
            let ws = &live.sockets[*i];
            let version = conn.version;
            if let Err(e) = self.with_roster(|r| r.update(ws, conn)) {
                console_error!("room alarm: {e}");
            }
            send_frame(ws, version, frame, None);
        }
        for &i in &sweep.expire {
            self.close(&live.sockets[i], CloseCode::TokenExpired);
        }
        if let Some(at) = sweep.next_alarm_ms {
            // Not a plain write: a webhook retry may want the alarm sooner.
            if let Err(e) = self.schedule_at(at).await {
                console_error!("room alarm: {e:?}");
            }
        }
        self.deactivate_if_empty().await;
        self.deliver_events().await;
    }

    /// Sets the alarm for the earliest deadline of `connections` (the live sockets'
    /// identities), if any.
    pub(super) async fn schedule(&self, connections: &[Connection]) -> Result<(), ApiError> {
        let policy = self.expiry_policy()?;
        match expiry::next_alarm(connections, &policy) {
            Some(at) => self.schedule_at(at).await,
            // Nobody left to warn or close; a pending alarm will find nothing to do.
            None => Ok(()),
        }
    }

    /// Makes sure an alarm fires at `at_ms` or earlier. An alarm this instance set for
    /// earlier needs no storage write: when it fires, it sets the next one from every
    /// live socket.
    pub(super) async fn schedule_at(&self, at_ms: u64) -> Result<(), ApiError> {
        if self.alarm_at.get().is_some_and(|set| set <= at_ms) {
            return Ok(());
        }
        self.set_alarm(at_ms).await
    }

    async fn set_alarm(&self, at_ms: u64) -> Result<(), ApiError> {
        let at = i64::try_from(at_ms)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| ApiError::Internal(format!("alarm time {at_ms} out of range")))?;
        self.state.storage().set_alarm(at).await?;
        self.alarm_at.set(Some(at_ms));
        Ok(())
    }

    /// A `refresh` frame: the token goes through the same authentication as at the gate,
    /// against D1's latest revocations (at most once per socket per
    /// `REFRESH_CHECK_INTERVAL_MS`); the room core decides what follows.
    pub(super) async fn on_refresh(
        &self,
        ws: &WebSocket,
        token: &str,
        reference: Option<String>,
    ) -> Result<(), ApiError> {
        let room = self.tables.name().unwrap_or_default();
        // The answer goes in the socket's protocol, with the frame's `ref`.
        let version = self.identity(ws).map(|c| c.version).unwrap_or_default();
        let reply = |frame: &str| send_frame(ws, version, frame, reference.as_deref());
        let now = now_secs();
        let verdict = match prove(&self.env, Credential::Token(token), now).await {
            Ok(identity) => {
                let checked = self.with_roster(|r| r.may_check_refresh(ws, now_millis()));
                if !checked {
                    reply(&expiry::refresh_too_soon());
                    return Ok(());
                }
                admit(&self.env, identity, Some(&room), Freshness::Latest, now).await
            }
            Err(refusal) => Err(refusal),
        };
        let (verified, revoked) = match verdict {
            Ok(identity) => (Ok(identity), false),
            Err(Refusal::Revoked(identity)) => (Ok(identity), true),
            Err(Refusal::Invalid(reason)) => (Err(reason), false),
            // A valid token that no longer lets this user into the room: the right is
            // lost at once, as a change of the user's grants would close the socket.
            Err(Refusal::Forbidden(identity)) => {
                if self.identity(ws).is_some_and(|c| c.user.id == identity.sub) {
                    self.close(ws, CloseCode::Forbidden);
                    return Ok(());
                }
                (Err(format!("token does not grant room {room:?}")), false)
            }
            // The issuer's keys cannot be had now: the socket keeps its token.
            Err(Refusal::Failed(ApiError::IssuerUnavailable)) => {
                reply(&expiry::issuer_unavailable());
                return Ok(());
            }
            Err(Refusal::Failed(e)) => return Err(e),
        };
        // Re-read after the await: the socket may have been refreshed, or closed.
        let Some(conn) = self.identity(ws) else {
            return Ok(());
        };
        let verified = verified.as_ref().map_err(String::as_str);
        match expiry::refresh(&conn, verified, revoked) {
            Refresh::Accepted { conn, reply: frame } => {
                self.with_roster(|r| r.update(ws, conn))?;
                if let Ok(identity) = verified {
                    let open = self.config()?.rooms_open_by_default;
                    self.apply_rights(ws, grants::rights(identity.rooms.as_ref(), &room, open))?;
                }
                reply(&frame);
                self.schedule(&self.live().connections).await?;
            }
            Refresh::Rejected { reply: frame } => reply(&frame),
        }
        Ok(())
    }
}
