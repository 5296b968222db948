//! What one seed's history says about a setting: acquire latencies, critical sections,
//! unavailability after holder crashes, and whether (and how many of its sections) it broke.

use checker::tune::ClusterSums;
use checker::{count_sections, Event, Outcome, Property, Record, Verdict};
use std::collections::BTreeMap;

/// Sums over seeds. Every field is a sum or a multiset, so the total does not depend on
/// which thread ran which seed.
#[derive(Default)]
pub(super) struct Tally {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that violated mutual exclusion.
    pub me: u64,
    /// Seeds that let a stale write through.
    pub unsafe_writes: u64,
    /// Unavailability after holder crashes, in µs.
    pub unavailable: Vec<u64>,
    /// Acquire latencies, in µs.
    pub acquire: Vec<u64>,
    /// Acquisitions started.
    pub acquisitions: u64,
    /// Acquisitions given up.
    pub gave_up: u64,
    /// Critical sections, in every seed.
    pub sections: u64,
    /// Inconclusive seeds.
    pub inconclusive: u64,
    /// Conclusive seeds that broke (mutual exclusion or a stale write).
    pub broken_seeds: u64,
    /// Per conclusive seed: its critical sections, and those that broke.
    pub sections_by_seed: ClusterSums,
}

impl Tally {
    /// Adds another tally to this one.
    pub fn add(&mut self, other: Tally) {
        self.seeds += other.seeds;
        self.me += other.me;
        self.unsafe_writes += other.unsafe_writes;
        self.unavailable.extend(other.unavailable);
        self.acquire.extend(other.acquire);
        self.acquisitions += other.acquisitions;
        self.gave_up += other.gave_up;
        self.sections += other.sections;
        self.inconclusive += other.inconclusive;
        self.broken_seeds += other.broken_seeds;
        self.sections_by_seed.merge(&other.sections_by_seed);
    }

    /// Adds one seed's history and its verdict.
    pub fn seed(&mut self, records: &[Record], verdict: &Verdict) {
        let me = verdict.outcome(Property::MutualExclusion) == Outcome::Violated;
        let uw = verdict.outcome(Property::UnsafeWrites) == Outcome::Violated;
        self.seeds += 1;
        self.me += me as u64;
        self.unsafe_writes += uw as u64;
        if verdict.is_conclusive() {
            let count = count_sections(records);
            self.broken_seeds += (me || uw) as u64;
            self.sections_by_seed.add(count.broken, count.sections);
        } else {
            self.inconclusive += 1;
        }
        measure(records, self);
    }
}

/// Two percentiles of microsecond samples, in milliseconds.
pub(super) fn percentiles(xs: &mut [u64], a: f64, b: f64) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_unstable();
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    Some((at(a), at(b)))
}

/// Acquire latencies, sections, and unavailability after holder crashes, from one history.
fn measure(records: &[Record], t: &mut Tally) {
    let mut started: BTreeMap<&str, u64> = BTreeMap::new();
    let mut holding: BTreeMap<&str, bool> = BTreeMap::new();
    let mut crashed_holder_at: Option<u64> = None;
    let end = records.last().map_or(0, |r| r.t_us);
    for r in records {
        match &r.event {
            Event::AcquireStarted { client } => {
                started.insert(client, r.t_us);
                t.acquisitions += 1;
            }
            Event::AcquireFailed { client, .. } => {
                started.remove(client.as_str());
                t.gave_up += 1;
            }
            Event::Acquired { client, .. } => {
                if let Some(t0) = started.remove(client.as_str()) {
                    t.acquire.push(r.t_us - t0);
                }
                t.sections += 1;
                holding.insert(client, true);
                if let Some(tc) = crashed_holder_at.take() {
                    t.unavailable.push(r.t_us - tc);
                }
            }
            Event::SectionEnded { client, .. } => {
                holding.insert(client, false);
            }
            Event::ClientCrashed { client }
                if holding.get(client.as_str()).copied().unwrap_or(false) =>
            {
                holding.insert(client, false);
                crashed_holder_at.get_or_insert(r.t_us);
            }
            _ => {}
        }
    }
    if let Some(tc) = crashed_holder_at {
        t.unavailable.push(end - tc); // never available again within the run
    }
}
