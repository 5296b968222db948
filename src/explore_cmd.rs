//! `locksim explore`: many seeds, a progress bar, per-property counts, replay commands, and
//! an optional shrunk scenario file; with `--shard K/N`, one shard's results as JSON lines
//! for `locksim merge`. The summary printed after the first line is [`summary`], the one
//! `locksim merge` prints too.

use crate::exit::{self, bad_input as bad};
use crate::out::{outln, Out};
use checker::Property;
use explore::shard::{content_hash, write_shard, Header, Results};
use explore::{Report, SeedRange, Shard};
use indicatif::{ProgressBar, ProgressStyle};
use scenario::Scenario;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which seeds to run, and where a shard's results go.
pub struct Seeds {
    /// The first seed of the range.
    pub first: u64,
    /// How many seeds the range has (all shards together).
    pub count: u64,
    /// `--shard K/N`: run only shard K's seeds and write them as a shard file.
    pub shard: Option<Shard>,
    /// `--out`: the shard file (default: standard output, which then carries nothing else).
    pub out: Option<PathBuf>,
}

/// Runs the subcommand; returns the exit code (0: nothing broke, 1: something broke, 2: bad
/// input, 3: nothing broke but some seeds were inconclusive).
pub fn explore(
    file: PathBuf,
    seeds: Seeds,
    jobs: Option<usize>,
    until_violation: bool,
    shrink: Option<PathBuf>,
    property: Option<String>,
) -> i32 {
    let (scenario, property) = match load_with_property(&file, property) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let range = SeedRange {
        first: seeds.first,
        count: seeds.count,
        shard: seeds.shard.unwrap_or(Shard::WHOLE),
    };
    // Hashed before the run, so that a file that cannot be read fails at once.
    let sha256 = match seeds.shard.map(|_| content_hash(&file, &scenario)) {
        Some(Err(e)) => return bad(e),
        Some(Ok(h)) => Some(h),
        None => None,
    };
    let mine = range.len();
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs > 0 && mine > 0 && explore::clamp_jobs(jobs, mine) < jobs {
        crate::cli::note(format!(
            "--jobs {jobs}: using {} (no more than the seeds, nor 4 per core)",
            explore::clamp_jobs(jobs, mine)
        ));
    }
    let bar = ProgressBar::new(mine);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let report = explore::explore_range(&scenario, range, jobs, until_violation, &|n| bar.inc(n));
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => return bad(format!("{}: {e}", file.display())),
    };
    let secs = started.elapsed().as_secs_f64();
    let used = explore::clamp_jobs(jobs.max(1), mine.max(1));
    let mut out = Out::new();
    let label = match (seeds.shard, sha256) {
        (Some(shard), Some(sha256)) => {
            let header = Header::new(&scenario, &file, sha256, range);
            let results = Results {
                report: report.clone(),
                secs,
                jobs: used,
            };
            let mut lines = Vec::new();
            // Writing to memory cannot fail.
            let _ = write_shard(&mut lines, &header, &results);
            let Some(path) = seeds.out else {
                // Standard output carries the shard file and nothing else.
                out.text(&String::from_utf8_lossy(&lines));
                return out.finish(verdict_code(&report));
            };
            if let Err(e) = std::fs::write(&path, &lines) {
                return bad(format!(
                    "{}: cannot write the shard file: {e}",
                    path.display()
                ));
            }
            format!(
                " (shard {shard}: every {}seed of {} from {}, written to {})",
                nth(shard.of),
                span(range),
                range.seed(0),
                path.display()
            )
        }
        _ => String::new(),
    };
    outln!(
        out,
        "explored {} seeds of {}{label} in {:.2} s ({:.0} seeds/s, {} jobs)",
        report.seeds,
        scenario.name,
        secs,
        report.seeds as f64 / secs.max(1e-9),
        used
    );
    let code = summary(&mut out, &file.display().to_string(), &report);
    match shrink {
        Some(path) if code == exit::BROKEN && !out.failed() => {
            let code = shrink_into(&mut out, &scenario, &report, &path, property);
            out.finish(code)
        }
        _ => out.finish(code),
    }
}

/// `first..=last` of the whole range.
pub(crate) fn span(range: SeedRange) -> String {
    // `first + count - 1` was checked not to overflow before the run.
    format!(
        "{}..={}",
        range.first,
        range.first.saturating_add(range.count - 1)
    )
}

/// "4th ", "2nd ", ...; "" for 1 (every seed).
fn nth(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    if n == 1 {
        String::new()
    } else {
        format!("{n}{suffix} ")
    }
}

/// The scenario file and `--property`, or exit code 2 with the reason.
pub fn load_with_property(
    file: &std::path::Path,
    property: Option<String>,
) -> Result<(Scenario, Option<Property>), i32> {
    let scenario = Scenario::load(file).map_err(bad)?;
    Ok((scenario, parse_property(property)?))
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

/// The exit code a report gives: 1 when a seed broke a property, else 3 when some seeds
/// were inconclusive, else 0.
pub(crate) fn verdict_code(report: &Report) -> i32 {
    if report.failing.is_empty() {
        exit::judged(report.inconclusive == 0, true)
    } else {
        exit::BROKEN
    }
}

/// Prints what the seeds found (per property, the inconclusive seeds, the replay commands of
/// the first failing seeds, which name `file`); returns [`verdict_code`]. `locksim explore`
/// and `locksim merge` both print it, so a merged run reads as one run.
pub(crate) fn summary(out: &mut Out, file: &str, report: &Report) -> i32 {
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
    if !report.failing.is_empty() {
        outln!(
            out,
            "\nfirst failing seeds (replay each with the command shown):"
        );
        for (seed, props) in &report.failing {
            let names: Vec<&str> = props.iter().map(|p| p.name()).collect();
            outln!(
                out,
                "  locksim run {file} --explore-seed {seed}    # {}",
                names.join(", ")
            );
        }
    }
    verdict_code(report)
}

/// Shrinks the smallest seed of `report` that breaks `property` (else the smallest failing
/// seed), writes the shrunk scenario to `path` and prints it; returns the exit code (1, or
/// 2 when there is nothing to shrink or the file cannot be written).
pub(crate) fn shrink_into(
    out: &mut Out,
    scenario: &Scenario,
    report: &Report,
    path: &Path,
    property: Option<Property>,
) -> i32 {
    let Some((smallest, _)) = report.failing.first() else {
        return exit::OK;
    };
    let seed = match property {
        None => *smallest,
        Some(p) => match report.first_violating.get(&p) {
            Some(seed) => *seed,
            None => {
                let broken: Vec<&str> = Property::ALL
                    .iter()
                    .filter(|q| report.violations.contains_key(q))
                    .map(|q| q.name())
                    .collect();
                return bad(format!(
                    "--property {p}: none of the {} seeds explored breaks it, so there is nothing to shrink (they break {})",
                    report.seeds,
                    broken.join(", ")
                ));
            }
        },
    };
    let shrunk = match explore::shrink(scenario, seed, property) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    if let Err(e) = write_scenario(path, &shrunk.scenario) {
        return bad(e);
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
    exit::BROKEN
}

/// Writes `scenario` to `path` as a scenario file (data-file references rewritten to load
/// from where the file is written).
pub fn write_scenario(path: &Path, scenario: &Scenario) -> Result<(), String> {
    let text =
        serde_json::to_string_pretty(&scenario.relocated(path)).map_err(|e| e.to_string())? + "\n";
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
