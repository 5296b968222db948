//! The client report card: real lock libraries (rows) against scenario files (columns), each
//! cell the checker's verdict on one run — holds, violated (which properties), inconclusive
//! (why), or the error that stopped the run — linked to the run's timeline and given with the
//! one command that replays it. Rendered as Markdown and as a self-contained HTML page.

use crate::html::escape;
use std::fmt::Write as _;

/// What one cell of the card says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellOutcome {
    /// Every property held.
    Holds,
    /// These properties were violated.
    Violated(Vec<String>),
    /// The run could not confirm a fault or condition: not a verdict.
    Inconclusive(String),
    /// The library never returned: its program was still blocked when the run's time was up
    /// (a call with no timeout behind a partition, say). What it said last.
    Hung(String),
    /// The run did not finish (the program broke the protocol, failed, ...).
    Error(String),
    /// Not played (the scenario does not list the backend, say).
    NotPlayed(String),
}

/// One cell: a library under one scenario.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The verdict.
    pub outcome: CellOutcome,
    /// The run's timeline page, relative to the card.
    pub timeline: Option<String>,
    /// The command that replays the run.
    pub replay: String,
    /// What the library said worth reading beside the verdict (release errors, losses).
    pub notes: Vec<String>,
}

/// One column: a scenario file.
#[derive(Debug, Clone)]
pub struct Column {
    /// The scenario's short name (its file stem).
    pub name: String,
    /// The file, as given to `locksim run`.
    pub file: String,
    /// The scenario's description.
    pub description: String,
}

/// The whole card.
#[derive(Debug, Clone)]
pub struct Card {
    /// The page's title.
    pub title: String,
    /// The command that made the card.
    pub command: String,
    /// Where it ran (`redis-server processes`).
    pub backend: String,
    /// The rows' names (adapters, and locksim's own recipe).
    pub rows: Vec<String>,
    /// The columns.
    pub columns: Vec<Column>,
    /// `cells[row][column]`.
    pub cells: Vec<Vec<Cell>>,
}

impl CellOutcome {
    /// The cell's short text.
    pub fn short(&self) -> String {
        match self {
            CellOutcome::Holds => "holds".into(),
            CellOutcome::Violated(p) => format!("violated: {}", p.join(", ")),
            CellOutcome::Inconclusive(_) => "inconclusive".into(),
            CellOutcome::Hung(_) => "hung".into(),
            CellOutcome::Error(_) => "error".into(),
            CellOutcome::NotPlayed(_) => "not played".into(),
        }
    }

    /// Why, for the outcomes that have a reason.
    fn reason(&self) -> Option<&str> {
        match self {
            CellOutcome::Inconclusive(r)
            | CellOutcome::Hung(r)
            | CellOutcome::Error(r)
            | CellOutcome::NotPlayed(r) => Some(r),
            _ => None,
        }
    }

    fn class(&self) -> &'static str {
        match self {
            CellOutcome::Holds => "holds",
            CellOutcome::Violated(_) => "violated",
            CellOutcome::Inconclusive(_) | CellOutcome::Hung(_) => "inconclusive",
            CellOutcome::Error(_) | CellOutcome::NotPlayed(_) => "error",
        }
    }
}

/// The card as Markdown: the matrix, then every cell's details and replay command.
pub fn card_markdown(card: &Card) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", card.title);
    let _ = writeln!(
        md,
        "Made with `{}` on {}. Each cell is one run judged by locksim's checker; its link opens the run's timeline.\n",
        card.command, card.backend
    );
    let _ = write!(md, "| library |");
    for c in &card.columns {
        let _ = write!(md, " {} |", c.name);
    }
    let _ = write!(md, "\n|---|");
    for _ in &card.columns {
        let _ = write!(md, "---|");
    }
    md.push('\n');
    for (r, row) in card.rows.iter().enumerate() {
        let _ = write!(md, "| {row} |");
        for cell in &card.cells[r] {
            let text = match &cell.outcome {
                CellOutcome::Violated(_) => format!("**{}**", cell.outcome.short()),
                o => o.short(),
            };
            match &cell.timeline {
                Some(t) => {
                    let _ = write!(md, " [{text}]({t}) |");
                }
                None => {
                    let _ = write!(md, " {text} |");
                }
            }
        }
        md.push('\n');
    }
    let _ = writeln!(md, "\n## The scenarios\n");
    for c in &card.columns {
        let _ = writeln!(md, "- **{}** (`{}`): {}", c.name, c.file, c.description);
    }
    let _ = writeln!(md, "\n## Every cell, and how to replay it\n");
    for (r, row) in card.rows.iter().enumerate() {
        let _ = writeln!(md, "### {row}\n");
        for (c, cell) in card.cells[r].iter().enumerate() {
            let _ = write!(
                md,
                "- **{}**: {}",
                card.columns[c].name,
                cell.outcome.short()
            );
            if let Some(why) = cell.outcome.reason() {
                let _ = write!(md, " ({why})");
            }
            let _ = writeln!(md, ". Replay: `{}`", cell.replay);
            for n in &cell.notes {
                let _ = writeln!(md, "  - {n}");
            }
        }
        md.push('\n');
    }
    md
}

/// The card as one self-contained HTML page.
pub fn card_html(card: &Card) -> String {
    let mut h = String::new();
    let t = escape(&card.title);
    let _ = write!(
        h,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
         body{{font-family:sans-serif;max-width:1200px;margin:2em auto}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}\
         td.holds{{background:#e6f4ea}}td.violated{{background:#fce8e6;font-weight:bold}}\
         td.inconclusive{{background:#fef7e0}}td.error{{background:#eee}}\
         code{{font-size:90%}}</style></head>\n<body>\n<h1>{t}</h1>\n<p>Made with <code>{}</code> on {}. \
         Each cell is one run judged by locksim's checker: click it for the run's timeline; hover for the replay command.</p>\n<table>\n<tr><th>library</th>",
        escape(&card.command),
        escape(&card.backend)
    );
    for c in &card.columns {
        let _ = write!(
            h,
            "<th title=\"{}\">{}</th>",
            escape(&c.description),
            escape(&c.name)
        );
    }
    h.push_str("</tr>\n");
    for (r, row) in card.rows.iter().enumerate() {
        let _ = write!(h, "<tr><th>{}</th>", escape(row));
        for cell in &card.cells[r] {
            let mut title = cell.replay.clone();
            if let Some(why) = cell.outcome.reason() {
                title = format!("{why}\n{title}");
            }
            for n in &cell.notes {
                title.push('\n');
                title.push_str(n);
            }
            let text = escape(&cell.outcome.short());
            let inner = match &cell.timeline {
                Some(link) => format!("<a href=\"{}\">{text}</a>", escape(link)),
                None => text,
            };
            let _ = write!(
                h,
                "<td class=\"{}\" title=\"{}\">{inner}</td>",
                cell.outcome.class(),
                escape(&title)
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n<h2>The scenarios</h2>\n<ul>\n");
    for c in &card.columns {
        let _ = writeln!(
            h,
            "<li><b>{}</b> (<code>{}</code>): {}</li>",
            escape(&c.name),
            escape(&c.file),
            escape(&c.description)
        );
    }
    h.push_str("</ul>\n<h2>Replay</h2>\n<ul>\n");
    for (r, row) in card.rows.iter().enumerate() {
        for (c, cell) in card.cells[r].iter().enumerate() {
            let _ = writeln!(
                h,
                "<li>{} × {}: <code>{}</code></li>",
                escape(row),
                escape(&card.columns[c].name),
                escape(&cell.replay)
            );
        }
    }
    h.push_str("</ul>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> Card {
        let cell = |outcome, timeline: Option<&str>| Cell {
            outcome,
            timeline: timeline.map(String::from),
            replay: "locksim run x.json --client-program redis-py".into(),
            notes: vec!["released: LockNotOwnedError".into()],
        };
        Card {
            title: "Client report card".into(),
            command: "locksim card".into(),
            backend: "redis-server processes".into(),
            rows: vec!["redis-py".into()],
            columns: vec![
                Column {
                    name: "gc-pause".into(),
                    file: "scenarios/clients/gc-pause.json".into(),
                    description: "A pauses <2 s>".into(),
                },
                Column {
                    name: "sentinel".into(),
                    file: "s.json".into(),
                    description: "d".into(),
                },
            ],
            cells: vec![vec![
                cell(
                    CellOutcome::Violated(vec!["mutual_exclusion".into()]),
                    Some("timelines/gc-pause--redis-py.html"),
                ),
                cell(CellOutcome::Inconclusive("no promotion seen".into()), None),
            ]],
        }
    }

    #[test]
    fn the_markdown_has_one_row_per_library_with_linked_verdicts_and_replays() {
        let md = card_markdown(&card());
        assert!(md.contains(
            "| redis-py | [**violated: mutual_exclusion**](timelines/gc-pause--redis-py.html) | inconclusive |"
        ));
        assert!(md.contains("inconclusive (no promotion seen). Replay: `locksim run x.json --client-program redis-py`"));
        assert!(md.contains("  - released: LockNotOwnedError"));
    }

    #[test]
    fn the_html_escapes_and_colours_each_cell_by_its_outcome() {
        let h = card_html(&card());
        assert!(h.contains("<td class=\"violated\""));
        assert!(h.contains("<td class=\"inconclusive\""));
        assert!(h.contains("A pauses &lt;2 s&gt;"));
        assert!(!h.contains("<2 s>"));
    }
}
