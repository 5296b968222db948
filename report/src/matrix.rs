//! The safety matrix page: recipes (rows) against fault classes (columns), each cell "safe
//! up to K faults" or the minimal counterexample (its faults, what it breaks, and the file
//! that replays it). Rendered as Markdown and as a self-contained HTML page.

use crate::html::escape;
use std::fmt::Write as _;

/// A row's or column's name and what it means.
#[derive(Debug, Clone)]
pub struct Header {
    /// The short name.
    pub name: String,
    /// What it is.
    pub what: String,
}

/// What one cell says.
#[derive(Debug, Clone, PartialEq)]
pub enum MatrixCell {
    /// No schedule of up to K faults broke a judged property.
    Safe {
        /// Schedules searched.
        schedules: u64,
    },
    /// The minimal counterexample.
    Broken {
        /// Its faults, described, in time order (empty: broken with no fault).
        faults: Vec<String>,
        /// The properties it violates.
        violated: Vec<String>,
        /// The scenario file that replays it, relative to the page.
        file: String,
    },
    /// No schedule broke a property, but some runs were inconclusive.
    Inconclusive {
        /// Schedules searched.
        schedules: u64,
        /// Of which inconclusive.
        inconclusive: u64,
    },
    /// The fault class does not apply to the row.
    NotApplicable,
    /// The cell could not be searched.
    Failed(String),
}

impl MatrixCell {
    /// The cell in a few words.
    pub fn short(&self, max_faults: usize) -> String {
        match self {
            MatrixCell::Safe { .. } => format!("safe ≤ {max_faults}"),
            MatrixCell::Broken {
                faults, violated, ..
            } if faults.is_empty() => format!("✗ no fault: {}", violated.join(", ")),
            MatrixCell::Broken {
                faults, violated, ..
            } => format!("✗ {}: {}", faults.len(), violated.join(", ")),
            MatrixCell::Inconclusive { inconclusive, .. } => {
                format!("? {inconclusive} inconclusive")
            }
            MatrixCell::NotApplicable => "—".into(),
            MatrixCell::Failed(_) => "error".into(),
        }
    }

    fn class(&self) -> &'static str {
        match self {
            MatrixCell::Safe { .. } => "holds",
            MatrixCell::Broken { .. } => "violated",
            MatrixCell::Inconclusive { .. } => "inconclusive",
            MatrixCell::NotApplicable | MatrixCell::Failed(_) => "error",
        }
    }

    fn detail(&self) -> String {
        match self {
            MatrixCell::Safe { schedules } => format!("{schedules} schedules searched"),
            MatrixCell::Broken { faults, file, .. } => {
                let mut d = faults.join("; ");
                if d.is_empty() {
                    d = "no fault needed".into();
                }
                format!("{d}\nreplay: locksim run {file}")
            }
            MatrixCell::Inconclusive {
                schedules,
                inconclusive,
            } => format!("{inconclusive} of {schedules} schedules inconclusive"),
            MatrixCell::NotApplicable => "does not apply".into(),
            MatrixCell::Failed(why) => why.clone(),
        }
    }
}

/// The whole matrix.
#[derive(Debug, Clone)]
pub struct SafetyMatrix {
    /// The page's title.
    pub title: String,
    /// The command that made it.
    pub command: String,
    /// K: the most faults a schedule placed.
    pub max_faults: usize,
    /// The properties a cell is judged on, and what the workload is.
    pub judged: String,
    /// The rows (recipes).
    pub rows: Vec<Header>,
    /// The columns (fault classes).
    pub columns: Vec<Header>,
    /// `cells[row][column]`.
    pub cells: Vec<Vec<MatrixCell>>,
    /// Schedules searched in all.
    pub schedules: u64,
    /// Seconds the search took.
    pub seconds: f64,
}

/// The matrix as Markdown: the table, then each counterexample's faults and replay command.
pub fn matrix_markdown(m: &SafetyMatrix) -> String {
    let mut md = format!(
        "# {}\n\nMade with `{}`: {} schedules in {:.1} s. {}\n\n| recipe |",
        m.title, m.command, m.schedules, m.seconds, m.judged
    );
    for c in &m.columns {
        let _ = write!(md, " {} |", c.name);
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(m.columns.len()));
    md.push('\n');
    for (r, row) in m.rows.iter().enumerate() {
        let _ = write!(md, "| **{}** |", row.name);
        for cell in &m.cells[r] {
            let text = cell.short(m.max_faults);
            match cell {
                MatrixCell::Broken { file, .. } => {
                    let _ = write!(md, " [{text}]({file}) |");
                }
                _ => {
                    let _ = write!(md, " {text} |");
                }
            }
        }
        md.push('\n');
    }
    md.push_str("\nRows:\n\n");
    for r in &m.rows {
        let _ = writeln!(md, "- **{}**: {}", r.name, r.what);
    }
    md.push_str("\nColumns:\n\n");
    for c in &m.columns {
        let _ = writeln!(md, "- **{}**: {}", c.name, c.what);
    }
    md.push_str("\n## Counterexamples\n\n");
    for (r, row) in m.rows.iter().enumerate() {
        for (c, col) in m.columns.iter().enumerate() {
            if let MatrixCell::Broken {
                faults,
                violated,
                file,
            } = &m.cells[r][c]
            {
                let _ = writeln!(
                    md,
                    "- **{} × {}** breaks {}: {} — `locksim run {file}`",
                    row.name,
                    col.name,
                    violated.join(", "),
                    if faults.is_empty() {
                        "with no fault".to_string()
                    } else {
                        faults.join("; ")
                    }
                );
            }
            if let MatrixCell::Failed(why) = &m.cells[r][c] {
                let _ = writeln!(
                    md,
                    "- **{} × {}** could not be searched: {why}",
                    row.name, col.name
                );
            }
        }
    }
    md
}

/// The matrix as one self-contained HTML page.
pub fn matrix_html(m: &SafetyMatrix) -> String {
    let mut h = String::new();
    let t = escape(&m.title);
    let _ = write!(
        h,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
         body{{font-family:sans-serif;max-width:1300px;margin:2em auto}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}\
         td.holds{{background:#e6f4ea}}td.violated{{background:#fce8e6;font-weight:bold}}\
         td.inconclusive{{background:#fef7e0}}td.error{{background:#eee}}\
         code{{font-size:90%}}</style></head>\n<body>\n<h1>{t}</h1>\n<p>Made with <code>{}</code>: {} schedules in {:.1} s. {}</p>\n\
         <p>Hover a cell for its faults; a broken cell links to the scenario file that replays its minimal counterexample.</p>\n<table>\n<tr><th>recipe</th>",
        escape(&m.command),
        m.schedules,
        m.seconds,
        escape(&m.judged)
    );
    for c in &m.columns {
        let _ = write!(
            h,
            "<th title=\"{}\">{}</th>",
            escape(&c.what),
            escape(&c.name)
        );
    }
    h.push_str("</tr>\n");
    for (r, row) in m.rows.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><th title=\"{}\">{}</th>",
            escape(&row.what),
            escape(&row.name)
        );
        for cell in &m.cells[r] {
            let text = escape(&cell.short(m.max_faults));
            let body = match cell {
                MatrixCell::Broken { file, .. } => {
                    format!("<a href=\"{}\">{text}</a>", escape(file))
                }
                _ => text,
            };
            let _ = write!(
                h,
                "<td class=\"{}\" title=\"{}\">{body}</td>",
                cell.class(),
                escape(&cell.detail())
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n<h2>Rows</h2>\n<ul>\n");
    for r in &m.rows {
        let _ = writeln!(
            h,
            "<li><b>{}</b>: {}</li>",
            escape(&r.name),
            escape(&r.what)
        );
    }
    h.push_str("</ul>\n<h2>Columns</h2>\n<ul>\n");
    for c in &m.columns {
        let _ = writeln!(
            h,
            "<li><b>{}</b>: {}</li>",
            escape(&c.name),
            escape(&c.what)
        );
    }
    h.push_str("</ul>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_cell_links_its_file_and_a_safe_one_states_k() {
        let m = SafetyMatrix {
            title: "t".into(),
            command: "locksim matrix".into(),
            max_faults: 2,
            judged: "j".into(),
            rows: vec![Header {
                name: "safe".into(),
                what: "w".into(),
            }],
            columns: vec![
                Header {
                    name: "pause".into(),
                    what: "p".into(),
                },
                Header {
                    name: "crash".into(),
                    what: "c".into(),
                },
            ],
            cells: vec![vec![
                MatrixCell::Broken {
                    faults: vec!["at 1 ms: pause client A for 1500 ms".into()],
                    violated: vec!["unsafe_writes".into()],
                    file: "counterexamples/safe--pause.json".into(),
                },
                MatrixCell::Safe { schedules: 40 },
            ]],
            schedules: 41,
            seconds: 0.5,
        };
        let md = matrix_markdown(&m);
        assert!(
            md.contains("[✗ 1: unsafe_writes](counterexamples/safe--pause.json)"),
            "{md}"
        );
        assert!(md.contains("| safe ≤ 2 |"), "{md}");
        let html = matrix_html(&m);
        assert!(
            html.contains("href=\"counterexamples/safe--pause.json\""),
            "{html}"
        );
        assert!(html.contains("class=\"holds\""), "{html}");
    }
}
