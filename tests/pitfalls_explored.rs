//! The five pitfalls of issue #14 (plain PEXPIRE watchdog, GET then DEL, watchdog not
//! cancelled on release, validity not checked, a counting acquire resent) are found by exploring their files' fault
//! spaces alone: within a bounded number of seeds, shrunk to at most 3 faults, and the shrunk
//! schedule breaks the property with the broken recipe and keeps it with the safe one.

mod common;
use common::load;
use locksim::checker::{Outcome, Property};
use locksim::play::play_sim;
use locksim::scenario::Scenario;
use std::path::Path;

fn quiet(_: u64) {}

/// Seeds explored per pitfall: each was found within the first 30 when this was written
/// (`locksim explore` on the files with their `faults` removed; see the README).
const SEEDS: u64 = 300;

/// One pitfall pair and the property its broken recipe breaks.
struct Case {
    broken: &'static str,
    safe: &'static str,
    property: Property,
    /// Whether the safe twin keeps the property on every seed of the space (a space that also
    /// held a GC pause of the holder would break it whatever the recipe).
    safe_space_clean: bool,
}

const CASES: [Case; 5] = [
    Case {
        broken: "pitfall-plain-pexpire",
        safe: "safe-compare-and-pexpire",
        property: Property::UnsafeWrites,
        safe_space_clean: true,
    },
    Case {
        broken: "pitfall-get-then-del",
        safe: "safe-compare-and-delete-paused",
        property: Property::ForeignRelease,
        safe_space_clean: true,
    },
    Case {
        broken: "pitfall-watchdog-not-cancelled",
        safe: "safe-watchdog-cancelled",
        property: Property::StuckLock,
        safe_space_clean: true,
    },
    Case {
        broken: "pitfall-unchecked-validity",
        safe: "safe-checked-validity",
        property: Property::MutualExclusion,
        safe_space_clean: true,
    },
    Case {
        broken: "pitfall-resent-counting-acquire",
        safe: "safe-counting-acquire-not-resent",
        property: Property::StuckLock,
        safe_space_clean: true,
    },
];

/// The file without its fixed faults: only its fault space can break it.
fn space_only(name: &str) -> Scenario {
    let mut s = load(&format!("{name}.json"));
    assert!(!s.faults.is_empty(), "{name} ships its own schedule");
    assert!(s.fault_space.is_some(), "{name} has a fault space");
    s.faults.clear();
    s
}

fn explore_finds_and_shrinks(case: &Case) {
    let Case {
        broken,
        safe,
        property,
        ..
    } = case;
    let s = space_only(broken);
    let calm = play_sim(&s, None);
    assert_eq!(
        calm.verdict.outcome(*property),
        Outcome::Holds,
        "{broken} without faults:\n{}",
        calm.verdict.summary()
    );
    let report = explore::explore(&s, 0, SEEDS, 2, false, &quiet).unwrap();
    let seed = *report
        .first_violating
        .get(property)
        .unwrap_or_else(|| panic!("{broken}: no seed of {SEEDS} breaks {property}: {report:?}"));
    let shrunk = explore::shrink(&s, seed, Some(*property)).unwrap();
    assert!(
        (1..=3).contains(&shrunk.faults_after),
        "{broken}: {:?}",
        shrunk.scenario.faults
    );
    // The shrunk file loads again and still breaks the property ...
    let text = serde_json::to_string_pretty(&shrunk.scenario).unwrap();
    let reread = Scenario::parse(&text, Path::new("shrunk.json")).unwrap();
    let played = play_sim(&reread, None);
    assert_eq!(
        played.verdict.outcome(*property),
        Outcome::Violated,
        "{broken} shrunk:\n{}",
        played.verdict.summary()
    );
    // ... and the same schedule with the safe twin's recipe keeps it: the knob is the cause.
    let mut fixed = reread.clone();
    fixed.recipe = load(&format!("{safe}.json")).recipe;
    let played = play_sim(&fixed, None);
    assert_eq!(
        played.verdict.outcome(*property),
        Outcome::Holds,
        "{broken}'s shrunk schedule with {safe}'s recipe:\n{}",
        played.verdict.summary()
    );
}

#[test]
fn plain_pexpire_is_found_and_shrunk() {
    explore_finds_and_shrinks(&CASES[0]);
}

#[test]
fn get_then_del_is_found_and_shrunk() {
    explore_finds_and_shrinks(&CASES[1]);
}

#[test]
fn watchdog_not_cancelled_is_found_and_shrunk() {
    explore_finds_and_shrinks(&CASES[2]);
}

#[test]
fn unchecked_validity_is_found_and_shrunk() {
    explore_finds_and_shrinks(&CASES[3]);
}

#[test]
fn resent_counting_acquire_is_found_and_shrunk() {
    explore_finds_and_shrinks(&CASES[4]);
}

/// Where the safe recipe is the whole fix, no seed of the same space breaks its property.
#[test]
fn the_safe_twins_keep_the_property_on_every_seed() {
    for case in CASES.iter().filter(|c| c.safe_space_clean) {
        let s = space_only(case.safe);
        let report = explore::explore(&s, 0, SEEDS, 2, false, &quiet).unwrap();
        assert_eq!(
            report.violations.get(&case.property),
            None,
            "{}: {report:?}",
            case.safe
        );
        assert_eq!(report.inconclusive, 0, "{}: {report:?}", case.safe);
    }
}
