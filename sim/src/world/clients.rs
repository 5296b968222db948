//! Hosting the clients: feeding each one's [`workload::Host`] its inputs, carrying out what it
//! asks (requests, timers, resource writes, records, crashes), pauses and crashes.

use super::World;
use crate::events::Ev;
use crate::network::Party;
use checker::{Effect as Seen, Event as H, Healed, PartitionMode};
use scenario::Topology;
use workload::{Input, Output, Timer};

impl World<'_> {
    /// Client `c`'s name.
    pub(super) fn client_name(&self, c: usize) -> String {
        self.clients[c].host.client().name().to_string()
    }

    /// True when the client may act on `ev` now; a paused client keeps it for later.
    pub(super) fn client_ready(&mut self, c: usize, ev: &Ev) -> bool {
        let cl = &mut self.clients[c];
        if cl.crashed {
            return false;
        }
        if cl.paused {
            cl.deferred.push(ev.clone());
            return false;
        }
        true
    }

    /// A paused client thaws: what reached it meanwhile is handled now.
    pub(super) fn resume_client(&mut self, c: usize) {
        self.clients[c].paused = false;
        let client = self.client_name(c);
        self.record(H::Heal(Healed::ResumeClient {
            client: client.clone(),
        }));
        self.observe(Seen::ClientResumed { client });
        for ev in std::mem::take(&mut self.clients[c].deferred) {
            self.queue.push(self.now, ev);
        }
    }

    /// The node a client's lock instance `instance` is served by.
    fn route(&self, instance: usize) -> usize {
        match self.sc.topology {
            Topology::Replicated { .. } => self.primary,
            _ => instance,
        }
    }

    /// Feeds one input to client `c`'s loop and carries out what it asks.
    pub(super) fn feed(&mut self, c: usize, input: Input) {
        let mut out = std::mem::take(&mut self.outputs);
        self.clients[c].host.handle(input, self.now, &mut out);
        self.carry_out(c, &mut out);
        self.outputs = out;
    }

    /// Carries out what client `c` asked, in order.
    pub(super) fn carry_out(&mut self, c: usize, out: &mut Vec<Output>) {
        let mut i = 0;
        while i < out.len() {
            let o = std::mem::replace(&mut out[i], Output::Crash);
            i += 1;
            match o {
                Output::Send {
                    instance,
                    request,
                    command,
                } => {
                    let node = self.route(instance);
                    let (from, to) = (Party::Client(c), Party::Node(node));
                    if self.net.mode(from, to) == Some(PartitionMode::Reset) {
                        // A reset cut refuses the connection at once.
                        let why = format!(
                            "{}: connection refused (partitioned, reset)",
                            self.nodes[node].name
                        );
                        self.queue.push(
                            self.now,
                            Ev::Refused {
                                client: c,
                                request,
                                why,
                            },
                        );
                        continue;
                    }
                    let at = self.conn_index(c, node);
                    let waiting = &mut self.inflight[at];
                    if let Err(i) = waiting.binary_search(&request) {
                        waiting.insert(i, request);
                    }
                    if let Some(at) = self.net.deliver_at(from, to, self.now, false) {
                        let ev = Ev::Request {
                            node,
                            client: c,
                            request,
                            command,
                            conn: self.net.conn(from, to),
                        };
                        self.queue.push(at, ev);
                    }
                }
                Output::Timer { timer, at } => self.schedule_client_timer(c, at, timer),
                Output::Write {
                    commit,
                    fencing_token,
                } => {
                    let ev = Ev::WriteArrives {
                        client: c,
                        fencing: fencing_token,
                        commit,
                    };
                    let (from, to) = (Party::Client(c), Party::Resource);
                    match self.net.mode(from, to) {
                        Some(PartitionMode::Reset) if commit => {
                            // The write is refused at once: the client gives up.
                            self.clients[c].host.commit_failed(self.now, out);
                        }
                        Some(PartitionMode::Reset) => {}
                        _ => {
                            if let Some(at) = self.net.deliver_at(from, to, self.now, true) {
                                self.queue.push(at, ev);
                            }
                        }
                    }
                }
                Output::Record(event) => {
                    if matches!(event, H::AcquireStarted { .. }) {
                        self.note_owner(c);
                    }
                    self.record(event);
                }
                Output::Crash => self.crash_client(c),
            }
        }
        out.clear();
    }

    /// Remembers whose value the client's fresh token is, for key-change records.
    fn note_owner(&mut self, c: usize) {
        let name = self.clients[c].host.client().name();
        let token = self.clients[c].host.client().token();
        match self.owners.get_mut(token) {
            Some(owner) if owner.as_deref() != Some(name) => *owner = None,
            Some(_) => {}
            None => {
                let (token, name) = (token.clone(), name.clone());
                self.owners.insert(token, Some(name));
            }
        }
    }

    /// Kills client `c`'s process: it does nothing more.
    pub(super) fn crash_client(&mut self, c: usize) {
        let cl = &mut self.clients[c];
        if cl.crashed {
            return;
        }
        cl.crashed = true;
        cl.deferred.clear();
        let client = cl.host.client().name().clone();
        self.record(H::ClientCrashed { client });
    }

    fn schedule_client_timer(&mut self, c: usize, local_at: u64, timer: Timer) {
        let clock = self.clients[c].host.clock();
        let at = clock.true_at(local_at, self.now);
        let epoch = clock.epoch;
        self.queue.push(
            at,
            Ev::ClientTimer {
                client: c,
                epoch,
                timer,
            },
        );
    }

    /// Schedules client `c`'s pending timers again after its clock moved.
    pub(super) fn replan_client_timers(&mut self, c: usize) {
        let plan: Vec<(Timer, u64)> = self.clients[c].host.pending_timers().collect();
        for (timer, at) in plan {
            self.schedule_client_timer(c, at, timer);
        }
    }

    /// Client `c`'s timer fires (its epoch was checked).
    pub(super) fn client_timer(&mut self, c: usize, timer: Timer) {
        let mut out = std::mem::take(&mut self.outputs);
        if self.clients[c].host.fire(timer, self.now, &mut out) {
            self.carry_out(c, &mut out);
        }
        self.outputs = out;
    }

    /// The commit write of client `c`, or its acknowledgement, was lost to a cut: the client
    /// gives up the commit, as when the write is refused.
    pub(super) fn commit_lost(&mut self, c: usize) {
        let mut out = std::mem::take(&mut self.outputs);
        self.clients[c].host.commit_failed(self.now, &mut out);
        self.carry_out(c, &mut out);
        self.outputs = out;
    }

    /// Closes the connection of client `c` to node `node` (a reset, or a blackholed one at the
    /// heal): what is in flight on it is lost, and the client's driver fails every request it
    /// still awaits on it at once.
    pub(super) fn close_conn(&mut self, c: usize, node: usize, why: &str) {
        self.net.close(Party::Client(c), Party::Node(node));
        let name = &self.nodes[node].name;
        let at = self.conn_index(c, node);
        let waiting = std::mem::take(&mut self.inflight[at]);
        for request in waiting {
            let why = format!("{name}: {why}");
            self.queue.push(
                self.now,
                Ev::Refused {
                    client: c,
                    request,
                    why,
                },
            );
        }
    }
}
