//! How a failed attempt is retried: exponential backoff with full jitter,
//! capped, and a limit on one attempt. Shared by the sinks (the delivery
//! tasks, the Fluvio dead-letter producer) and the Fluvio source; a leaf.

use std::time::Duration;

use rand::Rng;

/// How a sink (or a source) retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First wait after a failure.
    pub initial: Duration,
    /// Longest wait between attempts.
    pub max: Duration,
    /// Limit of one attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based): exponential,
    /// capped, with full jitter in [half, whole].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        let ms = base.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
        };
        for attempt in 0..40 {
            let b = p.backoff(attempt);
            let full = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_secs(2));
            assert!(
                b <= full && b >= full / 2,
                "attempt {attempt}: {b:?} vs {full:?}"
            );
        }
    }
}
