use super::*;
use checker::tune::{Decision, Rate, Recommendation, INTERVAL_METHOD};
use lock_core::RetryPolicy;

/// Four critical sections per seed, ten seeds; below `safe_from` nine seeds and twelve
/// sections break.
fn points(retry: &RetryPolicy, safe_from: u64) -> Vec<TunePoint> {
    [250, 1000, 4000]
        .into_iter()
        .map(|ttl_ms| {
            let broken = ttl_ms < safe_from;
            point(
                retry,
                ttl_ms,
                if broken { 9 } else { 0 },
                if broken { 12 } else { 0 },
                40,
            )
        })
        .collect()
}

fn point(
    retry: &RetryPolicy,
    ttl_ms: u64,
    seeds_broken: u64,
    sections_broken: u64,
    sections: u64,
) -> TunePoint {
    TunePoint {
        ttl_ms,
        setting: Setting {
            watchdog: false,
            retry: retry.clone(),
        },
        seeds: 10,
        mutual_exclusion_violations: seeds_broken,
        unsafe_write_violations: 0,
        unavailable_ms: Some((ttl_ms as f64, ttl_ms as f64 * 1.2)),
        acquire_ms: Some((0.4, 2.0)),
        acquisitions: 40,
        gave_up: 2,
        throughput_per_s: 1.5,
        inconclusive: 0,
        per_seed: Rate::wilson(seeds_broken, 10),
        per_section: Rate::wilson(sections_broken, sections),
        decision: None,
        bisected: false,
    }
}

fn rec(retry: &RetryPolicy, ttl_ms: Option<u64>) -> Recommendation {
    Recommendation {
        setting: Setting {
            watchdog: false,
            retry: retry.clone(),
        },
        ttl_ms,
        seeds_spent: 30,
        undecided_ttls_ms: vec![],
    }
}

/// An old-style sweep: no risk target, no bisection, no production rate.
fn report() -> TuneReport {
    let retry = RetryPolicy::default();
    TuneReport {
        scenario: "s".into(),
        points: points(&retry, 4000),
        three_x_rule_ms: 900.0,
        recommended: vec![rec(&retry, Some(4000))],
        interval_method: INTERVAL_METHOD.into(),
        max_risk: None,
        resolution_ms: None,
        rate_per_s: None,
    }
}

/// A sweep against `--max-risk 1e-4 --resolution-ms 125 --rate-per-s 50`: 250 ms broken,
/// 1000 ms undecided, 1500 ms (bisected) and 4000 ms safe.
fn risky() -> TuneReport {
    let retry = RetryPolicy::default();
    let mut pts = vec![
        point(&retry, 250, 9, 30, 40_000),
        point(&retry, 1000, 0, 0, 10_000),
        point(&retry, 1500, 0, 0, 100_000),
        point(&retry, 4000, 0, 0, 100_000),
    ];
    let decisions = [
        Decision::Broken,
        Decision::Undecided,
        Decision::Safe,
        Decision::Safe,
    ];
    for (p, d) in pts.iter_mut().zip(decisions) {
        p.decision = Some(d);
    }
    pts[2].bisected = true;
    let mut r = rec(&retry, Some(1500));
    r.seeds_spent = 1234;
    r.undecided_ttls_ms = vec![1000];
    TuneReport {
        scenario: "s".into(),
        points: pts,
        three_x_rule_ms: 900.0,
        recommended: vec![r],
        interval_method: INTERVAL_METHOD.into(),
        max_risk: Some(1e-4),
        resolution_ms: Some(125),
        rate_per_s: Some(50.0),
    }
}

/// Two retry policies: the patient one is safe from 1000 ms, the other never.
fn two_policies() -> TuneReport {
    let patient: RetryPolicy = "max=forever,base=10,cap=100".parse().unwrap();
    let hasty: RetryPolicy = "none".parse().unwrap();
    let mut pts = points(&patient, 1000);
    pts.extend(points(&hasty, u64::MAX));
    TuneReport {
        recommended: vec![rec(&patient, Some(1000)), rec(&hasty, None)],
        points: pts,
        ..report()
    }
}

const COMMAND: &str = "locksim tune s.json";

/// The Markdown table row of TTL `ttl` (starting at its TTL cell).
fn row(md: &str, table: &str, ttl: &str) -> String {
    let start = md.find(table).unwrap_or_else(|| panic!("no {table}: {md}"));
    md[start..]
        .lines()
        .find(|l| l.contains(&format!("| {ttl} |")) || l.contains(&format!("| {ttl} (bisected) |")))
        .unwrap_or_else(|| panic!("no row {ttl} in {table}: {md}"))
        .to_string()
}

const RATES: &str = "## Break rates";
const COSTS: &str = "## Seeds broken by kind";

#[test]
fn markdown_names_the_recommendation_and_every_row() {
    let md = sweep_markdown(&report(), COMMAND);
    assert!(md.contains("**recommended TTL 4000 ms**"), "{md}");
    assert!(md.contains("3 × work = 900 ms"));
    assert!(
        md.contains("| off | max=5,base=50,cap=1000,jitter=1 | 250 | 90.0 % | 0.0 % |"),
        "{md}"
    );
    assert!(md.contains("| 5.0 % | 1.50 |"), "2 of 40 gave up: {md}");
    // Every row in both tables.
    assert_eq!(md.matches("\n| off |").count(), 6);
    assert!(md.contains("- watchdog off: **recommended"), "{md}");
    assert!(md.contains("30 seeds run for this series."), "{md}");
    assert!(!md.contains("Inconclusive seeds"), "{md}");
}

#[test]
fn rates_carry_their_intervals_and_the_method_is_named() {
    let md = sweep_markdown(&report(), COMMAND);
    assert!(md.contains(INTERVAL_METHOD), "{md}");
    assert!(md.contains("## How to read this"), "{md}");
    assert!(
        md.contains("0 breaks in 10 seeds only says the per-seed rate is below 27.8 %"),
        "{md}"
    );
    assert_eq!(
        row(&md, RATES, "250"),
        "| off | max=5,base=50,cap=1000,jitter=1 | 250 | 10 | 9 / 10: 90 % (59.6–98.2 %) | 12 / 40: 30 % (18.1–45.4 %) |"
    );
    assert_eq!(
        row(&md, RATES, "4000"),
        "| off | max=5,base=50,cap=1000,jitter=1 | 4000 | 10 | 0 / 10 (0–27.8 %) | 0 / 40 (0–8.8 %) |"
    );
    // The recommendation quotes the bound at its TTL.
    assert!(
        md.contains("There: broken sections 0 / 40 (0–8.8 %)"),
        "{md}"
    );
    // Without a risk target, a production rate or bisection: none of their columns.
    for absent in [
        "decision vs",
        "violations/day",
        "(bisected)",
        "Undecided",
        "bisection to",
    ] {
        assert!(!md.contains(absent), "{absent}: {md}");
    }
}

#[test]
fn a_risk_target_decides_every_ttl_and_says_how_the_answer_was_found() {
    let md = sweep_markdown(&risky(), COMMAND);
    assert!(
        md.contains("**recommended TTL 1500 ms** — the smallest TTL whose per-section break rate has a 95 % upper bound ≤ the target 1e-4, found by bisection to 125 ms"),
        "{md}"
    );
    assert!(md.contains("1234 seeds run for this series."), "{md}");
    assert!(md.contains("**Undecided** (the seed budget ran out with the target inside the interval): TTL 1000 ms."), "{md}");
    assert!(
        md.contains("| decision vs 1e-4 | violations/day at 50/s |"),
        "{md}"
    );
    let cells = |ttl| {
        let r = row(&md, RATES, ttl);
        r.split(" | ")
            .skip(5)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        cells("250"),
        [
            "30 / 40000: 0.075 % (0.053–0.11 %)",
            "**broken**",
            "3240 (≤ 4624) |"
        ]
    );
    assert_eq!(
        cells("1000"),
        ["0 / 10000 (0–384 ppm)", "undecided", "0 (≤ 1659) |"]
    );
    assert_eq!(
        cells("1500"),
        ["0 / 100000 (0–38.4 ppm)", "safe", "0 (≤ 166) |"]
    );
    assert!(row(&md, RATES, "1500").contains("| 1500 (bisected) |"));
    assert!(row(&md, COSTS, "1500").contains("| 1500 (bisected) |"));
    assert!(
        md.contains("at 50 sections/s, 0 violations a day (≤ 166 at 95 %)"),
        "{md}"
    );
    assert!(md.contains("**Violations per day**"), "{md}");
    assert!(md.contains("A TTL marked (bisected)"), "{md}");
}

#[test]
fn no_ttl_meeting_the_target_is_said() {
    let mut r = risky();
    r.recommended[0].ttl_ms = None;
    let md = sweep_markdown(&r, COMMAND);
    assert!(
        md.contains("**no TTL tried met the risk target** 1e-4 per critical section"),
        "{md}"
    );
    assert!(!md.contains("There:"), "{md}");
}

#[test]
fn inconclusive_seeds_are_listed_and_unsafe() {
    let mut r = report();
    r.points[2].inconclusive = 3;
    assert!(!r.points[2].safe());
    let md = sweep_markdown(&r, COMMAND);
    assert!(md.contains("**Inconclusive seeds**"), "{md}");
    assert!(
        md.contains("- watchdog off, TTL 4000 ms: 3 of 10 seeds"),
        "{md}"
    );
}

#[test]
fn several_retry_policies_are_named_and_drawn_apart() {
    let r = two_policies();
    let md = sweep_markdown(&r, COMMAND);
    assert!(
        md.contains("- watchdog off, retry max=forever,base=10,cap=100,jitter=1: **recommended TTL 1000 ms**"),
        "{md}"
    );
    assert!(
        md.contains(
            "- watchdog off, retry max=1,base=50,cap=1000,jitter=1: **no swept TTL was safe**"
        ),
        "{md}"
    );
    let html = sweep_html(&r, COMMAND);
    // Per series and TTL chart, a line and its legend key, in a colour of its own.
    for colour in ["#0072B2", "#E69F00"] {
        let line = format!("stroke=\"{colour}\" stroke-width=\"2\"");
        assert!(html.matches(&line).count() >= 4, "{colour}: {html}");
    }
    // Both TTL charts and the trade-off chart.
    assert_eq!(html.matches("recommended 1000 ms").count(), 3);
    // The swept TTLs label the axis.
    for ttl in ["250", "1000", "4000"] {
        assert!(html.contains(&format!("\n{ttl}\n</text>")), "{ttl}: {html}");
    }
}

#[test]
fn html_has_three_charts_and_is_deterministic() {
    let html = sweep_html(&report(), COMMAND);
    assert_eq!(html.matches("<svg").count(), 3, "{html}");
    assert!(html.contains("recommended 4000 ms"));
    assert!(html.contains("<table>"));
    assert_eq!(html, sweep_html(&report(), COMMAND));
    let risky_html = sweep_html(&risky(), COMMAND);
    assert_eq!(risky_html, sweep_html(&risky(), COMMAND));
}

/// The trade-off chart alone (the first SVG of the page).
fn tradeoff_svg(r: &TuneReport) -> String {
    let svg = tradeoff::chart(r);
    assert!(svg.starts_with("<svg"), "{svg}");
    svg
}

#[test]
fn the_tradeoff_chart_marks_the_recommendation_and_the_target() {
    let svg = tradeoff_svg(&risky());
    assert!(
        svg.contains("Risk per critical section against unavailability"),
        "{svg}"
    );
    assert_eq!(svg.matches("recommended 1500 ms").count(), 1, "{svg}");
    // The ring around the recommended point.
    assert_eq!(svg.matches("r=\"9\"").count(), 1, "{svg}");
    assert!(svg.contains("max risk 1e-4"), "{svg}");
    // The target's line: dashes across the plot, at one height.
    let dashes: Vec<&str> = svg
        .lines()
        .filter(|l| l.contains("stroke=\"#D7191C\" stroke-width=\"2\""))
        .collect();
    assert!(dashes.len() > 20, "{svg}");
    let height = |l: &str| {
        l.split("points=\"")
            .nth(1)
            .and_then(|p| p.split([',', ' ']).nth(1))
            .map(str::to_string)
    };
    assert!(
        dashes.iter().all(|l| height(l) == height(dashes[0])),
        "{dashes:?}"
    );
    // Three TTLs with no break seen are drawn as upper bounds (a triangle each), one with an
    // estimate (a dot), plus the legend's.
    assert_eq!(svg.matches("<polygon").count(), 3, "{svg}");
    assert_eq!(svg, tradeoff_svg(&risky()));

    let old = tradeoff_svg(&report());
    assert!(old.contains("recommended 4000 ms"), "{old}");
    assert!(!old.contains("max risk"), "{old}");
    assert!(!old.contains("#D7191C"), "{old}");
}

#[test]
fn the_tradeoff_chart_places_only_points_with_a_holder_crash() {
    let mut r = risky();
    r.points[0].unavailable_ms = None;
    let svg = tradeoff_svg(&r);
    assert!(svg.contains("1 setting(s) saw no holder crash"), "{svg}");
    assert_eq!(svg.matches("<polygon").count(), 3, "{svg}");
    for p in &mut r.points {
        p.unavailable_ms = None;
    }
    assert!(tradeoff::chart(&r).starts_with("<p>"), "nothing to draw");
}

#[test]
fn a_ttl_every_series_recommends_is_named_once_and_ringed_per_series() {
    let fast: RetryPolicy = "none".parse().unwrap();
    let mut r = report();
    let mut other = points(&fast, 4000);
    for p in &mut other {
        p.setting.watchdog = true;
    }
    r.points.extend(other);
    let mut second = rec(&fast, Some(4000));
    second.setting.watchdog = true;
    r.recommended.push(second);
    let svg = tradeoff_svg(&r);
    assert_eq!(
        svg.matches("recommended 4000 ms (all series)").count(),
        1,
        "{svg}"
    );
    assert_eq!(svg.matches("recommended 4000 ms").count(), 1, "{svg}");
    assert_eq!(svg.matches("r=\"9\"").count(), 2, "{svg}");
}
