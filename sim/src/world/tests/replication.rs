//! Replication, `WAIT` and `repl-timeout`, one behaviour at a time.

use super::*;
use crate::node::WAIT_ON_REPLICA;
use checker::KeyChange;

/// The history's key changes on node `node`, as (ms, change, replicated).
fn key_changes(w: &World<'_>, node: &str) -> Vec<(f64, KeyChange, bool)> {
    w.records
        .iter()
        .filter_map(|r| match &r.event {
            H::KeyChanged {
                node: n,
                change,
                replicated,
                ..
            } if n == node => Some((r.t_us as f64 / MS as f64, *change, *replicated)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_write_on_the_primary_reaches_the_replica_after_the_lag() {
    let sc = scenario(&replicated(1, 50.0, ""), "");
    let mut w = world(&sc);
    let (primary, replica) = (w.node("primary"), w.node("replica-1"));
    assert_eq!(w.write(primary, "v1"), Reply::Ok);
    assert_eq!(w.value_on(primary), Some("v1"));
    w.play_until(50);
    assert_eq!(w.value_on(replica), None, "shipped at 50 ms, not there yet");
    w.play_until(51);
    assert_eq!(w.value_on(replica), Some("v1"));
    // 50 ms of lag and 0.2 ms on the link; then 0.2 ms back with the acknowledgement.
    assert_eq!(key_changes(&w, "replica-1"), [(50.2, KeyChange::Set, true)]);
    assert_eq!(w.nodes[primary].acked.get(&replica), Some(&1));
}

#[test]
fn a_replica_refuses_writes() {
    let sc = scenario(&replicated(1, 0.0, ""), "");
    let mut w = world(&sc);
    let replica = w.node("replica-1");
    assert!(matches!(w.write(replica, "v"), Reply::Error(e) if e.starts_with("READONLY")));
    assert_eq!(w.value_on(replica), None);
}

#[test]
fn a_cut_replica_link_holds_writes_back_and_the_heal_flushes_them_in_order() {
    let cut = r#"{"at_ms": 10, "partition": {"between": ["primary"], "and": ["replica-1"], "for_ms": 1000}}"#;
    let sc = scenario(&replicated(1, 5.0, ""), cut);
    let mut w = world(&sc);
    let (primary, replica) = (w.node("primary"), w.node("replica-1"));
    w.play_until(20);
    w.write(primary, "v1");
    w.play_until(30);
    w.write(primary, "v2");
    w.play_until(1000);
    assert_eq!(w.value_on(replica), None, "the link is cut");
    assert_eq!(w.backlog.get(&(primary, replica)).map(Vec::len), Some(2));
    w.play_until(1010); // the heal, at 1010 ms: both writes leave
    assert!(w.backlog.is_empty());
    w.play_until(1011);
    assert_eq!(w.value_on(replica), Some("v2"), "the later write wins");
    let arrived = key_changes(&w, "replica-1");
    assert_eq!(
        arrived,
        [
            (1010.2, KeyChange::Set, true),
            (1010.2, KeyChange::Set, true)
        ]
    );
    assert_eq!(w.nodes[primary].acked.get(&replica), Some(&2));
}

#[test]
fn a_crashed_primarys_unreplicated_writes_are_lost_on_promote() {
    let faults = r#"{"at_ms": 10, "crash": "primary"}, {"at_ms": 20, "promote": "replica-1"}"#;
    let sc = scenario(&replicated(1, 50.0, ""), faults);
    let mut w = world(&sc);
    let (primary, replica) = (w.node("primary"), w.node("replica-1"));
    w.write(primary, "v1"); // at 0 ms, to leave at 50 ms: the crash at 10 ms kills it
    w.play_until(1000);
    assert_eq!(w.primary, replica);
    assert_eq!(w.value_on(replica), None);
    assert!(key_changes(&w, "replica-1").is_empty());
    // The new primary takes writes; the old one is down.
    assert_eq!(w.write(replica, "v2"), Reply::Ok);
    assert!(!w.nodes[primary].up);
}

#[test]
fn a_write_replicated_before_the_crash_survives_the_promote() {
    let faults = r#"{"at_ms": 100, "crash": "primary"}, {"at_ms": 110, "promote": "replica-1"}"#;
    let sc = scenario(&replicated(1, 50.0, ""), faults);
    let mut w = world(&sc);
    let replica = w.node("replica-1");
    w.write(w.node("primary"), "v1");
    w.play_until(1000);
    assert_eq!(w.primary, replica);
    assert_eq!(w.value_on(replica), Some("v1"));
}

#[test]
fn a_write_still_in_a_crashed_primarys_buffers_dies_with_it_even_if_it_restarts() {
    let faults = r#"{"at_ms": 10, "crash": "primary"},
        {"at_ms": 20, "restart": {"node": "primary", "persistence": true}}"#;
    let sc = scenario(&replicated(1, 50.0, ""), faults);
    let mut w = world(&sc);
    let (primary, replica) = (w.node("primary"), w.node("replica-1"));
    w.write(primary, "v1");
    w.play_until(1000);
    assert_eq!(w.value_on(primary), Some("v1"), "kept on disk");
    // The simulator does not resync a restarted primary's replicas (Redis would).
    assert_eq!(
        w.value_on(replica),
        None,
        "the stream from the old life is gone"
    );
}

#[test]
fn a_paused_primary_streams_its_writes_when_it_resumes() {
    let pause = r#"{"at_ms": 10, "pause_node": {"node": "primary", "for_ms": 100}}"#;
    let sc = scenario(&replicated(1, 50.0, ""), pause);
    let mut w = world(&sc);
    w.write(w.node("primary"), "v1");
    w.play_until(1000);
    assert_eq!(
        key_changes(&w, "replica-1"),
        [(110.2, KeyChange::Set, true)]
    );
}

/// Two replicas, 10 ms of lag, and replica-2 cut off from the primary for the whole run.
fn one_of_two_replicas_cut() -> Scenario {
    let cut = r#"{"at_ms": 0, "partition": {"between": ["primary"], "and": ["replica-2"]}}"#;
    scenario(&replicated(2, 10.0, ""), cut)
}

#[test]
fn wait_returns_as_soon_as_enough_replicas_acknowledged() {
    let sc = one_of_two_replicas_cut();
    let mut w = world(&sc);
    let primary = w.node("primary");
    w.play_until(1);
    w.write(primary, "v1");
    assert_eq!(
        w.wait(primary, (0, 0), RequestId(7), 1, 500),
        None,
        "it blocks"
    );
    let replies = w.play_until(1000);
    // Shipped at 11 ms, applied at 11.2 ms, acknowledged at 11.4 ms; replied at 11.6 ms.
    let expected = Replied {
        t_us: 11_600,
        request: RequestId(7),
        reply: Reply::Int(1),
    };
    assert_eq!(replies, [expected]);
    assert!(w.nodes[primary].waits.is_empty());
}

#[test]
fn wait_returns_the_replicas_that_acknowledged_within_the_timeout() {
    let sc = one_of_two_replicas_cut();
    let mut w = world(&sc);
    let primary = w.node("primary");
    w.play_until(1);
    w.write(primary, "v1");
    assert_eq!(w.wait(primary, (0, 0), RequestId(8), 2, 500), None);
    assert!(w.play_until(500).is_empty(), "nothing before the timeout");
    let replies = w.play_until(1000);
    let expected = Replied {
        t_us: 501_200, // the timeout at 501 ms, plus 0.2 ms to the client
        request: RequestId(8),
        reply: Reply::Int(1),
    };
    assert_eq!(replies, [expected]);
}

#[test]
fn wait_with_enough_replicas_already_answers_at_once() {
    let sc = one_of_two_replicas_cut();
    let mut w = world(&sc);
    let primary = w.node("primary");
    w.play_until(1);
    w.write(primary, "v1");
    assert_eq!(
        w.wait(primary, (0, 0), RequestId(2), 0, 500),
        Some(Reply::Int(0))
    );
    w.play_until(100);
    assert_eq!(
        w.wait(primary, (0, 0), RequestId(3), 1, 500),
        Some(Reply::Int(1))
    );
}

#[test]
fn wait_with_timeout_zero_blocks_until_enough_replicas_acknowledged() {
    let sc = one_of_two_replicas_cut();
    let mut w = world(&sc);
    let primary = w.node("primary");
    w.play_until(1);
    w.write(primary, "v1");
    assert_eq!(w.wait(primary, (0, 0), RequestId(9), 2, 0), None);
    assert!(w.play_until(DURATION_MS - 1).is_empty(), "never times out");
    assert_eq!(w.nodes[primary].waits.len(), 1);
}

#[test]
fn wait_on_a_replica_is_refused() {
    let sc = scenario(&replicated(1, 0.0, ""), "");
    let mut w = world(&sc);
    let replica = w.node("replica-1");
    let reply = w.wait(replica, (0, 0), RequestId(1), 1, 100);
    assert_eq!(reply, Some(Reply::Error(WAIT_ON_REPLICA.into())));
}

/// A `repl-timeout` of 1 s, and replica-1 paused at 100 ms for `for_ms`.
fn replica_paused_for(for_ms: u64) -> Scenario {
    let pause =
        format!(r#"{{"at_ms": 100, "pause_node": {{"node": "replica-1", "for_ms": {for_ms}}}}}"#);
    scenario(&replicated(1, 0.0, r#""repl_timeout_ms": 1000,"#), &pause)
}

fn dropped() -> Seen {
    Seen::ReplicaDropped {
        primary: "primary".into(),
        replica: "replica-1".into(),
    }
}

#[test]
fn a_replica_silent_for_repl_timeout_is_dropped() {
    let sc = replica_paused_for(2000);
    let mut w = world(&sc);
    w.play_until(1099);
    assert!(
        w.observed_at(&dropped()).is_empty(),
        "not before repl-timeout"
    );
    w.play_until(DURATION_MS - 1);
    assert_eq!(w.observed_at(&dropped()), [1100.0]);
}

#[test]
fn a_replica_back_before_repl_timeout_is_not_dropped() {
    let sc = replica_paused_for(500);
    let mut w = world(&sc);
    w.play_until(DURATION_MS - 1);
    assert!(w.observed_at(&dropped()).is_empty());
}

#[test]
fn a_dropped_replica_gets_the_backlog_when_it_resumes() {
    let sc = replica_paused_for(2000);
    let mut w = world(&sc);
    let (primary, replica) = (w.node("primary"), w.node("replica-1"));
    w.play_until(500);
    w.write(primary, "v1"); // reaches the paused replica, which handles it on resume
    w.play_until(1200);
    w.write(primary, "v2"); // the replica is dropped: held back by the primary
    w.play_until(1201);
    assert_eq!(w.backlog.get(&(primary, replica)).map(Vec::len), Some(1));
    w.play_until(2099);
    assert_eq!(w.value_on(replica), None);
    w.play_until(2101); // resumed at 2100 ms
    assert_eq!(w.value_on(replica), Some("v2"));
    let arrived = key_changes(&w, "replica-1");
    assert_eq!(
        arrived,
        [
            (2100.0, KeyChange::Set, true),
            (2100.2, KeyChange::Set, true)
        ]
    );
}
