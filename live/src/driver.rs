//! Playing a scenario on real Redis: one tokio task per client running the shared client
//! loop, one task for the fault schedule, the protected resource in-process, and a history
//! stamped with the harness's monotonic clock.

mod client;
mod external;
mod forwarded;
mod record;
mod support;

use client::{LiveClient, Msg, Start};
pub use external::{adapter_exists, adapter_names, adapters_dir};
use record::Recorder;
pub use support::check_support;
pub(crate) use support::check_support_of;

use crate::conn::NodeConn;
use crate::{Backend, FaultError, LiveError, Provider, Timeouts};
use checker::{Effect, Event as H, Healed, PromotedBy, Record};
use scenario::{FaultAction, Scenario, Topology};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use workload::{Host, Resource};

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

/// Plays `scenario` against `provider`'s servers with `seed` for tokens, jitter and work
/// times, and returns the history.
pub async fn play(
    scenario: &Scenario,
    provider: Arc<dyn Provider>,
    seed: u64,
    timeouts: Timeouts,
) -> Result<LiveRun, LiveError> {
    check_support(scenario, provider.as_ref())?;
    let timeouts = timeouts.for_scenario(scenario);
    let baseline = Arc::strong_count(&provider);
    let nodes = provider.nodes();
    let instances = if provider.backend() == Backend::Url {
        nodes.len()
    } else {
        scenario.topology.lock_instances()
    };
    // Every client's connections, opened up front so an unreachable server fails fast.
    let sink: crate::conn::ProblemSink = Arc::default();
    let start = Instant::now();
    let mut conns: Vec<Vec<Arc<NodeConn>>> = Vec::new();
    // Which node each URL a client connects to stands for (a client may have URLs of its own).
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for spec in &scenario.clients {
        let mut mine = Vec::new();
        if spec.program.is_some() {
            // An external program opens its own connections.
            conns.push(mine);
            continue;
        }
        for (node, url) in &provider.client_nodes(&spec.name)? {
            names.insert(url.clone(), node.clone());
            let c =
                Arc::new(NodeConn::new(url.clone(), timeouts).reporting_to(sink.clone(), start));
            c.connect().await.map_err(|source| LiveError::Unreachable {
                url: url.clone(),
                source,
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
    rec.record(H::RunStarted(Box::new(checker::RunStart {
        scenario: scenario.name.clone(),
        backend: provider.backend().name().to_string(),
        seed,
        resource: scenario.resource.key.clone(),
        ttl_ms: scenario.recipe.ttl_ms,
        clocks: scenario.clocks.starts(),
        checker: scenario.checker.clone(),
    })));
    // Taps for `after.forwarded`, armed before any client sends.
    let key = &scenario.resource.key;
    let mut fault_taps = Vec::new();
    for f in &scenario.faults {
        fault_taps.push(forwarded::arm_for(
            provider.as_ref(),
            &rec,
            f.after.as_ref(),
            key,
        )?);
    }
    let mut start_taps = Vec::new();
    for c in &scenario.clients {
        start_taps.push(forwarded::arm_for(
            provider.as_ref(),
            &rec,
            c.after.as_ref(),
            key,
        )?);
    }
    let resource = Arc::new(Mutex::new(Resource::new(scenario.resource.checks_fencing)));
    let mut inboxes = Vec::new();
    let mut tasks = Vec::new();
    let (done_before, faults_done) = watch::channel(0);
    let recipe = scenario
        .recipe
        .clone()
        .validated(instances)
        .map_err(|reason| LiveError::Recipe { instances, reason })?;
    let failure = Arc::new(external::Failure::default());
    let pipes = Arc::new(external::Pipes::default());
    let mut programs = external::Programs::default();
    let mut shim = None;
    if scenario.clients.iter().any(|c| c.program.is_some()) {
        let dir = external::run_dir()?;
        programs.dir = Some(dir.clone());
        shim = Some((crate::clock::install_shim(&dir)?, dir));
    }
    let clients = scenario.clients.iter().zip(conns).zip(start_taps);
    for (i, ((spec, conns), tapping)) in clients.enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        inboxes.push(tx.clone());
        let start_at = rec.start + Duration::from_millis(spec.start_ms);
        let after = spec
            .after
            .clone()
            .map(|a| (a, format!("clients[{i}] ({}) start", spec.name)));
        let start = Start {
            at: start_at,
            ms: spec.start_ms,
            after,
            tapping,
            faults_done: faults_done.clone(),
        };
        if let (Some(program), Some((shim, dir))) = (&spec.program, &shim) {
            let ext = external::ExternalClient::prepare(external::Setup {
                scenario,
                index: i,
                seed,
                program,
                provider: provider.clone(),
                rec: rec.clone(),
                resource: resource.clone(),
                failure: failure.clone(),
                pipes: pipes.clone(),
                dir: dir.clone(),
                shim: shim.clone(),
            })
            .await?;
            programs.handles.push(Some(ext.handle()));
            tasks.push(tokio::spawn(ext.run(start)));
            continue;
        }
        programs.handles.push(None);
        let client = LiveClient {
            host: Host::for_scenario(scenario, i, seed, &recipe),
            conns,
            provider: provider.clone(),
            rec: rec.clone(),
            resource: resource.clone(),
            tx,
        };
        tasks.push(tokio::spawn(client.run(rx, start)));
    }
    let end = rec.start + Duration::from_millis(scenario.duration_ms);
    let ctx = FaultCtx {
        provider: provider.clone(),
        rec: rec.clone(),
        inboxes,
        clients: scenario.clients.iter().map(|c| c.name.clone()).collect(),
        programs: programs.handles.clone(),
        end,
    };
    let faults = tokio::spawn(inject_faults(
        scenario.clone(),
        ctx,
        fault_taps,
        done_before,
    ));
    let replicated = matches!(scenario.topology, Topology::Replicated { .. });
    let watcher = tokio::spawn(watch(provider.clone(), rec.clone(), replicated, end));
    tokio::select! {
        _ = tokio::time::sleep_until(end.into()) => {}
        _ = failure.raised.notified() => {}
    }
    faults.abort();
    // External programs get a grace to finish their iterations, all at once; one still
    // running after it fails the run. Then every program is killed.
    if !failure.raised() {
        let finishing = programs
            .handles
            .iter()
            .flatten()
            .map(|h| h.finish(scenario.duration_ms));
        futures_util::future::join_all(finishing).await;
    }
    for h in programs.handles.iter().flatten() {
        h.stop();
    }
    for t in &tasks {
        t.abort();
    }
    if failure.raised() {
        watcher.abort(); // the run stopped early
    }
    let _ = faults.await;
    let _ = watcher.await; // it stops on its own at `end`
    for t in tasks {
        let _ = t.await;
    }
    // A heal still under way when the run ended holds a clone of the provider: wait until
    // every clone is back, so the caller's handle is the last one again when this returns
    // (bounded by the probes' own timeouts).
    let settle_by = Instant::now() + 2 * CONFIRM_WITHIN;
    while Arc::strong_count(&provider) > baseline && Instant::now() < settle_by {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // What was still waiting for its condition never happened.
    let pending = std::mem::take(&mut *rec.pending.lock().unwrap_or_else(|e| e.into_inner()));
    for (what, condition) in pending {
        rec.inconclusive(condition.not_seen(&what, "by the end of the run"));
    }
    // A server that stopped answering although no fault touched it died on its own. A
    // Sentinel failover touches every node: Redis closes a node's client connections when
    // Sentinel promotes or re-points it. A lossy network does not stop a server, but a lost
    // frame leaves its connection silent until the request times out
    // (`Timeouts::for_scenario`): there a silent server is one that does not answer a PING
    // at the end of the run.
    let mut touched = touched_nodes(scenario);
    let sentinel_acted = rec
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|r| {
            matches!(
                &r.event,
                H::Observed(Effect::Promoted {
                    by: PromotedBy::Sentinel,
                    ..
                })
            )
        });
    if sentinel_acted {
        touched.extend(names.values().cloned());
    }
    let direct: BTreeMap<String, String> = provider.nodes().into_iter().collect();
    let mut problems = Vec::new();
    let silent = std::mem::take(&mut *sink.lock().unwrap_or_else(|e| e.into_inner()));
    for (url, line) in silent {
        let node = names.get(&url).map(String::as_str).unwrap_or("?");
        // Asked only of an untouched node: a crashed one would not answer, at a timeout each.
        let untouched = !touched.contains(node);
        if untouched && !(scenario.network.loss > 0.0 && answers(direct.get(node)).await) {
            rec.inconclusive(format!("{node}, which no fault touched, {line}"));
        }
        problems.push(format!("{node}: {line}"));
    }
    let failed = failure.take();
    rec.record(H::RunEnded {});
    let mut records = std::mem::take(&mut *rec.records.lock().unwrap_or_else(|e| e.into_inner()));
    records.sort_by_key(|r| r.t_us);
    if let Some(mut e) = failed {
        if let LiveError::Program {
            problem: crate::ProgramProblem::StillRunning { history, .. },
            ..
        } = &mut e
        {
            *history = records;
        }
        return Err(e);
    }
    Ok(LiveRun { records, problems })
}

/// Whether the server at `url` ([`Provider::nodes`]'s) answers a PING now, asked up to three
/// times on a fresh connection each: on containers that address is a relay shaped like the
/// clients' (a lost frame fails one try, not the server).
async fn answers(url: Option<&String>) -> bool {
    let Some(addr) = url.map(|u| u.trim_start_matches("redis://")) else {
        return false;
    };
    for _ in 0..3 {
        if crate::admin::ask::<String>(addr, &["PING"]).await.is_ok() {
            return true;
        }
    }
    false
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
        let primary_was = linked.as_ref().map(|(p, _)| p.clone());
        let seen = provider.take_observations();
        let died = provider.died_on_their_own();
        let primary = names.get(provider.route(0)).cloned().unwrap_or_default();
        let replicas = match provider.admin_addr(&primary).filter(|_| replicated) {
            Some(addr) => crate::observe::connected_replicas(&addr)
                .await
                .ok()
                .map(|list| {
                    list.iter()
                        .filter_map(|(ip, port)| provider.replica_named_by(ip, *port))
                        .collect::<std::collections::BTreeSet<String>>()
                }),
            None => None,
        };
        let at = Instant::now();
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
    /// The external programs, by client index (`None`: locksim's own client).
    programs: Vec<Option<Arc<external::ProgramHandle>>>,
    /// When the run ends: nothing is injected or healed after it.
    end: Instant,
}

/// How long a fault's effect may take to be seen before the run is inconclusive.
const CONFIRM_WITHIN: Duration = Duration::from_secs(10);

/// Injects the schedule. `done_before` tells the clients how far it got: every fault without
/// `after` and with `at_ms` below it has been carried out (and its effect seen), so a client
/// starting at `start_ms` waits while `start_ms >= done_before` — faults apply before the
/// clients that start in the same millisecond, as on the simulator.
///
/// `taps` are the faults' armed taps (`after.forwarded`), by index.
async fn inject_faults(
    scenario: Scenario,
    ctx: FaultCtx,
    taps: Vec<Option<forwarded::Tapping>>,
    done_before: watch::Sender<u64>,
) {
    let mut taps: Vec<Option<forwarded::Tapping>> = taps;
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
                let tapping = taps.get_mut(i).and_then(Option::take);
                waiting.spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    if let Some((when, gate)) =
                        forwarded::wait_after(&ctx.rec, &after, at, &what, tapping).await
                    {
                        tokio::time::sleep_until(when.into()).await;
                        inject(&f.action, &what, &ctx).await;
                        // A forwarded command's reply is held until the fault is in.
                        drop(gate);
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
    let program = |name: &str| client(name).and_then(|i| ctx.programs.get(i)?.clone());
    if let Some(h) = action.client_target().and_then(program) {
        let result = h.inject(action, rec, ctx.end, CONFIRM_WITHIN).await;
        return settle(rec, what, result);
    }
    let p = ctx.provider.clone();
    let result: Result<(), LiveError> = match action.clone() {
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
            let paused = async {
                p.pause(&node).await?;
                p.confirm_paused(&node, CONFIRM_WITHIN).await?;
                rec.observe(Effect::NodePaused { node: node.clone() });
                Ok(())
            }
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
                    let resumed = resume(&rec, p.as_ref(), &node).await;
                    settle(&rec, &format!("the end of {what}"), resumed);
                });
            }
            paused
        }
        FaultAction::ResumeNode(node) => resume(rec, p.as_ref(), &node).await,
        FaultAction::Crash(node) => {
            async {
                p.crash(&node).await?;
                crate::observe::wait_down(&look_at(p.as_ref(), &node)?, CONFIRM_WITHIN).await?;
                rec.observe(Effect::NodeDown { node });
                Ok(())
            }
            .await
        }
        FaultAction::Restart { node, persistence } => {
            async {
                p.restart(&node, persistence).await?;
                crate::observe::wait_up(&look_at(p.as_ref(), &node)?, CONFIRM_WITHIN).await?;
                rec.observe(Effect::NodeUp { node });
                Ok(())
            }
            .await
        }
        FaultAction::Promote(node) => {
            async {
                p.promote(&node).await?;
                crate::observe::wait_primary(&look_at(p.as_ref(), &node)?, CONFIRM_WITHIN).await?;
                rec.observe(Effect::Promoted {
                    node,
                    by: PromotedBy::Manual,
                });
                Ok(())
            }
            .await
        }
        FaultAction::Partition {
            between,
            and,
            for_ms,
            mode,
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
            p.partition(&between, &and, for_ms, mode)
                .await
                .map(|()| rec.observe(effect))
        }
        FaultAction::ClockJump { target, by_ms } => {
            async {
                let clock = p.jump_clock(&target, by_ms).await?;
                let addr = look_at(p.as_ref(), &target)?;
                crate::observe::wait_clock(&addr, &clock, CONFIRM_WITHIN).await?;
                let offset_ms = clock.offset_ms_at(crate::clock::real_now_ns());
                rec.observe(Effect::ClockSet { target, offset_ms });
                Ok(())
            }
            .await
        }
    };
    settle(rec, what, result);
}

/// Thaws `node` and waits until it answers again.
async fn resume(rec: &Recorder, p: &dyn Provider, node: &str) -> Result<(), LiveError> {
    p.resume(node).await?;
    crate::observe::wait_up(&look_at(p, node)?, CONFIRM_WITHIN).await?;
    rec.observe(Effect::NodeUp { node: node.into() });
    Ok(())
}

/// Where the harness looks at `node` to confirm a fault's effect.
fn look_at(p: &dyn Provider, node: &str) -> Result<String, LiveError> {
    p.admin_addr(node)
        .ok_or_else(|| LiveError::fault(node, FaultError::CannotLook))
}

/// Records why the run is inconclusive when `result` is an error.
fn settle(rec: &Recorder, what: &str, result: Result<(), LiveError>) {
    if let Err(e) = result {
        rec.inconclusive(format!("{what} did not take effect: {}", crate::chain(&e)));
    }
}

fn send(inboxes: &[mpsc::UnboundedSender<Msg>], client: Option<usize>, msg: Msg) {
    if let Some(tx) = client.and_then(|c| inboxes.get(c)) {
        let _ = tx.send(msg);
    }
}
