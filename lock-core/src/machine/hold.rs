//! Holding: the validity timer, the watchdog and extension rounds.

use super::{Action, Held, Leak, LockMachine, LostReason, Purpose, Round, State, TimerId};
use crate::command::{Command, Reply};
use crate::recipe::{AcquireStyle, ExtendStyle};
use crate::{Micros, SharedStr};

impl LockMachine {
    pub(super) fn on_extend_reply(
        &mut self,
        round: u64,
        reply: &Reply,
        now: Micros,
        out: &mut Vec<Action>,
    ) {
        let ok = matches!(reply, Reply::Int(1));
        if let State::Held(h) = &mut self.state {
            if let Some(r) = h.round.as_mut().filter(|r| r.id == round) {
                if ok {
                    r.confirmed += 1;
                } else {
                    r.failed += 1;
                }
                self.decide_extend(now, out);
            }
        }
    }

    /// The held lock's validity timer fired: lost, unless an extension moved it on.
    pub(super) fn on_validity_timer(&mut self, now: Micros, out: &mut Vec<Action>) {
        if let State::Held(h) = &mut self.state {
            h.validity = None;
            if !h.lost && h.valid_until <= now {
                h.lost = true;
                h.watchdog = None;
                out.push(Action::Lost {
                    reason: LostReason::ValidityElapsed,
                });
            }
        }
    }

    /// Extension round `round` timed out: the instances that did not answer count as failed.
    pub(super) fn on_extend_timeout(&mut self, round: u64, now: Micros, out: &mut Vec<Action>) {
        self.drop_inflight(|p| p == Purpose::Extend { round });
        let instances = self.instances;
        if let State::Held(Held { round: Some(r), .. }) = &mut self.state {
            r.failed = instances - r.confirmed;
        }
        self.decide_extend(now, out);
    }

    pub(super) fn start_extend(&mut self, now: Micros, out: &mut Vec<Action>) {
        let Some(ttl_ms) = self.recipe.ttl_ms else {
            return;
        };
        let State::Held(h) = &self.state else {
            return;
        };
        if h.lost || h.round.is_some() {
            return;
        }
        self.next_round += 1;
        let id = self.next_round;
        let timeout = self.timer(now + self.request_timeout(), out);
        if let State::Held(h) = &mut self.state {
            h.round = Some(Round {
                id,
                started: now,
                confirmed: 0,
                failed: 0,
                timeout,
            });
        }
        let cmd = self.extend_command(&self.token, ttl_ms);
        self.send_each(0..self.instances, Purpose::Extend { round: id }, cmd, out);
    }

    /// The extension of a key holding `token`, as the recipe sends it.
    fn extend_command(&self, token: &SharedStr, ttl_ms: u64) -> Command {
        match self.recipe.extend {
            ExtendStyle::CompareAndPexpire if self.recipe.acquire == AcquireStyle::Counting => {
                Command::CountingExtend {
                    key: self.key.clone(),
                    token: token.clone(),
                    ttl_ms,
                }
            }
            ExtendStyle::CompareAndPexpire => Command::Extend {
                key: self.key.clone(),
                token: token.clone(),
                ttl_ms,
            },
            ExtendStyle::PlainPexpire => Command::PExpire {
                key: self.key.clone(),
                ttl_ms,
            },
        }
    }

    /// The lock is being released: when the recipe leaves the watchdog running, it goes on
    /// as a leak (at its next tick, or TTL/3 from now when none was due), extending `held`'s
    /// token. A lost lock's watchdog had stopped already.
    pub(super) fn leak_watchdog(&mut self, held: &Held, now: Micros, out: &mut Vec<Action>) {
        if self.recipe.cancel_watchdog_on_release || !self.recipe.watchdog || held.lost {
            return;
        }
        let Some(ttl) = self.ttl() else {
            return;
        };
        let timer = match held.watchdog {
            Some(t) => t,
            None => self.timer(now + ttl / 3, out),
        };
        let round = self.leak.as_ref().map_or(0, |l| l.round);
        self.leak = Some(Leak {
            token: self.token.clone(),
            timer,
            round,
            gone: 0,
        });
    }

    /// The leaked watchdog's tick: extend its token's key on every instance, and tick again
    /// TTL/3 later (until a whole round answers that the key is gone).
    pub(super) fn leak_round(&mut self, now: Micros, out: &mut Vec<Action>) {
        let (Some(ttl_ms), Some(ttl)) = (self.recipe.ttl_ms, self.ttl()) else {
            return;
        };
        let Some(token) = self.leak.as_ref().map(|l| l.token.clone()) else {
            return;
        };
        let timer: TimerId = self.timer(now + ttl / 3, out);
        let instances = self.instances;
        let round = match self.leak.as_mut() {
            Some(l) => {
                l.round += 1;
                l.timer = timer;
                l.gone = 0;
                l.round
            }
            None => return,
        };
        let cmd = self.extend_command(&token, ttl_ms);
        self.send_each(0..instances, Purpose::Leak { round }, cmd, out);
    }

    /// A leaked watchdog's extension answered: a round in which every instance answered that
    /// the key is gone (or not ours) stops it.
    pub(super) fn on_leak_reply(&mut self, round: u64, reply: &Reply) {
        let Some(l) = self.leak.as_mut().filter(|l| l.round == round) else {
            return;
        };
        // Errors and silence do not stop it: only the key's absence everywhere does.
        if matches!(reply, Reply::Int(0)) {
            l.gone += 1;
        }
        if l.gone == self.instances {
            self.leak = None;
        }
    }

    pub(super) fn decide_extend(&mut self, now: Micros, out: &mut Vec<Action>) {
        let State::Held(h) = &self.state else {
            return;
        };
        let Some(r) = h.round.clone() else {
            return;
        };
        let valid_until = self.valid_until(r.started);
        let reason = if r.confirmed >= self.quorum && valid_until > now {
            out.push(Action::Extended { valid_until });
            let validity = self.timer(valid_until, out);
            let next = now.max(r.started + self.ttl().unwrap_or(0) / 3);
            let watchdog = self.timer(next, out);
            if let State::Held(h) = &mut self.state {
                h.round = None;
                h.valid_until = valid_until;
                h.validity = Some(validity);
                h.watchdog = Some(watchdog);
            }
            return;
        } else if r.confirmed >= self.quorum {
            // Confirmed so late that the validity it buys has run out already: as if the
            // validity timer had fired (which says so, unless it has).
            (!h.lost).then_some(LostReason::ValidityElapsed)
        } else if r.failed > self.instances - self.quorum {
            Some(LostReason::ExtendFailed {
                confirmed: r.confirmed,
                needed: self.quorum,
            })
        } else {
            return;
        };
        if let State::Held(h) = &mut self.state {
            h.round = None;
            h.lost = true;
            h.watchdog = None;
        }
        if let Some(reason) = reason {
            out.push(Action::Lost { reason });
        }
    }
}
