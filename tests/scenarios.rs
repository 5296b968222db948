//! Every scenario file in `scenarios/` loads, and is a regression test: play it on the
//! simulator (when it lists the `sim` backend) and assert its `expect`.

use locksim::play::play_sim;
use locksim::scenario::{Backend, Scenario};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The folders whose scenario files this suite plays: `scenarios/` and its fault spaces,
/// `scenarios/spaces/` (`scenarios/clients/` is played by `tests/adapters.rs`).
const FOLDERS: [&str; 2] = ["scenarios", "scenarios/spaces"];

/// Every `.json` file in [`FOLDERS`], sorted, loaded. A file that does not load fails the
/// test that asked, with the loader's error: no file is skipped for being broken.
fn scenario_files() -> Vec<(PathBuf, Scenario)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<PathBuf> = FOLDERS
        .iter()
        .flat_map(|dir| {
            std::fs::read_dir(root.join(dir))
                .unwrap_or_else(|e| panic!("{dir}: {e}"))
                .map(|e| e.expect("readable entry").path())
        })
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut loaded = Vec::new();
    let mut broken = Vec::new();
    for path in paths {
        match Scenario::load(&path) {
            Ok(s) => loaded.push((path, s)),
            Err(e) => broken.push(e.to_string()),
        }
    }
    assert!(
        broken.is_empty(),
        "scenario files that do not load:\n{}",
        broken.join("\n")
    );
    loaded
}

#[test]
fn every_scenario_file_loads() {
    let files = scenario_files();
    assert!(
        files.len() >= 40,
        "expected the shipped scenarios, found {}",
        files.len()
    );
    let spaces = files
        .iter()
        .filter(|(p, _)| p.parent().is_some_and(|d| d.ends_with("scenarios/spaces")))
        .count();
    assert!(
        spaces >= 14,
        "expected the fault spaces of scenarios/spaces/, found {spaces}"
    );
}

#[test]
fn every_scenario_file_meets_its_expect() {
    // Every file must load (scenario_files fails otherwise); those that do not list the
    // simulator are only not played here.
    let files: Vec<_> = scenario_files()
        .into_iter()
        .filter(|(_, s)| s.supports(Backend::Sim))
        .collect();
    assert!(
        files.len() >= 27,
        "expected the shipped simulator scenarios, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for (file, scenario) in &files {
        let played = play_sim(scenario, None);
        for (p, want, got) in &played.mismatches {
            failures.push(format!(
                "{}: {p} expected {want:?}, got {got:?}\n{}",
                file.display(),
                played.verdict.summary()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// JSON pointers of the leaves where `a` and `b` differ (a leaf, or a subtree present on one
/// side only, or an array of another length, counts as one difference).
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let here = format!("{at}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => differences(v, w, &here, out),
                    _ => out.push(here),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                differences(v, w, &format!("{at}/{i}"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(at.to_string()),
    }
}

/// Each pitfall pair differs in the recipe only: the two whole scenarios (as loaded, defaults
/// filled in) are compared field by field, and besides the recipe only the name, description
/// and expect may differ, plus what is listed for that pair with the reason why.
#[test]
fn pitfall_pairs_share_everything_but_the_recipe() {
    /// (broken, safe, [(JSON pointer that may differ too, why)]).
    type Pair = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    );
    let pairs: [Pair; 15] = [
        ("pitfall-setnx-then-expire", "safe-set-nx-px-after-crash", &[]),
        ("pitfall-fixed-value", "safe-unique-token", &[]),
        ("pitfall-plain-del", "safe-compare-and-delete", &[]),
        ("pitfall-no-ttl", "safe-ttl-after-holder-crash", &[]),
        ("pitfall-ttl-shorter-than-work", "safe-watchdog", &[]),
        ("pitfall-unlimited-retries", "safe-retry-limit", &[]),
        ("pitfall-no-drift-factor", "safe-drift-factor", &[]),
        ("set-once-plain-set", "set-once-set-nx", &[]),
        ("gc-pause", "gc-pause-fencing", &[]),
        ("pitfall-plain-pexpire", "safe-compare-and-pexpire", &[]),
        (
            "pitfall-get-then-del",
            "safe-compare-and-delete-paused",
            &[(
                "/faults/0/after/forwarded/command",
                "the pause follows the release's first command, which is GET in the one and the script (EVALSHA) in the other",
            )],
        ),
        ("pitfall-watchdog-not-cancelled", "safe-watchdog-cancelled", &[]),
        ("pitfall-unchecked-validity", "safe-checked-validity", &[]),
        (
            "pitfall-resent-counting-acquire",
            "safe-counting-acquire-not-resent",
            &[],
        ),
        (
            "redlock-restart-without-persistence",
            "redlock-restart-with-persistence",
            &[(
                "/faults/3/restart/persistence",
                "this pair's fix is the restarted node keeping its data, a fault, not a recipe field",
            )],
        ),
    ];
    const ALWAYS: [&str; 4] = ["/recipe", "/name", "/description", "/expect"];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut problems = Vec::new();
    for (broken, safe, extra) in pairs {
        let b = Scenario::load(&dir.join(format!("{broken}.json"))).unwrap();
        let s = Scenario::load(&dir.join(format!("{safe}.json"))).unwrap();
        let mut diff = Vec::new();
        differences(
            &serde_json::to_value(&b).unwrap(),
            &serde_json::to_value(&s).unwrap(),
            "",
            &mut diff,
        );
        let allowed = |d: &str, prefix: &str| {
            d == prefix || d.strip_prefix(prefix).is_some_and(|r| r.starts_with('/'))
        };
        for d in &diff {
            let listed = ALWAYS
                .iter()
                .chain(extra.iter().map(|(p, _)| p))
                .any(|p| allowed(d, p));
            if !listed {
                problems.push(format!("{broken} vs {safe}: they differ at {d}"));
            }
        }
        // A listed difference that is gone must be unlisted, not linger as a loophole.
        for (p, why) in extra {
            if !diff.iter().any(|d| allowed(d, p)) {
                problems.push(format!(
                    "{broken} vs {safe}: {p} is listed as differing ({why}) but does not"
                ));
            }
        }
        let broken_played = play_sim(&b, None);
        let safe_played = play_sim(&s, None);
        // The broken one violates something the safe one keeps.
        let fixed = b.expect.iter().any(|(p, o)| {
            *o == locksim::checker::Outcome::Violated
                && safe_played.verdict.outcome(*p) == locksim::checker::Outcome::Holds
                && broken_played.verdict.outcome(*p) == locksim::checker::Outcome::Violated
        });
        if !fixed {
            problems.push(format!("{safe} does not fix what {broken} breaks"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The simulated Sentinels lose a primary that a partition cuts off from its replicas: they
/// promote the replica while the clients still reach the old primary (split brain), and when
/// the partition heals the old primary rejoins as a replica. A partition healed before
/// `down_after_ms` fails nothing over.
#[test]
fn sentinels_fail_over_a_partitioned_primary_only_after_down_after() {
    use locksim::checker::{Event, Outcome, Property};
    use locksim::scenario::FaultAction;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/split-brain.json");
    let scenario = Scenario::load(&path).unwrap();
    use locksim::checker::{Effect, PromotedBy};
    // What the simulated Sentinels did: promotions they made and old primaries rejoining.
    let sentinel = |p: &locksim::play::Played| -> Vec<(u64, Effect)> {
        p.records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Observed(
                    e @ (Effect::Promoted {
                        by: PromotedBy::Sentinel,
                        ..
                    }
                    | Effect::Rejoined { .. }),
                ) => Some((r.t_us / 1000, e.clone())),
                _ => None,
            })
            .collect()
    };
    let split = play_sim(&scenario, None);
    assert_eq!(
        sentinel(&split),
        [
            (
                1200,
                Effect::Promoted {
                    node: "replica-1".into(),
                    by: PromotedBy::Sentinel
                }
            ),
            (
                6200,
                Effect::Rejoined {
                    node: "primary".into(),
                    primary: "replica-1".into()
                }
            ),
        ]
    );
    assert_eq!(
        split.verdict.outcome(Property::MutualExclusion),
        Outcome::Violated
    );

    let mut short = scenario.clone();
    let FaultAction::Partition { for_ms, .. } = &mut short.faults[0].action else {
        panic!("split-brain.json starts with its partition");
    };
    *for_ms = Some(500);
    let healed = play_sim(&short, None);
    assert!(sentinel(&healed).is_empty(), "{:?}", sentinel(&healed));
    assert_eq!(
        healed.verdict.outcome(Property::MutualExclusion),
        Outcome::Holds
    );
}
