//! The fault plan: every fault's node and client names resolved once, when the world is
//! built, into the indices the world uses (turmoil-style). A name that names nothing is an
//! [`UnknownName`], never a silent stand-in such as node 0.

use crate::network::Party;
use checker::PartitionMode;
use scenario::{FaultAction, Scenario};
use std::collections::BTreeMap;

/// The name a partition uses for the protected resource.
pub(super) const RESOURCE: &str = "resource";

/// What a clock jump moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Node(usize),
    Client(usize),
}

/// A fault's action with its names resolved (one variant per [`FaultAction`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Crash(usize),
    Restart {
        node: usize,
        persistence: bool,
    },
    Promote(usize),
    PauseNode {
        node: usize,
        for_ms: Option<u64>,
    },
    ResumeNode(usize),
    PauseClient {
        client: usize,
        for_ms: u64,
    },
    CrashClient(usize),
    ClockJump {
        target: Target,
        by_ms: i64,
    },
    Partition {
        between: Vec<Party>,
        and: Vec<Party>,
        for_ms: Option<u64>,
        mode: PartitionMode,
    },
}

/// A fault names a node or client the scenario does not have (only a scenario built in code
/// can: [`Scenario::validate`] refuses one in a file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("faults[{fault}] ({action}) names `{name}`, which is no {wanted} of this scenario")]
pub(crate) struct UnknownName {
    /// Index of the fault in the scenario.
    pub fault: usize,
    /// The fault, described.
    pub action: String,
    /// The name that names nothing.
    pub name: String,
    /// What the name should have named: "node", "client", "node or client", …
    pub wanted: &'static str,
}

/// The scenario's names and their indices.
struct Names<'a> {
    nodes: BTreeMap<&'a str, usize>,
    clients: BTreeMap<&'a str, usize>,
}

impl Names<'_> {
    fn node(&self, name: &str) -> Option<usize> {
        self.nodes.get(name).copied()
    }

    fn client(&self, name: &str) -> Option<usize> {
        self.clients.get(name).copied()
    }

    /// A clock jump's target: a client before a node of the same name.
    fn target(&self, name: &str) -> Option<Target> {
        (self.client(name).map(Target::Client)).or_else(|| self.node(name).map(Target::Node))
    }

    /// One side of a partition: the resource, then clients, then nodes.
    fn party(&self, name: &str) -> Option<Party> {
        if name == RESOURCE {
            return Some(Party::Resource);
        }
        (self.client(name).map(Party::Client)).or_else(|| self.node(name).map(Party::Node))
    }
}

impl<'a> Names<'a> {
    fn of(sc: &'a Scenario, nodes: &'a [String]) -> Names<'a> {
        let mut names = Names {
            nodes: BTreeMap::new(),
            clients: BTreeMap::new(),
        };
        for (i, n) in nodes.iter().enumerate() {
            names.nodes.entry(n.as_str()).or_insert(i);
        }
        for (i, c) in sc.clients.iter().enumerate() {
            // The first of two clients with one name, as a search from the front finds it.
            names.clients.entry(c.name.as_str()).or_insert(i);
        }
        names
    }

    /// Fault `fault`'s action, resolved; the first name that names nothing is the error.
    fn step(&self, fault: usize, action: &FaultAction) -> Result<Step, UnknownName> {
        let unknown = |name: &str, wanted| UnknownName {
            fault,
            action: action.describe(),
            name: name.to_string(),
            wanted,
        };
        let node = |n: &str| self.node(n).ok_or_else(|| unknown(n, "node"));
        let client = |c: &str| self.client(c).ok_or_else(|| unknown(c, "client"));
        let parties = |names: &[String]| {
            names
                .iter()
                .map(|p| {
                    self.party(p)
                        .ok_or_else(|| unknown(p, "node, client or `resource`"))
                })
                .collect::<Result<Vec<Party>, UnknownName>>()
        };
        Ok(match action {
            FaultAction::Crash(n) => Step::Crash(node(n)?),
            FaultAction::Restart {
                node: n,
                persistence,
            } => Step::Restart {
                node: node(n)?,
                persistence: *persistence,
            },
            FaultAction::Promote(n) => Step::Promote(node(n)?),
            FaultAction::PauseNode { node: n, for_ms } => Step::PauseNode {
                node: node(n)?,
                for_ms: *for_ms,
            },
            FaultAction::ResumeNode(n) => Step::ResumeNode(node(n)?),
            FaultAction::PauseClient { client: c, for_ms } => Step::PauseClient {
                client: client(c)?,
                for_ms: *for_ms,
            },
            FaultAction::CrashClient(c) => Step::CrashClient(client(c)?),
            FaultAction::ClockJump { target, by_ms } => Step::ClockJump {
                target: (self.target(target)).ok_or_else(|| unknown(target, "node or client"))?,
                by_ms: *by_ms,
            },
            FaultAction::Partition {
                between,
                and,
                for_ms,
                mode,
            } => Step::Partition {
                between: parties(between)?,
                and: parties(and)?,
                for_ms: *for_ms,
                mode: *mode,
            },
        })
    }
}

/// Resolves one fault injected during the run (plan index `fault`) against the names of
/// `sc`, whose nodes are `nodes`.
pub(super) fn resolve_one(
    sc: &Scenario,
    nodes: &[String],
    fault: usize,
    action: &FaultAction,
) -> Result<Step, UnknownName> {
    Names::of(sc, nodes).step(fault, action)
}

/// Resolves every fault of `sc`, whose nodes are `nodes` (in the world's order), or lists
/// each fault's first name that names nothing.
pub(super) fn resolve(sc: &Scenario, nodes: &[String]) -> Result<Vec<Step>, Vec<UnknownName>> {
    let names = Names::of(sc, nodes);
    let mut steps = Vec::with_capacity(sc.faults.len());
    let mut unknown = Vec::new();
    for (i, f) in sc.faults.iter().enumerate() {
        match names.step(i, &f.action) {
            Ok(step) => steps.push(step),
            Err(e) => unknown.push(e),
        }
    }
    if unknown.is_empty() {
        Ok(steps)
    } else {
        Err(unknown)
    }
}
