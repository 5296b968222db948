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
