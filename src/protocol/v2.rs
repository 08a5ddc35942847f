//! Protocol v2 on the wire: the frame objects of [`super::frames`], many to a WebSocket
//! text frame.
//!
//! A socket speaks v2 when its client offered the subprotocol [`SUBPROTOCOL`]. Every
//! server→client text frame is then a JSON array of frame objects, and a client may
//! send an array too. Batching is the point: the runtime's cost is per WebSocket send,
//! nearly whatever its size. What the room puts into one array, and when, is decided in
//! `room::flush`; this module only says how frames are joined and split.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::frames::{FrameError, MAX_DATA_DEPTH};

/// The subprotocol a client offers (and the server selects) for protocol v2.
pub const SUBPROTOCOL: &str = "roomgate.v2";

/// No array the room sends is larger than this, unless one frame alone is.
pub const MAX_ARRAY_BYTES: usize = 64 * 1024;

/// The protocol a socket speaks, chosen by its subprotocol at the upgrade and kept in
/// its attachment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    #[default]
    #[serde(rename = "1")]
    V1,
    #[serde(rename = "2")]
    V2,
}

impl Version {
    /// The version the selected subprotocol names (v1 when none was selected).
    pub fn of(selected: Option<&str>) -> Self {
        match selected {
            Some(SUBPROTOCOL) => Self::V2,
            _ => Self::V1,
        }
    }

    pub fn is_v1(&self) -> bool {
        *self == Self::V1
    }
}

/// The elements of a v2 client array, as raw frame texts in order. Only the array is
/// checked here; each element is parsed as a frame of its own.
pub fn elements(text: &str) -> Result<Vec<&str>, FrameError> {
    // The array is one level around frames that may nest `MAX_DATA_DEPTH + 1`.
    if super::frames::nests_deeper_than(text, MAX_DATA_DEPTH + 2) {
        return Err(FrameError::BadFrame(format!(
            "data may nest at most {MAX_DATA_DEPTH} levels"
        )));
    }
    let items: Vec<&RawValue> = serde_json::from_str(text)
        .map_err(|_| FrameError::BadFrame("frame is not valid JSON".to_owned()))?;
    if items.is_empty() {
        return Err(FrameError::BadFrame(
            "an array of frames needs at least one".to_owned(),
        ));
    }
    Ok(items.into_iter().map(RawValue::get).collect())
}

/// Whether a v2 client's text frame is an array of frames rather than one frame object.
pub fn is_array(text: &str) -> bool {
    text.trim_start().starts_with('[')
}

/// `frame` (a rendered frame object) with `"ref": reference` added, for the socket that
/// sent the frame it answers.
pub fn with_ref(frame: &str, reference: &str) -> String {
    let Some(body) = frame.strip_suffix('}') else {
        return frame.to_owned();
    };
    let quoted = serde_json::to_string(reference).expect("a string always serializes");
    let mut out = String::with_capacity(frame.len() + quoted.len() + 8);
    out.push_str(body);
    if !body.ends_with('{') {
        out.push(',');
    }
    out.push_str("\"ref\":");
    out.push_str(&quoted);
    out.push('}');
    out
}

/// One frame as a v2 text frame: an array of one.
pub fn one(frame: &str) -> String {
    let mut out = String::with_capacity(frame.len() + 2);
    out.push('[');
    out.push_str(frame);
    out.push(']');
    out
}

/// `frames` as v2 text frames: in order, as few arrays as fit [`MAX_ARRAY_BYTES`] each
/// (a frame bigger than that alone is an array of its own). None for no frames.
pub fn arrays<'a>(frames: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for frame in frames {
        // `current` holds "[a,b" so far; the frame needs a comma and the closing bracket.
        if !current.is_empty() && current.len() + frame.len() + 2 > MAX_ARRAY_BYTES {
            current.push(']');
            out.push(std::mem::take(&mut current));
        }
        current.push(if current.is_empty() { '[' } else { ',' });
        current.push_str(frame);
    }
    if !current.is_empty() {
        current.push(']');
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_subprotocol_chooses_the_version() {
        assert_eq!(Version::of(Some("roomgate.v2")), Version::V2);
        assert_eq!(Version::of(Some("roomgate.v1")), Version::V1);
        assert_eq!(Version::of(None), Version::V1);
        assert_eq!(serde_json::to_string(&Version::V2).unwrap(), r#""2""#);
    }

    #[test]
    fn client_arrays_split_into_their_frames() {
        let got = elements(r#" [ {"type":"ping"}, {"type":"publish","data":[1, 2]} ] "#).unwrap();
        assert_eq!(
            got,
            [r#"{"type":"ping"}"#, r#"{"type":"publish","data":[1, 2]}"#]
        );
        for bad in ["[]", "[", "[1,", r#"{"type":"ping"}"#, "nope"] {
            let e = elements(bad).unwrap_err();
            assert_eq!(e.code(), "bad_frame", "{bad}");
        }
        let deep = format!("[{{\"data\":{}{}}}]", "[".repeat(33), "]".repeat(33));
        assert_eq!(elements(&deep).unwrap_err().code(), "bad_frame");
        assert!(is_array("  [1]") && !is_array(r#"{"a":[1]}"#));
    }

    #[test]
    fn a_ref_is_added_to_the_frame_it_answers() {
        let frame = r#"{"type":"message","seq":3,"data":{"a":"}"}}"#;
        let got: Value = serde_json::from_str(&with_ref(frame, "x\"1")).unwrap();
        assert_eq!(got["ref"], "x\"1");
        assert_eq!(got["data"]["a"], "}");
        assert_eq!(with_ref("{}", "r"), r#"{"ref":"r"}"#);
    }

    #[test]
    fn arrays_are_split_at_the_byte_bound_and_keep_the_order() {
        assert!(arrays([]).is_empty());
        assert_eq!(arrays(["{}"]), ["[{}]"]);
        let frame = format!(r#"{{"d":"{}"}}"#, "x".repeat(1000));
        let frames: Vec<&str> = std::iter::repeat_n(frame.as_str(), 200).collect();
        let out = arrays(frames.iter().copied());
        assert!(out.len() > 1);
        let mut n = 0;
        for a in &out {
            assert!(a.len() <= MAX_ARRAY_BYTES, "{}", a.len());
            n += serde_json::from_str::<Vec<Value>>(a).unwrap().len();
        }
        assert_eq!(n, 200);
        let huge = "y".repeat(MAX_ARRAY_BYTES * 2);
        let lone = format!(r#""{huge}""#);
        let out = arrays(["1", lone.as_str(), "2"]);
        assert_eq!(out.len(), 3, "the oversized frame goes alone");
        assert_eq!(out[0], "[1]");
        assert_eq!(out[2], "[2]");
    }
}
