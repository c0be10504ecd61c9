//! `hotspot suggest`: for a recorded file, template proposals for the
//! topics that many callers complain about in the same words while no
//! template names them (CONTRACT 8, "New topics"; issue 18), ranked, as
//! TOML that `check-rules` accepts once appended to the rules.
//!
//! How it goes:
//!
//! 1. **Scan** (in parallel, in file order): every valid record is
//!    normalised and matched against the rules *without their vetoes*; a
//!    text that covers some template's `all_of` groups is known (a text
//!    stopped only by a `none_of` is known too, not new). The others are
//!    the *unmatched* complaints; for each, the distinct character n-grams
//!    of [`crate::topics::phrase`] (numbers and punctuation taken out
//!    first) are counted: the document frequency `df` of each n-gram.
//! 2. **Bursts.** Each unmatched complaint counts in its city, its province
//!    (with a `[[region]]` table) and in `all` (the whole file as one
//!    place), in windows of the rules' size aligned to the epoch and
//!    shifted by half a window. For every n-gram that reaches `min_callers`
//!    distinct callers in one (place, window), with `n` unmatched
//!    complaints there, the expected count is `λ = df_h × n / N_h`, where
//!    `N_h` is the file's unmatched complaints at that hour of the day (on
//!    every day) and `df_h` how many of them hold the n-gram; its surprise
//!    is `−log10 P(Poisson(λ) ≥ callers)`. An n-gram is *bursty* when its
//!    most surprising window reaches [`MIN_SURPRISE`]. Load curve, city
//!    size, surge days and the hour scale `λ`, so a phrase that is
//!    everywhere every day (`营业厅排队`, `客户来电反映`), or every evening
//!    (`20点`, `今晚`), is never bursty however often it is written.
//! 3. **Topics**, most surprising n-gram first: the complaints of its
//!    busiest window give the shared phrases
//!    ([`crate::topics::phrase::shared_phrases`]: overlapping n-grams
//!    merged into the longest shared phrase, trimmed to n-grams far more
//!    frequent there than in the file, lift ≥ [`MIN_LIFT`]); of those
//!    holding the n-gram and their parts, the topic's phrase is the
//!    longest that 95 % of the complaints holding any of their n-grams (in
//!    the window, or anywhere with the n-gram) hold, and the topic every
//!    unmatched complaint of the file holding the phrase.
//!    A burst whose complaints are mostly an earlier topic's is that
//!    topic's (`17点` of `从17点左右开始数字人民币…`), and so are bursty
//!    n-grams mostly inside its complaints. A topic comes in batches: its
//!    busiest window holds at least [`MIN_BATCH_SHARE`] of its callers, or
//!    it is no topic (a filler that clusters once by chance).
//! 4. **Proposals.** `all_of`: the phrase (and other spellings that burst
//!    in the same window without it); a second group of the phrases that
//!    follow it (its symptoms) when they cover every complaint of the
//!    topic. The business: the one whose template keywords occur most in
//!    the topic's complaints (weighted by how specific a keyword is), else
//!    the one whose templates share most two-character words with the
//!    phrases, else a new business of the `[discovery]` department.
//!    `none_of`: the library's conventions (vetoes on a quarter of its
//!    templates or more, `测试工单`) and the library's veto words that a
//!    minority (at most a fifth) of the topic's complaints hold
//!    (`咨询如何`), never a word inside the phrase. Examples are masked.
//!    Every proposal is checked: the rules with it load, and its template
//!    matches the topic's complaints (the counts are printed).
//!
//! Deterministic: the same file and rules give the same proposals, byte
//! for byte, whatever the thread count (results are merged in file order,
//! ties broken by place, window and n-gram).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::mask::mask_and_cut;
use crate::matcher::Matcher;
use crate::normalize::Normalizer;
use crate::record::{Decoded, Decoder};
use crate::rules::{self, Rules};
use crate::time::format_cst;
use crate::topics::phrase::{self, grams, segments};

/// A window is a burst only this surprising: P(Poisson(λ) ≥ callers) at
/// most 10^-8 (a file has some hundred thousand (n-gram, window) pairs
/// with `min_callers` callers).
pub const MIN_SURPRISE: f64 = 8.0;
/// An n-gram belongs to a topic's phrase when it is this many times more
/// frequent among the topic's complaints than in the whole file.
pub const MIN_LIFT: f64 = 10.0;
/// A topic's busiest window holds at least this share of its callers.
pub const MIN_BATCH_SHARE: f64 = 0.05;
/// `min_callers` when the rules have no `[discovery]`.
pub const DEFAULT_MIN_CALLERS: u32 = 8;
/// Example complaints per proposal.
pub const EXAMPLES: usize = 3;
/// Characters of an example.
const EXAMPLE_CHARS: usize = 120;
/// Read size of the scan.
const BLOCK: usize = 4 << 20;

/// What to propose.
#[derive(Debug, Clone)]
pub struct Options {
    /// Distinct callers of one place and window that make a burst
    /// (default: the rules' `[discovery] min_callers`, else
    /// [`DEFAULT_MIN_CALLERS`]).
    pub min_callers: Option<u32>,
    /// Proposals at most.
    pub top: usize,
    /// Threads (0: every core).
    pub threads: usize,
}

/// The report: what was read and the proposals, best first.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub input: String,
    pub rules: String,
    pub lines: u64,
    pub records: u64,
    /// Records whose text covers a template's `all_of` (vetoed ones
    /// included).
    pub known: u64,
    pub unmatched: u64,
    pub min_callers: u32,
    /// Bursty n-grams found (before they are grouped into topics).
    pub bursty_grams: u64,
    pub proposals: Vec<Proposal>,
}

/// One proposed template.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub rank: usize,
    /// The topic's phrase (normalised).
    pub phrase: String,
    /// −log10 of the Poisson tail of its busiest window.
    pub surprise: f64,
    /// Unmatched complaints holding the phrase, and their distinct callers.
    pub complaints: u64,
    pub callers: u64,
    pub first: String,
    pub last: String,
    /// Local days with at least one of its complaints.
    pub days: u64,
    /// Cities by complaints (most first).
    pub regions: Vec<PlaceCount>,
    pub busiest: Busiest,
    pub business: BusinessGuess,
    pub template_id: String,
    pub all_of: Vec<Vec<String>>,
    pub none_of: Vec<String>,
    /// Masked, cut to 120 characters.
    pub examples: Vec<String>,
    /// The proposal, as TOML to append to the rules.
    pub toml: String,
    pub check: Check,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlaceCount {
    pub place: String,
    pub complaints: u64,
}

/// The window where the topic stood out most.
#[derive(Debug, Clone, Serialize)]
pub struct Busiest {
    pub place: String,
    /// `region`, `province` or `all`.
    pub scope: String,
    pub window_start: String,
    pub window_end: String,
    pub callers: u32,
    /// Complaints holding the n-gram expected there from its rate in the
    /// file.
    pub expected: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BusinessGuess {
    pub id: String,
    pub name: String,
    /// A business the proposal adds (no existing one fits).
    pub new: bool,
    /// Why: the keywords seen, or the shared words.
    pub reason: String,
}

/// The proposal checked against the rules and the file.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The rules with the proposal load (what `check-rules` says).
    pub loads: bool,
    /// The topic's complaints, and how many the proposed template matches
    /// once added.
    pub topic_complaints: u64,
    pub matched: u64,
    /// Of the rest, those holding a proposed `none_of` word.
    pub vetoed: u64,
    /// Other unmatched complaints of the file it would match too.
    pub other_unmatched: u64,
}

/// A hasher for n-gram ids (already spread by [`phrase::mix`]).
#[derive(Default, Clone, Copy)]
struct GramHasher(u64);

impl Hasher for GramHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = phrase::mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = phrase::mix(x);
    }
}

type GramMap<V> = HashMap<u64, V, BuildHasherDefault<GramHasher>>;

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

/// The rules with every `none_of` taken out: a text this matches nothing
/// in covers no template's `all_of`, so it is not even a vetoed complaint
/// about a known topic.
fn without_vetoes(rules: &Rules) -> anyhow::Result<Matcher> {
    let mut r = rules.clone();
    r.templates.iter_mut().for_each(|t| t.none_of.clear());
    Ok(Matcher::new(&r)?)
}

/// One unmatched complaint.
#[derive(Debug, Clone, Copy)]
struct Doc {
    /// Byte offset of its line in the file.
    offset: u64,
    ts: i64,
    /// Index into [`Scan::places`].
    city: u32,
    caller: u64,
    /// Its normalised text is `arena[text.0..text.1]`.
    text: (u32, u32),
}

/// What the scan keeps.
struct Scan {
    lines: u64,
    records: u64,
    known: u64,
    docs: Vec<Doc>,
    arena: String,
    /// City names, in order of first appearance in the file.
    places: Vec<String>,
    df: GramMap<u32>,
}

/// One block's share of a scan (merged in block order).
struct BlockScan {
    lines: u64,
    records: u64,
    known: u64,
    docs: Vec<Doc>,
    arena: String,
    /// Local city ids of `docs[i].city`.
    places: Vec<String>,
    df: GramMap<u32>,
}

fn scan_block(block: &[u8], base: u64, strict: &Matcher) -> BlockScan {
    let mut out = BlockScan {
        lines: 0,
        records: 0,
        known: 0,
        docs: Vec::new(),
        arena: String::new(),
        places: Vec::new(),
        df: GramMap::default(),
    };
    let mut place_ids: HashMap<String, u32> = HashMap::new();
    let mut decoder = Decoder::new();
    let mut norm = Normalizer::new();
    let mut m = strict.scratch();
    let (mut chars, mut segs, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    let mut at = 0usize;
    while at < block.len() {
        let end = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |p| at + p);
        let line = &block[at..end];
        let offset = base + at as u64;
        at = end + 1;
        out.lines += 1;
        let Decoded::Record(r) = decoder.decode(line) else {
            continue;
        };
        out.records += 1;
        let text = norm.normalize(r.text);
        strict.find(text, &mut m);
        if !m.is_empty() {
            out.known += 1;
            continue;
        }
        let city = match place_ids.get(r.region) {
            Some(&c) => c,
            None => {
                let c = out.places.len() as u32;
                out.places.push(r.region.to_owned());
                place_ids.insert(r.region.to_owned(), c);
                c
            }
        };
        let caller = match r.caller {
            Some(c) => xxhash_rust::xxh3::xxh3_64(c.as_bytes()),
            // The complaint is its own caller.
            None => xxhash_rust::xxh3::xxh3_64(&offset.to_le_bytes()) ^ 1,
        };
        segments(text, &mut chars, &mut segs);
        ids.clear();
        grams(&chars, &segs, |g| ids.push(g));
        ids.sort_unstable();
        ids.dedup();
        for &g in &ids {
            *out.df.entry(g).or_default() += 1;
        }
        let s = out.arena.len() as u32;
        out.arena.push_str(text);
        out.docs.push(Doc {
            offset,
            ts: r.ts,
            city,
            caller,
            text: (s, out.arena.len() as u32),
        });
    }
    out
}

fn threads(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Step 1: the unmatched complaints of `path` and their n-gram counts.
/// A reader cuts the file into blocks of whole lines, `workers` threads
/// scan them, and the blocks are merged in file order as they come.
fn scan(path: &Path, strict: &Matcher, workers: usize) -> anyhow::Result<Scan> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (job_tx, job_rx) = crossbeam_channel::bounded::<(usize, u64, Vec<u8>)>(workers * 2);
    let (res_tx, res_rx) = crossbeam_channel::bounded::<(usize, BlockScan)>(workers * 2);
    let mut out = Scan {
        lines: 0,
        records: 0,
        known: 0,
        docs: Vec::new(),
        arena: String::new(),
        places: Vec::new(),
        df: GramMap::default(),
    };
    std::thread::scope(|s| -> anyhow::Result<()> {
        for _ in 0..workers {
            let (rx, tx) = (job_rx.clone(), res_tx.clone());
            s.spawn(move || {
                for (i, base, block) in rx {
                    if tx.send((i, scan_block(&block, base, strict))).is_err() {
                        break;
                    }
                }
            });
        }
        drop((job_rx, res_tx));
        let reader = s.spawn(move || -> std::io::Result<()> {
            // A UTF-8 byte-order mark at the start is skipped.
            let mut pending: Vec<u8> = Vec::new();
            let (mut base, mut index, mut first) = (0u64, 0usize, true);
            loop {
                let mut buf = std::mem::take(&mut pending);
                let have = buf.len();
                buf.resize(have + BLOCK, 0);
                let n = read_full(&mut file, &mut buf[have..])?;
                buf.truncate(have + n);
                if first {
                    first = false;
                    if buf.starts_with(b"\xEF\xBB\xBF") {
                        buf.drain(..3);
                        base = 3;
                    }
                }
                if buf.is_empty() {
                    return Ok(());
                }
                let eof = n == 0;
                let cut = if eof {
                    buf.len()
                } else {
                    match memchr::memrchr(b'\n', &buf) {
                        Some(p) => p + 1,
                        None => {
                            // One line longer than a block: read on.
                            pending = buf;
                            continue;
                        }
                    }
                };
                pending = buf.split_off(cut);
                let len = buf.len() as u64;
                if job_tx.send((index, base, buf)).is_err() {
                    return Ok(());
                }
                index += 1;
                base += len;
                if eof {
                    return Ok(());
                }
            }
        });
        let mut waiting: BTreeMap<usize, BlockScan> = BTreeMap::new();
        let mut place_ids: HashMap<String, u32> = HashMap::new();
        let mut next = 0usize;
        for (i, r) in res_rx {
            waiting.insert(i, r);
            while let Some(b) = waiting.remove(&next) {
                next += 1;
                merge(&mut out, &mut place_ids, b);
            }
        }
        reader
            .join()
            .expect("the reader does not panic")
            .with_context(|| format!("cannot read {}", path.display()))
    })?;
    Ok(out)
}

/// Appends a block's scan to `out`.
fn merge(out: &mut Scan, place_ids: &mut HashMap<String, u32>, b: BlockScan) {
    out.lines += b.lines;
    out.records += b.records;
    out.known += b.known;
    let remap: Vec<u32> = b
        .places
        .into_iter()
        .map(|p| {
            let next = out.places.len() as u32;
            *place_ids.entry(p.clone()).or_insert_with(|| {
                out.places.push(p);
                next
            })
        })
        .collect();
    let shift = out.arena.len() as u32;
    out.arena.push_str(&b.arena);
    out.docs.extend(b.docs.into_iter().map(|mut d| {
        d.city = remap[d.city as usize];
        d.text = (d.text.0 + shift, d.text.1 + shift);
        d
    }));
    for (g, n) in b.df {
        *out.df.entry(g).or_default() += n;
    }
}

fn read_full(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A place of step 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PlaceKind {
    Region,
    Province,
    All,
}

impl PlaceKind {
    fn name(self) -> &'static str {
        match self {
            PlaceKind::Region => "region",
            PlaceKind::Province => "province",
            PlaceKind::All => "all",
        }
    }
}

/// Where an n-gram stood out most.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Burst {
    surprise: f64,
    callers: u32,
    lambda: f64,
    kind: PlaceKind,
    /// City index, province index, or 0.
    place: u32,
    /// Window start, epoch ms.
    start: i64,
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

/// The dense n-grams of each complaint: those that can burst.
struct Dense {
    /// Gram id of each dense index.
    ids: Vec<u64>,
    /// `of[d]` is `grams[start[d]..start[d + 1]]`.
    start: Vec<u32>,
    grams: Vec<u32>,
}

/// Step 2 preparation: n-grams with at least `min` complaints (others
/// cannot reach `min` callers anywhere) and at most `cap` (written
/// everywhere: fillers), densely numbered in id order; each complaint's.
fn dense(scan: &Scan, min: u32, cap: u32, workers: usize) -> Dense {
    let mut ids: Vec<u64> = scan
        .df
        .iter()
        .filter(|(_, n)| (min..=cap).contains(*n))
        .map(|(g, _)| *g)
        .collect();
    ids.sort_unstable();
    let index: GramMap<u32> = ids
        .iter()
        .enumerate()
        .map(|(i, &g)| (g, i as u32))
        .collect();
    let per = scan.docs.len().div_ceil(workers.max(1)).max(1);
    let parts: Vec<(Vec<u32>, Vec<u32>)> = std::thread::scope(|s| {
        let handles: Vec<_> = scan
            .docs
            .chunks(per)
            .map(|docs| {
                let index = &index;
                s.spawn(move || {
                    let (mut chars, mut segs, mut g) = (Vec::new(), Vec::new(), Vec::new());
                    let mut lens = Vec::with_capacity(docs.len());
                    let mut out = Vec::new();
                    for d in docs {
                        let text = &scan.arena[d.text.0 as usize..d.text.1 as usize];
                        segments(text, &mut chars, &mut segs);
                        g.clear();
                        grams(&chars, &segs, |x| {
                            if let Some(&i) = index.get(&x) {
                                g.push(i);
                            }
                        });
                        g.sort_unstable();
                        g.dedup();
                        lens.push(g.len() as u32);
                        out.extend_from_slice(&g);
                    }
                    (lens, out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut start = Vec::with_capacity(scan.docs.len() + 1);
    let mut grams_all = Vec::new();
    start.push(0u32);
    for (lens, g) in parts {
        let mut at = grams_all.len() as u32;
        for l in lens {
            at += l;
            start.push(at);
        }
        grams_all.extend(g);
    }
    Dense {
        ids,
        start,
        grams: grams_all,
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
fn bursts(
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

/// A topic found in step 3.
#[derive(Debug, Clone)]
struct Topic {
    phrase: String,
    burst: Burst,
    /// Its complaints (indices into `Scan::docs`), in file order.
    docs: Vec<u32>,
    /// Other spellings that burst in the same window without the phrase.
    alternatives: Vec<String>,
    /// Shared phrases of its complaints (for the symptoms), with counts.
    shared: Vec<phrase::Phrase>,
}

fn text_of(scan: &Scan, d: u32) -> &str {
    let t = scan.docs[d as usize].text;
    &scan.arena[t.0 as usize..t.1 as usize]
}

/// Whether an n-gram that `k` of `n` complaints hold is [`MIN_LIFT`]
/// times more frequent there than in the whole file.
fn lifted(scan: &Scan, g: u64, k: u32, n: usize) -> bool {
    let total = scan.docs.len().max(1) as f64;
    let global = f64::from(scan.df.get(&g).copied().unwrap_or(k).max(k).max(1));
    (f64::from(k) / n.max(1) as f64) / (global / total) >= MIN_LIFT
}

/// The complaints of the window of `b`, in file order; `by_ts` is every
/// complaint sorted by time.
fn window_docs(
    scan: &Scan,
    by_ts: &[u32],
    b: &Burst,
    province_of_city: &[Option<u32>],
    window: i64,
) -> Vec<u32> {
    let ts = |i: &u32| scan.docs[*i as usize].ts;
    let from = by_ts.partition_point(|i| ts(i) < b.start);
    let to = by_ts.partition_point(|i| ts(i) < b.start + window);
    let mut v: Vec<u32> = by_ts[from..to]
        .iter()
        .copied()
        .filter(|&i| {
            let d = &scan.docs[i as usize];
            match b.kind {
                PlaceKind::Region => d.city == b.place,
                PlaceKind::Province => province_of_city[d.city as usize] == Some(b.place),
                PlaceKind::All => true,
            }
        })
        .collect();
    v.sort_unstable();
    v
}

/// Step 3: topics from the bursty n-grams, most surprising first.
fn topics(
    scan: &Scan,
    dense: &Dense,
    best: &[Option<Burst>],
    province_of_city: &[Option<u32>],
    window: i64,
    min: u32,
    top: usize,
) -> Vec<Topic> {
    let mut bursty: Vec<(u32, Burst)> = best
        .iter()
        .enumerate()
        .filter_map(|(g, b)| b.map(|b| (g as u32, b)))
        .collect();
    bursty.sort_by(|a, b| {
        b.1.surprise
            .total_cmp(&a.1.surprise)
            .then(dense.ids[a.0 as usize].cmp(&dense.ids[b.0 as usize]))
    });
    // The complaints of each bursty n-gram.
    let mut slot = vec![u32::MAX; dense.ids.len()];
    for (i, (g, _)) in bursty.iter().enumerate() {
        slot[*g as usize] = i as u32;
    }
    let mut postings: Vec<Vec<u32>> = vec![Vec::new(); bursty.len()];
    for d in 0..scan.docs.len() {
        for &g in &dense.grams[dense.start[d] as usize..dense.start[d + 1] as usize] {
            let s = slot[g as usize];
            if s != u32::MAX {
                postings[s as usize].push(d as u32);
            }
        }
    }
    let mut by_ts: Vec<u32> = (0..scan.docs.len() as u32).collect();
    by_ts.sort_by_key(|&i| (scan.docs[i as usize].ts, i));
    let mut used = vec![false; bursty.len()];
    let mut claimed = vec![false; scan.docs.len()];
    let mut out: Vec<Topic> = Vec::new();
    for i in 0..bursty.len() {
        if used[i] || out.len() >= top {
            continue;
        }
        used[i] = true;
        let (g, b) = bursty[i];
        let gram = phrase::gram_text(dense.ids[g as usize]);
        let in_window = window_docs(scan, &by_ts, &b, province_of_city, window);
        // A burst that a topic already found explains (its complaints
        // there are mostly that topic's: `17点` of `从17点左右开始数字人民币…`).
        let with_gram: Vec<u32> = in_window
            .iter()
            .copied()
            .filter(|d| postings[i].binary_search(d).is_ok())
            .collect();
        let explained = with_gram.iter().filter(|&&d| claimed[d as usize]).count();
        if explained * 2 >= with_gram.len() {
            continue;
        }
        // The phrase: in the busiest window, the shared phrase holding the
        // n-gram that most complaints there hold.
        let texts: Vec<&str> = in_window.iter().map(|&d| text_of(scan, d)).collect();
        let found = phrase::shared_phrases(
            &texts,
            min as usize,
            |g, k| lifted(scan, g, k, texts.len()),
            64,
        );
        // The shared phrases holding the n-gram; the complaints of the
        // window, and those of the file with the n-gram, holding any
        // n-gram of theirs; and of the phrases' parts, the longest that 95 %
        // of those complaints hold (`fttr全屋组网`, not `的fttr全屋组网` of
        // the leads ending in 的, nor `fttr全`).
        let chosen: Vec<Vec<char>> = found
            .iter()
            .filter(|p| p.text.contains(gram.as_str()))
            .map(|p| p.text.chars().collect())
            .collect();
        let mut their: Vec<String> = chosen
            .iter()
            .flat_map(|c| {
                c.windows(phrase::GRAM)
                    .map(|w| w.iter().collect::<String>())
            })
            .collect();
        their.sort_unstable();
        their.dedup();
        let mut around: Vec<u32> = in_window.iter().chain(&postings[i]).copied().collect();
        around.sort_unstable();
        around.dedup();
        let holding: Vec<&str> = around
            .iter()
            .map(|&d| text_of(scan, d))
            .filter(|t| their.iter().any(|g| t.contains(g.as_str())))
            .collect();
        let mut parts: Vec<String> = Vec::new();
        for c in &chosen {
            for a in 0..c.len() {
                for b in a + phrase::GRAM..=c.len() {
                    parts.push(c[a..b].iter().collect());
                }
            }
        }
        parts.sort_unstable();
        parts.dedup();
        let need = (holding.len() * 95).div_ceil(100);
        let phrase_text = parts
            .into_iter()
            .map(|p| {
                let n = holding.iter().filter(|t| t.contains(p.as_str())).count();
                (p, n)
            })
            .filter(|(_, n)| *n >= need)
            .max_by(|a, b| {
                a.0.chars()
                    .count()
                    .cmp(&b.0.chars().count())
                    .then(a.1.cmp(&b.1))
                    .then(b.0.cmp(&a.0))
            })
            .map_or_else(|| gram.clone(), |(p, _)| p);
        let docs: Vec<u32> = postings[i]
            .iter()
            .copied()
            .filter(|&d| text_of(scan, d).contains(phrase_text.as_str()))
            .collect();
        let callers = {
            let mut c: Vec<u64> = docs.iter().map(|&d| scan.docs[d as usize].caller).collect();
            c.sort_unstable();
            c.dedup();
            c.len()
        };
        // A topic comes in batches: its busiest window holds a share of it
        // (a filler such as `已做好解释` that happens to cluster once does
        // not).
        if callers < min as usize || (b.callers as f64) < MIN_BATCH_SHARE * callers as f64 {
            continue;
        }
        // Other spellings: phrases shared in the window by complaints
        // without this one, with few complaints of their own holding it.
        let alternatives: Vec<String> = found
            .iter()
            .filter(|q| {
                !q.text.contains(phrase_text.as_str())
                    && !phrase_text.contains(q.text.as_str())
                    && texts
                        .iter()
                        .filter(|t| t.contains(q.text.as_str()))
                        .all(|t| !t.contains(phrase_text.as_str()))
            })
            .map(|q| q.text.clone())
            .collect();
        let mut all_docs = docs.clone();
        for alt in &alternatives {
            for &d in &in_window {
                if text_of(scan, d).contains(alt.as_str()) {
                    all_docs.push(d);
                }
            }
        }
        all_docs.sort_unstable();
        all_docs.dedup();
        // Mostly the complaints of a topic already found: the same topic.
        let again = all_docs.iter().filter(|&&d| claimed[d as usize]).count();
        if again * 2 >= all_docs.len() {
            continue;
        }
        for &d in &all_docs {
            claimed[d as usize] = true;
        }
        // Bursty n-grams mostly inside these complaints belong to it.
        let inside = |d: &u32| all_docs.binary_search(d).is_ok();
        for (j, (_, _)) in bursty.iter().enumerate().skip(i + 1) {
            if used[j] {
                continue;
            }
            let post = &postings[j];
            let hit = post.iter().filter(|d| inside(d)).count();
            if hit * 2 >= post.len() {
                used[j] = true;
            }
        }
        let topic_texts: Vec<&str> = all_docs.iter().map(|&d| text_of(scan, d)).collect();
        let shared = phrase::shared_phrases(
            &topic_texts,
            2,
            |g, k| lifted(scan, g, k, topic_texts.len()),
            64,
        );
        out.push(Topic {
            phrase: phrase_text,
            burst: b,
            docs: all_docs,
            alternatives,
            shared,
        });
    }
    out
}

/// Template keywords and which businesses use them.
struct Vocabulary {
    keywords: Vec<String>,
    /// Per keyword: the businesses (indices) whose `all_of` holds it.
    owners: Vec<Vec<usize>>,
    automaton: aho_corasick::AhoCorasick,
}

impl Vocabulary {
    fn new(rules: &Rules) -> anyhow::Result<Vocabulary> {
        let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for t in &rules.templates {
            for k in t.all_of.iter().flatten() {
                let v = by.entry(k.clone()).or_default();
                if !v.contains(&t.business) {
                    v.push(t.business);
                }
            }
        }
        let (keywords, owners): (Vec<String>, Vec<Vec<usize>>) = by.into_iter().unzip();
        let automaton = aho_corasick::AhoCorasick::new(&keywords)?;
        Ok(Vocabulary {
            keywords,
            owners,
            automaton,
        })
    }
}

/// Character pairs of `s` (no pair across a space).
fn bigrams(s: &str) -> Vec<(char, char)> {
    let c: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    let mut v: Vec<(char, char)> = c.windows(2).map(|w| (w[0], w[1])).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The business a topic most likely belongs to.
fn guess_business(
    rules: &Rules,
    vocab: &Vocabulary,
    texts: &[&str],
    phrases: &[String],
) -> Option<(usize, String)> {
    let nb = rules.businesses.len() as f64;
    let mut hits = vec![0u32; vocab.keywords.len()];
    let mut seen: Vec<usize> = Vec::new();
    for t in texts {
        seen.clear();
        for m in vocab.automaton.find_overlapping_iter(*t) {
            seen.push(m.pattern().as_usize());
        }
        seen.sort_unstable();
        seen.dedup();
        for &k in &seen {
            hits[k] += 1;
        }
    }
    let n = texts.len().max(1) as f64;
    let mut score = vec![0.0f64; rules.businesses.len()];
    for (k, &h) in hits.iter().enumerate() {
        // A keyword counts when at least 30 % of the complaints hold it.
        if h == 0 || f64::from(h) < 0.3 * n {
            continue;
        }
        let idf = (1.0 + nb / vocab.owners[k].len() as f64).ln() / (1.0 + nb).ln();
        for &b in &vocab.owners[k] {
            score[b] += f64::from(h) / n * idf;
        }
    }
    let best = (0..score.len()).max_by(|&a, &b| score[a].total_cmp(&score[b]).then(b.cmp(&a)));
    if let Some(b) = best.filter(|&b| score[b] >= 0.1) {
        let mut used: Vec<(u32, &str)> = hits
            .iter()
            .enumerate()
            .filter(|(k, h)| f64::from(**h) >= 0.3 * n && vocab.owners[*k].contains(&b))
            .map(|(k, h)| (*h, vocab.keywords[k].as_str()))
            .collect();
        used.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(y.1)));
        let list: Vec<String> = used
            .iter()
            .take(4)
            .map(|(h, k)| format!("{k} in {h} of {}", texts.len()))
            .collect();
        return Some((
            b,
            format!("its template keywords occur beside it: {}", list.join(", ")),
        ));
    }
    // Else: the business whose templates share the most specific character
    // pairs with the topic's phrases (a pair counts ln(1 + businesses /
    // businesses using it); pairs of more than an eighth of the businesses,
    // `不到` or `失败`, do not count).
    let want: Vec<(char, char)> = {
        let mut v: Vec<(char, char)> = phrases.iter().flat_map(|p| bigrams(p)).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let vocab_of: Vec<Vec<(char, char)>> = rules
        .businesses
        .iter()
        .map(|bus| {
            let mut words = String::new();
            words.push_str(&bus.name);
            words.push(' ');
            for t in &rules.templates[bus.templates.clone()] {
                words.push_str(&t.phenomenon);
                words.push(' ');
                for k in t.all_of.iter().flatten() {
                    words.push_str(k);
                    words.push(' ');
                }
            }
            let mut v: Vec<(char, char)> = words.split(' ').flat_map(bigrams).collect();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    let users = |p: &(char, char)| {
        vocab_of
            .iter()
            .filter(|v| v.binary_search(p).is_ok())
            .count()
    };
    let mut best: Option<(usize, f64, Vec<String>)> = None;
    for (b, have) in vocab_of.iter().enumerate() {
        let mut score = 0.0;
        let mut shared = Vec::new();
        for p in want.iter().filter(|p| have.binary_search(p).is_ok()) {
            let u = users(p);
            if u * 8 > vocab_of.len() {
                continue;
            }
            score += (1.0 + nb / u as f64).ln();
            shared.push(format!("{}{}", p.0, p.1));
        }
        if score > 0.0 && best.as_ref().is_none_or(|x| score > x.1) {
            best = Some((b, score, shared));
        }
    }
    best.map(|(b, _, shared)| {
        (
            b,
            format!("its templates share the words {}", shared.join(", ")),
        )
    })
}

/// Quotes a TOML string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
    )
}

/// A comment line (no line breaks inside).
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Reads the text of the line at `offset`, masked and cut.
fn example(file: &mut std::fs::File, offset: u64) -> Option<String> {
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = vec![0u8; 64 << 10];
    let n = read_full(file, &mut buf).ok()?;
    let line = &buf[..n];
    let line = &line[..memchr::memchr(b'\n', line).unwrap_or(line.len())];
    let mut d = Decoder::new();
    match d.decode(line) {
        Decoded::Record(r) => Some(mask_and_cut(r.text, EXAMPLE_CHARS).replace('\n', " / ")),
        _ => None,
    }
}

/// Runs `hotspot suggest` on `input` with `rules` (whose file text is
/// `rules_text`).
pub fn suggest(
    input: &Path,
    rules: &Rules,
    rules_text: &str,
    opts: &Options,
) -> anyhow::Result<Report> {
    let workers = threads(opts.threads);
    let min = opts
        .min_callers
        .or(rules.discovery.as_ref().map(|d| d.min_callers))
        .unwrap_or(DEFAULT_MIN_CALLERS)
        .max(2);
    let window = rules.window.size_ms.max(1);
    let strict = without_vetoes(rules)?;
    let scan = scan(input, &strict, workers)?;
    let province_of_city: Vec<Option<u32>> = scan
        .places
        .iter()
        .map(|p| rules.province_of(rules.region_of(p)).map(|x| x as u32))
        .collect();
    let cap = ((scan.docs.len() as f64 * 0.02) as u32).max(1000).max(min);
    let dense = dense(&scan, min, cap, workers);
    let best = bursts(&scan, &dense, &province_of_city, window, min, workers);
    let bursty = best.iter().filter(|b| b.is_some()).count() as u64;
    let topics = topics(
        &scan,
        &dense,
        &best,
        &province_of_city,
        window,
        min,
        opts.top,
    );
    let proposals = proposals(input, rules, rules_text, &scan, &topics, min, window)?;
    Ok(Report {
        input: input.display().to_string(),
        rules: rules.source.clone(),
        lines: scan.lines,
        records: scan.records,
        known: scan.known,
        unmatched: scan.docs.len() as u64,
        min_callers: min,
        bursty_grams: bursty,
        proposals,
    })
}

/// Step 4: a proposal per topic, checked.
#[allow(clippy::too_many_arguments)]
fn proposals(
    input: &Path,
    rules: &Rules,
    rules_text: &str,
    scan: &Scan,
    topics: &[Topic],
    min: u32,
    window: i64,
) -> anyhow::Result<Vec<Proposal>> {
    let vocab = Vocabulary::new(rules)?;
    // The library's conventions: vetoes on a quarter of its templates.
    let mut veto_use: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &rules.templates {
        for v in &t.none_of {
            *veto_use.entry(v.as_str()).or_default() += 1;
        }
    }
    let mut conventions: Vec<(&str, usize)> = veto_use
        .iter()
        .filter(|(_, n)| **n * 4 >= rules.templates.len())
        .map(|(v, n)| (*v, *n))
        .collect();
    conventions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut file =
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?;
    let mut out: Vec<Proposal> = Vec::new();
    let mut taken_ids: Vec<String> = rules.templates.iter().map(|t| t.id.clone()).collect();
    let mut taken_businesses: Vec<String> = rules.businesses.iter().map(|b| b.id.clone()).collect();
    let mut added = String::new();
    for topic in topics {
        let texts: Vec<&str> = topic.docs.iter().map(|&d| text_of(scan, d)).collect();
        // Group 1: the phrase and its other spellings.
        let mut first = vec![topic.phrase.clone()];
        first.extend(topic.alternatives.iter().cloned());
        // Group 2: what follows the phrase, when it covers every complaint.
        let mut follow: Vec<(String, u32)> = Vec::new();
        for s in &topic.shared {
            if let Some((_, rest)) = s.text.split_once(topic.phrase.as_str()) {
                if rest.chars().count() >= 2
                    && !follow.iter().any(|(f, _)| rest.contains(f.as_str()))
                {
                    follow.retain(|(f, _)| !f.contains(rest));
                    follow.push((rest.to_owned(), s.docs));
                }
            }
        }
        follow.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let covered = !follow.is_empty()
            && texts
                .iter()
                .all(|t| follow.iter().any(|(f, _)| t.contains(f.as_str())));
        let mut all_of = vec![first.clone()];
        if covered && topic.alternatives.is_empty() {
            all_of.push(follow.iter().map(|(f, _)| f.clone()).collect());
        }
        let words: Vec<String> = all_of.iter().flatten().cloned().collect();
        // none_of: conventions, and the library's vetoes a minority holds.
        let n = texts.len().max(1);
        let mut none_of: Vec<String> = Vec::new();
        let mut why_none: Vec<String> = Vec::new();
        for (v, _) in &conventions {
            let held = texts.iter().filter(|t| t.contains(v)).count();
            if held * 5 <= n && !words.iter().any(|w| w.contains(v)) {
                none_of.push((*v).to_owned());
            }
        }
        for v in veto_use.keys() {
            if none_of.iter().any(|x| x == v) || words.iter().any(|w| w.contains(v)) {
                continue;
            }
            let held = texts.iter().filter(|t| t.contains(v)).count();
            if held > 0 && held * 5 <= n {
                none_of.push((*v).to_owned());
                why_none.push(format!("{v} in {held}"));
            }
        }
        // The business.
        let mut phrases = words.clone();
        phrases.extend(topic.shared.iter().take(8).map(|p| p.text.clone()));
        let guess = guess_business(rules, &vocab, &texts, &phrases);
        let rank = out.len() + 1;
        let mut business_block = String::new();
        let business = match guess {
            Some((b, reason)) => BusinessGuess {
                id: rules.businesses[b].id.clone(),
                name: rules.businesses[b].name.clone(),
                new: false,
                reason,
            },
            None => {
                let mut id = format!("new_topic_{rank}");
                while taken_businesses.contains(&id) {
                    id.push('_');
                }
                taken_businesses.push(id.clone());
                let dept = rules.discovery.as_ref().map_or(0, |d| d.department);
                business_block = format!(
                    "[[business]]\nid = {}\nname = {}\ndepartment = {}\nthreshold = {min}\n\n",
                    quote(&id),
                    quote(&topic.phrase),
                    quote(&rules.departments[dept].id)
                );
                BusinessGuess {
                    id,
                    name: topic.phrase.clone(),
                    new: true,
                    reason: "no template keyword or word of the library fits: a new business"
                        .into(),
                }
            }
        };
        let mut template_id = format!("{}.new_{rank}", business.id);
        while taken_ids.contains(&template_id) {
            template_id.push('_');
        }
        taken_ids.push(template_id.clone());
        // Where and when.
        let docs = &topic.docs;
        let mut callers: Vec<u64> = docs.iter().map(|&d| scan.docs[d as usize].caller).collect();
        callers.sort_unstable();
        callers.dedup();
        let first_ts = docs
            .iter()
            .map(|&d| scan.docs[d as usize].ts)
            .min()
            .unwrap_or(0);
        let last_ts = docs
            .iter()
            .map(|&d| scan.docs[d as usize].ts)
            .max()
            .unwrap_or(0);
        let mut days: Vec<i64> = docs
            .iter()
            .map(|&d| {
                (scan.docs[d as usize].ts + crate::time::CST_OFFSET_MS).div_euclid(86_400_000)
            })
            .collect();
        days.sort_unstable();
        days.dedup();
        let mut per_city: BTreeMap<u32, u64> = BTreeMap::new();
        for &d in docs {
            *per_city.entry(scan.docs[d as usize].city).or_default() += 1;
        }
        let mut regions: Vec<PlaceCount> = per_city
            .into_iter()
            .map(|(c, n)| PlaceCount {
                place: scan.places[c as usize].clone(),
                complaints: n,
            })
            .collect();
        regions.sort_by(|a, b| b.complaints.cmp(&a.complaints).then(a.place.cmp(&b.place)));
        let b = &topic.burst;
        let place = match b.kind {
            PlaceKind::Region => scan.places[b.place as usize].clone(),
            PlaceKind::Province => rules.provinces[b.place as usize].name.clone(),
            PlaceKind::All => "all".into(),
        };
        let busiest = Busiest {
            place,
            scope: b.kind.name().into(),
            window_start: format_cst(b.start),
            window_end: format_cst(b.start + window),
            callers: b.callers,
            expected: (b.lambda * 1000.0).round() / 1000.0,
        };
        // Examples: evenly over the topic, masked.
        let picks: Vec<u32> = if docs.len() <= EXAMPLES {
            docs.clone()
        } else {
            (0..EXAMPLES)
                .map(|i| docs[i * (docs.len() - 1) / (EXAMPLES - 1)])
                .collect()
        };
        let examples: Vec<String> = picks
            .iter()
            .filter_map(|&d| example(&mut file, scan.docs[d as usize].offset))
            .collect();
        // The TOML.
        let mut toml = String::new();
        toml.push_str(&format!(
            "# [{rank}] {} — {} complaints from {} callers in {} ({} day{}), {} to {}\n",
            topic.phrase,
            docs.len(),
            callers.len(),
            regions
                .iter()
                .take(4)
                .map(|r| format!("{} {}", r.place, r.complaints))
                .collect::<Vec<_>>()
                .join(", ")
                + if regions.len() > 4 { " …" } else { "" },
            days.len(),
            if days.len() == 1 { "" } else { "s" },
            format_cst(first_ts),
            format_cst(last_ts)
        ));
        toml.push_str(&format!(
            "#     busiest: {} ({}) {} + {}, {} callers where {:.3} were expected (10^-{:.1})\n",
            busiest.place,
            busiest.scope,
            busiest.window_start,
            crate::time::format_duration(window),
            busiest.callers,
            busiest.expected,
            b.surprise.min(999.0)
        ));
        toml.push_str(&format!(
            "#     business: {} ({}): {}\n",
            business.id,
            business.name,
            comment(&business.reason)
        ));
        if !covered && !follow.is_empty() {
            toml.push_str(&format!(
                "#     what follows it (a second all_of group would miss some complaints): {}\n",
                follow
                    .iter()
                    .take(6)
                    .map(|(f, n)| format!("{f} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !why_none.is_empty() {
            toml.push_str(&format!(
                "#     none_of beyond the library's conventions: {} of {} complaints\n",
                why_none.join(", "),
                docs.len()
            ));
        }
        for e in &examples {
            toml.push_str(&format!("#     e.g. {}\n", comment(e)));
        }
        toml.push_str(&business_block);
        toml.push_str(&format!(
            "[[template]]\nid = {}\nbusiness = {}\nphenomenon = {}\nall_of = [{}]\nnone_of = {}\n",
            quote(&template_id),
            quote(&business.id),
            quote(&topic.phrase),
            all_of
                .iter()
                .map(|g| list(g))
                .collect::<Vec<_>>()
                .join(", "),
            list(&none_of)
        ));
        // Check: the rules with it (and the proposals before it) load, and
        // its template matches the topic's complaints.
        let with = format!("{rules_text}\n\n{added}{toml}");
        let (loads, matched, vetoed, other) = match rules::load_str(&with, "suggested.toml") {
            Ok(r) => {
                let t = r
                    .templates
                    .iter()
                    .position(|t| t.id == template_id)
                    .unwrap_or(usize::MAX);
                let m = Matcher::new(&r)?;
                let mut scratch = m.scratch();
                let hits = |text: &str, scratch: &mut crate::matcher::Matches| {
                    m.find(text, scratch);
                    scratch.templates().contains(&(t as u32))
                };
                let matched = texts.iter().filter(|x| hits(x, &mut scratch)).count() as u64;
                let vetoed = texts
                    .iter()
                    .filter(|x| none_of.iter().any(|v| x.contains(v.as_str())))
                    .count() as u64;
                let other = (0..scan.docs.len() as u32)
                    .filter(|d| docs.binary_search(d).is_err())
                    .filter(|&d| {
                        let x = text_of(scan, d);
                        words.iter().any(|w| x.contains(w.as_str())) && hits(x, &mut scratch)
                    })
                    .count() as u64;
                (true, matched, vetoed, other)
            }
            Err(_) => (false, 0, 0, 0),
        };
        if loads {
            added.push_str(&toml);
            added.push('\n');
        }
        toml.push_str(&format!(
            "# checked: the rules with this load; it matches {matched} of these {} complaints{}{}\n",
            docs.len(),
            if vetoed > 0 {
                format!(" ({vetoed} hold a none_of word)")
            } else {
                String::new()
            },
            if other > 0 {
                format!(", and {other} other unmatched complaints")
            } else {
                String::new()
            }
        ));
        out.push(Proposal {
            rank,
            phrase: topic.phrase.clone(),
            surprise: (b.surprise.min(999.0) * 10.0).round() / 10.0,
            complaints: docs.len() as u64,
            callers: callers.len() as u64,
            first: format_cst(first_ts),
            last: format_cst(last_ts),
            days: days.len() as u64,
            regions,
            busiest,
            business,
            template_id,
            all_of,
            none_of,
            examples,
            toml,
            check: Check {
                loads,
                topic_complaints: docs.len() as u64,
                matched,
                vetoed,
                other_unmatched: other,
            },
        });
    }
    Ok(out)
}

/// The report as TOML: a header, then every proposal.
pub fn render(report: &Report) -> String {
    let mut s = format!(
        "# hotspot suggest: {} — {} records, {} matching no template (min_callers {}), rules {}\n\
         # {} proposal{}, most surprising first. Review, then append to the rules.\n\n",
        report.input,
        report.records,
        report.unmatched,
        report.min_callers,
        report.rules,
        report.proposals.len(),
        if report.proposals.len() == 1 { "" } else { "s" }
    );
    for p in &report.proposals {
        s.push_str(&p.toml);
        s.push('\n');
    }
    s
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

    #[test]
    fn toml_strings_are_quoted() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c \"");
        assert_eq!(list(&["x".into(), "y".into()]), "[\"x\", \"y\"]");
    }
}
