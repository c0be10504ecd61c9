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
//! The table has one row of `symbols` entries per trie node. For ordinary
//! libraries every node gets its row (a full DFA, u16 state numbers). A
//! large library's full table would not fit in any cache or even in
//! memory (5,000 templates / 20,000 keywords: ~100,000 nodes × ~300
//! symbols), so it gets a *hybrid*: nodes are numbered breadth first, the
//! shallowest nodes — as many as fit in [`HYBRID_TABLE_BYTES`] — keep full
//! rows, and deeper nodes keep only their trie children and their failure
//! link (u32 state numbers). A scan spends nearly all its steps at the root
//! and one or two characters below it, where rows are full, so it costs
//! about what the full DFA costs; a step from a deep node follows failure
//! links until a child or a full row answers (Aho-Corasick's classic NFA
//! step, bounded by the node's depth). One type serves both, generic over
//! the state number; for a full DFA the "is this row full?" test is always
//! true and the branch predictor makes it free.
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

// Every `unsafe` block says why it is sound (CI runs clippy with
// `-D warnings`).
#![warn(clippy::undocumented_unsafe_blocks)]

use std::collections::VecDeque;

use code_points::CodePoints;

/// The largest full DFA table built (bytes).
pub const MAX_TABLE_BYTES: usize = 8 << 20;

/// The full rows of a hybrid automaton take at most this (bytes): about
/// the L2 cache of the machines hotspot runs on. More full rows do not pay:
/// on the 5,000-template library (66,045 states × 264 symbols) 1 MiB and
/// 2 MiB of rows scan 20,000 texts in 16.2 / 16.4 ms, 4 MiB in 23.1 ms, 8
/// MiB in 23.5 ms, 256 KiB in 18.1 ms (`HOTSPOT_HYBRID_BYTES=... cargo
/// bench --bench micro -- ^match`): past the cache, a full row's miss
/// costs more than the failure links it saves.
pub(crate) const HYBRID_TABLE_BYTES: usize = 1 << 20;

/// Code points below this are mapped through the flat symbol table.
const FLAT: usize = 0x1_0000;

/// The flat table's mark for a character the fast path cannot normalise.
pub(crate) const SLOW: u16 = u16::MAX;

/// A state number: u16 for full DFAs of ordinary libraries (half the cache
/// footprint), u32 for the hybrid of large ones.
///
/// The top bit of a transition's target marks a state with output, so a
/// step learns whether patterns end here from the load it makes anyway
/// (a separate "has output?" table would be one more dependent load per
/// character, and a cache miss on large libraries).
pub(crate) trait StateId: Copy + Default + std::fmt::Debug + 'static {
    /// The output mark; state numbers stay below it.
    const FLAG: usize;
    /// The most states this type numbers.
    const LIMIT: usize = Self::FLAG;
    fn new(s: usize) -> Self;
    fn get(self) -> usize;
}

/// The two widths differ only in their type and their output mark.
macro_rules! state_id {
    ($t:ty, $flag:expr) => {
        impl StateId for $t {
            const FLAG: usize = $flag;
            #[inline(always)]
            fn new(s: usize) -> Self {
                s as $t
            }
            #[inline(always)]
            fn get(self) -> usize {
                self as usize
            }
        }
    };
}

state_id!(u16, 1 << 15);
state_id!(u32, 1 << 31);

/// A full character DFA (ordinary libraries).
pub(crate) type CharDfa = CharAutomaton<u16>;

/// A hybrid character automaton (large libraries).
pub(crate) type WideCharAutomaton = CharAutomaton<u32>;

#[derive(Debug)]
pub(crate) struct CharAutomaton<S: StateId> {
    /// Raw code point (< [`FLAT`]) → symbol of its fast-path fold; 0 = in
    /// no keyword; [`SLOW`] = needs full normalisation.
    flat: Vec<u16>,
    /// (code point, symbol) of every keyword character, sorted: the lookup
    /// for already normalised text.
    chars: Vec<(u32, u16)>,
    symbols: usize,
    /// Entries per full row: `symbols` rounded up to a power of two for a
    /// full DFA, so that a step finds its row with a shift (one cycle)
    /// instead of a multiplication (three) on the chain of dependent loads
    /// that a scan is; the padding columns are never read, so they cost
    /// address space but no cache lines. The hybrid keeps `symbols`: its
    /// full rows are rationed by bytes.
    stride: usize,
    /// `log2(stride)` when `stride` is a power of two.
    shift: u32,
    /// States `0..dense` (breadth-first numbers; 0 is the root) have full
    /// rows: `trans[state * stride + symbol]` = next state, with
    /// [`StateId::FLAG`] set when it has output.
    dense: usize,
    trans: Vec<S>,
    /// State `dense + i` has the trie children
    /// `sparse_sym/sparse_next[sparse_start[i]..sparse_start[i + 1]]` and
    /// the failure state `fail[i]` (children flagged like `trans`, the
    /// failure state not).
    sparse_start: Vec<u32>,
    sparse_sym: Vec<u16>,
    sparse_next: Vec<S>,
    fail: Vec<S>,
    /// `out[out_start[s]..out_start[s + 1]]` = the patterns of state `s`
    /// (those ending here or at any suffix state).
    out_start: Vec<u32>,
    out: Vec<u32>,
}

impl CharDfa {
    /// Builds the full DFA for `keywords` (pattern `p` = `keywords[p]`), or
    /// `None` when its table would pass [`MAX_TABLE_BYTES`], it would need
    /// 32,768 states or more, more than 65,534 symbols, or a keyword is
    /// empty.
    pub fn build(keywords: &[&str]) -> Option<CharDfa> {
        let alphabet = Alphabet::new(keywords)?;
        // A cheap early way out for huge libraries, before any trie is
        // built: trie nodes are at most the keyword characters plus the
        // root (fewer, as keywords share prefixes, hence the slack of 4;
        // the exact check follows the trie).
        let keyword_chars: usize = keywords.iter().map(|k| k.chars().count()).sum();
        if (keyword_chars + 1)
            .saturating_mul(alphabet.symbols)
            .saturating_mul(2)
            > MAX_TABLE_BYTES * 4
        {
            return None;
        }
        let trie = Trie::new(keywords, &alphabet);
        let states = trie.children.len();
        let stride = alphabet.symbols.next_power_of_two();
        if states >= u16::LIMIT || states * stride * 2 > MAX_TABLE_BYTES {
            return None;
        }
        Some(CharAutomaton::from_trie(alphabet, trie, states, stride))
    }
}

impl WideCharAutomaton {
    /// Builds the hybrid automaton for `keywords`, with full rows for as
    /// many of the shallowest states as `max_table_bytes` holds (at least
    /// the root); `None` when a keyword is empty, there are more than
    /// 65,534 distinct characters or 2^31 trie nodes.
    pub fn build(keywords: &[&str], max_table_bytes: usize) -> Option<WideCharAutomaton> {
        let alphabet = Alphabet::new(keywords)?;
        let trie = Trie::new(keywords, &alphabet);
        if trie.children.len() >= u32::LIMIT {
            return None;
        }
        let per_row = alphabet.symbols * std::mem::size_of::<u32>();
        let dense = (max_table_bytes / per_row).clamp(1, trie.children.len());
        let stride = alphabet.symbols;
        Some(CharAutomaton::from_trie(alphabet, trie, dense, stride))
    }
}

/// The symbols: every distinct keyword character gets a dense number from
/// 1, in order of first appearance (deterministic); 0 is every other
/// character.
struct Alphabet {
    symbol_of: std::collections::HashMap<u32, u16>,
    symbols: usize,
}

impl Alphabet {
    fn new(keywords: &[&str]) -> Option<Alphabet> {
        if keywords.iter().any(|k| k.is_empty()) {
            return None;
        }
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
        Some(Alphabet { symbol_of, symbols })
    }
}

/// The keyword trie, nodes numbered breadth first (so that the shallowest
/// nodes are a prefix of the numbers), children as sorted (symbol, node)
/// lists, and the patterns ending at each node.
struct Trie {
    children: Vec<Vec<(u16, u32)>>,
    own: Vec<Vec<u32>>,
}

impl Trie {
    fn new(keywords: &[&str], alphabet: &Alphabet) -> Trie {
        let mut children: Vec<Vec<(u16, u32)>> = vec![Vec::new()];
        let mut own: Vec<Vec<u32>> = vec![Vec::new()];
        for (p, k) in keywords.iter().enumerate() {
            let mut s = 0usize;
            for c in k.chars() {
                let y = alphabet.symbol_of[&(c as u32)];
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
        // Renumber breadth first.
        let n = children.len();
        let mut order = Vec::with_capacity(n);
        let mut new_id = vec![0u32; n];
        let mut queue = VecDeque::from([0usize]);
        while let Some(s) = queue.pop_front() {
            new_id[s] = order.len() as u32;
            order.push(s);
            queue.extend(children[s].iter().map(|&(_, t)| t as usize));
        }
        let mut bfs_children = Vec::with_capacity(n);
        let mut bfs_own = Vec::with_capacity(n);
        for &s in &order {
            bfs_children.push(
                children[s]
                    .iter()
                    .map(|&(y, t)| (y, new_id[t as usize]))
                    .collect(),
            );
            bfs_own.push(std::mem::take(&mut own[s]));
        }
        Trie {
            children: bfs_children,
            own: bfs_own,
        }
    }
}

impl<S: StateId> CharAutomaton<S> {
    /// The automaton of `trie`, with full rows of `stride` entries for
    /// states `0..dense`.
    fn from_trie(alphabet: Alphabet, trie: Trie, dense: usize, stride: usize) -> CharAutomaton<S> {
        let symbols = alphabet.symbols;
        debug_assert!(stride >= symbols);
        let states = trie.children.len();
        let mut chars: Vec<(u32, u16)> = alphabet.symbol_of.iter().map(|(&c, &y)| (c, y)).collect();
        chars.sort_unstable();
        let flat: Vec<u16> = (0..FLAT as u32)
            .map(|cp| match crate::normalize::fast_fold(cp) {
                Some(f) => alphabet.symbol_of.get(&f).copied().unwrap_or(0),
                None => SLOW,
            })
            .collect();
        let mut sparse_start = Vec::with_capacity(states - dense + 1);
        let mut sparse_sym = Vec::new();
        let mut sparse_next = Vec::new();
        for kids in &trie.children[dense..] {
            sparse_start.push(sparse_sym.len() as u32);
            sparse_sym.extend(kids.iter().map(|&(y, _)| y));
            sparse_next.extend(kids.iter().map(|&(_, t)| S::new(t as usize)));
        }
        sparse_start.push(sparse_sym.len() as u32);
        let mut a = CharAutomaton {
            flat,
            chars,
            symbols,
            stride,
            shift: stride.trailing_zeros(),
            dense,
            trans: vec![S::default(); dense * stride],
            sparse_start,
            sparse_sym,
            sparse_next,
            fail: vec![S::default(); states - dense],
            out_start: Vec::new(),
            out: Vec::new(),
        };
        // Breadth first (= in number order): a node's failure state is
        // shallower, so its row, failure link and output are complete when
        // the node is reached.
        let mut fail = vec![0usize; states];
        let mut outputs: Vec<Vec<u32>> = trie.own;
        for s in 0..states {
            let f = fail[s];
            if s != 0 {
                let inherited = outputs[f].clone();
                outputs[s].extend(inherited);
            }
            if s < dense {
                let (row, frow) = (s * stride, f * stride);
                if s != 0 {
                    a.trans.copy_within(frow..frow + symbols, row);
                }
            } else {
                a.fail[s - dense] = S::new(f);
            }
            for &(y, t) in &trie.children[s] {
                fail[t as usize] = if s == 0 { 0 } else { a.next(f, y) };
                if s < dense {
                    a.trans[s * stride + y as usize] = S::new(t as usize);
                }
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
        // Mark every transition into a state with output.
        for t in a.trans.iter_mut().chain(a.sparse_next.iter_mut()) {
            if !outputs[t.get()].is_empty() {
                *t = S::new(t.get() | S::FLAG);
            }
        }
        a.out_start = out_start;
        a.out = out;
        a
    }

    /// The state after `s` on symbol `y`, flagged ([`StateId::FLAG`]) when
    /// it has output; unflagged while [`Self::from_trie`] runs.
    #[inline(always)]
    fn next(&self, s: usize, y: u16) -> usize {
        if s < self.dense {
            return self.trans[s * self.stride + y as usize].get();
        }
        self.next_sparse(s, y)
    }

    /// [`Self::next`] from a state without a full row: its children, else
    /// its failure state's transition.
    #[inline(never)]
    fn next_sparse(&self, mut s: usize, y: u16) -> usize {
        if y == 0 {
            // A character of no keyword leads back to the root from anywhere.
            return 0;
        }
        while s >= self.dense {
            let i = s - self.dense;
            let (a, b) = (
                self.sparse_start[i] as usize,
                self.sparse_start[i + 1] as usize,
            );
            if let Some(j) = self.sparse_sym[a..b].iter().position(|&z| z == y) {
                return self.sparse_next[a + j].get();
            }
            s = self.fail[i].get();
        }
        self.trans[s * self.stride + y as usize].get()
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

    /// Number of states (trie nodes).
    pub fn states(&self) -> usize {
        self.out_start.len() - 1
    }

    /// Number of symbols (distinct keyword characters, plus one for all
    /// others).
    pub(crate) fn symbols(&self) -> usize {
        self.symbols
    }

    /// Number of states with a full row.
    pub(crate) fn dense_states(&self) -> usize {
        self.dense
    }

    /// Heap bytes held.
    pub fn memory_usage(&self) -> usize {
        let id = std::mem::size_of::<S>();
        self.flat.len() * 2
            + self.chars.len() * 8
            + self.trans.len() * id
            + self.sparse_start.len() * 4
            + self.sparse_sym.len() * 2
            + self.sparse_next.len() * id
            + self.fail.len() * id
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

    /// Like [`CharAutomaton::scan`] on `normalize(text)`, straight from the
    /// raw text; `false` (with `found` partly filled) when `text` holds a
    /// character that needs full normalisation.
    #[inline]
    pub(crate) fn scan_raw(
        &self,
        text: &str,
        seen: &mut [u32],
        generation: u32,
        found: &mut Vec<u32>,
    ) -> bool {
        // Two loops: with every state's row in the table (the full DFA)
        // there is no `s < dense` test per character, and the row is found
        // with a shift.
        if self.dense == self.states() && self.stride == 1 << self.shift {
            self.scan_raw_full(text, seen, generation, found)
        } else {
            self.scan_raw_hybrid(text, seen, generation, found)
        }
    }

    /// The symbol of a raw character beyond the flat table (four bytes of
    /// UTF-8): that of the character itself when the normaliser's fast path
    /// keeps it (emoji, CJK Extension B), else [`SLOW`].
    #[cold]
    #[inline(never)]
    fn astral_symbol(&self, cp: usize) -> u16 {
        if crate::normalize::keeps_astral(cp as u32) {
            self.symbol(cp as u32)
        } else {
            SLOW
        }
    }

    /// The symbol of raw character `cp` after the fast path's fold, or
    /// [`SLOW`]; every other symbol is below `symbols`.
    #[inline(always)]
    fn raw_symbol(&self, cp: usize) -> u16 {
        if cp < FLAT {
            debug_assert_eq!(self.flat.len(), FLAT);
            // SAFETY: `cp < FLAT`, and `flat` holds `FLAT` entries (built
            // so in `from_trie`, never changed after).
            unsafe { *self.flat.get_unchecked(cp) }
        } else {
            self.astral_symbol(cp)
        }
    }

    /// [`Self::scan_raw`] for a full DFA with a power-of-two stride.
    ///
    /// A scan is one chain of dependent loads (the next state needs the
    /// previous one), so this loop is written for the length of that chain:
    /// the row offset is a shift of the state, the loads are unchecked (every
    /// stored state is below `dense`, every symbol below `stride`, every
    /// masked code point inside `flat`), and the rare output handling is out
    /// of line so that the loop keeps its values in registers.
    #[inline(always)]
    fn scan_raw_full(
        &self,
        text: &str,
        seen: &mut [u32],
        generation: u32,
        found: &mut Vec<u32>,
    ) -> bool {
        // What makes the unchecked load below sound, checked once per text
        // (the caller has just tested the same, so this costs nothing):
        // every state has a full row of `stride == 1 << shift` entries.
        assert!(self.dense == self.states() && self.stride == 1 << self.shift);
        let trans = self.trans.as_slice();
        debug_assert_eq!(trans.len(), self.dense * self.stride);
        let shift = self.shift;
        let mut row = 0usize;
        for cp in CodePoints::new(text) {
            let y = self.raw_symbol(cp);
            if y == SLOW {
                return false;
            }
            debug_assert!((y as usize) < self.symbols && self.symbols <= self.stride);
            debug_assert!(row + (y as usize) < trans.len());
            // SAFETY: `row` is `s << shift` = `s * stride` for a state `s`
            // (0, or a transition's target with its output flag cleared),
            // and every state is below `dense` (asserted above: `trans`
            // holds a row for each, and `from_trie` stores only state
            // numbers); `y` is not `SLOW`, so it is a symbol, below
            // `symbols <= stride`. So `row + y < dense * stride ==
            // trans.len()`.
            let flagged = unsafe { trans.get_unchecked(row + y as usize) }.get();
            let s = flagged & !S::FLAG;
            if flagged & S::FLAG != 0 {
                self.emit(s, seen, generation, found);
            }
            row = s << shift;
        }
        true
    }

    /// [`Self::scan_raw`] for the hybrid (or a full DFA whose stride is not
    /// a power of two).
    #[inline(always)]
    fn scan_raw_hybrid(
        &self,
        text: &str,
        seen: &mut [u32],
        generation: u32,
        found: &mut Vec<u32>,
    ) -> bool {
        let mut s = 0usize;
        for cp in CodePoints::new(text) {
            let y = self.raw_symbol(cp);
            if y == SLOW {
                return false;
            }
            s = self.found(self.next(s, y), seen, generation, found);
        }
        true
    }

    /// Adds the patterns of state `s` (which has output) to `found`.
    #[cold]
    #[inline(never)]
    fn emit(&self, s: usize, seen: &mut [u32], generation: u32, found: &mut Vec<u32>) {
        let (a, b) = (self.out_start[s] as usize, self.out_start[s + 1] as usize);
        for &p in &self.out[a..b] {
            if seen[p as usize] != generation {
                seen[p as usize] = generation;
                found.push(p);
            }
        }
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
        self.found(self.next(s, y), seen, generation, found)
    }

    /// The state a transition leads to (`flagged`, with the output flag),
    /// its keywords added to `found`.
    #[inline(always)]
    fn found(
        &self,
        flagged: usize,
        seen: &mut [u32],
        generation: u32,
        found: &mut Vec<u32>,
    ) -> usize {
        let s = flagged & !S::FLAG;
        if flagged & S::FLAG != 0 {
            self.emit(s, seen, generation, found);
        }
        s
    }
}

/// The code points of a `str`, decoded by hand.
///
/// A module of its own so that the cursor's invariant is private to the
/// code that relies on it.
mod code_points {
    /// The code points of a `str`, as `usize`, decoded by hand: `str::chars`
    /// checks for cases that valid UTF-8 never holds, and builds a `char`.
    ///
    /// Invariant: `b` is the bytes of a `str` (valid UTF-8), and `i` is a
    /// character boundary of it (`i <= b.len()`). `new` starts at 0 and
    /// `next` only moves `i` past one whole character.
    pub(super) struct CodePoints<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl<'a> CodePoints<'a> {
        #[inline(always)]
        pub(super) fn new(s: &'a str) -> Self {
            CodePoints {
                b: s.as_bytes(),
                i: 0,
            }
        }
    }

    impl Iterator for CodePoints<'_> {
        type Item = usize;

        #[inline(always)]
        fn next(&mut self) -> Option<usize> {
            let (b, i) = (self.b, self.i);
            let b0 = *b.get(i)? as usize;
            // `i` is a character boundary (the invariant) below `b.len()`:
            // `b0` is the first byte of a whole character, whose length its
            // value gives.
            if b0 < 0x80 {
                self.i = i + 1;
                Some(b0)
            } else if b0 < 0xE0 {
                debug_assert!(i + 1 < b.len());
                // SAFETY: `b` is valid UTF-8 and `b0` a lead byte at a
                // character boundary (the invariant); below 0xE0 (and not
                // ASCII) it starts a two-byte character, so `b[i + 1]` is in
                // the slice.
                let b1 = unsafe { *b.get_unchecked(i + 1) } as usize;
                self.i = i + 2;
                Some(((b0 & 0x1F) << 6) | (b1 & 0x3F))
            } else if b0 < 0xF0 {
                debug_assert!(i + 2 < b.len());
                // SAFETY: as above; E0..=EF starts a three-byte character,
                // so `b[i + 1]` and `b[i + 2]` are in the slice.
                let (b1, b2) = unsafe { (*b.get_unchecked(i + 1), *b.get_unchecked(i + 2)) };
                self.i = i + 3;
                Some(((b0 & 0x0F) << 12) | ((b1 as usize & 0x3F) << 6) | (b2 as usize & 0x3F))
            } else {
                debug_assert!(i + 3 < b.len());
                // SAFETY: as above; F0..=F4 starts a four-byte character, so
                // `b[i + 1]`, `b[i + 2]` and `b[i + 3]` are in the slice.
                let (b1, b2, b3) = unsafe {
                    (
                        *b.get_unchecked(i + 1),
                        *b.get_unchecked(i + 2),
                        *b.get_unchecked(i + 3),
                    )
                };
                self.i = i + 4;
                Some(
                    ((b0 & 0x07) << 18)
                        | ((b1 as usize & 0x3F) << 12)
                        | ((b2 as usize & 0x3F) << 6)
                        | (b3 as usize & 0x3F),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found<S: StateId>(a: &CharAutomaton<S>, text: &str) -> Vec<u32> {
        let mut seen = vec![0; 64];
        let mut out = Vec::new();
        a.scan(text, &mut seen, 1, &mut out);
        out.sort_unstable();
        out
    }

    /// Keywords that overlap in every way: prefixes, suffixes, infixes, a
    /// one-character keyword, a four-byte character.
    const OVERLAPPING: [&str; 8] = [
        "彩铃",
        "彩铃复制",
        "复制",
        "铃复",
        "abc",
        "bcd",
        "c",
        "𠀀字",
    ];

    #[test]
    fn overlapping_and_suffix_matches() {
        let dfa = CharDfa::build(&OVERLAPPING).unwrap();
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
        // Four-byte characters the fast path keeps are matched in place;
        // the others need the normaliser.
        out.clear();
        assert!(dfa.scan_raw("𠀀😡彩铃", &mut seen, 5, &mut out));
        assert_eq!(out, [1]);
        assert!(!dfa.scan_raw("🈶", &mut seen, 6, &mut Vec::new()));
        // A Kangxi radical folds onto its ideograph: `⽤` is `用`.
        let dfa = CharDfa::build(&["用户"]).unwrap();
        let mut out = Vec::new();
        assert!(dfa.scan_raw("⽤户", &mut seen, 7, &mut out));
        assert_eq!(out, [0]);
    }

    /// Patterns of `kws` in `text` by brute force.
    fn naive(kws: &[&str], text: &str) -> Vec<u32> {
        (0..kws.len() as u32)
            .filter(|&p| text.contains(kws[p as usize]))
            .collect()
    }

    #[test]
    fn the_hybrid_matches_like_the_full_dfa_whatever_rows_are_full() {
        let mut kws = OVERLAPPING.to_vec();
        kws.extend(["aab", "ab"]);
        let dfa = CharDfa::build(&kws).unwrap();
        let texts = [
            "彩铃复制失败",
            "xabcdx",
            "aaab",
            "彩彩铃复复制",
            "𠀀字𠀀",
            "",
            "abab",
        ];
        for budget in [0, 1, 100, 400, 4000, 1 << 20] {
            let wide = WideCharAutomaton::build(&kws, budget).unwrap();
            assert!(wide.dense_states() >= 1 && wide.dense_states() <= wide.states());
            for t in texts {
                assert_eq!(found(&wide, t), found(&dfa, t), "{t} with {budget} bytes");
                assert_eq!(found(&wide, t), naive(&kws, t), "{t}");
            }
        }
    }

    proptest::proptest! {
        /// Over a four-letter alphabet, so that keywords overlap, share
        /// prefixes and suffixes, and failure chains are long.
        #[test]
        fn every_kind_finds_what_brute_force_finds(
            kws in proptest::collection::hash_set("[abc彩]{1,5}", 1..24),
            texts in proptest::collection::vec("[abcd彩铃]{0,30}", 1..8),
            budget in 0usize..2000,
        ) {
            let kws: Vec<&str> = kws.iter().map(String::as_str).collect();
            let dfa = CharDfa::build(&kws).unwrap();
            let wide = WideCharAutomaton::build(&kws, budget).unwrap();
            for t in &texts {
                let want = naive(&kws, t);
                let mut seen = vec![0; kws.len()];
                let (mut a, mut b) = (Vec::new(), Vec::new());
                dfa.scan(t, &mut seen, 1, &mut a);
                wide.scan(t, &mut seen, 2, &mut b);
                a.sort_unstable();
                b.sort_unstable();
                proptest::prop_assert_eq!(&a, &want);
                proptest::prop_assert_eq!(&b, &want);
            }
        }
    }

    #[test]
    fn code_points_are_the_chars_whatever_ends_the_text() {
        // One-, two-, three- and four-byte characters, each last, first
        // and alone, and the extremes of each length.
        let texts = [
            "",
            "a",
            "é",
            "杭",
            "😀",
            "a😀",
            "杭州😀",
            "😀a",
            "😀😀",
            "aé",
            "a杭",
            "\0",
            "\u{7F}",
            "\u{80}",
            "\u{7FF}",
            "\u{800}",
            "\u{FFFF}",
            "\u{10000}",
            "\u{10FFFF}",
            "x\u{10FFFF}",
            "𠀀字",
            "字𠀀",
        ];
        for t in texts {
            let want: Vec<usize> = t.chars().map(|c| c as usize).collect();
            assert_eq!(CodePoints::new(t).collect::<Vec<_>>(), want, "{t:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn code_points_are_the_chars_of_any_text(t in proptest::prelude::any::<String>()) {
            let want: Vec<usize> = t.chars().map(|c| c as usize).collect();
            proptest::prop_assert_eq!(CodePoints::new(&t).collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn raw_scans_end_on_a_four_byte_character() {
        let dfa = CharDfa::build(&["彩铃", "铃😡", "𠀀"]).unwrap();
        let wide = WideCharAutomaton::build(&["彩铃", "铃😡", "𠀀"], 0).unwrap();
        let cases: &[(&str, Option<&[u32]>)] = &[
            ("彩铃😡", Some(&[0, 1])),
            ("😡", Some(&[])),
            ("彩铃𠀀", Some(&[0, 2])),
            ("𠀀", Some(&[2])),
            ("彩铃🈶", None),
            ("🈶", None),
            ("彩铃\u{10FFFF}", None),
        ];
        let mut seen = vec![0; 3];
        for (g, (text, want)) in cases.iter().enumerate() {
            for (kind, ok, mut out) in [("dfa", true, Vec::new()), ("hybrid", false, Vec::new())] {
                let done = if ok {
                    dfa.scan_raw(text, &mut seen, 2 * g as u32 + 1, &mut out)
                } else {
                    wide.scan_raw(text, &mut seen, 2 * g as u32 + 2, &mut out)
                };
                out.sort_unstable();
                assert_eq!(done.then_some(out.as_slice()), *want, "{kind} on {text}");
            }
        }
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
        // The hybrid holds it, with full rows for as many states as fit.
        let wide = WideCharAutomaton::build(&refs, MAX_TABLE_BYTES).unwrap();
        assert_eq!(wide.dense_states(), MAX_TABLE_BYTES / (20_011 * 4));
        let mut seen = vec![0; refs.len()];
        let mut out = Vec::new();
        wide.scan("x一0丁1x", &mut seen, 1, &mut out);
        out.sort_unstable();
        assert_eq!(out, [0, 1]);
        assert!(WideCharAutomaton::build(&["a", ""], 1 << 20).is_none());
    }
}
