//! Progress properties: liveness after a crash, and the retry budget.

use crate::check::Findings;
use crate::history::{Event, Record};
use crate::property::Property;
use crate::safety::{end_of_history, finding};
use crate::verdict::ms;
use std::collections::BTreeMap;

/// Attempts allowed per acquisition when the config sets none.
pub(crate) const DEFAULT_MAX_ATTEMPTS: u32 = 20;
/// Commands allowed per acquisition when the config sets none.
pub(crate) const DEFAULT_MAX_COMMANDS: u32 = 100;
/// Liveness bound when neither the config nor the run gives one.
pub(crate) const DEFAULT_LIVENESS_BOUND_MS: u64 = 60_000;

/// The liveness bound: the configured one, else 2 × TTL + 1 s, else 60 s.
pub(crate) fn liveness_bound_ms(records: &[Record], configured: Option<u64>) -> u64 {
    if let Some(b) = configured {
        return b;
    }
    let ttl = records.iter().find_map(|r| match &r.event {
        Event::RunStarted(start) => Some(start.ttl_ms),
        _ => None,
    });
    match ttl.flatten() {
        Some(ttl) => ttl.saturating_mul(2).saturating_add(1_000),
        None => DEFAULT_LIVENESS_BOUND_MS,
    }
}

/// After a crash, another client still fails past the bound with no grant since the crash.
pub(crate) fn liveness(records: &[Record], bound_ms: u64, out: &mut Findings) {
    let bound_us = bound_ms.saturating_mul(1_000);
    // Grant times and failures in history (so time) order: each crash is two binary searches,
    // not a scan of the history.
    let grants: Vec<u64> = records
        .iter()
        .filter(|r| matches!(r.event, Event::Acquired { .. }))
        .map(|r| r.t_us)
        .collect();
    let failures: Vec<(u64, &str)> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::AttemptFailed { client, .. } | Event::AcquireFailed { client, .. } => {
                Some((r.t_us, client.as_str()))
            }
            _ => None,
        })
        .collect();
    // For each failure, the next one by another client.
    let mut next_other = vec![failures.len(); failures.len()];
    for i in (0..failures.len().saturating_sub(1)).rev() {
        next_other[i] = if failures[i + 1].1 != failures[i].1 {
            i + 1
        } else {
            next_other[i + 1]
        };
    }
    for crash in records {
        let Event::ClientCrashed { client: crashed } = &crash.event else {
            continue;
        };
        let tc = crash.t_us;
        let deadline = tc.saturating_add(bound_us);
        let first_grant = grants.get(grants.partition_point(|&t| t <= tc)).copied();
        let mut k = failures.partition_point(|(t, _)| *t <= deadline);
        if failures.get(k).is_some_and(|(_, c)| c == crashed) {
            k = next_other[k];
        }
        let stuck = failures
            .get(k)
            .filter(|(t, _)| first_grant.is_none_or(|g| g > *t));
        if let Some(&(t, waiter)) = stuck {
            out.add(Property::Liveness, || finding(
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
}

/// One acquisition in progress.
struct Acquisition {
    index: usize,
    start: u64,
    attempts: u32,
    commands: u32,
}

/// An acquisition with more attempts or commands than allowed.
pub(crate) fn retry_budget(
    records: &[Record],
    max_attempts: u32,
    max_commands: u32,
    out: &mut Findings,
) {
    let judge = |out: &mut Findings, client: &str, a: Acquisition, end: u64| {
        if a.attempts > max_attempts || a.commands > max_commands {
            out.add(Property::RetryBudget, || finding(
                Property::RetryBudget,
                vec![client.to_string()],
                vec![a.start, end],
                format!(
                    "{client}'s acquisition from {} to {} used {} attempts (budget {max_attempts}) and {} commands (budget {max_commands})",
                    ms(a.start),
                    ms(end),
                    a.attempts,
                    a.commands
                ),
            ));
        }
    };
    let mut open: BTreeMap<&str, Acquisition> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        match &r.event {
            Event::AcquireStarted { client } => {
                let fresh = Acquisition {
                    index: i,
                    start: r.t_us,
                    attempts: 0,
                    commands: 0,
                };
                if let Some(prev) = open.insert(client.as_str(), fresh) {
                    judge(out, client, prev, r.t_us);
                }
            }
            Event::AttemptStarted { client, .. } => {
                if let Some(a) = open.get_mut(client.as_str()) {
                    a.attempts = a.attempts.saturating_add(1);
                }
            }
            Event::CommandSent { client, .. } => {
                if let Some(a) = open.get_mut(client.as_str()) {
                    a.commands = a.commands.saturating_add(1);
                }
            }
            Event::Acquired { client, .. } | Event::AcquireFailed { client, .. } => {
                if let Some(a) = open.remove(client.as_str()) {
                    judge(out, client, a, r.t_us);
                }
            }
            _ => {}
        }
    }
    let end = end_of_history(records);
    let mut rest: Vec<(&str, Acquisition)> = open.into_iter().collect();
    rest.sort_by_key(|(_, a)| a.index);
    for (client, a) in rest {
        judge(out, client, a, end);
    }
}

/// Whether an attempt's failure reason says the lock was taken: at least one instance refused
/// (locksim's own clients write `no quorum: G granted, R refused, S silent`). A failure from
/// silence or errors alone (a cut link, a dead node) says nothing about the lock.
fn refused(reason: &str) -> bool {
    reason
        .strip_prefix("no quorum: ")
        .and_then(|rest| rest.split(", ").nth(1))
        .and_then(|part| part.strip_suffix(" refused"))
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// The lock stays taken past the bound while no client believes it holds it: an attempt is
/// refused more than `bound_ms` after the last holder released (or after the run began, when
/// nobody ever held it), with no client holding in between. A client believes it holds from
/// its `acquired` record to its `released` record. A period in which a client crashed is left
/// to [`liveness`]: a dead client's key is that property's case.
pub(crate) fn stuck_lock(records: &[Record], bound_ms: u64, out: &mut Findings) {
    let bound_us = bound_ms.saturating_mul(1_000);
    // Clients that believe they hold the lock now, and since when nobody has.
    let mut holding: BTreeMap<&str, u32> = BTreeMap::new();
    let mut free_since: u64 = records.first().map_or(0, |r| r.t_us);
    let mut last_holder: Option<&str> = None;
    let mut crashed = false;
    let mut reported = false;
    for r in records {
        match &r.event {
            // A set-once win is never given back: its key is meant to stay.
            Event::Acquired { client, .. } | Event::SetOnceWon { client, .. } => {
                *holding.entry(client.as_str()).or_default() += 1;
            }
            Event::Released { client, .. } => {
                let was_holding = holding.remove(client.as_str()).is_some();
                if was_holding && holding.is_empty() {
                    free_since = r.t_us;
                    last_holder = Some(client.as_str());
                    crashed = false;
                    reported = false;
                }
            }
            Event::ClientCrashed { client } => {
                holding.remove(client.as_str());
                crashed = true;
            }
            Event::AttemptFailed { client, reason, .. }
                if holding.is_empty()
                    && !crashed
                    && !reported
                    && refused(reason)
                    && r.t_us.saturating_sub(free_since) > bound_us =>
            {
                reported = true;
                let mut clients: Vec<String> =
                    last_holder.map(str::to_string).into_iter().collect();
                clients.push(client.to_string());
                let since = match last_holder {
                    Some(h) => format!("{h} released it at {}", ms(free_since)),
                    None => format!("the run began at {}", ms(free_since)),
                };
                out.add(Property::StuckLock, || finding(
                    Property::StuckLock,
                    clients,
                    vec![free_since, r.t_us],
                    format!(
                        "{client} was refused the lock at {}, {} after {since}, and nobody believed they held it in between (bound {})",
                        ms(r.t_us),
                        ms(r.t_us - free_since),
                        ms(bound_us)
                    ),
                ));
            }
            _ => {}
        }
    }
}
