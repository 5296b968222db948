//! The fast property checks (sorted searches instead of scans, bounded findings) find exactly
//! what the straightforward quadratic ones do, on many random time-ordered histories.

use crate::check::{Findings, MAX_FINDINGS_LISTED};
use crate::history::{Event, Record};
use crate::property::Property;
use crate::verdict::Finding;
use crate::{progress, safety};
use lock_core::{Op, Reply};

/// xorshift64*: a few random histories without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn history(rng: &mut Rng, len: usize) -> Vec<Record> {
    let clients = ["A", "B", "C"];
    let mut t = 0;
    let mut out = Vec::new();
    let mut request = 0;
    for _ in 0..len {
        // Often the same instant, to exercise ties and zero-length spans.
        t += rng.below(3) * rng.below(40);
        let client = clients[rng.below(3) as usize].to_string();
        let event = match rng.below(9) {
            0 | 1 => Event::Acquired {
                client: client.into(),
                token: "t".into(),
                fencing_token: None,
                valid_for_us: None,
            },
            2 => Event::SectionEnded {
                client: client.into(),
                why: crate::SectionEnd::Done,
            },
            3 => Event::ClientCrashed {
                client: client.into(),
            },
            4 => Event::AttemptFailed {
                client: client.into(),
                attempt: 1,
                reason: "busy".into(),
            },
            5 => {
                request += 1;
                Event::CommandSent {
                    client: client.into(),
                    instance: rng.below(2) as usize,
                    request: rng.below(request),
                    op: Op::Acquire,
                    command: "".into(),
                }
            }
            _ => Event::ReplyReceived {
                client: client.into(),
                instance: rng.below(2) as usize,
                request: rng.below(request + 1),
                op: if rng.below(2) == 0 {
                    Op::Acquire
                } else {
                    Op::Release
                },
                reply: if rng.below(3) == 0 {
                    Reply::Nil
                } else if rng.below(2) == 0 {
                    Reply::Ok
                } else {
                    Reply::Int(1)
                },
            },
        };
        out.push(Record { t_us: t, event });
    }
    if rng.below(2) == 0 {
        out.push(Record {
            t_us: t,
            event: Event::RunEnded {},
        });
    }
    out
}

/// What the fast check listed and left out, against every finding of the reference; returns
/// how many the reference found.
fn same(p: Property, fast: Findings, all: Vec<Finding>) -> usize {
    let (listed, left_out) = fast.into_parts();
    let n = all.len().min(MAX_FINDINGS_LISTED);
    assert_eq!(listed, all[..n], "{p}");
    let rest = (all.len() - n) as u64;
    assert_eq!(left_out.get(&p).copied().unwrap_or(0), rest, "{p}");
    all.len()
}

#[test]
fn fast_checks_agree_with_the_reference_scans() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Most findings of each check in one history: the comparison is not vacuous, and the
    // cap is crossed.
    let mut most = [0; 3];
    for round in 0..400 {
        let len = if round % 50 == 0 { 2_000 } else { 60 };
        let records = history(&mut rng, len);
        let mut f = Findings::default();
        safety::mutual_exclusion(&records, &mut f);
        let n = same(
            Property::MutualExclusion,
            f,
            reference::mutual_exclusion(&records),
        );
        most[0] = most[0].max(n);
        let mut f = Findings::default();
        safety::foreign_release(&records, &mut f);
        let n = same(
            Property::ForeignRelease,
            f,
            reference::foreign_release(&records),
        );
        most[1] = most[1].max(n);
        for bound_ms in [0, 1] {
            let mut f = Findings::default();
            progress::liveness(&records, bound_ms, &mut f);
            let n = same(
                Property::Liveness,
                f,
                reference::liveness(&records, bound_ms),
            );
            most[2] = most[2].max(n);
        }
    }
    assert!(most.iter().all(|n| *n > MAX_FINDINGS_LISTED), "{most:?}");
}

/// The checks as they were: a scan per interval, release and crash.
mod reference {
    use crate::history::{Event, Record};
    use crate::property::Property;
    use crate::safety::{end_of_history, finding};
    use crate::verdict::{ms, Finding};
    use lock_core::{Op, Reply};
    use std::collections::BTreeMap;

    struct Interval<'a> {
        index: usize,
        client: &'a str,
        start: u64,
        end: u64,
    }

    fn holding_intervals(records: &[Record]) -> Vec<Interval<'_>> {
        let mut open: BTreeMap<&str, Vec<(usize, u64)>> = BTreeMap::new();
        let mut done = Vec::new();
        fn close<'a>(done: &mut Vec<Interval<'a>>, spans: Vec<(usize, u64)>, c: &'a str, end: u64) {
            for (index, start) in spans {
                done.push(Interval {
                    index,
                    client: c,
                    start,
                    end,
                });
            }
        }
        for (i, r) in records.iter().enumerate() {
            match &r.event {
                Event::Acquired { client, .. } => {
                    open.entry(client.as_str()).or_default().push((i, r.t_us));
                }
                Event::SectionEnded { client, .. } | Event::ClientCrashed { client } => {
                    if let Some(spans) = open.remove(client.as_str()) {
                        close(&mut done, spans, client.as_str(), r.t_us);
                    }
                }
                Event::RunEnded {} => {
                    for (client, spans) in std::mem::take(&mut open) {
                        close(&mut done, spans, client, r.t_us);
                    }
                }
                _ => {}
            }
        }
        let end = end_of_history(records);
        for (client, spans) in open {
            close(&mut done, spans, client, end);
        }
        done.sort_by_key(|iv| (iv.start, iv.index));
        done
    }

    pub(super) fn mutual_exclusion(records: &[Record]) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut active: Vec<Interval<'_>> = Vec::new();
        for b in holding_intervals(records) {
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

    pub(super) fn foreign_release(records: &[Record]) -> Vec<Finding> {
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
                Op::Acquire if deleted_or_granted => {
                    grants.entry(instance).or_default().push(Grant {
                        client,
                        sent: sent_at,
                        received: r.t_us,
                    })
                }
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

    pub(super) fn liveness(records: &[Record], bound_ms: u64) -> Vec<Finding> {
        let bound_us = bound_ms.saturating_mul(1_000);
        let grants: Vec<u64> = records
            .iter()
            .filter(|r| matches!(r.event, Event::Acquired { .. }))
            .map(|r| r.t_us)
            .collect();
        let mut out = Vec::new();
        for crash in records {
            let Event::ClientCrashed { client: crashed } = &crash.event else {
                continue;
            };
            let tc = crash.t_us;
            let deadline = tc.saturating_add(bound_us);
            let first_grant = grants.iter().copied().filter(|&t| t > tc).min();
            let stuck = records.iter().find_map(|r| match &r.event {
                Event::AttemptFailed { client, .. } | Event::AcquireFailed { client, .. }
                    if client != crashed
                        && r.t_us > deadline
                        && first_grant.is_none_or(|g| g > r.t_us) =>
                {
                    Some((client, r.t_us))
                }
                _ => None,
            });
            if let Some((waiter, t)) = stuck {
                out.push(finding(
                    Property::Liveness,
                    vec![crashed.to_string(), waiter.to_string()],
                    vec![tc, t],
                    format!(
                        "{crashed} crashed at {} and {waiter} still failed to acquire at {}, {} later with no grant in between (bound {})",
                        ms(tc),
                        ms(t),
                        ms(t - tc),
                        ms(bound_us)
                    ),
                ));
            }
        }
        out
    }
}
