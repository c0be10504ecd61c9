//! The report's input pass (`--input`): one streaming read of the complaint
//! file, decoded and matched on several threads, that finds when each
//! incident began — its **onset** — for the time to detect, and which
//! templates the incidents' complaints matched.
//!
//! The onset of an alert on key K (a business in a region, or in a
//! province) that fired at E is the first complaint of the burst of K's
//! complaints that stands out from K's usual traffic: among K's complaints
//! in the look-back [E − L, E] (L = 6 windows, between 1 h and 24 h, at
//! least one window), the
//! time t where "K's rate rose at t" is most likely against "K's usual
//! rate", the Poisson log-likelihood ratio
//!
//! ```text
//!   n = distinct callers of K in [t, E],   μ = λ_K · all complaints in [t, E]
//!   G(t) = n ln(n / μ) − (n − μ)          (0 when n ≤ μ)
//! ```
//!
//! is largest (the earliest t on a tie). λ_K is K's share of all complaints
//! outside its own incidents (outside every [E − L, end] of K's alerts,
//! `end` being the resolved line's `window_end`), so μ follows the whole
//! stream's load (night, day, a 3.15 surge) at K's own level. This is the
//! generalised likelihood ratio change point: a few ordinary complaints
//! before an outage lengthen the run but dilute its rate, so they do not
//! move the onset, while a tight burst does. Time to detect = E − onset
//! (never negative).
//!
//! Everything collected is a sum or a list sorted afterwards, so the result
//! is the same for every thread count and chunking.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use crate::alert::{Kind, Scope};
use crate::matcher::Matcher;
use crate::normalize::Normalizer;
use crate::record::{Decoded, Decoder};
use crate::rules::Rules;

use super::alerts::Incident;

/// Bytes handed to a worker at a time.
const BLOCK: usize = 1 << 20;

/// The look-back L for a window of `size_ms`.
pub(crate) fn look_back_ms(size_ms: i64) -> i64 {
    (6 * size_ms).clamp(3_600_000, 24 * 3_600_000).max(size_ms)
}

/// What the input pass found.
#[derive(Debug, Default, Clone)]
pub(crate) struct InputFacts {
    pub lines: u64,
    pub records: u64,
    pub rejected: u64,
    /// Per incident (same order): its onset, when it has a key and the
    /// input holds complaints of that key before it fired.
    pub onset: Vec<Option<i64>>,
    /// Complaints of the incidents' keys during their hot periods (from the
    /// firing window's start to the resolved window's end), per template
    /// index of the rules. A complaint counts once per template.
    pub templates: BTreeMap<u32, u64>,
    /// Alerts whose business the rules do not know (no onset for them).
    pub unknown_business: u64,
}

/// One (business, place) key that has alerts.
struct Key {
    /// Its alerts (indices into the incidents), by firing time.
    alerts: Vec<usize>,
    /// The firing times of `alerts`, same order.
    fired: Vec<i64>,
    /// The union of its alerts' [E − L, hot end], sorted and disjoint: its
    /// complaints outside count towards its usual rate.
    spans: Vec<(i64, i64)>,
    /// The union of its alerts' hot periods [firing window start, hot end]:
    /// its complaints inside count for the top templates.
    hot: Vec<(i64, i64)>,
}

/// Sorts `v` and merges overlapping intervals.
fn merge(mut v: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Whether `ts` lies in one of the sorted, disjoint `spans`.
fn in_spans(spans: &[(i64, i64)], ts: i64) -> bool {
    let i = spans.partition_point(|&(s, _)| s <= ts);
    i > 0 && ts <= spans[i - 1].1
}

/// The read-only plan every worker shares.
struct Plan<'r> {
    matcher: &'r Matcher,
    keys: Vec<Key>,
    /// (business, place) → key; place indices from `places`.
    key_of: hashbrown::HashMap<(usize, u32), usize>,
    /// A record's region → (its region place, its province place).
    places: hashbrown::HashMap<String, (Option<u32>, Option<u32>)>,
    look_back: i64,
    /// The union of every key's spans, merged and sorted: the minutes the
    /// stream's volume is kept for.
    union: Vec<(i64, i64)>,
}

/// One worker's findings.
#[derive(Default)]
struct Partial {
    lines: u64,
    records: u64,
    rejected: u64,
    /// All complaints per minute, inside `union` only.
    minutes: hashbrown::HashMap<i64, u64>,
    /// Per key: complaints outside its own spans.
    outside: Vec<u64>,
    /// (incident, ts, caller) for K's complaints in an alert's look-back.
    hits: Vec<(u32, i64, u128)>,
    templates: HashMap<u32, u64>,
}

impl<'r> Plan<'r> {
    fn new(
        rules: &'r Rules,
        matcher: &'r Matcher,
        incidents: &[Incident],
        unknown: &mut u64,
    ) -> Self {
        let look_back = look_back_ms(rules.window.size_ms);
        let mut place_ids: HashMap<(Scope, String), u32> = HashMap::new();
        let mut keys: Vec<Key> = Vec::new();
        let mut key_of = hashbrown::HashMap::new();
        for (i, inc) in incidents.iter().enumerate() {
            if inc.kind == Kind::NewTopic {
                continue;
            }
            let Some(b) = inc.business.as_deref() else {
                continue;
            };
            let Some(b) = rules.business_index(b) else {
                *unknown += 1;
                continue;
            };
            let n = place_ids.len() as u32;
            let p = *place_ids.entry((inc.scope, inc.place.clone())).or_insert(n);
            let k = *key_of.entry((b, p)).or_insert_with(|| {
                keys.push(Key {
                    alerts: Vec::new(),
                    fired: Vec::new(),
                    spans: Vec::new(),
                    hot: Vec::new(),
                });
                keys.len() - 1
            });
            keys[k].alerts.push(i);
        }
        for key in &mut keys {
            key.alerts.sort_by_key(|&i| (incidents[i].event_ts, i));
            key.fired = key.alerts.iter().map(|&i| incidents[i].event_ts).collect();
            key.spans = merge(
                key.alerts
                    .iter()
                    .map(|&i| {
                        let inc = &incidents[i];
                        (inc.event_ts - look_back, inc.hot_end().max(inc.event_ts))
                    })
                    .collect(),
            );
            key.hot = merge(
                key.alerts
                    .iter()
                    .map(|&i| (incidents[i].window_start, incidents[i].hot_end()))
                    .collect(),
            );
        }
        // Which record regions reach a keyed place: a region place by name,
        // a province place through the rules' region table.
        let mut places: hashbrown::HashMap<String, (Option<u32>, Option<u32>)> =
            hashbrown::HashMap::new();
        for ((scope, name), &id) in &place_ids {
            match scope {
                Scope::Region => places.entry(name.clone()).or_default().0 = Some(id),
                Scope::Province => {
                    if let Some(pi) = rules.provinces.iter().position(|p| &p.name == name) {
                        for &r in &rules.provinces[pi].regions {
                            places.entry(rules.regions[r].id.clone()).or_default().1 = Some(id);
                        }
                    }
                }
            }
        }
        let union = merge(keys.iter().flat_map(|k| k.spans.iter().copied()).collect());
        Plan {
            matcher,
            keys,
            key_of,
            places,
            look_back,
            union,
        }
    }

    fn in_union(&self, ts: i64) -> bool {
        in_spans(&self.union, ts)
    }

    /// Processes one block of whole lines.
    fn block(&self, data: &[u8], part: &mut Partial, scratch: &mut Scratch) {
        let mut from = 0;
        let ends = memchr::memchr_iter(b'\n', data).chain(
            // A last line without a newline (the end of the file).
            (!data.ends_with(b"\n")).then_some(data.len()),
        );
        for end in ends {
            let line = &data[from..end];
            from = end + 1;
            let rec = match scratch.decoder.decode(line) {
                Decoded::Record(r) => r,
                Decoded::Rejected(_) => {
                    part.lines += 1;
                    part.rejected += 1;
                    continue;
                }
                Decoded::Blank => continue,
            };
            part.lines += 1;
            part.records += 1;
            if self.in_union(rec.ts) {
                *part.minutes.entry(rec.ts.div_euclid(60_000)).or_default() += 1;
            }
            let Some(&(region_place, province_place)) = self.places.get(rec.region) else {
                continue;
            };
            self.matcher
                .find_text(rec.text, &mut scratch.normalizer, &mut scratch.matches);
            if scratch.matches.is_empty() {
                continue;
            }
            let caller = match rec.caller {
                Some(c) => crate::window::key::caller_id(c),
                None => crate::window::key::caller_id(rec.id) ^ 1,
            };
            for (b, templates) in scratch.matches.businesses() {
                let mut in_incident = false;
                for place in [region_place, province_place].into_iter().flatten() {
                    let Some(&k) = self.key_of.get(&(b, place)) else {
                        continue;
                    };
                    let key = &self.keys[k];
                    if !in_spans(&key.spans, rec.ts) {
                        part.outside[k] += 1;
                        continue;
                    }
                    // The alerts whose look-back [E − L, E] holds ts.
                    let first = key.fired.partition_point(|&e| e < rec.ts);
                    for (&a, &e) in key.alerts[first..].iter().zip(&key.fired[first..]) {
                        if e - self.look_back > rec.ts {
                            break;
                        }
                        part.hits.push((a as u32, rec.ts, caller));
                    }
                    in_incident |= in_spans(&key.hot, rec.ts);
                }
                if in_incident {
                    for &t in templates {
                        *part.templates.entry(t).or_default() += 1;
                    }
                }
            }
        }
    }
}

struct Scratch {
    decoder: Decoder,
    normalizer: Normalizer,
    matches: crate::matcher::Matches,
}

/// Reads `input` on `threads` threads (at least 1) and estimates the onset
/// of every incident.
pub(crate) fn scan(
    input: &Path,
    rules: &Arc<Rules>,
    incidents: &[Incident],
    threads: usize,
) -> anyhow::Result<InputFacts> {
    let matcher = Matcher::new(rules).context("rules")?;
    let mut unknown = 0;
    let plan = Plan::new(rules, &matcher, incidents, &mut unknown);
    let mut file: Box<dyn Read> = if input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(input)
                .with_context(|| format!("cannot read {}", input.display()))?,
        )
    };
    let threads = threads.max(1);
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(threads * 2);
    let (back_tx, back_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
    let parts: Vec<Partial> = std::thread::scope(|s| -> anyhow::Result<Vec<Partial>> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                let back = back_tx.clone();
                let plan = &plan;
                s.spawn(move || {
                    let mut part = Partial {
                        outside: vec![0; plan.keys.len()],
                        ..Partial::default()
                    };
                    let mut scratch = Scratch {
                        decoder: Decoder::new(),
                        normalizer: Normalizer::new(),
                        matches: plan.matcher.scratch(),
                    };
                    for block in rx {
                        plan.block(&block, &mut part, &mut scratch);
                        let _ = back.send(block);
                    }
                    part
                })
            })
            .collect();
        drop(rx);
        let read = read_blocks(&mut file, |block| tx.send(block).is_ok(), &back_rx);
        drop(tx);
        let parts: Vec<Partial> = workers
            .into_iter()
            .map(|w| w.join().expect("report input worker panicked"))
            .collect();
        read.with_context(|| format!("cannot read {}", input.display()))?;
        Ok(parts)
    })?;
    Ok(finish(&plan, incidents, parts, unknown))
}

/// Reads `file` in blocks of whole lines (a UTF-8 byte-order mark at the
/// start skipped), reusing the buffers that come back on `spare`.
fn read_blocks(
    file: &mut impl Read,
    mut send: impl FnMut(Vec<u8>) -> bool,
    spare: &crossbeam_channel::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let mut buf = spare.try_recv().unwrap_or_default();
        buf.clear();
        buf.append(&mut carry);
        let n = file.by_ref().take(BLOCK as u64).read_to_end(&mut buf)?;
        let eof = n < BLOCK;
        if first {
            first = false;
            if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                buf.drain(..3);
            }
        }
        if !eof {
            match memchr::memrchr(b'\n', &buf) {
                Some(nl) => carry.extend_from_slice(&buf[nl + 1..]),
                None => {
                    // One line longer than a block: keep reading it.
                    carry = buf;
                    continue;
                }
            }
            let keep = buf.len() - carry.len();
            buf.truncate(keep);
        }
        if !buf.is_empty() && !send(buf) {
            return Ok(());
        }
        if eof {
            return Ok(());
        }
    }
}

/// Merges the workers' findings and places every onset.
fn finish(plan: &Plan, incidents: &[Incident], parts: Vec<Partial>, unknown: u64) -> InputFacts {
    let mut facts = InputFacts {
        onset: vec![None; incidents.len()],
        unknown_business: unknown,
        ..InputFacts::default()
    };
    let mut minutes: hashbrown::HashMap<i64, u64> = hashbrown::HashMap::new();
    let mut outside = vec![0u64; plan.keys.len()];
    let mut hits: Vec<(u32, i64, u128)> = Vec::new();
    for p in parts {
        facts.lines += p.lines;
        facts.records += p.records;
        facts.rejected += p.rejected;
        for (m, n) in p.minutes {
            *minutes.entry(m).or_default() += n;
        }
        for (k, n) in p.outside.into_iter().enumerate() {
            outside[k] += n;
        }
        hits.extend(p.hits);
        for (t, n) in p.templates {
            *facts.templates.entry(t).or_default() += n;
        }
    }
    hits.sort_unstable();
    let all = facts.records;
    // Complaints of the whole stream from minute a to minute b, inclusive.
    let volume = |a: i64, b: i64| -> u64 {
        if b - a < minutes.len() as i64 {
            (a..=b).map(|m| minutes.get(&m).copied().unwrap_or(0)).sum()
        } else {
            minutes
                .iter()
                .filter(|&(&m, _)| a <= m && m <= b)
                .map(|(_, &n)| n)
                .sum()
        }
    };
    for (k, key) in plan.keys.iter().enumerate() {
        // The stream's complaints outside K's spans.
        let inside: u64 = key
            .spans
            .iter()
            .map(|&(s, e)| volume(s.div_euclid(60_000), e.div_euclid(60_000)))
            .sum();
        let rest = all.saturating_sub(inside).max(1) as f64;
        // Half a complaint as a prior: a key never seen outside its
        // incidents still has a small, not a zero, usual rate.
        let lambda = (outside[k] as f64 + 0.5) / rest;
        for &a in &key.alerts {
            let lo = hits.partition_point(|h| h.0 < a as u32);
            let hi = hits.partition_point(|h| h.0 <= a as u32);
            facts.onset[a] = onset(&hits[lo..hi], incidents[a].event_ts, lambda, &volume);
        }
    }
    facts
}

/// How unlikely `n` distinct callers are where `mu` are expected: the
/// Poisson log-likelihood ratio of "a higher rate since then" against "the
/// usual rate", `n ln(n/μ) − (n − μ)` (0 when `n ≤ μ`).
fn surprise(n: f64, mu: f64) -> f64 {
    let mu = mu.max(1e-9);
    if n <= mu {
        0.0
    } else {
        n * (n / mu).ln() - (n - mu)
    }
}

/// The change point of one alert's look-back (see the module docs):
/// `hits` are (alert, ts, caller) sorted by ts, `e` the firing time.
fn onset(
    hits: &[(u32, i64, u128)],
    e: i64,
    lambda: f64,
    volume: &impl Fn(i64, i64) -> u64,
) -> Option<i64> {
    let end_minute = e.div_euclid(60_000);
    let mut seen: HashSet<u128> = HashSet::with_capacity(hits.len());
    let mut best: Option<(f64, i64)> = None;
    // From the firing time backwards: the distinct callers of [t, E] and the
    // stream's volume of the same minutes.
    let mut vol = 0u64;
    let mut vol_from = end_minute + 1;
    for &(_, ts, caller) in hits.iter().rev() {
        seen.insert(caller);
        let m = ts.div_euclid(60_000);
        if m < vol_from {
            vol += volume(m, vol_from - 1);
            vol_from = m;
        }
        let s = surprise(seen.len() as f64, lambda * vol as f64);
        // `>=`: on a tie the earlier complaint is the onset.
        if best.is_none_or(|(b, _)| s >= b) {
            best = Some((s, ts));
        }
    }
    best.map(|(_, ts)| ts.min(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_onset_is_where_the_excess_begins() {
        // Background: one caller every 10 minutes for 3 hours with a share
        // λ = 0.1 of a stream of 1 complaint a minute; then 20 callers in 10
        // minutes from minute 150.
        let mut hits = Vec::new();
        for i in 0..18 {
            hits.push((0u32, i * 600_000, i as u128));
        }
        for i in 0..20 {
            hits.push((0u32, 150 * 60_000 + i * 30_000, 1000 + i as u128));
        }
        hits.sort_unstable();
        let e = 160 * 60_000;
        let minutes: HashMap<i64, u64> = (0..=160).map(|m| (m, 1)).collect();
        let volume = |a: i64, b: i64| (a..=b).map(|m| minutes.get(&m).copied().unwrap_or(0)).sum();
        assert_eq!(onset(&hits, e, 0.1, &volume), Some(150 * 60_000));
        // A repeat caller adds nothing: the same 20 complaints from 2
        // callers are no excess worth starting at.
        let mut repeat: Vec<_> = hits
            .iter()
            .map(|&(a, ts, c)| (a, ts, if c >= 1000 { 1000 + c % 2 } else { c }))
            .collect();
        repeat.sort_unstable();
        assert_ne!(onset(&repeat, e, 0.1, &volume), Some(150 * 60_000));
        assert_eq!(onset(&[], e, 0.1, &volume), None);
    }

    #[test]
    fn blocks_are_whole_lines_whatever_the_reads() {
        let text: String = (0..5000)
            .map(|i| format!("line {i} {}\n", "x".repeat(i % 700)))
            .collect();
        let mut with_bom = vec![0xEF, 0xBB, 0xBF];
        with_bom.extend_from_slice(text.as_bytes());
        with_bom.extend_from_slice(b"last");
        let (_tx, spare) = crossbeam_channel::unbounded();
        let mut got = Vec::new();
        read_blocks(
            &mut std::io::Cursor::new(with_bom),
            |b| {
                assert!(b.ends_with(b"\n") || b.ends_with(b"last"));
                got.extend_from_slice(&b);
                true
            },
            &spare,
        )
        .unwrap();
        assert_eq!(got, format!("{text}last").into_bytes());
    }
}
