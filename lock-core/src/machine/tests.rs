//! Unit tests of the machine, one scenario of replies and timers each.

use super::*;
use crate::recipe::{RedlockConfig, WaitReplicas};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const MS: Micros = MICROS_PER_MS;

struct Harness {
    m: LockMachine,
    rng: ChaCha8Rng,
    out: Vec<Action>,
}

impl Harness {
    fn new(recipe: Recipe, instances: usize) -> Harness {
        Harness {
            m: LockMachine::new(recipe.validated(instances).unwrap(), "lock:x"),
            rng: ChaCha8Rng::seed_from_u64(3),
            out: Vec::new(),
        }
    }
    fn feed(&mut self, e: Event, now: Micros) -> Vec<Action> {
        self.out.clear();
        self.m.handle(e, now, &mut self.rng, &mut self.out);
        self.out.clone()
    }
}

fn sends(actions: &[Action]) -> Vec<(usize, RequestId, Command)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                instance,
                request,
                command,
            } => Some((*instance, *request, command.clone())),
            _ => None,
        })
        .collect()
}

fn timers(actions: &[Action]) -> Vec<(TimerId, Micros)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetTimer { timer, at } => Some((*timer, *at)),
            _ => None,
        })
        .collect()
}

fn reply(request: RequestId, reply: Reply) -> Event {
    Event::Reply { request, reply }
}

#[test]
fn single_instance_grant_with_validity_net_of_drift() {
    let mut h = Harness::new(Recipe::default(), 1);
    let a = h.feed(Event::Acquire, 0);
    let s = sends(&a);
    assert_eq!(s.len(), 1);
    assert!(matches!(
        &s[0].2,
        Command::SetNx {
            ttl_ms: Some(30000),
            ..
        }
    ));
    let a = h.feed(reply(s[0].1, Reply::Ok), MS);
    let valid_until = a
        .iter()
        .find_map(|x| match x {
            Action::Acquired { valid_until, .. } => Some(*valid_until),
            _ => None,
        })
        .expect("acquired");
    // 30 s − (0.01 · 30 s + 2 ms), counted from the attempt's start.
    assert_eq!(valid_until, 30_000 * MS - 302 * MS);
    assert_eq!(h.m.token().len(), 40);
    // watchdog at TTL/3 after the grant, validity timer at valid_until
    let t = timers(&a);
    assert!(t.iter().any(|(_, at)| *at == valid_until));
    assert!(t.iter().any(|(_, at)| *at == MS + 10_000 * MS));
}

#[test]
fn contention_retries_with_backoff_then_fails_at_the_limit() {
    let mut r = Recipe::default();
    r.retry.max_attempts = Some(2);
    let mut h = Harness::new(r, 1);
    let s = sends(&h.feed(Event::Acquire, 0));
    let a = h.feed(reply(s[0].1, Reply::Nil), MS);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::AttemptFailed { attempt: 1, .. })));
    let (retry, at) = *timers(&a).last().unwrap();
    assert!((51 * MS..=101 * MS).contains(&at), "{at}");
    let a = h.feed(Event::Timer(retry), at);
    assert!(a.contains(&Action::AttemptStarted { attempt: 2 }));
    let s = sends(&a);
    let a = h.feed(reply(s[0].1, Reply::Nil), at + MS);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Failed { attempts: 2, .. })));
    assert!(h.m.is_idle());
}

#[test]
fn redlock_decides_at_quorum_without_the_slowest_and_releases_late_grants() {
    let r = Recipe {
        redlock: Some(RedlockConfig::default()),
        ..Recipe::default()
    };
    let mut h = Harness::new(r, 5);
    let s = sends(&h.feed(Event::Acquire, 0));
    assert_eq!(s.len(), 5, "fans out to every instance at once");
    h.feed(reply(s[0].1, Reply::Ok), MS);
    h.feed(reply(s[1].1, Reply::Ok), MS);
    let a = h.feed(reply(s[2].1, Reply::Ok), 2 * MS);
    assert!(
        a.iter().any(|x| matches!(x, Action::Acquired { .. })),
        "3 of 5 suffice"
    );
    // instance 4 grants late: the release must reach it
    h.feed(reply(s[4].1, Reply::Ok), 3 * MS);
    let rel = sends(&h.feed(Event::Release, 4 * MS));
    let targets: Vec<usize> = rel.iter().map(|x| x.0).collect();
    assert_eq!(targets, vec![0, 1, 2, 4]);
    assert!(matches!(rel[0].2, Command::Release { .. }));
}

fn redlock3() -> Harness {
    let r = Recipe {
        redlock: Some(RedlockConfig::default()),
        ..Recipe::default()
    };
    Harness::new(r, 3)
}

fn acquired(actions: &[Action]) -> bool {
    actions.iter().any(|x| matches!(x, Action::Acquired { .. }))
}

/// Acquires at 2 of 3 (instance 2's SET left under way) and releases; the first
/// acquisition's sends and its token.
fn acquire_at_quorum_then_release(h: &mut Harness) -> (Vec<(usize, RequestId, Command)>, String) {
    let s = sends(&h.feed(Event::Acquire, 0));
    h.feed(reply(s[0].1, Reply::Ok), MS);
    assert!(acquired(&h.feed(reply(s[1].1, Reply::Ok), MS)));
    let token = h.m.token().to_string();
    let rel = sends(&h.feed(Event::Release, 2 * MS));
    assert_eq!(rel.len(), 2);
    h.feed(reply(rel[0].1, Reply::Int(1)), 3 * MS);
    let a = h.feed(reply(rel[1].1, Reply::Int(1)), 3 * MS);
    assert_eq!(a, vec![Action::Released { confirmed: 2 }]);
    (s, token)
}

#[test]
fn a_late_grant_of_the_previous_acquisition_is_not_a_grant_of_the_next() {
    let mut h = redlock3();
    let (old, old_token) = acquire_at_quorum_then_release(&mut h);
    let new = sends(&h.feed(Event::Acquire, 4 * MS));
    assert_ne!(*h.m.token(), old_token);
    // The first acquisition's SET to instance 2 grants now: that key holds the old token.
    let a = h.feed(reply(old[2].1, Reply::Ok), 5 * MS);
    assert!(!acquired(&a), "a grant of the old token counted: {a:?}");
    assert_eq!(
        sends(&a)
            .into_iter()
            .map(|(i, _, c)| (i, c))
            .collect::<Vec<_>>(),
        vec![(
            2,
            Command::Release {
                key: "lock:x".into(),
                token: old_token.clone().into()
            }
        )],
        "the late grant is deleted with the token it was set with"
    );
    // One new grant is not a quorum of 3; two are.
    assert!(!acquired(&h.feed(reply(new[0].1, Reply::Ok), 6 * MS)));
    assert!(acquired(&h.feed(reply(new[1].1, Reply::Ok), 6 * MS)));
    // The release goes where the new token was granted, not to instance 2.
    let rel: Vec<usize> = sends(&h.feed(Event::Release, 7 * MS))
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(rel, vec![0, 1]);
}

#[test]
fn a_late_grant_of_the_previous_acquisition_is_deleted_while_the_next_is_held() {
    let mut h = redlock3();
    let (old, old_token) = acquire_at_quorum_then_release(&mut h);
    let new = sends(&h.feed(Event::Acquire, 4 * MS));
    h.feed(reply(new[0].1, Reply::Ok), 5 * MS);
    assert!(acquired(&h.feed(reply(new[1].1, Reply::Ok), 5 * MS)));
    // Same attempt number (1) as the held one, but another acquisition's grant.
    let a = sends(&h.feed(reply(old[2].1, Reply::Ok), 6 * MS));
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].0, &a[0].2),
        (
            2,
            &Command::Release {
                key: "lock:x".into(),
                token: old_token.into()
            }
        )
    );
    let rel: Vec<usize> = sends(&h.feed(Event::Release, 7 * MS))
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(rel, vec![0, 1], "instance 2 never held the new token");
}

#[test]
fn a_late_grant_after_a_retry_is_deleted_with_its_own_token() {
    let mut h = redlock3();
    let (old, old_token) = acquire_at_quorum_then_release(&mut h);
    // The next acquisition's first attempt fails, so it is in backoff when the old grant
    // comes in.
    let new = sends(&h.feed(Event::Acquire, 4 * MS));
    h.feed(reply(new[0].1, Reply::Nil), 5 * MS);
    h.feed(reply(new[1].1, Reply::Nil), 5 * MS);
    let a = sends(&h.feed(reply(old[2].1, Reply::Ok), 6 * MS));
    assert_eq!(
        a.into_iter().map(|(i, _, c)| (i, c)).collect::<Vec<_>>(),
        vec![(
            2,
            Command::Release {
                key: "lock:x".into(),
                token: old_token.into()
            }
        )]
    );
}

#[test]
fn a_wait_reply_of_an_abandoned_acquisition_does_not_count_for_the_next() {
    let r = Recipe {
        redlock: Some(RedlockConfig::default()),
        wait_replicas: Some(WaitReplicas {
            replicas: 1,
            timeout_ms: 100,
        }),
        ..Recipe::default()
    };
    let mut h = Harness::new(r, 3);
    let s = sends(&h.feed(Event::Acquire, 0));
    h.feed(reply(s[0].1, Reply::Ok), MS);
    let w = sends(&h.feed(reply(s[1].1, Reply::Ok), MS));
    assert_eq!(w.len(), 2, "WAIT to both grants");
    // Abandoned while WAIT is under way; its deletes are answered.
    let cleanup = sends(&h.feed(Event::Release, 2 * MS));
    assert_eq!(cleanup.len(), 2);
    assert!(h.m.is_idle());
    let new = sends(&h.feed(Event::Acquire, 3 * MS));
    h.feed(reply(new[0].1, Reply::Ok), 4 * MS);
    let w2 = sends(&h.feed(reply(new[1].1, Reply::Ok), 4 * MS));
    assert_eq!(w2.len(), 2);
    // The old WAITs answer: they say nothing about the new writes.
    assert!(!acquired(&h.feed(reply(w[0].1, Reply::Int(1)), 5 * MS)));
    assert!(!acquired(&h.feed(reply(w[1].1, Reply::Int(1)), 5 * MS)));
    h.feed(reply(w2[0].1, Reply::Int(1)), 6 * MS);
    assert!(acquired(&h.feed(reply(w2[1].1, Reply::Int(1)), 6 * MS)));
}

#[test]
fn redlock_fails_as_soon_as_a_quorum_is_out_of_reach_and_unlocks() {
    let mut r = Recipe {
        redlock: Some(RedlockConfig::default()),
        ..Recipe::default()
    };
    r.retry.max_attempts = Some(1);
    let mut h = Harness::new(r, 5);
    let s = sends(&h.feed(Event::Acquire, 0));
    h.feed(reply(s[0].1, Reply::Ok), MS);
    h.feed(reply(s[1].1, Reply::Nil), MS);
    h.feed(reply(s[2].1, Reply::Nil), MS);
    let a = h.feed(reply(s[3].1, Reply::Nil), MS);
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Failed {
            reason: FailReason::Contended {
                granted: 1,
                refused: 3,
                failed: 0
            },
            ..
        }
    )));
    let cleanup: Vec<usize> = sends(&a).iter().map(|x| x.0).collect();
    assert_eq!(cleanup, vec![0], "the one grant is unlocked at once");
    // the fifth instance grants after the decision: unlocked too
    let late = sends(&h.feed(reply(s[4].1, Reply::Ok), 2 * MS));
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].0, 4);
}

#[test]
fn never_reports_a_lock_whose_validity_is_gone() {
    let mut r = Recipe {
        ttl_ms: Some(100),
        watchdog: false,
        ..Recipe::default()
    };
    r.retry.max_attempts = Some(1);
    let mut h = Harness::new(r, 1);
    let s = sends(&h.feed(Event::Acquire, 0));
    let a = h.feed(reply(s[0].1, Reply::Ok), 99 * MS);
    assert!(!a.iter().any(|x| matches!(x, Action::Acquired { .. })));
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Failed {
            reason: FailReason::ValidityElapsed,
            ..
        }
    )));
    assert!(sends(&a)
        .iter()
        .any(|x| matches!(x.2, Command::Release { .. })));
}

#[test]
fn watchdog_extends_and_reports_lost_when_the_extension_fails() {
    let r = Recipe {
        ttl_ms: Some(3_000),
        ..Recipe::default()
    };
    let mut h = Harness::new(r, 1);
    let s = sends(&h.feed(Event::Acquire, 0));
    let a = h.feed(reply(s[0].1, Reply::Ok), MS);
    let (wd, at) = timers(&a)[1];
    assert_eq!(at, 1_001 * MS);
    let a = h.feed(Event::Timer(wd), at);
    let ext = sends(&a);
    assert!(matches!(ext[0].2, Command::Extend { ttl_ms: 3000, .. }));
    let a = h.feed(reply(ext[0].1, Reply::Int(1)), at + MS);
    assert!(a.contains(&Action::Extended {
        valid_until: at + 3_000 * MS - 32 * MS
    }));
    let (_, _) = timers(&a)[0];
    let (wd2, at2) = timers(&a)[1];
    let ext = sends(&h.feed(Event::Timer(wd2), at2));
    let a = h.feed(reply(ext[0].1, Reply::Int(0)), at2 + MS);
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Lost {
            reason: LostReason::ExtendFailed { .. }
        }
    )));
}

#[test]
fn validity_elapsed_without_watchdog_is_reported_lost() {
    let r = Recipe {
        ttl_ms: Some(1_000),
        watchdog: false,
        ..Recipe::default()
    };
    let mut h = Harness::new(r, 1);
    let s = sends(&h.feed(Event::Acquire, 0));
    let a = h.feed(reply(s[0].1, Reply::Ok), MS);
    let (t, at) = timers(&a)[0];
    let a = h.feed(Event::Timer(t), at);
    assert_eq!(
        a,
        vec![Action::Lost {
            reason: LostReason::ValidityElapsed
        }]
    );
}

#[test]
fn setnx_then_expire_sends_two_commands() {
    let r = Recipe::default().with_pitfall(crate::Pitfall::SetnxThenExpire);
    let mut h = Harness::new(r, 1);
    let s = sends(&h.feed(Event::Acquire, 0));
    assert!(matches!(s[0].2, Command::SetNxLegacy { .. }));
    let a = h.feed(reply(s[0].1, Reply::Int(1)), MS);
    let s2 = sends(&a);
    assert!(matches!(s2[0].2, Command::PExpire { ttl_ms: 30000, .. }));
    assert!(!a.iter().any(|x| matches!(x, Action::Acquired { .. })));
    let a = h.feed(reply(s2[0].1, Reply::Int(1)), 2 * MS);
    assert!(a.iter().any(|x| matches!(x, Action::Acquired { .. })));
}

#[test]
fn fencing_token_comes_from_the_acquire_script() {
    let r = Recipe {
        fencing: true,
        ..Recipe::default()
    };
    let mut h = Harness::new(r, 1);
    let s = sends(&h.feed(Event::Acquire, 0));
    assert!(
        matches!(&s[0].2, Command::FencedAcquire { counter_key, .. } if counter_key == "lock:x:fence")
    );
    let a = h.feed(reply(s[0].1, Reply::Int(34)), MS);
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Acquired {
            fencing_token: Some(34),
            ..
        }
    )));
    assert_eq!(h.m.fencing_token(), Some(34));
}

#[test]
fn wait_for_replicas_fails_the_attempt_when_too_few_ack() {
    let mut r = Recipe {
        wait_replicas: Some(WaitReplicas {
            replicas: 1,
            timeout_ms: 100,
        }),
        ..Recipe::default()
    };
    r.retry.max_attempts = Some(1);
    let mut h = Harness::new(r, 1);
    let s = sends(&h.feed(Event::Acquire, 0));
    let a = h.feed(reply(s[0].1, Reply::Ok), MS);
    let w = sends(&a);
    assert!(matches!(
        w[0].2,
        Command::Wait {
            replicas: 1,
            timeout_ms: 100
        }
    ));
    let a = h.feed(reply(w[0].1, Reply::Int(0)), 101 * MS);
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Failed {
            reason: FailReason::NotReplicated {
                acked: 0,
                needed: 1
            },
            ..
        }
    )));
}

#[test]
fn request_timeout_counts_silent_instances_as_failed() {
    let mut r = Recipe::default();
    r.retry.max_attempts = Some(1);
    let mut h = Harness::new(r, 1);
    let a = h.feed(Event::Acquire, 0);
    let (t, at) = timers(&a)[0];
    assert_eq!(at, 500 * MS);
    let a = h.feed(Event::Timer(t), at);
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Failed {
            reason: FailReason::Contended { failed: 1, .. },
            ..
        }
    )));
    // the silent instance may have granted: it is unlocked too
    assert_eq!(sends(&a).len(), 1);
}

#[test]
fn fixed_token_and_plain_del() {
    let r = Recipe::default()
        .with_pitfall(crate::Pitfall::FixedValue)
        .with_pitfall(crate::Pitfall::PlainDel);
    let mut h = Harness::new(r, 1);
    let s = sends(&h.feed(Event::Acquire, 0));
    assert!(matches!(&s[0].2, Command::SetNx { value, .. } if value == "locked"));
    h.feed(reply(s[0].1, Reply::Ok), MS);
    let rel = sends(&h.feed(Event::Release, 2 * MS));
    assert!(matches!(rel[0].2, Command::Del { .. }));
    let a = h.feed(reply(rel[0].1, Reply::Int(1)), 3 * MS);
    assert_eq!(a, vec![Action::Released { confirmed: 1 }]);
    assert!(h.m.is_idle());
}

/// Acquires over 3 instances with instance 2 never answering (its messages are lost), then
/// releases, `cycles` times; the first cycle's sends.
fn cycles_with_instance_2_lost(h: &mut Harness, cycles: u64) -> Vec<(usize, RequestId, Command)> {
    let mut first = Vec::new();
    for c in 0..cycles {
        let t = c * 10 * MS;
        let s = sends(&h.feed(Event::Acquire, t));
        h.feed(reply(s[0].1, Reply::Ok), t + MS);
        assert!(acquired(&h.feed(reply(s[1].1, Reply::Ok), t + MS)));
        let rel = sends(&h.feed(Event::Release, t + 2 * MS));
        for r in &rel {
            h.feed(reply(r.1, Reply::Int(1)), t + 3 * MS);
        }
        assert!(h.m.is_idle());
        if c == 0 {
            first = s;
        }
        assert!(
            h.m.inflight_len() <= h.m.max_inflight(),
            "cycle {c}: {} requests remembered",
            h.m.inflight_len()
        );
    }
    first
}

#[test]
fn requests_whose_replies_are_lost_are_not_remembered_forever() {
    let mut h = redlock3();
    cycles_with_instance_2_lost(&mut h, 200);
    // Only instance 2's acquire requests of the last attempts are still awaited.
    assert_eq!(h.m.inflight_len(), LATE_GRANT_ATTEMPTS as usize);
    assert_eq!(h.m.max_inflight(), 27);
}

#[test]
fn cleanups_and_finished_rounds_are_not_remembered() {
    let r = Recipe {
        redlock: Some(RedlockConfig::default()),
        ttl_ms: Some(3_000),
        ..Recipe::default()
    };
    let mut h = Harness::new(r, 3);
    // The attempt fails at once (2 refusals); the cleanup of the one grant is never answered.
    let s = sends(&h.feed(Event::Acquire, 0));
    h.feed(reply(s[0].1, Reply::Ok), MS);
    h.feed(reply(s[1].1, Reply::Nil), MS);
    let a = h.feed(reply(s[2].1, Reply::Nil), MS);
    assert_eq!(sends(&a).len(), 1, "the grant is cleaned up");
    assert_eq!(h.m.inflight_len(), 0, "nothing waits for a cleanup's reply");
    // A retry wins; an extension round is decided by 2 of 3 and the third never answers.
    let (retry, at) = *timers(&a).last().unwrap();
    let s = sends(&h.feed(Event::Timer(retry), at));
    for x in &s {
        h.feed(reply(x.1, Reply::Ok), at + MS);
    }
    let ext = sends(&h.feed(Event::Extend, at + 2 * MS));
    h.feed(reply(ext[0].1, Reply::Int(1)), at + 3 * MS);
    let a = h.feed(reply(ext[1].1, Reply::Int(1)), at + 3 * MS);
    assert!(a.iter().any(|x| matches!(x, Action::Extended { .. })));
    assert_eq!(
        h.m.inflight_len(),
        0,
        "the decided round's third reply is not awaited"
    );
    // Its reply, should it come after all, changes nothing.
    assert_eq!(h.feed(reply(ext[2].1, Reply::Int(1)), at + 4 * MS), vec![]);
}

#[test]
fn a_grant_later_than_the_last_attempts_is_ignored_as_lost() {
    let mut h = redlock3();
    let first = cycles_with_instance_2_lost(&mut h, LATE_GRANT_ATTEMPTS + 1);
    // The first attempt is now one too many attempts back: its grant is taken for lost.
    assert_eq!(h.feed(reply(first[2].1, Reply::Ok), 10_000 * MS), vec![]);
}

#[test]
fn a_grant_of_an_attempt_still_awaited_is_cleaned_up() {
    let mut h = redlock3();
    let first = cycles_with_instance_2_lost(&mut h, LATE_GRANT_ATTEMPTS);
    let a = sends(&h.feed(reply(first[2].1, Reply::Ok), 10_000 * MS));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].0, 2);
}

fn redlock3_setnx_then_expire() -> Harness {
    let r = Recipe {
        redlock: Some(RedlockConfig::default()),
        ..Recipe::default().with_pitfall(crate::Pitfall::SetnxThenExpire)
    };
    Harness::new(r, 3)
}

#[test]
fn a_setnx_whose_pexpire_failed_is_released_with_the_lock() {
    let mut h = redlock3_setnx_then_expire();
    let s = sends(&h.feed(Event::Acquire, 0));
    let mut expires = Vec::new();
    for x in &s {
        expires.extend(sends(&h.feed(reply(x.1, Reply::Int(1)), MS)));
    }
    // Instance 2's key is there without a TTL: its PEXPIRE failed.
    h.feed(reply(expires[2].1, Reply::Error("ERR".into())), 2 * MS);
    h.feed(reply(expires[0].1, Reply::Int(1)), 2 * MS);
    assert!(acquired(
        &h.feed(reply(expires[1].1, Reply::Int(1)), 2 * MS)
    ));
    let rel: Vec<usize> = sends(&h.feed(Event::Release, 3 * MS))
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(rel, vec![0, 1, 2]);
}

#[test]
fn a_setnx_whose_pexpire_is_under_way_at_the_grant_is_released_with_the_lock() {
    let mut h = redlock3_setnx_then_expire();
    let s = sends(&h.feed(Event::Acquire, 0));
    let mut expires = Vec::new();
    for x in &s {
        expires.extend(sends(&h.feed(reply(x.1, Reply::Int(1)), MS)));
    }
    h.feed(reply(expires[0].1, Reply::Int(1)), 2 * MS);
    assert!(acquired(
        &h.feed(reply(expires[1].1, Reply::Int(1)), 2 * MS)
    ));
    // Instance 2's PEXPIRE never comes back: its key may have no TTL.
    let rel: Vec<usize> = sends(&h.feed(Event::Release, 3 * MS))
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(rel, vec![0, 1, 2]);
}

#[test]
fn an_extension_confirmed_after_its_validity_is_a_loss() {
    let r = Recipe {
        ttl_ms: Some(3_000),
        ..Recipe::default()
    };
    let mut h = Harness::new(r, 1);
    let s = sends(&h.feed(Event::Acquire, 0));
    let a = h.feed(reply(s[0].1, Reply::Ok), MS);
    let (wd, at) = timers(&a)[1];
    let ext = sends(&h.feed(Event::Timer(wd), at));
    // The confirmation comes when the validity it would buy is over (the validity timer,
    // due long before, has not been delivered yet).
    let a = h.feed(reply(ext[0].1, Reply::Int(1)), at + 3_000 * MS);
    assert_eq!(
        a,
        vec![Action::Lost {
            reason: LostReason::ValidityElapsed
        }]
    );
}

/// Acquires the lock with `r` on one instance at 0 (granted at 1 ms); returns the harness and
/// the grant's actions.
fn held(r: Recipe) -> (Harness, Vec<Action>) {
    let mut h = Harness::new(r, 1);
    let s = sends(&h.feed(Event::Acquire, 0));
    let a = h.feed(reply(s[0].1, Reply::Ok), MS);
    assert!(h.m.is_held());
    (h, a)
}

#[test]
fn plain_pexpire_extends_whatever_key_is_there_and_keeps_the_lock() {
    let r = Recipe::default().with_pitfall(crate::Pitfall::PlainPexpire);
    let (mut h, _) = held(r);
    let s = sends(&h.feed(Event::Extend, 10 * MS));
    assert_eq!(
        s[0].2,
        Command::PExpire {
            key: "lock:x".into(),
            ttl_ms: 30_000
        }
    );
    // PEXPIRE answers 1 whoever's token the key holds: the extension is believed.
    let a = h.feed(reply(s[0].1, Reply::Int(1)), 11 * MS);
    assert!(a.iter().any(|x| matches!(x, Action::Extended { .. })));
    // The safe recipe sends the compare-and-pexpire script, which answers 0 for a key that
    // holds another token: the lock is lost.
    let (mut safe, _) = held(Recipe::default());
    let s = sends(&safe.feed(Event::Extend, 10 * MS));
    assert!(matches!(s[0].2, Command::Extend { .. }));
    let a = safe.feed(reply(s[0].1, Reply::Int(0)), 11 * MS);
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Lost {
            reason: LostReason::ExtendFailed { .. }
        }
    )));
}

#[test]
fn get_then_del_deletes_after_reading_its_token_however_late() {
    let r = Recipe::default().with_pitfall(crate::Pitfall::GetThenDel);
    let (mut h, _) = held(r.clone());
    let token = h.m.token().to_string();
    let s = sends(&h.feed(Event::Release, 100 * MS));
    assert_eq!(
        s[0].2,
        Command::Get {
            key: "lock:x".into()
        }
    );
    // The GET read our token; by the time the DEL goes out the key may be someone else's.
    let s = sends(&h.feed(reply(s[0].1, Reply::Bulk(token)), 5_000 * MS));
    assert_eq!(
        s[0].2,
        Command::Del {
            key: "lock:x".into()
        }
    );
    let a = h.feed(reply(s[0].1, Reply::Int(1)), 5_001 * MS);
    assert!(a.contains(&Action::Released { confirmed: 1 }));
    assert!(h.m.is_idle());
    // Another token read: no DEL, nothing released.
    let (mut h, _) = held(r);
    let s = sends(&h.feed(Event::Release, 100 * MS));
    let a = h.feed(reply(s[0].1, Reply::Bulk("theirs".into())), 101 * MS);
    assert!(sends(&a).is_empty());
    assert!(a.contains(&Action::Released { confirmed: 0 }));
}

#[test]
fn a_watchdog_not_cancelled_extends_the_released_key_until_it_is_gone() {
    let r = Recipe {
        ttl_ms: Some(900),
        ..Recipe::default().with_pitfall(crate::Pitfall::WatchdogNotCancelled)
    };
    let (mut h, a) = held(r);
    let watchdog = timers(&a)
        .into_iter()
        .find(|(_, at)| *at == MS + 300 * MS)
        .unwrap()
        .0;
    // The release is lost: the client gives up on it at its timeout.
    let a = h.feed(Event::Release, 100 * MS);
    let (release_timeout, at) = *timers(&a).last().unwrap();
    let a = h.feed(Event::Timer(release_timeout), at);
    assert!(a.contains(&Action::Released { confirmed: 0 }));
    assert!(h.m.is_idle() && h.m.watchdog_leaked());
    // The watchdog still ticks, extending the released token's key, round after round.
    let token = h.m.token().to_string();
    let mut next = watchdog;
    for round in 0..3u64 {
        let now = (301 + 300 * round) * MS;
        let a = h.feed(Event::Timer(next), now);
        let s = sends(&a);
        assert_eq!(
            s[0].2,
            Command::Extend {
                key: "lock:x".into(),
                token: token.clone().into(),
                ttl_ms: 900
            }
        );
        next = timers(&a)[0].0;
        assert_eq!(timers(&a)[0].1, now + 300 * MS);
        h.feed(reply(s[0].1, Reply::Int(1)), now + MS);
        assert!(h.m.watchdog_leaked());
        assert!(h.m.inflight_len() <= h.m.max_inflight());
    }
    // Told the key is gone, it stops.
    let s = sends(&h.feed(Event::Timer(next), 2_000 * MS));
    h.feed(reply(s[0].1, Reply::Int(0)), 2_001 * MS);
    assert!(!h.m.watchdog_leaked());
    assert!(h.feed(Event::Timer(next), 2_300 * MS).is_empty());
}

#[test]
fn the_safe_watchdog_stops_at_the_release() {
    let (mut h, a) = held(Recipe {
        ttl_ms: Some(900),
        ..Recipe::default()
    });
    let watchdog = timers(&a)
        .into_iter()
        .find(|(_, at)| *at == MS + 300 * MS)
        .unwrap()
        .0;
    h.feed(Event::Release, 100 * MS);
    assert!(!h.m.watchdog_leaked());
    assert!(sends(&h.feed(Event::Timer(watchdog), 301 * MS)).is_empty());
}

#[test]
fn unchecked_validity_takes_a_grant_slower_than_the_ttl() {
    let late = |r: Recipe| {
        let mut h = Harness::new(r, 1);
        let s = sends(&h.feed(Event::Acquire, 0));
        // The grant arrives 2 s after the attempt began, with a 1 s TTL.
        let a = h.feed(reply(s[0].1, Reply::Ok), 2_000 * MS);
        (h, a)
    };
    let ttl = |r: Recipe| Recipe {
        ttl_ms: Some(1_000),
        ..r
    };
    let (h, a) = late(ttl(Recipe::default()));
    assert!(!h.m.is_held());
    assert!(a.iter().any(|x| matches!(
        x,
        Action::AttemptFailed {
            reason: FailReason::ValidityElapsed,
            ..
        }
    )));
    let (h, a) = late(ttl(
        Recipe::default().with_pitfall(crate::Pitfall::UncheckedValidity)
    ));
    assert!(h.m.is_held());
    // Counted from the late grant: 1 s − (10 ms + 2 ms).
    assert!(a.contains(&Action::Acquired {
        token: h.m.token().to_string().into(),
        fencing_token: None,
        valid_until: 2_988 * MS,
    }));
}

#[test]
fn a_resent_acquire_keeps_its_token_and_forgets_the_silent_request() {
    let r = Recipe::default().with_pitfall(crate::Pitfall::ResentCountingAcquire);
    let mut h = Harness::new(r, 1);
    let a = h.feed(Event::Acquire, 0);
    let first = sends(&a);
    let token = h.m.token().to_string();
    assert_eq!(
        first[0].2,
        Command::CountingAcquire {
            key: "lock:x".into(),
            token: token.clone().into(),
            ttl_ms: Some(30_000)
        }
    );
    let (timeout, at) = timers(&a)[0];
    assert_eq!(at, 500 * MS);
    // No reply within the request timeout: the same command again, same token, same attempt.
    let a = h.feed(Event::Timer(timeout), at);
    let again = sends(&a);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].2, first[0].2);
    assert_ne!(again[0].1, first[0].1);
    assert!(!a.iter().any(|x| matches!(x, Action::AttemptStarted { .. })));
    assert_eq!(h.m.inflight_len(), 1);
    // The first request's late reply is ignored; the resend's grant (hold count 2: the first
    // ran too) is the acquisition.
    assert!(h
        .feed(reply(first[0].1, Reply::Int(1)), 700 * MS)
        .is_empty());
    assert!(!h.m.is_held());
    let a = h.feed(reply(again[0].1, Reply::Int(2)), 701 * MS);
    assert!(h.m.is_held());
    assert!(a.iter().any(|x| matches!(x, Action::Acquired { .. })));
    // One release: the counting release script, once.
    let s = sends(&h.feed(Event::Release, 800 * MS));
    assert_eq!(
        s[0].2,
        Command::CountingRelease {
            key: "lock:x".into(),
            token: token.into(),
            ttl_ms: Some(30_000)
        }
    );
    // The script answers 0: one hold was taken away, the key stays.
    let a = h.feed(reply(s[0].1, Reply::Int(0)), 801 * MS);
    assert!(a.contains(&Action::Released { confirmed: 0 }));
}

#[test]
fn without_resends_a_silent_counting_acquire_is_undone_before_the_retry() {
    let r = Recipe {
        acquire: crate::AcquireStyle::Counting,
        ..Recipe::default()
    };
    let mut h = Harness::new(r, 1);
    let a = h.feed(Event::Acquire, 0);
    let (timeout, at) = timers(&a)[0];
    let a = h.feed(Event::Timer(timeout), at);
    // The attempt fails; its cleanup is the counting release (one hold away), then a retry.
    let s = sends(&a);
    assert!(matches!(s[0].2, Command::CountingRelease { .. }));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::AttemptFailed { attempt: 1, .. })));
}

#[test]
fn resends_run_out_and_the_attempt_fails() {
    let r = Recipe {
        acquire_resends: 2,
        ..Recipe::default()
    };
    let mut h = Harness::new(r, 1);
    let mut a = h.feed(Event::Acquire, 0);
    for _ in 0..2 {
        let (timeout, at) = timers(&a)[0];
        a = h.feed(Event::Timer(timeout), at);
        assert!(matches!(sends(&a)[0].2, Command::SetNx { .. }));
        assert!(!a.iter().any(|x| matches!(x, Action::AttemptFailed { .. })));
    }
    let (timeout, at) = timers(&a)[0];
    let a = h.feed(Event::Timer(timeout), at);
    assert!(a.iter().any(|x| matches!(x, Action::AttemptFailed { .. })));
}

#[test]
fn a_counting_lock_extends_by_the_counting_script() {
    let r = Recipe {
        acquire: crate::AcquireStyle::Counting,
        ..Recipe::default()
    };
    let mut h = Harness::new(r, 1);
    let s = sends(&h.feed(Event::Acquire, 0));
    h.feed(reply(s[0].1, Reply::Int(1)), MS);
    assert!(h.m.is_held());
    let s = sends(&h.feed(Event::Extend, 10 * MS));
    assert!(matches!(
        s[0].2,
        Command::CountingExtend { ttl_ms: 30_000, .. }
    ));
    // A refused counting acquire answers nil.
    let mut other = Harness::new(
        Recipe {
            acquire: crate::AcquireStyle::Counting,
            ..Recipe::default()
        },
        1,
    );
    let s = sends(&other.feed(Event::Acquire, 0));
    let a = other.feed(reply(s[0].1, Reply::Nil), MS);
    assert!(!other.m.is_held());
    assert!(a.iter().any(|x| matches!(x, Action::AttemptFailed { .. })));
}

#[test]
fn a_timer_the_machine_moved_past_is_not_awaited_and_fires_as_a_no_op() {
    let mut h = Harness::new(Recipe::default(), 1);
    let a = h.feed(Event::Acquire, 0);
    let (attempt_timeout, _) = timers(&a)[0];
    assert!(h.m.awaits_timer(attempt_timeout), "the attempt waits on it");
    let granted = h.feed(reply(sends(&a)[0].1, Reply::Ok), MS);
    assert!(h.m.is_held());
    assert!(
        !h.m.awaits_timer(attempt_timeout),
        "the attempt is over: its timeout is stale"
    );
    assert!(!h.m.awaits_timer(TimerId(999)), "a timer never set");
    let (validity, _) = *timers(&granted).last().expect("the grant sets a timer");
    assert!(
        h.m.awaits_timer(validity),
        "the held lock waits on its timers"
    );
    let before = format!("{:?}", h.m);
    assert!(h.feed(Event::Timer(attempt_timeout), 2 * MS).is_empty());
    assert_eq!(
        format!("{:?}", h.m),
        before,
        "a stale timer changes nothing"
    );
}
