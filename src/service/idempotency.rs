//! Idempotency keys of `POST /v1/complaints`: a client that got no answer
//! (a timeout, a crash of the service, a cut connection) cannot know whether
//! its lines were journaled. With `Idempotency-Key: K` it can simply send
//! the same body again: a key seen within the horizon gets the first answer
//! back, and the lines are not processed a second time.
//!
//! The keys live with the engine state, not beside it: a key is recorded in
//! the journal entry of its batch (with the wall-clock time it was first
//! seen), re-recorded when the journal is re-run after a crash, and saved in
//! every checkpoint. So a key survives `kill -9` and restarts exactly as the
//! counts do. Keys expire after the horizon (`idempotency_horizon`, 24 h by
//! default); at most [`MAX_KEYS`] are kept, the oldest forgotten first, so a
//! client that sends a new key with every request cannot grow memory
//! without bound.
//!
//! The same key with a different body is a client error (422), as in the
//! IETF draft "The Idempotency-Key HTTP Header Field".

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::pipeline::BatchReport;

/// Keys kept at most; past this the oldest is forgotten early.
pub const MAX_KEYS: usize = 100_000;

/// The longest key accepted (bytes of visible ASCII).
pub const MAX_KEY_LEN: usize = 255;

/// Whether `key` is an acceptable key: 1 to [`MAX_KEY_LEN`] visible ASCII
/// characters (a header value a proxy will not mangle).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

/// One key: when it was first seen, its body's hash and the answer given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub key: String,
    /// Epoch milliseconds, wall clock, when the batch was journaled.
    pub at: i64,
    /// xxh3-64 of the body.
    pub body: u64,
    pub report: BatchReport,
}

/// What to do with a keyed batch.
pub enum Check<'a> {
    /// Not seen: process it.
    New,
    /// Seen with the same body: answer this again.
    Replay(&'a BatchReport),
    /// Seen with another body.
    Conflict,
}

/// The keys seen within the horizon, oldest first.
#[derive(Debug, Default)]
pub struct Keys {
    horizon_ms: i64,
    map: HashMap<String, usize>,
    /// Keys in insertion order; `map` holds `index - base` positions.
    order: VecDeque<Seen>,
    base: usize,
}

impl Keys {
    pub fn new(horizon_ms: i64) -> Keys {
        Keys {
            horizon_ms,
            ..Keys::default()
        }
    }

    pub fn body_hash(body: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64(body)
    }

    pub fn check(&self, key: &str, body: u64) -> Check<'_> {
        match self.map.get(key) {
            None => Check::New,
            Some(&i) => {
                let seen = &self.order[i - self.base];
                if seen.body == body {
                    Check::Replay(&seen.report)
                } else {
                    Check::Conflict
                }
            }
        }
    }

    /// Records a processed batch's key and answer.
    pub fn insert(&mut self, seen: Seen) {
        if self.map.contains_key(&seen.key) {
            return;
        }
        while self.order.len() >= MAX_KEYS {
            self.pop_oldest();
        }
        self.map
            .insert(seen.key.clone(), self.base + self.order.len());
        self.order.push_back(seen);
    }

    /// Forgets the keys first seen more than the horizon before `now_ms`.
    pub fn expire(&mut self, now_ms: i64) {
        while self
            .order
            .front()
            .is_some_and(|s| s.at < now_ms - self.horizon_ms)
        {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(s) = self.order.pop_front() {
            self.map.remove(&s.key);
            self.base += 1;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }

    /// The keys, oldest first, for a checkpoint.
    pub fn export(&self) -> Vec<Seen> {
        self.order.iter().cloned().collect()
    }

    /// Replaces the keys with a checkpoint's.
    pub fn restore(&mut self, saved: Vec<Seen>) {
        let horizon_ms = self.horizon_ms;
        *self = Keys::new(horizon_ms);
        for s in saved {
            self.insert(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(key: &str, at: i64, accepted: u64) -> Seen {
        Seen {
            key: key.into(),
            at,
            body: Keys::body_hash(key.as_bytes()),
            report: BatchReport {
                accepted,
                ..BatchReport::default()
            },
        }
    }

    #[test]
    fn replay_conflict_expiry_and_restore() {
        let mut k = Keys::new(1000);
        k.insert(seen("a", 0, 1));
        k.insert(seen("b", 500, 2));
        assert!(matches!(k.check("a", Keys::body_hash(b"a")), Check::Replay(r) if r.accepted == 1));
        assert!(matches!(
            k.check("a", Keys::body_hash(b"other")),
            Check::Conflict
        ));
        assert!(matches!(k.check("c", 0), Check::New));
        k.expire(1200);
        assert!(
            matches!(k.check("a", Keys::body_hash(b"a")), Check::New),
            "expired"
        );
        assert!(matches!(
            k.check("b", Keys::body_hash(b"b")),
            Check::Replay(_)
        ));
        let saved = k.export();
        let mut r = Keys::new(1000);
        r.restore(saved);
        assert_eq!(r.export(), k.export());
        assert!(matches!(r.check("b", Keys::body_hash(b"b")), Check::Replay(r) if r.accepted == 2));
    }

    #[test]
    fn bounded() {
        let mut k = Keys::new(i64::MAX / 2);
        for i in 0..MAX_KEYS + 10 {
            k.insert(seen(&i.to_string(), 0, 0));
        }
        assert_eq!(k.len(), MAX_KEYS);
        assert!(matches!(k.check("0", Keys::body_hash(b"0")), Check::New));
        let last = (MAX_KEYS + 9).to_string();
        assert!(matches!(
            k.check(&last, Keys::body_hash(last.as_bytes())),
            Check::Replay(_)
        ));
    }

    #[test]
    fn key_syntax() {
        assert!(valid_key("550e8400-e29b-41d4-a716-446655440000"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key("杭州"));
        assert!(!valid_key(&"x".repeat(256)));
    }
}
