//! The room's messages: sequencing a published one, the replay for a resuming socket, and
//! `history` pages. What to keep, replay and page is decided in `room::history`.
//!
//! All synchronous: a message is sequenced, stored and broadcast, and a resuming socket
//! is welcomed and replayed to, with no other event in between. That is what makes a
//! resume free of gaps and duplicates: a live message either was stored before the
//! replay (and is in it) or is broadcast after it (to the socket, which is live by then).

use serde_json::value::RawValue;
use worker::WebSocket;

use super::instance::RoomInstance;
use crate::protocol::frames::Member;
use crate::room::history::{self, Page};
use crate::room::state;
use crate::runtime::env::now_millis;

/// A message that got its `seq` and is stored: its frame, to broadcast.
pub(super) struct Sequenced {
    pub frame: String,
    pub seq: u64,
    pub ts: u64,
}

impl RoomInstance {
    /// Gives `data` from `sender` the room's next `seq`, stores it (keeping the last
    /// `limit` messages), and returns the `message` frame to broadcast.
    pub(super) fn sequence(
        &self,
        sender: &Member,
        data: &RawValue,
        limit: u64,
    ) -> worker::Result<Sequenced> {
        let seq = self.last_seq()? + 1;
        let ts = now_millis();
        let frame = state::message(seq, sender, data, ts);
        self.tables.store_message(seq, &frame, limit)?;
        self.seq.set(Some(seq));
        Ok(Sequenced { frame, seq, ts })
    }

    /// Sends a resuming socket what it missed after `since`: a `gap` for what is no
    /// longer kept, then every kept message after `since`, in order.
    pub(super) fn replay(&self, ws: &WebSocket, since: u64, last_seq: u64) -> worker::Result<()> {
        let oldest = self.tables.oldest_kept()?;
        let Some(replay) = history::replay(since, last_seq, oldest) else {
            return Ok(());
        };
        if let Some((from, to)) = replay.gap {
            ws.send_with_str(history::gap_frame(from, to))?;
        }
        for frame in self.tables.frames_after(replay.after)? {
            ws.send_with_str(&frame)?;
        }
        Ok(())
    }

    /// The `history` answer for `page`.
    pub(super) fn history_page(&self, page: Page) -> worker::Result<String> {
        let frames = self
            .tables
            .frames_before(page.before, page.limit)?
            .into_iter()
            .map(RawValue::from_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| worker::Error::RustError(format!("stored frame: {e}")))?;
        Ok(history::history_frame(&frames))
    }
}
