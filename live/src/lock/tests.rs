//! `RealLock` against real `redis-server` processes.

use super::*;
use crate::processes::{testing::start, Processes};
use crate::{Provider, Timeouts};
use lock_core::RetryPolicy;
use scenario::Topology;

fn conns(p: &Processes) -> Vec<Arc<NodeConn>> {
    p.nodes()
        .into_iter()
        .map(|(_, url)| Arc::new(NodeConn::new(url, Timeouts::default())))
        .collect()
}

fn short_retries() -> Recipe {
    Recipe {
        retry: RetryPolicy {
            max_attempts: Some(2),
            base_ms: 10,
            cap_ms: 10,
            jitter: 0.0,
        },
        ..Recipe::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_exclude_release_then_reacquire_on_a_real_server() {
    let Some(p) = start(&Topology::Single {}) else {
        return;
    };
    let c = conns(&p);
    let mut a = RealLock::new(short_retries(), "lock:test", c.clone(), 1).unwrap();
    let mut b = RealLock::new(short_retries(), "lock:test", c.clone(), 2).unwrap();

    let got = a.acquire().await.expect("A acquires a free lock");
    assert_eq!(got.token.len(), 40);
    assert!(got.valid_until > a.now() && got.valid_until < 30_000_000);
    assert_eq!(
        c[0].send(&lock_core::Command::Get {
            key: "lock:test".into()
        })
        .await,
        Reply::Bulk(got.token.clone())
    );

    let t0 = b.now();
    let err = b.acquire().await.expect_err("B must not get A's lock");
    assert_eq!(err.attempts, 2, "{err}");
    assert!(
        matches!(
            err.reason,
            FailReason::Contended {
                granted: 0,
                refused: 1,
                failed: 0
            }
        ),
        "{err}"
    );
    assert!(b.now() - t0 >= 10_000, "B waited its 10 ms backoff");

    assert!(a.extend().await, "the holder can extend");
    assert!(!b.extend().await, "B holds nothing to extend");
    assert_eq!(b.release().await, 0, "B holds nothing to release");

    assert_eq!(a.release().await, 1);
    assert!(a.held().is_none());
    let got_b = b.acquire().await.expect("B acquires once A released");
    assert_ne!(got_b.token, got.token);
    assert_eq!(b.release().await, 1);
    assert_eq!(
        c[0].send(&lock_core::Command::Get {
            key: "lock:test".into()
        })
        .await,
        Reply::Nil
    );
}

/// Connections to `p`'s nodes with `timeouts`, opened now: commands sent while a
/// connection is still being opened are not ordered (a release may overtake the acquire it
/// undoes), which the tests below must rule out.
async fn opened(p: &Processes, timeouts: Timeouts) -> Vec<Arc<NodeConn>> {
    let c: Vec<Arc<NodeConn>> = p
        .nodes()
        .into_iter()
        .map(|(_, url)| Arc::new(NodeConn::new(url, timeouts)))
        .collect();
    for conn in &c {
        conn.connect().await.unwrap();
    }
    c
}

async fn get(conn: &NodeConn, key: &str) -> Reply {
    conn.send(&lock_core::Command::Get { key: key.into() })
        .await
}

/// Three Redlock servers, connections to them that wait `conn_ms` for an answer, and a
/// Redlock recipe whose requests time out after `request_ms` (`None`: no redis-server).
async fn redlock_of_three(
    conn_ms: u64,
    request_ms: u64,
) -> Option<(Processes, Vec<Arc<NodeConn>>, Recipe)> {
    let p = start(&Topology::Redlock { instances: 3 })?;
    let timeouts = Timeouts {
        connect: Duration::from_millis(conn_ms),
        response: Duration::from_millis(conn_ms),
    };
    let c = opened(&p, timeouts).await;
    let recipe = Recipe {
        redlock: Some(Default::default()),
        request_timeout_ms: request_ms,
        ..short_retries()
    };
    Some((p, c, recipe))
}

/// Asserts that `key` reads `want` on every node; `what` says what it means when not, with
/// `redis-N` standing for the node.
async fn every_node_holds(c: &[Arc<NodeConn>], key: &str, want: Reply, what: &str) {
    for (i, conn) in c.iter().enumerate() {
        let node = format!("redis-{}", i + 1);
        assert_eq!(
            get(conn, key).await,
            want,
            "{}",
            what.replace("redis-N", &node)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_decides_at_quorum_with_a_stalled_node() {
    // Timeouts far above the 150 ms bound below: healthy replies get room on a loaded
    // machine, and deciding in under 150 ms cannot be waiting out the stalled node.
    let Some((p, c, recipe)) = redlock_of_three(2000, 2000).await else {
        return;
    };
    let mut a = RealLock::new(recipe, "lock:rl", c.clone(), 3).unwrap();
    // Warm the connections, then stall one node.
    a.acquire().await.unwrap();
    // Decided at 2 of 3: the third grant may land after the release began, and is then a
    // late grant, deleted only once its reply is fed. Wait for that: a key left on a
    // healthy node would refuse the timed acquire there, leaving it one grant short
    // until the stalled node's 2 s timeout.
    assert!(a.release().await >= 2);
    tokio::time::timeout(Duration::from_secs(10), a.settled())
        .await
        .expect("the warm-up's sends answered within 10 s");
    every_node_holds(
        &c,
        "lock:rl",
        Reply::Nil,
        "the warm-up left the lock key on redis-N",
    )
    .await;
    p.pause("redis-3").await.unwrap();
    let t = Instant::now();
    a.acquire().await.expect("2 of 3 is a quorum");
    let took = t.elapsed();
    assert_eq!(a.release().await, 2);
    p.resume("redis-3").await.unwrap();
    assert!(
        took < Duration::from_millis(150),
        "decided at quorum, not after the stalled node's 2 s timeout: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_waits_for_a_late_grants_cleanup() {
    // Far above how long redis-3 stays frozen, so its reply is a grant, not a timeout.
    let Some((p, c, recipe)) = redlock_of_three(5000, 5000).await else {
        return;
    };
    let mut a = RealLock::new(recipe, "lock:settled", c.clone(), 4).unwrap();
    // Nothing under way: settled at once.
    a.settled().await;
    // redis-3 is frozen while the lock is taken and given back, so its SET is a straggler.
    p.pause("redis-3").await.unwrap();
    let token = a.acquire().await.expect("2 of 3 is a quorum").token;
    assert_eq!(a.release().await, 2);
    p.resume("redis-3").await.unwrap();
    // It grants once redis-3 thaws, and stays: only feeding its reply sends the delete.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&c[2], "lock:settled").await != Reply::Bulk(token.clone()) {
        assert!(
            Instant::now() < deadline,
            "redis-3 never granted the straggler"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::timeout(Duration::from_secs(10), a.settled())
        .await
        .expect("the straggler and its cleanup answered within 10 s");
    every_node_holds(
        &c,
        "lock:settled",
        Reply::Nil,
        "redis-N still holds the key after settled()",
    )
    .await;
    // And settled again at once.
    tokio::time::timeout(Duration::from_millis(100), a.settled())
        .await
        .expect("nothing under way");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_grants_delete_goes_before_the_next_acquires_set() {
    // Far above how long redis-3 stays frozen, so its reply is a grant, not a timeout.
    let Some((p, c, recipe)) = redlock_of_three(5000, 5000).await else {
        return;
    };
    let mut a = RealLock::new(recipe, "lock:order", c.clone(), 5).unwrap();
    // redis-3 is frozen while the lock is taken and given back, so its SET is a straggler.
    p.pause("redis-3").await.unwrap();
    let old = a.acquire().await.expect("2 of 3 is a quorum").token;
    assert_eq!(a.release().await, 2);
    p.resume("redis-3").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&c[2], "lock:order").await != Reply::Bulk(old.clone()) {
        assert!(
            Instant::now() < deadline,
            "redis-3 never granted the straggler"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Its reply reaches the lock between calls, and waits there to be fed.
    while a.rx.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the straggler's reply never reached the lock"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The next acquire feeds it first: the late grant's delete and this acquire's SET both
    // go to redis-3, the delete first. (redis-3 has not run the release script yet, so
    // the delete takes three round trips: EVALSHA, NOSCRIPT, the script loaded and sent
    // again; a SET sent meanwhile would find the old key and be refused.)
    let new = a.acquire().await.expect("2 of 3 is a quorum").token;
    tokio::time::timeout(Duration::from_secs(10), a.settled())
        .await
        .expect("every send answered within 10 s");
    every_node_holds(
        &c,
        "lock:order",
        Reply::Bulk(new.clone()),
        "redis-N does not hold the new token: its SET overtook the late grant's delete",
    )
    .await;
    assert_eq!(a.release().await, 3, "all three grants are released");
    every_node_holds(&c, "lock:order", Reply::Nil, "redis-N still holds the key").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_waits_for_the_unanswered_delete_on_its_node_and_holds_up_nobody() {
    // The connections wait far longer than redis-3 stays frozen; the machine gives up on
    // a reply after 1 s, so the release returns with redis-3's delete still under way.
    let Some((p, c, recipe)) = redlock_of_three(10_000, 1000).await else {
        return;
    };
    let mut a = RealLock::new(recipe, "lock:gate", c.clone(), 6).unwrap();
    let old = a.acquire().await.expect("a free lock").token;
    tokio::time::timeout(Duration::from_secs(10), a.settled())
        .await
        .expect("every send answered within 10 s");
    for conn in &c {
        assert_eq!(get(conn, "lock:gate").await, Reply::Bulk(old.clone()));
    }
    p.pause("redis-3").await.unwrap();
    assert_eq!(a.release().await, 2, "redis-3 cannot answer while frozen");
    assert!(a.gates[2].delete.is_some(), "redis-3's delete is under way");
    // The next acquire decides on redis-1 and redis-2; its SET to redis-3 waits for the
    // delete there (sent now, it would run right after the delete's NOSCRIPT, find the
    // old key and be refused).
    let new = a.acquire().await.expect("2 of 3 is a quorum").token;
    assert_eq!(a.gates[2].held.len(), 1, "the SET to redis-3 waits");
    assert!(a.gates[..2].iter().all(|g| g.delete.is_none()));
    p.resume("redis-3").await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), a.settled())
        .await
        .expect("every send answered within 20 s");
    assert_eq!(a.gated, 0);
    every_node_holds(
        &c,
        "lock:gate",
        Reply::Bulk(new.clone()),
        "redis-N does not hold the new token",
    )
    .await;
    assert_eq!(a.release().await, 3);
    for conn in &c {
        assert_eq!(get(conn, "lock:gate").await, Reply::Nil);
    }
}

#[test]
fn a_plain_lock_over_two_nodes_is_refused() {
    let c = vec![
        Arc::new(NodeConn::new(
            "redis://127.0.0.1:1".into(),
            Timeouts::default(),
        )),
        Arc::new(NodeConn::new(
            "redis://127.0.0.1:2".into(),
            Timeouts::default(),
        )),
    ];
    assert_eq!(
        RealLock::new(Recipe::default(), "k", c, 0)
            .err()
            .unwrap()
            .field,
        "redlock"
    );
}
