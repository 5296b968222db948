//! Exploration: run a scenario's fault space seed after seed, count which properties break,
//! replay any seed, and shrink a failing seed to the smallest schedule that still breaks the
//! same property.
//!
//! Each seed is a proptest value tree (module `case`): the seed fixes which fault kinds are on
//! (swarm testing), the schedule, the clients taking part and the parameters, and the same
//! seed drives the simulator. Seeds run in parallel on worker threads (each run itself is
//! single-threaded and deterministic); passing seeds keep nothing, so memory stays constant.

#![deny(missing_docs)]

mod case;
pub mod exhaustive;
pub mod exhaustive_shard;
pub mod matrix;
pub mod shard;
pub mod tune;

use case::{materialize, strategy, tree, Case};
use checker::{check, Outcome, Property, Record, Verdict};
use scenario::{FaultSpace, Scenario};
use serde::{Deserialize, Serialize};
pub use shard::{SeedRange, Shard};
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
    /// The seed breaks other properties, not the one asked for.
    #[error("seed {seed} does not break {property}; it breaks {}", names(broken))]
    NotBroken {
        /// The seed.
        seed: u64,
        /// The property asked for.
        property: Property,
        /// What the seed does break.
        broken: Vec<Property>,
    },
    /// The scenario cannot be played as written (only one built in code can).
    #[error("{0}: cannot be played: {1}")]
    Unplayable(String, String),
    /// `--first` + `--seeds` goes past the last seed.
    #[error(
        "--first {first} --seeds {count}: the seeds would run past {}, the last seed",
        u64::MAX
    )]
    SeedRange {
        /// The first seed.
        first: u64,
        /// How many seeds.
        count: u64,
    },
    /// `--shard K/N` with more shards than seeds: shard K would run none.
    #[error("--shard {shard}: --seeds {count} leaves shard {} without a seed (N must be at most --seeds)", shard.index)]
    EmptyShard {
        /// The shard.
        shard: Shard,
        /// How many seeds in all.
        count: u64,
    },
}

fn names(ps: &[Property]) -> String {
    ps.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

/// Worker threads worth starting for `work` items when `requested` were asked for: no more
/// than the items, nor than 4 per core (more only adds threads), and at least one.
pub fn clamp_jobs(requested: usize, work: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let work = usize::try_from(work).unwrap_or(usize::MAX);
    requested.min(work).min(cores.saturating_mul(4)).max(1)
}

/// What exploring many seeds found. Serialized as the result line of a shard file
/// ([`shard`]); reports of disjoint seed sets combine with [`Report::combine`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Seeds run.
    pub seeds: u64,
    /// For each property, how many seeds violated it.
    pub violations: BTreeMap<Property, u64>,
    /// The smallest failing seeds (at most [`FAILING_LISTED`]), with the properties each
    /// violated.
    pub failing: Vec<(u64, Vec<Property>)>,
    /// For each property violated, the smallest seed that violated it.
    pub first_violating: BTreeMap<Property, u64>,
    /// Seeds whose run was inconclusive — cut short by the simulator's event budget, or an
    /// `after` condition never seen (what holds in them is not proven).
    pub inconclusive: u64,
}

/// One seed, played.
#[derive(Debug, Clone)]
pub struct SeedRun {
    /// The scenario the seed drew (its fault schedule and parameters).
    pub scenario: Scenario,
    /// The history.
    pub records: Vec<Record>,
    /// The checker's verdict (whether the run was conclusive is part of it).
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

impl Report {
    /// The report of the union of two disjoint seed sets, exactly as one run over both would
    /// have made it: counts add up, the smallest failing seeds of both are kept (each side
    /// lists its own smallest, so the smallest of the union are among them), and the first
    /// violating seed is the smaller one.
    pub fn combine(mut self, other: Report) -> Report {
        self.seeds += other.seeds;
        self.inconclusive += other.inconclusive;
        for (p, n) in other.violations {
            *self.violations.entry(p).or_default() += n;
        }
        for (p, seed) in other.first_violating {
            let f = self.first_violating.entry(p).or_insert(seed);
            *f = (*f).min(seed);
        }
        self.failing.extend(other.failing);
        self.failing.sort_by_key(|(seed, _)| *seed);
        self.failing.truncate(FAILING_LISTED);
        self
    }
}

/// Runs seeds `first .. first + count` on `jobs` threads (clamped by [`clamp_jobs`]);
/// `progress` is called with the number of seeds finished since its last call. With
/// `until_violation`, stops at the first violation found. Refuses a range that would run past
/// `u64::MAX` rather than wrap.
pub fn explore(
    base: &Scenario,
    first: u64,
    count: u64,
    jobs: usize,
    until_violation: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Report, ExploreError> {
    let range = SeedRange {
        first,
        count,
        shard: Shard::WHOLE,
    };
    explore_range(base, range, jobs, until_violation, progress)
}

/// [`explore`] over the seeds of `range` that its shard takes (every N-th seed of the range,
/// see [`Shard`]): the report counts those seeds only. Refuses a shard left without a seed.
pub fn explore_range(
    base: &Scenario,
    range: SeedRange,
    jobs: usize,
    until_violation: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Report, ExploreError> {
    let SeedRange {
        first,
        count,
        shard,
    } = range;
    let space = space(base)?;
    if count == 0 {
        return Err(ExploreError::NoSeeds);
    }
    if jobs == 0 {
        return Err(ExploreError::NoJobs);
    }
    if first.checked_add(count - 1).is_none() {
        return Err(ExploreError::SeedRange { first, count });
    }
    let mine = range.len();
    if mine == 0 {
        return Err(ExploreError::EmptyShard { shard, count });
    }
    let count = mine;
    let jobs = clamp_jobs(jobs, count);
    // Seeds are handed out by index, never past `count`, so the counter cannot wrap.
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let cut = AtomicU64::new(0);
    let merged = Mutex::new((
        BTreeMap::<Property, u64>::new(),
        Vec::<(u64, Vec<Property>)>::new(),
        BTreeMap::<Property, u64>::new(),
    ));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                // Strategies are not shared across threads: each worker builds its own.
                let strategy = strategy(space, base.clients.len());
                let mut counts = BTreeMap::<Property, u64>::new();
                let mut firsts = BTreeMap::<Property, u64>::new();
                let mut failing = Vec::new();
                let mut unreported = 0;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(i) = next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| {
                        (i < count).then_some(i + 1)
                    }) else {
                        break;
                    };
                    let seed = range.seed(i);
                    let case = tree(&strategy, seed).current();
                    let (_, verdict) = play(&materialize(base, space, &case), seed);
                    if !verdict.is_conclusive() {
                        cut.fetch_add(1, Ordering::Relaxed);
                    }
                    let broken = violated(&verdict);
                    for p in &broken {
                        *counts.entry(*p).or_default() += 1;
                        let f = firsts.entry(*p).or_insert(seed);
                        *f = (*f).min(seed);
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
                for (p, seed) in firsts {
                    let f = m.2.entry(p).or_insert(seed);
                    *f = (*f).min(seed);
                }
            });
        }
    });
    let (violations, mut failing, first_violating) =
        merged.into_inner().unwrap_or_else(|e| e.into_inner());
    failing.sort_by_key(|(seed, _)| *seed);
    failing.truncate(FAILING_LISTED);
    Ok(Report {
        seeds: done.load(Ordering::Relaxed),
        violations,
        failing,
        first_violating,
        inconclusive: cut.load(Ordering::Relaxed),
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
        Some(p) if !violated(&verdict).is_empty() => {
            return Err(ExploreError::NotBroken {
                seed,
                property: p,
                broken: violated(&verdict),
            })
        }
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
    scenario.name = derived_name(&base.name, &format!("-seed-{seed}-shrunk"));
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

/// `name` with `suffix`, the name cut short (at a character boundary) so the whole stays
/// within the scenario name limit and a file written with it loads again.
pub(crate) fn derived_name(name: &str, suffix: &str) -> String {
    let mut stem = name;
    while stem.len() + suffix.len() > scenario::MAX_NAME_BYTES {
        let cut = stem.char_indices().last().map_or(0, |(i, _)| i);
        stem = &stem[..cut];
    }
    format!("{stem}{suffix}")
}
