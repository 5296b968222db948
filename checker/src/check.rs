//! The judge: runs every property over a history and assembles the verdict.

use crate::history::{Event, Record};
use crate::progress::{self, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_COMMANDS};
use crate::property::Property;
use crate::safety;
use crate::verdict::{ms, CheckConfig, Finding, Outcome, Verdict};
use std::collections::BTreeMap;

/// Judges a history (records in true-time order; record order breaks ties) against every
/// [`Property`].
///
/// Every property appears in [`Verdict::outcomes`]; findings are grouped by property in
/// [`Property::ALL`] order, each group in history order, and each lists the faults injected
/// at or before its last time.
pub fn check(records: &[Record], config: &CheckConfig) -> Verdict {
    let bound_ms = progress::liveness_bound_ms(records, config.liveness_bound_ms);
    let stuck_ms = progress::liveness_bound_ms(records, config.stuck_lock_bound_ms);
    let max_attempts = config.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    let max_commands = config.max_commands.unwrap_or(DEFAULT_MAX_COMMANDS);

    let mut found = Findings::default();
    for p in Property::ALL {
        match p {
            Property::MutualExclusion => safety::mutual_exclusion(records, &mut found),
            Property::UnsafeWrites => safety::unsafe_writes(records, &mut found),
            Property::FencingMonotonic => safety::fencing_monotonic(records, &mut found),
            Property::ForeignRelease => safety::foreign_release(records, &mut found),
            Property::Liveness => progress::liveness(records, bound_ms, &mut found),
            Property::RetryBudget => {
                progress::retry_budget(records, max_attempts, max_commands, &mut found)
            }
            Property::SetOnce => safety::set_once(records, &mut found),
            Property::StuckLock => progress::stuck_lock(records, stuck_ms, &mut found),
        }
    }
    let Findings {
        list: mut findings,
        left_out: findings_left_out,
        ..
    } = found;

    // In time order (a stable sort keeps record order among equal times), so that the faults
    // before a time are a prefix, found by binary search.
    let mut faults: Vec<(u64, &Record)> = records
        .iter()
        .filter(|r| {
            matches!(
                r.event,
                Event::Fault(_) | Event::Heal(_) | Event::Observed(_)
            )
        })
        .map(|r| (r.t_us, r))
        .collect();
    faults.sort_by_key(|(t, _)| *t);
    for f in &mut findings {
        let last = f.times_us.iter().copied().max().unwrap_or(u64::MAX);
        let upto = faults.partition_point(|(t, _)| *t <= last);
        let from = upto.saturating_sub(MAX_FAULTS_LISTED);
        f.faults_left_out = from as u64;
        f.faults_before = faults[from..upto]
            .iter()
            .filter_map(|(t, r)| Some(format!("{}: {}", ms(*t), r.event.fault_description()?)))
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
        findings_left_out,
        inconclusive,
    }
}

/// The most findings a verdict lists per property; the rest are counted in
/// [`Verdict::findings_left_out`].
pub const MAX_FINDINGS_LISTED: usize = 50;

/// The most faults a finding lists (the last ones before it); the earlier ones are counted in
/// [`Finding::faults_left_out`].
pub const MAX_FAULTS_LISTED: usize = 20;

/// The findings of a check so far: at most [`MAX_FINDINGS_LISTED`] per property, the rest
/// only counted, so that a history with a million overlaps costs no more than its length.
#[derive(Default)]
pub(crate) struct Findings {
    list: Vec<Finding>,
    listed: BTreeMap<Property, usize>,
    left_out: BTreeMap<Property, u64>,
}

impl Findings {
    /// Whether another finding of `p` would be listed.
    pub(crate) fn room(&self, p: Property) -> bool {
        self.listed.get(&p).copied().unwrap_or(0) < MAX_FINDINGS_LISTED
    }

    /// Adds a finding of `p`, built only if it is listed.
    pub(crate) fn add(&mut self, p: Property, make: impl FnOnce() -> Finding) {
        if self.room(p) {
            *self.listed.entry(p).or_default() += 1;
            self.list.push(make());
        } else {
            self.skip(p, 1);
        }
    }

    /// The findings listed and the counts of those left out.
    #[cfg(test)]
    pub(crate) fn into_parts(self) -> (Vec<Finding>, BTreeMap<Property, u64>) {
        (self.list, self.left_out)
    }

    /// Counts `n` findings of `p` that are not listed.
    pub(crate) fn skip(&mut self, p: Property, n: u64) {
        if n > 0 {
            *self.left_out.entry(p).or_default() += n;
        }
    }
}
