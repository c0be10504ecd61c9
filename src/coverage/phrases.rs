//! The top phrases of complaints that no template matches, for `hotspot
//! coverage`: what rule authors should write templates for next.
//!
//! A phrase is a run of 2 to 4 CJK ideographs (U+3400..U+9FFF) of a
//! normalised text; anything else — digits, Latin letters, punctuation —
//! ends a run, so numbers never become part of a phrase. Each text counts a
//! phrase once. Phrases every complaint uses whether matched or not (客户,
//! 反映, 要求尽快) are boilerplate: a phrase is reported only when it is
//! at least [`LIFT`] times as frequent among unmatched complaints as in a
//! background of matched ones (every [`BACKGROUND_EVERY`]th matched
//! complaint, chosen by a hash of its id, so the choice does not depend on
//! how the file is split). A shorter phrase inside a reported longer one
//! with nearly its count is left out (`无法登` inside `无法登录`).
//!
//! This is coverage's own small version; the new-topic detector's phrase
//! code (src/topics/phrase.rs) is meant to replace it once both are on
//! main.
//!
//! A phrase of up to four such characters is packed into a `u64` (16 bits
//! a character, none of them 0), so counting is a hash map of integers.

use hashbrown::HashMap;

/// Shortest and longest phrase, in characters.
pub(crate) const MIN_LEN: usize = 2;
pub(crate) const MAX_LEN: usize = 4;

/// How much more frequent among unmatched complaints than in the
/// background a phrase must be.
pub(crate) const LIFT: f64 = 3.0;

/// One matched complaint in this many is read as background.
pub(crate) const BACKGROUND_EVERY: u64 = 8;

/// A shorter phrase inside a kept longer one is dropped when its count is
/// at most this much above the longer one's.
const CONTAINED: f64 = 1.25;

#[inline]
fn phrase_char(c: char) -> Option<u64> {
    let cp = c as u32;
    (0x3400..=0x9FFF).contains(&cp).then_some(cp as u64)
}

/// The distinct phrases of `normalized`, packed, into `out` (cleared
/// first; sorted and without repeats).
pub(crate) fn phrases_of(normalized: &str, out: &mut Vec<u64>) {
    out.clear();
    let mut window = [0u64; MAX_LEN];
    let mut run = 0usize;
    for c in normalized.chars() {
        let Some(v) = phrase_char(c) else {
            run = 0;
            continue;
        };
        window.rotate_left(1);
        window[MAX_LEN - 1] = v;
        run += 1;
        // Every phrase ending at this character.
        let mut key = v;
        for len in 2..=MAX_LEN.min(run) {
            key |= window[MAX_LEN - len] << (16 * (len - 1));
            if len >= MIN_LEN {
                out.push(key);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
}

/// A packed phrase back to its text.
pub(crate) fn unpack(mut key: u64) -> String {
    let mut chars = Vec::with_capacity(MAX_LEN);
    while key != 0 {
        chars.push(char::from_u32((key & 0xFFFF) as u32).unwrap_or('\u{FFFD}'));
        key >>= 16;
    }
    chars.iter().rev().collect()
}

/// Phrase counts of one part of a file (merged in input order).
#[derive(Debug, Default, Clone)]
pub(crate) struct PhraseCounts {
    /// Unmatched complaints and, per phrase, how many of them hold it.
    pub texts: u64,
    pub counts: HashMap<u64, u32>,
    /// The background (sampled matched complaints), likewise.
    pub background_texts: u64,
    pub background: HashMap<u64, u32>,
}

impl PhraseCounts {
    /// Adds (`add`) or takes back one text's phrases.
    pub fn count(&mut self, phrases: &[u64], background: bool, add: bool) {
        let (texts, counts) = if background {
            (&mut self.background_texts, &mut self.background)
        } else {
            (&mut self.texts, &mut self.counts)
        };
        if add {
            *texts += 1;
            for &p in phrases {
                *counts.entry(p).or_insert(0) += 1;
            }
        } else {
            *texts -= 1;
            for &p in phrases {
                if let Some(c) = counts.get_mut(&p) {
                    *c -= 1;
                }
            }
        }
    }

    pub fn merge(&mut self, other: PhraseCounts) {
        self.texts += other.texts;
        self.background_texts += other.background_texts;
        for (target, from) in [
            (&mut self.counts, other.counts),
            (&mut self.background, other.background),
        ] {
            if target.is_empty() {
                *target = from;
                continue;
            }
            for (p, c) in from {
                *target.entry(p).or_insert(0) += c;
            }
        }
    }

    /// The `limit` top phrases: (phrase, about how many unmatched
    /// complaints hold it, its share of the background), most frequent
    /// first (ties: the phrase's text).
    ///
    /// Candidates are the counted phrases held by at least 0.1 % of the
    /// unmatched complaints (and 3) and [`LIFT`] times as frequent as in
    /// the background. Four-character candidates that overlap by three
    /// characters and have nearly the same count (within [`CONTAINED`])
    /// are chained into one longer phrase (`积分兑换` + `分兑换失` + `兑换失败`
    /// → `积分兑换失败`, counted as its least frequent part); a shorter
    /// candidate inside a phrase of nearly its count is left out, and so is
    /// one that straddles the edge of a more frequent phrase.
    pub fn top(&self, limit: usize) -> Vec<(String, u32, f64)> {
        if self.texts == 0 {
            return Vec::new();
        }
        let min = ((self.texts as f64 * 0.001).ceil() as u32).max(3);
        let bg_texts = self.background_texts as f64;
        let mut cands: Vec<(u64, u32, f64)> = self
            .counts
            .iter()
            .filter(|&(_, &c)| c >= min)
            .filter_map(|(&p, &c)| {
                let share = c as f64 / self.texts as f64;
                let bg = match self.background.get(&p) {
                    Some(&b) if bg_texts > 0.0 => b as f64 / bg_texts,
                    _ => 0.0,
                };
                (share >= LIFT * bg).then_some((p, c, bg))
            })
            .collect();
        let len = |p: u64| (64 - p.leading_zeros()).div_ceil(16) as usize;
        // Most frequent first; longer first among equals.
        cands.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(len(b.0).cmp(&len(a.0)))
                .then(a.0.cmp(&b.0))
        });
        let near = |a: u32, b: u32| {
            let (lo, hi) = (a.min(b) as f64, a.max(b) as f64);
            hi <= lo * CONTAINED
        };
        let full: std::collections::BTreeMap<u64, (u32, f64)> = cands
            .iter()
            .filter(|c| len(c.0) == MAX_LEN)
            .map(|&(p, c, bg)| (p, (c, bg)))
            .collect();
        // Four-character candidates by their first and by their last three
        // characters (ascending, so the choice below is deterministic).
        let low3 = (1u64 << (16 * (MAX_LEN - 1))) - 1;
        let mut by_head: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
        let mut by_tail: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
        for &q in full.keys() {
            by_head.entry(q >> 16).or_default().push(q);
            by_tail.entry(q & low3).or_default().push(q);
        }
        let mut used: hashbrown::HashSet<u64> = hashbrown::HashSet::new();
        let mut chains: Vec<(String, u32, f64)> = Vec::new();
        for &(p, c, bg) in cands.iter().filter(|c| len(c.0) == MAX_LEN) {
            if !used.insert(p) {
                continue;
            }
            let (mut text, mut count, mut bg_max) = (unpack(p), c, bg);
            // Chain right, then left, through unused near-equal candidates.
            let mut right = p;
            while let Some(&q) = by_head
                .get(&(right & low3))
                .into_iter()
                .flatten()
                .find(|q| near(full[*q].0, c) && !used.contains(*q))
            {
                used.insert(q);
                let (qc, qbg) = full[&q];
                text.push(char::from_u32((q & 0xFFFF) as u32).unwrap_or('\u{FFFD}'));
                (count, bg_max, right) = (count.min(qc), bg_max.max(qbg), q);
            }
            let mut left = p;
            while let Some(&q) = by_tail
                .get(&(left >> 16))
                .into_iter()
                .flatten()
                .find(|q| near(full[*q].0, c) && !used.contains(*q))
            {
                used.insert(q);
                let (qc, qbg) = full[&q];
                let ch = char::from_u32((q >> (16 * (MAX_LEN - 1))) as u32).unwrap_or('\u{FFFD}');
                text.insert(0, ch);
                (count, bg_max, left) = (count.min(qc), bg_max.max(qbg), q);
            }
            chains.push((text, count, bg_max));
        }
        chains.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut all: Vec<(String, u32, f64, bool)> = chains
            .iter()
            .map(|(t, c, b)| (t.clone(), *c, *b, true))
            .collect();
        all.extend(
            cands
                .iter()
                .filter(|c| len(c.0) < MAX_LEN)
                .map(|&(p, c, bg)| (unpack(p), c, bg, false)),
        );
        all.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(b.0.chars().count().cmp(&a.0.chars().count()))
                .then_with(|| a.0.cmp(&b.0))
        });
        let mut kept: Vec<(String, u32, f64)> = Vec::new();
        for (i, (text, c, _, chained)) in all.iter().enumerate() {
            if kept.len() == limit {
                break;
            }
            // A shorter phrase inside a phrase of nearly its count says
            // nothing more (the list is by count, so those are near its
            // place).
            let inside = !chained
                && all
                    .iter()
                    .take_while(|k| k.1 as f64 * CONTAINED >= *c as f64)
                    .enumerate()
                    .any(|(j, k)| j != i && k.0.len() > text.len() && k.0.contains(text.as_str()));
            // A phrase that straddles the edge of a more frequent one
            // (`户来电咨` against `来电咨询`) is a fragment of two.
            if inside || kept.iter().any(|k| straddles(text, &k.0)) {
                continue;
            }
            kept.push((text.clone(), *c, all[i].2));
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

    fn texts(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        phrases_of(s, &mut v);
        let mut t: Vec<String> = v.into_iter().map(unpack).collect();
        t.sort();
        t
    }

    #[test]
    fn runs_of_ideographs_numbers_removed() {
        assert_eq!(
            texts("无法登录2次"),
            ["无法", "无法登", "无法登录", "法登", "法登录", "登录"]
        );
        // Digits, letters and punctuation end a run; repeats count once.
        assert_eq!(texts("a登录,登录9登"), ["登录"]);
        assert!(texts("13812345678").is_empty());
    }

    #[test]
    fn boilerplate_is_left_out_and_overlaps_chain() {
        let mut c = PhraseCounts::default();
        let mut v = Vec::new();
        let openers = ["客户反映", "用户来电称", "机主表示", "客户投诉"];
        let closers = ["，要求尽快处理", "，请核实", "，很不满意"];
        for i in 0..120 {
            let (o, e) = (openers[i % 4], closers[i % 3]);
            phrases_of(&format!("{o}积分兑换失败{e}"), &mut v);
            c.count(&v, false, true);
            phrases_of(&format!("{o}彩铃无法设置{e}"), &mut v);
            c.count(&v, true, true);
        }
        let top: Vec<String> = c.top(10).into_iter().map(|t| t.0).collect();
        assert_eq!(
            top.first().map(String::as_str),
            Some("积分兑换失败"),
            "{top:?}"
        );
        assert!(
            !top.iter().any(|t| t.contains("客户") || t.contains("要求")),
            "{top:?}"
        );
        assert!(!top.contains(&"积分".to_owned()), "{top:?}");
        // Taking texts back undoes them.
        for i in 0..120 {
            let (o, e) = (openers[i % 4], closers[i % 3]);
            phrases_of(&format!("{o}积分兑换失败{e}"), &mut v);
            c.count(&v, false, false);
        }
        assert!(c.top(10).is_empty(), "{:?}", c.top(10));
    }
}
