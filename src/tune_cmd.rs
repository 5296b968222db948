//! `locksim tune`: sweep TTL (with the watchdog on/off and under several retry policies) on
//! the simulator, recommend a TTL per setting, and write the report as Markdown and HTML.

use crate::exit::{self, bad_input as bad};
use crate::out::{outln, Out};
use explore::tune::{tune, Decision, TuneConfig, TuneReport, DEFAULT_RESOLUTION_MS};
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
    /// The risk target per critical section, e.g. `1e-4`: a TTL is safe when its break
    /// rate's 95 % upper bound is at most this. Seeds are then spent adaptively (up to
    /// `--seeds` per TTL) and the boundary is bisected to `--resolution-ms`.
    #[arg(long, value_name = "P", allow_hyphen_values = true)]
    max_risk: Option<f64>,
    /// With `--max-risk`: bisect until the safe and unsafe TTLs are this close, in ms
    /// [default: 50].
    #[arg(long, value_name = "MS")]
    resolution_ms: Option<u64>,
    /// Acquisitions per second in production: the report gives the expected violations per
    /// day at this rate beside each TTL.
    #[arg(long, value_name = "R", allow_hyphen_values = true)]
    rate_per_s: Option<f64>,
    /// Print the report as JSON on stdout (and nothing else there).
    #[arg(long)]
    json: bool,
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
        max_risk,
        resolution_ms,
        rate_per_s,
        json,
    } = args;
    if resolution_ms.is_some() && max_risk.is_none() {
        crate::cli::note("--resolution-ms has no effect without --max-risk (nothing is bisected)");
    }
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
        max_risk,
        resolution_ms: resolution_ms.unwrap_or(DEFAULT_RESOLUTION_MS),
        rate_per_s,
    };
    // With a risk target this is the budget, not a promise: fewer may run, and bisection
    // may add more (the bar grows then).
    let runs = (config.ttls_ms.len() * config.watchdog.len() * config.retries.len()) as u64 * seeds;
    let bar = ProgressBar::new(runs);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = tune(&scenario, &config, &|n| {
        bar.inc(n);
        if bar.length().is_some_and(|len| bar.position() > len) {
            bar.set_length(bar.position());
        }
    });
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => return bad(format!("{}: {e}", file.display())),
    };
    let ttls: Vec<String> = ttl_ms.iter().map(u64::to_string).collect();
    let retries: String = retry.iter().map(|r| format!(" --retry {r}")).collect();
    let mut risk = String::new();
    if let Some(p) = max_risk {
        risk.push_str(&format!(
            " --max-risk {p:e} --resolution-ms {}",
            config.resolution_ms
        ));
    }
    if let Some(r) = rate_per_s {
        risk.push_str(&format!(" --rate-per-s {r}"));
    }
    let command = format!(
        "locksim tune {} --ttl-ms {} --seeds {seeds} --watchdog {}{retries}{risk}",
        file.display(),
        ttls.join(","),
        format!("{watchdog:?}").to_lowercase()
    );
    let mut stdout = Out::new();
    // A sweep over seeds that could not all be judged proves less than it says: exit 3.
    let inconclusive = report.points.iter().any(|p| p.inconclusive > 0);
    let code = exit::judged(!inconclusive, true);
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => outln!(stdout, "{text}"),
            Err(e) => return bad(format!("--json: {e}")),
        }
        if out.is_none() {
            return stdout.finish(code);
        }
    }
    let md = sweep_markdown(&report, &command);
    if !json {
        stdout.text(&md);
        outln!(stdout);
        summary(&report, &mut stdout);
    }
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
        if json {
            crate::cli::note(format!(
                "written: {0}/{stem}.md and {0}/{stem}.html",
                dir.display()
            ));
        } else {
            outln!(
                stdout,
                "\nwritten: {0}/{stem}.md and {0}/{stem}.html",
                dir.display()
            );
        }
    }
    stdout.finish(code)
}

/// Per series: the recommendation, the seeds it took, and the TTLs the budget left
/// undecided.
fn summary(report: &TuneReport, stdout: &mut Out) {
    for rec in &report.recommended {
        let series = format!(
            "watchdog {}, retry {}",
            if rec.setting.watchdog { "on" } else { "off" },
            rec.setting.retry
        );
        let ttl = match (rec.ttl_ms, report.max_risk) {
            (Some(t), Some(p)) => format!("recommended TTL {t} ms (risk <= {p:e} per section)"),
            (Some(t), None) => format!("recommended TTL {t} ms (no seed broke)"),
            (None, Some(p)) => format!("no TTL tried is safe at risk {p:e} per section"),
            (None, None) => "no TTL tried is safe".to_string(),
        };
        outln!(stdout, "{series}: {ttl}; {} seeds spent", rec.seeds_spent);
        let chosen = report
            .points
            .iter()
            .find(|p| p.setting == rec.setting && Some(p.ttl_ms) == rec.ttl_ms);
        if let (Some(p), Some(rate)) = (chosen, report.rate_per_s) {
            let (expected, bound) = p.violations_per_day(rate);
            outln!(
                stdout,
                "  at {rate} acquisitions/s: {expected:.1} broken sections a day expected, at most {bound:.1} (95 %)"
            );
        }
        if !rec.undecided_ttls_ms.is_empty() {
            let list: Vec<String> = rec.undecided_ttls_ms.iter().map(u64::to_string).collect();
            outln!(
                stdout,
                "  undecided within the budget of {} seeds per TTL: {} ms (raise --seeds to decide)",
                report
                    .points
                    .iter()
                    .filter(|p| p.setting == rec.setting && p.decision == Some(Decision::Undecided))
                    .map(|p| p.seeds)
                    .max()
                    .unwrap_or(0),
                list.join(", ")
            );
        }
    }
}
