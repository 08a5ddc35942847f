//! Property tests of the frame parser, and the settings every property test of the crate
//! runs with: arbitrary text and arbitrary JSON never make it panic, and its limits hold
//! (a frame nested deeper than the bound is refused; a published value comes back
//! verbatim).
//!
//! `cargo test --lib props` runs a few thousand cases per property;
//! `PROPTEST_CASES=100000 cargo test --release --lib props` runs as many.

use proptest::prelude::*;
use serde_json::Value;

use super::frames::{nests_deeper_than, parse_client_frame, ClientFrame, MAX_DATA_DEPTH};

/// Cases per property: a few thousand unless `PROPTEST_CASES` says otherwise; failures
/// are reported, not saved into the source tree.
pub(crate) fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Arbitrary JSON values, nested up to `depth` levels.
pub(crate) fn json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(depth, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// How deeply `v` nests arrays and objects.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_is_parsed_or_refused_without_a_panic(text in ".{0,200}") {
        let _ = parse_client_frame(&text);
    }

    #[test]
    fn any_bytes_as_text_are_parsed_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_client_frame(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn any_json_frame_is_parsed_or_refused(frame in json(6)) {
        let _ = parse_client_frame(&frame.to_string());
    }

    #[test]
    fn published_data_comes_back_verbatim_within_the_depth_bound(data in json(40)) {
        let sent = data.to_string();
        let text = format!(r#"{{"type":"publish","data":{sent}}}"#);
        match parse_client_frame(&text) {
            Ok(ClientFrame::Publish { data: raw }) => {
                prop_assert!(depth(&data) <= MAX_DATA_DEPTH);
                // The very text the client sent, byte for byte.
                prop_assert_eq!(raw.get(), sent.as_str());
            }
            Ok(other) => prop_assert!(false, "a publish parsed as {:?}", other),
            Err(e) => {
                prop_assert!(depth(&data) > MAX_DATA_DEPTH, "refused: {:?}", e);
                prop_assert!(nests_deeper_than(&text, MAX_DATA_DEPTH + 1));
            }
        }
    }
}
