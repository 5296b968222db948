//! Drawing primitives on the SVG area: text, rectangles, lines, dashed lines, and the
//! glyphs that mark events (drawn the same on the chart and in the legend).

use super::style::{INK, MUTED, VIOLATION};
use plotters::coord::Shift;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;

/// The SVG drawing area, in pixels.
pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// What drawing on the area returns.
pub(super) type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// `s` at `at` in `style`.
pub(super) fn text(area: &Area, s: &str, at: (i32, i32), style: &TextStyle) -> DrawResult {
    area.draw(&Text::new(s.to_string(), at, style.clone()))
}

/// A rectangle from corner `a` to corner `b`.
pub(super) fn rect(area: &Area, a: (i32, i32), b: (i32, i32), style: ShapeStyle) -> DrawResult {
    area.draw(&Rectangle::new([a, b], style))
}

/// A straight line from `a` to `b`.
pub(super) fn line(area: &Area, a: (i32, i32), b: (i32, i32), style: ShapeStyle) -> DrawResult {
    area.draw(&PathElement::new(vec![a, b], style))
}

/// A dashed vertical line at `x` from `y0` down to `y1`.
pub(super) fn dashed_vline(area: &Area, x: i32, y0: i32, y1: i32, style: ShapeStyle) -> DrawResult {
    let mut y = y0;
    while y < y1 {
        line(area, (x, y), (x, (y + 6).min(y1)), style)?;
        y += 10;
    }
    Ok(())
}

/// A triangle pointing down, of half-width `r`, centred on `(x, y)`.
fn triangle_down(area: &Area, (x, y): (i32, i32), r: i32, style: ShapeStyle) -> DrawResult {
    area.draw(&Polygon::new(
        vec![(x - r, y - r), (x + r, y - r), (x, y + r)],
        style,
    ))?;
    if !style.filled {
        area.draw(&PathElement::new(
            vec![(x - r, y - r), (x + r, y - r), (x, y + r), (x - r, y - r)],
            style,
        ))?;
    }
    Ok(())
}

/// A diamond of half-width `r` centred on `(x, y)`: filled, or an outline on white.
fn diamond(area: &Area, (x, y): (i32, i32), r: i32, style: ShapeStyle) -> DrawResult {
    let pts = vec![(x, y - r), (x + r, y), (x, y + r), (x - r, y)];
    if style.filled {
        area.draw(&Polygon::new(pts, style))
    } else {
        let mut closed = pts.clone();
        closed.push((x, y - r));
        area.draw(&Polygon::new(pts, WHITE.filled()))?;
        area.draw(&PathElement::new(closed, style))
    }
}

/// The marks, drawn the same on the chart and in the legend.
#[derive(Clone, Copy)]
pub(super) enum Glyph {
    WriteAccepted,
    WriteRejected,
    AttemptFailed,
    AcquireFailed,
    Lost,
    Extended,
    SetOnceWon,
    Crashed,
    KeySet { replicated: bool },
    KeyExtended { replicated: bool },
    KeyDeleted { replicated: bool },
    KeyWiped,
    KeyResynced,
    OtherFinding,
}

/// Draws glyph `g` centred on `(x, y)`.
pub(super) fn glyph(area: &Area, g: Glyph, (x, y): (i32, i32)) -> DrawResult {
    let shade = |replicated: bool| if replicated { MUTED } else { INK };
    match g {
        Glyph::WriteAccepted => {
            area.draw(&Circle::new((x, y), 7, WHITE.filled()))?;
            area.draw(&Circle::new((x, y), 5, INK.filled()))
        }
        Glyph::WriteRejected => {
            area.draw(&Circle::new((x, y), 7, WHITE.filled()))?;
            area.draw(&Circle::new((x, y), 5, INK.stroke_width(2)))?;
            area.draw(&Cross::new((x, y), 3, INK.stroke_width(2)))
        }
        Glyph::AttemptFailed => area.draw(&Circle::new((x, y), 2, MUTED.filled())),
        Glyph::AcquireFailed => triangle_down(area, (x, y), 5, MUTED.stroke_width(2)),
        Glyph::Lost => triangle_down(area, (x, y), 5, INK.filled()),
        Glyph::Extended => line(area, (x, y - 4), (x, y + 4), INK.stroke_width(2)),
        Glyph::SetOnceWon => rect(area, (x - 4, y - 4), (x + 4, y + 4), INK.filled()),
        Glyph::Crashed => {
            area.draw(&Cross::new((x, y), 6, WHITE.stroke_width(6)))?;
            area.draw(&Cross::new((x, y), 6, INK.stroke_width(3)))
        }
        Glyph::KeySet { replicated } => {
            if replicated {
                area.draw(&Circle::new((x, y), 4, WHITE.filled()))?;
                area.draw(&Circle::new((x, y), 4, MUTED.stroke_width(2)))
            } else {
                area.draw(&Circle::new((x, y), 4, INK.filled()))
            }
        }
        Glyph::KeyExtended { replicated } => line(
            area,
            (x, y - 4),
            (x, y + 4),
            shade(replicated).stroke_width(2),
        ),
        Glyph::KeyDeleted { replicated } => {
            area.draw(&Cross::new((x, y), 4, shade(replicated).stroke_width(2)))
        }
        Glyph::KeyWiped => area.draw(&Cross::new((x, y), 5, INK.stroke_width(3))),
        Glyph::KeyResynced => diamond(area, (x, y), 5, INK.stroke_width(2)),
        Glyph::OtherFinding => diamond(area, (x, y), 5, VIOLATION.filled()),
    }
}
