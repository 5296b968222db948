//! The judge: runs every property over a history and assembles the verdict.

use crate::history::{Event, Record};
use crate::progress::{self, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_COMMANDS};
use crate::property::Property;
use crate::safety;
use crate::verdict::{ms, CheckConfig, Finding, Outcome, Verdict};

/// Judges a history (records in true-time order; record order breaks ties) against every
/// [`Property`].
///
/// Every property appears in [`Verdict::outcomes`]; findings are grouped by property in
/// [`Property::ALL`] order, each group in history order, and each lists the faults injected
/// at or before its last time.
pub fn check(records: &[Record], config: &CheckConfig) -> Verdict {
    let bound_ms = progress::liveness_bound_ms(records, config.liveness_bound_ms);
    let max_attempts = config.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    let max_commands = config.max_commands.unwrap_or(DEFAULT_MAX_COMMANDS);

    let mut findings: Vec<Finding> = Vec::new();
    for p in Property::ALL {
        findings.extend(match p {
            Property::MutualExclusion => safety::mutual_exclusion(records),
            Property::UnsafeWrites => safety::unsafe_writes(records),
            Property::FencingMonotonic => safety::fencing_monotonic(records),
            Property::ForeignRelease => safety::foreign_release(records),
            Property::Liveness => progress::liveness(records, bound_ms),
            Property::RetryBudget => progress::retry_budget(records, max_attempts, max_commands),
            Property::SetOnce => safety::set_once(records),
        });
    }

    let faults: Vec<(u64, String)> = records
        .iter()
        .filter_map(|r| Some((r.t_us, r.event.fault_description()?)))
        .collect();
    for f in &mut findings {
        let last = f.times_us.iter().copied().max().unwrap_or(u64::MAX);
        f.faults_before = faults
            .iter()
            .filter(|(t, _)| *t <= last)
            .map(|(t, d)| format!("{}: {d}", ms(*t)))
            .collect();
    }

    let outcomes = Property::ALL
        .iter()
        .map(|&p| {
            let o = if findings.iter().any(|f| f.property == p) {
                Outcome::Violated
            } else {
                Outcome::Holds
            };
            (p, o)
        })
        .collect();
    let inconclusive = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Inconclusive { reason } => Some(format!("{}: {reason}", ms(r.t_us))),
            _ => None,
        })
        .collect();
    Verdict {
        outcomes,
        findings,
        inconclusive,
    }
}
