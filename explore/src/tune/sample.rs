//! Running one setting's seeds: a fixed number, or in doubling batches until its rate is
//! decided against the risk target (a group-sequential test).

use super::measure::{percentiles, Tally};
use super::TuneConfig;
use crate::case::{materialize, strategy, tree};
use checker::tune::{Decision, Rate, Setting, TunePoint};
use scenario::Scenario;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Seeds in an adaptive setting's first batch; each later batch doubles the seeds run.
pub const FIRST_BATCH: u64 = 16;

/// Runs seeds `from..to` of `s` on `jobs` threads (clamped), summed.
fn run_seeds(
    s: &Scenario,
    from: u64,
    to: u64,
    jobs: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Tally {
    let next = AtomicU64::new(from);
    let total = Mutex::new(Tally::default());
    std::thread::scope(|scope| {
        for _ in 0..crate::clamp_jobs(jobs, to - from) {
            scope.spawn(|| {
                let strategy = s
                    .fault_space
                    .as_ref()
                    .map(|space| (space, strategy(space, s.clients.len())));
                let mut mine = Tally::default();
                // Handed out up to `to` and no further, so the counter cannot wrap.
                while let Ok(seed) = next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| {
                    (i < to).then_some(i + 1)
                }) {
                    let scenario = match &strategy {
                        Some((space, st)) => materialize(s, space, &tree(st, seed).current()),
                        None => s.clone(),
                    };
                    let (records, verdict) = crate::play(&scenario, seed);
                    mine.seed(&records, &verdict);
                    progress(1);
                }
                total.lock().unwrap_or_else(|e| e.into_inner()).add(mine);
            });
        }
    });
    total.into_inner().unwrap_or_else(|e| e.into_inner())
}

fn per_section(t: &Tally) -> Rate {
    Rate::clustered(&t.sections_by_seed)
}

/// The decision on a setting whose per-section rate is `rate`, with `inconclusive` seeds
/// left out of it: never [`Decision::Safe`] while any seed could not be judged (what held
/// there is not proven), though breaks seen elsewhere still make it broken.
fn decide(rate: &Rate, inconclusive: u64, risk: f64) -> Decision {
    match rate.decide(risk) {
        Decision::Safe if inconclusive > 0 => Decision::Undecided,
        d => d,
    }
}

/// Measures setting `setting` at `ttl_ms` (`s` is the scenario with both applied). Without a
/// risk target: seeds `0..config.seeds`. With one: seeds `0..16`, then `0..32`, … (each
/// batch adds the next seeds in order), stopping once the per-section rate is decided or the
/// budget `config.seeds` is spent; the seeds run depend only on the results, never on the
/// threads, so every run replays.
pub(super) fn sample(
    s: &Scenario,
    ttl_ms: u64,
    setting: &Setting,
    config: &TuneConfig,
    bisected: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> TunePoint {
    let (mut t, decision) = match config.max_risk {
        None => (run_seeds(s, 0, config.seeds, config.jobs, progress), None),
        Some(risk) => {
            let mut t = Tally::default();
            let mut upto = FIRST_BATCH.min(config.seeds);
            loop {
                t.add(run_seeds(s, t.seeds, upto, config.jobs, progress));
                let d = decide(&per_section(&t), t.inconclusive, risk);
                // More seeds cannot make up for seeds that could not be judged.
                if d != Decision::Undecided || upto == config.seeds || t.inconclusive > 0 {
                    break (t, Some(d));
                }
                upto = upto.saturating_mul(2).min(config.seeds);
            }
        }
    };
    let duration_s = s.duration_ms as f64 / 1000.0 * t.seeds as f64;
    TunePoint {
        ttl_ms,
        setting: setting.clone(),
        seeds: t.seeds,
        mutual_exclusion_violations: t.me,
        unsafe_write_violations: t.unsafe_writes,
        unavailable_ms: percentiles(&mut t.unavailable, 0.5, 1.0),
        acquire_ms: percentiles(&mut t.acquire, 0.5, 0.99),
        acquisitions: t.acquisitions,
        gave_up: t.gave_up,
        throughput_per_s: t.sections as f64 / duration_s.max(1e-9),
        inconclusive: t.inconclusive,
        per_seed: Rate::wilson(t.broken_seeds, t.seeds - t.inconclusive),
        per_section: per_section(&t),
        decision,
        bisected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_with_an_inconclusive_seed_is_never_safe() {
        let clean = Rate::wilson(0, 100_000);
        assert_eq!(decide(&clean, 0, 1e-3), Decision::Safe);
        assert_eq!(decide(&clean, 1, 1e-3), Decision::Undecided);
        let broken = Rate::wilson(500, 1_000);
        assert_eq!(decide(&broken, 1, 1e-3), Decision::Broken);
    }
}
