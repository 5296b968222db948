//! Sentinel: when it counts the primary down (crashed, paused, or cut off from every
//! replica), its failover after `down_after_ms` to the replica with the most acknowledged
//! writes, and an old primary rejoining as a replica once the partition heals.

use super::{Role, World};
use crate::network::Party;
use checker::{Effect as Seen, PromotedBy};

impl World<'_> {
    /// Whether the Sentinels can reach node `n`. They run beside the replicas (as the
    /// containers backend places them, on the nodes' network), so they lose the primary when
    /// a partition cuts it off from every replica.
    pub(super) fn sentinels_reach(&self, n: usize) -> bool {
        let mut replicas = (0..self.nodes.len())
            .filter(|r| *r != n && matches!(self.nodes[*r].role, Role::Replica { .. }))
            .peekable();
        replicas.peek().is_none()
            || replicas.any(|r| !self.net.is_cut(Party::Node(n), Party::Node(r)))
    }

    /// After a partition: a primary the Sentinels no longer reach counts as down for them
    /// (clients that still reach it keep being served: split brain).
    pub(super) fn sentinel_after_cut(&mut self) {
        let p = self.primary;
        let node = &self.nodes[p];
        if self.sentinel_after.is_some()
            && node.up
            && !node.paused
            && node.down_since.is_none()
            && !self.sentinels_reach(p)
        {
            self.mark_down(p);
        }
    }

    /// After a partition heals: a primary the Sentinels reach again is up for them; an old
    /// primary they had replaced rejoins as a replica of the new one, and a full resync
    /// replaces whatever it granted meanwhile.
    pub(super) fn sentinel_after_heal(&mut self) {
        if self.sentinel_after.is_none() {
            return;
        }
        let p = self.primary;
        if self.nodes[p].up && !self.nodes[p].paused && self.sentinels_reach(p) {
            self.nodes[p].down_since = None;
        }
        for old in 0..self.nodes.len() {
            let node = &self.nodes[old];
            let stale = old != p && node.role == Role::Primary && node.up && !node.paused;
            if stale && !self.net.is_cut(Party::Node(old), Party::Node(p)) {
                self.observe(Seen::Rejoined {
                    node: self.nodes[old].name.to_string(),
                    primary: self.nodes[p].name.to_string(),
                });
                self.backlog.retain(|(from, _), _| *from != old);
                self.nodes[old].role = Role::Replica { of: p };
                self.nodes[old].down_since = None;
                self.full_sync(p, old);
            }
        }
    }

    /// `down_after_ms` after node `node` went down at `down_since`: if it is still the
    /// primary and has stayed down since, Sentinel fails over.
    pub(super) fn sentinel_check(&mut self, node: usize, down_since: u64) {
        if self.primary == node && self.nodes[node].down_since == Some(down_since) {
            self.sentinel_failover(node);
        }
    }

    /// Promotes the answering replica of `old` that acknowledged the most writes (the lowest
    /// index among equals); with none, nothing happens.
    fn sentinel_failover(&mut self, old: usize) {
        let best = (0..self.nodes.len())
            .filter(|r| *r != old && self.nodes[*r].up && !self.nodes[*r].paused)
            .filter(|r| matches!(self.nodes[*r].role, Role::Replica { of } if of == old))
            .max_by_key(|r| {
                (
                    self.nodes[old].acked.get(r).copied().unwrap_or(0),
                    std::cmp::Reverse(*r),
                )
            });
        if let Some(r) = best {
            self.observe(Seen::Promoted {
                node: self.nodes[r].name.to_string(),
                by: PromotedBy::Sentinel,
            });
            self.promote(r);
        }
    }
}
