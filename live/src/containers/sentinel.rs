//! Sentinel: the three Sentinels' configuration, waiting until they know each other, and
//! following their switches of the primary (their `+switch-master` announcements, with a
//! poll as a fallback).

use super::{MASTER_NAME, SENTINELS, STARTUP};
use crate::admin::{ask, query};
use crate::{LiveError, StartupError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the Sentinels are asked where the primary is.
const POLL: Duration = Duration::from_millis(50);

/// The Sentinel configuration of `sentinel-<k>` (written into the container before it starts:
/// a Sentinel needs a writable configuration file).
pub(super) fn conf(k: usize, down_after_ms: u64) -> String {
    format!(
        "port 26379\n\
         protected-mode no\n\
         sentinel resolve-hostnames yes\n\
         sentinel announce-hostnames yes\n\
         sentinel announce-ip sentinel-{k}\n\
         sentinel monitor {MASTER_NAME} primary 6379 2\n\
         sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n\
         sentinel failover-timeout {MASTER_NAME} {}\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        (down_after_ms * 2).max(1000)
    )
}

/// Waits until every Sentinel (at `addrs`) knows the other Sentinels and `replicas` replicas.
pub(super) async fn wait_ready(addrs: &[String], replicas: usize) -> Result<(), LiveError> {
    let deadline = Instant::now() + STARTUP;
    for (k, addr) in addrs.iter().enumerate() {
        loop {
            let info = ask::<Vec<String>>(addr, &["SENTINEL", "MASTER", MASTER_NAME])
                .await
                .unwrap_or_default();
            let field = |key: &str| -> usize {
                info.iter()
                    .position(|f| f == key)
                    .and_then(|p| info.get(p + 1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            if field("num-other-sentinels") >= SENTINELS - 1 && field("num-slaves") >= replicas {
                break;
            }
            if Instant::now() > deadline {
                return Err(LiveError::startup(
                    format!("sentinel-{}", k + 1),
                    StartupError::SentinelsApart(STARTUP),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// What the poller shares with the provider.
pub(super) struct Follow {
    /// The Sentinels' `host:port`s.
    pub(super) sentinels: Vec<String>,
    /// The Redis nodes' names, in instance order.
    pub(super) names: Vec<String>,
    /// The current primary, moved on a switch.
    pub(super) primary: Arc<AtomicUsize>,
    /// Promotions seen, not yet taken by the driver.
    pub(super) promotions: Arc<Mutex<Vec<(Instant, checker::Effect)>>>,
    /// Set when the provider goes.
    pub(super) stop: Arc<AtomicBool>,
}

/// A thread that follows the Sentinels and moves the primary when they switch it: it listens
/// to each Sentinel's `+switch-master` announcements (the true time of the switch) and, as a
/// fallback, asks them where the primary is every [`POLL`]. Whichever sees a switch first
/// records it as a promotion by Sentinel.
pub(super) fn start_poller(f: Follow) -> Result<std::thread::JoinHandle<()>, LiveError> {
    let t = std::thread::Builder::new()
        .name("locksim-sentinel-poll".into())
        .spawn(move || {
            let Follow {
                sentinels,
                names,
                primary,
                promotions,
                stop,
            } = f;
            let switch = |b: usize| {
                if primary.swap(b, Ordering::SeqCst) != b {
                    promotions.lock().unwrap_or_else(|e| e.into_inner()).push((
                        Instant::now(),
                        checker::Effect::Promoted {
                            node: names[b].clone(),
                            by: checker::PromotedBy::Sentinel,
                        },
                    ));
                }
            };
            std::thread::scope(|scope| {
                for s in &sentinels {
                    let (switch, names, stop) = (&switch, &names, &stop);
                    scope.spawn(move || listen_for_switches(s, names, switch, stop));
                }
                while !stop.load(Ordering::SeqCst) {
                    let mut votes = vec![0usize; names.len()];
                    for s in &sentinels {
                        if let Ok(addr) = query::<Vec<String>>(
                            s,
                            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
                        ) {
                            if let Some(i) =
                                addr.first().and_then(|h| names.iter().position(|n| n == h))
                            {
                                votes[i] += 1;
                            }
                        }
                    }
                    let current = primary.load(Ordering::SeqCst);
                    // The most votes; a tie goes to a change (the leader reports it first).
                    let best = (0..names.len())
                        .filter(|i| votes[*i] > 0)
                        .max_by_key(|i| (votes[*i], usize::from(*i != current)));
                    if let Some(b) = best.filter(|b| *b != current) {
                        switch(b);
                    }
                    std::thread::sleep(POLL);
                }
            });
        })?;
    Ok(t)
}

/// Listens to one Sentinel's `+switch-master` channel until `stop`, calling `switch` with the
/// new primary's index (`<master> <old-ip> <old-port> <new-ip> <new-port>`; the Sentinels
/// announce hostnames, which are the node names). Reconnects when the connection breaks.
fn listen_for_switches(addr: &str, names: &[String], switch: &dyn Fn(usize), stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let conn = redis::Client::open(format!("redis://{addr}"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)));
        let Ok(mut conn) = conn else {
            std::thread::sleep(POLL);
            continue;
        };
        let mut sub = conn.as_pubsub();
        if sub.set_read_timeout(Some(POLL * 2)).is_err() || sub.subscribe("+switch-master").is_err()
        {
            std::thread::sleep(POLL);
            continue;
        }
        while !stop.load(Ordering::SeqCst) {
            match sub.get_message() {
                Ok(msg) => {
                    let payload: String = msg.get_payload().unwrap_or_default();
                    let words: Vec<&str> = payload.split_whitespace().collect();
                    let new = words
                        .get(3)
                        .filter(|_| words.first() == Some(&MASTER_NAME))
                        .and_then(|h| names.iter().position(|n| n == h));
                    if let Some(i) = new {
                        switch(i);
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(_) => break,
            }
        }
    }
}
