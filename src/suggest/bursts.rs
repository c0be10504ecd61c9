//! `hotspot suggest`, step 2: where each n-gram stands out most, against
//! the same hour of day on the other days.

use std::collections::HashMap;

use super::MIN_SURPRISE;
use super::scan::{Dense, Scan};

/// −log10 P(X ≥ k) for X ~ Poisson(λ), exact in log space (no underflow
/// for far tails).
pub fn surprise(lambda: f64, k: u32) -> f64 {
    if k == 0 {
        return 0.0;
    }
    if lambda <= 0.0 {
        return f64::INFINITY;
    }
    let kf = f64::from(k);
    if lambda >= kf {
        // The tail is at least about a half: 1 − P(X < k), summed directly.
        let (mut pmf, mut below) = ((-lambda).exp(), 0.0);
        for j in 0..k {
            below += pmf;
            pmf *= lambda / f64::from(j + 1);
        }
        return -(1.0 - below).max(f64::MIN_POSITIVE).log10();
    }
    let ln_fact: f64 = (2..=k).map(|i| f64::from(i).ln()).sum();
    let ln_pmf = -lambda + kf * lambda.ln() - ln_fact;
    // The tail over the pmf at k: 1 + λ/(k+1) + λ²/((k+1)(k+2)) + …
    let (mut term, mut sum, mut i) = (1.0f64, 1.0f64, k);
    while term > sum * 1e-16 && i < k + 10_000 {
        i += 1;
        term *= lambda / f64::from(i);
        sum += term;
    }
    -(ln_pmf + sum.ln()) / std::f64::consts::LN_10
}

/// A place of step 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum PlaceKind {
    Region,
    Province,
    All,
}

impl PlaceKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            PlaceKind::Region => "region",
            PlaceKind::Province => "province",
            PlaceKind::All => "all",
        }
    }
}

/// Where an n-gram stood out most.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Burst {
    pub(super) surprise: f64,
    pub(super) callers: u32,
    pub(super) lambda: f64,
    pub(super) kind: PlaceKind,
    /// City index, province index, or 0.
    pub(super) place: u32,
    /// Window start, epoch ms.
    pub(super) start: i64,
}

impl Burst {
    /// More surprising, then the earlier place and window.
    fn better(&self, o: &Burst) -> bool {
        match self.surprise.total_cmp(&o.surprise) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                (self.kind, self.place, self.start) < (o.kind, o.place, o.start)
            }
        }
    }
}

/// A (place, window) where an n-gram reached `min` callers: (dense
/// n-gram, kind, place, window start, callers, the window's complaints by
/// hour of day as an index into the list of those).
type Reach = (u32, PlaceKind, u32, i64, u32, u32);

/// A window's complaints by local hour (hours since 1970-01-01 00:00
/// local time).
type Hours = Vec<(i64, u32)>;

/// The local hour of `ts` (epoch ms), counted from 1970-01-01 00:00 local.
fn hour_of(ts: i64) -> i64 {
    (ts + crate::time::CST_OFFSET_MS).div_euclid(3_600_000)
}

/// Days a file must span for "usual" to mean "on the other days".
pub const OTHER_DAYS: usize = 3;

/// Step 2: the most surprising window of every dense n-gram. The
/// expectation is, for each hour the window's complaints fall in, the
/// n-gram's share of the complaints at that hour of day on the *other*
/// days of the file, times the window's complaints of that hour (at least
/// half a complaint at the file's rate): words of the evening (`20点`,
/// `今晚`) are no bursts of the evening, and a one-off topic is not
/// expected from its own complaints. A file of fewer than [`OTHER_DAYS`]
/// days leaves out only the window itself.
pub(super) fn bursts(
    scan: &Scan,
    dense: &Dense,
    province_of_city: &[Option<u32>],
    window: i64,
    min: u32,
    workers: usize,
) -> Vec<Option<Burst>> {
    let mut reached: Vec<Reach> = Vec::new();
    let mut hours: Vec<Hours> = Vec::new();
    for kind in [PlaceKind::Region, PlaceKind::Province, PlaceKind::All] {
        if kind == PlaceKind::Province && province_of_city.iter().all(Option::is_none) {
            continue;
        }
        for shift in [0, window / 2] {
            // (place, window, caller, doc), sorted: one run per (place, window).
            let mut entries: Vec<(u32, i64, u64, u32)> = scan
                .docs
                .iter()
                .enumerate()
                .filter_map(|(i, d)| {
                    let place = match kind {
                        PlaceKind::Region => d.city,
                        PlaceKind::Province => province_of_city[d.city as usize]?,
                        PlaceKind::All => 0,
                    };
                    let w = (d.ts - shift).div_euclid(window);
                    Some((place, w, d.caller, i as u32))
                })
                .collect();
            entries.sort_unstable();
            let mut groups: Vec<(usize, usize)> = Vec::new();
            let mut a = 0;
            for b in 1..=entries.len() {
                if b == entries.len()
                    || entries[b].0 != entries[a].0
                    || entries[b].1 != entries[a].1
                {
                    groups.push((a, b));
                    a = b;
                }
            }
            let per = groups.len().div_ceil(workers.max(1)).max(1);
            let found: Vec<(Vec<Reach>, Vec<Hours>)> = std::thread::scope(|s| {
                let handles: Vec<_> = groups
                    .chunks(per)
                    .map(|gs| {
                        let entries = &entries;
                        s.spawn(move || {
                            let mut count = vec![0u32; dense.ids.len()];
                            let mut stamp = vec![0u32; dense.ids.len()];
                            let mut touched: Vec<u32> = Vec::new();
                            let mut now = 0u32;
                            let mut out: Vec<Reach> = Vec::new();
                            let mut hists: Vec<Hours> = Vec::new();
                            for &(a, b) in gs {
                                let mut hist: Hours = Vec::new();
                                let mut last_caller = None;
                                for &(_, _, caller, doc) in &entries[a..b] {
                                    if last_caller != Some(caller) {
                                        last_caller = Some(caller);
                                        now += 1;
                                    }
                                    let d = doc as usize;
                                    let h = hour_of(scan.docs[d].ts);
                                    match hist.iter_mut().find(|(x, _)| *x == h) {
                                        Some((_, n)) => *n += 1,
                                        None => hist.push((h, 1)),
                                    }
                                    let of = &dense.grams
                                        [dense.start[d] as usize..dense.start[d + 1] as usize];
                                    for &g in of {
                                        let g = g as usize;
                                        if stamp[g] != now {
                                            stamp[g] = now;
                                            if count[g] == 0 {
                                                touched.push(g as u32);
                                            }
                                            count[g] += 1;
                                        }
                                    }
                                }
                                let (place, w) = (entries[a].0, entries[a].1);
                                let mut any = false;
                                for &g in &touched {
                                    let k = std::mem::take(&mut count[g as usize]);
                                    if k >= min {
                                        any = true;
                                        out.push((
                                            g,
                                            kind,
                                            place,
                                            w * window + shift,
                                            k,
                                            hists.len() as u32,
                                        ));
                                    }
                                }
                                if any {
                                    hist.sort_unstable();
                                    hists.push(hist);
                                }
                                touched.clear();
                            }
                            (out, hists)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (r, h) in found {
                let shift = hours.len() as u32;
                reached.extend(r.into_iter().map(|mut x| {
                    x.5 += shift;
                    x
                }));
                hours.extend(h);
            }
        }
    }
    // Hour-of-day profiles of the n-grams that reached `min` somewhere.
    let mut slot = vec![u32::MAX; dense.ids.len()];
    let mut n_slots = 0u32;
    for r in &reached {
        if slot[r.0 as usize] == u32::MAX {
            slot[r.0 as usize] = n_slots;
            n_slots += 1;
        }
    }
    let mut profile = vec![[0u32; 24]; n_slots as usize];
    let mut per_hour = [0u32; 24];
    // The same for each hour of each day (n-gram slot, hour) and (hour).
    let mut slot_hour: HashMap<(u32, i64), u32> = HashMap::new();
    let mut per_abs_hour: HashMap<i64, u32> = HashMap::new();
    let mut days: Vec<i64> = Vec::new();
    for (d, doc) in scan.docs.iter().enumerate() {
        let abs = hour_of(doc.ts);
        let h = abs.rem_euclid(24) as usize;
        per_hour[h] += 1;
        *per_abs_hour.entry(abs).or_default() += 1;
        if days.last() != Some(&abs.div_euclid(24)) {
            days.push(abs.div_euclid(24));
        }
        for &g in &dense.grams[dense.start[d] as usize..dense.start[d + 1] as usize] {
            let s = slot[g as usize];
            if s != u32::MAX {
                profile[s as usize][h] += 1;
                *slot_hour.entry((s, abs)).or_default() += 1;
            }
        }
    }
    days.sort_unstable();
    days.dedup();
    let other_days = days.len() >= OTHER_DAYS;
    let mut best: Vec<Option<Burst>> = vec![None; dense.ids.len()];
    for (g, kind, place, start, k, hist) in reached {
        let hist = &hours[hist as usize];
        let n: u32 = hist.iter().map(|(_, n)| n).sum();
        let sl = slot[g as usize];
        let prof = &profile[sl as usize];
        let mut lambda = 0.0;
        for &(abs, nh) in hist {
            let h = abs.rem_euclid(24) as usize;
            let nhf = f64::from(nh);
            // Left out: that hour of that day, or this window's share of
            // the n-gram's complaints at that hour.
            let (own, own_all) = if other_days {
                (
                    f64::from(slot_hour.get(&(sl, abs)).copied().unwrap_or(0)),
                    f64::from(per_abs_hour.get(&abs).copied().unwrap_or(0)),
                )
            } else {
                (f64::from(k) * nhf / f64::from(n), nhf)
            };
            let others = (f64::from(prof[h]) - own).max(0.0);
            let rest = (f64::from(per_hour[h]) - own_all).max(1.0);
            lambda += (others / rest).max(0.5 / f64::from(per_hour[h].max(1))) * nhf;
        }
        let s = surprise(lambda, k);
        if s < MIN_SURPRISE {
            continue;
        }
        let b = Burst {
            surprise: s,
            callers: k,
            lambda,
            kind,
            place,
            start,
        };
        let at = &mut best[g as usize];
        if at.as_ref().is_none_or(|o| b.better(o)) {
            *at = Some(b);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surprise_is_the_poisson_tail() {
        assert_eq!(surprise(3.0, 0), 0.0);
        // P(X >= 1 | 0.5) = 1 - e^-0.5.
        let p: f64 = 1.0 - (-0.5f64).exp();
        assert!((surprise(0.5, 1) + p.log10()).abs() < 1e-9);
        let p = crate::generator::truth::poisson_tail(2.0, 9);
        assert!((surprise(2.0, 9) + p.log10()).abs() < 1e-9);
        // λ ≥ k: 1 − P(X < k), directly.
        let below: f64 = (0..9u32)
            .map(|j| {
                (-12.0f64).exp() * 12f64.powi(j as i32) / (1..=j).map(f64::from).product::<f64>()
            })
            .sum();
        assert!((surprise(12.0, 9) + (1.0 - below).log10()).abs() < 1e-9);
        // Far tails do not underflow.
        let s = surprise(0.001, 200);
        assert!(s > 900.0 && s.is_finite(), "{s}");
        assert!(surprise(10.0, 5) < 0.1);
    }
}
