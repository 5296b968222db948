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
use std::collections::{BTreeSet, VecDeque};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

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
    timers: BTreeSet<(Micros, TimerId)>,
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
            machine: LockMachine::new(recipe, key),
            conns,
            rng: ChaCha8Rng::seed_from_u64(seed),
            start: Instant::now(),
            timers: BTreeSet::new(),
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
            let next = self.timers.first().map(|(at, _)| *at);
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
        loop {
            let now = self.now();
            let Some(&(at, timer)) = self.timers.first() else {
                break;
            };
            if at > now {
                break;
            }
            self.timers.pop_first();
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
                Action::SetTimer { timer, at } => {
                    self.timers.insert((at, timer));
                }
                Action::Acquired {
                    token,
                    fencing_token,
                    valid_until,
                } => {
                    // Timers set before the grant (attempt timeouts, backoffs) are moot now.
                    self.timers.clear();
                    let a = Acquired {
                        token,
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
                    // The old validity timer and the round's timeout are moot now.
                    self.timers.clear();
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
mod tests {
    use super::*;
    use crate::processes::{testing::start, Processes};
    use crate::{Provider, Timeouts};
    use lock_core::RetryPolicy;
    use scenario::Topology;

    fn conns(p: &Processes) -> Vec<Arc<NodeConn>> {
        p.nodes()
            .into_iter()
            .map(|(_, url)| Arc::new(NodeConn::new(url, Timeouts::default())))
            .collect()
    }

    fn short_retries() -> Recipe {
        Recipe {
            retry: RetryPolicy {
                max_attempts: Some(2),
                base_ms: 10,
                cap_ms: 10,
                jitter: 0.0,
            },
            ..Recipe::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acquire_exclude_release_then_reacquire_on_a_real_server() {
        let Some(p) = start(&Topology::Single {}) else {
            return;
        };
        let c = conns(&p);
        let mut a = RealLock::new(short_retries(), "lock:test", c.clone(), 1).unwrap();
        let mut b = RealLock::new(short_retries(), "lock:test", c.clone(), 2).unwrap();

        let got = a.acquire().await.expect("A acquires a free lock");
        assert_eq!(got.token.len(), 40);
        assert!(got.valid_until > a.now() && got.valid_until < 30_000_000);
        assert_eq!(
            c[0].send(&lock_core::Command::Get {
                key: "lock:test".into()
            })
            .await,
            Reply::Bulk(got.token.clone())
        );

        let t0 = b.now();
        let err = b.acquire().await.expect_err("B must not get A's lock");
        assert_eq!(err.attempts, 2, "{err}");
        assert!(
            matches!(
                err.reason,
                FailReason::Contended {
                    granted: 0,
                    refused: 1,
                    failed: 0
                }
            ),
            "{err}"
        );
        assert!(b.now() - t0 >= 10_000, "B waited its 10 ms backoff");

        assert!(a.extend().await, "the holder can extend");
        assert!(!b.extend().await, "B holds nothing to extend");
        assert_eq!(b.release().await, 0, "B holds nothing to release");

        assert_eq!(a.release().await, 1);
        assert!(a.held().is_none());
        let got_b = b.acquire().await.expect("B acquires once A released");
        assert_ne!(got_b.token, got.token);
        assert_eq!(b.release().await, 1);
        assert_eq!(
            c[0].send(&lock_core::Command::Get {
                key: "lock:test".into()
            })
            .await,
            Reply::Nil
        );
    }

    /// Connections to `p`'s nodes with `timeouts`, opened now: commands sent while a
    /// connection is still being opened are not ordered (a release may overtake the acquire it
    /// undoes), which the tests below must rule out.
    async fn opened(p: &Processes, timeouts: Timeouts) -> Vec<Arc<NodeConn>> {
        let c: Vec<Arc<NodeConn>> = p
            .nodes()
            .into_iter()
            .map(|(_, url)| Arc::new(NodeConn::new(url, timeouts)))
            .collect();
        for conn in &c {
            conn.connect().await.unwrap();
        }
        c
    }

    async fn get(conn: &NodeConn, key: &str) -> Reply {
        conn.send(&lock_core::Command::Get { key: key.into() })
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redlock_decides_at_quorum_with_a_stalled_node() {
        let Some(p) = start(&Topology::Redlock { instances: 3 }) else {
            return;
        };
        // Timeouts far above the 150 ms bound below: healthy replies get room on a loaded
        // machine, and deciding in under 150 ms cannot be waiting out the stalled node.
        let timeouts = Timeouts {
            connect: Duration::from_millis(2000),
            response: Duration::from_millis(2000),
        };
        let c = opened(&p, timeouts).await;
        let recipe = Recipe {
            redlock: Some(Default::default()),
            request_timeout_ms: 2000,
            ..short_retries()
        };
        let mut a = RealLock::new(recipe, "lock:rl", c.clone(), 3).unwrap();
        // Warm the connections, then stall one node.
        a.acquire().await.unwrap();
        // Decided at 2 of 3: the third grant may land after the release began, and is then a
        // late grant, deleted only once its reply is fed. Wait for that: a key left on a
        // healthy node would refuse the timed acquire there, leaving it one grant short
        // until the stalled node's 2 s timeout.
        assert!(a.release().await >= 2);
        tokio::time::timeout(Duration::from_secs(10), a.settled())
            .await
            .expect("the warm-up's sends answered within 10 s");
        for (i, conn) in c.iter().enumerate() {
            assert_eq!(
                get(conn, "lock:rl").await,
                Reply::Nil,
                "the warm-up left the lock key on redis-{}",
                i + 1
            );
        }
        p.pause("redis-3").unwrap();
        let t = Instant::now();
        a.acquire().await.expect("2 of 3 is a quorum");
        let took = t.elapsed();
        assert_eq!(a.release().await, 2);
        p.resume("redis-3").unwrap();
        assert!(
            took < Duration::from_millis(150),
            "decided at quorum, not after the stalled node's 2 s timeout: {took:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settled_waits_for_a_late_grants_cleanup() {
        let Some(p) = start(&Topology::Redlock { instances: 3 }) else {
            return;
        };
        // Far above how long redis-3 stays frozen, so its reply is a grant, not a timeout.
        let timeouts = Timeouts {
            connect: Duration::from_millis(5000),
            response: Duration::from_millis(5000),
        };
        let c = opened(&p, timeouts).await;
        let recipe = Recipe {
            redlock: Some(Default::default()),
            request_timeout_ms: 5000,
            ..short_retries()
        };
        let mut a = RealLock::new(recipe, "lock:settled", c.clone(), 4).unwrap();
        // Nothing under way: settled at once.
        a.settled().await;
        // redis-3 is frozen while the lock is taken and given back, so its SET is a straggler.
        p.pause("redis-3").unwrap();
        let token = a.acquire().await.expect("2 of 3 is a quorum").token;
        assert_eq!(a.release().await, 2);
        p.resume("redis-3").unwrap();
        // It grants once redis-3 thaws, and stays: only feeding its reply sends the delete.
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(&c[2], "lock:settled").await != Reply::Bulk(token.clone()) {
            assert!(
                Instant::now() < deadline,
                "redis-3 never granted the straggler"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::timeout(Duration::from_secs(10), a.settled())
            .await
            .expect("the straggler and its cleanup answered within 10 s");
        for (i, conn) in c.iter().enumerate() {
            assert_eq!(
                get(conn, "lock:settled").await,
                Reply::Nil,
                "redis-{} still holds the key after settled()",
                i + 1
            );
        }
        // And settled again at once.
        tokio::time::timeout(Duration::from_millis(100), a.settled())
            .await
            .expect("nothing under way");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_late_grants_delete_goes_before_the_next_acquires_set() {
        let Some(p) = start(&Topology::Redlock { instances: 3 }) else {
            return;
        };
        // Far above how long redis-3 stays frozen, so its reply is a grant, not a timeout.
        let timeouts = Timeouts {
            connect: Duration::from_millis(5000),
            response: Duration::from_millis(5000),
        };
        let c = opened(&p, timeouts).await;
        let recipe = Recipe {
            redlock: Some(Default::default()),
            request_timeout_ms: 5000,
            ..short_retries()
        };
        let mut a = RealLock::new(recipe, "lock:order", c.clone(), 5).unwrap();
        // redis-3 is frozen while the lock is taken and given back, so its SET is a straggler.
        p.pause("redis-3").unwrap();
        let old = a.acquire().await.expect("2 of 3 is a quorum").token;
        assert_eq!(a.release().await, 2);
        p.resume("redis-3").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(&c[2], "lock:order").await != Reply::Bulk(old.clone()) {
            assert!(
                Instant::now() < deadline,
                "redis-3 never granted the straggler"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Its reply reaches the lock between calls, and waits there to be fed.
        while a.rx.is_empty() {
            assert!(
                Instant::now() < deadline,
                "the straggler's reply never reached the lock"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The next acquire feeds it first: the late grant's delete and this acquire's SET both
        // go to redis-3, the delete first. (redis-3 has not run the release script yet, so
        // the delete takes three round trips: EVALSHA, NOSCRIPT, the script loaded and sent
        // again; a SET sent meanwhile would find the old key and be refused.)
        let new = a.acquire().await.expect("2 of 3 is a quorum").token;
        tokio::time::timeout(Duration::from_secs(10), a.settled())
            .await
            .expect("every send answered within 10 s");
        for (i, conn) in c.iter().enumerate() {
            assert_eq!(
                get(conn, "lock:order").await,
                Reply::Bulk(new.clone()),
                "redis-{} does not hold the new token: its SET overtook the late grant's delete",
                i + 1
            );
        }
        assert_eq!(a.release().await, 3, "all three grants are released");
        for (i, conn) in c.iter().enumerate() {
            assert_eq!(
                get(conn, "lock:order").await,
                Reply::Nil,
                "redis-{} still holds the key",
                i + 1
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_set_waits_for_the_unanswered_delete_on_its_node_and_holds_up_nobody() {
        let Some(p) = start(&Topology::Redlock { instances: 3 }) else {
            return;
        };
        // The connections wait far longer than redis-3 stays frozen; the machine gives up on
        // a reply after 1 s, so the release returns with redis-3's delete still under way.
        let timeouts = Timeouts {
            connect: Duration::from_millis(10_000),
            response: Duration::from_millis(10_000),
        };
        let c = opened(&p, timeouts).await;
        let recipe = Recipe {
            redlock: Some(Default::default()),
            request_timeout_ms: 1000,
            ..short_retries()
        };
        let mut a = RealLock::new(recipe, "lock:gate", c.clone(), 6).unwrap();
        let old = a.acquire().await.expect("a free lock").token;
        tokio::time::timeout(Duration::from_secs(10), a.settled())
            .await
            .expect("every send answered within 10 s");
        for conn in &c {
            assert_eq!(get(conn, "lock:gate").await, Reply::Bulk(old.clone()));
        }
        p.pause("redis-3").unwrap();
        assert_eq!(a.release().await, 2, "redis-3 cannot answer while frozen");
        assert!(a.gates[2].delete.is_some(), "redis-3's delete is under way");
        // The next acquire decides on redis-1 and redis-2; its SET to redis-3 waits for the
        // delete there (sent now, it would run right after the delete's NOSCRIPT, find the
        // old key and be refused).
        let new = a.acquire().await.expect("2 of 3 is a quorum").token;
        assert_eq!(a.gates[2].held.len(), 1, "the SET to redis-3 waits");
        assert!(a.gates[..2].iter().all(|g| g.delete.is_none()));
        p.resume("redis-3").unwrap();
        tokio::time::timeout(Duration::from_secs(20), a.settled())
            .await
            .expect("every send answered within 20 s");
        assert_eq!(a.gated, 0);
        for (i, conn) in c.iter().enumerate() {
            assert_eq!(
                get(conn, "lock:gate").await,
                Reply::Bulk(new.clone()),
                "redis-{} does not hold the new token",
                i + 1
            );
        }
        assert_eq!(a.release().await, 3);
        for conn in &c {
            assert_eq!(get(conn, "lock:gate").await, Reply::Nil);
        }
    }

    #[test]
    fn a_plain_lock_over_two_nodes_is_refused() {
        let c = vec![
            Arc::new(NodeConn::new(
                "redis://127.0.0.1:1".into(),
                Timeouts::default(),
            )),
            Arc::new(NodeConn::new(
                "redis://127.0.0.1:2".into(),
                Timeouts::default(),
            )),
        ];
        assert_eq!(
            RealLock::new(Recipe::default(), "k", c, 0)
                .err()
                .unwrap()
                .field,
            "redlock"
        );
    }
}
