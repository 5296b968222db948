//! Network cuts: which links a partition between two groups of names cuts (planning), and
//! cutting and healing them (the client relays' gates, and the run's mesh network).
//!
//! A client's relay to a node is cut in the partition's mode (see [`crate::link`]). Servers
//! are cut off each other by `docker network disconnect`, which is mode `hold`: open TCP
//! connections stall and retransmit, and what was sent is delivered once the container is
//! back (if no side timed the connection out meanwhile); other modes are refused there.

use crate::link::{LinkControl, PartitionMode};
use crate::{partition_name, FaultError, LiveError};
use bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest};
use bollard::Docker;
use std::collections::HashMap;
use std::sync::Arc;

/// What one partition cuts: some clients' relays to some nodes, and some containers (by
/// node name) off the mesh.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cut {
    /// The (client, node index) relays cut.
    pub(super) gate: Vec<(String, usize)>,
    /// Containers (by node name) taken off the mesh network.
    pub(super) isolate: Vec<String>,
}

/// Plans the cut between the groups `between` and `and` of a run whose containers are named
/// `all` (the `nodes` Redis nodes first, then the Sentinels); any other name is a client.
///
/// - A client on one side and a node on the other: that client's relay to that node.
/// - Nodes or Sentinels on both sides: the side with fewer of them (`between` on a tie) leaves
///   the mesh.
/// - `resource` is refused: the protected resource lives in the harness.
pub(super) fn plan(
    all: &[String],
    nodes: usize,
    between: &[String],
    and: &[String],
) -> Result<Cut, LiveError> {
    let refuse = |why: FaultError| LiveError::fault(partition_name(between, and), why);
    let split = |group: &[String]| -> Result<(Vec<usize>, Vec<String>), LiveError> {
        let (mut members, mut clients) = (Vec::new(), Vec::new());
        for n in group {
            if n == "resource" {
                return Err(refuse(FaultError::Resource));
            }
            match all.iter().position(|m| m == n) {
                Some(i) => members.push(i),
                None => clients.push(n.clone()),
            }
        }
        Ok((members, clients))
    };
    let (a, a_clients) = split(between)?;
    let (b, b_clients) = split(and)?;
    let mut gate = Vec::new();
    for (clients, members) in [(&a_clients, &b), (&b_clients, &a)] {
        for c in clients {
            let servers = members.iter().filter(|i| **i < nodes);
            gate.extend(servers.map(|i| (c.clone(), *i)));
        }
    }
    gate.sort_unstable();
    gate.dedup();
    let isolate: Vec<String> = if !a.is_empty() && !b.is_empty() {
        let side = if b.len() < a.len() { b } else { a };
        side.into_iter().map(|i| all[i].clone()).collect()
    } else {
        Vec::new()
    };
    if gate.is_empty() && isolate.is_empty() {
        return Err(refuse(FaultError::NothingToCut));
    }
    Ok(Cut { gate, isolate })
}

/// What a (possibly delayed) cut or heal needs, detached from the provider's borrow.
pub(super) struct Net {
    /// The engine.
    pub(super) docker: Docker,
    /// The run's name (containers are `<run>-<node>`).
    pub(super) run: String,
    /// The mesh network's name.
    pub(super) mesh_net: String,
    /// The controls of the client relays this cut cuts (`Cut::gate`'s, in order).
    pub(super) gates: Vec<LinkControl>,
    /// The cut's mode, on the relays (the mesh is cut in `hold` only).
    pub(super) mode: PartitionMode,
    /// How many cuts keep each container (by node name) off the mesh.
    pub(super) isolation: Arc<tokio::sync::Mutex<HashMap<String, usize>>>,
}

impl Net {
    /// Applies `cut` (cuts count: a link cut twice heals after two heals).
    pub(super) async fn cut(&self, cut: &Cut) -> Result<(), LiveError> {
        for link in &self.gates {
            link.cut(self.mode);
        }
        let mut counts = self.isolation.lock().await;
        for name in &cut.isolate {
            let n = counts.entry(name.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                self.docker
                    .disconnect_network(
                        &self.mesh_net,
                        NetworkDisconnectRequest {
                            container: format!("{}-{name}", self.run),
                            force: Some(true),
                        },
                    )
                    .await
                    .map_err(|e| LiveError::fault(format!("cut {name} off the other nodes"), e))?;
            }
        }
        Ok(())
    }

    /// Heals `cut` (what other cuts still cut stays cut).
    pub(super) async fn heal(&self, cut: &Cut) {
        for link in &self.gates {
            link.heal(self.mode);
        }
        let mut counts = self.isolation.lock().await;
        for name in &cut.isolate {
            let n = counts.entry(name.clone()).or_insert(0);
            if *n == 0 {
                continue;
            }
            *n -= 1;
            if *n == 0 {
                let _ = join_mesh(&self.docker, &self.mesh_net, &self.run, name).await;
            }
        }
    }
}

/// Joins container `<run>-<name>` to the mesh network under the alias `name`.
pub(super) async fn join_mesh(
    docker: &Docker,
    mesh_net: &str,
    run: &str,
    name: &str,
) -> Result<(), bollard::errors::Error> {
    docker
        .connect_network(
            mesh_net,
            NetworkConnectRequest {
                container: format!("{run}-{name}"),
                endpoint_config: Some(EndpointSettings {
                    aliases: Some(vec![name.to_string()]),
                    ..Default::default()
                }),
            },
        )
        .await
}
