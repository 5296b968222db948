//! Where everything on the chart goes, in pixels: the sizes of its parts, the time axis's
//! scale, lane positions, fault-label rows, and text width estimates.

use crate::html::ms_short;
use crate::model::Model;

/// The chart's width.
pub(super) const WIDTH: u32 = 1400;
/// The left margin (lane names) before the plot.
pub(super) const LEFT: i32 = 180;
/// The right margin after the plot.
pub(super) const RIGHT: i32 = 36;
/// The top margin above the fault labels.
pub(super) const TOP: i32 = 8;
/// The height of one row of fault labels.
pub(super) const FAULT_ROW_H: i32 = 17;
/// At most this many rows of fault labels.
const MAX_FAULT_ROWS: usize = 6;
/// The height of the clients' heading row (also where mutual-exclusion windows are labelled).
pub(super) const HEADING_H: i32 = 22;
/// The height of the nodes' heading.
const NODE_HEADING_H: i32 = 36;
/// The height of a client lane.
pub(super) const CLIENT_LANE_H: i32 = 50;
/// The height of a node lane.
pub(super) const NODE_LANE_H: i32 = 42;
/// The height of the time axis under the plot.
const AXIS_H: i32 = 46;
/// The height of one legend row.
pub(super) const LEGEND_ROW_H: i32 = 22;
/// The right edge of the plot.
pub(super) const PLOT_RIGHT: i32 = WIDTH as i32 - RIGHT;

/// Text sizes as plotters takes them (the SVG gets `size / 1.24` px): marks and labels.
pub(super) const SMALL: f64 = 15.0;
/// The text size of lane names.
pub(super) const NORMAL: f64 = 17.0;

/// Estimated width in pixels of `s` drawn at plotters size `size` (no font metrics here).
pub(super) fn text_w(s: &str, size: f64) -> i32 {
    (s.chars().count() as f64 * size / 1.24 * 0.58).ceil() as i32
}

/// `s`, cut with an ellipsis to fit `max_w` pixels (estimated).
pub(super) fn fit(s: &str, size: f64, max_w: i32) -> String {
    if text_w(s, size) <= max_w {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        if text_w(&format!("{out}{c}…"), size) > max_w {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// Where everything goes, in pixels.
pub(super) struct Layout {
    /// The end of the time axis (at least 1 µs).
    pub(super) end_us: u64,
    /// The plot's width, between the margins.
    pub(super) plot_w: i32,
    /// The fault labels, placed in rows above the plot.
    pub(super) fault_rows: Vec<FaultLabel>,
    /// The top of the plot (the clients' heading row).
    pub(super) plot_top: i32,
    /// The top of the first client lane.
    pub(super) client_top: i32,
    /// The bottom of the last client lane.
    pub(super) clients_bottom: i32,
    /// The top of the nodes' heading.
    pub(super) node_heading: i32,
    /// The top of the first node lane.
    pub(super) node_top: i32,
    /// The bottom of the plot (the time axis's line).
    pub(super) plot_bottom: i32,
    /// The top of the legend.
    pub(super) legend_top: i32,
    /// The chart's height.
    pub(super) height: i32,
}

/// A placed fault label.
pub(super) struct FaultLabel {
    /// The fault's time on the axis.
    pub(super) x: i32,
    /// Its row above the plot (0: the top one).
    pub(super) row: usize,
    /// Its text: the time and description, or a short `F<n>`.
    pub(super) text: String,
    /// Anchored at its right end (near the right edge of the chart).
    pub(super) right: bool,
}

impl Layout {
    /// Lays out `model`'s chart with a legend of `legend_rows` rows.
    pub(super) fn new(model: &Model, legend_rows: i32) -> Layout {
        let plot_w = WIDTH as i32 - LEFT - RIGHT;
        let mut l = Layout {
            end_us: model.end_us.max(1),
            plot_w,
            fault_rows: Vec::new(),
            plot_top: 0,
            client_top: 0,
            clients_bottom: 0,
            node_heading: 0,
            node_top: 0,
            plot_bottom: 0,
            legend_top: 0,
            height: 0,
        };
        l.fault_rows = l.place_fault_labels(model);
        let rows = l.fault_rows.iter().map(|f| f.row + 1).max().unwrap_or(0) as i32;
        l.plot_top = TOP + rows * FAULT_ROW_H + 6;
        l.client_top = l.plot_top + HEADING_H;
        let clients_end = l.client_top + CLIENT_LANE_H * model.clients.len() as i32;
        l.clients_bottom = clients_end;
        if model.nodes.is_empty() {
            l.node_heading = clients_end;
            l.node_top = clients_end;
            l.plot_bottom = clients_end + 6;
        } else {
            l.node_heading = clients_end;
            l.node_top = clients_end + NODE_HEADING_H;
            l.plot_bottom = l.node_top + NODE_LANE_H * model.nodes.len() as i32 + 4;
        }
        l.legend_top = l.plot_bottom + AXIS_H;
        l.height = l.legend_top + legend_rows * LEGEND_ROW_H + 12;
        l
    }

    /// The x of true time `t_us` (clamped to the end of the axis).
    pub(super) fn x(&self, t_us: u64) -> i32 {
        let t = t_us.min(self.end_us) as f64;
        LEFT + (t / self.end_us as f64 * self.plot_w as f64).round() as i32
    }

    /// The middle of client lane `i`.
    pub(super) fn client_y(&self, i: usize) -> i32 {
        self.client_top + CLIENT_LANE_H * i as i32 + CLIENT_LANE_H / 2
    }

    /// The middle of node lane `i`.
    pub(super) fn node_y(&self, i: usize) -> i32 {
        self.node_top + NODE_LANE_H * i as i32 + NODE_LANE_H / 2
    }

    /// Greedy rows: each label goes in the first row where it clears the previous label;
    /// when no row has room for the description, a short `F<n>` (listed below the chart).
    fn place_fault_labels(&self, model: &Model) -> Vec<FaultLabel> {
        let mut row_end: Vec<i32> = Vec::new();
        let mut out = Vec::new();
        for (i, f) in model.faults.iter().enumerate() {
            let x = self.x(f.t_us);
            let long = format!("{} ms {}", ms_short(f.t_us), f.description);
            let short = format!("F{}", i + 1);
            let mut placed = None;
            for text in [long, short] {
                let w = text_w(&text, SMALL) + 4;
                let right = x + w > WIDTH as i32 - 4;
                let (lo, hi) = if right { (x - w, x) } else { (x, x + w) };
                let row = (0..MAX_FAULT_ROWS).find(|r| row_end.get(*r).is_none_or(|e| lo >= e + 8));
                if let Some(row) = row {
                    placed = Some((row, text, right, hi));
                    break;
                }
            }
            let (row, text, right, hi) = placed
                .unwrap_or_else(|| (MAX_FAULT_ROWS - 1, format!("F{}", i + 1), false, x + 20));
            if row_end.len() <= row {
                row_end.resize(row + 1, i32::MIN / 2);
            }
            row_end[row] = row_end[row].max(hi);
            out.push(FaultLabel {
                x,
                row,
                text,
                right,
            });
        }
        out
    }
}
