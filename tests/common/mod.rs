//! Helpers the integration tests share (each test file includes this with `mod common;`).

use locksim::scenario::Scenario;
use std::path::Path;

/// A shipped scenario from `scenarios/`, by file name; panics with the loader's message.
pub fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}
