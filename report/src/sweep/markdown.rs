//! The sweep as Markdown: per series how the recommendation was found and what it cost in
//! seeds, how to read the intervals, the break rates with their intervals (and decisions,
//! and violations per day), and what each setting costs.

use super::format::{bound, per_day, rate, risk, sig};
use super::{fraction, label, series_points, several_retries, wd};
use checker::tune::{Decision, Rate, Recommendation, TunePoint, TuneReport};
use std::fmt::Write as _;

/// The sweep `report` as Markdown; `command` is what produced it.
pub fn sweep_markdown(report: &TuneReport, command: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# TTL sweep: {}\n", report.scenario);
    let _ = writeln!(s, "Made with `{command}`.\n");
    let with_retry = several_retries(report);
    for rec in &report.recommended {
        let _ = writeln!(s, "{}", recommendation(report, rec, with_retry));
    }
    how_to_read(&mut s, report);
    rates_table(&mut s, report);
    costs_table(&mut s, report);
    inconclusive(&mut s, report, with_retry);
    s
}

/// One series' bullet: its recommended TTL, how it was found, its rates there, the seeds it
/// took and the TTLs the budget left undecided.
fn recommendation(report: &TuneReport, rec: &Recommendation, with_retry: bool) -> String {
    let name = label(&rec.setting, with_retry);
    let rule = format!(
        "(rule of thumb 3 × work = {:.0} ms)",
        report.three_x_rule_ms
    );
    let bisected = series_points(report, &rec.setting).any(|p| p.bisected);
    let mut s = match (report.max_risk, rec.ttl_ms) {
        (None, Some(t)) => format!(
            "- {name}: **recommended TTL {t} ms** — the smallest swept TTL with no mutual-exclusion violation and no stale write in any seed {rule}."
        ),
        (None, None) => format!("- {name}: **no swept TTL was safe** in every seed {rule}."),
        (Some(p), Some(t)) => {
            let how = match report.resolution_ms {
                Some(r) if bisected => format!("found by bisection to {r} ms"),
                _ => "among the swept TTLs".to_string(),
            };
            format!(
                "- {name}: **recommended TTL {t} ms** — the smallest TTL whose per-section break rate has a 95 % upper bound ≤ the target {}, {how} {rule}.",
                risk(p)
            )
        }
        (Some(p), None) => format!(
            "- {name}: **no TTL tried met the risk target** {} per critical section {rule}.",
            risk(p)
        ),
    };
    let at = rec
        .ttl_ms
        .and_then(|t| series_points(report, &rec.setting).find(|p| p.ttl_ms == t));
    if let Some(p) = at {
        let _ = write!(
            s,
            " There: broken sections {}, broken seeds {}",
            rate(&p.per_section),
            rate(&p.per_seed)
        );
        if let Some(r) = report.rate_per_s {
            let (estimate, upper) = p.violations_per_day(r);
            let _ = write!(
                s,
                "; at {} sections/s, {} violations a day (≤ {} at 95 %)",
                sig(r),
                sig(estimate),
                sig(upper)
            );
        }
        s.push('.');
    }
    let _ = write!(s, " {} seeds run for this series.", rec.seeds_spent);
    if !rec.undecided_ttls_ms.is_empty() {
        let ttls: Vec<String> = rec.undecided_ttls_ms.iter().map(u64::to_string).collect();
        let _ = write!(
            s,
            " **Undecided** (the seed budget ran out with the target inside the interval): TTL {} ms.",
            ttls.join(", ")
        );
    }
    s
}

/// The "how to read this" section: what the intervals, decisions, markers and per-day
/// counts mean.
fn how_to_read(s: &mut String, report: &TuneReport) {
    // The bound zero breaks give, at this sweep's seed count.
    let n = report
        .points
        .first()
        .map_or(200, |p| p.per_seed.trials)
        .max(1);
    let zero = Rate::wilson(0, n);
    let _ = writeln!(s, "\n## How to read this\n");
    let _ = writeln!(
        s,
        "Each break rate is breaks / trials with its 95 % confidence interval ({}). **Broken seeds**: seeds in which mutual exclusion broke or a stale write was accepted, of the conclusive seeds. **Broken sections**: critical sections that overlapped another holder's or had a stale write accepted, of all critical sections run in those seeds. No break seen bounds a rate, it does not prove it zero: 0 breaks in {n} seeds only says the per-seed rate is below {} at 95 % confidence. An interval that stays below 0.1 % is in ppm (parts per million, 1 ppm = 1e-6).",
        report.interval_method,
        bound(&zero)
    );
    if let Some(p) = report.max_risk {
        let _ = writeln!(
            s,
            "\n**Decision** against the target {} per critical section (`--max-risk`): **safe** when the per-section interval's upper bound is ≤ the target, **broken** when its lower bound is above it, **undecided** when the seed budget ran out with the target still inside the interval.",
            risk(p)
        );
    }
    if report.points.iter().any(|p| p.bisected) {
        let _ = writeln!(
            s,
            "\nA TTL marked (bisected) was not in `--ttl-ms`: bisection tried it between the largest broken and the smallest safe TTL."
        );
    }
    if let Some(r) = report.rate_per_s {
        let _ = writeln!(
            s,
            "\n**Violations per day** at {} critical sections per second: the per-section rate × {} × 86,400, the estimate and (≤) its 95 % upper bound.",
            sig(r),
            sig(r)
        );
    }
}

/// `watchdog | retry | TTL ms` of a row, the TTL marked when bisection chose it.
fn key(p: &TunePoint) -> String {
    let marker = if p.bisected { " (bisected)" } else { "" };
    format!(
        "| {} | {} | {}{marker} |",
        wd(p.setting.watchdog),
        p.setting.retry,
        p.ttl_ms
    )
}

fn decision(d: Option<Decision>) -> &'static str {
    match d {
        Some(Decision::Safe) => "safe",
        Some(Decision::Broken) => "**broken**",
        Some(Decision::Undecided) => "undecided",
        None => "—",
    }
}

/// The break rates per setting: seeds, per seed and per section with their intervals, the
/// decision (with `--max-risk`) and the violations per day (with `--rate-per-s`).
fn rates_table(s: &mut String, report: &TuneReport) {
    let _ = writeln!(s, "\n## Break rates (95 % intervals)\n");
    let mut head =
        "| watchdog | retry | TTL ms | seeds | broken seeds | broken sections |".to_string();
    let mut rule = "|---|---|---|---|---|---|".to_string();
    if let Some(p) = report.max_risk {
        let _ = write!(head, " decision vs {} |", risk(p));
        rule.push_str("---|");
    }
    if let Some(r) = report.rate_per_s {
        let _ = write!(head, " violations/day at {}/s |", sig(r));
        rule.push_str("---|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for p in &report.points {
        let _ = write!(
            s,
            "{} {} | {} | {} |",
            key(p),
            p.seeds,
            rate(&p.per_seed),
            rate(&p.per_section)
        );
        if report.max_risk.is_some() {
            let _ = write!(s, " {} |", decision(p.decision));
        }
        if let Some(r) = report.rate_per_s {
            let _ = write!(s, " {} |", per_day(p.violations_per_day(r)));
        }
        s.push('\n');
    }
}

fn pair(p: Option<(f64, f64)>) -> String {
    p.map_or("—".into(), |(a, b)| format!("{a:.1} / {b:.1}"))
}

/// What each setting costs and how it behaved: the share of seeds with each kind of break,
/// unavailability, acquire latency, acquisitions given up and throughput.
fn costs_table(s: &mut String, report: &TuneReport) {
    let _ = writeln!(
        s,
        "\n## Seeds broken by kind, and costs\n\n| watchdog | retry | TTL ms | mutual exclusion broken | stale write accepted | unavailable after holder crash, ms (median / worst) | acquire ms (p50 / p99) | acquisitions given up | sections/s |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in &report.points {
        let _ = writeln!(
            s,
            "{} {:.1} % | {:.1} % | {} | {} | {:.1} % | {:.2} |",
            key(r),
            100.0 * fraction(r.mutual_exclusion_violations, r.seeds),
            100.0 * fraction(r.unsafe_write_violations, r.seeds),
            pair(r.unavailable_ms),
            pair(r.acquire_ms),
            100.0 * fraction(r.gave_up, r.acquisitions),
            r.throughput_per_s
        );
    }
}

/// The settings with inconclusive seeds, which are never called safe.
fn inconclusive(s: &mut String, report: &TuneReport, with_retry: bool) {
    let unproven: Vec<&TunePoint> = report
        .points
        .iter()
        .filter(|r| r.inconclusive > 0)
        .collect();
    if unproven.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n**Inconclusive seeds** (cut short by the simulator's event budget, or an `after` condition never seen): a setting with any is not called safe."
    );
    for r in unproven {
        let _ = writeln!(
            s,
            "- {}, TTL {} ms: {} of {} seeds",
            label(&r.setting, with_retry),
            r.ttl_ms,
            r.inconclusive,
            r.seeds
        );
    }
}
