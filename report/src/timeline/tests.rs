use super::axis::tick_step;
use super::layout::Layout;
use super::timeline_html;
use crate::html::escape;
use crate::model::Model;
use checker::{check, CheckConfig, Event, KeyChange, Record};

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
            token: format!("tok-{c}").into(),
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
            Event::RunStarted(Box::new(checker::RunStart {
                scenario: "hand-made".into(),
                backend: "sim".into(),
                seed: 1,
                resource: "lock:x".into(),
                ttl_ms: Some(30_000),
                clocks: Default::default(),
                checker: Default::default(),
            })),
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
    let Event::RunStarted(start) = &mut recs[0].event else {
        panic!("the history starts with run_started");
    };
    let clocks = &mut start.clocks;
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
