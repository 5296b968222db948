//! A deterministic discrete-event simulator for Redis locks.
//!
//! One event queue ordered by (true time, sequence), one seed split into per-component ChaCha
//! streams (network, each client), no threads and no wall clock: the same scenario and seed
//! give the same history, byte for byte. The clients run `lock-core`'s [`lock_core::LockMachine`],
//! the very machine the real-Redis driver runs.
//!
//! Every fault's node and client names are resolved once, before the run. A scenario built
//! in code that cannot be played as written (a file like it does not validate) — a fault
//! names a node or client it does not have, or its recipe cannot run on its lock instances —
//! is not played: its history is the run's start, one [`checker::Event::Inconclusive`] per
//! reason (naming the fault and the name, or the recipe field), and the run's end, so its
//! verdict is inconclusive rather than a verdict on another scenario.

#![deny(missing_docs)]

pub mod node;

mod client;
mod events;
mod fork;
mod network;
mod queue;
mod world;

pub use fork::Fork;
pub use world::SimRun;

use scenario::Scenario;

/// How many events one run may process before it stops, cut short ([`SimRun::cut_short`]).
///
/// Simulated time is free, so `duration_ms` alone bounds nothing: zero latency with zero
/// backoff never advances the clock, and a million iterations of zero-length work fill
/// gigabytes. The budget is a count, never wall clock, so a cut-short run is as
/// deterministic as any other. The busiest shipped scenario uses under 2,000 events; one
/// million keeps a run's history to a few hundred megabytes at most.
pub const EVENT_BUDGET: u64 = 1_000_000;

/// Plays a validated scenario with `seed` and returns its history, stopping after
/// [`EVENT_BUDGET`] events.
///
/// A scenario that skipped validation and cannot be played as written (a fault names an
/// unknown node or client, or the recipe cannot run on its lock instances) is not played
/// (see the crate documentation).
pub fn run(scenario: &Scenario, seed: u64) -> SimRun {
    run_with_budget(scenario, seed, EVENT_BUDGET)
}

/// [`run`] with another event budget.
pub fn run_with_budget(scenario: &Scenario, seed: u64, budget: u64) -> SimRun {
    match world::World::new(scenario, seed) {
        Ok(world) => world.run(seed, budget),
        Err(unplayable) => world::not_played(scenario, seed, &unplayable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::Event as H;
    use std::path::Path;

    #[test]
    fn a_recipe_that_cannot_run_gives_an_inconclusive_history_naming_the_field() {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/safe-unique-token.json");
        let mut sc = Scenario::load(&file).unwrap();
        sc.recipe.ttl_ms = Some(0);
        let run = run(&sc, 1);
        let events: Vec<&H> = run.records.iter().map(|r| &r.event).collect();
        assert!(matches!(
            events[..],
            [H::RunStarted(_), H::Inconclusive { .. }, H::RunEnded {}]
        ));
        let H::Inconclusive { reason } = events[1] else {
            unreachable!()
        };
        assert!(reason.contains("recipe.ttl_ms"), "{reason}");
        assert_eq!((run.events, run.cut_short), (0, None));
    }
}
