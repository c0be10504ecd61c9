//! `hotspot coverage`: what a rule library matches of a recorded file —
//! the share of complaints per business, template and region, the
//! complaints that count for several businesses, the templates that never
//! match, and the top phrases of what nothing matches ([`phrases`]).
//!
//! Counted exactly as a replay counts: the same decoder, the same
//! lateness rule (a record older than the watermark less the allowed
//! lateness is dropped and counted as late), the same matcher. So
//! `matched` equals the replay summary's `matched_records`, and each
//! business's count its complaints counted in windows.
//!
//! Work is split by chunks of the file, not by records: a reader cuts the
//! file at line ends, workers decode, match and count a chunk each, taking
//! every record as on time and noting its timestamp, and the merger walks
//! the timestamps of the chunks in input order with the running watermark —
//! the only sequential part, a few nanoseconds a record — taking the rare
//! late record back out of its chunk's counts before adding them up. The
//! result does not depend on the number of threads.

pub(crate) mod phrases;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::bounded;
use hashbrown::HashMap;
use serde::Serialize;

use crate::explain::Explainer;
use crate::mask::mask;
use crate::matcher::{Matcher, Matches};
use crate::normalize::Normalizer;
use crate::record::{Decoded, Decoder, Reject};
use crate::rules::Rules;
use crate::window::Geometry;
use phrases::{BACKGROUND_EVERY, Cutter, PhraseCounts, sample_key};

/// Bytes per chunk handed to a worker: big enough that merging the
/// chunks' phrase tables costs little against counting them.
const CHUNK_BYTES: usize = 8 << 20;

/// Example work orders kept per combination of businesses.
const EXAMPLES: usize = 3;

/// How to measure.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Unmatched phrases to report.
    pub top: usize,
}

/// A business's or template's count.
#[derive(Debug, Clone, Serialize)]
pub struct Share {
    pub id: String,
    /// The business's name; for a template, its business id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The business's department id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// For a template: its business id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business: Option<String>,
    pub complaints: u64,
    /// Of all complaints.
    pub share: f64,
}

/// One region.
#[derive(Debug, Clone, Serialize)]
pub struct RegionShare {
    pub region: String,
    pub complaints: u64,
    pub matched: u64,
    /// `matched / complaints`.
    pub share: f64,
}

/// Complaints that count for the same several businesses.
#[derive(Debug, Clone, Serialize)]
pub struct Combination {
    pub businesses: Vec<String>,
    pub complaints: u64,
    /// The first work orders (ids) with it, for `hotspot explain --id`.
    pub examples: Vec<String>,
}

/// A phrase of unmatched complaints.
#[derive(Debug, Clone, Serialize)]
pub struct Phrase {
    pub phrase: String,
    /// About how many unmatched complaints hold it.
    pub complaints: u32,
    /// Of the unmatched complaints (those a veto stopped left out).
    pub share: f64,
    /// Its share among matched complaints (sampled).
    pub background_share: f64,
}

/// The measurement (the `--json` object).
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub input: String,
    pub rules_source: String,
    pub rules_version: String,
    pub lines: u64,
    pub blank: u64,
    pub rejected: BTreeMap<String, u64>,
    pub late_dropped: u64,
    /// Valid, on-time records: the replay's `accepted`.
    pub complaints: u64,
    /// Complaints some template matches: the replay's `matched_records`.
    pub matched: u64,
    pub matched_share: f64,
    /// Complaints no template matches (vetoed ones included).
    pub unmatched: u64,
    /// Unmatched complaints in which every `all_of` group of some
    /// template hit but a `none_of` veto stopped it.
    pub vetoed: u64,
    /// Complaints that count for two or more businesses.
    pub several_businesses: u64,
    /// Every business, in rules order.
    pub businesses: Vec<Share>,
    /// Every template, in rules order (business, then id).
    pub templates: Vec<Share>,
    /// Templates that matched no complaint.
    pub never_matched: Vec<String>,
    /// Most complaints first.
    pub regions: Vec<RegionShare>,
    /// Most complaints first.
    pub combinations: Vec<Combination>,
    pub unmatched_phrases: Vec<Phrase>,
    pub elapsed_s: f64,
}

/// The complaints of one combination of businesses, and its first
/// examples as (offset in the chunk, work-order id).
type Combo = (u64, Vec<(u32, String)>);

/// The counts of one chunk (or of everything).
#[derive(Default)]
struct Tally {
    lines: u64,
    blank: u64,
    rejected: [u64; 4],
    accepted: u64,
    matched: u64,
    vetoed: u64,
    several: u64,
    business: Vec<u64>,
    template: Vec<u64>,
    regions: HashMap<Box<str>, (u64, u64)>,
    /// Business indices → complaints, and the first examples as (chunk
    /// offset, id).
    combos: HashMap<Vec<u16>, Combo>,
    phrases: PhraseCounts,
    /// Every accepted record's (ts, offset in the chunk), in input order.
    records: Vec<(i64, u32)>,
}

impl Tally {
    fn new(rules: &Rules) -> Self {
        Tally {
            business: vec![0; rules.businesses.len()],
            template: vec![0; rules.templates.len()],
            ..Default::default()
        }
    }

    fn merge(&mut self, o: Tally) {
        self.lines += o.lines;
        self.blank += o.blank;
        for (a, b) in self.rejected.iter_mut().zip(o.rejected) {
            *a += b;
        }
        self.accepted += o.accepted;
        self.matched += o.matched;
        self.vetoed += o.vetoed;
        self.several += o.several;
        for (a, b) in self.business.iter_mut().zip(&o.business) {
            *a += b;
        }
        for (a, b) in self.template.iter_mut().zip(&o.template) {
            *a += b;
        }
        for (r, (c, m)) in o.regions {
            let e = self.regions.entry(r).or_insert((0, 0));
            e.0 += c;
            e.1 += m;
        }
        for (k, (c, ex)) in o.combos {
            let e = self.combos.entry(k).or_insert((0, Vec::new()));
            e.0 += c;
            for x in ex {
                if e.1.len() < EXAMPLES {
                    e.1.push(x);
                }
            }
        }
        self.phrases.merge(o.phrases);
    }
}

/// Decodes, matches and counts lines (one per worker, and the merger's own
/// for taking late records back).
struct Counter<'a> {
    rules: &'a Rules,
    matcher: &'a Matcher,
    explainer: &'a Explainer,
    decoder: Decoder,
    normalizer: Normalizer,
    matches: Matches,
    cutter: Cutter,
    combo: Vec<u16>,
}

impl<'a> Counter<'a> {
    fn new(rules: &'a Rules, matcher: &'a Matcher, explainer: &'a Explainer) -> Self {
        Counter {
            rules,
            matcher,
            explainer,
            decoder: Decoder::new(),
            normalizer: Normalizer::new(),
            matches: matcher.scratch(),
            cutter: Cutter::default(),
            combo: Vec::with_capacity(4),
        }
    }

    /// Counts every line of `chunk`, each record as on time.
    fn chunk(&mut self, chunk: &[u8]) -> Tally {
        let mut t = Tally::new(self.rules);
        // Lent out, so that a record can borrow it while `self` counts.
        let mut decoder = std::mem::take(&mut self.decoder);
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', chunk)
            .chain((chunk.last() != Some(&b'\n') && !chunk.is_empty()).then_some(chunk.len()));
        for end in ends {
            let line = &chunk[start..end];
            t.lines += 1;
            match decoder.decode(line) {
                Decoded::Blank => t.blank += 1,
                Decoded::Rejected(info) => t.rejected[info.reason.index()] += 1,
                Decoded::Record(r) => {
                    t.records.push((r.ts, start as u32));
                    self.count(&mut t, r.id, r.region, r.text, start as u32, true);
                }
            }
            start = end + 1;
        }
        self.decoder = decoder;
        t
    }

    /// Takes the record at `at` of `chunk` back out of `t` (it was late).
    fn take_back(&mut self, t: &mut Tally, chunk: &[u8], at: u32) {
        let rest = &chunk[at as usize..];
        let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
        let mut decoder = std::mem::take(&mut self.decoder);
        if let Decoded::Record(r) = decoder.decode(line) {
            self.count(t, r.id, r.region, r.text, at, false);
        }
        self.decoder = decoder;
    }

    /// Adds (or takes back) one accepted record.
    fn count(&mut self, t: &mut Tally, id: &str, region: &str, text: &str, at: u32, add: bool) {
        let step = |v: &mut u64| {
            if add { *v += 1 } else { *v -= 1 }
        };
        step(&mut t.accepted);
        self.matcher
            .find_text(text, &mut self.normalizer, &mut self.matches);
        let matched = !self.matches.is_empty();
        let r = t.regions.entry_ref(region).or_insert((0, 0));
        step(&mut r.0);
        if matched {
            step(&mut r.1);
            step(&mut t.matched);
            self.combo.clear();
            for (b, tpls) in self.matches.businesses() {
                step(&mut t.business[b]);
                for &tp in tpls {
                    step(&mut t.template[tp as usize]);
                }
                self.combo.push(b as u16);
            }
            if self.combo.len() > 1 {
                step(&mut t.several);
                let e = t
                    .combos
                    .entry_ref(self.combo.as_slice())
                    .or_insert((0, Vec::new()));
                step(&mut e.0);
                if add && e.1.len() < EXAMPLES {
                    e.1.push((at, id.to_owned()));
                } else if !add {
                    e.1.retain(|x| x.0 != at);
                }
            }
            if xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % BACKGROUND_EVERY == 0 {
                self.cutter.cut(text, &mut self.normalizer);
                t.phrases.count(&self.cutter.grams, true, add);
            }
        } else if !self.matches.patterns().is_empty()
            && self.explainer.vetoed(self.matches.patterns())
        {
            step(&mut t.vetoed);
        } else {
            self.cutter.cut(text, &mut self.normalizer);
            t.phrases.count(&self.cutter.grams, false, add);
            let key = sample_key(id, text);
            if !add || t.phrases.wants(key) {
                t.phrases.sample(key, text, &mut self.normalizer, add);
            }
        }
    }
}

/// Reads `input` in chunks cut at line ends (a UTF-8 byte-order mark at
/// the start skipped, like every reader of hotspot) and hands each to
/// `send` with its number; stops early when `send` returns false.
fn read_chunks(
    mut input: impl Read,
    mut send: impl FnMut(usize, Vec<u8>) -> bool,
) -> std::io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut first = true;
    let mut n = 0;
    loop {
        let mut buf = std::mem::take(&mut carry);
        let want = buf.len() + CHUNK_BYTES;
        buf.reserve(CHUNK_BYTES);
        let mut eof = false;
        while buf.len() < want {
            let len = buf.len();
            buf.resize(want, 0);
            let got = match input.read(&mut buf[len..]) {
                Ok(g) => g,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) => return Err(e),
            };
            buf.truncate(len + got);
            if got == 0 {
                eof = true;
                break;
            }
        }
        if first {
            first = false;
            if buf.starts_with(b"\xEF\xBB\xBF") {
                buf.drain(..3);
            }
        }
        if eof {
            if !buf.is_empty() {
                send(n, buf);
            }
            return Ok(());
        }
        match memchr::memrchr(b'\n', &buf) {
            // A line longer than a chunk: read on.
            None => carry = buf,
            Some(end) => {
                carry = buf[end + 1..].to_vec();
                buf.truncate(end + 1);
                if !send(n, buf) {
                    return Ok(());
                }
                n += 1;
            }
        }
    }
}

/// Measures what `rules` match of `input` (named `name` in the result).
pub fn measure(
    rules: Arc<Rules>,
    input: impl Read + Send,
    name: &str,
    opts: Options,
) -> anyhow::Result<Coverage> {
    let started = Instant::now();
    let matcher = Arc::new(Matcher::new(&rules)?);
    let explainer = Explainer::new(rules.clone(), matcher.clone());
    let threads = opts.threads.max(1);
    let geo = Geometry::new(rules.window);
    let mut total = Tally::new(&rules);
    let mut late = 0u64;
    let (r, m, x) = (&*rules, &*matcher, &explainer);
    let read = std::thread::scope(|s| -> anyhow::Result<std::io::Result<()>> {
        let (chunk_tx, chunk_rx) = bounded::<(usize, Vec<u8>)>(threads);
        let (done_tx, done_rx) = bounded::<(usize, Vec<u8>, Tally)>(threads);
        let reader = s.spawn(move || read_chunks(input, |i, c| chunk_tx.send((i, c)).is_ok()));
        for _ in 0..threads {
            let (rx, tx) = (chunk_rx.clone(), done_tx.clone());
            s.spawn(move || {
                let mut counter = Counter::new(r, m, x);
                for (i, chunk) in rx {
                    let t = counter.chunk(&chunk);
                    if tx.send((i, chunk, t)).is_err() {
                        return;
                    }
                }
            });
        }
        drop((chunk_rx, done_tx));
        // The merger: chunks in input order.
        let mut counter = Counter::new(r, m, x);
        let mut waiting: BTreeMap<usize, (Vec<u8>, Tally)> = BTreeMap::new();
        let mut next = 0;
        let mut wm: Option<i64> = None;
        for (i, chunk, t) in done_rx {
            waiting.insert(i, (chunk, t));
            while let Some((chunk, mut t)) = waiting.remove(&next) {
                let records = std::mem::take(&mut t.records);
                for (ts, at) in records {
                    if geo.is_late(ts, wm) {
                        late += 1;
                        counter.take_back(&mut t, &chunk, at);
                    } else if wm.is_none_or(|w| ts > w) {
                        wm = Some(ts);
                    }
                }
                total.merge(t);
                next += 1;
            }
        }
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("the reader thread failed"))
    })?;
    read.map_err(|e| anyhow::anyhow!("cannot read {name}: {e}"))?;
    Ok(report(&rules, total, late, name, opts, started))
}

fn report(
    rules: &Rules,
    t: Tally,
    late: u64,
    name: &str,
    opts: Options,
    started: Instant,
) -> Coverage {
    let all = t.accepted.max(1) as f64;
    let ratio = |n: u64| n as f64 / all;
    let businesses = rules
        .businesses
        .iter()
        .zip(&t.business)
        .map(|(b, &n)| Share {
            id: b.id.clone(),
            name: Some(b.name.clone()),
            department: Some(rules.departments[b.department].id.clone()),
            business: None,
            complaints: n,
            share: ratio(n),
        })
        .collect();
    let templates: Vec<Share> = rules
        .templates
        .iter()
        .zip(&t.template)
        .map(|(tp, &n)| Share {
            id: tp.id.clone(),
            name: None,
            department: None,
            business: Some(rules.businesses[tp.business].id.clone()),
            complaints: n,
            share: ratio(n),
        })
        .collect();
    let never_matched = templates
        .iter()
        .filter(|s| s.complaints == 0)
        .map(|s| s.id.clone())
        .collect();
    let mut regions: Vec<RegionShare> = t
        .regions
        .into_iter()
        .filter(|(_, (c, _))| *c > 0)
        .map(|(r, (c, m))| RegionShare {
            region: r.into(),
            complaints: c,
            matched: m,
            share: m as f64 / c.max(1) as f64,
        })
        .collect();
    regions.sort_by(|a, b| {
        b.complaints
            .cmp(&a.complaints)
            .then_with(|| a.region.cmp(&b.region))
    });
    let mut combos: Vec<(Vec<u16>, Combo)> =
        t.combos.into_iter().filter(|(_, (c, _))| *c > 0).collect();
    combos.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    let combinations = combos
        .into_iter()
        .map(|(k, (c, ex))| Combination {
            businesses: k
                .iter()
                .map(|&b| rules.businesses[b as usize].id.clone())
                .collect(),
            complaints: c,
            examples: ex
                .into_iter()
                .map(|(_, id)| mask(&id).into_owned())
                .collect(),
        })
        .collect();
    let unmatched = t.accepted - t.matched;
    let phrase_texts = t.phrases.unmatched.texts.max(1) as f64;
    let unmatched_phrases = t
        .phrases
        .top(opts.top)
        .into_iter()
        .map(|(phrase, c, bg)| Phrase {
            phrase,
            complaints: c,
            share: c as f64 / phrase_texts,
            background_share: bg,
        })
        .collect();
    Coverage {
        input: name.to_owned(),
        rules_source: rules.source.clone(),
        rules_version: rules.version.clone(),
        lines: t.lines,
        blank: t.blank,
        rejected: Reject::ALL
            .iter()
            .map(|r| (r.name().to_owned(), t.rejected[r.index()]))
            .collect(),
        late_dropped: late,
        complaints: t.accepted,
        matched: t.matched,
        matched_share: ratio(t.matched),
        unmatched,
        vetoed: t.vetoed,
        several_businesses: t.several,
        businesses,
        templates,
        never_matched,
        regions,
        combinations,
        unmatched_phrases,
        elapsed_s: started.elapsed().as_secs_f64(),
    }
}

/// `s` padded with spaces to `width` terminal columns (CJK characters
/// take two).
fn pad(s: &str, width: usize) -> String {
    let w: usize = s
        .chars()
        .map(|c| if (c as u32) >= 0x2E80 { 2 } else { 1 })
        .sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

impl Coverage {
    /// The tables for people; `rows` limits the longer ones.
    pub fn render(&self, rules: &Rules, rows: usize) -> String {
        use std::fmt::Write;
        let pct = |x: f64| format!("{:.1} %", x * 100.0);
        let mut o = String::new();
        let rejected: u64 = self.rejected.values().sum();
        let _ = writeln!(
            o,
            "coverage of {} by {} (version {}): {} lines, {} complaints ({} rejected, {} late, {} blank) in {:.2} s",
            self.input,
            self.rules_source,
            self.rules_version,
            self.lines,
            self.complaints,
            rejected,
            self.late_dropped,
            self.blank,
            self.elapsed_s
        );
        let _ = writeln!(
            o,
            "matched      {} complaints ({}); {} count for several businesses; unmatched {} ({} stopped only by a veto)",
            self.matched,
            pct(self.matched_share),
            self.several_businesses,
            self.unmatched,
            self.vetoed
        );
        let _ = writeln!(o, "\nbusinesses (complaints, share of all complaints):");
        for b in &self.businesses {
            let _ = writeln!(
                o,
                "  {} {} {:<5} {:>9} {:>7}",
                pad(&b.id, 12),
                pad(b.name.as_deref().unwrap_or(""), 16),
                b.department.as_deref().unwrap_or(""),
                b.complaints,
                pct(b.share)
            );
        }
        let mut top: Vec<&Share> = self.templates.iter().filter(|t| t.complaints > 0).collect();
        top.sort_by(|a, b| {
            b.complaints
                .cmp(&a.complaints)
                .then_with(|| a.id.cmp(&b.id))
        });
        let _ = writeln!(
            o,
            "\ntemplates (top {} of {} that match):",
            rows.min(top.len()),
            top.len()
        );
        for t in top.iter().take(rows) {
            let _ = writeln!(o, "  {:<28} {:>9} {:>7}", t.id, t.complaints, pct(t.share));
        }
        if self.never_matched.is_empty() {
            let _ = writeln!(o, "\nevery template matches some complaint");
        } else {
            let shown: Vec<&str> = self
                .never_matched
                .iter()
                .take(rows * 3)
                .map(String::as_str)
                .collect();
            let _ = writeln!(
                o,
                "\ntemplates that never match ({} of {}): {}{}",
                self.never_matched.len(),
                rules.templates.len(),
                shown.join(", "),
                if shown.len() < self.never_matched.len() {
                    ", …"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(o, "\nregions (complaints, matched, matched share):");
        for r in self.regions.iter().take(rows) {
            let _ = writeln!(
                o,
                "  {} {:>9} {:>9} {:>7}",
                pad(&r.region, 10),
                r.complaints,
                r.matched,
                pct(r.share)
            );
        }
        if self.regions.len() > rows {
            let _ = writeln!(o, "  … {} more", self.regions.len() - rows);
        }
        if !self.combinations.is_empty() {
            let _ = writeln!(o, "\nseveral businesses (complaints, first work orders):");
            for c in self.combinations.iter().take(rows) {
                let _ = writeln!(
                    o,
                    "  {:<28} {:>7}  {}",
                    c.businesses.join(" + "),
                    c.complaints,
                    c.examples.join(" ")
                );
            }
        }
        let _ = writeln!(
            o,
            "\ntop unmatched phrases (about how many unmatched complaints hold each, share of them; share among matched):"
        );
        if self.unmatched_phrases.is_empty() {
            let _ = writeln!(o, "  none");
        }
        for p in &self.unmatched_phrases {
            let _ = writeln!(
                o,
                "  {} {:>8} {:>7}   {}",
                pad(&p.phrase, 16),
                p.complaints,
                pct(p.share),
                pct(p.background_share)
            );
        }
        o
    }
}
