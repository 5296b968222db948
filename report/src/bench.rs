//! The benchmark summary: criterion's saved estimates as a latency table and a bar chart.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One benchmark's saved estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchEstimate {
    /// Criterion's group (e.g. `acquire-single`).
    pub group: String,
    /// The benchmark within the group.
    pub name: String,
    /// Median time per iteration, in nanoseconds, with its 95 % confidence bounds.
    pub median_ns: (f64, f64, f64),
}

/// An interleaved comparison the latency bench wrote next to criterion's results
/// (`<group>/paired.json`): the two rows ran alternately, every iteration timing both, so
/// their ratio does not move with the machine's load between rows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PairedRatio {
    /// Criterion's group (the directory the file is in).
    #[serde(default)]
    pub group: String,
    /// The row compared.
    pub row: String,
    /// The row it is compared with.
    pub baseline: String,
    /// Iterations in which both ran.
    pub iterations: u64,
    /// The row's per-iteration times over those iterations, in µs.
    pub row_us: PairedStats,
    /// The baseline's per-iteration times over the same iterations, in µs.
    pub baseline_us: PairedStats,
}

impl PairedRatio {
    /// The row's p50 over the baseline's.
    pub(crate) fn ratio(&self) -> f64 {
        self.row_us.p50 / self.baseline_us.p50
    }
}

/// Per-iteration statistics of one side of a [`PairedRatio`], in µs.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct PairedStats {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
}

/// Everything `cargo bench` left in criterion's directory that the summary shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BenchResults {
    /// Criterion's estimates, sorted by group and name.
    pub estimates: Vec<BenchEstimate>,
    /// The latency bench's interleaved comparisons, sorted by group and row.
    pub paired: Vec<PairedRatio>,
}

/// Reading criterion's directory failed.
#[derive(Debug)]
pub struct BenchReadError {
    /// The file or directory at fault.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl std::fmt::Display for BenchReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for BenchReadError {}

/// Reads every `*/new/estimates.json` (with its `benchmark.json`) and every `paired.json`
/// under `dir`.
pub fn read_criterion(dir: &Path) -> Result<BenchResults, BenchReadError> {
    let err = |path: &Path, reason: String| BenchReadError {
        path: path.to_path_buf(),
        reason,
    };
    if !dir.is_dir() {
        return Err(err(
            dir,
            "no criterion results here (run `cargo bench` first)".into(),
        ));
    }
    let mut out = Vec::new();
    let mut paired = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let file = d.join("paired.json");
        if file.is_file() {
            let text = std::fs::read_to_string(&file).map_err(|e| err(&file, e.to_string()))?;
            let mut ratios: Vec<PairedRatio> =
                serde_json::from_str(&text).map_err(|e| err(&file, e.to_string()))?;
            let group = d
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            for r in &mut ratios {
                r.group = group.clone();
            }
            paired.extend(ratios);
        }
        let entries = std::fs::read_dir(&d).map_err(|e| err(&d, e.to_string()))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") {
                    if let Some(e) = read_one(&p).map_err(|r| err(&p, r))? {
                        out.push(e);
                    }
                } else if p
                    .file_name()
                    .is_some_and(|n| n != "report" && n != "base" && n != "change")
                {
                    stack.push(p);
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.group, &a.name).cmp(&(&b.group, &b.name)));
    paired.sort_by(|a, b| (&a.group, &a.row).cmp(&(&b.group, &b.row)));
    Ok(BenchResults {
        estimates: out,
        paired,
    })
}

fn read_one(new: &Path) -> Result<Option<BenchEstimate>, String> {
    let read = |f: &str| -> Result<Option<serde_json::Value>, String> {
        match std::fs::read_to_string(new.join(f)) {
            Ok(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| format!("{f}: {e}")),
            Err(_) => Ok(None),
        }
    };
    let (Some(est), Some(bench)) = (read("estimates.json")?, read("benchmark.json")?) else {
        return Ok(None);
    };
    let num = |v: &serde_json::Value| {
        v.as_f64()
            .ok_or("estimates.json: median is not a number".to_string())
    };
    let median = &est["median"];
    let group = bench["group_id"].as_str().unwrap_or("?").to_string();
    let name = match (bench["function_id"].as_str(), bench["value_str"].as_str()) {
        (Some(f), Some(v)) => format!("{f}/{v}"),
        (Some(f), None) => f.to_string(),
        (None, Some(v)) => v.to_string(),
        (None, None) => "?".into(),
    };
    Ok(Some(BenchEstimate {
        group,
        name,
        median_ns: (
            num(&median["point_estimate"])?,
            num(&median["confidence_interval"]["lower_bound"])?,
            num(&median["confidence_interval"]["upper_bound"])?,
        ),
    }))
}

fn us(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

/// What a row times, by its name's ending: one round trip's worth (`_acquire`, `_extend`), or
/// a whole take-and-give-back (`_acquire_release`); `None` for anything else.
fn part(name: &str) -> Option<&'static str> {
    if name.ends_with("_acquire_release") {
        Some("round")
    } else if name.ends_with("_acquire") || name.ends_with("_extend") {
        Some("one")
    } else {
        None
    }
}

/// The rows a row is compared with, most preferred first: the raw floor, the healthy figure
/// (in a group with a stalled node), the peer library.
const BASELINES: [&str; 3] = ["raw", "locksim_healthy", "rslock"];

/// The row of `rows` that `row` is compared with: the first (by [`BASELINES`]) that times the
/// same [`part`].
fn baseline<'a>(rows: &[&'a BenchEstimate], row: &BenchEstimate) -> Option<&'a BenchEstimate> {
    let p = part(&row.name)?;
    BASELINES.iter().find_map(|prefix| {
        rows.iter()
            .find(|e| e.name.starts_with(prefix) && part(&e.name) == Some(p))
            .copied()
    })
}

/// The summary as Markdown: one table per group; within a group, each row's median is also
/// given as a ratio to its baseline: the row of the same group that times the same part
/// (`_acquire`/`_extend`: one round trip; `_acquire_release`: a whole round) and whose name
/// starts with `raw` (the floor), else `locksim_healthy`, else `rslock` (the peer).
pub fn bench_markdown(title: &str, command: &str, results: &BenchResults) -> String {
    let estimates = &results.estimates;
    let mut s = format!(
        "# {title}\n\nMade with `{command}` (criterion medians, 95 % confidence bounds).\n"
    );
    if !results.paired.is_empty() {
        let _ = writeln!(
            s,
            "\n## Interleaved comparisons\n\nEach pair ran alternately, every iteration timing both, so the ratio is measured under the same load. Per-iteration times, row / baseline.\n\n| group | row | baseline | iterations | p50 µs | p99 µs | mean µs | p50 ratio |\n|---|---|---|---|---|---|---|---|"
        );
        for p in &results.paired {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.3}× |",
                p.group,
                p.row,
                p.baseline,
                p.iterations,
                p.row_us.p50,
                p.baseline_us.p50,
                p.row_us.p99,
                p.baseline_us.p99,
                p.row_us.mean,
                p.baseline_us.mean,
                p.ratio()
            );
        }
    }
    let mut groups: Vec<&str> = estimates.iter().map(|e| e.group.as_str()).collect();
    groups.dedup();
    for g in groups {
        let rows: Vec<&BenchEstimate> = estimates.iter().filter(|e| e.group == g).collect();
        let _ = writeln!(
            s,
            "\n## {g}\n\n| benchmark | median | 95 % bounds | ratio | baseline |\n|---|---|---|---|---|"
        );
        for e in &rows {
            let (ratio, vs) = match baseline(&rows, e) {
                Some(b) if b.name == e.name => ("1.00×".into(), "(the baseline)".into()),
                Some(b) => (
                    format!("{:.2}×", e.median_ns.0 / b.median_ns.0),
                    b.name.clone(),
                ),
                None => ("—".into(), "—".into()),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} – {} | {ratio} | {vs} |",
                e.name,
                us(e.median_ns.0),
                us(e.median_ns.1),
                us(e.median_ns.2)
            );
        }
    }
    s
}

/// The summary as an HTML page: the tables and a horizontal bar chart of the medians.
pub fn bench_html(title: &str, command: &str, results: &BenchResults) -> String {
    let estimates = &results.estimates;
    let mut svg = String::new();
    {
        let height = 60 + 26 * estimates.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        // A log axis: the rows span sub-microsecond machine steps to second-long timeouts.
        let max = estimates.iter().map(|e| e.median_ns.2).fold(1.0, f64::max) / 1e3 * 1.5;
        let min = estimates
            .iter()
            .map(|e| e.median_ns.1)
            .fold(f64::INFINITY, f64::min)
            .clamp(1.0, f64::MAX)
            / 1e3
            / 1.5;
        let min = min.min(max / 10.0);
        let n = estimates.len().max(1);
        if let Ok(mut c) = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(300)
            .build_cartesian_2d((min..max).log_scale(), 0.0..n as f64)
        {
            let _ = c
                .configure_mesh()
                .disable_y_mesh()
                .disable_y_axis()
                .x_desc("median, µs (log scale)")
                .draw();
            for (i, e) in estimates.iter().enumerate() {
                let y = i as f64;
                let (m, lo, hi) = (
                    e.median_ns.0 / 1e3,
                    e.median_ns.1 / 1e3,
                    e.median_ns.2 / 1e3,
                );
                let _ = c.draw_series(std::iter::once(Rectangle::new(
                    [(min, y + 0.15), (m, y + 0.85)],
                    BLUE.mix(0.6).filled(),
                )));
                let _ = c.draw_series(std::iter::once(PathElement::new(
                    vec![(lo, y + 0.5), (hi, y + 0.5)],
                    BLACK,
                )));
                // The row's name, right-aligned just left of its bar.
                let name = format!("{}/{}", e.group, e.name);
                let style = TextStyle::from(("sans-serif", 12).into_font())
                    .pos(Pos::new(HPos::Right, VPos::Center));
                let _ = c.draw_series(std::iter::once(
                    EmptyElement::at((min, y + 0.5)) + Text::new(name, (-6, 0), style),
                ));
            }
        }
        let _ = root.present();
    }
    let body = crate::html::markdown_to_html(&bench_markdown(title, command, results));
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head>\n<body>\n{body}<h2>Medians</h2>\n{svg}\n</body></html>\n",
        t = crate::html::escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, group: &str, name: &str, median: f64) {
        let d = dir.join(group).join(name).join("new");
        std::fs::create_dir_all(&d).unwrap();
        let est = serde_json::json!({"median": {"point_estimate": median, "confidence_interval": {"lower_bound": median * 0.9, "upper_bound": median * 1.1}}});
        let bench = serde_json::json!({"group_id": group, "function_id": name, "value_str": null});
        std::fs::write(d.join("estimates.json"), est.to_string()).unwrap();
        std::fs::write(d.join("benchmark.json"), bench.to_string()).unwrap();
    }

    #[test]
    fn reads_criterion_and_gives_ratios_to_the_baseline_of_the_same_part() {
        let dir = std::env::temp_dir().join(format!("locksim-bench-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write(&dir, "single", "raw_set_nx_acquire", 60_000.0);
        write(&dir, "single", "raw_set_nx_acquire_release", 120_000.0);
        write(&dir, "single", "locksim_acquire", 63_000.0);
        write(&dir, "single", "locksim_acquire_release", 150_000.0);
        write(&dir, "single", "locksim_extend", 66_000.0);
        write(&dir, "stalled", "locksim_acquire", 99_000.0);
        write(&dir, "stalled", "locksim_healthy_acquire", 90_000.0);
        write(&dir, "stalled", "rslock_acquire", 500_000_000.0);
        write(&dir, "redlock3", "locksim_acquire", 90_000.0);
        std::fs::write(
            dir.join("single").join("paired.json"),
            r#"[{"row": "locksim_acquire", "baseline": "raw_set_nx_acquire", "iterations": 900,
                 "row_us": {"p50": 61.0, "p99": 90.0, "mean": 65.0},
                 "baseline_us": {"p50": 60.0, "p99": 88.0, "mean": 64.0}}]"#,
        )
        .unwrap();
        let e = read_criterion(&dir).unwrap();
        assert_eq!(e.estimates.len(), 9);
        assert_eq!(e.paired.len(), 1);
        assert_eq!(e.paired[0].group, "single");
        let md = bench_markdown("t", "cargo bench", &e);
        for line in [
            "| locksim_acquire | 63.0 µs | 56.7 µs – 69.3 µs | 1.05× | raw_set_nx_acquire |",
            "| locksim_acquire_release | 150.0 µs | 135.0 µs – 165.0 µs | 1.25× | raw_set_nx_acquire_release |",
            "| locksim_extend | 66.0 µs | 59.4 µs – 72.6 µs | 1.10× | raw_set_nx_acquire |",
            "| raw_set_nx_acquire | 60.0 µs | 54.0 µs – 66.0 µs | 1.00× | (the baseline) |",
            "| locksim_acquire | 99.0 µs | 89.1 µs – 108.9 µs | 1.10× | locksim_healthy_acquire |",
            "| rslock_acquire | 500.00 ms | 450.00 ms – 550.00 ms | 5555.56× | locksim_healthy_acquire |",
            "| locksim_acquire | 90.0 µs | 81.0 µs – 99.0 µs | — | — |",
            "| single | locksim_acquire | raw_set_nx_acquire | 900 | 61.0 / 60.0 | 90.0 / 88.0 | 65.0 / 64.0 | 1.017× |",
        ] {
            assert!(md.contains(line), "{line}\n{md}");
        }
        let html = bench_html("t", "cargo bench", &e);
        assert!(html.contains("<svg") && html.contains("<table>"));
        assert_eq!(html, bench_html("t", "cargo bench", &e));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(read_criterion(&dir)
            .unwrap_err()
            .to_string()
            .contains("run `cargo bench` first"));
    }
}
