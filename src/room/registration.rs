//! A room's entry in the registry of active rooms, as a state machine.
//!
//! The registry (D1 `active_rooms`) is how a revocation finds the rooms with live
//! sockets, so a room must never hold a live socket without a row there. The room writes
//! and deletes its row with requests that may fail, and that run while other events of
//! the room go on (D1 is not the object's storage, so the input gate lets them in). Each
//! write carries a *mark*: a number the room hands out, higher each time. A registration
//! sets the row's mark to the higher of the two; a removal of mark `m` deletes the row
//! only if its mark is `m` or lower, so a late removal never erases a newer registration.
//!
//! The rules, which [`tests`] check over every interleaving of connects, leaves, alarms
//! and D1 outcomes (success, failure, and a write that happened but reported failure):
//! - a socket is accepted without registering only while a registration is confirmed and
//!   no removal is in flight ([`Registration::is_listed`]);
//! - a failed removal means the row may be gone: the room registers again before its
//!   next socket;
//! - a mark handed out and not confirmed removed may have a row, so the room retries the
//!   removal once it is empty.

/// What the room keeps in storage: marks only ever grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Marks {
    /// The last mark handed out.
    pub issued: u64,
    /// The last mark whose registration is confirmed and not in doubt (0: none).
    pub listed: u64,
    /// The last mark whose removal is confirmed.
    pub removed: u64,
}

/// The durable [`Marks`] and what this instance has in flight (an instance with requests
/// running is not evicted, so in-flight state needs no storage).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    marks: Marks,
    /// Registration writes in flight.
    adding: u32,
    /// A removal in flight, with its mark.
    removing: Option<u64>,
}

impl Registration {
    /// The state an instance starts from: what storage holds, nothing in flight.
    pub fn restore(marks: Marks) -> Self {
        Self {
            marks,
            adding: 0,
            removing: None,
        }
    }

    /// What to store after any change.
    pub fn marks(&self) -> Marks {
        self.marks
    }

    /// Whether a socket is on its way in (its registration is in flight).
    pub fn is_adding(&self) -> bool {
        self.adding > 0
    }

    /// Whether a socket may be accepted without registering first: a registration is
    /// confirmed, and no removal in flight could delete its row.
    pub fn is_listed(&self) -> bool {
        self.marks.listed > self.marks.removed && self.removing.is_none()
    }

    /// A socket is arriving and the room is not listed: the mark to register with. The
    /// socket waits for [`Registration::added`].
    pub fn begin_add(&mut self) -> u64 {
        self.marks.issued += 1;
        self.adding += 1;
        self.marks.issued
    }

    /// The registration of `mark` finished; `ok`: confirmed. A failure leaves the room
    /// unlisted (the write may still have happened: [`Registration::begin_remove`] will
    /// clean it up).
    pub fn added(&mut self, mark: u64, ok: bool) {
        self.adding = self.adding.saturating_sub(1);
        if ok {
            self.marks.listed = self.marks.listed.max(mark);
        }
    }

    /// The room may be empty, with `live` sockets: the mark to remove, when a removal
    /// should start now. None while a socket is live or on its way in, while another
    /// removal runs, or when no row can exist.
    pub fn begin_remove(&mut self, live: usize) -> Option<u64> {
        let row_may_exist = self.marks.issued > self.marks.removed;
        if live > 0 || self.adding > 0 || self.removing.is_some() || !row_may_exist {
            return None;
        }
        self.removing = Some(self.marks.issued);
        self.removing
    }

    /// The removal of `mark` finished; `ok`: confirmed. After a failure the row may or
    /// may not be there: the room counts itself unlisted (a later socket registers again)
    /// and retries the removal when it is empty.
    pub fn removed(&mut self, mark: u64, ok: bool) {
        self.removing = None;
        if ok {
            self.marks.removed = self.marks.removed.max(mark);
        } else if self.marks.listed <= mark {
            self.marks.listed = 0;
        }
    }
}

/// Registry rows carry a random bucket in `0..BUCKETS`, so that a push to every room can
/// be split into ranges of buckets, each small enough for one request: what one request
/// can reach does not bound the push, and room names do not steer it. 2^52 keeps every
/// bucket exact as a JavaScript number.
pub const BUCKETS: i64 = 1 << 52;

/// A room's bucket, from 8 random bytes.
pub fn bucket_of(random: [u8; 8]) -> i64 {
    (u64::from_le_bytes(random) & (BUCKETS as u64 - 1)) as i64
}

/// What one request of a push does with the `rooms` registered in buckets `lo..hi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Call each of them: they are at most `page`, or the range cannot be cut finer.
    Direct,
    /// Hand each of these ranges (at most `page`, covering `lo..hi`) to a request of
    /// its own.
    Parts(Vec<(i64, i64)>),
}

/// The plan for `rooms` rooms in buckets `lo..hi`, at most `page` calls per request.
pub fn plan(lo: i64, hi: i64, rooms: u64, page: u32) -> Plan {
    if rooms <= u64::from(page) || hi - lo <= 1 {
        return Plan::Direct;
    }
    let width = part_width(lo, hi, page);
    Plan::Parts(
        (0..i64::from(page))
            .map(|part| part_range(lo, hi, width, part))
            .filter(|(a, b)| a < b)
            .collect(),
    )
}

/// The width of each of `parts` equal ranges that cover `lo..hi` (at least 1).
fn part_width(lo: i64, hi: i64, parts: u32) -> i64 {
    let span = hi.saturating_sub(lo).max(1);
    let parts = i64::from(parts.max(1));
    (span + parts - 1) / parts
}

/// The range of part `part` of `lo..hi` cut into ranges of `width`.
fn part_range(lo: i64, hi: i64, width: i64, part: i64) -> (i64, i64) {
    let start = lo.saturating_add(part.saturating_mul(width));
    (start.min(hi), start.saturating_add(width).min(hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A D1 request in flight and who waits for it.
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    enum Op {
        /// A connect waits for this registration.
        Insert(u64),
        Delete(u64),
    }

    /// How a D1 request ends.
    #[derive(Debug, Clone, Copy)]
    enum Outcome {
        Ok,
        /// Not applied, reported failed.
        Failed,
        /// Applied, but reported failed (the answer was lost).
        Lost,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    struct World {
        reg: (Marks, u32, Option<u64>),
        /// The registry row's mark, if there is a row.
        row: Option<u64>,
        live: usize,
        pending: Vec<Op>,
        connects_left: u8,
        leaves_left: u8,
        alarms_left: u8,
    }

    impl World {
        fn registration(&self) -> Registration {
            Registration {
                marks: self.reg.0,
                adding: self.reg.1,
                removing: self.reg.2,
            }
        }

        fn with(&self, reg: &Registration) -> World {
            World {
                reg: (reg.marks, reg.adding, reg.removing),
                ..self.clone()
            }
        }

        /// Every state one event away.
        fn next(&self) -> Vec<World> {
            let mut out = Vec::new();
            let reg = self.registration();
            if self.connects_left > 0 {
                let mut reg = reg.clone();
                let mut w = self.clone();
                w.connects_left -= 1;
                if reg.is_listed() {
                    w.live += 1;
                } else {
                    let mark = reg.begin_add();
                    w.pending.push(Op::Insert(mark));
                }
                out.push(w.with(&reg));
            }
            if self.leaves_left > 0 && self.live > 0 {
                let mut w = self.clone();
                w.leaves_left -= 1;
                w.live -= 1;
                out.push(w);
            }
            if self.alarms_left > 0 {
                let mut reg = reg.clone();
                let mut w = self.clone();
                w.alarms_left -= 1;
                if let Some(mark) = reg.begin_remove(w.live) {
                    w.pending.push(Op::Delete(mark));
                }
                out.push(w.with(&reg));
            }
            for i in 0..self.pending.len() {
                for outcome in [Outcome::Ok, Outcome::Failed, Outcome::Lost] {
                    out.push(self.complete(i, outcome));
                }
            }
            out
        }

        fn complete(&self, i: usize, outcome: Outcome) -> World {
            let mut w = self.clone();
            let mut reg = self.registration();
            let op = w.pending.remove(i);
            let applied = !matches!(outcome, Outcome::Failed);
            let ok = matches!(outcome, Outcome::Ok);
            match op {
                Op::Insert(mark) => {
                    if applied {
                        w.row = Some(w.row.map_or(mark, |r| r.max(mark)));
                    }
                    reg.added(mark, ok);
                    if ok {
                        w.live += 1;
                    }
                }
                Op::Delete(mark) => {
                    if applied && w.row.is_some_and(|r| r <= mark) {
                        w.row = None;
                    }
                    reg.removed(mark, ok);
                }
            }
            w.with(&reg)
        }
    }

    #[test]
    fn no_live_socket_without_a_row_and_no_row_left_behind_in_any_interleaving() {
        let start = World {
            reg: (Marks::default(), 0, None),
            row: None,
            live: 0,
            pending: Vec::new(),
            connects_left: 5,
            leaves_left: 5,
            alarms_left: 5,
        };
        let mut seen = HashSet::new();
        let mut stack = vec![start];
        let mut quiescent = 0;
        while let Some(w) = stack.pop() {
            if !seen.insert(w.clone()) {
                continue;
            }
            if w.pending.is_empty() {
                quiescent += 1;
                // Safety: a live socket always has a row to be found by a revocation.
                assert!(
                    w.live == 0 || w.row.is_some(),
                    "live socket without a row: {w:?}"
                );
                // Cleanup: an empty room whose alarm's removal succeeds leaves no row.
                if w.live == 0 {
                    let mut reg = w.registration();
                    let mut row = w.row;
                    if let Some(mark) = reg.begin_remove(0) {
                        if row.is_some_and(|r| r <= mark) {
                            row = None;
                        }
                        reg.removed(mark, true);
                    }
                    assert_eq!(row, None, "a row stays behind: {w:?}");
                    assert!(!reg.is_listed(), "{w:?}");
                }
            }
            stack.extend(w.next());
        }
        assert!(seen.len() > 10_000, "explored {} states only", seen.len());
        assert!(quiescent > 100, "{quiescent} quiescent states");
    }

    #[test]
    fn a_connect_during_a_removal_registers_again() {
        let mut reg = Registration::default();
        let m1 = reg.begin_add();
        reg.added(m1, true);
        assert!(reg.is_listed());
        let gone = reg.begin_remove(0).expect("empty and listed");
        // A socket arrives while the delete is in flight: the row may vanish under it.
        assert!(!reg.is_listed());
        let m2 = reg.begin_add();
        assert!(m2 > gone);
        reg.added(m2, true);
        reg.removed(gone, true);
        assert!(reg.is_listed(), "the newer registration stands");
    }

    #[test]
    fn a_failed_registration_leaves_the_room_unlisted() {
        let mut reg = Registration::default();
        let m = reg.begin_add();
        reg.added(m, false);
        assert!(!reg.is_listed());
        assert_eq!(
            reg.begin_remove(0),
            Some(m),
            "its row may exist: cleaned up"
        );
    }

    #[test]
    fn a_failed_removal_puts_the_registration_in_doubt() {
        let mut reg = Registration::default();
        let m = reg.begin_add();
        reg.added(m, true);
        let gone = reg.begin_remove(0).unwrap();
        reg.removed(gone, false);
        assert!(!reg.is_listed(), "the row may be gone: register again");
        assert_eq!(reg.begin_remove(0), Some(gone), "and retry the removal");
        reg.removed(gone, true);
        assert_eq!(reg.begin_remove(0), None, "nothing left to remove");
    }

    #[test]
    fn nothing_is_removed_while_a_socket_is_live_or_arriving() {
        let mut reg = Registration::default();
        let m = reg.begin_add();
        assert_eq!(reg.begin_remove(0), None, "a registration is in flight");
        reg.added(m, true);
        assert_eq!(reg.begin_remove(1), None, "a socket is live");
        assert_eq!(reg.marks().issued, m);
        assert_eq!(
            Registration::restore(reg.marks()).marks(),
            reg.marks(),
            "marks survive an eviction"
        );
    }

    #[test]
    fn buckets_fall_in_their_range() {
        assert_eq!(bucket_of([0; 8]), 0);
        assert_eq!(bucket_of([0xff; 8]), BUCKETS - 1);
        assert!((0..BUCKETS).contains(&bucket_of(*b"roomgate")));
    }

    /// Runs a push the way `objects::fanout` does, over buckets in memory: every room is
    /// reached exactly once, and no request makes more than `page` calls.
    fn simulate(buckets: &[i64], page: u32) -> (Vec<usize>, usize, usize) {
        fn node(
            buckets: &[i64],
            lo: i64,
            hi: i64,
            page: u32,
            depth: usize,
            reached: &mut Vec<usize>,
            stats: &mut (usize, usize),
        ) {
            let inside: Vec<usize> = (0..buckets.len())
                .filter(|&i| (lo..hi).contains(&buckets[i]))
                .collect();
            stats.1 = stats.1.max(depth);
            match plan(lo, hi, inside.len() as u64, page) {
                Plan::Direct => {
                    stats.0 = stats.0.max(inside.len());
                    reached.extend(inside);
                }
                Plan::Parts(parts) => {
                    stats.0 = stats.0.max(parts.len());
                    for (a, b) in parts {
                        node(buckets, a, b, page, depth + 1, reached, stats);
                    }
                }
            }
        }
        let mut reached = Vec::new();
        let mut stats = (0, 0);
        node(buckets, 0, BUCKETS, page, 0, &mut reached, &mut stats);
        (reached, stats.0, stats.1)
    }

    #[test]
    fn a_push_reaches_every_room_once_in_pages() {
        // Random buckets, as rooms get them (a fixed seed: the test is repeatable).
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bucket_of(seed.to_le_bytes())
        };
        for (rooms, page) in [
            (60, 10),
            (1_000, 10),
            (5_000, 100),
            (7, 2),
            (0, 10),
            (250, 1000),
        ] {
            let buckets: Vec<i64> = (0..rooms).map(|_| random()).collect();
            let (mut reached, widest, depth) = simulate(&buckets, page);
            reached.sort_unstable();
            assert_eq!(
                reached,
                (0..rooms).collect::<Vec<_>>(),
                "{rooms} rooms, page {page}"
            );
            assert!(
                widest <= page as usize,
                "a request made {widest} calls (page {page})"
            );
            assert!(depth <= 6, "{rooms} rooms, page {page}: depth {depth}");
        }
        // Rooms all in one bucket (which random buckets never give): still all reached.
        let (reached, _, _) = simulate(&[42; 30], 10);
        assert_eq!(reached.len(), 30);
    }

    #[test]
    fn parts_cover_their_range_exactly_once() {
        for (lo, hi, parts) in [
            (0, BUCKETS, 10),
            (5, 17, 4),
            (0, 3, 10),
            (7, 8, 2),
            (0, BUCKETS, 1000),
        ] {
            let width = part_width(lo, hi, parts);
            let mut next = lo;
            for part in 0..i64::from(parts) {
                let (a, b) = part_range(lo, hi, width, part);
                assert_eq!(a, next.min(hi), "{lo}..{hi} / {parts}: part {part}");
                assert!(b >= a);
                next = b;
            }
            assert_eq!(next, hi, "{lo}..{hi} / {parts} covers all of it");
            // Every bucket in the range lands in the part its offset names.
            for bucket in [lo, (lo + hi) / 2, hi - 1] {
                let part = (bucket - lo) / width;
                let (a, b) = part_range(lo, hi, width, part);
                assert!((a..b).contains(&bucket), "{bucket} in part {part}");
            }
        }
    }
}
