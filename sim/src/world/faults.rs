//! Fault injection: carrying out each step of the resolved fault plan, healing partitions,
//! and what faults do to a node (crash, restart, pause, resume).

use super::plan::{Step, Target, UnknownName};
use super::{Role, World, MS};
use crate::events::Ev;
use crate::network::{links, Party};
use checker::{Effect as Seen, Event as H, Healed, KeyChange, PartitionMode, PromotedBy};
use scenario::{FaultAction, Topology};

impl World<'_> {
    /// The action of fault `i` of the plan: one of the scenario's, or one injected during
    /// the run.
    pub(super) fn action(&self, i: usize) -> &FaultAction {
        match self.sc.faults.get(i) {
            Some(f) => &f.action,
            None => &self.injected[i - self.sc.faults.len()],
        }
    }

    /// Injects `action` now, as if the scenario had it at this time: it strikes before any
    /// event due now (a scenario's fault is queued before everything else due at its time).
    pub(crate) fn inject_now(&mut self, action: &FaultAction) -> Result<(), UnknownName> {
        let i = self.plan.len();
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.to_string()).collect();
        let step = super::plan::resolve_one(self.sc, &names, i, action)?;
        self.plan.push(step);
        self.injected.push(action.clone());
        self.inject(i);
        Ok(())
    }

    /// Injects fault `i` of the plan and records what it was seen to do.
    pub(super) fn inject(&mut self, i: usize) {
        self.record(H::Fault(self.action(i).injected()));
        match self.plan[i].clone() {
            Step::Crash(n) => {
                self.crash_node(n);
                self.observe_node(n, |node| Seen::NodeDown { node });
            }
            Step::Restart {
                node: n,
                persistence,
            } => {
                if self.nodes[n].up {
                    self.crash_node(n);
                }
                self.restart_node(n, persistence);
                self.observe_node(n, |node| Seen::NodeUp { node });
            }
            Step::Promote(n) => {
                self.promote(n);
                self.observe_node(n, |node| Seen::Promoted {
                    node,
                    by: PromotedBy::Manual,
                });
            }
            Step::PauseNode { node: n, for_ms } => {
                if self.nodes[n].up && !self.nodes[n].paused {
                    self.nodes[n].paused = true;
                    self.mark_down(n);
                    if let Some(d) = for_ms {
                        self.queue.push(self.now + d * MS, Ev::ResumeNode(n));
                    }
                    self.observe_node(n, |node| Seen::NodePaused { node });
                }
            }
            Step::ResumeNode(n) => {
                if self.nodes[n].paused {
                    self.resume_node(n);
                }
            }
            Step::PauseClient { client: c, for_ms } => {
                if !self.clients[c].paused && !self.clients[c].crashed {
                    self.clients[c].paused = true;
                    self.queue.push(self.now + for_ms * MS, Ev::ResumeClient(c));
                    let client = self.client_name(c);
                    self.observe(Seen::ClientPaused { client });
                }
            }
            Step::CrashClient(c) => self.crash_client(c),
            Step::ClockJump { target, by_ms } => {
                let by = by_ms.saturating_mul(MS as i64);
                let (clock, target) = match target {
                    Target::Client(c) => {
                        self.clients[c].host.jump_clock(self.now, by);
                        self.replan_client_timers(c);
                        (self.clients[c].host.clock(), self.client_name(c))
                    }
                    Target::Node(n) => {
                        self.nodes[n].clock.jump(self.now, by);
                        (&self.nodes[n].clock, self.nodes[n].name.to_string())
                    }
                };
                let offset_ms = (clock.local(self.now) as f64 - self.now as f64) / MS as f64;
                self.observe(Seen::ClockSet { target, offset_ms });
            }
            Step::Partition {
                between,
                and,
                for_ms,
                mode,
            } => {
                self.net.cut(&between, &and, mode, 1);
                if mode == PartitionMode::Reset {
                    self.reset_links(&between, &and);
                }
                let (between, and) = (self.party_names(&between), self.party_names(&and));
                self.observe(Seen::Partitioned { between, and });
                self.sentinel_after_cut();
                if let Some(d) = for_ms {
                    self.queue.push(self.now + d * MS, Ev::Heal(i));
                }
            }
        }
    }

    /// Partition fault `i` ends: its links are restored, and what they held back flows.
    pub(super) fn heal(&mut self, i: usize) {
        if let Step::Partition {
            between, and, mode, ..
        } = &self.plan[i]
        {
            let (a, b, mode) = (between.clone(), and.clone(), *mode);
            self.net.cut(&a, &b, mode, -1);
            if mode == PartitionMode::Blackhole {
                self.close_blackholed(&a, &b);
            }
            self.release_held(&a, &b);
            let (between, and) = (self.party_names(&a), self.party_names(&b));
            self.record(H::Heal(Healed::Partition {
                between: between.clone(),
                and: and.clone(),
            }));
            self.observe(Seen::Reconnected { between, and });
            self.sentinel_after_heal();
            self.flush_backlogs();
        }
    }

    /// A reset cut strikes: every client–node connection across it is closed (the clients'
    /// drivers fail what they await at once), and what the links held back is lost with it.
    /// Replication keeps what it held: Redis resyncs a replica from its backlog.
    fn reset_links(&mut self, between: &[Party], and: &[Party]) {
        let links: Vec<(Party, Party)> = links(between, and).collect();
        for (a, b) in links {
            for key in [(a, b), (b, a)] {
                if matches!(key, (Party::Node(_), Party::Node(_))) {
                    continue;
                }
                for ev in self.held.remove(&key).unwrap_or_default() {
                    self.lose(ev, PartitionMode::Reset);
                }
            }
            if let Some((c, n)) = client_node(a, b) {
                self.close_conn(c, n, "connection reset (partitioned)");
            }
        }
    }

    /// A blackhole cut heals: each client–node connection across it that lost bytes, and is
    /// no longer blackholed or reset by another cut, is closed (its byte stream is no longer
    /// whole), and its client's driver fails what it still awaits on it.
    fn close_blackholed(&mut self, between: &[Party], and: &[Party]) {
        let links: Vec<(Party, Party)> = links(between, and).collect();
        for (a, b) in links {
            let Some((c, n)) = client_node(a, b) else {
                continue;
            };
            let still = self
                .net
                .mode(a, b)
                .is_some_and(|m| m != PartitionMode::Hold);
            if !still && self.lossy.remove(&(c, n)) {
                self.close_conn(c, n, "connection closed (bytes lost to a blackhole)");
            }
        }
    }

    /// Delivers, in the order they arrived, the messages held on every link between the
    /// two groups that is whole again: nothing sent later overtakes them.
    fn release_held(&mut self, between: &[Party], and: &[Party]) {
        let links: Vec<(Party, Party)> = links(between, and).collect();
        for (a, b) in links {
            for key in [(a, b), (b, a)] {
                if self.net.is_cut(key.0, key.1) {
                    continue;
                }
                for ev in self.held.remove(&key).unwrap_or_default() {
                    self.dispatch(ev);
                }
            }
        }
    }

    /// A message meets a cut when it is delivered: held (hold, and replication whatever
    /// the mode), or lost (blackhole, reset). `None` when it does not go on now.
    pub(super) fn gate(&mut self, ev: Ev) -> Option<Ev> {
        let Some((from, to)) = ev.link() else {
            return Some(ev);
        };
        if ev
            .conn()
            .is_some_and(|conn| conn != self.net.conn(from, to))
        {
            return None; // its connection was closed since it was sent
        }
        let Some(mode) = self.net.mode(from, to) else {
            return Some(ev);
        };
        match (mode, from, to) {
            (_, Party::Node(_), Party::Node(_)) | (PartitionMode::Hold, _, _) => {
                self.held.entry((from, to)).or_default().push(ev);
            }
            (mode, _, _) => self.lose(ev, mode),
        }
        None
    }

    /// What losing a message to a cut of `mode` does: a blackholed client–node connection is
    /// marked to be closed at the heal; a lost commit write (or its ack) fails the commit.
    fn lose(&mut self, ev: Ev, mode: PartitionMode) {
        match ev {
            Ev::Request { node, client, .. } | Ev::Reply { node, client, .. }
                if mode == PartitionMode::Blackhole =>
            {
                self.lossy.insert((client, node));
            }
            Ev::WriteArrives {
                client,
                commit: true,
                ..
            }
            | Ev::WriteAck {
                client,
                commit: true,
            } if !self.clients[client].crashed => self.commit_lost(client),
            _ => {}
        }
    }

    /// Records what a fault did to node `n`, named.
    fn observe_node(&mut self, n: usize, seen: impl FnOnce(String) -> Seen) {
        let node = self.nodes[n].name.to_string();
        self.observe(seen(node));
    }

    /// The names of partition parties, as the scenario wrote them.
    fn party_names(&self, parties: &[Party]) -> Vec<String> {
        parties
            .iter()
            .map(|p| match *p {
                Party::Node(n) => self.nodes[n].name.to_string(),
                Party::Client(c) => self.client_name(c),
                Party::Resource => super::plan::RESOURCE.to_string(),
            })
            .collect()
    }

    /// Thaws a frozen node: what it was sent meanwhile is handled now.
    pub(super) fn resume_node(&mut self, n: usize) {
        self.nodes[n].paused = false;
        self.nodes[n].down_since = None;
        let node = self.nodes[n].name.to_string();
        self.observe(Seen::NodeUp { node });
        for ev in std::mem::take(&mut self.nodes[n].deferred) {
            self.queue.push(self.now, ev);
        }
        // A dropped replica that comes back resyncs what it missed.
        self.flush_backlogs();
    }

    /// Node `n` stops answering now: a replica's `repl-timeout` and, for the primary,
    /// Sentinel's `down-after` start counting.
    pub(super) fn mark_down(&mut self, n: usize) {
        self.nodes[n].down_since = Some(self.now);
        if matches!(self.nodes[n].role, Role::Replica { .. }) && self.repl_timeout_us < self.end {
            self.queue.push(
                self.now + self.repl_timeout_us,
                Ev::ReplicaTimeout {
                    replica: n,
                    down_since: self.now,
                },
            );
        }
        if let (Some(after), true) = (self.sentinel_after, self.primary == n) {
            self.queue.push(
                self.now + after,
                Ev::SentinelCheck {
                    node: n,
                    down_since: self.now,
                },
            );
        }
    }

    /// Kills node `n` (SIGKILL): its pending work and unsent replication die with it.
    pub(super) fn crash_node(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        if !node.up {
            return;
        }
        node.up = false;
        node.paused = false;
        node.incarnation += 1;
        node.deferred.clear();
        node.waits.clear();
        // What the primary held back for its replicas dies with it.
        self.backlog.retain(|(p, _), _| *p != n);
        self.mark_down(n);
    }

    /// Starts node `n` again, with its data (`persistence`) or empty; outside the primary of
    /// a replicated topology it rejoins as a replica of the current primary.
    pub(super) fn restart_node(&mut self, n: usize, persistence: bool) {
        let local = self.nodes[n].clock.local(self.now);
        let had_key = self.nodes[n].keyspace.get(&self.key, local).is_some();
        let node = &mut self.nodes[n];
        node.up = true;
        node.down_since = None;
        if !persistence {
            node.keyspace.clear();
            if had_key {
                self.key_changed(n, KeyChange::Wiped, false);
            }
        }
        let is_replicated = matches!(self.sc.topology, Topology::Replicated { .. });
        if is_replicated && self.primary != n {
            // Rejoins as a replica of the current primary: a full resync replaces its data.
            let primary = self.primary;
            self.nodes[n].role = Role::Replica { of: primary };
            self.full_sync(primary, n);
        }
    }
}

/// The (client, node) of a client–node link, either way round.
fn client_node(a: Party, b: Party) -> Option<(usize, usize)> {
    match (a, b) {
        (Party::Client(c), Party::Node(n)) | (Party::Node(n), Party::Client(c)) => Some((c, n)),
        _ => None,
    }
}
