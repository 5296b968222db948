//! Lock latency on real `redis-server` processes, side by side in one run: the raw `redis`
//! crate floor, locksim's `live::lock::RealLock` (lock-core's machine driven directly), and the
//! `rslock` crate's Redlock on the same servers — healthy and with one of five nodes stalled
//! (SIGSTOP) — plus lock-core's machine alone, without IO — and the fault proxy's cost (group
//! `proxy`: the same raw round trip straight to the server and through a proxy link) and the
//! shaping's (group `shaped`: through a plain proxy link and one shaped with 0.2 ms each way).
//!
//! `CARGO_TARGET_DIR=/tmp/target-bench cargo bench --bench latency`
//!
//! Rows that are compared are measured *paired*: every iteration of either row takes and
//! gives back the lock both ways (e.g. raw `SET NX PX` + `DEL`, then locksim acquire +
//! release) and times only its own half. Both rows of a pair therefore run the same load on
//! the same connections, and a ratio between them does not move with whatever else the
//! machine is doing while criterion measures one row and then the other.
//!
//! Servers are started once per group (`live::processes::Processes`) and stopped when the
//! group ends. Every timed loop runs on a tokio worker thread (a 2-worker multi-thread
//! runtime; `LATENCY_RUNTIME=current_thread` runs everything on one thread instead).
//!
//! Timeouts, set to match: rslock cannot configure its connections, so each of its requests
//! gets the `redis` crate's defaults (response 500 ms, connect 1 s); locksim's connections get
//! the same (`Timeouts { connect: 1 s, response: 500 ms }`) and its recipe
//! `request_timeout_ms: 500` (the default). locksim's connections have the circuit breaker on
//! (`NodeConn::with_breaker`: a node whose request timed out gets one probe at a time).
//! Without `redis-server` on PATH the bench prints SKIPPED and measures only the in-process
//! machine.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode};
use futures::future::join_all;
use live::conn::NodeConn;
use live::lock::RealLock;
use live::processes::Processes;
use live::{LiveError, Provider, Timeouts};
use locksim::lock_core::{Action, Event, LockMachine, Recipe, RedlockConfig, Reply, WaitReplicas};
use locksim::scenario::Topology;
use rand::rngs::StdRng;
use rand::SeedableRng;
use redis::aio::MultiplexedConnection;
use redis::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::Mutex;

const TTL_MS: u64 = 30_000;

/// The per-request timeouts both clients run with (rslock's are the `redis` crate defaults).
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(1),
    response: Duration::from_millis(500),
};

fn runtime() -> Runtime {
    let current = std::env::var("LATENCY_RUNTIME").as_deref() == Ok("current_thread");
    let mut b = if current {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    };
    b.enable_all().build().expect("tokio runtime")
}

/// Runs `fut` on a runtime worker (so the tasks it spawns start on the same thread) and
/// returns its result.
fn on_worker<T: Send + 'static>(rt: &Runtime, fut: impl Future<Output = T> + Send + 'static) -> T {
    rt.block_on(async { tokio::spawn(fut).await.expect("bench task") })
}

fn start(topology: &Topology) -> Option<Processes> {
    match Processes::start(topology, false) {
        Ok(p) => Some(p),
        Err(LiveError::NoRedisServer) => {
            if std::env::var_os("CI").is_some() {
                panic!("redis-server is not installed but CI is set: install Debian's redis-server (scripts/test.sh does)");
            }
            println!("SKIPPED: redis-server is not installed; only the in-process benches run");
            None
        }
        Err(e) => panic!("starting redis-server: {e}"),
    }
}

fn urls(p: &Processes) -> Vec<String> {
    p.nodes().into_iter().map(|(_, u)| u).collect()
}

/// A locksim lock on `key` over `urls`, its connections opened and scripts loaded.
/// Also returns the lock's own connections, opened, for the raw floor to share: the floor and
/// locksim then go through the same socket and the same connection task, and differ only in
/// what locksim adds.
fn real_lock(
    rt: &Runtime,
    recipe: Recipe,
    key: &str,
    urls: &[String],
) -> (Locker, Vec<MultiplexedConnection>) {
    let conns: Vec<Arc<NodeConn>> = urls
        .iter()
        .map(|u| Arc::new(NodeConn::new(u.clone(), TIMEOUTS).with_breaker()))
        .collect();
    let lock = RealLock::new(recipe, key, conns.clone(), 7).expect("recipe is valid");
    let lock = Arc::new(Mutex::new(lock));
    let l = lock.clone();
    let raw = on_worker(rt, async move {
        let mut l = l.lock().await;
        l.acquire().await.expect("warm-up acquire");
        assert!(l.extend().await);
        l.release().await;
        let mut raw = Vec::new();
        for c in conns {
            raw.push(c.connect().await.expect("connected by the warm-up"));
        }
        raw
    });
    (Locker::Locksim(lock), raw)
}

/// rslock's manager over `urls`, its connections opened.
fn rslock(rt: &Runtime, urls: &[String], key: &'static str) -> Locker {
    let m = Arc::new(rslock::LockManager::new(urls.to_vec()));
    let m2 = m.clone();
    on_worker(rt, async move {
        let l = m2
            .lock("bench:rslock-warm", Duration::from_millis(TTL_MS))
            .await
            .expect("rslock warm-up");
        m2.unlock(&l).await;
    });
    Locker::Rslock(m, key)
}

fn redlock(request_timeout_ms: u64) -> Recipe {
    Recipe {
        redlock: Some(RedlockConfig::default()),
        request_timeout_ms,
        ..Recipe::default()
    }
}

async fn raw_set_nx(c: &mut MultiplexedConnection, key: &str) {
    let v: Value = redis::cmd("SET")
        .arg(key)
        .arg("v")
        .arg("NX")
        .arg("PX")
        .arg(TTL_MS)
        .query_async(c)
        .await
        .expect("SET");
    assert!(matches!(v, Value::Okay), "SET NX refused: {v:?}");
}

async fn raw_del(c: &mut MultiplexedConnection, key: &str) {
    let n: i64 = redis::cmd("DEL")
        .arg(key)
        .query_async(c)
        .await
        .expect("DEL");
    assert_eq!(n, 1);
}

/// One way to take a lock and give it back, as the benches run it.
#[derive(Clone)]
enum Locker {
    /// The floor: raw `SET k v NX PX 30000` on every connection at once (`join_all`), then
    /// `DEL` on every connection.
    Raw(Vec<MultiplexedConnection>),
    /// The replicated floor: raw `SET NX PX`, `WAIT 1 100`, then `DEL`.
    RawWait(MultiplexedConnection),
    /// locksim: `RealLock::acquire`, then `release`.
    Locksim(Arc<Mutex<RealLock>>),
    /// The peer: rslock's `lock`, then `unlock`, on this key.
    Rslock(Arc<rslock::LockManager>, &'static str),
}

impl Locker {
    /// Takes the lock and gives it back; how long taking it took, and the whole round.
    async fn round(&mut self) -> (Duration, Duration) {
        match self {
            Locker::Raw(conns) => {
                let t = Instant::now();
                join_all(conns.iter_mut().map(|c| raw_set_nx(c, "bench:raw"))).await;
                let taken = t.elapsed();
                join_all(conns.iter_mut().map(|c| raw_del(c, "bench:raw"))).await;
                (taken, t.elapsed())
            }
            Locker::RawWait(c) => {
                let t = Instant::now();
                raw_set_nx(c, "bench:raw").await;
                let acked: i64 = redis::cmd("WAIT")
                    .arg(1)
                    .arg(100)
                    .query_async(c)
                    .await
                    .expect("WAIT");
                assert_eq!(acked, 1);
                let taken = t.elapsed();
                raw_del(c, "bench:raw").await;
                (taken, t.elapsed())
            }
            Locker::Locksim(lock) => {
                let mut l = lock.lock().await;
                let t = Instant::now();
                l.acquire().await.expect("acquire");
                let taken = t.elapsed();
                l.release().await;
                (taken, t.elapsed())
            }
            Locker::Rslock(m, key) => {
                let t = Instant::now();
                let l = m
                    .lock(*key, Duration::from_millis(TTL_MS))
                    .await
                    .expect("rslock acquire");
                let taken = t.elapsed();
                m.unlock(&l).await;
                (taken, t.elapsed())
            }
        }
    }
}

/// What a row times of each round.
#[derive(Clone, Copy)]
enum Part {
    /// Taking the lock.
    Acquire,
    /// Taking it and giving it back.
    Round,
}

/// Per-iteration times of a pair's two rows, in µs: (subject, baseline) per iteration.
type Samples = Arc<std::sync::Mutex<Vec<(f64, f64)>>>;

/// A row's partner: every iteration runs one round of it too, and both halves' times go to
/// `samples`.
struct Beside<'a> {
    locker: &'a Locker,
    samples: Samples,
    /// Whether the timed row is the pair's subject (else its baseline).
    timed_is_subject: bool,
}

/// A row timing `timed`'s `part`; with `beside`, every iteration first runs one round of the
/// partner and records both halves (see the module docs: paired rows).
fn row(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    timed: &Locker,
    beside: Option<Beside<'_>>,
    part: Part,
) {
    let pick = move |(taken, round): (Duration, Duration)| match part {
        Part::Acquire => taken,
        Part::Round => round,
    };
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut timed = timed.clone();
            let mut other = beside
                .as_ref()
                .map(|b| (b.locker.clone(), b.samples.clone(), b.timed_is_subject));
            on_worker(rt, async move {
                let mut total = Duration::ZERO;
                let mut pairs = Vec::new();
                for _ in 0..iters {
                    let partner = match other.as_mut() {
                        Some((l, _, _)) => Some(pick(l.round().await)),
                        None => None,
                    };
                    let t = pick(timed.round().await);
                    total += t;
                    if let (Some(p), Some((_, _, subject))) = (partner, other.as_ref()) {
                        let (t, p) = (t.as_secs_f64() * 1e6, p.as_secs_f64() * 1e6);
                        pairs.push(if *subject { (t, p) } else { (p, t) });
                    }
                }
                if let Some((_, samples, _)) = other {
                    samples.lock().expect("samples").extend(pairs);
                }
                total
            })
        })
    });
}

/// One pair's interleaved comparison: the subject's and the baseline's per-iteration p50,
/// p99 and mean over the same iterations, and the ratio of the p50s.
struct PairedRatio {
    row: String,
    baseline: String,
    iterations: usize,
    row_us: Stats,
    baseline_us: Stats,
}

/// p50, p99 and mean of per-iteration times, in µs.
#[derive(Clone, Copy)]
struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
}

impl Stats {
    fn of(mut xs: Vec<f64>) -> Stats {
        xs.sort_by(f64::total_cmp);
        let at = |q: f64| {
            xs.get(((xs.len().max(1) - 1) as f64 * q) as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        Stats {
            p50: at(0.5),
            p99: at(0.99),
            mean: xs.iter().sum::<f64>() / xs.len() as f64,
        }
    }

    fn json(self) -> serde_json::Value {
        serde_json::json!({"p50": self.p50, "p99": self.p99, "mean": self.mean})
    }
}

/// The four rows of a pair, `subject` against `baseline`, acquire and round, each measured
/// beside the other; returns the interleaved ratios (subject / baseline) of both parts.
fn pair(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    (base_name, baseline): (&str, &Locker),
    (subject_name, subject): (&str, &Locker),
) -> Vec<PairedRatio> {
    let mut ratios = Vec::new();
    for (suffix, part) in [("acquire", Part::Acquire), ("acquire_release", Part::Round)] {
        let samples = Samples::default();
        for (name, timed, other, timed_is_subject) in [
            (base_name, baseline, subject, false),
            (subject_name, subject, baseline, true),
        ] {
            let beside = Beside {
                locker: other,
                samples: samples.clone(),
                timed_is_subject,
            };
            row(
                g,
                rt,
                &format!("{name}_{suffix}"),
                timed,
                Some(beside),
                part,
            );
        }
        let pairs = std::mem::take(&mut *samples.lock().expect("samples"));
        let (s, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
        ratios.push(PairedRatio {
            row: format!("{subject_name}_{suffix}"),
            baseline: format!("{base_name}_{suffix}"),
            iterations: pairs.len(),
            row_us: Stats::of(s),
            baseline_us: Stats::of(b),
        });
    }
    ratios
}

/// Writes a group's interleaved ratios next to criterion's results
/// (`<criterion dir>/<group>/paired.json`, read by `locksim bench-report`) and prints them.
fn write_paired(group: &str, ratios: &[PairedRatio]) {
    for r in ratios {
        println!(
            "paired {group}/{} vs {}: p50 {:.1} µs / {:.1} µs = {:.3}×, p99 {:.1} / {:.1} µs, mean {:.1} / {:.1} µs, over {} interleaved iterations",
            r.row,
            r.baseline,
            r.row_us.p50,
            r.baseline_us.p50,
            r.row_us.p50 / r.baseline_us.p50,
            r.row_us.p99,
            r.baseline_us.p99,
            r.row_us.mean,
            r.baseline_us.mean,
            r.iterations
        );
    }
    let dir = std::env::var_os("CRITERION_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(
                std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into()),
            )
            .join("criterion")
        })
        .join(group);
    let json: Vec<serde_json::Value> = ratios
        .iter()
        .map(|r| {
            serde_json::json!({
                "row": r.row,
                "baseline": r.baseline,
                "iterations": r.iterations,
                "row_us": r.row_us.json(),
                "baseline_us": r.baseline_us.json(),
            })
        })
        .collect();
    let json = serde_json::to_string_pretty(&json).expect("ratios serialize");
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join("paired.json"), json))
    {
        eprintln!("could not write {}: {e}", dir.display());
    }
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
}

/// Lock-core's machine alone: acquire and release round trips answered in-process.
fn machine(c: &mut Criterion) {
    let mut g = c.benchmark_group("machine");
    configure(&mut g);
    for (name, instances) in [("acquire_release_1", 1usize), ("acquire_release_5", 5)] {
        let recipe = if instances == 1 {
            Recipe::default()
        } else {
            redlock(500)
        };
        let recipe = recipe
            .validated(instances)
            .expect("the bench's recipes are valid");
        let mut m = LockMachine::new(recipe, "bench:machine");
        let mut rng = StdRng::seed_from_u64(1);
        let mut out = Vec::new();
        let mut sends = Vec::new();
        let mut now = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                for (event, reply) in [(Event::Acquire, Reply::Ok), (Event::Release, Reply::Int(1))]
                {
                    now += 10;
                    out.clear();
                    m.handle(event, now, &mut rng, &mut out);
                    sends.clear();
                    sends.extend(out.iter().filter_map(|a| match a {
                        Action::Send { request, .. } => Some(*request),
                        _ => None,
                    }));
                    for r in sends.drain(..) {
                        out.clear();
                        m.handle(
                            Event::Reply {
                                request: r,
                                reply: reply.clone(),
                            },
                            now,
                            &mut rng,
                            &mut out,
                        );
                    }
                }
                assert!(m.is_idle());
            })
        });
    }
    g.finish();
}

fn single(c: &mut Criterion) {
    let Some(p) = start(&Topology::Single {}) else {
        return;
    };
    let rt = runtime();
    let u = urls(&p);
    let (lock, conns) = real_lock(&rt, Recipe::default(), "bench:single", &u);
    let raw = Locker::Raw(conns);
    let mut g = c.benchmark_group("single");
    configure(&mut g);
    let ratios = pair(&mut g, &rt, ("raw_set_nx", &raw), ("locksim", &lock));
    let Locker::Locksim(lock) = lock else {
        unreachable!()
    };
    {
        let l = lock.clone();
        on_worker(&rt, async move {
            l.lock().await.acquire().await.expect("acquire")
        });
    }
    g.bench_function("locksim_extend", |b| {
        b.iter_custom(|iters| {
            let l = lock.clone();
            on_worker(&rt, async move {
                let mut l = l.lock().await;
                let t = Instant::now();
                for _ in 0..iters {
                    assert!(l.extend().await);
                }
                t.elapsed()
            })
        })
    });
    g.finish();
    write_paired("single", &ratios);
    let l = lock.clone();
    on_worker(&rt, async move { l.lock().await.release().await });
}

/// The fault proxy's cost (`live::link`): raw `SET NX PX` + `DEL` on one server, straight to
/// it against through the proxy link the processes provider gives a scenario client.
fn proxy(c: &mut Criterion) {
    let Some(p) = start(&Topology::Single {}) else {
        return;
    };
    let rt = runtime();
    let direct = urls(&p);
    let proxied: Vec<String> = p
        .client_nodes("bench")
        .expect("a proxy link")
        .into_iter()
        .map(|(_, u)| u)
        .collect();
    let open = |urls: Vec<String>| {
        Locker::Raw(on_worker(&rt, async move {
            let mut conns = Vec::new();
            for u in urls {
                let c = NodeConn::new(u, TIMEOUTS);
                conns.push(c.connect().await.expect("connect"));
            }
            conns
        }))
    };
    let (direct, proxied) = (open(direct), open(proxied));
    let mut g = c.benchmark_group("proxy");
    configure(&mut g);
    let ratios = pair(&mut g, &rt, ("direct", &direct), ("proxied", &proxied));
    g.finish();
    write_paired("proxy", &ratios);
}

/// The shaping's effect (`live::link::shape`): the same raw round trip through a plain proxy
/// link and through one shaped with the scenario default's latency (0.2 ms fixed each way,
/// shaped on purpose: a scenario's default network is not), on two servers of one run.
fn shaped(c: &mut Criterion) {
    if live::processes::find_redis_server().is_err() {
        return;
    }
    let network = locksim::scenario::Network::default();
    let p = Processes::start_with_network(
        &Topology::Redlock { instances: 1 },
        false,
        &Default::default(),
        Some(&network),
        1,
    )
    .expect("redis-server");
    let plain = start(&Topology::Single {}).expect("redis-server");
    let rt = runtime();
    let link = |p: &Processes| -> Vec<String> {
        p.client_nodes("bench")
            .expect("a proxy link")
            .into_iter()
            .map(|(_, u)| u)
            .collect()
    };
    let open = |urls: Vec<String>| {
        Locker::Raw(on_worker(&rt, async move {
            let mut conns = Vec::new();
            for u in urls {
                let c = NodeConn::new(u, TIMEOUTS);
                conns.push(c.connect().await.expect("connect"));
            }
            conns
        }))
    };
    let (proxied, shaped) = (open(link(&plain)), open(link(&p)));
    let mut g = c.benchmark_group("shaped");
    configure(&mut g);
    let ratios = pair(
        &mut g,
        &rt,
        ("proxied", &proxied),
        ("shaped-0.2ms", &shaped),
    );
    g.finish();
    write_paired("shaped", &ratios);
}

fn replicated(c: &mut Criterion) {
    let topology = Topology::Replicated {
        replicas: 1,
        replication_lag_ms: 0.0,
        repl_timeout_ms: 60_000,
        sentinel: None,
    };
    let Some(p) = start(&topology) else { return };
    let rt = runtime();
    let u = urls(&p);
    let primary = vec![u[0].clone()];
    let recipe = Recipe {
        wait_replicas: Some(WaitReplicas {
            replicas: 1,
            timeout_ms: 100,
        }),
        ..Recipe::default()
    };
    let (lock, mut conns) = real_lock(&rt, recipe, "bench:replicated", &primary);
    let raw = Locker::RawWait(conns.remove(0));
    let mut g = c.benchmark_group("replicated");
    configure(&mut g);
    let ratios = pair(
        &mut g,
        &rt,
        ("raw_set_nx_wait", &raw),
        ("locksim_wait1", &lock),
    );
    g.finish();
    write_paired("replicated", &ratios);
}

fn redlock3(c: &mut Criterion) {
    let Some(p) = start(&Topology::Redlock { instances: 3 }) else {
        return;
    };
    let rt = runtime();
    let u = urls(&p);
    let mut g = c.benchmark_group("redlock3");
    configure(&mut g);
    let (lock, _) = real_lock(&rt, redlock(500), "bench:rl3", &u);
    row(&mut g, &rt, "locksim_acquire", &lock, None, Part::Acquire);
    row(
        &mut g,
        &rt,
        "locksim_acquire_release",
        &lock,
        None,
        Part::Round,
    );
    g.finish();
}

fn redlock5(c: &mut Criterion) {
    let five = Topology::Redlock { instances: 5 };
    let Some(p) = start(&five) else {
        return;
    };
    let rt = runtime();
    let u = urls(&p);
    let (lock, conns) = real_lock(&rt, redlock(500), "bench:rl5", &u);
    let raw = Locker::Raw(conns);
    let rs = rslock(&rt, &u, "bench:rl5-rslock");

    let mut g = c.benchmark_group("redlock5");
    configure(&mut g);
    row(
        &mut g,
        &rt,
        "raw_fanout_set_nx_del",
        &raw,
        None,
        Part::Round,
    );
    let ratios = pair(&mut g, &rt, ("rslock", &rs), ("locksim", &lock));
    g.finish();
    write_paired("redlock5", &ratios);

    // One node stalled: a second set of five servers with redis-5 SIGSTOPped (both clients'
    // connections to it open), paired with locksim on the healthy set.
    let Some(q) = start(&five) else {
        return;
    };
    let v = urls(&q);
    let (stalled, _) = real_lock(&rt, redlock(500), "bench:rl5s", &v);
    let rs_stalled = rslock(&rt, &v, "bench:rl5s-rslock");
    let stalled_node = q.nodes().pop().expect("five nodes").0;
    rt.block_on(q.pause(&stalled_node)).expect("SIGSTOP");
    let mut g = c.benchmark_group("redlock5_stalled");
    configure(&mut g);
    let ratios = pair(
        &mut g,
        &rt,
        ("locksim_healthy", &lock),
        ("locksim", &stalled),
    );
    // Every rslock call waits for the stalled node's 500 ms timeout: ten flat samples of one
    // iteration each keep this group to a few tens of seconds.
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    row(
        &mut g,
        &rt,
        "rslock_acquire",
        &rs_stalled,
        None,
        Part::Acquire,
    );
    row(
        &mut g,
        &rt,
        "rslock_acquire_release",
        &rs_stalled,
        None,
        Part::Round,
    );
    g.finish();
    write_paired("redlock5_stalled", &ratios);
    rt.block_on(q.resume(&stalled_node)).expect("SIGCONT");
}

criterion_group!(benches, machine, single, proxy, shaped, replicated, redlock3, redlock5);
criterion_main!(benches);
