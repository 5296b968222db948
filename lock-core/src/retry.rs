//! Retry policy: exponential backoff with jitter and an optional attempt limit.

use crate::{Micros, MICROS_PER_MS};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use thiserror::Error;

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

/// A retry policy written as text could not be read (see [`RetryPolicy`]'s `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("retry policy `{spec}`: {reason}")]
pub struct RetrySpecError {
    /// The text as given.
    pub spec: String,
    /// What was wrong with it, naming the field.
    pub reason: String,
}

/// Reads `max=5,base=50,cap=1000,jitter=1` (the form [`Display`](std::fmt::Display) writes):
/// `max` is the attempt limit or `forever`, `base` and `cap` are milliseconds, `jitter` a
/// fraction. Fields left out take [`RetryPolicy::default`]'s values; `none` means a single
/// attempt. Bounds (cap ≥ base, jitter range) are checked by [`crate::Recipe::validate`].
impl std::str::FromStr for RetryPolicy {
    type Err = RetrySpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| RetrySpecError {
            spec: spec.to_string(),
            reason,
        };
        let mut p = RetryPolicy::default();
        if spec.trim() == "none" {
            p.max_attempts = Some(1);
            return Ok(p);
        }
        let mut seen = Vec::new();
        for part in spec.split(',').map(str::trim) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(err(format!(
                    "`{part}` is not key=value (keys: max, base, cap, jitter)"
                )));
            };
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(err(format!("`{key}` is given twice")));
            }
            seen.push(key);
            let number = |what: &str| {
                value
                    .parse::<u64>()
                    .map_err(|_| err(format!("{key}: `{value}` is not {what}")))
            };
            match key {
                "max" if value == "forever" => p.max_attempts = None,
                "max" => {
                    let n = number("a whole number of attempts or `forever`")?;
                    p.max_attempts = Some(u32::try_from(n).map_err(|_| {
                        err(format!("max: {n} attempts is more than {}", u32::MAX))
                    })?);
                }
                "base" => p.base_ms = number("a whole number of milliseconds")?,
                "cap" => p.cap_ms = number("a whole number of milliseconds")?,
                "jitter" => {
                    p.jitter = value
                        .parse::<f64>()
                        .ok()
                        .filter(|j| j.is_finite())
                        .ok_or_else(|| err(format!("jitter: `{value}` is not a number")))?
                }
                _ => {
                    return Err(err(format!(
                        "unknown key `{key}` (keys: max, base, cap, jitter)"
                    )))
                }
            }
        }
        Ok(p)
    }
}

/// Writes the policy in the form `FromStr` reads, e.g. `max=5,base=50,cap=1000,jitter=1`.
impl std::fmt::Display for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.max_attempts {
            Some(n) => write!(f, "max={n}")?,
            None => write!(f, "max=forever")?,
        }
        write!(
            f,
            ",base={},cap={},jitter={}",
            self.base_ms, self.cap_ms, self.jitter
        )
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

    #[test]
    fn text_form_round_trips_and_defaults_missing_fields() {
        let p: RetryPolicy = "max=forever,base=20,cap=200,jitter=0.5".parse().unwrap();
        assert_eq!(
            p,
            RetryPolicy {
                max_attempts: None,
                base_ms: 20,
                cap_ms: 200,
                jitter: 0.5
            }
        );
        assert_eq!(p.to_string().parse::<RetryPolicy>().unwrap(), p);
        let q: RetryPolicy = "cap=300".parse().unwrap();
        assert_eq!(q.cap_ms, 300);
        assert_eq!(q.base_ms, RetryPolicy::default().base_ms);
        assert_eq!("none".parse::<RetryPolicy>().unwrap().max_attempts, Some(1));
    }

    #[test]
    fn bad_text_names_the_field() {
        for (spec, needle) in [
            ("max=lots", "max: `lots`"),
            ("base=-1", "base: `-1`"),
            ("jitter=NaN", "jitter: `NaN`"),
            ("cap", "`cap` is not key=value"),
            ("speed=3", "unknown key `speed`"),
            ("max=3,max=4", "`max` is given twice"),
            ("max=99999999999", "more than"),
        ] {
            let e = spec.parse::<RetryPolicy>().unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
            assert!(e.starts_with(&format!("retry policy `{spec}`")), "{e}");
        }
    }
}
