//! Unit tests of the world's concepts on small scenarios, driven event by event: the tests
//! write to nodes and issue `WAIT`s directly, play the queue up to a time, and look at the
//! nodes, the replies that reach the client and the history.
//!
//! The one client of these scenarios starts at the very end of the run, so nothing but the
//! test (and the scenario's faults) acts on the nodes.

mod names;
mod partition;
mod replication;
mod sentinel;

use super::{Role, World};
use crate::events::Ev;
use checker::{Effect as Seen, Event as H, Record};
use lock_core::{Command, Reply, RequestId};
use scenario::Scenario;
use std::path::Path;

/// µs per ms.
const MS: u64 = super::MS;

/// How long the test scenarios run (the client starts at the end).
const DURATION_MS: u64 = 10_000;

/// A validated scenario with `topology` (JSON) and `faults` (a JSON list's items); the
/// network's latency is the default fixed 0.2 ms.
fn scenario(topology: &str, faults: &str) -> Scenario {
    let text = format!(
        r#"{{
            "name": "unit",
            "duration_ms": {DURATION_MS},
            "topology": {topology},
            "resource": {{"key": "lock"}},
            "clients": [{{"name": "A", "start_ms": {DURATION_MS}}}],
            "faults": [{faults}],
            "expect": {{"mutual_exclusion": "holds"}}
        }}"#
    );
    Scenario::parse(&text, Path::new("unit.json")).unwrap_or_else(|e| panic!("{e}"))
}

/// A replicated topology: `replicas` replicas, `lag_ms` of replication lag, and `more`
/// (further JSON fields, each followed by a comma).
fn replicated(replicas: usize, lag_ms: f64, more: &str) -> String {
    format!(
        r#"{{"replicated": {{{more} "replicas": {replicas}, "replication_lag_ms": {lag_ms}}}}}"#
    )
}

/// The world of `sc`, with seed 1.
fn world(sc: &Scenario) -> World<'_> {
    World::new(sc, 1).unwrap_or_else(|e| panic!("{e:?}"))
}

/// A reply that reached the client, at true time `t_us`.
#[derive(Debug, Clone, PartialEq)]
struct Replied {
    t_us: u64,
    request: RequestId,
    reply: Reply,
}

impl World<'_> {
    /// Plays every event due by `t_ms` of true time and moves the clock there. Replies to the
    /// client are taken off the queue and returned (the client is not started).
    fn play_until(&mut self, t_ms: u64) -> Vec<Replied> {
        let until = t_ms * MS;
        let mut replies = Vec::new();
        while self.queue.next_at().is_some_and(|at| at <= until) {
            let Some((t, ev)) = self.queue.pop() else {
                break;
            };
            self.now = t;
            match ev {
                Ev::Reply { request, reply, .. } => replies.push(Replied {
                    t_us: t,
                    request,
                    reply,
                }),
                ev => self.dispatch(ev),
            }
        }
        self.now = until;
        replies
    }

    /// Sets the lock key to `value` (no expiry) on node `n`, now, as a client's `SET` would.
    fn write(&mut self, n: usize, value: &str) -> Reply {
        let command = Command::Set {
            key: self.key.clone(),
            value: value.into(),
            ttl_ms: None,
        };
        self.execute(n, &command)
    }

    /// The value of the lock key on node `n`, if it has one.
    fn value_on(&self, n: usize) -> Option<&str> {
        let entry = self.nodes[n].keyspace.peek(&self.key, 0)?;
        Some(entry.value.as_str())
    }

    /// The node index named `name`.
    fn node(&self, name: &str) -> usize {
        let found = self.nodes.iter().position(|n| n.name == name);
        found.unwrap_or_else(|| panic!("no node {name}"))
    }

    /// The history's records matching `f`.
    fn records_where(&self, f: impl Fn(&H) -> bool) -> Vec<&Record> {
        self.records.iter().filter(|r| f(&r.event)).collect()
    }

    /// When the history observed `seen`, in ms of true time.
    fn observed_at(&self, seen: &Seen) -> Vec<f64> {
        let hits = self.records_where(|e| matches!(e, H::Observed(s) if s == seen));
        hits.iter().map(|r| r.t_us as f64 / MS as f64).collect()
    }
}
