//! How a target's clients speak: the subprotocol they offer at the upgrade, and how the
//! deliveries are read out of each text frame the room sends them.
//!
//! Batched targets (roomgate's protocol v2, js-bare-batched) send JSON arrays of frame
//! objects, many messages in one text frame (docs/protocol.md §4). Each element is its
//! own delivery: it is checked for order and counted, and its latency is the receive time
//! of the text frame that carried it minus the send time the message carries. Arrays are
//! split with a byte scan that skips strings and nesting; no JSON tree is built.

use crate::scan::{is_welcome, scan_bare, scan_message, Delivery};

/// The subprotocol a roomgate client offers to get protocol v2.
pub const ROOMGATE_V2: &str = "roomgate.v2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// roomgate v1, js-reference, native: one frame object per text frame, a welcome
    /// first, messages numbered by `seq`.
    Frames,
    /// roomgate v2: the same frames in arrays (a bare object counts as an array of one).
    FrameArrays,
    /// js-bare: each text frame is one the generator sent, verbatim; no welcome.
    Echo,
    /// js-bare-batched: arrays of frames the generator sent, verbatim; no welcome.
    EchoArrays,
}

impl Wire {
    /// The `Sec-WebSocket-Protocol` its clients offer (and the 101 must select).
    pub fn subprotocol(self) -> Option<&'static str> {
        (self == Wire::FrameArrays).then_some(ROOMGATE_V2)
    }

    /// Does a welcome come first after the 101?
    pub fn has_welcome(self) -> bool {
        matches!(self, Wire::Frames | Wire::FrameArrays)
    }

    /// Do text frames carry arrays of frames?
    pub fn batched(self) -> bool {
        matches!(self, Wire::FrameArrays | Wire::EchoArrays)
    }

    /// Must every frame object be one the generator sent? (Authenticated targets also
    /// send welcome, presence, join, leave, ..., which the load generator ignores.)
    pub fn echoes(self) -> bool {
        matches!(self, Wire::Echo | Wire::EchoArrays)
    }

    /// The frame objects of one text frame: each element of an array on a batched wire,
    /// otherwise the frame itself.
    pub fn objects(self, frame: &[u8]) -> Elements<'_> {
        if self.batched() {
            elements(frame)
        } else {
            Elements::whole(frame)
        }
    }

    /// What one frame object delivers, if it is a message of the benchmark's.
    pub fn delivery(self, object: &[u8]) -> Option<Delivery> {
        if self.echoes() {
            scan_bare(object)
        } else {
            scan_message(object)
        }
    }

    /// Does this text frame hold the welcome (in v2, an element of the array)?
    pub fn is_welcome(self, frame: &[u8]) -> bool {
        self.has_welcome() && self.objects(frame).any(is_welcome)
    }
}

/// The top-level elements of a JSON array, as byte slices (whitespace around them
/// trimmed); see [`elements`].
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    s: &'a [u8],
    i: usize,
    /// Not an array: the whole text is the one element.
    whole: bool,
    done: bool,
}

impl<'a> Elements<'a> {
    fn whole(s: &'a [u8]) -> Elements<'a> {
        Elements {
            s,
            i: 0,
            whole: true,
            done: false,
        }
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ws(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// Splits `[a, b, c]` into `a`, `b`, `c`. Text that is not an array (a bare object, such
/// as the runtime's `{"type":"pong"}`) is one element; `[]` has none. Commas and brackets
/// inside strings (escapes included) and nested values do not split. A truncated array
/// yields what it holds, its last element cut short.
pub fn elements(frame: &[u8]) -> Elements<'_> {
    let s = trim(frame);
    match s.first() {
        Some(b'[') => Elements {
            s,
            i: 1,
            whole: false,
            done: false,
        },
        _ => Elements::whole(s),
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        if self.whole {
            self.done = true;
            return (!self.s.is_empty()).then_some(self.s);
        }
        let s = self.s;
        let start = self.i;
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let mut i = start;
        while i < s.len() {
            let b = s[i];
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => depth -= 1,
                    b']' => {
                        self.done = true;
                        let el = trim(&s[start..i]);
                        // `[]`, or a trailing comma: no element there.
                        return (!el.is_empty()).then_some(el);
                    }
                    b',' if depth == 0 => {
                        self.i = i + 1;
                        return Some(trim(&s[start..i]));
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        self.done = true;
        let el = trim(&s[start..]);
        (!el.is_empty()).then_some(el)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<&str> {
        elements(s.as_bytes())
            .map(|e| std::str::from_utf8(e).unwrap())
            .collect()
    }

    #[test]
    fn splits_arrays_of_frames() {
        assert_eq!(
            split(r#"[{"type":"a"},{"type":"b"}]"#),
            [r#"{"type":"a"}"#, r#"{"type":"b"}"#]
        );
        assert_eq!(
            split(" [ {\"a\":1} ,\n {\"b\":[1,2,{\"c\":[]}]} ] "),
            [r#"{"a":1}"#, r#"{"b":[1,2,{"c":[]}]}"#]
        );
        assert_eq!(split("[]"), Vec::<&str>::new());
        assert_eq!(split("[ ]"), Vec::<&str>::new());
        assert_eq!(split(r#"[{"x":1}]"#), [r#"{"x":1}"#]);
    }

    #[test]
    fn strings_do_not_split() {
        let f = r#"[{"data":"a,b]c[{\"q\":\"]\"}"},{"data":"\\"},{"d":"}"}]"#;
        assert_eq!(
            split(f),
            [
                r#"{"data":"a,b]c[{\"q\":\"]\"}"}"#,
                r#"{"data":"\\"}"#,
                r#"{"d":"}"}"#
            ]
        );
    }

    #[test]
    fn a_bare_object_is_an_array_of_one() {
        assert_eq!(split(r#"{"type":"pong"}"#), [r#"{"type":"pong"}"#]);
        assert_eq!(split(""), Vec::<&str>::new());
        assert_eq!(
            Wire::Frames
                .objects(br#"[{"type":"a"},{"type":"b"}]"#)
                .count(),
            1,
            "a v1 frame is never split"
        );
    }

    #[test]
    fn truncated_arrays_yield_what_they_hold() {
        assert_eq!(split(r#"[{"a":1},{"b":2"#), [r#"{"a":1}"#, r#"{"b":2"#]);
        assert_eq!(split("[1,2,]"), ["1", "2"]);
    }

    #[test]
    fn every_message_of_a_v2_batch_is_a_delivery() {
        let f = br#"[{"type":"presence","joined":[{"id":"u3","name":"C"}],"left":[]},
            {"type":"message","seq":42,"from":{"id":"u1","name":"A"},"data":{"b":"0.7.1000","p":"x"},"ts":1},
            {"type":"message","seq":43,"from":{"id":"u2","name":"B"},"data":{"b":"1.3.2000","p":"x"},"ts":2,"ref":"r1"}]"#;
        let got: Vec<Delivery> = Wire::FrameArrays
            .objects(f)
            .filter_map(|o| Wire::FrameArrays.delivery(o))
            .collect();
        assert_eq!(
            got,
            [
                Delivery {
                    seq: Some(42),
                    sender: 0,
                    counter: 7,
                    sent_ns: 1000
                },
                Delivery {
                    seq: Some(43),
                    sender: 1,
                    counter: 3,
                    sent_ns: 2000
                }
            ]
        );
    }

    #[test]
    fn the_welcome_may_open_the_first_array_or_come_bare() {
        let w = Wire::FrameArrays;
        assert!(w.is_welcome(br#"[{"type":"welcome","room":"r","last_seq":0,"members":[]}]"#));
        assert!(w.is_welcome(
            br#"[{"type":"welcome","room":"r","last_seq":3},{"type":"message","seq":4,"data":{"b":"0.0.1"}}]"#
        ));
        assert!(w.is_welcome(br#"{"type":"welcome","room":"r","last_seq":0}"#));
        assert!(!w.is_welcome(br#"[{"type":"presence","joined":[],"left":[]}]"#));
        assert!(!w.is_welcome(br#"{"type":"pong"}"#));
        assert!(Wire::Frames.is_welcome(br#"{"type":"welcome","room":"r"}"#));
        assert!(!Wire::EchoArrays.is_welcome(br#"[{"type":"welcome"}]"#));
    }

    #[test]
    fn js_bare_batched_arrays_hold_the_frames_sent() {
        let f = br#"[{"type":"publish","data":{"b":"2.5.99","p":"xx"}},{"type":"publish","data":{"b":"2.6.100","p":"xx"}}]"#;
        let got: Vec<(u32, u64, u64)> = Wire::EchoArrays
            .objects(f)
            .map(|o| {
                let d = Wire::EchoArrays.delivery(o).unwrap();
                (d.sender, d.counter, d.sent_ns)
            })
            .collect();
        assert_eq!(got, [(2, 5, 99), (2, 6, 100)]);
        // On js-bare the same text is a single frame, not a batch.
        assert_eq!(Wire::Echo.objects(f).count(), 1);
    }

    #[test]
    fn only_roomgate_v2_offers_a_subprotocol() {
        assert_eq!(Wire::FrameArrays.subprotocol(), Some("roomgate.v2"));
        for w in [Wire::Frames, Wire::Echo, Wire::EchoArrays] {
            assert_eq!(w.subprotocol(), None);
        }
    }
}
