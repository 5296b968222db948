//! The faults on the chart: a labelled dashed vertical line per fault, from its label (placed
//! by [`Layout`]) down through every lane.

use super::layout::{Layout, FAULT_ROW_H, SMALL, TOP};
use super::shapes::{dashed_vline, text, Area, DrawResult};
use super::style::{font, FAULT};
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

/// Draws every fault's line and label.
pub(super) fn fault_lines(area: &Area, l: &Layout) -> DrawResult {
    for fl in &l.fault_rows {
        let ly = TOP + fl.row as i32 * FAULT_ROW_H + FAULT_ROW_H / 2;
        dashed_vline(area, fl.x, ly - 6, l.plot_bottom, FAULT.stroke_width(2))?;
        let (tx, h) = if fl.right {
            (fl.x - 4, HPos::Right)
        } else {
            (fl.x + 4, HPos::Left)
        };
        text(area, &fl.text, (tx, ly), &font(SMALL, true, FAULT, h))?;
    }
    Ok(())
}
