//! `locksim explore FILE --exhaustive`: every schedule of up to K faults, breadth-first by
//! fault count, with a progress bar per level; the minimal counterexample, or the statement
//! that none exists up to K. With `--shard K/N`, one shard's part of the search as JSON lines
//! for `locksim merge`, which prints [`head`] and [`verdict`] as this command does.

use crate::exit::{self, bad_input as bad};
use crate::explore_cmd::{load_with_property, write_scenario};
use crate::out::{outln, Out};
use checker::Property;
use explore::exhaustive::{exhaustive as search, search_shard, Level, Options, Progress};
use explore::exhaustive_shard::{write_shard, Closing, Header};
use explore::shard::content_hash;
use explore::Shard;
use indicatif::{ProgressBar, ProgressStyle};
use scenario::Fault;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// K when `--max-faults` is not given: the space's `max_faults`, but no more than this.
const DEFAULT_MAX_FAULTS: usize = 2;

/// Where a shard's part of the search goes.
pub struct Sharding {
    /// `--shard K/N`.
    pub shard: Shard,
    /// `--out`: the shard file (default: standard output, which then carries nothing else).
    pub out: Option<PathBuf>,
}

/// What the summary of a search says, from one run or merged shards.
pub(crate) struct Summary<'a> {
    /// The scenario's name.
    pub name: &'a str,
    /// K.
    pub max_faults: usize,
    /// How many concrete choices.
    pub choices: usize,
    /// The fault kinds, by name.
    pub kinds: &'a [String],
    /// The window.
    pub window_ms: [u64; 2],
    /// Boundaries in the window.
    pub boundaries: usize,
    /// The properties searched for.
    pub properties: &'a [Property],
    /// The levels searched.
    pub levels: &'a [Level],
}

impl Summary<'_> {
    fn schedules(&self) -> u64 {
        self.levels.iter().map(|l| l.schedules).sum()
    }

    fn states(&self) -> u64 {
        self.levels.iter().map(|l| l.states).sum()
    }

    fn inconclusive(&self) -> u64 {
        self.levels.iter().map(|l| l.inconclusive).sum()
    }

    /// "S schedules, T distinct states": the timing line's start.
    pub(crate) fn totals(&self) -> String {
        format!(
            "{} schedules, {} distinct states",
            self.schedules(),
            self.states()
        )
    }
}

fn names(ps: &[Property]) -> String {
    ps.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

/// Prints what was searched and each level's counts (`label` goes after the scenario's name).
pub(crate) fn head(out: &mut Out, s: &Summary, label: &str) {
    let [w0, w1] = s.window_ms;
    outln!(
        out,
        "exhaustive search of {}{label}: schedules of up to {} faults, {} choices ({}) at {} boundaries in {w0}..{w1} ms, for {}",
        s.name,
        s.max_faults,
        s.choices,
        s.kinds.join(", "),
        s.boundaries,
        names(s.properties)
    );
    for l in s.levels {
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
}

/// The first failing schedule, as the summary shows it.
pub(crate) struct Found<'a> {
    /// Its faults, in time order.
    pub faults: &'a [Fault],
    /// What it violates (not empty).
    pub violated: &'a [Property],
    /// Whether its scenario, replayed, violates the first of them.
    pub confirmed: bool,
}

/// Prints the verdict after the timing line: the proof, the inconclusive count, or the
/// minimal counterexample; returns the exit code (0, 3 or 1).
pub(crate) fn verdict(out: &mut Out, s: &Summary, found: Option<Found>) -> i32 {
    let Some(cx) = found else {
        if s.inconclusive() > 0 {
            outln!(
                out,
                "no conclusive schedule breaks {}, but {} schedules were inconclusive (cut short by the event budget, or an `after` condition never seen): not proven",
                names(s.properties),
                s.inconclusive()
            );
            return exit::INCONCLUSIVE;
        }
        outln!(
            out,
            "no schedule with ≤ {} faults of these kinds ({}) breaks {}",
            s.max_faults,
            s.kinds.join(", "),
            names(s.properties)
        );
        return exit::OK;
    };
    outln!(
        out,
        "\nminimal counterexample: {} faults, violates {} (no schedule with fewer does):",
        cx.faults.len(),
        names(cx.violated)
    );
    for f in cx.faults {
        outln!(out, "  {:>8} ms  {}", f.at_ms, f.action.describe());
    }
    if !cx.confirmed {
        outln!(
            out,
            "warning: replayed from the start as a scenario, this schedule does not violate {}: the search and the replay disagree (please report it)",
            cx.violated.first().map_or("it", |p| p.name())
        );
    }
    exit::BROKEN
}

/// Writes the counterexample's scenario to `path` and says so; the exit code (1, or 2 when
/// it cannot be written).
pub(crate) fn write_counterexample(
    out: &mut Out,
    path: &std::path::Path,
    scenario: &scenario::Scenario,
) -> i32 {
    if let Err(e) = write_scenario(path, scenario) {
        return bad(e);
    }
    outln!(out, "written to {}", path.display());
    outln!(out, "replay: locksim run {}", path.display());
    exit::BROKEN
}

/// Runs the search (or, with `sharding`, one shard of it); returns the exit code (0: no
/// schedule breaks the properties, 1: a counterexample, 2: bad input, 3: some schedules were
/// inconclusive and none failed; a shard's code says what its own branches found).
pub fn exhaustive(
    file: PathBuf,
    max_faults: Option<usize>,
    jobs: Option<usize>,
    shrink: Option<PathBuf>,
    property: Option<String>,
    sharding: Option<Sharding>,
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
    // Hashed before the search, so that a file that cannot be read fails at once.
    let sha256 = match sharding.as_ref().map(|_| content_hash(&file, &scenario)) {
        Some(Err(e)) => return bad(e),
        Some(Ok(h)) => Some(h),
        None => None,
    };
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
    let tell = |p: Progress| {
        let mut l = level.lock().unwrap_or_else(|e| e.into_inner());
        if *l != p.faults {
            *l = p.faults;
            bar.reset();
            bar.set_length(p.total as u64);
            bar.set_message(format!("{} faults", p.faults));
        }
        bar.set_position(p.done as u64);
    };
    let kinds: Vec<String> = space.kinds.iter().map(|k| k.name().to_string()).collect();
    if let (Some(sharding), Some(sha256)) = (sharding, sha256) {
        let part = search_shard(&scenario, &options, sharding.shard, &tell);
        bar.finish_and_clear();
        let part = match part {
            Ok(p) => p,
            Err(e) => return bad(format!("{}: {e}", file.display())),
        };
        let secs = started.elapsed().as_secs_f64();
        let header = Header::new(&scenario, &file, sha256, &part);
        let mut lines = Vec::new();
        // Writing to memory cannot fail.
        let _ = write_shard(&mut lines, &header, &part, Closing { secs, jobs });
        let levels: Vec<Level> = part.levels.iter().map(|l| l.counts(usize::MAX)).collect();
        let failed = part.levels.iter().find_map(|l| l.failure.as_ref());
        let inconclusive = levels.iter().any(|l| l.inconclusive > 0);
        let code = match (failed, inconclusive) {
            (Some(_), _) => exit::BROKEN,
            (None, true) => exit::INCONCLUSIVE,
            (None, false) => exit::OK,
        };
        let mut out = Out::new();
        let Some(path) = sharding.out else {
            // Standard output carries the shard file and nothing else.
            out.text(&String::from_utf8_lossy(&lines));
            return out.finish(code);
        };
        if let Err(e) = std::fs::write(&path, &lines) {
            return bad(format!(
                "{}: cannot write the shard file: {e}",
                path.display()
            ));
        }
        let s = Summary {
            name: &scenario.name,
            max_faults,
            choices: part.choices.len(),
            kinds: &kinds,
            window_ms: space.window_ms,
            boundaries: part.boundaries,
            properties: &part.properties,
            levels: &levels,
        };
        let shard = sharding.shard;
        let label = format!(
            " (shard {shard}: the branches whose (stop + choice) % {} is {}, written to {})",
            shard.of,
            shard.index - 1,
            path.display()
        );
        head(&mut out, &s, &label);
        outln!(
            out,
            "{} in {secs:.2} s ({:.0} schedules/s, {jobs} jobs)",
            s.totals(),
            s.schedules() as f64 / secs.max(1e-9)
        );
        match failed {
            Some(f) => outln!(
                out,
                "this shard's lowest failing branch at {} faults is {} (violates {}); merge every shard for the verdict: locksim merge SHARD.jsonl...",
                f.faults.len(),
                f.branch,
                names(&f.violated)
            ),
            None => outln!(
                out,
                "none of this shard's branches fails; merge every shard for the verdict: locksim merge SHARD.jsonl..."
            ),
        }
        return out.finish(code);
    }
    let report = search(&scenario, &options, &tell);
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => return bad(format!("{}: {e}", file.display())),
    };
    let secs = started.elapsed().as_secs_f64();
    let s = Summary {
        name: &scenario.name,
        max_faults,
        choices: report.choices.len(),
        kinds: &kinds,
        window_ms: space.window_ms,
        boundaries: report.boundaries,
        properties: &report.properties,
        levels: &report.levels,
    };
    let mut out = Out::new();
    head(&mut out, &s, "");
    outln!(
        out,
        "{} in {:.2} s ({:.0} schedules/s, {} jobs)",
        s.totals(),
        secs,
        s.schedules() as f64 / secs.max(1e-9),
        jobs
    );
    let found = report.counterexample.as_ref().map(|cx| Found {
        faults: &cx.faults,
        violated: &cx.violated,
        confirmed: cx.confirmed,
    });
    let code = verdict(&mut out, &s, found);
    match (shrink, &report.counterexample) {
        (Some(path), Some(cx)) if !out.failed() => {
            let code = write_counterexample(&mut out, &path, &cx.scenario);
            out.finish(code)
        }
        _ => out.finish(code),
    }
}
