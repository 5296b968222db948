//! `locksim tune`: the sweep's recommendation is backed by its numbers, and bad sweeps are
//! refused.

mod common;
use common::load;
use explore::tune::{tune, Decision, TuneConfig, TuneError, TuneReport};
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
        ..TuneConfig::new(vec![], RetryPolicy::default(), 1)
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
        ..TuneConfig::new(vec![], RetryPolicy::default(), 1)
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
        ..TuneConfig::new(vec![], RetryPolicy::default(), 1)
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
    for p in [0.0, 1.0, -1e-4, f64::NAN] {
        let e = with(&|c| c.max_risk = Some(p));
        assert!(matches!(e, TuneError::BadRisk(_)), "{e}");
    }
    assert_eq!(with(&|c| c.resolution_ms = 0), TuneError::ZeroResolution);
    assert_eq!(
        with(&|c| c.rate_per_s = Some(-1.0)),
        TuneError::BadRate(-1.0)
    );
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
    for (flag, value, says) in [
        ("--max-risk", "1.5", "strictly between 0 and 1"),
        ("--max-risk", "0", "strictly between 0 and 1"),
        ("--resolution-ms", "0", "--resolution-ms must be at least 1"),
        (
            "--rate-per-s",
            "-3",
            "--rate-per-s -3: must be a finite number",
        ),
    ] {
        let out = run(&[
            "tune",
            "scenarios/tune-workers.json",
            "--ttl-ms",
            "1000",
            flag,
            value,
        ]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
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
        ..TuneConfig::new(vec![], RetryPolicy::default(), 1)
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

/// One holder A, no watchdog, 200 ms of work under a TTL of `ttl_ms`. At exactly 100 ms
/// (inside its section) A may stall, for a time the fault space draws uniform on
/// [1, 1001] ms; B, started at 10 ms, retries every 3 ms (1 ms each way plus a fixed 1 ms
/// backoff) and gets the lock within a few ms of A's key expiring. The network takes exactly
/// 1 ms, nothing else is random.
fn stalled_holder() -> Scenario {
    let v = serde_json::json!({
        "name": "closed-form-pause",
        "description": "A single holder stalls for a uniform time inside its section; B contends.",
        "seed": 1,
        "duration_ms": 3000,
        "topology": {"single": {}},
        "network": {"latency": {"fixed_ms": 1}},
        "resource": {"key": "lock:closed-form"},
        "recipe": {"ttl_ms": 500, "retry": {"max_attempts": null, "base_ms": 1, "cap_ms": 1, "jitter": 0.0}},
        "clients": [
            {"name": "A", "start_ms": 0, "work_ms": {"fixed_ms": 200}, "think_ms": {"fixed_ms": 0}, "iterations": 1},
            {"name": "B", "start_ms": 10, "work_ms": {"fixed_ms": 10}, "think_ms": {"fixed_ms": 0}, "iterations": 1}
        ],
        "fault_space": {
            "max_faults": 1,
            "window_ms": [100, 100],
            "kinds": [{"pause_client": {"clients": ["A"], "for_ms": [1, 1001]}}]
        },
        "expect": {"mutual_exclusion": "holds"}
    });
    Scenario::parse(&v.to_string(), Path::new("closed-form.json")).unwrap()
}

/// The exact probability that a seed of [`stalled_holder`] draws a pause of at least `m` ms
/// with both clients taking part. Per seed (explore's case strategy): the pause kind is
/// switched on with probability 1/2 (swarm); the number of fault slots is uniform on {0, 1};
/// each client takes part with probability 0.9; the pause is `1 + ⌊1000·u / 10⁶⌋` ms for `u`
/// uniform on {0, …, 10⁶}, so it is at least `m` when `u ≥ 1000·(m − 1)`.
fn p_pause_at_least(m: u64) -> f64 {
    let u_ok = (1_000_001u64.saturating_sub(1000 * (m - 1))) as f64 / 1_000_001.0;
    0.5 * 0.5 * 0.9 * 0.9 * u_ok
}

/// The break probability per seed is known in closed form, and the estimated interval holds
/// it. A's key is set at 1 ms and expires at `1 + TTL`; B is granted it within 4 ms after
/// (one 3 ms retry cycle plus the 1 ms reply; at TTL 500, B's grant lands at 504 ms); A's
/// section, stalled at 100 ms, ends under a millisecond after `100 + pause` (its history shows
/// 0.4 ms). So the seed breaks exactly when the pause exceeds `TTL − 99 + δ` for some δ in
/// [0, 4]: its probability lies between `p_pause_at_least(TTL − 99 + 5)` and
/// `p_pause_at_least(TTL − 99)` (a band 0.1 % of the pause range wide).
#[test]
fn the_break_rate_interval_contains_the_closed_form_probability() {
    let s = stalled_holder();
    let config = TuneConfig {
        jobs: 2,
        ..TuneConfig::new(vec![300, 500, 1200], s.recipe.retry.clone(), 2000)
    };
    let report = tune(&s, &config, &quiet).unwrap();
    for p in &report.points {
        assert_eq!(p.inconclusive, 0, "{p:?}");
        let (lo, hi) = if p.ttl_ms - 99 > 1001 {
            (0.0, 0.0) // no pause is long enough
        } else {
            (
                p_pause_at_least(p.ttl_ms - 99 + 5),
                p_pause_at_least(p.ttl_ms - 99),
            )
        };
        let r = p.per_seed;
        assert!(
            r.low <= lo && hi <= r.high,
            "TTL {}: true break rate per seed in [{lo:.4}, {hi:.4}], estimated {}/{} = [{:.4}, {:.4}]",
            p.ttl_ms,
            r.hits,
            r.trials,
            r.low,
            r.high
        );
        // Every break is a double grant, so it breaks both sections: A's and B's.
        assert_eq!(p.per_section.hits, 2 * r.hits, "{p:?}");
    }
    assert_eq!(report.points[0].per_seed.trials, 2000);
}

/// Adaptive sampling reaches the decisions a fixed, large budget reaches, with far fewer
/// seeds; its results do not depend on the threads; and bisection lands the recommendation
/// near the known boundary.
#[test]
fn adaptive_sampling_decides_as_a_fixed_budget_does_with_fewer_seeds() {
    let s = stalled_holder();
    let risk = 0.01;
    let budget = 2000;
    let ttls = vec![300, 500, 1200];
    let fixed = tune(
        &s,
        &TuneConfig {
            jobs: 2,
            ..TuneConfig::new(ttls.clone(), s.recipe.retry.clone(), budget)
        },
        &quiet,
    )
    .unwrap();
    let adaptive_config = TuneConfig {
        jobs: 2,
        max_risk: Some(risk),
        resolution_ms: 10_000, // no bisection: compare the swept TTLs alone
        ..TuneConfig::new(ttls.clone(), s.recipe.retry.clone(), budget)
    };
    let adaptive = tune(&s, &adaptive_config, &quiet).unwrap();
    let decisions = |r: &TuneReport| -> Vec<Decision> {
        r.points
            .iter()
            .map(|p| p.per_section.decide(risk))
            .collect()
    };
    assert_eq!(
        decisions(&fixed),
        vec![Decision::Broken, Decision::Broken, Decision::Safe]
    );
    assert_eq!(decisions(&adaptive), decisions(&fixed));
    let told: Vec<Option<Decision>> = adaptive.points.iter().map(|p| p.decision).collect();
    assert_eq!(
        told,
        decisions(&fixed).into_iter().map(Some).collect::<Vec<_>>()
    );
    let rec = &adaptive.recommended[0];
    assert_eq!(rec.ttl_ms, Some(1200));
    assert!(rec.undecided_ttls_ms.is_empty());
    let fixed_spent = fixed.recommended[0].seeds_spent;
    assert_eq!(fixed_spent, 3 * budget);
    assert!(
        rec.seeds_spent * 4 < fixed_spent,
        "adaptive spent {} seeds, the fixed budget {fixed_spent}",
        rec.seeds_spent
    );
    // The seeds run are 0..n in order whatever the threads: the same report on one thread.
    let one = tune(
        &s,
        &TuneConfig {
            jobs: 1,
            ..adaptive_config.clone()
        },
        &quiet,
    )
    .unwrap();
    assert_eq!(one, adaptive);

    // Bisection between 500 (broken) and 1200 (safe), to 20 ms. The per-section rate is
    // 2 · p_seed / 1.81 (1.81 sections per seed on average, two broken per break), which
    // crosses 1 % near TTL 1056, and is 0 from TTL 1101 on (no pause is long enough).
    let bisected = tune(
        &s,
        &TuneConfig {
            resolution_ms: 20,
            ..adaptive_config
        },
        &quiet,
    )
    .unwrap();
    let rec = bisected.recommended[0].ttl_ms.unwrap();
    assert!((1040..=1130).contains(&rec), "recommended {rec} ms");
    let tried: Vec<u64> = bisected.points.iter().map(|p| p.ttl_ms).collect();
    let mut sorted = tried.clone();
    sorted.sort_unstable();
    assert_eq!(tried, sorted, "points stay in TTL order");
    let below = bisected
        .points
        .iter()
        .filter(|p| p.ttl_ms < rec)
        .map(|p| p.ttl_ms)
        .max()
        .unwrap();
    assert!(rec - below <= 20, "bisected to {below}..{rec}");
    assert!(bisected
        .points
        .iter()
        .any(|p| p.bisected && p.ttl_ms == rec));
    assert_eq!(bisected.resolution_ms, Some(20));
}

/// `--json` prints the report alone on stdout, with the intervals and the risk settings;
/// without it the summary says what each series took and what the budget left undecided.
#[test]
fn the_cli_prints_json_and_says_what_the_budget_could_not_decide() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tune-json");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("closed-form.json");
    std::fs::write(&file, serde_json::to_string(&stalled_holder()).unwrap()).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "tune",
            file.to_str().unwrap(),
            "--ttl-ms",
            "300,1200",
            "--watchdog",
            "off",
            "--max-risk",
            "0.01",
        ];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_locksim"))
            .args(&args)
            .output()
            .unwrap()
    };
    let out = run(&["--seeds", "300", "--rate-per-s", "2.5", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON only");
    assert_eq!(v["max_risk"], 0.01);
    assert_eq!(v["rate_per_s"], 2.5);
    assert_eq!(v["resolution_ms"], 50);
    assert!(v["interval_method"].as_str().unwrap().contains("Wilson"));
    let p = &v["points"][0];
    assert_eq!(p["decision"], "broken");
    assert!(p["per_section"]["high"].as_f64().unwrap() > p["per_section"]["low"].as_f64().unwrap());
    assert!(v["recommended"][0]["seeds_spent"].as_u64().unwrap() > 0);

    // With no break, 1200 ms is bounded by its seeds, not its sections: 600 seeds bound it
    // near 0.6 %, below 1 %. 16 seeds decide neither TTL at 1 % per section (they bound
    // 1200 ms near 19 %, and the few breaks at 300 ms leave 1 % inside its interval).
    let out = run(&["--seeds", "600", "--rate-per-s", "1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("at 1 acquisitions/s: 0.0 broken sections a day expected, at most"),
        "{stdout}"
    );
    let out = run(&["--seeds", "16"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("no TTL tried is safe at risk 1e-2 per section; 32 seeds spent"),
        "{stdout}"
    );
    assert!(
        stdout.contains("undecided within the budget of 16 seeds per TTL: 300, 1200 ms"),
        "{stdout}"
    );
}
