//! Dead letters (CONTRACT 5.11): one JSON object per rejected line with its
//! 1-based `line`, the `reason`, the raw length in `bytes`, and `raw` — the
//! line decoded lossily as UTF-8, phone and ID numbers masked, cut to at
//! most 4 KiB. `detail` and `at` (byte offset on the line) say what exactly
//! was wrong, so that whoever fixes the producer does not have to guess.

use serde::Serialize;

use crate::mask::mask;
use crate::record::RejectInfo;
use crate::window::key::floor_char_boundary;

/// The most bytes of `raw` kept.
pub const RAW_BYTES: usize = 4096;

#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    pub line: u64,
    pub reason: &'static str,
    pub bytes: usize,
    pub raw: &'a str,
    pub detail: &'static str,
    pub at: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'a str>,
}

/// The dead-letter JSON line (without newline) for a rejected line.
pub fn dead_letter_json(line: u64, raw: &[u8], info: &RejectInfo, source: Option<&str>) -> String {
    // Mask a little more than we keep so a number cut at the edge is still
    // recognised as one, then cut at a character boundary.
    let head = &raw[..raw.len().min(RAW_BYTES + 64)];
    let lossy = String::from_utf8_lossy(head);
    let masked = mask(&lossy);
    let cut = &masked[..floor_char_boundary(&masked, RAW_BYTES)];
    let dl = DeadLetter {
        line,
        reason: info.reason.name(),
        bytes: raw.len(),
        raw: cut,
        detail: info.detail,
        at: info.at,
        source,
    };
    serde_json::to_string(&dl).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Reject;

    #[test]
    fn masks_and_cuts() {
        let info = RejectInfo {
            reason: Reject::InvalidJson,
            detail: "unterminated string",
            at: 3,
        };
        let raw = "{\"text\":\"回访号码：13812345678".as_bytes();
        let j: serde_json::Value =
            serde_json::from_str(&dead_letter_json(7, raw, &info, None)).unwrap();
        assert_eq!(j["line"], 7);
        assert_eq!(j["reason"], "invalid_json");
        assert_eq!(j["bytes"], raw.len());
        assert_eq!(j["raw"], "{\"text\":\"回访号码：138****5678");
        let big = vec![b'x'; 10_000];
        let j: serde_json::Value =
            serde_json::from_str(&dead_letter_json(1, &big, &info, Some("http"))).unwrap();
        assert_eq!(j["raw"].as_str().unwrap().len(), RAW_BYTES);
        assert_eq!(j["bytes"], 10_000);
        assert_eq!(j["source"], "http");
        let bad = b"{\"a\":\"\xff\xfe\"}";
        let j: serde_json::Value =
            serde_json::from_str(&dead_letter_json(1, bad, &info, None)).unwrap();
        assert_eq!(j["raw"], "{\"a\":\"\u{FFFD}\u{FFFD}\"}");
    }
}
