//! Coalescing: when a room's frames go out, and what one flush sends to whom.
//!
//! The runtime's cost is per WebSocket send, nearly whatever its size, so a busy room
//! gathers what it would send and sends it together: one array per v2 socket
//! (`protocol::v2`), each frame rendered once for everyone. A quiet room must not pay
//! for that in latency, so the [`Window`] only holds frames back while the room is busy:
//! a room that sent nothing for the window's length sends at once, and one that did
//! waits until the window its last send opened has passed.
//!
//! What is gathered is an [`Outbox`]: sequenced messages, presence changes, and the
//! sockets that arrived meanwhile (whose `welcome` already showed them the members, so
//! their first `presence` covers only what came after it). [`Flush`] renders it. The
//! object stores the messages before it sends anything (stored before seen), and v1
//! sockets get the same frames one by one, in the same order.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::protocol::frames::{Member, ServerFrame};
use crate::protocol::v2;

/// When a room's gathered frames go out: a pure state machine over the window's timer.
///
/// A send opens a window of `FLUSH_MS`, its timer set at once. While the window is open
/// the room is busy: what happens is gathered. When the timer fires, what was gathered
/// is flushed and the next window opens. The room is quiet again, and its next frame
/// goes out at once, after a whole window in which nothing was gathered and nothing
/// sent: a window opened by a flush is followed by one more before it closes.
///
/// The window is a timer rather than a comparison of clock readings, and the flush's own
/// window does not count as quiet, because the runtime's clock stands still while an
/// event runs and nothing else runs meanwhile. A flush to a thousand sockets can take
/// longer than the window; the frames that arrived during it are handled only after it,
/// and after the timer that expired during it. Judged by either, they would look like
/// frames after a quiet window and go out one by one, just when batching matters most.
#[derive(Debug, Default)]
pub struct Window {
    /// The open window's timer, if any.
    open: Option<Timer>,
    generations: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timer {
    generation: u64,
    /// The window was opened by a flush, so it cannot yet tell the room is quiet.
    after_flush: bool,
}

/// What to do with what was just gathered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Go {
    /// Flush now; then, if the room coalesces, open a window ([`Window::opened`]).
    Now,
    /// A window is open: its timer flushes this along.
    Wait,
}

/// What an open window's timer finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// Flush what was gathered, then open the next window ([`Window::opened`]).
    Flush,
    /// Nothing was gathered, but the window was its flush's: set the timer of one more
    /// window, whose generation this is.
    Again(u64),
    /// A whole window passed with nothing gathered: the room is quiet.
    Closed,
    /// Not the open window's timer (a window closed by a flush that went at once).
    Stale,
}

impl Window {
    /// Something was gathered. `coalesce`: whether this room batches at all (a window
    /// over 0, and a v2 socket to batch for); otherwise everything goes out at once,
    /// and so does what an open window holds, which then closes.
    pub fn on_event(&mut self, coalesce: bool) -> Go {
        if coalesce && self.open.is_some() {
            return Go::Wait;
        }
        self.open = None;
        Go::Now
    }

    /// A flush went out: the window it opens, whose timer fires [`Window::on_timer`]
    /// with the generation returned.
    pub fn opened(&mut self) -> u64 {
        self.start(true)
    }

    fn start(&mut self, after_flush: bool) -> u64 {
        self.generations += 1;
        self.open = Some(Timer {
            generation: self.generations,
            after_flush,
        });
        self.generations
    }

    /// The window could not be timed: nothing may wait for it.
    pub fn close(&mut self) {
        self.open = None;
    }

    /// The timer of `generation` fired; `gathered`: whether anything waits.
    pub fn on_timer(&mut self, generation: u64, gathered: bool) -> Fired {
        match self.open {
            Some(timer) if timer.generation == generation => {
                if gathered {
                    Fired::Flush
                } else if timer.after_flush {
                    Fired::Again(self.start(false))
                } else {
                    self.open = None;
                    Fired::Closed
                }
            }
            _ => Fired::Stale,
        }
    }

    /// Whether a window is open: the room is busy.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

/// A sequenced message waiting for its flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub seq: u64,
    /// The `message` frame as everyone gets it.
    pub frame: String,
    /// The v2 sender's `ref`, for its own copy.
    pub echo: Option<Echo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    pub conn_id: String,
    pub reference: String,
}

/// A user became a member (`joined`) or stopped being one. For one user these alternate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub member: Member,
    pub joined: bool,
    /// The v1 frame for it (`join` or `leave`).
    pub v1_frame: String,
}

/// One gathered thing, in the order v1 sockets get them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Message(usize),
    Change(usize),
}

/// What a room gathered since its last flush.
#[derive(Debug, Default)]
pub struct Outbox {
    messages: Vec<Outgoing>,
    changes: Vec<Change>,
    order: Vec<Item>,
    /// Sockets that arrived since the last flush, by connection id, with how many
    /// changes their `welcome` already reflected.
    newcomers: Vec<(String, usize)>,
}

impl Outbox {
    pub fn message(&mut self, message: Outgoing) {
        self.order.push(Item::Message(self.messages.len()));
        self.messages.push(message);
    }

    pub fn change(&mut self, change: Change) {
        self.order.push(Item::Change(self.changes.len()));
        self.changes.push(change);
    }

    /// A socket was welcomed now: it knows the members as of every change so far. (With
    /// none gathered it knows as much as everyone: nothing to remember.)
    pub fn arrived(&mut self, conn_id: &str) {
        if !self.changes.is_empty() {
            self.newcomers
                .push((conn_id.to_owned(), self.changes.len()));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The `seq` of the first message waiting, if any: all before it are stored.
    pub fn first_seq(&self) -> Option<u64> {
        self.messages.first().map(|m| m.seq)
    }

    pub fn messages(&self) -> &[Outgoing] {
        &self.messages
    }
}

/// A taken [`Outbox`], rendered for its recipients.
pub struct Flush {
    outbox: Outbox,
    /// Connection id → the changes its welcome reflected.
    newcomers: HashMap<String, usize>,
    /// Connection ids with a `ref`'d message in this flush.
    senders: HashSet<String>,
    /// The `presence` frame for every socket that was there before the flush's first
    /// change (rendered on first use).
    presence: Option<Option<String>>,
}

impl Flush {
    pub fn new(outbox: Outbox) -> Self {
        let newcomers = outbox.newcomers.iter().cloned().collect();
        let senders = outbox
            .messages
            .iter()
            .filter_map(|m| m.echo.as_ref().map(|e| e.conn_id.clone()))
            .collect();
        Flush {
            outbox,
            newcomers,
            senders,
            presence: None,
        }
    }

    pub fn messages(&self) -> &[Outgoing] {
        &self.outbox.messages
    }

    pub fn order(&self) -> &[Item] {
        &self.outbox.order
    }

    pub fn changes(&self) -> &[Change] {
        &self.outbox.changes
    }

    /// How many of the changes socket `conn_id` already knows (0 unless it arrived
    /// during this flush's window).
    pub fn known_changes(&self, conn_id: &str) -> usize {
        self.newcomers.get(conn_id).copied().unwrap_or(0)
    }

    /// Whether socket `conn_id` gets frames of its own (not the shared arrays): it
    /// arrived meanwhile or sent a message with a `ref`.
    pub fn is_special(&self, conn_id: &str) -> bool {
        (!self.newcomers.is_empty() && self.newcomers.contains_key(conn_id))
            || (!self.senders.is_empty() && self.senders.contains(conn_id))
    }

    /// The v2 arrays for socket `recipient` (`None`: the shared ones, for every socket
    /// that is not [`Self::is_special`]): its `presence` (when `sees_presence`), then
    /// the messages, its own with their refs.
    pub fn arrays_for(&mut self, recipient: Option<&str>, sees_presence: bool) -> Vec<String> {
        let known = recipient.map_or(0, |r| self.known_changes(r));
        let presence = if !sees_presence {
            None
        } else if known == 0 {
            self.shared_presence()
        } else {
            presence_frame(&self.outbox.changes[known..])
        };
        let own = recipient.filter(|r| self.senders.contains(*r));
        let messages = self.outbox.messages.iter().map(|m| match &m.echo {
            Some(echo) if own == Some(echo.conn_id.as_str()) => {
                Cow::Owned(v2::with_ref(&m.frame, &echo.reference))
            }
            _ => Cow::Borrowed(m.frame.as_str()),
        });
        let frames: Vec<Cow<str>> = presence
            .map(Cow::Owned)
            .into_iter()
            .chain(messages)
            .collect();
        v2::arrays(frames.iter().map(|f| f.as_ref()))
    }

    fn shared_presence(&mut self) -> Option<String> {
        self.presence
            .get_or_insert_with(|| presence_frame(&self.outbox.changes))
            .clone()
    }
}

/// The `presence` frame for `changes` (in order): per user, whether they were a member
/// before the first of their changes and are one after the last. None when that nets to
/// nothing for everyone.
pub fn presence_frame(changes: &[Change]) -> Option<String> {
    // (member as last seen, was a member before, is one now), in order of first change.
    let mut users: Vec<(&Member, bool, bool)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for change in changes {
        match index.get(change.member.id.as_str()) {
            Some(&i) => {
                users[i].0 = &change.member;
                users[i].2 = change.joined;
            }
            None => {
                index.insert(&change.member.id, users.len());
                users.push((&change.member, !change.joined, change.joined));
            }
        }
    }
    let joined: Vec<Member> = users
        .iter()
        .filter(|(_, before, now)| !before && *now)
        .map(|(m, ..)| (*m).clone())
        .collect();
    let left: Vec<Member> = users
        .iter()
        .filter(|(_, before, now)| *before && !now)
        .map(|(m, ..)| (*m).clone())
        .collect();
    if joined.is_empty() && left.is_empty() {
        return None;
    }
    Some(
        ServerFrame::Presence {
            joined: &joined,
            left: &left,
        }
        .to_json(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn member(id: &str) -> Member {
        Member {
            id: id.into(),
            name: id.to_uppercase(),
        }
    }

    fn change(id: &str, joined: bool) -> Change {
        Change {
            member: member(id),
            joined,
            v1_frame: format!("{id}{joined}"),
        }
    }

    fn message(seq: u64, echo: Option<(&str, &str)>) -> Outgoing {
        Outgoing {
            seq,
            frame: format!(r#"{{"type":"message","seq":{seq}}}"#),
            echo: echo.map(|(c, r)| Echo {
                conn_id: c.into(),
                reference: r.into(),
            }),
        }
    }

    fn ids(v: &Value, key: &str) -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_quiet_room_sends_at_once_and_a_busy_one_waits_for_its_window() {
        let mut w = Window::default();
        assert_eq!(w.on_event(true), Go::Now, "quiet");
        let first = w.opened();
        assert!(w.is_open());
        assert_eq!(
            w.on_event(true),
            Go::Wait,
            "inside the window its send opened"
        );
        assert_eq!(w.on_event(true), Go::Wait);
        assert_eq!(w.on_timer(first, true), Fired::Flush);
        let second = w.opened();
        assert_eq!(
            w.on_event(true),
            Go::Wait,
            "the flush opened the next window"
        );
        assert_eq!(w.on_timer(first, true), Fired::Stale, "an old timer");
        assert_eq!(w.on_timer(second, true), Fired::Flush);
        let third = w.opened();
        let Fired::Again(fourth) = w.on_timer(third, false) else {
            panic!("a flush's own window does not make the room quiet");
        };
        assert_eq!(w.on_event(true), Go::Wait, "still busy");
        assert_eq!(w.on_timer(fourth, true), Fired::Flush);
        let fifth = w.opened();
        let Fired::Again(sixth) = w.on_timer(fifth, false) else {
            panic!("one more window");
        };
        assert_eq!(
            w.on_timer(sixth, false),
            Fired::Closed,
            "a whole quiet window"
        );
        assert!(!w.is_open());
        assert_eq!(w.on_event(true), Go::Now, "quiet again");
    }

    #[test]
    fn without_coalescing_everything_goes_at_once() {
        let mut w = Window::default();
        assert_eq!(w.on_event(true), Go::Now);
        let g = w.opened();
        assert_eq!(
            w.on_event(false),
            Go::Now,
            "no v2 socket left (or FLUSH_MS=0): what waits goes now, with this"
        );
        assert!(!w.is_open());
        assert_eq!(
            w.on_timer(g, true),
            Fired::Stale,
            "its timer then finds nothing to do"
        );
        assert_eq!(w.on_event(false), Go::Now);
    }

    #[test]
    fn a_window_that_cannot_be_timed_holds_nothing() {
        let mut w = Window::default();
        assert_eq!(w.on_event(true), Go::Now);
        w.opened();
        w.close();
        assert_eq!(w.on_event(true), Go::Now);
    }

    #[test]
    fn presence_nets_each_users_changes() {
        let changes = [
            change("a", true),
            change("b", false),
            change("c", true),
            change("c", false),
            change("b", true),
            change("d", false),
            change("d", true),
            change("d", false),
        ];
        let v: Value = serde_json::from_str(&presence_frame(&changes).unwrap()).unwrap();
        assert_eq!(v["type"], "presence");
        assert_eq!(ids(&v, "joined"), ["a"]);
        assert_eq!(ids(&v, "left"), ["d"]);
        assert_eq!(v["joined"][0]["name"], "A");
        assert_eq!(presence_frame(&changes[2..4]), None, "came and went");
        assert_eq!(presence_frame(&[]), None);
        let only_left = presence_frame(&[change("x", false)]).unwrap();
        assert_eq!(
            only_left,
            r#"{"type":"presence","joined":[],"left":[{"id":"x","name":"X"}]}"#
        );
    }

    #[test]
    fn newcomers_and_senders_get_their_own_arrays() {
        let mut o = Outbox::default();
        o.change(change("a", true));
        o.arrived("conn-a");
        o.message(message(7, Some(("conn-a", "r1"))));
        o.change(change("b", true));
        o.arrived("conn-b");
        o.message(message(8, None));
        assert_eq!(o.first_seq(), Some(7));
        let mut f = Flush::new(o);
        assert_eq!(
            f.order(),
            [
                Item::Change(0),
                Item::Message(0),
                Item::Change(1),
                Item::Message(1)
            ]
        );

        let parse = |a: &[String]| -> Vec<Value> {
            assert_eq!(a.len(), 1);
            serde_json::from_str(&a[0]).unwrap()
        };
        assert!(!f.is_special("old"));
        let old = parse(&f.arrays_for(None, true));
        assert_eq!(ids(&old[0], "joined"), ["a", "b"]);
        assert_eq!(old[1]["seq"], 7);
        assert_eq!(old[1].get("ref"), None, "not the sender");
        assert_eq!(old[2]["seq"], 8);

        assert!(f.is_special("conn-a"));
        let a = parse(&f.arrays_for(Some("conn-a"), true));
        assert_eq!(ids(&a[0], "joined"), ["b"], "its welcome showed itself");
        assert_eq!(a[1]["ref"], "r1");

        let b = parse(&f.arrays_for(Some("conn-b"), true));
        assert_eq!(b.len(), 2, "nothing changed after its welcome: no presence");
        assert_eq!(b[0]["seq"], 7);

        let viewer = parse(&f.arrays_for(None, false));
        assert_eq!(
            viewer.len(),
            2,
            "no presence for a socket without the right"
        );
    }

    #[test]
    fn an_empty_outbox_renders_nothing() {
        let o = Outbox::default();
        assert!(o.is_empty());
        assert_eq!(o.first_seq(), None);
        let mut f = Flush::new(o);
        assert!(f.arrays_for(None, true).is_empty());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::collections::{BTreeMap, BTreeSet};

        #[derive(Debug, Clone)]
        enum Step {
            /// A socket of user `u` arrives.
            Arrive(u8),
            /// The `n`th live socket (mod their number) leaves.
            Leave(u8),
            Publish,
            Flush,
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                4 => (0u8..5).prop_map(Step::Arrive),
                3 => any::<u8>().prop_map(Step::Leave),
                2 => Just(Step::Publish),
                2 => Just(Step::Flush),
            ]
        }

        /// Applies every `presence` in `arrays` to `view`; returns the `seq`s they carry.
        fn apply(arrays: &[String], view: &mut BTreeSet<String>) -> Vec<u64> {
            let mut seqs = Vec::new();
            for array in arrays {
                let frames: Vec<Value> = serde_json::from_str(array).unwrap();
                for f in frames {
                    if f["type"] == "presence" {
                        for m in f["left"].as_array().unwrap() {
                            assert!(view.remove(m["id"].as_str().unwrap()), "left: not a member");
                        }
                        for m in f["joined"].as_array().unwrap() {
                            let new = view.insert(m["id"].as_str().unwrap().to_owned());
                            assert!(new, "joined: already a member");
                        }
                    } else {
                        seqs.push(f["seq"].as_u64().unwrap());
                    }
                }
            }
            seqs
        }

        proptest! {
            /// Whatever arrives, leaves and is published between flushes, every socket's
            /// view (its welcome's members, then each `presence` applied) is the room's
            /// members after each flush, and it gets every message after its welcome's
            /// `last_seq` once, in order.
            #[test]
            fn presence_and_messages_add_up_for_every_socket(steps in proptest::collection::vec(step(), 1..60)) {
                // conn id -> (user, view, next seq it expects)
                let mut live: BTreeMap<String, (String, BTreeSet<String>, u64)> = BTreeMap::new();
                let mut outbox = Outbox::default();
                let mut next_conn = 0;
                let mut seq = 0u64;
                let mut stored = 0u64;
                let members = |live: &BTreeMap<String, (String, BTreeSet<String>, u64)>| -> BTreeSet<String> {
                    live.values().map(|(u, ..)| u.clone()).collect()
                };
                for step in steps.iter().cloned().chain([Step::Flush]) {
                    match step {
                        Step::Arrive(u) => {
                            let user = format!("u{u}");
                            let first = !members(&live).contains(&user);
                            next_conn += 1;
                            let conn = format!("c{next_conn}");
                            live.insert(conn.clone(), (user.clone(), BTreeSet::new(), stored + 1));
                            let view = members(&live);
                            live.get_mut(&conn).unwrap().1 = view;
                            if first {
                                outbox.change(change(&user, true));
                            }
                            outbox.arrived(&conn);
                        }
                        Step::Leave(n) => {
                            if live.is_empty() {
                                continue;
                            }
                            let conn = live.keys().nth(usize::from(n) % live.len()).unwrap().clone();
                            let (user, ..) = live.remove(&conn).unwrap();
                            if !members(&live).contains(&user) {
                                outbox.change(change(&user, false));
                            }
                        }
                        Step::Publish => {
                            seq += 1;
                            outbox.message(message(seq, None));
                        }
                        Step::Flush => {
                            let mut flush = Flush::new(std::mem::take(&mut outbox));
                            let now = members(&live);
                            for (conn, (_, view, expect)) in live.iter_mut() {
                                let who = flush.is_special(conn).then_some(conn.as_str());
                                let got = apply(&flush.arrays_for(who, true), view);
                                prop_assert_eq!(&*view, &now, "socket {}", conn);
                                let want: Vec<u64> = (*expect..=seq).collect();
                                prop_assert_eq!(got, want, "socket {}", conn);
                                *expect = seq + 1;
                            }
                            stored = seq;
                        }
                    }
                }
            }
        }
    }
}
