//! Exploration: many seeds of a fault space, replay of any seed, and shrinking.

mod common;
use common::load;
use locksim::checker::history::write_jsonl;
use locksim::checker::{Outcome, Property};
use locksim::scenario::{FaultAction, Scenario};
use std::path::Path;
use std::process::Command;

fn quiet(_: u64) {}

#[test]
fn explore_finds_the_double_grant_and_shrinks_it_to_a_crash_and_a_promotion() {
    let s = load("failover-explore.json");
    // As written (no faults) the scenario is safe; only its fault space breaks it.
    assert!(s.faults.is_empty());
    let report = explore::explore(&s, 0, 2_000, 2, false, &quiet).unwrap();
    assert_eq!(report.seeds, 2_000);
    let broken = report
        .violations
        .get(&Property::MutualExclusion)
        .copied()
        .unwrap_or(0);
    assert!(broken > 0, "{report:?}");
    let (seed, props) = &report.failing[0];
    assert!(props.contains(&Property::MutualExclusion));
    let shrunk = explore::shrink(&s, *seed, Some(Property::MutualExclusion)).unwrap();
    assert!(shrunk.faults_after <= 3, "{:?}", shrunk.scenario.faults);
    assert!(shrunk.faults_after <= shrunk.faults_before);
    let kinds: Vec<&str> = shrunk
        .scenario
        .faults
        .iter()
        .map(|f| f.action.kind())
        .collect();
    assert!(
        kinds.contains(&"crash") && kinds.contains(&"promote"),
        "{kinds:?}"
    );
    // The shrunk scenario is a valid file that replays its violation.
    let text = serde_json::to_string_pretty(&shrunk.scenario).unwrap();
    let reread = Scenario::parse(&text, Path::new("shrunk.json")).unwrap();
    let played = locksim::play::play_sim(&reread, None);
    assert!(played.matches_expect(), "{}", played.verdict.summary());
    assert_eq!(
        reread.expect.get(&Property::MutualExclusion),
        Some(&Outcome::Violated)
    );
}

/// The shipped shrunk scenario is what exploration produced; it keeps reproducing (it is
/// also played by the scenario suite).
#[test]
fn the_committed_shrunk_scenario_has_at_most_three_faults() {
    let s = load("failover-explore-seed-2-shrunk.json");
    assert!(s.faults.len() <= 3 && !s.faults.is_empty());
    let played = locksim::play::play_sim(&s, None);
    assert_eq!(
        played.verdict.outcome(Property::MutualExclusion),
        Outcome::Violated
    );
}

#[test]
fn a_seed_replays_the_same_history_from_the_command_line() {
    let s = load("failover-explore.json");
    let report = explore::explore(&s, 0, 500, 1, true, &quiet).unwrap();
    let seed = report.failing[0].0;
    let mut expected = Vec::new();
    write_jsonl(&explore::run_seed(&s, seed).unwrap().records, &mut expected).unwrap();
    let mut again = Vec::new();
    write_jsonl(&explore::run_seed(&s, seed).unwrap().records, &mut again).unwrap();
    assert_eq!(expected, again);
    let hist = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_locksim"))
        .args([
            "run",
            "scenarios/failover-explore.json",
            "--explore-seed",
            &seed.to_string(),
        ])
        .arg("--history")
        .arg(&hist)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    // The seed breaks mutual exclusion, which the file's `expect` says holds: exit 1.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&hist).unwrap(),
        expected,
        "the replay command reproduces the history"
    );
}

#[test]
fn the_report_does_not_depend_on_the_number_of_jobs() {
    let s = load("failover-explore.json");
    let one = explore::explore(&s, 100, 600, 1, false, &quiet).unwrap();
    let two = explore::explore(&s, 100, 600, 2, false, &quiet).unwrap();
    assert_eq!(one, two);
}

/// Shards of a range, combined, are the report of the whole range: the same counts, the same
/// smallest failing seeds (more fail than are listed), the same first violating seeds.
#[test]
fn shards_combined_are_the_whole_range() {
    let s = load("failover-explore.json");
    let whole = explore::explore(&s, 3, 797, 2, false, &quiet).unwrap();
    assert!(
        whole.violations[&Property::MutualExclusion] > explore::FAILING_LISTED as u64,
        "{whole:?}"
    );
    let mut combined: Option<explore::Report> = None;
    let mut seeds = Vec::new();
    for k in (1..=4).rev() {
        let range = explore::SeedRange {
            first: 3,
            count: 797,
            shard: explore::Shard::new(k, 4).unwrap(),
        };
        seeds.extend((0..range.len()).map(|i| range.seed(i)));
        let part = explore::explore_range(&s, range, 1, false, &quiet).unwrap();
        assert_eq!(part.seeds, range.len());
        assert!(part.failing.iter().all(|(seed, _)| range.contains(*seed)));
        combined = Some(match combined {
            None => part,
            Some(c) => c.combine(part),
        });
    }
    seeds.sort_unstable();
    assert_eq!(seeds, (3..800).collect::<Vec<_>>());
    assert_eq!(combined.unwrap(), whole);
}

#[test]
fn fencing_survives_every_seed_and_is_what_saves_it() {
    let s = load("fencing-explore.json");
    let report = explore::explore(&s, 0, 1_500, 2, false, &quiet).unwrap();
    assert_eq!(
        report.violations.get(&Property::UnsafeWrites),
        None,
        "{report:?}"
    );
    assert_eq!(
        report.violations.get(&Property::ForeignRelease),
        None,
        "{report:?}"
    );
    // Not vacuous: the same faults do break mutual exclusion, and without fencing the
    // resource does accept stale writes.
    assert!(
        report
            .violations
            .get(&Property::MutualExclusion)
            .copied()
            .unwrap_or(0)
            > 0
    );
    let mut unfenced = s.clone();
    unfenced.recipe.fencing = false;
    let report = explore::explore(&unfenced, 0, 1_500, 2, false, &quiet).unwrap();
    assert!(
        report
            .violations
            .get(&Property::UnsafeWrites)
            .copied()
            .unwrap_or(0)
            > 0,
        "{report:?}"
    );
}

/// A single-node lock with a 1 s TTL breaks exactly when a pause outlasts what is left of
/// the TTL (the pause starts 100-200 ms into a fresh lease): never for pauses up to 700 ms,
/// always for pauses of 1000 ms or more.
#[test]
fn single_node_locks_break_exactly_when_a_pause_outlasts_the_ttl() {
    let s = load("pause-vs-ttl-explore.json");
    let (mut short, mut long) = (0, 0);
    for seed in 0..300 {
        let run = explore::run_seed(&s, seed).unwrap();
        let pause = run.scenario.faults.iter().find_map(|f| match f.action {
            FaultAction::PauseClient { for_ms, .. } => Some(for_ms),
            _ => None,
        });
        let broken = run.verdict.outcome(Property::MutualExclusion) == Outcome::Violated;
        if run.scenario.clients.len() < 2 {
            // The seed left B out: with no contender nothing can break.
            assert!(!broken, "seed {seed}");
            continue;
        }
        match pause {
            None => assert!(!broken, "seed {seed}: no pause, yet broken"),
            Some(d) if d <= 700 => {
                short += 1;
                assert!(!broken, "seed {seed}: a {d} ms pause broke the lock");
            }
            Some(d) if d >= 1000 => {
                long += 1;
                assert!(broken, "seed {seed}: a {d} ms pause did not break the lock");
            }
            Some(_) => {}
        }
    }
    assert!(
        short > 10 && long > 10,
        "both sides sampled: {short} short, {long} long"
    );
}

#[test]
fn bad_exploration_input_is_refused() {
    let s = load("failover-explore.json");
    assert_eq!(
        explore::explore(&s, 0, 0, 2, false, &quiet),
        Err(explore::ExploreError::NoSeeds)
    );
    assert_eq!(
        explore::explore(&s, 0, 10, 0, false, &quiet),
        Err(explore::ExploreError::NoJobs)
    );
    let plain = load("failover-double-grant.json");
    assert!(matches!(
        explore::explore(&plain, 0, 10, 1, false, &quiet),
        Err(explore::ExploreError::NoFaultSpace(_))
    ));
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/failover-explore.json"),
    )
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&base).unwrap();
    v["fault_space"]["kinds"] = serde_json::json!([]);
    let e = Scenario::parse(&v.to_string(), Path::new("x.json")).unwrap_err();
    assert_eq!(e.field, "fault_space.kinds");
    assert!(e.reason.contains("empty fault space"), "{e}");
    let mut v: serde_json::Value = serde_json::from_str(&base).unwrap();
    v["fault_space"]["window_ms"] = serde_json::json!([500, 100]);
    let e = Scenario::parse(&v.to_string(), Path::new("x.json")).unwrap_err();
    assert_eq!(e.field, "fault_space.window_ms");
    let mut v: serde_json::Value = serde_json::from_str(&base).unwrap();
    v["fault_space"]["kinds"][1] = serde_json::json!({"promote": {"nodes": ["primary"]}});
    let e = Scenario::parse(&v.to_string(), Path::new("x.json")).unwrap_err();
    assert_eq!(e.field, "fault_space.kinds[1].promote");
    // The command line says so too, with exit code 2.
    for args in [vec!["--seeds", "0"], vec!["--jobs", "0"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_locksim"))
            .args(["explore", "scenarios/failover-explore.json"])
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("must be at least 1"));
    }
}

/// `tune-empirical.json` draws its client pauses from a Pareto distribution (scale 20 ms,
/// shape 1.2, cut at 5000 ms): the pauses seeds draw stay in [20, 5000] with the median
/// near 20 · 2^(1/1.2) ≈ 35.6 ms; and a shrunk failure, written to another directory, still
/// finds its work-time file and replays its violation.
#[test]
fn heavy_tailed_pauses_follow_their_distribution_and_a_shrunk_file_keeps_its_data() {
    let s = load("tune-empirical.json");
    let mut pauses = Vec::new();
    for seed in 0..400 {
        let run = explore::run_seed(&s, seed).unwrap();
        for f in &run.scenario.faults {
            if let FaultAction::PauseClient { for_ms, .. } = f.action {
                pauses.push(for_ms);
            }
        }
    }
    pauses.sort_unstable();
    assert!(pauses.len() > 100, "{}", pauses.len());
    assert!(
        pauses[0] >= 20 && *pauses.last().unwrap() <= 5000,
        "{pauses:?}"
    );
    let median = pauses[pauses.len() / 2];
    assert!((28..=46).contains(&median), "median {median}");
    let report = explore::explore(&s, 0, 400, 2, false, &quiet).unwrap();
    let (seed, _) = report.failing.first().expect("a long pause breaks a seed");
    let shrunk = explore::shrink(&s, *seed, Some(Property::MutualExclusion)).unwrap();
    let dir = std::env::temp_dir().join(format!("locksim-relocated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("shrunk.json");
    let text = serde_json::to_string_pretty(&shrunk.scenario.relocated(&out)).unwrap();
    std::fs::write(&out, text).unwrap();
    let reread = Scenario::load(&out).unwrap_or_else(|e| panic!("{e}"));
    let data = |d: &locksim::scenario::Dist| match d {
        locksim::scenario::Dist::Empirical(e) => e.data().cloned(),
        d => panic!("not empirical: {d:?}"),
    };
    assert!(data(&reread.clients[0].work_ms).is_some());
    // The reference written names the shipped file from where the scenario now is.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let written = v["clients"][0]["work_ms"]["samples_file"].as_str().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/work-ms.txt");
    assert_eq!(
        dir.join(written).canonicalize().unwrap(),
        shipped.canonicalize().unwrap()
    );
    assert_eq!(
        data(&reread.clients[0].work_ms),
        data(&shrunk.scenario.clients[0].work_ms)
    );
    let played = locksim::play::play_sim(&reread, None);
    assert!(played.matches_expect(), "{}", played.verdict.summary());
}
