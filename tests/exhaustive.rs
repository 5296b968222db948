//! Exhaustive exploration: forks agree with replays, the search finds the smallest failing
//! schedule, proves fencing for two faults, and does not depend on `--jobs`.

mod common;
use common::load;
use explore::exhaustive::{choices, exhaustive, ExhaustiveReport, Options};
use locksim::checker::history::write_jsonl;
use locksim::checker::{Outcome, Property};
use locksim::scenario::{Fault, FaultAction, Scenario};
use locksim::sim::{self, Fork};
use std::process::Command;

fn quiet(_: explore::exhaustive::Progress) {}

fn search(s: &Scenario, k: usize, properties: Vec<Property>, jobs: usize) -> ExhaustiveReport {
    let options = Options {
        max_faults: k,
        properties,
        jobs,
    };
    exhaustive(s, &options, &quiet).unwrap()
}

fn jsonl(records: &[locksim::checker::Record]) -> String {
    let mut out = Vec::new();
    write_jsonl(records, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The history of `s` with `faults` placed by a fork (stopped at each fault's millisecond)
/// and the history of the scenario that lists them, played from the start.
fn fork_and_replay(s: &Scenario, faults: &[(u64, FaultAction)]) -> (String, String) {
    let mut fork = Fork::new(s, s.seed).unwrap();
    for (at, action) in faults {
        fork.run_until(*at);
        fork.inject(action).unwrap();
    }
    let forked = jsonl(&fork.finish().records);
    let mut listed = s.clone();
    listed
        .faults
        .extend(faults.iter().map(|(at, a)| Fault::at(*at, a.clone())));
    let replayed = jsonl(&sim::run(&listed, s.seed).records);
    (forked, replayed)
}

#[test]
fn a_fork_given_faults_plays_the_same_history_as_the_scenario_that_lists_them() {
    for file in ["failover-explore.json", "fencing-exhaustive.json"] {
        let mut s = load(file);
        let space = s.fault_space.take().unwrap();
        let all = choices(&space);
        // Every choice once at a boundary of the fault-free run, then pairs: the second
        // fault at the same millisecond as the first, and at later boundaries.
        let mut fork = Fork::new(&s, s.seed).unwrap();
        let mut boundaries = vec![0];
        while let Some(next) = fork
            .next_boundary_ms()
            .filter(|ms| *ms <= space.window_ms[1])
        {
            fork.run_until(next);
            boundaries.push(next);
        }
        assert!(boundaries.len() > 3, "{file}: {boundaries:?}");
        let mut tried = 0;
        for (i, action) in all.iter().enumerate() {
            let at = boundaries[(i * 7) % boundaries.len()];
            let later = boundaries[(i * 7 + 3) % boundaries.len()].max(at);
            let second = &all[(i + 1) % all.len()];
            for faults in [
                vec![(at, action.clone())],
                vec![(at, action.clone()), (at, second.clone())],
                vec![(at, action.clone()), (later, second.clone())],
            ] {
                let (forked, replayed) = fork_and_replay(&s, &faults);
                assert_eq!(forked, replayed, "{file}: {faults:?}");
                tried += 1;
            }
        }
        assert!(tried >= 12, "{file}: {tried}");
    }
}

#[test]
fn the_search_finds_the_double_grant_at_one_fault_and_its_file_replays_it() {
    let s = load("failover-explore.json");
    let report = search(&s, 2, vec![], 2);
    let cx = report
        .counterexample
        .expect("the double grant is in the space");
    // Promoting the lagging replica while A holds the lock on the old primary is enough: no
    // crash is needed (random search shrinks to crash + promote, a schedule one fault longer).
    assert_eq!(cx.faults.len(), 1, "{:?}", cx.faults);
    assert!(matches!(cx.faults[0].action, FaultAction::Promote(_)));
    assert!(cx.violated.contains(&Property::MutualExclusion));
    assert!(cx.confirmed);
    // The level with no fault was searched first, and passed.
    assert_eq!(report.levels.len(), 2);
    assert_eq!(report.levels[0].schedules, 1);
    let text = serde_json::to_string_pretty(&cx.scenario).unwrap();
    let reread = Scenario::parse(&text, std::path::Path::new("cx.json")).unwrap();
    assert!(reread.fault_space.is_none());
    let played = locksim::play::play_sim(&reread, None);
    assert!(played.matches_expect(), "{}", played.verdict.summary());
}

#[test]
fn without_promotions_no_schedule_of_two_faults_breaks_the_failover_scenario() {
    let mut s = load("failover-explore.json");
    let space = s.fault_space.as_mut().unwrap();
    space.kinds.retain(|k| k.name() != "promote");
    let report = search(&s, 2, vec![], 2);
    assert!(
        report.counterexample.is_none(),
        "{:?}",
        report.counterexample
    );
    assert_eq!(report.levels.len(), 3);
    // Every placement of two faults was played: as many schedules as pairs of (boundary,
    // choice) in time order, less those pruned.
    let level2 = report.levels[2];
    assert!(level2.schedules > 1_000, "{level2:?}");
    assert_eq!(report.inconclusive(), 0);
}

#[test]
fn fencing_keeps_every_stale_write_out_under_two_faults_and_without_it_one_pause_lets_one_in() {
    let mut s = load("fencing-exhaustive.json");
    // A shorter window than the shipped file's (the README records the full search).
    s.fault_space.as_mut().unwrap().window_ms = [0, 800];
    let report = search(&s, 2, vec![Property::UnsafeWrites], 2);
    assert!(
        report.counterexample.is_none(),
        "{:?}",
        report.counterexample
    );
    assert_eq!(report.inconclusive(), 0);
    assert!(report.schedules() > 5_000, "{:?}", report.levels);

    s.recipe.fencing = false;
    s.resource.checks_fencing = false;
    let report = search(&s, 2, vec![Property::UnsafeWrites], 2);
    let cx = report
        .counterexample
        .expect("a pause past the TTL lets a stale write in");
    assert_eq!(cx.faults.len(), 1);
    assert!(matches!(
        cx.faults[0].action,
        FaultAction::PauseClient { .. }
    ));
    assert_eq!(
        cx.scenario.expect.get(&Property::UnsafeWrites),
        Some(&Outcome::Violated)
    );
    assert!(cx.confirmed);
}

#[test]
fn one_job_or_two_search_the_same_schedules_and_find_the_same_counterexample() {
    for (file, k) in [("failover-explore.json", 2), ("fencing-exhaustive.json", 1)] {
        let s = load(file);
        let (one, two) = (search(&s, k, vec![], 1), search(&s, k, vec![], 2));
        assert_eq!(one.levels, two.levels, "{file}");
        let faults = |r: &ExhaustiveReport| r.counterexample.as_ref().map(|c| c.faults.clone());
        assert_eq!(faults(&one), faults(&two), "{file}");
    }
}

#[test]
fn the_cli_writes_the_counterexample_as_a_file_that_replays_and_states_a_proof() {
    let dir = std::env::temp_dir().join(format!("locksim-exhaustive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("cx.json");
    let root = env!("CARGO_MANIFEST_DIR");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_locksim"))
            .args(args)
            .current_dir(root)
            .output()
            .unwrap()
    };
    let found = run(&[
        "explore",
        "scenarios/failover-explore.json",
        "--exhaustive",
        "--shrink",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&found.stdout);
    assert_eq!(found.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("minimal counterexample: 1 faults"),
        "{stdout}"
    );
    let replay = run(&["run", out.to_str().unwrap()]);
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replay.stdout)
    );

    let mut s = load("fencing-exhaustive.json");
    s.fault_space.as_mut().unwrap().window_ms = [0, 300];
    let small = dir.join("fencing-small.json");
    std::fs::write(&small, serde_json::to_string(&s).unwrap()).unwrap();
    let proof = run(&[
        "explore",
        small.to_str().unwrap(),
        "--exhaustive",
        "--max-faults",
        "1",
        "--property",
        "unsafe_writes",
    ]);
    let stdout = String::from_utf8_lossy(&proof.stdout);
    assert_eq!(proof.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("no schedule with ≤ 1 faults of these kinds"),
        "{stdout}"
    );

    let refused = run(&[
        "explore",
        "scenarios/failover-explore.json",
        "--max-faults",
        "2",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_grid_value_outside_its_range_is_refused_at_its_field() {
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scenarios/fencing-exhaustive.json"),
        )
        .unwrap(),
    )
    .unwrap();
    v["fault_space"]["kinds"][0]["pause_client"]["grid_ms"] = serde_json::json!([9000]);
    let err = Scenario::parse(&v.to_string(), std::path::Path::new("g.json")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("fault_space.kinds[0]") && msg.contains("grid_ms"),
        "{msg}"
    );
    assert!(msg.contains("9000"), "{msg}");
    v["fault_space"]["kinds"][0]["pause_client"]["grid_ms"] = serde_json::json!([]);
    let msg = Scenario::parse(&v.to_string(), std::path::Path::new("g.json"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("needs 1 to 16 values"), "{msg}");
}
