//! The TTL-tuning report: what each swept setting measured, with its break rates' 95 %
//! intervals and, against a risk target, its decision ([`markdown`]); the trade-off between
//! risk and unavailability drawn ([`tradeoff`]); and violation rate and unavailability
//! against TTL with the recommended TTL marked ([`by_ttl`]). One series per watchdog setting
//! and retry policy.

mod by_ttl;
mod format;
mod markdown;
mod placer;
mod tradeoff;

use checker::tune::{Setting, TunePoint, TuneReport};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

pub use markdown::sweep_markdown;

fn wd(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// `n` of `of` as a fraction (0 when `of` is 0).
fn fraction(n: u64, of: u64) -> f64 {
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

/// The points of `setting`'s series, TTLs ascending as the sweep lists them.
fn series_points<'a>(
    report: &'a TuneReport,
    setting: &'a Setting,
) -> impl Iterator<Item = &'a TunePoint> + 'a {
    report.points.iter().filter(move |p| &p.setting == setting)
}

/// The legend's rows below a chart: per series, its line and dot in its colour and its name;
/// row `i` is centred `i × row` + `row / 2` pixels down `area`.
fn legend_series<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, report: &TuneReport, row: i32) {
    let with_retry = several_retries(report);
    for (i, s) in report.recommended.iter().enumerate() {
        let y = i as i32 * row + row / 2;
        let ink = color(i);
        let _ = area.draw(&PathElement::new(
            vec![(72, y), (96, y)],
            ink.stroke_width(2),
        ));
        let _ = area.draw(&Circle::new((84, y), 4, ink.filled()));
        let _ = area.draw(&Text::new(
            label(&s.setting, with_retry),
            (104, y - 7),
            ("sans-serif", 13).into_font(),
        ));
    }
}

/// A downward triangle centred on `(x, y)`, closed (the last point is the first): "the
/// rate is below this".
fn triangle((x, y): (i32, i32)) -> Vec<(i32, i32)> {
    vec![(x - 5, y - 4), (x + 5, y - 4), (x, y + 5), (x - 5, y - 4)]
}

/// Each recommended TTL and the series (indices into `recommended`) recommending it.
fn recommended_ttls(report: &TuneReport) -> BTreeMap<u64, Vec<usize>> {
    let mut marks: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, r) in report.recommended.iter().enumerate() {
        if let Some(t) = r.ttl_ms {
            marks.entry(t).or_default().push(i);
        }
    }
    marks
}

/// How a chart names recommended TTL `t` of the series `who`: in the series' colour when it
/// is one, else in black saying how many.
fn recommended_label(t: u64, who: &[usize], report: &TuneReport) -> (RGBColor, String) {
    match who {
        [one] => (color(*one), format!("recommended {t} ms")),
        _ if who.len() == report.recommended.len() => {
            (BLACK, format!("recommended {t} ms (all series)"))
        }
        _ => (BLACK, format!("recommended {t} ms ({} series)", who.len())),
    }
}

/// In place of a chart that could not be drawn.
fn svg_error(title: &str) -> String {
    format!("<p>chart “{title}” could not be drawn</p>")
}

/// The sweep `report` as a self-contained HTML page: the tables, the trade-off chart, and
/// the break rate and the unavailability against TTL.
pub fn sweep_html(report: &TuneReport, command: &str) -> String {
    let tradeoff = tradeoff::chart(report);
    let violations = by_ttl::chart(
        "Seeds that broke the lock (mutual exclusion or stale write)",
        "fraction of seeds",
        report,
        |r| Some(r.per_seed.estimate()),
    );
    let unavailable = by_ttl::chart(
        "Unavailability after the holder crashed (median)",
        "ms",
        report,
        |r| r.unavailable_ms.map(|u| u.0),
    );
    let table = crate::html::markdown_to_html(&sweep_markdown(report, command));
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>TTL sweep: {t}</title>\n<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head>\n<body>\n{table}\n<h2>Charts</h2>\n{tradeoff}\n{violations}\n{unavailable}\n</body></html>\n",
        t = crate::html::escape(&report.scenario)
    )
}

#[cfg(test)]
mod tests;
