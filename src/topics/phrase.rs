//! Candidate phrases of a complaint: character n-grams of its normalised
//! text, and the merging of overlapping n-grams into the longest phrase a
//! group of complaints shares (CONTRACT 8, "New topics").
//!
//! Chinese has no spaces between words, so a complaint's words are not
//! known; its *character* n-grams ([`GRAM`] characters) are, and a phrase
//! that many callers write shares all of its n-grams. Before cutting
//! n-grams the text is cleaned:
//!
//! * **Numbers go.** A run of ASCII letters, digits and `*` (the text is
//!   normalised, so full-width digits are ASCII by now) that holds a `*`
//!   (a masked number: `138****5678`, `330106********1234`) or three or
//!   more digits (a phone or ID-card number, an order number
//!   `WO2026031400001692`, a hotline `10086`, an amount) is taken out.
//!   A run of one or two digits alone stands for *a* number: it becomes
//!   [`NUMBER`] (`从14点` and `从9点` are both `从#点`: times of day, dates
//!   and small amounts differ from caller to caller and hour to hour, and
//!   would otherwise look like a new phrase every hour). Words with a
//!   digit in them stay as written: `5g`, `4g`, `mp3`.
//! * **Punctuation and spaces go**: everything that is not a letter or a
//!   digit of some script.
//!
//! What is taken out splits the text into *segments*, and an n-gram never
//! crosses from one segment to the next: `号码13812345678无法` has no n-gram
//! holding both `码` and `无`. A phone number written in clear and the same
//! number masked (`138****5678`) therefore give the same n-grams, so the
//! detector learns the same from raw text as from the masked texts it keeps.
//!
//! An n-gram is identified by [`gram_id`]: its three code points packed
//! into 63 bits, exact (no two n-grams share an id); [`mix`] spreads it for
//! hash tables.
//!
//! **Merging** ([`shared_phrases`]): given the complaints of one topic,
//! the n-grams at least `min_docs` of them contain are *shared*; in each
//! complaint, a run of consecutive shared n-grams is one phrase (the
//! overlapping n-grams `新套餐`, `套餐扣`, `餐扣费` are the phrase
//! `新套餐扣费`), trimmed to the n-grams a caller-supplied test calls
//! *core* (the detector's: unusual for the place, so that `客户反映` in
//! front of every complaint does not become part of every phrase). The
//! phrases that `min_docs` complaints contain are the topic's terms,
//! longest (most specific) first; a phrase inside a longer one is kept only
//! when more complaints contain it.

use std::collections::{HashMap, HashSet};

/// Characters per n-gram.
pub const GRAM: usize = 3;

/// Bytes of a complaint's text that phrases are cut from: enough for 500
/// Chinese characters. The rest of a longer text (a valid record may hold
/// a megabyte) is not looked at, so that the cost of a record is bounded.
pub const PHRASE_BYTES: usize = 1600;

/// What a number of one or two digits becomes in a segment.
pub const NUMBER: char = '#';

/// Phrases written in an alert's `terms`, at most.
pub const MAX_TERMS: usize = 5;

/// The identity of an n-gram: its three code points (21 bits each) packed
/// into one `u64`. Exact: two n-grams have the same id only when they are
/// the same characters.
#[inline]
pub fn gram_id(a: char, b: char, c: char) -> u64 {
    (a as u64) | (b as u64) << 21 | (c as u64) << 42
}

/// The characters of an n-gram id (the inverse of [`gram_id`]).
pub fn gram_text(id: u64) -> String {
    [id & 0x1F_FFFF, id >> 21 & 0x1F_FFFF, id >> 42 & 0x1F_FFFF]
        .iter()
        .filter_map(|&c| char::from_u32(c as u32))
        .collect()
}

/// Words of the clock: `今晚` is in a few percent of all complaints every
/// evening, and more on an evening of twice the volume, so its n-grams
/// (`称今晚`, `示今晚`) were the detector's false new topics; a topic is
/// never named by when its callers wrote.
const CLOCK_WORDS: [[char; 2]; 16] = [
    ['今', '晚'],
    ['今', '天'],
    ['今', '日'],
    ['昨', '天'],
    ['昨', '晚'],
    ['前', '天'],
    ['明', '天'],
    ['晚', '上'],
    ['上', '午'],
    ['下', '午'],
    ['中', '午'],
    ['凌', '晨'],
    ['早', '上'],
    ['傍', '晚'],
    ['夜', '里'],
    ['刚', '才'],
];

/// The three characters of a 3-gram id.
fn chars_of(id: u64) -> [char; 3] {
    let c = |k: u32| char::from_u32((id >> (21 * k) & 0x1F_FFFF) as u32).unwrap_or('\0');
    [c(0), c(1), c(2)]
}

/// Whether the 3-gram `id` holds a word of the clock ([`CLOCK_WORDS`]).
pub fn is_clock_gram(id: u64) -> bool {
    let [a, b, d] = chars_of(id);
    CLOCK_WORDS.iter().any(|w| *w == [a, b] || *w == [b, d])
}

/// Whether the `i`-th of a text's 3-grams (in text order, as [`grams`]
/// gives them) holds a word of the clock or half of one: `称今晚` and
/// `今晚营`, and also `客称今` and `晚营业` around them, which on their own
/// would make `今晚营业` a phrase. Such a 3-gram never opens a new topic.
pub fn touches_clock(grams: &[u64], i: usize) -> bool {
    let g = grams[i];
    if is_clock_gram(g) {
        return true;
    }
    let [a, b, d] = chars_of(g);
    // The 3-gram before shares `a b` and may start with a clock word
    // ending in `a`; the one after shares `b d` and may end with one
    // starting in `d`.
    let before = i
        .checked_sub(1)
        .map(|k| chars_of(grams[k]))
        .is_some_and(|[p0, p1, p2]| [p1, p2] == [a, b] && CLOCK_WORDS.contains(&[p0, p1]));
    let after = grams
        .get(i + 1)
        .map(|&n| chars_of(n))
        .is_some_and(|[n0, n1, n2]| [n0, n1] == [b, d] && CLOCK_WORDS.contains(&[n1, n2]));
    before || after
}

/// A 64-bit finaliser (the one of MurmurHash3): spreads an id or a
/// combination of ids over all bits, for hash tables and sketches.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// Cuts `normalized` (text through [`crate::normalize`]) into segments:
/// `chars` receives the characters kept, `segs` the `(start, end)` of each
/// segment in `chars`. Both are cleared first; reusing them across calls
/// avoids allocation.
pub fn segments(normalized: &str, chars: &mut Vec<char>, segs: &mut Vec<(u32, u32)>) {
    chars.clear();
    segs.clear();
    let mut start = 0usize;
    let close = |chars: &Vec<char>, segs: &mut Vec<(u32, u32)>, start: &mut usize| {
        if chars.len() > *start {
            segs.push((*start as u32, chars.len() as u32));
        }
        *start = chars.len();
    };
    let mut it = normalized.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c.is_ascii_alphanumeric() || c == '*' {
            // A token: letters, digits and masks, taken whole.
            let mut end = i + 1;
            let (mut digits, mut stars) = (c.is_ascii_digit() as u32, (c == '*') as u32);
            while let Some(&(j, d)) = it.peek() {
                if !(d.is_ascii_alphanumeric() || d == '*') {
                    break;
                }
                digits += d.is_ascii_digit() as u32;
                stars += (d == '*') as u32;
                end = j + 1;
                it.next();
            }
            if stars > 0 || digits >= 3 {
                close(chars, segs, &mut start);
            } else if digits as usize == end - i {
                chars.push(NUMBER);
            } else {
                chars.extend(normalized[i..end].chars());
            }
        } else if matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
            || c.is_alphanumeric()
        {
            // (CJK ideographs first: the general test is a table search.)
            chars.push(c);
        } else {
            close(chars, segs, &mut start);
        }
    }
    close(chars, segs, &mut start);
}

/// What [`segments_raw`] does with a character of raw text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Raw {
    /// Part of a segment, as this character (NFKC and lower-case applied).
    Keep(char),
    /// An ASCII letter, digit or `*` (lower-cased): part of a token.
    Token(char),
    /// Punctuation or a space: ends a segment.
    Sep,
    /// Needs full normalisation.
    Slow,
}

/// The characters complaint text is made of, folded as normalisation
/// would: ASCII (lower-cased), CJK ideographs (NFKC keeps them), the
/// full-width forms (NFKC maps them to ASCII), the ideographic space and
/// the common Chinese punctuation (NFKC keeps them or maps them to other
/// punctuation). Everything else is `Slow`.
#[inline]
fn raw_class(c: char) -> Raw {
    let token = |a: char| {
        if a.is_ascii_alphanumeric() || a == '*' {
            Raw::Token(a.to_ascii_lowercase())
        } else {
            Raw::Sep
        }
    };
    match c {
        '\u{4E00}'..='\u{9FFF}' => Raw::Keep(c),
        '\0'..='\x7F' => token(c),
        '\u{3400}'..='\u{4DBF}' => Raw::Keep(c),
        '\u{FF01}'..='\u{FF5E}' => token(char::from(b'!' + (c as u32 - 0xFF01) as u8)),
        '\u{3000}'..='\u{3002}'
        | '\u{3008}'..='\u{3011}'
        | '\u{2018}'..='\u{2019}'
        | '\u{201C}'..='\u{201D}'
        | '\u{2026}'
        | '\u{00B7}'
        | '\u{FFE5}' => Raw::Sep,
        _ => Raw::Slow,
    }
}

/// [`segments`] of the normalised form of raw `text`, computed without
/// normalising it, for text made only of the characters complaints are
/// nearly always made of (see `raw_class`); returns false, with the
/// output unusable, when a character needs full normalisation (then call
/// [`segments`] on the normalised text).
pub fn segments_raw(text: &str, chars: &mut Vec<char>, segs: &mut Vec<(u32, u32)>) -> bool {
    chars.clear();
    segs.clear();
    let mut start = 0usize;
    let mut it = text.chars().peekable();
    let close = |chars: &Vec<char>, segs: &mut Vec<(u32, u32)>, start: &mut usize| {
        if chars.len() > *start {
            segs.push((*start as u32, chars.len() as u32));
        }
        *start = chars.len();
    };
    while let Some(c) = it.next() {
        match raw_class(c) {
            Raw::Keep(k) => chars.push(k),
            Raw::Sep => close(chars, segs, &mut start),
            Raw::Slow => return false,
            Raw::Token(t) => {
                let from = chars.len();
                chars.push(t);
                let (mut digits, mut stars) = (t.is_ascii_digit() as u32, (t == '*') as u32);
                while let Some(&d) = it.peek() {
                    match raw_class(d) {
                        Raw::Token(u) => {
                            digits += u.is_ascii_digit() as u32;
                            stars += (u == '*') as u32;
                            chars.push(u);
                            it.next();
                        }
                        Raw::Slow => return false,
                        _ => break,
                    }
                }
                if stars > 0 || digits >= 3 {
                    chars.truncate(from);
                    close(chars, segs, &mut start);
                } else if digits as usize == chars.len() - from {
                    chars.truncate(from);
                    chars.push(NUMBER);
                }
            }
        }
    }
    close(chars, segs, &mut start);
    true
}

/// The last two characters of the current segment, for [`grams_raw`].
#[derive(Default)]
struct Roll {
    a: u64,
    b: u64,
    n: u8,
}

impl Roll {
    /// The next character of the segment: an n-gram ends with it once
    /// the segment holds [`GRAM`] characters.
    #[inline]
    fn push(&mut self, c: char, f: &mut impl FnMut(u64)) {
        let c = c as u64;
        if self.n >= 2 {
            f(self.a | self.b << 21 | c << 42);
        } else {
            self.n += 1;
        }
        self.a = self.b;
        self.b = c;
    }

    /// The segment ends.
    #[inline]
    fn cut(&mut self) {
        self.n = 0;
    }
}

/// [`grams`] of [`segments_raw`], in one pass over raw `text` with no
/// characters kept: calls `f` with the id of every n-gram of the segments
/// of the normalised text, in text order. Returns false when a character
/// needs full normalisation (then `f` has seen some n-grams that are to be
/// forgotten: call [`segments`] on the normalised text). `tok` is a buffer
/// for a token's characters, cleared first.
pub fn grams_raw(text: &str, tok: &mut Vec<u8>, mut f: impl FnMut(u64)) -> bool {
    let mut r = Roll::default();
    let mut it = text.chars();
    let mut next = it.next();
    while let Some(c) = next {
        next = it.next();
        match raw_class(c) {
            Raw::Keep(k) => r.push(k, &mut f),
            Raw::Sep => r.cut(),
            Raw::Slow => return false,
            Raw::Token(t) => {
                tok.clear();
                tok.push(t as u8);
                loop {
                    match next.map(raw_class) {
                        Some(Raw::Token(u)) => {
                            tok.push(u as u8);
                            next = it.next();
                        }
                        Some(Raw::Slow) => return false,
                        _ => break,
                    }
                }
                let digits = tok.iter().filter(|b| b.is_ascii_digit()).count();
                if digits >= 3 || tok.contains(&b'*') {
                    r.cut();
                } else if digits == tok.len() {
                    r.push(NUMBER, &mut f);
                } else {
                    for &b in tok.iter() {
                        r.push(char::from(b), &mut f);
                    }
                }
            }
        }
    }
    true
}

/// [`segments`] of raw `text` as a detector reads it: its first
/// [`PHRASE_BYTES`], through [`segments_raw`] where that can, else
/// normalised with `normalizer` first.
pub fn segments_of(
    text: &str,
    normalizer: &mut crate::normalize::Normalizer,
    chars: &mut Vec<char>,
    segs: &mut Vec<(u32, u32)>,
) {
    let text = &text[..crate::window::key::floor_char_boundary(text, PHRASE_BYTES)];
    if !segments_raw(text, chars, segs) {
        segments(normalizer.normalize(text), chars, segs);
    }
}

/// Calls `f` with the id of every n-gram of the segments (in text order,
/// repeats included).
#[inline]
pub fn grams(chars: &[char], segs: &[(u32, u32)], mut f: impl FnMut(u64)) {
    for &(s, e) in segs {
        let seg = &chars[s as usize..e as usize];
        for w in seg.windows(GRAM) {
            f(gram_id(w[0], w[1], w[2]));
        }
    }
}

/// The distinct n-gram ids of a normalised text, sorted (tests, `suggest`).
pub fn gram_set(normalized: &str) -> Vec<u64> {
    let (mut chars, mut segs) = (Vec::new(), Vec::new());
    segments(normalized, &mut chars, &mut segs);
    let mut v = Vec::new();
    grams(&chars, &segs, |g| v.push(g));
    v.sort_unstable();
    v.dedup();
    v
}

/// The segments of a normalised text as strings (tests, `suggest`).
pub fn segment_strings(normalized: &str) -> Vec<String> {
    let (mut chars, mut segs) = (Vec::new(), Vec::new());
    segments(normalized, &mut chars, &mut segs);
    segs.iter()
        .map(|&(s, e)| chars[s as usize..e as usize].iter().collect())
        .collect()
}

/// A text's kept characters and its segments (see [`segments`]).
type Segmented = (Vec<char>, Vec<(u32, u32)>);

/// One phrase of a topic and how many of its complaints contain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    pub text: String,
    pub docs: u32,
}

/// Merges each run of overlapping n-grams that `keep` accepts into one
/// phrase: for a segment's characters `seg` and a test on the n-gram
/// starting at each position, the character ranges of the maximal runs of
/// accepted positions, each run `i..=j` covering characters `i..j + GRAM`.
pub fn merge_runs(seg: &[char], mut keep: impl FnMut(usize, u64) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    for (i, w) in seg.windows(GRAM).enumerate() {
        if keep(i, gram_id(w[0], w[1], w[2])) {
            run = Some(run.map_or((i, i), |(a, _)| (a, i)));
        } else if let Some((a, b)) = run.take() {
            out.push((a, b + GRAM));
        }
    }
    if let Some((a, b)) = run {
        out.push((a, b + GRAM));
    }
    out
}

/// The phrases that at least `min_docs` of `docs` (normalised texts of one
/// topic's complaints) share, most specific first (see the module docs):
/// runs of shared n-grams, trimmed to the n-grams `core` accepts at both
/// ends (`core` gets an n-gram id and how many of the texts contain it); each kept when `min_docs` texts contain it, and a phrase inside a
/// longer kept one only when more texts contain it. Ordered by length
/// (characters, longest first), then by texts containing it (most first),
/// then by the phrase; at most `max` of them.
pub fn shared_phrases<S: AsRef<str>>(
    docs: &[S],
    min_docs: usize,
    core: impl Fn(u64, u32) -> bool,
    max: usize,
) -> Vec<Phrase> {
    let min_docs = min_docs.max(1);
    let (mut chars, mut segs) = (Vec::new(), Vec::new());
    // Each text cut once: its segments joined by a separator no segment
    // holds (for the substring counts), and its distinct n-grams.
    let mut joined: Vec<String> = Vec::with_capacity(docs.len());
    let mut cut: Vec<Segmented> = Vec::with_capacity(docs.len());
    let mut df: HashMap<u64, u32> = HashMap::new();
    for d in docs {
        segments(d.as_ref(), &mut chars, &mut segs);
        let mut ids: Vec<u64> = Vec::new();
        grams(&chars, &segs, |g| ids.push(g));
        ids.sort_unstable();
        ids.dedup();
        for g in ids {
            *df.entry(g).or_default() += 1;
        }
        let mut j = String::new();
        for &(s, e) in &segs {
            j.extend(&chars[s as usize..e as usize]);
            j.push('|');
        }
        joined.push(j);
        cut.push((chars.clone(), segs.clone()));
    }
    let shared = |g: u64| df.get(&g).is_some_and(|&n| n as usize >= min_docs);
    let core = |g: u64| core(g, df.get(&g).copied().unwrap_or(0));
    let mut candidates: HashSet<String> = HashSet::new();
    for (chars, segs) in &cut {
        for &(s, e) in segs {
            let seg = &chars[s as usize..e as usize];
            for (a, b) in merge_runs(seg, |_, g| shared(g)) {
                // Trim to the core n-grams at both ends.
                let first = (a..=b - GRAM).find(|&i| core(gram_id(seg[i], seg[i + 1], seg[i + 2])));
                let last = (a..=b - GRAM)
                    .rev()
                    .find(|&i| core(gram_id(seg[i], seg[i + 1], seg[i + 2])));
                if let (Some(f), Some(l)) = (first, last) {
                    candidates.insert(seg[f..l + GRAM].iter().collect());
                }
            }
        }
    }
    let mut found: Vec<Phrase> = candidates
        .into_iter()
        .map(|text| {
            let docs = joined.iter().filter(|j| j.contains(text.as_str())).count() as u32;
            Phrase { text, docs }
        })
        .filter(|p| p.docs as usize >= min_docs)
        .collect();
    found.sort_by(|a, b| {
        b.text
            .chars()
            .count()
            .cmp(&a.text.chars().count())
            .then(b.docs.cmp(&a.docs))
            .then_with(|| a.text.cmp(&b.text))
    });
    let mut kept: Vec<Phrase> = Vec::new();
    for p in found {
        if kept
            .iter()
            .any(|k| k.text.contains(p.text.as_str()) && k.docs >= p.docs)
        {
            continue;
        }
        kept.push(p);
        if kept.len() >= max {
            break;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::mask;
    use crate::normalize::normalize;

    fn segs(text: &str) -> Vec<String> {
        segment_strings(&normalize(text))
    }

    #[test]
    fn numbers_and_punctuation_split_the_text() {
        assert_eq!(
            segs("客户来电反映，手机号13812345678无法登录和家亲ＡＰＰ，订单号WO2026031400001692。"),
            vec!["客户来电反映", "手机号", "无法登录和家亲app", "订单号"]
        );
        // Short tokens stay inside their segment; a hotline and a year go.
        assert_eq!(
            segs("5G信号差，拨打10086无果，2026年3月"),
            vec!["5g信号差", "拨打", "无果", "年#月"]
        );
        // Small numbers stand for any number.
        assert_eq!(segs("从10点30分起"), vec!["从#点#分起"]);
        assert_eq!(segs("从9点起，5元"), vec!["从#点起", "#元"]);
        assert_eq!(segs("5G消息mp3"), vec!["5g消息mp3"]);
        // Phones with separators, ID cards.
        assert_eq!(
            segs("电话188-6943-9335，证件330106199001011234查询"),
            vec!["电话", "证件", "查询"]
        );
        assert_eq!(segs(""), Vec::<String>::new());
        assert_eq!(segs("，。！"), Vec::<String>::new());
    }

    #[test]
    fn clock_words_are_found_in_either_half_of_a_gram() {
        let id = |t: &str| {
            let c: Vec<char> = t.chars().collect();
            gram_id(c[0], c[1], c[2])
        };
        assert!(is_clock_gram(id("称今晚")));
        assert!(is_clock_gram(id("今晚营")));
        assert!(is_clock_gram(id("天下午")));
        assert!(!is_clock_gram(id("冰激凌")));
        assert!(!is_clock_gram(id("今新套")));
        // Around a clock word, in text order: 客称今 称今晚 今晚营 晚营业 营业厅.
        let text: Vec<u64> = ["客称今", "称今晚", "今晚营", "晚营业", "营业厅"]
            .iter()
            .map(|t| id(t))
            .collect();
        let touched: Vec<bool> = (0..text.len()).map(|i| touches_clock(&text, i)).collect();
        assert_eq!(touched, [true, true, true, true, false]);
    }

    #[test]
    fn raw_segments_equal_the_segments_of_the_normalised_text() {
        let (mut c1, mut s1, mut c2, mut s2) = (vec![], vec![], vec![], vec![]);
        for text in [
            "客户来电反映，手机号13812345678无法登录和家亲ＡＰＰ，订单号WO2026031400001692。",
            "５Ｇ信号差，拨打１００８６无果；“新套餐”【扣费】《异常》…·￥5",
            "从10点30分起 Ａ*Ｂ gprs　网络",
            "①号码",
            "café",
            "",
        ] {
            segments(&normalize(text), &mut c1, &mut s1);
            let mut g1 = Vec::new();
            grams(&c1, &s1, |g| g1.push(g));
            let mut g2 = Vec::new();
            let raw = grams_raw(text, &mut Vec::new(), |g| g2.push(g));
            assert_eq!(raw, segments_raw(text, &mut c2, &mut s2), "{text}");
            if raw {
                assert_eq!((&c1, &s1), (&c2, &s2), "{text}");
                assert_eq!(g1, g2, "{text}");
            } else {
                assert!(text.contains('①') || text.contains('é'), "{text}");
            }
        }
        // Every character the raw path handles folds as NFKC does.
        for cp in (0u32..0x3_0000).filter_map(char::from_u32) {
            let n = normalize(&cp.to_string());
            match raw_class(cp) {
                Raw::Keep(k) => assert_eq!(n, k.to_string(), "{cp:?}"),
                Raw::Token(t) => assert_eq!(n, t.to_string(), "{cp:?}"),
                Raw::Sep => assert!(
                    !n.chars().any(|x| x.is_alphanumeric() || x == '*'),
                    "{cp:?} -> {n:?}"
                ),
                Raw::Slow => {}
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn raw_segments_agree_on_mixed_text(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "新套餐", "扣费", "13812345678", "138****5678", "ＡＰＰ", "app", "5g", "１２３",
                "，", "。", " ", "　", "wo2026", "*", "ab", "①", "é", "“", "…",
            ]), 0..10)
        ) {
            let text: String = parts.concat();
            let (mut c1, mut s1, mut c2, mut s2) = (vec![], vec![], vec![], vec![]);
            segments(&normalize(&text), &mut c1, &mut s1);
            let mut g1 = Vec::new();
            grams(&c1, &s1, |g| g1.push(g));
            let mut g2 = Vec::new();
            let raw = grams_raw(&text, &mut Vec::new(), |g| g2.push(g));
            proptest::prop_assert_eq!(raw, segments_raw(&text, &mut c2, &mut s2));
            if raw {
                proptest::prop_assert_eq!((c1, s1), (c2, s2));
                proptest::prop_assert_eq!(g1, g2);
            }
        }
    }

    #[test]
    fn masked_and_clear_numbers_give_the_same_grams() {
        for text in [
            "回访号码：15942834747，新套餐扣费异常",
            "联系电话188 6943 9335新套餐扣费异常",
            "机主身份证号码330310199001019260要求退订",
            "号码１５７０１０５６５０５无法登录",
        ] {
            let masked = mask(text);
            assert_ne!(masked, text, "{text} holds a number");
            assert_eq!(
                gram_set(&normalize(text)),
                gram_set(&normalize(&masked)),
                "{text} / {masked}"
            );
            assert_eq!(segs(text), segs(&masked));
        }
    }

    #[test]
    fn no_gram_crosses_a_removed_span() {
        // Both sides of the number are too short for a gram of their own.
        assert!(gram_set(&normalize("号码13812345678无法，再试")).is_empty());
        let g = gram_set(&normalize("回访号码13812345678无法登录"));
        let mut texts: Vec<String> = g.iter().map(|&i| gram_text(i)).collect();
        texts.sort();
        assert_eq!(texts, vec!["回访号", "无法登", "法登录", "访号码"]);
    }

    #[test]
    fn gram_ids_are_exact_and_round_trip() {
        let a = gram_id('新', '套', '餐');
        assert_eq!(gram_text(a), "新套餐");
        assert_ne!(a, gram_id('新', '套', '装'));
        assert_ne!(mix(a), mix(gram_id('套', '新', '餐')));
        // Astral characters fit in 21 bits too.
        assert_eq!(gram_text(gram_id('𠀀', 'a', '😡')), "𠀀a😡");
    }

    #[test]
    fn overlapping_grams_merge_into_runs() {
        let seg: Vec<char> = "客户反映新套餐扣费异常请处理".chars().collect();
        let hot = ["新套餐", "套餐扣", "餐扣费", "扣费异", "费异常", "请处理"];
        let runs = merge_runs(&seg, |_, g| hot.contains(&gram_text(g).as_str()));
        let texts: Vec<String> = runs
            .iter()
            .map(|&(a, b)| seg[a..b].iter().collect())
            .collect();
        assert_eq!(texts, vec!["新套餐扣费异常", "请处理"]);
        assert!(merge_runs(&seg, |_, _| false).is_empty());
        let all = merge_runs(&seg, |_, _| true);
        assert_eq!(all, vec![(0, seg.len())]);
        // Too short for one gram.
        assert!(merge_runs(&['a', 'b'], |_, _| true).is_empty());
    }

    #[test]
    fn shared_phrases_are_the_longest_common_runs_most_specific_first() {
        let docs: Vec<String> = [
            "客户反映新套餐扣费异常，要求退费，回访号码13812345678",
            "用户来电称新套餐扣费异常，很不满",
            "客户反映开通新套餐扣费异常。",
            "机主投诉新套餐乱扣费，要求处理",
            "客户反映新套餐乱扣费",
            "来电：新套餐扣费异常，联系138****5678",
        ]
        .iter()
        .map(|t| normalize(t))
        .collect();
        let generic = ["客户反", "户反映"];
        let core = |g: u64, _: u32| !generic.contains(&gram_text(g).as_str());
        let p = shared_phrases(&docs, 3, core, MAX_TERMS);
        let texts: Vec<(&str, u32)> = p.iter().map(|p| (p.text.as_str(), p.docs)).collect();
        // "新套餐扣费异常" in 4 texts; "新套餐" in all 6 (kept: more texts);
        // "客户反映" is shared by three but not core.
        assert_eq!(texts, vec![("新套餐扣费异常", 4), ("新套餐", 6)]);
        // Everything core: the generic lead joins the phrase where shared.
        let p = shared_phrases(&docs, 3, |_, _| true, MAX_TERMS);
        assert_eq!(p[0].text, "新套餐扣费异常");
        assert!(p.iter().any(|x| x.text == "客户反映"), "{p:?}");
        // Nothing shared by enough texts: no phrase.
        assert!(shared_phrases(&docs, 7, |_, _| true, MAX_TERMS).is_empty());
        // At most `max`.
        assert_eq!(shared_phrases(&docs, 2, |_, _| true, 1).len(), 1);
    }

    #[test]
    fn shared_phrases_do_not_depend_on_the_order_of_the_texts() {
        let mut docs: Vec<String> = ["甲乙丙丁戊", "甲乙丙丁己", "乙丙丁戊庚", "甲乙丙"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        let a = shared_phrases(&docs, 2, |_, _| true, MAX_TERMS);
        docs.reverse();
        assert_eq!(a, shared_phrases(&docs, 2, |_, _| true, MAX_TERMS));
        let texts: Vec<&str> = a.iter().map(|p| p.text.as_str()).collect();
        // "甲乙丙丁戊" is in one text only; "甲乙丙" in three, more than
        // the longer phrases holding it. Ties by code point.
        assert_eq!(texts, vec!["乙丙丁戊", "甲乙丙丁", "甲乙丙"]);
    }
}
