//! How often a place writes a phrase, now and usually: a count-min sketch
//! of exponentially decayed document counts per (place, n-gram), with a
//! short memory (the foreground: about one window) and a long one (the
//! background: days) side by side in each cell.
//!
//! * **Cells and lines.** A cell is two `f32`: foreground and background.
//!   Eight cells make a 64-byte line; a key hashes to one line and to two
//!   different cells in it, so an update or a query costs one cache line,
//!   not one per row as in a textbook count-min sketch (a "blocked"
//!   sketch). A key's estimate is the smaller of its two cells, and updates
//!   are *conservative* (a cell is raised only as far as the key's new
//!   estimate), which keeps the over-estimate from other keys sharing a
//!   cell small. Estimates never fall below the true (decayed) counts.
//! * **Forward decay.** A count decayed with time constant `τ` is
//!   `Σ exp(-(now - tᵢ)/τ)`. Rather than multiply every cell as time
//!   passes, an event at `t` adds `exp((t - L)/τ)` for a landmark `L`, and
//!   a reader divides by `exp((now - L)/τ)` (Cormode et al., "Forward
//!   decay", ICDE 2009). Ratios of two counts of one kind need no division
//!   at all. When the weights grow large the landmark moves on
//!   ([`Sketch::rebase`]: every cell multiplied once), every few hours of
//!   event time.
//!
//! Everything is a function of the updates in order, in `f32`, so two
//! runs over the same records give the same bits.

use serde::{Deserialize, Serialize};

/// Cells per line.
const WAYS: usize = 8;

/// A line: eight (foreground, background) cells, one cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Line([[f32; 2]; WAYS]);

/// A blocked, conservative-update count-min sketch of decayed counts.
#[derive(Clone)]
pub(crate) struct Sketch {
    lines: Vec<Line>,
    /// `lines.len() - 1` (a power of two less one).
    mask: u64,
}

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sketch({} lines)", self.lines.len())
    }
}

/// The two cells of `key` in its line: different (the second is the
/// first xor an odd number), from other bits of the key than the line's.
#[inline]
fn ways(key: u64) -> (usize, usize) {
    let a = (key >> 40) as usize % WAYS;
    let b = a ^ (1 | ((key >> 44) as usize % WAYS));
    (a, b)
}

impl Sketch {
    /// A sketch of `lines` lines (rounded up to a power of two); 64 bytes
    /// each.
    pub(crate) fn new(lines: usize) -> Self {
        let n = lines.next_power_of_two().max(1);
        Sketch {
            lines: vec![Line::default(); n],
            mask: n as u64 - 1,
        }
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.lines.len() * std::mem::size_of::<Line>()
    }

    #[inline]
    fn line(&self, key: u64) -> usize {
        (key & self.mask) as usize
    }

    /// Adds `fg` to the foreground and `bg` to the background count of
    /// `key` (conservatively) and returns its new estimates.
    #[inline]
    pub(crate) fn add(&mut self, key: u64, fg: f32, bg: f32) -> (f32, f32) {
        let (a, b) = ways(key);
        let i = self.line(key);
        let line = &mut self.lines[i].0;
        let f = line[a][0].min(line[b][0]) + fg;
        let g = line[a][1].min(line[b][1]) + bg;
        for w in [a, b] {
            let c = &mut line[w];
            c[0] = c[0].max(f);
            c[1] = c[1].max(g);
        }
        (f, g)
    }

    /// The (foreground, background) estimates of `key`.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> (f32, f32) {
        let (a, b) = ways(key);
        let line = &self.lines[self.line(key)].0;
        (line[a][0].min(line[b][0]), line[a][1].min(line[b][1]))
    }

    /// Asks the CPU to fetch the line of `key` (the lines of a record's
    /// n-grams are then loaded side by side rather than one after another).
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let p = &self.lines[self.line(key)] as *const Line as *const i8;
            // SAFETY: a prefetch only hints; `p` points into `self.lines`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = key;
    }

    /// Multiplies every foreground count by `fg` and every background
    /// count by `bg` (the landmark moved on); counts too small to matter
    /// become 0.
    pub(crate) fn rebase(&mut self, fg: f32, bg: f32) {
        // Selects, not branches: the loop runs in vector registers.
        let flush = |x: f32| if x < 1e-20 { 0.0 } else { x };
        for line in &mut self.lines {
            for c in &mut line.0 {
                c[0] = flush(c[0] * fg);
                c[1] = flush(c[1] * bg);
            }
        }
    }

    /// The saved form: the cells' bits, little-endian, base64.
    pub(crate) fn export(&self) -> SketchState {
        use base64::Engine as _;
        let mut bytes = Vec::with_capacity(self.bytes());
        for line in &self.lines {
            for c in &line.0 {
                bytes.extend_from_slice(&c[0].to_le_bytes());
                bytes.extend_from_slice(&c[1].to_le_bytes());
            }
        }
        SketchState {
            lines: self.lines.len(),
            cells: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// A sketch from its saved form, or `None` when it does not fit one of
    /// `lines` lines.
    pub(crate) fn restore(s: &SketchState, lines: usize) -> Option<Self> {
        use base64::Engine as _;
        let mut k = Sketch::new(lines);
        if s.lines != k.lines.len() {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&s.cells)
            .ok()?;
        if bytes.len() != k.bytes() {
            return None;
        }
        let mut it = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        for line in &mut k.lines {
            for c in &mut line.0 {
                c[0] = it.next()?;
                c[1] = it.next()?;
            }
        }
        Some(k)
    }
}

/// [`Sketch`] as checkpoints hold it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SketchState {
    pub lines: usize,
    /// Every cell's two `f32`, little-endian, base64.
    pub cells: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::phrase::mix;

    #[test]
    fn estimates_never_fall_below_the_counts_and_are_exact_when_alone() {
        let mut s = Sketch::new(1024);
        for k in 0..100u64 {
            for _ in 0..=k % 7 {
                s.add(mix(k), 1.0, 0.5);
            }
        }
        for k in 0..100u64 {
            let (f, b) = s.get(mix(k));
            let n = (k % 7 + 1) as f32;
            assert!(f >= n && b >= n * 0.5, "{k}: {f} {b}");
        }
        // A sparse sketch: no key shares both its cells, so exact.
        assert_eq!(s.get(mix(6)), (7.0, 3.5));
        assert_eq!(s.get(mix(1_000)), (0.0, 0.0));
    }

    #[test]
    fn a_crowded_sketch_over_estimates_little() {
        // 20,000 keys once each in 64 lines (512 cells): each cell is
        // shared by ~40 keys, yet conservative updates and two cells per
        // key keep the estimate far below the crowd.
        let mut s = Sketch::new(64);
        for k in 0..20_000u64 {
            s.add(mix(k), 1.0, 1.0);
        }
        let heavy = mix(1 << 40);
        for _ in 0..500 {
            s.add(heavy, 1.0, 1.0);
        }
        let (f, _) = s.get(heavy);
        assert!((500.0..600.0).contains(&f), "{f}");
    }

    #[test]
    fn rebase_and_round_trip() {
        let mut s = Sketch::new(16);
        s.add(mix(1), 4.0, 2.0);
        s.rebase(0.5, 0.25);
        assert_eq!(s.get(mix(1)), (2.0, 0.5));
        let back = Sketch::restore(&s.export(), 16).unwrap();
        assert_eq!(back.get(mix(1)), (2.0, 0.5));
        assert_eq!(back.lines.len(), 16);
        // Another size does not restore.
        assert!(Sketch::restore(&s.export(), 32).is_none());
    }
}
