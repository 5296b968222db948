//! Simulator speed: events per second, and the time to play the failover scenario.
//!
//! `cargo bench --bench sim_event_rate` — criterion reports time per run; the event count
//! of each run is printed once, so events/s = events / time.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use locksim::scenario::{Dist, Scenario};
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

criterion_group!(benches, bench);
criterion_main!(benches);
