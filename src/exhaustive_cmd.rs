//! `locksim explore FILE --exhaustive`: every schedule of up to K faults, breadth-first by
//! fault count, with a progress bar per level; the minimal counterexample, or the statement
//! that none exists up to K.

use crate::exit::{self, bad_input as bad};
use crate::explore_cmd::{load_with_property, write_scenario};
use crate::out::{outln, Out};
use explore::exhaustive::{exhaustive as search, Options, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// K when `--max-faults` is not given: the space's `max_faults`, but no more than this.
const DEFAULT_MAX_FAULTS: usize = 2;

/// Runs the search; returns the exit code (0: no schedule breaks the properties, 1: a
/// counterexample, 2: bad input, 3: some schedules were inconclusive and none failed).
pub fn exhaustive(
    file: PathBuf,
    max_faults: Option<usize>,
    jobs: Option<usize>,
    shrink: Option<PathBuf>,
    property: Option<String>,
) -> i32 {
    let (scenario, property) = match load_with_property(&file, property) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let Some(space) = scenario.fault_space.as_ref() else {
        return bad(format!(
            "{}: field `fault_space`: the scenario has no fault space to explore",
            file.display()
        ));
    };
    let max_faults = max_faults.unwrap_or(space.max_faults.min(DEFAULT_MAX_FAULTS));
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return bad("--jobs must be at least 1");
    }
    let options = Options {
        max_faults,
        properties: property.into_iter().collect(),
        jobs,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} branches  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let level = Mutex::new(0);
    let started = Instant::now();
    let report = search(&scenario, &options, &|p: Progress| {
        let mut l = level.lock().unwrap_or_else(|e| e.into_inner());
        if *l != p.faults {
            *l = p.faults;
            bar.reset();
            bar.set_length(p.total as u64);
            bar.set_message(format!("{} faults", p.faults));
        }
        bar.set_position(p.done as u64);
    });
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => return bad(format!("{}: {e}", file.display())),
    };
    let secs = started.elapsed().as_secs_f64();
    let names =
        |ps: &[checker::Property]| ps.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ");
    let kinds: Vec<&str> = space.kinds.iter().map(|k| k.name()).collect();
    let [w0, w1] = space.window_ms;
    let mut out = Out::new();
    outln!(
        out,
        "exhaustive search of {}: schedules of up to {max_faults} faults, {} choices ({}) at {} boundaries in {w0}..{w1} ms, for {}",
        scenario.name,
        report.choices.len(),
        kinds.join(", "),
        report.boundaries,
        names(&report.properties)
    );
    for l in &report.levels {
        outln!(
            out,
            "  {} faults: {:>9} schedules  {:>9} states  {:>7} no-ops  {:>7} pruned{}",
            l.faults,
            l.schedules,
            l.states,
            l.no_ops,
            l.pruned,
            match l.inconclusive {
                0 => String::new(),
                n => format!("  {n} inconclusive"),
            }
        );
    }
    outln!(
        out,
        "{} schedules, {} distinct states in {:.2} s ({:.0} schedules/s, {} jobs)",
        report.schedules(),
        report.states(),
        secs,
        report.schedules() as f64 / secs.max(1e-9),
        jobs
    );
    let Some(cx) = report.counterexample else {
        if report.inconclusive() > 0 {
            outln!(
                out,
                "no conclusive schedule breaks {}, but {} schedules were inconclusive (cut short by the event budget, or an `after` condition never seen): not proven",
                names(&report.properties),
                report.inconclusive()
            );
            return out.finish(exit::INCONCLUSIVE);
        }
        outln!(
            out,
            "no schedule with ≤ {max_faults} faults of these kinds ({}) breaks {}",
            kinds.join(", "),
            names(&report.properties)
        );
        return out.finish(exit::OK);
    };
    outln!(
        out,
        "\nminimal counterexample: {} faults, violates {} (no schedule with fewer does):",
        cx.faults.len(),
        names(&cx.violated)
    );
    for f in &cx.faults {
        outln!(out, "  {:>8} ms  {}", f.at_ms, f.action.describe());
    }
    if !cx.confirmed {
        outln!(
            out,
            "warning: replayed from the start as a scenario, this schedule does not violate {}: the search and the replay disagree (please report it)",
            cx.violated[0]
        );
    }
    if let Some(path) = shrink.filter(|_| !out.failed()) {
        if let Err(e) = write_scenario(&path, &cx.scenario) {
            return out.finish(bad(e));
        }
        outln!(out, "written to {}", path.display());
        outln!(out, "replay: locksim run {}", path.display());
    }
    out.finish(exit::BROKEN)
}
