//! The legend below the chart: its items (a swatch and a label each), how they flow into
//! rows, and how they are drawn.

use super::layout::{text_w, Layout, LEFT, LEGEND_ROW_H, RIGHT, SMALL, WIDTH};
use super::shapes::{dashed_vline, glyph, line, rect, text, Area, DrawResult, Glyph};
use super::style::{font, FAULT, INK, MUTED, PALETTE, VIOLATION};
use crate::model::Model;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

/// One legend entry: what to draw in its box, and its label.
pub(super) enum Swatch {
    /// A holding bar in this colour.
    Bar(RGBColor),
    /// An acquiring line in this colour.
    Thin(RGBColor),
    /// A shaded box in this colour and opacity (outlined when it is the violation red).
    Overlay(RGBColor, f64),
    /// A fault's dashed line.
    Fault,
    /// A mark.
    Glyph(Glyph),
}

/// The legend's items: the node-lane items only when there are node lanes.
pub(super) fn legend_items(model: &Model) -> Vec<(Swatch, String)> {
    let mut items = vec![
        (
            Swatch::Bar(PALETTE[0]),
            "holds the lock (Acquired → section end)".to_string(),
        ),
        (Swatch::Thin(PALETTE[0]), "acquiring".to_string()),
        (
            Swatch::Glyph(Glyph::WriteAccepted),
            "write accepted".to_string(),
        ),
        (
            Swatch::Glyph(Glyph::WriteRejected),
            "write rejected".to_string(),
        ),
        (
            Swatch::Glyph(Glyph::AttemptFailed),
            "attempt failed".to_string(),
        ),
        (
            Swatch::Glyph(Glyph::AcquireFailed),
            "acquire gave up".to_string(),
        ),
        (Swatch::Glyph(Glyph::Lost), "lock lost".to_string()),
        (
            Swatch::Glyph(Glyph::Extended),
            "extended (watchdog)".to_string(),
        ),
        (Swatch::Glyph(Glyph::SetOnceWon), "set-once won".to_string()),
        (Swatch::Glyph(Glyph::Crashed), "client crashed".to_string()),
        (
            Swatch::Overlay(MUTED, 0.35),
            "client paused / node down".to_string(),
        ),
    ];
    if !model.nodes.is_empty() {
        items.extend([
            (
                Swatch::Bar(PALETTE[1]),
                "node's key holds that client's value".to_string(),
            ),
            (
                Swatch::Glyph(Glyph::KeySet { replicated: false }),
                "key set".to_string(),
            ),
            (
                Swatch::Glyph(Glyph::KeySet { replicated: true }),
                "key set by replication".to_string(),
            ),
            (
                Swatch::Glyph(Glyph::KeyExtended { replicated: false }),
                "key extended (grey: replicated)".to_string(),
            ),
            (
                Swatch::Glyph(Glyph::KeyDeleted { replicated: false }),
                "key deleted (grey: replicated)".to_string(),
            ),
            (
                Swatch::Glyph(Glyph::KeyWiped),
                "key wiped (restart, no persistence)".to_string(),
            ),
            (
                Swatch::Glyph(Glyph::KeyResynced),
                "key resynced".to_string(),
            ),
        ]);
    }
    items.extend([
        (
            Swatch::Fault,
            "fault: injected, healed or observed".to_string(),
        ),
        (
            Swatch::Overlay(VIOLATION, 0.18),
            "mutual_exclusion violated: both hold".to_string(),
        ),
        (
            Swatch::Glyph(Glyph::OtherFinding),
            "other finding (#n below)".to_string(),
        ),
    ]);
    items
}

/// The width of an item's swatch.
const SWATCH_W: i32 = 26;

/// The width an item takes, with its gap to the next.
fn legend_item_w(label: &str) -> i32 {
    SWATCH_W + 6 + text_w(label, SMALL) + 22
}

/// Flows the legend items into rows; returns each item's (row, x).
pub(super) fn legend_positions(items: &[(Swatch, String)]) -> Vec<(i32, i32)> {
    let mut row = 0;
    let mut x = LEFT;
    let mut out = Vec::new();
    for (_, label) in items {
        let w = legend_item_w(label);
        if x + w > WIDTH as i32 - RIGHT && x > LEFT {
            row += 1;
            x = LEFT;
        }
        out.push((row, x));
        x += w;
    }
    out
}

/// Draws the legend: its heading and every item at its flowed position.
pub(super) fn draw_legend(
    area: &Area,
    l: &Layout,
    items: &[(Swatch, String)],
    positions: &[(i32, i32)],
) -> DrawResult {
    text(
        area,
        "legend",
        (12, l.legend_top + LEGEND_ROW_H / 2),
        &font(SMALL, true, MUTED, HPos::Left),
    )?;
    for ((swatch, label), (row, x)) in items.iter().zip(positions) {
        let y = l.legend_top + row * LEGEND_ROW_H + LEGEND_ROW_H / 2;
        let cx = x + SWATCH_W / 2;
        match swatch {
            Swatch::Bar(c) => rect(
                area,
                (*x, y - 7),
                (x + SWATCH_W, y + 7),
                c.mix(0.85).filled(),
            )?,
            Swatch::Thin(c) => {
                line(area, (*x, y), (x + SWATCH_W, y), c.mix(0.6).stroke_width(3))?;
                line(area, (*x, y - 5), (*x, y + 5), c.stroke_width(2))?;
            }
            Swatch::Overlay(c, a) => {
                rect(area, (*x, y - 8), (x + SWATCH_W, y + 8), c.mix(*a).filled())?;
                if *c == VIOLATION {
                    rect(area, (*x, y - 8), (x + SWATCH_W, y + 8), c.stroke_width(2))?;
                }
            }
            Swatch::Fault => dashed_vline(area, cx, y - 9, y + 9, FAULT.stroke_width(2))?,
            Swatch::Glyph(g) => glyph(area, *g, (cx, y))?,
        }
        text(
            area,
            label,
            (x + SWATCH_W + 6, y),
            &font(SMALL, false, INK, HPos::Left),
        )?;
    }
    Ok(())
}
