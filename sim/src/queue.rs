//! The event queue: ordered by (true time, sequence number), so equal times keep insertion
//! order and every run pops events in exactly the same order.
//!
//! The heap holds only small keys; the items live in a slab and are moved once in and once
//! out, however large they are.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Bits of a heap key that hold the item's slot; the sequence number sits above them, the
/// time in the upper 64 bits, so that one integer comparison orders by (time, sequence).
const SLOT_BITS: u32 = 24;

/// A heap key's time and slot.
fn split(key: u128) -> (u64, usize) {
    (
        (key >> 64) as u64,
        (key as u64 & ((1 << SLOT_BITS) - 1)) as usize,
    )
}

/// A deterministic priority queue of timed items.
///
/// At most 2^24 items wait at once and 2^40 are pushed in all, far beyond any run's event
/// budget; past that, `push` panics rather than misorder.
#[derive(Debug, Clone)]
pub struct EventQueue<T> {
    heap: BinaryHeap<Reverse<u128>>,
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    seq: u64,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
        }
    }
}

impl<T> EventQueue<T> {
    /// Schedules `item` at true time `at`.
    pub fn push(&mut self, at: u64, item: T) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(s) => {
                let cell = &mut self.slots[s as usize];
                match cell {
                    // Filled in place: a free slot holds nothing to drop.
                    None => *cell = Some(item),
                    Some(_) => unreachable!("a free slot holds no item"),
                }
                s
            }
            None => {
                self.slots.push(Some(item));
                (self.slots.len() - 1) as u32
            }
        };
        assert!(
            u64::from(slot) < 1 << SLOT_BITS && self.seq < 1 << (64 - SLOT_BITS),
            "the event queue is full: {} items wait, {} were pushed",
            self.slots.len(),
            self.seq
        );
        let key = u128::from(at) << 64 | u128::from(self.seq << SLOT_BITS | u64::from(slot));
        self.heap.push(Reverse(key));
    }

    /// Removes and returns the earliest item with its time.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let Reverse(key) = self.heap.pop()?;
        let (at, slot) = split(key);
        self.free.push(slot as u32);
        self.slots[slot].take().map(|item| (at, item))
    }

    /// When the earliest item is due, if any.
    pub fn next_at(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(key)| split(*key).0)
    }

    /// Every waiting item with its time, in the order they will pop (for fingerprints: the
    /// sequence numbers themselves are left out, only the order they give).
    pub fn in_order(&self) -> Vec<(u64, &T)> {
        let mut keys: Vec<u128> = self.heap.iter().map(|Reverse(k)| *k).collect();
        keys.sort_unstable();
        keys.into_iter()
            .map(split)
            .filter_map(|(at, slot)| self.slots[slot].as_ref().map(|item| (at, item)))
            .collect()
    }

    /// Whether nothing waits.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_insertion_order() {
        let mut q = EventQueue::default();
        q.push(5, "c");
        q.push(1, "a");
        q.push(5, "d");
        q.push(1, "b");
        let mut order = vec![q.pop().unwrap()];
        q.push(3, "e");
        order.extend(std::iter::from_fn(|| q.pop()));
        assert_eq!(
            order,
            vec![(1, "a"), (1, "b"), (3, "e"), (5, "c"), (5, "d")]
        );
        assert!(q.is_empty());
    }
}
