//! The safety matrix: a few cells searched afresh say what the committed example says.

use explore::exhaustive::{exhaustive, Options};
use explore::matrix::{cell_scenario, columns, rows};
use locksim::checker::Property;
use locksim::scenario::FaultAction;

/// The search of one cell: its counterexample's faults and what they break, if any.
fn cell(row: &str, col: &str) -> Option<(Vec<FaultAction>, Vec<Property>)> {
    let r = rows().into_iter().find(|r| r.name == row).unwrap();
    let c = columns().into_iter().find(|c| c.name == col).unwrap();
    let s = cell_scenario(&r, &c).unwrap().unwrap();
    let options = Options {
        max_faults: 2,
        properties: r.judged(),
        jobs: 2,
    };
    let report = exhaustive(&s, &options, &|_| {}).unwrap();
    assert_eq!(report.inconclusive(), 0, "{row} × {col}");
    report.counterexample.map(|cx| {
        assert!(cx.confirmed, "{row} × {col}");
        (
            cx.faults.into_iter().map(|f| f.action).collect(),
            cx.violated,
        )
    })
}

#[test]
fn the_safe_recipe_double_grants_after_one_promotion_and_fencing_survives_two_pauses() {
    let (faults, broken) = cell("safe", "failover").expect("the double grant");
    assert_eq!(faults.len(), 1);
    assert!(matches!(faults[0], FaultAction::Promote(_)), "{faults:?}");
    assert!(broken.contains(&Property::MutualExclusion));
    assert_eq!(cell("fencing", "pause"), None);
    let (faults, broken) = cell("safe", "pause").expect("a pause past the TTL");
    assert_eq!(faults.len(), 1);
    assert!(broken.contains(&Property::UnsafeWrites), "{broken:?}");
}

#[test]
fn wait_for_one_replica_stops_the_double_grant_but_not_the_lock_going_dead() {
    let (faults, broken) = cell("wait-1", "failover").expect("no replica left to WAIT for");
    assert_eq!(faults.len(), 1);
    assert_eq!(broken, vec![Property::StuckLock]);
    assert!(cell("redlock-5", "restart").is_none());
}

#[test]
fn a_fault_class_that_does_not_apply_is_left_out() {
    let r = rows().into_iter().find(|r| r.name == "redlock-5").unwrap();
    let c = columns()
        .into_iter()
        .find(|c| c.name == "failover")
        .unwrap();
    assert!(cell_scenario(&r, &c).unwrap().is_none());
    let fencing = rows().into_iter().find(|r| r.name == "fencing").unwrap();
    assert!(!fencing.judged().contains(&Property::MutualExclusion));
}

/// Every counterexample of the committed example replays its violation.
#[test]
fn every_committed_counterexample_replays_what_it_breaks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("reports/examples/safety-matrix/counterexamples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let s = locksim::scenario::Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let played = locksim::play::play_sim(&s, None);
        assert!(
            played.matches_expect(),
            "{}: {}",
            path.display(),
            played.verdict.summary()
        );
        n += 1;
    }
    assert!(n >= 40, "{n} counterexamples");
}
