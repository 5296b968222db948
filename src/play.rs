//! Playing a scenario: run it, check the history, compare the verdict with `expect`.

use checker::{check, Outcome, Property, Record, Verdict};
use scenario::Scenario;
use std::collections::BTreeMap;

/// One played scenario: its history, the checker's verdict, and how it compares to `expect`.
#[derive(Debug, Clone)]
pub struct Played {
    /// The seed the run used.
    pub seed: u64,
    /// The run's history.
    pub records: Vec<Record>,
    /// The checker's verdict on it.
    pub verdict: Verdict,
    /// Properties whose outcome differs from `expect`: (property, expected, actual).
    pub mismatches: Vec<(Property, Outcome, Outcome)>,
    /// Events the simulator processed.
    pub events: u64,
}

impl Played {
    /// Whether the verdict matches the scenario's `expect` on every listed property.
    pub fn matches_expect(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Compares a verdict with an `expect` table.
pub fn compare(
    expect: &BTreeMap<Property, Outcome>,
    verdict: &Verdict,
) -> Vec<(Property, Outcome, Outcome)> {
    expect
        .iter()
        .filter_map(|(p, want)| {
            let got = verdict.outcome(*p);
            (got != *want).then_some((*p, *want, got))
        })
        .collect()
}

/// Plays `scenario` on the simulator with `seed` (the scenario's own seed when `None`).
pub fn play_sim(scenario: &Scenario, seed: Option<u64>) -> Played {
    let seed = seed.unwrap_or(scenario.seed);
    let run = sim::run(scenario, seed);
    let verdict = check(&run.records, &scenario.checker);
    let mismatches = compare(&scenario.expect, &verdict);
    Played {
        seed,
        records: run.records,
        verdict,
        mismatches,
        events: run.events,
    }
}
