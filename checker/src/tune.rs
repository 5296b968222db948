//! The results of a TTL sweep, as plain data: what each swept setting measured, with the
//! break rates' confidence intervals, and which TTL is recommended per series.
//!
//! `explore::tune` produces these (it runs the simulator) and `report::sweep` renders them;
//! they live here, below both, so that rendering a sweep does not need the simulator. They
//! serialize as `locksim tune --json` prints them.

use lock_core::RetryPolicy;
use serde::Serialize;

/// How every [`Rate`]'s interval is computed, as the reports name it.
pub const INTERVAL_METHOD: &str = "Wilson score interval, 95 % two-sided; per critical \
    section, sections of one seed are not taken as independent (one long pause breaks \
    several): the interval is as wide as if each seed's sections all broke or held together";

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
        let (low, high) = wilson_bounds(hits.min(trials) as f64 / trials as f64, trials as f64);
        Rate {
            hits,
            trials,
            // Exact at the ends: no hit has no lower bound above 0, all hits none below 1.
            low: if hits == 0 { 0.0 } else { low },
            high: if hits >= trials { 1.0 } else { high },
        }
    }

    /// The rate of hits per trial over independent clusters (seeds) of trials that need not
    /// be independent within a cluster (critical sections of one seed). The interval is the
    /// widest of:
    /// - the Wilson interval of all hits over all trials (as if sections were independent);
    /// - the Wilson interval of the same rate with the clusters as the trials — what it would
    ///   be if each seed's sections all broke or all held together (the largest design effect
    ///   there can be), which is what can be defended when nothing says how breaks cluster,
    ///   and in particular when no break was seen at all;
    /// - with hits in two clusters or more, the cluster-robust normal interval of the ratio
    ///   estimator (`r ± z·se`, `se² = m/(m−1) · Σ(hᵢ − r·nᵢ)² / N²`).
    ///
    /// So it narrows as seeds are added, not as sections per seed are.
    pub fn clustered(sums: &ClusterSums) -> Rate {
        let wilson = Rate::wilson(sums.hits, sums.trials);
        if sums.clusters == 0 || sums.trials == 0 {
            return wilson;
        }
        let (m, n) = (sums.clusters as f64, sums.trials as f64);
        let r = sums.hits as f64 / n;
        let (seed_low, seed_high) = wilson_bounds(r, m);
        let mut low = wilson.low.min(seed_low);
        let mut high = wilson.high.max(seed_high);
        if sums.clusters >= 2 && sums.hits > 0 {
            let spread = sums.hh as f64 - 2.0 * r * sums.hn as f64 + r * r * sums.nn as f64;
            let se = (m / (m - 1.0) * spread.max(0.0)).sqrt() / n;
            low = low.min((r - Z95 * se).max(0.0));
            high = high.max((r + Z95 * se).min(1.0));
        }
        Rate {
            low: if sums.hits == 0 { 0.0 } else { low },
            high: if sums.hits >= sums.trials { 1.0 } else { high },
            ..wilson
        }
    }

    /// The verdict against a risk target: [`Decision::Safe`] when the upper bound is at or
    /// below `max_risk`, [`Decision::Broken`] when the lower bound is above it, else
    /// [`Decision::Undecided`] (more trials would narrow the interval).
    pub fn decide(&self, max_risk: f64) -> Decision {
        if self.high <= max_risk {
            Decision::Safe
        } else if self.low > max_risk {
            Decision::Broken
        } else {
            Decision::Undecided
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

/// The Wilson score interval of a proportion `p` observed over `n` trials, at 95 %.
fn wilson_bounds(p: f64, n: f64) -> (f64, f64) {
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Hits and trials summed over clusters (seeds), with the exact integer sums of squares
/// [`Rate::clustered`] needs: the same whatever order the clusters were added in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterSums {
    /// Clusters added.
    pub clusters: u64,
    /// Hits, over all clusters.
    pub hits: u64,
    /// Trials, over all clusters.
    pub trials: u64,
    /// Σ hitsᵢ².
    pub hh: u128,
    /// Σ hitsᵢ·trialsᵢ.
    pub hn: u128,
    /// Σ trialsᵢ².
    pub nn: u128,
}

impl ClusterSums {
    /// Adds one cluster of `trials` trials, `hits` of which failed.
    pub fn add(&mut self, hits: u64, trials: u64) {
        let (h, n) = (hits as u128, trials as u128);
        self.clusters += 1;
        self.hits += hits;
        self.trials += trials;
        self.hh += h * h;
        self.hn += h * n;
        self.nn += n * n;
    }

    /// Adds every cluster of `other`.
    pub fn merge(&mut self, other: &ClusterSums) {
        self.clusters += other.clusters;
        self.hits += other.hits;
        self.trials += other.trials;
        self.hh += other.hh;
        self.hn += other.hn;
        self.nn += other.nn;
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
    /// The seed budget ran out with the target inside the interval, or seeds that could not
    /// be judged (inconclusive) stand in the way of calling it safe.
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
    /// Seeds in which mutual exclusion broke or a stale write got through (either property
    /// judged violated), of the conclusive seeds.
    pub per_seed: Rate,
    /// Critical sections that broke, of the critical sections run in the conclusive seeds
    /// ([`crate::count_sections`]): a section is one client's grant, from `Acquired` to its
    /// `SectionEnded` (or crash, or the run's end); it broke when it overlapped another
    /// client's section (both count) or the resource accepted a write under its grant after
    /// one under a newer grant. Sections of one seed are not independent (one long pause
    /// breaks several), so the interval is [`Rate::clustered`] over seeds.
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

    #[test]
    fn a_rate_is_decided_only_when_its_interval_clears_the_target() {
        assert_eq!(Rate::wilson(0, 10_000).decide(1e-3), Decision::Safe);
        assert_eq!(Rate::wilson(50, 1_000).decide(1e-3), Decision::Broken);
        assert_eq!(Rate::wilson(0, 100).decide(1e-3), Decision::Undecided);
    }

    #[test]
    fn the_per_section_interval_narrows_with_seeds_not_sections_and_grows_with_hits() {
        // 1000 seeds of 50 sections, 20 broken sections in all.
        let mut bunched = ClusterSums::default();
        let mut spread = ClusterSums::default();
        for i in 0..1000 {
            bunched.add(if i < 2 { 10 } else { 0 }, 50);
            spread.add(if i < 20 { 1 } else { 0 }, 50);
        }
        let wilson = Rate::wilson(20, 50_000);
        let (b, s) = (Rate::clustered(&bunched), Rate::clustered(&spread));
        assert_eq!((b.hits, b.trials), (20, 50_000));
        assert!(b.high > 1.5 * wilson.high, "{b:?} vs {wilson:?}");
        assert!(
            s.high > wilson.high && b.high >= s.high,
            "{b:?} {s:?} vs {wilson:?}"
        );
        // No break in 2 seeds of 50 sections bounds the rate as 2 trials would, not 100.
        let mut none = ClusterSums::default();
        none.add(0, 50);
        none.add(0, 50);
        let c = Rate::clustered(&none);
        assert_eq!((c.hits, c.trials, c.low), (0, 100, 0.0));
        assert!((c.high - Rate::wilson(0, 2).high).abs() < 1e-12, "{c:?}");
        // The bound does not shrink when a break is seen (it is monotone in the hits).
        let mut zero = ClusterSums::default();
        let mut one = ClusterSums::default();
        for i in 0..5_000 {
            zero.add(0, 20);
            one.add(if i == 0 { 2 } else { 0 }, 20);
        }
        let (z, o) = (Rate::clustered(&zero), Rate::clustered(&one));
        assert!(o.high >= z.high, "{o:?} < {z:?}");
        assert!((z.high - Rate::wilson(0, 5_000).high).abs() < 1e-12);
    }
}
