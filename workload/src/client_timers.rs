//! The timer table of one client loop: its lock machine's timers by id, and at most one work
//! and one think timer.
//!
//! A client works or thinks once at a time, so a new work (think) timer replaces the one
//! before, which can only be stale: those two need a slot each, not a table. Keeping them
//! apart also makes setting and taking a lock timer a search over lock ids alone (the hot
//! path of a simulated run, where every timer set is one queue event).

use crate::timers::Timers;
use crate::Timer;
use lock_core::{Micros, TimerId};

/// Pending client timers, each with its deadline on the client's clock, iterated and fired
/// in [`Timer`]'s order among equal deadlines (lock timers by id, then work, then think).
#[derive(Debug, Clone, Default)]
pub struct ClientTimers {
    lock: Timers<TimerId>,
    /// The work timer's generation and deadline.
    work: Option<(u64, Micros)>,
    /// The think timer's generation and deadline.
    think: Option<(u64, Micros)>,
}

impl ClientTimers {
    /// Sets `timer` to fire at `at`; a work or think timer replaces the one before.
    pub fn set(&mut self, timer: Timer, at: Micros) {
        match timer {
            Timer::Lock(id) => self.lock.set(id, at),
            Timer::Work(gen) => self.work = Some((gen, at)),
            Timer::Think(gen) => self.think = Some((gen, at)),
        }
    }

    /// Takes `timer` out of the table: true when it was pending.
    pub fn take(&mut self, timer: Timer) -> bool {
        let slot = match timer {
            Timer::Lock(id) => return self.lock.take(id),
            Timer::Work(gen) => (&mut self.work, gen),
            Timer::Think(gen) => (&mut self.think, gen),
        };
        match slot {
            (Some((pending, _)), gen) if *pending == gen => {
                *slot.0 = None;
                true
            }
            _ => false,
        }
    }

    /// The earliest deadline, if any timer is pending.
    pub fn next_deadline(&self) -> Option<Micros> {
        self.pending().map(|(_, at)| at).min()
    }

    /// Takes out the timer due first at `now` (earliest deadline; ties in [`Timer`] order),
    /// if any is due.
    pub fn pop_due(&mut self, now: Micros) -> Option<Timer> {
        let mut first: Option<(Timer, Micros)> = None;
        for (timer, at) in self.pending() {
            // Strictly earlier only: of equal deadlines the first in order wins.
            if at <= now && first.is_none_or(|(_, best)| at < best) {
                first = Some((timer, at));
            }
        }
        let (timer, _) = first?;
        self.take(timer);
        Some(timer)
    }

    /// The pending timers and their deadlines, in [`Timer`] order.
    pub fn pending(&self) -> impl Iterator<Item = (Timer, Micros)> + '_ {
        let lock = self.lock.pending().map(|(id, at)| (Timer::Lock(id), at));
        let work = self.work.map(|(gen, at)| (Timer::Work(gen), at));
        let think = self.think.map(|(gen, at)| (Timer::Think(gen), at));
        lock.chain(work).chain(think)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_and_think_timers_replace_their_predecessor() {
        let mut t = ClientTimers::default();
        t.set(Timer::Work(1), 50);
        t.set(Timer::Work(2), 70);
        assert!(!t.take(Timer::Work(1)), "replaced by work 2");
        assert!(t.take(Timer::Work(2)));
        assert!(!t.take(Timer::Work(2)), "a timer is taken once");
        t.set(Timer::Think(4), 10);
        assert!(!t.take(Timer::Think(3)));
        assert_eq!(t.pending().collect::<Vec<_>>(), vec![(Timer::Think(4), 10)]);
    }

    #[test]
    fn timers_come_out_earliest_first_ties_in_timer_order() {
        let mut t = ClientTimers::default();
        t.set(Timer::Think(1), 30);
        t.set(Timer::Work(1), 30);
        t.set(Timer::Lock(TimerId(9)), 30);
        t.set(Timer::Lock(TimerId(2)), 40);
        t.set(Timer::Lock(TimerId(5)), 20);
        assert_eq!(t.next_deadline(), Some(20));
        let order: Vec<Timer> = std::iter::from_fn(|| t.pop_due(35)).collect();
        assert_eq!(
            order,
            vec![
                Timer::Lock(TimerId(5)),
                Timer::Lock(TimerId(9)),
                Timer::Work(1),
                Timer::Think(1)
            ]
        );
        assert_eq!(t.pop_due(45), Some(Timer::Lock(TimerId(2))));
        assert_eq!(t.next_deadline(), None);
    }
}
