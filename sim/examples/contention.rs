//! The contention workload of `benches/sim_event_rate.rs`, played `N` times (default 1), for
//! counting instructions where wall-clock time is too noisy:
//!
//! ```text
//! cargo build --release -p sim --example contention
//! valgrind --tool=callgrind target/release/examples/contention 1
//! ```
//!
//! It prints the events per second and a hash of the last run's history (its JSON lines):
//! a change made for speed must leave the hash as it was.
//!
//! Keep the scenario in step with `contention()` in the bench.

use scenario::{Dist, Scenario};
use std::path::Path;

/// The bench's busy workload: 8 clients contending for one lock for 60 simulated seconds,
/// with watchdogs, retries and random latency.
fn contention() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/safe-watchdog.json");
    let mut s = Scenario::load(&path).expect("the shipped scenario loads");
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

fn main() {
    let runs: u32 = match std::env::args().nth(1) {
        None => 1,
        Some(n) => n.parse().expect("the number of runs"),
    };
    let scenario = contention();
    let (mut events, mut records, mut last) = (0, 0, Vec::new());
    let started = std::time::Instant::now();
    for _ in 0..runs {
        let run = sim::run(&scenario, 1);
        assert!(run.cut_short.is_none(), "the run was cut short");
        events += run.events;
        records += run.records.len();
        last = run.records;
    }
    let took = started.elapsed();
    let mut jsonl = Vec::new();
    checker::history::write_jsonl(&last, &mut jsonl).expect("writing to memory cannot fail");
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&jsonl, &mut hasher);
    eprintln!(
        "{runs} runs: {events} events, {records} records, {took:?}, {:.2} M events/s, history hash {:016x}",
        events as f64 / took.as_secs_f64() / 1e6,
        std::hash::Hasher::finish(&hasher)
    );
}
