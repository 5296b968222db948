//! The checker's findings on the chart: each `mutual_exclusion` finding's overlap window
//! shaded red across the client lanes, and every other finding as numbered red marks at its
//! times on its clients' lanes.

use super::layout::{Layout, CLIENT_LANE_H, HEADING_H, SMALL};
use super::shapes::{glyph, line, rect, text, Area, DrawResult, Glyph};
use super::style::{font, VIOLATION};
use crate::html::ms_short;
use crate::model::Model;
use checker::{Finding, Property, Verdict};
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

/// Shades each mutual-exclusion finding's overlap window across the client lanes, labelled
/// with its number, its clients and its times.
pub(super) fn overlap_windows(
    area: &Area,
    l: &Layout,
    model: &Model,
    verdict: &Verdict,
) -> DrawResult {
    for (n, f) in verdict.findings.iter().enumerate() {
        if f.property != Property::MutualExclusion || model.clients.is_empty() {
            continue;
        }
        let (from, to) = finding_window(f);
        let (x0, x1) = (l.x(from), l.x(to).max(l.x(from) + 2));
        rect(
            area,
            (x0, l.client_top),
            (x1, l.clients_bottom),
            VIOLATION.mix(0.16).filled(),
        )?;
        for x in [x0, x1] {
            line(
                area,
                (x, l.client_top),
                (x, l.clients_bottom),
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
    Ok(())
}

/// Marks every other finding: a red diamond and its number at each of its times on its
/// clients' lanes.
pub(super) fn other_findings(
    area: &Area,
    l: &Layout,
    model: &Model,
    verdict: &Verdict,
) -> DrawResult {
    for (n, f) in verdict.findings.iter().enumerate() {
        if f.property == Property::MutualExclusion {
            continue;
        }
        for (i, t) in finding_marks(model, f) {
            let (x, y) = (l.x(t), l.client_y(i) - CLIENT_LANE_H / 2 + 7);
            glyph(area, Glyph::OtherFinding, (x, y))?;
            text(
                area,
                &format!("#{}", n + 1),
                (x + 7, y),
                &font(SMALL - 1.0, true, VIOLATION, HPos::Left),
            )?;
        }
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
