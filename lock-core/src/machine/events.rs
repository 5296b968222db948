//! The lock's inputs and outputs: the [`Event`]s a driver feeds a
//! [`LockMachine`](super::LockMachine), the [`Action`]s it answers with, and the ids and
//! reasons they carry.

use crate::command::{Command, Reply};
use crate::{Micros, SharedStr};
use serde::{Deserialize, Serialize};

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
    Reply {
        /// The request answered, as [`Action::Send`] named it.
        request: RequestId,
        /// The instance's answer.
        reply: Reply,
    },
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
        /// Instances that granted.
        granted: usize,
        /// Instances that refused (the key was taken).
        refused: usize,
        /// Instances that failed or did not answer in time.
        failed: usize,
    },
    /// A quorum was reached, but so late that no validity was left.
    ValidityElapsed,
    /// WAIT saw fewer replicas acknowledge than asked.
    NotReplicated {
        /// The fewest replicas one WAIT saw acknowledge (0 when one never answered).
        acked: i64,
        /// The replicas the recipe asks for.
        needed: u32,
    },
    /// The owner released while the acquisition was under way.
    Abandoned,
}

/// Why a held lock can no longer be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LostReason {
    /// The watchdog's extension was confirmed by fewer than a quorum.
    ExtendFailed {
        /// Instances that confirmed the extension.
        confirmed: usize,
        /// The quorum.
        needed: usize,
    },
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
        /// The instance, by index (0 for a plain lock).
        instance: usize,
        /// Quoted back with the reply.
        request: RequestId,
        /// What to send.
        command: Command,
    },
    /// Deliver [`Event::Timer`] with `timer` when the caller's clock reaches `at`.
    SetTimer {
        /// Quoted back when the timer fires.
        timer: TimerId,
        /// When, on the caller's clock.
        at: Micros,
    },
    /// An acquisition attempt began (1-based).
    AttemptStarted {
        /// The attempt's number within its acquisition.
        attempt: u32,
    },
    /// An acquisition attempt failed; another may follow after a backoff.
    AttemptFailed {
        /// The attempt's number within its acquisition.
        attempt: u32,
        /// Why it failed.
        reason: FailReason,
    },
    /// The owner holds the lock until `valid_until` on its own clock (`u64::MAX`: no expiry).
    Acquired {
        /// The value the lock key holds.
        token: SharedStr,
        /// The fencing token, when the recipe takes one.
        fencing_token: Option<u64>,
        /// Until when the owner may trust the lock, on its own clock; always later than now.
        valid_until: Micros,
    },
    /// The acquisition gave up after `attempts` attempts.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        reason: FailReason,
    },
    /// An extension was confirmed by a quorum.
    Extended {
        /// The new end of the validity, on the owner's clock; always later than now.
        valid_until: Micros,
    },
    /// The owner should stop trusting the lock.
    Lost {
        /// Why.
        reason: LostReason,
    },
    /// The release finished; `confirmed` instances deleted our key.
    Released {
        /// Instances that confirmed deleting our key.
        confirmed: usize,
    },
}
