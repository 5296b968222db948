//! Argument parsing and the subcommands; the exit codes are in [`crate::exit`].

use crate::exit::{self, bad_input};
use crate::out::{outln, Out};
use checker::history::{read_history, write_jsonl};
use checker::{check, Event, Outcome};
use clap::{Parser, Subcommand};
use locksim::play::{play_containers_with, play_live_with, play_processes_with, play_sim, Played};
use scenario::{Backend, Scenario};
use std::io::BufReader;
use std::path::PathBuf;

/// Deterministic simulation and correctness testing for Redis locks.
///
/// Plays scenario files (topology, lock recipe, clients, fault schedule, expected verdict) on
/// a simulated Redis and checks every history for mutual-exclusion violations, stale writes,
/// foreign releases, dead locks and retry storms.
#[derive(Parser, Debug)]
#[command(name = "locksim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Play a scenario file and judge it; exit 0 when the verdict matches its `expect`, 1 when
    /// it does not, 2 on bad input, 3 when the run is inconclusive: a scheduled fault or an
    /// `after` condition was not seen to take effect (Sentinel never promoted, a condition
    /// timed out, a server died on its own), so the verdict would not mean what it says.
    ///
    /// Example: locksim run scenarios/failover-double-grant.json
    Run {
        /// The scenario file (JSON; see scenarios/README.md).
        file: PathBuf,
        /// Seed for the simulator (default: the scenario's own `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Print the verdict as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Write the run's history (JSON lines) to this file.
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        /// Write the run's timeline (a self-contained HTML page with an SVG chart: holders,
        /// the key on each node, faults and findings on one time axis) to this file.
        #[arg(long, value_name = "FILE.html")]
        timeline: Option<PathBuf>,
        /// Where to play: `sim` (the simulator, the default) or `processes` (real redis-server
        /// processes on loopback ports, started and stopped by locksim) or `containers`. With
        /// `--client-program`, the default is the first real backend the scenario lists.
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// Put this program in every client's place: a shipped adapter by name (`redis-py`,
        /// see adapters/README.md) or a command line (`"python3 my_adapter.py"`), speaking the
        /// client protocol (docs/client-protocol.md). Plays on a real backend only.
        #[arg(long, value_name = "CMD", conflicts_with = "explore_seed")]
        client_program: Option<String>,
        /// Run the workload against your own Redis instead (repeat for Redlock instances);
        /// no faults are injected.
        #[arg(long = "redis", value_name = "URL")]
        redis: Vec<String>,
        /// Replay the fault schedule that `locksim explore` drew for this seed from the
        /// scenario's `fault_space` (simulator only).
        #[arg(long, value_name = "SEED", conflicts_with_all = ["seed", "redis"])]
        explore_seed: Option<u64>,
        /// Real Redis: how long opening a connection may take.
        #[arg(long, value_name = "MS", default_value_t = 2_000)]
        connect_timeout_ms: u64,
        /// Real Redis: how long one reply may take (keep it above any WAIT timeout).
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        response_timeout_ms: u64,
    },
    /// Explore a scenario's fault space: run many seeds, each drawing its own fault schedule,
    /// count the properties each breaks, print replay commands, and shrink a failure.
    ///
    /// Example: locksim explore scenarios/failover-explore.json --seeds 10000 --shrink shrunk.json
    Explore {
        /// The scenario file; it must have a `fault_space`.
        file: PathBuf,
        /// How many seeds to run.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        first: u64,
        /// Worker threads (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Stop at the first seed that breaks a property.
        #[arg(long)]
        until_violation: bool,
        /// Shrink the smallest failing seed and write the result here as a scenario file.
        #[arg(long, value_name = "OUT.json")]
        shrink: Option<PathBuf>,
        /// The property to shrink for (default: the first the seed breaks); with
        /// `--exhaustive`, the property to search for (default: those the file's `expect`
        /// says hold).
        #[arg(long)]
        property: Option<String>,
        /// Search every schedule of up to `--max-faults` faults from the fault space,
        /// breadth-first by fault count, instead of random seeds: the first failure found is
        /// minimal, and finding none proves no such schedule breaks the property.
        #[arg(long, conflicts_with_all = ["seeds", "first", "until_violation"])]
        exhaustive: bool,
        /// With `--exhaustive`: the most faults a schedule places (default: the space's
        /// `max_faults`, at most 2).
        #[arg(long, requires = "exhaustive")]
        max_faults: Option<usize>,
        /// Run only shard K of N (K from 1 to N): the seeds whose index in the range is K-1
        /// modulo N; with `--exhaustive`, the branches (stop, first fault) of each level
        /// whose (stop + choice) % N is K-1. Writes the shard's results as JSON lines for
        /// `locksim merge`.
        #[arg(long, value_name = "K/N", conflicts_with_all = ["until_violation", "shrink"])]
        shard: Option<explore::Shard>,
        /// With --shard: write the shard file here (and the shard's summary on stdout)
        /// instead of on stdout.
        #[arg(long, value_name = "FILE.jsonl", requires = "shard")]
        out: Option<PathBuf>,
    },
    /// Merge the shard files of one `locksim explore --shard K/N` run (seeds, or
    /// `--exhaustive`) into the summary one unsharded run prints, with the same exit codes;
    /// refuses shards of different runs, a shard given twice or missing, and malformed files.
    ///
    /// Example: locksim merge shard-1.jsonl shard-2.jsonl shard-3.jsonl shard-4.jsonl
    Merge {
        /// Every shard file of the run, in any order.
        #[arg(required = true, value_name = "SHARD.jsonl")]
        files: Vec<PathBuf>,
        /// Shrink the smallest failing seed (the scenario file the shards name must be
        /// unchanged) and write the result here as a scenario file; for shards of an
        /// exhaustive search, write the minimal counterexample, as `explore --exhaustive
        /// --shrink` does.
        #[arg(long, value_name = "OUT.json")]
        shrink: Option<PathBuf>,
        /// The property to shrink for (default: the first the seed breaks); shards of an
        /// exhaustive search chose theirs when they ran (this must name it).
        #[arg(long)]
        property: Option<String>,
    },
    /// Sweep the lock TTL (with the watchdog on/off and under retry policies) over many
    /// simulated seeds and recommend the smallest TTL that no seed broke, beside the
    /// "3 × the work" rule of thumb.
    ///
    /// Example: locksim tune scenarios/tune-workers.json --ttl-ms 250,500,1000,2000,4000 --out reports/examples
    Tune(crate::tune_cmd::TuneArgs),
    /// The client report card: play every scenario file of a folder with each shipped
    /// adapter (a real lock library, see adapters/README.md) and locksim's own recipe in
    /// every client's place, on real Redis, and write library × scenario → holds / violated /
    /// inconclusive as Markdown and HTML, each cell linked to its timeline and replay command.
    ///
    /// Example: locksim card --out reports/examples/client-card
    Card(crate::card_cmd::CardArgs),
    /// The safety matrix: every recipe (the safe one, each pitfall, WAIT 1, Redlock-5,
    /// fencing) against every fault class (failover, client crash, pause past the TTL, node
    /// and client clock jumps, restart, partition), each cell an exhaustive search of up to
    /// K faults: "safe up to K" or the minimal counterexample, as Markdown and HTML.
    ///
    /// Example: locksim matrix --out reports/examples/safety-matrix
    Matrix(crate::matrix_cmd::MatrixArgs),
    /// Summarize criterion's saved results (after `cargo bench`) as a latency table with
    /// ratios to the raw SET NX PX floor, in Markdown and HTML with a chart.
    BenchReport {
        /// Criterion's output directory.
        #[arg(long, default_value = "target/criterion")]
        criterion: PathBuf,
        /// Write bench-summary.md and bench-summary.html here (default: print Markdown only).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Judge a recorded history (JSON lines); exit 0 when every property holds, 1 when one is
    /// violated, 3 when the run recorded that it could not confirm its faults (inconclusive).
    ///
    /// The checker settings are the ones the run recorded in `run_started`.
    Check {
        /// The history file.
        history: PathBuf,
        /// Print the verdict as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Judge with this scenario's `checker` settings instead of the recorded ones.
        #[arg(long, value_name = "FILE")]
        scenario: Option<PathBuf>,
    },
}

/// Parses the arguments and runs the subcommand; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Cmd::Run {
            file,
            seed,
            json,
            history,
            timeline,
            backend,
            redis,
            explore_seed,
            client_program,
            connect_timeout_ms,
            response_timeout_ms,
        } => {
            let timeouts = live::Timeouts {
                connect: std::time::Duration::from_millis(connect_timeout_ms.max(1)),
                response: std::time::Duration::from_millis(response_timeout_ms.max(1)),
            };
            let at = match (explore_seed, redis.is_empty()) {
                (Some(s), _) => Where::Explored(s),
                (None, true) => Where::Backend(backend),
                (None, false) => Where::Urls(redis),
            };
            let how = RunHow {
                json,
                history,
                timeline,
                client_program,
            };
            run(file, seed, how, at, timeouts)
        }
        Cmd::Explore {
            file,
            seeds,
            first,
            jobs,
            until_violation,
            shrink,
            property,
            exhaustive,
            max_faults,
            shard,
            out,
        } => match exhaustive {
            true => {
                let sharding = shard.map(|shard| crate::exhaustive_cmd::Sharding { shard, out });
                crate::exhaustive_cmd::exhaustive(
                    file, max_faults, jobs, shrink, property, sharding,
                )
            }
            false if shard.is_some() && property.is_some() => crate::exit::bad_input(
                "--property with --shard: a seed shard runs every property; name the one to shrink for at the merge (locksim merge SHARD.jsonl... --shrink OUT.json --property P)",
            ),
            false => {
                let seeds = crate::explore_cmd::Seeds {
                    first,
                    count: seeds,
                    shard,
                    out,
                };
                crate::explore_cmd::explore(file, seeds, jobs, until_violation, shrink, property)
            }
        },
        Cmd::Merge {
            files,
            shrink,
            property,
        } => crate::merge_cmd::merge(files, shrink, property),
        Cmd::Tune(args) => crate::tune_cmd::run(args),
        Cmd::Card(args) => crate::card_cmd::run(args),
        Cmd::Matrix(args) => crate::matrix_cmd::run(args),
        Cmd::Check {
            history,
            json,
            scenario,
        } => check_file(history, json, scenario),
        Cmd::BenchReport { criterion, out } => bench_report(criterion, out),
    }
}

/// Prints a note about how the command runs (on stderr, so stdout stays the result).
pub fn note(msg: impl std::fmt::Display) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "note: {msg}");
}

/// The backends `--backend` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendArg {
    /// The deterministic simulator.
    Sim,
    /// Local redis-server processes.
    Processes,
    /// Redis containers (image from LOCKSIM_REDIS_IMAGE, default redis:7).
    Containers,
}

/// Where a run plays.
enum Where {
    /// A backend (`None`: the default one).
    Backend(Option<BackendArg>),
    Urls(Vec<String>),
    /// The simulator, with the schedule an explore seed draws.
    Explored(u64),
}

/// How `run` plays and what it writes.
struct RunHow {
    json: bool,
    history: Option<PathBuf>,
    timeline: Option<PathBuf>,
    /// `--client-program`: a program in every client's place.
    client_program: Option<String>,
}

fn run(file: PathBuf, seed: Option<u64>, how: RunHow, at: Where, timeouts: live::Timeouts) -> i32 {
    let RunHow {
        json,
        history,
        timeline,
        client_program,
    } = how;
    let mut scenario = match Scenario::load(&file) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    let mut at = at;
    if let Some(cmd) = &client_program {
        match with_program(&mut scenario, cmd) {
            Ok(first_real) => {
                if let Where::Backend(None) = at {
                    at = Where::Backend(Some(match first_real {
                        Backend::Containers => BackendArg::Containers,
                        _ => BackendArg::Processes,
                    }));
                }
            }
            Err(why) => return bad_input(format!("{}: --client-program: {why}", file.display())),
        }
    }
    let at = match at {
        // A file whose clients are programs plays where it says it can, first.
        Where::Backend(None) if scenario.clients.iter().any(|c| c.program.is_some()) => {
            Where::Backend(Some(match scenario.backends.first() {
                Some(Backend::Containers) => BackendArg::Containers,
                _ => BackendArg::Processes,
            }))
        }
        Where::Backend(None) => Where::Backend(Some(BackendArg::Sim)),
        other => other,
    };
    let (label, backend) = match &at {
        Where::Backend(None | Some(BackendArg::Sim)) => ("simulator", Some(Backend::Sim)),
        Where::Backend(Some(BackendArg::Processes)) => {
            ("redis-server processes", Some(Backend::Processes))
        }
        Where::Backend(Some(BackendArg::Containers)) => {
            ("Redis containers", Some(Backend::Containers))
        }
        Where::Urls(_) => ("your Redis", None),
        Where::Explored(_) => ("simulator, explored schedule", Some(Backend::Sim)),
    };
    if let (Some(Backend::Sim), Some(c)) = (
        backend,
        scenario.clients.iter().find(|c| c.program.is_some()),
    ) {
        return bad_input(format!(
            "{}: client {}: the simulator cannot run an external program: pass --backend processes or --backend containers",
            file.display(),
            c.name
        ));
    }
    if let Some(b) = backend.filter(|b| !scenario.supports(*b)) {
        let name = serde_json::to_string(&b).unwrap_or_default();
        return bad_input(format!(
            "{}: field `backends`: this scenario does not list {name}, so it is not played there",
            file.display()
        ));
    }
    let mut schedule = None;
    let (played, problems) = match at {
        Where::Backend(None | Some(BackendArg::Sim)) => (play_sim(&scenario, seed), Vec::new()),
        Where::Explored(s) => match explore::run_seed(&scenario, s) {
            Ok(run) => {
                let played = locksim::play::judge(&scenario, s, run.records, 0);
                schedule = Some((s, run.scenario.faults));
                (played, Vec::new())
            }
            Err(e) => return bad_input(format!("{}: {e}", file.display())),
        },
        Where::Backend(Some(BackendArg::Processes)) => {
            match live_run(|| play_processes_with(&scenario, seed, timeouts)) {
                Ok(r) => r,
                Err(code) => return code,
            }
        }
        Where::Backend(Some(BackendArg::Containers)) => {
            match live_run(|| play_containers_with(&scenario, seed, timeouts)) {
                Ok(r) => r,
                Err(code) => return code,
            }
        }
        Where::Urls(urls) => {
            let provider = std::sync::Arc::new(live::UrlProvider::new(urls));
            match live_run(|| play_live_with(&scenario, provider, seed, timeouts)) {
                Ok(r) => r,
                Err(code) => return code,
            }
        }
    };
    if let Some(path) = history {
        let written = std::fs::File::create(&path)
            .map_err(checker::history::HistoryError::from)
            .and_then(|f| write_jsonl(&played.records, std::io::BufWriter::new(f)));
        if let Err(e) = written {
            return bad_input(format!("{}: cannot write the history: {e}", path.display()));
        }
    }
    if let Some(path) = timeline {
        let title = format!("{} (seed {}, {label})", scenario.name, played.seed);
        let page = report::timeline_html(&title, &played.records, &played.verdict);
        if let Err(e) = std::fs::write(&path, page) {
            return bad_input(format!(
                "{}: cannot write the timeline: {e}",
                path.display()
            ));
        }
    }
    let mut out = Out::new();
    if json {
        let mut doc = serde_json::json!({
            "scenario": scenario.name,
            "seed": played.seed,
            "verdict": played.verdict,
            "expect": scenario.expect,
            "matches_expect": played.matches_expect(),
            "conclusive": played.verdict.is_conclusive(),
        });
        if let Some((_, faults)) = &schedule {
            doc["explored_faults"] = serde_json::json!(faults);
        }
        outln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
    } else {
        if let Some((s, faults)) = &schedule {
            outln!(out, "explored schedule of seed {s}:");
            for f in faults {
                outln!(out, "  {:>8} ms  {}", f.at_ms, f.action.describe());
            }
        }
        print_run(&mut out, &scenario, &played, label);
        for p in &problems {
            outln!(out, "problem during the run: {p}");
        }
    }
    let code = exit::judged(played.verdict.is_conclusive(), played.matches_expect());
    out.finish(code)
}

/// Puts the program `cmd` (a shipped adapter's name or a command line) in every client's
/// place and takes the simulator off the scenario's backends; the first real backend it
/// lists, or why it cannot be played so.
pub(crate) fn with_program(scenario: &mut Scenario, cmd: &str) -> Result<Backend, String> {
    let words = shell_words::split(cmd).map_err(|e| format!("cannot split `{cmd}`: {e}"))?;
    let program = match words.as_slice() {
        [] => return Err("name a program or a shipped adapter".into()),
        [one] if !one.contains('/') && live::adapter_exists(one) => {
            scenario::Program::Adapter(one.clone())
        }
        _ => scenario::Program::Command(words),
    };
    scenario.backends.retain(|b| *b != Backend::Sim);
    let first = match scenario.backends.first() {
        Some(b @ (Backend::Processes | Backend::Containers)) => *b,
        _ => {
            return Err(
                "this scenario lists only the simulator in `backends`, and an external program needs a real backend (processes or containers)"
                    .into(),
            )
        }
    };
    for c in &mut scenario.clients {
        c.program = Some(program.clone());
    }
    Ok(first)
}

fn print_run(out: &mut Out, scenario: &Scenario, played: &Played, label: &str) {
    outln!(
        out,
        "scenario  {} (seed {}, {label})",
        scenario.name,
        played.seed
    );
    if !scenario.description.is_empty() {
        outln!(out, "          {}", scenario.description);
    }
    outln!(out);
    outln!(out, "timeline");
    for r in &played.records {
        let line = match &r.event {
            Event::Fault(f) => format!("FAULT   {}", f.describe()),
            Event::Heal(h) => format!("HEAL    {}", h.describe()),
            Event::Observed(e) => format!("SEEN    {}", e.describe()),
            Event::Acquired {
                client,
                fencing_token,
                valid_for_us,
                ..
            } => {
                let fence = fencing_token
                    .map(|t| format!(", fencing token {t}"))
                    .unwrap_or_default();
                let external = scenario
                    .clients
                    .iter()
                    .any(|c| &c.name == client && c.program.is_some());
                let valid = match valid_for_us {
                    Some(v) => format!("valid for {:.1} ms", *v as f64 / 1000.0),
                    None if external => "its library's word".into(),
                    None => "no expiry".into(),
                };
                format!("{client:<7} acquires the lock ({valid}{fence})")
            }
            Event::AcquireFailed {
                client,
                attempts,
                reason,
            } => {
                format!("{client:<7} gives up after {attempts} attempts ({reason})")
            }
            Event::Lost { client, reason } => format!("{client:<7} lock lost: {reason}"),
            Event::SectionEnded { client, why } => {
                format!("{client:<7} leaves its critical section ({why:?})")
            }
            Event::Write {
                client,
                fencing_token,
                accepted,
            } => {
                let fence = fencing_token
                    .map(|t| format!(" with token {t}"))
                    .unwrap_or_default();
                let what = if *accepted { "accepted" } else { "REJECTED" };
                format!("{client:<7} writes to the resource{fence}: {what}")
            }
            Event::SetOnceWon { client, key } => {
                format!("{client:<7} wins the set-once record {key}")
            }
            Event::ClientCrashed { client } => format!("{client:<7} crashes"),
            Event::Released {
                client,
                error: Some(error),
                ..
            } => format!("{client:<7} release failed: {error}"),
            Event::ClientSaid { client, message } => format!("{client:<7} says: {message}"),
            Event::KeyChanged {
                node,
                change,
                replicated,
                holder,
                ttl_left_us,
                ..
            } => {
                let how = if *replicated { " by replication" } else { "" };
                let holds = holder
                    .as_deref()
                    .map(|h| format!(", holds {h}"))
                    .unwrap_or_default();
                let ttl = match (holder, ttl_left_us) {
                    (Some(_), Some(t)) => format!(", expires in {:.1} ms", *t as f64 / 1000.0),
                    (Some(_), None) => ", no expiry".into(),
                    _ => String::new(),
                };
                let change = format!("{change:?}").to_lowercase();
                format!("        [{node}] lock key {change}{how}{holds}{ttl}")
            }
            _ => continue,
        };
        outln!(out, "{:>11.3} ms  {line}", r.t_us as f64 / 1000.0);
    }
    outln!(out);
    outln!(out, "verdict");
    for line in played.verdict.summary().lines() {
        outln!(out, "  {line}");
    }
    outln!(out);
    if !played.verdict.is_conclusive() {
        outln!(
            out,
            "INCONCLUSIVE: the outcomes above are not a verdict on the lock (exit 3)"
        );
    } else if played.matches_expect() {
        let n = scenario.expect.len();
        let noun = if n == 1 { "property" } else { "properties" };
        outln!(out, "as expected ({n} {noun} checked against `expect`)");
    } else {
        for (p, want, got) in &played.mismatches {
            outln!(
                out,
                "NOT AS EXPECTED: {p} should be {} but is {}",
                outcome(*want),
                outcome(*got)
            );
        }
    }
}

/// Runs a real-Redis play on a tokio runtime; Ctrl-C stops it and every server it started.
/// The error is the exit code (2 for what the user can fix, 130 for Ctrl-C).
fn live_run<F, Fut>(play: F) -> Result<(Played, Vec<String>), i32>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(Played, Vec<String>), live::LiveError>>,
{
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Err(bad_input(format!("cannot start the async runtime: {e}"))),
    };
    let outcome = rt.block_on(async {
        tokio::select! {
            r = play() => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    // Dropping the runtime drops every task, and with them the servers' provider.
    drop(rt);
    match outcome {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(bad_input(live::chain(&e))),
        None => {
            eprintln!("interrupted: every server started was stopped");
            Err(exit::INTERRUPTED)
        }
    }
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Holds => "holds",
        Outcome::Violated => "violated",
    }
}

fn check_file(path: PathBuf, json: bool, scenario: Option<PathBuf>) -> i32 {
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => return bad_input(format!("{}: {e}", path.display())),
    };
    let records = match read_history(BufReader::new(file)) {
        Ok(r) => r,
        Err(e) => return bad_input(format!("{}: {e}", path.display())),
    };
    // Judge as the run did: with the checker settings it recorded, unless a scenario is given.
    let config = match scenario {
        Some(file) => match Scenario::load(&file) {
            Ok(s) => s.checker,
            Err(e) => return bad_input(e),
        },
        None => checker::history::recorded_checker(&records),
    };
    let verdict = check(&records, &config);
    let mut out = Out::new();
    if json {
        outln!(
            out,
            "{}",
            serde_json::to_string_pretty(&verdict).unwrap_or_default()
        );
    } else {
        outln!(out, "{}", verdict.summary());
    }
    out.finish(exit::judged(verdict.is_conclusive(), verdict.all_hold()))
}

fn bench_report(criterion: PathBuf, out: Option<PathBuf>) -> i32 {
    let results = match report::bench::read_criterion(&criterion) {
        Ok(e) if e.estimates.is_empty() => {
            return bad_input(format!(
                "{}: no benchmark results found",
                criterion.display()
            ))
        }
        Ok(e) => e,
        Err(e) => return bad_input(e),
    };
    let title = "locksim latency benchmarks";
    let command = format!(
        "cargo bench && locksim bench-report --criterion {}",
        criterion.display()
    );
    let md = report::bench::bench_markdown(title, &command, &results);
    let mut stdout = Out::new();
    stdout.text(&md);
    if let Some(dir) = out {
        let html = report::bench::bench_html(title, &command, &results);
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("bench-summary.md"), &md))
            .and_then(|()| std::fs::write(dir.join("bench-summary.html"), html));
        if let Err(e) = written {
            return bad_input(format!("{}: {e}", dir.display()));
        }
    }
    stdout.finish(0)
}
