//! Real Redis: the same lock core and client loop the simulator runs, driven with tokio and
//! the `redis` crate against real servers.
//!
//! A [`Provider`] owns a topology of real servers and injects faults into it (the
//! [`processes::Processes`] provider starts Debian's `redis-server` on loopback ports; a
//! [`UrlProvider`] points at servers a user already runs and injects nothing). [`driver::play`]
//! plays a scenario against a provider and returns the same history format the simulator
//! writes, so the same checker judges both. It confirms every fault's effect with the probes in
//! [`observe`] (and the provider's own observations, such as Sentinel's promotions) and records
//! what it could not confirm as inconclusive.

pub mod admin;
pub mod conn;
pub mod containers;
pub mod driver;
pub mod lock;
pub mod observe;
pub mod processes;

use scenario::FaultAction;
use std::time::Duration;
use thiserror::Error;

pub use driver::{play, LiveRun};

/// Connect and response timeouts of every client connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// How long opening a connection may take.
    pub connect: Duration,
    /// How long one reply may take (keep it above any WAIT timeout: the `redis` crate's
    /// default of 500 ms breaks a WAIT of 500 ms or more).
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(10),
        }
    }
}

/// What can go wrong on real Redis.
#[derive(Debug, Error)]
pub enum LiveError {
    /// The scenario asks for something this backend cannot do; nothing was started.
    #[error("the {backend} backend cannot play this scenario: {what}")]
    Unsupported { backend: String, what: String },
    /// `redis-server` is not installed.
    #[error("redis-server was not found on PATH: install Debian's redis-server (scripts/test.sh does) or pass --redis URL")]
    NoRedisServer,
    /// A server did not come up.
    #[error("{node}: {reason}")]
    Startup { node: String, reason: String },
    /// A Redis server could not be reached.
    #[error("cannot reach Redis at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// A fault could not be carried out.
    #[error("fault `{fault}` failed: {reason}")]
    Fault { fault: String, reason: String },
    /// Anything the operating system refused.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A set of real Redis servers, by node name, and the faults that can be injected into them.
pub trait Provider: Send + Sync {
    /// The backend's name, for messages and histories (`processes`, `url`, ...).
    fn backend(&self) -> &str;
    /// Node names in instance order, with their `redis://` URLs.
    fn nodes(&self) -> Vec<(String, String)>;
    /// Whether this provider can inject `fault`; the reason when it cannot.
    fn supports(&self, fault: &FaultAction) -> Result<(), String>;
    /// Kills a node (it answers nothing until restarted).
    fn crash(&self, node: &str) -> Result<(), LiveError>;
    /// Freezes a node.
    fn pause(&self, node: &str) -> Result<(), LiveError>;
    /// Thaws a frozen node.
    fn resume(&self, node: &str) -> Result<(), LiveError>;
    /// Starts a crashed node again, with its data or empty.
    fn restart(&self, node: &str, persistence: bool) -> Result<(), LiveError>;
    /// Makes a replica the primary; the others follow it.
    fn promote(&self, node: &str) -> Result<(), LiveError>;
    /// The node clients send lock commands to for instance `instance` right now.
    fn route(&self, instance: usize) -> usize;
    /// The `host:port` at which the harness itself reaches `node` (past any partition), to
    /// confirm what a fault did; `None` when it cannot look.
    fn admin_addr(&self, node: &str) -> Option<String> {
        let _ = node;
        None
    }
    /// The node a primary's `INFO replication` entry `slaveN:ip=..,port=..` stands for.
    fn replica_named_by(&self, ip: &str, port: u16) -> Option<String> {
        let _ = port;
        self.nodes().into_iter().map(|(n, _)| n).find(|n| n == ip)
    }
    /// Waits until `node`, just told to freeze, is seen frozen (default: the pause call's own
    /// success is the confirmation, as `docker pause` returns once the container is frozen).
    fn confirm_paused(&self, node: &str, within: Duration) -> Result<(), String> {
        let _ = (node, within);
        Ok(())
    }
    /// Effects seen since the last call that no call of the driver caused directly (Sentinel's
    /// promotions), with when they were seen.
    fn take_observations(&self) -> Vec<(std::time::Instant, checker::Effect)> {
        Vec::new()
    }
    /// Nodes whose server exited although no fault stopped it, each with why, once each.
    fn died_on_their_own(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Cuts every link between two groups of names (nodes, clients), healing after
    /// `for_ms` when given. Providers that cannot partition refuse.
    fn partition(
        &self,
        between: &[String],
        and: &[String],
        for_ms: Option<u64>,
    ) -> Result<(), LiveError> {
        let _ = for_ms;
        Err(LiveError::Fault {
            fault: format!(
                "partition [{}] from [{}]",
                between.join(", "),
                and.join(", ")
            ),
            reason: format!("the {} backend cannot partition", self.backend()),
        })
    }
}

/// Servers a user already runs: lock instances by URL, no faults.
pub struct UrlProvider {
    urls: Vec<String>,
}

impl UrlProvider {
    /// One lock instance per URL, in order.
    pub fn new(urls: Vec<String>) -> UrlProvider {
        UrlProvider { urls }
    }
}

impl Provider for UrlProvider {
    fn backend(&self) -> &str {
        "url"
    }
    fn nodes(&self) -> Vec<(String, String)> {
        self.urls
            .iter()
            .enumerate()
            .map(|(i, u)| (format!("redis-{}", i + 1), u.clone()))
            .collect()
    }
    fn supports(&self, fault: &FaultAction) -> Result<(), String> {
        Err(format!(
            "`{}` — servers given by URL are never faulted",
            fault.describe()
        ))
    }
    fn crash(&self, node: &str) -> Result<(), LiveError> {
        Err(no_faults(node))
    }
    fn pause(&self, node: &str) -> Result<(), LiveError> {
        Err(no_faults(node))
    }
    fn resume(&self, node: &str) -> Result<(), LiveError> {
        Err(no_faults(node))
    }
    fn restart(&self, node: &str, _: bool) -> Result<(), LiveError> {
        Err(no_faults(node))
    }
    fn promote(&self, node: &str) -> Result<(), LiveError> {
        Err(no_faults(node))
    }
    fn route(&self, instance: usize) -> usize {
        instance
    }
}

/// [`Provider::route`] for servers that fail over: in a replicated topology every instance
/// goes to the current primary (`primary`, kept up to date by promotions), otherwise each
/// instance to its own node.
pub(crate) fn route_to_primary(
    replicated: bool,
    primary: &std::sync::atomic::AtomicUsize,
    instance: usize,
) -> usize {
    if replicated {
        primary.load(std::sync::atomic::Ordering::SeqCst)
    } else {
        instance
    }
}

fn no_faults(node: &str) -> LiveError {
    LiveError::Fault {
        fault: node.to_string(),
        reason: "servers given by URL are never faulted".into(),
    }
}
