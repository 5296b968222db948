//! A run that stops between events: it can be copied, given a fault where it stands, and
//! played on. Exhaustive exploration forks one run at every event boundary instead of
//! replaying each schedule from the start.

use crate::world::{SimRun, World};
use crate::EVENT_BUDGET;
use scenario::{FaultAction, Scenario};

/// Microseconds per millisecond.
const MS: u64 = 1_000;

/// A simulated run stopped at a whole millisecond: every event due before it has happened,
/// none due at or after it. A fault injected now strikes at that millisecond, before the
/// events due then, exactly as a scenario fault with that `at_ms` would: a fork that takes
/// faults and the scenario that lists them give the same history, byte for byte.
#[derive(Debug, Clone)]
pub struct Fork<'s> {
    world: World<'s>,
}

impl<'s> Fork<'s> {
    /// The run of `scenario` with `seed`, stopped at 0 ms before anything happened; or why
    /// the scenario cannot be played (a fault or clock naming nothing, a recipe that cannot
    /// run), one reason per problem.
    pub fn new(scenario: &'s Scenario, seed: u64) -> Result<Fork<'s>, Vec<String>> {
        let mut world = World::new(scenario, seed).map_err(|u| u.0)?;
        world.begin(seed);
        Ok(Fork { world })
    }

    /// Plays every event due before `at_ms` and stops there (never past the run's end, nor
    /// past the simulator's event budget).
    pub fn run_until(&mut self, at_ms: u64) {
        let until = at_ms.saturating_mul(MS);
        self.world.advance(until, EVENT_BUDGET);
        self.world.stand_at(until);
    }

    /// The next millisecond at which a fault would strike at a different point of the run:
    /// the millisecond after the next event's, or `None` when nothing more happens before
    /// the end (or the event budget ran out).
    pub fn next_boundary_ms(&self) -> Option<u64> {
        let end = self.world.end();
        (self.world.next_event_at())
            .map(|t| t / MS + 1)
            .filter(|ms| ms.saturating_mul(MS) <= end)
    }

    /// Where the run stands, in milliseconds.
    pub fn at_ms(&self) -> u64 {
        self.world.now() / MS
    }

    /// Injects `action` where the run stands; refused when it names a node, client or party
    /// the scenario does not have.
    pub fn inject(&mut self, action: &FaultAction) -> Result<(), String> {
        self.world.inject_now(action).map_err(|e| e.to_string())
    }

    /// A hash of the simulated state (not of the history): two forks with one fingerprint
    /// have the same future.
    pub fn fingerprint(&self) -> u64 {
        self.world.fingerprint()
    }

    /// Plays the rest of the run and returns its history.
    pub fn finish(mut self) -> SimRun {
        self.world.advance(u64::MAX, EVENT_BUDGET);
        self.world.finish()
    }
}
