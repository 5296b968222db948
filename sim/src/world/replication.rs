//! Replication: the stream from a primary to its replicas (after `replication_lag_ms`, held
//! back while a link is cut or a replica is dropped), acknowledgements and `WAIT`, full
//! resyncs, promotion, and a replica silent for `repl-timeout` being dropped.

use super::nodes::{change_of, effect_key};
use super::{Role, World, MS};
use crate::events::Ev;
use crate::network::Party;
use crate::node::Effect;
use checker::{Effect as Seen, KeyChange};
use lock_core::{Command, Reply, RequestId};

/// A `WAIT` that blocks until enough replicas acknowledged `target`.
#[derive(Debug, Clone)]
pub(super) struct PendingWait {
    /// The client and the generation of the connection the `WAIT` came by.
    client: (usize, u64),
    request: RequestId,
    /// The primary's offset when the `WAIT` arrived.
    target: u64,
    needed: u32,
}

impl World<'_> {
    /// Queues one write of `primary` for each of its replicas, to leave after the lag.
    pub(super) fn replicate(&mut self, primary: usize, effect: Effect) {
        self.nodes[primary].offset += 1;
        let incarnation = self.nodes[primary].incarnation;
        for r in 0..self.nodes.len() {
            if self.nodes[r].role == (Role::Replica { of: primary }) {
                let ev = Ev::ReplicateSend {
                    primary,
                    incarnation,
                    replica: r,
                    effect: effect.clone(),
                };
                self.queue.push(self.now + self.lag_us, ev);
            }
        }
    }

    /// An [`Ev::ReplicateSend`] is due: lost if the primary died meanwhile, kept while it is
    /// paused, else shipped.
    pub(super) fn replicate_send(&mut self, ev: Ev) {
        let Ev::ReplicateSend {
            primary,
            incarnation,
            replica,
            ref effect,
        } = ev
        else {
            return;
        };
        let p = &self.nodes[primary];
        if !p.up || p.incarnation != incarnation {
            return; // still in the dead primary's buffers: lost
        }
        if p.paused {
            self.nodes[primary].deferred.push(ev);
            return;
        }
        let effect = effect.clone();
        self.ship(primary, replica, effect);
    }

    /// Streams one write to a replica, or keeps it in the backlog while the link is cut or the
    /// primary has dropped a replica silent for longer than `repl-timeout`.
    pub(super) fn ship(&mut self, primary: usize, replica: usize, effect: Effect) {
        let silent_too_long = self.nodes[replica]
            .down_since
            .is_some_and(|d| self.now.saturating_sub(d) >= self.repl_timeout_us);
        if silent_too_long || self.net.is_cut(Party::Node(primary), Party::Node(replica)) {
            self.backlog
                .entry((primary, replica))
                .or_default()
                .push(effect);
            return;
        }
        let offset = self.nodes[primary].offset;
        if let Some(at) =
            self.net
                .deliver_at(Party::Node(primary), Party::Node(replica), self.now, true)
        {
            self.queue.push(
                at,
                Ev::ReplicaApply {
                    replica,
                    primary,
                    effect,
                    offset,
                },
            );
        }
    }

    /// Ships every backlog whose link is whole again and whose replica answers.
    pub(super) fn flush_backlogs(&mut self) {
        let ready: Vec<(usize, usize)> = self
            .backlog
            .keys()
            .filter(|(p, r)| {
                let (p, r) = (*p, *r);
                self.nodes[p].up
                    && self.nodes[r].up
                    && !self.nodes[r].paused
                    && !self.net.is_cut(Party::Node(p), Party::Node(r))
            })
            .copied()
            .collect();
        for (p, r) in ready {
            for effect in self.backlog.remove(&(p, r)).unwrap_or_default() {
                self.ship(p, r, effect);
            }
        }
    }

    /// A replicated write reaches `replica`: applied if it still follows `primary`, and
    /// acknowledged.
    pub(super) fn replica_apply(
        &mut self,
        replica: usize,
        primary: usize,
        effect: Effect,
        offset: u64,
    ) {
        if self.nodes[replica].role != (Role::Replica { of: primary }) {
            return;
        }
        let local = self.nodes[replica].clock.local(self.now);
        let before = self.nodes[replica].keyspace.get(&self.key, local).cloned();
        self.nodes[replica].keyspace.apply(&effect);
        if effect_key(&effect) == self.key {
            self.key_changed(replica, change_of(&effect, before.as_ref()), true);
        }
        if let Some(at) =
            self.net
                .deliver_at(Party::Node(replica), Party::Node(primary), self.now, true)
        {
            self.queue.push(
                at,
                Ev::ReplicaAck {
                    primary,
                    replica,
                    offset,
                },
            );
        }
    }

    /// A replica's acknowledgement reaches `primary`: every `WAIT` it satisfies returns.
    pub(super) fn replica_ack(&mut self, primary: usize, replica: usize, offset: u64) {
        let acked = self.nodes[primary].acked.entry(replica).or_insert(0);
        *acked = (*acked).max(offset);
        let done: Vec<u64> = self.nodes[primary]
            .waits
            .iter()
            .filter(|(_, w)| self.replicas_at(primary, w.target) >= w.needed as usize)
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            self.finish_wait(primary, id);
        }
    }

    /// Replaces `replica`'s data with `primary`'s, as a full resync does.
    pub(super) fn full_sync(&mut self, primary: usize, replica: usize) {
        if !self.nodes[primary].up {
            return;
        }
        let ks = self.nodes[primary].keyspace.clone();
        let offset = self.nodes[primary].offset;
        let before = self.nodes[replica].keyspace.clone();
        self.nodes[replica].keyspace = ks;
        self.nodes[primary].acked.insert(replica, offset);
        self.backlog.remove(&(primary, replica));
        if before != self.nodes[replica].keyspace {
            self.key_changed(replica, KeyChange::Resynced, true);
        }
    }

    /// Makes `n` the primary (`REPLICAOF NO ONE`); the other replicas follow it and resync.
    pub(super) fn promote(&mut self, n: usize) {
        self.nodes[n].role = Role::Primary;
        self.primary = n;
        for r in 0..self.nodes.len() {
            if r != n && matches!(self.nodes[r].role, Role::Replica { .. }) {
                self.nodes[r].role = Role::Replica { of: n };
                if self.nodes[r].up {
                    self.full_sync(n, r);
                }
            }
        }
    }

    /// A replica silent since `down_since` reaches `repl-timeout`: if it is still silent and
    /// its primary is up, the primary drops it.
    pub(super) fn replica_timeout(&mut self, replica: usize, down_since: u64) {
        let Role::Replica { of } = self.nodes[replica].role else {
            return;
        };
        if self.nodes[replica].down_since == Some(down_since) && self.nodes[of].up {
            self.observe(Seen::ReplicaDropped {
                primary: self.nodes[of].name.to_string(),
                replica: self.nodes[replica].name.to_string(),
            });
        }
    }

    /// How many replicas of `primary` acknowledged `offset`.
    fn replicas_at(&self, primary: usize, offset: u64) -> usize {
        self.nodes[primary]
            .acked
            .values()
            .filter(|a| **a >= offset)
            .count()
    }

    /// `WAIT needed timeout_ms` on node `n`: the reply now, or `None` while it blocks.
    pub(super) fn wait(
        &mut self,
        n: usize,
        client: (usize, u64),
        request: RequestId,
        needed: u32,
        timeout_ms: u64,
    ) -> Option<Reply> {
        if self.nodes[n].role != Role::Primary {
            // As Redis answers WAIT on a replica (see the conformance suite).
            let mut fx = Vec::new();
            let cmd = Command::Wait {
                replicas: needed,
                timeout_ms,
            };
            return Some(self.nodes[n].keyspace.execute(&cmd, 0, false, &mut fx));
        }
        let target = self.nodes[n].offset;
        let have = self.replicas_at(n, target);
        if have >= needed as usize {
            return Some(Reply::Int(have as i64));
        }
        self.next_wait += 1;
        let id = self.next_wait;
        self.nodes[n].waits.insert(
            id,
            PendingWait {
                client,
                request,
                target,
                needed,
            },
        );
        if timeout_ms > 0 {
            self.queue.push(
                self.now + timeout_ms * MS,
                Ev::WaitTimeout { node: n, wait: id },
            );
        }
        None
    }

    /// Blocked `WAIT` `id` on node `n` returns how many replicas have its writes.
    pub(super) fn finish_wait(&mut self, n: usize, id: u64) {
        if let Some(w) = self.nodes[n].waits.remove(&id) {
            let have = self.replicas_at(n, w.target) as i64;
            self.reply(n, w.client, w.request, Reply::Int(have));
        }
    }
}
