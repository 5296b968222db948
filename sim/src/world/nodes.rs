//! A Redis node in the world: its state, the requests it serves, and the records of its copy
//! of the lock key changing.

use super::replication::PendingWait;
use super::World;
use crate::events::Ev;
use crate::network::Party;
use crate::node::{Effect, Entry, Keyspace};
use checker::{Event as H, KeyChange};
use lock_core::{Command, Reply, RequestId, SharedStr};
use std::collections::BTreeMap;
use workload::clock::Clock;

/// What a node is in a replicated topology (every Redlock instance is a primary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Primary,
    Replica { of: usize },
}

/// One simulated Redis server.
#[derive(Debug, Clone)]
pub(super) struct SimNode {
    pub(super) name: SharedStr,
    pub(super) clock: Clock,
    pub(super) keyspace: Keyspace,
    pub(super) up: bool,
    pub(super) paused: bool,
    /// Since when the node has been silent (crashed, paused, or cut off from Sentinel).
    pub(super) down_since: Option<u64>,
    /// Events that reached the node while it was paused, in arrival order.
    pub(super) deferred: Vec<Ev>,
    /// Bumped by each crash: replication still queued from an earlier life is lost.
    pub(super) incarnation: u64,
    pub(super) role: Role,
    /// Writes this node has shipped as a primary.
    pub(super) offset: u64,
    /// Highest offset each replica acknowledged (primary side).
    pub(super) acked: BTreeMap<usize, u64>,
    /// Blocked `WAIT`s, by id.
    pub(super) waits: BTreeMap<u64, PendingWait>,
}

impl World<'_> {
    /// An event at `node`: dropped if it is down, kept for later if it is paused.
    pub(super) fn node_event(&mut self, node: usize, ev: Ev) {
        if !self.nodes[node].up {
            return;
        }
        if self.nodes[node].paused {
            self.nodes[node].deferred.push(ev);
            return;
        }
        match ev {
            Ev::Request {
                node,
                client,
                request,
                command,
                conn,
            } => {
                let reply = match command {
                    Command::Wait {
                        replicas,
                        timeout_ms,
                    } => match self.wait(node, (client, conn), request, replicas, timeout_ms) {
                        Some(r) => r,
                        None => return,
                    },
                    _ => self.execute(node, &command),
                };
                self.reply(node, (client, conn), request, reply);
            }
            Ev::ReplicaApply {
                replica,
                primary,
                effect,
                offset,
            } => self.replica_apply(replica, primary, effect, offset),
            Ev::ReplicaAck {
                primary,
                replica,
                offset,
            } => self.replica_ack(primary, replica, offset),
            Ev::WaitTimeout { node, wait } => self.finish_wait(node, wait),
            _ => {}
        }
    }

    /// Runs `command` on node `n` and replicates what it wrote.
    pub(super) fn execute(&mut self, n: usize, command: &Command) -> Reply {
        let local = self.nodes[n].clock.local(self.now);
        let writable = self.nodes[n].role == Role::Primary;
        let mut fx = std::mem::take(&mut self.effects);
        // Looking the key up drops it if it expired, whatever the command. Its entry is kept
        // only when the command may write over a live key, to tell an extension from a new
        // value (`change_of`); the others write only a key that is not there, or delete.
        let before = self.nodes[n].keyspace.get(&self.key, local);
        let before = before.filter(|_| may_overwrite(command)).cloned();
        let reply = self.nodes[n]
            .keyspace
            .execute(command, local, writable, &mut fx);
        for effect in fx.drain(..) {
            if effect_key(&effect) == self.key {
                self.key_changed(n, change_of(&effect, before.as_ref()), false);
            }
            self.replicate(n, effect);
        }
        self.effects = fx;
        reply
    }

    /// Sends node `node`'s reply to a client's request, on the connection (`client`, its
    /// generation) the request came by.
    pub(super) fn reply(
        &mut self,
        node: usize,
        (client, conn): (usize, u64),
        request: RequestId,
        reply: Reply,
    ) {
        if let Some(at) =
            self.net
                .deliver_at(Party::Node(node), Party::Client(client), self.now, false)
        {
            self.queue.push(
                at,
                Ev::Reply {
                    node,
                    client,
                    request,
                    reply,
                    conn,
                },
            );
        }
    }

    /// Records a change of node `n`'s copy of the lock key, as it stands now.
    pub(super) fn key_changed(&mut self, n: usize, change: KeyChange, replicated: bool) {
        let local = self.nodes[n].clock.local(self.now);
        let entry = self.nodes[n].keyspace.peek(&self.key, local);
        let holder = entry.map(|e| match self.owners.get(&e.value) {
            Some(Some(name)) => name.clone(),
            _ => format!("{:?}", e.value).into(),
        });
        let ttl_left_us = entry
            .and_then(|e| e.expires_at)
            .map(|x| x.saturating_sub(local));
        self.record(H::KeyChanged {
            node: self.nodes[n].name.clone(),
            key: self.key.clone(),
            change,
            replicated,
            holder,
            ttl_left_us,
        });
    }
}

/// Whether `command` may write over the lock key while it is live (so that the write is an
/// extension when the value stays). SET NX, SETNX and the fenced acquire write the key only
/// when it is absent (the fence counter is another key); DEL and the release script only
/// delete it; GET and WAIT write nothing. Any other command may.
fn may_overwrite(command: &Command) -> bool {
    !matches!(
        command,
        Command::SetNx { .. }
            | Command::SetNxLegacy { .. }
            | Command::FencedAcquire { .. }
            | Command::Del { .. }
            | Command::Release { .. }
            | Command::Get { .. }
            | Command::Wait { .. }
    )
}

/// Whether a write set the key anew or pushed out the expiry of the same value.
pub(super) fn change_of(effect: &Effect, before: Option<&Entry>) -> KeyChange {
    match effect {
        Effect::Put { entry, .. } if before.is_some_and(|b| b.value == entry.value) => {
            KeyChange::Extended
        }
        Effect::Put { .. } => KeyChange::Set,
        Effect::Del { .. } => KeyChange::Deleted,
    }
}

/// The key a write touches.
pub(super) fn effect_key(effect: &Effect) -> &str {
    match effect {
        Effect::Put { key, .. } | Effect::Del { key } => key,
    }
}
