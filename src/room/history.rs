//! A room's message history: which stored messages to keep, to replay on resume, and to
//! page back through — as arithmetic on `seq`, with no storage in sight.
//!
//! The Durable Object keeps the last `HISTORY_LIMIT` `message` frames (the text exactly
//! as broadcast) keyed by `seq` in its SQLite storage, and asks this module which rows to
//! drop after an insert, which to send to a resuming socket (and whether a `gap` comes
//! first), and which to return for a `history` request. `seq` itself is a separate
//! durable counter: trimming never makes a number available again.

use serde_json::value::RawValue;

use crate::protocol::frames::ServerFrame;

/// Messages a `history` request returns when it names no `limit`.
pub const DEFAULT_PAGE: u64 = 50;
/// Most messages one `history` request may ask for.
pub const MAX_PAGE: u64 = 100;
/// Bytes of message frames one `history` answer may carry. The runtime refuses WebSocket
/// messages over 1 MiB; the rest of the 1 MiB is room for the envelope and separators.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024 - 4096;

/// After storing message `seq`, every stored message with a seq at or below the returned
/// one is dropped so that at most `limit` remain. `None`: nothing to drop yet.
pub fn trim_through(seq: u64, limit: u64) -> Option<u64> {
    seq.checked_sub(limit).filter(|&through| through > 0)
}

/// What a socket resuming after `since` is sent, right after its `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    /// Messages it missed that are no longer kept: a `gap` frame for `from..=to` first.
    pub gap: Option<(u64, u64)>,
    /// Then every stored message with a seq above this one, in order.
    pub after: u64,
}

/// The replay for a socket that last saw `since`, in a room whose latest message is
/// `last_seq` and whose oldest kept message is `oldest_kept` (`None`: nothing kept).
/// `None` when there is nothing to send (`since` is `last_seq` or later).
pub fn replay(since: u64, last_seq: u64, oldest_kept: Option<u64>) -> Option<Replay> {
    if since >= last_seq {
        return None;
    }
    let first_wanted = since + 1;
    // Everything from the oldest kept message on is still there (trimming drops a
    // prefix); with nothing kept, everything the client missed is gone.
    let first_kept = oldest_kept.unwrap_or(last_seq + 1);
    let gap = (first_kept > first_wanted).then(|| (first_wanted, first_kept - 1));
    Some(Replay { gap, after: since })
}

/// A `history` request's bounds: messages with seq below `before`, the newest `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub before: u64,
    pub limit: u64,
}

/// Checks a request's fields: `before` absent means "from the newest message";
/// `limit` absent means [`DEFAULT_PAGE`], and must be 1..=[`MAX_PAGE`].
pub fn page(before: Option<u64>, limit: Option<u64>) -> Result<Page, String> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(format!("history limit must be 1..={MAX_PAGE}"));
    }
    Ok(Page {
        before: before.unwrap_or(u64::MAX),
        limit,
    })
}

/// Renders a `history` answer from stored frames listed newest first (as the page query
/// returns them): keeps the newest ones that fit in [`MAX_PAGE_BYTES`] and returns them
/// oldest first. A client that got fewer than it asked for pages on with `before` set to
/// the first returned `seq`.
pub fn history_frame(newest_first: &[Box<RawValue>]) -> String {
    let mut bytes = 0;
    let fitting = newest_first
        .iter()
        .take_while(|m| {
            bytes += m.get().len() + 1;
            bytes <= MAX_PAGE_BYTES
        })
        .count();
    let messages: Vec<&RawValue> = newest_first[..fitting]
        .iter()
        .rev()
        .map(AsRef::as_ref)
        .collect();
    ServerFrame::History {
        messages: &messages,
    }
    .to_json()
}

/// What a `history` answer of `bytes` costs the asker in rate tokens beyond its request's
/// own: one token per `max_frame_bytes` returned (what publishing that much would cost),
/// less the one the request paid.
pub fn extra_tokens(bytes: usize, max_frame_bytes: usize) -> u64 {
    let tokens = bytes.div_ceil(max_frame_bytes.max(1));
    (tokens as u64).saturating_sub(1)
}

/// The `gap` frame for missed messages `from..=to` that are no longer kept.
pub fn gap_frame(from: u64, to: u64) -> String {
    ServerFrame::Gap { from, to }.to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_the_last_limit() {
        let cases = [
            // (seq just stored, limit, drop through)
            (1, 100, None),
            (100, 100, None),
            (101, 100, Some(1)),
            (250, 100, Some(150)),
            (6, 5, Some(1)),
            (7, 0, Some(7)),
            (u64::MAX, 1, Some(u64::MAX - 1)),
        ];
        for (seq, limit, want) in cases {
            assert_eq!(trim_through(seq, limit), want, "seq {seq} limit {limit}");
        }
    }

    #[test]
    fn replay_cases() {
        let none = |since, last, oldest| replay(since, last, oldest).is_none();
        assert!(none(0, 0, None), "empty room");
        assert!(none(5, 5, Some(1)), "up to date");
        assert!(none(9, 5, Some(1)), "since beyond last_seq");
        let r = |since, last, oldest| replay(since, last, oldest).unwrap();
        let cases = [
            // (since, last_seq, oldest kept) -> (gap, replay after)
            ((0, 3, Some(1)), (None, 0)),
            ((2, 10, Some(1)), (None, 2)),
            ((4, 10, Some(6)), (Some((5, 5)), 4)),
            ((0, 10, Some(6)), (Some((1, 5)), 0)),
            ((5, 10, Some(6)), (None, 5)),
            ((0, 10, None), (Some((1, 10)), 0)),
            ((7, 10, None), (Some((8, 10)), 7)),
        ];
        for ((since, last, oldest), (gap, after)) in cases {
            assert_eq!(
                r(since, last, oldest),
                Replay { gap, after },
                "since {since} last {last} oldest {oldest:?}"
            );
        }
    }

    #[test]
    fn page_bounds() {
        assert_eq!(
            page(None, None),
            Ok(Page {
                before: u64::MAX,
                limit: 50
            })
        );
        assert_eq!(
            page(Some(7), Some(100)),
            Ok(Page {
                before: 7,
                limit: 100
            })
        );
        assert_eq!(
            page(Some(0), Some(1)),
            Ok(Page {
                before: 0,
                limit: 1
            })
        );
        assert!(page(Some(7), Some(0)).is_err());
        assert!(page(Some(7), Some(101)).is_err());
    }

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn history_is_oldest_first_and_embedded_verbatim() {
        let stored = [
            raw(r#"{"seq":3,"data":{"b":1,"a":2}}"#),
            raw(r#"{"seq":2}"#),
        ];
        assert_eq!(
            history_frame(&stored),
            r#"{"type":"history","messages":[{"seq":2},{"seq":3,"data":{"b":1,"a":2}}]}"#
        );
        assert_eq!(history_frame(&[]), r#"{"type":"history","messages":[]}"#);
    }

    #[test]
    fn history_keeps_the_newest_that_fit() {
        let big = |seq: u64| {
            raw(&format!(
                r#"{{"seq":{seq},"pad":"{}"}}"#,
                "x".repeat(400_000)
            ))
        };
        let stored = [big(9), big(8), big(7)];
        let frame = history_frame(&stored);
        assert!(frame.len() <= 1024 * 1024, "{} bytes", frame.len());
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        let seqs: Vec<u64> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [8, 9]);
    }

    #[test]
    fn gap_renders() {
        assert_eq!(gap_frame(3, 7), r#"{"type":"gap","from":3,"to":7}"#);
    }

    #[test]
    fn a_history_answer_costs_what_publishing_it_would() {
        assert_eq!(
            extra_tokens(30, 16_384),
            0,
            "a small answer: its request's token"
        );
        assert_eq!(extra_tokens(16_384, 16_384), 0);
        assert_eq!(extra_tokens(16_385, 16_384), 1);
        assert_eq!(extra_tokens(MAX_PAGE_BYTES, 16_384), 63);
        assert_eq!(extra_tokens(0, 16_384), 0);
    }
}
