//! The scenario data model, as read from JSON.

use crate::fault::Fault;
use checker::{CheckConfig, Outcome, Property};
use lock_core::Recipe;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One scenario: a topology, a workload, a fault schedule and the expected verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in output and histories.
    pub name: String,
    /// What the scenario demonstrates, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// Seed of the simulator's RNG (overridable with `--seed`).
    #[serde(default)]
    pub seed: u64,
    /// How long the run lasts, in milliseconds of true time.
    pub duration_ms: u64,
    /// Which backends can play this scenario.
    #[serde(default = "default_backends")]
    pub backends: Vec<Backend>,
    /// The Redis deployment.
    pub topology: Topology,
    /// Latency and loss between parties.
    #[serde(default)]
    pub network: Network,
    /// Clock offsets and drift rates per node and client.
    #[serde(default)]
    pub clocks: Clocks,
    /// The lock recipe every client uses (defaults to the safe recipe).
    #[serde(default)]
    pub recipe: Recipe,
    /// The protected resource and the lock key guarding it.
    pub resource: ResourceSpec,
    /// The lock's users.
    pub clients: Vec<ClientSpec>,
    /// The fault schedule.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Checker parameters (liveness bound, retry budget).
    #[serde(default)]
    pub checker: CheckConfig,
    /// What `locksim explore` may draw fault schedules from (ignored by `run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_space: Option<crate::space::FaultSpace>,
    /// Which properties must hold or break; asserted by `cargo test` and `locksim run`.
    pub expect: BTreeMap<Property, Outcome>,
}

fn default_repl_timeout() -> u64 {
    60_000
}

fn default_backends() -> Vec<Backend> {
    vec![Backend::Sim]
}

/// A way to play a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The deterministic in-process simulator.
    Sim,
    /// Local `redis-server` processes.
    Processes,
    /// Redis containers.
    Containers,
}

/// The Redis deployment, with its node names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Topology {
    /// One node, named `redis`.
    Single {},
    /// A primary (`primary`) with replicas `replica-1` ... `replica-N`, asynchronous
    /// replication, and optionally a Sentinel that promotes a replica on its own.
    Replicated {
        /// How many replicas.
        replicas: usize,
        /// Extra delay before the primary ships a write to its replicas, in milliseconds.
        #[serde(default)]
        replication_lag_ms: f64,
        /// How long a replica may be silent (paused, crashed) before the primary drops its
        /// link and stops streaming to it, as Redis's `repl-timeout` (whole seconds on real
        /// servers).
        #[serde(default = "default_repl_timeout")]
        repl_timeout_ms: u64,
        /// The Sentinel that fails over on its own, if any.
        #[serde(default)]
        sentinel: Option<Sentinel>,
    },
    /// Independent primaries `redis-1` ... `redis-N` for Redlock.
    Redlock {
        /// How many primaries.
        instances: usize,
    },
}

impl Topology {
    /// The node names, in instance order (the primary first for a replicated topology).
    pub fn node_names(&self) -> Vec<String> {
        match self {
            Topology::Single {} => vec!["redis".into()],
            Topology::Replicated { replicas, .. } => std::iter::once("primary".to_string())
                .chain((1..=*replicas).map(|i| format!("replica-{i}")))
                .collect(),
            Topology::Redlock { instances } => {
                (1..=*instances).map(|i| format!("redis-{i}")).collect()
            }
        }
    }

    /// How many lock instances a client talks to.
    pub fn lock_instances(&self) -> usize {
        match self {
            Topology::Redlock { instances } => *instances,
            _ => 1,
        }
    }
}

/// Sentinel-like automatic failover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sentinel {
    /// How long the primary must be down before a replica is promoted, in milliseconds.
    pub down_after_ms: u64,
}

/// A distribution of durations, in milliseconds. In JSON it is an object naming one form
/// (`{"fixed_ms": 5}`, `{"samples_file": "data/work-ms.txt"}`, ...; see `scenarios/README.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "crate::dist::DistRepr", into = "crate::dist::DistRepr")]
pub enum Dist {
    /// Always this long.
    FixedMs(f64),
    /// Uniform between the two bounds.
    UniformMs([f64; 2]),
    /// Log-normal with the given median and 99th percentile.
    LognormalMs {
        /// The median, in milliseconds.
        p50: f64,
        /// The 99th percentile, in milliseconds.
        p99: f64,
    },
    /// Pareto (heavy-tailed): `P(X > x) = (scale / x)^shape` for `x >= scale`, optionally
    /// capped at `max`.
    ParetoMs {
        /// The smallest value (x_m), in milliseconds.
        scale: f64,
        /// The tail index (alpha); the smaller, the heavier the tail.
        shape: f64,
        /// Draws above this are cut to it, in milliseconds.
        max: Option<f64>,
    },
    /// The user's own measurements: samples or histogram buckets.
    Empirical(crate::empirical::Empirical),
}

/// Latency and loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// One-way latency of every link between clients and nodes and between nodes.
    pub latency: Dist,
    /// One-way latency between a client and the protected resource.
    pub resource_latency: Dist,
    /// Probability that a client's or node's message is lost (0 to <1).
    pub loss: f64,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency: Dist::FixedMs(0.2),
            resource_latency: Dist::FixedMs(0.2),
            loss: 0.0,
        }
    }
}

/// Clock parameters by node or client name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Clocks {
    /// Clocks of Redis nodes, by node name.
    pub nodes: BTreeMap<String, ClockSpec>,
    /// Clocks of clients, by client name.
    pub clients: BTreeMap<String, ClockSpec>,
}

impl Clocks {
    /// The clocks as a history's `run_started` records them: every one listed, by name.
    pub fn starts(&self) -> BTreeMap<String, checker::ClockStart> {
        self.nodes
            .iter()
            .chain(&self.clients)
            .map(|(name, c)| {
                let start = checker::ClockStart {
                    offset_ms: c.offset_ms,
                    rate: c.rate,
                };
                (name.clone(), start)
            })
            .collect()
    }
}

/// One clock: where it starts and how fast it runs. Jumps are faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockSpec {
    /// Offset from true time at the start, in milliseconds.
    pub offset_ms: f64,
    /// Speed relative to true time (1.005 runs 0.5 % fast).
    pub rate: f64,
}

impl Default for ClockSpec {
    fn default() -> Self {
        ClockSpec {
            offset_ms: 0.0,
            rate: 1.0,
        }
    }
}

/// The protected resource and the lock that guards it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// The Redis key of the lock (or of the set-once record).
    pub key: String,
    /// Whether the resource rejects writes carrying a stale fencing token.
    #[serde(default)]
    pub checks_fencing: bool,
}

/// What a client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Acquire, write at the start and the end of the critical section, release; repeat.
    Lock,
    /// Write a set-once record once (acquire without release): the first writer must win.
    SetOnce,
}

/// One user of the lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Unique name, used in faults, clocks and findings.
    pub name: String,
    /// When the client starts, in milliseconds of true time.
    #[serde(default)]
    pub start_ms: u64,
    /// How long the critical section's work takes (on the client's clock).
    #[serde(default = "default_work")]
    pub work_ms: Dist,
    /// Pause between one release and the next acquisition.
    #[serde(default = "default_think")]
    pub think_ms: Dist,
    /// How many critical sections the client runs.
    #[serde(default = "one")]
    pub iterations: u32,
    /// Whether the client stops working when its validity runs out by its own clock.
    #[serde(default)]
    pub honors_validity: bool,
    /// Lock user or set-once writer.
    #[serde(default = "default_workload")]
    pub workload: Workload,
    /// The client process dies right after sending its N-th Redis command (to place a crash
    /// between two commands exactly, on any backend).
    #[serde(default)]
    pub crash_after_commands: Option<u32>,
    /// An observed state to wait for before starting (not before `start_ms`), e.g.
    /// `{"promoted": "replica-1"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<crate::condition::After>,
    /// An external program that takes this client's place, speaking the client protocol
    /// (docs/client-protocol.md); `null`: locksim's own recipe client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<Program>,
}

/// An external lock client: a shipped adapter by name (`"redis-py"`) or a command line
/// (`["python3", "my_adapter.py"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Program {
    /// A shipped adapter, by its name in `adapters/bin`.
    Adapter(String),
    /// A program and its arguments.
    Command(Vec<String>),
}

impl Program {
    /// The program for people: the adapter's name or the command line.
    pub fn describe(&self) -> String {
        match self {
            Program::Adapter(name) => format!("adapter `{name}`"),
            Program::Command(argv) => format!("`{}`", argv.join(" ")),
        }
    }
}

fn default_work() -> Dist {
    Dist::FixedMs(100.0)
}
fn default_think() -> Dist {
    Dist::FixedMs(0.0)
}
fn one() -> u32 {
    1
}
fn default_workload() -> Workload {
    Workload::Lock
}
