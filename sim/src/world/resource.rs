//! The protected resource: it takes every write that reaches it (refusing a stale fencing
//! token if it checks them), records it, and acknowledges it to the client.

use super::World;
use crate::events::Ev;
use crate::network::Party;

impl World<'_> {
    /// Client `c`'s write reaches the resource.
    pub(super) fn resource_write(&mut self, c: usize, fencing: Option<u64>, commit: bool) {
        let write = self
            .resource
            .take_write(self.clients[c].host.client().name(), fencing);
        self.record(write);
        if let Some(at) = self
            .net
            .deliver_at(Party::Resource, Party::Client(c), self.now, true)
        {
            self.queue.push(at, Ev::WriteAck { client: c, commit });
        }
    }
}
