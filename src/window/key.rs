//! The window state of one (business, region) key: distinct-caller counts
//! per live window, and per bin the complaints per template and the last
//! three complaints. See the parent module for the layout and why.

use std::collections::VecDeque;
use std::hash::{BuildHasherDefault, Hasher};

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::{Geometry, ceil_div};
use crate::mask::{mask_and_cut, mask_cut_into};

/// A caller is stored as a 128-bit hash of its exact bytes: two callers
/// collide with probability ~2^-128 per pair, i.e. never, and a key's
/// callers then cost 16 bytes each, whatever the length of the caller field.
pub type CallerId = u128;

/// Hashes a caller string.
#[inline]
pub fn caller_id(caller: &str) -> CallerId {
    xxhash_rust::xxh3::xxh3_128(caller.as_bytes())
}

/// The caller ids are already uniform hashes: use their low bits directly.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

type CallerMap = HashMap<CallerId, SmallVec<[i64; 2]>, BuildHasherDefault<IdHasher>>;

/// Callers a key keeps in a plain list before it switches to a hash map.
const SMALL_CALLERS: usize = 32;

/// The callers of one key: for each, the bins it complained in.
///
/// Most keys hear from a handful of callers per window, so they are kept
/// as a short list of (caller, bin) occurrences, scanned in full: a few
/// consecutive cache lines, where a hash map cost two scattered ones per
/// lookup and several times the memory (its buckets and control bytes
/// for a table sized in powers of two). A key that passes
/// [`SMALL_CALLERS`] occurrences, such as one in a real batch complaint,
/// moves to the map, and back once pruning has shrunk it.
#[derive(Debug, Clone)]
enum Callers {
    /// (caller, bin) occurrences, in input order; a caller may appear once
    /// per bin it complained in.
    Small(Vec<([u64; 2], i64)>),
    Map(CallerMap),
}

impl Default for Callers {
    fn default() -> Self {
        Callers::Small(Vec::new())
    }
}

#[inline]
fn id_words(c: CallerId) -> [u64; 2] {
    [c as u64, (c >> 64) as u64]
}

impl Callers {
    /// Records that caller `c` complained in `bin`; returns the nearest
    /// bins it complained in before and after `bin`, or `None` when it had
    /// already complained in `bin` itself.
    #[inline]
    fn add(&mut self, c: CallerId, bin: i64) -> Option<(Option<i64>, Option<i64>)> {
        match self {
            Callers::Small(v) => {
                let id = id_words(c);
                let (mut prev, mut next) = (None::<i64>, None::<i64>);
                for &(x, b) in v.iter() {
                    if x == id {
                        if b == bin {
                            return None;
                        }
                        if b < bin {
                            prev = Some(prev.map_or(b, |p| p.max(b)));
                        } else {
                            next = Some(next.map_or(b, |q| q.min(b)));
                        }
                    }
                }
                v.push((id, bin));
                if v.len() > SMALL_CALLERS {
                    let mut m = CallerMap::default();
                    for &(x, b) in v.iter() {
                        let occ: &mut SmallVec<[i64; 2]> =
                            m.entry(x[0] as u128 | (x[1] as u128) << 64).or_default();
                        if let Err(pos) = occ.binary_search(&b) {
                            occ.insert(pos, b);
                        }
                    }
                    *self = Callers::Map(m);
                }
                Some((prev, next))
            }
            Callers::Map(m) => {
                let occ = m.entry(c).or_default();
                match occ.binary_search(&bin) {
                    Ok(_) => None,
                    Err(pos) => {
                        let prev = (pos > 0).then(|| occ[pos - 1]);
                        let next = occ.get(pos).copied();
                        occ.insert(pos, bin);
                        Some((prev, next))
                    }
                }
            }
        }
    }

    /// Forgets every occurrence before `first_bin`.
    fn prune(&mut self, first_bin: i64) {
        match self {
            Callers::Small(v) => v.retain(|&(_, b)| b >= first_bin),
            Callers::Map(m) => {
                m.retain(|_, occ| {
                    occ.retain(|b| *b >= first_bin);
                    !occ.is_empty()
                });
                let occurrences: usize = m.values().map(|o| o.len()).sum();
                if occurrences <= SMALL_CALLERS / 2 {
                    *self = Callers::Small(Self::occurrences(m));
                }
            }
        }
    }

    /// Every (caller, bin) of a map, ordered by bin then caller (a stable
    /// order: the map's own is not).
    fn occurrences(m: &CallerMap) -> Vec<([u64; 2], i64)> {
        let mut v: Vec<([u64; 2], i64)> = m
            .iter()
            .flat_map(|(&c, occ)| occ.iter().map(move |&b| (id_words(c), b)))
            .collect();
        v.sort_unstable_by_key(|&(x, b)| (b, x));
        v
    }

    fn clear(&mut self) {
        *self = Callers::default();
    }

    /// Distinct callers held.
    fn len(&self) -> usize {
        match self {
            Callers::Small(v) => {
                let mut ids: Vec<[u64; 2]> = v.iter().map(|&(x, _)| x).collect();
                ids.sort_unstable();
                ids.dedup();
                ids.len()
            }
            Callers::Map(m) => m.len(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Callers::Small(v) => v.capacity() * std::mem::size_of::<([u64; 2], i64)>(),
            Callers::Map(m) => m.capacity() * (16 + std::mem::size_of::<SmallVec<[i64; 2]>>() + 1),
        }
    }

    /// The map form (checkpoints store callers as a map).
    fn to_map(&self) -> CallerMap {
        match self {
            Callers::Small(v) => {
                let mut m = CallerMap::default();
                for &(x, b) in v {
                    let occ = m.entry(x[0] as u128 | (x[1] as u128) << 64).or_default();
                    if let Err(pos) = occ.binary_search(&b) {
                        occ.insert(pos, b);
                    }
                }
                m
            }
            Callers::Map(m) => m.clone(),
        }
    }

    fn from_map(m: CallerMap) -> Self {
        let occurrences: usize = m.values().map(|o| o.len()).sum();
        if occurrences <= SMALL_CALLERS {
            Callers::Small(Self::occurrences(&m))
        } else {
            Callers::Map(m)
        }
    }
}

/// A complaint kept as a possible alert sample: its input position, id, and
/// its text as an alert shows it: masked, then cut to [`SAMPLE_CHARS`]
/// characters (5.4, 5.12). It is masked when it is kept, so that window
/// state, and every checkpoint of it, holds no phone or ID-card number in
/// clear.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub seq: u64,
    pub id: String,
    pub text: String,
}

/// Bytes of a complaint's text that keeping it as a sample looks at: enough
/// for 400 characters of any script, more than the [`SAMPLE_CHARS`] an
/// alert shows even after masking shortens numbers, so masking then cutting
/// this prefix gives the same result as masking then cutting the whole text.
pub const SAMPLE_BYTES: usize = 1600;

/// Characters of sample text in an alert (5.4).
pub const SAMPLE_CHARS: usize = 300;

/// The samples kept per bin.
pub const SAMPLES: usize = 3;

/// `n` complaints of template `t` (index within the business) in bin
/// `bin`: a key keeps its template counts as runs like this, in input
/// order, rather than as an array over every bin. A key sees a complaint
/// every few minutes of event time, so nearly all of an array's bins were
/// empty, and they made a key's state ten times the size of its
/// complaints; the whole store then no longer fitted the L2 cache, and
/// every count waited on memory. Consecutive complaints of one template in
/// one bin share a run, so a flood into one key grows no faster than its
/// bins.
#[derive(Debug, Clone, Copy)]
struct Run {
    bin: i64,
    n: u32,
    t: u16,
}

/// How many of the newest runs a complaint looks through for one of its
/// (bin, template) to join: a record matching two templates of a business
/// adds two runs, so the newest one alone would rarely do.
const RUN_JOIN: usize = 4;

/// A bin as checkpoints store it (the layout before bins were plain data,
/// kept so that saved state reads back across versions).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct BinWire {
    /// (template index within its business, complaints).
    templates: SmallVec<[(u16, u32); 2]>,
    /// The newest complaints of this bin, oldest first (at most [`SAMPLES`]).
    samples: Vec<Sample>,
}

/// What a new complaint did to its key's windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// The windows containing the complaint, inclusive.
    pub lo: i64,
    pub hi: i64,
    /// The complaint's bin.
    pub bin: i64,
    /// Whether its caller had not complained about this key within one
    /// window length before (or is anonymous): what baselines learn.
    pub fresh: bool,
}

/// Whether a complaint whose windows hold at most `max` distinct callers
/// right after it was counted must be kept as a sample, for a business
/// whose alerts fire at `threshold`.
///
/// An alert's samples are the last [`SAMPLES`] complaints (by input
/// position) of the window that fired, and the window fires when its count
/// reaches `threshold`. A window's count never falls while it lives, and
/// each complaint adds at most one to it; so a complaint followed by at most
/// `SAMPLES - 1` others in the window it fires in saw that window at
/// `threshold - (SAMPLES - 1)` or more when it was counted. Complaints that
/// saw less can never be a sample and are not copied: on a busy day nearly
/// every key sits far below its threshold, and copying each complaint's
/// text cost more than counting it (and filled the cache with texts no
/// alert would show). Keeping a subset of the per-bin samples that contains
/// every possible sample leaves the last three of any window unchanged.
#[inline]
pub fn keeps_sample(max: u32, threshold: u32) -> bool {
    max + (SAMPLES as u32 - 1) >= threshold
}

/// The window state of one key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "KeyStateWire", into = "KeyStateWire")]
pub struct KeyState {
    /// Index of the window `counts[0]` belongs to.
    w0: i64,
    /// Distinct callers per window.
    counts: VecDeque<u32>,
    /// Template counts, in input order (see [`Run`]).
    runs: VecDeque<Run>,
    /// The newest bin of any run (meaningful while `runs` is not empty).
    max_bin: i64,
    /// (bin, complaint): the newest [`SAMPLES`] kept complaints of each
    /// bin (see [`keeps_sample`]; most keys have none), ordered by bin and
    /// within a bin by input order, so that a bin's samples are found by a
    /// binary search and the dead ones are a prefix.
    samples: Vec<(i64, Sample)>,
    /// Per caller, the bins it complained in.
    callers: Callers,
    /// The first live bin when callers were last pruned.
    pruned_at: i64,
}

/// [`KeyState`] as checkpoints store it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct KeyStateWire {
    w0: i64,
    counts: VecDeque<u32>,
    b0: i64,
    bins: VecDeque<BinWire>,
    #[serde(with = "caller_map_serde")]
    callers: CallerMap,
    #[serde(default)]
    pruned_at: i64,
    /// Whether the samples' texts are masked and cut. State saved before
    /// samples were masked when kept lacks it; its raw texts are masked
    /// when read back.
    #[serde(default)]
    samples_masked: bool,
}

impl From<KeyState> for KeyStateWire {
    fn from(k: KeyState) -> Self {
        let b0 = k.runs.iter().map(|r| r.bin).min().unwrap_or(0);
        let len = if k.runs.is_empty() {
            0
        } else {
            (k.max_bin - b0 + 1) as usize
        };
        let mut bins: VecDeque<BinWire> = (0..len).map(|_| BinWire::default()).collect();
        let at = |bin: i64| (bin - b0) as usize;
        for r in &k.runs {
            if let Some(b) = bins.get_mut(at(r.bin)) {
                match b.templates.iter_mut().find(|(t, _)| *t == r.t) {
                    Some((_, n)) => *n += r.n,
                    None => b.templates.push((r.t, r.n)),
                }
            }
        }
        for b in &mut bins {
            b.templates.sort_unstable();
        }
        for (bin, sample) in k.samples {
            if let Some(b) = bins.get_mut(at(bin)) {
                b.samples.push(sample);
            }
        }
        KeyStateWire {
            w0: k.w0,
            counts: k.counts,
            b0,
            bins,
            callers: k.callers.to_map(),
            pruned_at: k.pruned_at,
            samples_masked: true,
        }
    }
}

impl From<KeyStateWire> for KeyState {
    fn from(w: KeyStateWire) -> Self {
        let mut k = KeyState {
            w0: w.w0,
            counts: w.counts,
            runs: VecDeque::new(),
            max_bin: 0,
            samples: Vec::new(),
            callers: Callers::from_map(w.callers),
            pruned_at: w.pruned_at,
        };
        let mut samples: Vec<(i64, Sample)> = Vec::new();
        for (i, b) in w.bins.into_iter().enumerate() {
            let bin = w.b0 + i as i64;
            for (t, n) in b.templates {
                if n > 0 {
                    k.runs.push_back(Run { bin, n, t });
                    k.max_bin = bin;
                }
            }
            samples.extend(b.samples.into_iter().map(|mut s| {
                if !w.samples_masked {
                    s.text = mask_and_cut(&s.text, SAMPLE_CHARS);
                }
                (bin, s)
            }));
        }
        // By bin, then input order.
        samples.sort_by_key(|(bin, s)| (*bin, s.seq));
        k.samples = samples;
        k
    }
}

mod caller_map_serde {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &CallerMap, s: S) -> Result<S::Ok, S::Error> {
        let mut v: Vec<(String, &SmallVec<[i64; 2]>)> =
            m.iter().map(|(k, b)| (format!("{k:032x}"), b)).collect();
        v.sort();
        s.collect_seq(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CallerMap, D::Error> {
        let v: Vec<(String, SmallVec<[i64; 2]>)> = Vec::deserialize(d)?;
        v.into_iter()
            .map(|(k, b)| {
                u128::from_str_radix(&k, 16)
                    .map(|k| (k, b))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

/// The largest of `s`, 0 when empty (a fold LLVM vectorises).
#[inline]
fn max_of(s: &[u32]) -> u32 {
    s.iter().fold(0, |m, &c| m.max(c))
}

/// Positions `a..b` of a deque as its (up to) two contiguous parts.
#[inline]
fn slices<T>(d: &VecDeque<T>, a: usize, b: usize) -> [&[T]; 2] {
    let (s1, s2) = d.as_slices();
    let n = s1.len();
    [&s1[a.min(n)..b.min(n)], &s2[a.max(n) - n..b.max(n) - n]]
}

/// [`slices`], mutable.
#[inline]
fn slices_mut<T>(d: &mut VecDeque<T>, a: usize, b: usize) -> [&mut [T]; 2] {
    let (s1, s2) = d.as_mut_slices();
    let n = s1.len();
    [
        &mut s1[a.min(n)..b.min(n)],
        &mut s2[a.max(n) - n..b.max(n) - n],
    ]
}

impl KeyState {
    /// True when the key holds no window data at all.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.counts.is_empty()
    }

    fn ensure_windows(&mut self, lo: i64, hi: i64) {
        if self.counts.is_empty() {
            self.w0 = lo;
        }
        while lo < self.w0 {
            self.counts.push_front(0);
            self.w0 -= 1;
        }
        let need = (hi - self.w0 + 1) as usize;
        if self.counts.len() < need {
            self.counts.resize(need, 0);
        }
    }

    /// Adds `n` complaints of template `t` in bin `bin`.
    fn add_run(&mut self, bin: i64, t: u16, n: u32) {
        if let Some(r) = self
            .runs
            .iter_mut()
            .rev()
            .take(RUN_JOIN)
            .find(|r| r.bin == bin && r.t == t)
        {
            r.n += n;
            return;
        }
        if self.runs.is_empty() || bin > self.max_bin {
            self.max_bin = bin;
        }
        self.runs.push_back(Run { bin, n, t });
    }

    /// Asks the CPU to load the parts of this key that counting a
    /// complaint reads — the newest window counts, both ends of the runs,
    /// the caller list — all at once. They live in separate allocations
    /// that the key was last touched minutes of event time ago, so they
    /// are rarely cached; without this the misses came one after another,
    /// each address known only once the code before it had run.
    #[inline]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            #[inline(always)]
            fn at<T>(s: &[T], i: usize) {
                if let Some(x) = s.get(i) {
                    // SAFETY: a prefetch only hints; `x` is a valid reference.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(x as *const T as *const i8) };
                }
            }
            let (a, b) = self.counts.as_slices();
            let (last, back) = if b.is_empty() {
                (a, a.len())
            } else {
                (b, b.len())
            };
            at(last, back.saturating_sub(1));
            at(last, back.saturating_sub(17));
            at(a, 0);
            let (ra, rb) = self.runs.as_slices();
            at(ra, 0);
            if rb.is_empty() {
                at(ra, ra.len().saturating_sub(1));
            } else {
                at(rb, rb.len() - 1);
            }
            if let Callers::Small(v) = &self.callers {
                at(v, 0);
                at(v, 3);
                at(v, 6);
            }
        }
    }

    /// The distinct callers of window `w` (0 outside the stored range).
    #[inline]
    pub fn count(&self, w: i64) -> u32 {
        if w < self.w0 {
            return 0;
        }
        self.counts
            .get((w - self.w0) as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Counts one complaint in bin `bin`.
    ///
    /// The distinct count of a window grows exactly when the window holds no
    /// earlier complaint of the same caller. With `p` the caller's nearest
    /// bin before `bin` and `q` the nearest after, the windows containing
    /// `bin` that also contain `p` are those starting at or before `p`, and
    /// those containing `q` end at or after `q`; every other window
    /// containing `bin` gains one. An anonymous complaint is its own caller,
    /// so all its windows gain one.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        g: &Geometry,
        bin: i64,
        caller: Option<CallerId>,
        templates: impl Iterator<Item = u16>,
    ) -> Option<Added> {
        let (lo, hi) = g.windows_of_bin(bin);
        if lo > hi {
            return None;
        }
        self.ensure_windows(lo, hi);
        let (mut glo, mut ghi) = (lo, hi);
        let mut fresh = true;
        if let Some(c) = caller {
            match self.callers.add(c, bin) {
                None => {
                    ghi = glo - 1;
                    fresh = false;
                }
                Some((prev, next)) => {
                    fresh = prev.is_none_or(|p| bin - p >= g.n);
                    if let Some(p) = prev {
                        glo = glo.max(p.div_euclid(g.s) + 1);
                    }
                    if let Some(q) = next {
                        ghi = ghi.min(ceil_div(q - g.n + 1, g.s) - 1);
                    }
                }
            }
        }
        if glo <= ghi {
            let (a, b) = ((glo - self.w0) as usize, (ghi - self.w0 + 1) as usize);
            for part in slices_mut(&mut self.counts, a, b) {
                for c in part {
                    *c += 1;
                }
            }
        }
        for t in templates {
            self.add_run(bin, t, 1);
        }
        Some(Added { lo, hi, bin, fresh })
    }

    /// Keeps a complaint counted by [`KeyState::add`] (which returned
    /// `added`) as a sample of its bin, the bin's oldest sample making room.
    /// Its text is masked and cut here, once, into the reused buffer of the
    /// sample it replaces (or one from `pool`).
    ///
    /// Only complaints that can still end up among an alert's last
    /// [`SAMPLES`] need keeping; see [`keeps_sample`].
    pub fn keep_sample(
        &mut self,
        added: Added,
        seq: u64,
        id: &str,
        text: &str,
        pool: &mut Vec<Sample>,
    ) {
        let bin = added.bin;
        // The bin's samples are `from..to`; nearly always the newest bin,
        // at the end. So look at the end first: a key near its threshold
        // keeps samples for every bin of its window, and a binary search
        // over them touched a cache line per probe where this touches the
        // last one or two (the slice is rarely in cache when a complaint
        // arrives). A bin holds at most `SAMPLES`, so the walk back is short.
        let to = match self.samples.last() {
            Some((b, _)) if *b > bin => self.samples.partition_point(|(b, _)| *b <= bin),
            _ => self.samples.len(),
        };
        let mut from = to;
        while from > 0 && to - from < SAMPLES && self.samples[from - 1].0 == bin {
            from -= 1;
        }
        let (mut s, at) = if to - from == SAMPLES {
            (self.samples.remove(from).1, to - 1)
        } else {
            (pool.pop().unwrap_or_default(), to)
        };
        s.seq = seq;
        s.id.clear();
        s.id.push_str(id);
        s.text.clear();
        mask_cut_into(
            &text[..floor_char_boundary(text, SAMPLE_BYTES)],
            SAMPLE_CHARS,
            &mut s.text,
        );
        self.samples.insert(at, (bin, s));
    }

    /// Among windows `lo..=hi`, the one with the most distinct callers if it
    /// reaches `threshold`; ties go to the earliest (5.4).
    pub fn hottest(&self, lo: i64, hi: i64, threshold: u32) -> Option<(i64, u32)> {
        let mut best: Option<(i64, u32)> = None;
        for w in lo..=hi {
            let c = self.count(w);
            if c >= threshold && best.is_none_or(|(_, b)| c > b) {
                best = Some((w, c));
            }
        }
        best
    }

    /// The latest window in `lo..=hi` at or above `threshold`, and the most
    /// distinct callers of any window there.
    ///
    /// Runs after every count, over the 30-odd windows of a complaint, so
    /// it works on the deque's contiguous parts (a plain loop over
    /// indices paid the deque's wrap-around arithmetic and a bounds check
    /// per window): the maximum is one vectorised pass, and the latest hot
    /// window is only looked for when the maximum reaches the threshold,
    /// which on a normal day it almost never does.
    pub fn hot_span(&self, lo: i64, hi: i64, threshold: u32) -> (Option<i64>, u32) {
        // Windows outside the stored range count 0: only the stored part of
        // lo..=hi can be hot.
        let from = (lo.max(self.w0) - self.w0) as usize;
        let to = ((hi - self.w0 + 1).max(0) as usize).min(self.counts.len());
        if from >= to {
            return (None, 0);
        }
        let [p, q] = slices(&self.counts, from, to);
        // Each part on its own, so that each is one vectorised reduction.
        let max = max_of(p).max(max_of(q));
        if max < threshold {
            return (None, max);
        }
        let last = match q.iter().rposition(|&c| c >= threshold) {
            Some(k) => p.len() + k,
            None => p.iter().rposition(|&c| c >= threshold).unwrap_or(0),
        };
        (Some(self.w0 + (from + last) as i64), max)
    }

    /// Complaints per template (index within the business) in window `w`,
    /// ascending by template.
    pub fn template_counts(&self, g: &Geometry, w: i64) -> SmallVec<[(u16, u32); 8]> {
        let mut out: SmallVec<[(u16, u32); 8]> = SmallVec::new();
        let (a, b) = g.bins_of_window(w);
        for r in self.runs.iter().filter(|r| (a..=b).contains(&r.bin)) {
            match out.iter_mut().find(|(x, _)| *x == r.t) {
                Some((_, m)) => *m += r.n,
                None => out.push((r.t, r.n)),
            }
        }
        out.sort_unstable();
        out
    }

    /// The last [`SAMPLES`] complaints of window `w` in input order.
    pub fn samples(&self, g: &Geometry, w: i64) -> SmallVec<[&Sample; SAMPLES]> {
        // The window's bins' samples are one range; its last three in
        // input order are the three newest among them.
        let (a, b) = g.bins_of_window(w);
        let from = self.samples.partition_point(|(bin, _)| *bin < a);
        let to = self.samples.partition_point(|(bin, _)| *bin <= b);
        let mut all: SmallVec<[&Sample; 16]> =
            self.samples[from..to].iter().map(|(_, s)| s).collect();
        all.sort_unstable_by_key(|s| std::cmp::Reverse(s.seq));
        let mut out: SmallVec<[&Sample; SAMPLES]> = all.into_iter().take(SAMPLES).collect();
        out.reverse();
        out
    }

    /// Frees everything that belongs only to windows before `first_window`;
    /// samples go back to `pool`. Returns true when nothing is left.
    ///
    /// Callers are pruned lazily, once a whole window length of bins has
    /// died since the last pruning: an occurrence in a dead bin only ever
    /// limits dead windows (see [`KeyState::add`]), so keeping it a while is
    /// harmless, and pruning every minute cost more than all the counting.
    pub fn trim(&mut self, g: &Geometry, first_window: i64, pool: &mut Vec<Sample>) -> bool {
        let first_bin = first_window * g.s;
        if self.w0 < first_window && !self.counts.is_empty() {
            let dead = ((first_window - self.w0) as usize).min(self.counts.len());
            self.counts.drain(..dead);
            self.w0 += dead as i64;
        }
        let mut trimmed_bins = false;
        // Runs are in input order, so nearly in bin order: the dead ones
        // are at the front, but for a late complaint's run, which waits
        // behind newer ones (no live window's bins include it meanwhile).
        while self.runs.front().is_some_and(|r| r.bin < first_bin) {
            self.runs.pop_front();
            trimmed_bins = true;
        }
        if self.samples.first().is_some_and(|(b, _)| *b < first_bin) {
            // A walk from the front, not a binary search: it reads only
            // the dead samples, which the drain reads anyway, where the
            // search's probes missed the cache over a busy key's samples.
            let dead = self
                .samples
                .iter()
                .take_while(|(b, _)| *b < first_bin)
                .count();
            let room = 4096usize.saturating_sub(pool.len());
            pool.extend(self.samples.drain(..dead).map(|(_, s)| s).take(room));
        }
        // A short list is pruned with every trim (a pass over a few cache
        // lines); a map only once a whole window length of bins has died.
        let small = matches!(self.callers, Callers::Small(_));
        if trimmed_bins && (small || first_bin - self.pruned_at >= g.n) {
            self.pruned_at = first_bin;
            self.callers.prune(first_bin);
        }
        if self.counts.is_empty() && self.runs.is_empty() {
            self.callers.clear();
            pool.extend(
                self.samples
                    .drain(..)
                    .map(|(_, s)| s)
                    .take(4096usize.saturating_sub(pool.len())),
            );
            true
        } else {
            false
        }
    }

    /// The window index from which [`KeyState::trim`] frees everything
    /// (every stored window and bin is dead), if anything is stored.
    pub fn back_due(&self, g: &Geometry) -> Option<i64> {
        let w = (!self.counts.is_empty()).then(|| self.w0 + self.counts.len() as i64);
        let b = (!self.runs.is_empty()).then(|| self.max_bin.div_euclid(g.s) + 1);
        match (w, b) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        }
    }

    /// The most distinct callers of any window at or after `first_window`.
    pub fn current_max(&self, first_window: i64) -> (u32, i64) {
        let mut best = (0, first_window);
        for (i, &c) in self.counts.iter().enumerate() {
            let w = self.w0 + i as i64;
            if w >= first_window && c > best.0 {
                best = (c, w);
            }
        }
        best
    }

    /// Approximate heap bytes held by this key.
    pub fn heap_bytes(&self) -> usize {
        self.counts.capacity() * 4
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + self.samples.capacity() * std::mem::size_of::<(i64, Sample)>()
            + self
                .samples
                .iter()
                .map(|(_, s)| s.id.capacity() + s.text.capacity())
                .sum::<usize>()
            + self.callers.heap_bytes()
    }

    /// Number of distinct callers held.
    pub fn callers(&self) -> usize {
        self.callers.len()
    }
}

/// The largest char boundary of `s` at or below `at`.
#[inline]
pub fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut i = at;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::WindowSpec;

    const M: i64 = 60_000;

    fn g() -> Geometry {
        Geometry::new(WindowSpec {
            size_ms: 5 * M,
            slide_ms: M,
            allowed_lateness_ms: 2 * M,
        })
    }

    fn add(k: &mut KeyState, ts: i64, caller: Option<&str>, seq: u64) -> Added {
        let g = g();
        let a = k
            .add(&g, g.bin_of(ts), caller.map(caller_id), [0u16].into_iter())
            .unwrap();
        k.keep_sample(a, seq, &format!("id{seq}"), "text", &mut Vec::new());
        a
    }

    #[test]
    fn distinct_and_anonymous_callers() {
        let mut k = KeyState::default();
        add(&mut k, 10 * M, Some("a"), 1);
        add(&mut k, 10 * M + 1, Some("a"), 2); // same caller, same bin
        add(&mut k, 11 * M, Some("a"), 3); // same caller, next bin
        add(&mut k, 11 * M, None, 4); // anonymous
        add(&mut k, 11 * M, None, 5); // another anonymous: its own caller
        add(&mut k, 12 * M, Some("b"), 6);
        // Window w covers minutes [w, w+5).
        assert_eq!(k.count(6), 1, "[6,11): a at 10");
        assert_eq!(k.count(7), 3, "[7,12): a, anon, anon");
        assert_eq!(k.count(8), 4, "[8,13): a, anon, anon, b");
        assert_eq!(k.count(10), 4, "[10,15): a, anon, anon, b");
        assert_eq!(k.count(11), 4, "[11,16): a (at 11), anon, anon, b");
        assert_eq!(k.count(12), 1, "[12,17): b");
        assert_eq!(k.count(13), 0);
    }

    #[test]
    fn out_of_order_caller_occurrences() {
        // Caller a at minute 14, then late at minute 10: windows containing
        // both must not count a twice.
        let mut k = KeyState::default();
        add(&mut k, 14 * M, Some("a"), 1);
        add(&mut k, 10 * M, Some("a"), 2);
        add(&mut k, 12 * M, Some("a"), 3);
        for w in 6..=14 {
            assert_eq!(k.count(w), 1, "window {w}");
        }
        assert_eq!(k.count(15), 0);
    }

    #[test]
    fn threshold_is_reached_at_equality() {
        let mut k = KeyState::default();
        for (i, c) in ["a", "b", "c"].iter().enumerate() {
            let a = add(&mut k, 10 * M + i as i64, Some(c), i as u64);
            let hot = k.hottest(a.lo, a.hi, 3);
            assert_eq!(hot.is_some(), i == 2, "after {} callers", i + 1);
        }
        // All of windows 6..=10 hold the three; ties go to the earliest.
        assert_eq!(k.hottest(6, 10, 3), Some((6, 3)));
    }

    #[test]
    fn samples_are_the_last_three_in_input_order() {
        let mut k = KeyState::default();
        add(&mut k, 10 * M, Some("a"), 1);
        add(&mut k, 12 * M, Some("b"), 2);
        add(&mut k, 10 * M, Some("c"), 3);
        add(&mut k, 11 * M, Some("d"), 4);
        add(&mut k, 10 * M, Some("e"), 5);
        add(&mut k, 10 * M, Some("f"), 6);
        let ids: Vec<u64> = k.samples(&g(), 8).iter().map(|s| s.seq).collect();
        assert_eq!(ids, vec![4, 5, 6]);
        let ids: Vec<u64> = k.samples(&g(), 11).iter().map(|s| s.seq).collect();
        assert_eq!(ids, vec![2, 4]);
        let t = k.template_counts(&g(), 8);
        assert_eq!(t.as_slice(), &[(0, 6)]);
    }

    #[test]
    fn trim_frees_dead_windows() {
        let g = g();
        let mut k = KeyState::default();
        add(&mut k, 10 * M, Some("a"), 1);
        add(&mut k, 20 * M, Some("a"), 2);
        let wm = 20 * M;
        assert!(!k.trim(&g, g.first_live_window(wm), &mut Vec::new()));
        assert_eq!(
            k.count(10),
            0,
            "window [10,15) is dead at wm 20 with lateness 2"
        );
        assert_eq!(k.callers(), 1);
        let wm = 40 * M;
        assert!(k.trim(&g, g.first_live_window(wm), &mut Vec::new()));
        assert!(k.is_empty());
        assert_eq!(k.callers(), 0);
    }

    #[test]
    fn a_bin_holds_any_number_of_templates() {
        let g = g();
        let mut k = KeyState::default();
        for (i, t) in [0u16, 1, 2, 3, 4, 3, 0].iter().enumerate() {
            let a = k
                .add(
                    &g,
                    g.bin_of(10 * M),
                    Some(caller_id(&i.to_string())),
                    [*t].into_iter(),
                )
                .unwrap();
            k.keep_sample(a, i as u64, &format!("id{i}"), "text", &mut Vec::new());
        }
        k.add(&g, g.bin_of(11 * M), None, [4u16, 5].into_iter())
            .unwrap();
        assert_eq!(
            k.template_counts(&g, 8).as_slice(),
            &[(0, 2), (1, 1), (2, 1), (3, 2), (4, 2), (5, 1)]
        );
        assert_eq!(k.template_counts(&g, 11).as_slice(), &[(4, 1), (5, 1)]);
        let seqs = |k: &KeyState, w| k.samples(&g, w).iter().map(|s| s.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&k, 8), vec![4, 5, 6], "the bin's newest three");
    }

    #[test]
    fn saved_state_reads_back_the_same() {
        let g = g();
        let mut k = KeyState::default();
        for (i, (minute, t)) in [(10, 0u16), (10, 1), (10, 2), (10, 3), (12, 0), (11, 7)]
            .iter()
            .enumerate()
        {
            let a = k
                .add(
                    &g,
                    g.bin_of(minute * M),
                    Some(caller_id(&(i % 3).to_string())),
                    [*t].into_iter(),
                )
                .unwrap();
            k.keep_sample(
                a,
                i as u64,
                &format!("id{i}"),
                &format!("text {i}"),
                &mut Vec::new(),
            );
        }
        let json = serde_json::to_string(&k).unwrap();
        // The layout checkpoints have always had: per bin, its templates
        // and its samples.
        assert!(
            json.contains(r#""bins":[{"templates":[[0,1],[1,1],[2,1],[3,1]],"samples":["#),
            "{json}"
        );
        let back: KeyState = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        for w in 5..=13 {
            assert_eq!(back.count(w), k.count(w));
            assert_eq!(back.template_counts(&g, w), k.template_counts(&g, w));
            let ids = |k: &KeyState| {
                k.samples(&g, w)
                    .iter()
                    .map(|s| s.id.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(ids(&back), ids(&k), "window {w}");
        }
    }

    #[test]
    fn samples_are_masked_and_cut_when_kept() {
        let g = g();
        let mut k = KeyState::default();
        let long = format!("{}尾", "字".repeat(400));
        let texts = [
            "回访号码：13812345678，身份证330106198001011234。".to_owned(),
            "电话 138-1234-5678".to_owned(),
            long.clone(),
        ];
        let mut pool = vec![Sample {
            seq: 0,
            id: "old".into(),
            text: "old raw 13900001111".into(),
        }];
        for (i, t) in texts.iter().enumerate() {
            let a = k
                .add(
                    &g,
                    g.bin_of(10 * M),
                    Some(caller_id(&i.to_string())),
                    [0u16].into_iter(),
                )
                .unwrap();
            k.keep_sample(a, i as u64, &format!("id{i}"), t, &mut pool);
        }
        let kept: Vec<String> = k.samples(&g, 8).iter().map(|s| s.text.clone()).collect();
        assert_eq!(
            kept,
            vec![
                "回访号码：138****5678，身份证330106********1234。".to_owned(),
                "电话 138****5678".to_owned(),
                "字".repeat(300),
            ]
        );
        let json = serde_json::to_string(&k).unwrap();
        for raw in ["13812345678", "1234-5678", "19800101", "13900001111"] {
            assert!(!json.contains(raw), "{raw} in {json}");
        }
        // What was saved reads back as it was.
        let back: KeyState = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn samples_saved_raw_by_an_older_version_are_masked_when_read() {
        let g = g();
        let mut k = KeyState::default();
        let a = k
            .add(
                &g,
                g.bin_of(10 * M),
                Some(caller_id("a")),
                [0u16].into_iter(),
            )
            .unwrap();
        k.keep_sample(a, 1, "id1", "号码", &mut Vec::new());
        let json = serde_json::to_string(&k).unwrap();
        let old = json
            .replace(",\"samples_masked\":true", "")
            .replace("\"text\":\"号码\"", "\"text\":\"号码13812345678\"");
        assert!(
            !old.contains("samples_masked") && old.contains("13812345678"),
            "{old}"
        );
        let back: KeyState = serde_json::from_str(&old).unwrap();
        assert_eq!(back.samples(&g, 8)[0].text, "号码138****5678");
    }

    proptest::proptest! {
        /// Distinct callers per window equal a brute-force count whether a
        /// key's callers sit in the short list or the map (many callers,
        /// late complaints, trims as the watermark moves).
        #[test]
        fn distinct_counts_equal_brute_force(
            events in proptest::collection::vec((0i64..40, proptest::option::weighted(0.9, 0u32..90)), 1..400),
        ) {
            let g = g(); // windows of 5 bins sliding by 1, lateness 2 bins
            let mut k = KeyState::default();
            let mut wm = i64::MIN;
            let mut kept: Vec<(i64, Option<u32>)> = Vec::new();
            let mut anon = 0u32;
            for (bin, caller) in events {
                if wm != i64::MIN && bin < wm - 2 {
                    continue; // late
                }
                wm = wm.max(bin);
                let first = g.first_live_window(wm * M);
                k.trim(&g, first, &mut Vec::new());
                let id = caller.map(|c| caller_id(&c.to_string()));
                k.add(&g, bin, id, [0u16].into_iter());
                let c = caller.unwrap_or_else(|| { anon += 1; 1_000_000 + anon });
                kept.push((bin, Some(c)));
                for w in first..=wm {
                    let (a, b) = g.bins_of_window(w);
                    let mut distinct: Vec<u32> = kept
                        .iter()
                        .filter(|(x, _)| (a..=b).contains(x))
                        .filter_map(|(_, c)| *c)
                        .collect();
                    distinct.sort_unstable();
                    distinct.dedup();
                    proptest::prop_assert_eq!(k.count(w), distinct.len() as u32, "window {}", w);
                }
            }
        }
    }
}
