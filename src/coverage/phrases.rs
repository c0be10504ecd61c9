//! The top phrases of complaints that no template matches, for `hotspot
//! coverage`: what rule authors should write templates for next.
//!
//! Candidates and merging are the new-topic detector's
//! ([`crate::topics::phrase`]): a complaint's character 3-grams of its
//! normalised text with numbers and punctuation taken out (no 3-gram
//! crosses a removed number), and overlapping 3-grams merged into the
//! longest phrases a group of complaints shares
//! ([`phrase::shared_phrases`]). What is coverage's own is counting and
//! ranking:
//!
//! * **Counting.** Each unmatched complaint counts each of its 3-grams
//!   once in a table of 3-gram → complaints; one matched complaint in
//!   [`BACKGROUND_EVERY`] (chosen by a hash of its id, so the choice does
//!   not depend on how the file is split) does the same in a background
//!   table. A table keeps at most [`TABLE_GRAMS`] 3-grams: past that, the
//!   least frequent are dropped (a bounded table; a dropped 3-gram that
//!   comes back is counted from there on, so a count is then low by at
//!   most the largest count dropped, which [`PhraseCounts::top`] adds to
//!   the threshold).
//! * **Merging** needs the texts, which a file too large for memory cannot
//!   keep: a bounded sample of [`SAMPLE`] unmatched complaints is (those
//!   whose id hashes lowest: again independent of the split), and their
//!   phrases are the detector's shared phrases, with the *hot* 3-grams of
//!   the whole file as the core: held by at least 0.1 % of the unmatched
//!   complaints (and 3) and at least [`LIFT`] times as frequent among them
//!   as in the background, so that boilerplate every complaint uses
//!   (客户反映, 要求尽快) does not become part of a phrase.
//! * **Ranking.** A phrase counts as its least frequent 3-gram in the whole
//!   file (exact for a 3-character phrase, an upper bound for a longer
//!   one), and its background share likewise; most complaints first. A
//!   phrase inside a listed one with nearly its count, or one that
//!   straddles the edge of a more frequent one, is left out.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use crate::normalize::Normalizer;
use crate::topics::phrase::{self, GRAM, PHRASE_BYTES, gram_id};
use crate::window::key::floor_char_boundary;

/// How much more frequent among unmatched complaints than in the
/// background a phrase must be.
pub(crate) const LIFT: f64 = 3.0;

/// One matched complaint in this many is read as background.
pub(crate) const BACKGROUND_EVERY: u64 = 8;

/// 3-grams a table keeps at most (see the module docs).
pub(crate) const TABLE_GRAMS: usize = 1 << 20;

/// Unmatched complaints sampled for merging.
pub(crate) const SAMPLE: usize = 8192;

/// A shorter phrase inside a kept longer one is dropped when its count is
/// at most this much above the longer one's.
const CONTAINED: f64 = 1.25;

/// Seed of the sample's hash (the background's is unseeded).
const SAMPLE_SEED: u64 = 0x636f_7665_7261_6765;

/// Cuts texts into distinct 3-grams (reused across texts).
#[derive(Default)]
pub(crate) struct Cutter {
    chars: Vec<char>,
    segs: Vec<(u32, u32)>,
    /// The last text's distinct 3-grams, sorted.
    pub grams: Vec<u64>,
}

impl Cutter {
    /// The distinct 3-grams of raw `text` (its first [`PHRASE_BYTES`]),
    /// into [`Cutter::grams`].
    pub fn cut(&mut self, text: &str, normalizer: &mut Normalizer) {
        phrase::segments_of(text, normalizer, &mut self.chars, &mut self.segs);
        self.grams.clear();
        phrase::grams(&self.chars, &self.segs, |g| self.grams.push(g));
        self.grams.sort_unstable();
        self.grams.dedup();
    }
}

/// The sample's key of a complaint: lowest first.
pub(crate) fn sample_key(id: &str, text: &str) -> (u64, u64) {
    (
        xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), SAMPLE_SEED),
        xxhash_rust::xxh3::xxh3_64(text.as_bytes()),
    )
}

/// A bounded table of 3-gram → complaints.
#[derive(Debug, Default, Clone)]
pub(crate) struct Table {
    pub texts: u64,
    counts: HashMap<u64, u32>,
    /// The largest count dropped to keep the table bounded.
    dropped: u32,
}

impl Table {
    fn count(&mut self, grams: &[u64], add: bool) {
        if add {
            self.texts += 1;
            for &g in grams {
                *self.counts.entry(g).or_insert(0) += 1;
            }
        } else {
            self.texts -= 1;
            for g in grams {
                if let Some(c) = self.counts.get_mut(g) {
                    *c = c.saturating_sub(1);
                }
            }
        }
    }

    fn merge(&mut self, other: Table) {
        self.texts += other.texts;
        self.dropped = self.dropped.max(other.dropped);
        if self.counts.is_empty() {
            self.counts = other.counts;
        } else {
            for (g, c) in other.counts {
                *self.counts.entry(g).or_insert(0) += c;
            }
        }
        self.bound();
    }

    /// Drops the least frequent 3-grams, down to half of [`TABLE_GRAMS`],
    /// once there are more than that.
    fn bound(&mut self) {
        if self.counts.len() <= TABLE_GRAMS {
            return;
        }
        let mut c: Vec<u32> = self.counts.values().copied().collect();
        let cut = c.len() - TABLE_GRAMS / 2;
        let (_, &mut at, _) = c.select_nth_unstable(cut);
        self.counts.retain(|_, n| *n > at);
        self.dropped = self.dropped.max(at);
    }

    fn get(&self, g: u64) -> u32 {
        self.counts.get(&g).copied().unwrap_or(0)
    }
}

/// Phrase counts of one part of a file (merged in input order).
#[derive(Debug, Default, Clone)]
pub(crate) struct PhraseCounts {
    /// Unmatched complaints.
    pub unmatched: Table,
    /// The background (sampled matched complaints).
    pub background: Table,
    /// The unmatched complaints whose [`sample_key`] is lowest, normalised
    /// and cut to [`PHRASE_BYTES`]; at most [`SAMPLE`].
    sample: BTreeMap<(u64, u64), String>,
}

impl PhraseCounts {
    /// Adds (`add`) or takes back one text's 3-grams (a [`Cutter`]'s).
    pub fn count(&mut self, grams: &[u64], background: bool, add: bool) {
        let t = if background {
            &mut self.background
        } else {
            &mut self.unmatched
        };
        t.count(grams, add);
    }

    /// Whether an unmatched complaint with this [`sample_key`] would enter
    /// the sample (then [`PhraseCounts::sample`] it).
    pub fn wants(&self, key: (u64, u64)) -> bool {
        self.sample.len() < SAMPLE || self.sample.last_key_value().is_some_and(|(k, _)| key < *k)
    }

    /// Adds an unmatched complaint to the sample (`add`), or takes it back.
    pub fn sample(&mut self, key: (u64, u64), text: &str, normalizer: &mut Normalizer, add: bool) {
        if !add {
            self.sample.remove(&key);
            return;
        }
        let text = &text[..floor_char_boundary(text, PHRASE_BYTES)];
        self.sample
            .insert(key, normalizer.normalize(text).to_owned());
        if self.sample.len() > SAMPLE {
            self.sample.pop_last();
        }
    }

    pub fn merge(&mut self, other: PhraseCounts) {
        self.unmatched.merge(other.unmatched);
        self.background.merge(other.background);
        self.sample.extend(other.sample);
        while self.sample.len() > SAMPLE {
            self.sample.pop_last();
        }
    }

    /// The `limit` top phrases: (phrase, about how many unmatched
    /// complaints hold it, its share of the background), most frequent
    /// first (ties: longer first, then the phrase's text). See the module
    /// docs.
    pub fn top(&self, limit: usize) -> Vec<(String, u32, f64)> {
        let texts = self.unmatched.texts;
        if texts == 0 || self.sample.is_empty() {
            return Vec::new();
        }
        let at_least = |n: usize| ((n as f64 * 0.001).ceil() as u32).max(3);
        let min = at_least(texts as usize).saturating_add(self.unmatched.dropped);
        let bg_texts = self.background.texts.max(1) as f64;
        let bg_share = |g: u64| self.background.get(g) as f64 / bg_texts;
        let lifted = |c: u32, bg: f64| c as f64 / texts as f64 >= LIFT * bg;
        let near = |lo: u32, hi: u32| hi as f64 <= lo as f64 * CONTAINED;
        let hot = |g: u64, _: u32| {
            let c = self.unmatched.get(g);
            c >= min && lifted(c, bg_share(g))
        };
        let sample: Vec<&str> = self.sample.values().map(String::as_str).collect();
        let min_docs = at_least(sample.len()) as usize;
        // Each merged phrase split where the count of its 3-grams jumps:
        // `客户致电要求开通国际漫游` is an opener and a request that vary
        // independently (`客户致电`, `开通国际漫游`).
        let mut pieces: HashMap<String, (u32, f64)> = HashMap::new();
        for p in phrase::shared_phrases(&sample, min_docs, hot, usize::MAX) {
            let chars: Vec<char> = p.text.chars().collect();
            let grams: Vec<(u32, f64)> = chars
                .windows(GRAM)
                .map(|w| {
                    let g = gram_id(w[0], w[1], w[2]);
                    (self.unmatched.get(g), bg_share(g))
                })
                .collect();
            let mut from = 0;
            while from < grams.len() {
                let (mut lo, mut hi, mut bg) = (grams[from].0, grams[from].0, grams[from].1);
                let mut to = from + 1;
                while let Some(&(c, b)) = grams.get(to) {
                    if !near(lo.min(c), hi.max(c)) {
                        break;
                    }
                    (lo, hi, bg, to) = (lo.min(c), hi.max(c), bg.min(b), to + 1);
                }
                if lo >= min && lifted(lo, bg) {
                    let text: String = chars[from..to - 1 + GRAM].iter().collect();
                    pieces.insert(text, (lo, bg));
                }
                from = to;
            }
        }
        let mut found: Vec<(String, u32, f64)> =
            pieces.into_iter().map(|(t, (c, bg))| (t, c, bg)).collect();
        found.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(b.0.chars().count().cmp(&a.0.chars().count()))
                .then_with(|| a.0.cmp(&b.0))
        });
        let mut kept: Vec<(String, u32, f64)> = Vec::new();
        for (i, (text, c, bg)) in found.iter().enumerate() {
            if kept.len() == limit {
                break;
            }
            // A phrase inside a phrase of nearly its count says nothing
            // more (the list is by count, so those are near its place).
            let inside = found
                .iter()
                .take_while(|k| near(k.1, *c))
                .enumerate()
                .any(|(j, k)| j != i && k.0.len() > text.len() && k.0.contains(text.as_str()));
            // A phrase that straddles the edge of a more frequent one
            // (`户来电咨` against `来电咨询`) is a fragment of two.
            if inside || kept.iter().any(|k| straddles(text, &k.0)) {
                continue;
            }
            kept.push((text.clone(), *c, *bg));
        }
        kept
    }
}

/// Whether `a` and `b` overlap at an edge by at least two characters
/// without one holding the other: `a`'s end is `b`'s start or the other
/// way round.
fn straddles(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let most = a.len().min(b.len());
    (2..most).any(|k| a[a.len() - k..] == b[..k] || b[b.len() - k..] == a[..k])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts `text` as an unmatched complaint (`id`) or as background.
    fn add(
        c: &mut PhraseCounts,
        cut: &mut Cutter,
        n: &mut Normalizer,
        id: &str,
        text: &str,
        bg: bool,
    ) {
        cut.cut(text, n);
        c.count(&cut.grams, bg, true);
        let key = sample_key(id, text);
        if !bg && c.wants(key) {
            c.sample(key, text, n, true);
        }
    }

    #[test]
    fn grams_are_the_detectors_numbers_and_punctuation_removed() {
        let (mut cut, mut n) = (Cutter::default(), Normalizer::new());
        cut.cut("无法登录2次，无法登录", &mut n);
        let mut t: Vec<String> = cut.grams.iter().map(|&g| phrase::gram_text(g)).collect();
        t.sort();
        assert_eq!(t, ["录#次", "无法登", "法登录", "登录#"]);
        cut.cut("13812345678", &mut n);
        assert!(cut.grams.is_empty());
    }

    #[test]
    fn boilerplate_is_left_out_and_overlaps_merge() {
        let mut c = PhraseCounts::default();
        let (mut cut, mut n) = (Cutter::default(), Normalizer::new());
        let openers = ["客户反映", "用户来电称", "机主表示", "客户投诉"];
        let closers = ["，要求尽快处理", "，请核实", "，很不满意"];
        for i in 0..120 {
            let (o, e) = (openers[i % 4], closers[i % 3]);
            add(
                &mut c,
                &mut cut,
                &mut n,
                &format!("u{i}"),
                &format!("{o}，积分兑换失败{e}"),
                false,
            );
            add(
                &mut c,
                &mut cut,
                &mut n,
                &format!("m{i}"),
                &format!("{o}，彩铃无法设置{e}"),
                true,
            );
        }
        let top = c.top(10);
        let texts: Vec<&str> = top.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(texts, ["积分兑换失败"], "{top:?}");
        assert_eq!(top[0].1, 120);
        // Taking texts back undoes them.
        for i in 0..120 {
            let (o, e) = (openers[i % 4], closers[i % 3]);
            let text = format!("{o}，积分兑换失败{e}");
            cut.cut(&text, &mut n);
            c.count(&cut.grams, false, false);
            c.sample(sample_key(&format!("u{i}"), &text), &text, &mut n, false);
        }
        assert!(c.top(10).is_empty(), "{:?}", c.top(10));
    }

    #[test]
    fn a_full_table_drops_the_least_frequent() {
        let mut t = Table::default();
        for g in 0..(TABLE_GRAMS as u64 + 10) {
            t.count(&[g, u64::MAX], true);
        }
        t.merge(Table::default());
        assert!(t.counts.len() <= TABLE_GRAMS / 2 + 1, "{}", t.counts.len());
        assert_eq!(t.get(u64::MAX), TABLE_GRAMS as u32 + 10);
        assert_eq!(t.dropped, 1);
    }
}
