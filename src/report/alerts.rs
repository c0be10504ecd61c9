//! The report's first stage: the alerts file, read line by line. Each
//! firing line in the period becomes an [`Incident`]; the resolved line with
//! the same `alert_id` closes it. Only open alerts are held by id, and the
//! samples only of the first [`DETAIL_ROWS`] incidents, so memory follows
//! the number of incidents, not the file's size.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

use crate::alert::{Kind, Scope};
use crate::mask::mask_and_cut;
use crate::time::parse_rfc3339;

/// Incidents listed with their samples in the report's table; further ones
/// are counted in the charts only (a month of a busy province stays well
/// under the 2 MB page budget).
pub(crate) const DETAIL_ROWS: usize = 500;

/// A sample's text in the report is cut to this many characters.
const SAMPLE_CHARS: usize = 120;

/// Malformed lines named one by one on stderr before they are only counted.
const WARN_LINES: usize = 5;

/// `+08:00`, the offset every time in the report is shown in.
pub(crate) const CST_MS: i64 = 8 * 3_600_000;

/// The day number (days since 1970-01-01) of `ms` in `+08:00`.
pub(crate) fn cst_day(ms: i64) -> i64 {
    (ms + CST_MS).div_euclid(86_400_000)
}

/// One alert: its firing line and, once read, its resolution.
#[derive(Debug, Clone)]
pub(crate) struct Incident {
    pub alert_id: String,
    /// 1-based line of the firing line in the alerts file.
    pub line: usize,
    /// `None` for a new-topic alert.
    pub business: Option<String>,
    pub business_name: String,
    /// A region, or a province for a province alert.
    pub place: String,
    pub scope: Scope,
    pub kind: Kind,
    pub department: String,
    pub department_name: String,
    /// Distinct callers of the firing window.
    pub count: u32,
    pub threshold: u32,
    pub window_start: i64,
    pub window_end: i64,
    pub event_ts: i64,
    /// From the resolved line: the most callers of one window, the end of
    /// the last window at or above the threshold, and when it resolved.
    pub max_count: Option<u32>,
    pub resolved_end: Option<i64>,
    pub resolved_at: Option<i64>,
    pub end_of_input: bool,
    /// Complaints per template in the firing window.
    pub templates: Vec<(String, u32)>,
    /// New topics: the shared phrases (the first five, masked and cut).
    pub terms: Vec<String>,
    /// Masked again and cut; kept for the first [`DETAIL_ROWS`] only.
    pub samples: Vec<(String, String)>,
}

impl Incident {
    /// The end of the incident's hot period as far as the alerts say: the
    /// resolved line's `window_end`, else the firing window's end.
    pub fn hot_end(&self) -> i64 {
        self.resolved_end
            .unwrap_or(self.window_end)
            .max(self.window_end)
    }
}

/// What the alerts file held for the period.
#[derive(Debug, Default)]
pub(crate) struct AlertsRead {
    /// Firing lines in the period, in file order.
    pub incidents: Vec<Incident>,
    pub lines: u64,
    /// Firing lines outside `--from`/`--to`.
    pub outside: u64,
    /// Lines that are not alert lines (not JSON, or missing a field).
    pub malformed: u64,
}

/// The fields the report reads; anything else on the line is ignored, so
/// alert lines with fields added later still read.
#[derive(Deserialize)]
struct Wire {
    alert_id: String,
    state: String,
    #[serde(default)]
    business: Option<String>,
    #[serde(default)]
    business_name: Option<String>,
    region: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    department: Option<String>,
    #[serde(default)]
    department_name: Option<String>,
    count: u32,
    #[serde(default)]
    threshold: u32,
    window_start: String,
    window_end: String,
    event_ts: String,
    #[serde(default)]
    end_of_input: bool,
    #[serde(default)]
    templates: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    terms: Option<Vec<String>>,
    #[serde(default)]
    samples: Option<Vec<WireSample>>,
}

#[derive(Deserialize)]
struct WireSample {
    #[serde(default)]
    id: String,
    #[serde(default)]
    text: String,
}

/// The period of the report: days (in `+08:00`) from `from` to `to`, both
/// included; `None` is open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Period {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl Period {
    pub fn contains(&self, ms: i64) -> bool {
        let d = cst_day(ms);
        self.from.is_none_or(|f| d >= f) && self.to.is_none_or(|t| d <= t)
    }
}

/// Reads the alerts file at `path` (JSON Lines) for the period.
pub(crate) fn read(path: &Path, period: Period) -> anyhow::Result<AlertsRead> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut out = AlertsRead::default();
    let mut open: HashMap<String, usize> = HashMap::new();
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(_) => {
                warn(&mut out, path, line_no, "not UTF-8");
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        out.lines += 1;
        let w: Wire = match serde_json::from_str(text) {
            Ok(w) => w,
            Err(e) => {
                warn(&mut out, path, line_no, &format!("not an alert line: {e}"));
                continue;
            }
        };
        let times = (
            parse_rfc3339(&w.window_start),
            parse_rfc3339(&w.window_end),
            parse_rfc3339(&w.event_ts),
        );
        let (Some(window_start), Some(window_end), Some(event_ts)) = times else {
            warn(&mut out, path, line_no, "a time is not RFC 3339");
            continue;
        };
        match w.state.as_str() {
            "firing" => {
                if !period.contains(event_ts) {
                    out.outside += 1;
                    continue;
                }
                let detailed = out.incidents.len() < DETAIL_ROWS;
                let samples = if detailed {
                    w.samples
                        .unwrap_or_default()
                        .into_iter()
                        .map(|s| (mask_and_cut(&s.id, 40), mask_and_cut(&s.text, SAMPLE_CHARS)))
                        .collect()
                } else {
                    Vec::new()
                };
                let mut templates: Vec<(String, u32)> = w
                    .templates
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, u32::try_from(v.as_u64()?).ok()?)))
                    .collect();
                templates.sort();
                let department = w.department.unwrap_or_default();
                open.insert(w.alert_id.clone(), out.incidents.len());
                out.incidents.push(Incident {
                    alert_id: w.alert_id,
                    line: line_no,
                    business_name: w
                        .business_name
                        .filter(|n| !n.is_empty())
                        .or_else(|| w.business.clone())
                        .unwrap_or_default(),
                    business: w.business.filter(|b| !b.is_empty()),
                    place: w.region,
                    scope: match w.scope.as_deref() {
                        Some("province") => Scope::Province,
                        _ => Scope::Region,
                    },
                    // A kind this version does not know reads as a threshold.
                    kind: match w.kind.as_deref() {
                        Some("surge") => Kind::Surge,
                        Some("new_topic") => Kind::NewTopic,
                        _ => Kind::Threshold,
                    },
                    department_name: w
                        .department_name
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| department.clone()),
                    department,
                    count: w.count,
                    threshold: w.threshold,
                    window_start,
                    window_end,
                    event_ts,
                    max_count: None,
                    resolved_end: None,
                    resolved_at: None,
                    end_of_input: false,
                    templates,
                    terms: w
                        .terms
                        .unwrap_or_default()
                        .iter()
                        .take(5)
                        .map(|t| mask_and_cut(t, 40))
                        .collect(),
                    samples,
                });
            }
            "resolved" => {
                if let Some(i) = open.remove(&w.alert_id) {
                    let inc = &mut out.incidents[i];
                    inc.max_count = Some(w.count);
                    inc.resolved_end = Some(window_end);
                    inc.resolved_at = Some(event_ts);
                    inc.end_of_input = w.end_of_input;
                }
            }
            other => warn(&mut out, path, line_no, &format!("unknown state {other:?}")),
        }
    }
    if out.incidents.is_empty() && out.malformed > 0 && out.malformed == out.lines {
        anyhow::bail!(
            "{}: no line is an alert line ({} lines; is it the alerts file that hotspot replay or run wrote?)",
            path.display(),
            out.lines
        );
    }
    Ok(out)
}

fn warn(out: &mut AlertsRead, path: &Path, line: usize, why: &str) {
    out.malformed += 1;
    if out.malformed as usize <= WARN_LINES {
        eprintln!(
            "hotspot report: warning: {}:{line}: skipped: {}",
            path.display(),
            crate::cli::one_line(&mask_and_cut(why, 200))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_firing_and_resolved_and_keeps_the_period() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        let fire = |id: &str, ts: &str| {
            format!(
                r#"{{"alert_id":"{id}","state":"firing","business":"crbt","business_name":"彩铃","region":"杭州","department":"vas","department_name":"数据业务部","count":9,"threshold":8,"window_start":"{ts}","window_end":"{ts}","triggered_by":"X","event_ts":"{ts}","templates":{{"crbt.copy_fail":6,"crbt.b":2}},"samples":[{{"id":"WO1","text":"复制失败，电话 13812345678"}}]}}"#
            )
        };
        let text = [
            fire("a", "2026-03-14T10:00:00+08:00"),
            "not json".to_owned(),
            fire("b", "2026-03-15T23:59:00+08:00"),
            r#"{"alert_id":"a","state":"resolved","business":"crbt","region":"杭州","department":"vas","count":12,"threshold":8,"window_start":"2026-03-14T09:40:00+08:00","window_end":"2026-03-14T10:20:00+08:00","event_ts":"2026-03-14T10:30:00+08:00","end_of_input":false}"#.to_owned(),
            fire("c", "2026-03-16T00:00:00+08:00"),
        ]
        .join("\n");
        std::fs::write(&p, text).unwrap();
        let day = |s: &str| cst_day(parse_rfc3339(&format!("{s}T12:00:00+08:00")).unwrap());
        let r = read(
            &p,
            Period {
                from: Some(day("2026-03-14")),
                to: Some(day("2026-03-15")),
            },
        )
        .unwrap();
        assert_eq!(r.malformed, 1);
        assert_eq!(r.outside, 1);
        let ids: Vec<&str> = r.incidents.iter().map(|i| i.alert_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let a = &r.incidents[0];
        assert_eq!(a.max_count, Some(12));
        assert_eq!(a.resolved_end, parse_rfc3339("2026-03-14T10:20:00+08:00"));
        assert_eq!(a.templates[0], ("crbt.b".to_owned(), 2));
        assert_eq!(a.samples[0].1, "复制失败，电话 138****5678");
        assert!(r.incidents[1].resolved_end.is_none());
    }

    #[test]
    fn a_file_of_no_alerts_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        std::fs::write(
            &p,
            "{\"id\":\"1\",\"ts\":1,\"region\":\"杭州\",\"text\":\"x\"}\n",
        )
        .unwrap();
        let e = read(&p, Period::default()).unwrap_err().to_string();
        assert!(e.contains("no line is an alert line"), "{e}");
    }
}
