//! A character-level Aho-Corasick DFA: the automaton the matcher uses for
//! ordinary rule libraries.
//!
//! Why not the byte DFA of the `aho-corasick` crate? A scan is a chain of
//! dependent table loads — the next state needs the previous one — so its
//! speed is the latency of one load times the number of steps. Complaint
//! text is mostly Chinese, three UTF-8 bytes per character, and the table of
//! a few hundred Chinese keywords does not fit the L1 cache: a byte DFA pays
//! three cache-missing loads per character. This DFA steps once per
//! *character*. Each character is first mapped to a symbol (a dense number
//! for every distinct character that occurs in some keyword, 0 for all
//! others) through a flat table indexed by code point; that lookup does not
//! depend on the state, so the CPU runs it ahead while the previous
//! transition is still loading. On the fixture library and generated
//! traffic this halves the scan time (see benches/README.md).
//!
//! The table has one row of `symbols` entries (u16 state numbers) per trie
//! node, so it is only built when it stays small ([`MAX_TABLE_BYTES`]); the
//! matcher falls back to the crate's contiguous NFA beyond that.
//!
//! Semantics equal the byte automaton's overlapping search: valid UTF-8
//! keywords can only match at character boundaries of valid UTF-8 text, so
//! stepping by character finds exactly the same (pattern, end) pairs.
//!
//! Normalisation is folded in as well. The symbol table is indexed by the
//! *raw* code point and holds the symbol of what the normaliser's fast path
//! maps it to ([`crate::normalize::fast_fold`]: `Ｇ` and `G` both give the
//! symbol of `g`), or [`SLOW`] for a character that needs full NFKC. So
//! [`CharDfa::scan_raw`] matches raw complaint text without copying it, and
//! gives up at the first [`SLOW`] character; the caller then normalises the
//! text and calls [`CharDfa::scan`], which looks characters up as they are.

use std::collections::VecDeque;

/// The largest transition table built (bytes).
pub const MAX_TABLE_BYTES: usize = 8 << 20;

/// Code points below this are mapped through the flat symbol table.
const FLAT: usize = 0x1_0000;

/// The flat table's mark for a character the fast path cannot normalise.
pub const SLOW: u16 = u16::MAX;

#[derive(Debug)]
pub struct CharDfa {
    /// Raw code point (< [`FLAT`]) → symbol of its fast-path fold; 0 = in
    /// no keyword; [`SLOW`] = needs full normalisation.
    flat: Vec<u16>,
    /// (code point, symbol) of every keyword character, sorted: the lookup
    /// for already normalised text.
    chars: Vec<(u32, u16)>,
    symbols: usize,
    /// `trans[state * symbols + symbol]` = next state. State 0 is the root.
    trans: Vec<u16>,
    /// Whether a state has output (the patterns ending here or at any
    /// suffix state).
    has_out: Vec<bool>,
    /// `out[out_start[s]..out_start[s + 1]]` = the patterns of state `s`.
    out_start: Vec<u32>,
    out: Vec<u32>,
}

impl CharDfa {
    /// Builds the DFA for `keywords` (pattern `p` = `keywords[p]`), or
    /// `None` when its table would pass [`MAX_TABLE_BYTES`], it would need
    /// more than 65,535 states or symbols, or a keyword is empty.
    pub fn build(keywords: &[&str]) -> Option<CharDfa> {
        if keywords.iter().any(|k| k.is_empty()) {
            return None;
        }
        // Symbols, in order of first appearance (deterministic).
        let mut symbol_of: std::collections::HashMap<u32, u16> = Default::default();
        for k in keywords {
            for c in k.chars() {
                if !symbol_of.contains_key(&(c as u32)) {
                    if symbol_of.len() + 1 >= SLOW as usize {
                        return None;
                    }
                    let y = symbol_of.len() as u16 + 1;
                    symbol_of.insert(c as u32, y);
                }
            }
        }
        let symbols = symbol_of.len() + 1;
        // A cheap early way out for huge libraries, before any trie is
        // built: trie nodes are at most the keyword characters plus the
        // root (fewer, as keywords share prefixes, hence the slack of 4;
        // the exact check follows the trie).
        let keyword_chars: usize = keywords.iter().map(|k| k.chars().count()).sum();
        if (keyword_chars + 1)
            .saturating_mul(symbols)
            .saturating_mul(2)
            > MAX_TABLE_BYTES * 4
        {
            return None;
        }
        let mut chars: Vec<(u32, u16)> = symbol_of.iter().map(|(&c, &y)| (c, y)).collect();
        chars.sort_unstable();
        let flat: Vec<u16> = (0..FLAT as u32)
            .map(|cp| match crate::normalize::fast_fold(cp) {
                Some(f) => symbol_of.get(&f).copied().unwrap_or(0),
                None => SLOW,
            })
            .collect();
        let mut dfa = CharDfa {
            flat,
            chars,
            symbols,
            trans: Vec::new(),
            has_out: Vec::new(),
            out_start: Vec::new(),
            out: Vec::new(),
        };
        // The trie, with children as sorted (symbol, node) lists.
        let mut children: Vec<Vec<(u16, u32)>> = vec![Vec::new()];
        let mut own: Vec<Vec<u32>> = vec![Vec::new()];
        for (p, k) in keywords.iter().enumerate() {
            let mut s = 0usize;
            for c in k.chars() {
                let y = symbol_of[&(c as u32)];
                s = match children[s].binary_search_by_key(&y, |&(y, _)| y) {
                    Ok(i) => children[s][i].1 as usize,
                    Err(i) => {
                        let t = children.len();
                        children[s].insert(i, (y, t as u32));
                        children.push(Vec::new());
                        own.push(Vec::new());
                        t
                    }
                };
            }
            own[s].push(p as u32);
        }
        let states = children.len();
        if states > u16::MAX as usize || states * symbols * 2 > MAX_TABLE_BYTES {
            return None;
        }
        // Breadth first: a node's failure state is shallower, so its row and
        // output are complete when the node is reached.
        let mut trans = vec![0u16; states * symbols];
        let mut fail = vec![0usize; states];
        let mut outputs: Vec<Vec<u32>> = own;
        let mut queue = VecDeque::new();
        for &(y, t) in &children[0] {
            trans[y as usize] = t as u16;
            queue.push_back(t as usize);
        }
        while let Some(s) = queue.pop_front() {
            let f = fail[s];
            if s != 0 && f != s {
                let inherited = outputs[f].clone();
                outputs[s].extend(inherited);
            }
            let (row, frow) = (s * symbols, f * symbols);
            for y in 0..symbols {
                trans[row + y] = trans[frow + y];
            }
            for &(y, t) in &children[s] {
                fail[t as usize] = trans[frow + y as usize] as usize;
                trans[row + y as usize] = t as u16;
                queue.push_back(t as usize);
            }
        }
        let mut out_start = Vec::with_capacity(states + 1);
        let mut out = Vec::new();
        for o in &mut outputs {
            o.sort_unstable();
            o.dedup();
            out_start.push(out.len() as u32);
            out.extend_from_slice(o);
        }
        out_start.push(out.len() as u32);
        dfa.has_out = outputs.iter().map(|o| !o.is_empty()).collect();
        dfa.trans = trans;
        dfa.out_start = out_start;
        dfa.out = out;
        Some(dfa)
    }

    /// The symbol of a character of normalised text. The flat table serves
    /// every character the fast path leaves alone (normalised text holds no
    /// character it would change, such as `Ｇ` or `G`); the sorted list the
    /// others.
    #[inline(always)]
    fn symbol(&self, cp: u32) -> u16 {
        if (cp as usize) < FLAT {
            let y = self.flat[cp as usize];
            if y != SLOW {
                return y;
            }
        }
        match self.chars.binary_search_by_key(&cp, |&(c, _)| c) {
            Ok(i) => self.chars[i].1,
            Err(_) => 0,
        }
    }

    /// Heap bytes held.
    pub fn memory_usage(&self) -> usize {
        self.flat.len() * 2
            + self.chars.len() * 8
            + self.trans.len() * 2
            + self.has_out.len()
            + self.out_start.len() * 4
            + self.out.len() * 4
    }

    /// Runs over normalised `text` (the output of [`crate::normalize`]) and
    /// appends each pattern that occurs,
    /// once (`seen` holds the generation of patterns already found).
    pub fn scan(&self, text: &str, seen: &mut [u32], generation: u32, found: &mut Vec<u32>) {
        let mut s = 0usize;
        for c in text.chars() {
            s = self.step(s, self.symbol(c as u32), seen, generation, found);
        }
    }

    /// Like [`CharDfa::scan`] on `normalize(text)`, straight from the raw
    /// text; `false` (with `found` partly filled) when `text` holds a
    /// character that needs full normalisation.
    #[inline]
    pub fn scan_raw(
        &self,
        text: &str,
        seen: &mut [u32],
        generation: u32,
        found: &mut Vec<u32>,
    ) -> bool {
        let mut s = 0usize;
        for c in text.chars() {
            let cp = c as usize;
            let y = if cp < FLAT { self.flat[cp] } else { SLOW };
            if y == SLOW {
                return false;
            }
            s = self.step(s, y, seen, generation, found);
        }
        true
    }

    #[inline(always)]
    fn step(
        &self,
        s: usize,
        y: u16,
        seen: &mut [u32],
        generation: u32,
        found: &mut Vec<u32>,
    ) -> usize {
        let s = self.trans[s * self.symbols + y as usize] as usize;
        if self.has_out[s] {
            let (a, b) = (self.out_start[s] as usize, self.out_start[s + 1] as usize);
            for &p in &self.out[a..b] {
                if seen[p as usize] != generation {
                    seen[p as usize] = generation;
                    found.push(p);
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(dfa: &CharDfa, text: &str) -> Vec<u32> {
        let mut seen = vec![0; 64];
        let mut out = Vec::new();
        dfa.scan(text, &mut seen, 1, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn overlapping_and_suffix_matches() {
        let kws = [
            "彩铃",
            "彩铃复制",
            "复制",
            "铃复",
            "abc",
            "bcd",
            "c",
            "𠀀字",
        ];
        let dfa = CharDfa::build(&kws).unwrap();
        let table: &[(&str, &[u32])] = &[
            ("", &[]),
            ("彩铃复制失败", &[0, 1, 2, 3]),
            ("彩铃", &[0]),
            ("复制彩", &[2]),
            ("xabcdx", &[4, 5, 6]),
            ("c", &[6]),
            ("彩彩铃", &[0]),
            ("𠀀字𠀀", &[7]),
            ("无关的文字", &[]),
        ];
        for (text, want) in table {
            assert_eq!(found(&dfa, text), *want, "{text}");
        }
    }

    #[test]
    fn raw_scans_fold_the_fast_path_and_stop_at_the_rest() {
        let dfa = CharDfa::build(&["gprs", "彩铃", "a b"]).unwrap();
        let mut seen = vec![0; 8];
        let mut out = Vec::new();
        assert!(dfa.scan_raw("ＧＰＲＳ和彩铃", &mut seen, 1, &mut out));
        out.sort_unstable();
        assert_eq!(out, [0, 1]);
        out.clear();
        assert!(dfa.scan_raw("A\u{3000}B", &mut seen, 2, &mut out));
        assert_eq!(out, [2]);
        assert!(!dfa.scan_raw("①彩铃", &mut seen, 3, &mut Vec::new()));
        assert!(!dfa.scan_raw("é", &mut seen, 4, &mut Vec::new()));
        assert!(!dfa.scan_raw("𠀀", &mut seen, 5, &mut Vec::new()));
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        assert!(CharDfa::build(&["a", ""]).is_none());
        let many: Vec<String> = (0..40_000u32)
            .map(|i| {
                let c = char::from_u32(0x4E00 + i % 20_000).unwrap();
                format!("{c}{i}")
            })
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(CharDfa::build(&refs).is_none());
    }
}
