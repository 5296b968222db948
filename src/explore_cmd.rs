//! `locksim explore`: many seeds, a progress bar, per-property counts, replay commands, and
//! an optional shrunk scenario file.

use crate::exit::{self, bad_input as bad};
use crate::out::{outln, Out};
use checker::Property;
use indicatif::{ProgressBar, ProgressStyle};
use scenario::Scenario;
use std::path::PathBuf;
use std::time::Instant;

/// Runs the subcommand; returns the exit code (0: nothing broke, 1: something broke, 2: bad
/// input).
pub fn explore(
    file: PathBuf,
    seeds: u64,
    first: u64,
    jobs: Option<usize>,
    until_violation: bool,
    shrink: Option<PathBuf>,
    property: Option<String>,
) -> i32 {
    let scenario = match Scenario::load(&file) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let property = match parse_property(property) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs > 0 && seeds > 0 && explore::clamp_jobs(jobs, seeds) < jobs {
        crate::cli::note(format!(
            "--jobs {jobs}: using {} (no more than the seeds, nor 4 per core)",
            explore::clamp_jobs(jobs, seeds)
        ));
    }
    let bar = ProgressBar::new(seeds);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let report = explore::explore(&scenario, first, seeds, jobs, until_violation, &|n| {
        bar.inc(n)
    });
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => return bad(format!("{}: {e}", file.display())),
    };
    let secs = started.elapsed().as_secs_f64();
    let mut out = Out::new();
    outln!(
        out,
        "explored {} seeds of {} in {:.2} s ({:.0} seeds/s, {} jobs)",
        report.seeds,
        scenario.name,
        secs,
        report.seeds as f64 / secs.max(1e-9),
        explore::clamp_jobs(jobs.max(1), seeds)
    );
    for p in Property::ALL {
        let n = report.violations.get(&p).copied().unwrap_or(0);
        let status = if n == 0 {
            "never violated".to_string()
        } else {
            format!("violated by {n} seeds")
        };
        outln!(out, "  {:<18} {status}", p.name());
    }
    if report.inconclusive > 0 {
        outln!(
            out,
            "  {} seeds were inconclusive (cut short by the simulator's event budget of {} events, or an `after` condition never seen): what holds in them is not proven",
            report.inconclusive,
            sim::EVENT_BUDGET
        );
    }
    if report.failing.is_empty() {
        return out.finish(exit::judged(report.inconclusive == 0, true));
    }
    outln!(
        out,
        "\nfirst failing seeds (replay each with the command shown):"
    );
    for (seed, props) in &report.failing {
        let names: Vec<&str> = props.iter().map(|p| p.name()).collect();
        outln!(
            out,
            "  locksim run {} --explore-seed {seed}    # {}",
            file.display(),
            names.join(", ")
        );
    }
    if let Some(path) = shrink.filter(|_| !out.failed()) {
        // The smallest seed that breaks the property asked for (else the smallest failing).
        let seed = match property {
            None => report.failing[0].0,
            Some(p) => match report.first_violating.get(&p) {
                Some(seed) => *seed,
                None => {
                    let broken: Vec<&str> = Property::ALL
                        .iter()
                        .filter(|q| report.violations.contains_key(q))
                        .map(|q| q.name())
                        .collect();
                    let code = bad(format!(
                        "--property {p}: none of the {} seeds explored breaks it, so there is nothing to shrink (they break {})",
                        report.seeds,
                        broken.join(", ")
                    ));
                    return out.finish(code);
                }
            },
        };
        let shrunk = match explore::shrink(&scenario, seed, property) {
            Ok(s) => s,
            Err(e) => return out.finish(bad(e)),
        };
        if let Err(e) = write_scenario(&path, &shrunk.scenario) {
            return out.finish(bad(e));
        }
        outln!(
            out,
            "\nshrunk seed {seed} for {}: {} faults -> {} ({} steps), written to {}",
            shrunk.property,
            shrunk.faults_before,
            shrunk.faults_after,
            shrunk.steps,
            path.display()
        );
        for f in &shrunk.scenario.faults {
            outln!(out, "  {:>8} ms  {}", f.at_ms, f.action.describe());
        }
        outln!(out, "replay: locksim run {}", path.display());
    }
    out.finish(exit::BROKEN)
}

/// `--property NAME` as a property, or exit code 2 with the names it could be.
pub fn parse_property(property: Option<String>) -> Result<Option<Property>, i32> {
    match property
        .map(|p| serde_json::from_value(serde_json::Value::String(p.clone())).map_err(|_| p))
    {
        None => Ok(None),
        Some(Ok(p)) => Ok(Some(p)),
        Some(Err(p)) => {
            let names: Vec<&str> = Property::ALL.iter().map(|p| p.name()).collect();
            Err(bad(format!(
                "--property: unknown property `{p}` (one of {})",
                names.join(", ")
            )))
        }
    }
}

/// Writes `scenario` to `path` as a scenario file (data-file references rewritten to load
/// from where the file is written).
pub fn write_scenario(path: &std::path::Path, scenario: &Scenario) -> Result<(), String> {
    let text =
        serde_json::to_string_pretty(&scenario.relocated(path)).map_err(|e| e.to_string())? + "\n";
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
