//! The lock's inputs and outputs: the [`Event`]s a driver feeds a
//! [`LockMachine`](super::LockMachine), the [`Action`]s it answers with, and the ids and
//! reasons they carry.

use crate::command::{Command, Reply};
use crate::Micros;
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
