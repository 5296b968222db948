//! `locksim tune`: sweep TTL (with the watchdog on/off and under several retry policies) on
//! the simulator, recommend a TTL per setting, and write the report as Markdown and HTML.

use crate::exit::{self, bad_input as bad};
use crate::out::{outln, Out};
use explore::tune::{tune, TuneConfig};
use indicatif::{ProgressBar, ProgressStyle};
use locksim::lock_core::RetryPolicy;
use report::sweep::{sweep_html, sweep_markdown};
use scenario::Scenario;
use std::path::PathBuf;

/// Which watchdog settings to sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchdogArg {
    /// Only with the watchdog.
    On,
    /// Only without it.
    Off,
    /// Both.
    Both,
}

/// `locksim tune`'s arguments.
#[derive(Debug, clap::Args)]
pub struct TuneArgs {
    /// The scenario file: topology, recipe, clients' work distributions, and a
    /// `fault_space` for pauses and crashes.
    file: PathBuf,
    /// The TTLs to try, in milliseconds (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    ttl_ms: Vec<u64>,
    /// Seeds per setting.
    #[arg(long, default_value_t = 200)]
    seeds: u64,
    /// Sweep with the watchdog on, off, or both.
    #[arg(long, value_enum, default_value_t = WatchdogArg::Both)]
    watchdog: WatchdogArg,
    /// A retry policy to sweep, e.g. `max=5,base=50,cap=1000,jitter=1` (fields left out take
    /// the default), `none` (one attempt) or `scenario` (the scenario recipe's own); repeat
    /// the flag to compare several. Default: the scenario's own.
    #[arg(long, value_name = "POLICY")]
    retry: Vec<String>,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Write the report here as Markdown and HTML.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: TuneArgs) -> i32 {
    let TuneArgs {
        file,
        ttl_ms,
        seeds,
        watchdog,
        retry,
        jobs,
        out,
    } = args;
    let scenario = match Scenario::load(&file) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let retries = if retry.is_empty() {
        vec![scenario.recipe.retry.clone()]
    } else {
        let parsed: Result<Vec<RetryPolicy>, _> = retry
            .iter()
            .map(|r| match r.trim() {
                "scenario" => Ok(scenario.recipe.retry.clone()),
                spec => spec.parse(),
            })
            .collect();
        match parsed {
            Ok(p) => p,
            Err(e) => return bad(format!("--retry: {e}")),
        }
    };
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs > 0 && seeds > 0 && explore::clamp_jobs(jobs, seeds) < jobs {
        crate::cli::note(format!(
            "--jobs {jobs}: using {} (no more than the seeds, nor 4 per core)",
            explore::clamp_jobs(jobs, seeds)
        ));
    }
    let config = TuneConfig {
        ttls_ms: ttl_ms.clone(),
        watchdog: match watchdog {
            WatchdogArg::On => vec![true],
            WatchdogArg::Off => vec![false],
            WatchdogArg::Both => vec![false, true],
        },
        retries,
        seeds,
        jobs,
    };
    let runs = (config.ttls_ms.len() * config.watchdog.len() * config.retries.len()) as u64 * seeds;
    let bar = ProgressBar::new(runs);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = tune(&scenario, &config, &|n| bar.inc(n));
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => return bad(format!("{}: {e}", file.display())),
    };
    let ttls: Vec<String> = ttl_ms.iter().map(u64::to_string).collect();
    let retries: String = retry.iter().map(|r| format!(" --retry {r}")).collect();
    let command = format!(
        "locksim tune {} --ttl-ms {} --seeds {seeds} --watchdog {}{retries}",
        file.display(),
        ttls.join(","),
        format!("{watchdog:?}").to_lowercase()
    );
    let md = sweep_markdown(&report, &command);
    let mut stdout = Out::new();
    stdout.text(&md);
    if let Some(dir) = out {
        let stem = scenario.name.clone();
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(format!("{stem}.md")), &md))
            .and_then(|()| {
                std::fs::write(
                    dir.join(format!("{stem}.html")),
                    sweep_html(&report, &command),
                )
            });
        if let Err(e) = written {
            return bad(format!("{}: {e}", dir.display()));
        }
        outln!(
            stdout,
            "\nwritten: {0}/{stem}.md and {0}/{stem}.html",
            dir.display()
        );
    }
    // A sweep over seeds that could not all be judged proves less than it says: exit 3.
    let inconclusive = report.points.iter().any(|p| p.inconclusive > 0);
    stdout.finish(exit::judged(!inconclusive, true))
}
