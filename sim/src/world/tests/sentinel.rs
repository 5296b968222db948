//! Sentinel: when it fails over, to which replica, and how an old primary rejoins.

use super::*;
use checker::PromotedBy;

/// A replicated topology with `replicas` replicas and a Sentinel whose `down_after_ms` is
/// 1 s.
fn with_sentinel(replicas: usize) -> String {
    replicated(replicas, 0.0, r#""sentinel": {"down_after_ms": 1000},"#)
}

/// When Sentinel promoted `node`, in ms.
fn promoted(w: &World<'_>, node: &str) -> Vec<f64> {
    w.observed_at(&Seen::Promoted {
        node: node.into(),
        by: PromotedBy::Sentinel,
    })
}

/// Every promotion by Sentinel.
fn promotions(w: &World<'_>) -> usize {
    let by_sentinel = |e: &H| {
        matches!(
            e,
            H::Observed(Seen::Promoted {
                by: PromotedBy::Sentinel,
                ..
            })
        )
    };
    w.records_where(by_sentinel).len()
}

#[test]
fn sentinel_promotes_a_replica_only_after_down_after() {
    let sc = scenario(&with_sentinel(1), r#"{"at_ms": 10, "crash": "primary"}"#);
    let mut w = world(&sc);
    w.play_until(1009);
    assert_eq!(w.primary, w.node("primary"));
    assert_eq!(promotions(&w), 0);
    w.play_until(1010);
    assert_eq!(promoted(&w, "replica-1"), [1010.0]);
    assert_eq!(w.primary, w.node("replica-1"));
}

#[test]
fn a_paused_primary_is_down_for_sentinel_too() {
    let pause = r#"{"at_ms": 10, "pause_node": {"node": "primary", "for_ms": 5000}}"#;
    let sc = scenario(&with_sentinel(1), pause);
    let mut w = world(&sc);
    w.play_until(DURATION_MS - 1);
    assert_eq!(promoted(&w, "replica-1"), [1010.0]);
}

#[test]
fn a_primary_back_before_down_after_is_not_replaced() {
    let faults = r#"{"at_ms": 10, "crash": "primary"},
        {"at_ms": 500, "restart": {"node": "primary", "persistence": true}}"#;
    let sc = scenario(&with_sentinel(1), faults);
    let mut w = world(&sc);
    w.play_until(DURATION_MS - 1);
    assert_eq!(promotions(&w), 0);
    assert_eq!(w.primary, w.node("primary"));
}

#[test]
fn without_sentinel_nothing_is_promoted() {
    let sc = scenario(
        &replicated(1, 0.0, ""),
        r#"{"at_ms": 10, "crash": "primary"}"#,
    );
    let mut w = world(&sc);
    w.play_until(DURATION_MS - 1);
    assert_eq!(promotions(&w), 0);
}

#[test]
fn sentinels_still_reach_a_primary_cut_from_only_some_replicas() {
    let cut = r#"{"at_ms": 10, "partition": {"between": ["primary"], "and": ["replica-1"]}}"#;
    let sc = scenario(&with_sentinel(2), cut);
    let mut w = world(&sc);
    w.play_until(DURATION_MS - 1);
    assert_eq!(promotions(&w), 0);
    assert_eq!(w.nodes[w.node("primary")].down_since, None);
}

#[test]
fn sentinels_lose_a_primary_cut_from_every_replica() {
    let cut = r#"{"at_ms": 10, "partition": {"between": ["primary"], "and": ["replica-1", "replica-2"]}}"#;
    let sc = scenario(&with_sentinel(2), cut);
    let mut w = world(&sc);
    w.play_until(DURATION_MS - 1);
    assert_eq!(promoted(&w, "replica-1"), [1010.0]);
    assert_eq!(promotions(&w), 1);
}

#[test]
fn a_client_cut_from_the_primary_does_not_make_it_down() {
    let cut = r#"{"at_ms": 10, "partition": {"between": ["primary"], "and": ["A", "resource"]}}"#;
    let sc = scenario(&with_sentinel(1), cut);
    let mut w = world(&sc);
    w.play_until(DURATION_MS - 1);
    assert_eq!(promotions(&w), 0);
}

#[test]
fn sentinel_promotes_the_replica_with_the_most_acknowledged_writes() {
    // replica-1 misses the write (its link is cut), replica-2 acknowledges it.
    let faults = r#"{"at_ms": 0, "partition": {"between": ["primary"], "and": ["replica-1"]}},
        {"at_ms": 100, "crash": "primary"}"#;
    let sc = scenario(&with_sentinel(2), faults);
    let mut w = world(&sc);
    w.play_until(1);
    w.write(w.node("primary"), "v1");
    w.play_until(DURATION_MS - 1);
    assert_eq!(promoted(&w, "replica-2"), [1100.0]);
    assert_eq!(promotions(&w), 1);
    assert_eq!(w.value_on(w.node("replica-2")), Some("v1"));
    // replica-1 follows the new primary, and a full resync gives it the write.
    assert_eq!(w.value_on(w.node("replica-1")), Some("v1"));
}

#[test]
fn among_equally_up_to_date_replicas_sentinel_promotes_the_first() {
    let sc = scenario(&with_sentinel(2), r#"{"at_ms": 100, "crash": "primary"}"#);
    let mut w = world(&sc);
    w.play_until(1);
    w.write(w.node("primary"), "v1");
    w.play_until(DURATION_MS - 1);
    assert_eq!(promoted(&w, "replica-1"), [1100.0]);
    assert_eq!(promotions(&w), 1);
}

#[test]
fn with_no_replica_answering_sentinel_promotes_nobody() {
    let faults = r#"{"at_ms": 5, "crash": "replica-1"}, {"at_ms": 10, "crash": "primary"}"#;
    let sc = scenario(&with_sentinel(1), faults);
    let mut w = world(&sc);
    w.play_until(DURATION_MS - 1);
    assert_eq!(promotions(&w), 0);
}

#[test]
fn after_the_heal_the_old_primary_rejoins_as_a_replica_and_loses_its_writes() {
    let cut = r#"{"at_ms": 10, "partition": {"between": ["primary"], "and": ["replica-1"], "for_ms": 2000}}"#;
    let sc = scenario(&with_sentinel(1), cut);
    let mut w = world(&sc);
    let (old, new) = (w.node("primary"), w.node("replica-1"));
    w.play_until(1010);
    assert_eq!(w.primary, new);
    w.play_until(1500);
    // Split brain: the old primary still takes writes from whoever reaches it.
    assert_eq!(w.write(old, "stale"), Reply::Ok);
    assert_eq!(w.write(new, "fresh"), Reply::Ok);
    w.play_until(2009);
    assert_eq!(w.value_on(old), Some("stale"));
    w.play_until(2010);
    let rejoined = Seen::Rejoined {
        node: "primary".into(),
        primary: "replica-1".into(),
    };
    assert_eq!(w.observed_at(&rejoined), [2010.0]);
    assert_eq!(w.nodes[old].role, Role::Replica { of: new });
    assert_eq!(
        w.value_on(old),
        Some("fresh"),
        "a full resync replaced its data"
    );
    assert_eq!(w.nodes[old].down_since, None);
}
