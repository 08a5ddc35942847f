//! Property tests of the room core: random sequences of joins, leaves, publishes,
//! refreshes, kicks, revocations and alarms, carried out the way the `Room` object
//! carries out the core's decisions, keep what clients rely on:
//! - `seq` rises by exactly 1 per published message;
//! - every socket receives every message published while it is open, once, in order;
//! - a socket's view of the members (its `welcome`, then `join` and `leave`) is the set
//!   of users with open visible sockets (with the `presence` right), and a socket
//!   without that right is told about nobody;
//! - a socket without the `publish` right publishes nothing;
//! - whatever the core tells to close or warn is an open socket it was shown, and no
//!   socket outlives its token past an alarm.
//!
//! `cargo test --lib room::props` runs a few thousand sequences; `PROPTEST_CASES=100000`
//! runs as many.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::Value;

use super::expiry::{self, ExpiryPolicy, Refresh};
use super::rate::RatePolicy;
use super::state::{self, Connection, Decision, Incoming, Presence, RoomLimits};
use crate::protocol::frames::Member;
use crate::protocol::identity::{Capability, Identity, Revocation, Rights, Target};
use crate::protocol::props::config;

#[derive(Debug, Clone)]
enum Event {
    Join {
        user: u8,
        lifetime: u16,
        visible: bool,
        publishes: bool,
    },
    Leave(usize),
    Publish(usize),
    Refresh {
        pick: usize,
        other_user: bool,
        keeps_presence: bool,
    },
    Kick(u8),
    Revoke(u8),
    Alarm {
        seconds: u16,
    },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => (0u8..4, 1u16..400, prop::bool::weighted(0.8), prop::bool::weighted(0.8))
            .prop_map(|(user, lifetime, visible, publishes)| Event::Join { user, lifetime, visible, publishes }),
        2 => any::<usize>().prop_map(Event::Leave),
        4 => any::<usize>().prop_map(Event::Publish),
        1 => (any::<usize>(), any::<bool>(), prop::bool::weighted(0.7))
            .prop_map(|(pick, other_user, keeps_presence)| Event::Refresh { pick, other_user, keeps_presence }),
        1 => (0u8..4).prop_map(Event::Kick),
        1 => (0u8..4).prop_map(Event::Revoke),
        1 => (1u16..200).prop_map(|seconds| Event::Alarm { seconds }),
    ]
}

struct Socket {
    conn: Connection,
    open: bool,
    /// Message seqs received, in order.
    seqs: Vec<u64>,
    /// Seqs published while this socket was open.
    expected: Vec<u64>,
    /// The members this socket has been told about.
    members: BTreeSet<String>,
}

struct Room {
    presence: Presence,
    sockets: Vec<Socket>,
    seq: u64,
    now_ms: u64,
    next_conn: u64,
}

const LIMITS: RoomLimits = RoomLimits {
    max_frame_bytes: 1024,
    expiry_warning_secs: 30,
    rate: RatePolicy {
        per_second: 20,
        burst: 40,
        max_rejected: 40,
    },
    max_connections: 64,
    max_connections_per_user: 64,
};

const POLICY: ExpiryPolicy = ExpiryPolicy {
    leeway_secs: 5,
    warning_secs: 30,
};

fn user(n: u8) -> String {
    format!("user-{n}")
}

impl Room {
    /// The open sockets, as the object passes them to the core: indices into
    /// `sockets`, and the connections.
    fn live(&self) -> (Vec<usize>, Vec<Connection>) {
        let at: Vec<usize> = (0..self.sockets.len())
            .filter(|&i| self.sockets[i].open)
            .collect();
        let conns = at.iter().map(|&i| self.sockets[i].conn.clone()).collect();
        (at, conns)
    }

    fn pick(&self, n: usize) -> Option<usize> {
        let (at, _) = self.live();
        (!at.is_empty()).then(|| at[n % at.len()])
    }

    /// A frame reaches socket `i`, which must be open.
    fn deliver(&mut self, i: usize, frame: &str) {
        let s = &mut self.sockets[i];
        assert!(s.open, "a frame for a closed socket: {frame}");
        let v: Value = serde_json::from_str(frame).unwrap();
        match v["type"].as_str() {
            Some("welcome") => {
                s.members = v["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| m["id"].as_str().unwrap().to_owned())
                    .collect();
            }
            Some("join") => {
                s.members
                    .insert(v["user"]["id"].as_str().unwrap().to_owned());
            }
            Some("leave") => {
                s.members.remove(v["user"]["id"].as_str().unwrap());
            }
            Some("message") => s.seqs.push(v["seq"].as_u64().unwrap()),
            _ => {}
        }
    }

    /// Closes socket `i` from the room's side: it leaves, and the others hear of it.
    fn close(&mut self, i: usize) {
        assert!(self.sockets[i].open, "closing a closed socket");
        self.sockets[i].open = false;
        let gone = self.sockets[i].conn.clone();
        let (at, conns) = self.live();
        if let Some(frame) = state::leave(&gone, &conns, self.presence) {
            for p in state::presence_recipients(&conns) {
                let j = at[p];
                self.deliver(j, &frame);
            }
        }
    }

    fn apply(&mut self, event: &Event) {
        match *event {
            Event::Join {
                user: u,
                lifetime,
                visible,
                publishes,
            } => {
                let mut rights = Rights::ALL;
                if !visible {
                    rights = rights.without(Capability::Presence);
                }
                if !publishes {
                    rights = rights.without(Capability::Publish);
                }
                let (at, conns) = self.live();
                self.next_conn += 1;
                let conn = Connection {
                    conn_id: format!("c{}", self.next_conn),
                    joined: state::next_joined(&conns),
                    user: Member {
                        id: user(u),
                        name: user(u),
                    },
                    exp: self.now_ms / 1000 + u64::from(lifetime),
                    iat: self.now_ms / 1000,
                    jti: Some(format!("j{}", self.next_conn)),
                    departed: false,
                    warned: false,
                    rate: None,
                    rights,
                    version: Default::default(),
                };
                let joined = state::join("props", &conn, &conns, self.seq, self.presence);
                self.sockets.push(Socket {
                    conn,
                    open: true,
                    seqs: Vec::new(),
                    expected: Vec::new(),
                    members: BTreeSet::new(),
                });
                let new = self.sockets.len() - 1;
                self.deliver(new, &joined.welcome);
                if let Some(frame) = joined.announce {
                    for p in state::presence_recipients(&conns) {
                        self.deliver(at[p], &frame);
                    }
                }
            }
            Event::Leave(n) => {
                if let Some(i) = self.pick(n) {
                    self.close(i);
                }
            }
            Event::Publish(n) => {
                let Some(i) = self.pick(n) else { return };
                let text = format!(r#"{{"type":"publish","data":{{"n":{}}}}}"#, self.seq);
                let rights = self.sockets[i].conn.rights;
                let decision =
                    state::permitted(state::on_frame(Incoming::Text(&text), &LIMITS), rights);
                let data = match decision {
                    Decision::Publish(data) => data,
                    Decision::Reply(reply) => {
                        assert!(!rights.has(Capability::Publish), "a publisher was refused");
                        assert!(reply.contains(r#""code":"forbidden""#), "{reply}");
                        self.deliver(i, &reply);
                        return;
                    }
                    other => panic!("a publish frame is {other:?}"),
                };
                assert!(rights.has(Capability::Publish), "a viewer published");
                self.seq += 1;
                let sender = self.sockets[i].conn.user.clone();
                let frame = state::message(self.seq, &sender, &data, self.now_ms);
                let (at, _) = self.live();
                for j in at {
                    self.sockets[j].expected.push(self.seq);
                    self.deliver(j, &frame);
                }
            }
            Event::Refresh {
                pick,
                other_user,
                keeps_presence,
            } => {
                let Some(i) = self.pick(pick) else { return };
                let conn = self.sockets[i].conn.clone();
                let sub = if other_user {
                    format!("{}-other", conn.user.id)
                } else {
                    conn.user.id.clone()
                };
                let identity = Identity {
                    sub,
                    name: "renamed".into(),
                    exp: conn.exp + 300,
                    iat: self.now_ms / 1000,
                    jti: Some("refreshed".into()),
                    rooms: None,
                };
                match expiry::refresh(&conn, Ok(&identity), false) {
                    Refresh::Accepted { conn: new, reply } => {
                        assert!(!other_user, "another user's token was accepted");
                        assert_eq!(
                            (new.user.clone(), new.joined),
                            (conn.user.clone(), conn.joined)
                        );
                        // The new token's rights, as the object applies them.
                        let offered = if keeps_presence {
                            Rights::ALL
                        } else {
                            Rights::ALL.without(Capability::Presence)
                        };
                        let rights = state::changed_rights(conn.rights, offered);
                        assert!(
                            conn.present() || !rights.has(Capability::Presence),
                            "presence gained in place"
                        );
                        self.sockets[i].conn = Connection { rights, ..new };
                        if conn.present() && !self.sockets[i].conn.present() {
                            // It vanishes for the others, and is told no more.
                            self.sockets[i].members.clear();
                            let (at, conns) = self.live();
                            if let Some(frame) = state::leave(&conn, &conns, self.presence) {
                                for p in state::presence_recipients(&conns) {
                                    self.deliver(at[p], &frame);
                                }
                            }
                        }
                        self.deliver(i, &reply);
                    }
                    Refresh::Rejected { reply } => {
                        assert!(other_user, "the user's own token was refused");
                        self.deliver(i, &reply);
                    }
                }
            }
            Event::Kick(u) => {
                let (at, conns) = self.live();
                for p in state::kicked(&conns, &user(u)) {
                    assert_eq!(conns[p].user.id, user(u));
                    self.close(at[p]);
                }
            }
            Event::Revoke(u) => {
                let (at, conns) = self.live();
                let revocation = Revocation {
                    target: Target::Sub(user(u)),
                    until: self.now_ms / 1000 + 3600,
                };
                for p in state::revoked(&conns, &revocation, self.now_ms / 1000) {
                    assert_eq!(conns[p].user.id, user(u));
                    self.close(at[p]);
                }
            }
            Event::Alarm { seconds } => {
                self.now_ms += u64::from(seconds) * 1000;
                let (at, conns) = self.live();
                let sweep = expiry::sweep(&conns, self.now_ms, &POLICY);
                for (p, frame) in &sweep.warn {
                    assert!(!sweep.expire.contains(p), "warned and closed at once");
                    self.sockets[at[*p]].conn.warned = true;
                    self.deliver(at[*p], frame);
                }
                for &p in &sweep.expire {
                    assert!(self.now_ms >= POLICY.close_at_ms(conns[p].exp));
                    self.close(at[p]);
                }
                // No socket outlives its token (and the leeway) past an alarm.
                let (_, left) = self.live();
                for c in &left {
                    assert!(
                        self.now_ms < POLICY.close_at_ms(c.exp),
                        "{} outlived its token",
                        c.conn_id
                    );
                }
            }
        }
    }

    fn check(&self) {
        let present: BTreeSet<String> = self
            .sockets
            .iter()
            .filter(|s| s.open && s.conn.present())
            .map(|s| s.conn.user.id.clone())
            .collect();
        for s in &self.sockets {
            // Everything published while the socket was open, once, in order.
            assert_eq!(s.seqs, s.expected, "{}", s.conn.conn_id);
            if s.open && self.presence == Presence::Announced && s.conn.present() {
                assert_eq!(s.members, present, "{}'s members", s.conn.conn_id);
            }
            if !s.conn.present() {
                assert!(
                    s.members.is_empty(),
                    "an invisible viewer was told of members"
                );
            }
            if self.presence == Presence::Silent {
                assert!(s.members.is_empty(), "a silent room announced someone");
            }
        }
    }
}

fn run(presence: Presence, events: &[Event]) {
    let mut room = Room {
        presence,
        sockets: Vec::new(),
        seq: 0,
        now_ms: 1_800_000_000_000,
        next_conn: 0,
    };
    let mut last_seq = 0;
    for event in events {
        room.apply(event);
        assert!(
            room.seq == last_seq || room.seq == last_seq + 1,
            "seq jumped"
        );
        last_seq = room.seq;
        room.check();
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_room_keeps_its_promises_in_any_sequence_of_events(
        events in prop::collection::vec(event(), 1..80),
    ) {
        run(Presence::Announced, &events);
    }

    #[test]
    fn a_silent_room_keeps_them_too(events in prop::collection::vec(event(), 1..80)) {
        run(Presence::Silent, &events);
    }
}
