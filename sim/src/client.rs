//! A simulated client process: the shared client host plus what only the simulator has —
//! crashes, stop-the-world pauses and the events held back during one.

use crate::events::Ev;
use workload::Host;

/// One simulated client process.
#[derive(Debug, Clone)]
pub(crate) struct SimClient {
    pub host: Host,
    pub crashed: bool,
    pub paused: bool,
    /// Events that reached the client while it was paused, in arrival order.
    pub deferred: Vec<Ev>,
}

impl SimClient {
    pub(crate) fn new(host: Host) -> SimClient {
        SimClient {
            host,
            crashed: false,
            paused: false,
            deferred: Vec::new(),
        }
    }
}
