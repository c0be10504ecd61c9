//! The report's numbers: the incidents (and, with `--input`, their onsets
//! and templates) summed into what each chart and table shows. Pure data,
//! in a fixed order, so that the page is the same bytes for the same
//! inputs.

use std::collections::{BTreeMap, HashMap};

use crate::alert::{Kind, Scope};
use crate::rules::Rules;
use crate::time::civil_from_days;

use super::alerts::{CST_MS, Incident, cst_day};
use super::onset::InputFacts;

/// Rows and columns of the heat map beyond these are summed into 其他.
pub(crate) const HEAT_MAX_ROWS: usize = 30;
pub(crate) const HEAT_MAX_COLS: usize = 30;
/// Bars of the top-templates chart.
pub(crate) const TOP_TEMPLATES: usize = 15;
/// Departments with a colour of their own in the daily chart.
pub(crate) const MAX_DEPARTMENTS: usize = 9;
/// The longest period the daily chart shows (a year and a bit).
pub(crate) const MAX_DAYS: i64 = 400;

/// How the time to detect was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TtdMethod {
    /// From the onset found in `--input` (see `onset`).
    Onset,
    /// No `--input`: from the start of the firing window.
    WindowStart,
}

/// One incident as the table shows it.
#[derive(Debug, Clone)]
pub(crate) struct Row<'a> {
    pub inc: &'a Incident,
    pub ttd_min: f64,
    /// True when the time to detect came from the input's onset.
    pub from_onset: bool,
    pub onset: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Figures<'a> {
    /// The period's first and last day (day numbers), inclusive; when no
    /// period was given and no alert was read, one undated day.
    pub first_day: i64,
    pub last_day: i64,
    pub dated: bool,
    /// Departments (label), busiest first; the last may be 其他.
    pub departments: Vec<String>,
    /// `daily[department][day - first_day]`.
    pub daily: Vec<Vec<u32>>,
    /// Heat map: row labels (businesses), column labels (places), counts
    /// `heat[row][col]`. Rows and columns busiest first.
    pub heat_rows: Vec<String>,
    pub heat_cols: Vec<String>,
    pub heat: Vec<Vec<u32>>,
    /// Time to detect of every incident, minutes, in incident order.
    pub ttd: Vec<f64>,
    pub ttd_method: TtdMethod,
    /// Incidents measured from the window start although `--input` was
    /// given (new topics, unknown businesses, no complaint of the key).
    pub ttd_fallbacks: usize,
    /// Firing lines per hour of the day (`+08:00`), per kind present.
    pub kinds: Vec<Kind>,
    pub hours: Vec<[u32; 24]>,
    /// Top templates: label, id, complaints.
    pub templates: Vec<(String, String, u64)>,
    /// True when the template counts are the input's matched complaints,
    /// false when they are the firing lines' window counts.
    pub templates_from_input: bool,
    pub rows: Vec<Row<'a>>,
}

/// `YYYY-MM-DD` of a day number.
pub(crate) fn date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

impl Figures<'_> {
    /// The period as shown: `2026-03-09 至 2026-03-15`, or `—`.
    pub fn period_text(&self) -> String {
        if self.dated {
            format!("{} 至 {}", date(self.first_day), date(self.last_day))
        } else {
            "—".to_owned()
        }
    }
}

/// `MM-DD HH:MM` of a time (`+08:00`).
pub(crate) fn short_time(ms: i64) -> String {
    let (_, m, d) = civil_from_days(cst_day(ms));
    let in_day = (ms + CST_MS).rem_euclid(86_400_000) / 60_000;
    format!("{m:02}-{d:02} {:02}:{:02}", in_day / 60, in_day % 60)
}

/// The hour of the day of `ms` in `+08:00`.
pub(crate) fn hour(ms: i64) -> usize {
    ((ms + CST_MS).rem_euclid(86_400_000) / 3_600_000) as usize
}

/// The place as shown: a province alert is `浙江(全省)`.
pub(crate) fn place_label(inc: &Incident) -> String {
    match inc.scope {
        Scope::Province => format!("{}(全省)", inc.place),
        Scope::Region => inc.place.clone(),
    }
}

/// The business as shown: its name, or the new topic's first phrase.
pub(crate) fn business_label(inc: &Incident) -> String {
    if inc.kind == Kind::NewTopic || inc.business.is_none() {
        match inc.terms.first() {
            Some(t) => format!("新话题:{t}"),
            None => "新话题".to_owned(),
        }
    } else if inc.business_name.is_empty() {
        inc.business.clone().unwrap_or_default()
    } else {
        inc.business_name.clone()
    }
}

pub(crate) fn kind_label(k: Kind) -> &'static str {
    match k {
        Kind::Threshold => "阈值",
        Kind::Surge => "突增",
        Kind::NewTopic => "新话题",
    }
}

/// Labels by count, busiest first (ties by label), the tail beyond `max`
/// folded into 其他: returns the labels and each input label's index.
fn rank(counts: &HashMap<String, u64>, max: usize) -> (Vec<String>, HashMap<String, usize>) {
    let mut v: Vec<(&String, u64)> = counts.iter().map(|(k, &n)| (k, n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut labels = Vec::new();
    let mut index = HashMap::new();
    let fold = v.len() > max;
    for (i, (k, _)) in v.iter().enumerate() {
        if fold && i >= max - 1 {
            index.insert((*k).clone(), max - 1);
        } else {
            index.insert((*k).clone(), i);
            labels.push((*k).clone());
        }
    }
    if fold {
        labels.push("其他".to_owned());
    }
    (labels, index)
}

/// The median and the p90 (nearest rank) of `v`.
pub(crate) fn median_p90(v: &[f64]) -> Option<(f64, f64)> {
    let mut v = v.to_vec();
    let (m, p) = crate::eval::median_p90(&mut v);
    Some((m?, p?))
}

/// A template's label: business name and phenomenon, cut.
fn template_label(rules: &Rules, id: &str) -> String {
    match rules.templates.iter().find(|t| t.id == id) {
        Some(t) => {
            let b = &rules.businesses[t.business].name;
            let ph: String = t.phenomenon.chars().take(14).collect();
            let more = if t.phenomenon.chars().count() > 14 {
                "…"
            } else {
                ""
            };
            if ph.is_empty() {
                format!("{b}·{id}")
            } else {
                format!("{b}·{ph}{more}")
            }
        }
        None => id.to_owned(),
    }
}

/// Sums the incidents of the period into the figures.
pub(crate) fn compute<'a>(
    incidents: &'a [Incident],
    input: Option<&InputFacts>,
    rules: &Rules,
    period: (Option<i64>, Option<i64>),
) -> anyhow::Result<Figures<'a>> {
    let first_day = period
        .0
        .or_else(|| incidents.iter().map(|i| cst_day(i.event_ts)).min())
        .unwrap_or(0);
    let last_day = period
        .1
        .or_else(|| incidents.iter().map(|i| cst_day(i.event_ts)).max())
        .unwrap_or(first_day)
        .max(first_day);
    if last_day - first_day >= MAX_DAYS {
        anyhow::bail!(
            "the alerts span {} days ({} to {}); a report covers at most {MAX_DAYS}: choose the days with --from and --to",
            last_day - first_day + 1,
            date(first_day),
            date(last_day)
        );
    }
    let days = (last_day - first_day + 1) as usize;

    // Departments, busiest first.
    let mut dept_counts: HashMap<String, u64> = HashMap::new();
    for inc in incidents {
        *dept_counts.entry(dept_label(inc)).or_default() += 1;
    }
    let (departments, dept_index) = rank(&dept_counts, MAX_DEPARTMENTS);
    let mut daily = vec![vec![0u32; days]; departments.len()];
    for inc in incidents {
        let d = (cst_day(inc.event_ts) - first_day) as usize;
        if d < days {
            daily[dept_index[&dept_label(inc)]][d] += 1;
        }
    }

    // Heat map.
    let mut row_counts: HashMap<String, u64> = HashMap::new();
    let mut col_counts: HashMap<String, u64> = HashMap::new();
    for inc in incidents {
        *row_counts.entry(business_label(inc)).or_default() += 1;
        *col_counts.entry(place_label(inc)).or_default() += 1;
    }
    let (heat_rows, row_index) = rank(&row_counts, HEAT_MAX_ROWS);
    let (heat_cols, col_index) = rank(&col_counts, HEAT_MAX_COLS);
    let mut heat = vec![vec![0u32; heat_cols.len()]; heat_rows.len()];
    for inc in incidents {
        heat[row_index[&business_label(inc)]][col_index[&place_label(inc)]] += 1;
    }

    // Time to detect.
    let ttd_method = if input.is_some() {
        TtdMethod::Onset
    } else {
        TtdMethod::WindowStart
    };
    let mut rows = Vec::with_capacity(incidents.len());
    let mut ttd = Vec::with_capacity(incidents.len());
    let mut fallbacks = 0;
    for (i, inc) in incidents.iter().enumerate() {
        let onset = input.and_then(|f| f.onset.get(i).copied().flatten());
        let from = onset.unwrap_or(inc.window_start.min(inc.event_ts));
        if input.is_some() && onset.is_none() {
            fallbacks += 1;
        }
        let m = (inc.event_ts - from).max(0) as f64 / 60_000.0;
        ttd.push(m);
        rows.push(Row {
            inc,
            ttd_min: m,
            from_onset: onset.is_some(),
            onset,
        });
    }

    // Hours of the day, per kind.
    let mut kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| incidents.iter().any(|i| i.kind == *k))
        .collect();
    if kinds.is_empty() {
        kinds.push(Kind::Threshold);
    }
    let mut hours = vec![[0u32; 24]; kinds.len()];
    for inc in incidents {
        if let Some(k) = kinds.iter().position(|k| *k == inc.kind) {
            hours[k][hour(inc.event_ts)] += 1;
        }
    }

    // Top templates.
    let mut by_template: BTreeMap<String, u64> = BTreeMap::new();
    let templates_from_input = input.is_some_and(|f| !f.templates.is_empty());
    if let Some(f) = input.filter(|_| templates_from_input) {
        for (&t, &n) in &f.templates {
            if let Some(t) = rules.templates.get(t as usize) {
                *by_template.entry(t.id.clone()).or_default() += n;
            }
        }
    } else {
        for inc in incidents {
            for (t, n) in &inc.templates {
                *by_template.entry(t.clone()).or_default() += u64::from(*n);
            }
        }
    }
    let mut top: Vec<(String, u64)> = by_template.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_TEMPLATES);
    let templates = top
        .into_iter()
        .map(|(id, n)| (template_label(rules, &id), id, n))
        .collect();

    Ok(Figures {
        first_day,
        last_day,
        dated: period.0.is_some() || period.1.is_some() || !incidents.is_empty(),
        departments,
        daily,
        heat_rows,
        heat_cols,
        heat,
        ttd,
        ttd_method,
        ttd_fallbacks: fallbacks,
        kinds,
        hours,
        templates,
        templates_from_input,
        rows,
    })
}

/// The department as shown: its name, or its id.
pub(crate) fn dept_label(inc: &Incident) -> String {
    if inc.department_name.is_empty() {
        inc.department.clone()
    } else {
        inc.department_name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Context;

    fn incident(i: usize, place: &str, dept: &str, kind: Kind) -> Incident {
        let ts = 1_773_456_000_000 + i as i64 * 3_600_000;
        Incident {
            alert_id: format!("a{i}"),
            line: i + 1,
            business: Some("crbt".into()),
            business_name: "彩铃".into(),
            place: place.into(),
            scope: Scope::Region,
            kind,
            department: dept.into(),
            department_name: String::new(),
            count: 9,
            threshold: 8,
            window_start: ts - 1_800_000,
            window_end: ts,
            event_ts: ts,
            max_count: None,
            resolved_end: None,
            resolved_at: None,
            end_of_input: false,
            templates: vec![("crbt.copy_fail".into(), 5)],
            terms: Vec::new(),
            samples: Vec::new(),
        }
    }

    #[test]
    fn places_beyond_the_heat_maps_width_fold_into_other() {
        let rules = crate::rules::embedded().unwrap();
        let incs: Vec<Incident> = (0..40)
            .map(|i| incident(i, &format!("城{i:02}"), "vas", Kind::Threshold))
            .collect();
        let f = compute(&incs, None, &rules, (None, None)).unwrap();
        assert_eq!(f.heat_cols.len(), HEAT_MAX_COLS);
        assert_eq!(f.heat_cols.last().unwrap(), "其他");
        assert_eq!(f.heat[0].iter().sum::<u32>(), 40);
        assert_eq!(
            f.heat[0][HEAT_MAX_COLS - 1],
            40 - (HEAT_MAX_COLS as u32 - 1)
        );
        // No input: every time to detect is from the window start.
        assert_eq!(f.ttd_method, TtdMethod::WindowStart);
        assert!(f.ttd.iter().all(|&m| m == 30.0));
        // 40 hourly alerts from 03-14 10:40 run to 03-16.
        assert_eq!(f.last_day - f.first_day, 2);
        assert_eq!(f.daily[0].iter().sum::<u32>(), 40);
        assert_eq!(f.templates[0].0, "彩铃·彩铃复制失败");
    }

    #[test]
    fn a_period_too_long_is_refused_by_name() {
        let rules = crate::rules::embedded().unwrap();
        let mut incs = vec![incident(0, "杭州", "vas", Kind::Threshold)];
        let mut late = incident(1, "杭州", "vas", Kind::Surge);
        late.event_ts += 500 * 86_400_000;
        incs.push(late);
        let e = compute(&incs, None, &rules, (None, None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--from and --to"), "{e}");
    }

    /// The page draws every chart with no font registered at all: the SVG
    /// leaves text to the browser, so the machine that writes the report
    /// needs no fonts (this test binary registers none).
    #[test]
    fn the_page_needs_no_font_and_has_every_chart() {
        let rules = crate::rules::embedded().unwrap();
        let incs: Vec<Incident> = (0..6)
            .map(|i| {
                let kind = [Kind::Threshold, Kind::Surge, Kind::NewTopic][i % 3];
                incident(i, ["杭州", "宁波"][i % 2], ["vas", "net"][i % 2], kind)
            })
            .collect();
        let f = compute(&incs, None, &rules, (None, None)).unwrap();
        let cx = Context {
            alerts_name: "a.jsonl".into(),
            input_name: None,
            input: None,
            window_ms: 1_800_000,
        };
        let page = crate::report::html::page(&cx, &f).unwrap();
        for (id, _) in crate::report::charts::CHARTS {
            assert!(page.contains(&format!("<svg id=\"chart-{id}\"")), "{id}");
        }
        assert_eq!(page.matches("<tr class=\"incident\"").count(), 6);
        assert!(page.contains("突增") && page.contains("新话题"));
    }
}
