//! Keyword templates → one Aho-Corasick automaton → which templates, and so
//! which businesses, a complaint text matches (CONTRACT 2).
//!
//! Every distinct keyword of every template (`all_of` and `none_of` alike)
//! is one pattern of a single Aho-Corasick automaton, searched once per text
//! with overlapping matches, so the cost per record does not grow with the
//! number of templates. Evaluation then works from *anchors*: each template
//! has one `all_of` group, the one whose keywords the fewest templates
//! share, and each pattern lists the templates it anchors. A text's found
//! patterns name the candidate templates; a candidate matches when each of
//! its other groups has a keyword among the found patterns and none of its
//! vetoes is. Shared keywords — a fault word like `无法` sits in dozens of
//! templates of a large library — so never cost a visit to every template
//! that uses them, only a lookup for the few candidates. All per-record state
//! is stamped with a generation number instead of being cleared, so a
//! record costs the scan plus work proportional to its hits, with no
//! allocation.
//!
//! Overlapping search is required for correctness — `彩铃` inside `彩铃复制`
//! must not hide `复制`, nor must one keyword hide another that ends at the
//! same place. We need only *which* patterns occur, not where, so the scan
//! loop is one table lookup per step and a check for the rare match state.
//!
//! The automaton works on *characters* ([`char_dfa`]): it steps once per
//! character instead of once per UTF-8 byte, which halves the scan of
//! Chinese text compared with the `aho-corasick` crate's byte DFA (the kind
//! this module used first, explicitly chosen over the crate's default NFA,
//! which is several times slower again). Ordinary libraries get a full DFA.
//! Very large ones, whose full table would not fit in a few MB, get the
//! hybrid: full rows for the shallow states, where a scan spends nearly all
//! its steps, children and failure links deeper. The crate's contiguous NFA
//! remains as the reference the tests compare with, and for the
//! pathological library the character automaton refuses (more than 65,534
//! distinct keyword characters).

// Every `unsafe` block says why it is sound (CI runs clippy with
// `-D warnings`).
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod char_dfa;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::nfa::contiguous::NFA as ContiguousNfa;
use aho_corasick::{Anchored, MatchKind};

use crate::normalize::Normalizer;
use crate::rules::Rules;
use char_dfa::{CharAutomaton, CharDfa, StateId, WideCharAutomaton};

/// The automaton: a character DFA for ordinary libraries, the hybrid
/// character automaton for very large ones (see
/// [`char_dfa::MAX_TABLE_BYTES`]), the crate's contiguous NFA for tests and
/// libraries neither can hold.
// One per matcher, never moved in a hot loop: the size difference of the
// variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Automaton_ {
    Chars(CharDfa),
    WideChars(WideCharAutomaton),
    /// The NFA and its unanchored start state.
    Nfa(ContiguousNfa, StateID),
}

/// Runs `a` over `text` from `start` and appends each pattern that occurs
/// (once: `seen` holds the generation of patterns already found).
#[inline(always)]
fn scan<A: Automaton>(
    a: &A,
    start: StateID,
    text: &[u8],
    seen: &mut [u32],
    generation: u32,
    out: &mut Vec<u32>,
) {
    let mut sid = start;
    for &byte in text {
        sid = a.next_state(Anchored::No, sid, byte);
        if !(a.is_special(sid) && a.is_match(sid)) {
            continue;
        }
        for k in 0..a.match_len(sid) {
            let p = a.match_pattern(sid, k).as_usize();
            if seen[p] != generation {
                seen[p] = generation;
                out.push(p as u32);
            }
        }
    }
}

/// The 64-bit filter of a list of patterns: bit `p % 64` for each.
#[inline]
fn bits_of(patterns: &[u32]) -> u64 {
    patterns.iter().fold(0, |b, &p| b | 1 << (p % 64))
}

/// Which automaton [`Matcher::build`] makes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// The full DFA if it fits, else the hybrid.
    Auto,
    Hybrid(usize),
    /// The `aho-corasick` crate's NFA, for the tests to compare with.
    #[cfg_attr(not(test), allow(dead_code))]
    Nfa,
}

/// The compiled matcher for one rule library.
#[derive(Debug)]
pub struct Matcher {
    automaton: Automaton_,
    /// `anchored[anchor_start[p]..anchor_start[p + 1]]` are the templates
    /// whose anchor group holds pattern `p`.
    anchor_start: Vec<u32>,
    anchored: Vec<u32>,
    /// Template `t`'s other `all_of` groups are
    /// `group_end[check_start[t]..check_start[t + 1]]`, each the end of its
    /// patterns in `check` (a group starts where the one before it ends, the
    /// first at `veto_end[t]`); its vetoes are `check[check_from[t]..veto_end[t]]`.
    check_from: Vec<u32>,
    veto_end: Vec<u32>,
    check_start: Vec<u32>,
    group_end: Vec<u32>,
    /// Per template its vetoes, and per group (parallel to `group_end`)
    /// its keywords, as a 64-bit filter: bit `p % 64` for each pattern
    /// `p`. A text's found patterns make the same filter; a list whose
    /// filter shares no bit with it holds none of them, which settles most
    /// checks without reading the list.
    veto_bits: Vec<u64>,
    group_bits: Vec<u64>,
    check: Vec<u32>,
    /// Per template: its business.
    business: Vec<u16>,
    patterns: usize,
}

/// Per-thread scratch state for [`Matcher::find`]; reuse it across records.
#[derive(Debug, Default, Clone)]
pub struct Matches {
    generation: u32,
    pattern_seen: Vec<u32>,
    /// Per template, the generation it last became a candidate in.
    candidate: Vec<u32>,
    /// The current text's candidate templates.
    touched: Vec<u32>,
    /// Distinct patterns found in the current text.
    patterns: Vec<u32>,
    /// Matched templates, ascending (so grouped by business in rules order,
    /// then by template id).
    templates: Vec<u32>,
    /// (business, range into `templates`) for each matched business,
    /// ascending by business.
    businesses: Vec<(u16, u32, u32)>,
}

impl Matches {
    /// The matched businesses in rules-file order, each with the indices
    /// (into [`Rules::templates`]) of its matched templates.
    pub fn businesses(&self) -> impl ExactSizeIterator<Item = (usize, &[u32])> + '_ {
        self.businesses
            .iter()
            .map(|&(b, s, e)| (b as usize, &self.templates[s as usize..e as usize]))
    }

    /// Every matched template, ascending.
    pub fn templates(&self) -> &[u32] {
        &self.templates
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}

/// Building the automaton failed (only possible with absurdly many or long
/// keywords).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot build the keyword automaton: {0}")]
    Build(#[from] aho_corasick::BuildError),
    #[error("the keyword automaton has no start state: {0}")]
    Start(#[from] aho_corasick::MatchError),
}

impl Matcher {
    /// Compiles the templates of `rules`.
    pub fn new(rules: &Rules) -> Result<Self, BuildError> {
        Self::build(rules, Kind::Auto)
    }

    /// Like [`Matcher::new`], always with the crate's NFA (tests compare
    /// the kinds with it).
    #[cfg(test)]
    pub(crate) fn with_nfa(rules: &Rules) -> Result<Self, BuildError> {
        Self::build(rules, Kind::Nfa)
    }

    /// Like [`Matcher::new`], always with the hybrid character automaton,
    /// full rows for at most `max_table_bytes` (tests and benchmarks).
    pub fn with_hybrid(rules: &Rules, max_table_bytes: usize) -> Result<Self, BuildError> {
        Self::build(rules, Kind::Hybrid(max_table_bytes))
    }

    /// What the automaton is, for people: its kind and size, e.g.
    /// `character DFA, 1332 states × 488 symbols`.
    pub fn describe(&self) -> String {
        match &self.automaton {
            Automaton_::Chars(a) => format!(
                "character DFA, {} states × {} symbols",
                a.states(),
                a.symbols()
            ),
            Automaton_::WideChars(a) => format!(
                "hybrid character automaton, {} states ({} with full rows) × {} symbols",
                a.states(),
                a.dense_states(),
                a.symbols()
            ),
            Automaton_::Nfa(..) => "contiguous NFA".to_owned(),
        }
    }

    /// Which automaton this is: `dfa`, `hybrid` or `nfa`.
    pub fn kind(&self) -> &'static str {
        match self.automaton {
            Automaton_::Chars(_) => "dfa",
            Automaton_::WideChars(_) => "hybrid",
            Automaton_::Nfa(..) => "nfa",
        }
    }

    fn build<'r>(rules: &'r Rules, kind: Kind) -> Result<Self, BuildError> {
        let mut ids: hashbrown::HashMap<&str, u32> = hashbrown::HashMap::new();
        let mut keywords: Vec<&str> = Vec::new();
        let mut pattern = |kw: &'r str| -> u32 {
            *ids.entry(kw).or_insert_with(|| {
                keywords.push(kw);
                (keywords.len() - 1) as u32
            })
        };
        // Per template: its groups and vetoes as pattern ids, each list
        // sorted and without repeats.
        let ids_of = |kws: &'r [String], pattern: &mut dyn FnMut(&'r str) -> u32| {
            let mut v: Vec<u32> = kws.iter().map(|k| pattern(k.as_str())).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let compiled: Vec<(Vec<Vec<u32>>, Vec<u32>)> = rules
            .templates
            .iter()
            .map(|tpl| {
                let groups = tpl.all_of.iter().map(|g| ids_of(g, &mut pattern)).collect();
                (groups, ids_of(&tpl.none_of, &mut pattern))
            })
            .collect();
        // How many templates use each pattern in a group: the anchor is the
        // group with the smallest total, a guess at the group least often
        // hit, so that the fewest templates become candidates.
        let mut shared = vec![0u32; keywords.len()];
        for (groups, _) in &compiled {
            for &p in groups.iter().flatten() {
                shared[p as usize] += 1;
            }
        }
        let mut anchors_of: Vec<Vec<u32>> = vec![Vec::new(); keywords.len()];
        let (mut check_from, mut veto_end, mut check_start) = (vec![], vec![], vec![]);
        let (mut group_end, mut check) = (vec![], vec![]);
        let (mut veto_bits, mut group_bits) = (vec![], vec![]);
        for (t, (groups, vetoes)) in compiled.iter().enumerate() {
            let anchor = (0..groups.len()).min_by_key(|&g| {
                groups[g]
                    .iter()
                    .map(|&p| shared[p as usize] as u64)
                    .sum::<u64>()
            });
            // A template without `all_of` groups is never a candidate, so
            // never matches (validation refuses such templates anyway).
            if let Some(a) = anchor {
                for &p in &groups[a] {
                    anchors_of[p as usize].push(t as u32);
                }
            }
            check_from.push(check.len() as u32);
            check.extend_from_slice(vetoes);
            veto_end.push(check.len() as u32);
            veto_bits.push(bits_of(vetoes));
            check_start.push(group_end.len() as u32);
            for (g, kws) in groups.iter().enumerate() {
                if Some(g) != anchor {
                    check.extend_from_slice(kws);
                    group_end.push(check.len() as u32);
                    group_bits.push(bits_of(kws));
                }
            }
        }
        check_start.push(group_end.len() as u32);
        let mut anchor_start = Vec::with_capacity(keywords.len() + 1);
        let mut anchored = Vec::new();
        for list in &anchors_of {
            anchor_start.push(anchored.len() as u32);
            anchored.extend_from_slice(list);
        }
        anchor_start.push(anchored.len() as u32);
        let chars = match kind {
            Kind::Auto => CharDfa::build(&keywords)
                .map(Automaton_::Chars)
                .or_else(|| {
                    WideCharAutomaton::build(&keywords, char_dfa::HYBRID_TABLE_BYTES)
                        .map(Automaton_::WideChars)
                }),
            Kind::Hybrid(bytes) => {
                WideCharAutomaton::build(&keywords, bytes).map(Automaton_::WideChars)
            }
            Kind::Nfa => None,
        };
        let automaton = if let Some(c) = chars {
            c
        } else {
            let nfa = ContiguousNfa::builder()
                .match_kind(MatchKind::Standard)
                .prefilter(false)
                .dense_depth(3)
                .build(&keywords)?;
            let start = nfa.start_state(Anchored::No)?;
            Automaton_::Nfa(nfa, start)
        };
        let business = rules.templates.iter().map(|t| t.business as u16).collect();
        Ok(Matcher {
            automaton,
            anchor_start,
            anchored,
            check_from,
            veto_end,
            check_start,
            group_end,
            veto_bits,
            group_bits,
            check,
            business,
            patterns: keywords.len(),
        })
    }

    /// Number of distinct keywords in the automaton.
    pub fn pattern_count(&self) -> usize {
        self.patterns
    }

    /// Heap bytes used by the automaton.
    pub fn memory_usage(&self) -> usize {
        match &self.automaton {
            Automaton_::Chars(a) => a.memory_usage(),
            Automaton_::WideChars(a) => a.memory_usage(),
            Automaton_::Nfa(a, _) => a.memory_usage(),
        }
    }

    /// Fresh scratch state sized for this matcher.
    pub fn scratch(&self) -> Matches {
        let t = self.business.len();
        Matches {
            generation: 0,
            pattern_seen: vec![0; self.patterns],
            candidate: vec![0; t],
            touched: Vec::with_capacity(16),
            patterns: Vec::with_capacity(16),
            templates: Vec::with_capacity(8),
            businesses: Vec::with_capacity(4),
        }
    }

    /// Finds the templates that the raw complaint `text` matches after
    /// normalisation; the result is left in `m`. Text that the normaliser's
    /// fast path covers (nearly all) is matched in place, without being
    /// normalised into a copy first; other text goes through `normalizer`.
    pub fn find_text(&self, text: &str, normalizer: &mut Normalizer, m: &mut Matches) {
        let done = match &self.automaton {
            Automaton_::Chars(a) => self.find_raw(a, text, m),
            Automaton_::WideChars(a) => self.find_raw(a, text, m),
            Automaton_::Nfa(..) => false,
        };
        if !done {
            self.find(normalizer.normalize(text), m);
        }
    }

    /// [`Matcher::find_text`] in place; false when `text` needs full
    /// normalisation.
    #[inline(always)]
    fn find_raw<S: StateId>(&self, a: &CharAutomaton<S>, text: &str, m: &mut Matches) -> bool {
        let generation = self.begin(m);
        if a.scan_raw(text, &mut m.pattern_seen, generation, &mut m.patterns) {
            self.evaluate(m);
            return true;
        }
        false
    }

    /// Finds the templates that `normalized` (already through
    /// [`crate::normalize`]) matches; the result is left in `m`.
    pub fn find(&self, normalized: &str, m: &mut Matches) {
        let generation = self.begin(m);
        match &self.automaton {
            Automaton_::Chars(a) => {
                a.scan(normalized, &mut m.pattern_seen, generation, &mut m.patterns)
            }
            Automaton_::WideChars(a) => {
                a.scan(normalized, &mut m.pattern_seen, generation, &mut m.patterns)
            }
            Automaton_::Nfa(a, start) => scan(
                a,
                *start,
                normalized.as_bytes(),
                &mut m.pattern_seen,
                generation,
                &mut m.patterns,
            ),
        }
        self.evaluate(m);
    }

    /// Resets `m` for a new text; returns its generation.
    #[inline]
    fn begin(&self, m: &mut Matches) -> u32 {
        if m.pattern_seen.len() != self.patterns || m.candidate.len() != self.business.len() {
            *m = self.scratch();
        }
        m.generation = m.generation.wrapping_add(1);
        if m.generation == 0 {
            m.pattern_seen.iter_mut().for_each(|g| *g = 0);
            m.candidate.iter_mut().for_each(|g| *g = 0);
            m.generation = 1;
        }
        m.touched.clear();
        m.templates.clear();
        m.businesses.clear();
        m.patterns.clear();
        m.generation
    }

    /// Turns the patterns found into matched templates and businesses.
    #[inline]
    fn evaluate(&self, m: &mut Matches) {
        let generation = m.generation;
        for &p in &m.patterns {
            let p = p as usize;
            let (s, e) = (
                self.anchor_start[p] as usize,
                self.anchor_start[p + 1] as usize,
            );
            for &t in &self.anchored[s..e] {
                let c = &mut m.candidate[t as usize];
                if *c != generation {
                    *c = generation;
                    m.touched.push(t);
                }
            }
        }
        let found = |p: &u32| m.pattern_seen[*p as usize] == generation;
        let seen = bits_of(&m.patterns);
        for &t in &m.touched {
            let t = t as usize;
            let (from, veto_end) = (self.check_from[t] as usize, self.veto_end[t] as usize);
            if self.veto_bits[t] & seen != 0 && self.check[from..veto_end].iter().any(found) {
                continue;
            }
            let (g0, g1) = (
                self.check_start[t] as usize,
                self.check_start[t + 1] as usize,
            );
            let mut start = veto_end;
            let mut all = true;
            for g in g0..g1 {
                let end = self.group_end[g] as usize;
                if self.group_bits[g] & seen == 0 || !self.check[start..end].iter().any(found) {
                    all = false;
                    break;
                }
                start = end;
            }
            if all {
                m.templates.push(t as u32);
            }
        }
        if m.templates.is_empty() {
            return;
        }
        m.templates.sort_unstable();
        let mut i = 0;
        while i < m.templates.len() {
            let b = self.business[m.templates[i] as usize];
            let start = i;
            while i < m.templates.len() && self.business[m.templates[i] as usize] == b {
                i += 1;
            }
            m.businesses.push((b, start as u32, i as u32));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;
    use crate::rules::load_str;

    const RULES: &str = r#"
[[department]]
id = "d"
[[business]]
id = "crbt"
department = "d"
threshold = 2
[[business]]
id = "data"
department = "d"
threshold = 2
[[template]]
id = "crbt.copy"
business = "crbt"
all_of = [["彩铃", "炫铃"], ["复制", "同步"]]
none_of = ["咨询如何"]
[[template]]
id = "crbt.any"
business = "crbt"
all_of = [["彩铃复制"]]
[[template]]
id = "data.gprs"
business = "data"
all_of = [["GPRS", "数据业务"], ["失败", "异常"]]
none_of = ["已恢复"]
[[template]]
id = "data.overlap"
business = "data"
all_of = [["abc"], ["bcd"], ["c"]]
"#;

    fn found(text: &str) -> Vec<String> {
        let rules = load_str(RULES, "t.toml").unwrap();
        let mut results = Vec::new();
        // Every automaton kind must agree: the full DFA, the hybrid with
        // only the root's row full and with a few rows full, the NFA.
        for m in [
            Matcher::new(&rules),
            Matcher::with_hybrid(&rules, 0),
            Matcher::with_hybrid(&rules, 3 * 4 * 40),
            Matcher::with_nfa(&rules),
        ] {
            let m = m.unwrap();
            let mut s = m.scratch();
            m.find(&normalize(text), &mut s);
            let ids = |s: &Matches| {
                s.templates()
                    .iter()
                    .map(|&t| rules.templates[t as usize].id.clone())
                    .collect::<Vec<_>>()
            };
            results.push(ids(&s));
            // Matching the raw text (normalisation folded in) agrees.
            m.find_text(text, &mut Normalizer::new(), &mut s);
            results.push(ids(&s));
        }
        assert!(
            results.windows(2).all(|w| w[0] == w[1]),
            "DFA, hybrid, NFA, raw and normalised disagree on {text}: {results:?}"
        );
        results.pop().unwrap()
    }

    proptest::proptest! {
        #[test]
        fn raw_matching_equals_matching_the_normalised_text(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "彩铃", "炫铃", "复制", "同步", "咨询如何", "GPRS", "ＧＰＲＳ", "gprs", "数据业务",
                "失败", "异常", "已恢复", "abc", "ＡＢＣ", "bcd", "c", "Ｃ", "①", "é", "e\u{301}",
                "　", " ", "，", "𠀀", "ﾃ", "x", "彩", "铃", "😡", "⽤", "用", "🈶",
            ]), 0..12)
        ) {
            let text: String = parts.concat();
            let rules = load_str(RULES, "t.toml").unwrap();
            let m = Matcher::new(&rules).unwrap();
            let mut a = m.scratch();
            let mut b = m.scratch();
            m.find(&normalize(&text), &mut a);
            m.find_text(&text, &mut Normalizer::new(), &mut b);
            proptest::prop_assert_eq!(a.templates(), b.templates());
            // And both are what the templates say, checked by brute force:
            // every group has a keyword in the normalised text, no veto is.
            let norm = normalize(&text);
            let want: Vec<u32> = rules
                .templates
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    t.all_of.iter().all(|g| g.iter().any(|k| norm.contains(k.as_str())))
                        && !t.none_of.iter().any(|k| norm.contains(k.as_str()))
                })
                .map(|(i, _)| i as u32)
                .collect();
            proptest::prop_assert_eq!(a.templates(), want.as_slice());
        }
    }

    #[test]
    fn matching_table() {
        let cases: &[(&str, &[&str])] = &[
            ("客户反映彩铃复制失败", &["crbt.any", "crbt.copy"]),
            ("炫铃无法同步", &["crbt.copy"]),
            ("同步炫铃", &["crbt.copy"]),
            ("彩铃正常", &[]),
            ("咨询如何复制彩铃", &[]),
            ("咨询如何彩铃复制", &["crbt.any"]),
            ("手机ＧＰＲＳ连接失败", &["data.gprs"]),
            ("Gprs异常", &["data.gprs"]),
            ("gPrS 失败，已恢复", &[]),
            ("abcd", &["data.overlap"]),
            ("ab cd", &[]),
            ("", &[]),
            // Characters outside the normaliser's fast path.
            ("①客户彩铃复制失败", &["crbt.any", "crbt.copy"]),
            ("café：ＧＰＲＳ 异常", &["data.gprs"]),
            ("𠀀彩铃同步", &["crbt.copy"]),
            (
                "彩铃复制失败，GPRS异常",
                &["crbt.any", "crbt.copy", "data.gprs"],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(found(text), *want, "{text}");
        }
    }

    #[test]
    fn businesses_in_rules_order() {
        let rules = load_str(RULES, "t.toml").unwrap();
        let m = Matcher::new(&rules).unwrap();
        let mut s = m.scratch();
        m.find(&normalize("数据业务异常 彩铃同步"), &mut s);
        let got: Vec<(usize, usize)> = s.businesses().map(|(b, t)| (b, t.len())).collect();
        assert_eq!(got, vec![(0, 1), (1, 1)]);
        // Scratch reuse: the next text starts clean.
        m.find(&normalize("无关"), &mut s);
        assert!(s.is_empty());
        assert_eq!(s.businesses().len(), 0);
    }
}
