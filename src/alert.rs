//! Batch-complaint alerts: the objects written for every firing and
//! resolution (CONTRACT 3, 5.3-5.8, 5.12-5.13), their stable ids, and their
//! JSON form.
//!
//! An [`Alert`] is self-contained — business, region, department and their
//! display names are copied in — so sinks can route and render it without
//! the rules that made it (the rules may have been reloaded meanwhile).
//! Serialisation is written by hand so the field order is fixed and the
//! bytes are the same on every run.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::{format_cst, parse_rfc3339};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// What a key is (CONTRACT 8): a (business, region) or a (business,
/// province).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Region,
    Province,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Region => "region",
            Scope::Province => "province",
        }
    }
}

/// Which rule opened an alert (CONTRACT 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Threshold,
    Surge,
    NewTopic,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Threshold => "threshold",
            Kind::Surge => "surge",
            Kind::NewTopic => "new_topic",
        }
    }

    pub const ALL: [Kind; 3] = [Kind::Threshold, Kind::Surge, Kind::NewTopic];
}

/// One sample complaint of a firing alert; the text is masked and cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSample {
    pub id: String,
    pub text: String,
}

/// One alert line.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// `business:region:event-time-ms:triggering-record-id` — derived from
    /// the key and the triggering record only, so a replay or a resumed run
    /// gives the same id (5.8). Both lines of one alert share it.
    pub alert_id: String,
    pub state: AlertState,
    pub business: String,
    pub business_name: String,
    pub region: String,
    pub department: String,
    pub department_name: String,
    /// Section 8 only (`None` with rules that use no section 8 key, so that
    /// those lines stay byte for byte what sections 1-5 say): the key's
    /// scope and the rule that opened the alert.
    pub scope: Option<Scope>,
    pub kind: Option<Kind>,
    /// Surge firing lines: the distinct callers the key usually has in a
    /// window at this time (already scaled by the stream's volume), and
    /// the Poisson tail probability of the reported count under it.
    pub baseline: Option<f64>,
    pub p_value: Option<f64>,
    /// Firing: distinct callers of the reported window. Resolved: the most
    /// distinct callers of one window while the alert was open.
    pub count: u32,
    pub threshold: u32,
    pub window_start: i64,
    pub window_end: i64,
    /// Firing only: the record that made the key reach its threshold.
    pub triggered_by: Option<String>,
    pub event_ts: i64,
    /// Firing only: complaints per matching template in the window, sorted.
    pub templates: Vec<(String, u32)>,
    /// Firing only: the window's last three complaints in input order.
    pub samples: Vec<AlertSample>,
    /// New topics (both lines): the phrases the complaints share, most
    /// specific first (CONTRACT 8). A surge opened by the place test
    /// (`surge.place`): the neighbourhood its callers name. Empty, and not
    /// written, otherwise.
    pub terms: Vec<String>,
    /// Resolved only: the record whose watermark resolved it (None at the
    /// end of input).
    pub resolved_by: Option<String>,
    /// Resolved only.
    pub watermark: Option<i64>,
    pub end_of_input: bool,
    /// Resolved only, and only when no record resolved it: `idle` (the idle
    /// watermark moved on with the wall clock) or `rules_reload` (its
    /// business was removed or changed). Written only when set.
    pub reason: Option<String>,
    /// Not written: the input position of the record that caused this line,
    /// used to merge the outputs of parallel workers in input order.
    pub seq: u64,
    /// Not written: the business's index in the rules, for ordering.
    pub business_index: usize,
}

/// The stable alert id (5.8).
pub fn alert_id(business: &str, region: &str, event_ts: i64, record_id: &str) -> String {
    format!("{business}:{region}:{event_ts}:{record_id}")
}

/// The alert id of a section 8 key: a province key's id names its scope,
/// so that a province and a city of one name (北京) never share an id; a
/// region key's id is the section 5 one. One key has one open alert at a
/// time and a record opens at most one alert per key, so the kind is not
/// needed to tell ids apart.
pub fn scoped_alert_id(
    business: &str,
    scope: Scope,
    place: &str,
    event_ts: i64,
    record_id: &str,
) -> String {
    match scope {
        Scope::Region => alert_id(business, place, event_ts, record_id),
        Scope::Province => format!("{business}:province:{place}:{event_ts}:{record_id}"),
    }
}

/// The alert id of a new topic (CONTRACT 8): its key is (place, phrase),
/// so the id names the phrase (`terms[0]`) after the place, and a province
/// says so like a province key of a business does.
pub fn topic_alert_id(
    scope: Scope,
    place: &str,
    phrase: &str,
    event_ts: i64,
    record_id: &str,
) -> String {
    match scope {
        Scope::Region => format!("new_topic:{place}:{phrase}:{event_ts}:{record_id}"),
        Scope::Province => format!("new_topic:province:{place}:{phrase}:{event_ts}:{record_id}"),
    }
}

/// The order of alert lines (5.7, extended by section 8): input position,
/// firings before resolutions, alerts of businesses before new topics,
/// region keys before province keys, business in rules order, region (a
/// new topic: place), then the id (new topics of one place by phrase).
/// Without new topics the last two keys never decide: one record fires or
/// resolves at most one alert per key.
pub fn output_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    let topic = |a: &Alert| a.kind == Some(Kind::NewTopic);
    (
        a.seq,
        !a.is_firing(),
        topic(a),
        a.scope,
        a.business_index,
        &a.region,
        &a.alert_id,
    )
        .cmp(&(
            b.seq,
            !b.is_firing(),
            topic(b),
            b.scope,
            b.business_index,
            &b.region,
            &b.alert_id,
        ))
}

/// A baseline or probability as written: a fixed number of significant
/// digits, so that the bytes read well and do not depend on the last bits
/// of a float.
pub fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let mag = x.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits - 1 - mag);
    (x * scale).round() / scale
}

impl Alert {
    pub fn is_firing(&self) -> bool {
        self.state == AlertState::Firing
    }

    /// Whether this is a new-topic alert (no business: `business` is
    /// written as null).
    pub fn is_new_topic(&self) -> bool {
        self.kind == Some(Kind::NewTopic)
    }

    /// The alert as one JSON line (no trailing newline).
    pub fn to_json(&self) -> String {
        // Serialising plain strings and numbers into memory cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Appends the JSON line and a newline to `out`.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        let _ = serde_json::to_writer(&mut *out, self);
        out.push(b'\n');
    }

    /// A one-line Chinese summary for people:
    /// `杭州 彩铃 批量投诉：30分钟内 12 位客户 (阈值 8)`. Section 8 alerts
    /// say what they are: a province key is `浙江全省`, a surge is
    /// `杭州 彩铃 投诉突增：30分钟内 12 位客户 (基线 2.5, 突增线 10)`, a new
    /// topic `杭州 新话题 …`. Alerts of plain rules keep the text above.
    pub fn summary(&self) -> String {
        let minutes = (self.window_end - self.window_start) / 60_000;
        let span = if minutes > 0 && (self.window_end - self.window_start) % 60_000 == 0 {
            format!("{minutes}分钟内")
        } else {
            format!("{}秒内", (self.window_end - self.window_start) / 1000)
        };
        let place = match self.scope {
            Some(Scope::Province) => format!("{}全省", self.region),
            _ => self.region.clone(),
        };
        let what = match self.kind {
            Some(Kind::Surge) => "投诉突增",
            Some(Kind::NewTopic) => "新话题",
            _ => "批量投诉",
        };
        let phrase;
        let name = if self.is_new_topic() {
            phrase = self
                .terms
                .first()
                .map(|t| format!("「{t}」"))
                .unwrap_or_default();
            phrase.as_str()
        } else if self.business_name.is_empty() {
            self.business.as_str()
        } else {
            self.business_name.as_str()
        };
        let name_sep = if name.is_empty() { "" } else { " " };
        // What the count is measured against.
        let against = match (self.kind, self.baseline) {
            (Some(Kind::Surge), Some(b)) => format!("基线 {b}, 突增线 {}", self.threshold),
            (Some(Kind::Surge), None) => format!("突增线 {}", self.threshold),
            (Some(Kind::NewTopic), _) => format!("最少 {}", self.threshold),
            _ => format!("阈值 {}", self.threshold),
        };
        match self.state {
            AlertState::Firing => format!(
                "{place}{name_sep}{name} {what}：{span} {} 位客户 ({against})",
                self.count
            ),
            AlertState::Resolved => format!(
                "{place}{name_sep}{name} {what}已恢复：最多 {} 位客户 ({against})",
                self.count
            ),
        }
    }
}

impl Serialize for Alert {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let firing = self.is_firing();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("alert_id", &self.alert_id)?;
        m.serialize_entry("state", self.state.as_str())?;
        if self.is_new_topic() {
            m.serialize_entry("business", &None::<&str>)?;
            m.serialize_entry("business_name", &None::<&str>)?;
        } else {
            m.serialize_entry("business", &self.business)?;
            m.serialize_entry("business_name", &self.business_name)?;
        }
        m.serialize_entry("region", &self.region)?;
        if let Some(scope) = self.scope {
            m.serialize_entry("scope", scope.as_str())?;
        }
        if let Some(kind) = self.kind {
            m.serialize_entry("kind", kind.as_str())?;
        }
        m.serialize_entry("department", &self.department)?;
        m.serialize_entry("department_name", &self.department_name)?;
        m.serialize_entry("count", &self.count)?;
        m.serialize_entry("threshold", &self.threshold)?;
        if let Some(b) = self.baseline {
            m.serialize_entry("baseline", &b)?;
        }
        if let Some(p) = self.p_value {
            m.serialize_entry("p_value", &p)?;
        }
        // New topics always; a place test's surge names its neighbourhood.
        if self.is_new_topic() || !self.terms.is_empty() {
            m.serialize_entry("terms", &self.terms)?;
        }
        m.serialize_entry("window_start", &format_cst(self.window_start))?;
        m.serialize_entry("window_end", &format_cst(self.window_end))?;
        if firing {
            m.serialize_entry("triggered_by", &self.triggered_by)?;
        }
        m.serialize_entry("event_ts", &format_cst(self.event_ts))?;
        if firing {
            m.serialize_entry("templates", &TemplateCounts(&self.templates))?;
            m.serialize_entry("samples", &self.samples)?;
        } else {
            m.serialize_entry("resolved_by", &self.resolved_by)?;
            m.serialize_entry("watermark", &self.watermark.map(format_cst))?;
            m.serialize_entry("end_of_input", &self.end_of_input)?;
            if let Some(r) = &self.reason {
                m.serialize_entry("reason", r)?;
            }
        }
        m.end()
    }
}

struct TemplateCounts<'a>(&'a [(String, u32)]);

impl Serialize for TemplateCounts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The JSON shape, for reading alerts back (tests, the outbox, replays of
/// alert files).
#[derive(Deserialize)]
struct Wire {
    alert_id: String,
    state: AlertState,
    /// Null for new topics.
    business: Option<String>,
    #[serde(default)]
    business_name: Option<String>,
    region: String,
    department: String,
    #[serde(default)]
    department_name: String,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default)]
    kind: Option<Kind>,
    #[serde(default)]
    baseline: Option<f64>,
    #[serde(default)]
    p_value: Option<f64>,
    count: u32,
    threshold: u32,
    window_start: String,
    window_end: String,
    #[serde(default)]
    triggered_by: Option<String>,
    event_ts: String,
    #[serde(default)]
    templates: std::collections::BTreeMap<String, u32>,
    #[serde(default)]
    samples: Vec<AlertSample>,
    #[serde(default)]
    terms: Vec<String>,
    #[serde(default)]
    resolved_by: Option<String>,
    #[serde(default)]
    watermark: Option<String>,
    #[serde(default)]
    end_of_input: bool,
    #[serde(default)]
    reason: Option<String>,
}

impl<'de> Deserialize<'de> for Alert {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        let ts = |s: &str| {
            parse_rfc3339(s).ok_or_else(|| D::Error::custom(format!("bad timestamp {s:?}")))
        };
        Ok(Alert {
            window_start: ts(&w.window_start)?,
            window_end: ts(&w.window_end)?,
            event_ts: ts(&w.event_ts)?,
            watermark: w.watermark.as_deref().map(ts).transpose()?,
            alert_id: w.alert_id,
            state: w.state,
            business: w.business.unwrap_or_default(),
            business_name: w.business_name.unwrap_or_default(),
            region: w.region,
            department: w.department,
            department_name: w.department_name,
            scope: w.scope,
            kind: w.kind,
            baseline: w.baseline,
            p_value: w.p_value,
            count: w.count,
            threshold: w.threshold,
            triggered_by: w.triggered_by,
            templates: w.templates.into_iter().collect(),
            samples: w.samples,
            terms: w.terms,
            resolved_by: w.resolved_by,
            end_of_input: w.end_of_input,
            reason: w.reason,
            seq: 0,
            business_index: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firing() -> Alert {
        Alert {
            alert_id: alert_id("crbt", "杭州", 1_773_538_061_000, "WO1"),
            state: AlertState::Firing,
            business: "crbt".into(),
            business_name: "彩铃".into(),
            region: "杭州".into(),
            department: "vas".into(),
            department_name: "数据业务部".into(),
            scope: None,
            kind: None,
            baseline: None,
            p_value: None,
            count: 8,
            threshold: 8,
            window_start: 1_773_536_400_000,
            window_end: 1_773_538_200_000,
            triggered_by: Some("WO1".into()),
            event_ts: 1_773_538_061_000,
            templates: vec![("crbt.copy_fail".into(), 6), ("crbt.sync_fail".into(), 2)],
            samples: vec![AlertSample {
                id: "WO1".into(),
                text: "彩铃复制失败，138****5678".into(),
            }],
            terms: Vec::new(),
            resolved_by: None,
            watermark: None,
            end_of_input: false,
            reason: None,
            seq: 7,
            business_index: 0,
        }
    }

    #[test]
    fn firing_json_has_the_contract_fields_in_order() {
        let json = firing().to_json();
        assert_eq!(
            json,
            r#"{"alert_id":"crbt:杭州:1773538061000:WO1","state":"firing","business":"crbt","business_name":"彩铃","region":"杭州","department":"vas","department_name":"数据业务部","count":8,"threshold":8,"window_start":"2026-03-15T09:00:00+08:00","window_end":"2026-03-15T09:30:00+08:00","triggered_by":"WO1","event_ts":"2026-03-15T09:27:41+08:00","templates":{"crbt.copy_fail":6,"crbt.sync_fail":2},"samples":[{"id":"WO1","text":"彩铃复制失败，138****5678"}]}"#
        );
        let back: Alert = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Alert { seq: 0, ..firing() });
    }

    #[test]
    fn resolved_json_and_summary() {
        let mut a = firing();
        a.state = AlertState::Resolved;
        a.count = 12;
        a.resolved_by = None;
        a.watermark = Some(1_773_540_000_000);
        a.end_of_input = true;
        let json = a.to_json();
        assert!(
            json.contains(
                r#""resolved_by":null,"watermark":"2026-03-15T10:00:00+08:00","end_of_input":true}"#
            ),
            "{json}"
        );
        assert!(!json.contains("samples"));
        assert_eq!(
            firing().summary(),
            "杭州 彩铃 批量投诉：30分钟内 8 位客户 (阈值 8)"
        );
        assert_eq!(
            a.summary(),
            "杭州 彩铃 批量投诉已恢复：最多 12 位客户 (阈值 8)"
        );
    }

    #[test]
    fn section_8_summaries_say_province_and_surge() {
        // Section 8 rules, a plain threshold alert of a city: as before.
        let city = Alert {
            scope: Some(Scope::Region),
            kind: Some(Kind::Threshold),
            ..firing()
        };
        assert_eq!(city.summary(), firing().summary());
        let province = Alert {
            region: "浙江".into(),
            scope: Some(Scope::Province),
            kind: Some(Kind::Threshold),
            count: 41,
            threshold: 40,
            ..firing()
        };
        assert_eq!(
            province.summary(),
            "浙江全省 彩铃 批量投诉：30分钟内 41 位客户 (阈值 40)"
        );
        let surge = Alert {
            scope: Some(Scope::Region),
            kind: Some(Kind::Surge),
            baseline: Some(2.35),
            p_value: Some(1.2e-7),
            count: 12,
            threshold: 10,
            ..firing()
        };
        assert_eq!(
            surge.summary(),
            "杭州 彩铃 投诉突增：30分钟内 12 位客户 (基线 2.35, 突增线 10)"
        );
        let resolved = Alert {
            state: AlertState::Resolved,
            baseline: None,
            p_value: None,
            ..surge.clone()
        };
        assert_eq!(
            resolved.summary(),
            "杭州 彩铃 投诉突增已恢复：最多 12 位客户 (突增线 10)"
        );
        let province_surge = Alert {
            region: "浙江".into(),
            scope: Some(Scope::Province),
            ..surge
        };
        assert!(
            province_surge
                .summary()
                .starts_with("浙江全省 彩铃 投诉突增：30分钟内 12 位客户"),
            "{}",
            province_surge.summary()
        );
    }
}
