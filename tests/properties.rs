//! Property tests over random fault schedules.

use locksim::checker::{Outcome, Property};
use locksim::play::play_sim;
use locksim::scenario::{Fault, FaultAction, Scenario};
use proptest::prelude::*;
use std::path::Path;

fn gc_fencing() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/gc-pause-fencing.json");
    Scenario::load(&path).unwrap()
}

/// One random fault against the single-node topology of `gc-pause-fencing`.
fn fault() -> impl Strategy<Value = Fault> {
    let client = prop_oneof![Just("A"), Just("B")].prop_map(String::from);
    let action = prop_oneof![
        (client.clone(), 1u64..20_000)
            .prop_map(|(client, for_ms)| FaultAction::PauseClient { client, for_ms }),
        (1u64..5_000).prop_map(|for_ms| FaultAction::PauseNode {
            node: "redis".into(),
            for_ms: Some(for_ms)
        }),
        Just(FaultAction::Crash("redis".into())),
        any::<bool>().prop_map(|persistence| FaultAction::Restart {
            node: "redis".into(),
            persistence
        }),
        (client.clone(), -20_000i64..20_000)
            .prop_map(|(target, by_ms)| FaultAction::ClockJump { target, by_ms }),
        (-20_000i64..20_000).prop_map(|by_ms| FaultAction::ClockJump {
            target: "redis".into(),
            by_ms
        }),
        client.clone().prop_map(FaultAction::CrashClient),
        (client, 1u64..10_000).prop_map(|(c, d)| FaultAction::Partition {
            between: vec![c],
            and: vec!["redis".into()],
            for_ms: Some(d),
            mode: Default::default(),
        }),
    ];
    (0u64..25_000, action).prop_map(|(at_ms, action)| Fault::at(at_ms, action))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The safe recipe with fencing tokens checked by the resource never lets a stale write
    /// through, whatever pauses, crashes, restarts, clock jumps and partitions strike.
    #[test]
    fn fencing_never_accepts_a_stale_write(faults in proptest::collection::vec(fault(), 0..6), seed in any::<u64>()) {
        let mut s = gc_fencing();
        s.faults = faults;
        s.clients[0].iterations = 3;
        s.clients[1].iterations = 3;
        let played = play_sim(&s, Some(seed));
        prop_assert_eq!(played.verdict.outcome(Property::UnsafeWrites), Outcome::Holds, "{}", played.verdict.summary());
    }

    /// The same scenario and seed always produce the identical history.
    #[test]
    fn same_seed_same_history(faults in proptest::collection::vec(fault(), 0..6), seed in any::<u64>()) {
        let mut s = gc_fencing();
        s.faults = faults;
        let a = play_sim(&s, Some(seed)).records;
        let b = play_sim(&s, Some(seed)).records;
        prop_assert_eq!(a, b);
    }
}

/// The property above is not vacuous: without fencing the same kind of schedule does let
/// stale writes through.
#[test]
fn without_fencing_the_pause_lets_a_stale_write_through() {
    let mut s = gc_fencing();
    s.recipe.fencing = false;
    let played = play_sim(&s, None);
    assert_eq!(
        played.verdict.outcome(Property::UnsafeWrites),
        Outcome::Violated
    );
}
