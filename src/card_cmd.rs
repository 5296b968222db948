//! `locksim card`: the client report card. Plays every scenario file of a folder with each
//! shipped adapter (and locksim's own recipe) in every client's place, on a real backend, and
//! writes a Markdown and an HTML table — library × scenario → holds / violated / inconclusive
//! — with each run's timeline and the command that replays it.

use crate::cli::with_program;
use crate::exit::{self, bad_input as bad};
use checker::{Event, Outcome, Property};
use indicatif::{ProgressBar, ProgressStyle};
use locksim::play::{play_containers_with, play_processes_with, Played};
use report::card::{card_html, card_markdown, Card, Cell, CellOutcome, Column};
use scenario::{Backend, Scenario};
use std::path::{Path, PathBuf};

/// The name of locksim's own recipe's row.
const RECIPE_ROW: &str = "locksim recipe";

/// `locksim card`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CardArgs {
    /// The folder of scenario files (each one column), played in file-name order.
    #[arg(long, default_value = "scenarios/clients")]
    scenarios: PathBuf,
    /// The adapters to play (comma-separated names from adapters/bin; default: every one).
    #[arg(long, value_delimiter = ',')]
    adapters: Vec<String>,
    /// Leave out the row of locksim's own recipe.
    #[arg(long)]
    no_recipe: bool,
    /// Where to play.
    #[arg(long, value_enum, default_value_t = CardBackend::Processes)]
    backend: CardBackend,
    /// Write client-card.md, client-card.html and timelines/ here.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// The real backends a card plays on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CardBackend {
    /// Local redis-server processes.
    Processes,
    /// Redis containers.
    Containers,
}

impl CardBackend {
    fn backend(self) -> Backend {
        match self {
            CardBackend::Processes => Backend::Processes,
            CardBackend::Containers => Backend::Containers,
        }
    }
    fn arg(self) -> &'static str {
        match self {
            CardBackend::Processes => "processes",
            CardBackend::Containers => "containers",
        }
    }
}

/// Runs `locksim card`; the exit code.
pub fn run(args: CardArgs) -> i32 {
    let files = match scenario_files(&args.scenarios) {
        Ok(f) if f.is_empty() => {
            return bad(format!(
                "{}: no scenario files (*.json) here",
                args.scenarios.display()
            ))
        }
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    let adapters = if args.adapters.is_empty() {
        live::adapter_names()
    } else {
        args.adapters.clone()
    };
    if let Some(a) = adapters.iter().find(|a| !live::adapter_exists(a)) {
        return bad(format!(
            "--adapters: no shipped adapter is called `{a}`; the adapters are: {}",
            live::adapter_names().join(", ")
        ));
    }
    let mut rows: Vec<Option<String>> = adapters.iter().cloned().map(Some).collect();
    if !args.no_recipe {
        rows.push(None);
    }
    if let Err(e) = std::fs::create_dir_all(args.out.join("timelines")) {
        return bad(format!("{}: {e}", args.out.display()));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return bad(format!("cannot start the async runtime: {e}")),
    };
    let bar = ProgressBar::new((rows.len() * files.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut cells = Vec::new();
    for row in &rows {
        let mut line = Vec::new();
        for (path, scenario) in &files {
            bar.set_message(format!(
                "{} × {}",
                row.as_deref().unwrap_or(RECIPE_ROW),
                stem(path)
            ));
            let cell = rt.block_on(async {
                tokio::select! {
                    c = play_cell(path, scenario, row.as_deref(), args.backend, &args.out) => Some(c),
                    _ = tokio::signal::ctrl_c() => None,
                }
            });
            match cell {
                Some(c) => line.push(c),
                None => {
                    bar.abandon();
                    drop(rt);
                    eprintln!("interrupted: every server and program started was stopped");
                    return exit::INTERRUPTED;
                }
            }
            bar.inc(1);
        }
        cells.push(line);
    }
    bar.finish_and_clear();
    drop(rt);
    let card = Card {
        title: "Client report card".into(),
        command: command_line(&args),
        backend: match args.backend {
            CardBackend::Processes => "redis-server processes".into(),
            CardBackend::Containers => "Redis containers".into(),
        },
        rows: rows
            .iter()
            .map(|r| r.clone().unwrap_or_else(|| RECIPE_ROW.into()))
            .collect(),
        columns: files
            .iter()
            .map(|(path, s)| Column {
                name: stem(path),
                file: path.display().to_string(),
                description: s.description.clone(),
            })
            .collect(),
        cells,
    };
    for (name, text) in [
        ("client-card.md", card_markdown(&card)),
        ("client-card.html", card_html(&card)),
    ] {
        let path = args.out.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            return bad(format!("{}: {e}", path.display()));
        }
    }
    print!("{}", card_markdown(&card));
    exit::OK
}

/// The scenario files of `dir`, sorted by name, loaded (a file that does not load is an
/// error naming it).
fn scenario_files(dir: &Path) -> Result<Vec<(PathBuf, Scenario)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            Scenario::load(&p)
                .map(|s| (p, s))
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The command that made the card, for its header.
fn command_line(args: &CardArgs) -> String {
    let mut c = format!(
        "locksim card --scenarios {} --backend {}",
        args.scenarios.display(),
        args.backend.arg()
    );
    if !args.adapters.is_empty() {
        c.push_str(&format!(" --adapters {}", args.adapters.join(",")));
    }
    if args.no_recipe {
        c.push_str(" --no-recipe");
    }
    c.push_str(&format!(" --out {}", args.out.display()));
    c
}

/// Plays one cell: `adapter` (or locksim's recipe when `None`) in every client's place.
async fn play_cell(
    path: &Path,
    scenario: &Scenario,
    adapter: Option<&str>,
    backend: CardBackend,
    out: &Path,
) -> Cell {
    let row = adapter.unwrap_or("recipe");
    let mut replay = format!("locksim run {} --backend {}", path.display(), backend.arg());
    if let Some(a) = adapter {
        replay.push_str(&format!(" --client-program {a}"));
    }
    let not_played = |why: String| Cell {
        outcome: CellOutcome::NotPlayed(why),
        timeline: None,
        replay: replay.clone(),
        notes: Vec::new(),
    };
    if !scenario.supports(backend.backend()) {
        return not_played(format!("the scenario does not list {}", backend.arg()));
    }
    let mut s = scenario.clone();
    if let Some(a) = adapter {
        if let Err(why) = with_program(&mut s, a) {
            return not_played(why);
        }
    }
    let timeouts = live::Timeouts::default();
    let played = match backend {
        CardBackend::Processes => play_processes_with(&s, None, timeouts).await,
        CardBackend::Containers => play_containers_with(&s, None, timeouts).await,
    };
    let played: Played = match played {
        Ok((p, _)) => p,
        Err(live::LiveError::Program {
            client,
            problem: live::ProgramProblem::StillRunning { said, history, .. },
            ..
        }) => {
            // A library that never returned is a finding: its history is judged and drawn.
            let played = locksim::play::judge(&s, s.seed, history, 0);
            let mut cell = drawn(path, scenario, row, backend, out, &played, replay);
            cell.outcome = CellOutcome::Hung(format!(
                "client {client}'s library had not returned when the run's time was up; {said}; the rest of the run: {}",
                outcome(&played).short()
            ));
            return cell;
        }
        Err(e) => {
            return Cell {
                outcome: CellOutcome::Error(live::chain(&e)),
                timeline: None,
                replay,
                notes: Vec::new(),
            }
        }
    };
    drawn(path, scenario, row, backend, out, &played, replay)
}

/// The cell of a judged run: its outcome, its timeline written under `out`, its notes.
fn drawn(
    path: &Path,
    scenario: &Scenario,
    row: &str,
    backend: CardBackend,
    out: &Path,
    played: &Played,
    replay: String,
) -> Cell {
    let link = format!("timelines/{}--{row}.html", stem(path));
    let title = format!("{} × {} ({})", row, scenario.name, backend.arg());
    let page = report::timeline_html(&title, &played.records, &played.verdict);
    let timeline = std::fs::write(out.join(&link), page).ok().map(|_| link);
    Cell {
        outcome: outcome(played),
        timeline,
        replay,
        notes: notes(&played.records),
    }
}

/// A played run as a cell's outcome.
fn outcome(played: &Played) -> CellOutcome {
    if !played.verdict.is_conclusive() {
        let why = played
            .records
            .iter()
            .find_map(|r| match &r.event {
                Event::Inconclusive { reason } => Some(reason.clone()),
                _ => None,
            })
            .unwrap_or_default();
        return CellOutcome::Inconclusive(why);
    }
    let violated: Vec<String> = Property::ALL
        .iter()
        .filter(|p| played.verdict.outcome(**p) == Outcome::Violated)
        .map(|p| p.name().to_string())
        .collect();
    if violated.is_empty() {
        CellOutcome::Holds
    } else {
        CellOutcome::Violated(violated)
    }
}

/// What the libraries said that is worth reading beside the verdict: release errors and
/// losses, once each per client and text.
fn notes(records: &[checker::Record]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Released {
                client,
                error: Some(e),
                ..
            } => Some(format!("{client}'s release failed: {e}")),
            Event::Lost { client, reason } => Some(format!("{client} was told: lost ({reason})")),
            _ => None,
        })
        .filter(|n| seen.insert(n.clone()))
        .collect()
}
