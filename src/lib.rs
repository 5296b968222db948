//! locksim: deterministic simulation and correctness testing for Redis locks.
//!
//! The workspace's crates, re-exported for tests and benches: [`lock_core`] (the protocol),
//! [`sim`] (the simulator), [`checker`] (histories and verdicts), [`scenario`] (scenario
//! files). [`play`] runs one scenario and judges it against its `expect`.

#![deny(missing_docs)]

pub mod play;

pub use {checker, lock_core, scenario, sim};
