//! The room core: events in, effects out.
//!
//! A room's state is exactly its open connections (each one's identity lives in its
//! socket's attachment, which survives hibernation) plus the sequence counter in storage.
//! Nothing here holds state between calls: the Durable Object passes in the connections
//! it can see right now, and this module says what to send to whom and which socket to
//! close. That is what makes hibernation safe — an evicted and revived object computes
//! the same answers from the same sockets.
//!
//! Events: a connection joins ([`join`]) or leaves ([`leave`]), a client frame arrives
//! ([`on_frame`]), an admin kicks a user or a revocation arrives ([`kicked`],
//! [`revoked`]). Token lifetimes on live sockets — warnings, expiry, refresh — are
//! decided in [`super::expiry`].

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::history::{self, Page};
use super::rate::{Bucket, RatePolicy};
use crate::protocol::close::CloseCode;
use crate::protocol::frames::{
    error_code, parse_client_frame, parse_with_ref, ClientFrame, FrameError, Member, ServerFrame,
};
use crate::protocol::identity::{Capability, Revocation, Rights, TokenFacts};
use crate::protocol::v2::{self, Version};

/// One accepted socket's identity, stored as its WebSocket attachment. Claims only: the
/// raw token is never kept. Kept small: the platform caps an attachment at 2,048 bytes,
/// and `sub`/`name` are bounded by the token rules to fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// Random per socket; tells apart two tabs of one user.
    pub conn_id: String,
    /// Position in the room's order of arrival: greater than that of every connection
    /// live when it arrived ([`next_joined`]). The runtime lists sockets in no documented
    /// order, so members are sorted by this.
    pub joined: u64,
    pub user: Member,
    /// Token expiry, unix seconds.
    pub exp: u64,
    /// When the token was issued, unix seconds.
    #[serde(default)]
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Set once the room has announced this connection's departure. Close and error
    /// events can both arrive for one socket, in either order, and a server-side close is
    /// followed by the client's close: the flag makes departure happen exactly once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub departed: bool,
    /// Set once `expiring` was sent for the current `exp`; a refresh clears it. Kept in
    /// the attachment because the alarm that sends it may wake a freshly revived object.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warned: bool,
    /// The socket's rate-limit bucket (`room::rate`); absent until its first frame (a
    /// full bucket). In the attachment so that it survives hibernation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Bucket>,
    /// What the socket may do here (its token's capabilities in this room); absent in
    /// the attachment when it may do everything.
    #[serde(default, skip_serializing_if = "is_all")]
    pub rights: Rights,
    /// The protocol the socket speaks (its subprotocol at the upgrade); absent for v1.
    #[serde(default, rename = "v", skip_serializing_if = "Version::is_v1")]
    pub version: Version,
}

fn is_all(rights: &Rights) -> bool {
    *rights == Rights::ALL
}

impl Connection {
    /// Whether this socket appears in `members`, `join` and `leave`, and receives them.
    pub fn present(&self) -> bool {
        self.rights.has(Capability::Presence)
    }
}

/// Limits a room enforces on every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomLimits {
    /// Largest accepted text frame, in bytes.
    pub max_frame_bytes: usize,
    /// How long before a token's `exp` its sockets get `expiring`; 0 sends none.
    pub expiry_warning_secs: u64,
    /// Every socket's frame rate limit.
    pub rate: RatePolicy,
    /// Open sockets a room accepts; the next upgrade is refused (503 `room_full`).
    pub max_connections: usize,
    /// Open sockets one user may hold in a room; the next upgrade of that user is
    /// refused (429 `too_many_connections`).
    pub max_connections_per_user: usize,
}

/// What a newly accepted connection causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// `welcome`, to the new connection only.
    pub welcome: String,
    /// `join`, to every other connection that sees presence ([`Connection::present`]) —
    /// only when this is the user's first visible connection.
    pub announce: Option<String>,
}

/// What a client frame causes.
#[derive(Debug)]
pub enum Decision {
    /// Sequence the payload and broadcast it to every connection, the sender included.
    Publish(Box<RawValue>),
    /// Send this frame back to the sender only; nobody else is affected.
    Reply(String),
    /// Close the sender's socket.
    Close(CloseCode),
    /// The sender offers a new token: verify it (as the gate would, revocation included),
    /// then let [`super::expiry::refresh`] decide.
    Refresh(String),
    /// Answer the sender with this page of stored messages (`history`).
    History(Page),
}

/// A frame as the runtime delivered it.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    Text(&'a str),
    Binary { len: usize },
}

/// Whether a room with `open` live sockets must refuse another one.
pub fn is_full(open: usize, limits: &RoomLimits) -> bool {
    open >= limits.max_connections
}

/// Whether a user with `open` live sockets in a room must be refused another one.
pub fn is_full_for_user(open: usize, limits: &RoomLimits) -> bool {
    open >= limits.max_connections_per_user
}

/// The answer to a frame the rate limit refused (`room::rate`), to the sender only.
pub fn rate_limited() -> String {
    ServerFrame::Error {
        code: error_code::RATE_LIMITED,
        message: "too many frames; slow down (this frame was dropped)",
    }
    .to_json()
}

/// The `joined` of a connection arriving now: after every live one. Only the order of
/// live connections matters, so no counter has to be stored.
pub fn next_joined(live: &[Connection]) -> u64 {
    live.iter().map(|c| c.joined).max().unwrap_or(0) + 1
}

/// Distinct members, in the order of their earliest connection (by `joined`). Only
/// connections with the `presence` right count: a socket without it is an invisible
/// viewer.
pub fn members<'a>(connections: impl IntoIterator<Item = &'a Connection>) -> Vec<Member> {
    let mut sorted: Vec<&Connection> = connections.into_iter().filter(|c| c.present()).collect();
    sorted.sort_by_key(|c| c.joined);
    let mut out: Vec<Member> = Vec::new();
    for c in sorted {
        if !out.iter().any(|m| m.id == c.user.id) {
            out.push(c.user.clone());
        }
    }
    out
}

/// Distinct members with how many of their visible connections are open, in the order
/// of [`members`].
pub fn member_connections<'a>(
    connections: impl IntoIterator<Item = &'a Connection>,
) -> Vec<(Member, usize)> {
    let visible: Vec<&Connection> = connections.into_iter().filter(|c| c.present()).collect();
    members(visible.iter().copied())
        .into_iter()
        .map(|m| {
            let n = visible.iter().filter(|c| c.user.id == m.id).count();
            (m, n)
        })
        .collect()
}

/// How many of `connections` are invisible viewers (no `presence` right).
pub fn viewers(connections: &[Connection]) -> usize {
    connections.iter().filter(|c| !c.present()).count()
}

/// Whether `conn` is its user's only visible connection among `conn` and `others`: its
/// arrival makes the user a member (and its departure makes them leave). False for an
/// invisible connection.
pub fn first_visible(conn: &Connection, others: &[Connection]) -> bool {
    conn.present()
        && !others
            .iter()
            .any(|c| c.present() && c.user.id == conn.user.id && c.conn_id != conn.conn_id)
}

/// The positions of the connections that receive presence frames.
pub fn presence_recipients(connections: &[Connection]) -> Vec<usize> {
    positions(connections, Connection::present)
}

/// Whether a room tells its members about each other (`PRESENCE_ROOMS`): `members` in
/// `welcome`, `join` and `leave`. A silent room sends none of them, which saves a frame
/// to every other socket per join and per leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Announced,
    Silent,
}

/// A connection was accepted into `room`, where `others` were already connected and the
/// latest message is `last_seq`.
pub fn join(
    room: &str,
    new: &Connection,
    others: &[Connection],
    last_seq: u64,
    presence: Presence,
) -> Joined {
    // A viewer without `presence` neither sees the members nor is announced.
    let announced = presence == Presence::Announced && new.present();
    let everyone = announced.then(|| members(others.iter().chain(std::iter::once(new))));
    let welcome = ServerFrame::Welcome {
        room,
        user: &new.user,
        members: everyone.as_deref(),
        expires_at: new.exp,
        last_seq,
    }
    .to_json();
    let first_of_user = !others
        .iter()
        .any(|c| c.present() && c.user.id == new.user.id);
    let announce =
        (announced && first_of_user).then(|| ServerFrame::Join { user: &new.user }.to_json());
    Joined { welcome, announce }
}

/// A connection went away, or stopped being visible; `remaining` are the connections
/// still open. Returns the `leave` frame for those that see presence when that was the
/// user's last visible connection.
pub fn leave(gone: &Connection, remaining: &[Connection], presence: Presence) -> Option<String> {
    let still_here = remaining
        .iter()
        .any(|c| c.present() && c.user.id == gone.user.id);
    (presence == Presence::Announced && gone.present() && !still_here)
        .then(|| ServerFrame::Leave { user: &gone.user }.to_json())
}

/// The rights a live connection keeps when its token's rights become `new` (a refresh,
/// a change of the user's grants): a lost right is gone at once; a gained one counts at
/// once too, except `presence`, which a socket gains only by connecting again (the room
/// never showed it the members, nor them it).
pub fn changed_rights(old: Rights, new: Rights) -> Rights {
    if old.has(Capability::Presence) {
        new
    } else {
        new.without(Capability::Presence)
    }
}

/// Whether a connection with `rights` may send this decision's frame: a `publish` needs
/// `publish`, a `history` request `history`. The refusal is an `error` frame `forbidden`
/// to the sender only; nothing is stored or sent.
pub fn permitted(decision: Decision, rights: Rights) -> Decision {
    let needed = match &decision {
        Decision::Publish(_) => Capability::Publish,
        Decision::History(_) => Capability::History,
        _ => return decision,
    };
    if rights.has(needed) {
        return decision;
    }
    let message = match needed {
        Capability::Publish => "this token may not publish in this room",
        _ => "this token may not read this room's history",
    };
    Decision::Reply(
        ServerFrame::Error {
            code: error_code::FORBIDDEN,
            message,
        }
        .to_json(),
    )
}

/// Decides what one client frame means. Never affects anyone but the sender unless the
/// answer is [`Decision::Publish`].
pub fn on_frame(frame: Incoming<'_>, limits: &RoomLimits) -> Decision {
    decide(frame, Version::V1, limits).0
}

/// The frame objects of one text frame, in order: the frame itself, or, from a v2
/// socket, the elements of its array (each then [`decide`]d as a frame of its own). An
/// array that cannot be split is answered as one bad frame.
pub fn split<'a>(
    frame: Incoming<'a>,
    version: Version,
    limits: &RoomLimits,
) -> Result<Vec<Incoming<'a>>, Decision> {
    match frame {
        Incoming::Text(text)
            if version == Version::V2
                && text.len() <= limits.max_frame_bytes
                && v2::is_array(text) =>
        {
            v2::elements(text)
                .map(|items| items.into_iter().map(Incoming::Text).collect())
                .map_err(|e| frame_error(&e))
        }
        other => Ok(vec![other]),
    }
}

/// [`on_frame`] for a frame object in `version`, with the `ref` it carries (v2 only).
pub fn decide(
    frame: Incoming<'_>,
    version: Version,
    limits: &RoomLimits,
) -> (Decision, Option<String>) {
    let text = match frame {
        Incoming::Binary { .. } => return (Decision::Close(CloseCode::Unsupported), None),
        Incoming::Text(t) if t.len() > limits.max_frame_bytes => {
            return (Decision::Close(CloseCode::TooBig), None)
        }
        Incoming::Text(t) => t,
    };
    let (parsed, reference) = match version {
        Version::V1 => (parse_client_frame(text), None),
        Version::V2 => parse_with_ref(text),
    };
    let decision = match parsed {
        Ok(ClientFrame::Publish { data }) => Decision::Publish(data),
        Ok(ClientFrame::Refresh { token }) => Decision::Refresh(token),
        Ok(ClientFrame::History { before, limit }) => match history::page(before, limit) {
            Ok(page) => Decision::History(page),
            Err(why) => frame_error(&FrameError::BadFrame(why)),
        },
        // Not the exact auto-response text (the runtime answers that one without us).
        Ok(ClientFrame::Ping) => Decision::Reply(ServerFrame::Pong.to_json()),
        Err(e) => frame_error(&e),
    };
    (decision, reference)
}

/// An `error` frame `bad_frame` saying `why`.
pub fn bad_frame(why: &str) -> String {
    ServerFrame::Error {
        code: "bad_frame",
        message: why,
    }
    .to_json()
}

fn frame_error(e: &FrameError) -> Decision {
    Decision::Reply(
        ServerFrame::Error {
            code: e.code(),
            message: &e.message(),
        }
        .to_json(),
    )
}

/// The connections of user `user_id` (an admin kick).
pub fn kicked(connections: &[Connection], user_id: &str) -> Vec<usize> {
    positions(connections, |c| c.user.id == user_id)
}

/// The connections `revocation` refuses at `now` (unix seconds).
pub fn revoked(connections: &[Connection], revocation: &Revocation, now: u64) -> Vec<usize> {
    positions(connections, |c| {
        let token = TokenFacts {
            sub: &c.user.id,
            jti: c.jti.as_deref(),
            iat: c.iat,
        };
        revocation.applies_to(token, now)
    })
}

fn positions(connections: &[Connection], keep: impl Fn(&Connection) -> bool) -> Vec<usize> {
    (0..connections.len())
        .filter(|&i| keep(&connections[i]))
        .collect()
}

/// The broadcast for a sequenced message. Rendered once and sent to every recipient as
/// the same string.
pub fn message(seq: u64, from: &Member, data: &RawValue, ts: u64) -> String {
    ServerFrame::Message {
        seq,
        from,
        data,
        ts,
    }
    .to_json()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::Value;

    pub(crate) fn conn(conn_id: &str, id: &str, name: &str) -> Connection {
        Connection {
            conn_id: conn_id.into(),
            joined: conn_id.bytes().map(u64::from).sum(),
            user: Member {
                id: id.into(),
                name: name.into(),
            },
            exp: 1_900_000_000,
            iat: 1_800_000_000,
            jti: None,
            departed: false,
            warned: false,
            rate: None,
            rights: Rights::ALL,
            version: Version::V1,
        }
    }

    fn json(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    const LIMITS: RoomLimits = RoomLimits {
        max_frame_bytes: 64,
        expiry_warning_secs: 60,
        rate: RatePolicy {
            per_second: 20,
            burst: 40,
            max_rejected: 40,
        },
        max_connections: 3,
        max_connections_per_user: 2,
    };

    #[test]
    fn first_connection_welcomes_and_announces() {
        let alice = conn("c1", "u1", "Alice");
        let j = join("lobby", &alice, &[], 0, Presence::Announced);
        let w = json(&j.welcome);
        assert_eq!(w["last_seq"], 0);
        assert_eq!(w["type"], "welcome");
        assert_eq!(w["room"], "lobby");
        assert_eq!(w["user"]["id"], "u1");
        assert_eq!(w["members"].as_array().unwrap().len(), 1);
        assert_eq!(w["expires_at"], 1_900_000_000u64);
        assert_eq!(
            json(j.announce.as_deref().unwrap()),
            json(r#"{"type":"join","user":{"id":"u1","name":"Alice"}}"#)
        );
    }

    #[test]
    fn second_tab_is_not_a_new_member() {
        let a1 = conn("c1", "u1", "Alice");
        let b = conn("c2", "u2", "Bob");
        let a2 = conn("c3", "u1", "Alice");
        let j = join(
            "lobby",
            &a2,
            &[a1.clone(), b.clone()],
            41,
            Presence::Announced,
        );
        assert_eq!(j.announce, None);
        let w = json(&j.welcome);
        assert_eq!(w["last_seq"], 41);
        let ids: Vec<&str> = w["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["u1", "u2"]);
    }

    #[test]
    fn leave_only_when_last_connection_goes() {
        let a1 = conn("c1", "u1", "Alice");
        let a2 = conn("c3", "u1", "Alice");
        let b = conn("c2", "u2", "Bob");
        assert_eq!(
            leave(&a1, &[a2.clone(), b.clone()], Presence::Announced),
            None
        );
        let frame = leave(&a2, std::slice::from_ref(&b), Presence::Announced).unwrap();
        assert_eq!(
            json(&frame),
            json(r#"{"type":"leave","user":{"id":"u1","name":"Alice"}}"#)
        );
        assert!(leave(&b, &[], Presence::Announced).is_some());
    }

    #[test]
    fn a_silent_room_lists_and_announces_nobody() {
        let a1 = conn("c1", "u1", "Alice");
        let b = conn("c2", "u2", "Bob");
        let j = join("feed", &b, std::slice::from_ref(&a1), 9, Presence::Silent);
        assert_eq!(j.announce, None);
        let w = json(&j.welcome);
        assert_eq!(w.get("members"), None);
        // Everything else in the welcome is as in any room.
        assert_eq!(w["type"], "welcome");
        assert_eq!(w["room"], "feed");
        assert_eq!(w["user"]["id"], "u2");
        assert_eq!(w["last_seq"], 9);
        assert_eq!(w["expires_at"], 1_900_000_000u64);
        assert_eq!(leave(&b, std::slice::from_ref(&a1), Presence::Silent), None);
        assert_eq!(leave(&a1, &[], Presence::Silent), None);
    }

    #[test]
    fn members_are_distinct_in_order_of_arrival() {
        // Listed newest first, as the runtime may hand them over.
        let cs = [
            conn("3", "b", "B"),
            conn("2", "a", "A"),
            conn("1", "b", "B"),
        ];
        let ids: Vec<String> = members(&cs).into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["b", "a"]);
        let counts: Vec<(String, usize)> = member_connections(&cs)
            .into_iter()
            .map(|(m, n)| (m.id, n))
            .collect();
        assert_eq!(counts, [("b".to_string(), 2), ("a".to_string(), 1)]);
        assert!(member_connections(&[]).is_empty());
        let b = conn("1", "b", "B");
        assert!(!first_visible(&b, &cs), "b has another socket");
        assert!(first_visible(&b, &[conn("2", "a", "A")]));
        assert!(
            first_visible(&b, std::slice::from_ref(&b)),
            "itself does not count"
        );
        let hidden = Connection {
            rights: Rights::ALL.without(Capability::Presence),
            ..conn("9", "c", "C")
        };
        assert!(!first_visible(&hidden, &[]));
        assert!(
            first_visible(&conn("8", "c", "C"), &[hidden]),
            "an invisible one does not count"
        );
    }

    #[test]
    fn frame_decisions() {
        assert!(matches!(
            on_frame(Incoming::Binary { len: 3 }, &LIMITS),
            Decision::Close(CloseCode::Unsupported)
        ));
        let big = format!(r#"{{"type":"publish","data":"{}"}}"#, "x".repeat(64));
        assert!(matches!(
            on_frame(Incoming::Text(&big), &LIMITS),
            Decision::Close(CloseCode::TooBig)
        ));
        match on_frame(Incoming::Text(r#"{"type":"publish","data":[1]}"#), &LIMITS) {
            Decision::Publish(d) => assert_eq!(d.get(), "[1]"),
            other => panic!("{other:?}"),
        }
        for (text, code) in [("nope", "bad_frame"), (r#"{"type":"x"}"#, "unknown_type")] {
            match on_frame(Incoming::Text(text), &LIMITS) {
                Decision::Reply(f) => assert_eq!(json(&f)["code"], code),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn frame_at_exact_limit_is_accepted() {
        let pad = 64 - r#"{"type":"publish","data":""}"#.len();
        let text = format!(r#"{{"type":"publish","data":"{}"}}"#, "x".repeat(pad));
        assert_eq!(text.len(), 64);
        assert!(matches!(
            on_frame(Incoming::Text(&text), &LIMITS),
            Decision::Publish(_)
        ));
    }

    #[test]
    fn a_room_is_full_at_its_connection_limit() {
        // LIMITS allows 3.
        assert!(!is_full(0, &LIMITS));
        assert!(!is_full(2, &LIMITS));
        assert!(is_full(3, &LIMITS));
        assert!(is_full(4, &LIMITS));
    }

    #[test]
    fn rate_limited_is_an_error_frame() {
        let f = json(&rate_limited());
        assert_eq!(
            (f["type"].as_str(), f["code"].as_str()),
            (Some("error"), Some("rate_limited"))
        );
        assert!(f["message"].is_string());
    }

    #[test]
    fn message_copies_data_verbatim() {
        let from = Member {
            id: "u1".into(),
            name: "Alice".into(),
        };
        let data = RawValue::from_string(r#"{"b":1,"a":2}"#.into()).unwrap();
        let m = message(9, &from, &data, 5);
        assert!(m.contains(r#""data":{"b":1,"a":2}"#), "{m}");
        assert_eq!(json(&m)["seq"], 9);
    }

    #[test]
    fn attachment_round_trips_and_stays_small() {
        let c = Connection {
            conn_id: "0123456789abcdef0123456789abcdef".into(),
            joined: u64::MAX,
            user: Member {
                id: "u".repeat(crate::protocol::names::MAX_USER_ID_BYTES),
                name: "n".repeat(crate::protocol::names::MAX_NAME_BYTES),
            },
            exp: u64::MAX,
            iat: u64::MAX,
            jti: Some("j".repeat(128)),
            departed: true,
            warned: true,
            rate: Some(Bucket {
                milli_tokens: i64::MIN,
                at_ms: u64::MAX,
                rejected: u64::MAX,
            }),
            rights: Rights::NONE,
            version: Version::V2,
        };
        let s = serde_json::to_string(&c).unwrap();
        assert!(s.len() < 2048, "{} bytes", s.len());
        assert_eq!(serde_json::from_str::<Connection>(&s).unwrap(), c);
    }

    #[test]
    fn history_requests_are_bounded() {
        match on_frame(
            Incoming::Text(r#"{"type":"history","before":9,"limit":3}"#),
            &LIMITS,
        ) {
            Decision::History(p) => assert_eq!(
                p,
                Page {
                    before: 9,
                    limit: 3
                }
            ),
            other => panic!("{other:?}"),
        }
        for text in [
            r#"{"type":"history","limit":0}"#,
            r#"{"type":"history","limit":101}"#,
            r#"{"type":"history","before":"x"}"#,
        ] {
            match on_frame(Incoming::Text(text), &LIMITS) {
                Decision::Reply(f) => assert_eq!(json(&f)["code"], "bad_frame", "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn refresh_frame_is_handed_to_the_room() {
        match on_frame(Incoming::Text(r#"{"type":"refresh","token":"t"}"#), &LIMITS) {
            Decision::Refresh(t) => assert_eq!(t, "t"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kick_and_revocation_select_their_connections() {
        use crate::protocol::identity::Target;
        let cs = [
            Connection {
                jti: Some("j1".into()),
                ..conn("c1", "u1", "A")
            },
            Connection {
                jti: Some("j2".into()),
                ..conn("c2", "u1", "A")
            },
            Connection {
                jti: Some("j1".into()),
                ..conn("c3", "u2", "B")
            },
            conn("c4", "u3", "C"),
        ];
        assert_eq!(kicked(&cs, "u1"), [0, 1]);
        assert_eq!(kicked(&cs, "nobody"), [] as [usize; 0]);
        let by = |target, until| Revocation { target, until };
        let now = 100;
        let cases = [
            (by(Target::Jti("j1".into()), 200), vec![0, 2]),
            (by(Target::Jti("j2".into()), 200), vec![1]),
            (by(Target::Sub("u1".into()), 200), vec![0, 1]),
            (by(Target::Sub("u3".into()), 200), vec![3]),
            (by(Target::Sub("u1".into()), 100), vec![]),
        ];
        for (rev, want) in cases {
            assert_eq!(revoked(&cs, &rev, now), want, "{rev:?}");
        }
    }

    #[test]
    fn a_new_connection_joins_after_every_live_one() {
        assert_eq!(next_joined(&[]), 1);
        let mut a = conn("a", "alice", "Alice");
        a.joined = 7;
        let mut b = conn("b", "bob", "Bob");
        b.joined = 3;
        assert_eq!(next_joined(&[a, b]), 8);
    }

    #[test]
    fn one_user_cannot_take_every_seat() {
        assert!(!is_full_for_user(1, &LIMITS));
        assert!(is_full_for_user(2, &LIMITS), "at the per-user limit");
        assert!(!is_full(2, &LIMITS), "while the room has seats left");
    }
}
