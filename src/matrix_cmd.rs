//! `locksim matrix`: the safety matrix — every recipe against every fault class, each cell
//! an exhaustive search — as Markdown and HTML, with each counterexample as a scenario file.

use crate::exit::{self, bad_input as bad};
use crate::explore_cmd::write_scenario;
use crate::out::Out;
use explore::matrix::{columns, matrix, rows, Cell, JUDGED};
use indicatif::{ProgressBar, ProgressStyle};
use report::matrix::{matrix_html, matrix_markdown, Header, MatrixCell, SafetyMatrix};
use std::path::PathBuf;
use std::time::Instant;

/// The arguments of `locksim matrix`.
#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    /// The most faults a schedule places in each cell (K).
    #[arg(long, default_value_t = 2)]
    max_faults: usize,
    /// Worker threads per cell (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Write safety-matrix.md, safety-matrix.html and counterexamples/ here (default: print
    /// the Markdown only).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Runs the subcommand; returns the exit code (0 when every cell was searched, 2 on bad
/// input or output that cannot be written, 3 when a cell was inconclusive or failed).
pub fn run(args: MatrixArgs) -> i32 {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if let Some(dir) = &args.out {
        if let Err(e) = std::fs::create_dir_all(dir.join("counterexamples")) {
            return bad(format!("{}: {e}", dir.display()));
        }
    }
    let (rows, cols) = (rows(), columns());
    let bar = ProgressBar::new((rows.len() * cols.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} cells  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let searched = matrix(args.max_faults, jobs, &|done, _| {
        bar.set_position(done as u64)
    });
    bar.finish_and_clear();
    let searched = match searched {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut schedules = 0;
    let mut doubtful = false;
    let mut cells = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let mut line = Vec::new();
        for (c, col) in cols.iter().enumerate() {
            let cell = match &searched[r][c] {
                Cell::NotApplicable => MatrixCell::NotApplicable,
                Cell::Failed(why) => {
                    doubtful = true;
                    MatrixCell::Failed(why.clone())
                }
                Cell::Searched(report) => {
                    schedules += report.schedules();
                    match &report.counterexample {
                        Some(cx) => {
                            let file = format!("counterexamples/{}--{}.json", row.name, col.name);
                            if let Some(dir) = &args.out {
                                if let Err(e) = write_scenario(&dir.join(&file), &cx.scenario) {
                                    return bad(e);
                                }
                            }
                            if !cx.confirmed {
                                doubtful = true;
                            }
                            MatrixCell::Broken {
                                faults: cx
                                    .faults
                                    .iter()
                                    .map(|f| format!("at {} ms: {}", f.at_ms, f.action.describe()))
                                    .collect(),
                                violated: cx
                                    .violated
                                    .iter()
                                    .map(|p| p.name().to_string())
                                    .collect(),
                                file,
                            }
                        }
                        None if report.inconclusive() > 0 => {
                            doubtful = true;
                            MatrixCell::Inconclusive {
                                schedules: report.schedules(),
                                inconclusive: report.inconclusive(),
                            }
                        }
                        None => MatrixCell::Safe {
                            schedules: report.schedules(),
                        },
                    }
                }
            };
            line.push(cell);
        }
        cells.push(line);
    }
    let judged: Vec<&str> = JUDGED.iter().map(|p| p.name()).collect();
    let m = SafetyMatrix {
        title: "Safety matrix: which Redis lock recipe survives which faults".into(),
        command: format!("locksim matrix --max-faults {}", args.max_faults),
        max_faults: args.max_faults,
        judged: format!(
            "Each cell searches every schedule of up to {} faults of its class (exhaustive, breadth-first: a counterexample shown is minimal) on the simulator. Two clients each hold the lock once for 1.5 s of work under a 1 s TTL; single-lock recipes run on a primary with one replica 50 ms behind, Redlock on 5 primaries. A cell is broken when one of {} is violated (two clients merely believing they hold the lock is not counted: fencing exists because no lock prevents it under a pause).",
            args.max_faults,
            judged.join(", ")
        ),
        rows: rows
            .iter()
            .map(|r| Header {
                name: r.name.into(),
                what: r.what.into(),
            })
            .collect(),
        columns: cols
            .iter()
            .map(|c| Header {
                name: c.name.into(),
                what: c.what.into(),
            })
            .collect(),
        cells,
        schedules,
        seconds,
    };
    let md = matrix_markdown(&m);
    let mut out = Out::new();
    match &args.out {
        None => out.text(&md),
        Some(dir) => {
            for (name, text) in [
                ("safety-matrix.md", md.clone()),
                ("safety-matrix.html", matrix_html(&m)),
            ] {
                let path = dir.join(name);
                if let Err(e) = std::fs::write(&path, text) {
                    return out.finish(bad(format!("{}: {e}", path.display())));
                }
            }
            out.text(&md);
            out.line(format!("written to {}", dir.display()));
        }
    }
    out.finish(if doubtful {
        exit::INCONCLUSIVE
    } else {
        exit::OK
    })
}
