//! Critical sections, and how many of them broke: the denominator and numerator of a break
//! rate per critical section (`locksim tune`'s `per_section`).
//!
//! A critical section is one holding interval of one client: from its `Acquired` record to
//! its `SectionEnded` (or its crash, or the end of the run). A section **broke** when
//! - it overlapped a section of another client (both count: each had the lock taken from
//!   under it), by the same rule as [`Property::MutualExclusion`](crate::Property), or
//! - the resource accepted a write made under its grant after a write under a newer grant
//!   (a stale write, as [`Property::UnsafeWrites`](crate::Property) judges it).
//!
//! A section that did both counts once. Accepted writes from a client that never acquired
//! the lock belong to no section and are not counted here (they still violate
//! `unsafe_writes`).

use crate::history::Record;
use crate::safety::{holding_intervals, stale_writes, StaleWrite};
use std::collections::BTreeMap;

/// Critical sections in one history, and those that broke.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SectionCount {
    /// Critical sections (grants), whether they ended, crashed or were cut by the run's end.
    pub sections: u64,
    /// Sections that overlapped another client's or had a stale write accepted.
    pub broken: u64,
}

/// Counts the critical sections of a history and those that broke (see the module docs).
pub fn count_sections(records: &[Record]) -> SectionCount {
    let ivs = holding_intervals(records);
    let mut broken = vec![false; ivs.len()];
    // Sorted by start: the sections still open at a start are the only ones it can overlap.
    let mut active: Vec<usize> = Vec::new();
    for (j, b) in ivs.iter().enumerate() {
        active.retain(|&i| ivs[i].end > b.start);
        for &i in &active {
            let a = &ivs[i];
            if a.client != b.client && a.start < b.end {
                broken[i] = true;
                broken[j] = true;
            }
        }
        active.push(j);
    }
    let by_record: BTreeMap<usize, usize> = ivs
        .iter()
        .enumerate()
        .map(|(j, iv)| (iv.index, j))
        .collect();
    for w in stale_writes(records) {
        if let StaleWrite::Superseded { acquired_at, .. } = w {
            if let Some(&j) = by_record.get(&acquired_at) {
                broken[j] = true;
            }
        }
    }
    SectionCount {
        sections: ivs.len() as u64,
        broken: broken.iter().filter(|b| **b).count() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, SectionEnd};

    fn at(t_us: u64, event: Event) -> Record {
        Record { t_us, event }
    }

    fn acquired(c: &str) -> Event {
        Event::Acquired {
            client: c.into(),
            token: "t".into(),
            fencing_token: None,
            valid_for_us: None,
        }
    }

    fn ended(c: &str) -> Event {
        Event::SectionEnded {
            client: c.into(),
            why: SectionEnd::Done,
        }
    }

    #[test]
    fn overlapping_sections_both_break_and_disjoint_ones_do_not() {
        let h = vec![
            at(0, acquired("A")),
            at(10, ended("A")),
            at(10, acquired("B")), // starts as A ends: no overlap
            at(20, acquired("C")), // overlaps B
            at(25, ended("B")),
            at(30, ended("C")),
            at(40, acquired("A")),
            at(50, ended("A")),
        ];
        assert_eq!(
            count_sections(&h),
            SectionCount {
                sections: 4,
                broken: 2
            }
        );
    }

    #[test]
    fn a_stale_write_breaks_its_own_section_only() {
        let write = |c: &str| Event::Write {
            client: c.into(),
            fencing_token: None,
            accepted: true,
        };
        let h = vec![
            at(0, acquired("A")),
            at(5, ended("A")), // A ends its section, but its write lands late
            at(6, acquired("B")),
            at(7, write("B")),
            at(8, write("A")), // under A's older grant, after B's
            at(9, ended("B")),
            at(10, write("Z")), // never acquired: no section to blame
        ];
        assert_eq!(
            count_sections(&h),
            SectionCount {
                sections: 2,
                broken: 1
            }
        );
    }
}
