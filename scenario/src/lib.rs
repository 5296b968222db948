//! Scenario files: what to run, what to break, and what the checker must conclude.
//!
//! A scenario is JSON (see `scenarios/README.md`). [`Scenario::load`] parses it strictly
//! (unknown fields are errors) and validates it as a whole, so a scenario that cannot be
//! played is refused before anything starts; every error names the file, the field path and,
//! for syntax and type errors, the line.
//!
//! A distribution can be the user's own data ([`Empirical`]: samples, a CSV column or
//! Prometheus histogram buckets); its file is read when the scenario loads, relative to the
//! scenario file, and a bad file is refused with its line ([`DataFileError`]). A scenario
//! written elsewhere keeps working through [`Scenario::relocated`].

#![deny(missing_docs)]

mod condition;
mod datafile;
mod dist;
mod empirical;
mod error;
mod fault;
mod locate;
mod model;
mod references;
mod space;
mod validate;

pub use checker::quote::QUOTE_MAX_CHARS;
pub use condition::{After, Condition, Forwarded, DEFAULT_TIMEOUT_MS};
pub use datafile::{DataFileError, MAX_DATA_FILE_BYTES};
pub use dist::{lognormal_params, normal_quantile, Z99};
pub use empirical::{Buckets, Data, Empirical, Source, Unit};
pub use error::ScenarioError;
pub use fault::{Fault, FaultAction};
pub use model::{
    Backend, ClientSpec, ClockSpec, Clocks, Dist, Network, Program, ResourceSpec, Scenario,
    Sentinel, Topology, Workload,
};
pub use space::{FaultKind, FaultSpace, Span};
pub use validate::{MAX_DESCRIPTION_BYTES, MAX_KEY_BYTES, MAX_NAME_BYTES};
