//! The client loop: one scenario client's workload around its lock machine.

use crate::dist::sample_us;
use checker::{Event as H, SectionEnd, SharedStr, Text};
use lock_core::{
    Action, Command, Event as LockEvent, LockMachine, LostReason, Micros, Op, RequestId, TimerId,
    ValidRecipe,
};
use rand::RngCore;
use scenario::{ClientSpec, Workload};

/// Something that happened to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The client's start time has come.
    Start,
    /// An event for the lock machine (a reply).
    Lock(LockEvent),
    /// A timer the loop asked for ([`Output::Timer`]) fired.
    Timer(Timer),
    /// The resource acknowledged the write at the end of the critical section.
    CommitAcked,
}

/// What the driver must do, or record.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send `command` to lock instance `instance`; feed the reply back as
    /// `Input::Lock(Event::Reply { request, .. })`.
    Send {
        /// The lock instance, by index.
        instance: usize,
        /// Quoted back with the reply.
        request: RequestId,
        /// What to send.
        command: Command,
    },
    /// Feed `Input::Timer(timer)` when the client's clock reaches `at`; setting a timer
    /// again moves it.
    Timer {
        /// Which timer.
        timer: Timer,
        /// When, on the client's clock.
        at: Micros,
    },
    /// Write to the protected resource; for `commit`, feed `Input::CommitAcked` on its ack.
    Write {
        /// The write at the end of the critical section (else the one at its start).
        commit: bool,
        /// The fencing token the write carries, if the lock gave one.
        fencing_token: Option<u64>,
    },
    /// Append this event to the history at the current true time.
    Record(H),
    /// The client process dies now (its `crash_after_commands` was reached).
    Crash,
}

/// One of the timers a client loop asks for. Ordered (lock timers by id, then work, then
/// think) so a table of them is iterated the same way on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// The lock machine's timer (attempt timeout, backoff, extension, validity).
    Lock(TimerId),
    /// The end of the critical section's work, numbered `gen`.
    Work(u64),
    /// The end of the pause between iterations, numbered `gen`.
    Think(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Acquiring,
    Working,
    Committing,
    Releasing,
    Thinking,
    Done,
}

/// One client: its lock machine and where it is in its workload.
#[derive(Debug, Clone)]
pub struct ClientLoop {
    spec: ClientSpec,
    machine: LockMachine,
    phase: Phase,
    iteration: u32,
    section_open: bool,
    fencing: Option<u64>,
    work_gen: u64,
    think_gen: u64,
    commands_sent: u32,
    crashed: bool,
    /// Requests in flight, in request order: which instance, which operation (to record
    /// replies).
    requests: Vec<(RequestId, usize, Op)>,
    actions: Vec<Action>,
    /// The spec's name, shared by every record the client makes.
    name: SharedStr,
}

impl ClientLoop {
    /// A client following `spec`, locking `key` with `recipe` (over the instances it was
    /// validated for).
    pub fn new(spec: ClientSpec, recipe: ValidRecipe, key: &str) -> ClientLoop {
        ClientLoop {
            name: SharedStr::from(&spec.name),
            spec,
            machine: LockMachine::new(recipe, key),
            phase: Phase::Idle,
            iteration: 1,
            section_open: false,
            fencing: None,
            work_gen: 0,
            think_gen: 0,
            commands_sent: 0,
            crashed: false,
            requests: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// Writes what changes as the client runs — its machine's state, phase, iteration,
    /// counters and requests in flight, not its spec or recipe — for a state fingerprint.
    pub fn write_state(&self, w: &mut dyn std::fmt::Write) -> std::fmt::Result {
        self.machine.write_state(w)?;
        write!(
            w,
            "|{:?}|{}|{}|{:?}|{}|{}|{}|{}|{:?}|{:?}",
            self.phase,
            self.iteration,
            self.section_open,
            self.fencing,
            self.work_gen,
            self.think_gen,
            self.commands_sent,
            self.crashed,
            self.requests,
            self.actions
        )
    }

    /// The client's name.
    pub fn name(&self) -> &SharedStr {
        &self.name
    }

    /// The client's scenario entry.
    pub fn spec(&self) -> &ClientSpec {
        &self.spec
    }

    /// The lock value of the current (or last) acquisition.
    pub fn token(&self) -> &SharedStr {
        self.machine.token()
    }

    /// Whether firing `timer` would still do anything: false for a lock timer the machine
    /// moved past (see [`LockMachine::awaits_timer`]); work and think timers check their
    /// generation when they fire.
    pub fn awaits(&self, timer: Timer) -> bool {
        match timer {
            Timer::Lock(id) => self.machine.awaits_timer(id),
            Timer::Work(_) | Timer::Think(_) => true,
        }
    }

    /// Whether the client process died (its `crash_after_commands` was reached).
    pub fn is_crashed(&self) -> bool {
        self.crashed
    }

    /// Whether the client has finished its workload (or died).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether the client believes it is inside its critical section.
    pub fn in_section(&self) -> bool {
        self.section_open
    }

    /// Feeds one input at `now` on the client's clock; outputs are appended to `out`.
    pub fn handle(
        &mut self,
        input: Input,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Output>,
    ) {
        let for_the_machine = matches!(input, Input::Lock(_) | Input::Timer(Timer::Lock(_)));
        if self.crashed || (self.phase == Phase::Done && !for_the_machine) {
            return;
        }
        match input {
            Input::Start if self.phase == Phase::Idle => self.begin_acquire(now, rng, out),
            Input::Start => {}
            Input::Lock(event) => {
                if let LockEvent::Reply { request, reply } = &event {
                    let found = self.requests.binary_search_by_key(request, |(r, ..)| *r);
                    if let Ok((_, instance, op)) = found.map(|i| self.requests.remove(i)) {
                        out.push(Output::Record(H::ReplyReceived {
                            client: self.name.clone(),
                            instance,
                            request: request.0,
                            op,
                            reply: reply.clone(),
                        }));
                    }
                }
                self.feed(event, now, rng, out);
            }
            Input::Timer(Timer::Lock(timer)) => self.feed(LockEvent::Timer(timer), now, rng, out),
            Input::Timer(Timer::Work(gen))
                if gen == self.work_gen && self.phase == Phase::Working =>
            {
                self.phase = Phase::Committing;
                out.push(Output::Write {
                    commit: true,
                    fencing_token: self.fencing,
                });
            }
            Input::Timer(Timer::Think(gen))
                if gen == self.think_gen && self.phase == Phase::Thinking =>
            {
                self.begin_acquire(now, rng, out)
            }
            Input::CommitAcked if self.phase == Phase::Committing && self.section_open => {
                self.end_section(SectionEnd::Done, now, rng, out)
            }
            _ => {}
        }
    }

    /// The commit write could not be delivered: the client gives up its section.
    pub fn commit_failed(&mut self, now: Micros, rng: &mut dyn RngCore, out: &mut Vec<Output>) {
        if self.phase == Phase::Committing && self.section_open {
            self.end_section(SectionEnd::Lost, now, rng, out);
        }
    }

    fn begin_acquire(&mut self, now: Micros, rng: &mut dyn RngCore, out: &mut Vec<Output>) {
        self.phase = Phase::Acquiring;
        out.push(Output::Record(H::AcquireStarted {
            client: self.name.clone(),
        }));
        self.feed(LockEvent::Acquire, now, rng, out);
    }

    fn feed(
        &mut self,
        event: LockEvent,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Output>,
    ) {
        let mut actions = std::mem::take(&mut self.actions);
        self.machine.handle(event, now, rng, &mut actions);
        for action in actions.drain(..) {
            if self.crashed {
                break; // a dead process does nothing more, not even what it had lined up
            }
            self.act(action, now, rng, out);
        }
        self.actions = actions;
    }

    fn act(&mut self, action: Action, now: Micros, rng: &mut dyn RngCore, out: &mut Vec<Output>) {
        let name = || self.name.clone();
        match action {
            Action::SetTimer { timer, at } => out.push(Output::Timer {
                timer: Timer::Lock(timer),
                at,
            }),
            Action::Send {
                instance,
                request,
                command,
            } => {
                let op = command.op();
                out.push(Output::Record(H::CommandSent {
                    client: name(),
                    instance,
                    request: request.0,
                    op,
                    command: Text::Value(command.clone()),
                }));
                match self.requests.binary_search_by_key(&request, |(r, ..)| *r) {
                    Ok(i) => self.requests[i] = (request, instance, op),
                    Err(i) => self.requests.insert(i, (request, instance, op)),
                }
                out.push(Output::Send {
                    instance,
                    request,
                    command,
                });
                self.commands_sent += 1;
                if self.spec.crash_after_commands == Some(self.commands_sent) {
                    self.crashed = true;
                    self.phase = Phase::Done;
                    self.section_open = false;
                    out.push(Output::Crash);
                }
            }
            Action::AttemptStarted { attempt } => out.push(Output::Record(H::AttemptStarted {
                client: name(),
                attempt,
            })),
            Action::AttemptFailed { attempt, reason } => {
                out.push(Output::Record(H::AttemptFailed {
                    client: name(),
                    attempt,
                    reason: text(&reason, 64),
                }))
            }
            Action::Acquired {
                token,
                fencing_token,
                valid_until,
            } => {
                if self.spec.workload == Workload::SetOnce {
                    // A set-once write is not a critical section: it never ends, and is
                    // judged by the set_once property alone.
                    self.phase = Phase::Done;
                    out.push(Output::Record(H::SetOnceWon {
                        client: name(),
                        key: self.key().clone(),
                    }));
                    return;
                }
                out.push(Output::Record(H::Acquired {
                    client: name(),
                    token,
                    fencing_token,
                    valid_for_us: (valid_until != u64::MAX)
                        .then(|| valid_until.saturating_sub(now)),
                }));
                self.fencing = fencing_token;
                self.section_open = true;
                self.phase = Phase::Working;
                self.work_gen += 1;
                let work = sample_us(&self.spec.work_ms, rng);
                out.push(Output::Write {
                    commit: false,
                    fencing_token,
                });
                out.push(Output::Timer {
                    timer: Timer::Work(self.work_gen),
                    at: now + work,
                });
            }
            Action::Failed { attempts, reason } => {
                out.push(Output::Record(H::AcquireFailed {
                    client: name(),
                    attempts,
                    reason: text(&reason, 64),
                }));
                self.next_iteration(now, rng, out);
            }
            Action::Extended { .. } => out.push(Output::Record(H::Extended { client: name() })),
            Action::Lost { reason } => {
                out.push(Output::Record(H::Lost {
                    client: name(),
                    reason: text(&reason, 64),
                }));
                let stop = match reason {
                    LostReason::ExtendFailed { .. } => Some(SectionEnd::Lost),
                    LostReason::ValidityElapsed if self.spec.honors_validity => {
                        Some(SectionEnd::ValidityElapsed)
                    }
                    LostReason::ValidityElapsed => None,
                };
                if let (Some(why), true) = (stop, self.section_open && self.phase == Phase::Working)
                {
                    self.end_section(why, now, rng, out);
                }
            }
            Action::Released { confirmed } => {
                out.push(Output::Record(H::Released {
                    client: name(),
                    confirmed,
                    error: None,
                }));
                if self.phase == Phase::Releasing {
                    self.next_iteration(now, rng, out);
                }
            }
        }
    }

    fn key(&self) -> &SharedStr {
        self.machine.key()
    }

    fn end_section(
        &mut self,
        why: SectionEnd,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Output>,
    ) {
        self.section_open = false;
        self.work_gen += 1;
        self.phase = Phase::Releasing;
        out.push(Output::Record(H::SectionEnded {
            client: self.name.clone(),
            why,
        }));
        self.feed(LockEvent::Release, now, rng, out);
    }

    fn next_iteration(&mut self, now: Micros, rng: &mut dyn RngCore, out: &mut Vec<Output>) {
        if self.iteration >= self.spec.iterations {
            self.phase = Phase::Done;
            return;
        }
        self.iteration += 1;
        self.phase = Phase::Thinking;
        self.think_gen += 1;
        let think = sample_us(&self.spec.think_ms, rng);
        out.push(Output::Timer {
            timer: Timer::Think(self.think_gen),
            at: now + think,
        });
    }
}

/// `value`'s `Display` text for the history, written into a string of `capacity` reserved
/// at once rather than grown from empty as `to_string` does (a few reallocations per text).
fn text(value: &impl std::fmt::Display, capacity: usize) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(capacity);
    // Writing to a String cannot fail.
    let _ = write!(text, "{value}");
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lock_core::{Recipe, Reply};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use scenario::Dist;

    /// A one-iteration client `A` with 10 ms of work.
    pub(crate) fn spec() -> ClientSpec {
        ClientSpec {
            name: "A".into(),
            start_ms: 0,
            work_ms: Dist::FixedMs(10.0),
            think_ms: Dist::FixedMs(0.0),
            iterations: 1,
            honors_validity: false,
            workload: Workload::Lock,
            crash_after_commands: None,
            after: None,
            program: None,
        }
    }

    fn sent(out: &[Output]) -> Vec<(RequestId, Command)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send {
                    request, command, ..
                } => Some((*request, command.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_whole_critical_section() {
        let mut c = ClientLoop::new(spec(), Recipe::default().validated(1).unwrap(), "k");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut out = Vec::new();
        c.handle(Input::Start, 0, &mut rng, &mut out);
        let (req, _) = sent(&out)[0].clone();
        out.clear();
        c.handle(
            Input::Lock(LockEvent::Reply {
                request: req,
                reply: Reply::Ok,
            }),
            100,
            &mut rng,
            &mut out,
        );
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Record(H::Acquired { .. }))));
        assert!(out.contains(&Output::Write {
            commit: false,
            fencing_token: None
        }));
        let gen = out
            .iter()
            .find_map(|o| match o {
                Output::Timer {
                    timer: Timer::Work(gen),
                    at,
                } => {
                    assert_eq!(*at, 10_100);
                    Some(*gen)
                }
                _ => None,
            })
            .unwrap();
        out.clear();
        c.handle(Input::Timer(Timer::Work(gen)), 10_100, &mut rng, &mut out);
        assert_eq!(
            out,
            vec![Output::Write {
                commit: true,
                fencing_token: None
            }]
        );
        out.clear();
        c.handle(Input::CommitAcked, 10_200, &mut rng, &mut out);
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Record(H::SectionEnded {
                why: SectionEnd::Done,
                ..
            })
        )));
        let (rel, cmd) = sent(&out)[0].clone();
        assert!(matches!(cmd, Command::Release { .. }));
        out.clear();
        c.handle(
            Input::Lock(LockEvent::Reply {
                request: rel,
                reply: Reply::Int(1),
            }),
            10_300,
            &mut rng,
            &mut out,
        );
        assert!(c.is_done());
    }

    #[test]
    fn crash_after_the_first_command() {
        let mut s = spec();
        s.crash_after_commands = Some(1);
        let recipe = Recipe::default().with_pitfall(lock_core::Pitfall::SetnxThenExpire);
        let mut c = ClientLoop::new(s, recipe.validated(1).unwrap(), "k");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut out = Vec::new();
        c.handle(Input::Start, 0, &mut rng, &mut out);
        assert_eq!(sent(&out).len(), 1);
        assert_eq!(out.last(), Some(&Output::Crash));
        assert!(c.is_done());
        // Whatever arrives afterwards, a dead client sends nothing more.
        let (req, _) = sent(&out)[0].clone();
        out.clear();
        c.handle(
            Input::Lock(LockEvent::Reply {
                request: req,
                reply: Reply::Int(1),
            }),
            5,
            &mut rng,
            &mut out,
        );
        assert!(sent(&out).is_empty(), "{out:?}");
    }
}
