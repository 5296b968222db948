//! `locksim tune`: sweep TTL (and the watchdog) on the simulator, recommend a TTL, and write
//! the report as Markdown and HTML.

use explore::tune::{tune, TuneConfig};
use indicatif::{ProgressBar, ProgressStyle};
use report::sweep::{sweep_html, sweep_markdown};
use scenario::Scenario;
use std::path::PathBuf;

fn bad(msg: impl std::fmt::Display) -> i32 {
    crate::cli::bad_input_code(msg)
}

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

/// Runs the subcommand; returns the exit code.
pub fn run(
    file: PathBuf,
    ttl_ms: Vec<u64>,
    seeds: u64,
    watchdog: WatchdogArg,
    jobs: Option<usize>,
    out: Option<PathBuf>,
) -> i32 {
    let scenario = match Scenario::load(&file) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let config = TuneConfig {
        ttls_ms: ttl_ms.clone(),
        watchdog: match watchdog {
            WatchdogArg::On => vec![true],
            WatchdogArg::Off => vec![false],
            WatchdogArg::Both => vec![false, true],
        },
        seeds,
        jobs: jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    let runs = (config.ttls_ms.len() * config.watchdog.len()) as u64 * seeds;
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
    let command = format!(
        "locksim tune {} --ttl-ms {} --seeds {seeds} --watchdog {}",
        file.display(),
        ttls.join(","),
        format!("{watchdog:?}").to_lowercase()
    );
    let md = sweep_markdown(&report, &command);
    print!("{md}");
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
        println!(
            "\nwritten: {0}/{stem}.md and {0}/{stem}.html",
            dir.display()
        );
    }
    0
}
