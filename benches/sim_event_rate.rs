//! Simulator speed: events per second, the time to play the failover scenario, and what one
//! lock cycle (acquire, write, release; or one watchdog extension) costs on simulated Redis.
//!
//! `cargo bench --bench sim_event_rate` — criterion reports time per run; the event count
//! of each run is printed once, so events/s = events / time. The `sim_lock` rows report time
//! per cycle (or per extension) of wall clock: simulated time is free, so this is the CPU cost
//! of simulating one.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use locksim::checker::Event;
use locksim::scenario::{Dist, Scenario, Topology};
use std::path::Path;

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(&path).expect("scenario loads")
}

/// A busy workload: 8 clients contending for one lock for 60 simulated seconds, with
/// watchdogs, retries and random latency.
fn contention() -> Scenario {
    let mut s = load("safe-watchdog.json");
    s.duration_ms = 60_000;
    s.network.latency = Dist::UniformMs([0.1, 0.5]);
    s.recipe.retry.max_attempts = Some(100);
    let template = s.clients[0].clone();
    s.clients = (0..8)
        .map(|i| {
            let mut c = template.clone();
            c.name = format!("C{i}");
            c.start_ms = i * 7;
            c.work_ms = Dist::UniformMs([5.0, 50.0]);
            c.iterations = 1_000;
            c
        })
        .collect();
    s
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulator");
    for (name, scenario) in [
        ("contention-8-clients-60s", contention()),
        ("failover-double-grant", load("failover-double-grant.json")),
    ] {
        let events = locksim::sim::run(&scenario, 1).events;
        println!("{name}: {events} events per run");
        g.throughput(Throughput::Elements(events));
        g.bench_function(name, |b| b.iter(|| locksim::sim::run(&scenario, 1)));
    }
    g.finish();
}

/// One client, no contention, no faults: `iterations` lock cycles back to back on `topology`.
fn cycles(
    topology: Topology,
    iterations: u32,
    work_ms: f64,
    ttl_ms: u64,
    watchdog: bool,
) -> Scenario {
    let mut s = load("safe-watchdog.json");
    s.topology = topology;
    s.network.latency = Dist::FixedMs(0.2);
    s.recipe.ttl_ms = Some(ttl_ms);
    s.recipe.watchdog = watchdog;
    if let Topology::Redlock { .. } = s.topology {
        s.recipe.redlock = Some(Default::default());
    }
    let mut client = s.clients[0].clone();
    client.work_ms = Dist::FixedMs(work_ms);
    client.think_ms = Dist::FixedMs(1.0);
    client.iterations = iterations;
    s.clients = vec![client];
    s.duration_ms = u64::from(iterations) * (work_ms as u64 + 10) + 1_000;
    s
}

fn lock_cycles(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_lock");
    let rows = [
        (
            "single_cycle",
            cycles(Topology::Single {}, 1_000, 1.0, 30_000, false),
        ),
        (
            "redlock5_cycle",
            cycles(
                Topology::Redlock { instances: 5 },
                1_000,
                1.0,
                30_000,
                false,
            ),
        ),
        (
            "single_extend",
            cycles(Topology::Single {}, 20, 300.0, 30, true),
        ),
    ];
    for (name, scenario) in rows {
        let run = locksim::sim::run(&scenario, 1);
        let count =
            |want: fn(&Event) -> bool| run.records.iter().filter(|r| want(&r.event)).count();
        let per = if name.ends_with("extend") {
            count(|e| matches!(e, Event::Extended { .. }))
        } else {
            count(|e| matches!(e, Event::Released { .. }))
        };
        assert!(per > 0, "{name}: nothing to measure");
        println!("{name}: {per} per run");
        g.throughput(Throughput::Elements(per as u64));
        g.bench_function(name, |b| b.iter(|| locksim::sim::run(&scenario, 1)));
    }
    g.finish();
}

criterion_group!(benches, bench, lock_cycles);
criterion_main!(benches);
