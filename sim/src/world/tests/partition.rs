//! Partitions act when a message is delivered, and each mode does its own thing: `hold`
//! delivers late and in order, `blackhole` loses what it meets and closes the connection
//! at the heal, `reset` fails what is in flight at once and refuses while cut.

use super::*;
use workload::Output;

/// A single node and client `A` cut from it at 10 ms for 100 ms in `mode`.
fn cut_in(mode: &str) -> Scenario {
    let fault = format!(
        r#"{{"at_ms": 10, "partition": {{"between": ["A"], "and": ["redis"], "for_ms": 100, "mode": "{mode}"}}}}"#
    );
    scenario(r#"{"single": {}}"#, &fault)
}

/// A `SET` of `value` that client 0 sends now, as request `id`.
fn send(w: &mut World<'_>, id: u64, value: &str) {
    let command = Command::Set {
        key: w.key.clone(),
        value: value.into(),
        ttl_ms: None,
    };
    let mut out = vec![Output::Send {
        instance: 0,
        request: RequestId(id),
        command,
    }];
    w.carry_out(0, &mut out);
}

impl World<'_> {
    /// Like `play_until`, but replies (and driver failures) meet the cuts first, as they do
    /// when they reach a client; those that get through are returned.
    fn play_gated(&mut self, t_ms: u64) -> Vec<Replied> {
        let mut replies = Vec::new();
        while self.queue.next_at().is_some_and(|at| at <= t_ms * MS) {
            let Some((t, ev)) = self.queue.pop() else {
                break;
            };
            self.now = t;
            match ev {
                Ev::Reply { .. } | Ev::Refused { .. } => match self.gate(ev) {
                    Some(Ev::Reply { request, reply, .. }) => replies.push(Replied {
                        t_us: t,
                        request,
                        reply,
                    }),
                    Some(Ev::Refused { request, why, .. }) => replies.push(Replied {
                        t_us: t,
                        request,
                        reply: Reply::Error(why),
                    }),
                    _ => {}
                },
                ev => self.dispatch(ev),
            }
        }
        self.now = self.now.max(t_ms * MS);
        replies
    }
}

#[test]
fn hold_delivers_what_was_sent_during_the_cut_at_the_heal_in_order() {
    let sc = cut_in("hold");
    let mut w = world(&sc);
    // In flight when the cut strikes: sent at 9.9 ms, it would arrive at 10.1 ms.
    w.play_gated(9);
    w.now = 9_900;
    send(&mut w, 1, "v1");
    w.play_gated(50);
    send(&mut w, 2, "v2");
    let during = w.play_gated(109);
    assert!(during.is_empty(), "nothing crosses while cut: {during:?}");
    assert_eq!(w.value_on(0), None, "nothing was executed while cut");
    let after = w.play_gated(200);
    // Both requests are executed at the heal (110 ms), in the order they were sent; the
    // replies leave then and arrive 0.2 ms later.
    assert_eq!(w.value_on(0), Some("v2"), "the later write wins");
    let got: Vec<(u64, u64)> = after.iter().map(|r| (r.t_us, r.request.0)).collect();
    assert_eq!(got, [(110_200, 1), (110_200, 2)]);
    assert!(after.iter().all(|r| r.reply == Reply::Ok));
}

#[test]
fn a_hold_cut_without_for_ms_never_delivers() {
    let sc = scenario(
        r#"{"single": {}}"#,
        r#"{"at_ms": 10, "partition": {"between": ["A"], "and": ["redis"]}}"#,
    );
    let mut w = world(&sc);
    w.play_gated(20);
    send(&mut w, 1, "v1");
    assert!(w.play_gated(DURATION_MS).is_empty());
    assert_eq!(w.value_on(0), None);
}

#[test]
fn blackhole_loses_what_it_meets_and_closes_the_connection_at_the_heal() {
    let sc = cut_in("blackhole");
    let mut w = world(&sc);
    w.play_gated(20);
    send(&mut w, 1, "v1");
    assert!(w.play_gated(109).is_empty(), "no answer while cut");
    let after = w.play_gated(200);
    assert_eq!(
        w.value_on(0),
        None,
        "what was sent during the cut is never executed"
    );
    // At the heal the connection that lost bytes is closed: the driver fails the request.
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!((after[0].t_us, after[0].request.0), (110_000, 1));
    assert!(matches!(&after[0].reply, Reply::Error(e) if e.contains("blackhole")));
    // A new connection works.
    send(&mut w, 2, "v2");
    let next = w.play_gated(300);
    assert_eq!(w.value_on(0), Some("v2"));
    assert_eq!(next.len(), 1);
    assert_eq!((next[0].request.0, &next[0].reply), (2, &Reply::Ok));
}

#[test]
fn reset_fails_what_is_in_flight_at_once_and_refuses_while_cut() {
    let sc = cut_in("reset");
    let mut w = world(&sc);
    w.play_gated(9);
    w.now = 9_900;
    send(&mut w, 1, "v1"); // in flight at the cut
    let at_cut = w.play_gated(10);
    assert_eq!(at_cut.len(), 1, "{at_cut:?}");
    assert_eq!((at_cut[0].t_us, at_cut[0].request.0), (10_000, 1));
    assert!(matches!(&at_cut[0].reply, Reply::Error(e) if e.contains("reset")));
    w.play_gated(50);
    send(&mut w, 2, "v2"); // refused at once
    let refused = w.play_gated(50);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!((refused[0].t_us, refused[0].request.0), (50_000, 2));
    assert!(matches!(&refused[0].reply, Reply::Error(e) if e.contains("refused")));
    assert!(w.play_gated(200).is_empty(), "nothing late after the heal");
    assert_eq!(
        w.value_on(0),
        None,
        "the request in flight died with its connection"
    );
    send(&mut w, 3, "v3");
    let next = w.play_gated(300);
    assert_eq!((next.len(), w.value_on(0)), (1, Some("v3")));
}

#[test]
fn replication_is_held_and_resynced_whatever_the_mode() {
    for mode in ["hold", "blackhole", "reset"] {
        let cut = format!(
            r#"{{"at_ms": 10, "partition": {{"between": ["primary"], "and": ["replica-1"], "for_ms": 100, "mode": "{mode}"}}}}"#
        );
        let sc = scenario(&replicated(1, 0.0, ""), &cut);
        let mut w = world(&sc);
        let (primary, replica) = (w.node("primary"), w.node("replica-1"));
        w.play_gated(9);
        w.now = 9_900;
        w.write(primary, "v1"); // in flight at the cut
        w.play_gated(50);
        w.write(primary, "v2"); // backlogged
        w.play_gated(109);
        assert_eq!(w.value_on(replica), None, "{mode}: the link is cut");
        w.play_gated(200);
        assert_eq!(w.value_on(replica), Some("v2"), "{mode}: resynced in order");
    }
}
