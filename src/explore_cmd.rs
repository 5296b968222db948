//! `locksim explore`: many seeds, a progress bar, per-property counts, replay commands, and
//! an optional shrunk scenario file.

use checker::Property;
use indicatif::{ProgressBar, ProgressStyle};
use scenario::Scenario;
use std::path::PathBuf;
use std::time::Instant;

fn bad(msg: impl std::fmt::Display) -> i32 {
    crate::cli::bad_input_code(msg)
}

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
    let property: Option<Property> = match property
        .map(|p| serde_json::from_value(serde_json::Value::String(p.clone())).map_err(|_| p))
    {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(p)) => {
            let names: Vec<&str> = Property::ALL.iter().map(|p| p.name()).collect();
            return bad(format!(
                "--property: unknown property `{p}` (one of {})",
                names.join(", ")
            ));
        }
    };
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
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
    println!(
        "explored {} seeds of {} in {:.2} s ({:.0} seeds/s, {jobs} jobs)",
        report.seeds,
        scenario.name,
        secs,
        report.seeds as f64 / secs.max(1e-9)
    );
    for p in Property::ALL {
        let n = report.violations.get(&p).copied().unwrap_or(0);
        let status = if n == 0 {
            "never violated".to_string()
        } else {
            format!("violated by {n} seeds")
        };
        println!("  {:<18} {status}", p.name());
    }
    if report.failing.is_empty() {
        return 0;
    }
    println!("\nfirst failing seeds (replay each with the command shown):");
    for (seed, props) in &report.failing {
        let names: Vec<&str> = props.iter().map(|p| p.name()).collect();
        println!(
            "  locksim run {} --explore-seed {seed}    # {}",
            file.display(),
            names.join(", ")
        );
    }
    if let Some(out) = shrink {
        let seed = report.failing[0].0;
        let shrunk = match explore::shrink(&scenario, seed, property) {
            Ok(s) => s,
            Err(e) => return bad(e),
        };
        let text = match serde_json::to_string_pretty(&shrunk.scenario) {
            Ok(t) => t + "\n",
            Err(e) => return bad(e),
        };
        if let Err(e) = std::fs::write(&out, text) {
            return bad(format!("{}: {e}", out.display()));
        }
        println!(
            "\nshrunk seed {seed} for {}: {} faults -> {} ({} steps), written to {}",
            shrunk.property,
            shrunk.faults_before,
            shrunk.faults_after,
            shrunk.steps,
            out.display()
        );
        for f in &shrunk.scenario.faults {
            println!("  {:>8} ms  {}", f.at_ms, f.action.describe());
        }
        println!("replay: locksim run {}", out.display());
    }
    1
}
