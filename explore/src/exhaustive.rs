//! Exhaustive exploration: every schedule of up to K faults from a fault space, placed at the
//! run's event boundaries, searched breadth-first by fault count, so the first failing
//! schedule found is minimal and "nothing found" is a proof for that K.
//!
//! - **Choices.** Each kind of the space becomes concrete faults: one per target and per
//!   value of the kind's `grid_ms` (default: a range's two ends, a distribution's median and
//!   99th percentile); a restart with and without persistence; a partition isolating one of
//!   its parties from the others.
//! - **Boundaries.** A fault may strike at a whole millisecond. Two milliseconds with no
//!   event between them are the same place in the run, so the search tries only the
//!   millisecond after each event's (and the window's start), inside the space's window.
//! - **Breadth-first by fault count.** Level k plays every schedule of exactly k faults,
//!   in time order; the search stops at the first level with a failure.
//! - **Forks, not replays.** The fault-free run is stopped at each boundary and copied
//!   ([`sim::Fork`]); a schedule's prefix is played once for all the schedules that share it.
//! - **State pruning.** After each fault the simulated state is hashed
//!   ([`sim::Fork::fingerprint`]). A fault that changes nothing (crashing a node that is
//!   down) is dropped; a state already reached with as many faults still to place is not
//!   searched again.
//!
//! Level k's work is split by its first fault (a *branch*: one boundary and one choice,
//! numbered `stop × choices + choice`). Branches are searched in parallel, each with its own
//! set of seen states, so what a branch finds and counts does not depend on `--jobs`; the
//! report counts every branch up to the first failing one, and the counterexample is that
//! branch's first failing schedule.
//!
//! - **Shards.** The same split lets N machines share a search exactly ([`search_shard`]):
//!   shard K takes the branches whose `(stop + choice) % N` is K − 1 ([`takes`]), so each
//!   shard gets every choice at one stop in N and neighbouring stops (which cost about the
//!   same) land on different shards. Every shard plays the fault-free run (level 0, counted
//!   once) and stops at the first level where one of its own branches fails. A shard keeps
//!   each branch's counts ([`Row`]), so [`combine`] can cut any level at the lowest failing
//!   branch of all shards and count exactly what one search counts. [`exhaustive`] is the
//!   one shard 1/1, combined.

use crate::shard::Shard;
use crate::{space, violated, ExploreError};
use checker::{check, Outcome, Property};
use scenario::{Fault, FaultAction, FaultKind, FaultSpace, Scenario, Span};
use serde::{Deserialize, Serialize};
use sim::Fork;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What to search for, and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The most faults a schedule may place (K).
    pub max_faults: usize,
    /// The properties whose violation counts as a failure (empty: those the scenario's
    /// `expect` says hold, else every property).
    pub properties: Vec<Property>,
    /// Worker threads.
    pub jobs: usize,
}

/// How far a level's search has come, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The level: faults per schedule.
    pub faults: usize,
    /// Branches of the level finished.
    pub done: usize,
    /// Branches of the level in all.
    pub total: usize,
}

/// What one level of the search did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// Faults per schedule at this level.
    pub faults: usize,
    /// Schedules played to the end and judged.
    pub schedules: u64,
    /// Distinct states reached after a fault (the search's nodes).
    pub states: u64,
    /// Faults dropped because they changed nothing.
    pub no_ops: u64,
    /// Schedules not searched again: their state after a fault had been reached before.
    pub pruned: u64,
    /// Schedules whose run was inconclusive (what holds in them is not proven).
    pub inconclusive: u64,
}

impl Level {
    fn add(&mut self, o: &Level) {
        self.schedules += o.schedules;
        self.states += o.states;
        self.no_ops += o.no_ops;
        self.pruned += o.pruned;
        self.inconclusive += o.inconclusive;
    }
}

/// The first failing schedule: minimal in fault count.
#[derive(Debug, Clone)]
pub struct Counterexample {
    /// The properties it violates (of those searched for).
    pub violated: Vec<Property>,
    /// Its faults, in time order.
    pub faults: Vec<Fault>,
    /// The base scenario with these faults fixed, no fault space, and `expect` saying the
    /// first property violated is violated: a file `locksim run` replays.
    pub scenario: Scenario,
    /// Whether playing `scenario` from the start (as `locksim run` does) violates that
    /// property too: the fork and the replay must agree.
    pub confirmed: bool,
}

/// What an exhaustive search found.
#[derive(Debug, Clone)]
pub struct ExhaustiveReport {
    /// K: the most faults a schedule placed.
    pub max_faults: usize,
    /// The properties searched for.
    pub properties: Vec<Property>,
    /// The concrete faults a schedule may place at each boundary.
    pub choices: Vec<FaultAction>,
    /// Boundaries of the fault-free run inside the window.
    pub boundaries: usize,
    /// One entry per level searched, from 0 faults up.
    pub levels: Vec<Level>,
    /// The first failing schedule, if any.
    pub counterexample: Option<Counterexample>,
}

impl ExhaustiveReport {
    /// Schedules judged in all levels.
    pub fn schedules(&self) -> u64 {
        self.levels.iter().map(|l| l.schedules).sum()
    }

    /// Distinct states in all levels.
    pub fn states(&self) -> u64 {
        self.levels.iter().map(|l| l.states).sum()
    }

    /// Inconclusive schedules in all levels.
    pub fn inconclusive(&self) -> u64 {
        self.levels.iter().map(|l| l.inconclusive).sum()
    }
}

/// The grid of amounts a kind's parameter takes in exhaustive search: the file's
/// `grid_ms`, or a range's two ends, or a distribution's median and 99th percentile.
fn span_grid(span: &Span, grid: &Option<Vec<u64>>) -> Vec<u64> {
    let mut g = match (grid, span) {
        (Some(g), _) => g.clone(),
        (None, Span::Range([lo, hi])) => vec![*lo, *hi],
        (None, Span::Dist(_)) => vec![
            crate::case::span_ms(span, 500_000),
            crate::case::span_ms(span, 990_000),
        ],
    };
    g.dedup();
    g
}

fn grid<T: Copy + PartialEq>(range: [T; 2], grid: &Option<Vec<T>>) -> Vec<T> {
    let mut g = grid.clone().unwrap_or_else(|| vec![range[0], range[1]]);
    g.dedup();
    g
}

/// Every concrete fault the space's kinds allow, in the order the kinds are listed.
pub fn choices(space: &FaultSpace) -> Vec<FaultAction> {
    let mut out = Vec::new();
    for kind in &space.kinds {
        let targets = kind.targets();
        match kind {
            FaultKind::Crash { .. } => out.extend(targets.iter().cloned().map(FaultAction::Crash)),
            FaultKind::Promote { .. } => {
                out.extend(targets.iter().cloned().map(FaultAction::Promote))
            }
            FaultKind::CrashClient { .. } => {
                out.extend(targets.iter().cloned().map(FaultAction::CrashClient))
            }
            FaultKind::Restart { .. } => {
                for t in targets {
                    for persistence in [false, true] {
                        out.push(FaultAction::Restart {
                            node: t.clone(),
                            persistence,
                        });
                    }
                }
            }
            FaultKind::PauseNode {
                for_ms, grid_ms, ..
            } => {
                for t in targets {
                    for ms in span_grid(for_ms, grid_ms) {
                        out.push(FaultAction::PauseNode {
                            node: t.clone(),
                            for_ms: Some(ms),
                        });
                    }
                }
            }
            FaultKind::PauseClient {
                for_ms, grid_ms, ..
            } => {
                for t in targets {
                    for ms in span_grid(for_ms, grid_ms) {
                        out.push(FaultAction::PauseClient {
                            client: t.clone(),
                            for_ms: ms,
                        });
                    }
                }
            }
            FaultKind::ClockJump { by_ms, grid_ms, .. } => {
                for t in targets {
                    for by in grid(*by_ms, grid_ms) {
                        out.push(FaultAction::ClockJump {
                            target: t.clone(),
                            by_ms: by,
                        });
                    }
                }
            }
            FaultKind::Partition {
                parties,
                for_ms,
                grid_ms,
            } => {
                // One party cut off from the rest; with two parties both splits are one.
                let alone = if parties.len() == 2 { 1 } else { parties.len() };
                for p in &parties[..alone] {
                    let rest: Vec<String> = parties.iter().filter(|q| *q != p).cloned().collect();
                    for ms in grid(*for_ms, grid_ms) {
                        out.push(FaultAction::Partition {
                            between: vec![p.clone()],
                            and: rest.clone(),
                            for_ms: Some(ms),
                            mode: Default::default(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// The properties to search for: those asked, else those the scenario's `expect` says
/// hold, else all.
fn targets(base: &Scenario, asked: &[Property]) -> Vec<Property> {
    if !asked.is_empty() {
        return asked.to_vec();
    }
    let held: Vec<Property> = Property::ALL
        .into_iter()
        .filter(|p| base.expect.get(p) == Some(&Outcome::Holds))
        .collect();
    if held.is_empty() {
        Property::ALL.to_vec()
    } else {
        held
    }
}

/// A schedule: (millisecond, index into the choices) per fault, in order.
type Schedule = Vec<(u64, usize)>;

/// The search of one level: what every branch shares.
struct Search<'a> {
    scenario: &'a Scenario,
    choices: &'a [FaultAction],
    properties: &'a [Property],
    /// The window's last millisecond.
    last_ms: u64,
}

/// One branch's walk: its seen states and its counts.
struct Walk {
    seen: HashSet<(u64, usize)>,
    level: Level,
}

impl Search<'_> {
    /// Plays the rest of `fork` and judges it; the properties searched for it violates.
    fn leaf(&self, fork: Fork<'_>, walk: &mut Walk) -> Vec<Property> {
        let run = fork.finish();
        let verdict = check(&run.records, &self.scenario.checker);
        walk.level.schedules += 1;
        if !verdict.is_conclusive() {
            walk.level.inconclusive += 1;
        }
        violated(&verdict)
            .into_iter()
            .filter(|p| self.properties.contains(p))
            .collect()
    }

    /// Injects choice `c` into a copy of `fork` (standing at `at`; `before` is its
    /// fingerprint, needed only when `left` > 0 to tell a no-op fault) and searches on with
    /// `left` faults still to place; the failing schedule's tail and what it violates, if
    /// one fails.
    fn place(
        &self,
        fork: &Fork<'_>,
        before: Option<u64>,
        at: u64,
        c: usize,
        left: usize,
        walk: &mut Walk,
    ) -> Option<(Schedule, Vec<Property>)> {
        let mut child = fork.clone();
        if child.inject(&self.choices[c]).is_err() {
            // Choices are built from a validated space: every name is known.
            return None;
        }
        let found = if left == 0 {
            // The last fault's state is not hashed: playing the run out costs less.
            let broken = self.leaf(child, walk);
            (!broken.is_empty()).then(|| (Vec::new(), broken))
        } else {
            let fp = child.fingerprint();
            if before == Some(fp) {
                walk.level.no_ops += 1;
                return None;
            }
            if !walk.seen.insert((fp, left)) {
                walk.level.pruned += 1;
                return None;
            }
            walk.level.states += 1;
            self.after(child, at, c, left, walk)
        };
        found.map(|(mut tail, broken)| {
            tail.insert(0, (at, c));
            (tail, broken)
        })
    }

    /// Searches every placement of `left` more faults into `fork`, which stands at `at`
    /// right after choice `last` was injected there: at `at` only choices after `last`,
    /// then at every later boundary of the window.
    fn after(
        &self,
        mut fork: Fork<'_>,
        mut at: u64,
        last: usize,
        left: usize,
        walk: &mut Walk,
    ) -> Option<(Schedule, Vec<Property>)> {
        let mut first = last + 1;
        loop {
            // A leaf's no-op is not looked for (it is played out instead): no hash needed.
            let before = (left > 1).then(|| fork.fingerprint());
            for c in first..self.choices.len() {
                if let Some(found) = self.place(&fork, before, at, c, left - 1, walk) {
                    return Some(found);
                }
            }
            first = 0;
            match fork.next_boundary_ms() {
                Some(next) if next <= self.last_ms => {
                    fork.run_until(next);
                    at = next;
                }
                _ => return None,
            }
        }
    }
}

/// One branch's counts, as a shard keeps them: `[branch, schedules, states, no_ops, pruned,
/// inconclusive]` (a JSON array in a shard file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row(pub usize, pub u64, pub u64, pub u64, pub u64, pub u64);

impl Row {
    fn new(branch: usize, l: &Level) -> Row {
        Row(
            branch,
            l.schedules,
            l.states,
            l.no_ops,
            l.pruned,
            l.inconclusive,
        )
    }

    /// The branch: `stop × choices + choice` of its first fault.
    pub fn branch(&self) -> usize {
        self.0
    }

    /// Its counts, as a level of `faults` faults.
    pub fn level(&self, faults: usize) -> Level {
        Level {
            faults,
            schedules: self.1,
            states: self.2,
            no_ops: self.3,
            pruned: self.4,
            inconclusive: self.5,
        }
    }
}

/// The first failing schedule of a level's branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// The branch it was found in (the lowest failing one of the shard's branches).
    pub branch: usize,
    /// The properties it violates (of those searched for).
    pub violated: Vec<Property>,
    /// Its faults, in time order.
    pub faults: Vec<Fault>,
    /// Whether the scenario that lists these faults, played from the start, violates the
    /// first of `violated` too.
    pub confirmed: bool,
}

/// What one shard searched of one level.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelPart {
    /// Faults per schedule.
    pub faults: usize,
    /// The level's branches in all shards (1 for level 0).
    pub branches: usize,
    /// The shard's branches searched, in increasing order: all of them, or those up to and
    /// including `failure`'s.
    pub rows: Vec<Row>,
    /// The shard's lowest failing branch of the level, if any.
    pub failure: Option<Failure>,
}

impl LevelPart {
    /// The level's counts over the rows whose branch is at most `upto`.
    pub fn counts(&self, upto: usize) -> Level {
        let mut level = Level {
            faults: self.faults,
            ..Level::default()
        };
        for r in self.rows.iter().filter(|r| r.branch() <= upto) {
            level.add(&r.level(self.faults));
        }
        level
    }
}

/// What one shard of an exhaustive search found.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The shard.
    pub shard: Shard,
    /// K: the most faults a schedule places.
    pub max_faults: usize,
    /// The properties searched for.
    pub properties: Vec<Property>,
    /// The concrete faults a schedule may place at each boundary.
    pub choices: Vec<FaultAction>,
    /// Boundaries of the fault-free run inside the window (0 when the fault-free run fails:
    /// the search stops before looking for them).
    pub boundaries: usize,
    /// Level 0 (the fault-free run, the same in every shard), then each level searched, up
    /// to the first where one of the shard's branches fails.
    pub levels: Vec<LevelPart>,
}

/// Whether `shard` takes branch `branch` of a level with `choices` choices per stop: when
/// `(stop + choice) % N` is K − 1.
pub fn takes(shard: Shard, branch: usize, choices: usize) -> bool {
    let choices = choices.max(1);
    let (stop, choice) = (branch / choices, branch % choices);
    ((stop + choice) as u64) % shard.of == shard.index - 1
}

/// What one branch (first fault) of a level found.
struct BranchResult {
    level: Level,
    found: Option<(Schedule, Vec<Property>)>,
}

/// Searches every schedule of up to `options.max_faults` faults from the scenario's fault
/// space (with the scenario's own seed), breadth-first by fault count, and stops at the
/// first level where one breaks a property searched for. `progress` is told as branches
/// finish.
pub fn exhaustive(
    base: &Scenario,
    options: &Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ExhaustiveReport, ExploreError> {
    let part = search_shard(base, options, Shard::WHOLE, progress)?;
    let combined = combine(&[&part]);
    let counterexample = combined.failure.map(|f| Counterexample {
        scenario: counterexample_scenario(base, &f.faults, f.violated[0]),
        violated: f.violated,
        faults: f.faults,
        confirmed: f.confirmed,
    });
    Ok(ExhaustiveReport {
        max_faults: part.max_faults,
        properties: part.properties,
        choices: part.choices,
        boundaries: part.boundaries,
        levels: combined.levels,
        counterexample,
    })
}

/// Searches shard `shard`'s part of [`exhaustive`]'s search: the fault-free run, then, level
/// by level, the branches it [`takes`], until one of them fails. `progress` is told as the
/// shard's branches finish.
pub fn search_shard(
    base: &Scenario,
    options: &Options,
    shard: Shard,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Part, ExploreError> {
    let space = space(base)?;
    if options.jobs == 0 {
        return Err(ExploreError::NoJobs);
    }
    let properties = targets(base, &options.properties);
    let choices = choices(space);
    let mut scenario = base.clone();
    scenario.fault_space = None;
    let seed = scenario.seed;
    let [first_ms, last_ms] = space.window_ms;
    let unplayable = |why: Vec<String>| ExploreError::Unplayable(base.name.clone(), why.join("; "));

    // The fault-free run, stopped at every boundary of the window.
    let mut fork = Fork::new(&scenario, seed).map_err(unplayable)?;
    let search = Search {
        scenario: &scenario,
        choices: &choices,
        properties: &properties,
        last_ms,
    };
    let level0 = {
        let mut walk = Walk {
            seen: HashSet::new(),
            level: Level::default(),
        };
        walk.level.states = 1;
        let broken = search.leaf(fork.clone(), &mut walk);
        LevelPart {
            faults: 0,
            branches: 1,
            rows: vec![Row::new(0, &walk.level)],
            failure: (!broken.is_empty()).then(|| failure(base, &choices, 0, &[], broken)),
        }
    };
    let mut part = Part {
        shard,
        max_faults: options.max_faults,
        properties: properties.clone(),
        choices: choices.clone(),
        boundaries: 0,
        levels: vec![level0],
    };
    if part.levels[0].failure.is_some() {
        return Ok(part);
    }
    let mut stops: Vec<(u64, Fork<'_>)> = Vec::new();
    fork.run_until(first_ms);
    if fork.at_ms() == first_ms {
        stops.push((first_ms, fork.clone()));
        while let Some(next) = fork.next_boundary_ms().filter(|n| *n <= last_ms) {
            fork.run_until(next);
            stops.push((next, fork.clone()));
        }
    }
    drop(fork);
    part.boundaries = stops.len();
    if choices.is_empty() {
        return Ok(part);
    }
    // Each stop's fingerprint, once: a branch's first fault is a no-op when it leaves it.
    let stops: Vec<(u64, Fork<'_>, u64)> = (stops.into_iter())
        .map(|(at, fork)| {
            let fp = fork.fingerprint();
            (at, fork, fp)
        })
        .collect();
    let total = stops.len() * choices.len();
    // The shard's branches, in increasing order (the same at every level).
    let mine: Vec<usize> = (0..total)
        .filter(|b| takes(shard, *b, choices.len()))
        .collect();
    for k in 1..=options.max_faults {
        let results: Vec<Mutex<Option<BranchResult>>> =
            (0..mine.len()).map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let failed_at = AtomicUsize::new(usize::MAX);
        let done = AtomicUsize::new(0);
        let jobs = options.jobs.min(mine.len()).max(1);
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= mine.len() || i > failed_at.load(Ordering::Relaxed) {
                        break;
                    }
                    let b = mine[i];
                    let (at, fork, fp) = &stops[b / choices.len()];
                    let c = b % choices.len();
                    let mut walk = Walk {
                        seen: HashSet::new(),
                        level: Level::default(),
                    };
                    let found = search.place(fork, Some(*fp), *at, c, k - 1, &mut walk);
                    if found.is_some() {
                        failed_at.fetch_min(i, Ordering::Relaxed);
                    }
                    let result = BranchResult {
                        level: walk.level,
                        found,
                    };
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(Progress {
                        faults: k,
                        done: n,
                        total: mine.len(),
                    });
                });
            }
        });
        let mut level = LevelPart {
            faults: k,
            branches: total,
            rows: Vec::new(),
            failure: None,
        };
        // Every branch up to the first failing one finished: those after it may not have.
        for (i, slot) in results.into_iter().enumerate() {
            let Some(r) = slot.into_inner().unwrap_or_else(|e| e.into_inner()) else {
                break;
            };
            level.rows.push(Row::new(mine[i], &r.level));
            if let Some((schedule, broken)) = r.found {
                level.failure = Some(failure(base, &choices, mine[i], &schedule, broken));
                break;
            }
        }
        let failed = level.failure.is_some();
        part.levels.push(level);
        if failed {
            break;
        }
    }
    Ok(part)
}

/// The shards' parts of one search, combined: what one unsharded search reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Combined {
    /// One entry per level searched, from 0 faults up to the first level where a shard
    /// failed (there, the branches up to the lowest failing one).
    pub levels: Vec<Level>,
    /// The lowest failing branch's first failing schedule, of the first level that has one.
    pub failure: Option<Failure>,
}

/// Combines the parts of every shard of one search (see the module documentation): level 0
/// from the first part, each later level summed over all parts, cut at the lowest failing
/// branch of the first level where any part failed. The parts are assumed to be of one
/// search and complete (every shard once); a part missing a level adds nothing to it.
pub fn combine(parts: &[&Part]) -> Combined {
    let Some(first) = parts.first() else {
        return Combined::default();
    };
    let Some(level0) = first.levels.first() else {
        return Combined::default();
    };
    let mut combined = Combined {
        levels: vec![level0.counts(usize::MAX)],
        failure: None,
    };
    if let Some(f) = &level0.failure {
        combined.failure = Some(f.clone());
        return combined;
    }
    let failing: Option<(usize, &Failure)> = (parts.iter())
        .flat_map(|p| p.levels.iter().skip(1))
        .filter_map(|l| l.failure.as_ref().map(|f| (l.faults, f)))
        .min_by_key(|(k, f)| (*k, f.branch));
    let deepest = parts.iter().map(|p| p.levels.len()).max().unwrap_or(1) - 1;
    let last = failing.map_or(deepest, |(k, _)| k);
    for k in 1..=last {
        let upto = match failing {
            Some((fk, f)) if fk == k => f.branch,
            _ => usize::MAX,
        };
        let mut level = Level {
            faults: k,
            ..Level::default()
        };
        for l in parts.iter().filter_map(|p| p.levels.get(k)) {
            level.add(&l.counts(upto));
        }
        combined.levels.push(level);
    }
    combined.failure = failing.map(|(_, f)| f.clone());
    combined
}

/// A failing schedule's faults, what it violates and whether its scenario replays it.
fn failure(
    base: &Scenario,
    choices: &[FaultAction],
    branch: usize,
    schedule: &[(u64, usize)],
    violated: Vec<Property>,
) -> Failure {
    let faults: Vec<Fault> = schedule
        .iter()
        .map(|(at, c)| Fault::at(*at, choices[*c].clone()))
        .collect();
    let s = counterexample_scenario(base, &faults, violated[0]);
    let run = sim::run(&s, s.seed);
    let confirmed = check(&run.records, &s.checker).outcome(violated[0]) == Outcome::Violated;
    Failure {
        branch,
        violated,
        faults,
        confirmed,
    }
}

/// The scenario a failing schedule of `faults` (in time order) describes, ready to be
/// written and replayed: `base` with these faults fixed, no fault space, and `expect` saying
/// `property` is violated.
pub fn counterexample_scenario(base: &Scenario, faults: &[Fault], property: Property) -> Scenario {
    let mut s = base.clone();
    s.fault_space = None;
    s.faults.extend(faults.iter().cloned());
    // Stable: faults at one millisecond keep the order they were placed in.
    s.faults.sort_by_key(|f| f.at_ms);
    let k = faults.len();
    s.name = crate::derived_name(&base.name, &format!("-exhaustive-{k}"));
    s.description = format!(
        "Found by `locksim explore --exhaustive` in the fault space of {}: no schedule of fewer than {k} faults violates {property}, and this one of {k} does.",
        base.name
    );
    s.expect = BTreeMap::from([(property, Outcome::Violated)]);
    s
}
