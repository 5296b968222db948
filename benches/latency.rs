//! Lock latency on real `redis-server` processes, side by side in one run: the raw `redis`
//! crate floor, locksim's `live::lock::RealLock` (lock-core's machine driven directly), and the
//! `rslock` crate's Redlock on the same servers — healthy and with one of five nodes stalled
//! (SIGSTOP) — plus lock-core's machine alone, without IO.
//!
//! `CARGO_TARGET_DIR=/tmp/target-bench cargo bench --bench latency`
//!
//! Servers are started once per group (`live::processes::Processes`) and stopped when the
//! group ends. Every timed loop runs on a tokio worker thread (a 2-worker multi-thread
//! runtime; `LATENCY_RUNTIME=current_thread` runs everything on one thread instead).
//!
//! Timeouts, set to match: rslock cannot configure its connections, so each of its requests
//! gets the `redis` crate's defaults (response 500 ms, connect 1 s); locksim's connections get
//! the same (`Timeouts { connect: 1 s, response: 500 ms }`) and its recipe
//! `request_timeout_ms: 500` (the default). Without `redis-server` on PATH the bench prints
//! SKIPPED and measures only the in-process machine.

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

fn real_lock(rt: &Runtime, recipe: Recipe, key: &str, urls: &[String]) -> Arc<Mutex<RealLock>> {
    let conns = urls
        .iter()
        .map(|u| Arc::new(NodeConn::new(u.clone(), TIMEOUTS)))
        .collect();
    let lock = RealLock::new(recipe, key, conns, 7).expect("recipe is valid");
    let lock = Arc::new(Mutex::new(lock));
    // Open the connections and load the scripts before anything is timed.
    let l = lock.clone();
    on_worker(rt, async move {
        let mut l = l.lock().await;
        l.acquire().await.expect("warm-up acquire");
        assert!(l.extend().await);
        l.release().await;
    });
    lock
}

fn raw_conns(rt: &Runtime, urls: &[String]) -> Vec<MultiplexedConnection> {
    let urls = urls.to_vec();
    on_worker(rt, async move {
        let mut v = Vec::new();
        for u in urls {
            let c = redis::Client::open(u.as_str()).expect("url");
            v.push(c.get_multiplexed_async_connection().await.expect("connect"));
        }
        v
    })
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

/// locksim: acquire + release per iteration.
fn bench_acquire_release(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    lock: &Arc<Mutex<RealLock>>,
) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let l = lock.clone();
            on_worker(rt, async move {
                let mut l = l.lock().await;
                let t = Instant::now();
                for _ in 0..iters {
                    l.acquire().await.expect("acquire");
                    l.release().await;
                }
                t.elapsed()
            })
        })
    });
}

/// locksim: acquire alone (the release runs outside the timed section).
fn bench_acquire(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    lock: &Arc<Mutex<RealLock>>,
) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let l = lock.clone();
            on_worker(rt, async move {
                let mut l = l.lock().await;
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    l.acquire().await.expect("acquire");
                    total += t.elapsed();
                    l.release().await;
                }
                total
            })
        })
    });
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
        let mut m = LockMachine::new(recipe, "bench:machine", instances);
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
    let raw = raw_conns(&rt, &u).remove(0);
    let mut g = c.benchmark_group("single");
    configure(&mut g);
    g.bench_function("raw_set_nx", |b| {
        b.iter_custom(|iters| {
            let mut c = raw.clone();
            on_worker(&rt, async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    raw_set_nx(&mut c, "bench:raw").await;
                    total += t.elapsed();
                    raw_del(&mut c, "bench:raw").await;
                }
                total
            })
        })
    });
    g.bench_function("raw_set_nx_del", |b| {
        b.iter_custom(|iters| {
            let mut c = raw.clone();
            on_worker(&rt, async move {
                let t = Instant::now();
                for _ in 0..iters {
                    raw_set_nx(&mut c, "bench:raw").await;
                    raw_del(&mut c, "bench:raw").await;
                }
                t.elapsed()
            })
        })
    });
    let lock = real_lock(&rt, Recipe::default(), "bench:single", &u);
    bench_acquire(&mut g, &rt, "locksim_acquire", &lock);
    bench_acquire_release(&mut g, &rt, "locksim_acquire_release", &lock);
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
    let l = lock.clone();
    on_worker(&rt, async move { l.lock().await.release().await });
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
    let raw = raw_conns(&rt, &primary).remove(0);
    let mut g = c.benchmark_group("replicated");
    configure(&mut g);
    g.bench_function("raw_set_nx_wait_del", |b| {
        b.iter_custom(|iters| {
            let mut c = raw.clone();
            on_worker(&rt, async move {
                let t = Instant::now();
                for _ in 0..iters {
                    raw_set_nx(&mut c, "bench:raw").await;
                    let acked: i64 = redis::cmd("WAIT")
                        .arg(1)
                        .arg(100)
                        .query_async(&mut c)
                        .await
                        .expect("WAIT");
                    assert_eq!(acked, 1);
                    raw_del(&mut c, "bench:raw").await;
                }
                t.elapsed()
            })
        })
    });
    let recipe = Recipe {
        wait_replicas: Some(WaitReplicas {
            replicas: 1,
            timeout_ms: 100,
        }),
        ..Recipe::default()
    };
    let lock = real_lock(&rt, recipe, "bench:replicated", &primary);
    bench_acquire(&mut g, &rt, "locksim_wait1_acquire", &lock);
    bench_acquire_release(&mut g, &rt, "locksim_wait1_acquire_release", &lock);
    g.finish();
}

fn redlock3(c: &mut Criterion) {
    let Some(p) = start(&Topology::Redlock { instances: 3 }) else {
        return;
    };
    let rt = runtime();
    let u = urls(&p);
    let mut g = c.benchmark_group("redlock3");
    configure(&mut g);
    let lock = real_lock(&rt, redlock(500), "bench:rl3", &u);
    bench_acquire(&mut g, &rt, "locksim_acquire", &lock);
    bench_acquire_release(&mut g, &rt, "locksim_acquire_release", &lock);
    g.finish();
}

fn rslock_manager(rt: &Runtime, urls: &[String]) -> Arc<rslock::LockManager> {
    let m = Arc::new(rslock::LockManager::new(urls.to_vec()));
    let m2 = m.clone();
    on_worker(rt, async move {
        let l = m2
            .lock("bench:rslock-warm", Duration::from_millis(TTL_MS))
            .await
            .expect("rslock warm-up");
        m2.unlock(&l).await;
    });
    m
}

fn bench_rslock(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    m: &Arc<rslock::LockManager>,
    key: &'static str,
    acquire_only: bool,
) {
    let name = if acquire_only {
        "rslock_acquire"
    } else {
        "rslock_acquire_release"
    };
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let m = m.clone();
            on_worker(rt, async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let l = m
                        .lock(key, Duration::from_millis(TTL_MS))
                        .await
                        .expect("rslock acquire");
                    if acquire_only {
                        total += t.elapsed();
                        m.unlock(&l).await;
                    } else {
                        m.unlock(&l).await;
                        total += t.elapsed();
                    }
                }
                total
            })
        })
    });
}

fn redlock5(c: &mut Criterion) {
    let Some(p) = start(&Topology::Redlock { instances: 5 }) else {
        return;
    };
    let rt = runtime();
    let u = urls(&p);
    let raw = raw_conns(&rt, &u);
    let lock = real_lock(&rt, redlock(500), "bench:rl5", &u);
    let rs = rslock_manager(&rt, &u);

    let mut g = c.benchmark_group("redlock5");
    configure(&mut g);
    g.bench_function("raw_fanout_set_nx_del", |b| {
        b.iter_custom(|iters| {
            let mut conns = raw.clone();
            on_worker(&rt, async move {
                let t = Instant::now();
                for _ in 0..iters {
                    join_all(conns.iter_mut().map(|c| raw_set_nx(c, "bench:raw"))).await;
                    join_all(conns.iter_mut().map(|c| raw_del(c, "bench:raw"))).await;
                }
                t.elapsed()
            })
        })
    });
    bench_acquire(&mut g, &rt, "locksim_acquire", &lock);
    bench_acquire_release(&mut g, &rt, "locksim_acquire_release", &lock);
    bench_rslock(&mut g, &rt, &rs, "bench:rl5-rslock", true);
    bench_rslock(&mut g, &rt, &rs, "bench:rl5-rslock", false);
    g.finish();

    // One node stalled: SIGSTOP redis-5, with both clients' connections to it open.
    p.pause("redis-5").expect("SIGSTOP redis-5");
    let mut g = c.benchmark_group("redlock5_stalled");
    configure(&mut g);
    bench_acquire(&mut g, &rt, "locksim_acquire", &lock);
    bench_acquire_release(&mut g, &rt, "locksim_acquire_release", &lock);
    // Every rslock call waits for the stalled node's 500 ms timeout: ten flat samples of one
    // iteration each keep this group to a few tens of seconds.
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    bench_rslock(&mut g, &rt, &rs, "bench:rl5s-rslock", true);
    bench_rslock(&mut g, &rt, &rs, "bench:rl5s-rslock", false);
    g.finish();
    p.resume("redis-5").expect("SIGCONT redis-5");
}

criterion_group!(benches, machine, single, replicated, redlock3, redlock5);
criterion_main!(benches);
