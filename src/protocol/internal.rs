//! The calls between the Worker and its Durable Objects, and what they answer.
//!
//! A Durable Object has no public address: only code holding its binding (this Worker)
//! can call it, with requests the Worker builds from scratch. So an object trusts these
//! messages as the room trusts the gate's [`Handoff`], and every guard (the gate's
//! checks, the admin token) runs in the Worker before a call is made.
//!
//! Each object takes its calls as one JSON body at [`CALL_PATH`], a value of its call
//! enum ([`RoomCall`], [`TicketCall`], [`LimiterCall`]), and answers JSON. The one other
//! request is a socket handed to a room: a WebSocket upgrade to [`CONNECT_PATH`] that
//! carries the [`Handoff`] in a header.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::frames::Member;
#[cfg(test)]
use super::identity::Capability;
use super::identity::{Identity, Revocation, Rights, RoomGrants};

/// `POST`: a call, as JSON.
pub const CALL_PATH: &str = "/call";
/// `GET` with `Upgrade: websocket`: the gate hands a socket to a room.
pub const CONNECT_PATH: &str = "/connect";
/// The header that carries the [`Handoff`] to the room.
pub const HANDOFF_HEADER: &str = "x-roomgate-handoff";

/// What the gate tells a room about a socket it verified. The room's request is built
/// from scratch (none of the client's headers are copied), so a client sending a header
/// of the same name never reaches the room with it.
///
/// Encoded as base64url JSON, because display names may hold any Unicode and header
/// values are bytes in the Latin-1 range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    pub room: String,
    pub identity: Identity,
    /// Subprotocol to select in the 101 response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `?since=<seq>`: the client resumes and is replayed every kept message after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// The socket's rights in the room (`auth::grants::rights`), `subscribe` among them.
    #[serde(default)]
    pub rights: Rights,
}

impl Handoff {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("handoff serializes"))
    }

    pub fn decode(value: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// A call to a `Room` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomCall {
    /// Close `user_id`'s sockets with 4003 `kicked`. Answers [`Closed`].
    Kick { user_id: String },
    /// Close the sockets `revocation` refuses with 4003 `revoked`, and refuse them from
    /// now on. Carries the room's name, which a Durable Object does not know by itself.
    /// Answers [`Closed`].
    Revoke {
        room: String,
        revocation: Revocation,
    },
    /// A user's room grants changed: keep `revocation` (their older tokens), and close
    /// their sockets with 4003 `forbidden` if `rooms` (the new `rooms` claim; `None`: no
    /// claim) no longer grants this room. Answers [`Closed`].
    Regrant {
        room: String,
        user_id: String,
        rooms: Option<RoomGrants>,
        revocation: Revocation,
    },
    /// Answers [`RoomStats`].
    Stats,
    /// A message from the server API: sequenced, stored and broadcast like a client's
    /// `publish`, as sent by `from`. `data` is its JSON text, checked by the Worker. With
    /// an `idempotency_key` (already scoped to the API key by the Worker) seen within
    /// [`IDEMPOTENCY_WINDOW_MS`], nothing is published and the first answer is repeated.
    /// Answers [`Published`].
    Publish {
        room: String,
        from: Member,
        data: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
    },
    /// Answers [`RoomMembers`].
    Members,
    /// A page of kept messages, as a `history` frame answers it (`room::history::page`
    /// checks the fields). Answers [`HistoryPage`].
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
}

/// How long a room remembers a server publish's `idempotency_key`.
pub const IDEMPOTENCY_WINDOW_MS: u64 = 5 * 60 * 1000;

/// A server publish, sequenced (or repeated: `duplicate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub seq: u64,
    /// The message's `ts` (unix ms), as its frame carries it.
    pub ts: u64,
    pub duplicate: bool,
}

/// Who is in a room: each user with how many sockets they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMembers {
    /// Open sockets.
    pub connections: usize,
    /// Open sockets without the `presence` right (not in `members`).
    pub viewers: usize,
    /// By user id.
    pub members: Vec<MemberConnections>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberConnections {
    pub id: String,
    pub name: String,
    pub connections: usize,
}

/// A page of kept `message` frames, oldest first, exactly as clients received them.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryPage {
    pub messages: Vec<Box<RawValue>>,
}

/// How many sockets a kick or a revocation closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub closed: usize,
}

/// A room's figures, as `GET /admin/rooms/{room}` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomStats {
    /// Open sockets.
    pub connections: usize,
    /// Sockets the runtime still lists for the room: the open ones plus any the room is
    /// closing and whose client has not answered yet. A socket whose client closed (or
    /// dropped) it is no longer listed.
    pub runtime_sockets: usize,
    /// Distinct users among them, invisible viewers left out.
    pub members: usize,
    /// Open sockets without the `presence` right: invisible viewers.
    #[serde(default)]
    pub viewers: usize,
    /// The latest `seq` (0: no message yet).
    pub last_seq: u64,
    /// Messages kept for resume and `history`.
    pub history_kept: u64,
    /// Id of the in-memory instance that answered; a new one after every eviction
    /// (diagnostics: shows hibernation at work).
    pub instance: String,
    /// Webhook events waiting for the receiver.
    #[serde(default)]
    pub webhook_backlog: u64,
    /// Webhook events dropped: the backlog was full, or a day passed undelivered.
    #[serde(default)]
    pub webhook_dropped: u64,
}

/// What a push delivers to every room with live sockets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Push {
    /// A revocation: each room closes the sockets it refuses and keeps it.
    Revoke(Revocation),
    /// A change of one user's room grants ([`RoomCall::Regrant`]).
    Regrant {
        user_id: String,
        rooms: Option<RoomGrants>,
        revocation: Revocation,
    },
}

impl Push {
    /// The call that delivers this push to `room`.
    pub fn to_room(&self, room: &str) -> RoomCall {
        match self {
            Self::Revoke(revocation) => RoomCall::Revoke {
                room: room.to_owned(),
                revocation: revocation.clone(),
            },
            Self::Regrant {
                user_id,
                rooms,
                revocation,
            } => RoomCall::Regrant {
                room: room.to_owned(),
                user_id: user_id.clone(),
                rooms: rooms.clone(),
                revocation: revocation.clone(),
            },
        }
    }
}

/// A call to a `Fanout` object: deliver `push` to every registered room whose bucket is
/// in `lo..hi`, handing parts to further objects when there are more than `page`.
/// Answers [`Reach`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanoutCall {
    pub push: Push,
    pub lo: i64,
    pub hi: i64,
    pub page: u32,
}

/// How far a push got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reach {
    /// Rooms that took the push.
    pub rooms: usize,
    /// Sockets they closed.
    pub closed: usize,
    /// Rooms (or ranges of them) that could not be reached, with why.
    pub failed: Vec<String>,
}

impl Reach {
    /// Adds what another part of the push reached.
    pub fn add(&mut self, other: Reach) {
        self.rooms += other.rooms;
        self.closed += other.closed;
        self.failed.extend(other.failed);
    }
}

/// A call to a `TicketBox` object. Tickets are looked up by their hash only; the box
/// keeps each record as the JSON it was given and reads none of it but the expiry.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketCall {
    /// Keep `record` under `hash` until `expires_at` (unix seconds). Answers `{}`.
    Put {
        hash: String,
        expires_at: u64,
        record: Box<RawValue>,
    },
    /// Remove the record under `hash` and answer it ([`TicketTaken`]), once.
    Take { hash: String },
    /// Answer the deployment's ticket key ([`TicketKeyBytes`]), made at random on first
    /// use. Asked of one box only.
    Key,
}

/// The answer to [`TicketCall::Key`]: 32 bytes, unpadded base64url.
#[derive(Debug, Serialize, Deserialize)]
pub struct TicketKeyBytes {
    pub key: String,
}

/// The answer to [`TicketCall::Take`]: the record, unless it is unknown, used or expired.
#[derive(Debug, Serialize, Deserialize)]
pub struct TicketTaken {
    pub record: Option<Box<RawValue>>,
}

/// A call to a `Limiter` object (one counter). Every call answers the counter's
/// [`Standing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimiterCall {
    /// A failed-login counter, before the password check: is it locked?
    Standing,
    /// A failed-login counter, after the password check: record how the attempt ended.
    Commit(LoginOutcome),
    /// A rate counter: count one more use, unless `max` uses within the last
    /// `window_secs` were counted already (then nothing is counted and the answer says
    /// when the next one can be).
    Spend { max: u32, window_secs: u64 },
}

/// How a login attempt ended, as far as one counter is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginOutcome {
    /// Wrong password, unknown user, or an attempt that must count as one.
    Failed,
    /// The right password. `reset` clears the counter's failures (the username's
    /// counter does; the address's does not, or one valid account would unlock a whole
    /// address).
    Succeeded { reset: bool },
}

/// Whether a counter lets a login attempt through now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Open,
    /// Locked; the earliest retry that can succeed is this many whole seconds away
    /// (at least 1, at most the window).
    Locked {
        retry_after_secs: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::identity::Target;

    #[test]
    fn handoff_round_trip_with_unicode_names() {
        let h = Handoff {
            room: "lobby".into(),
            identity: Identity {
                sub: "u1".into(),
                name: "Zoë 🌟".into(),
                exp: 1_900_000_000,
                iat: 1_800_000_000,
                jti: Some("j".into()),
                rooms: Some(RoomGrants::Full(vec!["lobby".into()])),
            },
            protocol: Some("roomgate.v1".into()),
            since: Some(u64::MAX),
            rights: Rights::of(&[Capability::Subscribe]),
        };
        let encoded = h.encode();
        assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Handoff::decode(&encoded), Some(h));
    }

    #[test]
    fn garbage_does_not_decode_as_a_handoff() {
        for bad in ["", "!!!", "e30", "bm90IGpzb24"] {
            assert_eq!(Handoff::decode(bad), None, "{bad:?}");
        }
    }

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
    }

    #[test]
    fn room_calls_round_trip() {
        let calls = [
            RoomCall::Kick {
                user_id: "u1".into(),
            },
            RoomCall::Revoke {
                room: "lobby".into(),
                revocation: Revocation {
                    target: Target::Sub("u1".into()),
                    until: 9,
                },
            },
            RoomCall::Stats,
            RoomCall::Publish {
                room: "lobby".into(),
                from: Member {
                    id: "api:orders".into(),
                    name: "orders".into(),
                },
                data: r#"{"shipped":17}"#.into(),
                idempotency_key: Some("k".into()),
            },
            RoomCall::Members,
            RoomCall::History {
                before: Some(9),
                limit: None,
            },
        ];
        for call in calls {
            assert_eq!(round_trip(&call), call);
        }
    }

    #[test]
    fn limiter_outcomes_round_trip_and_unknown_ones_are_refused() {
        let calls = [
            LimiterCall::Standing,
            LimiterCall::Spend {
                max: 60,
                window_secs: 60,
            },
            LimiterCall::Commit(LoginOutcome::Failed),
            LimiterCall::Commit(LoginOutcome::Succeeded { reset: false }),
            LimiterCall::Commit(LoginOutcome::Succeeded { reset: true }),
        ];
        for call in calls {
            assert_eq!(round_trip(&call), call);
        }
        for standing in [
            Standing::Open,
            Standing::Locked {
                retry_after_secs: 7,
            },
        ] {
            assert_eq!(round_trip(&standing), standing);
        }
        for bad in [
            r#"{"commit":"succeeded"}"#,
            r#"{"commit":"maybe"}"#,
            r#""commit""#,
            r#""forget""#,
        ] {
            assert!(serde_json::from_str::<LimiterCall>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_ticket_record_passes_through_verbatim() {
        let record = r#"{"identity":{"sub":"u1"},"room":null,"expires_at":5}"#;
        let put = TicketCall::Put {
            hash: "h".into(),
            expires_at: 5,
            record: RawValue::from_string(record.into()).unwrap(),
        };
        match round_trip(&put) {
            TicketCall::Put { record: back, .. } => assert_eq!(back.get(), record),
            other => panic!("{other:?}"),
        }
        let taken: TicketTaken = serde_json::from_str(r#"{"record":null}"#).unwrap();
        assert!(taken.record.is_none());
    }
}
