//! A simulated client process: the shared client loop plus what only the simulator has —
//! a local clock, an RNG stream, pauses, and the timers it has asked for.

use crate::world::Ev;
use lock_core::TimerId;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use workload::clock::Clock;
use workload::ClientLoop;

/// One simulated client process.
pub(crate) struct SimClient {
    pub lp: ClientLoop,
    pub rng: ChaCha8Rng,
    pub clock: Clock,
    pub crashed: bool,
    pub paused: bool,
    /// Events that reached the client while it was paused, in arrival order.
    pub deferred: Vec<Ev>,
    /// The lock machine's pending timers, by local deadline.
    pub machine_timers: BTreeMap<TimerId, u64>,
    /// The pending work timer: (generation, local deadline).
    pub work_due: Option<(u64, u64)>,
    /// The pending think timer: (generation, local deadline).
    pub think_due: Option<(u64, u64)>,
}

impl SimClient {
    pub(crate) fn new(lp: ClientLoop, clock: Clock, rng: ChaCha8Rng) -> SimClient {
        SimClient {
            lp,
            rng,
            clock,
            crashed: false,
            paused: false,
            deferred: Vec::new(),
            machine_timers: BTreeMap::new(),
            work_due: None,
            think_due: None,
        }
    }
}
