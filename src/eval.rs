//! Detection quality: a field scenario's ground truth (`hotspot gen
//! --scenario field --truth T`) against the alerts a detector wrote for its
//! traffic (`hotspot eval --truth T --alerts A`).
//!
//! Definitions:
//!
//! * Only `state: "firing"` lines count. A line without `scope` has scope
//!   `region`; without `kind`, kind `threshold`.
//! * A firing line **matches** an incident when its `business` is the
//!   incident's, its place covers the incident — a region alert for one of
//!   the incident's `regions`, or a province alert (`region` holds the
//!   province) for the incident's province or the province of one of its
//!   cities — and its `event_ts` lies within [start, end + 40 min] of the
//!   incident (first and last complaint).
//! * A `new_topic` incident (complaints that no template names, CONTRACT
//!   8) is matched only by `new_topic` firing lines (`business` null) that
//!   cover its place and time as above **and** whose `terms` contain the
//!   incident's **core**: the truth's `core`, the part of its key phrase
//!   that every complaint of the incident contains verbatim (the new
//!   product's name, `冰激凌新套餐`). "Contain" is exact: after both are
//!   normalised like complaint texts (NFKC, ASCII lower case) and stripped
//!   of whitespace, one of the terms has the core as a substring
//!   (`新办的冰激凌新套餐` does; `冰激凌` alone does not). Other
//!   incidents are never matched by `new_topic` lines.
//! * An incident is **detected** when a firing line matches it. **Time to
//!   detect** (TTD) = the earliest matching `event_ts` − the incident's
//!   start, in minutes. **Fragmentation** (alerts per incident) = matching
//!   firing lines per detected incident. Recall = detected / incidents.
//!   Median: the middle value (the mean of the two middle ones for an even
//!   count); p90: the nearest rank, the ⌈0.9 n⌉-th smallest.
//! * A firing line matching no incident is a **false alert**. False alerts
//!   are counted during the learning period (before `learning_end`), on
//!   the surge day, and on the other days after learning (also per day:
//!   divided by the number of those days). Each is attributed to the trap
//!   it hit, if any: a trap is hit like an incident is matched (the surge
//!   day trap covers every business and city for its whole day). A false
//!   `new_topic` line that hits no trap is attributed to the incident whose
//!   place and time it covers, if any: `new_topic_terms` when that is a
//!   new topic (its terms lack the core), `known_topic` when it is an
//!   incident of a business (an outage of a known topic). False `new_topic`
//!   lines are also counted on their own, with the same periods.
//!
//! The report is deterministic: categories in a fixed order (`big_city`,
//! `small_city`, `province_wide`, `slow_rise`, `night`, `new_topic`, then
//! any other in
//! order of appearance), incidents and false alerts in file order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::normalize::normalize;
use crate::time::parse_rfc3339;

/// How long after an incident's last complaint an alert still counts.
pub const GRACE_MS: i64 = 40 * 60_000;

/// The categories in report order.
pub const CATEGORIES: [&str; 6] = [
    "big_city",
    "small_city",
    "province_wide",
    "slow_rise",
    "night",
    "new_topic",
];

/// The parts of a field truth that evaluation reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Truth {
    #[serde(default)]
    pub scenario: Option<String>,
    pub learning_end: String,
    #[serde(default)]
    pub surge_day: Option<Span>,
    pub days: Vec<String>,
    pub regions: Vec<Region>,
    pub incidents: Vec<Item>,
    #[serde(default)]
    pub traps: Vec<Item>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Span {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Region {
    pub id: String,
    pub province: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub id: String,
    pub category: String,
    #[serde(default)]
    pub business: Option<String>,
    pub scope: String,
    pub location: String,
    #[serde(default)]
    pub regions: Vec<String>,
    pub start: String,
    pub end: String,
    /// `new_topic`: the core of its key phrase.
    #[serde(default)]
    pub core: Option<String>,
}

/// One firing line.
#[derive(Debug, Clone)]
pub struct Alert {
    /// 1-based line number in the alerts file.
    pub line: usize,
    pub business: Option<String>,
    pub scope: String,
    pub kind: String,
    pub region: String,
    pub event_ts: i64,
    pub event_ts_text: String,
    /// `terms` of a `new_topic` line (empty when absent).
    pub terms: Vec<String>,
}

/// Reads the firing lines of an alerts file (JSON Lines).
pub fn parse_alerts(text: &str) -> Result<Vec<Alert>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", i + 1))?;
        if v.get("state").and_then(Value::as_str) != Some("firing") {
            continue;
        }
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let ts_text = s("event_ts").ok_or_else(|| format!("line {}: no event_ts", i + 1))?;
        let event_ts = parse_rfc3339(&ts_text)
            .ok_or_else(|| format!("line {}: bad event_ts {ts_text:?}", i + 1))?;
        out.push(Alert {
            line: i + 1,
            business: s("business"),
            scope: s("scope").unwrap_or_else(|| "region".into()),
            kind: s("kind").unwrap_or_else(|| "threshold".into()),
            region: s("region").ok_or_else(|| format!("line {}: no region", i + 1))?,
            event_ts,
            event_ts_text: ts_text,
            terms: v
                .get("terms")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

/// One category's (or all incidents') figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub category: String,
    pub incidents: u64,
    pub detected: u64,
    pub recall_pct: f64,
    pub ttd_median_min: Option<f64>,
    pub ttd_p90_min: Option<f64>,
    /// Matching firing lines per detected incident.
    pub alerts_per_incident: Option<f64>,
}

/// One incident's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub id: String,
    pub category: String,
    pub detected: bool,
    pub ttd_min: Option<f64>,
    pub alerts: u64,
    /// The kind of the first matching alert.
    pub first_kind: Option<String>,
}

/// One false alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FalseAlert {
    pub line: usize,
    pub business: Option<String>,
    pub scope: String,
    pub kind: String,
    pub region: String,
    pub event_ts: String,
    /// `learning`, `surge_day` or `after_learning`.
    pub period: String,
    /// The trap it hit (id and category), if any.
    pub trap: Option<String>,
    /// Its `terms` (`new_topic` lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
}

/// False `new_topic` lines, by period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewTopicFalse {
    pub learning: u64,
    pub surge_day: u64,
    pub after_learning: u64,
    /// `after_learning` per ordinary day after learning.
    pub per_day: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FalseAlerts {
    pub learning: u64,
    pub surge_day: u64,
    /// After learning, the surge day excluded.
    pub after_learning: u64,
    /// The days after learning, the surge day excluded.
    pub ordinary_days: u64,
    pub per_day: f64,
    /// By alert kind (`threshold`, `surge`, `new_topic`), all periods.
    pub by_kind: BTreeMap<String, u64>,
    /// By the category of the trap hit (`none` when none), all periods.
    pub by_trap: BTreeMap<String, u64>,
    /// The `new_topic` lines among them.
    pub new_topic: NewTopicFalse,
    pub list: Vec<FalseAlert>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub alerts: String,
    pub firing: u64,
    pub categories: Vec<Row>,
    pub overall: Row,
    pub false_alerts: FalseAlerts,
    pub incidents: Vec<Outcome>,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The median and p90 of `v` (sorted in place).
pub fn median_p90(v: &mut [f64]) -> (Option<f64>, Option<f64>) {
    if v.is_empty() {
        return (None, None);
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
    (Some(round1(median)), Some(round1(v[rank - 1])))
}

fn ms(s: &str, what: &str) -> Result<i64, String> {
    parse_rfc3339(s).ok_or_else(|| format!("truth: bad time {s:?} in {what}"))
}

/// Whether a term of `terms` contains `core` (both normalised, without
/// whitespace).
pub fn terms_contain(terms: &[String], core: &str) -> bool {
    let squeeze = |s: &str| -> String {
        normalize(s)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()
    };
    let core = squeeze(core);
    !core.is_empty() && terms.iter().any(|t| squeeze(t).contains(&core))
}

/// Whether `a` falls on `item`: business (or, for a new topic, kind and
/// terms), place and time.
fn hits(item: &Item, span: (i64, i64), a: &Alert, province_of: &BTreeMap<&str, &str>) -> bool {
    if item.category == "new_topic" {
        let core = item.core.as_deref().unwrap_or_default();
        if a.kind != "new_topic" || !terms_contain(&a.terms, core) {
            return false;
        }
    } else if let Some(b) = &item.business {
        if a.business.as_deref() != Some(b.as_str()) {
            return false;
        }
    }
    covers(item, span, a, province_of)
}

/// Whether `a` covers `item`'s place and time.
fn covers(item: &Item, span: (i64, i64), a: &Alert, province_of: &BTreeMap<&str, &str>) -> bool {
    if !(span.0..=span.1 + GRACE_MS).contains(&a.event_ts) {
        return false;
    }
    if item.scope == "all" {
        return true;
    }
    let cities: Vec<&str> = if item.regions.is_empty() && item.scope == "region" {
        vec![item.location.as_str()]
    } else {
        item.regions.iter().map(String::as_str).collect()
    };
    match a.scope.as_str() {
        "region" => cities.contains(&a.region.as_str()),
        "province" => {
            (item.scope == "province" && item.location == a.region)
                || cities
                    .iter()
                    .any(|c| province_of.get(c).is_some_and(|p| *p == a.region))
        }
        _ => false,
    }
}

/// Evaluates `alerts` (named `name`) against `truth`.
pub fn evaluate(truth: &Truth, alerts: &[Alert], name: &str) -> Result<Report, String> {
    let province_of: BTreeMap<&str, &str> = truth
        .regions
        .iter()
        .map(|r| (r.id.as_str(), r.province.as_str()))
        .collect();
    let spans = |items: &[Item]| -> Result<Vec<(i64, i64)>, String> {
        items
            .iter()
            .map(|i| Ok((ms(&i.start, &i.id)?, ms(&i.end, &i.id)?)))
            .collect()
    };
    let inc_spans = spans(&truth.incidents)?;
    let trap_spans = spans(&truth.traps)?;
    let learning_end = ms(&truth.learning_end, "learning_end")?;
    let surge = match &truth.surge_day {
        Some(s) => Some((ms(&s.start, "surge_day")?, ms(&s.end, "surge_day")?)),
        None => None,
    };
    let in_surge = |t: i64| surge.is_some_and(|(a, b)| (a..=b).contains(&t));

    let mut first: Vec<Option<(i64, String)>> = vec![None; truth.incidents.len()];
    let mut count = vec![0u64; truth.incidents.len()];
    let mut fa = FalseAlerts {
        learning: 0,
        surge_day: 0,
        after_learning: 0,
        ordinary_days: 0,
        per_day: 0.0,
        by_kind: BTreeMap::new(),
        by_trap: BTreeMap::new(),
        new_topic: NewTopicFalse::default(),
        list: Vec::new(),
    };
    for a in alerts {
        let mut matched = false;
        for (i, item) in truth.incidents.iter().enumerate() {
            if hits(item, inc_spans[i], a, &province_of) {
                matched = true;
                count[i] += 1;
                if first[i].as_ref().is_none_or(|(t, _)| a.event_ts < *t) {
                    first[i] = Some((a.event_ts, a.kind.clone()));
                }
            }
        }
        if matched {
            continue;
        }
        let new_topic = a.kind == "new_topic";
        let mut trap = truth
            .traps
            .iter()
            .zip(&trap_spans)
            .find(|(t, s)| hits(t, **s, a, &province_of))
            .map(|(t, _)| (format!("{} {}", t.id, t.category), t.category.clone()));
        if trap.is_none() && new_topic {
            // Beside an incident: a new topic whose terms miss the core, or
            // the outage of a known topic.
            trap = truth
                .incidents
                .iter()
                .zip(&inc_spans)
                .find(|(t, s)| covers(t, **s, a, &province_of))
                .map(|(t, _)| {
                    let why = if t.category == "new_topic" {
                        "new_topic_terms"
                    } else {
                        "known_topic"
                    };
                    (format!("{} {} ({why})", t.id, t.category), why.to_owned())
                });
        }
        let period = if a.event_ts < learning_end {
            fa.learning += 1;
            fa.new_topic.learning += u64::from(new_topic);
            "learning"
        } else if in_surge(a.event_ts) {
            fa.surge_day += 1;
            fa.new_topic.surge_day += u64::from(new_topic);
            "surge_day"
        } else {
            fa.after_learning += 1;
            fa.new_topic.after_learning += u64::from(new_topic);
            "after_learning"
        };
        *fa.by_kind.entry(a.kind.clone()).or_default() += 1;
        *fa.by_trap
            .entry(
                trap.as_ref()
                    .map_or_else(|| "none".to_owned(), |(_, c)| c.clone()),
            )
            .or_default() += 1;
        fa.list.push(FalseAlert {
            line: a.line,
            business: a.business.clone(),
            scope: a.scope.clone(),
            kind: a.kind.clone(),
            region: a.region.clone(),
            event_ts: a.event_ts_text.clone(),
            period: period.into(),
            trap: trap.map(|(label, _)| label),
            terms: a.terms.clone(),
        });
    }
    for d in &truth.days {
        let midnight = ms(&format!("{d}T00:00:00+08:00"), "days")?;
        if midnight >= learning_end && !in_surge(midnight) {
            fa.ordinary_days += 1;
        }
    }
    let per_day = |n: u64| {
        if fa.ordinary_days > 0 {
            round2(n as f64 / fa.ordinary_days as f64)
        } else {
            0.0
        }
    };
    fa.per_day = per_day(fa.after_learning);
    fa.new_topic.per_day = per_day(fa.new_topic.after_learning);

    let outcomes: Vec<Outcome> = truth
        .incidents
        .iter()
        .enumerate()
        .map(|(i, item)| Outcome {
            id: item.id.clone(),
            category: item.category.clone(),
            detected: first[i].is_some(),
            ttd_min: first[i]
                .as_ref()
                .map(|(t, _)| round1((t - inc_spans[i].0) as f64 / 60_000.0)),
            alerts: count[i],
            first_kind: first[i].as_ref().map(|(_, k)| k.clone()),
        })
        .collect();
    let mut order: Vec<String> = CATEGORIES.iter().map(|c| (*c).to_owned()).collect();
    for i in &truth.incidents {
        if !order.contains(&i.category) {
            order.push(i.category.clone());
        }
    }
    let row = |category: &str, of: &[&Outcome]| {
        let detected: Vec<&&Outcome> = of.iter().filter(|o| o.detected).collect();
        let mut ttd: Vec<f64> = detected.iter().filter_map(|o| o.ttd_min).collect();
        let (med, p90) = median_p90(&mut ttd);
        let alerts: u64 = detected.iter().map(|o| o.alerts).sum();
        Row {
            category: category.into(),
            incidents: of.len() as u64,
            detected: detected.len() as u64,
            recall_pct: if of.is_empty() {
                0.0
            } else {
                round1(detected.len() as f64 * 100.0 / of.len() as f64)
            },
            ttd_median_min: med,
            ttd_p90_min: p90,
            alerts_per_incident: (!detected.is_empty())
                .then(|| round2(alerts as f64 / detected.len() as f64)),
        }
    };
    let categories: Vec<Row> = order
        .iter()
        .map(|c| {
            let of: Vec<&Outcome> = outcomes.iter().filter(|o| &o.category == c).collect();
            row(c, &of)
        })
        .filter(|r| r.incidents > 0)
        .collect();
    let all: Vec<&Outcome> = outcomes.iter().collect();
    let overall = row("overall", &all);
    Ok(Report {
        alerts: name.into(),
        firing: alerts.len() as u64,
        categories,
        overall,
        false_alerts: fa,
        incidents: outcomes,
    })
}

/// Parses a truth file; it must be a field truth.
pub fn parse_truth(text: &str) -> Result<Truth, String> {
    let t: Truth = serde_json::from_str(text)
        .map_err(|e| format!("not a field truth (hotspot gen --scenario field --truth): {e}"))?;
    if t.scenario.as_deref().is_some_and(|s| s != "field") {
        return Err(format!(
            "scenario {:?}: eval needs a field truth",
            t.scenario.as_deref().unwrap_or("")
        ));
    }
    Ok(t)
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

/// The reports as a table, one column group per alerts file.
pub fn table(reports: &[Report]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if reports.is_empty() {
        return s;
    }
    if reports.len() > 1 {
        for (i, r) in reports.iter().enumerate() {
            let _ = writeln!(s, "[{}] {}", i + 1, r.alerts);
        }
    }
    let _ = write!(s, "{:<14} {:>5}", "category", "inc");
    for (i, _) in reports.iter().enumerate() {
        let tag = if reports.len() > 1 {
            format!("[{}]", i + 1)
        } else {
            String::new()
        };
        let _ = write!(
            s,
            " | {:>3}det {:>6} {:>7} {:>7} {:>6}",
            tag, "recall", "ttd_med", "ttd_p90", "al/inc"
        );
    }
    s.push('\n');
    let rows = |r: &Report| -> Vec<Row> {
        let mut v = r.categories.clone();
        v.push(r.overall.clone());
        v
    };
    let all: Vec<Vec<Row>> = reports.iter().map(rows).collect();
    for (k, row) in all[0].iter().enumerate() {
        let _ = write!(s, "{:<14} {:>5}", row.category, row.incidents);
        for rs in &all {
            let r = &rs[k];
            let _ = write!(
                s,
                " | {:>6} {:>5.1}% {:>7} {:>7} {:>6}",
                r.detected,
                r.recall_pct,
                opt(r.ttd_median_min),
                opt(r.ttd_p90_min),
                r.alerts_per_incident
                    .map_or_else(|| "-".into(), |v| format!("{v:.2}"))
            );
        }
        s.push('\n');
    }
    let line = |s: &mut String, label: &str, f: &dyn Fn(&FalseAlerts) -> String| {
        let _ = write!(s, "{label:<20}");
        for r in reports {
            let _ = write!(s, " | {:>34}", f(&r.false_alerts));
        }
        s.push('\n');
    };
    s.push_str("false alerts (firing lines matching no incident; TTD in minutes)\n");
    line(&mut s, "after learning", &|f| {
        format!(
            "{} in {} days = {:.2}/day",
            f.after_learning, f.ordinary_days, f.per_day
        )
    });
    line(&mut s, "surge day", &|f| f.surge_day.to_string());
    line(&mut s, "learning period", &|f| f.learning.to_string());
    line(&mut s, "new_topic per day", &|f| {
        format!(
            "{} in {} days = {:.2}/day",
            f.new_topic.after_learning, f.ordinary_days, f.new_topic.per_day
        )
    });
    line(&mut s, "new_topic surge, lrn", &|f| {
        format!("{}, {}", f.new_topic.surge_day, f.new_topic.learning)
    });
    line(&mut s, "by kind", &|f| join(&f.by_kind));
    line(&mut s, "by trap hit", &|f| join(&f.by_trap));
    // Each false alert, with the trap it hit (at most 50 a file).
    for (i, r) in reports.iter().enumerate() {
        let tag = if reports.len() > 1 {
            format!("[{}] ", i + 1)
        } else {
            String::new()
        };
        for f in r.false_alerts.list.iter().take(50) {
            let terms = if f.terms.is_empty() {
                String::new()
            } else {
                format!(" terms: {}", f.terms.join(" / "))
            };
            let _ = writeln!(
                s,
                "  {tag}{} {} {} {} ({}, {}) trap: {}{terms}",
                f.event_ts,
                f.business.as_deref().unwrap_or("-"),
                f.region,
                f.scope,
                f.kind,
                f.period,
                f.trap.as_deref().unwrap_or("none")
            );
        }
        if r.false_alerts.list.len() > 50 {
            let _ = writeln!(
                s,
                "  {tag}... {} more (--json lists them all)",
                r.false_alerts.list.len() - 50
            );
        }
    }
    s
}

fn join(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "-".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> Truth {
        parse_truth(
            r#"{"scenario":"field","learning_end":"2026-03-11T00:00:00+08:00",
            "surge_day":{"start":"2026-03-15T00:00:00+08:00","end":"2026-03-15T23:59:59+08:00"},
            "days":["2026-03-10","2026-03-11","2026-03-12","2026-03-15"],
            "regions":[{"id":"杭州","province":"浙江"},{"id":"衢州","province":"浙江"},{"id":"银川","province":"宁夏"}],
            "incidents":[
             {"id":"I01","category":"big_city","business":"signal","scope":"region","location":"杭州","regions":["杭州"],"start":"2026-03-11T10:00:00+08:00","end":"2026-03-11T10:30:00+08:00"},
             {"id":"I02","category":"small_city","business":"signal","scope":"region","location":"衢州","regions":["衢州"],"start":"2026-03-11T12:00:00+08:00","end":"2026-03-11T12:40:00+08:00"},
             {"id":"I03","category":"province_wide","business":"crbt","scope":"province","location":"浙江","regions":["杭州","衢州"],"start":"2026-03-12T09:00:00+08:00","end":"2026-03-12T09:30:00+08:00"}],
            "traps":[{"id":"T01","category":"surge_day","scope":"all","location":"all","regions":[],"start":"2026-03-15T00:00:00+08:00","end":"2026-03-15T23:59:59+08:00"},
             {"id":"T02","category":"test_orders","business":"boss","scope":"region","location":"杭州","regions":["杭州"],"start":"2026-03-12T14:00:00+08:00","end":"2026-03-12T14:20:00+08:00"}]}"#,
        )
        .unwrap()
    }

    fn alerts(lines: &[&str]) -> Vec<Alert> {
        parse_alerts(&lines.join("\n")).unwrap()
    }

    #[test]
    fn detected_missed_fragmented_and_false() {
        let t = truth();
        let a = alerts(&[
            // I01 detected 6 min after start, twice (fragmented).
            r#"{"state":"firing","business":"signal","region":"杭州","event_ts":"2026-03-11T10:06:00+08:00"}"#,
            r#"{"state":"resolved","business":"signal","region":"杭州","event_ts":"2026-03-11T11:06:00+08:00"}"#,
            r#"{"state":"firing","business":"signal","region":"杭州","event_ts":"2026-03-11T11:05:00+08:00"}"#,
            // After end + 40 min: false.
            r#"{"state":"firing","business":"signal","region":"杭州","event_ts":"2026-03-11T11:11:00+08:00"}"#,
            // I03 by a province alert 12 min in, and a region alert of one of its cities.
            r#"{"state":"firing","business":"crbt","scope":"province","kind":"surge","region":"浙江","event_ts":"2026-03-12T09:12:00+08:00"}"#,
            r#"{"state":"firing","business":"crbt","region":"衢州","event_ts":"2026-03-12T09:20:00+08:00"}"#,
            // Wrong province: false.
            r#"{"state":"firing","business":"crbt","scope":"province","region":"宁夏","event_ts":"2026-03-12T09:12:00+08:00"}"#,
            // Learning, surge day, a trap.
            r#"{"state":"firing","business":"data","region":"杭州","event_ts":"2026-03-10T09:00:00+08:00"}"#,
            r#"{"state":"firing","business":"data","region":"杭州","event_ts":"2026-03-15T09:00:00+08:00"}"#,
            r#"{"state":"firing","business":"boss","region":"杭州","event_ts":"2026-03-12T14:10:00+08:00"}"#,
        ]);
        let r = evaluate(&t, &a, "a.jsonl").unwrap();
        assert_eq!(r.firing, 9);
        let big = &r.categories[0];
        assert_eq!((big.incidents, big.detected), (1, 1));
        assert_eq!(big.ttd_median_min, Some(6.0));
        assert_eq!(big.alerts_per_incident, Some(2.0));
        let small = &r.categories[1];
        assert_eq!((small.detected, small.recall_pct), (0, 0.0));
        assert_eq!(small.ttd_median_min, None);
        let prov = &r.categories[2];
        assert_eq!(prov.detected, 1);
        assert_eq!(prov.ttd_median_min, Some(12.0));
        assert_eq!(prov.alerts_per_incident, Some(2.0));
        assert_eq!(r.incidents[2].first_kind.as_deref(), Some("surge"));
        assert_eq!(r.overall.detected, 2);
        assert!((r.overall.recall_pct - 66.7).abs() < 1e-9);
        let f = &r.false_alerts;
        assert_eq!((f.learning, f.surge_day, f.after_learning), (1, 1, 3));
        assert_eq!(f.ordinary_days, 2);
        assert_eq!(f.per_day, 1.5);
        assert_eq!(f.by_trap.get("surge_day"), Some(&1));
        assert_eq!(f.by_trap.get("test_orders"), Some(&1));
        assert_eq!(f.by_trap.get("none"), Some(&3));
        assert_eq!(f.by_kind.get("threshold"), Some(&5));
        let table = table(&[r.clone(), r]);
        assert!(table.contains("big_city"), "{table}");
        assert!(table.contains("[2]"), "{table}");
    }

    #[test]
    fn a_province_alert_covers_a_city_incident_of_its_province() {
        let t = truth();
        let a = alerts(&[
            r#"{"state":"firing","business":"signal","scope":"province","region":"浙江","event_ts":"2026-03-11T12:30:00+08:00"}"#,
        ]);
        let r = evaluate(&t, &a, "a").unwrap();
        assert_eq!(r.categories[1].detected, 1);
        assert_eq!(r.incidents[1].ttd_min, Some(30.0));
        assert!(r.false_alerts.list.is_empty());
    }

    /// The truth above with two new topics: one in 杭州, one over 浙江.
    fn truth_with_new_topics() -> Truth {
        let mut t = truth();
        let more: Vec<Item> = serde_json::from_str(
            r#"[{"id":"I04","category":"new_topic","scope":"region","location":"杭州","regions":["杭州"],"start":"2026-03-12T10:00:00+08:00","end":"2026-03-12T10:40:00+08:00","key_phrase":"冰激凌新套餐 月费重复扣取","core":"冰激凌新套餐"},
                {"id":"I05","category":"new_topic","scope":"province","location":"浙江","regions":["杭州","衢州"],"start":"2026-03-12T15:00:00+08:00","end":"2026-03-12T15:50:00+08:00","core":"fttr全屋组网"}]"#,
        )
        .unwrap();
        t.incidents.extend(more);
        t
    }

    #[test]
    fn new_topics_are_scored_in_their_own_category() {
        let t = truth_with_new_topics();
        let nt = |region: &str, scope: &str, ts: &str, terms: &str| {
            format!(
                r#"{{"state":"firing","business":null,"kind":"new_topic","scope":"{scope}","region":"{region}","event_ts":"2026-03-{ts}+08:00","terms":{terms}}}"#
            )
        };
        let lines = [
            // I04: 9 minutes in, then a second line (fragmented).
            nt("杭州", "region", "12T10:09:00", r#"["新办的冰激凌新套餐","月费"]"#),
            nt("杭州", "region", "12T10:20:00", r#"["冰激凌新套餐"]"#),
            // Same place and time, terms without the core: false.
            nt("杭州", "region", "12T10:12:00", r#"["冰激凌","月费"]"#),
            // I05 by a province line whose term is written full-width with
            // a space: 14 minutes in.
            nt("浙江", "province", "12T15:14:00", r#"["ＦＴＴＲ 全屋组网从设备"]"#),
            // A new topic beside a known-topic outage (I01): false.
            nt("杭州", "region", "11T10:10:00", r#"["没信号"]"#),
            // During learning, on the surge day, and anywhere else: false.
            nt("杭州", "region", "10T09:00:00", r#"["营业厅排队"]"#),
            nt("杭州", "region", "15T09:00:00", r#"["营业厅排队"]"#),
            nt("银川", "region", "12T12:00:00", r#"["营业厅排队"]"#),
            // A threshold line never matches a new topic.
            r#"{"state":"firing","business":"signal","region":"杭州","event_ts":"2026-03-12T10:05:00+08:00"}"#.to_owned(),
        ];
        let a = alerts(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(a[0].terms, ["新办的冰激凌新套餐", "月费"]);
        let r = evaluate(&t, &a, "a").unwrap();
        let row = r
            .categories
            .iter()
            .find(|c| c.category == "new_topic")
            .unwrap();
        assert_eq!((row.incidents, row.detected), (2, 2));
        assert_eq!(row.ttd_median_min, Some(11.5));
        assert_eq!(row.ttd_p90_min, Some(14.0));
        assert_eq!(row.alerts_per_incident, Some(1.5));
        assert_eq!(r.categories.last().unwrap().category, "new_topic");
        assert_eq!(r.overall.incidents, 5);
        for o in &r.incidents[3..] {
            assert_eq!(o.first_kind.as_deref(), Some("new_topic"));
        }
        let f = &r.false_alerts;
        assert_eq!(
            (
                f.new_topic.learning,
                f.new_topic.surge_day,
                f.new_topic.after_learning
            ),
            (1, 1, 3)
        );
        assert_eq!(f.new_topic.per_day, 1.5);
        assert_eq!((f.learning, f.surge_day, f.after_learning), (1, 1, 4));
        assert_eq!(f.by_kind.get("new_topic"), Some(&5));
        assert_eq!(f.by_trap.get("new_topic_terms"), Some(&1));
        assert_eq!(f.by_trap.get("known_topic"), Some(&1));
        assert_eq!(f.by_trap.get("surge_day"), Some(&1));
        let miss = f
            .list
            .iter()
            .find(|x| x.terms == ["冰激凌", "月费"])
            .unwrap();
        assert_eq!(
            miss.trap.as_deref(),
            Some("I04 new_topic (new_topic_terms)")
        );
        let table = table(&[r]);
        assert!(
            table.contains("new_topic          2 |      2 100.0%    11.5    14.0   1.50"),
            "{table}"
        );
        assert!(
            table.contains("new_topic per day    |             3 in 2 days = 1.50/day"),
            "{table}"
        );
        assert!(table.contains("terms: 冰激凌 / 月费"), "{table}");
    }

    #[test]
    fn terms_contain_the_core_exactly() {
        let t = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(terms_contain(&t(&["新办的冰激凌新套餐"]), "冰激凌新套餐"));
        assert!(terms_contain(&t(&["月费", "冰激凌新套餐"]), "冰激凌新套餐"));
        assert!(!terms_contain(&t(&["冰激凌", "新套餐"]), "冰激凌新套餐"));
        assert!(terms_contain(&t(&["ＦＴＴＲ 全屋组网"]), "fttr全屋组网"));
        assert!(terms_contain(&t(&["5G消息发不出"]), "5g消息"));
        assert!(!terms_contain(&t(&[]), "5g消息"));
        assert!(!terms_contain(&t(&["x"]), ""));
    }

    #[test]
    fn percentiles() {
        assert_eq!(median_p90(&mut []), (None, None));
        assert_eq!(median_p90(&mut [3.0]), (Some(3.0), Some(3.0)));
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(median_p90(&mut v), (Some(5.5), Some(9.0)));
    }
}
