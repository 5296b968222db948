//! Releasing: the release of a held lock, the abandonment of an acquisition under way, and
//! the commands that delete a key holding a given token.

use super::{Action, FailReason, LockMachine, Purpose, State};
use crate::command::{Command, Reply};
use crate::recipe::ReleaseStyle;
use crate::Micros;

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

    pub(super) fn release_command(&self) -> Command {
        self.release_command_for(&self.token)
    }

    /// The release of a key that holds `token`.
    pub(super) fn release_command_for(&self, token: &str) -> Command {
        match self.recipe.release {
            ReleaseStyle::CompareAndDelete => Command::Release {
                key: self.key.clone(),
                token: token.to_string(),
            },
            ReleaseStyle::PlainDel => Command::Del {
                key: self.key.clone(),
            },
        }
    }

    pub(super) fn release(&mut self, now: Micros, out: &mut Vec<Action>) {
        let targets: Vec<usize> = match &self.state {
            State::Held(h) => (0..self.instances).filter(|i| h.granted[*i]).collect(),
            State::Acquiring(a) => {
                // Abandon the attempt; late grants are cleaned up as they arrive.
                let t: Vec<usize> = (0..self.instances)
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
        let cmd = self.release_command();
        self.send_each(targets, Purpose::Release, cmd, out);
    }

    pub(super) fn finish_release(&mut self, confirmed: usize, out: &mut Vec<Action>) {
        self.drop_inflight(|p| p == Purpose::Release);
        self.state = State::Idle;
        out.push(Action::Released { confirmed });
    }
}
