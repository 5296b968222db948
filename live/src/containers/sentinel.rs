//! Sentinel on containers: each Sentinel's own configuration lines (it listens on its port in
//! its container and announces itself and the nodes by hostname, the aliases on the mesh
//! network); the settings, the readiness wait and the poller are shared with the processes
//! provider ([`crate::sentinel`]).

use super::{REDIS_PORT, SENTINEL_PORT, STARTUP};
use crate::LiveError;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The Sentinel configuration of `sentinel-<k>` (written into the container before it starts:
/// a Sentinel needs a writable configuration file).
pub(super) fn conf(k: usize, down_after_ms: u64) -> String {
    let local = [
        format!("port {SENTINEL_PORT}"),
        "sentinel resolve-hostnames yes".into(),
        "sentinel announce-hostnames yes".into(),
        format!("sentinel announce-ip sentinel-{k}"),
    ];
    crate::sentinel::conf(&local, ("primary", REDIS_PORT), down_after_ms)
}

/// Waits until every Sentinel (at `addrs`) knows the other Sentinels and `replicas` replicas.
pub(super) async fn wait_ready(addrs: &[String], replicas: usize) -> Result<(), LiveError> {
    crate::sentinel::wait_ready(addrs, replicas, STARTUP).await
}

/// What the poller shares with the provider.
pub(super) struct Follow {
    /// The Sentinels' `host:port`s.
    pub(super) sentinels: Vec<String>,
    /// The Redis nodes' names, in instance order (the Sentinels name them by these hostnames).
    pub(super) names: Vec<String>,
    /// The current primary, moved on a switch.
    pub(super) primary: Arc<AtomicUsize>,
    /// Promotions seen, not yet taken by the driver.
    pub(super) promotions: Arc<Mutex<Vec<(Instant, checker::Effect)>>>,
    /// Set when the provider goes.
    pub(super) stop: Arc<AtomicBool>,
}

/// Follows the Sentinels' switches of the primary ([`crate::sentinel::start_poller`]).
pub(super) fn start_poller(f: Follow) -> Result<std::thread::JoinHandle<()>, LiveError> {
    crate::sentinel::start_poller(crate::sentinel::Follow {
        addrs: f.names.iter().map(|n| (n.clone(), REDIS_PORT)).collect(),
        sentinels: f.sentinels,
        names: f.names,
        primary: f.primary,
        promotions: f.promotions,
        stop: f.stop,
    })
}
