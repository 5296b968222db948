//! The recipe: every knob of the lock protocol, safe by default, and the classic pitfalls.

use crate::RetryPolicy;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How the lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcquireStyle {
    /// `SET key token NX PX ttl`: one atomic command (safe).
    SetNxPx,
    /// `SETNX key token` then `PEXPIRE key ttl`: a crash in between leaves the lock forever.
    SetnxThenExpire,
    /// `SET key token PX ttl`: no NX, so every caller "wins" (last writer wins).
    PlainSet,
    /// A re-entrant lock in a hash, as Redisson's `RLock`: the field is the token, its value
    /// counts the holds, and each acquire with the same token adds one
    /// ([`crate::command::COUNTING_ACQUIRE_SCRIPT`]); a release takes one away and deletes the
    /// key at 0, an extension pushes the expiry out while the field is there. Safe as long as
    /// each acquire runs once: see [`Recipe::acquire_resends`].
    Counting,
}

/// What value the lock key holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStyle {
    /// 20 random bytes, hex-encoded, fresh for every acquisition (safe).
    Unique,
    /// The same value for everyone (e.g. "locked"): anyone can release anyone's lock.
    Fixed(String),
}

/// How the lock is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStyle {
    /// The compare-and-delete script (safe).
    CompareAndDelete,
    /// `DEL key`: deletes whoever's lock is there.
    PlainDel,
    /// `GET key`, then `DEL key` if the value read was our token: two commands, so a lock
    /// that changes hands between the `GET` reply and the `DEL` is deleted all the same.
    GetThenDel,
}

/// How the watchdog (or [`crate::Event::Extend`]) pushes the lock's expiry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtendStyle {
    /// The compare-and-pexpire script: extends only while the key still holds our token (safe).
    CompareAndPexpire,
    /// `PEXPIRE key ttl`: extends whoever's lock is there, so a holder whose key expired and
    /// was taken by another client "extends" that client's lock and goes on believing it holds.
    PlainPexpire,
}

/// Wait for replicas after acquiring (`WAIT replicas timeout_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitReplicas {
    /// How many replicas must acknowledge the lock write.
    pub replicas: u32,
    /// How long Redis may block the WAIT, in milliseconds.
    pub timeout_ms: u64,
}

/// Redlock over several independent primaries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedlockConfig {
    /// Grants needed; `null` means a majority (N/2 + 1).
    pub quorum: Option<usize>,
}

/// Every knob of the lock protocol. `Recipe::default()` is the safe recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recipe {
    /// How the lock is taken.
    pub acquire: AcquireStyle,
    /// What value the lock key holds.
    pub token: TokenStyle,
    /// How the lock is given back.
    pub release: ReleaseStyle,
    /// Lock lifetime in milliseconds; `null` sets no expiry at all (a pitfall).
    pub ttl_ms: Option<u64>,
    /// Retries after a failed attempt.
    pub retry: RetryPolicy,
    /// Extend the lock every TTL/3 while held, and report it lost when an extension fails.
    pub watchdog: bool,
    /// How an extension is sent.
    pub extend: ExtendStyle,
    /// Stop the watchdog when the lock is released (safe). `false` leaves it running after the
    /// release, extending the released token's key every TTL/3 until an extension finds it
    /// gone: a release that did not delete the key leaves a lock renewed forever.
    pub cancel_watchdog_on_release: bool,
    /// Refuse a grant whose validity has run out by the time the quorum answered (safe).
    /// `false` takes every grant, however late, as valid for the TTL from the moment it was
    /// decided, as a client that never compares the time an acquire took with the TTL does.
    pub check_validity: bool,
    /// WAIT for replicas after acquiring; the attempt fails when too few acknowledge.
    pub wait_replicas: Option<WaitReplicas>,
    /// Run Redlock over every instance instead of locking a single one.
    pub redlock: Option<RedlockConfig>,
    /// Expected clock drift as a fraction of the TTL, subtracted from the validity
    /// (validity = TTL − elapsed − (drift_factor · TTL + 2 ms)).
    pub drift_factor: f64,
    /// Take a fencing token (INCR of a per-resource counter) in the acquiring script.
    pub fencing: bool,
    /// How long to wait for one instance's reply before counting it as failed, in milliseconds.
    pub request_timeout_ms: u64,
    /// How many times an acquire command left unanswered for `request_timeout_ms` is sent
    /// again, with the same token, before the attempt counts that instance as failed (a
    /// client's command retry, as Redisson's `retryAttempts`). The unanswered request is
    /// forgotten, but it may still run: a request that was only slow then runs twice. Safe
    /// for `SET NX` (the second is refused, the attempt fails and cleans up), not for a
    /// counting acquire: the key counts two holds and the one release leaves it held.
    /// 0 (the default, and Redisson's fix for redisson#7367) never resends.
    pub acquire_resends: u32,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            acquire: AcquireStyle::SetNxPx,
            token: TokenStyle::Unique,
            release: ReleaseStyle::CompareAndDelete,
            ttl_ms: Some(30_000),
            retry: RetryPolicy::default(),
            watchdog: true,
            extend: ExtendStyle::CompareAndPexpire,
            cancel_watchdog_on_release: true,
            check_validity: true,
            wait_replicas: None,
            redlock: None,
            drift_factor: 0.01,
            fencing: false,
            request_timeout_ms: 500,
            acquire_resends: 0,
        }
    }
}

/// The largest duration any recipe field may hold, in milliseconds (about 11.6 days): keeps
/// every time computation far from overflow.
pub const MAX_MS: u64 = 1_000_000_000;

/// The longest fixed token, in bytes (every acquire command in a history carries it).
pub const MAX_TOKEN_BYTES: usize = 1024;

/// The most resends of one acquire command a recipe may ask for.
pub const MAX_ACQUIRE_RESENDS: u32 = 10;

/// The most lock instances a recipe may span.
pub const MAX_INSTANCES: usize = 64;

/// A recipe that cannot run, with the field at fault.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{field}: {reason}")]
pub struct RecipeError {
    /// Path of the offending field inside the recipe, e.g. `ttl_ms`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl Recipe {
    /// The grants needed out of `instances`: the configured quorum, or a majority.
    pub fn quorum(&self, instances: usize) -> usize {
        match &self.redlock {
            Some(RedlockConfig { quorum: Some(q) }) => *q,
            _ => instances / 2 + 1,
        }
    }

    /// The recipe, checked against the number of lock instances it will run on: the only way
    /// to a [`ValidRecipe`], and so to a [`crate::LockMachine`].
    pub fn validated(self, instances: usize) -> Result<ValidRecipe, RecipeError> {
        self.validate(instances)?;
        Ok(ValidRecipe {
            recipe: self,
            instances,
        })
    }

    /// Checks the recipe against the number of lock instances it will run on (the checks of
    /// [`Recipe::validated`], without keeping the result).
    pub fn validate(&self, instances: usize) -> Result<(), RecipeError> {
        let err = |field, reason: String| Err(RecipeError { field, reason });
        if self.ttl_ms == Some(0) {
            return err(
                "ttl_ms",
                "must be greater than 0 (use null for no expiry)".into(),
            );
        }
        let limits = [
            ("ttl_ms", self.ttl_ms.unwrap_or(0)),
            ("request_timeout_ms", self.request_timeout_ms),
            ("retry.base_ms", self.retry.base_ms),
            ("retry.cap_ms", self.retry.cap_ms),
            (
                "wait_replicas.timeout_ms",
                self.wait_replicas.as_ref().map_or(0, |w| w.timeout_ms),
            ),
        ];
        for (field, value) in limits {
            if value > MAX_MS {
                return err(
                    field,
                    format!("{value} is above the limit of {MAX_MS} ms (about 11 days)"),
                );
            }
        }
        if let TokenStyle::Fixed(t) = &self.token {
            if t.len() > MAX_TOKEN_BYTES {
                return err(
                    "token.fixed",
                    format!("is {} bytes long; the limit is {MAX_TOKEN_BYTES}", t.len()),
                );
            }
        }
        if self.request_timeout_ms == 0 {
            return err("request_timeout_ms", "must be greater than 0".into());
        }
        if !(0.0..1.0).contains(&self.drift_factor) {
            return err(
                "drift_factor",
                format!("must be in [0, 1), got {}", self.drift_factor),
            );
        }
        if self.retry.max_attempts == Some(0) {
            return err(
                "retry.max_attempts",
                "must be at least 1 (use null for no limit)".into(),
            );
        }
        if !(0.0..=10.0).contains(&self.retry.jitter) {
            return err(
                "retry.jitter",
                format!("must be in [0, 10], got {}", self.retry.jitter),
            );
        }
        if self.retry.cap_ms < self.retry.base_ms {
            return err(
                "retry.cap_ms",
                format!(
                    "{} is below retry.base_ms {}",
                    self.retry.cap_ms, self.retry.base_ms
                ),
            );
        }
        if self.acquire_resends > MAX_ACQUIRE_RESENDS {
            return err(
                "acquire_resends",
                format!(
                    "{} is above the limit of {MAX_ACQUIRE_RESENDS}",
                    self.acquire_resends
                ),
            );
        }
        if self.acquire == AcquireStyle::Counting && self.release == ReleaseStyle::GetThenDel {
            return err(
                "release",
                "\"get_then_del\" reads a string, and a counting lock is a hash; use \"compare_and_delete\" (the counting release script) or \"plain_del\"".into(),
            );
        }
        if self.watchdog && self.ttl_ms.is_none() {
            return err("watchdog", "needs a ttl_ms to extend".into());
        }
        if !self.cancel_watchdog_on_release && !self.watchdog {
            return err(
                "cancel_watchdog_on_release",
                "false leaves the watchdog running after the release; it needs watchdog: true"
                    .into(),
            );
        }
        if instances == 0 || instances > MAX_INSTANCES {
            return err(
                "redlock",
                format!("needs between 1 and {MAX_INSTANCES} instances, got {instances}"),
            );
        }
        if self.redlock.is_none() && instances != 1 {
            return err(
                "redlock",
                format!("{instances} instances given but redlock is off: a plain lock uses one instance"),
            );
        }
        if let Some(RedlockConfig { quorum: Some(q) }) = &self.redlock {
            if *q == 0 || *q > instances {
                return err(
                    "redlock.quorum",
                    format!("{q} is not between 1 and the {instances} instances"),
                );
            }
        }
        if self.fencing && self.redlock.is_some() {
            return err(
                "fencing",
                "Redlock cannot issue fencing tokens (each instance has its own counter)".into(),
            );
        }
        if self.fencing && self.acquire != AcquireStyle::SetNxPx {
            return err(
                "fencing",
                "the fenced acquire script is an atomic SET NX; use acquire \"set_nx_px\"".into(),
            );
        }
        Ok(())
    }

    /// The recipe with one classic mistake applied to it.
    pub fn with_pitfall(mut self, pitfall: Pitfall) -> Recipe {
        match pitfall {
            Pitfall::SetnxThenExpire => self.acquire = AcquireStyle::SetnxThenExpire,
            Pitfall::FixedValue => self.token = TokenStyle::Fixed("locked".into()),
            Pitfall::PlainDel => self.release = ReleaseStyle::PlainDel,
            Pitfall::NoTtl => {
                self.ttl_ms = None;
                self.watchdog = false;
            }
            Pitfall::TtlShorterThanWork => self.watchdog = false,
            Pitfall::UnlimitedRetries => self.retry.max_attempts = None,
            Pitfall::NoDriftFactor => self.drift_factor = 0.0,
            Pitfall::PlainSet => self.acquire = AcquireStyle::PlainSet,
            Pitfall::PlainPexpire => self.extend = ExtendStyle::PlainPexpire,
            Pitfall::GetThenDel => self.release = ReleaseStyle::GetThenDel,
            Pitfall::WatchdogNotCancelled => self.cancel_watchdog_on_release = false,
            Pitfall::UncheckedValidity => self.check_validity = false,
            Pitfall::ResentCountingAcquire => {
                self.acquire = AcquireStyle::Counting;
                self.acquire_resends = 1;
            }
        }
        self
    }
}

/// A [`Recipe`] that passed [`Recipe::validate`] for [`ValidRecipe::instances`] lock
/// instances. Only [`Recipe::validated`] makes one, and it cannot be changed afterwards, so a
/// [`crate::LockMachine`] built from it never runs a recipe that cannot run.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRecipe {
    recipe: Recipe,
    instances: usize,
}

impl ValidRecipe {
    /// The recipe.
    pub fn recipe(&self) -> &Recipe {
        &self.recipe
    }

    /// How many lock instances it was checked for (1 for a plain lock).
    pub fn instances(&self) -> usize {
        self.instances
    }

    /// The grants needed out of [`ValidRecipe::instances`].
    pub fn quorum(&self) -> usize {
        self.recipe.quorum(self.instances)
    }

    /// The recipe back, to change it (and validate it again).
    pub fn into_recipe(self) -> Recipe {
        self.recipe
    }
}

impl std::ops::Deref for ValidRecipe {
    type Target = Recipe;

    fn deref(&self) -> &Recipe {
        &self.recipe
    }
}

/// The classic ways to get a Redis lock wrong, each one knob away from the safe recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pitfall {
    /// SETNX then EXPIRE: a crash between them leaves the lock forever.
    SetnxThenExpire,
    /// A fixed lock value: anyone can release anyone's lock.
    FixedValue,
    /// DEL without an ownership check: releases another holder's lock.
    PlainDel,
    /// No TTL at all: a dead holder keeps the lock forever.
    NoTtl,
    /// No watchdog, so a TTL shorter than the work expires mid-work.
    TtlShorterThanWork,
    /// Retry forever: unbounded waits and retry storms.
    UnlimitedRetries,
    /// Drift factor 0: a node whose clock runs fast expires the lock before the holder's
    /// validity ends.
    NoDriftFactor,
    /// Plain SET for a set-once record or a lock: last writer wins.
    PlainSet,
    /// A watchdog that extends with plain `PEXPIRE`: it extends a lock it no longer owns and
    /// never learns it lost its own.
    PlainPexpire,
    /// Release by `GET` then `DEL`: deletes a lock that changed hands between the two.
    GetThenDel,
    /// A watchdog left running after the release: a key the release did not delete is
    /// renewed forever (redisson#7272).
    WatchdogNotCancelled,
    /// A grant taken without checking that its validity is still ahead: an acquire slower
    /// than the TTL is used anyway (redsync#72, node-redlock#296).
    UncheckedValidity,
    /// A counting (re-entrant) acquire resent after a reply timeout: a slow first request
    /// runs too, the lock is counted twice, and the one release leaves it held
    /// (redisson#7367).
    ResentCountingAcquire,
}

impl Pitfall {
    /// Every pitfall, for tests and listings.
    pub const ALL: [Pitfall; 13] = [
        Pitfall::SetnxThenExpire,
        Pitfall::FixedValue,
        Pitfall::PlainDel,
        Pitfall::NoTtl,
        Pitfall::TtlShorterThanWork,
        Pitfall::UnlimitedRetries,
        Pitfall::NoDriftFactor,
        Pitfall::PlainSet,
        Pitfall::PlainPexpire,
        Pitfall::GetThenDel,
        Pitfall::WatchdogNotCancelled,
        Pitfall::UncheckedValidity,
        Pitfall::ResentCountingAcquire,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_safe_and_valid() {
        let r = Recipe::default();
        assert_eq!(r.acquire, AcquireStyle::SetNxPx);
        assert_eq!(r.token, TokenStyle::Unique);
        assert_eq!(r.release, ReleaseStyle::CompareAndDelete);
        assert!(r.ttl_ms.is_some() && r.watchdog && r.retry.max_attempts.is_some());
        r.validate(1).unwrap();
    }

    #[test]
    fn every_pitfall_changes_the_recipe() {
        for p in Pitfall::ALL {
            assert_ne!(
                Recipe::default().with_pitfall(p),
                Recipe::default(),
                "{p:?}"
            );
        }
    }

    #[test]
    fn quorum_above_instances_is_refused() {
        let r = Recipe {
            redlock: Some(RedlockConfig { quorum: Some(6) }),
            ..Recipe::default()
        };
        let e = r.validate(5).unwrap_err();
        assert_eq!(e.field, "redlock.quorum");
        let ok = Recipe {
            redlock: Some(RedlockConfig::default()),
            ..Recipe::default()
        };
        assert_eq!(ok.quorum(5), 3);
        ok.validate(5).unwrap();
    }

    #[test]
    fn zero_ttl_is_refused() {
        let r = Recipe {
            ttl_ms: Some(0),
            ..Recipe::default()
        };
        assert_eq!(r.validate(1).unwrap_err().field, "ttl_ms");
    }

    #[test]
    fn validated_keeps_the_instance_count_and_refuses_what_validate_refuses() {
        let r = Recipe {
            redlock: Some(RedlockConfig::default()),
            ..Recipe::default()
        };
        let v = r.clone().validated(5).unwrap();
        assert_eq!((v.instances(), v.quorum(), v.recipe()), (5, 3, &r));
        assert_eq!(v.ttl_ms, r.ttl_ms, "derefs to the recipe");
        assert_eq!(v.into_recipe(), r);
        let e = Recipe::default().validated(3).unwrap_err();
        assert_eq!(e, Recipe::default().validate(3).unwrap_err());
        assert_eq!(e.field, "redlock");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<Recipe>(r#"{"ttl": 5}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `ttl`"), "{e}");
    }

    #[test]
    fn counting_refuses_get_then_del_fencing_and_too_many_resends() {
        let counting = Recipe {
            acquire: AcquireStyle::Counting,
            ..Recipe::default()
        };
        counting.validate(1).unwrap();
        let e = Recipe {
            release: ReleaseStyle::GetThenDel,
            ..counting.clone()
        }
        .validate(1)
        .unwrap_err();
        assert_eq!(e.field, "release");
        let e = Recipe {
            fencing: true,
            ..counting.clone()
        }
        .validate(1)
        .unwrap_err();
        assert_eq!(e.field, "fencing");
        let e = Recipe {
            acquire_resends: MAX_ACQUIRE_RESENDS + 1,
            ..counting
        }
        .validate(1)
        .unwrap_err();
        assert_eq!(e.field, "acquire_resends");
        let r: Recipe =
            serde_json::from_str(r#"{"acquire": "counting", "acquire_resends": 1}"#).unwrap();
        assert_eq!(
            r,
            Recipe::default().with_pitfall(Pitfall::ResentCountingAcquire)
        );
    }
}
