//! A simulated lock user: the lock core plus its workload state.

use crate::clock::Clock;
use crate::world::Ev;
use lock_core::{LockMachine, Op, Recipe, RequestId, TimerId};
use rand_chacha::ChaCha8Rng;
use scenario::ClientSpec;
use std::collections::BTreeMap;

/// Where a client is in its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Idle,
    Acquiring,
    Working,
    Committing,
    Releasing,
    Thinking,
    Done,
}

/// One client: its lock machine, clock, RNG stream and workload progress.
pub(crate) struct SimClient {
    pub spec: ClientSpec,
    pub machine: LockMachine,
    pub rng: ChaCha8Rng,
    pub clock: Clock,
    pub phase: Phase,
    pub crashed: bool,
    pub paused: bool,
    /// Events that reached the client while it was paused, in arrival order.
    pub deferred: Vec<Ev>,
    pub iteration: u32,
    pub section_open: bool,
    pub fencing: Option<u64>,
    pub work_gen: u64,
    pub work_due: Option<u64>,
    pub think_gen: u64,
    pub think_due: Option<u64>,
    /// The lock machine's pending timers, by local deadline.
    pub machine_timers: BTreeMap<TimerId, u64>,
    /// Requests in flight: which instance, which operation.
    pub requests: BTreeMap<RequestId, (usize, Op)>,
}

impl SimClient {
    pub(crate) fn new(
        spec: ClientSpec,
        recipe: Recipe,
        key: &str,
        instances: usize,
        clock: Clock,
        rng: ChaCha8Rng,
    ) -> SimClient {
        SimClient {
            spec,
            machine: LockMachine::new(recipe, key, instances),
            rng,
            clock,
            phase: Phase::Idle,
            crashed: false,
            paused: false,
            deferred: Vec::new(),
            iteration: 1,
            section_open: false,
            fencing: None,
            work_gen: 0,
            work_due: None,
            think_gen: 0,
            think_due: None,
            machine_timers: BTreeMap::new(),
            requests: BTreeMap::new(),
        }
    }
}
