//! The lock state machine: `(event, now)` in, actions out.
//!
//! One machine serves one client's lock on one resource, over one instance (a plain lock) or
//! several (Redlock). An acquisition attempt fans out to every instance at once and is decided
//! as soon as the outcome is known: a quorum of grants, or so many refusals and failures that a
//! quorum can no longer be reached. Grants that arrive after the decision are remembered, so
//! the release reaches them too.

use crate::command::{Command, Reply, Shape};
use crate::recipe::{AcquireStyle, Recipe, ReleaseStyle, TokenStyle};
use crate::{Micros, MICROS_PER_MS};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Identifies one command sent by a machine; the caller hands it back with the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// Identifies one timer set by a machine; the caller hands it back when the timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimerId(pub u64);

/// Something that happened to the lock's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The owner wants the lock.
    Acquire,
    /// An instance answered a command (or the driver gave up on it: [`Reply::Error`]).
    Reply { request: RequestId, reply: Reply },
    /// A timer set with [`Action::SetTimer`] is due.
    Timer(TimerId),
    /// The owner is done with the lock (or gives up an acquisition under way).
    Release,
    /// The owner asks for one extension now.
    Extend,
}

/// Why an acquisition attempt, or the whole acquisition, failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// Too many instances refused or did not answer for a quorum.
    Contended {
        granted: usize,
        refused: usize,
        failed: usize,
    },
    /// A quorum was reached, but so late that no validity was left.
    ValidityElapsed,
    /// WAIT saw fewer replicas acknowledge than asked.
    NotReplicated { acked: i64, needed: u32 },
    /// The owner released while the acquisition was under way.
    Abandoned,
}

/// Why a held lock can no longer be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LostReason {
    /// The watchdog's extension was confirmed by fewer than a quorum.
    ExtendFailed { confirmed: usize, needed: usize },
    /// The validity ran out (by the owner's clock) without an extension.
    ValidityElapsed,
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::Contended {
                granted,
                refused,
                failed,
            } => {
                write!(
                    f,
                    "no quorum: {granted} granted, {refused} refused, {failed} silent"
                )
            }
            FailReason::ValidityElapsed => f.write_str("quorum reached after the validity ran out"),
            FailReason::NotReplicated { acked, needed } => {
                write!(f, "WAIT: {acked} of {needed} replicas acknowledged")
            }
            FailReason::Abandoned => f.write_str("abandoned by its owner"),
        }
    }
}

impl std::fmt::Display for LostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LostReason::ExtendFailed { confirmed, needed } => {
                write!(f, "extension confirmed by {confirmed}, {needed} needed")
            }
            LostReason::ValidityElapsed => f.write_str("validity elapsed on the owner's clock"),
        }
    }
}

/// What the machine asks of its driver, or tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `command` to instance `instance`; answer with [`Event::Reply`] quoting `request`.
    Send {
        instance: usize,
        request: RequestId,
        command: Command,
    },
    /// Deliver [`Event::Timer`] with `timer` when the caller's clock reaches `at`.
    SetTimer { timer: TimerId, at: Micros },
    /// An acquisition attempt began (1-based).
    AttemptStarted { attempt: u32 },
    /// An acquisition attempt failed; another may follow after a backoff.
    AttemptFailed { attempt: u32, reason: FailReason },
    /// The owner holds the lock until `valid_until` on its own clock (`u64::MAX`: no expiry).
    Acquired {
        token: String,
        fencing_token: Option<u64>,
        valid_until: Micros,
    },
    /// The acquisition gave up after `attempts` attempts.
    Failed { attempts: u32, reason: FailReason },
    /// An extension was confirmed by a quorum.
    Extended { valid_until: Micros },
    /// The owner should stop trusting the lock.
    Lost { reason: LostReason },
    /// The release finished; `confirmed` instances deleted our key.
    Released { confirmed: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Pending,
    /// SETNX granted, PEXPIRE under way.
    Expiring,
    Granted,
    Refused,
    Failed,
}

/// One attempt of one acquisition. Attempt numbers start at 1 for every acquisition, so a
/// reply is matched to its attempt by both: a straggler of an earlier acquisition is never
/// taken for a reply of the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AttemptId {
    /// Counts acquisitions ([`Event::Acquire`] from idle); only grows.
    acquisition: u64,
    attempt: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// An acquire command (or SETNX's PEXPIRE) of that attempt.
    Acquire(AttemptId),
    /// WAIT after that attempt reached its quorum.
    Wait(AttemptId),
    Extend {
        round: u64,
    },
    Release,
    /// A late grant's cleanup, or any reply nobody waits for.
    Cleanup,
}

#[derive(Debug, Clone)]
struct Pending {
    instance: usize,
    purpose: Purpose,
    shape: Shape,
    /// The token an acquire command wrote (`Some` for [`Purpose::Acquire`] only): a grant
    /// that comes too late is deleted with it, whichever acquisition is current by then.
    token: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
struct Attempt {
    number: u32,
    started: Micros,
    slots: Vec<Slot>,
    fencing: Option<u64>,
    /// WAIT replies still expected; `Some` once the quorum was reached and WAIT sent.
    waiting: Option<usize>,
    min_acked: i64,
    timeout: TimerId,
}

#[derive(Debug, Clone)]
struct Round {
    id: u64,
    started: Micros,
    confirmed: usize,
    failed: usize,
    timeout: TimerId,
}

#[derive(Debug, Clone)]
struct Held {
    fencing: Option<u64>,
    valid_until: Micros,
    granted: Vec<bool>,
    watchdog: Option<TimerId>,
    validity: Option<TimerId>,
    round: Option<Round>,
    lost: bool,
}

#[derive(Debug, Clone)]
enum State {
    Idle,
    Acquiring(Attempt),
    Backoff {
        attempt: u32,
        timer: TimerId,
    },
    Held(Held),
    Releasing {
        outstanding: usize,
        confirmed: usize,
        timeout: TimerId,
    },
}

/// One owner's lock on one resource: the whole protocol, driven by [`LockMachine::handle`].
#[derive(Debug, Clone)]
pub struct LockMachine {
    recipe: Recipe,
    key: String,
    instances: usize,
    quorum: usize,
    /// Shared with the acquire requests under way, so remembering it costs no copy.
    token: Arc<str>,
    state: State,
    next_request: u64,
    next_timer: u64,
    next_round: u64,
    /// The current (or last) acquisition; 0 before the first.
    acquisition: u64,
    /// The attempt whose grants make up the lock held now.
    held_attempt: Option<AttemptId>,
    inflight: BTreeMap<RequestId, Pending>,
}

impl LockMachine {
    /// A machine for `key` over `instances` instances. The recipe must have passed
    /// [`Recipe::validate`] for that instance count.
    pub fn new(recipe: Recipe, key: impl Into<String>, instances: usize) -> LockMachine {
        let quorum = recipe.quorum(instances);
        LockMachine {
            recipe,
            key: key.into(),
            instances,
            quorum,
            token: Arc::from(""),
            state: State::Idle,
            next_request: 0,
            next_timer: 0,
            next_round: 0,
            acquisition: 0,
            held_attempt: None,
            inflight: BTreeMap::new(),
        }
    }

    /// The lock key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The token of the current (or last) acquisition.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether the machine holds the lock right now (lost or not).
    pub fn is_held(&self) -> bool {
        matches!(self.state, State::Held(_))
    }

    /// Whether the machine is idle: neither acquiring, holding nor releasing.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// The recipe this machine runs.
    pub fn recipe(&self) -> &Recipe {
        &self.recipe
    }

    /// Feeds one event at `now` (the owner's clock); actions are appended to `out`.
    /// `rng` supplies tokens and retry jitter.
    pub fn handle(
        &mut self,
        event: Event,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        match event {
            Event::Acquire => {
                if matches!(self.state, State::Idle) {
                    self.acquisition += 1;
                    self.token = match &self.recipe.token {
                        TokenStyle::Unique => Arc::from(random_token(rng)),
                        TokenStyle::Fixed(v) => Arc::from(v.as_str()),
                    };
                    self.start_attempt(1, now, out);
                }
            }
            Event::Reply { request, reply } => self.on_reply(request, reply, now, rng, out),
            Event::Timer(timer) => self.on_timer(timer, now, rng, out),
            Event::Release => self.release(now, out),
            Event::Extend => self.start_extend(now, out),
        }
    }

    fn ttl(&self) -> Option<Micros> {
        self.recipe.ttl_ms.map(|ms| ms * MICROS_PER_MS)
    }

    fn timer(&mut self, at: Micros, out: &mut Vec<Action>) -> TimerId {
        self.next_timer += 1;
        let timer = TimerId(self.next_timer);
        out.push(Action::SetTimer { timer, at });
        timer
    }

    fn send(&mut self, instance: usize, purpose: Purpose, command: Command, out: &mut Vec<Action>) {
        self.next_request += 1;
        let request = RequestId(self.next_request);
        let token = matches!(purpose, Purpose::Acquire(_)).then(|| self.token.clone());
        self.inflight.insert(
            request,
            Pending {
                instance,
                purpose,
                shape: command.shape(),
                token,
            },
        );
        out.push(Action::Send {
            instance,
            request,
            command,
        });
    }

    fn request_timeout(&self) -> Micros {
        self.recipe.request_timeout_ms * MICROS_PER_MS
    }

    fn acquire_command(&self) -> Command {
        let (key, token, ttl_ms) = (self.key.clone(), self.token.to_string(), self.recipe.ttl_ms);
        if self.recipe.fencing {
            return Command::FencedAcquire {
                counter_key: format!("{key}:fence"),
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
        }
    }

    fn release_command(&self) -> Command {
        self.release_command_for(&self.token)
    }

    /// The release of a key that holds `token`.
    fn release_command_for(&self, token: &str) -> Command {
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

    fn start_attempt(&mut self, number: u32, now: Micros, out: &mut Vec<Action>) {
        out.push(Action::AttemptStarted { attempt: number });
        let timeout = self.timer(now + self.request_timeout(), out);
        self.state = State::Acquiring(Attempt {
            number,
            started: now,
            slots: vec![Slot::Pending; self.instances],
            fencing: None,
            waiting: None,
            min_acked: i64::MAX,
            timeout,
        });
        let command = self.acquire_command();
        let id = AttemptId {
            acquisition: self.acquisition,
            attempt: number,
        };
        for instance in 0..self.instances {
            self.send(instance, Purpose::Acquire(id), command.clone(), out);
        }
    }

    fn on_reply(
        &mut self,
        request: RequestId,
        reply: Reply,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.inflight.remove(&request) else {
            return;
        };
        match p.purpose {
            Purpose::Acquire(id) => self.on_acquire_reply(id, p, reply, now, rng, out),
            Purpose::Wait(id) => {
                let current = self.current_attempt() == Some(id);
                if let State::Acquiring(a) = &mut self.state {
                    if current {
                        if let Some(left) = a.waiting.as_mut() {
                            let acked = match reply {
                                Reply::Int(n) => n,
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
            Purpose::Extend { round } => {
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
            Purpose::Release => {
                if let State::Releasing {
                    outstanding,
                    confirmed,
                    ..
                } = &mut self.state
                {
                    if matches!(reply, Reply::Int(n) if n >= 1) {
                        *confirmed += 1;
                    }
                    *outstanding -= 1;
                    if *outstanding == 0 {
                        let confirmed = *confirmed;
                        self.finish_release(confirmed, out);
                    }
                }
            }
            Purpose::Cleanup => {}
        }
    }

    /// The attempt under way, if one is.
    fn current_attempt(&self) -> Option<AttemptId> {
        match &self.state {
            State::Acquiring(a) => Some(AttemptId {
                acquisition: self.acquisition,
                attempt: a.number,
            }),
            _ => None,
        }
    }

    fn on_acquire_reply(
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
                    let token = p.token.as_deref().unwrap_or(&self.token);
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
            count(Slot::Failed),
        );
        if granted >= self.quorum {
            if let Some(w) = self.recipe.wait_replicas.clone() {
                let targets: Vec<usize> = (0..self.instances)
                    .filter(|i| a.slots[*i] == Slot::Granted)
                    .collect();
                let id = AttemptId {
                    acquisition: self.acquisition,
                    attempt: a.number,
                };
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

    fn valid_until(&self, started: Micros) -> Micros {
        match self.ttl() {
            None => Micros::MAX,
            Some(ttl) => {
                let drift = (self.recipe.drift_factor * ttl as f64) as u64 + 2 * MICROS_PER_MS;
                (started + ttl).saturating_sub(drift)
            }
        }
    }

    fn grant(&mut self, now: Micros, rng: &mut dyn RngCore, out: &mut Vec<Action>) {
        let State::Acquiring(a) = &self.state else {
            return;
        };
        let valid_until = self.valid_until(a.started);
        if valid_until <= now {
            self.fail_attempt(FailReason::ValidityElapsed, now, rng, out);
            return;
        }
        let granted = a.slots.iter().map(|s| *s == Slot::Granted).collect();
        let fencing = a.fencing;
        self.held_attempt = self.current_attempt();
        out.push(Action::Acquired {
            token: self.token.to_string(),
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
            .filter(|i| matches!(a.slots[*i], Slot::Granted | Slot::Failed | Slot::Expiring))
            .collect();
        let cmd = self.release_command();
        for i in targets {
            self.send(i, Purpose::Cleanup, cmd.clone(), out);
        }
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

    fn on_timer(
        &mut self,
        timer: TimerId,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        /// Which of the machine's timers fired.
        enum Due {
            AcquireTimeout { id: AttemptId, waiting: bool },
            Retry { next: u32 },
            Validity,
            Watchdog,
            ExtendTimeout { round: u64 },
            ReleaseTimeout { confirmed: usize },
        }
        let due = match &self.state {
            State::Acquiring(a) if a.timeout == timer => Due::AcquireTimeout {
                id: AttemptId {
                    acquisition: self.acquisition,
                    attempt: a.number,
                },
                waiting: a.waiting.is_some(),
            },
            State::Backoff { attempt, timer: t } if *t == timer => Due::Retry { next: attempt + 1 },
            State::Held(h) if h.validity == Some(timer) => Due::Validity,
            State::Held(h) if h.watchdog == Some(timer) => Due::Watchdog,
            State::Held(Held { round: Some(r), .. }) if r.timeout == timer => {
                Due::ExtendTimeout { round: r.id }
            }
            State::Releasing {
                timeout, confirmed, ..
            } if *timeout == timer => Due::ReleaseTimeout {
                confirmed: *confirmed,
            },
            _ => return,
        };
        match due {
            Due::AcquireTimeout { id, waiting } => {
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
                    self.drop_inflight(|p| p == Purpose::Acquire(id));
                    if let State::Acquiring(a) = &mut self.state {
                        for s in a.slots.iter_mut() {
                            if matches!(s, Slot::Pending | Slot::Expiring) {
                                *s = Slot::Failed;
                            }
                        }
                    }
                    self.decide_attempt(now, rng, out);
                }
            }
            Due::Retry { next } => self.start_attempt(next, now, out),
            Due::Validity => {
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
            Due::Watchdog => {
                if let State::Held(h) = &mut self.state {
                    h.watchdog = None;
                }
                self.start_extend(now, out);
            }
            Due::ExtendTimeout { round } => {
                self.drop_inflight(|p| p == Purpose::Extend { round });
                let instances = self.instances;
                if let State::Held(Held { round: Some(r), .. }) = &mut self.state {
                    r.failed = instances - r.confirmed;
                }
                self.decide_extend(now, out);
            }
            Due::ReleaseTimeout { confirmed } => self.finish_release(confirmed, out),
        }
    }

    fn drop_inflight(&mut self, pred: impl Fn(Purpose) -> bool) {
        self.inflight.retain(|_, p| !pred(p.purpose));
    }

    fn start_extend(&mut self, now: Micros, out: &mut Vec<Action>) {
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
        for i in 0..self.instances {
            self.send(i, Purpose::Extend { round: id }, cmd.clone(), out);
        }
    }

    fn decide_extend(&mut self, now: Micros, out: &mut Vec<Action>) {
        let State::Held(Held { round: Some(r), .. }) = &self.state else {
            return;
        };
        let r = r.clone();
        if r.confirmed >= self.quorum {
            let valid_until = self.valid_until(r.started);
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
        } else if r.failed > self.instances - self.quorum {
            if let State::Held(h) = &mut self.state {
                h.round = None;
                h.lost = true;
                h.watchdog = None;
            }
            out.push(Action::Lost {
                reason: LostReason::ExtendFailed {
                    confirmed: r.confirmed,
                    needed: self.quorum,
                },
            });
        }
    }

    fn release(&mut self, now: Micros, out: &mut Vec<Action>) {
        let targets: Vec<usize> = match &self.state {
            State::Held(h) => (0..self.instances).filter(|i| h.granted[*i]).collect(),
            State::Acquiring(a) => {
                // Abandon the attempt; late grants are cleaned up as they arrive.
                let t: Vec<usize> = (0..self.instances)
                    .filter(|i| matches!(a.slots[*i], Slot::Granted | Slot::Expiring))
                    .collect();
                out.push(Action::Failed {
                    attempts: a.number,
                    reason: FailReason::Abandoned,
                });
                self.held_attempt = None;
                let cmd = self.release_command();
                self.state = State::Idle;
                for i in t {
                    self.send(i, Purpose::Cleanup, cmd.clone(), out);
                }
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
        for i in targets {
            self.send(i, Purpose::Release, cmd.clone(), out);
        }
    }

    fn finish_release(&mut self, confirmed: usize, out: &mut Vec<Action>) {
        self.drop_inflight(|p| p == Purpose::Release);
        self.state = State::Idle;
        out.push(Action::Released { confirmed });
    }

    /// The fencing token of the lock held now, if the recipe takes one.
    pub fn fencing_token(&self) -> Option<u64> {
        match &self.state {
            State::Held(h) => h.fencing,
            _ => None,
        }
    }
}

/// 20 random bytes, hex-encoded (as the Redlock page recommends).
fn random_token(rng: &mut dyn RngCore) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 20];
    rng.fill_bytes(&mut bytes);
    let mut s = String::with_capacity(40);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::{RedlockConfig, WaitReplicas};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const MS: Micros = MICROS_PER_MS;

    struct Harness {
        m: LockMachine,
        rng: ChaCha8Rng,
        out: Vec<Action>,
    }

    impl Harness {
        fn new(recipe: Recipe, instances: usize) -> Harness {
            recipe.validate(instances).unwrap();
            Harness {
                m: LockMachine::new(recipe, "lock:x", instances),
                rng: ChaCha8Rng::seed_from_u64(3),
                out: Vec::new(),
            }
        }
        fn feed(&mut self, e: Event, now: Micros) -> Vec<Action> {
            self.out.clear();
            self.m.handle(e, now, &mut self.rng, &mut self.out);
            self.out.clone()
        }
    }

    fn sends(actions: &[Action]) -> Vec<(usize, RequestId, Command)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    instance,
                    request,
                    command,
                } => Some((*instance, *request, command.clone())),
                _ => None,
            })
            .collect()
    }

    fn timers(actions: &[Action]) -> Vec<(TimerId, Micros)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::SetTimer { timer, at } => Some((*timer, *at)),
                _ => None,
            })
            .collect()
    }

    fn reply(request: RequestId, reply: Reply) -> Event {
        Event::Reply { request, reply }
    }

    #[test]
    fn single_instance_grant_with_validity_net_of_drift() {
        let mut h = Harness::new(Recipe::default(), 1);
        let a = h.feed(Event::Acquire, 0);
        let s = sends(&a);
        assert_eq!(s.len(), 1);
        assert!(matches!(
            &s[0].2,
            Command::SetNx {
                ttl_ms: Some(30000),
                ..
            }
        ));
        let a = h.feed(reply(s[0].1, Reply::Ok), MS);
        let valid_until = a
            .iter()
            .find_map(|x| match x {
                Action::Acquired { valid_until, .. } => Some(*valid_until),
                _ => None,
            })
            .expect("acquired");
        // 30 s − (0.01 · 30 s + 2 ms), counted from the attempt's start.
        assert_eq!(valid_until, 30_000 * MS - 302 * MS);
        assert_eq!(h.m.token().len(), 40);
        // watchdog at TTL/3 after the grant, validity timer at valid_until
        let t = timers(&a);
        assert!(t.iter().any(|(_, at)| *at == valid_until));
        assert!(t.iter().any(|(_, at)| *at == MS + 10_000 * MS));
    }

    #[test]
    fn contention_retries_with_backoff_then_fails_at_the_limit() {
        let mut r = Recipe::default();
        r.retry.max_attempts = Some(2);
        let mut h = Harness::new(r, 1);
        let s = sends(&h.feed(Event::Acquire, 0));
        let a = h.feed(reply(s[0].1, Reply::Nil), MS);
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::AttemptFailed { attempt: 1, .. })));
        let (retry, at) = *timers(&a).last().unwrap();
        assert!((51 * MS..=101 * MS).contains(&at), "{at}");
        let a = h.feed(Event::Timer(retry), at);
        assert!(a.contains(&Action::AttemptStarted { attempt: 2 }));
        let s = sends(&a);
        let a = h.feed(reply(s[0].1, Reply::Nil), at + MS);
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::Failed { attempts: 2, .. })));
        assert!(h.m.is_idle());
    }

    #[test]
    fn redlock_decides_at_quorum_without_the_slowest_and_releases_late_grants() {
        let r = Recipe {
            redlock: Some(RedlockConfig::default()),
            ..Recipe::default()
        };
        let mut h = Harness::new(r, 5);
        let s = sends(&h.feed(Event::Acquire, 0));
        assert_eq!(s.len(), 5, "fans out to every instance at once");
        h.feed(reply(s[0].1, Reply::Ok), MS);
        h.feed(reply(s[1].1, Reply::Ok), MS);
        let a = h.feed(reply(s[2].1, Reply::Ok), 2 * MS);
        assert!(
            a.iter().any(|x| matches!(x, Action::Acquired { .. })),
            "3 of 5 suffice"
        );
        // instance 4 grants late: the release must reach it
        h.feed(reply(s[4].1, Reply::Ok), 3 * MS);
        let rel = sends(&h.feed(Event::Release, 4 * MS));
        let targets: Vec<usize> = rel.iter().map(|x| x.0).collect();
        assert_eq!(targets, vec![0, 1, 2, 4]);
        assert!(matches!(rel[0].2, Command::Release { .. }));
    }

    fn redlock3() -> Harness {
        let r = Recipe {
            redlock: Some(RedlockConfig::default()),
            ..Recipe::default()
        };
        Harness::new(r, 3)
    }

    fn acquired(actions: &[Action]) -> bool {
        actions.iter().any(|x| matches!(x, Action::Acquired { .. }))
    }

    /// Acquires at 2 of 3 (instance 2's SET left under way) and releases; the first
    /// acquisition's sends and its token.
    fn acquire_at_quorum_then_release(
        h: &mut Harness,
    ) -> (Vec<(usize, RequestId, Command)>, String) {
        let s = sends(&h.feed(Event::Acquire, 0));
        h.feed(reply(s[0].1, Reply::Ok), MS);
        assert!(acquired(&h.feed(reply(s[1].1, Reply::Ok), MS)));
        let token = h.m.token().to_string();
        let rel = sends(&h.feed(Event::Release, 2 * MS));
        assert_eq!(rel.len(), 2);
        h.feed(reply(rel[0].1, Reply::Int(1)), 3 * MS);
        let a = h.feed(reply(rel[1].1, Reply::Int(1)), 3 * MS);
        assert_eq!(a, vec![Action::Released { confirmed: 2 }]);
        (s, token)
    }

    #[test]
    fn a_late_grant_of_the_previous_acquisition_is_not_a_grant_of_the_next() {
        let mut h = redlock3();
        let (old, old_token) = acquire_at_quorum_then_release(&mut h);
        let new = sends(&h.feed(Event::Acquire, 4 * MS));
        assert_ne!(h.m.token(), old_token);
        // The first acquisition's SET to instance 2 grants now: that key holds the old token.
        let a = h.feed(reply(old[2].1, Reply::Ok), 5 * MS);
        assert!(!acquired(&a), "a grant of the old token counted: {a:?}");
        assert_eq!(
            sends(&a)
                .into_iter()
                .map(|(i, _, c)| (i, c))
                .collect::<Vec<_>>(),
            vec![(
                2,
                Command::Release {
                    key: "lock:x".into(),
                    token: old_token.clone()
                }
            )],
            "the late grant is deleted with the token it was set with"
        );
        // One new grant is not a quorum of 3; two are.
        assert!(!acquired(&h.feed(reply(new[0].1, Reply::Ok), 6 * MS)));
        assert!(acquired(&h.feed(reply(new[1].1, Reply::Ok), 6 * MS)));
        // The release goes where the new token was granted, not to instance 2.
        let rel: Vec<usize> = sends(&h.feed(Event::Release, 7 * MS))
            .iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(rel, vec![0, 1]);
    }

    #[test]
    fn a_late_grant_of_the_previous_acquisition_is_deleted_while_the_next_is_held() {
        let mut h = redlock3();
        let (old, old_token) = acquire_at_quorum_then_release(&mut h);
        let new = sends(&h.feed(Event::Acquire, 4 * MS));
        h.feed(reply(new[0].1, Reply::Ok), 5 * MS);
        assert!(acquired(&h.feed(reply(new[1].1, Reply::Ok), 5 * MS)));
        // Same attempt number (1) as the held one, but another acquisition's grant.
        let a = sends(&h.feed(reply(old[2].1, Reply::Ok), 6 * MS));
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].0, &a[0].2),
            (
                2,
                &Command::Release {
                    key: "lock:x".into(),
                    token: old_token
                }
            )
        );
        let rel: Vec<usize> = sends(&h.feed(Event::Release, 7 * MS))
            .iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(rel, vec![0, 1], "instance 2 never held the new token");
    }

    #[test]
    fn a_late_grant_after_a_retry_is_deleted_with_its_own_token() {
        let mut h = redlock3();
        let (old, old_token) = acquire_at_quorum_then_release(&mut h);
        // The next acquisition's first attempt fails, so it is in backoff when the old grant
        // comes in.
        let new = sends(&h.feed(Event::Acquire, 4 * MS));
        h.feed(reply(new[0].1, Reply::Nil), 5 * MS);
        h.feed(reply(new[1].1, Reply::Nil), 5 * MS);
        let a = sends(&h.feed(reply(old[2].1, Reply::Ok), 6 * MS));
        assert_eq!(
            a.into_iter().map(|(i, _, c)| (i, c)).collect::<Vec<_>>(),
            vec![(
                2,
                Command::Release {
                    key: "lock:x".into(),
                    token: old_token
                }
            )]
        );
    }

    #[test]
    fn a_wait_reply_of_an_abandoned_acquisition_does_not_count_for_the_next() {
        let r = Recipe {
            redlock: Some(RedlockConfig::default()),
            wait_replicas: Some(WaitReplicas {
                replicas: 1,
                timeout_ms: 100,
            }),
            ..Recipe::default()
        };
        let mut h = Harness::new(r, 3);
        let s = sends(&h.feed(Event::Acquire, 0));
        h.feed(reply(s[0].1, Reply::Ok), MS);
        let w = sends(&h.feed(reply(s[1].1, Reply::Ok), MS));
        assert_eq!(w.len(), 2, "WAIT to both grants");
        // Abandoned while WAIT is under way; its deletes are answered.
        let cleanup = sends(&h.feed(Event::Release, 2 * MS));
        assert_eq!(cleanup.len(), 2);
        assert!(h.m.is_idle());
        let new = sends(&h.feed(Event::Acquire, 3 * MS));
        h.feed(reply(new[0].1, Reply::Ok), 4 * MS);
        let w2 = sends(&h.feed(reply(new[1].1, Reply::Ok), 4 * MS));
        assert_eq!(w2.len(), 2);
        // The old WAITs answer: they say nothing about the new writes.
        assert!(!acquired(&h.feed(reply(w[0].1, Reply::Int(1)), 5 * MS)));
        assert!(!acquired(&h.feed(reply(w[1].1, Reply::Int(1)), 5 * MS)));
        h.feed(reply(w2[0].1, Reply::Int(1)), 6 * MS);
        assert!(acquired(&h.feed(reply(w2[1].1, Reply::Int(1)), 6 * MS)));
    }

    #[test]
    fn redlock_fails_as_soon_as_a_quorum_is_out_of_reach_and_unlocks() {
        let mut r = Recipe {
            redlock: Some(RedlockConfig::default()),
            ..Recipe::default()
        };
        r.retry.max_attempts = Some(1);
        let mut h = Harness::new(r, 5);
        let s = sends(&h.feed(Event::Acquire, 0));
        h.feed(reply(s[0].1, Reply::Ok), MS);
        h.feed(reply(s[1].1, Reply::Nil), MS);
        h.feed(reply(s[2].1, Reply::Nil), MS);
        let a = h.feed(reply(s[3].1, Reply::Nil), MS);
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Failed {
                reason: FailReason::Contended {
                    granted: 1,
                    refused: 3,
                    failed: 0
                },
                ..
            }
        )));
        let cleanup: Vec<usize> = sends(&a).iter().map(|x| x.0).collect();
        assert_eq!(cleanup, vec![0], "the one grant is unlocked at once");
        // the fifth instance grants after the decision: unlocked too
        let late = sends(&h.feed(reply(s[4].1, Reply::Ok), 2 * MS));
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].0, 4);
    }

    #[test]
    fn never_reports_a_lock_whose_validity_is_gone() {
        let mut r = Recipe {
            ttl_ms: Some(100),
            watchdog: false,
            ..Recipe::default()
        };
        r.retry.max_attempts = Some(1);
        let mut h = Harness::new(r, 1);
        let s = sends(&h.feed(Event::Acquire, 0));
        let a = h.feed(reply(s[0].1, Reply::Ok), 99 * MS);
        assert!(!a.iter().any(|x| matches!(x, Action::Acquired { .. })));
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Failed {
                reason: FailReason::ValidityElapsed,
                ..
            }
        )));
        assert!(sends(&a)
            .iter()
            .any(|x| matches!(x.2, Command::Release { .. })));
    }

    #[test]
    fn watchdog_extends_and_reports_lost_when_the_extension_fails() {
        let r = Recipe {
            ttl_ms: Some(3_000),
            ..Recipe::default()
        };
        let mut h = Harness::new(r, 1);
        let s = sends(&h.feed(Event::Acquire, 0));
        let a = h.feed(reply(s[0].1, Reply::Ok), MS);
        let (wd, at) = timers(&a)[1];
        assert_eq!(at, 1_001 * MS);
        let a = h.feed(Event::Timer(wd), at);
        let ext = sends(&a);
        assert!(matches!(ext[0].2, Command::Extend { ttl_ms: 3000, .. }));
        let a = h.feed(reply(ext[0].1, Reply::Int(1)), at + MS);
        assert!(a.contains(&Action::Extended {
            valid_until: at + 3_000 * MS - 32 * MS
        }));
        let (_, _) = timers(&a)[0];
        let (wd2, at2) = timers(&a)[1];
        let ext = sends(&h.feed(Event::Timer(wd2), at2));
        let a = h.feed(reply(ext[0].1, Reply::Int(0)), at2 + MS);
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Lost {
                reason: LostReason::ExtendFailed { .. }
            }
        )));
    }

    #[test]
    fn validity_elapsed_without_watchdog_is_reported_lost() {
        let r = Recipe {
            ttl_ms: Some(1_000),
            watchdog: false,
            ..Recipe::default()
        };
        let mut h = Harness::new(r, 1);
        let s = sends(&h.feed(Event::Acquire, 0));
        let a = h.feed(reply(s[0].1, Reply::Ok), MS);
        let (t, at) = timers(&a)[0];
        let a = h.feed(Event::Timer(t), at);
        assert_eq!(
            a,
            vec![Action::Lost {
                reason: LostReason::ValidityElapsed
            }]
        );
    }

    #[test]
    fn setnx_then_expire_sends_two_commands() {
        let r = Recipe::default().with_pitfall(crate::Pitfall::SetnxThenExpire);
        let mut h = Harness::new(r, 1);
        let s = sends(&h.feed(Event::Acquire, 0));
        assert!(matches!(s[0].2, Command::SetNxLegacy { .. }));
        let a = h.feed(reply(s[0].1, Reply::Int(1)), MS);
        let s2 = sends(&a);
        assert!(matches!(s2[0].2, Command::PExpire { ttl_ms: 30000, .. }));
        assert!(!a.iter().any(|x| matches!(x, Action::Acquired { .. })));
        let a = h.feed(reply(s2[0].1, Reply::Int(1)), 2 * MS);
        assert!(a.iter().any(|x| matches!(x, Action::Acquired { .. })));
    }

    #[test]
    fn fencing_token_comes_from_the_acquire_script() {
        let r = Recipe {
            fencing: true,
            ..Recipe::default()
        };
        let mut h = Harness::new(r, 1);
        let s = sends(&h.feed(Event::Acquire, 0));
        assert!(
            matches!(&s[0].2, Command::FencedAcquire { counter_key, .. } if counter_key == "lock:x:fence")
        );
        let a = h.feed(reply(s[0].1, Reply::Int(34)), MS);
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Acquired {
                fencing_token: Some(34),
                ..
            }
        )));
        assert_eq!(h.m.fencing_token(), Some(34));
    }

    #[test]
    fn wait_for_replicas_fails_the_attempt_when_too_few_ack() {
        let mut r = Recipe {
            wait_replicas: Some(WaitReplicas {
                replicas: 1,
                timeout_ms: 100,
            }),
            ..Recipe::default()
        };
        r.retry.max_attempts = Some(1);
        let mut h = Harness::new(r, 1);
        let s = sends(&h.feed(Event::Acquire, 0));
        let a = h.feed(reply(s[0].1, Reply::Ok), MS);
        let w = sends(&a);
        assert!(matches!(
            w[0].2,
            Command::Wait {
                replicas: 1,
                timeout_ms: 100
            }
        ));
        let a = h.feed(reply(w[0].1, Reply::Int(0)), 101 * MS);
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Failed {
                reason: FailReason::NotReplicated {
                    acked: 0,
                    needed: 1
                },
                ..
            }
        )));
    }

    #[test]
    fn request_timeout_counts_silent_instances_as_failed() {
        let mut r = Recipe::default();
        r.retry.max_attempts = Some(1);
        let mut h = Harness::new(r, 1);
        let a = h.feed(Event::Acquire, 0);
        let (t, at) = timers(&a)[0];
        assert_eq!(at, 500 * MS);
        let a = h.feed(Event::Timer(t), at);
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Failed {
                reason: FailReason::Contended { failed: 1, .. },
                ..
            }
        )));
        // the silent instance may have granted: it is unlocked too
        assert_eq!(sends(&a).len(), 1);
    }

    #[test]
    fn fixed_token_and_plain_del() {
        let r = Recipe::default()
            .with_pitfall(crate::Pitfall::FixedValue)
            .with_pitfall(crate::Pitfall::PlainDel);
        let mut h = Harness::new(r, 1);
        let s = sends(&h.feed(Event::Acquire, 0));
        assert!(matches!(&s[0].2, Command::SetNx { value, .. } if value == "locked"));
        h.feed(reply(s[0].1, Reply::Ok), MS);
        let rel = sends(&h.feed(Event::Release, 2 * MS));
        assert!(matches!(rel[0].2, Command::Del { .. }));
        let a = h.feed(reply(rel[0].1, Reply::Int(1)), 3 * MS);
        assert_eq!(a, vec![Action::Released { confirmed: 1 }]);
        assert!(h.m.is_idle());
    }
}
