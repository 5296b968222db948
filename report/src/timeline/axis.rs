//! The time axis: a grid line and a label at every tick, the axis line and its title.

use super::layout::{Layout, LEFT, PLOT_RIGHT, SMALL};
use super::shapes::{line, text, Area, DrawResult};
use super::style::{font, GRID, INK};
use crate::html::ms_short;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

/// Draws the grid and the axis under the lanes.
pub(super) fn time_axis(area: &Area, l: &Layout) -> DrawResult {
    let step = tick_step(l.end_us);
    let mut t = 0;
    while t <= l.end_us {
        let x = l.x(t);
        line(
            area,
            (x, l.plot_top),
            (x, l.plot_bottom),
            GRID.stroke_width(1),
        )?;
        line(
            area,
            (x, l.plot_bottom),
            (x, l.plot_bottom + 5),
            INK.stroke_width(1),
        )?;
        text(
            area,
            &ms_short(t),
            (x, l.plot_bottom + 14),
            &font(SMALL, false, INK, HPos::Center),
        )?;
        t += step;
    }
    line(
        area,
        (LEFT, l.plot_bottom),
        (PLOT_RIGHT, l.plot_bottom),
        INK.stroke_width(1),
    )?;
    text(
        area,
        "time (ms, true time since the start of the run)",
        (LEFT + l.plot_w / 2, l.plot_bottom + 32),
        &font(SMALL, false, INK, HPos::Center),
    )
}

/// A step of 1, 2 or 5 × 10^k µs giving at most 12 ticks.
pub(super) fn tick_step(end_us: u64) -> u64 {
    let mut mag: u64 = 1;
    loop {
        for m in [1, 2, 5] {
            let step = m * mag;
            if end_us / step <= 12 {
                return step;
            }
        }
        mag = mag.saturating_mul(10);
    }
}
