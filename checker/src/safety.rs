//! Safety properties: mutual exclusion, unsafe writes, fencing, foreign releases, set-once.

use crate::check::Findings;
use crate::history::{Event, Record};
use crate::property::Property;
use crate::verdict::{ms, Finding};
use lock_core::{Op, Reply};
use std::collections::{BTreeMap, BTreeSet};

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
        faults_left_out: 0,
        message,
    }
}

/// The latest true time in the history (0 when it is empty).
pub(crate) fn end_of_history(records: &[Record]) -> u64 {
    records.iter().map(|r| r.t_us).max().unwrap_or(0)
}

/// A span during which one client held the lock: one critical section.
pub(crate) struct Interval<'a> {
    /// Index of the `Acquired` record, to keep record order among equal starts.
    pub(crate) index: usize,
    /// The holder.
    pub(crate) client: &'a str,
    /// When it was granted.
    pub(crate) start: u64,
    /// When its section ended, it crashed, or the run ended.
    pub(crate) end: u64,
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
pub(crate) fn holding_intervals(records: &[Record]) -> Vec<Interval<'_>> {
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
pub(crate) fn mutual_exclusion(records: &[Record], out: &mut Findings) {
    const P: Property = Property::MutualExclusion;
    let ivs = holding_intervals(records);
    // The intervals still open at the current start, by position in `ivs` (so in start then
    // record order) and by end; how many per client; and how many of them start at the
    // current start itself (a zero-length interval overlaps only those that began before).
    let mut active: BTreeSet<usize> = BTreeSet::new();
    let mut by_end: BTreeSet<(u64, usize)> = BTreeSet::new();
    let mut per_client: BTreeMap<&str, u64> = BTreeMap::new();
    let mut here: (u64, u64, BTreeMap<&str, u64>) = (0, 0, BTreeMap::new());
    let dec = |m: &mut BTreeMap<&str, u64>, c: &str| {
        if let Some(n) = m.get_mut(c) {
            *n = n.saturating_sub(1);
        }
    };
    for (j, b) in ivs.iter().enumerate() {
        if j == 0 || b.start != here.0 {
            here = (b.start, 0, BTreeMap::new());
        }
        // Intervals sorted by start: one ending at or before b's start overlaps nothing later.
        while let Some(&(end, i)) = by_end.first() {
            if end > b.start {
                break;
            }
            by_end.pop_first();
            active.remove(&i);
            dec(&mut per_client, ivs[i].client);
            if ivs[i].start == here.0 {
                here.1 = here.1.saturating_sub(1);
                dec(&mut here.2, ivs[i].client);
            }
        }
        let others =
            (active.len() as u64).saturating_sub(per_client.get(b.client).copied().unwrap_or(0));
        let others_here = here
            .1
            .saturating_sub(here.2.get(b.client).copied().unwrap_or(0));
        let overlapping = if b.end > b.start {
            others
        } else {
            others.saturating_sub(others_here)
        };
        if overlapping > 0 && !out.room(P) {
            out.skip(P, overlapping);
        } else if overlapping > 0 {
            for &i in &active {
                let a = &ivs[i];
                if a.client != b.client && a.start < b.end && b.start < a.end {
                    let (from, to) = (a.start.max(b.start), a.end.min(b.end));
                    out.add(P, || {
                        finding(
                            P,
                            vec![a.client.to_string(), b.client.to_string()],
                            vec![from, to],
                            format!(
                                "{} and {} both held the lock from {} to {}",
                                a.client,
                                b.client,
                                ms(from),
                                ms(to)
                            ),
                        )
                    });
                }
            }
        }
        active.insert(j);
        by_end.insert((b.end, j));
        *per_client.entry(b.client).or_default() += 1;
        here.1 += 1;
        *here.2.entry(b.client).or_default() += 1;
    }
}

/// An accepted write the resource should have refused.
pub(crate) enum StaleWrite<'a> {
    /// From a client that had never acquired the lock.
    Ungranted {
        /// The writer.
        client: &'a str,
        /// When the write was accepted.
        t_us: u64,
    },
    /// Under an older grant than one whose write was already accepted.
    Superseded {
        /// The writer.
        client: &'a str,
        /// When the write was accepted.
        t_us: u64,
        /// The writer's grant number (grants counted in history order, from 1).
        grant: u64,
        /// The index of that grant's `Acquired` record: which section wrote.
        acquired_at: usize,
        /// The newer grant already accepted, its writer, and the time of that write.
        newer: (u64, &'a str, u64),
    },
}

/// Every accepted write under an older grant than one already accepted, or under no grant,
/// in history order.
pub(crate) fn stale_writes(records: &[Record]) -> Vec<StaleWrite<'_>> {
    let mut found = Vec::new();
    let mut grants: u64 = 0;
    // Each client's most recent grant number, and the index of its `Acquired` record.
    let mut latest: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    // The newest grant accepted so far: (grant, client, time of that write).
    let mut newest: Option<(u64, &str, u64)> = None;
    for (i, r) in records.iter().enumerate() {
        match &r.event {
            Event::Acquired { client, .. } => {
                grants += 1;
                latest.insert(client.as_str(), (grants, i));
            }
            Event::Write {
                client,
                accepted: true,
                ..
            } => match latest.get(client.as_str()) {
                None => found.push(StaleWrite::Ungranted {
                    client,
                    t_us: r.t_us,
                }),
                Some(&(g, acquired_at)) => match newest {
                    Some(n) if g < n.0 => found.push(StaleWrite::Superseded {
                        client,
                        t_us: r.t_us,
                        grant: g,
                        acquired_at,
                        newer: n,
                    }),
                    Some((ng, _, _)) if g == ng => {}
                    _ => newest = Some((g, client.as_str(), r.t_us)),
                },
            },
            _ => {}
        }
    }
    found
}

/// An accepted write under an older grant than one already accepted, or under no grant.
pub(crate) fn unsafe_writes(records: &[Record], out: &mut Findings) {
    for w in stale_writes(records) {
        out.add(Property::UnsafeWrites, || match w {
            StaleWrite::Ungranted { client, t_us } => finding(
                Property::UnsafeWrites,
                vec![client.to_string()],
                vec![t_us],
                format!(
                    "{client}'s write at {} was accepted though {client} had never acquired the lock",
                    ms(t_us)
                ),
            ),
            StaleWrite::Superseded {
                client,
                t_us,
                grant: g,
                newer: (ng, nc, nt),
                ..
            } => finding(
                Property::UnsafeWrites,
                vec![client.to_string(), nc.to_string()],
                vec![nt, t_us],
                format!(
                    "{client}'s write at {} under grant #{g} was accepted after {nc}'s write at {} under newer grant #{ng}",
                    ms(t_us),
                    ms(nt)
                ),
            ),
        });
    }
}

/// A fencing token not above every earlier one.
pub(crate) fn fencing_monotonic(records: &[Record], out: &mut Findings) {
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
                Some((m, mc, mt)) if *tok <= m => out.add(Property::FencingMonotonic, || finding(
                    Property::FencingMonotonic,
                    vec![mc.to_string(), client.to_string()],
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
}

/// A release that deleted a key last granted to another client.
pub(crate) fn foreign_release(records: &[Record], out: &mut Findings) {
    // A command executes somewhere between its sending and its reply, so every grant and
    // release is known only as an interval. A deletion is judged foreign only when that is
    // certain: another client's grant had surely executed (its reply was in) before the
    // release left, and none of the releaser's own grants can have landed after it.
    struct Grant<'a> {
        client: &'a str,
        sent: u64,
        received: u64,
        /// The last earlier grant on the instance to another client than this one's.
        prev_other: Option<usize>,
    }
    /// One client's grants on one instance, and the last whose reply took time.
    #[derive(Default)]
    struct Own {
        grants: Vec<(u64, u64)>,
        last_slow: Option<usize>,
    }
    // Per instance, grants in reply order (the history's), so each question is a binary
    // search rather than a scan: the check stays n log n however many grants there are.
    let mut grants: BTreeMap<usize, Vec<Grant>> = BTreeMap::new();
    let mut own: BTreeMap<(usize, &str), Own> = BTreeMap::new();
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
            Op::Acquire if deleted_or_granted => {
                let list = grants.entry(instance).or_default();
                let prev_other = list.last().and_then(|last: &Grant| {
                    if last.client != client {
                        Some(list.len() - 1)
                    } else {
                        last.prev_other
                    }
                });
                list.push(Grant {
                    client,
                    sent: sent_at,
                    received: r.t_us,
                    prev_other,
                });
                let mine = own.entry((instance, client)).or_default();
                if sent_at < r.t_us {
                    mine.last_slow = Some(mine.grants.len());
                }
                mine.grants.push((r.t_us, sent_at));
            }
            Op::Release if matches!(reply, Reply::Int(n) if *n >= 1) => {
                let seen = grants.get(&instance).map(Vec::as_slice).unwrap_or(&[]);
                // The latest grant to another client whose reply was in before the release left.
                let upto = seen.partition_point(|g| g.received <= sent_at);
                let other = match upto.checked_sub(1) {
                    Some(i) if seen[i].client != client => Some(i),
                    Some(i) => seen[i].prev_other,
                    None => None,
                };
                let Some(other) = other.map(|i| &seen[i]) else {
                    continue;
                };
                // One of the releaser's own grants that may have executed after that one: its
                // reply came after the other was sent, and it was sent before this reply.
                let own_may_follow = own.get(&(instance, client)).is_some_and(|mine| {
                    let from = mine
                        .grants
                        .partition_point(|(received, _)| *received <= other.sent);
                    from < mine.grants.len()
                        && (mine.grants[from].0 < r.t_us
                            || mine.last_slow.is_some_and(|i| i >= from))
                });
                if own_may_follow {
                    continue;
                }
                let owner = other.client;
                let granted = other.received;
                out.add(Property::ForeignRelease, || finding(
                    Property::ForeignRelease,
                    vec![client.to_string(), owner.to_string()],
                    vec![granted, r.t_us],
                    format!(
                        "{client} deleted {owner}'s lock on instance {instance} at {} ({owner} was granted it at {})",
                        ms(r.t_us),
                        ms(granted)
                    ),
                ));
            }
            _ => {}
        }
    }
}

/// A set-once key won by more than one client.
pub(crate) fn set_once(records: &[Record], out: &mut Findings) {
    /// The winners a message names; the rest are counted.
    const NAMED: usize = 20;
    // Per key: each distinct winner and the time of its first win, in win order.
    /// Winners in win order with the time of each one's first win, and the set of them.
    type Winners<'a> = (Vec<(&'a str, u64)>, BTreeSet<&'a str>);
    let mut winners: BTreeMap<&str, Winners> = BTreeMap::new();
    for r in records {
        if let Event::SetOnceWon { client, key } = &r.event {
            let (w, seen) = winners.entry(key.as_str()).or_default();
            if seen.insert(client.as_str()) {
                w.push((client.as_str(), r.t_us));
            }
        }
    }
    for (key, (w, _)) in winners.into_iter().filter(|(_, (w, _))| w.len() > 1) {
        out.add(Property::SetOnce, || {
            let mut list: Vec<String> = w
                .iter()
                .take(NAMED)
                .map(|(c, t)| format!("{c} at {}", ms(*t)))
                .collect();
            if w.len() > NAMED {
                list.push(format!("and {} more", w.len() - NAMED));
            }
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
        });
    }
}
