//! No input line makes hotspot panic or stop (CONTRACT 1, "Nothing lost,
//! nothing crashes"): arbitrary bytes, and near-JSON made by mutating valid
//! records, through the decoder and the whole engine.

use std::sync::Arc;

use hotspot::engine::{Collect, Engine, EngineConfig, Outcome};
use hotspot::record::{Decoded, Decoder, Reject};
use hotspot::rules::embedded;
use proptest::prelude::*;

const VALID: &str = r#"{"id":"WO1","ts":"2026-03-15T09:27:41.123+08:00","region":"杭州","text":"客户反映彩铃复制失败，回访号码：13812345678","caller":"13812345678","channel":"10086","meta":{"os":"iOS","v":[1,2.5e3,null,true]}}"#;

fn engine() -> Engine {
    Engine::new(Arc::new(embedded().unwrap()), EngineConfig::default()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut d = Decoder::new();
        let mut d2 = Decoder::new();
        prop_assert_eq!(d.decode(&line), d2.decode_bytewise(&line));
        let mut e = engine();
        let mut out = Collect::default();
        let outcome = e.process_line(1, &line, &mut out);
        if let Outcome::Rejected(r) = outcome {
            prop_assert!(r.at <= line.len());
        }
    }

    #[test]
    fn mutated_records_never_panic(
        edits in proptest::collection::vec((0usize..400, any::<u8>(), 0u8..3), 1..6)
    ) {
        let mut line = VALID.as_bytes().to_vec();
        for (at, byte, op) in edits {
            let at = at % (line.len() + 1);
            match op {
                0 => line.insert(at, byte),
                1 if at < line.len() => { line.remove(at); }
                _ if at < line.len() => line[at] = byte,
                _ => {}
            }
        }
        let mut d = Decoder::new();
        let mut d2 = Decoder::new();
        let decoded = d.decode(&line);
        // The quote-bitmap scanner and the byte-wise one agree on every line.
        prop_assert_eq!(decoded, d2.decode_bytewise(&line));
        // A rejected line names a reason; a std::str-invalid line is always
        // invalid_utf8, whatever else is wrong with it.
        if std::str::from_utf8(&line).is_err() {
            prop_assert!(matches!(decoded, Decoded::Rejected(r) if r.reason == Reject::InvalidUtf8));
        }
        let mut e = engine();
        e.process_line(1, &line, &mut Collect::default());
    }

    #[test]
    fn valid_json_is_never_invalid_json(v in json_value(4)) {
        let line = v.to_string();
        let mut d = Decoder::new();
        let decoded = d.decode(line.as_bytes());
        let mut d2 = Decoder::new();
        prop_assert_eq!(decoded, d2.decode_bytewise(line.as_bytes()));
        prop_assert!(!matches!(decoded, Decoded::Rejected(r) if r.reason == Reject::InvalidJson || r.reason == Reject::InvalidUtf8), "{}", line);
    }
}

/// `s` as a JSON string the way the app channel writes it: every
/// non-ASCII character as `\uXXXX` (astral ones as a surrogate pair), and
/// the short escapes where JSON has them.
fn app_escaped(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '/' => out.push_str("\\/"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    // Both cases of hex digits occur in the wild.
                    if *u % 2 == 0 {
                        out.push_str(&format!("\\u{u:04x}"));
                    } else {
                        out.push_str(&format!("\\u{u:04X}"));
                    }
                }
            }
        }
    }
    out.push('"');
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Escaped text decodes to exactly the original characters, through the
    /// bitmap scanner and the byte-wise one alike.
    #[test]
    fn escaped_strings_decode_exactly(text in "(\\PC|\n|\t){0,60}", region in "\\PC{1,8}") {
        let line = format!(
            r#"{{"id":"WO1","ts":1773538061000,"region":{},"text":{}}}"#,
            app_escaped(&region),
            app_escaped(&text)
        );
        let (mut d1, mut d2) = (Decoder::new(), Decoder::new());
        let decoded = d1.decode(line.as_bytes());
        prop_assert_eq!(decoded, d2.decode_bytewise(line.as_bytes()));
        match decoded {
            Decoded::Record(r) => {
                prop_assert_eq!(r.text, text.as_str());
                prop_assert_eq!(r.region, region.as_str());
            }
            other => prop_assert!(false, "{line} -> {other:?}"),
        }
    }
}

fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(depth, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("\\PC{0,6}", inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn the_decoder_agrees_with_serde_json_on_validity() {
    // Lines serde_json accepts and we must accept, and the reverse.
    let cases = [
        r#"{"a":"\u00e9\ud83d\ude00","b":[[[]]],"c":-0.0e-0}"#,
        r#"  {"a" : 1 , "b" : [ 1 , 2 ] }  "#,
        r#"{"a":1}x"#,
        r#"{"a":01}"#,
        r#"{"a":.5}"#,
        r#"{"a":-}"#,
        r#"{"a":"\q"}"#,
        r#"{"a":[1 2]}"#,
        r#"{"a":{"b":1,}}"#,
        r#"{,}"#,
        r#"{"a":1,"a":2}"#,
    ];
    for line in cases {
        let serde_ok = serde_json::from_str::<serde_json::Value>(line).is_ok();
        let ours = !matches!(Decoder::new().decode(line.as_bytes()), Decoded::Rejected(r) if r.reason == Reject::InvalidJson);
        assert_eq!(ours, serde_ok, "{line}");
    }
}
