//! The Redis lock protocol, sans-IO.
//!
//! Nothing in this crate reads a clock, opens a socket or draws from a global RNG: a
//! [`LockMachine`] is fed [`Event`]s together with the caller's current time and answers with
//! [`Action`]s (send this [`Command`] to instance *i*, wake me at *t*, you hold the lock, ...).
//! The simulator (`sim`) and the real-Redis driver (`live`) both drive this one machine, so
//! the protocol exists exactly once.
//!
//! Every knob of the protocol is in a [`Recipe`]; [`Recipe::default`] is the safe recipe and
//! each classic mistake is a [`Pitfall`] that turns one knob.
//! A machine runs only a [`ValidRecipe`], a recipe [`Recipe::validated`] checked against
//! the number of instances it locks.

#![deny(missing_docs)]

pub mod command;
pub mod machine;
pub mod recipe;
pub mod retry;
pub mod shared_str;

pub use command::{Command, Op, Reply, Script, Shape, Wire, Word};
pub use machine::{
    Action, Event, FailReason, LockMachine, LostReason, RequestId, TimerId, LATE_GRANT_ATTEMPTS,
};
pub use recipe::{
    AcquireStyle, ExtendStyle, Pitfall, Recipe, RecipeError, RedlockConfig, ReleaseStyle,
    TokenStyle, ValidRecipe, WaitReplicas,
};
pub use retry::{RetryPolicy, RetrySpecError};
pub use shared_str::SharedStr;

/// A point in time or a span, in microseconds, on whatever clock the caller passes in.
pub type Micros = u64;

/// Microseconds in one millisecond, for converting recipe fields (milliseconds) to [`Micros`].
pub const MICROS_PER_MS: u64 = 1_000;
