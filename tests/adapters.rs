//! The shipped adapters (adapters/README.md): real lock libraries played under locksim's faults
//! on real `redis-server` processes, and what they really do, asserted.
//!
//! These tests need Debian's redis-server and the adapters (`scripts/install-adapters.sh`, which
//! `scripts/test.sh` runs). With `CI` set, a missing server or adapter is a failure.

use live::processes::find_redis_server;
use locksim::checker::{Effect, Event, Outcome, Property, Record};
use locksim::play::{play_processes, Played};
use locksim::scenario::{Program, Scenario};
use std::path::Path;

/// Every shipped adapter.
const ADAPTERS: [&str; 6] = [
    "redis-py",
    "pottery",
    "python-redis-lock",
    "aioredlock",
    "rslock",
    "redis-cli",
];

/// Whether redis-server and the installed adapters are here; in CI their absence fails.
fn ready() -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let missing: Vec<String> = [
        "target/adapters/venv/bin/python",
        "target/adapters/cargo/release/locksim-adapter-rslock",
    ]
    .iter()
    .filter(|p| !root.join(p).exists())
    .map(|p| p.to_string())
    .collect();
    let problem = match find_redis_server() {
        Err(e) => Some(e.to_string()),
        Ok(_) if !missing.is_empty() => Some(format!(
            "the adapters are not installed ({} missing): run scripts/install-adapters.sh",
            missing.join(", ")
        )),
        Ok(_) => None,
    };
    match problem {
        None => true,
        Some(p) if std::env::var_os("CI").is_some() => {
            panic!("{p} — CI must run the adapter tests: run scripts/test.sh")
        }
        Some(p) => {
            eprintln!("SKIPPED (not in CI): {p}");
            false
        }
    }
}

/// `file` (under the repository) with `adapter` in every client's place.
fn with_adapter(file: &str, adapter: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let mut s = Scenario::load(&path).expect("the scenario loads");
    s.backends.retain(|b| *b != locksim::scenario::Backend::Sim);
    for c in &mut s.clients {
        c.program = Some(Program::Adapter(adapter.into()));
    }
    s
}

fn play(s: &Scenario) -> Played {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match rt.block_on(play_processes(s, None)) {
        Ok((played, _)) => played,
        Err(e) => panic!("{}: {}", s.name, live::chain(&e)),
    }
}

fn when(records: &[Record], what: impl Fn(&Event) -> bool) -> Option<u64> {
    records.iter().find(|r| what(&r.event)).map(|r| r.t_us)
}

fn grants(records: &[Record], client: &str) -> usize {
    records
        .iter()
        .filter(|r| matches!(&r.event, Event::Acquired { client: c, .. } if c == client))
        .count()
}

#[test]
fn every_adapter_keeps_plain_contention_safe_and_fair() {
    if !ready() {
        return;
    }
    let mut wrong = Vec::new();
    for adapter in ADAPTERS {
        let played = play(&with_adapter("scenarios/clients/contention.json", adapter));
        let v = &played.verdict;
        let counts: Vec<usize> = ["A", "B", "C", "D"]
            .iter()
            .map(|c| grants(&played.records, c))
            .collect();
        if !v.is_conclusive()
            || v.outcome(Property::MutualExclusion) != Outcome::Holds
            || v.outcome(Property::UnsafeWrites) != Outcome::Holds
            || counts != [4, 4, 4, 4]
        {
            wrong.push(format!("{adapter}: grants {counts:?}\n{}", v.summary()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn redis_py_grants_twice_after_a_failover_in_which_the_primary_dropped_its_stalled_replica() {
    if !ready() {
        return;
    }
    let played = play(&with_adapter(
        "scenarios/clients/failover-repl-timeout.json",
        "redis-py",
    ));
    let r = &played.records;
    let dropped = when(r, |e| {
        matches!(e, Event::Observed(Effect::ReplicaDropped { .. }))
    });
    let a = when(
        r,
        |e| matches!(e, Event::Acquired { client, .. } if client == "A"),
    );
    let b = when(
        r,
        |e| matches!(e, Event::Acquired { client, .. } if client == "B"),
    );
    assert!(
        played.verdict.is_conclusive(),
        "{}",
        played.verdict.summary()
    );
    assert_eq!(
        played.verdict.outcome(Property::MutualExclusion),
        Outcome::Violated,
        "{}",
        played.verdict.summary()
    );
    // A was granted only after the primary dropped the replica, B after the promotion.
    assert!(
        dropped < a && a < b,
        "dropped {dropped:?}, A {a:?}, B {b:?}"
    );
}

#[test]
fn redis_py_paused_past_its_ttl_overlaps_b_and_its_release_raises_lock_not_owned() {
    if !ready() {
        return;
    }
    let played = play(&with_adapter("scenarios/clients/gc-pause.json", "redis-py"));
    assert_eq!(
        played.verdict.outcome(Property::MutualExclusion),
        Outcome::Violated,
        "{}",
        played.verdict.summary()
    );
    let error = played.records.iter().find_map(|r| match &r.event {
        Event::Released {
            client,
            error: Some(e),
            ..
        } if client == "A" => Some(e.clone()),
        _ => None,
    });
    let error = error.expect("A's release reported an error");
    assert!(error.starts_with("LockNotOwnedError"), "{error}");
}

#[test]
fn the_redis_cli_recipe_deletes_another_holders_lock_when_paused_between_get_and_del() {
    if !ready() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/redis-cli-get-del-race.json");
    let played = play(&Scenario::load(&path).unwrap());
    let r = &played.records;
    let forwarded = when(r, |e| {
        matches!(e, Event::Observed(Effect::Forwarded { client, command, .. }) if client == "A" && command == "GET")
    })
    .expect("A's GET was forwarded");
    let paused = when(r, |e| {
        matches!(e, Event::Observed(Effect::ClientPaused { .. }))
    })
    .unwrap();
    assert!(
        paused >= forwarded && paused - forwarded < 100_000,
        "GET {forwarded}, pause {paused}"
    );
    // The two holders at once are B and C, neither paused: A's DEL freed the first's lock.
    let overlap = played
        .verdict
        .findings
        .iter()
        .find(|f| f.property == Property::MutualExclusion)
        .unwrap_or_else(|| panic!("no double grant:\n{}", played.verdict.summary()));
    let mut who = overlap.clients.clone();
    who.sort();
    assert_eq!(who, ["B", "C"], "{}", played.verdict.summary());
    // The first holder's own GET then finds the other's token.
    let refused = r.iter().any(|r| {
        matches!(&r.event,
        Event::Released { error: Some(e), .. } if e.starts_with("NotOwnedError: GET returned '"))
    });
    assert!(refused, "{}", played.verdict.summary());
}

#[test]
fn rslock_survives_a_stalled_node_and_every_redlock_library_stays_safe() {
    if !ready() {
        return;
    }
    let file = "scenarios/clients/redlock-node-stalled.json";
    for adapter in ["rslock", "pottery", "aioredlock"] {
        let played = play(&with_adapter(file, adapter));
        assert!(
            played.verdict.is_conclusive(),
            "{adapter}: {}",
            played.verdict.summary()
        );
        assert_eq!(
            played.verdict.outcome(Property::MutualExclusion),
            Outcome::Holds,
            "{adapter}: {}",
            played.verdict.summary()
        );
        let r = &played.records;
        let b = when(
            r,
            |e| matches!(e, Event::Acquired { client, .. } if client == "B"),
        );
        let resumed = when(r, |e| matches!(e, Event::Heal(_)));
        let before = b.zip(resumed).is_some_and(|(b, h)| b < h);
        // rslock gets B the lock on the two live nodes while redis-1 is frozen. pottery (in
        // every run seen) and aioredlock (in most) block on the frozen node and grant B only
        // after it thaws; that depends on timing, so it is reported, not asserted.
        if adapter == "rslock" {
            assert!(before, "rslock: B {b:?}, redis-1 resumed {resumed:?}");
        } else {
            eprintln!("{adapter}: B granted before redis-1 resumed: {before}");
        }
    }
}

#[test]
fn every_card_scenario_meets_its_expect_with_locksims_own_recipe_on_the_simulator() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/clients");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 9, "the card's nine scenarios");
    let mut wrong = Vec::new();
    for f in &files {
        let s = Scenario::load(f).unwrap();
        assert!(
            s.clients.iter().all(|c| c.program.is_none()),
            "{}",
            f.display()
        );
        let played = locksim::play::play_sim(&s, None);
        if !played.matches_expect() {
            wrong.push(format!("{}:\n{}", f.display(), played.verdict.summary()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
