//! The TTL-tuning report: a table, and charts of violation rate and unavailability against
//! TTL with the recommended TTL marked, one series per watchdog setting and retry policy.

use checker::tune::{Recommendation, Setting, TunePoint, TuneReport};
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

/// Whether the sweep tried more than one retry policy (then every label names its policy).
fn several_retries(report: &TuneReport) -> bool {
    report
        .recommended
        .iter()
        .any(|r| r.setting.retry != report.recommended[0].setting.retry)
}

/// A series' name: its watchdog setting, and its retry policy when several were swept.
fn label(setting: &Setting, with_retry: bool) -> String {
    if with_retry {
        format!("watchdog {}, retry {}", wd(setting.watchdog), setting.retry)
    } else {
        format!("watchdog {}", wd(setting.watchdog))
    }
}

/// The colour of the `i`th series (the timeline's client palette).
fn color(i: usize) -> RGBColor {
    crate::timeline::PALETTE[i % crate::timeline::PALETTE.len()]
}

/// The sweep `report` as Markdown; `command` is what produced it.
pub fn sweep_markdown(report: &TuneReport, command: &str) -> String {
    let rows = &report.points;
    let mut s = String::new();
    let _ = writeln!(s, "# TTL sweep: {}\n", report.scenario);
    let _ = writeln!(s, "Made with `{command}`.\n");
    let with_retry = several_retries(report);
    for Recommendation {
        setting, ttl_ms, ..
    } in &report.recommended
    {
        let name = label(setting, with_retry);
        let _ = match ttl_ms {
            Some(t) => writeln!(
                s,
                "- {name}: **recommended TTL {t} ms** — the smallest swept TTL with no mutual-exclusion violation and no stale write in any seed (rule of thumb 3 × work = {:.0} ms).",
                report.three_x_rule_ms
            ),
            None => writeln!(
                s,
                "- {name}: **no swept TTL was safe** in every seed (rule of thumb 3 × work = {:.0} ms).",
                report.three_x_rule_ms
            ),
        };
    }
    let _ = writeln!(
        s,
        "\n| watchdog | retry | TTL ms | seeds | mutual exclusion broken | stale write accepted | unavailable after holder crash, ms (median / worst) | acquire ms (p50 / p99) | acquisitions given up | sections/s |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} % | {:.1} % | {} | {} | {:.1} % | {:.2} |",
            wd(r.setting.watchdog),
            r.setting.retry,
            r.ttl_ms,
            r.seeds,
            100.0 * rate(r.mutual_exclusion_violations, r.seeds),
            100.0 * rate(r.unsafe_write_violations, r.seeds),
            pair(r.unavailable_ms),
            pair(r.acquire_ms),
            100.0 * rate(r.gave_up, r.acquisitions),
            r.throughput_per_s
        );
    }
    let unproven: Vec<&TunePoint> = rows.iter().filter(|r| r.inconclusive > 0).collect();
    if !unproven.is_empty() {
        let _ = writeln!(
            s,
            "\n**Inconclusive seeds** (cut short by the simulator's event budget, or an `after` condition never seen): a setting with any is not called safe."
        );
        for r in unproven {
            let _ = writeln!(
                s,
                "- {}, TTL {} ms: {} of {} seeds",
                label(&r.setting, with_retry),
                r.ttl_ms,
                r.inconclusive,
                r.seeds
            );
        }
    }
    s
}

/// A chart of one series per setting (watchdog × retry policy) against TTL (log axis, the
/// swept TTLs labelled), each series' recommended TTL marked by a vertical line, and the
/// legend below the plot; as an SVG string.
fn chart(
    title: &str,
    y_label: &str,
    report: &TuneReport,
    y: impl Fn(&TunePoint) -> Option<f64>,
) -> String {
    let rows = &report.points;
    let with_retry = several_retries(report);
    let series = &report.recommended;
    // Recommended TTL → the series recommending it.
    let mut marks: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, r) in series.iter().enumerate() {
        if let Some(t) = r.ttl_ms {
            marks.entry(t).or_default().push(i);
        }
    }
    const LEGEND_ROW: u32 = 18;
    let height = 340 + LEGEND_ROW * series.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let (plot, legend) = root.split_vertically(330);
        let mut ttls: Vec<u64> = rows.iter().map(|r| r.ttl_ms).collect();
        ttls.sort_unstable();
        ttls.dedup();
        let lo = ttls.first().copied().unwrap_or(1).max(1) as f64;
        let hi = ttls.last().copied().unwrap_or(2).max(2) as f64;
        // Headroom above the data for one text line per recommended TTL.
        let headroom = 1.1 + 0.08 * marks.len() as f64;
        let ymax = rows.iter().filter_map(&y).fold(0.0, f64::max).max(1e-9) * headroom;
        let x_axis = (lo * 0.8..hi * 1.25)
            .log_scale()
            .with_key_points(ttls.iter().map(|t| *t as f64).collect());
        let built = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_axis, 0.0..ymax);
        let Ok(mut c) = built else {
            return svg_error(title);
        };
        let _ = c
            .configure_mesh()
            .light_line_style(WHITE)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .x_desc("TTL (ms, log scale)")
            .y_desc(y_label)
            .draw();
        for (i, s) in series.iter().enumerate() {
            let color = color(i);
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.setting == s.setting)
                .filter_map(|r| y(r).map(|v| (r.ttl_ms as f64, v)))
                .collect();
            let _ = c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)));
            let _ = c.draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())));
        }
        for (k, (t, who)) in marks.iter().enumerate() {
            // One series: its colour; several: black, saying how many.
            let (line, text) = match who.as_slice() {
                [one] => (color(*one), format!("recommended {t} ms")),
                _ if who.len() == series.len() => {
                    (BLACK, format!("recommended {t} ms (all series)"))
                }
                _ => (BLACK, format!("recommended {t} ms ({} series)", who.len())),
            };
            let x = *t as f64;
            let _ = c.draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, ymax)],
                line.mix(0.5).stroke_width(1),
            )));
            let _ = c.draw_series(std::iter::once(Text::new(
                text,
                (x, ymax * (0.97 - 0.08 * k as f64)),
                ("sans-serif", 13).into_font().color(&line),
            )));
        }
        for (i, s) in series.iter().enumerate() {
            let color = color(i);
            let y = (i as u32 * LEGEND_ROW + LEGEND_ROW / 2) as i32;
            let _ = legend.draw(&PathElement::new(
                vec![(72, y), (96, y)],
                color.stroke_width(2),
            ));
            let _ = legend.draw(&Text::new(
                label(&s.setting, with_retry),
                (104, y - 7),
                ("sans-serif", 13).into_font(),
            ));
        }
        let _ = root.present();
    }
    svg
}

fn svg_error(title: &str) -> String {
    format!("<p>chart “{title}” could not be drawn</p>")
}

/// The sweep `report` as a self-contained HTML page with two SVG charts.
pub fn sweep_html(report: &TuneReport, command: &str) -> String {
    let violations = chart(
        "Seeds that broke the lock (mutual exclusion or stale write)",
        "fraction of seeds",
        report,
        |r| {
            Some(rate(
                r.mutual_exclusion_violations.max(r.unsafe_write_violations),
                r.seeds,
            ))
        },
    );
    let unavailable = chart(
        "Unavailability after the holder crashed (median)",
        "ms",
        report,
        |r| r.unavailable_ms.map(|u| u.0),
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
    use lock_core::RetryPolicy;

    fn points(retry: &RetryPolicy, safe_from: u64) -> Vec<TunePoint> {
        [250, 1000, 4000]
            .into_iter()
            .map(|ttl_ms| TunePoint {
                ttl_ms,
                setting: Setting {
                    watchdog: false,
                    retry: retry.clone(),
                },
                seeds: 10,
                mutual_exclusion_violations: if ttl_ms < safe_from { 9 } else { 0 },
                unsafe_write_violations: 0,
                unavailable_ms: Some((ttl_ms as f64, ttl_ms as f64 * 1.2)),
                acquire_ms: Some((0.4, 2.0)),
                acquisitions: 40,
                gave_up: 2,
                throughput_per_s: 1.5,
                inconclusive: 0,
            })
            .collect()
    }

    fn report() -> TuneReport {
        let retry = RetryPolicy::default();
        TuneReport {
            scenario: "s".into(),
            points: points(&retry, 4000),
            three_x_rule_ms: 900.0,
            recommended: vec![Recommendation {
                setting: Setting {
                    watchdog: false,
                    retry,
                },
                ttl_ms: Some(4000),
            }],
        }
    }

    /// Two retry policies: the patient one is safe from 1000 ms, the other never.
    fn two_policies() -> TuneReport {
        let patient: RetryPolicy = "max=forever,base=10,cap=100".parse().unwrap();
        let hasty: RetryPolicy = "none".parse().unwrap();
        let mut pts = points(&patient, 1000);
        pts.extend(points(&hasty, u64::MAX));
        let rec = |retry: &RetryPolicy, ttl_ms| Recommendation {
            setting: Setting {
                watchdog: false,
                retry: retry.clone(),
            },
            ttl_ms,
        };
        TuneReport {
            scenario: "s".into(),
            points: pts,
            three_x_rule_ms: 900.0,
            recommended: vec![rec(&patient, Some(1000)), rec(&hasty, None)],
        }
    }

    const COMMAND: &str = "locksim tune s.json";

    #[test]
    fn markdown_names_the_recommendation_and_every_row() {
        let md = sweep_markdown(&report(), COMMAND);
        assert!(md.contains("**recommended TTL 4000 ms**"), "{md}");
        assert!(md.contains("3 × work = 900 ms"));
        assert!(
            md.contains("| off | max=5,base=50,cap=1000,jitter=1 | 250 | 10 | 90.0 % |"),
            "{md}"
        );
        assert!(md.contains("| 5.0 % | 1.50 |"), "2 of 40 gave up: {md}");
        assert_eq!(md.matches("\n| off |").count(), 3);
        assert!(md.contains("- watchdog off: **recommended"), "{md}");
        assert!(!md.contains("Inconclusive seeds"), "{md}");
    }

    #[test]
    fn inconclusive_seeds_are_listed_and_unsafe() {
        let mut r = report();
        r.points[2].inconclusive = 3;
        assert!(!r.points[2].safe());
        let md = sweep_markdown(&r, COMMAND);
        assert!(md.contains("**Inconclusive seeds**"), "{md}");
        assert!(
            md.contains("- watchdog off, TTL 4000 ms: 3 of 10 seeds"),
            "{md}"
        );
    }

    #[test]
    fn several_retry_policies_are_named_and_drawn_apart() {
        let r = two_policies();
        let md = sweep_markdown(&r, COMMAND);
        assert!(
            md.contains("- watchdog off, retry max=forever,base=10,cap=100,jitter=1: **recommended TTL 1000 ms**"),
            "{md}"
        );
        assert!(
            md.contains(
                "- watchdog off, retry max=1,base=50,cap=1000,jitter=1: **no swept TTL was safe**"
            ),
            "{md}"
        );
        let html = sweep_html(&r, COMMAND);
        // Per series and chart, a line and its legend key, in a colour of its own.
        for colour in ["#0072B2", "#E69F00"] {
            let line = format!("stroke=\"{colour}\" stroke-width=\"2\"");
            assert_eq!(html.matches(&line).count(), 4, "{colour}: {html}");
        }
        assert_eq!(html.matches("recommended 1000 ms").count(), 2);
        // The swept TTLs label the axis.
        for ttl in ["250", "1000", "4000"] {
            assert!(html.contains(&format!("\n{ttl}\n</text>")), "{ttl}: {html}");
        }
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
