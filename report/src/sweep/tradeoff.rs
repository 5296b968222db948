//! The trade-off chart: the break rate per critical section (log axis, with its 95 %
//! interval) against the unavailability after a holder crash (median), one point per TTL and
//! one series per setting, each series' recommended point ringed, and the risk target
//! (`--max-risk`) as a dashed line.

use super::format::risk;
use super::placer::{text_w, Placer};
use super::{
    color, legend_series, recommended_label, recommended_ttls, series_points, svg_error, triangle,
};
use checker::tune::{TunePoint, TuneReport};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

const TITLE: &str = "Risk per critical section against unavailability after a holder crash";
const WIDTH: u32 = 760;
const PLOT_H: u32 = 440;
const LEGEND_ROW: i32 = 18;
/// The risk target's line (red: the side of it above is too risky).
const TARGET: RGBColor = RGBColor(215, 25, 28);
/// Text sizes, as plotters takes them: TTL labels, other labels.
const SMALL: f64 = 11.0;
const LABEL: f64 = 13.0;

/// A point as drawn: its series (index into `recommended`), the point, and its x (the
/// median unavailability, ms).
struct Dot<'a> {
    series: usize,
    point: &'a TunePoint,
    x: f64,
}

impl Dot<'_> {
    /// Whether a break was seen (then the marker is the estimate; else the upper bound).
    fn seen(&self) -> bool {
        self.point.per_section.hits > 0
    }

    /// The marker's y: the estimate, or with no break seen the interval's upper bound.
    fn y(&self) -> f64 {
        if self.seen() {
            self.point.per_section.estimate()
        } else {
            self.point.per_section.high
        }
    }
}

/// Every point with a holder crash (others have no unavailability to place), by series.
fn dots(report: &TuneReport) -> Vec<Dot<'_>> {
    let mut out = Vec::new();
    for (series, rec) in report.recommended.iter().enumerate() {
        for point in series_points(report, &rec.setting) {
            if let Some((median, _)) = point.unavailable_ms {
                out.push(Dot {
                    series,
                    point,
                    x: median,
                });
            }
        }
    }
    out
}

/// The risk axis' range: a factor of 2 beyond every positive bound, estimate and target.
fn y_range(dots: &[Dot<'_>], max_risk: Option<f64>) -> (f64, f64) {
    let values = dots
        .iter()
        .flat_map(|d| {
            let r = &d.point.per_section;
            [r.low, r.estimate(), r.high]
        })
        .chain(max_risk)
        .filter(|v| *v > 0.0 && v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if hi == 0.0 {
        return (1e-6, 1.0);
    }
    let lo = lo / 2.0;
    (lo, (hi * 2.0).max(lo * 10.0))
}

/// The trade-off chart of `report`, as an SVG string (a note in its place when no setting
/// saw a holder crash).
pub(super) fn chart(report: &TuneReport) -> String {
    let dots = dots(report);
    if dots.is_empty() {
        return format!("<p>{TITLE}: no holder crashed in any setting, so there is no unavailability to draw.</p>");
    }
    let series = &report.recommended;
    let undrawn = report.points.len() - dots.len();
    let legend_rows = series.len() as i32 + 1 + i32::from(undrawn > 0);
    let height = PLOT_H + (LEGEND_ROW * legend_rows) as u32 + 10;
    let (ylo, yhi) = y_range(&dots, report.max_risk);
    let xmax = dots.iter().map(|d| d.x).fold(1.0, f64::max) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let (plot, legend) = root.split_vertically(PLOT_H);
        let built = ChartBuilder::on(&plot)
            .caption(TITLE, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..xmax, (ylo..yhi).log_scale());
        let Ok(mut c) = built else {
            return svg_error(TITLE);
        };
        let _ = c
            .configure_mesh()
            .light_line_style(WHITE)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .x_desc("unavailable after a holder crash, ms (median)")
            .y_desc("broken critical sections (log scale)")
            .draw();
        let px = |x: f64, y: f64| c.backend_coord(&(x, y.clamp(ylo, yhi)));
        let mut labels = Placer::default();
        for d in &dots {
            let (x, y) = px(d.x, d.y());
            labels.take((x - 6, y - 6, 12, 12));
        }
        // Series lines first, under the markers.
        for (i, s) in series.iter().enumerate() {
            let line: Vec<(i32, i32)> = dots
                .iter()
                .filter(|d| d.series == i && d.point.setting == s.setting)
                .map(|d| px(d.x, d.y()))
                .collect();
            let _ = plot.draw(&PathElement::new(line, color(i).mix(0.6).stroke_width(1)));
        }
        if let Some(p) = report.max_risk {
            let (x0, y) = px(0.0, p);
            let (x1, _) = px(xmax, p);
            let _ = plot.draw(&DashedPathElement::new(
                vec![(x0, y), (x1, y)],
                6,
                4,
                TARGET.stroke_width(2),
            ));
            let text = format!("max risk {}", risk(p));
            let w = text_w(&text, LABEL);
            let at = labels.must((x1 - w - 14, y), w, LABEL as i32);
            let _ = plot.draw(&Text::new(
                text,
                at,
                ("sans-serif", LABEL).into_font().color(&TARGET),
            ));
        }
        for d in &dots {
            draw_dot(
                &plot,
                d,
                px(d.x, d.y()),
                px(d.x, d.point.per_section.low),
                px(d.x, d.point.per_section.high),
            );
        }
        // The recommended points, ringed and named; then the TTLs where there is room.
        for (t, who) in recommended_ttls(report) {
            let at: Vec<(i32, i32)> = who
                .iter()
                .filter_map(|i| dots.iter().find(|d| d.series == *i && d.point.ttl_ms == t))
                .map(|d| px(d.x, d.y()))
                .collect();
            for p in &at {
                let _ = plot.draw(&Circle::new(*p, 9, BLACK.stroke_width(2)));
            }
            let Some(first) = at.first() else { continue };
            let (ink, text) = recommended_label(t, &who, report);
            let w = text_w(&text, LABEL);
            let spot = labels.must(*first, w, LABEL as i32);
            let _ = plot.draw(&Text::new(
                text,
                spot,
                ("sans-serif", LABEL).into_font().color(&ink),
            ));
        }
        for d in &dots {
            let text = d.point.ttl_ms.to_string();
            let w = text_w(&text, SMALL);
            if let Some(spot) = labels.near(px(d.x, d.y()), w, SMALL as i32) {
                let _ = plot.draw(&Text::new(
                    text,
                    spot,
                    ("sans-serif", SMALL).into_font().color(&color(d.series)),
                ));
            }
        }
        draw_legend(&legend, report, undrawn);
        let _ = root.present();
    }
    svg
}

/// One point: with a break seen, a dot at the estimate and a bar over the interval; without,
/// a downward triangle at the upper bound and a bar from it down (the rate is below).
fn draw_dot<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &Dot<'_>,
    at: (i32, i32),
    low: (i32, i32),
    high: (i32, i32),
) {
    let ink = color(d.series);
    let x = at.0;
    // `low` is the axis' bottom when the interval starts at 0.
    let _ = area.draw(&PathElement::new(vec![low, high], ink.stroke_width(1)));
    let _ = area.draw(&PathElement::new(
        vec![(x - 4, high.1), (x + 4, high.1)],
        ink.stroke_width(1),
    ));
    if d.seen() {
        let _ = area.draw(&PathElement::new(
            vec![(x - 4, low.1), (x + 4, low.1)],
            ink.stroke_width(1),
        ));
        let _ = area.draw(&Circle::new(at, 4, ink.filled()));
    } else {
        let _ = area.draw(&Polygon::new(triangle(at), WHITE.filled()));
        let _ = area.draw(&PathElement::new(triangle(at), ink.stroke_width(2)));
    }
}

/// Below the plot: a row per series, then what the glyphs mean, then how many points had
/// no holder crash to place.
fn draw_legend<DB: DrawingBackend>(
    legend: &DrawingArea<DB, Shift>,
    report: &TuneReport,
    undrawn: usize,
) {
    let font = || ("sans-serif", LABEL).into_font();
    let row_y = |i: usize| i as i32 * LEGEND_ROW + LEGEND_ROW / 2;
    legend_series(legend, report, LEGEND_ROW);
    let y = row_y(report.recommended.len());
    let _ = legend.draw(&Circle::new((76, y), 4, BLACK.filled()));
    let _ = legend.draw(&Text::new(
        "estimate, bar: 95 % interval",
        (86, y - 7),
        font(),
    ));
    let _ = legend.draw(&PathElement::new(triangle((290, y)), BLACK.stroke_width(2)));
    let _ = legend.draw(&Text::new(
        "no break seen: 95 % upper bound",
        (300, y - 7),
        font(),
    ));
    let _ = legend.draw(&Circle::new((540, y), 8, BLACK.stroke_width(2)));
    let _ = legend.draw(&Text::new("recommended", (554, y - 7), font()));
    if undrawn > 0 {
        let y = row_y(report.recommended.len() + 1);
        let text = format!(
            "{undrawn} setting(s) saw no holder crash: no unavailability to place, not drawn"
        );
        let _ = legend.draw(&Text::new(
            text,
            (72, y - 7),
            font().color(&RGBColor(120, 120, 120)),
        ));
    }
}
