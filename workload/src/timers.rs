//! A timer table: one deadline per timer, on one clock.
//!
//! Every host of a lock machine or client loop keeps one of these — the simulator's and the
//! live driver's clients (through [`crate::Host`]) and `live::RealLock` — so what "setting a
//! timer again", "the next deadline" and "the timers due now" mean is written once.

use lock_core::Micros;
use std::ops::{Bound, RangeBounds};

/// Pending timers by key, each with its deadline on the owner's clock. Setting a timer that
/// is already pending moves it; a timer fires at most once per setting.
///
/// The table is a vector sorted by key: setting or taking a timer is a binary search (and a
/// shift of the entries after it), the next deadline a scan. A timer leaves the table when it
/// fires or is taken, so only those set within the longest deadline are pending: a handful
/// for a lock client, for which this beats two balanced trees (no allocation per timer).
#[derive(Debug, Clone)]
pub struct Timers<K> {
    by_key: Vec<(K, Micros)>,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers { by_key: Vec::new() }
    }
}

impl<K: Ord + Copy> Timers<K> {
    fn find(&self, timer: &K) -> Result<usize, usize> {
        self.by_key.binary_search_by(|(k, _)| k.cmp(timer))
    }

    /// Sets `timer` to fire at `at` (replacing its earlier deadline, if any).
    pub fn set(&mut self, timer: K, at: Micros) {
        match self.find(&timer) {
            Ok(i) => self.by_key[i].1 = at,
            Err(i) => self.by_key.insert(i, (timer, at)),
        }
    }

    /// Takes `timer` out of the table: true when it was pending.
    pub fn take(&mut self, timer: K) -> bool {
        match self.find(&timer) {
            Ok(i) => {
                self.by_key.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Takes out every pending timer whose key is in `keys`.
    pub fn take_keys(&mut self, keys: impl RangeBounds<K>) {
        let before = |bound: Bound<&K>, past: bool| match bound {
            Bound::Included(b) => self
                .by_key
                .partition_point(|(k, _)| k < b || (past && k == b)),
            Bound::Excluded(b) => self
                .by_key
                .partition_point(|(k, _)| k < b || (!past && k == b)),
            Bound::Unbounded if past => self.by_key.len(),
            Bound::Unbounded => 0,
        };
        let (from, to) = (
            before(keys.start_bound(), false),
            before(keys.end_bound(), true),
        );
        if from < to {
            self.by_key.drain(from..to);
        }
    }

    /// The earliest deadline, if any timer is pending.
    pub fn next_deadline(&self) -> Option<Micros> {
        self.by_key.iter().map(|(_, at)| *at).min()
    }

    /// Takes out the timer due first at `now` (earliest deadline; ties in key order), if any
    /// is due. Taking them one at a time lets what one timer does move or take the others.
    pub fn pop_due(&mut self, now: Micros) -> Option<K> {
        let mut first: Option<(usize, Micros)> = None;
        for (i, (_, at)) in self.by_key.iter().enumerate() {
            // Strictly earlier only: of equal deadlines the first in key order wins.
            if *at <= now && first.is_none_or(|(_, best)| *at < best) {
                first = Some((i, *at));
            }
        }
        let (i, _) = first?;
        Some(self.by_key.remove(i).0)
    }

    /// The pending timers and their deadlines, in key order.
    pub fn pending(&self) -> impl Iterator<Item = (K, Micros)> + '_ {
        self.by_key.iter().copied()
    }

    /// Forgets every pending timer.
    pub fn clear(&mut self) {
        self.by_key.clear();
    }

    /// How many timers are pending.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_again_moves_a_timer_and_due_ones_come_out_earliest_first() {
        let mut t = Timers::default();
        t.set(3u8, 50);
        t.set(1, 70);
        t.set(2, 50);
        t.set(1, 40); // moved earlier: fires once, at 40
        assert_eq!(t.next_deadline(), Some(40));
        assert_eq!(t.pop_due(45), Some(1));
        assert_eq!(t.pop_due(45), None);
        assert_eq!(t.pop_due(60), Some(2));
        assert_eq!(t.pop_due(60), Some(3));
        assert!(t.is_empty());
        assert_eq!(t.pop_due(1_000), None);
    }

    #[test]
    fn a_taken_timer_does_not_fire() {
        let mut t = Timers::default();
        t.set('a', 10);
        t.set('b', 20);
        t.set('c', 5);
        t.take_keys('b'..='c');
        assert_eq!(t.len(), 1);
        assert!(t.take('a'));
        assert!(!t.take('a'));
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn take_keys_takes_exactly_the_range() {
        let keys = |t: &Timers<u8>| t.pending().map(|(k, _)| k).collect::<Vec<_>>();
        let full = || {
            let mut t = Timers::default();
            for k in [5u8, 1, 4, 2, 3] {
                t.set(k, 100 - u64::from(k));
            }
            t
        };
        let left_after = |take: &dyn Fn(&mut Timers<u8>)| {
            let mut t = full();
            take(&mut t);
            keys(&t)
        };
        assert_eq!(left_after(&|t| t.take_keys(2..4)), vec![1, 4, 5]);
        assert_eq!(left_after(&|t| t.take_keys(2..=4)), vec![1, 5]);
        assert_eq!(left_after(&|t| t.take_keys(..3)), vec![3, 4, 5]);
        assert_eq!(left_after(&|t| t.take_keys(4..)), vec![1, 2, 3]);
        assert_eq!(left_after(&|t| t.take_keys(..)), Vec::<u8>::new());
        assert_eq!(left_after(&|t| t.take_keys(6..9)), vec![1, 2, 3, 4, 5]);
        let mut t = full();
        t.take_keys((Bound::Excluded(1), Bound::Excluded(5)));
        assert_eq!(keys(&t), vec![1, 5]);
        assert_eq!(t.pop_due(96), Some(5), "the earliest deadline first");
    }
}
