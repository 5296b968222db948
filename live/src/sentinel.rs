//! Sentinel as both server providers run it: three Sentinels with the same settings (quorum
//! 2, the scenario's `down_after_ms`, a failover timeout of twice that and at least 1 s, one
//! replica resynced at a time), waiting until they know each other, and following their
//! switches of the primary (their `+switch-master` announcements, with a poll as a fallback).
//!
//! Where the Sentinels reach the nodes differs per provider (hostnames on the containers'
//! mesh network, loopback proxy links on processes), so the nodes are known to the code here
//! by the `(host, port)` the Sentinels name them with.

use crate::admin::{ask, query};
use crate::{LiveError, StartupError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The Sentinels' name for the monitored primary.
pub(crate) const MASTER_NAME: &str = "locksim";
/// Sentinels of a replicated topology with `sentinel` set.
pub(crate) const SENTINELS: usize = 3;
/// How many Sentinels must agree that the primary is down.
const QUORUM: usize = 2;
/// How often the Sentinels are asked where the primary is.
const POLL: Duration = Duration::from_millis(50);

/// The Sentinels' names (`sentinel-1` ...), which partitions may name.
pub(crate) fn names() -> Vec<String> {
    (1..=SENTINELS).map(|k| format!("sentinel-{k}")).collect()
}

/// One Sentinel's configuration file: the provider's own lines (`local`: where it listens,
/// how it announces itself), then the settings every Sentinel shares, monitoring the primary
/// at `primary` (`host`, `port`). A Sentinel needs the file writable: it rewrites it.
pub(crate) fn conf(local: &[String], primary: (&str, u16), down_after_ms: u64) -> String {
    let mut text: String = local.iter().map(|l| format!("{l}\n")).collect();
    let (host, port) = primary;
    text.push_str(&format!(
        "protected-mode no\n\
         sentinel monitor {MASTER_NAME} {host} {port} {QUORUM}\n\
         sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n\
         sentinel failover-timeout {MASTER_NAME} {}\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        (down_after_ms * 2).max(1000)
    ));
    text
}

/// Whether a Sentinel's `SENTINEL MASTER` answer (`info`) shows it knows the other
/// Sentinels and `replicas` replicas.
fn knows_all(info: &[String], replicas: usize) -> bool {
    let field = |key: &str| -> usize {
        info.iter()
            .position(|f| f == key)
            .and_then(|p| info.get(p + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    field("num-other-sentinels") >= SENTINELS - 1 && field("num-slaves") >= replicas
}

/// Waits (up to `within`) until every Sentinel (at `addrs`) knows the other Sentinels and
/// `replicas` replicas.
pub(crate) async fn wait_ready(
    addrs: &[String],
    replicas: usize,
    within: Duration,
) -> Result<(), LiveError> {
    let deadline = Instant::now() + within;
    for (k, addr) in addrs.iter().enumerate() {
        loop {
            let info = ask::<Vec<String>>(addr, &["SENTINEL", "MASTER", MASTER_NAME])
                .await
                .unwrap_or_default();
            if ready(k, &info, replicas, deadline, within)? {
                break;
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
    Ok(())
}

/// [`wait_ready`] for blocking callers.
pub(crate) fn wait_ready_blocking(
    addrs: &[String],
    replicas: usize,
    within: Duration,
) -> Result<(), LiveError> {
    let deadline = Instant::now() + within;
    for (k, addr) in addrs.iter().enumerate() {
        loop {
            let info = query::<Vec<String>>(addr, &["SENTINEL", "MASTER", MASTER_NAME])
                .unwrap_or_default();
            if ready(k, &info, replicas, deadline, within)? {
                break;
            }
            std::thread::sleep(READY_POLL);
        }
    }
    Ok(())
}

/// How often a Sentinel not yet ready is asked again.
const READY_POLL: Duration = Duration::from_millis(100);

/// Whether Sentinel `k`, which answered `info`, is ready (see [`knows_all`]); an error once
/// `deadline` (`within` from the start) has passed with it not ready.
fn ready(
    k: usize,
    info: &[String],
    replicas: usize,
    deadline: Instant,
    within: Duration,
) -> Result<bool, LiveError> {
    if knows_all(info, replicas) {
        return Ok(true);
    }
    match Instant::now() > deadline {
        true => Err(apart(k, within)),
        false => Ok(false),
    }
}

fn apart(k: usize, within: Duration) -> LiveError {
    LiveError::startup(
        format!("sentinel-{}", k + 1),
        StartupError::SentinelsApart(within),
    )
}

/// What the poller shares with the provider.
pub(crate) struct Follow {
    /// The Sentinels' `host:port`s, where the harness reaches them.
    pub(crate) sentinels: Vec<String>,
    /// The Redis nodes' names, in instance order.
    pub(crate) names: Vec<String>,
    /// Where the Sentinels reach each node (`host`, `port`), in instance order: how they name
    /// the primary in their answers and announcements.
    pub(crate) addrs: Vec<(String, u16)>,
    /// The current primary, moved on a switch.
    pub(crate) primary: Arc<AtomicUsize>,
    /// Promotions seen, not yet taken by the driver.
    pub(crate) promotions: Arc<Mutex<Vec<(Instant, checker::Effect)>>>,
    /// Set when the provider goes.
    pub(crate) stop: Arc<AtomicBool>,
}

impl Follow {
    /// The node the Sentinels name `host` and `port` (a port that does not parse is no node).
    fn node_at(&self, host: &str, port: &str) -> Option<usize> {
        let port: u16 = port.parse().ok()?;
        self.addrs.iter().position(|(h, p)| h == host && *p == port)
    }
}

/// A thread that follows the Sentinels and moves the primary when they switch it: it listens
/// to each Sentinel's `+switch-master` announcements (the true time of the switch) and, as a
/// fallback, asks them where the primary is every [`POLL`]. Whichever sees a switch first
/// records it as a promotion by Sentinel. It ends soon after `stop` is set.
pub(crate) fn start_poller(f: Follow) -> Result<std::thread::JoinHandle<()>, LiveError> {
    let t = std::thread::Builder::new()
        .name("locksim-sentinel-poll".into())
        .spawn(move || {
            let switch = |b: usize| {
                if f.primary.swap(b, Ordering::SeqCst) != b {
                    f.promotions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((
                            Instant::now(),
                            checker::Effect::Promoted {
                                node: f.names[b].clone(),
                                by: checker::PromotedBy::Sentinel,
                            },
                        ));
                }
            };
            std::thread::scope(|scope| {
                for s in &f.sentinels {
                    let (switch, f) = (&switch, &f);
                    scope.spawn(move || listen_for_switches(s, f, switch));
                }
                while !f.stop.load(Ordering::SeqCst) {
                    let mut votes = vec![0usize; f.names.len()];
                    for s in &f.sentinels {
                        if let Ok(addr) = query::<Vec<String>>(
                            s,
                            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
                        ) {
                            if let [host, port] = addr.as_slice() {
                                if let Some(i) = f.node_at(host, port) {
                                    votes[i] += 1;
                                }
                            }
                        }
                    }
                    let current = f.primary.load(Ordering::SeqCst);
                    // The most votes; a tie goes to a change (the leader reports it first).
                    let best = (0..f.names.len())
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
/// new primary's index (`<master> <old-ip> <old-port> <new-ip> <new-port>`). Reconnects when
/// the connection breaks.
fn listen_for_switches(addr: &str, f: &Follow, switch: &dyn Fn(usize)) {
    while !f.stop.load(Ordering::SeqCst) {
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
        while !f.stop.load(Ordering::SeqCst) {
            match sub.get_message() {
                Ok(msg) => {
                    let payload: String = msg.get_payload().unwrap_or_default();
                    let words: Vec<&str> = payload.split_whitespace().collect();
                    if let [MASTER_NAME, _, _, host, port] = words.as_slice() {
                        if let Some(i) = f.node_at(host, port) {
                            switch(i);
                        }
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sentinel_gets_the_shared_settings_after_its_own_lines() {
        let text = conf(&["port 26379".into()], ("primary", 6379), 1000);
        assert!(text.starts_with("port 26379\n"));
        assert!(text.contains("sentinel monitor locksim primary 6379 2\n"));
        assert!(text.contains("sentinel down-after-milliseconds locksim 1000\n"));
        assert!(text.contains("sentinel failover-timeout locksim 2000\n"));
        let short = conf(&[], ("127.0.0.1", 4000), 100);
        assert!(short.contains("sentinel failover-timeout locksim 1000\n"));
    }
}
