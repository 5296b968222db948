//! A timer table: one deadline per timer, on one clock.
//!
//! Every host of a lock machine or client loop keeps one of these — the simulator's and the
//! live driver's clients (through [`crate::Host`]) and `live::RealLock` — so what "setting a
//! timer again", "the next deadline" and "the timers due now" mean is written once.

use lock_core::Micros;
use std::collections::BTreeMap;

/// Pending timers by key, each with its deadline on the owner's clock. Setting a timer that
/// is already pending moves it; a timer fires at most once per setting.
#[derive(Debug, Clone)]
pub struct Timers<K> {
    deadlines: BTreeMap<K, Micros>,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            deadlines: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy> Timers<K> {
    /// Sets `timer` to fire at `at` (replacing its earlier deadline, if any).
    pub fn set(&mut self, timer: K, at: Micros) {
        self.deadlines.insert(timer, at);
    }

    /// Takes `timer` out of the table: true when it was pending.
    pub fn take(&mut self, timer: K) -> bool {
        self.deadlines.remove(&timer).is_some()
    }

    /// The earliest deadline, if any timer is pending.
    pub fn next_deadline(&self) -> Option<Micros> {
        self.deadlines.values().copied().min()
    }

    /// Takes out the timer due first at `now` (earliest deadline; ties in key order), if any
    /// is due. Taking them one at a time lets what one timer does move or take the others.
    pub fn pop_due(&mut self, now: Micros) -> Option<K> {
        let (timer, _) = self
            .deadlines
            .iter()
            .filter(|(_, at)| **at <= now)
            .min_by_key(|(_, at)| **at)?;
        let timer = *timer;
        self.deadlines.remove(&timer);
        Some(timer)
    }

    /// The pending timers and their deadlines, in key order.
    pub fn pending(&self) -> impl Iterator<Item = (K, Micros)> + '_ {
        self.deadlines.iter().map(|(k, at)| (*k, *at))
    }

    /// Keeps only the pending timers `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.deadlines.retain(|k, _| keep(k));
    }

    /// Forgets every pending timer.
    pub fn clear(&mut self) {
        self.deadlines.clear();
    }

    /// How many timers are pending.
    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
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
        assert!(t.take('a'));
        assert!(!t.take('a'));
        assert_eq!(t.next_deadline(), None);
    }
}
