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
        Event::RunStarted { ttl_ms, .. } => Some(*ttl_ms),
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
                vec![crashed.clone(), waiter.to_string()],
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
