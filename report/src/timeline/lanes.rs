//! The chart's lanes: one per client (its holdings, acquiring periods, pauses, writes and
//! other marks) and one per Redis node (whose value the lock key holds there, the key's
//! changes, and the node's outages), each with its stripe and name, its clock when that is
//! off true time, and the two groups' headings.

use super::layout::{fit, text_w, Layout, CLIENT_LANE_H, HEADING_H, LEFT, NODE_LANE_H};
use super::layout::{NORMAL, PLOT_RIGHT, SMALL};
use super::shapes::{glyph, line, rect, text, Area, DrawResult, Glyph};
use super::style::{colour_of, font, text_on, FAULT, GRID, INK, MUTED, STRIPE};
use crate::html::ms_short;
use crate::model::{ClientLane, ClientMark, ClockLine, Hold, KeySegment, Model, NodeLane, Span};
use checker::KeyChange;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Client lane `i`'s frame: its stripe (every other lane), its colour and its name.
pub(super) fn client_frame(
    area: &Area,
    l: &Layout,
    i: usize,
    c: &ClientLane,
    colour: RGBColor,
) -> DrawResult {
    let top = l.client_top + CLIENT_LANE_H * i as i32;
    if i.is_multiple_of(2) {
        rect(
            area,
            (LEFT, top),
            (PLOT_RIGHT, top + CLIENT_LANE_H),
            STRIPE.filled(),
        )?;
    }
    let y = l.client_y(i);
    rect(area, (12, y - 8), (28, y + 8), colour.filled())?;
    text(
        area,
        &fit(&c.name, NORMAL + 1.0, LEFT - 44),
        (36, y),
        &font(NORMAL + 1.0, true, INK, HPos::Left),
    )
}

/// Node lane `i`'s frame: its stripe (every other lane) and its name (with the key when the
/// history has several).
pub(super) fn node_frame(
    area: &Area,
    l: &Layout,
    model: &Model,
    i: usize,
    n: &NodeLane,
) -> DrawResult {
    let top = l.node_top + NODE_LANE_H * i as i32;
    if i.is_multiple_of(2) {
        rect(
            area,
            (LEFT, top),
            (PLOT_RIGHT, top + NODE_LANE_H),
            STRIPE.filled(),
        )?;
    }
    let label = if model.several_keys {
        format!("{} · {}", n.node, n.key)
    } else {
        n.node.clone()
    };
    text(
        area,
        &fit(&label, NORMAL, LEFT - 16),
        (12, l.node_y(i)),
        &font(NORMAL, false, INK, HPos::Left),
    )
}

/// Clocks off true time, client lanes first, then node lanes.
pub(super) fn clocks(area: &Area, l: &Layout, model: &Model) -> DrawResult {
    let lanes = model
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.name, l.client_y(i), CLIENT_LANE_H))
        .chain(
            model
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (&n.node, l.node_y(i), NODE_LANE_H)),
        );
    for (name, y, lane_h) in lanes {
        if let Some(clock) = model.clocks.get(name) {
            clock_marks(area, l, clock, y, lane_h)?;
        }
    }
    Ok(())
}

/// One lane's clock (the lane is centred on `y`, `lane_h` high): its start (offset, rate)
/// under the lane's name, where drift has taken it by the end of the axis, and its offset
/// after each jump, at the jump.
fn clock_marks(area: &Area, l: &Layout, clock: &ClockLine, y: i32, lane_h: i32) -> DrawResult {
    if let Some(start) = clock_start_label(clock) {
        text(
            area,
            &fit(&start, SMALL - 2.0, LEFT - 24),
            (36, y + lane_h / 2 - 9),
            &font(SMALL - 2.0, false, FAULT, HPos::Left),
        )?;
    }
    let top = y - lane_h / 2;
    if clock.rate != 1.0 {
        text(
            area,
            &format!("clock {:+.0} ms here", clock.offset_at(l.end_us)),
            (PLOT_RIGHT - 4, top + 8),
            &font(SMALL - 3.0, false, FAULT, HPos::Right),
        )?;
    }
    for (t, _) in &clock.jumps {
        let x = l.x(*t);
        line(area, (x, top + 2), (x, top + 12), FAULT.stroke_width(2))?;
        text(
            area,
            &format!("clock {:+.0} ms", clock.offset_at(*t)),
            (x + 4, top + 8),
            &font(SMALL - 3.0, false, FAULT, HPos::Left),
        )?;
    }
    Ok(())
}

/// A clock's start, when it is off true time: `clock +500 ms, rate 1.005`.
fn clock_start_label(c: &ClockLine) -> Option<String> {
    let mut parts = Vec::new();
    if c.offset_ms != 0.0 {
        parts.push(format!("{:+.0} ms", c.offset_ms));
    }
    if c.rate != 1.0 {
        parts.push(format!("rate {}", c.rate));
    }
    (!parts.is_empty()).then(|| format!("clock {}", parts.join(", ")))
}

/// The groups' headings: "clients" and, when there are node lanes, "Redis nodes" with the
/// key (when there is one) and a rule above them.
pub(super) fn headings(area: &Area, l: &Layout, model: &Model) -> DrawResult {
    if !model.clients.is_empty() {
        text(
            area,
            "clients",
            (12, l.plot_top + HEADING_H / 2),
            &font(SMALL, true, MUTED, HPos::Left),
        )?;
    }
    if !model.nodes.is_empty() {
        text(
            area,
            "Redis nodes",
            (12, l.node_heading + 11),
            &font(SMALL, true, MUTED, HPos::Left),
        )?;
        if !model.several_keys {
            let key = model.nodes.first().map(|n| n.key.as_str()).unwrap_or("");
            text(
                area,
                &fit(&format!("key {key}"), SMALL - 1.0, LEFT - 16),
                (12, l.node_heading + 26),
                &font(SMALL - 1.0, false, MUTED, HPos::Left),
            )?;
        }
        line(
            area,
            (12, l.node_heading + 1),
            (PLOT_RIGHT, l.node_heading + 1),
            GRID.stroke_width(1),
        )?;
    }
    Ok(())
}

/// A client's lane, centred on `y`, in its `colour`: pauses, acquiring periods, holdings,
/// then its marks.
pub(super) fn client_lane(
    area: &Area,
    l: &Layout,
    c: &ClientLane,
    y: i32,
    colour: RGBColor,
) -> DrawResult {
    for s in &c.paused {
        overlay(
            area,
            l,
            *s,
            (y - CLIENT_LANE_H / 2 + 2, y + CLIENT_LANE_H / 2 - 2),
            y + 17,
            "paused",
        )?;
    }
    for s in &c.acquiring {
        let (x0, x1) = (l.x(s.from), l.x(s.to));
        line(area, (x0, y), (x1, y), colour.mix(0.6).stroke_width(3))?;
        line(area, (x0, y - 5), (x0, y + 5), colour.stroke_width(2))?;
    }
    for h in &c.holds {
        hold_bar(area, l, &c.name, h, y, colour)?;
    }
    for (t, m) in &c.marks {
        client_mark(area, m, (l.x(*t), y))?;
    }
    Ok(())
}

/// One holding of the lock by `name`: a bar, labelled when it is wide enough.
fn hold_bar(area: &Area, l: &Layout, name: &str, h: &Hold, y: i32, colour: RGBColor) -> DrawResult {
    let (x0, x1) = (l.x(h.span.from), l.x(h.span.to).max(l.x(h.span.from) + 2));
    rect(area, (x0, y - 10), (x1, y + 10), colour.mix(0.85).filled())?;
    rect(area, (x0, y - 10), (x1, y + 10), colour.stroke_width(1))?;
    let mut label = format!("{name} holds");
    if let Some(tok) = h.fencing_token {
        let _ = write!(label, " · token {tok}");
    }
    if h.open_at_end && h.span.to >= l.end_us {
        label.push_str(" · still at the end");
    }
    // Right of the marks at the grant (the first write often follows at once).
    let ink = text_on(colour);
    if text_w(&label, SMALL) + 20 < x1 - x0 {
        text(
            area,
            &label,
            (x0 + 14, y),
            &font(SMALL, true, ink, HPos::Left),
        )?;
    } else if text_w(name, SMALL) + 18 < x1 - x0 {
        text(
            area,
            name,
            (x0 + 12, y),
            &font(SMALL, true, ink, HPos::Left),
        )?;
    }
    Ok(())
}

/// A client's mark at `x` on its lane centred on `y`: above the bar (lost, extended), on it
/// (writes, set-once, crash), below it (failures).
fn client_mark(area: &Area, m: &ClientMark, (x, y): (i32, i32)) -> DrawResult {
    match m {
        ClientMark::Write { accepted } => glyph(
            area,
            if *accepted {
                Glyph::WriteAccepted
            } else {
                Glyph::WriteRejected
            },
            (x, y),
        ),
        ClientMark::AttemptFailed => glyph(area, Glyph::AttemptFailed, (x, y + 16)),
        ClientMark::AcquireFailed => glyph(area, Glyph::AcquireFailed, (x, y + 17)),
        ClientMark::Lost => glyph(area, Glyph::Lost, (x, y - 17)),
        ClientMark::Extended => glyph(area, Glyph::Extended, (x, y - 15)),
        ClientMark::SetOnceWon => glyph(area, Glyph::SetOnceWon, (x, y)),
        ClientMark::Crashed => glyph(area, Glyph::Crashed, (x, y)),
    }
}

/// A grey overlay over a lane (`y0..y1`) for an outage, labelled at `label_y` when it is
/// wide enough.
fn overlay(
    area: &Area,
    l: &Layout,
    s: Span,
    (y0, y1): (i32, i32),
    label_y: i32,
    what: &str,
) -> DrawResult {
    let (x0, x1) = (l.x(s.from), l.x(s.to).max(l.x(s.from) + 2));
    rect(area, (x0, y0), (x1, y1), MUTED.mix(0.35).filled())?;
    line(area, (x0, y0), (x0, y1), MUTED.stroke_width(2))?;
    let label = format!("{what} from {} ms", ms_short(s.from));
    if text_w(&label, SMALL) + 12 < x1 - x0 {
        text(
            area,
            &label,
            (x0 + 6, label_y),
            &font(SMALL - 1.0, true, INK, HPos::Left),
        )?;
    }
    Ok(())
}

/// A node's lane, centred on `y`: whose value the lock key holds there (coloured by
/// holder, as in `colours`), the node's outages, and the key's changes.
pub(super) fn node_lane(
    area: &Area,
    l: &Layout,
    colours: &BTreeMap<String, RGBColor>,
    n: &NodeLane,
    y: i32,
) -> DrawResult {
    for s in &n.segments {
        key_segment(area, l, s, y, colour_of(colours, &s.holder))?;
    }
    for (s, what) in &n.down {
        overlay(
            area,
            l,
            *s,
            (y - NODE_LANE_H / 2 + 2, y + NODE_LANE_H / 2 - 2),
            y + 13,
            what,
        )?;
    }
    for (t, change, replicated) in &n.changes {
        glyph(
            area,
            key_change_glyph(*change, *replicated),
            (l.x(*t), y - 12),
        )?;
    }
    Ok(())
}

/// A stretch of time in which the node's key holds one holder's value: a bar in `colour`,
/// ended by a tick when the key expired, labelled when it is wide enough.
fn key_segment(area: &Area, l: &Layout, s: &KeySegment, y: i32, colour: RGBColor) -> DrawResult {
    let (x0, x1) = (l.x(s.span.from), l.x(s.span.to).max(l.x(s.span.from) + 2));
    rect(area, (x0, y - 7), (x1, y + 7), colour.mix(0.85).filled())?;
    if s.expired {
        line(area, (x1, y - 9), (x1, y + 9), INK.stroke_width(1))?;
    }
    let label = format!("holds {}", s.holder);
    let w = x1 - x0;
    let ink = text_on(colour);
    if text_w(&label, SMALL) + 12 < w {
        text(
            area,
            &label,
            (x0 + 8, y),
            &font(SMALL - 1.0, true, ink, HPos::Left),
        )?;
    } else if text_w(&s.holder, SMALL) + 10 < w {
        text(
            area,
            &s.holder,
            (x0 + 7, y),
            &font(SMALL - 1.0, true, ink, HPos::Left),
        )?;
    }
    Ok(())
}

/// The mark of a change to the key (hollow or grey when it came through replication).
fn key_change_glyph(change: KeyChange, replicated: bool) -> Glyph {
    match change {
        KeyChange::Set => Glyph::KeySet { replicated },
        KeyChange::Extended => Glyph::KeyExtended { replicated },
        KeyChange::Deleted => Glyph::KeyDeleted { replicated },
        KeyChange::Wiped => Glyph::KeyWiped,
        KeyChange::Resynced => Glyph::KeyResynced,
    }
}
