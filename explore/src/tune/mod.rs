//! TTL tuning: sweep the lock TTL (with the watchdog on or off, under one or more retry
//! policies) over many seeds of a scenario and measure, for each setting, how often the lock
//! breaks, how long it stays unavailable after its holder dies, what acquiring costs, how
//! often clients give up, and how much work gets through.
//!
//! With a risk target (`max_risk`, per critical section) each setting runs seeds in doubling
//! batches until its break rate's 95 % interval lies wholly below the target (safe) or above
//! it (broken), or the seed budget runs out (undecided); then, per series, the TTL between
//! the last unsafe swept TTL and the first safe one is bisected to `resolution_ms`.
//!
//! The per-section interval ([`Rate::clustered`]) is as wide as if each seed's sections all
//! broke or held together, since one long pause breaks several: it narrows with seeds, not
//! with sections, so a safe decision never rests on sections of one seed counted as
//! independent trials, with or without breaks seen. What the decisions do not correct for:
//! each look at a doubling batch (and each TTL) is a fresh 95 % interval, not adjusted for
//! the repeated looks, so the chance that some decision of a sweep is wrong is above 5 %.
//! Every TTL draws the same seeds,
//! 0, 1, 2, …, so neighbouring TTLs see the same fault schedules.

mod measure;
mod sample;

use checker::tune::INTERVAL_METHOD;
/// The sweep's results (plain data, defined in [`checker::tune`] so that rendering them needs
/// no simulator).
pub use checker::tune::{Decision, Rate, Recommendation, Setting, TunePoint, TuneReport};
use lock_core::RetryPolicy;
use sample::sample;
pub use sample::FIRST_BATCH;
use scenario::Scenario;
use thiserror::Error;

/// The default `resolution_ms`: bisection stops when the safe and unsafe TTLs are this close.
pub const DEFAULT_RESOLUTION_MS: u64 = 50;

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
    /// Seeds per setting (each draws from the scenario's fault space, when it has one); with
    /// `max_risk`, the most a setting may spend.
    pub seeds: u64,
    /// Worker threads (clamped by [`crate::clamp_jobs`]); results never depend on it.
    pub jobs: usize,
    /// The risk target, per critical section, in (0, 1): sample adaptively, decide each
    /// setting against it, and bisect. `None`: run every seed, recommend the smallest swept
    /// TTL no seed broke.
    pub max_risk: Option<f64>,
    /// With `max_risk`: bisect until the safe and unsafe TTLs are at most this far apart (ms).
    pub resolution_ms: u64,
    /// Acquisitions per second in production, carried into the report for violations per
    /// day.
    pub rate_per_s: Option<f64>,
}

impl TuneConfig {
    /// A sweep of `ttls_ms` over `seeds` seeds with the watchdog off, under `retry`, on one
    /// thread, without a risk target.
    pub fn new(ttls_ms: Vec<u64>, retry: RetryPolicy, seeds: u64) -> TuneConfig {
        TuneConfig {
            ttls_ms,
            watchdog: vec![false],
            retries: vec![retry],
            seeds,
            jobs: 1,
            max_risk: None,
            resolution_ms: DEFAULT_RESOLUTION_MS,
            rate_per_s: None,
        }
    }
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
    /// A risk target that is not a probability strictly between 0 and 1.
    #[error("--max-risk {0}: must be a probability strictly between 0 and 1, e.g. 1e-4")]
    BadRisk(f64),
    /// A bisection resolution of zero.
    #[error("--resolution-ms must be at least 1")]
    ZeroResolution,
    /// An acquisition rate that is negative or not finite.
    #[error("--rate-per-s {0}: must be a finite number of acquisitions per second, 0 or more")]
    BadRate(f64),
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

/// Refuses a sweep that cannot run, before any seed does.
fn validate(config: &TuneConfig) -> Result<(), TuneError> {
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
    if let Some(p) = config.max_risk {
        if !(p > 0.0 && p < 1.0) {
            return Err(TuneError::BadRisk(p));
        }
    }
    if config.resolution_ms == 0 {
        return Err(TuneError::ZeroResolution);
    }
    if let Some(r) = config.rate_per_s {
        if !(r >= 0.0 && r.is_finite()) {
            return Err(TuneError::BadRate(r));
        }
    }
    Ok(())
}

/// `base` with `setting` and `ttl_ms` applied, if the recipe accepts them.
fn at_setting(base: &Scenario, setting: &Setting, ttl_ms: u64) -> Result<Scenario, TuneError> {
    let mut s = base.clone();
    s.recipe.ttl_ms = Some(ttl_ms);
    s.recipe.watchdog = setting.watchdog;
    s.recipe.retry = setting.retry.clone();
    s.recipe
        .validate(s.topology.lock_instances())
        .map_err(|e| TuneError::BadRecipe {
            ttl_ms,
            retry: setting.retry.clone(),
            reason: e.to_string(),
        })?;
    Ok(s)
}

/// Sweeps `base` over `config`; `progress` is told how many runs finished.
pub fn tune(
    base: &Scenario,
    config: &TuneConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TuneReport, TuneError> {
    validate(config)?;
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
        let series: Result<Vec<_>, _> = ttls
            .iter()
            .map(|&ttl| Ok((ttl, at_setting(base, setting, ttl)?)))
            .collect();
        scenarios.push((setting, series?));
    }
    let mut points = Vec::new();
    let mut recommended = Vec::new();
    for (setting, series) in scenarios {
        let mut pts: Vec<TunePoint> = series
            .iter()
            .map(|(ttl, s)| sample(s, *ttl, setting, config, false, progress))
            .collect();
        if config.max_risk.is_some() {
            bisect(base, setting, config, &mut pts, progress)?;
        }
        recommended.push(recommend(setting, &pts, config.max_risk.is_some()));
        points.extend(pts);
    }
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
        interval_method: INTERVAL_METHOD.to_string(),
        max_risk: config.max_risk,
        resolution_ms: config.max_risk.map(|_| config.resolution_ms),
        rate_per_s: config.rate_per_s,
    })
}

/// Between the swept TTL just below the smallest one decided safe (broken or undecided) and
/// that safe one, tries the midpoint until the two are `resolution_ms` apart; the points
/// tried join `pts` marked `bisected`, and `pts` stays sorted by TTL. Nothing to do when no
/// swept TTL is safe, or the smallest one is.
fn bisect(
    base: &Scenario,
    setting: &Setting,
    config: &TuneConfig,
    pts: &mut Vec<TunePoint>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), TuneError> {
    let safe = |p: &TunePoint| p.decision == Some(Decision::Safe);
    let Some(first_safe) = pts.iter().position(safe) else {
        return Ok(());
    };
    let Some(below) = first_safe.checked_sub(1) else {
        return Ok(());
    };
    let (mut lo, mut hi) = (pts[below].ttl_ms, pts[first_safe].ttl_ms);
    while hi - lo > config.resolution_ms {
        let mid = lo + (hi - lo) / 2;
        let s = at_setting(base, setting, mid)?;
        let p = sample(&s, mid, setting, config, true, progress);
        if safe(&p) {
            hi = mid;
        } else {
            lo = mid;
        }
        pts.push(p);
    }
    pts.sort_by_key(|p| p.ttl_ms);
    Ok(())
}

/// One series' recommendation: with a risk target, its smallest TTL decided safe; without,
/// its smallest TTL no seed broke.
fn recommend(setting: &Setting, pts: &[TunePoint], with_risk: bool) -> Recommendation {
    let ttl_ms = if with_risk {
        pts.iter()
            .find(|p| p.decision == Some(Decision::Safe))
            .map(|p| p.ttl_ms)
    } else {
        pts.iter().find(|p| p.safe()).map(|p| p.ttl_ms)
    };
    Recommendation {
        setting: setting.clone(),
        ttl_ms,
        seeds_spent: pts.iter().map(|p| p.seeds).sum(),
        undecided_ttls_ms: pts
            .iter()
            .filter(|p| p.decision == Some(Decision::Undecided))
            .map(|p| p.ttl_ms)
            .collect(),
    }
}
