//! The frames a client and a room exchange, as JSON objects: all of protocol v1, and
//! the frame objects that protocol v2 puts in arrays ([`super::v2`]).
//!
//! The full description for client authors is `docs/protocol.md`; this module is its
//! implementation (close codes: [`super::close`]). Client frames are parsed in one pass into a flat envelope and then
//! checked per type, so "unknown type" and "known type, wrong shape" get different error
//! codes. A published `data` value is kept as raw JSON text ([`RawValue`]) and copied
//! verbatim into the broadcast: the room never re-encodes user payloads.

use serde::de::{Deserializer, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The subprotocol a client offers (and the server selects) for protocol v1.
pub const SUBPROTOCOL: &str = "roomgate.v1";

/// The keep-alive request, byte for byte. The room object registers this pair with the
/// runtime's WebSocket auto-response, so an exact match is answered with [`PONG`] without
/// waking the (hibernated) object. Any other spelling of a `ping` reaches the room, which
/// answers it with the same [`PONG`] (it just costs a wake-up).
pub const PING: &str = r#"{"type":"ping"}"#;
/// The answer to a `ping`, from the runtime or from the room.
pub const PONG: &str = r#"{"type":"pong"}"#;

/// A room member as every frame names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub name: String,
}

/// Frames the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Welcome {
        room: &'a str,
        user: &'a Member,
        /// Absent in a room without presence (`PRESENCE_ROOMS`).
        #[serde(skip_serializing_if = "Option::is_none")]
        members: Option<&'a [Member]>,
        expires_at: u64,
        /// The room's latest `seq` (0 before its first message).
        last_seq: u64,
    },
    Message {
        seq: u64,
        from: &'a Member,
        data: &'a RawValue,
        ts: u64,
    },
    Join {
        user: &'a Member,
    },
    Leave {
        user: &'a Member,
    },
    /// v2 only, instead of `join` and `leave`: the members who arrived and who left since
    /// the socket was last told.
    Presence {
        joined: &'a [Member],
        left: &'a [Member],
    },
    Error {
        code: &'a str,
        message: &'a str,
    },
    /// The socket's token expires soon; the client should send a `refresh`.
    Expiring {
        expires_at: u64,
    },
    /// A `refresh` was accepted: the socket now lives until this `exp`.
    Refreshed {
        expires_at: u64,
    },
    /// On resume: messages `from..=to` were missed and are no longer kept.
    Gap {
        from: u64,
        to: u64,
    },
    /// The answer to a `history` request: stored `message` frames, oldest first,
    /// embedded as they were broadcast.
    History {
        messages: &'a [&'a RawValue],
    },
    /// The answer to a `ping` that was not exactly [`PING`] (the runtime answers those).
    Pong,
}

impl ServerFrame<'_> {
    /// Renders the frame as JSON text. Serializing these types cannot fail (string keys,
    /// no maps with non-string keys, no floats), so this never returns an empty frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }
}

/// Frames a client may send.
#[derive(Debug)]
pub enum ClientFrame {
    Publish {
        data: Box<RawValue>,
    },
    /// A new access token for this socket (in-band refresh). Verified by the room exactly
    /// as the gate verifies an upgrade.
    Refresh {
        token: String,
    },
    /// Earlier messages: the newest `limit` with seq below `before` (see `room::history`).
    History {
        before: Option<u64>,
        limit: Option<u64>,
    },
    /// A keep-alive the runtime did not answer itself (not exactly [`PING`]).
    Ping,
}

/// `error` frame codes besides the [`FrameError`] ones: what a refused `refresh` gets.
pub mod error_code {
    /// The refresh token was refused (bad signature, expired, revoked, ...).
    pub const INVALID_TOKEN: &str = "invalid_token";
    /// The refresh token is valid but names another user (`sub`).
    pub const REFRESH_MISMATCH: &str = "refresh_mismatch";
    /// The frame was dropped by the socket's rate limit (`room::rate`).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The socket's rights in the room do not include what the frame asked for.
    pub const FORBIDDEN: &str = "forbidden";
    /// A `refresh` token's issuer's published keys cannot be fetched now.
    pub const ISSUER_UNAVAILABLE: &str = "issuer_unavailable";
}

/// How deep a `publish`'s `data` may nest (arrays and objects). The frame itself is one
/// level, so a frame may nest `MAX_DATA_DEPTH + 1` levels.
pub const MAX_DATA_DEPTH: usize = 32;

/// Whether `text` opens more than `max` nested arrays/objects at any point. Counts
/// brackets outside JSON strings in one pass over the bytes, so a deep frame is refused
/// before it is parsed at all; it does not validate (the parser does that).
pub fn nests_deeper_than(text: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Why a client frame was not understood; sent back as an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Not JSON, not an object, no string `type`, or a field missing or of the wrong type.
    BadFrame(String),
    /// A well-formed frame whose `type` this protocol version does not define.
    UnknownType(String),
}

impl FrameError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadFrame(_) => "bad_frame",
            Self::UnknownType(_) => "unknown_type",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::BadFrame(why) => why.clone(),
            Self::UnknownType(t) => format!("unknown frame type {t:?}"),
        }
    }
}

/// Every field any client frame may carry; which ones are required depends on `type`.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    /// `Some` whenever the key is present, including `"data": null`.
    #[serde(default, deserialize_with = "present")]
    data: Option<Box<RawValue>>,
    /// Raw, so that a `publish` carrying an unrelated `token` field of any type still
    /// parses; only `refresh` insists on a string.
    #[serde(default, deserialize_with = "present")]
    token: Option<Box<RawValue>>,
    /// Raw for the same reason; only `history` reads them.
    #[serde(default, deserialize_with = "present")]
    before: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    limit: Option<Box<RawValue>>,
    /// v2's client reference; v1 ignores it like any unknown field.
    #[serde(default, rename = "ref", deserialize_with = "present")]
    reference: Option<Box<RawValue>>,
    #[serde(flatten)]
    _rest: IgnoredAny,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// The longest `ref` a v2 client may attach to a frame.
pub const MAX_REF_BYTES: usize = 64;

/// Parses one client text frame (v1: any `ref` is ignored).
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    envelope(text).and_then(frame)
}

/// Parses one v2 frame object: the frame, and its `ref` when it carries a valid one. A
/// `ref` that is not a string of 1 – [`MAX_REF_BYTES`] bytes makes the frame a
/// `bad_frame`.
pub fn parse_with_ref(text: &str) -> (Result<ClientFrame, FrameError>, Option<String>) {
    let mut envelope = match envelope(text) {
        Ok(envelope) => envelope,
        Err(e) => return (Err(e), None),
    };
    let reference = match envelope.reference.take() {
        None => None,
        Some(raw) => match serde_json::from_str::<String>(raw.get()) {
            Ok(r) if !r.is_empty() && r.len() <= MAX_REF_BYTES => Some(r),
            _ => {
                let why = format!("ref must be a string of 1 to {MAX_REF_BYTES} bytes");
                return (Err(FrameError::BadFrame(why)), None);
            }
        },
    };
    (frame(envelope), reference)
}

/// Just the `ref` of a v2 frame object, for answering a frame that is not otherwise
/// handled (one the rate limit dropped).
pub fn reference_of(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct RefOnly {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    }
    serde_json::from_str::<RefOnly>(text)
        .ok()?
        .reference
        .filter(|r| !r.is_empty() && r.len() <= MAX_REF_BYTES)
}

fn envelope(text: &str) -> Result<Envelope, FrameError> {
    if nests_deeper_than(text, MAX_DATA_DEPTH + 1) {
        return Err(FrameError::BadFrame(format!(
            "data may nest at most {MAX_DATA_DEPTH} levels"
        )));
    }
    serde_json::from_str(text).map_err(|e| {
        FrameError::BadFrame(if e.is_syntax() || e.is_eof() {
            "frame is not valid JSON".to_owned()
        } else {
            format!("frame must be an object with a string \"type\": {e}")
        })
    })
}

fn frame(envelope: Envelope) -> Result<ClientFrame, FrameError> {
    match envelope.kind.as_str() {
        "publish" => envelope
            .data
            .map(|data| ClientFrame::Publish { data })
            .ok_or_else(|| FrameError::BadFrame("publish needs a \"data\" field".to_owned())),
        "refresh" => envelope
            .token
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
            .map(|token| ClientFrame::Refresh { token })
            .ok_or_else(|| FrameError::BadFrame("refresh needs a \"token\" string".to_owned())),
        "history" => Ok(ClientFrame::History {
            before: whole_number(envelope.before.as_deref(), "before")?,
            limit: whole_number(envelope.limit.as_deref(), "limit")?,
        }),
        "ping" => Ok(ClientFrame::Ping),
        other => Err(FrameError::UnknownType(other.to_owned())),
    }
}

/// An optional field that, when present, must be a non-negative integer.
fn whole_number(raw: Option<&RawValue>, field: &str) -> Result<Option<u64>, FrameError> {
    raw.map(|raw| {
        serde_json::from_str::<u64>(raw.get())
            .map_err(|_| FrameError::BadFrame(format!("history {field:?} must be a whole number")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_publish_with_any_json_data() {
        for data in [
            r#""hi""#,
            "42",
            "null",
            "[1,2,3]",
            r#"{"nested":{"x":[true,false]}}"#,
        ] {
            let text = format!(r#"{{"type":"publish","data":{data}}}"#);
            match parse_client_frame(&text) {
                Ok(ClientFrame::Publish { data: got }) => assert_eq!(got.get(), data),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn extra_fields_are_ignored() {
        let f = parse_client_frame(r#"{"type":"publish","id":7,"data":1}"#);
        assert!(matches!(f, Ok(ClientFrame::Publish { .. })));
    }

    #[test]
    fn parses_refresh_and_ignores_token_on_publish() {
        match parse_client_frame(r#"{"type":"refresh","token":"a.b.c","x":1}"#) {
            Ok(ClientFrame::Refresh { token }) => assert_eq!(token, "a.b.c"),
            other => panic!("{other:?}"),
        }
        let f = parse_client_frame(r#"{"type":"publish","data":1,"token":{"not":"a string"}}"#);
        assert!(matches!(f, Ok(ClientFrame::Publish { .. })), "{f:?}");
    }

    #[test]
    fn parses_history_with_optional_fields() {
        let cases = [
            (r#"{"type":"history"}"#, (None, None)),
            (r#"{"type":"history","before":12}"#, (Some(12), None)),
            (
                r#"{"type":"history","before":12,"limit":5}"#,
                (Some(12), Some(5)),
            ),
        ];
        for (text, (want_before, want_limit)) in cases {
            match parse_client_frame(text) {
                Ok(ClientFrame::History { before, limit }) => {
                    assert_eq!((before, limit), (want_before, want_limit), "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn frame_error_table() {
        let cases: &[(&str, &str)] = &[
            ("not json", "bad_frame"),
            ("", "bad_frame"),
            ("{", "bad_frame"),
            ("[1,2]", "bad_frame"),
            ("\"publish\"", "bad_frame"),
            ("{}", "bad_frame"),
            (r#"{"type":7,"data":1}"#, "bad_frame"),
            (r#"{"type":"publish"}"#, "bad_frame"),
            (r#"{"type":"refresh"}"#, "bad_frame"),
            (r#"{"type":"refresh","token":7}"#, "bad_frame"),
            (r#"{"type":"refresh","token":null}"#, "bad_frame"),
            (r#"{"type":"history","before":"5"}"#, "bad_frame"),
            (r#"{"type":"history","before":-1}"#, "bad_frame"),
            (r#"{"type":"history","limit":2.5}"#, "bad_frame"),
            (r#"{"type":"history","limit":null}"#, "bad_frame"),
            (r#"{"type":"dance","data":1}"#, "unknown_type"),
            (r#"{"type":"PUBLISH","data":1}"#, "unknown_type"),
        ];
        for &(text, code) in cases {
            let err = parse_client_frame(text).unwrap_err();
            assert_eq!(err.code(), code, "{text:?} -> {err:?}");
            assert!(!err.message().is_empty());
        }
    }

    #[test]
    fn ping_in_any_spelling_parses_and_pong_renders_as_the_auto_response() {
        for text in [PING, r#"{"type": "ping"}"#, r#"{"type":"ping","n":1}"#] {
            assert!(
                matches!(parse_client_frame(text), Ok(ClientFrame::Ping)),
                "{text}"
            );
        }
        assert_eq!(ServerFrame::Pong.to_json(), PONG);
    }

    #[test]
    fn nesting_depth() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let cases: &[(&str, usize, bool)] = &[
            ("", 0, false),
            ("1", 0, false),
            ("{}", 0, true),
            ("{}", 1, false),
            (r#"{"a":[{"b":[]}]}"#, 4, false),
            (r#"{"a":[{"b":[]}]}"#, 3, true),
            // Brackets inside strings, escaped quotes and backslashes do not count.
            (r#"{"a":"[[[[{{{{"}"#, 1, false),
            (r#"{"a":"\"[[[["}"#, 1, false),
            (r#"{"a":"\\\\","b":[[]]}"#, 2, true),
            (r#"{"a":"\\\\","b":[[]]}"#, 3, false),
            // Siblings do not add up.
            ("[[],[],[],[]]", 2, false),
            // Unbalanced input never underflows.
            ("]]]][", 1, false),
        ];
        for &(text, max, want) in cases {
            assert_eq!(nests_deeper_than(text, max), want, "{text} > {max}");
        }
        assert!(!nests_deeper_than(&nested(1000), 1000));
        assert!(nests_deeper_than(&nested(1001), 1000));
    }

    #[test]
    fn data_nesting_is_bounded() {
        let frame = |depth: usize| {
            format!(
                r#"{{"type":"publish","data":{}1{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        assert!(matches!(
            parse_client_frame(&frame(MAX_DATA_DEPTH)),
            Ok(ClientFrame::Publish { .. })
        ));
        let err = parse_client_frame(&frame(MAX_DATA_DEPTH + 1)).unwrap_err();
        assert_eq!(err.code(), "bad_frame");
        assert!(err.message().contains("32"), "{}", err.message());
        // Far past serde_json's own recursion limit (128): still this module's answer.
        let err = parse_client_frame(&frame(10_000)).unwrap_err();
        assert_eq!(err.code(), "bad_frame");
    }

    #[test]
    fn server_frames_render_exactly() {
        let alice = Member {
            id: "u1".into(),
            name: "Alice".into(),
        };
        let data = RawValue::from_string(r#"{"text":"hi"}"#.into()).unwrap();
        let cases = [
            (
                ServerFrame::Message {
                    seq: 3,
                    from: &alice,
                    data: &data,
                    ts: 1700000000123,
                },
                r#"{"type":"message","seq":3,"from":{"id":"u1","name":"Alice"},"data":{"text":"hi"},"ts":1700000000123}"#,
            ),
            (
                ServerFrame::Join { user: &alice },
                r#"{"type":"join","user":{"id":"u1","name":"Alice"}}"#,
            ),
            (
                ServerFrame::Leave { user: &alice },
                r#"{"type":"leave","user":{"id":"u1","name":"Alice"}}"#,
            ),
            (
                ServerFrame::Welcome {
                    room: "lobby",
                    user: &alice,
                    members: Some(std::slice::from_ref(&alice)),
                    expires_at: 99,
                    last_seq: 7,
                },
                r#"{"type":"welcome","room":"lobby","user":{"id":"u1","name":"Alice"},"members":[{"id":"u1","name":"Alice"}],"expires_at":99,"last_seq":7}"#,
            ),
            (
                ServerFrame::Error {
                    code: "bad_frame",
                    message: "nope",
                },
                r#"{"type":"error","code":"bad_frame","message":"nope"}"#,
            ),
            (
                ServerFrame::Expiring { expires_at: 99 },
                r#"{"type":"expiring","expires_at":99}"#,
            ),
            (
                ServerFrame::Refreshed { expires_at: 99 },
                r#"{"type":"refreshed","expires_at":99}"#,
            ),
        ];
        for (frame, want) in cases {
            assert_eq!(frame.to_json(), want);
        }
    }
}
