//! Faults and client starts that wait for an observed state (`after`): when the condition is
//! seen they are scheduled, and a condition never seen makes the run inconclusive.

use super::{World, MS};
use crate::events::Ev;
use checker::{Effect, Event as H};
use lock_core::{Command, Wire};
use scenario::{Condition, Forwarded};

/// What waits for a condition: a fault (index) or a client start (index).
#[derive(Debug, Clone, Copy)]
pub(super) enum Waiting {
    Fault(usize),
    Start(usize),
}

/// A fault or client start that waits for an observed state (`after`).
#[derive(Debug, Clone)]
pub(super) struct Waiter<'s> {
    what: Waiting,
    /// Not before this true time (`at_ms`, `start_ms`), µs.
    at: u64,
    after: &'s scenario::After,
    /// Whether the condition was seen (or the wait timed out): nothing more to do.
    done: bool,
}

/// The event that carries out a fault or a client start.
fn event_for(what: Waiting) -> Ev {
    match what {
        Waiting::Fault(i) => Ev::Fault(i),
        Waiting::Start(c) => Ev::ClientStart(c),
    }
}

impl World<'_> {
    /// Puts every fault and client start on the queue: at its time, or (with `after`) its
    /// condition's deadline, to be scheduled when the condition is seen.
    pub(super) fn schedule_faults_and_starts(&mut self) {
        let sc = self.sc;
        let starts = sc.clients.iter().map(|c| (c.start_ms, c.after.as_ref()));
        let faults = sc.faults.iter().map(|f| (f.at_ms, f.after.as_ref()));
        let all = faults
            .enumerate()
            .map(|(i, f)| (Waiting::Fault(i), f))
            .chain(starts.enumerate().map(|(i, c)| (Waiting::Start(i), c)));
        for (what, (at_ms, after)) in all {
            let at = at_ms * MS;
            match after {
                None => self.queue.push(at, event_for(what)),
                Some(after) => {
                    let deadline = at.saturating_add(after.timeout_ms * MS);
                    self.queue
                        .push(deadline, Ev::ConditionDeadline(self.waiters.len()));
                    self.waiters.push(Waiter {
                        what,
                        at,
                        after,
                        done: false,
                    });
                }
            }
        }
    }

    /// Schedules whatever waits for a state the last record shows.
    pub(super) fn wake_waiters(&mut self) {
        let Some(last) = self.records.last() else {
            return;
        };
        let event = &last.event;
        for w in self.waiters.iter_mut().filter(|w| !w.done) {
            if w.after.condition.met_by(event) {
                w.done = true;
                let at = w.at.max(self.now + w.after.delay_ms * MS);
                self.queue.push(at, event_for(w.what));
            }
        }
    }

    /// A client's command reached a node (`ev`, past the link's cuts): when a fault or start
    /// waits for it (`after.forwarded`) it is recorded as forwarded, which schedules what
    /// waits at this very instant, ahead of the node's reply. Nothing is recorded when nothing
    /// waits for it, so other histories are unchanged.
    pub(super) fn command_delivered(&mut self, ev: &Ev) {
        let Ev::Request {
            node,
            client,
            command,
            ..
        } = ev
        else {
            return;
        };
        if !self.nodes[*node].up {
            return;
        }
        let name = &self.sc.clients[*client].name;
        let seen = self
            .waiters
            .iter()
            .filter(|w| !w.done)
            .find_map(|w| match &w.after.condition {
                Condition::Forwarded(f) if f.client == *name => sent_as(command, f),
                _ => None,
            });
        if let Some((command, key)) = seen {
            self.observe(Effect::Forwarded {
                client: name.clone(),
                node: self.nodes[*node].name.to_string(),
                command,
                key,
            });
        }
    }

    /// Waiter `i`'s wait times out: if its condition was not seen, the run is inconclusive.
    pub(super) fn condition_deadline(&mut self, i: usize) {
        if !self.waiters[i].done {
            self.waiters[i].done = true;
            let within = format!("within {} ms", self.waiters[i].after.timeout_ms);
            let reason = self.not_seen(i, &within);
            self.record(H::Inconclusive { reason });
        }
    }

    /// The run ended: every condition still not seen makes it inconclusive.
    pub(super) fn conditions_not_seen_by_the_end(&mut self) {
        for i in 0..self.waiters.len() {
            if !self.waiters[i].done {
                let reason = self.not_seen(i, "by the end of the run");
                self.record(H::Inconclusive { reason });
            }
        }
    }

    /// Why waiter `i`'s condition makes the run inconclusive.
    fn not_seen(&self, i: usize, when: &str) -> String {
        let w = &self.waiters[i];
        let what = match w.what {
            Waiting::Fault(f) => format!("faults[{f}] ({})", self.sc.faults[f].action.describe()),
            Waiting::Start(c) => format!("clients[{c}] ({}) start", self.sc.clients[c].name),
        };
        w.after.condition.not_seen(&what, when)
    }
}

/// The name and key `command` goes on the wire with, if it is the one `f` waits for: a plain
/// command by its name and first argument, a script (which a real client sends as `EVALSHA`,
/// or `EVAL`) as whichever of the two `f` names, by one of its `KEYS`.
fn sent_as(command: &Command, f: &Forwarded) -> Option<(String, String)> {
    match command.wire() {
        Wire::Plain(words) => {
            let name = words.first()?.to_string();
            let key = words.get(1)?.to_string();
            f.matches(&name, &key).then_some((name, key))
        }
        Wire::Script { keys, .. } => {
            let name = ["EVALSHA", "EVAL"]
                .into_iter()
                .find(|n| f.command.eq_ignore_ascii_case(n))?;
            let key = keys.into_iter().find(|k| f.matches(name, k))?;
            Some((name.to_string(), key.to_string()))
        }
    }
}
