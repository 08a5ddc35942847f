//! Token lifetimes in the `Room` object: the alarm that warns (`expiring`) and closes
//! (4001) sockets whose token runs out, and in-band `refresh`.
//!
//! The decisions are `room::expiry`'s; this carries them out. The object has a single
//! alarm, always set to the earliest deadline of any live socket (recomputed from the
//! attachments whenever a deadline may have moved: a socket arrives, a refresh lands, the
//! alarm fires). An alarm wakes a hibernated object, so an idle room still closes
//! expired sockets on time; no timer runs in between.

use chrono::DateTime;
use worker::{console_error, WebSocket};

use super::revocation::is_revoked;
use super::room_object::Room;
use super::webcrypto::WebCrypto;
use super::{now_millis, now_secs, token_authority};
use crate::auth::grants;
use crate::error::ApiError;
use crate::room::expiry::{self, Refresh};
use crate::room::protocol::CloseCode;
use crate::room::state::Connection;

impl Room {
    /// The alarm fired: warn who is due, close who is past their token's expiry, set the
    /// alarm for the next deadline.
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
            if let Err(e) = self.with_roster(|r| r.update(ws, conn)) {
                console_error!("room alarm: {e}");
            }
            let _ = ws.send_with_str(frame);
        }
        for &i in &sweep.expire {
            self.close(&live.sockets[i], CloseCode::TokenExpired);
        }
        if let Some(at) = sweep.next_alarm_ms {
            if let Err(e) = self.set_alarm(at).await {
                console_error!("room alarm: {e:?}");
            }
        }
        // Also the registry's grace period ending (`room_control::emptied`).
        self.deactivate_if_empty().await;
    }

    /// Sets the alarm for the earliest deadline of `connections` (the live sockets'
    /// identities; if any).
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

    /// A `refresh` frame: the token is verified exactly as at the gate (signature,
    /// claims, room grant, revocation); the room core decides what follows.
    pub(super) async fn on_refresh(&self, ws: &WebSocket, token: &str) -> Result<(), ApiError> {
        let config = self.config()?;
        let now = now_secs();
        let verified = token_authority(&self.env, config)?
            .verify(token, now, &WebCrypto)
            .await
            .map_err(|e| e.to_string())
            .and_then(|identity| {
                let room = self.name().unwrap_or_default();
                let rooms = identity.rooms.as_deref();
                if grants::allows(rooms, &room, config.rooms_open_by_default) {
                    Ok(identity)
                } else {
                    Err(format!("token does not grant room {room:?}"))
                }
            });
        let revoked = match &verified {
            Ok(identity) => is_revoked(&self.env, identity, now).await?,
            Err(_) => false,
        };
        // Re-read after the await: the socket may have been refreshed, or closed.
        let Some(conn) = self.identity(ws) else {
            return Ok(());
        };
        match expiry::refresh(&conn, verified.as_ref().map_err(String::as_str), revoked) {
            Refresh::Accepted { conn, reply } => {
                self.with_roster(|r| r.update(ws, conn))?;
                ws.send_with_str(&reply)?;
                self.schedule(&self.live().connections).await?;
            }
            Refresh::Rejected { reply } => ws.send_with_str(&reply)?,
        }
        Ok(())
    }
}
