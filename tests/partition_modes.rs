//! One meaning of a partition on every backend: `scenarios/partition-{hold,reset,blackhole}.json`
//! cut client A off its node while the run goes on. Each is played on every backend it lists
//! (the simulator, real `redis-server` processes, Redis containers) and must give the same
//! verdict there, and show in its history the fact that makes its mode what it is:
//!
//! - hold: A's release, sent during the cut, is answered (not an error) only after the heal:
//!   it was delivered and executed late (and deleted B's lock: mutual exclusion violated);
//! - reset: A's release fails with an error at once (within a few ms), and nothing of A's is
//!   answered late;
//! - blackhole: A's release gets no answer within its request timeout, and fails with an
//!   error only when its connection is closed at the heal; it was never executed (mutual
//!   exclusion holds).
//!
//! The real backends need redis-server and a Docker engine with the image
//! (`LOCKSIM_REDIS_IMAGE`, default `locksim/redis:local`); with `CI` set their absence is a
//! failure, otherwise those backends print SKIPPED.

mod common;
use common::load;
use live::containers::{self, Containers};
use locksim::checker::{Event, Injected, Outcome, PartitionMode, Property, Record};
use locksim::lock_core::{Op, Reply};
use locksim::play::{play_live, play_processes, play_sim, Played};
use locksim::scenario::{Backend, FaultAction, Scenario};
use std::sync::Arc;

/// Real time may run this much behind the schedule before a fact counts as false.
const SLACK_US: u64 = 50_000;

/// The cut's start and end (µs) and mode, as the scenario schedules it.
fn the_cut(s: &Scenario) -> (u64, u64, PartitionMode) {
    let f = &s.faults[0];
    match &f.action {
        FaultAction::Partition {
            for_ms: Some(d),
            mode,
            ..
        } => (f.at_ms * 1000, (f.at_ms + d) * 1000, *mode),
        other => panic!(
            "{}: the first fault is no timed partition: {other:?}",
            s.name
        ),
    }
}

/// A's release that left during the cut: when it left, when its reply came, and the reply.
fn release_in_cut(records: &[Record], from: u64, to: u64) -> (u64, u64, Reply) {
    let sent = records.iter().find_map(|r| match &r.event {
        Event::CommandSent {
            client,
            request,
            op: Op::Release,
            ..
        } if client == "A" && (from..to).contains(&r.t_us) => Some((r.t_us, *request)),
        _ => None,
    });
    let (sent_at, id) = sent.expect("A sends its release during the cut");
    let reply = records.iter().find_map(|r| match &r.event {
        Event::ReplyReceived {
            client,
            request,
            reply,
            ..
        } if client == "A" && *request == id => Some((r.t_us, reply.clone())),
        _ => None,
    });
    let (at, reply) = reply.expect("A's release is answered, one way or another");
    (sent_at, at, reply)
}

/// Asserts the mode's fact on one backend's history; `what` names the run.
fn assert_fact(s: &Scenario, played: &Played, what: &str) {
    let (cut, heal, mode) = the_cut(s);
    // The history records the mode only when it is not the default.
    let recorded = played.records.iter().find_map(|r| match &r.event {
        Event::Fault(Injected::Partition { mode, .. }) => Some(*mode),
        _ => None,
    });
    assert_eq!(recorded, Some(mode), "{what}: the fault record's mode");
    let (sent, replied, reply) = release_in_cut(&played.records, cut, heal);
    let error = matches!(reply, Reply::Error(_));
    let timeout_us = s.recipe.request_timeout_ms * 1000;
    match mode {
        PartitionMode::Hold => {
            assert!(!error, "{what}: the held release is executed: {reply:?}");
            assert!(
                replied + SLACK_US >= heal,
                "{what}: answered at {replied} µs, before the heal at {heal} µs"
            );
        }
        PartitionMode::Reset => {
            assert!(error, "{what}: a reset cut fails the release: {reply:?}");
            assert!(
                replied - sent <= SLACK_US,
                "{what}: failed {} µs after it left, not at once",
                replied - sent
            );
            let late = played.records.iter().any(|r| {
                r.t_us >= heal
                    && matches!(&r.event, Event::ReplyReceived { client, reply, .. }
                        if client == "A" && r.t_us < heal + SLACK_US && !matches!(reply, Reply::Error(_)))
            });
            assert!(!late, "{what}: nothing of A's is delivered at the heal");
        }
        PartitionMode::Blackhole => {
            assert!(error, "{what}: a blackholed release fails: {reply:?}");
            assert!(
                replied - sent >= timeout_us,
                "{what}: answered {} µs after it left, within the request timeout",
                replied - sent
            );
            assert!(
                replied + SLACK_US >= heal,
                "{what}: failed at {replied} µs, before the heal at {heal} µs closed it"
            );
        }
    }
}

/// Asserts the run met its `expect` (the verdicts differ by mode) and its mode's fact.
fn assert_run(s: &Scenario, played: &Played, backend: &str) {
    let what = format!("{} on {backend}", s.name);
    assert!(
        played.matches_expect(),
        "{what}: {:?}\n{}",
        played.mismatches,
        played.verdict.summary()
    );
    assert_fact(s, played, &what);
}

const FILES: [&str; 3] = [
    "partition-hold.json",
    "partition-reset.json",
    "partition-blackhole.json",
];

#[test]
fn the_modes_differ_in_verdict_and_every_file_lists_every_backend() {
    let want = [Outcome::Violated, Outcome::Holds, Outcome::Holds];
    for (file, want) in FILES.iter().zip(want) {
        let s = load(file);
        for b in [Backend::Sim, Backend::Processes, Backend::Containers] {
            assert!(s.supports(b), "{file} lists {b:?}");
        }
        assert_eq!(
            s.expect.get(&Property::MutualExclusion),
            Some(&want),
            "{file}"
        );
    }
}

#[test]
fn each_mode_does_its_own_thing_on_the_simulator() {
    for file in FILES {
        let s = load(file);
        assert_run(&s, &play_sim(&s, None), "sim");
    }
}

/// Whether redis-server is here; in CI its absence fails the test.
fn redis_available() -> bool {
    match live::processes::find_redis_server() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("{e}: CI must run this test"),
        Err(e) => {
            eprintln!("SKIPPED (not in CI): {e}");
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mode_does_the_same_on_real_redis_processes() {
    if !redis_available() {
        return;
    }
    for file in FILES {
        let s = load(file);
        let (played, _) = play_processes(&s, None)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_run(&s, &played, "processes");
    }
}

/// The image the test runs: `LOCKSIM_REDIS_IMAGE`, or the locally built one.
fn test_image() -> String {
    std::env::var(containers::IMAGE_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "locksim/redis:local".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mode_does_the_same_on_redis_containers() {
    let ready = match containers::engine_available().await {
        Ok(()) => containers::image_available(&test_image()).await,
        Err(e) => Err(e),
    };
    if let Err(e) = ready {
        if std::env::var_os("CI").is_some() {
            panic!("CI must run this test, but: {}", live::chain(&e));
        }
        eprintln!("SKIPPED (not in CI): {}", live::chain(&e));
        return;
    }
    for file in FILES {
        let s = load(file);
        let c = Arc::new(
            Containers::start_with_image(&s.topology, false, &test_image())
                .await
                .unwrap_or_else(|e| {
                    panic!("{file}: containers did not start: {}", live::chain(&e))
                }),
        );
        let run = c.run_id().to_string();
        let result = play_live(&s, c.clone(), None).await;
        drop(
            Arc::try_unwrap(c)
                .ok()
                .expect("the test holds the last handle"),
        );
        let (cs, ns) = containers::leftovers(&run).await.expect("engine answers");
        assert!(cs.is_empty() && ns.is_empty(), "left behind: {cs:?} {ns:?}");
        let (played, _) = result.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_run(&s, &played, "containers");
    }
}
