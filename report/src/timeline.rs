//! A run's timeline as a self-contained HTML page with one inline SVG chart.

use crate::html::{escape, ms3, ms_short};
use crate::model::{ClientMark, Model, NodeLane, Span};
use checker::{Event, Finding, KeyChange, Outcome, Property, Record, Verdict};
use plotters::coord::Shift;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::fmt::Write as _;

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
    page(title, &model, verdict, &svg)
}

// ---- layout --------------------------------------------------------------------------------

const WIDTH: u32 = 1400;
const LEFT: i32 = 180;
const RIGHT: i32 = 36;
const TOP: i32 = 8;
const FAULT_ROW_H: i32 = 17;
const MAX_FAULT_ROWS: usize = 6;
const HEADING_H: i32 = 22;
const NODE_HEADING_H: i32 = 36;
const CLIENT_LANE_H: i32 = 50;
const NODE_LANE_H: i32 = 42;
const AXIS_H: i32 = 46;
const LEGEND_ROW_H: i32 = 22;

/// Text sizes as plotters takes them (the SVG gets `size / 1.24` px).
const SMALL: f64 = 15.0;
const NORMAL: f64 = 17.0;

const FAULT: RGBColor = RGBColor(110, 30, 150);
const VIOLATION: RGBColor = RGBColor(215, 25, 28);
const INK: RGBColor = RGBColor(30, 30, 30);
const MUTED: RGBColor = RGBColor(120, 120, 120);
const GRID: RGBColor = RGBColor(226, 226, 226);
const STRIPE: RGBColor = RGBColor(246, 246, 248);

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

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Estimated width in pixels of `s` drawn at plotters size `size` (no font metrics here).
fn text_w(s: &str, size: f64) -> i32 {
    (s.chars().count() as f64 * size / 1.24 * 0.58).ceil() as i32
}

/// `s`, cut with an ellipsis to fit `max_w` pixels (estimated).
fn fit(s: &str, size: f64, max_w: i32) -> String {
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
struct Layout {
    end_us: u64,
    plot_w: i32,
    fault_rows: Vec<FaultLabel>,
    plot_top: i32,
    client_top: i32,
    node_heading: i32,
    node_top: i32,
    plot_bottom: i32,
    legend_top: i32,
    height: i32,
}

/// A placed fault label.
struct FaultLabel {
    x: i32,
    row: usize,
    text: String,
    /// Anchored at its right end (near the right edge of the chart).
    right: bool,
}

impl Layout {
    fn new(model: &Model, legend_rows: i32) -> Layout {
        let plot_w = WIDTH as i32 - LEFT - RIGHT;
        let mut l = Layout {
            end_us: model.end_us.max(1),
            plot_w,
            fault_rows: Vec::new(),
            plot_top: 0,
            client_top: 0,
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

    fn x(&self, t_us: u64) -> i32 {
        let t = t_us.min(self.end_us) as f64;
        LEFT + (t / self.end_us as f64 * self.plot_w as f64).round() as i32
    }

    fn client_y(&self, i: usize) -> i32 {
        self.client_top + CLIENT_LANE_H * i as i32 + CLIENT_LANE_H / 2
    }

    fn node_y(&self, i: usize) -> i32 {
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

/// The colour of each holder name: clients in lane order, then other holders by name.
fn holder_colours(model: &Model) -> BTreeMap<String, RGBColor> {
    let mut colours = BTreeMap::new();
    for (i, c) in model.clients.iter().enumerate() {
        colours.insert(c.name.clone(), PALETTE[i % PALETTE.len()]);
    }
    colours
}

fn colour_of(colours: &BTreeMap<String, RGBColor>, holder: &str) -> RGBColor {
    colours.get(holder).copied().unwrap_or(SHARED)
}

/// Text colour readable on a bar of colour `c`: white on dark colours, ink on light ones.
fn text_on(c: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = c;
    let luma = 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64;
    if luma > 150.0 {
        INK
    } else {
        WHITE
    }
}

/// A step of 1, 2 or 5 × 10^k µs giving at most 12 ticks.
/// A clock's start, when it is off true time: `clock +500 ms, rate 1.005`.
fn clock_start_label(c: &crate::model::ClockLine) -> Option<String> {
    let mut parts = Vec::new();
    if c.offset_ms != 0.0 {
        parts.push(format!("{:+.0} ms", c.offset_ms));
    }
    if c.rate != 1.0 {
        parts.push(format!("rate {}", c.rate));
    }
    (!parts.is_empty()).then(|| format!("clock {}", parts.join(", ")))
}

fn tick_step(end_us: u64) -> u64 {
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

// ---- drawing primitives ----------------------------------------------------------------------

fn font(size: f64, bold: bool, colour: RGBColor, h: HPos) -> TextStyle<'static> {
    let f = if bold {
        ("sans-serif", size, FontStyle::Bold).into_font()
    } else {
        ("sans-serif", size).into_font()
    };
    f.color(&colour).pos(Pos::new(h, VPos::Center))
}

fn text(area: &Area, s: &str, at: (i32, i32), style: &TextStyle) -> DrawResult {
    area.draw(&Text::new(s.to_string(), at, style.clone()))
}

fn rect(area: &Area, a: (i32, i32), b: (i32, i32), style: ShapeStyle) -> DrawResult {
    area.draw(&Rectangle::new([a, b], style))
}

fn line(area: &Area, a: (i32, i32), b: (i32, i32), style: ShapeStyle) -> DrawResult {
    area.draw(&PathElement::new(vec![a, b], style))
}

fn dashed_vline(area: &Area, x: i32, y0: i32, y1: i32, style: ShapeStyle) -> DrawResult {
    let mut y = y0;
    while y < y1 {
        line(area, (x, y), (x, (y + 6).min(y1)), style)?;
        y += 10;
    }
    Ok(())
}

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
enum Glyph {
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

fn glyph(area: &Area, g: Glyph, (x, y): (i32, i32)) -> DrawResult {
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

/// One legend entry: what to draw in its box, and its label.
enum Swatch {
    Bar(RGBColor),
    Thin(RGBColor),
    Overlay(RGBColor, f64),
    Fault,
    Glyph(Glyph),
}

fn legend_items(model: &Model) -> Vec<(Swatch, String)> {
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

const SWATCH_W: i32 = 26;

fn legend_item_w(label: &str) -> i32 {
    SWATCH_W + 6 + text_w(label, SMALL) + 22
}

/// Flows the legend items into rows; returns each item's (row, x).
fn legend_positions(items: &[(Swatch, String)]) -> Vec<(i32, i32)> {
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

// ---- the chart -------------------------------------------------------------------------------

fn render_svg(model: &Model, verdict: &Verdict) -> Result<String, String> {
    let items = legend_items(model);
    let positions = legend_positions(&items);
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
    let right = WIDTH as i32 - RIGHT;
    let clients_bottom = l.client_top + CLIENT_LANE_H * model.clients.len() as i32;

    // Lane stripes and labels.
    for (i, c) in model.clients.iter().enumerate() {
        let top = l.client_top + CLIENT_LANE_H * i as i32;
        if i % 2 == 0 {
            rect(
                area,
                (LEFT, top),
                (right, top + CLIENT_LANE_H),
                STRIPE.filled(),
            )?;
        }
        let y = l.client_y(i);
        let colour = colour_of(&colours, &c.name);
        rect(area, (12, y - 8), (28, y + 8), colour.filled())?;
        text(
            area,
            &fit(&c.name, NORMAL + 1.0, LEFT - 44),
            (36, y),
            &font(NORMAL + 1.0, true, INK, HPos::Left),
        )?;
    }
    for (i, n) in model.nodes.iter().enumerate() {
        let top = l.node_top + NODE_LANE_H * i as i32;
        if i % 2 == 0 {
            rect(
                area,
                (LEFT, top),
                (right, top + NODE_LANE_H),
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
        )?;
    }

    // Clocks off true time: the start (offset, rate) under the lane's name, and the offset
    // after each jump at the jump.
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
        let Some(clock) = model.clocks.get(name) else {
            continue;
        };
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
            // Where the drift has taken the clock by the end of the axis.
            text(
                area,
                &format!("clock {:+.0} ms here", clock.offset_at(l.end_us)),
                (right - 4, top + 8),
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
    }

    // Group headings.
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
            (right, l.node_heading + 1),
            GRID.stroke_width(1),
        )?;
    }

    // Time grid and axis.
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
        (right, l.plot_bottom),
        INK.stroke_width(1),
    )?;
    text(
        area,
        "time (ms, true time since the start of the run)",
        (LEFT + l.plot_w / 2, l.plot_bottom + 32),
        &font(SMALL, false, INK, HPos::Center),
    )?;

    // Mutual-exclusion windows, shaded across the client lanes.
    for (n, f) in verdict.findings.iter().enumerate() {
        if f.property != Property::MutualExclusion || model.clients.is_empty() {
            continue;
        }
        let (from, to) = finding_window(f);
        let (x0, x1) = (l.x(from), l.x(to).max(l.x(from) + 2));
        rect(
            area,
            (x0, l.client_top),
            (x1, clients_bottom),
            VIOLATION.mix(0.16).filled(),
        )?;
        for x in [x0, x1] {
            line(
                area,
                (x, l.client_top),
                (x, clients_bottom),
                VIOLATION.stroke_width(2),
            )?;
        }
        let label = format!(
            "#{} {} both hold, {}–{} ms",
            n + 1,
            f.clients.join(" + "),
            ms_short(from),
            ms_short(to)
        );
        text(
            area,
            &label,
            (x0 + 5, l.plot_top + HEADING_H / 2),
            &font(SMALL, true, VIOLATION, HPos::Left),
        )?;
    }

    // Client lanes.
    for (i, c) in model.clients.iter().enumerate() {
        let y = l.client_y(i);
        let colour = colour_of(&colours, &c.name);
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
            let (x0, x1) = (l.x(h.span.from), l.x(h.span.to).max(l.x(h.span.from) + 2));
            rect(area, (x0, y - 10), (x1, y + 10), colour.mix(0.85).filled())?;
            rect(area, (x0, y - 10), (x1, y + 10), colour.stroke_width(1))?;
            let mut label = format!("{} holds", c.name);
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
            } else if text_w(&c.name, SMALL) + 18 < x1 - x0 {
                text(
                    area,
                    &c.name,
                    (x0 + 12, y),
                    &font(SMALL, true, ink, HPos::Left),
                )?;
            }
        }
        // Marks: above the bar (lost, extended), on it (writes, crash), below (failures).
        for (t, m) in &c.marks {
            let x = l.x(*t);
            match m {
                ClientMark::Write { accepted } => glyph(
                    area,
                    if *accepted {
                        Glyph::WriteAccepted
                    } else {
                        Glyph::WriteRejected
                    },
                    (x, y),
                )?,
                ClientMark::AttemptFailed => glyph(area, Glyph::AttemptFailed, (x, y + 16))?,
                ClientMark::AcquireFailed => glyph(area, Glyph::AcquireFailed, (x, y + 17))?,
                ClientMark::Lost => glyph(area, Glyph::Lost, (x, y - 17))?,
                ClientMark::Extended => glyph(area, Glyph::Extended, (x, y - 15))?,
                ClientMark::SetOnceWon => glyph(area, Glyph::SetOnceWon, (x, y))?,
                ClientMark::Crashed => glyph(area, Glyph::Crashed, (x, y))?,
            }
        }
    }

    // Node lanes.
    for (i, n) in model.nodes.iter().enumerate() {
        draw_node_lane(area, l, &colours, n, l.node_y(i))?;
    }

    // Faults: dashed lines from their label down through every lane.
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

    // Other findings: red diamonds at their times on their clients' lanes.
    for (n, f) in verdict.findings.iter().enumerate() {
        if f.property == Property::MutualExclusion {
            continue;
        }
        for (i, t) in finding_marks(model, f) {
            let y = l.client_y(i) - CLIENT_LANE_H / 2 + 7;
            {
                let x = l.x(t);
                glyph(area, Glyph::OtherFinding, (x, y))?;
                text(
                    area,
                    &format!("#{}", n + 1),
                    (x + 7, y),
                    &font(SMALL - 1.0, true, VIOLATION, HPos::Left),
                )?;
            }
        }
    }

    // Legend.
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

fn draw_node_lane(
    area: &Area,
    l: &Layout,
    colours: &BTreeMap<String, RGBColor>,
    n: &NodeLane,
    y: i32,
) -> DrawResult {
    for s in &n.segments {
        let colour = colour_of(colours, &s.holder);
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
        let g = match change {
            KeyChange::Set => Glyph::KeySet {
                replicated: *replicated,
            },
            KeyChange::Extended => Glyph::KeyExtended {
                replicated: *replicated,
            },
            KeyChange::Deleted => Glyph::KeyDeleted {
                replicated: *replicated,
            },
            KeyChange::Wiped => Glyph::KeyWiped,
            KeyChange::Resynced => Glyph::KeyResynced,
        };
        glyph(area, g, (l.x(*t), y - 12))?;
    }
    Ok(())
}

/// Where a finding's red marks go: each of its times on the lanes of its clients that did
/// something at exactly that time (a write, a grant, a mark), or on all of its clients'
/// lanes when none did.
fn finding_marks(model: &Model, f: &Finding) -> Vec<(usize, u64)> {
    let lanes: Vec<usize> = f
        .clients
        .iter()
        .filter_map(|c| model.clients.iter().position(|l| &l.name == c))
        .collect();
    let mut out = Vec::new();
    for &t in &f.times_us {
        let acted: Vec<usize> = lanes
            .iter()
            .copied()
            .filter(|&i| {
                let lane = &model.clients[i];
                lane.marks.iter().any(|(mt, _)| *mt == t)
                    || lane
                        .holds
                        .iter()
                        .any(|h| h.span.from == t || h.span.to == t)
            })
            .collect();
        let chosen = if acted.is_empty() { &lanes } else { &acted };
        out.extend(chosen.iter().map(|&i| (i, t)));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The overlap window of a mutual-exclusion finding: its first and last time.
fn finding_window(f: &Finding) -> (u64, u64) {
    let from = f.times_us.iter().copied().min().unwrap_or(0);
    let to = f.times_us.iter().copied().max().unwrap_or(from);
    (from, to)
}

// ---- the page --------------------------------------------------------------------------------

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#1e1e1e;max-width:1460px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 8px}\
.meta{color:#555;margin:0 0 12px}.chart{overflow-x:auto;border:1px solid #ddd}\
.chart svg{display:block}table{border-collapse:collapse}\
td,th{padding:3px 12px 3px 0;text-align:left;vertical-align:top;border-bottom:1px solid #e4e4e4}\
.violated{color:#c0161b;font-weight:bold}.holds{color:#1a7f37}\
ol.findings li{margin-bottom:10px}.prop{font-family:monospace;font-weight:bold;color:#c0161b}\
.faults{color:#555;margin:2px 0 0 0}.note{color:#555}";

fn page(title: &str, model: &Model, verdict: &Verdict, svg: &str) -> String {
    let mut h = String::new();
    let t = escape(title);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n"
    );
    let mut meta = Vec::new();
    if let Some(i) = &model.info {
        meta.push(format!("scenario {}", escape(&i.scenario)));
        meta.push(format!("backend {}", escape(&i.backend)));
        meta.push(format!("seed {}", i.seed));
        meta.push(format!("resource {}", escape(&i.resource)));
        match i.ttl_ms {
            Some(ttl) => meta.push(format!("TTL {ttl} ms")),
            None => meta.push("no TTL".to_string()),
        }
    }
    meta.push(format!("history ends at {}", ms3(model.end_us)));
    let _ = writeln!(h, "<p class=\"meta\">{}</p>", meta.join(" · "));
    let _ = writeln!(h, "<div class=\"chart\">\n{svg}</div>");
    if model.nodes.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">No node lanes: the history has no <code>key_changed</code> \
             records (only the simulator writes them).</p>"
        );
    }

    let _ = writeln!(h, "<h2>Findings</h2>");
    if verdict.findings.is_empty() {
        let _ = writeln!(h, "<p>No findings: every property holds.</p>");
    } else {
        let _ = writeln!(h, "<ol class=\"findings\">");
        for f in &verdict.findings {
            let _ = write!(
                h,
                "<li><span class=\"prop\">{}</span>: {}",
                escape(f.property.name()),
                escape(&f.message)
            );
            if f.faults_before.is_empty() {
                let _ = write!(h, "<div class=\"faults\">no faults before</div>");
            } else {
                let _ = write!(h, "<div class=\"faults\">faults before:<ul>");
                for fault in &f.faults_before {
                    let _ = write!(h, "<li>{}</li>", escape(fault));
                }
                let _ = write!(h, "</ul></div>");
            }
            let _ = writeln!(h, "</li>");
        }
        let _ = writeln!(h, "</ol>");
    }

    let _ = writeln!(h, "<h2>Verdict</h2>");
    if !verdict.is_conclusive() {
        let _ = writeln!(
            h,
            "<p style=\"color:#b00\"><b>Inconclusive:</b> the run could not confirm what it was meant to show.</p>\n<ul>"
        );
        for why in &verdict.inconclusive {
            let _ = writeln!(h, "<li>{}</li>", escape(why));
        }
        let _ = writeln!(h, "</ul>");
    }
    let _ = writeln!(
        h,
        "<table>\n<tr><th>property</th><th>outcome</th><th>demands</th></tr>"
    );
    for p in Property::ALL {
        let (class, word) = match verdict.outcome(p) {
            Outcome::Holds => ("holds", "holds".to_string()),
            Outcome::Violated => {
                let n = verdict.findings.iter().filter(|f| f.property == p).count();
                ("violated", format!("VIOLATED ({n})"))
            }
        };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
            escape(p.name()),
            escape(p.describe())
        );
    }
    let _ = writeln!(h, "</table>");

    let _ = writeln!(h, "<h2>Faults</h2>");
    if model.faults.is_empty() {
        let _ = writeln!(h, "<p>No faults were injected.</p>");
    } else {
        let _ = writeln!(
            h,
            "<table>\n<tr><th></th><th>time</th><th>kind</th><th>fault</th></tr>"
        );
        for (i, f) in model.faults.iter().enumerate() {
            let kind = match &f.event {
                Event::Heal(_) => "healed",
                _ if f.observed() => "observed",
                _ => "injected",
            };
            let _ = writeln!(
                h,
                "<tr><td>F{}</td><td>{}</td><td>{kind}</td><td>{}</td></tr>",
                i + 1,
                ms3(f.t_us),
                escape(&f.description)
            );
        }
        let _ = writeln!(h, "</table>");
    }
    let _ = writeln!(h, "</body>\n</html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::{check, CheckConfig, Event};

    fn rec(t_us: u64, event: Event) -> Record {
        Record { t_us, event }
    }

    fn fault(t_us: u64, f: checker::Injected) -> Record {
        rec(t_us, Event::Fault(f))
    }

    fn acquired(t_us: u64, c: &str) -> Record {
        rec(
            t_us,
            Event::Acquired {
                client: c.into(),
                token: format!("tok-{c}"),
                fencing_token: None,
                valid_for_us: Some(29_000_000),
            },
        )
    }

    fn key(t_us: u64, node: &str, holder: &str, replicated: bool) -> Record {
        rec(
            t_us,
            Event::KeyChanged {
                node: node.into(),
                key: "lock:x".into(),
                change: KeyChange::Set,
                replicated,
                holder: Some(holder.into()),
                ttl_left_us: Some(30_000_000),
            },
        )
    }

    /// A hand-made failover double grant.
    fn history() -> Vec<Record> {
        vec![
            rec(
                0,
                Event::RunStarted {
                    scenario: "hand-made".into(),
                    backend: "sim".into(),
                    seed: 1,
                    resource: "lock:x".into(),
                    ttl_ms: Some(30_000),
                    clocks: Default::default(),
                    checker: Default::default(),
                },
            ),
            rec(
                0,
                Event::AcquireStarted {
                    client: "Alice".into(),
                },
            ),
            key(200, "primary", "Alice", false),
            acquired(400, "Alice"),
            fault(
                10_000,
                checker::Injected::Crash {
                    node: "primary".into(),
                },
            ),
            fault(
                20_000,
                checker::Injected::Promote {
                    node: "replica-1".into(),
                },
            ),
            rec(
                100_000,
                Event::AcquireStarted {
                    client: "Bob".into(),
                },
            ),
            key(100_200, "replica-1", "Bob", false),
            acquired(100_400, "Bob"),
            rec(
                1_000_000,
                Event::Write {
                    client: "Bob".into(),
                    fencing_token: None,
                    accepted: true,
                },
            ),
            rec(
                2_000_000,
                Event::Write {
                    client: "Alice".into(),
                    fencing_token: None,
                    accepted: false,
                },
            ),
            rec(
                2_000_800,
                Event::SectionEnded {
                    client: "Alice".into(),
                    why: checker::SectionEnd::Done,
                },
            ),
            rec(
                2_100_400,
                Event::SectionEnded {
                    client: "Bob".into(),
                    why: checker::SectionEnd::Done,
                },
            ),
            rec(3_000_000, Event::RunEnded {}),
        ]
    }

    #[test]
    fn the_page_shows_lanes_faults_and_findings() {
        let recs = history();
        let verdict = check(&recs, &CheckConfig::default());
        assert!(!verdict.findings.is_empty(), "{}", verdict.summary());
        let html = timeline_html("Double <grant>", &recs, &verdict);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<svg"), "no svg");
        assert!(html.contains("</svg>"));
        assert!(html.contains("Double &lt;grant&gt;"), "title not escaped");
        for needle in [
            "Alice",
            "Bob",
            "primary",
            "replica-1",
            "crash primary",
            "promote replica-1 to primary",
            "both hold",
        ] {
            assert!(html.contains(needle), "missing {needle:?}");
        }
        for f in &verdict.findings {
            assert!(
                html.contains(&escape(&f.message)),
                "missing {:?}",
                f.message
            );
            for fault in &f.faults_before {
                assert!(html.contains(&escape(fault)), "missing {fault:?}");
            }
        }
        // Self-contained: nothing fetched from elsewhere.
        for bad in ["<script", "<link", "@import", "url(", "src="] {
            assert!(!html.contains(bad), "found {bad:?}");
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let recs = history();
        let verdict = check(&recs, &CheckConfig::default());
        let a = timeline_html("t", &recs, &verdict);
        let b = timeline_html("t", &recs.clone(), &verdict.clone());
        assert_eq!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn without_key_changes_there_are_no_node_lanes() {
        let recs: Vec<Record> = history()
            .into_iter()
            .filter(|r| !matches!(r.event, Event::KeyChanged { .. }))
            .collect();
        let verdict = check(&recs, &CheckConfig::default());
        let html = timeline_html("real", &recs, &verdict);
        assert!(html.contains("<svg"));
        assert!(!html.contains("Redis nodes"));
        assert!(html.contains("No node lanes"));
    }

    #[test]
    fn clocks_off_true_time_are_drawn_with_their_lanes() {
        let mut recs = history();
        let Event::RunStarted { clocks, .. } = &mut recs[0].event else {
            panic!("the history starts with run_started");
        };
        let start = |offset_ms, rate| checker::ClockStart { offset_ms, rate };
        clocks.insert("Alice".into(), start(500.0, 1.0));
        clocks.insert("replica-1".into(), start(0.0, 1.01));
        recs.push(fault(
            2_000_000,
            checker::Injected::ClockJump {
                target: "Alice".into(),
                by_ms: 1000,
            },
        ));
        let verdict = check(&recs, &CheckConfig::default());
        let html = timeline_html("clocks", &recs, &verdict);
        for needle in [
            "clock +500 ms",  // Alice's start, under her name
            "clock +1500 ms", // after her jump, at the jump
            "clock rate 1.01",
        ] {
            assert!(html.contains(needle), "missing {needle:?}");
        }
        // replica-1 runs 1 % fast: by the end of the axis it is ahead by 1 % of the run.
        let model = Model::from_records(&recs);
        let drift = model.clocks["replica-1"].offset_at(model.end_us);
        assert!((drift - model.end_us as f64 / 1000.0 * 0.01).abs() < 1e-6);
        assert!(html.contains(&format!("clock {drift:+.0} ms here")));
        // Without clocks off true time, no clock labels.
        let plain = timeline_html("plain", &history(), &verdict);
        assert!(!plain.contains("clock +"));
    }

    #[test]
    fn an_empty_history_still_renders() {
        let verdict = check(&[], &CheckConfig::default());
        let html = timeline_html("empty", &[], &verdict);
        assert!(html.contains("<svg") && html.contains("No findings"));
    }

    #[test]
    fn ticks_are_one_two_or_five() {
        assert_eq!(tick_step(5_000_000), 500_000);
        assert_eq!(tick_step(1_000), 100);
        assert_eq!(tick_step(30_000_000), 5_000_000);
    }

    #[test]
    fn crowded_fault_labels_take_separate_rows() {
        let recs = vec![
            fault(
                10_000,
                checker::Injected::Crash {
                    node: "primary".into(),
                },
            ),
            fault(
                20_000,
                checker::Injected::Promote {
                    node: "replica-1".into(),
                },
            ),
            rec(5_000_000, Event::RunEnded {}),
        ];
        let m = Model::from_records(&recs);
        let l = Layout::new(&m, 1);
        assert_eq!(l.fault_rows.len(), 2);
        assert_ne!(l.fault_rows[0].row, l.fault_rows[1].row);
    }
}
