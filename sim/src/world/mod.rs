//! The simulated world and its event loop: Redis nodes with replication and Sentinel, the
//! network, clients running the lock core, the protected resource, and the fault schedule.
//!
//! [`World`] holds the state; its behaviour is split by concept, one `impl World` per file:
//!
//! - `plan`: fault names resolved to indices once, when the world is built;
//! - `faults`: injecting and healing faults, and node crashes, restarts and pauses;
//! - `nodes`: the requests a node serves and the key changes it records;
//! - `replication`: the replication stream, its backlog, `repl-timeout` and `WAIT`;
//! - `sentinel`: when Sentinel sees the primary down, its failover, and rejoining;
//! - `clients`: hosting the clients and carrying out what they ask;
//! - `resource`: the protected resource;
//! - `conditions`: faults and client starts that wait for an observed state;
//! - `fingerprint`: a hash of the state, for exhaustive exploration ([`crate::Fork`]).
//!
//! This file builds the world, runs the loop and routes each event to its concept.

mod clients;
mod conditions;
mod faults;
mod fingerprint;
mod nodes;
mod plan;
mod replication;
mod resource;
mod sentinel;
#[cfg(test)]
mod tests;

use crate::client::SimClient;
use crate::events::Ev;
use crate::network::{Network, Party};
use crate::node::{Effect, Keyspace};
use crate::queue::EventQueue;
use checker::{Effect as Seen, Event as H, Healed, Record, SharedStr};
use conditions::Waiter;
use lock_core::{Event as LockEvent, RecipeError, RequestId};
use nodes::{Role, SimNode};
use plan::Step;
pub(crate) use plan::UnknownName;
use rustc_hash::FxHashMap;
use scenario::{ClockSpec, Scenario, Topology};
use std::collections::{BTreeMap, BTreeSet};
use workload::clock::Clock;
use workload::{streams, Host, Input, Output, Resource};

/// Microseconds per millisecond: the queue runs on µs of true time.
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

/// Why a scenario that skipped validation cannot be played as written, one reason per
/// problem: a fault naming a node or client the scenario does not have, or a recipe that
/// cannot run on its lock instances.
#[derive(Debug)]
pub(crate) struct Unplayable(pub(crate) Vec<String>);

impl From<Vec<UnknownName>> for Unplayable {
    fn from(unknown: Vec<UnknownName>) -> Self {
        Unplayable(unknown.iter().map(|e| e.to_string()).collect())
    }
}

impl Unplayable {
    /// Every `clocks` entry of `sc` that names no node (of `nodes`) or client of it.
    fn unknown_clocks(sc: &Scenario, nodes: &[String]) -> Result<(), Unplayable> {
        let clients: Vec<&str> = sc.clients.iter().map(|c| c.name.as_str()).collect();
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let mut why = Vec::new();
        for (kind, clocks, known) in [
            ("nodes", &sc.clocks.nodes, &nodes),
            ("clients", &sc.clocks.clients, &clients),
        ] {
            let what = &kind[..kind.len() - 1];
            for name in clocks.keys().filter(|n| !known.contains(&n.as_str())) {
                why.push(format!(
                    "clocks.{kind}.{name} names `{name}`, which is no {what} of this scenario"
                ));
            }
        }
        match why.is_empty() {
            true => Ok(()),
            false => Err(Unplayable(why)),
        }
    }
}

impl From<RecipeError> for Unplayable {
    fn from(e: RecipeError) -> Self {
        Unplayable(vec![format!("the recipe cannot run: recipe.{e}")])
    }
}

/// The history of a scenario that cannot be played: the run's start, one inconclusive
/// record per reason, and its end.
///
/// Nothing is simulated. A run without that fault, or with it aimed at another node, or
/// with another recipe, would prove nothing about the scenario as written, and its verdict
/// must not read as one.
pub(crate) fn not_played(sc: &Scenario, seed: u64, why: &Unplayable) -> SimRun {
    let at_start = |event| Record { t_us: 0, event };
    let mut records = vec![at_start(run_started(sc, seed))];
    records.extend(why.0.iter().map(|reason| {
        at_start(H::Inconclusive {
            reason: format!("not played: {reason}"),
        })
    }));
    records.push(at_start(H::RunEnded {}));
    SimRun {
        records,
        events: 0,
        cut_short: None,
    }
}

/// The history's first record.
fn run_started(sc: &Scenario, seed: u64) -> H {
    H::RunStarted(Box::new(checker::RunStart {
        scenario: sc.name.clone(),
        backend: "sim".into(),
        seed,
        resource: sc.resource.key.clone(),
        ttl_ms: sc.recipe.ttl_ms,
        clocks: sc.clocks.starts(),
        checker: sc.checker.clone(),
    }))
}

/// The simulated world.
#[derive(Debug, Clone)]
pub(crate) struct World<'s> {
    sc: &'s Scenario,
    key: SharedStr,
    now: u64,
    end: u64,
    queue: EventQueue<Ev>,
    nodes: Vec<SimNode>,
    clients: Vec<SimClient>,
    net: Network,
    /// The faults with their names resolved, indexed as in the scenario, then the faults
    /// injected during the run ([`World::inject_now`]).
    plan: Vec<Step>,
    /// The faults injected during the run, in order: plan index `sc.faults.len() + j`.
    injected: Vec<scenario::FaultAction>,
    /// Why the run stopped before its end (the event budget ran out), once it has.
    cut_short: Option<String>,
    /// The primary clients are told to use (replicated topology).
    primary: usize,
    lag_us: u64,
    repl_timeout_us: u64,
    sentinel_after: Option<u64>,
    /// Replication writes held back by a cut link, per (primary, replica).
    backlog: BTreeMap<(usize, usize), Vec<Effect>>,
    /// Messages that reached a link cut in `hold` mode (or a replication link), per
    /// (from, to), in arrival order: delivered in that order at the heal.
    held: BTreeMap<(Party, Party), Vec<Ev>>,
    /// Requests each client awaits a reply to, per (client, node) connection, in request
    /// order (indexed by [`World::conn_index`]).
    inflight: Vec<Vec<RequestId>>,
    /// Client–node connections (client, node) that lost bytes to a blackhole cut.
    lossy: BTreeSet<(usize, usize)>,
    /// Who generated which lock value, to name holders in key events (`None`: a value
    /// several clients use, such as a fixed token). Only looked up, never iterated in hash
    /// order (the fingerprint sorts it); FxHash has no random keys.
    owners: FxHashMap<SharedStr, Option<SharedStr>>,
    resource: Resource,
    next_wait: u64,
    records: Vec<Record>,
    outputs: Vec<Output>,
    /// The writes of the command a node is executing (kept to reuse its buffer).
    effects: Vec<Effect>,
    events: u64,
    /// Faults and client starts waiting for a condition.
    waiters: Vec<Waiter<'s>>,
}

impl<'s> World<'s> {
    /// The world of `sc` at time 0, with its faults and client starts on the queue; or why
    /// it cannot be played as written.
    pub(crate) fn new(sc: &'s Scenario, seed: u64) -> Result<World<'s>, Unplayable> {
        let default_clock = ClockSpec::default();
        let names = sc.topology.node_names();
        let plan = plan::resolve(sc, &names)?;
        Unplayable::unknown_clocks(sc, &names)?;
        let instances = sc.topology.lock_instances();
        let recipe = sc.recipe.clone().validated(instances)?;
        let node_count = names.len();
        let nodes = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| SimNode {
                clock: Clock::new(sc.clocks.nodes.get(&name).unwrap_or(&default_clock)),
                role: match sc.topology {
                    Topology::Replicated { .. } if i > 0 => Role::Replica { of: 0 },
                    _ => Role::Primary,
                },
                name: name.into(),
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
        let clients = (0..sc.clients.len())
            .map(|i| SimClient::new(Host::for_scenario(sc, i, seed, &recipe)))
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
            key: SharedStr::from(&sc.resource.key),
            now: 0,
            end: sc.duration_ms * MS,
            queue: EventQueue::default(),
            nodes,
            clients,
            net: Network::new(sc.network.clone(), streams::network(seed)),
            plan,
            injected: Vec::new(),
            cut_short: None,
            primary: 0,
            lag_us,
            repl_timeout_us,
            sentinel_after,
            backlog: BTreeMap::new(),
            held: BTreeMap::new(),
            inflight: vec![Vec::new(); sc.clients.len() * node_count],
            lossy: BTreeSet::new(),
            owners: FxHashMap::default(),
            resource: Resource::new(sc.resource.checks_fencing),
            next_wait: 0,
            records: Vec::with_capacity(1024),
            outputs: Vec::new(),
            effects: Vec::new(),
            events: 0,
            waiters: Vec::new(),
        };
        w.schedule_faults_and_starts();
        Ok(w)
    }

    /// Plays the run to its end or until `budget` events were processed.
    pub(crate) fn run(mut self, seed: u64, budget: u64) -> SimRun {
        self.begin(seed);
        self.advance(u64::MAX, budget);
        self.finish()
    }

    /// Records the run's start: the first record of every history.
    pub(crate) fn begin(&mut self, seed: u64) {
        self.record(run_started(self.sc, seed));
    }

    /// Processes, in order, every event due before true time `until` (µs) and not after the
    /// run's end, until `budget` events have been processed in all.
    pub(crate) fn advance(&mut self, until: u64, budget: u64) {
        while self.cut_short.is_none() {
            let Some(t) = self.queue.next_at() else {
                break;
            };
            if t >= until || t > self.end {
                break;
            }
            if self.events >= budget {
                self.cut_short = Some(format!(
                    "the simulator's event budget of {budget} events ran out at {} ms of {} ms",
                    t / MS,
                    self.end / MS
                ));
                self.now = t;
                break;
            }
            let Some((t, ev)) = self.queue.pop() else {
                break;
            };
            self.now = t;
            self.events += 1;
            self.dispatch(ev);
        }
    }

    /// The true time of the next event due no later than the end, if the run goes on.
    pub(crate) fn next_event_at(&self) -> Option<u64> {
        match self.cut_short {
            Some(_) => None,
            None => self.queue.next_at().filter(|t| *t <= self.end),
        }
    }

    /// Moves the time to `t` µs when nothing is due before it and it is within the run
    /// (what a fault injected now is stamped with).
    pub(crate) fn stand_at(&mut self, t: u64) {
        let nothing_before = self.queue.next_at().is_none_or(|next| next >= t);
        if self.cut_short.is_none() && nothing_before && t <= self.end {
            self.now = self.now.max(t);
        }
    }

    /// When the run ends, true time in µs.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// The current true time, µs.
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// Ends the run where it stands: what never happened is recorded, then the end.
    pub(crate) fn finish(mut self) -> SimRun {
        match self.cut_short.clone() {
            Some(reason) => self.record(H::Inconclusive {
                reason: format!("cut short: {reason}"),
            }),
            None => {
                self.now = self.end;
                self.conditions_not_seen_by_the_end();
            }
        }
        self.record(H::RunEnded {});
        SimRun {
            records: self.records,
            events: self.events,
            cut_short: self.cut_short,
        }
    }

    /// Where the connection of client `c` to node `node` sits in per-connection tables.
    fn conn_index(&self, c: usize, node: usize) -> usize {
        c * self.nodes.len() + node
    }

    /// Records what a fault was seen to do.
    fn observe(&mut self, effect: Seen) {
        self.record(H::Observed(effect));
    }

    /// Appends `event` to the history at the current time and wakes whatever waits for it
    /// (which only puts events on the queue).
    fn record(&mut self, event: H) {
        self.records.push(Record {
            t_us: self.now,
            event,
        });
        self.wake_waiters();
    }

    /// Carries out one event: routes it to the concept it belongs to. A message meets the
    /// cuts of its link first, at delivery (`gate`).
    fn dispatch(&mut self, ev: Ev) {
        let Some(ev) = self.gate(ev) else {
            return;
        };
        match ev {
            Ev::Fault(i) => self.inject(i),
            Ev::Heal(i) => self.heal(i),
            Ev::ResumeNode(n) => {
                let node = self.nodes[n].name.to_string();
                self.record(H::Heal(Healed::ResumeNode { node }));
                self.resume_node(n);
            }
            Ev::ResumeClient(c) => self.resume_client(c),
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
                if !self.client_ready(client, &ev)
                    || epoch != self.clients[client].host.clock().epoch
                {
                    return;
                }
                self.client_timer(client, timer);
            }
            Ev::Reply {
                node,
                client,
                request,
                ..
            } => {
                if !self.client_ready(client, &ev) {
                    return;
                }
                let at = self.conn_index(client, node);
                let waiting = &mut self.inflight[at];
                if let Ok(i) = waiting.binary_search(&request) {
                    waiting.remove(i);
                }
                let Ev::Reply { reply, .. } = ev else {
                    unreachable!("matched as a reply")
                };
                self.feed(client, Input::Lock(LockEvent::Reply { request, reply }));
            }
            Ev::Refused {
                client, request, ..
            } => {
                if !self.client_ready(client, &ev) {
                    return;
                }
                let Ev::Refused { why, .. } = ev else {
                    unreachable!("matched as a refusal")
                };
                let reply = lock_core::Reply::Error(why);
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
            Ev::Request { node, .. } => {
                self.command_delivered(&ev);
                self.node_event(node, ev);
            }
            Ev::ReplicaApply { replica: node, .. }
            | Ev::ReplicaAck { primary: node, .. }
            | Ev::WaitTimeout { node, .. } => self.node_event(node, ev),
            Ev::ReplicateSend { .. } => self.replicate_send(ev),
            Ev::SentinelCheck { node, down_since } => self.sentinel_check(node, down_since),
            Ev::ConditionDeadline(i) => self.condition_deadline(i),
            Ev::ReplicaTimeout {
                replica,
                down_since,
            } => self.replica_timeout(replica, down_since),
        }
    }
}
