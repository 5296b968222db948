//! Unit tests: small hand-built histories for every property.

use crate::history::{Event, Record, SectionEnd};
use crate::{check, CheckConfig, Finding, Outcome, Property, Verdict};
use lock_core::{Op, Reply};

/// A history under construction; times in milliseconds unless `at_us` is used.
#[derive(Default)]
struct H(Vec<Record>);

impl H {
    fn new() -> Self {
        H::default()
    }
    fn at(self, ms: u64, event: Event) -> Self {
        self.at_us(ms * 1_000, event)
    }
    fn at_us(mut self, t_us: u64, event: Event) -> Self {
        self.0.push(Record { t_us, event });
        self
    }
    fn check(&self) -> Verdict {
        check(&self.0, &CheckConfig::default())
    }
    fn check_with(&self, config: CheckConfig) -> Verdict {
        check(&self.0, &config)
    }
}

fn s(x: &str) -> String {
    x.to_string()
}
fn run_started(ttl_ms: Option<u64>) -> Event {
    Event::RunStarted(Box::new(crate::RunStart {
        scenario: s("t"),
        backend: s("sim"),
        seed: 1,
        resource: s("r"),
        ttl_ms,
        clocks: Default::default(),
        checker: Default::default(),
    }))
}
fn crash(node: &str) -> Event {
    Event::Fault(crate::Injected::Crash { node: s(node) })
}
fn acquired(c: &str, fencing_token: Option<u64>) -> Event {
    Event::Acquired {
        client: s(c).into(),
        token: format!("tok-{c}").into(),
        fencing_token,
        valid_for_us: None,
    }
}
fn ended(c: &str) -> Event {
    Event::SectionEnded {
        client: s(c).into(),
        why: SectionEnd::Done,
    }
}
fn crashed(c: &str) -> Event {
    Event::ClientCrashed {
        client: s(c).into(),
    }
}
fn write(c: &str, accepted: bool) -> Event {
    Event::Write {
        client: s(c).into(),
        fencing_token: None,
        accepted,
    }
}
fn acquire_started(c: &str) -> Event {
    Event::AcquireStarted {
        client: s(c).into(),
    }
}
fn attempt(c: &str, attempt: u32) -> Event {
    Event::AttemptStarted {
        client: s(c).into(),
        attempt,
    }
}
fn attempt_failed(c: &str, attempt: u32) -> Event {
    Event::AttemptFailed {
        client: s(c).into(),
        attempt,
        reason: s("taken"),
    }
}
fn acquire_failed(c: &str) -> Event {
    Event::AcquireFailed {
        client: s(c).into(),
        attempts: 3,
        reason: s("gave up"),
    }
}
fn sent(c: &str, op: Op) -> Event {
    Event::CommandSent {
        client: s(c).into(),
        instance: 0,
        request: 0,
        op,
        command: "SET k v NX".into(),
    }
}
fn reply(c: &str, instance: usize, op: Op, reply: Reply) -> Event {
    Event::ReplyReceived {
        client: s(c).into(),
        instance,
        request: 0,
        op,
        reply,
    }
}
fn won(c: &str, key: &str) -> Event {
    Event::SetOnceWon {
        client: s(c).into(),
        key: s(key).into(),
    }
}

/// The findings for `p`, after asserting every other property holds.
fn only(v: &Verdict, p: Property) -> Vec<&Finding> {
    for q in Property::ALL {
        if q != p {
            assert_eq!(
                v.outcome(q),
                Outcome::Holds,
                "{q} should hold:\n{}",
                v.summary()
            );
        }
    }
    v.findings.iter().filter(|f| f.property == p).collect()
}

/// Asserts every property holds.
fn all_hold(v: &Verdict) {
    assert!(v.all_hold(), "{}", v.summary());
    assert!(v.findings.is_empty());
}

// ---------------------------------------------------------------- general

#[test]
fn empty_history_holds_everything() {
    let v = check(&[], &CheckConfig::default());
    assert_eq!(v.outcomes.len(), 8);
    all_hold(&v);
}

#[test]
fn property_names_match_serde() {
    for p in Property::ALL {
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, format!("\"{}\"", p.name()));
        assert_eq!(p.to_string(), p.name());
        assert!(!p.describe().is_empty());
    }
}

#[test]
fn verdict_round_trips_through_json() {
    let v = H::new()
        .at(1, crash("primary"))
        .at(2, acquired("A", None))
        .at(3, acquired("B", None))
        .at(4, Event::RunEnded {})
        .check();
    let json = serde_json::to_string(&v).unwrap();
    assert!(json.contains("\"mutual_exclusion\":\"violated\""), "{json}");
    let back: Verdict = serde_json::from_str(&json).unwrap();
    assert_eq!(back, v);
}

#[test]
fn check_config_defaults_and_rejects_unknown_fields() {
    let c: CheckConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(c, CheckConfig::default());
    let c: CheckConfig = serde_json::from_str(r#"{"max_attempts":3}"#).unwrap();
    assert_eq!(c.max_attempts, Some(3));
    assert!(serde_json::from_str::<CheckConfig>(r#"{"max_attempt":3}"#).is_err());
}

#[test]
fn times_are_milliseconds_with_three_decimals() {
    let v = H::new()
        .at_us(1_234_500, acquired("A", None))
        .at_us(1_234_501, acquired("B", None))
        .at_us(2_000_007, ended("A"))
        .check();
    let f = &only(&v, Property::MutualExclusion)[0];
    assert_eq!(
        f.message,
        "A and B both held the lock from 1234.501 ms to 2000.007 ms"
    );
}

#[test]
fn faults_before_lists_faults_up_to_the_last_time() {
    let v = H::new()
        .at(0, crash("partition p1"))
        .at(1, acquired("A", None))
        .at(3, crash("pause A"))
        .at(5, acquired("B", None))
        .at(8, crash("primary"))
        .at(8, ended("A"))
        .at(9, crash("heal"))
        .at(12, ended("B"))
        .check();
    let f = only(&v, Property::MutualExclusion);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].times_us, [5_000, 8_000]);
    assert_eq!(
        f[0].faults_before,
        [
            "0.000 ms: crash partition p1",
            "3.000 ms: crash pause A",
            "8.000 ms: crash primary"
        ]
    );
}

#[test]
fn summary_names_violated_properties_and_faults() {
    let v = H::new()
        .at(2, crash("primary"))
        .at(1, acquired("A", None))
        .at(5, acquired("B", None))
        .at(8, ended("A"))
        .at(9, ended("B"))
        .check();
    let text = v.summary();
    assert!(
        text.contains("mutual_exclusion   VIOLATED (1 finding)"),
        "{text}"
    );
    assert!(text.contains("unsafe_writes      holds"), "{text}");
    assert!(
        text.contains("A and B both held the lock from 5.000 ms to 8.000 ms"),
        "{text}"
    );
    assert!(text.contains("2.000 ms: crash primary"), "{text}");
    assert_eq!(text.lines().filter(|l| l.ends_with("holds")).count(), 7);
}

#[test]
fn summary_counts_plural_findings() {
    let v = H::new()
        .at(1, acquired("A", None))
        .at(2, acquired("B", None))
        .at(3, acquired("C", None))
        .at(4, Event::RunEnded {})
        .check();
    assert!(
        v.summary().contains("VIOLATED (3 findings)"),
        "{}",
        v.summary()
    );
}

// ---------------------------------------------------------------- mutual_exclusion

#[test]
fn mutual_exclusion_holds_for_back_to_back_sections() {
    let v = H::new()
        .at(0, run_started(Some(1_000)))
        .at(1, acquired("A", None))
        .at(10, ended("A"))
        .at(10, acquired("B", None))
        .at(20, ended("B"))
        .at(20, acquired("A", None))
        .at(30, crashed("A"))
        .at(31, acquired("B", None))
        .at(40, Event::RunEnded {})
        .check();
    all_hold(&v);
}

#[test]
fn mutual_exclusion_ignores_the_same_client_twice() {
    let v = H::new()
        .at(1, acquired("A", None))
        .at(2, acquired("A", None))
        .at(3, ended("A"))
        .check();
    all_hold(&v);
}

#[test]
fn mutual_exclusion_violated_by_overlap() {
    let v = H::new()
        .at(0, acquired("A", None))
        .at(5, acquired("B", None))
        .at(8, ended("A"))
        .at(12, ended("B"))
        .check();
    let f = only(&v, Property::MutualExclusion);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].clients, ["A", "B"]);
    assert_eq!(f[0].times_us, [5_000, 8_000]);
}

#[test]
fn mutual_exclusion_open_sections_run_to_run_ended_or_history_end() {
    let v = H::new()
        .at(0, acquired("A", None))
        .at(5, acquired("B", None))
        .at(10, Event::RunEnded {})
        .check();
    let f = only(&v, Property::MutualExclusion);
    assert_eq!(f[0].times_us, [5_000, 10_000]);

    let v = H::new()
        .at(0, acquired("A", None))
        .at(5, acquired("B", None))
        .at(7, crash("nothing"))
        .check();
    let f = only(&v, Property::MutualExclusion);
    assert_eq!(f[0].times_us, [5_000, 7_000]);
}

#[test]
fn mutual_exclusion_one_finding_per_overlapping_pair() {
    let v = H::new()
        .at(0, acquired("A", None))
        .at(1, acquired("B", None))
        .at(2, ended("B"))
        .at(3, acquired("C", None))
        .at(4, ended("A"))
        .at(5, ended("C"))
        .check();
    let f = only(&v, Property::MutualExclusion);
    let pairs: Vec<_> = f.iter().map(|f| f.clients.clone()).collect();
    assert_eq!(pairs, [["A", "B"], ["A", "C"]]);
}

// ---------------------------------------------------------------- unsafe_writes

#[test]
fn unsafe_writes_holds_when_stale_writes_are_rejected() {
    let v = H::new()
        .at(1, acquired("A", Some(1)))
        .at(2, write("A", true))
        .at(3, ended("A"))
        .at(4, acquired("B", Some(2)))
        .at(5, write("B", true))
        .at(6, write("A", false))
        .at(7, write("B", true))
        .at(8, ended("B"))
        .check();
    all_hold(&v);
}

#[test]
fn unsafe_writes_violated_by_accepted_stale_write() {
    let v = H::new()
        .at(1, acquired("A", None))
        .at(2, crashed("A")) // ends A's section so mutual exclusion holds
        .at(3, acquired("B", None))
        .at(4, write("B", true))
        .at(6, write("A", true))
        .check();
    let f = only(&v, Property::UnsafeWrites);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].clients, ["A", "B"]);
    assert_eq!(f[0].times_us, [4_000, 6_000]);
    assert!(f[0].message.contains("grant #1"), "{}", f[0].message);
}

#[test]
fn unsafe_writes_write_without_acquisition() {
    let v = H::new().at(1, write("Z", false)).check();
    all_hold(&v);
    let v = H::new().at(1, write("Z", true)).check();
    let f = only(&v, Property::UnsafeWrites);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].clients, ["Z"]);
}

// ---------------------------------------------------------------- fencing_monotonic

#[test]
fn fencing_monotonic_holds_for_increasing_tokens() {
    let v = H::new()
        .at(1, acquired("A", Some(1)))
        .at(2, ended("A"))
        .at(3, acquired("B", None))
        .at(4, ended("B"))
        .at(5, acquired("A", Some(5)))
        .at(6, ended("A"))
        .check();
    all_hold(&v);
}

#[test]
fn fencing_monotonic_violated_by_repeat_or_decrease() {
    let v = H::new()
        .at(1, acquired("A", Some(3)))
        .at(2, ended("A"))
        .at(3, acquired("B", Some(3)))
        .at(4, ended("B"))
        .at(5, acquired("C", Some(2)))
        .at(6, ended("C"))
        .check();
    let f = only(&v, Property::FencingMonotonic);
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].clients, ["A", "B"]);
    assert_eq!(f[0].times_us, [1_000, 3_000]);
    assert_eq!(f[1].clients, ["A", "C"]);
    assert!(f[1].message.contains("token 2"), "{}", f[1].message);
}

// ---------------------------------------------------------------- foreign_release

#[test]
fn foreign_release_holds_for_own_and_failed_releases() {
    let v = H::new()
        .at(1, reply("A", 0, Op::Acquire, Reply::Ok))
        .at(2, reply("A", 0, Op::Release, Reply::Int(1)))
        .at(3, reply("B", 0, Op::Acquire, Reply::Int(7)))
        .at(4, reply("A", 0, Op::Release, Reply::Int(0)))
        .at(5, reply("A", 1, Op::Acquire, Reply::Ok))
        .at(6, reply("A", 1, Op::Release, Reply::Int(1)))
        .at(7, reply("C", 0, Op::Acquire, Reply::Int(0)))
        .at(8, reply("B", 0, Op::Release, Reply::Int(1)))
        .check();
    all_hold(&v);
}

#[test]
fn foreign_release_violated_by_deleting_anothers_lock() {
    let v = H::new()
        .at(1, reply("A", 0, Op::Acquire, Reply::Ok))
        .at(2, crash("pause A"))
        .at(3, reply("B", 0, Op::Acquire, Reply::Ok))
        .at(4, reply("A", 0, Op::Release, Reply::Int(1)))
        .at(5, crash("heal"))
        .check();
    let f = only(&v, Property::ForeignRelease);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].clients, ["A", "B"]);
    assert_eq!(f[0].times_us, [3_000, 4_000]);
    assert!(
        f[0].message
            .starts_with("A deleted B's lock on instance 0 at 4.000 ms"),
        "{}",
        f[0].message
    );
    assert_eq!(f[0].faults_before, ["2.000 ms: crash pause A"]);
}

/// A release sent before another client's grant, but answered (to a paused client) after
/// it, deleted the sender's own key: not foreign.
#[test]
fn foreign_release_judges_by_when_the_release_was_sent() {
    let sent_release = Event::CommandSent {
        client: s("A").into(),
        instance: 0,
        request: 9,
        op: Op::Release,
        command: "RELEASE-SCRIPT k t".into(),
    };
    let late_reply = Event::ReplyReceived {
        client: s("A").into(),
        instance: 0,
        request: 9,
        op: Op::Release,
        reply: Reply::Int(1),
    };
    let v = H::new()
        .at(1, reply("A", 0, Op::Acquire, Reply::Ok))
        .at(2, sent_release.clone())
        .at(3, reply("B", 0, Op::Acquire, Reply::Ok))
        .at(4, late_reply.clone())
        .check();
    all_hold(&v);
    // Sent after B's grant, the same deletion is foreign.
    let v = H::new()
        .at(1, reply("A", 0, Op::Acquire, Reply::Ok))
        .at(3, reply("B", 0, Op::Acquire, Reply::Ok))
        .at(4, sent_release)
        .at(5, late_reply)
        .check();
    assert_eq!(only(&v, Property::ForeignRelease).len(), 1);
}

// ---------------------------------------------------------------- liveness

#[test]
fn liveness_holds_when_someone_acquires_after_the_crash() {
    // TTL 1000 ms: bound 3000 ms.
    let v = H::new()
        .at(0, run_started(Some(1_000)))
        .at(1, acquired("A", None))
        .at(10, crashed("A"))
        .at(3_010, attempt_failed("B", 1))
        .at(3_020, acquired("B", None))
        .at(5_000, attempt_failed("C", 1))
        .at(9_000, acquire_failed("A"))
        .check();
    all_hold(&v);
}

#[test]
fn liveness_violated_when_lock_stays_unavailable() {
    let v = H::new()
        .at(0, run_started(Some(1_000)))
        .at(1, acquired("A", None))
        .at(10, crashed("A"))
        .at(2_000, crash("clock jump"))
        .at(3_011, attempt_failed("B", 1))
        .at(3_500, acquire_failed("B"))
        .at(4_000, acquired("B", None))
        .check();
    let f = only(&v, Property::Liveness);
    assert_eq!(f.len(), 1, "at most one finding per crash");
    assert_eq!(f[0].clients, ["A", "B"]);
    assert_eq!(f[0].times_us, [10_000, 3_011_000]);
    assert_eq!(f[0].faults_before, ["2000.000 ms: crash clock jump"]);
}

#[test]
fn liveness_bound_defaults_and_config() {
    // No TTL: 60 s.
    let h = H::new()
        .at(0, run_started(None))
        .at(1, acquired("A", None))
        .at(10, crashed("A"))
        .at(50_000, acquire_failed("B"));
    all_hold(&h.check());
    let v = h.check_with(CheckConfig {
        liveness_bound_ms: Some(40_000),
        ..CheckConfig::default()
    });
    assert_eq!(only(&v, Property::Liveness).len(), 1);
    let h = h.at(60_011, acquire_failed("B"));
    assert_eq!(only(&h.check(), Property::Liveness).len(), 1);
}

// ---------------------------------------------------------------- retry_budget

#[test]
fn retry_budget_holds_within_budget() {
    let mut h = H::new().at(0, acquire_started("A"));
    for n in 1..=20 {
        h = h
            .at(n, attempt("A", n as u32))
            .at(n, sent("A", Op::Acquire));
    }
    let h = h
        .at(30, acquired("A", None))
        .at(31, sent("A", Op::Extend)) // outside the acquisition
        .at(32, ended("A"));
    all_hold(&h.check());
}

#[test]
fn retry_budget_violated_by_attempts_or_commands() {
    let h = H::new()
        .at(0, acquire_started("A"))
        .at(1, attempt("A", 1))
        .at(2, attempt("A", 2))
        .at(3, attempt("A", 3))
        .at(4, acquire_failed("A"))
        .at(5, acquire_started("B"))
        .at(6, sent("B", Op::Acquire))
        .at(7, sent("B", Op::Acquire))
        .at(8, acquire_started("B")) // restarts: closes the first acquisition
        .at(9, acquire_started("C"))
        .at(10, attempt("C", 1))
        .at(11, attempt("C", 2))
        .at(12, attempt("C", 3)); // never finishes
    let v = h.check_with(CheckConfig {
        max_attempts: Some(2),
        max_commands: Some(1),
        ..CheckConfig::default()
    });
    let f = only(&v, Property::RetryBudget);
    assert_eq!(f.len(), 3);
    assert_eq!(f[0].clients, ["A"]);
    assert_eq!(f[0].times_us, [0, 4_000]);
    assert_eq!(f[1].clients, ["B"]);
    assert_eq!(f[1].times_us, [5_000, 8_000]);
    assert!(
        f[1].message.contains("2 commands (budget 1)"),
        "{}",
        f[1].message
    );
    assert_eq!(f[2].clients, ["C"]);
    assert_eq!(f[2].times_us, [9_000, 12_000]);
    // The default budget is far above these counts.
    all_hold(&h.check());
}

// ---------------------------------------------------------------- set_once

#[test]
fn set_once_holds_for_one_winner_per_key() {
    let v = H::new()
        .at(1, won("A", "k1"))
        .at(2, won("B", "k2"))
        .at(3, won("A", "k1"))
        .check();
    all_hold(&v);
}

#[test]
fn set_once_violated_by_two_winners() {
    let v = H::new()
        .at(1, won("A", "k1"))
        .at(2, crash("failover"))
        .at(3, won("B", "k1"))
        .at(4, won("A", "k1"))
        .at(5, crash("later"))
        .check();
    let f = only(&v, Property::SetOnce);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].clients, ["A", "B"]);
    assert_eq!(f[0].times_us, [1_000, 3_000]);
    assert_eq!(f[0].faults_before, ["2.000 ms: crash failover"]);
}

#[test]
fn mutual_exclusion_a_grant_at_the_last_instant_is_an_empty_interval() {
    // Without RunEnded, the history ends at B's grant: B's interval is empty, so no overlap.
    let v = H::new()
        .at(1, acquired("A", None))
        .at(2, acquired("B", None))
        .check();
    all_hold(&v);
}

// ---------------------------------------------------------------- stuck_lock

fn released(c: &str) -> Event {
    Event::Released {
        client: s(c).into(),
        confirmed: 0,
        error: None,
    }
}
fn refused_attempt(c: &str, attempt: u32) -> Event {
    Event::AttemptFailed {
        client: s(c).into(),
        attempt,
        reason: s("no quorum: 0 granted, 1 refused, 0 silent"),
    }
}
fn silent_attempt(c: &str, attempt: u32) -> Event {
    Event::AttemptFailed {
        client: s(c).into(),
        attempt,
        reason: s("no quorum: 0 granted, 0 refused, 1 silent"),
    }
}

/// A released at 100 ms; B refused at `t` ms; a 1 s TTL gives a 3 s bound.
fn refused_after_release(t: u64, refusal: Event) -> Verdict {
    H::new()
        .at(0, run_started(Some(1000)))
        .at(1, acquired("A", None))
        .at(50, ended("A"))
        .at(100, released("A"))
        .at(t, refusal)
        .at(t + 1, Event::RunEnded {})
        .check()
}

#[test]
fn a_lock_refused_past_the_bound_after_its_release_is_stuck() {
    let v = refused_after_release(3_200, refused_attempt("B", 9));
    let f = only(&v, Property::StuckLock);
    assert_eq!(f.len(), 1, "{}", v.summary());
    assert_eq!(f[0].clients, ["A", "B"]);
    assert_eq!(f[0].times_us, [100_000, 3_200_000]);
    assert!(
        f[0].message.contains("A released it at 100.000 ms"),
        "{}",
        f[0].message
    );
}

#[test]
fn a_refusal_within_the_bound_or_from_silence_is_not_stuck() {
    all_hold(&refused_after_release(3_000, refused_attempt("B", 9)));
    all_hold(&refused_after_release(9_000, silent_attempt("B", 9)));
    // A configured bound replaces 2 × TTL + 1 s.
    let v = H::new()
        .at(0, run_started(Some(1000)))
        .at(1, acquired("A", None))
        .at(100, released("A"))
        .at(700, refused_attempt("B", 2))
        .check_with(CheckConfig {
            stuck_lock_bound_ms: Some(500),
            ..CheckConfig::default()
        });
    assert_eq!(only(&v, Property::StuckLock).len(), 1);
}

#[test]
fn a_holder_or_a_crash_in_between_is_not_a_stuck_lock() {
    // B refused while C holds.
    let v = H::new()
        .at(0, run_started(Some(1000)))
        .at(1, acquired("A", None))
        .at(100, released("A"))
        .at(200, acquired("C", None))
        .at(5_000, refused_attempt("B", 9))
        .check();
    assert_eq!(
        v.outcome(Property::StuckLock),
        Outcome::Holds,
        "{}",
        v.summary()
    );
    // A crashed client's key is liveness's case, not this one.
    let v = H::new()
        .at(0, run_started(Some(1000)))
        .at(1, acquired("A", None))
        .at(100, crashed("A"))
        .at(5_000, refused_attempt("B", 9))
        .check();
    assert_eq!(
        v.outcome(Property::StuckLock),
        Outcome::Holds,
        "{}",
        v.summary()
    );
}
