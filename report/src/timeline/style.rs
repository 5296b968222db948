//! Colours and fonts: the fixed inks, the clients' palette, and which colour each holder
//! of the lock key is drawn in.

use crate::model::Model;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;

/// Faults and clock marks.
pub(super) const FAULT: RGBColor = RGBColor(110, 30, 150);
/// Violations (nothing else is red).
pub(super) const VIOLATION: RGBColor = RGBColor(215, 25, 28);
/// Text and marks.
pub(super) const INK: RGBColor = RGBColor(30, 30, 30);
/// Headings, outages and replicated changes.
pub(super) const MUTED: RGBColor = RGBColor(120, 120, 120);
/// Grid lines.
pub(super) const GRID: RGBColor = RGBColor(226, 226, 226);
/// Every other lane's background.
pub(super) const STRIPE: RGBColor = RGBColor(246, 246, 248);

/// Client colours (Okabe–Ito-like, no red: red means a violation); the TTL sweep's series
/// use them too.
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(170, 150, 0),
    RGBColor(140, 86, 75),
    RGBColor(110, 100, 190),
];
/// Colour of a key value no client is named for (a fixed token shared by several clients).
const SHARED: RGBColor = RGBColor(150, 150, 150);

/// The colour of each holder name: clients in lane order, then other holders by name.
pub(super) fn holder_colours(model: &Model) -> BTreeMap<String, RGBColor> {
    let mut colours = BTreeMap::new();
    for (i, c) in model.clients.iter().enumerate() {
        colours.insert(c.name.clone(), PALETTE[i % PALETTE.len()]);
    }
    colours
}

/// The colour of `holder` in `colours`, or [`SHARED`] when no client is named so.
pub(super) fn colour_of(colours: &BTreeMap<String, RGBColor>, holder: &str) -> RGBColor {
    colours.get(holder).copied().unwrap_or(SHARED)
}

/// Text colour readable on a bar of colour `c`: white on dark colours, ink on light ones.
pub(super) fn text_on(c: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = c;
    let luma = 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64;
    if luma > 150.0 {
        INK
    } else {
        WHITE
    }
}

/// A sans-serif text style, centred vertically on its anchor and aligned by `h`.
pub(super) fn font(size: f64, bold: bool, colour: RGBColor, h: HPos) -> TextStyle<'static> {
    let f = if bold {
        ("sans-serif", size, FontStyle::Bold).into_font()
    } else {
        ("sans-serif", size).into_font()
    };
    f.color(&colour).pos(Pos::new(h, VPos::Center))
}
