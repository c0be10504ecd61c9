//! What a key usually sees: the learned baselines behind `surge` alerts
//! (CONTRACT 8), and the stream's overall volume that scales them.
//!
//! ## The model
//!
//! Public-health surveillance (CDC's EARS C1-C3, ESSENCE) compares each
//! place's count with its own expected count for the time, and calls an
//! excess significant with a tail test. hotspot does the same per
//! (business, city) and (business, province) key, on a stream:
//!
//! * **Rate by hour of day.** A key learns, per hour of the day (China
//!   Standard Time), how many *fresh* complaints it gets: complaints whose
//!   caller had not complained about the key within the window length
//!   before, so that a window's distinct callers are (about) the fresh
//!   complaints in it. `rate_h = (sum_h + K·rate_nb) / (E_h + K)`, where
//!   `E_h` is how many hours `h` the stream has covered so far (less the
//!   hours the key spent alerting), `rate_nb` the key's rate in the two
//!   neighbouring hours, and `K` = [`PRIOR_HOURS`] pseudo-hours that pull a
//!   thin hour towards its neighbours (a robust floor: an hour seen twice
//!   does not make a baseline of zero, and the night stays the night).
//! * **Scaled by the stream's volume.** On the 3.15 consumer-rights day
//!   every key gets two or three times its usual traffic with no fault.
//!   [`Volume`] keeps the whole stream's accepted records per minute for the
//!   last two hours and its usual volume by hour of day; `scale` = observed
//!   / expected over the last half hour or the last two hours, whichever is
//!   larger, and at least 1. Every fresh complaint is
//!   learned as `1/scale` of one, so a surge day does not inflate next
//!   week's baselines either, and the expected count of a window is
//!   `λ = rate_h · size · scale`.
//! * **Tail test.** A window is a surge when its distinct callers `c` reach
//!   `min`, `ratio·λ`, and `P(X ≥ c) < p_value` for `X ~ Poisson(λ)`.
//!   [`surge_level`] is the smallest such `c`; a surge alert keeps that
//!   level as its threshold while it is open, so it resolves exactly like a
//!   threshold alert (section 5.5).
//! * **Learning.** For the first [`LEARNING_MS`] of a stream no surge
//!   fires; keys learn from the start. A key does not learn while it has an
//!   open alert: an outage must not become next day's normal.
//!
//! Everything is a function of the records in input order (the watermark,
//! the volume ring, per-key sums in `f32` updated in one order), so a replay
//! gives the same bytes on any thread count, and all of it is saved in
//! checkpoints. Memory: 24 `f32` per key with a baseline (at most
//! [`MAX_BASELINES`] keys per store) and a 120-minute ring.

use serde::{Deserialize, Serialize};

use crate::time::CST_OFFSET_MS;

/// Hours of the day.
pub const HOURS: usize = 24;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// No surge fires before the stream has covered this much event time.
pub const LEARNING_MS: i64 = 2 * DAY_MS;

/// Pseudo-hours of the key's all-day mean added to each hour's estimate.
pub const PRIOR_HOURS: f64 = 2.0;

/// The smallest expected count a test is run against.
pub const LAMBDA_FLOOR: f64 = 0.05;

/// Keys with a baseline, at most, per key store (about 150 bytes each).
pub const MAX_BASELINES: usize = 100_000;

/// Minutes of the stream's volume kept for the scale.
const RING_MINUTES: usize = 120;

/// Below this many expected records in the ring, the scale is 1: too
/// little traffic to tell a surge day from noise.
const MIN_EXPECTED: f64 = 30.0;

/// The scale never goes beyond this (a broken feed, not a surge day).
const MAX_SCALE: f64 = 20.0;

/// The hour of the day (CST) of an instant.
#[inline]
pub fn hour_of(ts: i64) -> usize {
    ((ts + CST_OFFSET_MS).div_euclid(HOUR_MS) % 24) as usize
}

/// Hours of hour-of-day `h` (CST) covered by `[start, now)`.
pub fn exposure(start: i64, now: i64, h: usize) -> f64 {
    if now <= start {
        return 0.0;
    }
    let days = (now - start) / DAY_MS;
    let mut hours = days as f64;
    // The rest, less than a day, may cross hour h at most twice.
    let from = start + days * DAY_MS;
    let local = from + CST_OFFSET_MS;
    let day0 = local.div_euclid(DAY_MS) * DAY_MS - CST_OFFSET_MS;
    for d in 0..2 {
        let a = day0 + d * DAY_MS + h as i64 * HOUR_MS;
        let b = a + HOUR_MS;
        let lo = a.max(from);
        let hi = b.min(now);
        if hi > lo {
            hours += (hi - lo) as f64 / HOUR_MS as f64;
        }
    }
    hours
}

/// The stream's accepted records: by minute for the last two hours, and
/// in total by hour of day. Fed every accepted record in input order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    /// The first accepted record's time.
    start: Option<i64>,
    /// Records by hour of day since `start`, as learned (each `1/scale`).
    hours: [f64; HOURS],
    /// Records per minute; slot `m % RING_MINUTES` holds minute `m` for
    /// the minutes up to `head`.
    ring: Vec<u32>,
    head: i64,
    /// The scale in force, computed when the watermark enters a minute.
    scale: f64,
    #[serde(default = "one")]
    inv_scale: f64,
    scale_minute: i64,
}

fn one() -> f64 {
    1.0
}

impl Default for Volume {
    fn default() -> Self {
        Volume {
            start: None,
            hours: [0.0; HOURS],
            ring: vec![0; RING_MINUTES],
            head: i64::MIN,
            scale: 1.0,
            inv_scale: 1.0,
            scale_minute: i64::MIN,
        }
    }
}

impl Volume {
    /// Counts an accepted record at `ts`, with the watermark `wm` it was
    /// accepted at (before it moved it), and returns the scale it is
    /// counted with.
    pub fn observe(&mut self, ts: i64, wm: Option<i64>) -> f32 {
        let now = wm.map_or(ts, |w| w.max(ts));
        let start = *self.start.get_or_insert(ts);
        let minute = now.div_euclid(60_000);
        if minute != self.scale_minute {
            self.scale = self.compute_scale(start, minute);
            self.inv_scale = 1.0 / self.scale;
            self.scale_minute = minute;
        }
        // The ring follows the newest minute.
        if minute > self.head {
            let steps = (minute - self.head).min(RING_MINUTES as i64);
            for k in 0..steps {
                let m = minute - k;
                self.ring[m.rem_euclid(RING_MINUTES as i64) as usize] = 0;
            }
            self.head = minute;
        }
        let m = ts.div_euclid(60_000);
        if m > self.head - RING_MINUTES as i64 {
            let slot = &mut self.ring[m.rem_euclid(RING_MINUTES as i64) as usize];
            *slot = slot.saturating_add(1);
        }
        self.hours[hour_of(ts)] += self.inv_scale;
        self.scale as f32
    }

    /// Observed over expected records before `minute`: the larger of the
    /// ratios over the last half hour and the last two hours (each only
    /// once it has [`MIN_EXPECTED`] records to go by), so that the scale
    /// catches up with a surge day within half an hour, and the two-hour
    /// figure steadies it at night.
    fn compute_scale(&self, start: i64, minute: i64) -> f64 {
        let now = minute * 60_000;
        if now - start < LEARNING_MS || self.head == i64::MIN {
            return 1.0;
        }
        let mut scale = 1.0f64;
        let (mut observed, mut expected) = (0u64, 0.0f64);
        for k in 1..=RING_MINUTES as i64 {
            let m = minute - k;
            if m <= self.head && m > self.head - RING_MINUTES as i64 {
                observed += self.ring[m.rem_euclid(RING_MINUTES as i64) as usize] as u64;
            }
            let h = hour_of(m * 60_000);
            let e = exposure(start, now, h);
            if e > 0.0 {
                expected += self.hours[h] / e / 60.0;
            }
            if (k == 30 || k == RING_MINUTES as i64) && expected >= MIN_EXPECTED {
                scale = scale.max(observed as f64 / expected);
            }
        }
        scale.min(MAX_SCALE)
    }

    /// The stream's first record's time.
    pub fn start(&self) -> Option<i64> {
        self.start
    }
}

/// One key's learned rate: fresh complaints by hour of day, each counted
/// as `1/scale`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub sums: [f32; HOURS],
    /// Hours of each hour of the day this key did not learn from because
    /// it had an open alert: they are not part of its exposure either, so
    /// that a key alerting for long does not end up with a baseline that
    /// is too low (and alert more).
    #[serde(default)]
    pub excluded: [f32; HOURS],
}

impl Baseline {
    /// Learns one fresh complaint at `ts`.
    #[inline]
    pub fn learn(&mut self, ts: i64, scale: f32) {
        self.learn_weight(ts, 1.0 / scale);
    }

    /// Learns `w` fresh complaints at `ts` (already divided by the scale).
    #[inline]
    pub fn learn_weight(&mut self, ts: i64, w: f32) {
        self.sums[hour_of(ts)] += w;
    }

    /// Takes `[from, to)` out of this key's exposure (an alert was open).
    pub fn exclude(&mut self, from: i64, to: i64) {
        let mut t = from;
        while t < to {
            let next = ((t + CST_OFFSET_MS).div_euclid(HOUR_MS) + 1) * HOUR_MS - CST_OFFSET_MS;
            let end = next.min(to);
            self.excluded[hour_of(t)] += ((end - t) as f64 / HOUR_MS as f64) as f32;
            t = end;
        }
    }

    /// The expected distinct callers of a window of `size_ms` at `ts`, on
    /// a stream that started at `start`, at volume `scale`.
    pub fn expected(&self, start: i64, ts: i64, size_ms: i64, scale: f32) -> f64 {
        let h = hour_of(ts);
        let rate = |h: usize| -> (f64, f64) {
            let e = (exposure(start, ts, h) - self.excluded[h] as f64).max(0.0);
            (self.sums[h] as f64, e)
        };
        let (s, e) = rate(h);
        // The prior: the two neighbouring hours, which follow the same
        // daily curve (an all-day mean would lift the night to a third of
        // the day's level and hide night outages).
        let (s1, e1) = rate((h + HOURS - 1) % HOURS);
        let (s2, e2) = rate((h + 1) % HOURS);
        let prior = if e1 + e2 > 0.0 {
            (s1 + s2) / (e1 + e2)
        } else {
            0.0
        };
        let rate = (s + PRIOR_HOURS * prior) / (e + PRIOR_HOURS);
        (rate * size_ms as f64 / HOUR_MS as f64 * scale as f64).max(LAMBDA_FLOOR)
    }
}

/// `ln(n!)`: a table below 1024 (built once), Stirling above.
fn ln_factorial(n: u32) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = Vec::with_capacity(1024);
        let mut acc = 0.0f64;
        t.push(0.0);
        for k in 1..1024u32 {
            acc += (k as f64).ln();
            t.push(acc);
        }
        t
    });
    if let Some(&v) = table.get(n as usize) {
        return v;
    }
    // Stirling with two correction terms: error below 1e-12 here.
    let x = n as f64;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x * x * x)
}

/// `P(X = c)` for `X ~ Poisson(lambda)`.
fn poisson_pmf(lambda: f64, c: u32) -> f64 {
    (-lambda + c as f64 * lambda.ln() - ln_factorial(c)).exp()
}

/// `P(X >= c)` for `X ~ Poisson(lambda)`, for `c > lambda` (the only case a
/// surge test asks about; otherwise 1 is close enough and returned).
pub fn poisson_tail(lambda: f64, c: u32) -> f64 {
    if c == 0 || (c as f64) <= lambda {
        return 1.0;
    }
    // Sum pmf(c) * (1 + λ/(c+1) + λ²/((c+1)(c+2)) + ...): terms shrink.
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut k = c as f64;
    for _ in 0..1000 {
        k += 1.0;
        term *= lambda / k;
        sum += term;
        if term < 1e-12 * sum {
            break;
        }
    }
    (poisson_pmf(lambda, c) * sum).min(1.0)
}

/// The fewest distinct callers that make a window a surge against an
/// expected `lambda`: at least `min`, at least `ratio * lambda`, and a tail
/// probability below `p_value`. The tail is computed once and then stepped
/// down by one probability mass per caller (`P(X >= c+1) = P(X >= c) -
/// P(X = c)`), so a level costs one series and a few multiplications.
pub fn surge_level(lambda: f64, ratio: f64, min: u32, p_value: f64) -> u32 {
    let mut c = (min as f64)
        .max((ratio * lambda).ceil())
        .min(u32::MAX as f64) as u32;
    if (c as f64) <= lambda {
        c = lambda.floor() as u32 + 1;
    }
    let mut tail = poisson_tail(lambda, c);
    let mut pmf = poisson_pmf(lambda, c);
    while tail >= p_value && c < u32::MAX / 2 {
        tail -= pmf;
        c += 1;
        pmf *= lambda / c as f64;
        // Rounding can only make the stepped tail drift low; stop it from
        // going below the next term it must include.
        if tail < pmf {
            tail = poisson_tail(lambda, c);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail_matches_direct_sums() {
        for &(lambda, c) in &[(0.5f64, 3u32), (2.0, 6), (10.0, 25), (1.5, 11), (30.0, 60)] {
            let mut cdf = 0.0;
            let mut pmf = (-lambda).exp();
            for k in 0..c {
                if k > 0 {
                    pmf *= lambda / k as f64;
                }
                cdf += pmf;
            }
            let want = 1.0 - cdf;
            let got = poisson_tail(lambda, c);
            assert!(
                (got - want).abs() <= 1e-9 * want.max(1e-300) + 1e-15,
                "λ={lambda} c={c}: {got} vs {want}"
            );
        }
        assert_eq!(poisson_tail(5.0, 3), 1.0);
    }

    #[test]
    fn surge_level_is_the_smallest_significant_count() {
        // Quiet key: min decides.
        assert_eq!(surge_level(0.1, 4.0, 6, 1e-6), 6);
        // Busy key: the tail decides, and the level is minimal.
        let l = surge_level(10.0, 1.0, 1, 1e-6);
        assert!(poisson_tail(10.0, l) < 1e-6 && poisson_tail(10.0, l - 1) >= 1e-6);
        // Ratio decides.
        assert_eq!(surge_level(10.0, 5.0, 6, 1e-3), 50);
    }

    #[test]
    fn exposure_counts_hours_of_the_day() {
        // From local midnight, 2.5 days: every hour twice, hours 0-11 thrice.
        let start = 1_773_504_000_000; // 2026-03-15T00:00+08:00
        assert_eq!(hour_of(start), 0);
        let now = start + 2 * DAY_MS + 12 * HOUR_MS;
        assert_eq!(exposure(start, now, 3), 3.0);
        assert_eq!(exposure(start, now, 15), 2.0);
        // Half an hour into hour 12.
        assert_eq!(exposure(start, now + HOUR_MS / 2, 12), 2.5);
        // A span crossing midnight.
        let s2 = start + 23 * HOUR_MS;
        assert_eq!(exposure(s2, s2 + 2 * HOUR_MS, 23), 1.0);
        assert_eq!(exposure(s2, s2 + 2 * HOUR_MS, 0), 1.0);
        assert_eq!(exposure(s2, s2 + 2 * HOUR_MS, 1), 0.0);
    }

    #[test]
    fn volume_scale_follows_a_surge_day() {
        let start = 1_773_504_000_000;
        let mut v = Volume::default();
        let mut wm = None;
        // 3 days of 10 records a minute, then a day of 30.
        let mut last = 0.0;
        for minute in 0..4 * 1440i64 {
            let per = if minute >= 3 * 1440 { 30 } else { 10 };
            for k in 0..per {
                let ts = start + minute * 60_000 + k * 1000;
                last = v.observe(ts, wm);
                wm = Some(ts);
            }
            if minute == 3 * 1440 - 1 {
                assert!((last - 1.0).abs() < 0.05, "normal day: {last}");
            }
        }
        assert!((last - 3.0).abs() < 0.2, "surge day: {last}");
    }

    #[test]
    fn baseline_expected_per_window() {
        let start = 1_773_504_000_000;
        let mut b = Baseline::default();
        // 3 days, 6 fresh complaints every hour 9, none otherwise.
        for d in 0..3 {
            for k in 0..6 {
                b.learn(start + d * DAY_MS + 9 * HOUR_MS + k * 60_000, 1.0);
            }
        }
        let now = start + 3 * DAY_MS + 9 * HOUR_MS;
        // E_9 = 3 (3 days), the neighbouring hours 8 and 10 empty: rate
        // (18 + 2·0)/(3 + 2) per hour, half of it per half hour.
        let lam = b.expected(start, now, 30 * 60_000, 1.0);
        let want = 18.0 / 5.0 / 2.0;
        assert!((lam - want).abs() < 1e-6, "{lam} vs {want}");
        // Doubled by the volume scale.
        assert!((b.expected(start, now, 30 * 60_000, 2.0) - 2.0 * lam).abs() < 1e-9);
    }
}
