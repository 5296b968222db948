//! The node's commands, as Redis executes them.

use super::*;

fn run(ks: &mut Keyspace, cmd: Command, now: u64) -> Reply {
    ks.execute(&cmd, now, true, &mut Vec::new())
}

#[test]
fn set_nx_px_expires_by_the_local_clock() {
    let mut ks = Keyspace::default();
    let set = |v: &str| Command::SetNx {
        key: "k".into(),
        value: v.into(),
        ttl_ms: Some(10),
    };
    assert_eq!(run(&mut ks, set("a"), 0), Reply::Ok);
    assert_eq!(run(&mut ks, set("b"), 9_999), Reply::Nil);
    assert_eq!(run(&mut ks, set("b"), 10_000), Reply::Ok);
}

#[test]
fn release_and_extend_check_the_token() {
    let mut ks = Keyspace::default();
    run(
        &mut ks,
        Command::SetNx {
            key: "k".into(),
            value: "a".into(),
            ttl_ms: Some(10),
        },
        0,
    );
    let rel = |t: &str| Command::Release {
        key: "k".into(),
        token: t.into(),
    };
    let ext = |t: &str| Command::Extend {
        key: "k".into(),
        token: t.into(),
        ttl_ms: 100,
    };
    assert_eq!(run(&mut ks, ext("b"), 1), Reply::Int(0));
    assert_eq!(run(&mut ks, ext("a"), 1), Reply::Int(1));
    assert_eq!(
        run(&mut ks, Command::Get { key: "k".into() }, 50_000),
        Reply::Bulk("a".into())
    );
    assert_eq!(run(&mut ks, rel("b"), 2), Reply::Int(0));
    assert_eq!(run(&mut ks, rel("a"), 2), Reply::Int(1));
    assert_eq!(
        run(&mut ks, Command::Del { key: "k".into() }, 3),
        Reply::Int(0)
    );
}

#[test]
fn fenced_acquire_counts_up_and_replicas_refuse_writes() {
    let mut ks = Keyspace::default();
    let acq = |t: &str| Command::FencedAcquire {
        key: "k".into(),
        counter_key: "k:fence".into(),
        token: t.into(),
        ttl_ms: Some(5),
    };
    let mut fx = Vec::new();
    assert_eq!(ks.execute(&acq("a"), 0, true, &mut fx), Reply::Int(1));
    assert_eq!(fx.len(), 2, "the lock and the counter replicate");
    assert_eq!(run(&mut ks, acq("b"), 1), Reply::Nil);
    assert_eq!(run(&mut ks, acq("b"), 5_000), Reply::Int(2));
    assert_eq!(
        ks.execute(&acq("c"), 0, false, &mut Vec::new()),
        Reply::Error(READONLY.into())
    );
}

#[test]
fn setnx_has_no_expiry_until_pexpire() {
    let mut ks = Keyspace::default();
    let setnx = Command::SetNxLegacy {
        key: "k".into(),
        value: "a".into(),
    };
    assert_eq!(run(&mut ks, setnx.clone(), 0), Reply::Int(1));
    assert_eq!(run(&mut ks, setnx, u64::MAX / 2), Reply::Int(0));
    assert_eq!(
        run(
            &mut ks,
            Command::PExpire {
                key: "k".into(),
                ttl_ms: 1
            },
            10
        ),
        Reply::Int(1)
    );
    assert_eq!(
        run(&mut ks, Command::Get { key: "k".into() }, 1_010),
        Reply::Nil
    );
}

fn counting(t: &str) -> (Command, Command, Command) {
    let key = || "k".to_string();
    (
        Command::CountingAcquire {
            key: key().into(),
            token: t.into(),
            ttl_ms: Some(10),
        },
        Command::CountingRelease {
            key: key().into(),
            token: t.into(),
            ttl_ms: Some(10),
        },
        Command::CountingExtend {
            key: key().into(),
            token: t.into(),
            ttl_ms: 100,
        },
    )
}

#[test]
fn the_counting_lock_counts_holds_and_frees_at_zero() {
    let mut ks = Keyspace::default();
    let (acq_a, rel_a, ext_a) = counting("a");
    let (acq_b, rel_b, ext_b) = counting("b");
    assert_eq!(run(&mut ks, acq_a.clone(), 0), Reply::Int(1));
    // The same token again (a resend, or a re-entry): two holds; another token is refused.
    assert_eq!(run(&mut ks, acq_a.clone(), 1), Reply::Int(2));
    assert_eq!(run(&mut ks, acq_b.clone(), 2), Reply::Nil);
    assert_eq!(run(&mut ks, rel_b, 3), Reply::Nil);
    assert_eq!(run(&mut ks, ext_b, 3), Reply::Int(0));
    assert_eq!(run(&mut ks, ext_a, 4), Reply::Int(1));
    // One release takes one hold away and renews the TTL (10 ms from 5 ms): still taken.
    assert_eq!(run(&mut ks, rel_a.clone(), 5_000), Reply::Int(0));
    let e = ks.peek("k", 5_000).unwrap().clone();
    assert_eq!(
        (e.value.as_str(), e.count, e.expires_at),
        ("a", Some(1), Some(15_000))
    );
    assert_eq!(run(&mut ks, acq_b.clone(), 14_999), Reply::Nil);
    // The second release deletes the key.
    assert_eq!(run(&mut ks, rel_a.clone(), 6_000), Reply::Int(1));
    assert!(ks.peek("k", 6_000).is_none());
    assert_eq!(run(&mut ks, rel_a, 6_001), Reply::Nil);
    assert_eq!(run(&mut ks, acq_b, 6_002), Reply::Int(1));
}

#[test]
fn a_hash_and_a_string_refuse_each_others_commands() {
    let mut ks = Keyspace::default();
    let (acq, rel, ext) = counting("a");
    run(&mut ks, acq.clone(), 0);
    let wrong = |r: Reply| matches!(r, Reply::Error(e) if e.starts_with("WRONGTYPE"));
    assert!(wrong(run(&mut ks, Command::Get { key: "k".into() }, 1)));
    let release = Command::Release {
        key: "k".into(),
        token: "a".into(),
    };
    assert!(wrong(run(&mut ks, release, 1)));
    let set_nx = Command::SetNx {
        key: "k".into(),
        value: "b".into(),
        ttl_ms: None,
    };
    assert_eq!(run(&mut ks, set_nx.clone(), 1), Reply::Nil);
    // PEXPIRE and DEL take any type.
    let pexpire = Command::PExpire {
        key: "k".into(),
        ttl_ms: 100,
    };
    assert_eq!(run(&mut ks, pexpire, 1), Reply::Int(1));
    assert_eq!(ks.peek("k", 1).unwrap().count, Some(1));
    assert_eq!(
        run(&mut ks, Command::Del { key: "k".into() }, 2),
        Reply::Int(1)
    );
    assert_eq!(run(&mut ks, set_nx, 3), Reply::Ok);
    assert!(wrong(run(&mut ks, acq, 4)));
    assert!(wrong(run(&mut ks, rel, 4)));
    assert!(wrong(run(&mut ks, ext, 4)));
}

#[test]
fn a_replica_refuses_counting_writes_but_answers_refusals() {
    let mut ks = Keyspace::default();
    let (acq_a, rel_a, ext_a) = counting("a");
    let (acq_b, rel_b, _) = counting("b");
    let replica = |ks: &mut Keyspace, c: Command| ks.execute(&c, 1, false, &mut Vec::new());
    assert_eq!(
        replica(&mut ks, acq_a.clone()),
        Reply::Error(READONLY.into())
    );
    run(&mut ks, acq_a.clone(), 0);
    assert_eq!(replica(&mut ks, acq_b), Reply::Nil);
    assert_eq!(replica(&mut ks, rel_b), Reply::Nil);
    assert_eq!(replica(&mut ks, acq_a), Reply::Error(READONLY.into()));
    assert_eq!(replica(&mut ks, rel_a), Reply::Error(READONLY.into()));
    assert_eq!(replica(&mut ks, ext_a), Reply::Error(READONLY.into()));
}
