//! Exploration: run a scenario's fault space seed after seed, count which properties break,
//! replay any seed, and shrink a failing seed to the smallest schedule that still breaks the
//! same property.
//!
//! Each seed is a proptest value tree ([`case`]): the seed fixes which fault kinds are on
//! (swarm testing), the schedule, the clients taking part and the parameters, and the same
//! seed drives the simulator. Seeds run in parallel on worker threads (each run itself is
//! single-threaded and deterministic); passing seeds keep nothing, so memory stays constant.

pub mod case;
pub mod tune;

use case::{materialize, strategy, tree, Case};
use checker::{check, Outcome, Property, Record, Verdict};
use scenario::{FaultSpace, Scenario};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use thiserror::Error;

/// How many failing seeds a report lists.
pub const FAILING_LISTED: usize = 10;

/// Why exploration cannot start.
#[derive(Debug, Error, PartialEq)]
pub enum ExploreError {
    /// The scenario has no `fault_space`.
    #[error("{0}: field `fault_space`: the scenario has no fault space to explore")]
    NoFaultSpace(String),
    /// `--seeds 0`.
    #[error("--seeds must be at least 1")]
    NoSeeds,
    /// `--jobs 0`.
    #[error("--jobs must be at least 1")]
    NoJobs,
    /// The seed broke nothing, so there is nothing to shrink.
    #[error("seed {0} breaks no property")]
    NothingToShrink(u64),
}

/// What exploring many seeds found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Seeds run.
    pub seeds: u64,
    /// For each property, how many seeds violated it.
    pub violations: BTreeMap<Property, u64>,
    /// The smallest failing seeds, with the properties each violated.
    pub failing: Vec<(u64, Vec<Property>)>,
}

/// One seed, played.
#[derive(Debug, Clone)]
pub struct SeedRun {
    /// The scenario the seed drew (its fault schedule and parameters).
    pub scenario: Scenario,
    /// The history.
    pub records: Vec<Record>,
    /// The checker's verdict.
    pub verdict: Verdict,
}

fn space(s: &Scenario) -> Result<&FaultSpace, ExploreError> {
    s.fault_space
        .as_ref()
        .ok_or_else(|| ExploreError::NoFaultSpace(s.name.clone()))
}

fn violated(v: &Verdict) -> Vec<Property> {
    Property::ALL
        .into_iter()
        .filter(|p| v.outcome(*p) == Outcome::Violated)
        .collect()
}

fn play(s: &Scenario, seed: u64) -> (Vec<Record>, Verdict) {
    let run = sim::run(s, seed);
    let verdict = check(&run.records, &s.checker);
    (run.records, verdict)
}

/// Plays the schedule seed `seed` draws from the scenario's fault space (what
/// `locksim run FILE --explore-seed S` replays).
pub fn run_seed(base: &Scenario, seed: u64) -> Result<SeedRun, ExploreError> {
    let space = space(base)?;
    let case = tree(&strategy(space, base.clients.len()), seed).current();
    let scenario = materialize(base, space, &case);
    let (records, verdict) = play(&scenario, seed);
    Ok(SeedRun {
        scenario,
        records,
        verdict,
    })
}

/// Runs seeds `first .. first + count` on `jobs` threads; `progress` is called with the
/// number of seeds finished since its last call. With `until_violation`, stops at the first
/// violation found.
pub fn explore(
    base: &Scenario,
    first: u64,
    count: u64,
    jobs: usize,
    until_violation: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Report, ExploreError> {
    let space = space(base)?;
    if count == 0 {
        return Err(ExploreError::NoSeeds);
    }
    if jobs == 0 {
        return Err(ExploreError::NoJobs);
    }
    let next = AtomicU64::new(first);
    let end = first.saturating_add(count);
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let merged = Mutex::new((
        BTreeMap::<Property, u64>::new(),
        Vec::<(u64, Vec<Property>)>::new(),
    ));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                // Strategies are not shared across threads: each worker builds its own.
                let strategy = strategy(space, base.clients.len());
                let mut counts = BTreeMap::<Property, u64>::new();
                let mut failing = Vec::new();
                let mut unreported = 0;
                while !stop.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    let case = tree(&strategy, seed).current();
                    let (_, verdict) = play(&materialize(base, space, &case), seed);
                    let broken = violated(&verdict);
                    for p in &broken {
                        *counts.entry(*p).or_default() += 1;
                    }
                    if !broken.is_empty() {
                        if failing.len() < FAILING_LISTED {
                            failing.push((seed, broken));
                        }
                        if until_violation {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    unreported += 1;
                    if unreported == 64 {
                        done.fetch_add(unreported, Ordering::Relaxed);
                        progress(unreported);
                        unreported = 0;
                    }
                }
                done.fetch_add(unreported, Ordering::Relaxed);
                progress(unreported);
                let mut m = merged.lock().unwrap_or_else(|e| e.into_inner());
                for (p, n) in counts {
                    *m.0.entry(p).or_default() += n;
                }
                m.1.extend(failing);
            });
        }
    });
    let (violations, mut failing) = merged.into_inner().unwrap_or_else(|e| e.into_inner());
    failing.sort_by_key(|(seed, _)| *seed);
    failing.truncate(FAILING_LISTED);
    Ok(Report {
        seeds: done.load(Ordering::Relaxed),
        violations,
        failing,
    })
}

/// A failing seed shrunk to its smallest schedule.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The property the shrunk scenario still breaks.
    pub property: Property,
    /// Faults before and after shrinking.
    pub faults_before: usize,
    /// Faults in the shrunk scenario.
    pub faults_after: usize,
    /// Shrink steps tried.
    pub steps: u32,
    /// The shrunk scenario: fixed faults, `expect` = the property violated, seed = `seed`.
    pub scenario: Scenario,
}

/// Shrinks seed `seed`'s schedule to the smallest one (fewest faults, shortest pauses and
/// lags, fewest clients) that still breaks `property` (default: the first it breaks).
pub fn shrink(
    base: &Scenario,
    seed: u64,
    property: Option<Property>,
) -> Result<Shrunk, ExploreError> {
    let space = space(base)?;
    let strategy = strategy(space, base.clients.len());
    let mut t = tree(&strategy, seed);
    let breaks = |case: &Case, p: Property| {
        let (_, verdict) = play(&materialize(base, space, case), seed);
        verdict.outcome(p) == Outcome::Violated
    };
    let first = t.current();
    let (_, verdict) = play(&materialize(base, space, &first), seed);
    let property = match property {
        Some(p) if verdict.outcome(p) == Outcome::Violated => p,
        Some(_) => return Err(ExploreError::NothingToShrink(seed)),
        None => *violated(&verdict)
            .first()
            .ok_or(ExploreError::NothingToShrink(seed))?,
    };
    let faults_before = materialize(base, space, &first).faults.len();
    let mut best = first;
    let mut steps = 0;
    // proptest's shrink loop: simplify while the property still breaks; step back
    // (complicate) when a simplification made it pass.
    let mut last_failed = true;
    while steps < 10_000 {
        let moved = if last_failed {
            t.simplify()
        } else {
            t.complicate()
        };
        if !moved {
            break;
        }
        steps += 1;
        let c = t.current();
        last_failed = breaks(&c, property);
        if last_failed {
            best = c;
        }
    }
    let mut scenario = materialize(base, space, &best);
    scenario.name = format!("{}-seed-{seed}-shrunk", base.name);
    scenario.description = format!(
        "Shrunk by `locksim explore` from seed {seed} of {}: the smallest schedule found that still violates {property}.",
        base.name
    );
    scenario.seed = seed;
    scenario.expect = BTreeMap::from([(property, Outcome::Violated)]);
    Ok(Shrunk {
        property,
        faults_before,
        faults_after: scenario.faults.len(),
        steps,
        scenario,
    })
}
