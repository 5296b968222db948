//! The lock machine alone, driven by random owners, networks and clocks.
//!
//! Each case picks a recipe (a plain lock or Redlock over 3 or 5 instances, with or without a
//! TTL, watchdog, WAIT, SETNX+PEXPIRE, fencing, plain DEL, retry limit, extension by plain
//! PEXPIRE, validity unchecked) and a run of steps:
//! the owner acquires, releases or extends; a reply to any request under way is delivered (in
//! any order, as a grant, a refusal, an error or something odd, sometimes twice) or lost; a
//! timer fires (any of them, never before it is due); time passes. At the end the owner
//! releases once more. After every step:
//!
//! - `Acquired` and `Extended` always leave some validity: `valid_until > now`, and no
//!   timer is set in the past;
//! - between `Released` or `Failed` and the next acquisition, the machine only sends cleanup
//!   commands (release or DEL);
//! - the requests it remembers stay within [`LockMachine::max_inflight`].
//!
//! And at the end, every grant the machine learned of in time is released or cleaned up: for
//! each acquire request whose granting reply arrived within its attempt's request timeout and
//! while its attempt was one of the last [`LATE_GRANT_ATTEMPTS`], a release or DEL went to that
//! instance, with the token the request wrote, after the request was sent. A grant reported
//! later than that is treated by the machine as lost (the request timed out, or was forgotten),
//! so its key is left to its TTL, and is not checked.

use lock_core::{
    AcquireStyle, Action, Command, Event, ExtendStyle, LockMachine, ReleaseStyle, Reply, RequestId,
    Shape, TimerId, ValidRecipe, WaitReplicas, LATE_GRANT_ATTEMPTS, MICROS_PER_MS,
};
use lock_core::{Recipe, RedlockConfig};
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// How a reply answers its command.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// What the command hopes for (the lock taken, the key extended or deleted, WAIT acked).
    Yes,
    /// The negative answer (`nil`, `0`).
    No,
    /// An error reply, or the driver giving up on the request.
    Error,
    /// Something the command never answers (`-1`, a bulk string).
    Odd,
}

#[derive(Debug, Clone)]
enum Step {
    Acquire,
    Release,
    Extend,
    /// Answers request number `pick` (modulo those under way); `again` keeps it under way,
    /// so the same reply can come twice.
    Deliver {
        pick: usize,
        kind: Kind,
        again: bool,
    },
    /// Loses request `pick`: its reply never comes.
    Lose {
        pick: usize,
    },
    /// Fires timer `pick` (modulo those set), at its time or later.
    Fire {
        pick: usize,
    },
    Wait {
        ms: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![
        4 => Just(Kind::Yes),
        2 => Just(Kind::No),
        1 => Just(Kind::Error),
        1 => Just(Kind::Odd),
    ];
    prop_oneof![
        2 => Just(Step::Acquire),
        1 => Just(Step::Release),
        1 => Just(Step::Extend),
        8 => (any::<usize>(), kind, prop::bool::weighted(0.1))
            .prop_map(|(pick, kind, again)| Step::Deliver { pick, kind, again }),
        2 => any::<usize>().prop_map(|pick| Step::Lose { pick }),
        3 => any::<usize>().prop_map(|pick| Step::Fire { pick }),
        2 => prop_oneof![0u64..5, 0u64..2_000].prop_map(|ms| Step::Wait { ms }),
    ]
}

fn recipe() -> impl Strategy<Value = ValidRecipe> {
    (
        prop_oneof![Just(1usize), Just(3), Just(5)],
        prop_oneof![Just(None), Just(Some(300u64)), Just(Some(2_000))],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(None), (1u32..4).prop_map(Some)],
        prop_oneof![Just(50u64), Just(500)],
        any::<bool>(),
        // Bit 0: a counting acquire; the rest: how many resends (0 to 2).
        (0u8..6, any::<bool>()).prop_map(|(v, unchecked)| (v, unchecked)),
    )
        .prop_filter_map(
            "a recipe validation refuses",
            |(
                instances,
                ttl_ms,
                watchdog,
                wait,
                legacy,
                fencing,
                plain_del,
                max,
                timeout,
                plain_pexpire,
                (counting, unchecked),
            )| {
                let mut r = Recipe {
                    ttl_ms,
                    watchdog: watchdog && ttl_ms.is_some(),
                    wait_replicas: wait.then_some(WaitReplicas {
                        replicas: 1,
                        timeout_ms: 20,
                    }),
                    redlock: (instances > 1).then(RedlockConfig::default),
                    fencing: fencing && instances == 1 && !legacy,
                    request_timeout_ms: timeout,
                    ..Recipe::default()
                };
                if legacy {
                    r.acquire = AcquireStyle::SetnxThenExpire;
                }
                if plain_del {
                    r.release = ReleaseStyle::PlainDel;
                }
                if plain_pexpire {
                    r.extend = ExtendStyle::PlainPexpire;
                }
                r.check_validity = !unchecked;
                if counting & 1 == 1 && !legacy && !r.fencing {
                    r.acquire = AcquireStyle::Counting;
                }
                r.acquire_resends = u32::from(counting >> 1);
                r.retry.max_attempts = max;
                r.retry.base_ms = 10;
                r.retry.cap_ms = 100;
                r.validated(instances).ok()
            },
        )
}

/// The reply of `kind` to `command`.
fn answer(command: &Command, kind: Kind, fence: &mut i64) -> Reply {
    let shape = command.shape();
    match kind {
        Kind::Error => Reply::Error("ERR injected".into()),
        Kind::Odd => match shape {
            Shape::SetNx | Shape::Set => Reply::Int(-1),
            _ => Reply::Bulk("odd".into()),
        },
        Kind::No => match shape {
            Shape::SetNx | Shape::Set | Shape::FencedAcquire => Reply::Nil,
            _ => Reply::Int(0),
        },
        Kind::Yes => match shape {
            Shape::SetNx | Shape::Set => Reply::Ok,
            Shape::FencedAcquire => {
                *fence += 1;
                Reply::Int(*fence)
            }
            _ => Reply::Int(1),
        },
    }
}

/// The token an acquire-type command writes.
fn written_token(command: &Command) -> Option<&str> {
    match command {
        Command::SetNx { value, .. }
        | Command::SetNxLegacy { value, .. }
        | Command::Set { value, .. } => Some(value),
        Command::FencedAcquire { token, .. } | Command::CountingAcquire { token, .. } => {
            Some(token)
        }
        _ => None,
    }
}

/// A request under way.
#[derive(Debug, Clone)]
struct Sent {
    request: RequestId,
    instance: usize,
    command: Command,
    /// The reply already delivered once, which a duplicate repeats.
    answered: Option<Reply>,
}

/// A granting reply the machine was told of.
#[derive(Debug, Clone)]
struct Grant {
    request: RequestId,
    instance: usize,
    token: String,
    at: u64,
}

/// The machine with its world: requests under way, timers set, and what it did.
struct World {
    m: LockMachine,
    rng: ChaCha8Rng,
    now: u64,
    request_timeout: u64,
    under_way: Vec<Sent>,
    timers: Vec<(TimerId, u64)>,
    fence: i64,
    /// Start time of every attempt, in order (attempt ids are 1-based).
    attempts: Vec<u64>,
    /// The attempt, token and writing request of every acquire-type request (for a PEXPIRE:
    /// its SETNX's).
    acquire_of: BTreeMap<RequestId, (u64, String, RequestId)>,
    /// Grants reported in time.
    grants: Vec<Grant>,
    /// Release and DEL commands: request, instance, token (`None`: DEL).
    cleanups: Vec<(RequestId, usize, Option<String>)>,
    /// `Released` or `Failed` was seen and no acquisition began since.
    idle_since: Option<&'static str>,
    /// The recipe extends by plain PEXPIRE.
    plain_pexpire: bool,
}

impl World {
    fn new(recipe: ValidRecipe, seed: u64) -> World {
        let request_timeout = recipe.request_timeout_ms * MICROS_PER_MS;
        let plain_pexpire = recipe.extend == ExtendStyle::PlainPexpire;
        World {
            m: LockMachine::new(recipe, "lock:p"),
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: 0,
            request_timeout,
            under_way: Vec::new(),
            timers: Vec::new(),
            fence: 0,
            attempts: Vec::new(),
            acquire_of: BTreeMap::new(),
            grants: Vec::new(),
            cleanups: Vec::new(),
            idle_since: None,
            plain_pexpire,
        }
    }

    /// Feeds `event`; `answering` is the request whose reply it is.
    fn feed(&mut self, event: Event, answering: Option<RequestId>) -> Result<(), TestCaseError> {
        if event == Event::Acquire && self.m.is_idle() {
            self.idle_since = None;
        }
        let mut out = Vec::new();
        self.m
            .handle(event.clone(), self.now, &mut self.rng, &mut out);
        for action in out {
            if let Some(after) = self.idle_since {
                let cleanup = matches!(
                    &action,
                    Action::Send {
                        command: Command::Release { .. }
                            | Command::Del { .. }
                            | Command::CountingRelease { .. },
                        ..
                    }
                );
                prop_assert!(cleanup, "{action:?} after {after} (on {event:?})");
            }
            match action {
                Action::Send {
                    instance,
                    request,
                    command,
                } => {
                    match &command {
                        Command::Release { token, .. } | Command::CountingRelease { token, .. } => {
                            self.cleanups
                                .push((request, instance, Some(token.to_string())))
                        }
                        Command::Del { .. } => self.cleanups.push((request, instance, None)),
                        // A SETNX's PEXPIRE answers its SETNX; with `extend: plain_pexpire`
                        // an extension is a PEXPIRE too, and answers nothing.
                        Command::PExpire { .. } => {
                            let of = answering.and_then(|r| self.acquire_of.get(&r).cloned());
                            match of {
                                Some(of) => {
                                    self.acquire_of.insert(request, of);
                                }
                                None if self.plain_pexpire => {}
                                None => {
                                    return Err(TestCaseError::fail(
                                        "a PEXPIRE that answers no SETNX",
                                    ))
                                }
                            }
                        }
                        c => {
                            if let Some(token) = written_token(c) {
                                let attempt = self.attempts.len() as u64;
                                let of = (attempt, token.to_string(), request);
                                self.acquire_of.insert(request, of);
                            }
                        }
                    }
                    self.under_way.push(Sent {
                        request,
                        instance,
                        command,
                        answered: None,
                    });
                }
                Action::SetTimer { timer, at } => {
                    prop_assert!(at >= self.now, "timer {timer:?} set in the past");
                    self.timers.push((timer, at));
                }
                Action::AttemptStarted { .. } => self.attempts.push(self.now),
                Action::Acquired { valid_until, .. } => {
                    prop_assert!(
                        valid_until > self.now,
                        "acquired with no validity left: valid until {valid_until}, now {}",
                        self.now
                    );
                }
                Action::Extended { valid_until } => {
                    prop_assert!(
                        valid_until > self.now,
                        "extended with no validity left: valid until {valid_until}, now {}",
                        self.now
                    );
                }
                Action::Released { .. } => self.idle_since = Some("Released"),
                Action::Failed { .. } => self.idle_since = Some("Failed"),
                Action::AttemptFailed { .. } | Action::Lost { .. } => {}
            }
        }
        prop_assert!(
            self.m.inflight_len() <= self.m.max_inflight(),
            "{} requests remembered, at most {} expected",
            self.m.inflight_len(),
            self.m.max_inflight()
        );
        Ok(())
    }

    fn step(&mut self, step: Step) -> Result<(), TestCaseError> {
        match step {
            Step::Acquire => self.feed(Event::Acquire, None),
            Step::Release => self.feed(Event::Release, None),
            Step::Extend => self.feed(Event::Extend, None),
            Step::Deliver { pick, kind, again } => {
                if self.under_way.is_empty() {
                    return Ok(());
                }
                let i = pick % self.under_way.len();
                let sent = if again {
                    self.under_way[i].clone()
                } else {
                    self.under_way.swap_remove(i)
                };
                let reply = match &sent.answered {
                    Some(reply) => reply.clone(),
                    None => {
                        let reply = answer(&sent.command, kind, &mut self.fence);
                        let writes = written_token(&sent.command).is_some();
                        if writes && reply.grant(sent.command.shape()).is_some() {
                            self.note_grant(&sent);
                        }
                        if matches!(sent.command, Command::PExpire { .. }) && reply == Reply::Int(0)
                        {
                            // The key is not there (any more): nothing is left to release.
                            let of = self.acquire_of.get(&sent.request).map(|a| a.2);
                            self.grants.retain(|g| Some(g.request) != of);
                        }
                        reply
                    }
                };
                if again {
                    self.under_way[i].answered = Some(reply.clone());
                }
                let event = Event::Reply {
                    request: sent.request,
                    reply,
                };
                self.feed(event, Some(sent.request))
            }
            Step::Lose { pick } => {
                if !self.under_way.is_empty() {
                    let i = pick % self.under_way.len();
                    self.under_way.swap_remove(i);
                }
                Ok(())
            }
            Step::Fire { pick } => {
                if self.timers.is_empty() {
                    return Ok(());
                }
                let (timer, at) = self.timers.swap_remove(pick % self.timers.len());
                self.now = self.now.max(at);
                self.feed(Event::Timer(timer), None)
            }
            Step::Wait { ms } => {
                self.now += ms * MICROS_PER_MS;
                Ok(())
            }
        }
    }

    /// Remembers a grant of `sent` if it is reported in time: within its attempt's request
    /// timeout, and while its attempt is one of the last `LATE_GRANT_ATTEMPTS`.
    fn note_grant(&mut self, sent: &Sent) {
        let Some((attempt, token, _)) = self.acquire_of.get(&sent.request).cloned() else {
            return;
        };
        let started = self.attempts[attempt as usize - 1];
        let recent = attempt + LATE_GRANT_ATTEMPTS > self.attempts.len() as u64;
        if recent && self.now < started + self.request_timeout {
            self.grants.push(Grant {
                request: sent.request,
                instance: sent.instance,
                token,
                at: self.now,
            });
        }
    }

    /// Every grant reported in time was followed by a release or DEL of its key.
    fn check_grants(&self) -> Result<(), TestCaseError> {
        for g in &self.grants {
            let covered = self.cleanups.iter().any(|(request, instance, token)| {
                *request > g.request
                    && *instance == g.instance
                    && token.as_ref().is_none_or(|t| *t == g.token)
            });
            prop_assert!(
                covered,
                "the grant of {:?} by instance {} at {} us was never released",
                g.request,
                g.instance,
                g.at
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_machine_keeps_its_contracts_whatever_the_network_does(
        recipe in recipe(),
        seed in any::<u64>(),
        steps in prop::collection::vec(step(), 1..80),
    ) {
        let mut w = World::new(recipe, seed);
        for s in steps {
            w.step(s)?;
        }
        w.feed(Event::Release, None)?;
        w.check_grants()?;
    }
}
