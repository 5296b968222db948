//! Every failure row found from a fault space alone: each file in `scenarios/spaces/` has no
//! fixed faults, and exploring its `fault_space` for a bounded number of seeds finds the row's
//! failure; shrinking the first failing seed leaves at most three faults, and the shrunk
//! scenario, played on the simulator and judged by the checker, still breaks that property.
//! For each pitfall, the recipe of its safe file keeps the property over the same space.

use locksim::checker::{check, Outcome, Property};
use locksim::scenario::Scenario;
use std::path::{Path, PathBuf};

fn quiet(_: u64) {}

/// One row: its fault-space file, the property its failure breaks, how many seeds the test
/// explores (a margin over the seed that first breaks it, measured with
/// `locksim explore scenarios/spaces/FILE --seeds 5000`), and whether the file breaks that
/// property with no fault at all (a pitfall that lives in the recipe alone). `fix` names the
/// shipped file whose recipe fixes the row (a pitfall pair's safe file; WAIT for the double
/// grant), which must keep the property over the same space.
struct Row {
    file: &'static str,
    property: Property,
    seeds: u64,
    breaks_without_faults: bool,
    fix: Option<&'static str>,
}

const fn row(file: &'static str, property: Property, seeds: u64) -> Row {
    Row {
        file,
        property,
        seeds,
        breaks_without_faults: false,
        fix: None,
    }
}

const fn fixed_by(r: Row, safe: &'static str) -> Row {
    Row {
        fix: Some(safe),
        ..r
    }
}

/// Every row, with the property the test requires broken.
const ROWS: [Row; 15] = [
    fixed_by(
        row("setnx-then-expire.json", Property::Liveness, 150),
        "safe-set-nx-px-after-crash.json",
    ),
    fixed_by(
        row("fixed-value.json", Property::ForeignRelease, 100),
        "safe-unique-token.json",
    ),
    fixed_by(
        row("ttl-shorter-than-work.json", Property::MutualExclusion, 100),
        "safe-watchdog.json",
    ),
    fixed_by(
        row("unlimited-retries.json", Property::RetryBudget, 100),
        "safe-retry-limit.json",
    ),
    fixed_by(
        row("no-drift-factor.json", Property::MutualExclusion, 100),
        "safe-drift-factor.json",
    ),
    fixed_by(
        row("plain-del.json", Property::ForeignRelease, 100),
        "safe-compare-and-delete.json",
    ),
    fixed_by(
        row("no-ttl.json", Property::Liveness, 100),
        "safe-ttl-after-holder-crash.json",
    ),
    fixed_by(
        row("failover-double-grant.json", Property::MutualExclusion, 100),
        "failover-after-wait.json",
    ),
    fixed_by(
        row("gc-pause.json", Property::UnsafeWrites, 100),
        "gc-pause-fencing.json",
    ),
    row("redlock-clock-jump.json", Property::MutualExclusion, 600),
    row(
        "restart-without-persistence.json",
        Property::MutualExclusion,
        600,
    ),
    Row {
        file: "set-once-plain-set.json",
        property: Property::SetOnce,
        seeds: 20,
        breaks_without_faults: true,
        fix: Some("set-once-set-nx.json"),
    },
    row("set-once-lost-on-failover.json", Property::SetOnce, 100),
    row("split-brain.json", Property::MutualExclusion, 100),
    fixed_by(
        row("resent-counting-acquire.json", Property::StuckLock, 100),
        "safe-counting-acquire-not-resent.json",
    ),
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/spaces")
}

fn load(file: &str) -> Scenario {
    Scenario::load(&dir().join(file)).unwrap_or_else(|e| panic!("{e}"))
}

/// The table and the folder list the same files: a new fault space gets its row.
#[test]
fn every_file_in_scenarios_spaces_has_a_row() {
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = ROWS.iter().map(|r| r.file.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

/// As written (no faults), each file keeps the row's property, except the recipe-only
/// pitfall, which breaks it with no fault at all; its `expect` says which.
#[test]
fn no_file_has_fixed_faults_and_each_expect_names_the_rows_property() {
    for r in &ROWS {
        let s = load(r.file);
        assert!(s.faults.is_empty(), "{}: fixed faults", r.file);
        let space = s.fault_space.as_ref().expect("a fault space");
        assert!(space.max_faults <= 3, "{}: max_faults", r.file);
        let want = if r.breaks_without_faults {
            Outcome::Violated
        } else {
            Outcome::Holds
        };
        assert_eq!(s.expect.get(&r.property), Some(&want), "{}", r.file);
        let run = locksim::sim::run(&s, s.seed);
        let verdict = check(&run.records, &s.checker);
        assert_eq!(
            verdict.outcome(r.property),
            want,
            "{}:\n{}",
            r.file,
            verdict.summary()
        );
    }
}

/// Exploration finds each row's failure from its space alone, and shrinks it to at most
/// three faults that still break the same property.
#[test]
fn exploration_finds_every_row_and_shrinks_it_to_at_most_three_faults() {
    let mut problems = Vec::new();
    for r in &ROWS {
        let s = load(r.file);
        let report = explore::explore(&s, 0, r.seeds, 2, false, &quiet).unwrap();
        assert_eq!(report.seeds, r.seeds);
        let Some(&seed) = report.first_violating.get(&r.property) else {
            problems.push(format!(
                "{}: no seed of {} broke {}: {:?}",
                r.file, r.seeds, r.property, report.violations
            ));
            continue;
        };
        let shrunk = explore::shrink(&s, seed, Some(r.property)).unwrap();
        assert_eq!(shrunk.property, r.property);
        if shrunk.faults_after > 3 || shrunk.faults_after > shrunk.faults_before {
            problems.push(format!(
                "{}: seed {seed} shrunk from {} to {} faults: {:?}",
                r.file, shrunk.faults_before, shrunk.faults_after, shrunk.scenario.faults
            ));
        }
        if !r.breaks_without_faults && shrunk.scenario.faults.is_empty() {
            problems.push(format!("{}: shrunk to no fault at all", r.file));
        }
        // The shrunk scenario is a plain file: played and judged on its own, it still breaks
        // the property.
        let run = locksim::sim::run(&shrunk.scenario, shrunk.scenario.seed);
        let verdict = check(&run.records, &shrunk.scenario.checker);
        if verdict.outcome(r.property) != Outcome::Violated {
            problems.push(format!(
                "{}: the shrunk seed {seed} no longer breaks {}:\n{}",
                r.file,
                r.property,
                verdict.summary()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The space is a fair test, not a trap any recipe falls into: for each pitfall, the recipe
/// of its shipped safe file keeps the row's property over the same seeds of the same space.
#[test]
fn each_pitfalls_safe_recipe_keeps_the_property_over_the_same_space() {
    let mut problems = Vec::new();
    for r in ROWS.iter().filter(|r| r.fix.is_some()) {
        let safe = r.fix.unwrap();
        let mut s = load(r.file);
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(safe);
        s.recipe = Scenario::load(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .recipe;
        let seeds = r.seeds.max(100);
        let report = explore::explore(&s, 0, seeds, 2, false, &quiet).unwrap();
        assert_eq!(report.seeds, seeds);
        if let Some(n) = report.violations.get(&r.property) {
            problems.push(format!(
                "{} with the recipe of {safe}: {} broken by {n} of {seeds} seeds (first {:?})",
                r.file,
                r.property,
                report.first_violating.get(&r.property)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn exhaustive(s: &Scenario, property: Property) -> explore::exhaustive::ExhaustiveReport {
    let options = explore::exhaustive::Options {
        max_faults: 2,
        properties: vec![property],
        jobs: 2,
    };
    explore::exhaustive::exhaustive(s, &options, &|_| {}).unwrap()
}

/// Exhaustive search over the same spaces finds every row too, with at most two faults (the
/// first failing schedule, minimal by construction), and its scenario replays the failure;
/// the safe recipe of each pitfall survives every schedule of up to two faults.
#[test]
fn exhaustive_search_finds_every_row_in_two_faults_and_proves_each_fix_for_two() {
    let mut problems = Vec::new();
    for r in &ROWS {
        let s = load(r.file);
        let report = exhaustive(&s, r.property);
        match &report.counterexample {
            None => problems.push(format!("{}: nothing found up to 2 faults", r.file)),
            Some(cx) => {
                assert!(cx.confirmed, "{}: {:?}", r.file, cx.faults);
                assert_eq!(cx.faults.is_empty(), r.breaks_without_faults, "{}", r.file);
                let run = locksim::sim::run(&cx.scenario, cx.scenario.seed);
                let verdict = check(&run.records, &cx.scenario.checker);
                assert_eq!(verdict.outcome(r.property), Outcome::Violated, "{}", r.file);
            }
        }
        let Some(safe) = r.fix else { continue };
        let mut s = s.clone();
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(safe);
        s.recipe = Scenario::load(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .recipe;
        let report = exhaustive(&s, r.property);
        if let Some(cx) = &report.counterexample {
            problems.push(format!(
                "{} with the recipe of {safe}: broken by {:?}",
                r.file, cx.faults
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
