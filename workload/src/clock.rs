//! Local clocks: an offset from true time, a rate, and jumps.

use scenario::ClockSpec;

/// Local clocks count from this epoch (µs), so negative offsets stay positive numbers.
pub const LOCAL_EPOCH: u64 = 1_000_000_000_000;

/// A node's or client's clock, as a function of true time.
#[derive(Debug, Clone)]
pub struct Clock {
    anchor_true: u64,
    anchor_local: u64,
    rate: f64,
    /// Bumped at every jump, so timers set against the old reading can be re-planned.
    pub epoch: u64,
}

impl Clock {
    /// A clock started at true time 0 with the given offset and rate.
    pub fn new(spec: &ClockSpec) -> Clock {
        let offset = (spec.offset_ms * 1000.0) as i64;
        Clock {
            anchor_true: 0,
            anchor_local: LOCAL_EPOCH.saturating_add_signed(offset),
            rate: spec.rate,
            epoch: 0,
        }
    }

    /// The local reading at true time `t` (t must not precede the last jump).
    pub fn local(&self, t: u64) -> u64 {
        let dt = t.saturating_sub(self.anchor_true);
        self.anchor_local
            + if self.rate == 1.0 {
                dt
            } else {
                (dt as f64 * self.rate) as u64
            }
    }

    /// The earliest true time, not before `now`, at which the clock reads at least `local`.
    pub fn true_at(&self, local: u64, now: u64) -> u64 {
        if local <= self.local(now) {
            return now;
        }
        let dl = local - self.anchor_local;
        let dt = if self.rate == 1.0 {
            dl
        } else {
            (dl as f64 / self.rate).ceil() as u64
        };
        let mut t = (self.anchor_true + dt).max(now);
        while self.local(t) < local {
            t += 1;
        }
        t
    }

    /// Steps the clock by `by_us` at true time `now`.
    pub fn jump(&mut self, now: u64, by_us: i64) {
        let reading = self.local(now);
        self.anchor_true = now;
        self.anchor_local = reading.saturating_add_signed(by_us);
        self.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_rate_and_inverse() {
        let c = Clock::new(&ClockSpec {
            offset_ms: -5.0,
            rate: 1.01,
        });
        assert_eq!(c.local(0), LOCAL_EPOCH - 5_000);
        assert_eq!(c.local(100_000), LOCAL_EPOCH - 5_000 + 101_000);
        let target = LOCAL_EPOCH + 50_000;
        let t = c.true_at(target, 0);
        assert!(c.local(t) >= target && c.local(t - 1) < target);
    }

    #[test]
    fn a_forward_jump_brings_deadlines_closer() {
        let mut c = Clock::new(&ClockSpec::default());
        let deadline = LOCAL_EPOCH + 30_000_000;
        assert_eq!(c.true_at(deadline, 0), 30_000_000);
        c.jump(1_000_000, 20_000_000);
        assert_eq!(c.local(1_000_000), LOCAL_EPOCH + 21_000_000);
        assert_eq!(c.true_at(deadline, 1_000_000), 10_000_000);
        assert_eq!(c.epoch, 1);
    }
}
