//! New topics (CONTRACT 8, `[discovery]`): batch complaints that no
//! template names yet. Complaints that no template covers (a text stopped
//! only by a `none_of` veto is covered: known, not new) are cut into
//! phrases ([`phrase`]); when at least `min_callers` distinct callers of
//! one city, or of one province, write the same unusual phrase within one
//! window, a `new_topic` alert opens for the `[discovery]` department.
//!
//! ## Per complaint
//!
//! 1. Its normalised text gives its character 3-grams (numbers
//!    and punctuation taken out first, see [`phrase`]).
//! 2. Its *partition* (the home of its region: the province with a
//!    `[[region]]` table, else the region itself, hashed onto one of
//!    [`PARTITIONS`]) holds a count-min sketch ([`sketch`]) of decayed
//!    document counts per (place, 3-gram), places being its city and its
//!    province: a **foreground** with a time constant of
//!    [`FOREGROUND_MS`] and a **background** of [`BACKGROUND_MS`], plus the
//!    place's own total under a reserved key. Each 3-gram of the complaint
//!    updates its city's and its province's cell.
//! 3. The complaint joins the partition's recent complaints ([`recent`]).
//! 4. A 3-gram whose foreground at the place could hold `min_callers`
//!    complaints of one window (a decayed count of at least
//!    `1 + (m-1)·e^(-size/τ)`: each complaint of a window containing this
//!    one weighs at least `e^(-size/τ)`; never a miss) and whose share of
//!    the place's recent complaints is [`RATIO`] times its usual share (the
//!    cheap *screen*) is checked exactly: the place's recent complaints
//!    holding it give the distinct callers of every window containing this
//!    complaint (the same [`KeyState`] as the businesses' keys), and the
//!    sketch gives what is usual: `q_bg`, the share of the place's
//!    complaints that held the 3-gram in the background, and `q_recent` in
//!    the foreground (the last hours), both less the recent complaints
//!    themselves; `λ = max(q_bg, q_recent) · N` for the `N` complaints of
//!    the place in the window (the last hours keep words of the clock,
//!    `今晚` all evening, from looking new every evening; and a 3-gram
//!    holding a word of the clock or half of one,
//!    [`phrase::touches_clock`], is never a candidate). A 3-gram whose
//!    window complaints mostly hold an open topic's anchor joins that
//!    topic instead. The window is a new topic when its distinct
//!    callers `c ≥ min_callers`, `c ≥` [`RATIO`]`·λ` and
//!    `P(Poisson(λ) ≥ c) <` [`P_VALUE`]. A province opens one only when no
//!    single city could (no city has `min_callers` of its own, and none
//!    holds more than [`PROVINCE_SHARE`] of the callers): a city's outage
//!    is the city's alert.
//! 5. The alert's `terms` are the phrases its window's complaints share
//!    ([`phrase::shared_phrases`]): runs of 3-grams that half of them
//!    contain, trimmed to 3-grams that are themselves unusual at the place.
//!    Every 3-gram of those phrases is then *covered* at the place (and
//!    its province) while the alert is open: the twenty overlapping
//!    3-grams of one outage open one alert, not twenty. The alert counts
//!    the complaints holding the 3-gram that opened it (its *anchor*) and
//!    resolves like the others once no live window of them reaches
//!    `min_callers`.
//!
//! ## Bounds
//!
//! Memory per partition: the sketch ([`SKETCH_LINES`] × 64 bytes = 1 MiB),
//! the recent complaints ([`recent::MAX_BYTES`] = 2 MiB), at most
//! [`MAX_OPEN`] open topics (window state of their own complaints); at most
//! [`PARTITIONS`] partitions, so 24 MiB and the open topics in all,
//! whatever the text or the regions. No new topic is reported during the
//! first [`LEARNING_MS`] of a partition's stream nor at a place with fewer
//! than [`MIN_PLACE_DOCS`] complaints of background.
//!
//! Everything is a function of the records in input order per partition
//! (the sketch in `f32`, updated in one order), and partitions are
//! independent, so replay gives the same bytes on any number of threads
//! (parallel replay shards by partition), and it is all saved in
//! checkpoints ([`TopicsState`]).

pub mod phrase;
pub(crate) mod recent;
pub(crate) mod sketch;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertSample, AlertState, Kind, Scope, round_sig, topic_alert_id};
use crate::normalize::Normalizer;
use crate::rules::{Discovery, Rules, place_hash};
use crate::window::Geometry;
use crate::window::baseline::{poisson_tail, surge_level};
use crate::window::key::{CallerId, KeyState, Sample, floor_char_boundary};
use crate::window::store::{Resolver, resolved_line};
use phrase::{MAX_TERMS, PHRASE_BYTES, gram_id, mix};
use recent::{NewDoc, Recent, fingerprint};
use sketch::Sketch;

/// Partitions of the detector: regions hash onto them by their home (the
/// province, or the region itself).
pub const PARTITIONS: usize = 8;

/// Lines of each partition's sketch (64 bytes each: 2 MiB).
pub const SKETCH_LINES: usize = 1 << 14;

/// Time constant of the background: what a place usually writes is
/// learned with a memory of about two days.
pub const BACKGROUND_MS: i64 = 2 * DAY_MS;

/// A partition reports no new topic before its stream has covered this.
pub const LEARNING_MS: i64 = DAY_MS;

/// A place reports no new topic before its background holds this many
/// complaints (decayed).
pub const MIN_PLACE_DOCS: f64 = 30.0;

/// A new topic's window has at least this many times the callers its
/// background expects.
pub const RATIO: f64 = 4.0;

/// ... and a count this improbable under the background (Poisson tail).
pub const P_VALUE: f64 = 1e-6;

/// The smallest expected count a window is tested against.
pub const LAMBDA_FLOOR: f64 = 0.05;

/// A province's topic needs its callers spread: no city holds more than
/// this share of them.
pub const PROVINCE_SHARE: f64 = 2.0 / 3.0;

/// Open new topics per partition, at most.
pub const MAX_OPEN: usize = 64;

/// The screen lets a 3-gram through to the exact check when its
/// foreground is at least this many times what its background expects.
const SCREEN_RATIO: f32 = RATIO as f32;

/// Failed checks remembered per partition, at most (then forgotten).
const MAX_MEMO: usize = 16_384;

/// A 3-gram is part of a topic's phrase (core) when the topic's
/// complaints hold it this improbably often for the place.
const CORE_P_VALUE: f64 = 1e-3;

/// A place's foreground counts as its recent background only when it held
/// this many complaints (decayed) before the recent ones.
const MIN_RECENT_DOCS: f64 = 10.0;

/// Time constant of the foreground: long enough that, less the recent
/// complaints, it says what the place wrote in the last hours.
pub const FOREGROUND_MS: i64 = 2 * 3_600_000;

/// The landmark of the decayed counts moves on every this much event time.
const REBASE_MS: i64 = 6 * 3_600_000;

const DAY_MS: i64 = 86_400_000;

/// Salt of a province's place key, so that a city and a province of one
/// name (北京) are different places.
const PROVINCE_SALT: u64 = 0x5bd1_e995_9e37_79b9;

/// The n-gram id of a place's own total in the sketch (no 3-gram has id 0:
/// NUL is never kept).
const TOTAL: u64 = 0;

/// One complaint that no template covers, as the detector sees it.
#[derive(Debug, Clone, Copy)]
pub struct TopicDoc<'a> {
    /// Input position.
    pub seq: u64,
    pub id: &'a str,
    pub ts: i64,
    pub region: &'a str,
    pub text: &'a str,
    pub caller: Option<CallerId>,
}

/// The sketch key of (place, n-gram).
#[inline]
fn key(place: u64, gram: u64) -> u64 {
    key_of_hash(place, mix(gram))
}

/// [`key`] from the n-gram's [`mix`].
#[inline]
fn key_of_hash(place: u64, hash: u64) -> u64 {
    mix(place ^ hash)
}

/// 3-grams of one complaint looked at, at most (the first ones of its
/// text: some 130 characters, more than most complaints have).
pub const MAX_GRAMS: usize = 128;

/// Sketch updates a line is fetched ahead of its own.
const PREFETCH_AHEAD: usize = 8;

/// Region names whose place [`Topics::place_of`] remembers, at most.
const MAX_PLACES_CACHED: usize = 4096;

/// Where a region's complaints count.
#[derive(Debug, Clone, Copy)]
struct Where {
    /// The city's place key.
    city: u64,
    /// Its province in the rules' table.
    province: Option<usize>,
    partition: usize,
}

/// The partition of a record's region (parallel replay routes by it).
pub fn partition_of(rules: &Rules, region: &str) -> usize {
    let home = match rules.province_of(rules.region_of(region)) {
        Some(p) => rules.provinces[p].hash,
        None => place_hash(region),
    };
    (mix(home) % PARTITIONS as u64) as usize
}

/// A failed exact check of (place, 3-gram): it cannot succeed before
/// `need` more complaints holding the 3-gram have come, nor (for one that
/// failed as usual for the place) before `until`.
#[derive(Debug, Clone, Copy)]
struct Memo {
    /// The sketch's foreground count then, and the least a later complaint
    /// adds to it.
    fg: f32,
    w_min: f32,
    need: u32,
    until: i64,
}

/// One partition: its sketch and recent complaints, and what its open
/// topics cover.
struct Partition {
    sketch: Sketch,
    /// The landmark of the decayed counts.
    landmark: i64,
    /// The first complaint's time (learning).
    started: i64,
    recent: Recent,
    /// (place key, anchor 3-gram) → open topic.
    anchors: HashMap<(u64, u64), u32>,
    /// Bit `mix(anchor) % 64` of every anchor: most 3-grams skip the map.
    anchor_bits: u64,
    /// (place key, 3-gram) → open topics covering it there.
    covered: HashMap<(u64, u64), u32>,
    open: usize,
    /// Failed checks (not saved: a restored run checks again, with the
    /// same result).
    memo: HashMap<(u64, u64), Memo>,
}

impl Partition {
    fn new(ts: i64) -> Self {
        Partition {
            sketch: Sketch::new(SKETCH_LINES),
            landmark: ts.div_euclid(REBASE_MS) * REBASE_MS,
            started: ts,
            recent: Recent::default(),
            anchors: HashMap::new(),
            anchor_bits: 0,
            covered: HashMap::new(),
            open: 0,
            memo: HashMap::new(),
        }
    }

    fn bytes(&self) -> usize {
        self.sketch.bytes()
            + self.recent.bytes()
            + (self.anchors.capacity() + self.covered.capacity()) * 24
            + self.memo.capacity() * 40
    }

    fn refresh_anchor_bits(&mut self) {
        self.anchor_bits = self
            .anchors
            .keys()
            .fold(0, |b, &(_, g)| b | 1 << (mix(g) % 64));
    }
}

/// An open new topic.
#[derive(Debug)]
struct Topic {
    part: usize,
    /// The place's key and, for a city, its province's (`None` otherwise).
    place: u64,
    province_key: Option<u64>,
    anchor: u64,
    /// The 3-grams of its terms.
    covered: Vec<u64>,
    state: KeyState,
    firing: Alert,
    hot_end: i64,
    max_count: u32,
    generation: u64,
}

/// Counts of the detector (the summary and the metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicStats {
    /// Complaints looked at.
    pub docs: u64,
    /// Exact checks run (3-grams through the screen).
    pub checks: u64,
    /// New topics opened.
    pub opened: u64,
    /// Topics not opened because their partition had [`MAX_OPEN`] open.
    pub overflow: u64,
    /// Recent complaints dropped for room before their windows died.
    pub pushed_out: u64,
    /// Bytes of the detector's state ([`Topics::state_bytes`]) at the end,
    /// and the most it held (measured every [`MEASURE_EVERY`] complaints).
    pub state_bytes: u64,
    pub peak_state_bytes: u64,
}

impl TopicStats {
    /// Adds another detector's counts (parallel shards); bytes add up.
    pub fn add(&mut self, o: &TopicStats) {
        self.docs += o.docs;
        self.checks += o.checks;
        self.opened += o.opened;
        self.overflow += o.overflow;
        self.pushed_out += o.pushed_out;
        self.state_bytes += o.state_bytes;
        self.peak_state_bytes += o.peak_state_bytes;
    }
}

/// The detector measures its state bytes every this many complaints.
pub const MEASURE_EVERY: u64 = 1024;

/// A place a 3-gram is checked at.
#[derive(Debug, Clone, Copy)]
struct At {
    scope: Scope,
    key: u64,
    province: u32,
    /// (foreground, background) of the place's total, sketch units.
    total: (f32, f32),
}

/// A 3-gram through the screen: where, and its sketch counts.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    at: u8,
    gram: u64,
    /// Foreground of (place, 3-gram), sketch units.
    fg: f32,
    /// Background of (place, 3-gram), sketch units.
    bg: f32,
}

/// An exact check that found a new topic's window.
#[derive(Debug, Clone)]
struct Found {
    at: u8,
    gram: u64,
    window: i64,
    count: u32,
    lambda: f64,
    /// Indices (into recent) of the complaints at the place holding it.
    hits: Vec<u32>,
    /// Complaints of the place in the window.
    place_docs: u32,
    /// Background of the place, less its recent complaints (sketch units).
    place_bg: f64,
}

/// The new-topic detector of one engine (or of one shard of a parallel
/// replay: the partitions routed to it).
pub struct Topics {
    rules: Arc<Rules>,
    geo: Geometry,
    discovery: Discovery,
    parts: Vec<Option<Box<Partition>>>,
    topics: Vec<Option<Topic>>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(i64, u32, u64)>>,
    generation: u64,
    stats: TopicStats,
    /// The foreground a window's `min_callers` complaints give at least.
    screen: f32,
    tau_fg: f64,
    normalizer: Normalizer,
    chars: Vec<char>,
    segs: Vec<(u32, u32)>,
    grams: Vec<u64>,
    /// [`mix`] of each of `grams`.
    hashes: Vec<u64>,
    /// The sketch keys of `grams` at the city, then at its province.
    keys: Vec<u64>,
    /// A token's characters ([`phrase::grams_raw`]).
    tok: Vec<u8>,
    candidates: Vec<Candidate>,
    pool: Vec<Sample>,
    places: hashbrown::HashMap<Box<str>, Where>,
}

impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics")
            .field("partitions", &self.partitions())
            .field("open", &self.open_count())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Topics {
    /// A detector for `rules`, which must have `[discovery]`.
    pub fn new(rules: Arc<Rules>) -> Option<Self> {
        let discovery = rules.discovery.clone()?;
        let geo = Geometry::new(rules.window);
        let m = discovery.min_callers.max(1) as f64;
        let tau_fg = FOREGROUND_MS.max(2 * geo.size) as f64;
        // Every complaint of a window containing this one is less than a
        // window older (or newer): weight at least e^(-size/τ). A little
        // below, for the rounding of f32 sums.
        let screen =
            ((1.0 + (m - 1.0) * (-(geo.size as f64) / tau_fg).exp()) * (1.0 - 1e-4)) as f32;
        Some(Topics {
            geo,
            discovery,
            parts: (0..PARTITIONS).map(|_| None).collect(),
            topics: Vec::new(),
            free: Vec::new(),
            heap: BinaryHeap::new(),
            generation: 0,
            stats: TopicStats::default(),
            screen,
            tau_fg,
            normalizer: Normalizer::new(),
            chars: Vec::with_capacity(256),
            segs: Vec::with_capacity(32),
            grams: Vec::with_capacity(MAX_GRAMS),
            hashes: Vec::with_capacity(MAX_GRAMS),
            keys: Vec::with_capacity(2 * MAX_GRAMS),
            tok: Vec::with_capacity(64),
            candidates: Vec::with_capacity(16),
            pool: Vec::new(),
            places: hashbrown::HashMap::new(),
            rules,
        })
    }

    pub fn stats(&self) -> TopicStats {
        let mut s = self.stats.clone();
        s.pushed_out = self
            .parts
            .iter()
            .flatten()
            .map(|p| p.recent.pushed_out)
            .sum();
        s.state_bytes = self.state_bytes() as u64;
        s.peak_state_bytes = s.peak_state_bytes.max(s.state_bytes);
        s
    }

    /// Partitions in use.
    pub fn partitions(&self) -> usize {
        self.parts.iter().flatten().count()
    }

    /// Open topics.
    pub fn open_count(&self) -> usize {
        self.topics.iter().flatten().count()
    }

    /// Recent complaints held.
    pub fn recent_docs(&self) -> usize {
        self.parts.iter().flatten().map(|p| p.recent.len()).sum()
    }

    /// Bytes of the detector's state: sketches, recent complaints, what
    /// open topics cover and their window state.
    pub fn state_bytes(&self) -> usize {
        self.parts
            .iter()
            .flatten()
            .map(|p| p.bytes())
            .sum::<usize>()
            + self
                .topics
                .iter()
                .flatten()
                .map(|t| t.state.heap_bytes() + std::mem::size_of::<Topic>() + t.covered.len() * 8)
                .sum::<usize>()
    }

    /// The open topics' firing lines with their most callers and the end
    /// of their last hot window, by scope, place, then id.
    pub fn open_alerts(&self) -> Vec<(&Alert, u32, i64)> {
        let mut v: Vec<&Topic> = self.topics.iter().flatten().collect();
        v.sort_by(|a, b| topic_order(&a.firing, &b.firing));
        v.into_iter()
            .map(|t| (&t.firing, t.max_count, t.hot_end))
            .collect()
    }

    #[inline]
    fn weights(&self, landmark: i64, ts: i64) -> (f32, f32) {
        let d = (ts - landmark) as f64;
        (
            (d / self.tau_fg).exp() as f32,
            (d / BACKGROUND_MS as f64).exp() as f32,
        )
    }

    /// Looks at one complaint that no template covers, accepted at
    /// watermark `wm` (before it moved it); appends the topics it opens to
    /// `fired` (city, then province; by phrase).
    pub fn observe(&mut self, doc: &TopicDoc<'_>, wm: Option<i64>, fired: &mut Vec<Alert>) {
        self.stats.docs += 1;

        if self.stats.docs % MEASURE_EVERY == 0 {
            let b = self.state_bytes() as u64;
            self.stats.peak_state_bytes = self.stats.peak_state_bytes.max(b);
        }
        let now = wm.map_or(doc.ts, |w| w.max(doc.ts));
        let Where {
            city: city_key,
            province,
            partition: pi,
        } = self.place_of(doc.region);
        let prov_key = province.map(|p| self.rules.provinces[p].hash ^ PROVINCE_SALT);
        // The 3-grams.
        let text = &doc.text[..floor_char_boundary(doc.text, PHRASE_BYTES)];
        self.text_grams(text);

        let part = self.parts[pi].get_or_insert_with(|| Box::new(Partition::new(doc.ts)));
        if doc.ts - part.landmark >= REBASE_MS {
            let to = doc.ts.div_euclid(REBASE_MS) * REBASE_MS;
            let d = (to - part.landmark) as f64;
            part.sketch.rebase(
                (-d / self.tau_fg).exp() as f32,
                (-d / BACKGROUND_MS as f64).exp() as f32,
            );
            part.landmark = to;
            part.memo.clear();
        }
        let landmark = part.landmark;
        let (wf, wb) = self.weights(landmark, doc.ts);
        let part = self.parts[pi].as_mut().expect("made above");
        let mut at: [Option<At>; 2] = [None, None];
        at[0] = Some(At {
            scope: Scope::Region,
            key: city_key,
            province: province.map_or(u32::MAX, |p| p as u32),
            total: part.sketch.add(key(city_key, TOTAL), wf, wb),
        });
        if let (Some(p), Some(k)) = (province, prov_key) {
            at[1] = Some(At {
                scope: Scope::Province,
                key: k,
                province: p as u32,
                total: part.sketch.add(key(k, TOTAL), wf, wb),
            });
        }
        // Update every 3-gram's cells; the lines are fetched ahead.
        self.candidates.clear();
        let inv_wf = 1.0 / wf;
        let screen = self.screen;
        // The keys of both places first; each line is fetched
        // `PREFETCH_AHEAD` updates ahead of its own, the city's and then
        // the province's, so that a few load side by side while the
        // others are updated (fetching all of them at once stalls on the
        // CPU's miss buffers).
        self.keys.clear();
        for a in at.iter().flatten() {
            self.keys
                .extend(self.hashes.iter().map(|&h| key_of_hash(a.key, h)));
        }
        for &k in self.keys.iter().take(PREFETCH_AHEAD) {
            part.sketch.prefetch(k);
        }
        let n = self.hashes.len();
        for (l, a) in at.iter().enumerate() {
            let Some(a) = a else { continue };
            let keys = &self.keys[l * n..(l + 1) * n];
            let ahead = self.keys.get(l * n + PREFETCH_AHEAD..).unwrap_or(&[]);
            // The place's background less (about) what its foreground
            // holds: the last hours, a burst included.
            let place_fg = a.total.0 * inv_wf;
            let place_usual = (a.total.1 - place_fg * wb).max(f32::MIN_POSITIVE);
            for (i, (&g, &k)) in self.grams.iter().zip(keys).enumerate() {
                if let Some(&next) = ahead.get(i) {
                    part.sketch.prefetch(next);
                }
                let (f, b) = part.sketch.add(k, wf, wb);
                let fg = f * inv_wf;
                if fg < screen {
                    continue;
                }
                // Far above what the background expects of the place's
                // current volume (fg / place_fg >= ratio · usual /
                // place_usual, without dividing)?
                let usual = (b - fg * wb).max(0.0);
                // (Words of the clock are no topic: see `phrase::CLOCK_WORDS`.)
                if fg * place_usual >= SCREEN_RATIO * usual * place_fg
                    && !phrase::touches_clock(&self.grams, i)
                {
                    self.candidates.push(Candidate {
                        at: l as u8,
                        gram: g,
                        fg: f,
                        bg: b,
                    });
                }
            }
        }
        // The complaint joins the recent ones (its own windows are live).
        let bin = self.geo.bin_of(doc.ts);
        part.recent.expire(self.geo.first_live_bin(now));
        part.recent.push(
            NewDoc {
                seq: doc.seq,
                ts: doc.ts,
                bin,
                caller: doc.caller,
                city: city_key,
                province: province.map_or(u32::MAX, |p| p as u32),
                id: doc.id,
                region: doc.region,
                text: doc.text,
            },
            &self.hashes,
        );
        // Open topics it belongs to.
        if part.open > 0 {
            let mut members: smallvec::SmallVec<[u32; 4]> = smallvec::SmallVec::new();
            for (&g, &h) in self.grams.iter().zip(&self.hashes) {
                if part.anchor_bits & 1 << (h % 64) == 0 {
                    continue;
                }
                for a in at.iter().flatten() {
                    if let Some(&t) = part.anchors.get(&(a.key, g)) {
                        members.push(t);
                    }
                }
            }
            members.sort_unstable();
            members.dedup();
            for t in members {
                self.count_in(t, doc, bin, now);
            }
        }
        if self.candidates.is_empty() {
            return;
        }
        let part = self.parts[pi].as_ref().expect("made above");
        let learned = now - part.started >= LEARNING_MS;
        if !learned {
            return;
        }
        // Exact checks, city first, one pass over the recent complaints per
        // place; the best window opens a topic, and the rest are checked
        // again against what it covers.
        let mut found: Vec<Found> = Vec::new();
        let mut candidates = std::mem::take(&mut self.candidates);
        let (w_now, _) = self.weights(landmark, now - self.geo.lateness);
        for level in 0..2u8 {
            let Some(a) = at[level as usize] else {
                continue;
            };
            let part = self.parts[pi].as_ref().expect("made above");
            let mut these: Vec<Candidate> = Vec::new();
            for c in candidates.iter().filter(|c| c.at == level) {
                if self.is_covered(pi, &a, prov_key, c.gram) {
                    continue;
                }
                // A check that failed for lack of complaints fails again
                // until that many more have come (each adds at least
                // `w_min` to the cell: it is not late).
                if let Some(m) = part.memo.get(&(a.key, c.gram)) {
                    if now < m.until && (c.fg - m.fg) / m.w_min + 1e-3 < m.need as f32 {
                        continue;
                    }
                }
                these.push(*c);
            }
            if these.is_empty() {
                continue;
            }
            self.stats.checks += these.len() as u64;
            // Open topics the 3-grams may belong to: of the place, of its
            // province (a city's), or of its cities (a province's).
            let related: Vec<(u32, u32)> = part
                .anchors
                .iter()
                .filter(|&(&(k, _), &t)| {
                    k == a.key
                        || Some(k) == prov_key.filter(|_| a.scope == Scope::Region)
                        || (a.scope == Scope::Province
                            && self.topics[t as usize]
                                .as_ref()
                                .is_some_and(|x| x.province_key == Some(a.key)))
                })
                .map(|(&(_, g), &t)| (fingerprint(g), t))
                .collect();
            let (hit, memos, merges) = self.check(pi, &a, &these, &related, bin, now);
            found.extend(hit);
            for (g, t) in merges {
                self.cover(t, g);
            }
            let part = self.parts[pi].as_mut().expect("made above");
            if part.memo.len() + memos.len() > MAX_MEMO {
                part.memo.clear();
            }
            for (g, need, until, fg) in memos {
                part.memo.insert(
                    (a.key, g),
                    Memo {
                        fg,
                        w_min: w_now,
                        need,
                        until,
                    },
                );
            }
        }
        candidates.clear();
        self.candidates = candidates;
        for level in 0..2u8 {
            loop {
                let best = found
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.at == level)
                    .filter(|(_, f)| {
                        let a = at[f.at as usize].expect("found at a place");
                        !self.is_covered(pi, &a, prov_key, f.gram)
                    })
                    .min_by(|(_, x), (_, y)| {
                        y.count
                            .cmp(&x.count)
                            .then(x.lambda.total_cmp(&y.lambda))
                            .then(x.gram.cmp(&y.gram))
                    })
                    .map(|(i, _)| i);
                let Some(i) = best else { break };
                let f = found.swap_remove(i);
                let a = at[f.at as usize].expect("found at a place");
                if self.parts[pi].as_ref().is_some_and(|p| p.open >= MAX_OPEN) {
                    self.stats.overflow += 1;
                    continue;
                }
                let alert = self.open(pi, &a, prov_key, f, doc, wb);
                fired.push(alert);
            }
        }
    }

    /// Where a region's complaints count: its place key, province and
    /// partition (remembered per region name: a stream has a few hundred).
    fn place_of(&mut self, region: &str) -> Where {
        if let Some(w) = self.places.get(region) {
            return *w;
        }
        let rules = &self.rules;
        let w = Where {
            city: place_hash(region),
            province: rules.province_of(rules.region_of(region)),
            partition: partition_of(rules, region),
        };
        if self.places.len() >= MAX_PLACES_CACHED {
            self.places.clear();
        }
        self.places.insert(region.into(), w);
        w
    }

    /// The 3-grams of `text` (raw, cut to [`PHRASE_BYTES`]), in text
    /// order, at most [`MAX_GRAMS`], into `grams` and their hashes into
    /// `hashes`: in one pass over the raw text when it needs no
    /// normalisation ([`phrase::grams_raw`]), else from the segments of
    /// its normalised form. A 3-gram a complaint repeats counts twice in
    /// the sketch (which only ever over-counts, and the exact checks count
    /// complaints); finding the distinct ones cost more than it saved.
    fn text_grams(&mut self, text: &str) {
        self.grams.clear();
        self.hashes.clear();
        let grams = &mut self.grams;
        let keep = |g| {
            if grams.len() < MAX_GRAMS {
                grams.push(g);
            }
        };
        if !phrase::grams_raw(text, &mut self.tok, keep) {
            self.grams.clear();
            let norm = self.normalizer.normalize(text);
            phrase::segments(norm, &mut self.chars, &mut self.segs);
            let grams = &mut self.grams;
            phrase::grams(&self.chars, &self.segs, |g| {
                if grams.len() < MAX_GRAMS {
                    grams.push(g);
                }
            });
        }
        self.hashes.extend(self.grams.iter().map(|&g| mix(g)));
    }

    /// Adds `gram` to what open topic `t` covers (its complaints hold it).
    fn cover(&mut self, t: u32, gram: u64) {
        let Some(topic) = self.topics[t as usize].as_mut() else {
            return;
        };
        if topic.covered.binary_search(&gram).is_ok() {
            return;
        }
        let at = topic.covered.partition_point(|&g| g < gram);
        topic.covered.insert(at, gram);
        if let Some(part) = self.parts[topic.part].as_mut() {
            for k in std::iter::once(topic.place).chain(topic.province_key) {
                *part.covered.entry((k, gram)).or_default() += 1;
            }
        }
    }

    /// Whether an open topic covers `gram` at place `a` (or, for a city,
    /// at its province: a province topic covers its cities, and a city
    /// topic its province).
    fn is_covered(&self, pi: usize, a: &At, prov_key: Option<u64>, gram: u64) -> bool {
        let Some(part) = self.parts[pi].as_ref() else {
            return false;
        };
        if part.covered.is_empty() {
            return false;
        }
        part.covered.contains_key(&(a.key, gram))
            || prov_key.is_some_and(|k| part.covered.contains_key(&(k, gram)))
    }

    /// The exact checks of the 3-grams `cands` at place `a` for the
    /// complaint just pushed (bin `bin`), in one pass over the recent
    /// complaints. For each 3-gram: the window of most distinct callers
    /// among those containing the complaint, if it is a new topic (a
    /// [`Found`]); or the open topic `related` (anchor fingerprint, topic)
    /// its complaints belong to (most of them hold its anchor: the same
    /// outbreak in other words, a *merge*); or, when it fails, how many
    /// more complaints holding it it needs before a check can succeed,
    /// until when that holds, and the sketch count now (a *memo*).
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn check(
        &self,
        pi: usize,
        a: &At,
        cands: &[Candidate],
        related: &[(u32, u32)],
        bin: i64,
        now: i64,
    ) -> (Vec<Found>, Vec<(u64, u32, i64, f32)>, Vec<(u64, u32)>) {
        let m = self.discovery.min_callers;
        let geo = self.geo;
        let (mut found, mut memos, mut merges) = (Vec::new(), Vec::new(), Vec::new());
        let Some(part) = self.parts[pi].as_ref() else {
            return (found, memos, merges);
        };
        let at_place = |d: &recent::Doc| match a.scope {
            Scope::Region => d.city == a.key,
            Scope::Province => d.province == a.province,
        };
        let mut fps: Vec<(u32, usize)> = cands
            .iter()
            .enumerate()
            .map(|(k, c)| (fingerprint(c.gram), k))
            .collect();
        fps.sort_unstable();
        // A bit per fingerprint's low six bits: most n-grams of a recent
        // complaint miss it and skip the search.
        let bits = fps.iter().fold(0u64, |b, p| b | 1 << (p.0 % 64));
        let mut hits: Vec<Vec<u32>> = vec![Vec::new(); cands.len()];
        // The place's recent complaints: index, bin.
        let mut place: Vec<(u32, i64)> = Vec::new();
        for (i, d) in part.recent.iter().enumerate() {
            if !at_place(d) {
                continue;
            }
            place.push((i as u32, d.bin));
            let (g1, g2) = part.recent.grams_of(d);
            for x in g1.iter().chain(g2) {
                if bits & 1 << (x % 64) == 0 {
                    continue;
                }
                if let Ok(j) = fps.binary_search_by_key(x, |p| p.0) {
                    // Fingerprints of distinct 3-grams may repeat.
                    let mut j0 = j;
                    while j0 > 0 && fps[j0 - 1].0 == *x {
                        j0 -= 1;
                    }
                    for &(fp, k) in &fps[j0..] {
                        if fp != *x {
                            break;
                        }
                        // Once per complaint (a repeated 3-gram).
                        if hits[k].last() != Some(&(i as u32)) {
                            hits[k].push(i as u32);
                        }
                    }
                }
            }
        }
        // Forward-decay weights of the recent complaints, per bin (their
        // contributions to the counts, taken out of what is "usual").
        let landmark = part.landmark;
        let b_lo = place.iter().map(|p| p.1).min().unwrap_or(bin);
        let b_hi = place.iter().map(|p| p.1).max().unwrap_or(bin);
        let weight = |tau: f64| -> Vec<f64> {
            (b_lo..=b_hi)
                .map(|b| (((b * geo.bin + geo.bin / 2) - landmark) as f64 / tau).exp())
                .collect()
        };
        let (wf_bin, wb_bin) = (weight(self.tau_fg), weight(BACKGROUND_MS as f64));
        let at_bin = |w: &[f64], b: i64| w[(b - b_lo) as usize];
        let place_wf: f64 = place.iter().map(|p| at_bin(&wf_bin, p.1)).sum();
        let place_wb: f64 = place.iter().map(|p| at_bin(&wb_bin, p.1)).sum();
        let wb_now = (((now - landmark) as f64) / BACKGROUND_MS as f64).exp();
        // What the place usually writes: its background less its recent
        // complaints (those of the windows under test among them).
        let place_usual = (a.total.1 as f64 - place_wb).max(0.0);
        let learned = place_usual / wb_now >= MIN_PLACE_DOCS;
        let (lo, hi) = geo.windows_of_bin(bin);
        let novelty_until = now + geo.size / 6;
        for (k, c) in cands.iter().enumerate() {
            let hits = std::mem::take(&mut hits[k]);
            let memo = |need: u32, until: i64| (c.gram, need, until, c.fg);
            if hits.len() < m as usize {
                // No window can reach `m` before `m - hits` more come.
                memos.push(memo(m - hits.len() as u32, i64::MAX));
                continue;
            }
            let mut st = KeyState::default();
            for &i in &hits {
                let d = part.recent.get(i as usize);
                st.add(&geo, d.bin, d.caller, std::iter::empty());
            }
            let Some((w, count)) = st.hottest(lo, hi, m) else {
                // Every window, now and to come, holds at most its most
                // callers now plus the complaints still to come.
                let (_, most) = st.hot_span(i64::MIN / 4, i64::MAX / 4, u32::MAX);
                if most < m {
                    memos.push(memo(m - most, i64::MAX));
                }
                continue;
            };
            let (b0, b1) = geo.bins_of_window(w);
            let in_window: Vec<&recent::Doc> = hits
                .iter()
                .map(|&i| part.recent.get(i as usize))
                .filter(|d| (b0..=b1).contains(&d.bin))
                .collect();
            // Most of them hold an open topic's anchor: that topic's.
            if let Some(&(_, t)) = related.iter().find(|(fp, _)| {
                let with = in_window
                    .iter()
                    .filter(|d| {
                        let (g1, g2) = part.recent.grams_of(d);
                        g1.contains(fp) || g2.contains(fp)
                    })
                    .count();
                2 * with >= in_window.len()
            }) {
                merges.push((c.gram, t));
                continue;
            }
            if a.scope == Scope::Province {
                // Spread over the province: no city has it alone.
                let mut by_city: HashMap<u64, Vec<u128>> = HashMap::new();
                for d in &in_window {
                    let who = d.caller.unwrap_or(u128::MAX - d.seq as u128);
                    by_city.entry(d.city).or_default().push(who);
                }
                let top = by_city
                    .values_mut()
                    .map(|v| {
                        v.sort_unstable();
                        v.dedup();
                        v.len() as u32
                    })
                    .max()
                    .unwrap_or(0);
                if top >= m || top as f64 > PROVINCE_SHARE * count as f64 {
                    continue;
                }
            }
            // What the place usually writes: the share of its complaints
            // that held the 3-gram before, times the window's complaints.
            if !learned {
                continue;
            }
            let place_docs = place.iter().filter(|p| (b0..=b1).contains(&p.1)).count() as u32;
            let g_recent: f64 = hits
                .iter()
                .map(|&i| at_bin(&wb_bin, part.recent.get(i as usize).bin))
                .sum();
            let lambda_day = (c.bg as f64 - g_recent).max(0.0) / place_usual * place_docs as f64;
            // ... and in the last hours: the foreground, older than the
            // recent complaints (words follow the clock: `今晚`, tonight,
            // fills the evening and is rare all day long; against the
            // background alone every evening would be a new topic).
            let g_wf: f64 = hits
                .iter()
                .map(|&i| at_bin(&wf_bin, part.recent.get(i as usize).bin))
                .sum();
            let earlier_place = (a.total.0 as f64 - place_wf).max(0.0);
            let wf_now = (((now - landmark) as f64) / self.tau_fg).exp();
            let lambda_recent = if earlier_place / wf_now >= MIN_RECENT_DOCS {
                (c.fg as f64 - g_wf).max(0.0) / earlier_place * place_docs as f64
            } else {
                0.0
            };
            let lambda = lambda_day.max(lambda_recent).max(LAMBDA_FLOOR);
            if (count as f64) < RATIO * lambda || poisson_tail(lambda, count) >= P_VALUE {
                // Usual for the place: not again before the count could
                // pass at this level (for a while: the level moves with
                // the place's volume).
                let level = surge_level(lambda, RATIO, m, P_VALUE);
                if level > count {
                    memos.push(memo(level - count, novelty_until));
                }
                continue;
            }
            let place_bg = place_usual;
            found.push(Found {
                at: c.at,
                gram: c.gram,
                window: w,
                count,
                lambda,
                hits,
                place_docs,
                place_bg,
            });
        }
        (found, memos, merges)
    }

    /// Opens the topic `f` found for complaint `doc` at place `a`.
    fn open(
        &mut self,
        pi: usize,
        a: &At,
        prov_key: Option<u64>,
        f: Found,
        doc: &TopicDoc<'_>,
        wb: f32,
    ) -> Alert {
        let geo = self.geo;
        let m = self.discovery.min_callers;
        let rules = self.rules.clone();
        let part = self.parts[pi].as_mut().expect("checked");
        // Window state of the complaints holding the anchor, with samples
        // (masked when kept).
        let mut st = KeyState::default();
        for &i in &f.hits {
            let d = part.recent.get(i as usize);
            if let Some(added) = st.add(&geo, d.bin, d.caller, std::iter::empty()) {
                st.keep_sample(added, d.seq, d.id(), d.text(), &mut self.pool);
            }
        }
        let (b0, b1) = geo.bins_of_window(f.window);
        // The phrases the window's complaints share.
        let texts: Vec<String> = f
            .hits
            .iter()
            .map(|&i| part.recent.get(i as usize))
            .filter(|d| (b0..=b1).contains(&d.bin))
            .map(|d| crate::normalize::normalize(d.text()))
            .collect();
        let min_docs = texts.len().div_ceil(2).max(2);
        let sketch = &part.sketch;
        let (place_bg, place_docs) = (f.place_bg, f.place_docs as f64);
        let core = |g: u64, df: u32| -> bool {
            let (_, b) = sketch.get(key(a.key, g));
            let usual = (b as f64 - df as f64 * wb as f64).max(0.0) / place_bg;
            let lambda = (usual * place_docs).max(LAMBDA_FLOOR);
            df as f64 >= RATIO * lambda && poisson_tail(lambda, df) < CORE_P_VALUE
        };
        let mut terms: Vec<String> = phrase::shared_phrases(&texts, min_docs, core, MAX_TERMS)
            .into_iter()
            .map(|p| p.text)
            .collect();
        let anchor_text = phrase::gram_text(f.gram);
        if !terms.iter().any(|t| t.contains(anchor_text.as_str())) {
            terms.push(anchor_text);
        }
        // What it covers: every 3-gram of its terms.
        let mut covered: Vec<u64> = Vec::new();
        for t in &terms {
            let chars: Vec<char> = t.chars().collect();
            for w in chars.windows(3) {
                covered.push(gram_id(w[0], w[1], w[2]));
            }
        }
        covered.push(f.gram);
        covered.sort_unstable();
        covered.dedup();
        let province_key = match a.scope {
            Scope::Region => prov_key,
            Scope::Province => None,
        };
        for &g in &covered {
            *part.covered.entry((a.key, g)).or_default() += 1;
            if let Some(k) = province_key {
                *part.covered.entry((k, g)).or_default() += 1;
            }
        }
        let (lo, hi) = geo.windows_of_bin(geo.bin_of(doc.ts));
        let (last_hot, max) = st.hot_span(lo, hi, m);
        let hot_end = geo.end(last_hot.unwrap_or(f.window));
        let place_name = match a.scope {
            Scope::Region => doc.region.to_owned(),
            Scope::Province => rules.provinces[a.province as usize].name.clone(),
        };
        let dept = &rules.departments[self.discovery.department];
        let samples = st
            .samples(&geo, f.window)
            .into_iter()
            .map(|s| AlertSample {
                id: s.id.clone(),
                text: s.text.clone(),
            })
            .collect();
        let alert = Alert {
            alert_id: topic_alert_id(a.scope, &place_name, &terms[0], doc.ts, doc.id),
            state: AlertState::Firing,
            business: String::new(),
            business_name: String::new(),
            region: place_name,
            department: dept.id.clone(),
            department_name: dept.name.clone(),
            scope: Some(a.scope),
            kind: Some(Kind::NewTopic),
            baseline: Some(round_sig(f.lambda, 3)),
            p_value: Some(round_sig(poisson_tail(f.lambda, f.count), 3)),
            count: f.count,
            threshold: m,
            window_start: geo.start(f.window),
            window_end: geo.end(f.window),
            triggered_by: Some(doc.id.to_owned()),
            event_ts: doc.ts,
            templates: Vec::new(),
            samples,
            terms,
            resolved_by: None,
            watermark: None,
            end_of_input: false,
            reason: None,
            seq: doc.seq,
            business_index: 0,
        };
        part.open += 1;
        self.generation += 1;
        let topic = Topic {
            part: pi,
            place: a.key,
            province_key,
            anchor: f.gram,
            covered,
            state: st,
            firing: alert.clone(),
            hot_end,
            max_count: max.max(f.count),
            generation: self.generation,
        };
        let t = match self.free.pop() {
            Some(t) => {
                self.topics[t as usize] = Some(topic);
                t
            }
            None => {
                self.topics.push(Some(topic));
                (self.topics.len() - 1) as u32
            }
        };
        let part = self.parts[pi].as_mut().expect("checked");
        part.anchors.insert((a.key, f.gram), t);
        part.refresh_anchor_bits();
        self.heap.push(Reverse((hot_end, t, self.generation)));
        self.stats.opened += 1;
        alert
    }

    /// Counts complaint `doc` (bin `bin`) in open topic `t`.
    fn count_in(&mut self, t: u32, doc: &TopicDoc<'_>, bin: i64, now: i64) {
        let geo = self.geo;
        let m = self.discovery.min_callers;
        let Some(topic) = self.topics[t as usize].as_mut() else {
            return;
        };
        topic
            .state
            .trim(&geo, geo.first_live_window(now), &mut self.pool);
        let Some(added) = topic.state.add(&geo, bin, doc.caller, std::iter::empty()) else {
            return;
        };
        let (last_hot, max) = topic.state.hot_span(added.lo, added.hi, m);
        topic.max_count = topic.max_count.max(max);
        if let Some(w) = last_hot {
            let end = geo.end(w);
            if end > topic.hot_end {
                topic.hot_end = end;
                self.heap.push(Reverse((end, t, topic.generation)));
            }
        }
    }

    /// Resolves every open topic none of whose live windows reaches
    /// `min_callers` at watermark `wm` (5.5), appending the lines to `out`
    /// by scope, place, then id.
    pub fn resolve(&mut self, wm: i64, by: Resolver<'_>, out: &mut Vec<Alert>) {
        let limit = wm - self.geo.lateness;
        let mut due: Vec<u32> = Vec::new();
        while let Some(&Reverse((end, t, generation))) = self.heap.peek() {
            if end > limit {
                break;
            }
            self.heap.pop();
            if self.topics[t as usize]
                .as_ref()
                .is_some_and(|x| x.generation == generation && x.hot_end == end)
            {
                due.push(t);
            }
        }
        self.close(due, wm, by, false, None, out);
    }

    /// Like [`Topics::resolve`], marking the lines with `reason` (the idle
    /// watermark).
    pub fn resolve_because(&mut self, wm: i64, seq: u64, reason: &str, out: &mut Vec<Alert>) {
        let from = out.len();
        self.resolve(
            wm,
            Resolver {
                seq,
                id: None,
                ts: wm,
            },
            out,
        );
        for a in &mut out[from..] {
            a.reason = Some(reason.to_owned());
        }
    }

    /// End of input (5.6): every open topic resolves.
    pub fn finish(&mut self, wm: i64, out: &mut Vec<Alert>) {
        let all: Vec<u32> = (0..self.topics.len() as u32)
            .filter(|&t| self.topics[t as usize].is_some())
            .collect();
        let by = Resolver {
            seq: u64::MAX,
            id: None,
            ts: wm,
        };
        self.close(all, wm, by, true, None, out);
        self.heap.clear();
    }

    fn close(
        &mut self,
        mut due: Vec<u32>,
        wm: i64,
        by: Resolver<'_>,
        end_of_input: bool,
        reason: Option<&str>,
        out: &mut Vec<Alert>,
    ) {
        due.sort_unstable();
        due.dedup();
        let mut closed: Vec<Topic> = due
            .into_iter()
            .filter_map(|t| {
                let topic = self.topics[t as usize].take()?;
                self.free.push(t);
                Some(topic)
            })
            .collect();
        closed.sort_by(|a, b| topic_order(&a.firing, &b.firing));
        for topic in closed {
            if let Some(part) = self.parts[topic.part].as_mut() {
                uncover(part, &topic);
            }
            out.push(resolved_line(
                topic.firing,
                topic.max_count,
                topic.hot_end,
                wm,
                by,
                end_of_input,
                reason,
            ));
        }
    }

    /// The saved form (checkpoints, reloads).
    pub fn export(&self) -> TopicsState {
        TopicsState {
            learning: learning_fingerprint(&self.rules),
            partitions: self
                .parts
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let p = p.as_ref()?;
                    Some(PartitionState {
                        index: i,
                        landmark: p.landmark,
                        started: p.started,
                        sketch: p.sketch.export(),
                        recent: p.recent.export(),
                        pushed_out: p.recent.pushed_out,
                    })
                })
                .collect(),
            topics: {
                let mut v: Vec<&Topic> = self.topics.iter().flatten().collect();
                v.sort_by(|a, b| topic_order(&a.firing, &b.firing));
                v.into_iter()
                    .map(|t| TopicState {
                        partition: t.part,
                        anchor: t.anchor,
                        covered: t.covered.clone(),
                        state: t.state.clone(),
                        firing: t.firing.to_json(),
                        hot_end: t.hot_end,
                        max_count: t.max_count,
                    })
                    .collect()
            },
            stats: self.stats(),
        }
    }

    /// A detector for `rules` continuing from `saved`. What it learned is
    /// kept when the rules' windows and region table are unchanged; its
    /// open topics when, besides, `[discovery]` is; otherwise they resolve
    /// (reason `rules_reload`) into `dropped`, at watermark `wm` and input
    /// position `seq`.
    pub fn restore(
        rules: Arc<Rules>,
        saved: TopicsState,
        wm: Option<i64>,
        seq: u64,
        dropped: &mut Vec<Alert>,
    ) -> Option<Self> {
        let mut t = Topics::new(rules.clone());
        let learned = saved.learning == learning_fingerprint(&rules);
        let geo = Geometry::new(rules.window);
        if let Some(t) = t.as_mut().filter(|_| learned) {
            t.stats = saved.stats.clone();
            for p in &saved.partitions {
                let Some(sketch) = sketch::Sketch::restore(&p.sketch, SKETCH_LINES) else {
                    continue;
                };
                if p.index >= PARTITIONS {
                    continue;
                }
                let mut part = Partition::new(p.started);
                part.sketch = sketch;
                part.landmark = p.landmark;
                part.recent.pushed_out = p.pushed_out;
                for d in &p.recent {
                    let province = rules.province_of(rules.region_of(&d.region));
                    part.recent.push_saved(
                        d,
                        geo.bin_of(d.ts),
                        place_hash(&d.region),
                        province.map_or(u32::MAX, |p| p as u32),
                    );
                }
                t.parts[p.index] = Some(Box::new(part));
            }
        }
        let mut gone: Vec<Alert> = Vec::new();
        for s in saved.topics {
            let Ok(mut firing) = serde_json::from_str::<Alert>(&s.firing) else {
                continue;
            };
            firing.business_index = 0;
            let keep = learned
                && t.as_ref().is_some_and(|t| {
                    firing.threshold == t.discovery.min_callers
                        && firing.department == rules.departments[t.discovery.department].id
                        && t.parts.get(s.partition).is_some_and(Option::is_some)
                });
            match t.as_mut().filter(|_| keep) {
                Some(t) => t.reopen(s, firing),
                None => gone.push(resolved_line(
                    firing,
                    s.max_count,
                    s.hot_end,
                    wm.unwrap_or(0),
                    Resolver {
                        seq,
                        id: None,
                        ts: wm.unwrap_or(0),
                    },
                    false,
                    Some("rules_reload"),
                )),
            }
        }
        gone.sort_by(topic_order);
        dropped.extend(gone);
        t
    }

    /// Puts a saved open topic back.
    fn reopen(&mut self, s: TopicState, firing: Alert) {
        let rules = self.rules.clone();
        let scope = firing.scope.unwrap_or(Scope::Region);
        let (place, province_key) = match scope {
            Scope::Region => {
                let p = rules.province_of(rules.region_of(&firing.region));
                (
                    place_hash(&firing.region),
                    p.map(|p| rules.provinces[p].hash ^ PROVINCE_SALT),
                )
            }
            Scope::Province => {
                let Some(p) = rules.provinces.iter().position(|p| p.name == firing.region) else {
                    return;
                };
                (rules.provinces[p].hash ^ PROVINCE_SALT, None)
            }
        };
        self.generation += 1;
        let topic = Topic {
            part: s.partition,
            place,
            province_key,
            anchor: s.anchor,
            covered: s.covered,
            state: s.state,
            firing,
            hot_end: s.hot_end,
            max_count: s.max_count,
            generation: self.generation,
        };
        let t = self.topics.len() as u32;
        let Some(part) = self.parts[s.partition].as_mut() else {
            return;
        };
        for &g in &topic.covered {
            *part.covered.entry((place, g)).or_default() += 1;
            if let Some(k) = province_key {
                *part.covered.entry((k, g)).or_default() += 1;
            }
        }
        part.anchors.insert((place, topic.anchor), t);
        part.refresh_anchor_bits();
        part.open += 1;
        self.heap
            .push(Reverse((topic.hot_end, t, topic.generation)));
        self.topics.push(Some(topic));
    }
}

/// Takes what `topic` covers out of its partition.
fn uncover(part: &mut Partition, topic: &Topic) {
    for &g in &topic.covered {
        for k in std::iter::once(topic.place).chain(topic.province_key) {
            if let Some(n) = part.covered.get_mut(&(k, g)) {
                *n -= 1;
                if *n == 0 {
                    part.covered.remove(&(k, g));
                }
            }
        }
    }
    part.anchors.remove(&(topic.place, topic.anchor));
    part.refresh_anchor_bits();
    part.open -= 1;
}

/// The order of new topics' lines among themselves: region before
/// province, place, id (as [`crate::alert::output_order`]).
fn topic_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    (a.scope, &a.region, &a.alert_id).cmp(&(b.scope, &b.region, &b.alert_id))
}

/// A hash of what the learned state depends on: the window settings, the
/// region table and the detector's layout. Learned state survives a reload
/// or a restart only when it is unchanged.
pub fn learning_fingerprint(rules: &Rules) -> u64 {
    let mut canon = format!("{:?}\u{1}{PARTITIONS}\u{1}{SKETCH_LINES}", rules.window);
    for r in &rules.regions {
        canon.push_str(&format!(
            "\u{2}{}\u{3}{}",
            r.id, rules.provinces[r.province].name
        ));
    }
    xxhash_rust::xxh3::xxh3_64(canon.as_bytes())
}

/// The saved form of [`Topics`]: texts in it are masked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicsState {
    /// [`learning_fingerprint`] of the rules it was made with.
    pub learning: u64,
    partitions: Vec<PartitionState>,
    topics: Vec<TopicState>,
    #[serde(default)]
    pub stats: TopicStats,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartitionState {
    index: usize,
    landmark: i64,
    started: i64,
    sketch: sketch::SketchState,
    recent: Vec<recent::DocState>,
    #[serde(default)]
    pushed_out: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicState {
    partition: usize,
    anchor: u64,
    covered: Vec<u64>,
    state: KeyState,
    /// The firing line as written.
    firing: String,
    hot_end: i64,
    max_count: u32,
}
