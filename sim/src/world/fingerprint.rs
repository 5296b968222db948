//! The world's fingerprint: a hash of everything that decides what happens next, so that
//! exhaustive exploration can tell two schedules that reached the same state apart from two
//! that did not.

use super::World;
use crate::events::Ev;
use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::Hasher;

impl World<'_> {
    /// A 64-bit hash of the simulated state: the time, every node (keyspace, role, clock,
    /// what it holds back), every client (its lock machine, clock, timers and random
    /// stream), the network (its cuts and random stream), replication backlogs, the
    /// resource, and the events waiting, in the order they will happen.
    ///
    /// The history is left out (two schedules that reach one state have the same future),
    /// and so are the queue's sequence numbers and the plan's indices: a partition's heal is
    /// hashed as the partition it ends, so the same fault injected by two schedules hashes
    /// alike. `DefaultHasher::new()` has fixed keys: the same state gives the same
    /// fingerprint in every run.
    pub(crate) fn fingerprint(&self) -> u64 {
        // The state is written out as text, then hashed at once: one long write hashes
        // faster than many short ones.
        let mut w = String::with_capacity(8192);
        // Writing into a string cannot fail.
        for c in &self.clients {
            let _ = c.host.write_state(&mut w);
            let _ = write!(w, "|{}|{}|{:?}|", c.crashed, c.paused, c.deferred);
        }
        let _ = self.net.write_state(&mut w);
        let mut owners: Vec<_> = self.owners.iter().collect();
        owners.sort_unstable();
        let _ = write!(
            w,
            "{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|",
            self.now,
            self.nodes,
            self.primary,
            self.backlog,
            self.held,
            self.inflight,
            self.lossy,
            owners,
            self.resource,
            self.next_wait,
        );
        for waiter in &self.waiters {
            let _ = write!(w, "{:?}", waiter);
        }
        for (at, ev) in self.queue.in_order() {
            let _ = match ev {
                Ev::Heal(i) => write!(w, "{at}:heal {:?};", self.plan[*i]),
                ev => write!(w, "{at}:{ev:?};"),
            };
        }
        let mut hasher = DefaultHasher::new();
        hasher.write(w.as_bytes());
        hasher.finish()
    }
}
