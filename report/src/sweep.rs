//! The TTL-tuning report: a table, and charts of violation rate and unavailability against
//! TTL with the recommended TTL marked.

use explore::tune::{TunePoint, TuneReport};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;

fn wd(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

fn pair(p: Option<(f64, f64)>) -> String {
    p.map_or("—".into(), |(a, b)| format!("{a:.1} / {b:.1}"))
}

fn rate(n: u64, of: u64) -> f64 {
    n as f64 / of.max(1) as f64
}

/// The sweep `report` as Markdown; `command` is what produced it.
pub fn sweep_markdown(report: &TuneReport, command: &str) -> String {
    let rows = &report.points;
    let mut s = String::new();
    let _ = writeln!(s, "# TTL sweep: {}\n", report.scenario);
    let _ = writeln!(s, "Made with `{command}`.\n");
    for (watchdog, ttl) in &report.recommended {
        let _ = match ttl {
            Some(t) => writeln!(
                s,
                "- watchdog {}: **recommended TTL {t} ms** — the smallest swept TTL with no mutual-exclusion violation and no stale write in any seed (rule of thumb 3 × work = {:.0} ms).",
                wd(*watchdog),
                report.three_x_rule_ms
            ),
            None => writeln!(
                s,
                "- watchdog {}: **no swept TTL was safe** in every seed (rule of thumb 3 × work = {:.0} ms).",
                wd(*watchdog),
                report.three_x_rule_ms
            ),
        };
    }
    let _ = writeln!(
        s,
        "\n| watchdog | TTL ms | seeds | mutual exclusion broken | stale write accepted | unavailable after holder crash, ms (median / worst) | acquire ms (p50 / p99) | sections/s |\n|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} % | {:.1} % | {} | {} | {:.2} |",
            wd(r.watchdog),
            r.ttl_ms,
            r.seeds,
            100.0 * rate(r.mutual_exclusion_violations, r.seeds),
            100.0 * rate(r.unsafe_write_violations, r.seeds),
            pair(r.unavailable_ms),
            pair(r.acquire_ms),
            r.throughput_per_s
        );
    }
    s
}

/// A chart of one series per watchdog setting against TTL (log axis), as an SVG string.
fn chart(
    title: &str,
    y_label: &str,
    rows: &[TunePoint],
    y: impl Fn(&TunePoint) -> Option<f64>,
    marks: &BTreeMap<bool, Option<u64>>,
) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 360)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let lo = rows.iter().map(|r| r.ttl_ms).min().unwrap_or(1).max(1) as f64;
        let hi = rows.iter().map(|r| r.ttl_ms).max().unwrap_or(2) as f64;
        let ymax = rows.iter().filter_map(&y).fold(0.0, f64::max).max(1e-9) * 1.1;
        let built = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((lo * 0.8..hi * 1.25).log_scale(), 0.0..ymax);
        let Ok(mut c) = built else {
            return svg_error(title);
        };
        let ttls: Vec<u64> = rows.iter().map(|r| r.ttl_ms).collect();
        let _ = c
            .configure_mesh()
            .light_line_style(WHITE)
            .x_labels(ttls.len().max(2))
            .x_label_formatter(&|v| {
                // Label only the swept TTLs.
                let near = ttls.iter().find(|t| ((**t as f64) / v - 1.0).abs() < 0.05);
                near.map(|t| t.to_string()).unwrap_or_default()
            })
            .x_desc("TTL (ms, log scale)")
            .y_desc(y_label)
            .draw();
        for (i, watchdog) in [false, true].into_iter().enumerate() {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.watchdog == watchdog)
                .filter_map(|r| y(r).map(|v| (r.ttl_ms as f64, v)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let color = if i == 0 { RED } else { BLUE };
            let label = format!("watchdog {}", wd(watchdog));
            if let Ok(series) = c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2))) {
                series
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            }
            let _ = c.draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())));
        }
        for (watchdog, ttl) in marks {
            if let Some(t) = ttl {
                let color = if *watchdog { BLUE } else { RED };
                let _ = c.draw_series(std::iter::once(PathElement::new(
                    vec![(*t as f64, 0.0), (*t as f64, ymax)],
                    color.mix(0.5).stroke_width(1),
                )));
                let _ = c.draw_series(std::iter::once(Text::new(
                    format!(
                        "recommended {t} ms ({})",
                        if *watchdog { "wd on" } else { "wd off" }
                    ),
                    (*t as f64, ymax * if *watchdog { 0.92 } else { 0.84 }),
                    ("sans-serif", 13).into_font().color(&color),
                )));
            }
        }
        let _ = c
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw();
        let _ = root.present();
    }
    svg
}

fn svg_error(title: &str) -> String {
    format!("<p>chart “{title}” could not be drawn</p>")
}

/// The sweep `report` as a self-contained HTML page with two SVG charts.
pub fn sweep_html(report: &TuneReport, command: &str) -> String {
    let rows = &report.points;
    let violations = chart(
        "Seeds that broke the lock (mutual exclusion or stale write)",
        "fraction of seeds",
        rows,
        |r| {
            Some(rate(
                r.mutual_exclusion_violations.max(r.unsafe_write_violations),
                r.seeds,
            ))
        },
        &report.recommended,
    );
    let unavailable = chart(
        "Unavailability after the holder crashed (median)",
        "ms",
        rows,
        |r| r.unavailable_ms.map(|u| u.0),
        &report.recommended,
    );
    let table = crate::html::markdown_to_html(&sweep_markdown(report, command));
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>TTL sweep: {t}</title>\n<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head>\n<body>\n{table}\n<h2>Charts</h2>\n{violations}\n{unavailable}\n</body></html>\n",
        t = crate::html::escape(&report.scenario)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> TuneReport {
        let points = [(250, 9), (1000, 2), (4000, 0)]
            .into_iter()
            .map(|(ttl_ms, me)| TunePoint {
                ttl_ms,
                watchdog: false,
                seeds: 10,
                mutual_exclusion_violations: me,
                unsafe_write_violations: 0,
                unavailable_ms: Some((ttl_ms as f64, ttl_ms as f64 * 1.2)),
                acquire_ms: Some((0.4, 2.0)),
                throughput_per_s: 1.5,
            })
            .collect();
        TuneReport {
            scenario: "s".into(),
            points,
            three_x_rule_ms: 900.0,
            recommended: BTreeMap::from([(false, Some(4000))]),
        }
    }

    const COMMAND: &str = "locksim tune s.json";

    #[test]
    fn markdown_names_the_recommendation_and_every_row() {
        let md = sweep_markdown(&report(), COMMAND);
        assert!(md.contains("**recommended TTL 4000 ms**"), "{md}");
        assert!(md.contains("3 × work = 900 ms"));
        assert!(md.contains("| off | 250 | 10 | 90.0 % |"), "{md}");
        assert_eq!(md.matches("\n| off |").count(), 3);
    }

    #[test]
    fn html_has_two_charts_and_is_deterministic() {
        let html = sweep_html(&report(), COMMAND);
        assert_eq!(html.matches("<svg").count(), 2, "{html}");
        assert!(html.contains("recommended 4000 ms"));
        assert!(html.contains("<table>"));
        assert_eq!(html, sweep_html(&report(), COMMAND));
    }
}
