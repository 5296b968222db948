//! Playing a scenario on real Redis: one tokio task per client running the shared client
//! loop, one task for the fault schedule, the protected resource in-process, and a history
//! stamped with the harness's monotonic clock.

use crate::conn::NodeConn;
use crate::{LiveError, Provider, Timeouts};
use checker::{Effect, Event as H, Healed, PromotedBy, Record};
use lock_core::{Event as LockEvent, Reply, RequestId, TimerId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scenario::{After, ClockSpec, Condition, FaultAction, Scenario, Topology};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use workload::clock::Clock;
use workload::{ClientLoop, Input, Output, Resource};

/// What a real run produced.
#[derive(Debug, Clone)]
pub struct LiveRun {
    /// The history, in true-time order.
    pub records: Vec<Record>,
    /// Connections that broke during the run, per node (whether or not a fault meant it); the
    /// history is still complete up to the end and can be checked. What makes the run
    /// inconclusive is recorded in the history itself.
    pub problems: Vec<String>,
}

/// Refuses a scenario that `provider` cannot play as written.
pub fn check_support(scenario: &Scenario, provider: &dyn Provider) -> Result<(), LiveError> {
    let supports = |f: &FaultAction| provider.supports(f);
    check_support_of(
        scenario,
        provider.backend(),
        &supports,
        provider.nodes().len(),
    )
}

/// Refuses, before any server is started, a scenario that a backend named `backend` — which
/// can inject the faults `supports` accepts and offers `nodes` servers — cannot play.
pub fn check_support_of(
    scenario: &Scenario,
    backend: &str,
    supports: &dyn Fn(&FaultAction) -> Result<(), String>,
    nodes: usize,
) -> Result<(), LiveError> {
    let backend = backend.to_string();
    let refuse = |what: String| {
        Err(LiveError::Unsupported {
            backend: backend.clone(),
            what,
        })
    };
    if let Some(node) = scenario.clocks.nodes.keys().next() {
        return refuse(format!(
            "clocks.nodes.{node}: a real server's clock cannot be set (client clocks can)"
        ));
    }
    if scenario.network != scenario::Network::default() {
        return refuse("network: latency and loss cannot be shaped between local processes".into());
    }
    if let Topology::Replicated {
        replication_lag_ms,
        sentinel,
        ..
    } = &scenario.topology
    {
        if *replication_lag_ms > 0.0 {
            return refuse(
                "topology.replicated.replication_lag_ms: replication lag cannot be imposed on real servers (pause the replica instead)"
                    .into(),
            );
        }
        if sentinel.is_some() && backend == "processes" {
            return refuse(
                "topology.replicated.sentinel: Sentinel failover needs the containers backend"
                    .into(),
            );
        }
    }
    let clients: Vec<&str> = scenario.clients.iter().map(|c| c.name.as_str()).collect();
    for (i, f) in scenario.faults.iter().enumerate() {
        let client_side = match &f.action {
            FaultAction::PauseClient { .. } | FaultAction::CrashClient(_) => true,
            FaultAction::ClockJump { target, .. } => clients.contains(&target.as_str()),
            _ => false,
        };
        if client_side && backend != "url" {
            continue;
        }
        if let Err(why) = supports(&f.action) {
            return refuse(format!("faults[{i}]: {why}"));
        }
    }
    let want = if backend == "url" {
        scenario.topology.lock_instances()
    } else {
        scenario.topology.node_names().len()
    };
    if nodes != want {
        return refuse(format!(
            "the scenario needs {want} Redis instances, {nodes} given"
        ));
    }
    Ok(())
}

/// The history being written, stamped with the harness's monotonic clock. Conditions
/// (`after`) wait on it.
struct Recorder {
    start: Instant,
    records: Mutex<Vec<Record>>,
    /// Woken on every record, for [`Recorder::wait_for`].
    grew: tokio::sync::Notify,
    /// What is waiting for which condition now (`faults[1] (crash primary)` → `A acquiring
    /// the lock`); still waiting when the run ends makes it inconclusive.
    pending: Mutex<BTreeMap<String, Condition>>,
}

impl Recorder {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn record(&self, event: H) {
        self.record_at(Instant::now(), event);
    }

    /// Records `event` as of `at` (an observation made a little earlier); the history is put in
    /// time order when the run ends.
    fn record_at(&self, at: Instant, event: H) {
        let t_us = at.saturating_duration_since(self.start).as_micros() as u64;
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.push(Record { t_us, event });
        drop(records);
        self.grew.notify_waiters();
    }

    fn observe(&self, effect: Effect) {
        self.record(H::Observed(effect));
    }

    fn inconclusive(&self, reason: String) {
        self.record(H::Inconclusive { reason });
    }

    /// Waits until the history shows `condition`, at the latest until `until`; the time it was
    /// first seen.
    async fn wait_for(&self, condition: &Condition, until: Instant) -> Option<u64> {
        let mut scanned = 0;
        loop {
            let grew = self.grew.notified();
            tokio::pin!(grew);
            grew.as_mut().enable();
            {
                let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(r) = records[scanned..]
                    .iter()
                    .find(|r| condition.met_by(&r.event))
                {
                    return Some(r.t_us);
                }
                scanned = records.len();
            }
            if tokio::time::timeout_at(until.into(), grew).await.is_err() {
                return None;
            }
        }
    }

    /// Waits for `after` on behalf of `what` (`faults[1] (crash primary)`), from `at`; records
    /// why the run is inconclusive when it is not seen in time. The instant to act at.
    async fn wait_after(&self, after: &After, at: Instant, what: &str) -> Option<Instant> {
        let until = at + Duration::from_millis(after.timeout_ms);
        let pending = || self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending().insert(what.to_string(), after.condition.clone());
        let seen = self.wait_for(&after.condition, until).await;
        pending().remove(what);
        match seen {
            Some(t) => {
                let seen = self.start + Duration::from_micros(t);
                Some(at.max(seen + Duration::from_millis(after.delay_ms)))
            }
            None => {
                let within = format!("within {} ms", after.timeout_ms);
                self.inconclusive(after.condition.not_seen(what, &within));
                None
            }
        }
    }
}

enum Msg {
    Reply { request: RequestId, reply: Reply },
    Pause(Duration),
    Crash,
    ClockJump(i64),
}

/// Plays `scenario` against `provider`'s servers with `seed` for tokens, jitter and work
/// times, and returns the history.
pub async fn play(
    scenario: &Scenario,
    provider: Arc<dyn Provider>,
    seed: u64,
    timeouts: Timeouts,
) -> Result<LiveRun, LiveError> {
    check_support(scenario, provider.as_ref())?;
    let baseline = Arc::strong_count(&provider);
    let nodes = provider.nodes();
    let instances = if provider.backend() == "url" {
        nodes.len()
    } else {
        scenario.topology.lock_instances()
    };
    // Every client's connections, opened up front so an unreachable server fails fast.
    let sink: crate::conn::ProblemSink = Arc::default();
    let start = Instant::now();
    let mut conns: Vec<Vec<Arc<NodeConn>>> = Vec::new();
    for _ in &scenario.clients {
        let mut mine = Vec::new();
        for (_, url) in &nodes {
            let c =
                Arc::new(NodeConn::new(url.clone(), timeouts).reporting_to(sink.clone(), start));
            c.connect().await.map_err(|reason| LiveError::Unreachable {
                url: url.clone(),
                reason,
            })?;
            mine.push(c);
        }
        conns.push(mine);
    }

    let rec = Arc::new(Recorder {
        start,
        records: Mutex::new(Vec::new()),
        grew: tokio::sync::Notify::new(),
        pending: Mutex::new(BTreeMap::new()),
    });
    rec.record(H::RunStarted {
        scenario: scenario.name.clone(),
        backend: provider.backend().to_string(),
        seed,
        resource: scenario.resource.key.clone(),
        ttl_ms: scenario.recipe.ttl_ms,
        clocks: scenario.clocks.starts(),
        checker: scenario.checker.clone(),
    });
    let resource = Arc::new(Mutex::new(Resource::new(scenario.resource.checks_fencing)));
    let mut inboxes = Vec::new();
    let mut tasks = Vec::new();
    let (done_before, faults_done) = watch::channel(0);
    for (i, (spec, conns)) in scenario.clients.iter().zip(conns).enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        inboxes.push(tx.clone());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(100 + i as u64);
        let client = LiveClient {
            lp: ClientLoop::new(
                spec.clone(),
                scenario.recipe.clone().validated(instances).map_err(|e| {
                    LiveError::Unsupported {
                        backend: provider.backend().to_string(),
                        what: format!("recipe.{e}"),
                    }
                })?,
                &scenario.resource.key,
            ),
            rng,
            clock: Clock::new(
                scenario
                    .clocks
                    .clients
                    .get(&spec.name)
                    .unwrap_or(&ClockSpec::default()),
            ),
            conns,
            provider: provider.clone(),
            rec: rec.clone(),
            resource: resource.clone(),
            tx,
            lock_timers: BTreeMap::new(),
            work: None,
            think: None,
        };
        let start_at = rec.start + Duration::from_millis(spec.start_ms);
        let after = spec
            .after
            .clone()
            .map(|a| (a, format!("clients[{i}] ({}) start", spec.name)));
        let start = Start {
            at: start_at,
            ms: spec.start_ms,
            after,
            faults_done: faults_done.clone(),
        };
        tasks.push(tokio::spawn(client.run(rx, start)));
    }
    let end = rec.start + Duration::from_millis(scenario.duration_ms);
    let ctx = FaultCtx {
        provider: provider.clone(),
        rec: rec.clone(),
        inboxes,
        clients: scenario.clients.iter().map(|c| c.name.clone()).collect(),
        end,
    };
    let faults = tokio::spawn(inject_faults(scenario.clone(), ctx, done_before));
    let replicated = matches!(scenario.topology, Topology::Replicated { .. });
    let watcher = tokio::spawn(watch(provider.clone(), rec.clone(), replicated, end));
    tokio::time::sleep_until(end.into()).await;
    faults.abort();
    for t in &tasks {
        t.abort();
    }
    let _ = faults.await;
    let _ = watcher.await; // it stops on its own at `end`
    for t in tasks {
        let _ = t.await;
    }
    // Work on the blocking pool (a fault's confirmation, a probe) cannot be aborted: wait
    // until every clone of the provider it holds is back, so the caller's handle is the last
    // one again when this returns (bounded by the probes' own timeouts).
    let settle_by = Instant::now() + 2 * CONFIRM_WITHIN;
    while Arc::strong_count(&provider) > baseline && Instant::now() < settle_by {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // What was still waiting for its condition never happened.
    let pending = std::mem::take(&mut *rec.pending.lock().unwrap_or_else(|e| e.into_inner()));
    for (what, condition) in pending {
        rec.inconclusive(condition.not_seen(&what, "by the end of the run"));
    }
    // A server that stopped answering although no fault touched it died on its own.
    let touched = touched_nodes(scenario);
    let names: BTreeMap<String, String> = nodes.into_iter().map(|(n, u)| (u, n)).collect();
    let mut problems = Vec::new();
    for (url, line) in std::mem::take(&mut *sink.lock().unwrap_or_else(|e| e.into_inner())) {
        let node = names.get(&url).map(String::as_str).unwrap_or("?");
        if !touched.contains(node) {
            rec.inconclusive(format!("{node}, which no fault touched, {line}"));
        }
        problems.push(format!("{node}: {line}"));
    }
    rec.record(H::RunEnded {});
    let mut records = std::mem::take(&mut *rec.records.lock().unwrap_or_else(|e| e.into_inner()));
    records.sort_by_key(|r| r.t_us);
    Ok(LiveRun { records, problems })
}

/// The nodes (and clients) a scenario's faults act on, so a connection to them may break on
/// purpose.
fn touched_nodes(scenario: &Scenario) -> std::collections::BTreeSet<String> {
    scenario
        .faults
        .iter()
        .flat_map(|f| f.action.targets())
        .cloned()
        .collect()
}

/// How often the watcher looks at the servers.
const WATCH_EVERY: Duration = Duration::from_millis(25);

/// Records what happens to the servers without a fault doing it directly, until `end`: the
/// promotions Sentinel makes, (replicated topologies) the primary dropping a replica, and
/// servers that die on their own (which makes the run inconclusive).
async fn watch(provider: Arc<dyn Provider>, rec: Arc<Recorder>, replicated: bool, end: Instant) {
    let names: Vec<String> = provider.nodes().into_iter().map(|(n, _)| n).collect();
    // The primary last looked at, and the replicas it streamed to then.
    let mut linked: Option<(String, std::collections::BTreeSet<String>)> = None;
    while Instant::now() < end {
        let p = provider.clone();
        let names = names.clone();
        let primary_was = linked.as_ref().map(|(p, _)| p.clone());
        let looked = tokio::task::spawn_blocking(move || {
            let seen = p.take_observations();
            let died = p.died_on_their_own();
            let primary = names.get(p.route(0)).cloned().unwrap_or_default();
            let replicas = if replicated {
                p.admin_addr(&primary)
                    .and_then(|a| crate::observe::connected_replicas(&a).ok())
                    .map(|list| {
                        list.iter()
                            .filter_map(|(ip, port)| p.replica_named_by(ip, *port))
                            .collect::<std::collections::BTreeSet<String>>()
                    })
            } else {
                None
            };
            (Instant::now(), seen, died, primary, replicas)
        })
        .await;
        let Ok((at, seen, died, primary, replicas)) = looked else {
            break;
        };
        for (node, why) in died {
            rec.record_at(at, H::Observed(Effect::NodeDown { node: node.clone() }));
            rec.record_at(
                at,
                H::Inconclusive {
                    reason: format!("{node}, which no fault stopped, {why}"),
                },
            );
        }
        for (t, effect) in seen {
            rec.record_at(t, H::Observed(effect));
        }
        if let Some(now) = replicas {
            if let Some((_, before)) = linked
                .as_ref()
                .filter(|_| primary_was.as_ref() == Some(&primary))
            {
                for gone in before.difference(&now) {
                    rec.record_at(
                        at,
                        H::Observed(Effect::ReplicaDropped {
                            primary: primary.clone(),
                            replica: gone.clone(),
                        }),
                    );
                }
            }
            linked = Some((primary, now));
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// What the fault tasks share.
#[derive(Clone)]
struct FaultCtx {
    provider: Arc<dyn Provider>,
    rec: Arc<Recorder>,
    inboxes: Vec<mpsc::UnboundedSender<Msg>>,
    clients: Vec<String>,
    /// When the run ends: nothing is injected or healed after it.
    end: Instant,
}

/// How long a fault's effect may take to be seen before the run is inconclusive.
const CONFIRM_WITHIN: Duration = Duration::from_secs(10);

/// Injects the schedule. `done_before` tells the clients how far it got: every fault without
/// `after` and with `at_ms` below it has been carried out (and its effect seen), so a client
/// starting at `start_ms` waits while `start_ms >= done_before` — faults apply before the
/// clients that start in the same millisecond, as on the simulator.
async fn inject_faults(scenario: Scenario, ctx: FaultCtx, done_before: watch::Sender<u64>) {
    let mut faults: Vec<(usize, scenario::Fault)> =
        scenario.faults.iter().cloned().enumerate().collect();
    faults.sort_by_key(|(_, f)| f.at_ms);
    let timed: Vec<u64> = faults
        .iter()
        .filter(|(_, f)| f.after.is_none())
        .map(|(_, f)| f.at_ms)
        .collect();
    let mut timed_left = timed.iter().skip(1);
    done_before.send_replace(timed.first().copied().unwrap_or(u64::MAX));
    // Dropped with this task when the run ends: what still waits is then aborted.
    let mut waiting = tokio::task::JoinSet::new();
    for (i, f) in faults {
        let at = ctx.rec.start + Duration::from_millis(f.at_ms);
        let what = format!("faults[{i}] ({})", f.action.describe());
        match f.after.clone() {
            // A fault that waits for a condition waits on its own: the rest go on.
            Some(after) => {
                let ctx = ctx.clone();
                waiting.spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    if let Some(when) = ctx.rec.wait_after(&after, at, &what).await {
                        tokio::time::sleep_until(when.into()).await;
                        inject(&f.action, &what, &ctx).await;
                    }
                });
            }
            None => {
                tokio::time::sleep_until(at.into()).await;
                inject(&f.action, &what, &ctx).await;
                done_before.send_replace(timed_left.next().copied().unwrap_or(u64::MAX));
            }
        }
    }
    while waiting.join_next().await.is_some() {}
}

/// Carries out one fault, records it and what was seen of its effect; a fault that fails or
/// whose effect is not seen makes the run inconclusive.
async fn inject(action: &FaultAction, what: &str, ctx: &FaultCtx) {
    let rec = &ctx.rec;
    rec.record(H::Fault(action.injected()));
    let client = |name: &str| ctx.clients.iter().position(|c| c == name);
    let p = ctx.provider.clone();
    let result: Result<(), String> = match action.clone() {
        FaultAction::PauseClient { client: c, for_ms } => {
            send(
                &ctx.inboxes,
                client(&c),
                Msg::Pause(Duration::from_millis(for_ms)),
            );
            Ok(())
        }
        FaultAction::CrashClient(c) => {
            send(&ctx.inboxes, client(&c), Msg::Crash);
            Ok(())
        }
        FaultAction::ClockJump { target, by_ms } if client(&target).is_some() => {
            send(
                &ctx.inboxes,
                client(&target),
                Msg::ClockJump(by_ms.saturating_mul(1000)),
            );
            Ok(())
        }
        FaultAction::PauseNode { node, for_ms } => {
            let paused = confirmed(rec, p.clone(), node.clone(), |p, n| {
                p.pause(n).map_err(|e| e.to_string())?;
                p.confirm_paused(n, CONFIRM_WITHIN)?;
                Ok(vec![Effect::NodePaused { node: n.into() }])
            })
            .await;
            if let Some(ms) = for_ms {
                let rec = rec.clone();
                let what = what.to_string();
                let end = ctx.end;
                tokio::spawn(async move {
                    let heal = Instant::now() + Duration::from_millis(ms);
                    tokio::time::sleep_until(heal.min(end).into()).await;
                    if heal > end {
                        return; // the run is over: the provider stops the node anyway
                    }
                    rec.record(H::Heal(Healed::ResumeNode { node: node.clone() }));
                    let resumed = resume(&rec, p, node).await;
                    settle(&rec, &format!("the end of {what}"), resumed);
                });
            }
            paused
        }
        FaultAction::ResumeNode(node) => resume(rec, p, node).await,
        FaultAction::Crash(node) => {
            confirmed(rec, p, node, |p, n| {
                p.crash(n).map_err(|e| e.to_string())?;
                let addr = p.admin_addr(n).ok_or("cannot look at the node")?;
                crate::observe::wait_down(&addr, CONFIRM_WITHIN)?;
                Ok(vec![Effect::NodeDown { node: n.into() }])
            })
            .await
        }
        FaultAction::Restart { node, persistence } => {
            confirmed(rec, p, node, move |p, n| {
                p.restart(n, persistence).map_err(|e| e.to_string())?;
                let addr = p.admin_addr(n).ok_or("cannot look at the node")?;
                crate::observe::wait_up(&addr, CONFIRM_WITHIN)?;
                Ok(vec![Effect::NodeUp { node: n.into() }])
            })
            .await
        }
        FaultAction::Promote(node) => {
            confirmed(rec, p, node, |p, n| {
                p.promote(n).map_err(|e| e.to_string())?;
                let addr = p.admin_addr(n).ok_or("cannot look at the node")?;
                crate::observe::wait_primary(&addr, CONFIRM_WITHIN)?;
                Ok(vec![Effect::Promoted {
                    node: n.into(),
                    by: PromotedBy::Manual,
                }])
            })
            .await
        }
        FaultAction::Partition {
            between,
            and,
            for_ms,
        } => {
            if let Some(ms) = for_ms {
                let rec = rec.clone();
                let (b, a) = (between.clone(), and.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    // The provider heals the cut itself; nothing here sees it happen, so no
                    // `reconnected` is claimed.
                    rec.record(H::Heal(Healed::Partition { between: b, and: a }));
                });
            }
            let effect = Effect::Partitioned {
                between: between.clone(),
                and: and.clone(),
            };
            blocking(p, move |p| p.partition(&between, &and, for_ms))
                .await
                .map(|()| rec.observe(effect))
                .map_err(|e| e.to_string())
        }
        FaultAction::ClockJump { .. } => Err("not supported by this backend".into()),
    };
    settle(rec, what, result);
}

/// Thaws `node` and waits until it answers again.
async fn resume(rec: &Recorder, p: Arc<dyn Provider>, node: String) -> Result<(), String> {
    confirmed(rec, p, node, |p, n| {
        p.resume(n).map_err(|e| e.to_string())?;
        let addr = p.admin_addr(n).ok_or("cannot look at the node")?;
        crate::observe::wait_up(&addr, CONFIRM_WITHIN)?;
        Ok(vec![Effect::NodeUp { node: n.into() }])
    })
    .await
}

/// Records why the run is inconclusive when `result` is an error.
fn settle(rec: &Recorder, what: &str, result: Result<(), String>) {
    if let Err(why) = result {
        rec.inconclusive(format!("{what} did not take effect: {why}"));
    }
}

/// Runs `act` on `node` on the blocking pool and records the effects it saw, stamped when it
/// returned.
async fn confirmed(
    rec: &Recorder,
    p: Arc<dyn Provider>,
    node: String,
    act: impl FnOnce(&dyn Provider, &str) -> Result<Vec<Effect>, String> + Send + 'static,
) -> Result<(), String> {
    let seen = tokio::task::spawn_blocking(move || act(p.as_ref(), &node))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))?;
    for effect in seen {
        rec.observe(effect);
    }
    Ok(())
}

fn send(inboxes: &[mpsc::UnboundedSender<Msg>], client: Option<usize>, msg: Msg) {
    if let Some(tx) = client.and_then(|c| inboxes.get(c)) {
        let _ = tx.send(msg);
    }
}

async fn blocking(
    p: Arc<dyn Provider>,
    f: impl FnOnce(&dyn Provider) -> Result<(), LiveError> + Send + 'static,
) -> Result<(), LiveError> {
    tokio::task::spawn_blocking(move || f(p.as_ref()))
        .await
        .unwrap_or_else(|e| Err(LiveError::Io(std::io::Error::other(e.to_string()))))
}

/// When a client task starts.
struct Start {
    /// `start_ms` as an instant.
    at: Instant,
    /// `start_ms`.
    ms: u64,
    /// The condition to wait for, and the client's description for messages.
    after: Option<(After, String)>,
    /// How far the fault schedule got (see [`inject_faults`]).
    faults_done: watch::Receiver<u64>,
}

/// One client task's state.
struct LiveClient {
    lp: ClientLoop,
    rng: ChaCha8Rng,
    clock: Clock,
    conns: Vec<Arc<NodeConn>>,
    provider: Arc<dyn Provider>,
    rec: Arc<Recorder>,
    resource: Arc<Mutex<Resource>>,
    tx: mpsc::UnboundedSender<Msg>,
    lock_timers: BTreeMap<TimerId, u64>,
    work: Option<(u64, u64)>,
    think: Option<(u64, u64)>,
}

impl LiveClient {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Msg>, mut start: Start) {
        tokio::time::sleep_until(start.at.into()).await;
        // The faults scheduled up to this millisecond come first (an aborted schedule: go on).
        let _ = start.faults_done.wait_for(|b| start.ms < *b).await;
        if let Some((after, what)) = start.after {
            match self.rec.wait_after(&after, start.at, &what).await {
                Some(when) => tokio::time::sleep_until(when.into()).await,
                None => return,
            }
        }
        self.feed(Input::Start);
        while !self.lp.is_done() && !self.lp.is_crashed() {
            let wake = self.next_deadline();
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(Msg::Reply { request, reply }) => self.feed(Input::Lock(LockEvent::Reply { request, reply })),
                    Some(Msg::Pause(d)) => self.pause(d).await,
                    Some(Msg::Crash) | None => break,
                    Some(Msg::ClockJump(by)) => {
                        let now = self.rec.now_us();
                        self.clock.jump(now, by);
                        self.rec.observe(Effect::ClockSet {
                            target: self.lp.name().to_string(),
                            offset_ms: (self.clock.local(now) as f64 - now as f64) / 1000.0,
                        });
                    }
                },
                _ = tokio::time::sleep_until(wake.into()) => self.fire_due_timers(),
            }
        }
        if !self.lp.is_done() || self.lp.is_crashed() {
            self.rec.record(H::ClientCrashed {
                client: self.lp.name().to_string(),
            });
        }
    }

    /// A stop-the-world pause: the task does nothing at all for `d`.
    async fn pause(&self, d: Duration) {
        let client = self.lp.name().to_string();
        self.rec.observe(Effect::ClientPaused {
            client: client.clone(),
        });
        tokio::time::sleep(d).await;
        self.rec.record(H::Heal(Healed::ResumeClient {
            client: client.clone(),
        }));
        self.rec.observe(Effect::ClientResumed { client });
    }

    fn next_deadline(&self) -> Instant {
        let now = self.rec.now_us();
        let earliest = self
            .lock_timers
            .values()
            .copied()
            .chain(self.work.map(|w| w.1))
            .chain(self.think.map(|t| t.1))
            .min();
        match earliest {
            Some(local) => self.rec.start + Duration::from_micros(self.clock.true_at(local, now)),
            None => self.rec.start + Duration::from_secs(1 << 20),
        }
    }

    fn fire_due_timers(&mut self) {
        let local = self.clock.local(self.rec.now_us());
        let mut due: Vec<(u64, Input)> = self
            .lock_timers
            .iter()
            .filter(|(_, at)| **at <= local)
            .map(|(t, at)| (*at, Input::Lock(LockEvent::Timer(*t))))
            .collect();
        for (t, _) in due.iter().filter_map(|(_, i)| match i {
            Input::Lock(LockEvent::Timer(t)) => Some((*t, ())),
            _ => None,
        }) {
            self.lock_timers.remove(&t);
        }
        if let Some((gen, at)) = self.work.filter(|w| w.1 <= local) {
            self.work = None;
            due.push((at, Input::WorkDone { gen }));
        }
        if let Some((gen, at)) = self.think.filter(|t| t.1 <= local) {
            self.think = None;
            due.push((at, Input::ThinkDone { gen }));
        }
        due.sort_by_key(|(at, _)| *at);
        for (_, input) in due {
            self.feed(input);
        }
    }

    fn feed(&mut self, input: Input) {
        let mut queue = vec![input];
        let mut out = Vec::new();
        while let Some(input) = queue.pop() {
            let local = self.clock.local(self.rec.now_us());
            self.lp.handle(input, local, &mut self.rng, &mut out);
            for o in out.drain(..) {
                match o {
                    Output::Send {
                        instance,
                        request,
                        command,
                    } => {
                        let conn = self.conns[self.provider.route(instance)].clone();
                        let tx = self.tx.clone();
                        tokio::spawn(async move {
                            let reply = conn.send(&command).await;
                            let _ = tx.send(Msg::Reply { request, reply });
                        });
                    }
                    Output::LockTimer { timer, at } => {
                        self.lock_timers.insert(timer, at);
                    }
                    Output::WorkTimer { gen, at } => self.work = Some((gen, at)),
                    Output::ThinkTimer { gen, at } => self.think = Some((gen, at)),
                    Output::Write {
                        commit,
                        fencing_token,
                    } => {
                        let client = self.lp.name().to_string();
                        let accepted = self
                            .resource
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .write(&client, fencing_token);
                        self.rec.record(H::Write {
                            client,
                            fencing_token,
                            accepted,
                        });
                        if commit {
                            queue.push(Input::CommitAcked);
                        }
                    }
                    Output::Record(event) => self.rec.record(event),
                    Output::Crash => {}
                }
            }
        }
    }
}
