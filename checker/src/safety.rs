//! Safety properties: mutual exclusion, unsafe writes, fencing, foreign releases, set-once.

use crate::history::{Event, Record};
use crate::property::Property;
use crate::verdict::{ms, Finding};
use lock_core::{Op, Reply};
use std::collections::BTreeMap;

/// A finding without its faults (the caller fills them in).
pub(crate) fn finding(
    property: Property,
    clients: Vec<String>,
    times_us: Vec<u64>,
    message: String,
) -> Finding {
    Finding {
        property,
        clients,
        times_us,
        faults_before: Vec::new(),
        message,
    }
}

/// The latest true time in the history (0 when it is empty).
pub(crate) fn end_of_history(records: &[Record]) -> u64 {
    records.iter().map(|r| r.t_us).max().unwrap_or(0)
}

/// A span during which one client held the lock.
struct Interval<'a> {
    /// Index of the `Acquired` record, to keep record order among equal starts.
    index: usize,
    client: &'a str,
    start: u64,
    end: u64,
}

/// Closes a client's open spans at `end`.
fn close<'a>(done: &mut Vec<Interval<'a>>, client: &'a str, spans: Vec<(usize, u64)>, end: u64) {
    for (index, start) in spans {
        done.push(Interval {
            index,
            client,
            start,
            end,
        });
    }
}

/// Every holding interval, sorted by start then record order.
fn holding_intervals(records: &[Record]) -> Vec<Interval<'_>> {
    let mut open: BTreeMap<&str, Vec<(usize, u64)>> = BTreeMap::new();
    let mut done = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match &r.event {
            Event::Acquired { client, .. } => {
                open.entry(client.as_str()).or_default().push((i, r.t_us));
            }
            Event::SectionEnded { client, .. } | Event::ClientCrashed { client } => {
                if let Some(spans) = open.remove(client.as_str()) {
                    close(&mut done, client.as_str(), spans, r.t_us);
                }
            }
            Event::RunEnded {} => {
                for (client, spans) in std::mem::take(&mut open) {
                    close(&mut done, client, spans, r.t_us);
                }
            }
            _ => {}
        }
    }
    let end = end_of_history(records);
    for (client, spans) in open {
        close(&mut done, client, spans, end);
    }
    done.sort_by_key(|iv| (iv.start, iv.index));
    done
}

/// Two clients' holding intervals overlap.
pub(crate) fn mutual_exclusion(records: &[Record]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut active: Vec<Interval<'_>> = Vec::new();
    for b in holding_intervals(records) {
        // Intervals sorted by start: one ending at or before b's start overlaps nothing later.
        active.retain(|a| a.end > b.start);
        for a in &active {
            if a.client != b.client && a.start < b.end && b.start < a.end {
                let (from, to) = (a.start.max(b.start), a.end.min(b.end));
                out.push(finding(
                    Property::MutualExclusion,
                    vec![a.client.to_string(), b.client.to_string()],
                    vec![from, to],
                    format!(
                        "{} and {} both held the lock from {} to {}",
                        a.client,
                        b.client,
                        ms(from),
                        ms(to)
                    ),
                ));
            }
        }
        active.push(b);
    }
    out
}

/// An accepted write under an older grant than one already accepted, or under no grant.
pub(crate) fn unsafe_writes(records: &[Record]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut grants: u64 = 0;
    // Each client's most recent grant number.
    let mut latest: BTreeMap<&str, u64> = BTreeMap::new();
    // The newest grant accepted so far: (grant, client, time of that write).
    let mut newest: Option<(u64, &str, u64)> = None;
    for r in records {
        match &r.event {
            Event::Acquired { client, .. } => {
                grants += 1;
                latest.insert(client.as_str(), grants);
            }
            Event::Write {
                client,
                accepted: true,
                ..
            } => match latest.get(client.as_str()) {
                None => out.push(finding(
                    Property::UnsafeWrites,
                    vec![client.clone()],
                    vec![r.t_us],
                    format!(
                        "{client}'s write at {} was accepted though {client} had never acquired the lock",
                        ms(r.t_us)
                    ),
                )),
                Some(&g) => match newest {
                    Some((ng, nc, nt)) if g < ng => out.push(finding(
                        Property::UnsafeWrites,
                        vec![client.clone(), nc.to_string()],
                        vec![nt, r.t_us],
                        format!(
                            "{client}'s write at {} under grant #{g} was accepted after {nc}'s write at {} under newer grant #{ng}",
                            ms(r.t_us),
                            ms(nt)
                        ),
                    )),
                    Some((ng, _, _)) if g == ng => {}
                    _ => newest = Some((g, client.as_str(), r.t_us)),
                },
            },
            _ => {}
        }
    }
    out
}

/// A fencing token not above every earlier one.
pub(crate) fn fencing_monotonic(records: &[Record]) -> Vec<Finding> {
    let mut out = Vec::new();
    // The highest token so far: (token, client, time).
    let mut max: Option<(u64, &str, u64)> = None;
    for r in records {
        if let Event::Acquired {
            client,
            fencing_token: Some(tok),
            ..
        } = &r.event
        {
            match max {
                Some((m, mc, mt)) if *tok <= m => out.push(finding(
                    Property::FencingMonotonic,
                    vec![mc.to_string(), client.clone()],
                    vec![mt, r.t_us],
                    format!(
                        "{client} was granted fencing token {tok} at {}, not above token {m} granted to {mc} at {}",
                        ms(r.t_us),
                        ms(mt)
                    ),
                )),
                _ => max = Some((*tok, client.as_str(), r.t_us)),
            }
        }
    }
    out
}

/// A release that deleted a key last granted to another client.
pub(crate) fn foreign_release(records: &[Record]) -> Vec<Finding> {
    // A command executes somewhere between its sending and its reply, so every grant and
    // release is known only as an interval. A deletion is judged foreign only when that is
    // certain: another client's grant had surely executed (its reply was in) before the
    // release left, and none of the releaser's own grants can have landed after it.
    struct Grant<'a> {
        client: &'a str,
        sent: u64,
        received: u64,
    }
    let mut out = Vec::new();
    let mut grants: BTreeMap<usize, Vec<Grant>> = BTreeMap::new();
    let mut sent: BTreeMap<(&str, u64), u64> = BTreeMap::new();
    for r in records {
        let (client, instance, request, op, reply) = match &r.event {
            Event::CommandSent {
                client, request, ..
            } => {
                sent.insert((client.as_str(), *request), r.t_us);
                continue;
            }
            Event::ReplyReceived {
                client,
                instance,
                request,
                op,
                reply,
            } => (client.as_str(), *instance, *request, op, reply),
            _ => continue,
        };
        let sent_at = sent.get(&(client, request)).copied().unwrap_or(r.t_us);
        let deleted_or_granted =
            matches!(reply, Reply::Ok) || matches!(reply, Reply::Int(n) if *n >= 1);
        match op {
            Op::Acquire if deleted_or_granted => grants.entry(instance).or_default().push(Grant {
                client,
                sent: sent_at,
                received: r.t_us,
            }),
            Op::Release if matches!(reply, Reply::Int(n) if *n >= 1) => {
                let seen = grants.get(&instance).map(Vec::as_slice).unwrap_or(&[]);
                let Some(other) = seen
                    .iter()
                    .filter(|g| g.client != client && g.received <= sent_at)
                    .max_by_key(|g| g.received)
                else {
                    continue;
                };
                let own_may_follow = seen
                    .iter()
                    .any(|g| g.client == client && g.sent < r.t_us && g.received > other.sent);
                if own_may_follow {
                    continue;
                }
                let owner = other.client;
                out.push(finding(
                    Property::ForeignRelease,
                    vec![client.to_string(), owner.to_string()],
                    vec![other.received, r.t_us],
                    format!(
                        "{client} deleted {owner}'s lock on instance {instance} at {} ({owner} was granted it at {})",
                        ms(r.t_us),
                        ms(other.received)
                    ),
                ));
            }
            _ => {}
        }
    }
    out
}

/// A set-once key won by more than one client.
pub(crate) fn set_once(records: &[Record]) -> Vec<Finding> {
    // Per key: each distinct winner and the time of its first win, in win order.
    let mut winners: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for r in records {
        if let Event::SetOnceWon { client, key } = &r.event {
            let w = winners.entry(key.as_str()).or_default();
            if !w.iter().any(|(c, _)| *c == client) {
                w.push((client.as_str(), r.t_us));
            }
        }
    }
    winners
        .into_iter()
        .filter(|(_, w)| w.len() > 1)
        .map(|(key, w)| {
            let list: Vec<String> = w
                .iter()
                .map(|(c, t)| format!("{c} at {}", ms(*t)))
                .collect();
            finding(
                Property::SetOnce,
                w.iter().map(|(c, _)| c.to_string()).collect(),
                w.iter().map(|(_, t)| *t).collect(),
                format!(
                    "set-once key {key} was won by {} clients: {}",
                    w.len(),
                    list.join(", ")
                ),
            )
        })
        .collect()
}
