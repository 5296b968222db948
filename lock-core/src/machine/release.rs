//! Releasing: the release of a held lock, the abandonment of an acquisition under way, and
//! the commands that delete a key holding a given token.

use super::{Action, FailReason, LockMachine, PerInstance, Purpose, State};
use crate::command::{Command, Reply};
use crate::recipe::{AcquireStyle, ReleaseStyle};
use crate::{Micros, SharedStr};

impl LockMachine {
    pub(super) fn on_release_reply(&mut self, reply: &Reply, out: &mut Vec<Action>) {
        if let State::Releasing {
            outstanding,
            confirmed,
            ..
        } = &mut self.state
        {
            if matches!(reply, Reply::Int(n) if *n >= 1) {
                *confirmed += 1;
            }
            *outstanding -= 1;
            if *outstanding == 0 {
                let confirmed = *confirmed;
                self.finish_release(confirmed, out);
            }
        }
    }

    /// A GET-then-DEL release's GET answered: our token read means the DEL follows (however
    /// long ago the GET ran); anything else ends that instance's release with nothing deleted.
    pub(super) fn on_release_get_reply(
        &mut self,
        instance: usize,
        reply: &Reply,
        now: Micros,
        out: &mut Vec<Action>,
    ) {
        if !matches!(self.state, State::Releasing { .. }) {
            return;
        }
        if matches!(reply, Reply::Bulk(v) if *v == *self.token) {
            // The DEL is a request of its own: it gets its own timeout.
            let at = now + self.request_timeout();
            let timer = self.timer(at, out);
            if let State::Releasing { timeout, .. } = &mut self.state {
                *timeout = timer;
            }
            let cmd = Command::Del {
                key: self.key.clone(),
            };
            self.send(instance, Purpose::Release, cmd, out);
        } else {
            self.on_release_reply(&Reply::Int(0), out);
        }
    }

    pub(super) fn release_command(&self) -> Command {
        self.release_command_for(&self.token)
    }

    /// The release of a key that holds `token` in one command: the cleanup of a failed or
    /// abandoned attempt. A GET-then-DEL recipe cleans up with the compare-and-delete script
    /// (its pitfall is in the release of a held lock). A counting lock is released by the
    /// counting release script, one hold at a time.
    pub(super) fn release_command_for(&self, token: &SharedStr) -> Command {
        let counting = self.recipe.acquire == AcquireStyle::Counting;
        match self.recipe.release {
            ReleaseStyle::CompareAndDelete | ReleaseStyle::GetThenDel if counting => {
                Command::CountingRelease {
                    key: self.key.clone(),
                    token: token.clone(),
                    ttl_ms: self.recipe.ttl_ms,
                }
            }
            ReleaseStyle::CompareAndDelete | ReleaseStyle::GetThenDel => Command::Release {
                key: self.key.clone(),
                token: token.clone(),
            },
            ReleaseStyle::PlainDel => Command::Del {
                key: self.key.clone(),
            },
        }
    }

    pub(super) fn release(&mut self, now: Micros, out: &mut Vec<Action>) {
        let targets: PerInstance<usize> = match &self.state {
            State::Held(h) => (0..self.instances).filter(|i| h.granted[*i]).collect(),
            State::Acquiring(a) => {
                // Abandon the attempt; late grants are cleaned up as they arrive.
                let t: PerInstance<usize> = (0..self.instances)
                    .filter(|i| a.slots[*i].holds_our_key())
                    .collect();
                out.push(Action::Failed {
                    attempts: a.number,
                    reason: FailReason::Abandoned,
                });
                self.held_attempt = None;
                let cmd = self.release_command();
                self.state = State::Idle;
                self.send_each(t, Purpose::Cleanup, cmd, out);
                return;
            }
            State::Backoff { attempt, .. } => {
                out.push(Action::Failed {
                    attempts: *attempt,
                    reason: FailReason::Abandoned,
                });
                self.state = State::Idle;
                return;
            }
            State::Idle | State::Releasing { .. } => return,
        };
        // Late grants of the held attempt become cleanups from here on.
        self.held_attempt = None;
        if let State::Held(h) = &self.state {
            let held = h.clone();
            self.leak_watchdog(&held, now, out);
        }
        let timeout = self.timer(now + self.request_timeout(), out);
        self.state = State::Releasing {
            outstanding: targets.len(),
            confirmed: 0,
            timeout,
        };
        if targets.is_empty() {
            self.finish_release(0, out);
            return;
        }
        if self.recipe.release == ReleaseStyle::GetThenDel {
            let cmd = Command::Get {
                key: self.key.clone(),
            };
            self.send_each(targets, Purpose::ReleaseGet, cmd, out);
            return;
        }
        let cmd = self.release_command();
        self.send_each(targets, Purpose::Release, cmd, out);
    }

    pub(super) fn finish_release(&mut self, confirmed: usize, out: &mut Vec<Action>) {
        self.drop_inflight(|p| matches!(p, Purpose::Release | Purpose::ReleaseGet));
        self.state = State::Idle;
        out.push(Action::Released { confirmed });
    }
}
