//! Ground truth: what a generated file contains and what a correct
//! detector must (and must not) say about it, written as one JSON object.
//!
//! * `counts` are exact: lines, valid records, rejects by the reason the
//!   contract's decoder must give, blank lines, and late drops — the
//!   generator replays the contract's watermark rule (5.1) over the lines in
//!   the order it writes them, so it knows which records arrive too late.
//! * `incidents` must alert: each is a (business, region) key that received
//!   at least `threshold` distinct callers within one window.
//! * `traps` must not alert on their key during their span.
//! * `background` says whether ordinary traffic alone may alert: a bound on
//!   the expected number of background alerts — the sum, over every
//!   (business, region) and every window of the rules' size starting each
//!   half window, of the Poisson probability that the window's expected
//!   complaints reach the threshold (complaints, not distinct callers, so it
//!   errs high). `may_alert` is true when that bound exceeds 1 %: at
//!   realistic volume it is false, at benchmark volume it is true and
//!   background alerts are expected.
//!
//! Field order is declaration order and every list is built in a fixed
//! order, so the truth file is byte-identical for identical arguments.

use serde::{Deserialize, Serialize};

/// The arguments a file was generated with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Args {
    pub seed: u64,
    pub events: u64,
    pub days: u32,
    pub start: String,
    pub surge_day: Option<String>,
    pub dirty: f64,
    pub rules: String,
}

/// Exact counts of the written file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Lines written, blank ones included.
    pub lines: u64,
    /// Valid complaint records (the 1 MB ones included).
    pub records: u64,
    /// Records a detector keeps: `records - late_dropped`.
    pub accepted: u64,
    /// Records older than the watermark minus the allowed lateness.
    pub late_dropped: u64,
    /// Bad lines by the reject reason the contract gives them (names as in
    /// the summary, sorted).
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Empty or whitespace-only lines (skipped, not rejected).
    pub blank: u64,
    /// Valid records with a text of more than 1 MB.
    pub huge_records: u64,
    /// Records injected for incidents and traps.
    pub injected: u64,
    /// Bytes written, newlines included.
    pub bytes: u64,
}

/// One incident or trap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub kind: String,
    /// Business id; `None` for the surge day (any key).
    pub business: Option<String>,
    pub region: Option<String>,
    /// The main template the texts were written for.
    pub template: Option<String>,
    pub threshold: Option<u32>,
    /// First and last injected event time (RFC 3339, +08:00).
    pub start: String,
    pub end: String,
    pub distinct_callers: u64,
    pub records: u64,
    /// The channel the records came through (`mixed` when several).
    pub channel: String,
    /// Records of this item a detector drops as late.
    pub late_dropped: u64,
    /// Incidents in several regions at once share a group number.
    pub group: Option<u32>,
    pub expect_alert: bool,
    pub note: String,
}

/// One (business, region, day) of ordinary traffic near its threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Busiest {
    pub business: String,
    pub region: String,
    pub day: String,
    /// Expected complaints in the busiest window.
    pub expected_peak: f64,
    pub threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Background {
    /// True when ordinary traffic alone may reach a threshold.
    pub may_alert: bool,
    /// Upper bound of the expected number of background alerts.
    pub expected_alerts: f64,
    /// Complaints per day (surge day included).
    pub per_day: Vec<u64>,
    /// The keys closest to their thresholds, closest first.
    pub busiest: Vec<Busiest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub generator: String,
    pub args: Args,
    pub rules_version: String,
    pub window: Window,
    pub counts: Counts,
    pub background_may_alert: bool,
    pub background: Background,
    pub incidents: Vec<Item>,
    pub traps: Vec<Item>,
    /// Incidents or traps that could not be placed (another library may
    /// lack a suitable business), with the reason.
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub size: String,
    pub slide: String,
    pub allowed_lateness: String,
}

/// P(X >= k) for X ~ Poisson(lambda).
pub fn poisson_tail(lambda: f64, k: u32) -> f64 {
    if k == 0 || lambda >= k as f64 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    // log pmf(k) = -lambda + k ln(lambda) - ln(k!)
    let ln_fact: f64 = (2..=k).map(|i| (i as f64).ln()).sum();
    let mut term = (-lambda + k as f64 * lambda.ln() - ln_fact).exp();
    let mut sum = 0.0;
    let mut i = k;
    while term > sum * 1e-15 && i < k + 10_000 {
        sum += term;
        i += 1;
        term *= lambda / i as f64;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail_values() {
        assert_eq!(poisson_tail(3.0, 0), 1.0);
        assert_eq!(poisson_tail(0.0, 2), 0.0);
        // P(X >= 1) = 1 - e^-lambda.
        assert!((poisson_tail(0.5, 1) - (1.0 - (-0.5f64).exp())).abs() < 1e-12);
        // P(X >= 3 | 1) = 1 - e^-1 (1 + 1 + 1/2).
        assert!((poisson_tail(1.0, 3) - (1.0 - (-1.0f64).exp() * 2.5)).abs() < 1e-12);
        assert!(poisson_tail(15.0, 40) < 1e-6);
        assert!(poisson_tail(15.0, 20) > 0.05);
    }
}
