//! Faults as data: what a run injected, what it healed, and what it observed to happen.
//!
//! A history records a fault in three kinds of line, one structure each:
//! - [`Injected`]: what the schedule did (`{"event":"fault","fault":"crash","node":"primary"}`);
//! - [`Healed`]: the end of a timed fault (a resumed node or client, a healed partition);
//! - [`Effect`]: what the backend *observed* to happen — a node seen down, a promotion seen in
//!   `ROLE` or announced by Sentinel, a replica dropped by its primary, a clock moved.
//!
//! The text shown to people is derived from the structure ([`Injected::describe`] and the
//! others); nothing reads the text back.

use serde::{Deserialize, Serialize};

/// A fault the schedule injected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Injected {
    /// A node was killed.
    Crash {
        /// The node.
        node: String,
    },
    /// A node was started again, with its data or empty.
    Restart {
        /// The node.
        node: String,
        /// Whether it kept its data (restarted from its persistence files).
        persistence: bool,
    },
    /// A replica was told to become the primary (by hand, `REPLICAOF NO ONE`).
    Promote {
        /// The node.
        node: String,
    },
    /// A node was frozen for `for_ms`, or (`null`) until a `resume_node`.
    PauseNode {
        /// The node.
        node: String,
        /// How long it stays frozen, in milliseconds (`null`: until a `resume_node`).
        for_ms: Option<u64>,
    },
    /// A node frozen without a duration was thawed.
    ResumeNode {
        /// The node.
        node: String,
    },
    /// A client was frozen for `for_ms` (a GC or VM pause).
    PauseClient {
        /// The client.
        client: String,
        /// How long it stays frozen, in milliseconds.
        for_ms: u64,
    },
    /// A client process was killed.
    CrashClient {
        /// The client.
        client: String,
    },
    /// A node's or client's clock was stepped by `by_ms`.
    ClockJump {
        /// The node or client whose clock it is.
        target: String,
        /// How far the clock was stepped, in milliseconds (negative: back).
        by_ms: i64,
    },
    /// Every link between two groups was cut, for `for_ms` or to the end.
    Partition {
        /// One group of nodes and clients.
        between: Vec<String>,
        /// The other group.
        and: Vec<String>,
        /// How long the cut lasts, in milliseconds (`null`: to the end of the run).
        for_ms: Option<u64>,
        /// What the cut does to traffic; absent from the record when it is the default,
        /// [`PartitionMode::Hold`], so histories written before modes existed read the same.
        #[serde(default, skip_serializing_if = "PartitionMode::is_hold")]
        mode: PartitionMode,
    },
}

/// What a partition does to the traffic across it (scenarios/README.md, "Partitions").
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PartitionMode {
    /// TCP's default: nothing crosses while cut; what was sent is delivered, in order, at
    /// the heal.
    #[default]
    Hold,
    /// What is sent while cut is lost; connections stay open but dead (requests time out),
    /// and a connection that lost bytes is closed at the heal.
    Blackhole,
    /// Every connection across the cut is reset at once, and new ones are refused until the
    /// heal: a client sees an error at once.
    Reset,
}

impl PartitionMode {
    /// Whether this is the default mode, [`PartitionMode::Hold`].
    pub fn is_hold(&self) -> bool {
        *self == PartitionMode::Hold
    }

    /// The mode's name as scenarios write it (`hold`, `reset`, `blackhole`).
    pub fn name(&self) -> &'static str {
        match self {
            PartitionMode::Hold => "hold",
            PartitionMode::Blackhole => "blackhole",
            PartitionMode::Reset => "reset",
        }
    }
}

/// The end of a timed fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Healed {
    /// A frozen node was thawed.
    ResumeNode {
        /// The node.
        node: String,
    },
    /// A frozen client was thawed.
    ResumeClient {
        /// The client.
        client: String,
    },
    /// A partition was healed.
    Partition {
        /// One group of nodes and clients.
        between: Vec<String>,
        /// The other group.
        and: Vec<String>,
    },
}

/// Who made a node the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotedBy {
    /// The fault schedule, by `REPLICAOF NO ONE`.
    Manual,
    /// Sentinel's automatic failover.
    Sentinel,
}

/// What a backend observed a fault to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// The node is down: its process exited, its container stopped.
    NodeDown {
        /// The node.
        node: String,
    },
    /// The node is frozen (SIGSTOP, `docker pause`).
    NodePaused {
        /// The node.
        node: String,
    },
    /// The node answers again.
    NodeUp {
        /// The node.
        node: String,
    },
    /// The node is a primary now.
    Promoted {
        /// The node.
        node: String,
        /// Who promoted it.
        by: PromotedBy,
    },
    /// A former primary follows `primary` as a replica again.
    Rejoined {
        /// The former primary.
        node: String,
        /// The primary it follows.
        primary: String,
    },
    /// The primary dropped the replica's link (silent past `repl-timeout`) and streams to it
    /// no more: its writes are acknowledged without that replica.
    ReplicaDropped {
        /// The primary that dropped the link.
        primary: String,
        /// The replica it dropped.
        replica: String,
    },
    /// The links between the two groups are cut.
    Partitioned {
        /// One group of nodes and clients.
        between: Vec<String>,
        /// The other group.
        and: Vec<String>,
    },
    /// The links between the two groups carry traffic again.
    Reconnected {
        /// One group of nodes and clients.
        between: Vec<String>,
        /// The other group.
        and: Vec<String>,
    },
    /// The client is frozen.
    ClientPaused {
        /// The client.
        client: String,
    },
    /// The client runs again.
    ClientResumed {
        /// The client.
        client: String,
    },
    /// The clock of `target` is now `offset_ms` off true time.
    ClockSet {
        /// The node or client whose clock it is.
        target: String,
        /// How far the clock is off true time now, in milliseconds.
        offset_ms: f64,
    },
    /// A command of the client's was forwarded to the node (by the fault proxy; on the
    /// simulator, it reached the node), and something waited for it (`after.forwarded`).
    Forwarded {
        /// The client that sent it.
        client: String,
        /// The node it went to.
        node: String,
        /// The command's name as sent (`SET`, `EVALSHA`).
        command: String,
        /// The key it matched on (its first argument, or one of a script's `KEYS`).
        key: String,
    },
}

impl Injected {
    /// A one-line description for people (`crash primary`).
    pub fn describe(&self) -> String {
        match self {
            Injected::Crash { node } => format!("crash {node}"),
            Injected::Restart { node, persistence } => format!(
                "restart {node} {}",
                if *persistence {
                    "with its data"
                } else {
                    "without persistence (empty)"
                }
            ),
            Injected::Promote { node } => format!("promote {node} to primary"),
            Injected::PauseNode { node, for_ms } => match for_ms {
                Some(ms) => format!("pause {node} for {ms} ms"),
                None => format!("pause {node}"),
            },
            Injected::ResumeNode { node } => format!("resume {node}"),
            Injected::PauseClient { client, for_ms } => {
                format!("pause client {client} for {for_ms} ms")
            }
            Injected::CrashClient { client } => format!("crash client {client}"),
            Injected::ClockJump { target, by_ms } => {
                format!("clock of {target} jumps {by_ms:+} ms")
            }
            Injected::Partition {
                between,
                and,
                for_ms,
                mode,
            } => format!(
                "{}{}{}",
                groups("partition", between, and),
                for_ms.map(|d| format!(" for {d} ms")).unwrap_or_default(),
                match mode {
                    PartitionMode::Hold => String::new(),
                    m => format!(" ({})", m.name()),
                }
            ),
        }
    }
}

impl Healed {
    /// A one-line description for people (`resume replica-1`).
    pub fn describe(&self) -> String {
        match self {
            Healed::ResumeNode { node } => format!("resume {node}"),
            Healed::ResumeClient { client } => format!("resume client {client}"),
            Healed::Partition { between, and } => groups("heal partition", between, and),
        }
    }
}

impl Effect {
    /// A one-line description for people (`replica-1 promoted by sentinel`).
    pub fn describe(&self) -> String {
        match self {
            Effect::NodeDown { node } => format!("{node} is down"),
            Effect::NodePaused { node } => format!("{node} is frozen"),
            Effect::NodeUp { node } => format!("{node} answers again"),
            Effect::Promoted { node, by } => format!(
                "{node} is the primary ({})",
                match by {
                    PromotedBy::Manual => "promoted by hand",
                    PromotedBy::Sentinel => "promoted by Sentinel",
                }
            ),
            Effect::Rejoined { node, primary } => {
                format!("{node} rejoins as a replica of {primary}")
            }
            Effect::ReplicaDropped { primary, replica } => {
                format!("{primary} dropped its replica {replica}")
            }
            Effect::Partitioned { between, and } => groups("cut", between, and),
            Effect::Reconnected { between, and } => groups("reconnected", between, and),
            Effect::ClientPaused { client } => format!("client {client} is frozen"),
            Effect::ClientResumed { client } => format!("client {client} runs again"),
            Effect::ClockSet { target, offset_ms } => {
                format!("clock of {target} is {offset_ms:+} ms off true time")
            }
            Effect::Forwarded {
                client,
                node,
                command,
                key,
            } => format!("{client}'s {command} of {key} forwarded to {node}"),
        }
    }
}

fn groups(what: &str, between: &[String], and: &[String]) -> String {
    format!("{what} [{}] from [{}]", between.join(", "), and.join(", "))
}
