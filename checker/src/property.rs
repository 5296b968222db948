//! The properties the checker judges.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A correctness or progress property of a lock run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Property {
    /// No two clients hold the lock at the same true time.
    MutualExclusion,
    /// The resource never accepts a write under an older grant after one under a newer grant.
    UnsafeWrites,
    /// Fencing tokens handed out with grants strictly increase.
    FencingMonotonic,
    /// No client deletes a lock another client was last granted.
    ForeignRelease,
    /// A crashed client does not keep the lock unavailable past the liveness bound.
    Liveness,
    /// No acquisition uses more attempts or commands than its budget.
    RetryBudget,
    /// A set-once key is won by at most one client.
    SetOnce,
    /// The lock key does not outlive, past the stuck-lock bound, the belief of the client
    /// whose token it holds (while that client lives): no lock is kept unavailable with
    /// nobody believing they hold it.
    StuckLock,
}

impl Property {
    /// Every property, in the order verdicts list them.
    pub const ALL: [Property; 8] = [
        Property::MutualExclusion,
        Property::UnsafeWrites,
        Property::FencingMonotonic,
        Property::ForeignRelease,
        Property::Liveness,
        Property::RetryBudget,
        Property::SetOnce,
        Property::StuckLock,
    ];

    /// The property's snake_case name, the same as its serialized form.
    pub fn name(&self) -> &'static str {
        match self {
            Property::MutualExclusion => "mutual_exclusion",
            Property::UnsafeWrites => "unsafe_writes",
            Property::FencingMonotonic => "fencing_monotonic",
            Property::ForeignRelease => "foreign_release",
            Property::Liveness => "liveness",
            Property::RetryBudget => "retry_budget",
            Property::SetOnce => "set_once",
            Property::StuckLock => "stuck_lock",
        }
    }

    /// One line for users: what the property demands.
    pub fn describe(&self) -> &'static str {
        match self {
            Property::MutualExclusion => "no two clients hold the lock at the same time",
            Property::UnsafeWrites => {
                "the resource never accepts a write from an older lock holder after a newer one wrote"
            }
            Property::FencingMonotonic => "fencing tokens strictly increase from grant to grant",
            Property::ForeignRelease => "no client deletes a lock that was granted to another client",
            Property::Liveness => {
                "after a client crashes, others get the lock again within the liveness bound"
            }
            Property::RetryBudget => {
                "no acquisition uses more attempts or commands than its retry budget"
            }
            Property::SetOnce => "each set-once key is won by at most one client",
            Property::StuckLock => {
                "the lock key goes within the stuck-lock bound once the client holding it no longer believes it does"
            }
        }
    }
}

/// Writes the property's snake_case [`name`](Property::name).
impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
