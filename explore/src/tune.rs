//! TTL tuning: sweep the lock TTL (with the watchdog on or off, under one or more retry
//! policies) over many seeds of a scenario and measure, for each setting, how often the lock
//! breaks, how long it stays unavailable after its holder dies, what acquiring costs, how
//! often clients give up, and how much work gets through.

use crate::case::{materialize, strategy, tree};
/// The sweep's results (plain data, defined in [`checker::tune`] so that rendering them needs
/// no simulator).
pub use checker::tune::{Recommendation, Setting, TunePoint, TuneReport};
use checker::{check, Event, Outcome, Property, Record};
use lock_core::RetryPolicy;
use scenario::Scenario;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use thiserror::Error;

/// What to sweep.
#[derive(Debug, Clone)]
pub struct TuneConfig {
    /// The TTLs to try, in milliseconds.
    pub ttls_ms: Vec<u64>,
    /// The watchdog settings to try.
    pub watchdog: Vec<bool>,
    /// The retry policies to try (the scenario's own recipe has one; sweep several to see
    /// what backoff costs in latency and gives up in availability).
    pub retries: Vec<RetryPolicy>,
    /// Seeds per setting (each draws from the scenario's fault space, when it has one).
    pub seeds: u64,
    /// Worker threads (clamped by [`crate::clamp_jobs`]).
    pub jobs: usize,
}

/// A sweep that cannot run.
#[derive(Debug, Error, PartialEq)]
pub enum TuneError {
    /// No TTL, no watchdog setting or no retry policy to try.
    #[error("{0}: the sweep range is empty")]
    EmptySweep(&'static str),
    /// A TTL of zero.
    #[error("--ttl-ms: a TTL of 0 ms cannot be swept (every lock would expire at once)")]
    ZeroTtl,
    /// No seeds.
    #[error("--seeds must be at least 1")]
    NoSeeds,
    /// No threads.
    #[error("--jobs must be at least 1")]
    NoJobs,
    /// A setting the recipe refuses.
    #[error("ttl {ttl_ms} ms, retry {retry}: {reason}")]
    BadRecipe {
        /// The TTL of the refused setting.
        ttl_ms: u64,
        /// Its retry policy.
        retry: RetryPolicy,
        /// What the recipe check said, naming the field.
        reason: String,
    },
}

#[derive(Default)]
struct Tally {
    me: u64,
    unsafe_writes: u64,
    unavailable: Vec<u64>,
    acquire: Vec<u64>,
    acquisitions: u64,
    gave_up: u64,
    sections: u64,
    inconclusive: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.me += other.me;
        self.unsafe_writes += other.unsafe_writes;
        self.unavailable.extend(other.unavailable);
        self.acquire.extend(other.acquire);
        self.acquisitions += other.acquisitions;
        self.gave_up += other.gave_up;
        self.sections += other.sections;
        self.inconclusive += other.inconclusive;
    }
}

/// Sweeps `base` over `config`; `progress` is told how many runs finished.
pub fn tune(
    base: &Scenario,
    config: &TuneConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TuneReport, TuneError> {
    if config.ttls_ms.is_empty() {
        return Err(TuneError::EmptySweep("--ttl-ms"));
    }
    if config.watchdog.is_empty() {
        return Err(TuneError::EmptySweep("--watchdog"));
    }
    if config.retries.is_empty() {
        return Err(TuneError::EmptySweep("--retry"));
    }
    if config.ttls_ms.contains(&0) {
        return Err(TuneError::ZeroTtl);
    }
    if config.seeds == 0 {
        return Err(TuneError::NoSeeds);
    }
    if config.jobs == 0 {
        return Err(TuneError::NoJobs);
    }
    let mut ttls = config.ttls_ms.clone();
    ttls.sort_unstable();
    ttls.dedup();
    let settings: Vec<Setting> = config
        .watchdog
        .iter()
        .flat_map(|&watchdog| {
            config.retries.iter().map(move |retry| Setting {
                watchdog,
                retry: retry.clone(),
            })
        })
        .collect();
    // Refuse the whole sweep before running any of it.
    let mut scenarios = Vec::new();
    for setting in &settings {
        for &ttl in &ttls {
            let mut s = base.clone();
            s.recipe.ttl_ms = Some(ttl);
            s.recipe.watchdog = setting.watchdog;
            s.recipe.retry = setting.retry.clone();
            s.recipe
                .validate(s.topology.lock_instances())
                .map_err(|e| TuneError::BadRecipe {
                    ttl_ms: ttl,
                    retry: setting.retry.clone(),
                    reason: e.to_string(),
                })?;
            scenarios.push((setting, ttl, s));
        }
    }
    let mut points = Vec::new();
    for (setting, ttl, s) in &scenarios {
        points.push(sweep_point(s, *ttl, setting, config, progress));
    }
    let recommended = settings
        .iter()
        .map(|setting| Recommendation {
            setting: setting.clone(),
            ttl_ms: points
                .iter()
                .find(|p| p.setting == *setting && p.safe())
                .map(|p| p.ttl_ms),
        })
        .collect();
    let three_x_rule_ms = 3.0
        * base
            .clients
            .iter()
            .map(|c| c.work_ms.median_ms())
            .fold(0.0, f64::max);
    Ok(TuneReport {
        scenario: base.name.clone(),
        points,
        three_x_rule_ms,
        recommended,
    })
}

fn sweep_point(
    s: &Scenario,
    ttl_ms: u64,
    setting: &Setting,
    config: &TuneConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> TunePoint {
    let next = AtomicU64::new(0);
    let total = Mutex::new(Tally::default());
    std::thread::scope(|scope| {
        for _ in 0..crate::clamp_jobs(config.jobs, config.seeds) {
            scope.spawn(|| {
                let strategy = s
                    .fault_space
                    .as_ref()
                    .map(|space| (space, strategy(space, s.clients.len())));
                let mut mine = Tally::default();
                // Handed out up to `seeds` and no further, so the counter cannot wrap.
                while let Ok(seed) = next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| {
                    (i < config.seeds).then_some(i + 1)
                }) {
                    let scenario = match &strategy {
                        Some((space, st)) => materialize(s, space, &tree(st, seed).current()),
                        None => s.clone(),
                    };
                    let run = sim::run(&scenario, seed);
                    let verdict = check(&run.records, &scenario.checker);
                    mine.me +=
                        (verdict.outcome(Property::MutualExclusion) == Outcome::Violated) as u64;
                    mine.unsafe_writes +=
                        (verdict.outcome(Property::UnsafeWrites) == Outcome::Violated) as u64;
                    mine.inconclusive += (!verdict.is_conclusive()) as u64;
                    measure(&run.records, &mut mine);
                    progress(1);
                }
                total.lock().unwrap_or_else(|e| e.into_inner()).add(mine);
            });
        }
    });
    let mut t = total.into_inner().unwrap_or_else(|e| e.into_inner());
    let duration_s = s.duration_ms as f64 / 1000.0 * config.seeds as f64;
    TunePoint {
        ttl_ms,
        setting: setting.clone(),
        seeds: config.seeds,
        mutual_exclusion_violations: t.me,
        unsafe_write_violations: t.unsafe_writes,
        unavailable_ms: percentiles(&mut t.unavailable, 0.5, 1.0),
        acquire_ms: percentiles(&mut t.acquire, 0.5, 0.99),
        acquisitions: t.acquisitions,
        gave_up: t.gave_up,
        throughput_per_s: t.sections as f64 / duration_s.max(1e-9),
        inconclusive: t.inconclusive,
    }
}

/// Two percentiles of microsecond samples, in milliseconds.
fn percentiles(xs: &mut [u64], a: f64, b: f64) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_unstable();
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    Some((at(a), at(b)))
}

/// Acquire latencies, sections, and unavailability after holder crashes, from one history.
fn measure(records: &[Record], t: &mut Tally) {
    let mut started: BTreeMap<&str, u64> = BTreeMap::new();
    let mut holding: BTreeMap<&str, bool> = BTreeMap::new();
    let mut crashed_holder_at: Option<u64> = None;
    let end = records.last().map_or(0, |r| r.t_us);
    for r in records {
        match &r.event {
            Event::AcquireStarted { client } => {
                started.insert(client, r.t_us);
                t.acquisitions += 1;
            }
            Event::AcquireFailed { client, .. } => {
                started.remove(client.as_str());
                t.gave_up += 1;
            }
            Event::Acquired { client, .. } => {
                if let Some(t0) = started.remove(client.as_str()) {
                    t.acquire.push(r.t_us - t0);
                }
                t.sections += 1;
                holding.insert(client, true);
                if let Some(tc) = crashed_holder_at.take() {
                    t.unavailable.push(r.t_us - tc);
                }
            }
            Event::SectionEnded { client, .. } => {
                holding.insert(client, false);
            }
            Event::ClientCrashed { client }
                if holding.get(client.as_str()).copied().unwrap_or(false) =>
            {
                holding.insert(client, false);
                crashed_holder_at.get_or_insert(r.t_us);
            }
            _ => {}
        }
    }
    if let Some(tc) = crashed_holder_at {
        t.unavailable.push(end - tc); // never available again within the run
    }
}
