//! Acquisition: attempts fanned out to every instance, WAIT for replicas, and the decision
//! (grant, or failure with cleanup and perhaps a retry after a backoff).

use super::{Action, FailReason, Held};
use super::{Attempt, AttemptId, LockMachine, Pending, Purpose, Slot, State};
use crate::command::{Command, Reply, Shape};
use crate::recipe::AcquireStyle;
use crate::{Micros, MICROS_PER_MS};
use rand_core::RngCore;

impl LockMachine {
    pub(super) fn acquire_command(&self) -> Command {
        let (key, token, ttl_ms) = (self.key.clone(), self.token.clone(), self.recipe.ttl_ms);
        if self.recipe.fencing {
            return Command::FencedAcquire {
                counter_key: format!("{key}:fence").into(),
                key,
                token,
                ttl_ms,
            };
        }
        match self.recipe.acquire {
            AcquireStyle::SetNxPx => Command::SetNx {
                key,
                value: token,
                ttl_ms,
            },
            AcquireStyle::SetnxThenExpire => Command::SetNxLegacy { key, value: token },
            AcquireStyle::PlainSet => Command::Set {
                key,
                value: token,
                ttl_ms,
            },
            AcquireStyle::Counting => Command::CountingAcquire { key, token, ttl_ms },
        }
    }

    pub(super) fn start_attempt(&mut self, number: u32, now: Micros, out: &mut Vec<Action>) {
        out.push(Action::AttemptStarted { attempt: number });
        let timeout = self.timer(now + self.request_timeout(), out);
        self.last_attempt += 1;
        let id = AttemptId(self.last_attempt);
        self.state = State::Acquiring(Attempt {
            id,
            number,
            started: now,
            slots: smallvec::smallvec![Slot::Pending; self.instances],
            fencing: None,
            waiting: None,
            min_acked: i64::MAX,
            timeout,
            resends: 0,
        });
        let command = self.acquire_command();
        self.send_each(0..self.instances, Purpose::Acquire(id), command, out);
    }

    pub(super) fn on_wait_reply(
        &mut self,
        id: AttemptId,
        reply: &Reply,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        let current = self.current_attempt() == Some(id);
        if let State::Acquiring(a) = &mut self.state {
            if current {
                if let Some(left) = a.waiting.as_mut() {
                    let acked = match reply {
                        Reply::Int(n) => *n,
                        _ => -1,
                    };
                    a.min_acked = a.min_acked.min(acked);
                    *left -= 1;
                    if *left == 0 {
                        self.finish_wait(now, rng, out);
                    }
                }
            }
        }
    }

    /// The attempt under way, if one is.
    pub(super) fn current_attempt(&self) -> Option<AttemptId> {
        match &self.state {
            State::Acquiring(a) => Some(a.id),
            _ => None,
        }
    }

    pub(super) fn on_acquire_reply(
        &mut self,
        id: AttemptId,
        p: Pending,
        reply: Reply,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        let granted = reply.grant(p.shape);
        if self.current_attempt() != Some(id) {
            // A grant for an attempt already decided (of this acquisition or an earlier one):
            // part of the lock held now, or deleted, so the key is not left behind.
            if granted.is_some() {
                let late_for_held =
                    matches!(&self.state, State::Held(_)) && self.held_attempt == Some(id);
                if late_for_held {
                    if let State::Held(h) = &mut self.state {
                        h.granted[p.instance] = true;
                    }
                } else {
                    // With the token this request wrote: an earlier acquisition's key holds
                    // that one, not the current token.
                    let token = p.token.as_ref().unwrap_or(&self.token);
                    let cmd = self.release_command_for(token);
                    self.send(p.instance, Purpose::Cleanup, cmd, out);
                }
            }
            return;
        }
        let needs_expire = p.shape == Shape::SetNxLegacy && granted.is_some();
        if needs_expire {
            if let Some(ttl_ms) = self.recipe.ttl_ms {
                if let State::Acquiring(a) = &mut self.state {
                    a.slots[p.instance] = Slot::Expiring;
                }
                let cmd = Command::PExpire {
                    key: self.key.clone(),
                    ttl_ms,
                };
                self.send(p.instance, Purpose::Acquire(id), cmd, out);
                return;
            }
        }
        if let State::Acquiring(a) = &mut self.state {
            a.slots[p.instance] = match (&granted, &reply) {
                (Some(fence), _) => {
                    if let Some(f) = fence {
                        a.fencing = Some(*f);
                    }
                    Slot::Granted
                }
                // PEXPIRE answers 0 only when the key is gone; anything else leaves it.
                (None, Reply::Int(0)) if p.shape == Shape::PExpire => Slot::Refused,
                (None, _) if p.shape == Shape::PExpire => Slot::Unexpired,
                (None, Reply::Error(_)) => Slot::Failed,
                (None, _) => Slot::Refused,
            };
        }
        self.decide_attempt(now, rng, out);
    }

    fn decide_attempt(&mut self, now: Micros, rng: &mut dyn RngCore, out: &mut Vec<Action>) {
        let State::Acquiring(a) = &self.state else {
            return;
        };
        if a.waiting.is_some() {
            return;
        }
        let count = |s: Slot| a.slots.iter().filter(|x| **x == s).count();
        let (granted, refused, failed) = (
            count(Slot::Granted),
            count(Slot::Refused),
            count(Slot::Failed) + count(Slot::Unexpired),
        );
        if granted >= self.quorum {
            if let Some(w) = self.recipe.wait_replicas.clone() {
                let targets: Vec<usize> = (0..self.instances)
                    .filter(|i| a.slots[*i] == Slot::Granted)
                    .collect();
                let id = a.id;
                let deadline = now + w.timeout_ms * MICROS_PER_MS + self.request_timeout();
                let timeout = self.timer(deadline, out);
                if let State::Acquiring(a) = &mut self.state {
                    a.waiting = Some(targets.len());
                    a.timeout = timeout;
                }
                for i in targets {
                    let cmd = Command::Wait {
                        replicas: w.replicas,
                        timeout_ms: w.timeout_ms,
                    };
                    self.send(i, Purpose::Wait(id), cmd, out);
                }
            } else {
                self.grant(now, rng, out);
            }
        } else if refused + failed > self.instances - self.quorum {
            self.fail_attempt(
                FailReason::Contended {
                    granted,
                    refused,
                    failed,
                },
                now,
                rng,
                out,
            );
        }
    }

    fn finish_wait(&mut self, now: Micros, rng: &mut dyn RngCore, out: &mut Vec<Action>) {
        let (State::Acquiring(a), Some(w)) = (&self.state, self.recipe.wait_replicas.clone())
        else {
            return;
        };
        if a.min_acked < i64::from(w.replicas) {
            let reason = FailReason::NotReplicated {
                acked: a.min_acked.max(0),
                needed: w.replicas,
            };
            self.fail_attempt(reason, now, rng, out);
        } else {
            self.grant(now, rng, out);
        }
    }

    fn grant(&mut self, now: Micros, rng: &mut dyn RngCore, out: &mut Vec<Action>) {
        let State::Acquiring(a) = &self.state else {
            return;
        };
        let valid_until = if self.recipe.check_validity {
            self.valid_until(a.started)
        } else {
            // The pitfall: however long the attempt took, the grant counts as fresh.
            self.valid_until(now)
        };
        if valid_until <= now {
            self.fail_attempt(FailReason::ValidityElapsed, now, rng, out);
            return;
        }
        let granted = a.slots.iter().map(|s| s.holds_our_key()).collect();
        let fencing = a.fencing;
        self.held_attempt = self.current_attempt();
        out.push(Action::Acquired {
            token: self.token.clone(),
            fencing_token: fencing,
            valid_until,
        });
        let mut held = Held {
            fencing,
            valid_until,
            granted,
            watchdog: None,
            validity: None,
            round: None,
            lost: false,
        };
        if valid_until != Micros::MAX {
            held.validity = Some(self.timer(valid_until, out));
        }
        if let (true, Some(ttl)) = (self.recipe.watchdog, self.ttl()) {
            held.watchdog = Some(self.timer(now + ttl / 3, out));
        }
        self.state = State::Held(held);
    }

    fn fail_attempt(
        &mut self,
        reason: FailReason,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        let State::Acquiring(a) = &self.state else {
            return;
        };
        let number = a.number;
        // Unlock everywhere we may hold the key: granted, or silent (the grant may have landed).
        let targets: Vec<usize> = (0..self.instances)
            .filter(|i| a.slots[*i].holds_our_key() || a.slots[*i] == Slot::Failed)
            .collect();
        let cmd = self.release_command();
        self.send_each(targets, Purpose::Cleanup, cmd, out);
        out.push(Action::AttemptFailed {
            attempt: number,
            reason: reason.clone(),
        });
        if self.recipe.retry.may_retry(number) {
            let at = now + self.recipe.retry.delay(number, rng);
            let timer = self.timer(at, out);
            self.state = State::Backoff {
                attempt: number,
                timer,
            };
        } else {
            self.state = State::Idle;
            out.push(Action::Failed {
                attempts: number,
                reason,
            });
        }
    }

    /// The attempt's request timeout (or, once WAIT was sent, the WAIT timeout) fired.
    pub(super) fn on_acquire_timeout(
        &mut self,
        id: AttemptId,
        waiting: bool,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        if waiting {
            // WAIT replies that never came count as no replica acknowledged.
            self.drop_inflight(|p| p == Purpose::Wait(id));
            if let State::Acquiring(a) = &mut self.state {
                if a.waiting != Some(0) {
                    a.min_acked = -1;
                }
            }
            self.finish_wait(now, rng, out);
        } else {
            if self.resend_acquire(id, now, out) {
                return;
            }
            self.drop_inflight(|p| p == Purpose::Acquire(id));
            if let State::Acquiring(a) = &mut self.state {
                for s in a.slots.iter_mut() {
                    match s {
                        Slot::Pending => *s = Slot::Failed,
                        Slot::Expiring => *s = Slot::Unexpired,
                        _ => {}
                    }
                }
            }
            self.decide_attempt(now, rng, out);
        }
    }

    /// The attempt's request timeout fired with acquire requests unanswered: while the recipe
    /// allows another resend (`acquire_resends`), each is forgotten and the acquire command
    /// sent again with the same token, under a new request timeout. Whether it did.
    fn resend_acquire(&mut self, id: AttemptId, now: Micros, out: &mut Vec<Action>) -> bool {
        let State::Acquiring(a) = &self.state else {
            return false;
        };
        if a.resends >= self.recipe.acquire_resends {
            return false;
        }
        let silent: Vec<usize> = (0..self.instances)
            .filter(|i| a.slots[*i] == Slot::Pending)
            .collect();
        if silent.is_empty() {
            return false;
        }
        // The unanswered requests are given up (a late reply to one is ignored), not undone:
        // a request that was only slow still runs on its server.
        let command = self.acquire_command();
        let shape = command.shape();
        self.inflight.retain(|(_, p)| {
            !(p.purpose == Purpose::Acquire(id) && p.shape == shape && silent.contains(&p.instance))
        });
        let timeout = self.timer(now + self.request_timeout(), out);
        if let State::Acquiring(a) = &mut self.state {
            a.resends += 1;
            a.timeout = timeout;
        }
        self.send_each(silent, Purpose::Acquire(id), command, out);
        true
    }
}
