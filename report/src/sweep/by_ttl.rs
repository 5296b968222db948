//! Charts of one measure against TTL: one series per setting (watchdog × retry policy), each
//! series' recommended TTL marked by a vertical line.

use super::{color, legend_series, recommended_label, recommended_ttls, series_points, svg_error};
use checker::tune::{TunePoint, TuneReport};
use plotters::prelude::*;

/// A chart of `y` against TTL (log axis, the TTLs given in `--ttl-ms` labelled), one series
/// per setting, each series' recommended TTL marked by a vertical line, and the legend below
/// the plot; as an SVG string.
pub(super) fn chart(
    title: &str,
    y_label: &str,
    report: &TuneReport,
    y: impl Fn(&TunePoint) -> Option<f64>,
) -> String {
    let rows = &report.points;
    let series = &report.recommended;
    let marks = recommended_ttls(report);
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
        // Label the swept TTLs; bisection's may be too close together to read.
        let mut keys: Vec<f64> = rows
            .iter()
            .filter(|r| !r.bisected)
            .map(|r| r.ttl_ms as f64)
            .collect();
        keys.sort_by(f64::total_cmp);
        keys.dedup();
        if keys.is_empty() {
            keys = ttls.iter().map(|t| *t as f64).collect();
        }
        let lo = ttls.first().copied().unwrap_or(1).max(1) as f64;
        let hi = ttls.last().copied().unwrap_or(2).max(2) as f64;
        // Headroom above the data for one text line per recommended TTL.
        let headroom = 1.1 + 0.08 * marks.len() as f64;
        let ymax = rows.iter().filter_map(&y).fold(0.0, f64::max).max(1e-9) * headroom;
        let x_axis = (lo * 0.8..hi * 1.25).log_scale().with_key_points(keys);
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
            let pts: Vec<(f64, f64)> = series_points(report, &s.setting)
                .filter_map(|r| y(r).map(|v| (r.ttl_ms as f64, v)))
                .collect();
            let _ = c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)));
            let _ = c.draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())));
        }
        for (k, (t, who)) in marks.iter().enumerate() {
            let (line, text) = recommended_label(*t, who, report);
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
        legend_series(&legend, report, LEGEND_ROW as i32);
        let _ = root.present();
    }
    svg
}
