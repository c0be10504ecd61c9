//! Offset bookkeeping for partitioned log sources (Fluvio): every offset of
//! a partition must reach the engine exactly once, in order.
//!
//! Why a source checks what its client hands it: the fluvio 0.50.1
//! consumer skips the rest of a record batch when a fetch ends in the
//! middle of it — once the backlog is larger than `max_bytes`, every fetch
//! can leave a gap (the fix is upstream but not released). Records are
//! numbered densely per partition, so a gap is visible: the next record's
//! offset is larger than the one expected. The source then drops the stream
//! and opens a new one at the first missing offset; a record at an offset
//! already read (a reconnect can repeat some) is dropped.
//!
//! A re-read can only work if the first fetch reaches the missing offset:
//! the SPU sends whole batches from the start of the one holding it, cut at
//! `max_bytes`. When a producer batch is larger than `max_bytes`, the
//! missing records lie beyond the cut, and a fresh stream jumps past them
//! again (or, at the end of the log, delivers nothing at all). A gap or a
//! stall on a *fresh* stream therefore means "fetch more": the source
//! doubles its fetch size for that partition and reads again.

/// What to do with a record at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The expected offset: use it.
    Take,
    /// An offset already read: drop it.
    Duplicate,
    /// Offsets are missing before this one: re-read from
    /// [`OffsetTracker::next`] (then call [`OffsetTracker::reopened`]).
    /// `fresh`: it was the first record of a new stream, so the same fetch
    /// size would miss them again.
    Gap { missing: i64, fresh: bool },
}

/// The next offset expected from one partition.
#[derive(Debug, Clone, Default)]
pub struct OffsetTracker {
    next: Option<i64>,
    /// No record taken since the stream was (re)opened.
    fresh: bool,
}

impl OffsetTracker {
    /// Expecting `next` (None: whatever comes first sets the baseline).
    pub fn new(next: Option<i64>) -> Self {
        OffsetTracker { next, fresh: true }
    }

    /// The next offset to read (the resume position).
    pub fn next(&self) -> Option<i64> {
        self.next
    }

    /// Whether no record was taken since the stream was (re)opened.
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// A new stream was opened at [`OffsetTracker::next`].
    pub fn reopened(&mut self) {
        self.fresh = true;
    }

    /// Goes on from `offset`: the ones before it are gone from the log
    /// (retention), or cannot be read.
    pub fn skip_to(&mut self, offset: i64) {
        self.next = Some(offset);
    }

    /// Judges the record at `offset`.
    pub fn check(&mut self, offset: i64) -> Verdict {
        match self.next {
            Some(n) if offset < n => Verdict::Duplicate,
            Some(n) if offset > n => Verdict::Gap {
                missing: offset - n,
                fresh: self.fresh,
            },
            _ => {
                self.next = Some(offset + 1);
                self.fresh = false;
                Verdict::Take
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_gaps_and_duplicates() {
        let mut t = OffsetTracker::new(Some(10));
        assert_eq!(
            t.check(12),
            Verdict::Gap {
                missing: 2,
                fresh: true
            },
            "the first record of a stream"
        );
        assert_eq!(t.check(10), Verdict::Take);
        assert!(!t.fresh());
        assert_eq!(t.check(11), Verdict::Take);
        assert_eq!(t.check(11), Verdict::Duplicate);
        assert_eq!(t.check(5), Verdict::Duplicate);
        assert_eq!(
            t.check(20),
            Verdict::Gap {
                missing: 8,
                fresh: false
            }
        );
        assert_eq!(t.next(), Some(12), "re-read from the first missing one");
        t.reopened();
        assert!(t.fresh());
        assert_eq!(t.check(12), Verdict::Take);
        t.skip_to(40);
        assert_eq!(t.check(40), Verdict::Take);
        assert_eq!(t.next(), Some(41));
    }

    #[test]
    fn no_baseline_takes_the_first_record() {
        let mut t = OffsetTracker::new(None);
        assert_eq!(t.check(7), Verdict::Take);
        assert_eq!(t.next(), Some(8));
    }

    /// A simulated client that, like fluvio 0.50.1, loses the rest of a
    /// batch at the end of every fetch, with producer batches larger than a
    /// fetch: a reader that follows the verdicts (re-read; fetch more when
    /// a fresh stream misses) still gets every offset exactly once.
    #[test]
    fn a_lossy_client_is_repaired() {
        let total = 10_000i64;
        let batch = 370i64; // records per producer batch
        let mut fetch = 50i64; // records per fetch (max_bytes)
        let mut t = OffsetTracker::new(Some(0));
        let mut got = Vec::new();
        let (mut gaps, mut boosts, mut opens) = (0, 0, 0);
        'open: while t.next().unwrap() < total {
            opens += 1;
            assert!(opens < 10_000, "no progress");
            t.reopened();
            let start = t.next().unwrap();
            // The server sends whole batches from the one holding `start`,
            // cut at the fetch size.
            let mut pos = start - start % batch;
            while pos < total {
                let end = (pos + fetch).min(total);
                for off in pos..end {
                    if off < start {
                        continue; // the client filters below its start
                    }
                    match t.check(off) {
                        Verdict::Take => got.push(off),
                        Verdict::Duplicate => {}
                        Verdict::Gap { fresh, .. } => {
                            gaps += 1;
                            if fresh {
                                fetch *= 2;
                                boosts += 1;
                            }
                            continue 'open;
                        }
                    }
                }
                // The bug: the rest of the batch cut by the fetch is lost.
                let cut = end % batch;
                pos = if cut == 0 { end } else { end - cut + batch };
            }
            // The stream delivered nothing more: a stall. Fresh means the
            // fetch is too small to reach the next offset.
            if t.next().unwrap() < total && t.fresh() {
                fetch *= 2;
                boosts += 1;
            }
        }
        assert_eq!(got, (0..total).collect::<Vec<_>>());
        assert!(gaps > 10, "the simulation must produce gaps: {gaps}");
        assert!(
            boosts >= 3 && fetch >= batch,
            "{boosts} boosts, fetch {fetch}"
        );
    }
}
