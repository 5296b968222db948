//! What a lock user does, independent of the backend.
//!
//! A [`ClientLoop`] wraps one client's [`lock_core::LockMachine`] in the workload of a
//! scenario client: acquire, write to the protected resource at the start of the critical
//! section, work, write again at the end, release, think, repeat. It is sans-IO like the lock
//! core: the simulator and the real-Redis driver feed it inputs with their own notion of time
//! and carry out its outputs, so both backends run the very same client.
//!
//! A [`Host`] runs one client loop with its clock, random stream ([`streams`]) and timers
//! ([`client_timers`]) behind a `handle`/`poll_timeout` API: the backends only move bytes and time.
//!
//! [`Resource`] is the protected resource's acceptance rule, [`clock`] models a local clock
//! (offset, rate, jumps) as a function of true time, and [`dist`] samples the scenario's
//! duration distributions.

#![deny(missing_docs)]

pub mod client;
pub mod client_timers;
pub mod clock;
pub mod dist;
pub mod host;
pub mod resource;
pub mod streams;
pub mod timers;

pub use client::{ClientLoop, Input, Output, Timer};
pub use host::Host;
pub use resource::Resource;
