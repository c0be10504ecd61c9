//! The recent complaints of one partition of the new-topic detector: those
//! that matched no template and can still fall in a live window, in input
//! order, each with its n-grams (as 32-bit fingerprints) and its text, cut
//! to [`SAMPLE_BYTES`]. Texts are masked whenever they leave memory: as
//! alert samples (masked when kept, like the businesses' samples) and in
//! checkpoints ([`Recent::export`]); masking every complaint on arrival
//! cost a tenth of a replay's time, for the few that ever leave.
//!
//! The sketch says cheaply that an n-gram is frequent at a place now; the
//! exact count of distinct callers per window, the alert's samples and the
//! phrases the complaints share come from here. Memory is bounded twice:
//! complaints whose windows are all dead are dropped (as the key store
//! frees dead bins), and past [`MAX_BYTES`] or [`MAX_DOCS`] the oldest go
//! first, so a flood shortens the memory instead of growing it (counts may
//! then miss complaints from the start of a window, never invent any).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::mask::mask_and_cut;
use crate::window::key::{CallerId, SAMPLE_BYTES, SAMPLE_CHARS, floor_char_boundary};

/// Bytes of texts, ids and n-grams a partition keeps at most.
pub const MAX_BYTES: usize = 2 << 20;

/// Complaints a partition keeps at most.
pub const MAX_DOCS: usize = 16_384;

/// Bookkeeping bytes of one complaint besides its strings and n-grams.
const DOC_OVERHEAD: usize = std::mem::size_of::<Doc>();

/// One recent complaint.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub seq: u64,
    pub ts: i64,
    pub bin: i64,
    pub caller: Option<CallerId>,
    /// Hash of the region (the city's place key).
    pub city: u64,
    /// Its province's index in the rules' table, or `u32::MAX`.
    pub province: u32,
    /// `id`, then `region`, then the text (cut), in one buffer.
    buf: String,
    id_end: u32,
    region_end: u32,
    /// Absolute index of its first n-gram in [`Recent::grams`].
    grams_at: u64,
    grams_len: u32,
}

impl Doc {
    pub fn id(&self) -> &str {
        &self.buf[..self.id_end as usize]
    }

    pub fn region(&self) -> &str {
        &self.buf[self.id_end as usize..self.region_end as usize]
    }

    /// The text, cut to [`SAMPLE_BYTES`] (not masked).
    pub fn text(&self) -> &str {
        &self.buf[self.region_end as usize..]
    }

    fn bytes(&self) -> usize {
        self.buf.capacity() + self.grams_len as usize * 4 + DOC_OVERHEAD
    }
}

/// The fingerprint a complaint keeps of an n-gram id: the low bits of its
/// [`crate::topics::phrase::mix`].
#[inline]
pub(crate) fn fingerprint(gram: u64) -> u32 {
    crate::topics::phrase::mix(gram) as u32
}

/// A partition's recent complaints.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    docs: VecDeque<Doc>,
    /// The n-gram fingerprints of every complaint, in order.
    grams: VecDeque<u32>,
    /// Absolute index of `grams[0]`.
    grams_front: u64,
    bytes: usize,
    /// Buffers of dropped complaints, for reuse.
    pool: Vec<String>,
    /// Complaints dropped for room before their windows died.
    pub(crate) pushed_out: u64,
}

/// What a new complaint brings: where and when, its caller, and its texts.
pub(crate) struct NewDoc<'a> {
    pub seq: u64,
    pub ts: i64,
    pub bin: i64,
    pub caller: Option<CallerId>,
    pub city: u64,
    pub province: u32,
    pub id: &'a str,
    pub region: &'a str,
    /// The raw text (cut here).
    pub text: &'a str,
}

impl Recent {
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes + self.pool.iter().map(String::capacity).sum::<usize>()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Doc> + ExactSizeIterator {
        self.docs.iter()
    }

    pub fn get(&self, i: usize) -> &Doc {
        &self.docs[i]
    }

    /// The n-gram fingerprints of `d`.
    #[inline]
    pub fn grams_of(&self, d: &Doc) -> (&[u32], &[u32]) {
        let a = (d.grams_at - self.grams_front) as usize;
        let b = a + d.grams_len as usize;
        let (s1, s2) = self.grams.as_slices();
        let n = s1.len();
        (&s1[a.min(n)..b.min(n)], &s2[a.max(n) - n..b.max(n) - n])
    }

    /// Whether `d` holds the n-gram of fingerprint `fp`.
    #[cfg(test)]
    pub fn holds(&self, d: &Doc, fp: u32) -> bool {
        let (a, b) = self.grams_of(d);
        a.contains(&fp) || b.contains(&fp)
    }

    /// Appends a complaint with the [`crate::topics::phrase::mix`] of each
    /// of its distinct n-grams.
    pub fn push(&mut self, d: NewDoc<'_>, hashes: &[u64]) {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        buf.push_str(d.id);
        let id_end = buf.len() as u32;
        buf.push_str(d.region);
        let region_end = buf.len() as u32;
        buf.push_str(&d.text[..floor_char_boundary(d.text, SAMPLE_BYTES)]);
        let doc = Doc {
            seq: d.seq,
            ts: d.ts,
            bin: d.bin,
            caller: d.caller,
            city: d.city,
            province: d.province,
            buf,
            id_end,
            region_end,
            grams_at: self.grams_front + self.grams.len() as u64,
            grams_len: hashes.len() as u32,
        };
        self.grams.extend(hashes.iter().map(|&h| h as u32));
        self.bytes += doc.bytes();
        self.docs.push_back(doc);
        while self.docs.len() > MAX_DOCS || (self.bytes > MAX_BYTES && self.docs.len() > 1) {
            self.pop();
            self.pushed_out += 1;
        }
    }

    /// Drops the oldest complaints (in input order) whose bin is before
    /// `first_live_bin`: no live window holds them.
    pub fn expire(&mut self, first_live_bin: i64) {
        while self.docs.front().is_some_and(|d| d.bin < first_live_bin) {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some(d) = self.docs.pop_front() {
            self.bytes -= d.bytes();
            self.grams.drain(..d.grams_len as usize);
            self.grams_front += d.grams_len as u64;
            if self.pool.len() < 64 {
                self.pool.push(d.buf);
            }
        }
    }

    /// The saved form: texts masked and cut to [`SAMPLE_CHARS`].
    pub fn export(&self) -> Vec<DocState> {
        self.docs
            .iter()
            .map(|d| {
                let (a, b) = self.grams_of(d);
                DocState {
                    seq: d.seq,
                    ts: d.ts,
                    caller: d.caller.map(|c| format!("{c:032x}")),
                    id: d.id().to_owned(),
                    region: d.region().to_owned(),
                    text: mask_and_cut(d.text(), SAMPLE_CHARS),
                    grams: a.iter().chain(b).copied().collect(),
                }
            })
            .collect()
    }

    /// Appends a saved complaint (already masked and cut).
    pub fn push_saved(&mut self, s: &DocState, bin: i64, city: u64, province: u32) {
        let mut buf = String::with_capacity(s.id.len() + s.region.len() + s.text.len());
        buf.push_str(&s.id);
        let id_end = buf.len() as u32;
        buf.push_str(&s.region);
        let region_end = buf.len() as u32;
        buf.push_str(&s.text);
        let doc = Doc {
            seq: s.seq,
            ts: s.ts,
            bin,
            caller: s
                .caller
                .as_deref()
                .and_then(|c| u128::from_str_radix(c, 16).ok()),
            city,
            province,
            buf,
            id_end,
            region_end,
            grams_at: self.grams_front + self.grams.len() as u64,
            grams_len: s.grams.len() as u32,
        };
        self.grams.extend(s.grams.iter().copied());
        self.bytes += doc.bytes();
        self.docs.push_back(doc);
    }
}

/// A recent complaint as checkpoints hold it: its text masked and cut.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DocState {
    pub seq: u64,
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    pub id: String,
    pub region: String,
    pub text: String,
    pub grams: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc<'a>(seq: u64, bin: i64, text: &'a str) -> NewDoc<'a> {
        NewDoc {
            seq,
            ts: bin * 60_000,
            bin,
            caller: Some(seq as u128),
            city: 7,
            province: u32::MAX,
            id: "WO1",
            region: "杭州",
            text,
        }
    }

    #[test]
    fn keeps_masked_texts_and_grams_and_drops_dead_bins() {
        let mut r = Recent::default();
        let h = |g: &[u64]| {
            g.iter()
                .map(|&g| crate::topics::phrase::mix(g))
                .collect::<Vec<_>>()
        };
        r.push(doc(1, 10, "回访号码13812345678，新套餐"), &h(&[1, 2, 3]));
        r.push(doc(2, 11, "无号码"), &h(&[3, 4]));
        assert_eq!(r.len(), 2);
        let d = r.get(0);
        assert_eq!(
            (d.id(), d.region(), d.text()),
            ("WO1", "杭州", "回访号码13812345678，新套餐")
        );
        assert_eq!(r.export()[0].text, "回访号码138****5678，新套餐");
        assert!(r.holds(d, fingerprint(2)) && !r.holds(d, fingerprint(4)));
        assert!(r.holds(r.get(1), fingerprint(4)));
        r.expire(11);
        assert_eq!(r.len(), 1);
        assert!(r.holds(r.get(0), fingerprint(3)) && !r.holds(r.get(0), fingerprint(1)));
        // Round trip.
        let saved = r.export();
        let mut back = Recent::default();
        for s in &saved {
            back.push_saved(s, 11, 7, u32::MAX);
        }
        assert_eq!(back.export().len(), 1);
        assert_eq!(back.get(0).text(), "无号码");
        assert!(back.holds(back.get(0), fingerprint(4)));
    }

    #[test]
    fn a_flood_stays_within_the_byte_bound() {
        let mut r = Recent::default();
        let text = "很长的投诉内容".repeat(50);
        let grams: Vec<u64> = (0..300).collect();
        for i in 0..20_000u64 {
            r.push(doc(i, 100, &text), &grams);
            assert!(r.bytes <= MAX_BYTES + 8192, "{}", r.bytes);
        }
        assert!(r.pushed_out > 0);
        assert!(r.len() < MAX_DOCS);
        // The newest is kept.
        assert_eq!(r.iter().last().unwrap().seq, 19_999);
    }
}
