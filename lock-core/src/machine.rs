//! The lock state machine: `(event, now)` in, actions out.
//!
//! One machine serves one client's lock on one resource, over one instance (a plain lock) or
//! several (Redlock). An acquisition attempt fans out to every instance at once and is decided
//! as soon as the outcome is known: a quorum of grants, or so many refusals and failures that a
//! quorum can no longer be reached. Grants that arrive after the decision are remembered, so
//! the release reaches them too.
//!
//! The protocol is split by phase: `acquire` (attempts, WAIT, grant or failure), `hold`
//! (validity, watchdog and extensions) and `release` (release and cleanup commands); this
//! module holds the state they share, the event dispatch and the timers.

mod acquire;
mod events;
mod hold;
mod release;
#[cfg(test)]
mod tests;

pub use events::{Action, Event, FailReason, LostReason, RequestId, TimerId};

use crate::command::{Command, Reply, Shape};
use crate::recipe::{Recipe, TokenStyle, ValidRecipe};
use crate::SharedStr;
use crate::{Micros, MICROS_PER_MS};
use rand_core::RngCore;
use smallvec::SmallVec;

/// One value per lock instance, held inline for up to 8 instances (a plain lock's one and
/// Redlock's usual 5 fit): an attempt or a held lock allocates nothing for them.
type PerInstance<T> = SmallVec<[T; 8]>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Pending,
    /// SETNX granted, PEXPIRE under way.
    Expiring,
    Granted,
    Refused,
    Failed,
    /// SETNX granted, but PEXPIRE failed or went unanswered: our key may be there with no
    /// TTL. Counts as failed, and is deleted with the lock as well as on failure.
    Unexpired,
}

impl Slot {
    /// Whether the instance holds (or may hold) the key with our token, as far as the machine
    /// learned: the release of the lock, or the cleanup of a failed attempt, must reach it.
    fn holds_our_key(self) -> bool {
        matches!(self, Slot::Granted | Slot::Expiring | Slot::Unexpired)
    }
}

/// One attempt, counted over the machine's whole life (every attempt of every acquisition;
/// 1 is the first): a straggler of an earlier attempt or acquisition is never taken for a
/// reply of the current one, and the attempts whose late grants are still awaited are the
/// last [`LATE_GRANT_ATTEMPTS`] ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct AttemptId(u64);

/// How many attempts, the current (or last) one included, still have their unanswered
/// acquire requests awaited. A grant reported later than that is ignored, as if its reply had
/// been lost: its key is left to expire by its TTL.
///
/// Without a limit, every request whose reply is lost (`network.loss`, a cut link, a crashed
/// node) would be remembered for the machine's whole life. With it, the requests the machine
/// remembers are at most [`LockMachine::max_inflight`].
pub const LATE_GRANT_ATTEMPTS: u64 = 8;

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
    /// A GET-then-DEL release's GET (its reply decides whether the DEL follows).
    ReleaseGet,
    /// An extension by a watchdog left running after the release (round of that leak).
    Leak {
        round: u64,
    },
    /// A late grant's cleanup, or any reply nobody waits for (never kept in `inflight`).
    Cleanup,
}

#[derive(Debug, Clone)]
struct Pending {
    instance: usize,
    purpose: Purpose,
    shape: Shape,
    /// The token an acquire command wrote (`Some` for [`Purpose::Acquire`] only): a grant
    /// that comes too late is deleted with it, whichever acquisition is current by then.
    token: Option<SharedStr>,
}

#[derive(Debug, Clone)]
struct Attempt {
    id: AttemptId,
    /// 1-based within its acquisition.
    number: u32,
    started: Micros,
    slots: PerInstance<Slot>,
    fencing: Option<u64>,
    /// WAIT replies still expected; `Some` once the quorum was reached and WAIT sent.
    waiting: Option<usize>,
    min_acked: i64,
    timeout: TimerId,
    /// How many times the silent instances' acquire commands were sent again.
    resends: u32,
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
    granted: PerInstance<bool>,
    watchdog: Option<TimerId>,
    validity: Option<TimerId>,
    round: Option<Round>,
    lost: bool,
}

/// A watchdog left running after the release (`cancel_watchdog_on_release: false`): it
/// extends the released token's key every TTL/3, and stops only when every instance of one
/// round answers that the key is gone (errors and silence do not stop it).
#[derive(Debug, Clone)]
struct Leak {
    token: SharedStr,
    timer: TimerId,
    round: u64,
    /// Instances that answered this round that the key is gone (or holds another token).
    gone: usize,
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

/// Which of the machine's timers fired.
#[derive(Debug, Clone, Copy)]
enum Due {
    AcquireTimeout { id: AttemptId, waiting: bool },
    Retry { next: u32 },
    Validity,
    Watchdog,
    ExtendTimeout { round: u64 },
    ReleaseTimeout { confirmed: usize },
}

/// One owner's lock on one resource: the whole protocol, driven by [`LockMachine::handle`].
#[derive(Debug, Clone)]
pub struct LockMachine {
    recipe: ValidRecipe,
    key: SharedStr,
    instances: usize,
    quorum: usize,
    /// Shared with the acquire requests under way, so remembering it costs no copy.
    token: SharedStr,
    state: State,
    next_request: u64,
    next_timer: u64,
    next_round: u64,
    /// The id of the current (or last) attempt; 0 before the first.
    last_attempt: u64,
    /// The attempt whose grants make up the lock held now.
    held_attempt: Option<AttemptId>,
    /// The requests whose replies still matter: of the current phase, or acquire requests of
    /// the last [`LATE_GRANT_ATTEMPTS`] attempts (late grants). Never more than
    /// [`LockMachine::max_inflight`]. In request order (a handful: a vector beats a tree).
    inflight: Vec<(RequestId, Pending)>,
    /// The watchdog still running after a release, when the recipe does not cancel it.
    leak: Option<Leak>,
}

impl LockMachine {
    /// Writes what changes as the machine runs — its state, counters and requests in
    /// flight, not the recipe or key it was built with — for a state fingerprint
    /// (exhaustive exploration hashes it).
    pub fn write_state(&self, w: &mut dyn std::fmt::Write) -> std::fmt::Result {
        write!(
            w,
            "{:?}|{}|{}|{}|{}|{}|{:?}|{:?}",
            self.state,
            self.token,
            self.next_request,
            self.next_timer,
            self.next_round,
            self.last_attempt,
            self.held_attempt,
            self.inflight
        )
    }

    /// A machine for `key` over the [`ValidRecipe::instances`] instances its recipe was
    /// validated for.
    pub fn new(recipe: ValidRecipe, key: impl Into<SharedStr>) -> LockMachine {
        let (instances, quorum) = (recipe.instances(), recipe.quorum());
        LockMachine {
            recipe,
            key: key.into(),
            instances,
            quorum,
            token: SharedStr::default(),
            state: State::Idle,
            next_request: 0,
            next_timer: 0,
            next_round: 0,
            last_attempt: 0,
            held_attempt: None,
            inflight: Vec::new(),
            leak: None,
        }
    }

    /// The lock key.
    pub fn key(&self) -> &SharedStr {
        &self.key
    }

    /// The token of the current (or last) acquisition.
    pub fn token(&self) -> &SharedStr {
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
        self.recipe.recipe()
    }

    /// The fencing token of the lock held now, if the recipe takes one.
    pub fn fencing_token(&self) -> Option<u64> {
        match &self.state {
            State::Held(h) => h.fencing,
            _ => None,
        }
    }

    /// Feeds one event at `now` (the owner's clock); actions are appended to `out`.
    pub fn handle(
        &mut self,
        event: Event,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        let before = self.phase_mark();
        match event {
            Event::Acquire => {
                if matches!(self.state, State::Idle) {
                    self.token = match &self.recipe.token {
                        TokenStyle::Unique => random_token(rng),
                        TokenStyle::Fixed(v) => SharedStr::from(v.as_str()),
                    };
                    self.start_attempt(1, now, out);
                }
            }
            Event::Reply { request, reply } => self.on_reply(request, reply, now, rng, out),
            Event::Timer(timer) => self.on_timer(timer, now, rng, out),
            Event::Release => self.release(now, out),
            Event::Extend => self.start_extend(now, out),
        }
        if self.phase_mark() != before {
            self.retire_inflight();
        }
    }

    /// How many requests the machine remembers now (for tests and diagnostics): never more
    /// than [`LockMachine::max_inflight`].
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// The most requests the machine ever remembers, whatever is lost: one per instance for
    /// each of the last [`LATE_GRANT_ATTEMPTS`] attempts, one per instance for the WAIT,
    /// extension or release under way, and (when the recipe leaves the watchdog running after
    /// the release) one per instance for that watchdog's round.
    pub fn max_inflight(&self) -> usize {
        let leak = usize::from(!self.recipe.cancel_watchdog_on_release);
        (LATE_GRANT_ATTEMPTS as usize + 1 + leak) * self.instances
    }

    /// Whether a watchdog left running after a release is still extending (only with
    /// `cancel_watchdog_on_release: false`).
    pub fn watchdog_leaked(&self) -> bool {
        self.leak.is_some()
    }

    /// What changes when requests stop mattering: a new attempt, another state, another
    /// extension round.
    fn phase_mark(&self) -> (u64, std::mem::Discriminant<State>, Option<u64>) {
        let round = match &self.state {
            State::Held(Held { round: Some(r), .. }) => Some(r.id),
            _ => None,
        };
        (
            self.last_attempt,
            std::mem::discriminant(&self.state),
            round,
        )
    }

    /// Forgets the requests whose replies no longer matter: WAITs of an attempt that is over,
    /// extensions of a round that is over, and acquire requests of attempts older than the
    /// last [`LATE_GRANT_ATTEMPTS`]. Only the last changes what the machine does, and only for
    /// a reply that comes that late.
    fn retire_inflight(&mut self) {
        let current = self.current_attempt();
        let (round, releasing) = match &self.state {
            State::Held(Held { round: Some(r), .. }) => (Some(r.id), false),
            State::Releasing { .. } => (None, true),
            _ => (None, false),
        };
        let oldest = AttemptId(self.last_attempt.saturating_sub(LATE_GRANT_ATTEMPTS - 1));
        let leak = self.leak.as_ref().map(|l| l.round);
        self.inflight.retain(|(_, p)| match p.purpose {
            Purpose::Acquire(id) => id >= oldest,
            Purpose::Wait(id) => Some(id) == current,
            Purpose::Extend { round: r } => Some(r) == round,
            Purpose::Release | Purpose::ReleaseGet => releasing,
            Purpose::Leak { round: r } => Some(r) == leak,
            Purpose::Cleanup => false,
        });
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
        let shape = command.shape();
        out.push(Action::Send {
            instance,
            request,
            command,
        });
        if purpose == Purpose::Cleanup {
            return; // its reply changes nothing, so nothing waits for it
        }
        let token = matches!(purpose, Purpose::Acquire(_)).then(|| self.token.clone());
        let pending = Pending {
            instance,
            purpose,
            shape,
            token,
        };
        match self.inflight.binary_search_by_key(&request, |(r, _)| *r) {
            Ok(i) => self.inflight[i].1 = pending,
            Err(i) => self.inflight.insert(i, (request, pending)),
        }
    }

    /// [`LockMachine::send`]s `command` to each of `instances` in order: a copy to every one
    /// but the last, which is sent the command itself.
    fn send_each(
        &mut self,
        instances: impl IntoIterator<Item = usize>,
        purpose: Purpose,
        command: Command,
        out: &mut Vec<Action>,
    ) {
        let mut instances = instances.into_iter().peekable();
        while let Some(instance) = instances.next() {
            if instances.peek().is_none() {
                self.send(instance, purpose, command, out);
                return;
            }
            self.send(instance, purpose, command.clone(), out);
        }
    }

    fn request_timeout(&self) -> Micros {
        self.recipe.request_timeout_ms * MICROS_PER_MS
    }

    fn on_reply(
        &mut self,
        request: RequestId,
        reply: Reply,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        let Ok(i) = self.inflight.binary_search_by_key(&request, |(r, _)| *r) else {
            return;
        };
        let (_, p) = self.inflight.remove(i);
        match p.purpose {
            Purpose::Acquire(id) => self.on_acquire_reply(id, p, reply, now, rng, out),
            Purpose::Wait(id) => self.on_wait_reply(id, &reply, now, rng, out),
            Purpose::Extend { round } => self.on_extend_reply(round, &reply, now, out),
            Purpose::Release => self.on_release_reply(&reply, out),
            Purpose::ReleaseGet => self.on_release_get_reply(p.instance, &reply, now, out),
            Purpose::Leak { round } => self.on_leak_reply(round, &reply),
            Purpose::Cleanup => {}
        }
    }

    /// The validity the owner may count on for a lock (or extension) requested at `started`:
    /// the TTL net of the drift allowance (`u64::MAX` without a TTL).
    fn valid_until(&self, started: Micros) -> Micros {
        match self.ttl() {
            None => Micros::MAX,
            Some(ttl) => {
                let drift = (self.recipe.drift_factor * ttl as f64) as u64 + 2 * MICROS_PER_MS;
                (started + ttl).saturating_sub(drift)
            }
        }
    }

    /// Whether `timer` is one the machine still waits for: when it is not, firing it does
    /// nothing (a timer is never cancelled; one the machine moved past fires as a no-op), and
    /// a host may skip feeding it.
    pub fn awaits_timer(&self, timer: TimerId) -> bool {
        self.leak.as_ref().is_some_and(|l| l.timer == timer) || self.due(timer).is_some()
    }

    /// What `timer` firing now means in the current state, if anything (the leaked
    /// watchdog's tick aside).
    fn due(&self, timer: TimerId) -> Option<Due> {
        Some(match &self.state {
            State::Acquiring(a) if a.timeout == timer => Due::AcquireTimeout {
                id: a.id,
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
            _ => return None,
        })
    }

    fn on_timer(
        &mut self,
        timer: TimerId,
        now: Micros,
        rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        if self.leak.as_ref().is_some_and(|l| l.timer == timer) {
            self.leak_round(now, out);
            return;
        }
        let Some(due) = self.due(timer) else {
            return;
        };
        match due {
            Due::AcquireTimeout { id, waiting } => {
                self.on_acquire_timeout(id, waiting, now, rng, out)
            }
            Due::Retry { next } => self.start_attempt(next, now, out),
            Due::Validity => self.on_validity_timer(now, out),
            Due::Watchdog => {
                if let State::Held(h) = &mut self.state {
                    h.watchdog = None;
                }
                self.start_extend(now, out);
            }
            Due::ExtendTimeout { round } => self.on_extend_timeout(round, now, out),
            Due::ReleaseTimeout { confirmed } => self.finish_release(confirmed, out),
        }
    }

    fn drop_inflight(&mut self, pred: impl Fn(Purpose) -> bool) {
        self.inflight.retain(|(_, p)| !pred(p.purpose));
    }
}

/// 20 random bytes, hex-encoded (as the Redlock page recommends), written straight into
/// the shared string (one allocation).
fn random_token(rng: &mut dyn RngCore) -> SharedStr {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 20];
    rng.fill_bytes(&mut bytes);
    let mut hex = [0u8; 40];
    for (pair, b) in hex.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 15)];
    }
    // Hex digits are ASCII.
    SharedStr::from(std::str::from_utf8(&hex).unwrap_or_default())
}
