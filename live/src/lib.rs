//! Real Redis: the same lock core and client loop the simulator runs, driven with tokio and
//! the `redis` crate against real servers.
//!
//! A [`Provider`] owns a topology of real servers and injects faults into it (the
//! [`processes::Processes`] provider starts Debian's `redis-server` on loopback ports; the
//! [`containers::Containers`] provider runs Redis in Docker containers, which needs a Docker
//! engine speaking API 1.41 or newer (Docker 20.10 and later); a [`UrlProvider`] points at
//! servers a user already runs and injects nothing). [`driver::play`] plays a scenario against a
//! provider and returns the same history format the simulator writes, so the same checker
//! judges both. It confirms every fault's effect with probes of its own (a crash when the server
//! stops answering, a promotion when `ROLE` says `master`, ...) and the provider's own
//! observations (Sentinel's promotions), and records what it could not confirm as
//! inconclusive.

#![deny(missing_docs)]

mod admin;
pub mod clock;
pub mod conn;
pub mod containers;
pub mod driver;
mod error;
pub mod link;
pub mod lock;
mod observe;
mod proc_state;
pub mod processes;
mod sentinel;
mod server;

use scenario::FaultAction;
use std::time::Duration;

pub use driver::{adapter_exists, adapter_names, adapters_dir, play, LiveRun};
pub use error::{
    chain, ConnectError, FaultError, LiveError, ProbeError, ProgramProblem, Refusal, StartupError,
};

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

impl Timeouts {
    /// The timeouts a run of `scenario` uses: these, except that on a lossy network
    /// (`network.loss` > 0) a reply, or a new connection, is awaited no longer than the lock
    /// itself awaits a reply (the recipe's `request_timeout_ms`, plus its WAIT's
    /// `timeout_ms`).
    ///
    /// A lost frame ends its direction of the TCP connection (nothing after it can be
    /// delivered), so the connection is of no use until it is dropped and made again. With
    /// the general 10 s, every retry on it timed out for 10 s after one loss; with this, the
    /// request that lost its frame times out and the retry goes out on a new connection, as a
    /// lost message on the simulator costs that request's timeout and nothing more. A new
    /// connection's own frames (its handshake, the scripts it loads) can be lost too: then it
    /// fails after that same time, and the next request connects again. Without loss the
    /// connection outlives a slow reply, so a late grant arrives on it in order with what
    /// followed it (as on the simulator).
    pub fn for_scenario(self, scenario: &scenario::Scenario) -> Timeouts {
        if scenario.network.loss <= 0.0 {
            return self;
        }
        let recipe = &scenario.recipe;
        let wait_ms = recipe.wait_replicas.as_ref().map_or(0, |w| w.timeout_ms);
        let lock_waits = Duration::from_millis(recipe.request_timeout_ms.saturating_add(wait_ms));
        Timeouts {
            connect: self.connect.min(lock_waits),
            response: self.response.min(lock_waits),
        }
    }
}

/// Which kind of real servers a provider runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Local `redis-server` processes ([`processes::Processes`]).
    Processes,
    /// Redis in Docker containers ([`containers::Containers`]).
    Containers,
    /// Servers a user already runs, by URL ([`UrlProvider`]).
    Url,
}

impl Backend {
    /// The backend's name in messages and histories (`processes`, `containers`, `url`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Processes => "processes",
            Backend::Containers => "containers",
            Backend::Url => "url",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of real Redis servers, by node name, and the faults that can be injected into them.
///
/// The faults are `async`: a provider does its work on the caller's runtime (or moves blocking
/// work off its workers itself), and a caller that gives up on one drops its future.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The backend (for messages, histories and what it can play).
    fn backend(&self) -> Backend;
    /// Node names in instance order, with their `redis://` URLs.
    fn nodes(&self) -> Vec<(String, String)>;
    /// The nodes as the scenario client named `client` reaches them: names and `redis://`
    /// URLs in instance order. A provider that cuts links per client gives each client URLs
    /// of its own (the processes provider: one proxy link per client and node); by default
    /// every client gets [`Provider::nodes`]'s.
    fn client_nodes(&self, client: &str) -> Result<Vec<(String, String)>, LiveError> {
        let _ = client;
        Ok(self.nodes())
    }
    /// The controls of the fault proxy's links that `client`'s connections go through, one
    /// per node (name, control), so the driver can tap them (`after.forwarded`). Providers
    /// whose clients are not behind the proxy refuse (the default).
    fn client_links(&self, client: &str) -> Result<Vec<(String, link::LinkControl)>, LiveError> {
        let _ = client;
        Err(LiveError::Unsupported {
            backend: self.backend(),
            what: "after.forwarded: this backend's clients are not behind the fault proxy".into(),
        })
    }
    /// Whether this provider can inject `fault`; why when it cannot.
    fn supports(&self, fault: &FaultAction) -> Result<(), Refusal>;
    /// Kills a node (it answers nothing until restarted).
    async fn crash(&self, node: &str) -> Result<(), LiveError>;
    /// Freezes a node.
    async fn pause(&self, node: &str) -> Result<(), LiveError>;
    /// Thaws a frozen node.
    async fn resume(&self, node: &str) -> Result<(), LiveError>;
    /// Starts a crashed node again, with its data or empty.
    async fn restart(&self, node: &str, persistence: bool) -> Result<(), LiveError>;
    /// Makes a replica the primary; the others follow it.
    async fn promote(&self, node: &str) -> Result<(), LiveError>;
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
    async fn confirm_paused(&self, node: &str, within: Duration) -> Result<(), LiveError> {
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
    /// Steps `node`'s wall clock by `by_ms` now and says where it stands after; the driver
    /// confirms it by the node's `TIME`. Providers that cannot move a server's clock refuse.
    async fn jump_clock(&self, node: &str, by_ms: i64) -> Result<clock::ServerClock, LiveError> {
        let _ = by_ms;
        Err(LiveError::fault(
            node,
            FaultError::ServerClock(node.to_string()),
        ))
    }
    /// Cuts every link between two groups of names (nodes, clients) in `mode`, healing after
    /// `for_ms` when given. Providers that cannot partition refuse.
    async fn partition(
        &self,
        between: &[String],
        and: &[String],
        for_ms: Option<u64>,
        mode: checker::PartitionMode,
    ) -> Result<(), LiveError> {
        let _ = (for_ms, mode);
        Err(LiveError::fault(
            partition_name(between, and),
            FaultError::CannotPartition(self.backend()),
        ))
    }
}

/// How a partition fault is named in messages: `partition [a, b] from [c]`.
pub(crate) fn partition_name(between: &[String], and: &[String]) -> String {
    format!(
        "partition [{}] from [{}]",
        between.join(", "),
        and.join(", ")
    )
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

#[async_trait::async_trait]
impl Provider for UrlProvider {
    fn backend(&self) -> Backend {
        Backend::Url
    }
    fn nodes(&self) -> Vec<(String, String)> {
        self.urls
            .iter()
            .enumerate()
            .map(|(i, u)| (format!("redis-{}", i + 1), u.clone()))
            .collect()
    }
    fn supports(&self, fault: &FaultAction) -> Result<(), Refusal> {
        Err(Refusal::NeverFaulted {
            fault: fault.describe(),
        })
    }
    async fn crash(&self, node: &str) -> Result<(), LiveError> {
        Err(no_faults(node))
    }
    async fn pause(&self, node: &str) -> Result<(), LiveError> {
        Err(no_faults(node))
    }
    async fn resume(&self, node: &str) -> Result<(), LiveError> {
        Err(no_faults(node))
    }
    async fn restart(&self, node: &str, _: bool) -> Result<(), LiveError> {
        Err(no_faults(node))
    }
    async fn promote(&self, node: &str) -> Result<(), LiveError> {
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
    LiveError::fault(node, FaultError::UrlServer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(loss: f64, wait_ms: Option<u64>) -> scenario::Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/lossy-network.json");
        let mut s = scenario::Scenario::load(&path).expect("the shipped scenario loads");
        s.network.loss = loss;
        s.recipe.wait_replicas = wait_ms.map(|timeout_ms| lock_core::recipe::WaitReplicas {
            replicas: 1,
            timeout_ms,
        });
        s
    }

    #[test]
    fn a_lossy_network_awaits_a_reply_or_a_connection_as_long_as_the_lock_does() {
        let general = Timeouts::default();
        let same = general.for_scenario(&scenario(0.0, None));
        assert_eq!(
            (same.connect, same.response),
            (general.connect, general.response)
        );
        // request_timeout_ms is 200 in the file.
        let lossy = general.for_scenario(&scenario(0.02, None));
        let ms = Duration::from_millis;
        assert_eq!((lossy.connect, lossy.response), (ms(200), ms(200)));
        let waiting = general.for_scenario(&scenario(0.02, Some(300)));
        assert_eq!(
            waiting.response,
            ms(500),
            "a WAIT may block for its own timeout"
        );
        let tight = Timeouts {
            connect: ms(50),
            response: ms(100),
        };
        let kept = tight.for_scenario(&scenario(0.02, Some(300)));
        assert_eq!(
            (kept.connect, kept.response),
            (ms(50), ms(100)),
            "never longer"
        );
    }
}
