//! Holding: the validity timer, the watchdog and extension rounds.

use super::{Action, Held, LockMachine, LostReason, Purpose, Round, State};
use crate::command::{Command, Reply};
use crate::Micros;

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
        let cmd = Command::Extend {
            key: self.key.clone(),
            token: self.token.to_string(),
            ttl_ms,
        };
        self.send_each(0..self.instances, Purpose::Extend { round: id }, cmd, out);
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
