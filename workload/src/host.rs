//! Hosting one scenario client: its [`ClientLoop`], its local clock, its random stream and
//! its timers, behind one sans-IO API that every backend drives.
//!
//! The API follows quinn-proto's connection: inputs go in with `handle*`, the time of the
//! next timer comes out of [`Host::poll_timeout`], and due timers are fired with
//! [`Host::handle_timeout`]. A backend only moves bytes (the [`Output::Send`]s and
//! [`Output::Write`]s) and time:
//!
//! - the live driver sleeps until `poll_timeout()` and calls `handle_timeout()`;
//! - the simulator, whose event queue must order every timer among the other events, puts
//!   each [`Output::Timer`] on its queue itself and fires it with [`Host::fire`].
//!
//! Times given to a host are *true* times (µs since the run began); the host reads them on
//! the client's [`Clock`], so clock offsets, drift and jumps act the same way everywhere.
//! A client program outside the harness (speaking the client protocol) is the other kind of
//! client a backend can run; it reports the same history records, so the checker cannot
//! tell them apart.

use crate::client_timers::ClientTimers;
use crate::clock::Clock;
use crate::{streams, ClientLoop, Input, Output, Timer};
use lock_core::{Micros, ValidRecipe};
use rand_chacha::ChaCha8Rng;
use scenario::{ClockSpec, Scenario};

/// One scenario client as a backend runs it.
#[derive(Debug, Clone)]
pub struct Host {
    client: ClientLoop,
    rng: ChaCha8Rng,
    clock: Clock,
    timers: ClientTimers,
}

impl Host {
    /// Hosts scenario client number `index` of `scenario`, locking with `recipe` (the
    /// scenario's, validated for its lock instances), with its clock from `scenario.clocks`
    /// and its random stream of `seed`.
    pub fn for_scenario(
        scenario: &Scenario,
        index: usize,
        seed: u64,
        recipe: &ValidRecipe,
    ) -> Host {
        let spec = &scenario.clients[index];
        let clock = scenario
            .clocks
            .clients
            .get(&spec.name)
            .cloned()
            .unwrap_or_default();
        let client = ClientLoop::new(spec.clone(), recipe.clone(), &scenario.resource.key);
        Host::new(client, &clock, streams::client(seed, index))
    }

    /// Hosts `client` with a clock following `clock` and random numbers from `rng`.
    pub fn new(client: ClientLoop, clock: &ClockSpec, rng: ChaCha8Rng) -> Host {
        Host {
            client,
            rng,
            clock: Clock::new(clock),
            timers: ClientTimers::default(),
        }
    }

    /// Writes what changes as the client runs (its loop's state, where its random stream
    /// stands, its clock and timers) for a state fingerprint.
    pub fn write_state(&self, w: &mut dyn std::fmt::Write) -> std::fmt::Result {
        self.client.write_state(w)?;
        write!(
            w,
            "|{}|{:?}|{:?}",
            self.rng.get_word_pos(),
            self.clock,
            self.timers
        )
    }

    /// The client loop (its name, token, and whether it is done).
    pub fn client(&self) -> &ClientLoop {
        &self.client
    }

    /// The client's local clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Feeds `input` at true time `now`; outputs are appended to `out`. The timers among them
    /// are noted here, and left in `out` for a backend that schedules them itself.
    pub fn handle(&mut self, input: Input, now: Micros, out: &mut Vec<Output>) {
        let from = out.len();
        let local = self.clock.local(now);
        self.client.handle(input, local, &mut self.rng, out);
        self.note_timers(&out[from..]);
    }

    /// The commit write could not reach the resource (see [`ClientLoop::commit_failed`]).
    pub fn commit_failed(&mut self, now: Micros, out: &mut Vec<Output>) {
        let from = out.len();
        let local = self.clock.local(now);
        self.client.commit_failed(local, &mut self.rng, out);
        self.note_timers(&out[from..]);
    }

    /// Fires `timer` at true time `now` if it is still pending (a backend that schedules
    /// timers itself calls this when one comes due); false when it was not, or when the
    /// client no longer waits for it ([`ClientLoop::awaits`]: firing it would do nothing).
    pub fn fire(&mut self, timer: Timer, now: Micros, out: &mut Vec<Output>) -> bool {
        if !self.timers.take(timer) || !self.client.awaits(timer) {
            return false;
        }
        self.handle(Input::Timer(timer), now, out);
        true
    }

    /// The true time, not before `now`, at which the next pending timer comes due.
    pub fn poll_timeout(&self, now: Micros) -> Option<Micros> {
        let local = self.timers.next_deadline()?;
        Some(self.clock.true_at(local, now))
    }

    /// Fires every timer due at true time `now`, earliest first.
    pub fn handle_timeout(&mut self, now: Micros, out: &mut Vec<Output>) {
        let local = self.clock.local(now);
        while let Some(timer) = self.timers.pop_due(local) {
            self.handle(Input::Timer(timer), now, out);
        }
    }

    /// Steps the client's clock by `by_us` at true time `now`. Pending timers keep their local
    /// deadlines, so a backend that scheduled them must schedule them again
    /// ([`Host::pending_timers`]); the clock's epoch tells stale ones apart.
    pub fn jump_clock(&mut self, now: Micros, by_us: i64) {
        self.clock.jump(now, by_us);
    }

    /// The pending timers and their local deadlines, in a fixed order.
    pub fn pending_timers(&self) -> impl Iterator<Item = (Timer, Micros)> + '_ {
        self.timers.pending()
    }

    fn note_timers(&mut self, outputs: &[Output]) {
        for o in outputs {
            if let Output::Timer { timer, at } = *o {
                self.timers.set(timer, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::Event as H;
    use lock_core::{Event as LockEvent, Recipe, Reply};

    fn host(clock: ClockSpec) -> Host {
        let spec = crate::client::tests::spec();
        let recipe = Recipe::default()
            .validated(1)
            .expect("the default recipe is valid");
        let client = ClientLoop::new(spec, recipe, "k");
        Host::new(client, &clock, streams::client(1, 0))
    }

    /// Starts the client and grants its lock at true time 1 ms.
    fn acquired(h: &mut Host) -> Vec<Output> {
        let mut out = Vec::new();
        h.handle(Input::Start, 0, &mut out);
        let request = out
            .iter()
            .find_map(|o| match o {
                Output::Send { request, .. } => Some(*request),
                _ => None,
            })
            .expect("the client sends its acquire");
        out.clear();
        let reply = Input::Lock(LockEvent::Reply {
            request,
            reply: Reply::Ok,
        });
        h.handle(reply, 1_000, &mut out);
        out
    }

    fn commit_requested(out: &[Output]) -> bool {
        out.contains(&Output::Write {
            commit: true,
            fencing_token: None,
        })
    }

    #[test]
    fn the_work_timer_fires_once_when_due() {
        let mut h = host(ClockSpec::default());
        let out = acquired(&mut h);
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Record(H::Acquired { .. }))));
        // 10 ms of work from 1 ms on; the lock's own timers may come earlier.
        let mut out = Vec::new();
        let mut now = 0;
        while !commit_requested(&out) {
            let next = h
                .poll_timeout(now)
                .expect("a timer is pending while working");
            assert!(next >= now, "poll_timeout never goes back in time");
            now = next;
            h.handle_timeout(now, &mut out);
        }
        assert_eq!(now, 11_000);
        // Fired timers are gone: nothing fires again at the same time.
        out.clear();
        h.handle_timeout(now, &mut out);
        assert!(!commit_requested(&out));
    }

    #[test]
    fn a_fast_clock_brings_true_deadlines_closer() {
        let mut h = host(ClockSpec {
            offset_ms: 0.0,
            rate: 2.0,
        });
        acquired(&mut h);
        let work = h
            .pending_timers()
            .find(|(t, _)| matches!(t, Timer::Work(_)))
            .expect("the work timer is pending");
        // At twice the speed, 10 local ms of work from true 1 ms end at true 6 ms.
        assert_eq!(h.clock().true_at(work.1, 1_000), 6_000);
    }

    #[test]
    fn a_lock_timer_the_machine_moved_past_is_taken_but_not_fed() {
        let mut h = host(ClockSpec::default());
        acquired(&mut h);
        // The first lock timer set, the attempt's timeout, comes first in key order.
        let (attempt_timeout, _) = h
            .pending_timers()
            .find(|(t, _)| matches!(t, Timer::Lock(_)))
            .expect("the attempt's timeout is pending");
        let mut fired = Vec::new();
        assert!(
            !h.fire(attempt_timeout, 500_000, &mut fired),
            "the grant ended the attempt: its timeout is stale"
        );
        assert!(fired.is_empty());
        assert!(
            !h.pending_timers().any(|(t, _)| t == attempt_timeout),
            "a stale timer leaves the table all the same"
        );
    }

    #[test]
    fn fire_skips_a_timer_that_is_not_pending() {
        let mut h = host(ClockSpec::default());
        acquired(&mut h);
        let (work, _) = h
            .pending_timers()
            .find(|(t, _)| matches!(t, Timer::Work(_)))
            .expect("the work timer is pending");
        let mut out = Vec::new();
        assert!(h.fire(work, 11_000, &mut out));
        assert!(commit_requested(&out));
        assert!(!h.fire(work, 11_000, &mut out), "a timer fires once");
    }
}
