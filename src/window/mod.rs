//! Event-time hopping windows that count distinct callers per (business,
//! region) key (CONTRACT 2, 5.1-5.5).
//!
//! Window `k` is `[k*slide, k*slide + size)` in epoch milliseconds. Rather
//! than one caller set per window (30 sets for a 30-minute window sliding by
//! a minute, each holding mostly the same callers), time is cut into *bins*
//! of `gcd(size, slide)` — a minute in the usual case — so that every window
//! is a run of `n = size / bin` consecutive bins and windows start every
//! `s = slide / bin` bins. A key keeps:
//!
//! * for each caller, the sorted bins in which it complained (almost always
//!   one or two), which is enough to know exactly which windows a new
//!   complaint adds a *new* distinct caller to (see [`key::KeyState::add`]);
//! * one distinct-caller count per live window;
//! * per bin, complaints per template and the last three complaints (the
//!   samples), which are exact per window because "the last three in input
//!   order" of a window is the newest three among its bins' last threes.
//!   A sample's text is masked (phone and ID-card numbers) and cut when it
//!   is kept, so this state and its checkpoints hold no number in clear.
//!
//! Everything behind `watermark - allowed_lateness` can receive no more
//! events, so it is freed ([`store::KeyStore::sweep`]): memory follows the
//! live windows and the number of active keys, never the input length.

pub mod baseline;
pub mod key;
pub mod spot;
pub mod store;

pub use key::{KeyState, Sample};
pub use store::{KeyStore, Resolver};

use crate::rules::WindowSpec;

/// Window arithmetic for one [`WindowSpec`]; all values in milliseconds or
/// in bin / window indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub size: i64,
    pub slide: i64,
    pub lateness: i64,
    /// Bin width: gcd(size, slide).
    pub bin: i64,
    /// Bins per window.
    pub n: i64,
    /// Bins between window starts.
    pub s: i64,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `ceil(a / b)` for `b > 0`.
#[inline]
pub fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

impl Geometry {
    pub fn new(spec: WindowSpec) -> Self {
        let size = spec.size_ms.max(1);
        let slide = spec.slide_ms.max(1);
        let bin = gcd(size, slide);
        Geometry {
            size,
            slide,
            lateness: spec.allowed_lateness_ms.max(0),
            bin,
            n: size / bin,
            s: slide / bin,
        }
    }

    /// The bin holding instant `ts`.
    #[inline]
    pub fn bin_of(&self, ts: i64) -> i64 {
        ts.div_euclid(self.bin)
    }

    /// The windows containing bin `b`, as an inclusive range (empty, with
    /// `lo > hi`, when the slide is longer than the window and `b` falls in
    /// a gap).
    #[inline]
    pub fn windows_of_bin(&self, b: i64) -> (i64, i64) {
        (ceil_div(b - self.n + 1, self.s), b.div_euclid(self.s))
    }

    /// The bins of window `w`, inclusive.
    #[inline]
    pub fn bins_of_window(&self, w: i64) -> (i64, i64) {
        (w * self.s, w * self.s + self.n - 1)
    }

    #[inline]
    pub fn start(&self, w: i64) -> i64 {
        w * self.slide
    }

    #[inline]
    pub fn end(&self, w: i64) -> i64 {
        w * self.slide + self.size
    }

    /// The oldest window that can still receive events at watermark `wm`:
    /// the first with `end > wm - allowed_lateness` (5.5).
    #[inline]
    pub fn first_live_window(&self, wm: i64) -> i64 {
        (wm - self.lateness - self.size).div_euclid(self.slide) + 1
    }

    /// Bins before this one belong to dead windows only.
    #[inline]
    pub fn first_live_bin(&self, wm: i64) -> i64 {
        self.first_live_window(wm) * self.s
    }

    /// Whether a record at `ts` is late at watermark `wm` (5.1): strictly
    /// older than `wm - allowed_lateness`.
    #[inline]
    pub fn is_late(&self, ts: i64, wm: Option<i64>) -> bool {
        wm.is_some_and(|wm| ts < wm - self.lateness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(size: i64, slide: i64, lateness: i64) -> Geometry {
        Geometry::new(WindowSpec {
            size_ms: size,
            slide_ms: slide,
            allowed_lateness_ms: lateness,
        })
    }

    /// The plain definition: every k with k*slide <= ts < k*slide + size.
    fn windows_by_definition(g: &Geometry, ts: i64) -> Vec<i64> {
        let mut v = Vec::new();
        let k_hi = ts.div_euclid(g.slide);
        let mut k = k_hi;
        while g.end(k) > ts {
            if g.start(k) <= ts {
                v.push(k);
            }
            k -= 1;
        }
        v.reverse();
        v
    }

    #[test]
    fn window_bounds_table() {
        const M: i64 = 60_000;
        let cases: &[(i64, i64, i64, &[i64])] = &[
            // (size, slide, ts) -> windows containing ts
            (
                30 * M,
                M,
                0,
                &[
                    -29, -28, -27, -26, -25, -24, -23, -22, -21, -20, -19, -18, -17, -16, -15, -14,
                    -13, -12, -11, -10, -9, -8, -7, -6, -5, -4, -3, -2, -1, 0,
                ],
            ),
            (
                30 * M,
                M,
                30 * M - 1,
                &[
                    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                    22, 23, 24, 25, 26, 27, 28, 29,
                ],
            ),
            (10 * M, 5 * M, 7 * M, &[0, 1]),
            (10 * M, 5 * M, 5 * M, &[0, 1]),
            (10 * M, 5 * M, 5 * M - 1, &[-1, 0]),
            (10 * M, 10 * M, 10 * M, &[1]),
            (90_000, M, 100_000, &[1]),
            (90_000, M, 89_999, &[0, 1]),
            (90_000, M, 90_000, &[1]),
            (M, 2 * M, 30_000, &[0]),
            (M, 2 * M, 90_000, &[]),
            (M, 2 * M, -30_000, &[]),
            (M, 2 * M, -90_000, &[-1]),
        ];
        for &(size, slide, ts, want) in cases {
            let g = geo(size, slide, 0);
            assert_eq!(
                windows_by_definition(&g, ts),
                want,
                "definition {size} {slide} {ts}"
            );
            let (lo, hi) = g.windows_of_bin(g.bin_of(ts));
            let got: Vec<i64> = (lo..=hi).collect();
            assert_eq!(got, want, "bins {size} {slide} {ts}");
        }
    }

    #[test]
    fn bins_cover_windows_exactly() {
        for (size, slide) in [
            (1_800_000, 60_000),
            (90_000, 60_000),
            (60_000, 120_000),
            (500, 300),
            (7, 7),
        ] {
            let g = geo(size, slide, 0);
            for w in -5..5 {
                let (a, b) = g.bins_of_window(w);
                assert_eq!(a * g.bin, g.start(w));
                assert_eq!((b + 1) * g.bin, g.end(w));
            }
        }
    }

    #[test]
    fn lateness_boundary() {
        let g = geo(1_800_000, 60_000, 600_000);
        let wm = Some(10_000_000);
        assert!(
            !g.is_late(10_000_000 - 600_000, wm),
            "exactly at wm - lateness is kept"
        );
        assert!(g.is_late(10_000_000 - 600_001, wm));
        assert!(
            !g.is_late(0, None),
            "nothing is late before the first record"
        );
        // A kept record's windows are all live.
        let ts = 10_000_000 - 600_000;
        let (lo, _) = g.windows_of_bin(g.bin_of(ts));
        assert!(lo >= g.first_live_window(10_000_000));
        assert!(g.end(g.first_live_window(10_000_000) - 1) <= 10_000_000 - 600_000);
    }
}
