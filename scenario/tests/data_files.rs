//! Empirical distributions from data files: each format loads, each bad file is refused with
//! the scenario file, the field, the data file, the line and the reason, a scenario naming a
//! file survives being written out (also elsewhere), and the heavy-tailed forms have the
//! quantiles they should.

use scenario::{Data, Dist, FaultKind, Scenario, ScenarioError, Span};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system's temporary directory.
fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "scenario-data-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    dir
}

/// A scenario whose client's work time is `work`, and optionally a fault space.
fn scenario_json(work: Value, space: Option<Value>) -> Value {
    let mut v = json!({
        "name": "data",
        "duration_ms": 5000,
        "topology": {"single": {}},
        "resource": {"key": "k"},
        "clients": [{"name": "A", "work_ms": work, "iterations": 3}],
        "expect": {"mutual_exclusion": "holds"}
    });
    if let Some(s) = space {
        v["fault_space"] = s;
    }
    v
}

/// Writes `data` to `dir/data/NAME` and the scenario to `dir/s.json`, then loads it.
fn load_with(dir: &Path, name: &str, data: &str, work: Value) -> Result<Scenario, ScenarioError> {
    std::fs::write(dir.join("data").join(name), data).unwrap();
    let file = dir.join("s.json");
    std::fs::write(&file, scenario_json(work, None).to_string()).unwrap();
    Scenario::load(&file)
}

fn samples(s: &Scenario) -> Vec<f64> {
    match &s.clients[0].work_ms {
        Dist::Empirical(e) => match e.data() {
            Some(Data::Samples(xs)) => xs.to_vec(),
            other => panic!("not samples: {other:?}"),
        },
        other => panic!("not empirical: {other:?}"),
    }
}

fn buckets(s: &Scenario) -> (Vec<f64>, Vec<u64>) {
    match &s.clients[0].work_ms {
        Dist::Empirical(e) => match e.data() {
            Some(Data::Buckets(b)) => (b.upper_ms.clone(), b.cumulative.clone()),
            other => panic!("not buckets: {other:?}"),
        },
        other => panic!("not empirical: {other:?}"),
    }
}

#[test]
fn one_number_per_line_with_comments_and_blanks() {
    let dir = scratch();
    let text = "# work times\n\n12.5\n  7   # a comment\n\n100\n";
    let s = load_with(&dir, "w.txt", text, json!({"samples_file": "data/w.txt"})).unwrap();
    assert_eq!(samples(&s), vec![7.0, 12.5, 100.0]);
    let s = load_with(
        &dir,
        "w.txt",
        "0.5\n1.5\n",
        json!({"samples_file": "data/w.txt", "unit": "s"}),
    )
    .unwrap();
    assert_eq!(samples(&s), vec![500.0, 1500.0]);
}

#[test]
fn a_named_csv_column() {
    let dir = scratch();
    // A spreadsheet's byte-order mark, quoted cells, blanks around cells, a comment.
    let text = "\u{feff}\"work_ms\",ts,host\n20,1,a\n 30 ,2,b # late\n\"10\",3,c\n";
    let work = json!({"samples_file": "data/w.csv", "column": "work_ms"});
    let s = load_with(&dir, "w.csv", text, work).unwrap();
    assert_eq!(samples(&s), vec![10.0, 20.0, 30.0]);
}

#[test]
fn prometheus_histogram_file_in_seconds() {
    let dir = scratch();
    let text = "# HELP work_seconds Work.\n# TYPE work_seconds histogram\n\
        work_seconds_bucket{job=\"inv\",le=\"0.05\"} 120\n\
        work_seconds_bucket{job=\"inv\",le=\"0.1\"} 300\n\
        work_seconds_bucket{job=\"inv\",le=\"1\"} 1000 1700000000000\n\
        work_seconds_bucket{job=\"inv\",le=\"+Inf\"} 1000\n\
        work_seconds_sum{job=\"inv\"} 120.5\nwork_seconds_count{job=\"inv\"} 1000\n";
    let work = json!({"histogram_file": "data/w.prom", "unit": "s"});
    let s = load_with(&dir, "w.prom", text, work).unwrap();
    // The empty +Inf bucket is dropped.
    assert_eq!(
        buckets(&s),
        (vec![50.0, 100.0, 1000.0], vec![120, 300, 1000])
    );
}

#[test]
fn the_inf_bucket_needs_a_max_when_it_holds_observations() {
    let dir = scratch();
    let text = "w_bucket{le=\"10\"} 5\nw_bucket{le=\"+Inf\"} 8\n";
    let e = load_with(
        &dir,
        "w.prom",
        text,
        json!({"histogram_file": "data/w.prom"}),
    )
    .unwrap_err();
    let data = e.data.clone().expect("a data file error");
    assert_eq!(data.line, Some(2));
    assert!(
        data.reason.contains("3 observations in the +Inf bucket"),
        "{e}"
    );
    let work = json!({"histogram_file": "data/w.prom", "max": 40});
    let s = load_with(&dir, "w.prom", text, work).unwrap();
    assert_eq!(buckets(&s), (vec![10.0, 40.0], vec![5, 8]));
}

#[test]
fn an_inline_histogram() {
    let dir = scratch();
    let work = json!({"histogram": [[50, 120], [100, 300], [1000, 1000]]});
    let s = load_with(&dir, "unused", "", work).unwrap();
    assert_eq!(
        buckets(&s),
        (vec![50.0, 100.0, 1000.0], vec![120, 300, 1000])
    );
    // An inline histogram is checked while parsing, so the scenario's line is known.
    let text = "{\"name\": \"x\", \"duration_ms\": 10, \"topology\": {\"single\": {}},\n\
        \"resource\": {\"key\": \"k\"}, \"expect\": {\"liveness\": \"holds\"},\n\
        \"clients\": [{\"name\": \"A\",\n\"work_ms\": {\"histogram\": [[50, 120], [100, 90]]}}]}";
    let e = Scenario::parse(text, Path::new("inline.json")).unwrap_err();
    assert_eq!(e.field, "clients[0].work_ms");
    assert_eq!(e.line, Some(4));
    assert!(
        e.reason.contains("bucket 1") && e.reason.contains("non-monotone"),
        "{e}"
    );
}

/// Each refusal: (file name, contents, the distribution, the line, words of the reason).
#[test]
fn bad_files_are_refused_with_file_line_and_reason() {
    let cases: [(&str, &str, Value, Option<usize>, &str); 9] = [
        (
            "w.txt",
            "1\n2\nabc\n",
            json!({"samples_file": "data/w.txt"}),
            Some(3),
            "not a number: `abc`",
        ),
        (
            "w.txt",
            "# c\n5\n-3\n",
            json!({"samples_file": "data/w.txt"}),
            Some(3),
            "negative",
        ),
        (
            "w.txt",
            "# only\n\n",
            json!({"samples_file": "data/w.txt"}),
            None,
            "empty",
        ),
        (
            "w.txt",
            "1e300\n",
            json!({"samples_file": "data/w.txt"}),
            Some(1),
            "above the limit",
        ),
        (
            "w.csv",
            "a,b\n1,2\n",
            json!({"samples_file": "data/w.csv"}),
            Some(1),
            "name its column",
        ),
        (
            "w.csv",
            "a,b\n1,2\n",
            json!({"samples_file": "data/w.csv", "column": "work"}),
            Some(1),
            "no column `work`",
        ),
        (
            "w.csv",
            "a,work\n1,2\n3\n",
            json!({"samples_file": "data/w.csv", "column": "work"}),
            Some(3),
            "no field 2",
        ),
        (
            "w.prom",
            "w_bucket{le=\"1\"} 5\nw_bucket{le=\"2\"} 4\n",
            json!({"histogram_file": "data/w.prom"}),
            Some(2),
            "non-monotone cumulative counts",
        ),
        (
            "w.prom",
            "w_bucket{le=\"1\"} 5\nv_bucket{le=\"2\"} 6\n",
            json!({"histogram_file": "data/w.prom"}),
            Some(2),
            "a second series",
        ),
    ];
    for (name, text, work, line, reason) in cases {
        let dir = scratch();
        let key = work
            .as_object()
            .unwrap()
            .keys()
            .find(|k| k.ends_with("_file"))
            .unwrap()
            .clone();
        let e = load_with(&dir, name, text, work).unwrap_err();
        assert_eq!(e.file, dir.join("s.json"), "{e}");
        assert_eq!(e.field, format!("clients[0].work_ms.{key}"), "{e}");
        let data = e.data.clone().expect("a data file error");
        assert_eq!(data.file, dir.join("data").join(name), "{e}");
        assert_eq!(data.line, line, "{e}");
        assert!(
            data.reason.contains(reason),
            "{name}: want `{reason}` in: {e}"
        );
        let shown = e.to_string();
        assert!(
            shown.contains(&format!("{}", dir.join("data").join(name).display())),
            "{shown}"
        );
        if let Some(l) = line {
            assert!(shown.contains(&format!("{name}:{l}: ")), "{shown}");
        }
    }
}

#[test]
fn an_unreadable_file_is_refused() {
    let dir = scratch();
    let file = dir.join("s.json");
    let work = json!({"samples_file": "data/missing.txt"});
    std::fs::write(&file, scenario_json(work, None).to_string()).unwrap();
    let e = Scenario::load(&file).unwrap_err();
    assert_eq!(e.field, "clients[0].work_ms.samples_file");
    assert!(e.reason.contains("missing.txt: cannot read it"), "{e}");
}

#[test]
fn a_distribution_names_one_form_and_only_its_options() {
    let bad = [
        (json!({"fixed_ms": 1, "samples_file": "x"}), "names 2"),
        (json!({}), "names 0"),
        (json!({"fixed_ms": 1, "unit": "s"}), "go with samples_file"),
        (
            json!({"histogram_file": "x", "column": "c"}),
            "`column` goes with samples_file",
        ),
        (
            json!({"samples_file": "x", "max": 3}),
            "`max` goes with histogram",
        ),
        (
            json!({"samples_file": "x", "unit": "hours"}),
            "unknown variant `hours`",
        ),
    ];
    for (work, reason) in bad {
        let e = Scenario::parse(&scenario_json(work, None).to_string(), Path::new("d.json"))
            .unwrap_err();
        assert!(e.field.starts_with("clients[0].work_ms"), "{e}");
        assert!(e.reason.contains(reason), "want `{reason}` in: {e}");
    }
}

#[test]
fn written_out_the_file_reference_still_loads_here_and_elsewhere() {
    let dir = scratch();
    let s = load_with(
        &dir,
        "w.txt",
        "3\n1\n2\n",
        json!({"samples_file": "data/w.txt"}),
    )
    .unwrap();
    // Written beside the original: the path as written.
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(
        v["clients"][0]["work_ms"],
        json!({"samples_file": "data/w.txt"})
    );
    let again = Scenario::parse(&v.to_string(), &dir.join("copy.json")).unwrap();
    assert_eq!(again, s);
    // Written in another directory: relocated, the reference is rewritten to reach the file.
    let other = dir.join("deeper/out");
    std::fs::create_dir_all(&other).unwrap();
    let out = other.join("shrunk.json");
    let text = serde_json::to_string_pretty(&s.relocated(&out)).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["clients"][0]["work_ms"],
        json!({"samples_file": "../../data/w.txt"})
    );
    std::fs::write(&out, text).unwrap();
    let moved = Scenario::load(&out).unwrap();
    assert_eq!(samples(&moved), vec![1.0, 2.0, 3.0]);
    // Built-in forms serialize as before.
    let v = serde_json::to_value(Dist::LognormalMs { p50: 1.0, p99: 2.0 }).unwrap();
    assert_eq!(v, json!({"lognormal_ms": {"p50": 1.0, "p99": 2.0}}));
}

#[test]
fn fault_space_pauses_take_a_range_or_a_distribution() {
    let dir = scratch();
    std::fs::write(dir.join("data/p.txt"), "10\n20\n").unwrap();
    let space = json!({
        "window_ms": [0, 1000],
        "kinds": [
            {"pause_client": {"clients": ["A"], "for_ms": [10, 100]}},
            {"pause_client": {"clients": ["A"], "for_ms": {"pareto_ms": {"scale": 20.0, "shape": 1.2, "max": 5000.0}}}},
            {"pause_node": {"nodes": ["redis"], "for_ms": {"lognormal_ms": {"p50": 50.0, "p99": 2000.0}}}},
            {"pause_node": {"nodes": ["redis"], "for_ms": {"samples_file": "data/p.txt"}}}
        ]
    });
    let file = dir.join("s.json");
    let v = scenario_json(json!({"fixed_ms": 5}), Some(space));
    std::fs::write(&file, v.to_string()).unwrap();
    let s = Scenario::load(&file).unwrap();
    let kinds = &s.fault_space.as_ref().unwrap().kinds;
    assert!(matches!(
        kinds[0],
        FaultKind::PauseClient {
            for_ms: Span::Range([10, 100]),
            ..
        }
    ));
    assert!(matches!(
        &kinds[1],
        FaultKind::PauseClient {
            for_ms: Span::Dist(Dist::ParetoMs { .. }),
            ..
        }
    ));
    match &kinds[3] {
        FaultKind::PauseNode {
            for_ms: Span::Dist(d),
            ..
        } => assert_eq!(d.quantile_ms(0.9), 20.0),
        k => panic!("{k:?}"),
    }
    // Written out, the same shapes come back.
    let back = serde_json::to_value(&s).unwrap();
    assert_eq!(back["fault_space"]["kinds"], v["fault_space"]["kinds"]);
    // A bad distribution is refused at its field; a bad range as before.
    let mut bad = v.clone();
    bad["fault_space"]["kinds"][1]["pause_client"]["for_ms"]["pareto_ms"]["shape"] = json!(0);
    let e = Scenario::parse(&bad.to_string(), &file).unwrap_err();
    assert_eq!(e.field, "fault_space.kinds[1].pause_client.for_ms");
    assert!(e.reason.contains("shape must be a number above 0"), "{e}");
    let mut bad = v;
    bad["fault_space"]["kinds"][0]["pause_client"]["for_ms"] = json!("long");
    let e = Scenario::parse(&bad.to_string(), &file).unwrap_err();
    assert_eq!(e.field, "fault_space.kinds[0].pause_client.for_ms");
    assert!(
        e.reason.contains("a range [low, high] or a distribution"),
        "{e}"
    );
}

#[test]
fn heavy_tailed_quantiles_are_the_closed_forms() {
    let p = Dist::ParetoMs {
        scale: 10.0,
        shape: 2.0,
        max: None,
    };
    // P(X > x) = (10 / x)^2: the median is 10 * sqrt(2), the 99th percentile 100.
    assert!((p.quantile_ms(0.5) - 10.0 * 2f64.sqrt()).abs() < 1e-9);
    assert!((p.quantile_ms(0.99) - 100.0).abs() < 1e-6);
    let capped = Dist::ParetoMs {
        scale: 10.0,
        shape: 2.0,
        max: Some(50.0),
    };
    assert_eq!(capped.quantile_ms(0.99), 50.0);
    let l = Dist::LognormalMs {
        p50: 10.0,
        p99: 50.0,
    };
    assert!((l.quantile_ms(0.5) - 10.0).abs() < 1e-6);
    assert!((l.quantile_ms(0.99) - 50.0).abs() < 1e-3);
    assert!((scenario::normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
    assert!((scenario::normal_quantile(0.001) + 3.090_232_306).abs() < 1e-8);
}

#[test]
fn the_shipped_work_times_load() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/tune-empirical.json");
    let s = Scenario::load(&file).unwrap();
    let xs = samples(&s);
    assert!(xs.len() >= 300, "{}", xs.len());
    let median = xs[xs.len() / 2];
    assert!((60.0..120.0).contains(&median), "{median}");
    assert!(xs[xs.len() * 99 / 100] > 3.0 * median, "a heavy tail");
}
