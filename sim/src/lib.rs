//! A deterministic discrete-event simulator for Redis locks.
//!
//! One event queue ordered by (true time, sequence), one seed split into per-component ChaCha
//! streams (network, each client), no threads and no wall clock: the same scenario and seed
//! give the same history, byte for byte. The clients run `lock-core`'s [`lock_core::LockMachine`],
//! the very machine the real-Redis driver runs.

pub mod network;
pub mod node;
pub mod queue;

mod client;
mod world;

pub use world::SimRun;

use scenario::Scenario;

/// Plays a validated scenario with `seed` and returns its history.
pub fn run(scenario: &Scenario, seed: u64) -> SimRun {
    world::World::new(scenario, seed).run(seed)
}
