//! The results of a TTL sweep, as plain data: what each swept setting measured and which
//! TTL is recommended per series.
//!
//! `explore::tune` produces these (it runs the simulator) and `report::sweep` renders them;
//! they live here, below both, so that rendering a sweep does not need the simulator.

use lock_core::RetryPolicy;

/// The measurements of one setting.
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Whether the watchdog extended the lock.
    pub watchdog: bool,
    /// The retry policy the clients used.
    pub retry: RetryPolicy,
}

/// The smallest safe TTL of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// The series.
    pub setting: Setting,
    /// The smallest swept TTL no seed broke (`None`: every TTL broke).
    pub ttl_ms: Option<u64>,
}

/// A whole sweep and its recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneReport {
    /// The scenario swept.
    pub scenario: String,
    /// One point per (watchdog, retry policy, TTL), in that order, TTLs ascending.
    pub points: Vec<TunePoint>,
    /// The rule of thumb: 3 × the longest median work time, in ms.
    pub three_x_rule_ms: f64,
    /// Per series (watchdog × retry policy, in sweep order), the smallest safe TTL.
    pub recommended: Vec<Recommendation>,
}
