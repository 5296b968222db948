//! Fault names are resolved once, when the world is built; a name that names nothing stops
//! the run before it starts, recorded as inconclusive, and is never read as node 0.

use super::*;
use crate::network::Party;
use crate::world::plan::{Step, Target};
use scenario::{ClockSpec, Fault, FaultAction};

/// A scenario built in code, past validation: a fault names a node that does not exist.
fn with_fault(action: FaultAction) -> Scenario {
    let mut sc = scenario(&replicated(1, 0.0, ""), "");
    sc.faults.push(Fault::at(10, action));
    sc
}

#[test]
fn names_resolve_to_the_nodes_and_clients_they_name() {
    let sc = scenario(
        &replicated(2, 0.0, ""),
        r#"{"at_ms": 1, "crash": "replica-2"},
           {"at_ms": 2, "clock_jump": {"target": "A", "by_ms": 5}},
           {"at_ms": 3, "clock_jump": {"target": "replica-1", "by_ms": 5}},
           {"at_ms": 4, "partition": {"between": ["A", "resource"], "and": ["primary"]}},
           {"at_ms": 5, "pause_client": {"client": "A", "for_ms": 5}}"#,
    );
    let w = world(&sc);
    let expected = [
        Step::Crash(2),
        Step::ClockJump {
            target: Target::Client(0),
            by_ms: 5,
        },
        Step::ClockJump {
            target: Target::Node(1),
            by_ms: 5,
        },
        Step::Partition {
            between: vec![Party::Client(0), Party::Resource],
            and: vec![Party::Node(0)],
            for_ms: None,
            mode: Default::default(),
        },
        Step::PauseClient {
            client: 0,
            for_ms: 5,
        },
    ];
    assert_eq!(w.plan, expected);
}

#[test]
fn an_unknown_node_is_an_error_not_node_0() {
    let sc = with_fault(FaultAction::Crash("primray".into()));
    assert!(
        World::new(&sc, 1).is_err(),
        "an unknown node must not build a world"
    );
    let Err(unknown) = crate::world::plan::resolve(&sc, &sc.topology.node_names()) else {
        panic!("an unknown node must not resolve");
    };
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].fault, 0);
    assert_eq!(unknown[0].name, "primray");
    assert_eq!(unknown[0].wanted, "node");
}

#[test]
fn a_run_with_an_unknown_name_is_not_played_and_says_why() {
    let mut sc = with_fault(FaultAction::Crash("primray".into()));
    sc.faults.push(Fault::at(
        20,
        FaultAction::Partition {
            between: vec!["A".into()],
            and: vec!["nobody".into()],
            for_ms: None,
            mode: Default::default(),
        },
    ));
    sc.faults
        .push(Fault::at(30, FaultAction::CrashClient("primary".into())));
    let run = crate::run(&sc, 1);
    assert_eq!(run.events, 0, "nothing is simulated");
    assert_eq!(run.cut_short, None);
    let events: Vec<&H> = run.records.iter().map(|r| &r.event).collect();
    assert!(matches!(events[0], H::RunStarted(_)));
    assert!(matches!(events[events.len() - 1], H::RunEnded {}));
    let reasons: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            H::Inconclusive { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].starts_with("not played: faults[0] ("),
        "{}",
        reasons[0]
    );
    assert!(reasons[0].contains("names `primray`, which is no node"));
    assert!(reasons[1].contains("faults[1]") && reasons[1].contains("`nobody`"));
    assert!(reasons[2].contains("faults[2]") && reasons[2].contains("which is no client"));
    let verdict = checker::check(&run.records, &sc.checker);
    assert!(!verdict.is_conclusive());
}

#[test]
fn a_clock_for_an_unknown_node_or_client_is_not_played() {
    let mut sc = scenario(&replicated(1, 0.0, ""), "");
    sc.clocks
        .nodes
        .insert("primray".into(), ClockSpec::default());
    sc.clocks.clients.insert("Z".into(), ClockSpec::default());
    let run = crate::run(&sc, 1);
    let reasons: Vec<&str> = run
        .records
        .iter()
        .filter_map(|r| match &r.event {
            H::Inconclusive { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "not played: clocks.nodes.primray names `primray`, which is no node of this scenario",
            "not played: clocks.clients.Z names `Z`, which is no client of this scenario",
        ]
    );
    assert_eq!(run.events, 0);
}
