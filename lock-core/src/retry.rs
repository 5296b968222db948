//! Retry policy: exponential backoff with jitter and an optional attempt limit.

use crate::{Micros, MICROS_PER_MS};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};

/// How a failed acquisition attempt is retried.
///
/// Attempt `n` (1-based) that fails waits `min(cap, base · 2^(n-1))` plus a random extra of up
/// to `jitter` times that delay before attempt `n + 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; `null` retries forever (a pitfall).
    pub max_attempts: Option<u32>,
    /// Delay after the first failed attempt, in milliseconds.
    pub base_ms: u64,
    /// Largest delay between attempts, in milliseconds.
    pub cap_ms: u64,
    /// Random extra delay as a fraction of the backoff (0 = none, 1 = up to the backoff again).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: Some(5),
            base_ms: 50,
            cap_ms: 1_000,
            jitter: 1.0,
        }
    }
}

impl RetryPolicy {
    /// Whether another attempt may follow attempt number `attempt` (1-based).
    pub fn may_retry(&self, attempt: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempt < max)
    }

    /// The delay before the attempt after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32, rng: &mut dyn RngCore) -> Micros {
        let exp = attempt.saturating_sub(1).min(30);
        let backoff_ms = self.base_ms.saturating_mul(1u64 << exp).min(self.cap_ms);
        let backoff = backoff_ms.saturating_mul(MICROS_PER_MS);
        let extra_max = (backoff as f64 * self.jitter.max(0.0)) as u64;
        let extra = if extra_max == 0 {
            0
        } else {
            rng.next_u64() % (extra_max + 1)
        };
        backoff + extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn backoff_doubles_up_to_the_cap_without_jitter() {
        let p = RetryPolicy {
            max_attempts: Some(10),
            base_ms: 50,
            cap_ms: 300,
            jitter: 0.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let delays: Vec<u64> = (1..=5).map(|a| p.delay(a, &mut rng) / 1000).collect();
        assert_eq!(delays, vec![50, 100, 200, 300, 300]);
    }

    #[test]
    fn jitter_stays_within_one_backoff() {
        let p = RetryPolicy::default();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for attempt in 1..6 {
            let d = p.delay(attempt, &mut rng);
            let backoff = (50u64 << (attempt - 1)).min(1000) * 1000;
            assert!(d >= backoff && d <= 2 * backoff, "attempt {attempt}: {d}");
        }
    }

    #[test]
    fn attempt_limit() {
        let p = RetryPolicy::default();
        assert!(p.may_retry(4));
        assert!(!p.may_retry(5));
        let unlimited = RetryPolicy {
            max_attempts: None,
            ..p
        };
        assert!(unlimited.may_retry(1_000_000));
    }
}
