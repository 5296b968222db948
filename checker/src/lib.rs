//! Histories and their judge.
//!
//! [`history`] is the one JSON-lines format every backend writes; [`check`] reads a history
//! and returns a [`Verdict`]: for each [`Property`], whether it holds, and a [`Finding`] for
//! every violation, naming the clients, the true times and the faults before it. [`tune`]
//! holds the plain results of a TTL sweep, so that whoever renders them needs no simulator;
//! [`count_sections`] counts the critical sections that broke, for its per-section rates.

#![deny(missing_docs)]

mod check;
pub mod fault;
pub mod history;
mod progress;
mod property;
pub mod quote;
mod safety;
mod sections;
pub mod text;
pub mod tune;
mod verdict;

#[cfg(test)]
mod scale_tests;
#[cfg(test)]
mod tests;

pub use check::{check, MAX_FAULTS_LISTED, MAX_FINDINGS_LISTED};
pub use fault::{Effect, Healed, Injected, PartitionMode, PromotedBy};
pub use history::{ClockStart, Event, KeyChange, Record, RunStart, SectionEnd};
pub use lock_core::SharedStr;
pub use property::Property;
pub use sections::{count_sections, SectionCount};
pub use text::Text;
pub use verdict::{CheckConfig, Finding, Outcome, Verdict};
