//! A lock on real Redis, driven directly (for benchmarks and embedding).
//!
//! [`RealLock`] feeds lock-core's [`LockMachine`] with real time (microseconds since the lock
//! was created) and carries its actions out against real servers: every
//! [`Action::Send`] goes out at once (unless a delete to its instance is still unanswered:
//! see below) and joins the call's sends under way, which are polled
//! concurrently in place (so a Redlock fan-out is concurrent and one slow node holds up
//! nobody), and [`Action::SetTimer`] becomes a sleep. No scenario, no history: each call
//! returns as soon as the machine reports the outcome it waits for (Acquired/Failed,
//! Released, Extended/Lost), so Redlock decides at quorum and never waits for the slowest
//! reply.
//!
//! Sends still under way when a call returns (a quorum's stragglers) go to the lock's driver
//! task, spawned once, which keeps driving them — a send may still be connecting, and must
//! reach its server before the commands of the next call — and posts their replies back.
//! Those replies and the timers are processed while a call is running (or in
//! [`RealLock::poll`]); those that came in between calls are delivered at the start of the
//! next call. Replies that arrive after their decision (a late grant, a stalled node's
//! timeout) are fed to the machine then too, so its cleanups (unlocking a late grant) still go
//! out. [`RealLock::settled`] waits until every send has been answered and fed, cleanups
//! included.
//!
//! No send overtakes a delete (a release, a late grant's cleanup) sent earlier to the same
//! instance: it is held back until the delete's reply is fed. A connection alone does not
//! order them — a script the server has not cached is loaded and sent again (NOSCRIPT), so a
//! SET right behind a compare-and-delete would run first, find the stale key and be refused.
//! Nothing is held back while no delete is under way.
//!
//! Give the lock connections with [`NodeConn::with_breaker`] so that a frozen node is sent one
//! probe at a time instead of one request per call, each waiting out its timeout.

use crate::conn::NodeConn;
use futures_util::stream::{FuturesUnordered, StreamExt};
use lock_core::{Action, Command, Event, FailReason, LockMachine, Micros, Recipe, RecipeError};
use lock_core::{Op, Reply, RequestId, TimerId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use workload::timers::Timers;

/// The lock is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// The random value the lock key holds.
    pub token: String,
    /// The fencing token, when the recipe takes one.
    pub fencing_token: Option<u64>,
    /// Until when the lock may be trusted, in microseconds on this lock's clock
    /// (see [`RealLock::now`]); `u64::MAX` without a TTL.
    pub valid_until: Micros,
}

/// The acquisition gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// Attempts made, the first included.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub reason: FailReason,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lock not acquired after {} attempt(s): {}",
            self.attempts, self.reason
        )
    }
}

impl std::error::Error for Failed {}

/// One owner's lock on one key over real servers (one for a plain lock, N for Redlock).
///
/// Needs a tokio runtime (the connections' IO). Calls take `&mut self`; dropping a call's
/// future midway is safe — the next call picks the machine up where it was.
pub struct RealLock {
    machine: LockMachine,
    conns: Vec<Arc<NodeConn>>,
    rng: ChaCha8Rng,
    start: Instant,
    timers: Timers<TimerId>,
    out: Vec<Action>,
    /// This call's sends under way, polled in place (every one on each wake-up: a call makes
    /// one per instance).
    inflight: Vec<InFlight>,
    /// Hands sends left under way by a call to the driver task (spawned on first use).
    driver: Option<UnboundedSender<InFlight>>,
    /// Where the driver task posts their replies.
    tx: UnboundedSender<(RequestId, Reply)>,
    rx: UnboundedReceiver<(RequestId, Reply)>,
    /// Sends whose reply has not been fed to the machine yet: this call's, the driver task's,
    /// those held back by a gate, and replies waiting in `rx`.
    outstanding: usize,
    /// Per instance: the delete under way there, and the sends held back until it is answered
    /// (see [`RealLock::dispatch`]).
    gates: Vec<Gate>,
    /// How many instances have a delete under way (0: no gate to look up per reply).
    gated: usize,
    held: Option<Acquired>,
    lost: bool,
}

type InFlight = Pin<Box<dyn Future<Output = (RequestId, Reply)> + Send>>;

/// One instance's delete under way, and what waits for it.
#[derive(Default)]
struct Gate {
    /// The delete sent last to this instance, until its reply is fed.
    delete: Option<RequestId>,
    /// Sends to this instance made meanwhile, in the machine's order.
    held: VecDeque<(RequestId, Command)>,
}

/// What a call is waiting for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Goal {
    Acquire,
    Release,
    Extend,
}

/// How a call ended.
enum Outcome {
    Acquired(Acquired),
    Failed(Failed),
    Released(usize),
    Extended,
    Lost,
}

impl RealLock {
    /// A lock on `key` over `conns` (one connection per instance, in instance order). `seed`
    /// seeds the tokens and the retry jitter. Fails when `recipe` cannot run on that many
    /// instances (e.g. several connections without `redlock`).
    pub fn new(
        recipe: Recipe,
        key: impl Into<String>,
        conns: Vec<Arc<NodeConn>>,
        seed: u64,
    ) -> Result<RealLock, RecipeError> {
        let recipe = recipe.validated(conns.len())?;
        let (tx, rx) = unbounded_channel();
        let gates = conns.iter().map(|_| Gate::default()).collect();
        Ok(RealLock {
            machine: LockMachine::new(recipe, key.into()),
            conns,
            rng: ChaCha8Rng::seed_from_u64(seed),
            start: Instant::now(),
            timers: Timers::default(),
            out: Vec::new(),
            inflight: Vec::new(),
            driver: None,
            tx,
            rx,
            outstanding: 0,
            gates,
            gated: 0,
            held: None,
            lost: false,
        })
    }

    /// This lock's clock: microseconds since it was created.
    pub fn now(&self) -> Micros {
        self.start.elapsed().as_micros() as Micros
    }

    /// The lock key.
    pub fn key(&self) -> &str {
        self.machine.key()
    }

    /// The lock held now, unless it was lost (validity elapsed, extension failed).
    pub fn held(&self) -> Option<&Acquired> {
        self.held.as_ref().filter(|_| !self.lost)
    }

    /// Takes the lock, retrying as the recipe says. Returns at once when already held (and
    /// not lost); a lost lock is released first.
    pub async fn acquire(&mut self) -> Result<Acquired, Failed> {
        self.poll();
        if self.machine.is_held() {
            if let (Some(a), false) = (&self.held, self.lost) {
                return Ok(a.clone());
            }
            self.release().await;
        }
        match self.run(Event::Acquire, Goal::Acquire).await {
            Outcome::Acquired(a) => Ok(a),
            Outcome::Failed(f) => Err(f),
            _ => unreachable!("acquire ends in Acquired or Failed"),
        }
    }

    /// Gives the lock back (or abandons an acquisition under way); returns how many instances
    /// confirmed deleting our key. Returns 0 at once when nothing is held.
    ///
    /// The delete (compare-and-delete, or whatever the recipe releases with) goes to the
    /// instances whose grant the lock has seen, and this returns once each of them has
    /// answered it or the request timeout passed; an acquisition abandoned midway returns at
    /// once, its deletes still under way. It does not wait for the rest: a Redlock acquire
    /// decided at quorum may have left SETs under way to the other instances, and a straggler
    /// that grants after its acquire was decided is a *late grant*, not deleted when this
    /// returns. Its reply reaches the lock through the driver task, and the machine sends the
    /// delete for it when that reply is fed: in [`RealLock::poll`], in
    /// [`RealLock::settled`], or in the next call on this lock. Until then the key may still
    /// exist on that instance, refusing every owner there, this one included (at most until
    /// its TTL runs out).
    ///
    /// Await [`RealLock::settled`] before the next acquire to know every late grant has been
    /// deleted. Left to the next call, a late grant whose reply came in before that call's
    /// SETs went out is still deleted first: a SET waits for the delete sent earlier to its
    /// instance (see the module docs). One whose reply comes in later is deleted after that
    /// SET, which the stale key may have refused. Either way, a straggler is not taken for a
    /// grant of the next acquire (lock-core matches replies to their acquisition, not only
    /// their attempt number), and is deleted with the token it wrote.
    pub async fn release(&mut self) -> usize {
        self.poll();
        if self.machine.is_idle() {
            return 0;
        }
        match self.run(Event::Release, Goal::Release).await {
            Outcome::Released(n) => n,
            _ => 0,
        }
    }

    /// Pushes the lock's expiry out by one TTL on a quorum; `false` when not held, already
    /// lost, or the extension failed (the lock is then lost).
    pub async fn extend(&mut self) -> bool {
        self.poll();
        if !self.machine.is_held() || self.lost {
            return false;
        }
        matches!(
            self.run(Event::Extend, Goal::Extend).await,
            Outcome::Extended
        )
    }

    /// Resolves once no command this lock sent is awaiting its reply: every reply has come in
    /// and been fed to the machine, so each late grant's delete (see [`RealLock::release`])
    /// has been sent *and answered*. Timers that are due are fired on the way, as in
    /// [`RealLock::poll`]. Returns at once when nothing is under way.
    ///
    /// The wait is bounded by the connections' timeouts: every send ends in a reply or an
    /// error, and a late grant calls for one more command, its delete. Settled means
    /// answered, not that no key is left: a grant whose reply came after its attempt timed
    /// out is forgotten by the machine, and a command that timed out on the connection may
    /// still run on its server; such a key is not deleted and expires with its TTL.
    pub async fn settled(&mut self) {
        self.poll();
        while self.outstanding > 0 {
            // `self.tx` keeps the channel open, so `recv` only waits.
            let Some((request, reply)) = self.rx.recv().await else {
                break;
            };
            self.feed(Event::Reply { request, reply }, None);
            self.fire_due(None);
            self.hand_over_inflight();
        }
    }

    /// Feeds the replies that have arrived and the timers that are due, without waiting (any
    /// command this sends, e.g. the cleanup of a late grant, goes on the wire now).
    pub fn poll(&mut self) {
        while let Ok((request, reply)) = self.rx.try_recv() {
            self.feed(Event::Reply { request, reply }, None);
        }
        self.fire_due(None);
        self.hand_over_inflight();
    }

    /// Gives the sends still under way to the driver task, which drives them to their replies
    /// (and posts those to `rx`) while no call is running. One task per lock, spawned the
    /// first time; it ends when the lock is dropped and its last send is answered.
    fn hand_over_inflight(&mut self) {
        if self.inflight.is_empty() {
            return;
        }
        let driver = self.driver.get_or_insert_with(|| {
            let (to_driver, mut sends) = unbounded_channel::<InFlight>();
            let replies = self.tx.clone();
            tokio::spawn(async move {
                let mut under_way = FuturesUnordered::new();
                loop {
                    tokio::select! {
                        send = sends.recv() => match send {
                            Some(f) => under_way.push(f),
                            None if under_way.is_empty() => break,
                            None => {
                                while let Some(r) = under_way.next().await {
                                    let _ = replies.send(r);
                                }
                                break;
                            }
                        },
                        Some(r) = under_way.next() => {
                            let _ = replies.send(r);
                        }
                    }
                }
            });
            to_driver
        });
        for f in self.inflight.drain(..) {
            // The task only ends once this sender is dropped, so the send cannot fail.
            let _ = driver.send(f);
        }
    }

    /// Feeds `event`, then replies and timers, until the machine reports what `goal` waits for.
    async fn run(&mut self, event: Event, goal: Goal) -> Outcome {
        let outcome = self.run_inner(event, goal).await;
        self.hand_over_inflight();
        outcome
    }

    async fn run_inner(&mut self, event: Event, goal: Goal) -> Outcome {
        if let Some(o) = self.feed(event, Some(goal)) {
            return o;
        }
        loop {
            let next = self.timers.next_deadline();
            let deadline = next
                .map(|at| tokio::time::Instant::from_std(self.start + Duration::from_micros(at)));
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let inflight = &mut self.inflight;
            let here = poll_fn(|cx| {
                for i in 0..inflight.len() {
                    if let Poll::Ready(r) = inflight[i].as_mut().poll(cx) {
                        drop(inflight.swap_remove(i));
                        return Poll::Ready(r);
                    }
                }
                Poll::Pending
            });
            let reply = tokio::select! {
                biased;
                r = here => Some(r),
                r = self.rx.recv() => r,
                _ = sleep => None,
            };
            let outcome = match reply {
                Some((request, reply)) => self.feed(Event::Reply { request, reply }, Some(goal)),
                None => self.fire_due(Some(goal)),
            };
            if let Some(o) = outcome {
                return o;
            }
        }
    }

    /// Delivers every timer due by now.
    fn fire_due(&mut self, goal: Option<Goal>) -> Option<Outcome> {
        let mut result = None;
        while let Some(timer) = self.timers.pop_due(self.now()) {
            if let Some(o) = self.feed(Event::Timer(timer), goal) {
                result.get_or_insert(o);
            }
        }
        result
    }

    /// Sends `command` to `instance` now, unless a delete sent there earlier is still
    /// unanswered: then it waits for that reply.
    ///
    /// A connection keeps its commands in order only as far as each is one request on an open
    /// connection: a script the server has not cached yet (NOSCRIPT) is loaded and sent again,
    /// and sends racing a connection being opened are not ordered. So a late grant's delete
    /// (a compare-and-delete, the script's first use on a node that was frozen) could be
    /// overtaken by the next acquire's SET there, which finds the stale key and is refused. A
    /// send never overtakes a delete: the sends behind one go out once its reply is fed, in
    /// the machine's order. Costs nothing until a delete is under way; then one reply's wait,
    /// on that instance only, and the acquire it holds back would otherwise be refused there.
    fn dispatch(&mut self, instance: usize, request: RequestId, command: Command) {
        let gate = &mut self.gates[instance];
        if gate.delete.is_some() {
            gate.held.push_back((request, command));
            return;
        }
        if command.op() == Op::Release {
            gate.delete = Some(request);
            self.gated += 1;
        }
        let conn = Arc::clone(&self.conns[instance]);
        self.inflight.push(Box::pin(
            async move { (request, conn.send(&command).await) },
        ));
    }

    /// `request` was answered: if it is a delete that holds sends back, they go out now (up
    /// to and including the next delete among them).
    fn open_gate(&mut self, request: RequestId) {
        let Some(instance) = self.gates.iter().position(|g| g.delete == Some(request)) else {
            return;
        };
        self.gates[instance].delete = None;
        self.gated -= 1;
        while self.gates[instance].delete.is_none() {
            let Some((request, command)) = self.gates[instance].held.pop_front() else {
                break;
            };
            self.dispatch(instance, request, command);
        }
    }

    /// Feeds one event and carries out the actions; the outcome `goal` waits for, if reported.
    fn feed(&mut self, event: Event, goal: Option<Goal>) -> Option<Outcome> {
        if let Event::Reply { request, .. } = &event {
            debug_assert!(self.outstanding > 0, "a reply to a send not counted");
            self.outstanding = self.outstanding.saturating_sub(1);
            if self.gated > 0 {
                self.open_gate(*request);
            }
        }
        let now = self.now();
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.machine.handle(event, now, &mut self.rng, &mut out);
        let mut outcome = None;
        for action in out.drain(..) {
            match action {
                Action::Send {
                    instance,
                    request,
                    command,
                } => {
                    self.outstanding += 1;
                    self.dispatch(instance, request, command);
                }
                Action::SetTimer { timer, at } => self.timers.set(timer, at),
                Action::Acquired {
                    token,
                    fencing_token,
                    valid_until,
                } => {
                    let a = Acquired {
                        token: token.to_string(),
                        fencing_token,
                        valid_until,
                    };
                    self.held = Some(a.clone());
                    self.lost = false;
                    if goal == Some(Goal::Acquire) {
                        outcome.get_or_insert(Outcome::Acquired(a));
                    }
                }
                Action::Failed { attempts, reason } => {
                    if goal == Some(Goal::Acquire) {
                        outcome.get_or_insert(Outcome::Failed(Failed { attempts, reason }));
                    }
                }
                Action::Extended { valid_until } => {
                    if let Some(h) = self.held.as_mut() {
                        h.valid_until = valid_until;
                    }
                    if goal == Some(Goal::Extend) {
                        outcome.get_or_insert(Outcome::Extended);
                    }
                }
                Action::Lost { .. } => {
                    self.lost = true;
                    if goal == Some(Goal::Extend) {
                        outcome.get_or_insert(Outcome::Lost);
                    }
                }
                Action::Released { confirmed } => {
                    if goal == Some(Goal::Release) {
                        outcome.get_or_insert(Outcome::Released(confirmed));
                    }
                }
                Action::AttemptStarted { .. } | Action::AttemptFailed { .. } => {}
            }
        }
        self.out = out;
        if self.machine.is_idle() {
            // An idle machine ignores every timer.
            self.timers.clear();
            self.held = None;
            self.lost = false;
            if goal == Some(Goal::Release) && outcome.is_none() {
                // An acquisition abandoned midway ends in Failed, not Released.
                outcome = Some(Outcome::Released(0));
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests;
