//! Cheap scanning of received frames: byte searches, no JSON tree per frame.

/// What a fan-out receiver needs from one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The room's `seq` (absent for js-bare, which forwards frames verbatim).
    pub seq: Option<u64>,
    /// Index of the sending client.
    pub sender: u32,
    /// That sender's counter.
    pub counter: u64,
    /// Send time, ns since the generator started.
    pub sent_ns: u64,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The value of the first `"key":` in `s` when it is a string (no escapes expected).
fn string_after<'a>(s: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = find(s, key)?;
    let mut i = skip_ws(s, at + key.len());
    if s.get(i)? != &b':' {
        return None;
    }
    i = skip_ws(s, i + 1);
    if s.get(i)? != &b'"' {
        return None;
    }
    let start = i + 1;
    let len = s[start..].iter().position(|&b| b == b'"')?;
    Some(&s[start..start + len])
}

/// The unsigned integer after the first `"key":` in `s`.
fn uint_after(s: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(s, key)?;
    let mut i = skip_ws(s, at + key.len());
    if s.get(i)? != &b':' {
        return None;
    }
    i = skip_ws(s, i + 1);
    parse_uint(&s[i..]).map(|(v, _)| v)
}

/// Leading decimal digits of `s`: value and length.
fn parse_uint(s: &[u8]) -> Option<(u64, usize)> {
    let len = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in &s[..len] {
        v = v * 10 + u64::from(b - b'0');
    }
    Some((v, len))
}

/// Parses `"<sender>.<counter>.<ns>"`.
pub fn parse_b(b: &[u8]) -> Option<(u32, u64, u64)> {
    let (sender, l1) = parse_uint(b)?;
    let rest = b.get(l1..)?.strip_prefix(b".")?;
    let (counter, l2) = parse_uint(rest)?;
    let rest = rest.get(l2..)?.strip_prefix(b".")?;
    let (ns, l3) = parse_uint(rest)?;
    if l3 != rest.len() {
        return None;
    }
    Some((u32::try_from(sender).ok()?, counter, ns))
}

/// A broadcast `message` frame (authenticated targets): its top-level `type` (the first
/// `"type"` key) must be `message`, so welcome, join, leave, history and error frames are
/// ignored. `None` for anything else.
pub fn scan_message(frame: &[u8]) -> Option<Delivery> {
    if string_after(frame, b"\"type\"")? != b"message" {
        return None;
    }
    let seq = uint_after(frame, b"\"seq\"")?;
    let (sender, counter, sent_ns) = parse_b(string_after(frame, b"\"b\"")?)?;
    Some(Delivery {
        seq: Some(seq),
        sender,
        counter,
        sent_ns,
    })
}

/// js-bare forwards the publish frame verbatim: only the `b` string matters.
pub fn scan_bare(frame: &[u8]) -> Option<Delivery> {
    let (sender, counter, sent_ns) = parse_b(string_after(frame, b"\"b\"")?)?;
    Some(Delivery {
        seq: None,
        sender,
        counter,
        sent_ns,
    })
}

/// Is this the first frame of an authenticated target (`"type":"welcome"`)?
pub fn is_welcome(frame: &[u8]) -> bool {
    string_after(frame, b"\"type\"") == Some(b"welcome")
}

/// Per-stream order check: a sequence that must go up by exactly 1.
#[derive(Debug, Default, Clone)]
pub struct OrderCheck {
    last: Option<u64>,
    /// Values that did not go up (duplicates or going backwards).
    pub reorders: u64,
    /// Values skipped over (jumps forward).
    pub gaps: u64,
}

impl OrderCheck {
    pub fn observe(&mut self, v: u64) {
        match self.last {
            None => self.last = Some(v),
            Some(last) if v == last + 1 => self.last = Some(v),
            Some(last) if v <= last => self.reorders += 1,
            Some(last) => {
                self.gaps += v - last - 1;
                self.last = Some(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_a_roomgate_message() {
        let f = br#"{"type":"message","seq":42,"from":{"id":"u1","name":"A"},"data":{"b":"3.17.123456789","p":"xxxx"},"ts":1795706403123}"#;
        assert_eq!(
            scan_message(f),
            Some(Delivery {
                seq: Some(42),
                sender: 3,
                counter: 17,
                sent_ns: 123456789
            })
        );
    }

    #[test]
    fn tolerates_spaces_and_other_key_orders() {
        let f = br#"{"type": "message", "from": {"id": "u1"}, "data": {"p": "x", "b": "0.0.5"}, "seq": 7}"#;
        let d = scan_message(f).unwrap();
        assert_eq!((d.seq, d.sender, d.counter, d.sent_ns), (Some(7), 0, 0, 5));
    }

    #[test]
    fn ignores_other_frames() {
        assert_eq!(
            scan_message(br#"{"type":"join","user":{"id":"u2","name":"B"}}"#),
            None
        );
        assert_eq!(
            scan_message(br#"{"type":"history","messages":[{"type":"message","seq":1,"data":{"b":"0.0.1"}}]}"#),
            None
        );
        assert!(is_welcome(br#"{"type":"welcome","room":"r","last_seq":0}"#));
        assert!(!is_welcome(br#"{"type":"message"}"#));
        assert_eq!(parse_b(b"1.2.3x"), None);
        assert_eq!(parse_b(b"1.2"), None);
        assert_eq!(parse_b(b""), None);
    }

    #[test]
    fn scans_a_bare_echo() {
        let f = br#"{"type":"publish","data":{"b":"9.100.77","p":"pad"}}"#;
        let d = scan_bare(f).unwrap();
        assert_eq!((d.seq, d.sender, d.counter, d.sent_ns), (None, 9, 100, 77));
    }

    #[test]
    fn order_check_counts_reorders_and_gaps() {
        let mut c = OrderCheck::default();
        for v in [5, 6, 7, 9, 8, 10, 10, 11] {
            c.observe(v);
        }
        assert_eq!(c.gaps, 1); // 8 skipped at 9
        assert_eq!(c.reorders, 2); // 8 after 9, the second 10
    }
}
