//! `hotspot suggest`, step 1: the file read in parallel blocks, merged in
//! file order; the unmatched complaints kept normalised, with the
//! document frequency of their n-grams; and, for step 2, each complaint's
//! n-grams that can burst, densely numbered.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::path::Path;

use anyhow::Context as _;

use crate::matcher::Matcher;
use crate::normalize::Normalizer;
use crate::record::{Decoded, Decoder};
use crate::rules::Rules;
use crate::topics::phrase::{self, grams, segments};

/// Read size of the scan.
const BLOCK: usize = 4 << 20;

/// A hasher for n-gram ids (already spread by [`phrase::mix`]).
#[derive(Default, Clone, Copy)]
pub(super) struct GramHasher(u64);

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

pub(super) type GramMap<V> = HashMap<u64, V, BuildHasherDefault<GramHasher>>;

/// The rules with every `none_of` taken out: a text this matches nothing
/// in covers no template's `all_of`, so it is not even a vetoed complaint
/// about a known topic.
pub(super) fn without_vetoes(rules: &Rules) -> anyhow::Result<Matcher> {
    let mut r = rules.clone();
    r.templates.iter_mut().for_each(|t| t.none_of.clear());
    Ok(Matcher::new(&r)?)
}

/// One unmatched complaint.
#[derive(Debug, Clone, Copy)]
pub(super) struct Doc {
    /// Byte offset of its line in the file.
    pub(super) offset: u64,
    pub(super) ts: i64,
    /// Index into [`Scan::places`].
    pub(super) city: u32,
    pub(super) caller: u64,
    /// Its normalised text is `arena[text.0..text.1]`.
    pub(super) text: (u32, u32),
}

/// What the scan keeps.
pub(super) struct Scan {
    pub(super) lines: u64,
    pub(super) records: u64,
    pub(super) known: u64,
    pub(super) docs: Vec<Doc>,
    pub(super) arena: String,
    /// City names, in order of first appearance in the file.
    pub(super) places: Vec<String>,
    pub(super) df: GramMap<u32>,
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

pub(super) fn threads(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Step 1: the unmatched complaints of `path` and their n-gram counts.
/// A reader cuts the file into blocks of whole lines, `workers` threads
/// scan them, and the blocks are merged in file order as they come.
pub(super) fn scan(path: &Path, strict: &Matcher, workers: usize) -> anyhow::Result<Scan> {
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

pub(super) fn read_full(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
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

pub(super) fn text_of(scan: &Scan, d: u32) -> &str {
    let t = scan.docs[d as usize].text;
    &scan.arena[t.0 as usize..t.1 as usize]
}

/// The dense n-grams of each complaint: those that can burst.
pub(super) struct Dense {
    /// Gram id of each dense index.
    pub(super) ids: Vec<u64>,
    /// `of[d]` is `grams[start[d]..start[d + 1]]`.
    pub(super) start: Vec<u32>,
    pub(super) grams: Vec<u32>,
}

/// Step 2 preparation: n-grams with at least `min` complaints (others
/// cannot reach `min` callers anywhere) and at most `cap` (written
/// everywhere: fillers), densely numbered in id order; each complaint's.
pub(super) fn dense(scan: &Scan, min: u32, cap: u32, workers: usize) -> Dense {
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
