//! The results of a TTL sweep, as plain data: what each swept setting measured, with the
//! break rates' confidence intervals, and which TTL is recommended per series.
//!
//! `explore::tune` produces these (it runs the simulator) and `report::sweep` renders them;
//! they live here, below both, so that rendering a sweep does not need the simulator. They
//! serialize as `locksim tune --json` prints them.

use lock_core::RetryPolicy;
use serde::Serialize;

/// How every [`Rate`]'s interval is computed, as the reports name it.
pub const INTERVAL_METHOD: &str = "Wilson score interval, 95 % two-sided";

/// The z value of a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// A proportion estimated from independent trials, with its 95 % confidence interval
/// ([`INTERVAL_METHOD`]). With no hit in `trials`, `high` is about 3.8 / `trials` (for large
/// `trials`), not 0: zero failures seen bounds the rate, it does not prove it zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// Trials that failed (broke the lock).
    pub hits: u64,
    /// Trials run.
    pub trials: u64,
    /// The interval's lower bound, in [0, 1].
    pub low: f64,
    /// The interval's upper bound, in [0, 1] (1 when there were no trials).
    pub high: f64,
}

impl Rate {
    /// `hits` of `trials`, with its Wilson score interval.
    pub fn wilson(hits: u64, trials: u64) -> Rate {
        if trials == 0 {
            return Rate {
                hits,
                trials,
                low: 0.0,
                high: 1.0,
            };
        }
        let n = trials as f64;
        let p = (hits.min(trials)) as f64 / n;
        let z2 = Z95 * Z95;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
        Rate {
            hits,
            trials,
            // Exact at the ends: no hit has no lower bound above 0, all hits none below 1.
            low: if hits == 0 {
                0.0
            } else {
                (centre - half).max(0.0)
            },
            high: if hits >= trials {
                1.0
            } else {
                (centre + half).min(1.0)
            },
        }
    }

    /// The point estimate, `hits / trials` (0 with no trials).
    pub fn estimate(&self) -> f64 {
        if self.trials == 0 {
            0.0
        } else {
            self.hits as f64 / self.trials as f64
        }
    }
}

/// What a setting's seeds decided against the risk target (`--max-risk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The per-section rate's upper bound is at or below the target.
    Safe,
    /// The per-section rate's lower bound is above the target.
    Broken,
    /// The seed budget ran out with the target inside the interval.
    Undecided,
}

/// The measurements of one setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TunePoint {
    /// The TTL, in milliseconds.
    pub ttl_ms: u64,
    /// The series: watchdog and retry policy.
    pub setting: Setting,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds in which two clients held the lock at once.
    pub mutual_exclusion_violations: u64,
    /// Seeds in which the resource accepted a stale write.
    pub unsafe_write_violations: u64,
    /// After a holder crashed: how long until anyone held the lock again (ms), median and
    /// worst; `None` when no holder crashed.
    pub unavailable_ms: Option<(f64, f64)>,
    /// Acquire latency (start of the acquisition to the grant), median and p99, in ms.
    pub acquire_ms: Option<(f64, f64)>,
    /// Acquisitions started, over all seeds.
    pub acquisitions: u64,
    /// Acquisitions that gave up (the retry policy's attempts ran out).
    pub gave_up: u64,
    /// Critical sections per simulated second.
    pub throughput_per_s: f64,
    /// Seeds whose run was inconclusive (cut short by the simulator's event budget, or an
    /// `after` condition never seen): what held there is not proven.
    pub inconclusive: u64,
    /// Seeds in which mutual exclusion broke or a stale write got through, of the conclusive
    /// seeds.
    pub per_seed: Rate,
    /// Critical sections that broke (overlapped another holder's, or had a stale write
    /// accepted), of the critical sections run in the conclusive seeds.
    pub per_section: Rate,
    /// The setting's verdict against `--max-risk`, when one was given.
    pub decision: Option<Decision>,
    /// Whether the TTL was tried by bisection rather than given in `--ttl-ms`.
    pub bisected: bool,
}

impl TunePoint {
    /// Whether every seed was conclusive and none broke mutual exclusion or let a stale
    /// write through.
    pub fn safe(&self) -> bool {
        self.mutual_exclusion_violations == 0
            && self.unsafe_write_violations == 0
            && self.inconclusive == 0
    }
}

/// One series of the sweep: everything but the TTL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    /// Whether the watchdog extended the lock.
    pub watchdog: bool,
    /// The retry policy the clients used.
    pub retry: RetryPolicy,
}

/// The smallest safe TTL of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// The series.
    pub setting: Setting,
    /// Without `--max-risk`: the smallest swept TTL no seed broke. With it: the smallest TTL
    /// decided [`Decision::Safe`], found by bisection to `resolution_ms`. `None`: none was.
    pub ttl_ms: Option<u64>,
    /// Seeds run for this series, over every TTL tried.
    pub seeds_spent: u64,
    /// TTLs of this series the seed budget could not decide ([`Decision::Undecided`]).
    pub undecided_ttls_ms: Vec<u64>,
}

/// A whole sweep and its recommendation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuneReport {
    /// The scenario swept.
    pub scenario: String,
    /// One point per (watchdog, retry policy, TTL), in that order, TTLs ascending.
    pub points: Vec<TunePoint>,
    /// The rule of thumb: 3 × the longest median work time, in ms.
    pub three_x_rule_ms: f64,
    /// Per series (watchdog × retry policy, in sweep order), the smallest safe TTL.
    pub recommended: Vec<Recommendation>,
    /// How the rates' intervals were computed ([`INTERVAL_METHOD`]).
    pub interval_method: String,
    /// The risk target per critical section (`--max-risk`), if any.
    pub max_risk: Option<f64>,
    /// How finely bisection placed the recommended TTL (`--resolution-ms`), if it ran.
    pub resolution_ms: Option<u64>,
    /// Acquisitions per second in production (`--rate-per-s`), for violations per day.
    pub rate_per_s: Option<f64>,
}

impl TunePoint {
    /// Expected violations per day at `rate_per_s` critical sections per second: the
    /// per-section rate's estimate and its upper bound, times the day's sections.
    pub fn violations_per_day(&self, rate_per_s: f64) -> (f64, f64) {
        let sections = rate_per_s * 86_400.0;
        (
            self.per_section.estimate() * sections,
            self.per_section.high * sections,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_in_two_hundred_bounds_the_rate_near_the_rule_of_three() {
        let r = Rate::wilson(0, 200);
        assert_eq!(r.low, 0.0);
        // The rule of three gives 1.5 %; Wilson's bound for 0/200 is 1.88 %.
        assert!((r.high - 0.018_8).abs() < 0.000_5, "{}", r.high);
    }

    #[test]
    fn the_interval_contains_the_estimate_and_narrows_with_trials() {
        let small = Rate::wilson(5, 50);
        let large = Rate::wilson(500, 5_000);
        for r in [small, large] {
            assert!(r.low < r.estimate() && r.estimate() < r.high);
        }
        assert!(large.high - large.low < small.high - small.low);
        // Known value: 5/50 → [0.0435, 0.2136] (Wilson, z = 1.96).
        assert!((small.low - 0.043_5).abs() < 0.000_5 && (small.high - 0.213_6).abs() < 0.000_5);
        assert_eq!(Rate::wilson(0, 0).high, 1.0);
    }
}
