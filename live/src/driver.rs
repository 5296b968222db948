//! Playing a scenario on real Redis: one tokio task per client running the shared client
//! loop, one task for the fault schedule, the protected resource in-process, and a history
//! stamped with the harness's monotonic clock.

use crate::conn::NodeConn;
use crate::{LiveError, Provider, Timeouts};
use checker::{Event as H, Healed, Record};
use lock_core::{Event as LockEvent, Reply, RequestId, TimerId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scenario::{ClockSpec, FaultAction, Scenario, Topology};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use workload::clock::Clock;
use workload::{ClientLoop, Input, Output, Resource};

/// What a real run produced.
#[derive(Debug, Clone)]
pub struct LiveRun {
    /// The history, in true-time order.
    pub records: Vec<Record>,
    /// Things that went wrong during the run (a fault that failed, a server that died on its
    /// own); the history is still complete up to the end and can be checked.
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

/// The history being written, stamped with the harness's monotonic clock.
struct Recorder {
    start: Instant,
    records: Mutex<Vec<Record>>,
}

impl Recorder {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn record(&self, event: H) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let t_us = self.now_us();
        records.push(Record { t_us, event });
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
    for (i, (spec, conns)) in scenario.clients.iter().zip(conns).enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        inboxes.push(tx.clone());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(100 + i as u64);
        let client = LiveClient {
            lp: ClientLoop::new(
                spec.clone(),
                scenario.recipe.clone(),
                &scenario.resource.key,
                instances,
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
        tasks.push(tokio::spawn(client.run(rx, start_at)));
    }
    let problems = Arc::new(Mutex::new(Vec::new()));
    let faults = tokio::spawn(inject_faults(
        scenario.clone(),
        provider.clone(),
        rec.clone(),
        inboxes,
        problems.clone(),
    ));
    tokio::time::sleep_until((rec.start + Duration::from_millis(scenario.duration_ms)).into())
        .await;
    faults.abort();
    for t in &tasks {
        t.abort();
    }
    rec.record(H::RunEnded {});
    let records = std::mem::take(&mut *rec.records.lock().unwrap_or_else(|e| e.into_inner()));
    let mut problems = std::mem::take(&mut *problems.lock().unwrap_or_else(|e| e.into_inner()));
    let names: BTreeMap<String, String> = nodes.into_iter().map(|(n, u)| (u, n)).collect();
    for (url, line) in std::mem::take(&mut *sink.lock().unwrap_or_else(|e| e.into_inner())) {
        let node = names.get(&url).map(String::as_str).unwrap_or("?");
        problems.push(format!("{node}: {line}"));
    }
    Ok(LiveRun { records, problems })
}

async fn inject_faults(
    scenario: Scenario,
    provider: Arc<dyn Provider>,
    rec: Arc<Recorder>,
    inboxes: Vec<mpsc::UnboundedSender<Msg>>,
    problems: Arc<Mutex<Vec<String>>>,
) {
    let mut faults = scenario.faults.clone();
    faults.sort_by_key(|f| f.at_ms);
    let client = |name: &str| scenario.clients.iter().position(|c| c.name == name);
    for f in faults {
        tokio::time::sleep_until((rec.start + Duration::from_millis(f.at_ms)).into()).await;
        rec.record(H::Fault(f.action.injected()));
        let p = provider.clone();
        let result = match f.action.clone() {
            FaultAction::PauseClient { client: c, for_ms } => {
                send(
                    &inboxes,
                    client(&c),
                    Msg::Pause(Duration::from_millis(for_ms)),
                );
                let rec = rec.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(for_ms)).await;
                    rec.record(H::Heal(Healed::ResumeClient { client: c }));
                });
                Ok(())
            }
            FaultAction::CrashClient(c) => {
                send(&inboxes, client(&c), Msg::Crash);
                Ok(())
            }
            FaultAction::ClockJump { target, by_ms } if client(&target).is_some() => {
                send(
                    &inboxes,
                    client(&target),
                    Msg::ClockJump(by_ms.saturating_mul(1000)),
                );
                Ok(())
            }
            FaultAction::PauseNode { node, for_ms } => {
                let paused = blocking(p.clone(), {
                    let node = node.clone();
                    move |p| p.pause(&node)
                })
                .await;
                let rec = rec.clone();
                let problems = problems.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(for_ms)).await;
                    rec.record(H::Heal(Healed::ResumeNode { node: node.clone() }));
                    if let Err(e) = blocking(p, move |p| p.resume(&node)).await {
                        problems
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(e.to_string());
                    }
                });
                paused
            }
            FaultAction::Crash(node) => blocking(p, move |p| p.crash(&node)).await,
            FaultAction::Restart { node, persistence } => {
                blocking(p, move |p| p.restart(&node, persistence)).await
            }
            FaultAction::Promote(node) => blocking(p, move |p| p.promote(&node)).await,
            FaultAction::Partition {
                between,
                and,
                for_ms,
            } => {
                if let Some(ms) = for_ms {
                    let rec = rec.clone();
                    let healed = Healed::Partition {
                        between: between.clone(),
                        and: and.clone(),
                    };
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        rec.record(H::Heal(healed));
                    });
                }
                blocking(p, move |p| p.partition(&between, &and, for_ms)).await
            }
            other => Err(LiveError::Fault {
                fault: other.describe(),
                reason: "not supported by this backend".into(),
            }),
        };
        if let Err(e) = result {
            problems
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(e.to_string());
        }
    }
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
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Msg>, start_at: Instant) {
        tokio::time::sleep_until(start_at.into()).await;
        self.feed(Input::Start);
        while !self.lp.is_done() && !self.lp.is_crashed() {
            let wake = self.next_deadline();
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(Msg::Reply { request, reply }) => self.feed(Input::Lock(LockEvent::Reply { request, reply })),
                    Some(Msg::Pause(d)) => tokio::time::sleep(d).await,
                    Some(Msg::Crash) | None => break,
                    Some(Msg::ClockJump(by)) => self.clock.jump(self.rec.now_us(), by),
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
