//! The room's stored messages: the replay for a resuming socket, and
//! `history` pages. What to keep, replay and page is decided in `room::history`.
//!
//! All synchronous: a resuming socket is welcomed and replayed to with no other event in
//! between. That is what makes a resume free of gaps and duplicates: a message either
//! was stored before the replay (and is in it) or goes out in a later flush (to the
//! socket, which is live by then).

use serde_json::value::RawValue;

use super::instance::RoomInstance;
use crate::room::history::{self, Page};

/// A message that got its `seq` (`super::delivery::gather_message`).
pub(super) struct Sequenced {
    pub seq: u64,
    pub ts: u64,
}

impl RoomInstance {
    /// What a resuming socket missed after `since`, up to `stored_seq`: a `gap` for
    /// what is no longer kept, then every kept message after `since`, in order.
    pub(super) fn replay(&self, since: u64, stored_seq: u64) -> worker::Result<Vec<String>> {
        let oldest = self.tables.oldest_kept()?;
        let Some(replay) = history::replay(since, stored_seq, oldest) else {
            return Ok(Vec::new());
        };
        let mut frames = Vec::new();
        if let Some((from, to)) = replay.gap {
            frames.push(history::gap_frame(from, to));
        }
        frames.extend(self.tables.frames_after(replay.after)?);
        Ok(frames)
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
