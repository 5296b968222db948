//! The events on the simulator's queue: one thing that happens at one instant of true time.
//!
//! Indices name nodes, clients and faults as the world holds them (`World::nodes`,
//! `World::clients`, the scenario's `faults`). The world and the simulated client both use
//! this type; neither owns it.

use crate::network::Party;
use crate::node::Effect;
use lock_core::{Command, Reply, RequestId};
use workload::Timer;

/// One event on the queue.
#[derive(Debug, Clone)]
pub(crate) enum Ev {
    /// Fault `i` of the scenario strikes.
    Fault(usize),
    /// Partition fault `i` ends.
    Heal(usize),
    /// A node paused for a while thaws.
    ResumeNode(usize),
    /// A client paused for a while thaws.
    ResumeClient(usize),
    /// A client starts its loop.
    ClientStart(usize),
    /// A client's timer fires (ignored when the client's clock moved since: `epoch`).
    ClientTimer {
        client: usize,
        epoch: u64,
        timer: Timer,
    },
    /// A client's command reaches a node, on generation `conn` of their connection.
    Request {
        node: usize,
        client: usize,
        request: RequestId,
        command: Command,
        conn: u64,
    },
    /// A node's reply reaches a client, on the connection its request came by.
    Reply {
        node: usize,
        client: usize,
        request: RequestId,
        reply: Reply,
        conn: u64,
    },
    /// The client's own driver fails a request at once (its connection was reset, or
    /// refused): nothing crossed the network.
    Refused {
        client: usize,
        request: RequestId,
        why: String,
    },
    /// A client's write reaches the protected resource.
    WriteArrives {
        client: usize,
        fencing: Option<u64>,
        commit: bool,
    },
    /// The resource's answer to a write reaches the client.
    WriteAck { client: usize, commit: bool },
    /// A primary streams one write to a replica, `replication_lag_ms` after executing it
    /// (lost if the primary died meanwhile: `incarnation`).
    ReplicateSend {
        primary: usize,
        incarnation: u64,
        replica: usize,
        effect: Effect,
    },
    /// A replicated write reaches the replica.
    ReplicaApply {
        replica: usize,
        primary: usize,
        effect: Effect,
        offset: u64,
    },
    /// A replica's acknowledgement of `offset` reaches its primary.
    ReplicaAck {
        primary: usize,
        replica: usize,
        offset: u64,
    },
    /// A blocked `WAIT` on `node` times out.
    WaitTimeout { node: usize, wait: u64 },
    /// Sentinel's `down-after` for a primary that went down at `down_since` runs out.
    SentinelCheck { node: usize, down_since: u64 },
    /// A condition's wait (index into `World::waiters`) times out.
    ConditionDeadline(usize),
    /// A replica silent since `down_since` reaches its primary's `repl-timeout`.
    ReplicaTimeout { replica: usize, down_since: u64 },
}

impl Ev {
    /// The link a message event crosses (from, to), or `None` for an event that is no
    /// message: the world checks cuts there when the message is delivered.
    pub(crate) fn link(&self) -> Option<(Party, Party)> {
        use Party::*;
        match *self {
            Ev::Request { node, client, .. } => Some((Client(client), Node(node))),
            Ev::Reply { node, client, .. } => Some((Node(node), Client(client))),
            Ev::WriteArrives { client, .. } => Some((Client(client), Resource)),
            Ev::WriteAck { client, .. } => Some((Resource, Client(client))),
            Ev::ReplicaApply {
                replica, primary, ..
            } => Some((Node(primary), Node(replica))),
            Ev::ReplicaAck {
                primary, replica, ..
            } => Some((Node(replica), Node(primary))),
            _ => None,
        }
    }

    /// The connection generation a client–node message was sent on.
    pub(crate) fn conn(&self) -> Option<u64> {
        match *self {
            Ev::Request { conn, .. } | Ev::Reply { conn, .. } => Some(conn),
            _ => None,
        }
    }
}
