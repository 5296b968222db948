//! `locksim tune`: the sweep's recommendation is backed by its numbers, and bad sweeps are
//! refused.

mod common;
use common::load;
use explore::tune::{tune, TuneConfig, TuneError};
use locksim::lock_core::RetryPolicy;
use locksim::scenario::Scenario;
use std::path::Path;
use std::process::Command;

fn quiet(_: u64) {}

#[test]
fn the_recommended_ttl_is_the_smallest_one_no_seed_broke() {
    let s = load("tune-workers.json");
    let config = TuneConfig {
        ttls_ms: vec![8000, 250, 2000],
        watchdog: vec![false],
        retries: vec![s.recipe.retry.clone()],
        seeds: 60,
        jobs: 2,
    };
    let report = tune(&s, &config, &quiet).unwrap();
    let ttls: Vec<u64> = report.points.iter().map(|p| p.ttl_ms).collect();
    assert_eq!(ttls, vec![250, 2000, 8000], "swept in ascending order");
    let short = &report.points[0];
    assert!(
        short.mutual_exclusion_violations > 0,
        "a 250 ms TTL breaks under 1.5 s pauses: {short:?}"
    );
    assert_eq!(report.recommended.len(), 1);
    let recommended = report.recommended[0].ttl_ms.expect("some TTL is safe");
    let first_safe = report.points.iter().find(|p| p.safe()).map(|p| p.ttl_ms);
    assert_eq!(Some(recommended), first_safe);
    assert!(report
        .points
        .iter()
        .filter(|p| p.ttl_ms < recommended)
        .all(|p| !p.safe()));
    // The rule of thumb (3 × the 100 ms median work) is below what the sweep found safe.
    assert_eq!(report.three_x_rule_ms, 300.0);
    assert!((recommended as f64) > report.three_x_rule_ms);
    // A longer TTL keeps the lock unavailable longer after its holder dies.
    let unavailable = |ttl: u64| {
        report
            .points
            .iter()
            .find(|p| p.ttl_ms == ttl)
            .and_then(|p| p.unavailable_ms)
            .unwrap()
            .0
    };
    assert!(unavailable(8000) > unavailable(250));
}

#[test]
fn retry_policies_are_swept_as_series_of_their_own() {
    let s = load("tune-workers.json");
    let once: RetryPolicy = "none".parse().unwrap();
    let patient: RetryPolicy = "max=forever,base=10,cap=100,jitter=1".parse().unwrap();
    let config = TuneConfig {
        ttls_ms: vec![250, 4000],
        watchdog: vec![true],
        retries: vec![once.clone(), patient.clone()],
        seeds: 30,
        jobs: 2,
    };
    let report = tune(&s, &config, &quiet).unwrap();
    assert_eq!(report.points.len(), 4);
    assert_eq!(report.recommended.len(), 2);
    let series = |r: &RetryPolicy| {
        report
            .points
            .iter()
            .filter(|p| p.setting.retry == *r)
            .collect::<Vec<_>>()
    };
    // Three workers contend for one lock: one attempt each gives up often, retrying forever
    // never gives up.
    for p in series(&once) {
        assert!(p.gave_up > 0, "{p:?}");
        assert!(p.gave_up <= p.acquisitions);
    }
    for p in series(&patient) {
        assert_eq!(p.gave_up, 0, "{p:?}");
        assert!(p.acquisitions > 0);
    }
    // Each series' recommendation is its own smallest safe TTL.
    for rec in &report.recommended {
        let first_safe = series(&rec.setting.retry)
            .into_iter()
            .find(|p| p.safe())
            .map(|p| p.ttl_ms);
        assert_eq!(rec.ttl_ms, first_safe, "{rec:?}");
    }
}

#[test]
fn bad_sweeps_are_refused() {
    let s = load("tune-workers.json");
    let base = TuneConfig {
        ttls_ms: vec![1000],
        watchdog: vec![true],
        retries: vec![RetryPolicy::default()],
        seeds: 1,
        jobs: 1,
    };
    let with = |f: &dyn Fn(&mut TuneConfig)| {
        let mut c = base.clone();
        f(&mut c);
        tune(&s, &c, &quiet).unwrap_err()
    };
    assert_eq!(
        with(&|c| c.ttls_ms.clear()),
        TuneError::EmptySweep("--ttl-ms")
    );
    assert_eq!(
        with(&|c| c.retries.clear()),
        TuneError::EmptySweep("--retry")
    );
    // A policy the recipe refuses stops the sweep before any seed runs, naming the field.
    let e = with(&|c| c.retries = vec!["base=500,cap=100".parse().unwrap()]).to_string();
    assert!(e.contains("retry.cap_ms"), "{e}");
    assert_eq!(with(&|c| c.ttls_ms = vec![500, 0]), TuneError::ZeroTtl);
    assert_eq!(with(&|c| c.seeds = 0), TuneError::NoSeeds);
    assert_eq!(with(&|c| c.jobs = 0), TuneError::NoJobs);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_locksim"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let out = run(&["tune", "scenarios/tune-workers.json", "--ttl-ms", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TTL of 0 ms"));
    let out = run(&[
        "tune",
        "scenarios/tune-workers.json",
        "--ttl-ms",
        "1000",
        "--retry",
        "max=3,speed=9",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--retry: retry policy `max=3,speed=9`: unknown key `speed`"),
        "{err}"
    );
    // A work distribution whose p99 is below its p50 is refused with its field.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tune-workers.json"),
    )
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["clients"][0]["work_ms"] = serde_json::json!({"lognormal_ms": {"p50": 100, "p99": 50}});
    let e = Scenario::parse(&v.to_string(), Path::new("w.json")).unwrap_err();
    assert_eq!(e.field, "clients[0].work_ms");
    assert!(
        e.reason.contains("p99 (50) must not be below p50 (100)"),
        "{e}"
    );
}

/// Seeds that cannot be judged (here: an `after` condition that is never met, so A never
/// starts and nothing could break) are counted, keep the setting from being called safe, and
/// make `locksim tune` exit 3.
#[test]
fn inconclusive_seeds_are_never_a_safe_ttl() {
    let s = common::never_dropped();
    let config = TuneConfig {
        ttls_ms: vec![30_000],
        watchdog: vec![false],
        retries: vec![s.recipe.retry.clone()],
        seeds: 4,
        jobs: 2,
    };
    let report = tune(&s, &config, &quiet).unwrap();
    let p = &report.points[0];
    assert_eq!(
        (p.inconclusive, p.mutual_exclusion_violations),
        (4, 0),
        "{p:?}"
    );
    assert!(!p.safe());
    assert_eq!(report.recommended[0].ttl_ms, None);

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tune-inconclusive");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("never-dropped.json");
    std::fs::write(&file, serde_json::to_string(&s).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_locksim"))
        .args([
            "tune",
            file.to_str().unwrap(),
            "--ttl-ms",
            "30000",
            "--seeds",
            "2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("**Inconclusive seeds**"), "{stdout}");
}
