//! The simulated world and its event loop: Redis nodes with replication and Sentinel, the
//! network, clients running the lock core, the protected resource, and the fault schedule.

use crate::client::SimClient;
use workload::clock::Clock;

use crate::network::{Network, Party};
use crate::node::{Effect, Entry, Keyspace};
use crate::queue::EventQueue;
use checker::{Effect as Seen, Event as H, Healed, KeyChange, PromotedBy, Record};
use lock_core::{Command, Event as LockEvent, RecipeError, Reply, RequestId, TimerId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scenario::{ClockSpec, FaultAction, Scenario, Topology};
use std::collections::BTreeMap;
use workload::{ClientLoop, Input, Output, Resource};

const MS: u64 = 1_000;

/// What a run produced: the history and how many events the simulator processed.
#[derive(Debug, Clone)]
pub struct SimRun {
    /// The history, in true-time order.
    pub records: Vec<Record>,
    /// Events processed by the loop (for the event-rate benchmark).
    pub events: u64,
    /// Why the run stopped before `duration_ms` (the event budget ran out), if it did: the
    /// history is then a prefix of the run, and a property that holds on it is not proven.
    pub cut_short: Option<String>,
}

/// Which of a client's timers fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientTimer {
    Machine(TimerId),
    Work(u64),
    Think(u64),
}

#[derive(Debug, Clone)]
pub(crate) enum Ev {
    Fault(usize),
    Heal(usize),
    ResumeNode(usize),
    ResumeClient(usize),
    ClientStart(usize),
    ClientTimer {
        client: usize,
        epoch: u64,
        timer: ClientTimer,
    },
    Request {
        node: usize,
        client: usize,
        request: RequestId,
        command: Command,
    },
    Reply {
        client: usize,
        request: RequestId,
        reply: Reply,
    },
    WriteArrives {
        client: usize,
        fencing: Option<u64>,
        commit: bool,
    },
    WriteAck {
        client: usize,
        commit: bool,
    },
    ReplicateSend {
        primary: usize,
        incarnation: u64,
        replica: usize,
        effect: Effect,
    },
    ReplicaApply {
        replica: usize,
        primary: usize,
        effect: Effect,
        offset: u64,
    },
    ReplicaAck {
        primary: usize,
        replica: usize,
        offset: u64,
    },
    WaitTimeout {
        node: usize,
        wait: u64,
    },
    SentinelCheck {
        node: usize,
        down_since: u64,
    },
    /// A condition's wait (index into `World::waiters`) times out.
    ConditionDeadline(usize),
    /// A replica silent since `down_since` reaches its primary's `repl-timeout`.
    ReplicaTimeout {
        replica: usize,
        down_since: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Primary,
    Replica { of: usize },
}

#[derive(Debug, Clone)]
struct PendingWait {
    client: usize,
    request: RequestId,
    target: u64,
    needed: u32,
}

struct SimNode {
    name: String,
    clock: Clock,
    keyspace: Keyspace,
    up: bool,
    paused: bool,
    down_since: Option<u64>,
    deferred: Vec<Ev>,
    incarnation: u64,
    role: Role,
    /// Writes this node has shipped as a primary.
    offset: u64,
    /// Highest offset each replica acknowledged (primary side).
    acked: BTreeMap<usize, u64>,
    waits: BTreeMap<u64, PendingWait>,
}

/// What waits for a condition: a fault (index) or a client start (index).
#[derive(Debug, Clone, Copy)]
enum Waiting {
    Fault(usize),
    Start(usize),
}

/// A fault or client start that waits for an observed state (`after`).
struct Waiter<'s> {
    what: Waiting,
    /// Not before this true time (`at_ms`, `start_ms`), µs.
    at: u64,
    after: &'s scenario::After,
    /// Whether the condition was seen (or the wait timed out): nothing more to do.
    done: bool,
}

/// The event that carries out a fault or a client start.
fn event_for(what: Waiting) -> Ev {
    match what {
        Waiting::Fault(i) => Ev::Fault(i),
        Waiting::Start(c) => Ev::ClientStart(c),
    }
}

/// The first record of a simulated run of `sc` with `seed`.
pub(crate) fn run_started(sc: &Scenario, seed: u64) -> H {
    H::RunStarted {
        scenario: sc.name.clone(),
        backend: "sim".into(),
        seed,
        resource: sc.resource.key.clone(),
        ttl_ms: sc.recipe.ttl_ms,
        clocks: sc.clocks.starts(),
        checker: sc.checker.clone(),
    }
}

/// The simulated world.
pub(crate) struct World<'s> {
    sc: &'s Scenario,
    key: String,
    now: u64,
    end: u64,
    queue: EventQueue<Ev>,
    nodes: Vec<SimNode>,
    clients: Vec<SimClient>,
    net: Network,
    /// The primary clients are told to use (replicated topology).
    primary: usize,
    lag_us: u64,
    repl_timeout_us: u64,
    sentinel_after: Option<u64>,
    /// Replication writes held back by a cut link, per (primary, replica).
    backlog: BTreeMap<(usize, usize), Vec<Effect>>,
    /// Who generated which lock value, to name holders in key events (`None`: a value
    /// several clients use, such as a fixed token).
    owners: BTreeMap<String, Option<String>>,
    resource: Resource,
    next_wait: u64,
    records: Vec<Record>,
    outputs: Vec<Output>,
    events: u64,
    /// Faults and client starts waiting for a condition.
    waiters: Vec<Waiter<'s>>,
}

impl<'s> World<'s> {
    /// The world of `sc` at time 0, or why its recipe cannot run on its lock instances.
    pub(crate) fn new(sc: &'s Scenario, seed: u64) -> Result<World<'s>, RecipeError> {
        let stream = |n: u64| {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            r.set_stream(n);
            r
        };
        let default_clock = ClockSpec::default();
        let nodes = sc
            .topology
            .node_names()
            .into_iter()
            .enumerate()
            .map(|(i, name)| SimNode {
                clock: Clock::new(sc.clocks.nodes.get(&name).unwrap_or(&default_clock)),
                role: match sc.topology {
                    Topology::Replicated { .. } if i > 0 => Role::Replica { of: 0 },
                    _ => Role::Primary,
                },
                name,
                keyspace: Keyspace::default(),
                up: true,
                paused: false,
                down_since: None,
                deferred: Vec::new(),
                incarnation: 0,
                offset: 0,
                acked: BTreeMap::new(),
                waits: BTreeMap::new(),
            })
            .collect();
        let instances = sc.topology.lock_instances();
        let recipe = sc.recipe.clone().validated(instances)?;
        let clients = sc
            .clients
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let clock = Clock::new(sc.clocks.clients.get(&spec.name).unwrap_or(&default_clock));
                SimClient::new(
                    ClientLoop::new(spec.clone(), recipe.clone(), &sc.resource.key),
                    clock,
                    stream(100 + i as u64),
                )
            })
            .collect();
        let (lag_us, repl_timeout_us, sentinel_after) = match &sc.topology {
            Topology::Replicated {
                replication_lag_ms,
                repl_timeout_ms,
                sentinel,
                ..
            } => (
                (replication_lag_ms * 1000.0) as u64,
                repl_timeout_ms * MS,
                sentinel.as_ref().map(|s| s.down_after_ms * MS),
            ),
            _ => (0, u64::MAX, None),
        };
        let mut w = World {
            sc,
            key: sc.resource.key.clone(),
            now: 0,
            end: sc.duration_ms * MS,
            queue: EventQueue::default(),
            nodes,
            clients,
            net: Network::new(sc.network.clone(), stream(1)),
            primary: 0,
            lag_us,
            repl_timeout_us,
            sentinel_after,
            backlog: BTreeMap::new(),
            owners: BTreeMap::new(),
            resource: Resource::new(sc.resource.checks_fencing),
            next_wait: 0,
            records: Vec::with_capacity(1024),
            outputs: Vec::new(),
            events: 0,
            waiters: Vec::new(),
        };
        let starts = sc.clients.iter().map(|c| (c.start_ms, c.after.as_ref()));
        let faults = sc.faults.iter().map(|f| (f.at_ms, f.after.as_ref()));
        let all = faults
            .enumerate()
            .map(|(i, f)| (Waiting::Fault(i), f))
            .chain(starts.enumerate().map(|(i, c)| (Waiting::Start(i), c)));
        for (what, (at_ms, after)) in all {
            let at = at_ms * MS;
            match after {
                None => w.queue.push(at, event_for(what)),
                Some(after) => {
                    let deadline = at.saturating_add(after.timeout_ms * MS);
                    w.queue
                        .push(deadline, Ev::ConditionDeadline(w.waiters.len()));
                    w.waiters.push(Waiter {
                        what,
                        at,
                        after,
                        done: false,
                    });
                }
            }
        }
        Ok(w)
    }

    pub(crate) fn run(mut self, seed: u64, budget: u64) -> SimRun {
        self.record(run_started(self.sc, seed));
        let mut cut_short = None;
        while let Some((t, ev)) = self.queue.pop() {
            if t > self.end {
                break;
            }
            if self.events >= budget {
                cut_short = Some(format!(
                    "the simulator's event budget of {budget} events ran out at {} ms of {} ms",
                    t / MS,
                    self.end / MS
                ));
                self.now = t;
                break;
            }
            self.now = t;
            self.events += 1;
            self.dispatch(ev);
        }
        match &cut_short {
            Some(reason) => self.record(H::Inconclusive {
                reason: format!("cut short: {reason}"),
            }),
            None => {
                self.now = self.end;
                for i in 0..self.waiters.len() {
                    if !self.waiters[i].done {
                        let reason = self.not_seen(i, "by the end of the run");
                        self.record(H::Inconclusive { reason });
                    }
                }
            }
        }
        self.record(H::RunEnded {});
        SimRun {
            records: self.records,
            events: self.events,
            cut_short,
        }
    }

    /// Records what a fault was seen to do.
    fn observe(&mut self, effect: Seen) {
        self.record(H::Observed(effect));
    }

    fn record(&mut self, event: H) {
        for w in self.waiters.iter_mut().filter(|w| !w.done) {
            if w.after.condition.met_by(&event) {
                w.done = true;
                let at = w.at.max(self.now + w.after.delay_ms * MS);
                self.queue.push(at, event_for(w.what));
            }
        }
        self.records.push(Record {
            t_us: self.now,
            event,
        });
    }

    /// Why waiter `i`'s condition makes the run inconclusive.
    fn not_seen(&self, i: usize, when: &str) -> String {
        let w = &self.waiters[i];
        let what = match w.what {
            Waiting::Fault(f) => format!("faults[{f}] ({})", self.sc.faults[f].action.describe()),
            Waiting::Start(c) => format!("clients[{c}] ({}) start", self.sc.clients[c].name),
        };
        w.after.condition.not_seen(&what, when)
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Fault(i) => self.inject(i),
            Ev::Heal(i) => {
                if let FaultAction::Partition { between, and, .. } = &self.sc.faults[i].action {
                    let (a, b) = (self.parties(between), self.parties(and));
                    self.net.cut(&a, &b, -1);
                    let (between, and) = (between.clone(), and.clone());
                    self.record(H::Heal(Healed::Partition {
                        between: between.clone(),
                        and: and.clone(),
                    }));
                    self.observe(Seen::Reconnected { between, and });
                    self.sentinel_after_heal();
                    self.flush_backlogs();
                }
            }
            Ev::ResumeNode(n) => {
                let node = self.nodes[n].name.clone();
                self.record(H::Heal(Healed::ResumeNode { node }));
                self.resume_node(n);
            }
            Ev::ResumeClient(c) => {
                self.clients[c].paused = false;
                let client = self.clients[c].lp.name().to_string();
                self.record(H::Heal(Healed::ResumeClient {
                    client: client.clone(),
                }));
                self.observe(Seen::ClientResumed { client });
                for ev in std::mem::take(&mut self.clients[c].deferred) {
                    self.queue.push(self.now, ev);
                }
            }
            Ev::ClientStart(c) => {
                if self.client_ready(c, &ev) {
                    self.feed(c, Input::Start);
                }
            }
            Ev::ClientTimer {
                client,
                epoch,
                timer,
            } => {
                if !self.client_ready(client, &ev) || epoch != self.clients[client].clock.epoch {
                    return;
                }
                self.client_timer(client, timer);
            }
            Ev::Reply {
                client,
                request,
                ref reply,
            } => {
                if !self.client_ready(client, &ev) {
                    return;
                }
                let reply = reply.clone();
                self.feed(client, Input::Lock(LockEvent::Reply { request, reply }));
            }
            Ev::WriteAck { client, commit } => {
                if self.client_ready(client, &ev) && commit {
                    self.feed(client, Input::CommitAcked);
                }
            }
            Ev::WriteArrives {
                client,
                fencing,
                commit,
            } => self.resource_write(client, fencing, commit),
            Ev::Request { node, .. }
            | Ev::ReplicaApply { replica: node, .. }
            | Ev::ReplicaAck { primary: node, .. }
            | Ev::WaitTimeout { node, .. } => {
                if !self.nodes[node].up {
                    return;
                }
                if self.nodes[node].paused {
                    self.nodes[node].deferred.push(ev);
                    return;
                }
                self.node_event(ev);
            }
            Ev::ReplicateSend {
                primary,
                incarnation,
                replica,
                ref effect,
            } => {
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
            Ev::SentinelCheck { node, down_since } => {
                if self.primary == node && self.nodes[node].down_since == Some(down_since) {
                    self.sentinel_failover(node);
                }
            }
            Ev::ConditionDeadline(i) => {
                if !self.waiters[i].done {
                    self.waiters[i].done = true;
                    let within = format!("within {} ms", self.waiters[i].after.timeout_ms);
                    let reason = self.not_seen(i, &within);
                    self.record(H::Inconclusive { reason });
                }
            }
            Ev::ReplicaTimeout {
                replica,
                down_since,
            } => {
                let Role::Replica { of } = self.nodes[replica].role else {
                    return;
                };
                if self.nodes[replica].down_since == Some(down_since) && self.nodes[of].up {
                    self.observe(Seen::ReplicaDropped {
                        primary: self.nodes[of].name.clone(),
                        replica: self.nodes[replica].name.clone(),
                    });
                }
            }
        }
    }

    /// True when the client may act on `ev` now; a paused client keeps it for later.
    fn client_ready(&mut self, c: usize, ev: &Ev) -> bool {
        let cl = &mut self.clients[c];
        if cl.crashed {
            return false;
        }
        if cl.paused {
            cl.deferred.push(ev.clone());
            return false;
        }
        true
    }

    // ---- faults ------------------------------------------------------------------------

    fn node_index(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).unwrap_or(0)
    }

    fn client_index(&self, name: &str) -> Option<usize> {
        self.clients.iter().position(|c| c.lp.name() == name)
    }

    fn parties(&self, names: &[String]) -> Vec<Party> {
        names
            .iter()
            .map(|n| {
                if n == "resource" {
                    Party::Resource
                } else if let Some(c) = self.client_index(n) {
                    Party::Client(c)
                } else {
                    Party::Node(self.node_index(n))
                }
            })
            .collect()
    }

    fn inject(&mut self, i: usize) {
        let fault = &self.sc.faults[i];
        self.record(H::Fault(fault.action.injected()));
        match &fault.action {
            FaultAction::Crash(node) => {
                let n = self.node_index(node);
                self.crash_node(n);
                self.observe(Seen::NodeDown { node: node.clone() });
            }
            FaultAction::Restart { node, persistence } => {
                let n = self.node_index(node);
                if self.nodes[n].up {
                    self.crash_node(n);
                }
                self.restart_node(n, *persistence);
                self.observe(Seen::NodeUp { node: node.clone() });
            }
            FaultAction::Promote(node) => {
                let n = self.node_index(node);
                self.promote(n);
                self.observe(Seen::Promoted {
                    node: node.clone(),
                    by: PromotedBy::Manual,
                });
            }
            FaultAction::PauseNode { node, for_ms } => {
                let n = self.node_index(node);
                if self.nodes[n].up && !self.nodes[n].paused {
                    self.nodes[n].paused = true;
                    self.mark_down(n);
                    if let Some(d) = for_ms {
                        self.queue.push(self.now + d * MS, Ev::ResumeNode(n));
                    }
                    self.observe(Seen::NodePaused { node: node.clone() });
                }
            }
            FaultAction::ResumeNode(node) => {
                let n = self.node_index(node);
                if self.nodes[n].paused {
                    self.resume_node(n);
                }
            }
            FaultAction::PauseClient { client, for_ms } => {
                if let Some(c) = self.client_index(client) {
                    if !self.clients[c].paused && !self.clients[c].crashed {
                        self.clients[c].paused = true;
                        self.queue.push(self.now + for_ms * MS, Ev::ResumeClient(c));
                        self.observe(Seen::ClientPaused {
                            client: client.clone(),
                        });
                    }
                }
            }
            FaultAction::CrashClient(client) => {
                if let Some(c) = self.client_index(client) {
                    self.crash_client(c);
                }
            }
            FaultAction::ClockJump { target, by_ms } => {
                let by = by_ms.saturating_mul(MS as i64);
                let clock = if let Some(c) = self.client_index(target) {
                    self.clients[c].clock.jump(self.now, by);
                    self.replan_client_timers(c);
                    &self.clients[c].clock
                } else {
                    let n = self.node_index(target);
                    self.nodes[n].clock.jump(self.now, by);
                    &self.nodes[n].clock
                };
                let offset_ms = (clock.local(self.now) as f64 - self.now as f64) / MS as f64;
                self.observe(Seen::ClockSet {
                    target: target.clone(),
                    offset_ms,
                });
            }
            FaultAction::Partition {
                between,
                and,
                for_ms,
            } => {
                let (a, b) = (self.parties(between), self.parties(and));
                self.net.cut(&a, &b, 1);
                self.observe(Seen::Partitioned {
                    between: between.clone(),
                    and: and.clone(),
                });
                self.sentinel_after_cut();
                if let Some(d) = for_ms {
                    self.queue.push(self.now + d * MS, Ev::Heal(i));
                }
            }
        }
    }

    /// Thaws a frozen node: what it was sent meanwhile is handled now.
    fn resume_node(&mut self, n: usize) {
        self.nodes[n].paused = false;
        self.nodes[n].down_since = None;
        let node = self.nodes[n].name.clone();
        self.observe(Seen::NodeUp { node });
        for ev in std::mem::take(&mut self.nodes[n].deferred) {
            self.queue.push(self.now, ev);
        }
        // A dropped replica that comes back resyncs what it missed.
        self.flush_backlogs();
    }

    fn mark_down(&mut self, n: usize) {
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

    fn crash_node(&mut self, n: usize) {
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

    fn restart_node(&mut self, n: usize, persistence: bool) {
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

    fn full_sync(&mut self, primary: usize, replica: usize) {
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

    fn promote(&mut self, n: usize) {
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

    /// Whether the Sentinels can reach node `n`. They run beside the replicas (as the
    /// containers backend places them, on the nodes' network), so they lose the primary when
    /// a partition cuts it off from every replica.
    fn sentinels_reach(&self, n: usize) -> bool {
        let mut replicas = (0..self.nodes.len())
            .filter(|r| *r != n && matches!(self.nodes[*r].role, Role::Replica { .. }))
            .peekable();
        replicas.peek().is_none()
            || replicas.any(|r| !self.net.is_cut(Party::Node(n), Party::Node(r)))
    }

    /// After a partition: a primary the Sentinels no longer reach counts as down for them
    /// (clients that still reach it keep being served: split brain).
    fn sentinel_after_cut(&mut self) {
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
    fn sentinel_after_heal(&mut self) {
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
                    node: self.nodes[old].name.clone(),
                    primary: self.nodes[p].name.clone(),
                });
                self.backlog.retain(|(from, _), _| *from != old);
                self.nodes[old].role = Role::Replica { of: p };
                self.nodes[old].down_since = None;
                self.full_sync(p, old);
            }
        }
    }

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
                node: self.nodes[r].name.clone(),
                by: PromotedBy::Sentinel,
            });
            self.promote(r);
        }
    }

    // ---- nodes -------------------------------------------------------------------------

    fn node_event(&mut self, ev: Ev) {
        match ev {
            Ev::Request {
                node,
                client,
                request,
                command,
            } => {
                let reply = match command {
                    Command::Wait {
                        replicas,
                        timeout_ms,
                    } => match self.wait(node, client, request, replicas, timeout_ms) {
                        Some(r) => r,
                        None => return,
                    },
                    _ => self.execute(node, &command),
                };
                self.reply(node, client, request, reply);
            }
            Ev::ReplicaApply {
                replica,
                primary,
                effect,
                offset,
            } => {
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
            Ev::ReplicaAck {
                primary,
                replica,
                offset,
            } => {
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
            Ev::WaitTimeout { node, wait } => self.finish_wait(node, wait),
            _ => {}
        }
    }

    fn execute(&mut self, n: usize, command: &Command) -> Reply {
        let local = self.nodes[n].clock.local(self.now);
        let writable = self.nodes[n].role == Role::Primary;
        let mut fx = Vec::new();
        let before = self.nodes[n].keyspace.get(&self.key, local).cloned();
        let reply = self.nodes[n]
            .keyspace
            .execute(command, local, writable, &mut fx);
        for effect in fx {
            if effect_key(&effect) == self.key {
                self.key_changed(n, change_of(&effect, before.as_ref()), false);
            }
            self.replicate(n, effect);
        }
        reply
    }

    fn replicate(&mut self, primary: usize, effect: Effect) {
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

    /// Streams one write to a replica, or keeps it in the backlog while the link is cut or the
    /// primary has dropped a replica silent for longer than `repl-timeout`.
    fn ship(&mut self, primary: usize, replica: usize, effect: Effect) {
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

    fn flush_backlogs(&mut self) {
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

    fn replicas_at(&self, primary: usize, offset: u64) -> usize {
        self.nodes[primary]
            .acked
            .values()
            .filter(|a| **a >= offset)
            .count()
    }

    fn wait(
        &mut self,
        n: usize,
        client: usize,
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

    fn finish_wait(&mut self, n: usize, id: u64) {
        if let Some(w) = self.nodes[n].waits.remove(&id) {
            let have = self.replicas_at(n, w.target) as i64;
            self.reply(n, w.client, w.request, Reply::Int(have));
        }
    }

    fn reply(&mut self, node: usize, client: usize, request: RequestId, reply: Reply) {
        if let Some(at) =
            self.net
                .deliver_at(Party::Node(node), Party::Client(client), self.now, false)
        {
            self.queue.push(
                at,
                Ev::Reply {
                    client,
                    request,
                    reply,
                },
            );
        }
    }

    /// Records a change of node `n`'s copy of the lock key, as it stands now.
    fn key_changed(&mut self, n: usize, change: KeyChange, replicated: bool) {
        let local = self.nodes[n].clock.local(self.now);
        let entry = self.nodes[n].keyspace.peek(&self.key, local);
        let holder = entry.map(|e| match self.owners.get(&e.value) {
            Some(Some(name)) => name.clone(),
            _ => format!("{:?}", e.value),
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

    // ---- clients -----------------------------------------------------------------------

    fn route(&self, instance: usize) -> usize {
        match self.sc.topology {
            Topology::Replicated { .. } => self.primary,
            _ => instance,
        }
    }

    /// Feeds one input to client `c`'s loop and carries out what it asks.
    fn feed(&mut self, c: usize, input: Input) {
        let cl = &mut self.clients[c];
        let local = cl.clock.local(self.now);
        let mut out = std::mem::take(&mut self.outputs);
        cl.lp.handle(input, local, &mut cl.rng, &mut out);
        self.carry_out(c, &mut out);
        self.outputs = out;
    }

    fn carry_out(&mut self, c: usize, out: &mut Vec<Output>) {
        let mut i = 0;
        while i < out.len() {
            let o = std::mem::replace(&mut out[i], Output::Crash);
            i += 1;
            match o {
                Output::Send {
                    instance,
                    request,
                    command,
                } => {
                    let node = self.route(instance);
                    if let Some(at) =
                        self.net
                            .deliver_at(Party::Client(c), Party::Node(node), self.now, false)
                    {
                        let ev = Ev::Request {
                            node,
                            client: c,
                            request,
                            command,
                        };
                        self.queue.push(at, ev);
                    }
                }
                Output::LockTimer { timer, at } => {
                    self.clients[c].machine_timers.insert(timer, at);
                    self.schedule_client_timer(c, at, ClientTimer::Machine(timer));
                }
                Output::WorkTimer { gen, at } => {
                    self.clients[c].work_due = Some((gen, at));
                    self.schedule_client_timer(c, at, ClientTimer::Work(gen));
                }
                Output::ThinkTimer { gen, at } => {
                    self.clients[c].think_due = Some((gen, at));
                    self.schedule_client_timer(c, at, ClientTimer::Think(gen));
                }
                Output::Write {
                    commit,
                    fencing_token,
                } => {
                    let ev = Ev::WriteArrives {
                        client: c,
                        fencing: fencing_token,
                        commit,
                    };
                    match self
                        .net
                        .deliver_at(Party::Client(c), Party::Resource, self.now, true)
                    {
                        Some(at) => self.queue.push(at, ev),
                        None if commit => {
                            // The write cannot reach the resource: the client gives up.
                            let cl = &mut self.clients[c];
                            let local = cl.clock.local(self.now);
                            cl.lp.commit_failed(local, &mut cl.rng, out);
                        }
                        None => {}
                    }
                }
                Output::Record(event) => {
                    if matches!(event, H::AcquireStarted { .. }) {
                        self.note_owner(c);
                    }
                    self.record(event);
                }
                Output::Crash => self.crash_client(c),
            }
        }
        out.clear();
    }

    /// Remembers whose value the client's fresh token is, for key-change records.
    fn note_owner(&mut self, c: usize) {
        let name = self.clients[c].lp.name();
        let token = self.clients[c].lp.token();
        match self.owners.get_mut(token) {
            Some(owner) if owner.as_deref() != Some(name) => *owner = None,
            Some(_) => {}
            None => {
                let (token, name) = (token.to_string(), name.to_string());
                self.owners.insert(token, Some(name));
            }
        }
    }

    fn crash_client(&mut self, c: usize) {
        let cl = &mut self.clients[c];
        if cl.crashed {
            return;
        }
        cl.crashed = true;
        cl.deferred.clear();
        let client = cl.lp.name().to_string();
        self.record(H::ClientCrashed { client });
    }

    fn schedule_client_timer(&mut self, c: usize, local_at: u64, timer: ClientTimer) {
        let cl = &self.clients[c];
        let at = cl.clock.true_at(local_at, self.now);
        let epoch = cl.clock.epoch;
        self.queue.push(
            at,
            Ev::ClientTimer {
                client: c,
                epoch,
                timer,
            },
        );
    }

    fn replan_client_timers(&mut self, c: usize) {
        let cl = &self.clients[c];
        let mut plan: Vec<(u64, ClientTimer)> = cl
            .machine_timers
            .iter()
            .map(|(t, at)| (*at, ClientTimer::Machine(*t)))
            .collect();
        plan.extend(cl.work_due.map(|(gen, at)| (at, ClientTimer::Work(gen))));
        plan.extend(cl.think_due.map(|(gen, at)| (at, ClientTimer::Think(gen))));
        for (at, timer) in plan {
            self.schedule_client_timer(c, at, timer);
        }
    }

    fn client_timer(&mut self, c: usize, timer: ClientTimer) {
        let cl = &mut self.clients[c];
        let input = match timer {
            ClientTimer::Machine(t) if cl.machine_timers.remove(&t).is_some() => {
                Input::Lock(LockEvent::Timer(t))
            }
            ClientTimer::Work(gen) if cl.work_due.is_some_and(|(g, _)| g == gen) => {
                cl.work_due = None;
                Input::WorkDone { gen }
            }
            ClientTimer::Think(gen) if cl.think_due.is_some_and(|(g, _)| g == gen) => {
                cl.think_due = None;
                Input::ThinkDone { gen }
            }
            _ => return,
        };
        self.feed(c, input);
    }

    // ---- the protected resource --------------------------------------------------------

    fn resource_write(&mut self, c: usize, fencing: Option<u64>, commit: bool) {
        let client = self.clients[c].lp.name().to_string();
        let accepted = self.resource.write(&client, fencing);
        self.record(H::Write {
            client,
            fencing_token: fencing,
            accepted,
        });
        if let Some(at) = self
            .net
            .deliver_at(Party::Resource, Party::Client(c), self.now, true)
        {
            self.queue.push(at, Ev::WriteAck { client: c, commit });
        }
    }
}

/// Whether a write set the key anew or pushed out the expiry of the same value.
fn change_of(effect: &Effect, before: Option<&Entry>) -> KeyChange {
    match effect {
        Effect::Put { entry, .. } if before.is_some_and(|b| b.value == entry.value) => {
            KeyChange::Extended
        }
        Effect::Put { .. } => KeyChange::Set,
        Effect::Del { .. } => KeyChange::Deleted,
    }
}

fn effect_key(effect: &Effect) -> &str {
    match effect {
        Effect::Put { key, .. } | Effect::Del { key } => key,
    }
}
