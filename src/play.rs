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
    /// Whether the run is conclusive and its verdict matches the scenario's `expect` on every
    /// listed property. An inconclusive run never matches: its outcomes were not earned.
    pub fn matches_expect(&self) -> bool {
        self.verdict.is_conclusive() && self.mismatches.is_empty()
    }
}

impl Played {
    /// The verdict `locksim check` gives this run's history once written and read back:
    /// the history must be a valid one, and judged with the settings it recorded.
    pub fn rechecked(&self) -> Result<Verdict, checker::history::HistoryError> {
        let mut bytes = Vec::new();
        checker::history::write_jsonl(&self.records, &mut bytes)?;
        let records = checker::history::read_history(&bytes[..])?;
        Ok(check(
            &records,
            &checker::history::recorded_checker(&records),
        ))
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

/// Judges `records` and compares the verdict with the scenario's `expect`.
pub fn judge(scenario: &Scenario, seed: u64, records: Vec<Record>, events: u64) -> Played {
    let verdict = check(&records, &scenario.checker);
    let mismatches = compare(&scenario.expect, &verdict);
    Played {
        seed,
        records,
        verdict,
        mismatches,
        events,
    }
}

/// Plays `scenario` on the simulator with `seed` (the scenario's own seed when `None`).
pub fn play_sim(scenario: &Scenario, seed: Option<u64>) -> Played {
    let seed = seed.unwrap_or(scenario.seed);
    let run = sim::run(scenario, seed);
    judge(scenario, seed, run.records, run.events)
}

/// Plays `scenario` on real Redis servers started as local processes, stopping them all
/// afterwards (also on panic). Returns the judged run and the problems met on the way.
pub async fn play_processes(
    scenario: &Scenario,
    seed: Option<u64>,
) -> Result<(Played, Vec<String>), live::LiveError> {
    play_processes_with(scenario, seed, live::Timeouts::default()).await
}

/// [`play_processes`] with the clients' connect and response timeouts.
pub async fn play_processes_with(
    scenario: &Scenario,
    seed: Option<u64>,
    timeouts: live::Timeouts,
) -> Result<(Played, Vec<String>), live::LiveError> {
    // Refuses what cannot be played before any server starts.
    // The run's seed also seeds the links' shaping.
    let mut s = scenario.clone();
    s.seed = seed.unwrap_or(s.seed);
    let provider = tokio::task::spawn_blocking(move || live::processes::Processes::start_for(&s))
        .await
        .map_err(|e| live::LiveError::Io(std::io::Error::other(e)))??;
    let provider: std::sync::Arc<dyn live::Provider> = std::sync::Arc::new(provider);
    play_live_with(scenario, provider, seed, timeouts).await
}

/// Plays `scenario` against the servers of `provider`.
pub async fn play_live(
    scenario: &Scenario,
    provider: std::sync::Arc<dyn live::Provider>,
    seed: Option<u64>,
) -> Result<(Played, Vec<String>), live::LiveError> {
    play_live_with(scenario, provider, seed, live::Timeouts::default()).await
}

/// [`play_live`] with the clients' connect and response timeouts.
pub async fn play_live_with(
    scenario: &Scenario,
    provider: std::sync::Arc<dyn live::Provider>,
    seed: Option<u64>,
    timeouts: live::Timeouts,
) -> Result<(Played, Vec<String>), live::LiveError> {
    let seed = seed.unwrap_or(scenario.seed);
    let run = live::play(scenario, provider, seed, timeouts).await?;
    Ok((judge(scenario, seed, run.records, 0), run.problems))
}

/// Plays `scenario` on Redis containers (image from `LOCKSIM_REDIS_IMAGE`), removing every
/// container and network afterwards (also on panic).
pub async fn play_containers_with(
    scenario: &Scenario,
    seed: Option<u64>,
    timeouts: live::Timeouts,
) -> Result<(Played, Vec<String>), live::LiveError> {
    // The run's seed also seeds the relays' shaping.
    let mut s = scenario.clone();
    s.seed = seed.unwrap_or(s.seed);
    let provider = live::containers::Containers::start_for(&s).await?;
    let provider: std::sync::Arc<dyn live::Provider> = std::sync::Arc::new(provider);
    play_live_with(scenario, provider, seed, timeouts).await
}
