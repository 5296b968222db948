//! A run's timeline as a self-contained HTML page with one inline SVG chart.
//!
//! [`timeline_html`] builds a [`Model`] of the history (lanes, spans, marks), lays the chart
//! out ([`layout`]), draws it part by part with plotters' SVG backend, and wraps it in the
//! page ([`page`]). The chart is drawn back to front: the lanes' frames, their clocks, the
//! headings, the time axis, the mutual-exclusion windows, each client lane ([`lanes`]), each
//! node lane, the faults ([`faults`]), the other findings ([`findings`]) and the legend
//! ([`legend`]). Shapes and glyphs are in [`shapes`], colours and fonts in [`style`].

mod axis;
mod faults;
mod findings;
mod lanes;
mod layout;
mod legend;
mod page;
mod shapes;
mod style;
#[cfg(test)]
mod tests;

pub(crate) use style::PALETTE;

use crate::html::escape;
use crate::model::Model;
use checker::{Record, Verdict};
use layout::{Layout, WIDTH};
use legend::Swatch;
use plotters::prelude::*;
use shapes::{Area, DrawResult};
use style::{colour_of, holder_colours};

/// Renders a run as a self-contained HTML page: one SVG timeline chart (drawn with plotters'
/// SVG backend, inline; no external CSS, scripts or fonts) and, below it, the checker's
/// findings with the faults before each, the verdict per property and the fault list.
///
/// The chart has one true-time axis in milliseconds and:
/// - one lane per client: its holding intervals (`Acquired` until `SectionEnded`,
///   `ClientCrashed` or the end of the history) as bars in the client's colour, acquiring
///   periods as thin lines, writes as markers (accepted: filled dot; rejected: crossed ring),
///   failed attempts, give-ups, lost locks, extensions and crashes as small marks;
/// - one lane per Redis node that reported `KeyChanged` (the simulator does; real Redis
///   histories have none, and the node lanes are left out): which client's value the lock key
///   holds there, coloured by holder, with set / extended / deleted / wiped / resynced marks
///   (hollow when the change arrived through replication) and, inferred from the fault
///   descriptions, when the node was down or paused;
/// - every fault as a labelled vertical dashed line;
/// - each `mutual_exclusion` finding's overlap window shaded red across the client lanes, and
///   every other finding as red marks at its times on its clients' lanes;
/// - a legend.
///
/// The output depends only on the arguments: the same input gives the same bytes.
pub fn timeline_html(title: &str, records: &[Record], verdict: &Verdict) -> String {
    let model = Model::from_records(records);
    let svg = match render_svg(&model, verdict) {
        Ok(svg) => svg,
        Err(e) => format!(
            "<p class=\"error\">the chart could not be drawn: {}</p>",
            escape(&e)
        ),
    };
    page::page(title, &model, verdict, &svg)
}

/// Draws the chart of `model` and `verdict` as an SVG document.
fn render_svg(model: &Model, verdict: &Verdict) -> Result<String, String> {
    let items = legend::legend_items(model);
    let positions = legend::legend_positions(&items);
    let legend_rows = positions.iter().map(|(r, _)| r + 1).max().unwrap_or(0);
    let layout = Layout::new(model, legend_rows);
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (WIDTH, layout.height.max(1) as u32))
            .into_drawing_area();
        draw(&area, model, verdict, &layout, &items, &positions).map_err(|e| e.to_string())?;
        area.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Draws the chart, back to front, one part after another (see the module docs).
fn draw(
    area: &Area,
    model: &Model,
    verdict: &Verdict,
    l: &Layout,
    items: &[(Swatch, String)],
    positions: &[(i32, i32)],
) -> DrawResult {
    area.fill(&WHITE)?;
    let colours = holder_colours(model);
    for (i, c) in model.clients.iter().enumerate() {
        lanes::client_frame(area, l, i, c, colour_of(&colours, &c.name))?;
    }
    for (i, n) in model.nodes.iter().enumerate() {
        lanes::node_frame(area, l, model, i, n)?;
    }
    lanes::clocks(area, l, model)?;
    lanes::headings(area, l, model)?;
    axis::time_axis(area, l)?;
    findings::overlap_windows(area, l, model, verdict)?;
    for (i, c) in model.clients.iter().enumerate() {
        lanes::client_lane(area, l, c, l.client_y(i), colour_of(&colours, &c.name))?;
    }
    for (i, n) in model.nodes.iter().enumerate() {
        lanes::node_lane(area, l, &colours, n, l.node_y(i))?;
    }
    faults::fault_lines(area, l)?;
    findings::other_findings(area, l, model, verdict)?;
    legend::draw_legend(area, l, items, positions)
}
