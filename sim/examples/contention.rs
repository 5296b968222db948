//! Throwaway: the sim_event_rate bench's contention workload, N runs (callgrind).
use scenario::{Dist, Scenario};
use std::path::Path;

fn main() {
    let n: usize = std::env::args().nth(1).map_or(1, |a| a.parse().unwrap());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/safe-watchdog.json");
    let mut s = Scenario::load(&path).expect("loads");
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
    eprintln!("sizes: H {} Record {} Output {} Command {} Reply {}", std::mem::size_of::<checker::Event>(), std::mem::size_of::<checker::Record>(), std::mem::size_of::<workload::Output>(), std::mem::size_of::<lock_core::Command>(), std::mem::size_of::<lock_core::Reply>());
    let mut total = 0;
    let mut recs = 0;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let r = sim::run(&s, 1);
        total += r.events;
        recs += r.records.len();
        assert!(r.cut_short.is_none());
    }
    let el = t.elapsed();
    eprintln!("{n} runs: {total} events, {recs} records, {:?}, {:.2} M ev/s", el, total as f64 / el.as_secs_f64() / 1e6);
}
