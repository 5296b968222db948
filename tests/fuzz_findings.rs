//! Regression tests for the defects a fuzzing run found in the `locksim` binary (one test per
//! finding, named after it: D = not bounded or crashing, M = a message or an answer that says
//! less than it should). Small reproducers are in `tests/fixtures/fuzz/`; big inputs are
//! generated here. Work is bounded by counts (an event budget, a refusal, a number of
//! findings), never by asserting wall-clock speed; every run is killed after 60 s to turn a
//! hang into a failure.

use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HANG: Duration = Duration::from_secs(60);

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_locksim"));
    c.args(args).current_dir(root()).stdin(Stdio::null());
    c
}

/// Waits for `child`, reading its output on threads; kills it and fails after [`HANG`].
fn wait(mut child: Child, what: &str) -> Ran {
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn locksim(args: &[&str]) -> Ran {
    let child = cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait(child, &args.join(" "))
}

fn scratch(name: &str, body: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-findings");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/fuzz/{name}")
}

fn scenario(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("scenarios").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn json_file(name: &str, v: &Value) -> String {
    let path = scratch(name, serde_json::to_string(v).unwrap().as_bytes());
    path.to_str().unwrap().to_string()
}

/// Every subcommand that writes to stdout, with small work.
fn subcommands() -> Vec<Vec<&'static str>> {
    vec![
        vec!["run", "scenarios/failover-double-grant.json"],
        vec!["check", "tests/golden/failover-double-grant.jsonl"],
        vec!["explore", "scenarios/failover-explore.json", "--seeds", "3"],
        vec![
            "tune",
            "scenarios/tune-workers.json",
            "--ttl-ms",
            "500",
            "--seeds",
            "2",
        ],
    ]
}

#[test]
fn d01_a_closed_stdout_ends_every_subcommand_quietly() {
    for args in subcommands() {
        // A pipe whose reader is gone before the command starts: every write fails (EPIPE).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let child = cmd(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let ran = wait(child, &args.join(" "));
        assert_ne!(ran.code, Some(101), "{args:?} panicked: {}", ran.stderr);
        assert!(
            matches!(ran.code, Some(0 | 1)),
            "{args:?}: the command's own exit code, got {:?}: {}",
            ran.code,
            ran.stderr
        );
        assert!(ran.stderr.is_empty(), "{args:?}: quietly: {}", ran.stderr);
    }
}

#[test]
fn d01_a_full_stdout_is_a_write_error() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // not Linux
    };
    for args in subcommands() {
        let child = cmd(&args)
            .stdout(full.try_clone().unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let ran = wait(child, &args.join(" "));
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("cannot write the output") && !ran.stderr.contains("panicked"),
            "{args:?}: {}",
            ran.stderr
        );
    }
}

#[test]
fn d02_json_output_of_an_explored_seed_is_json_only() {
    let ran = locksim(&[
        "run",
        "scenarios/failover-explore.json",
        "--explore-seed",
        "2",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", ran.stdout));
    assert!(
        v["explored_faults"].is_array(),
        "the schedule is in the JSON"
    );
    assert_eq!(v["seed"], 2);
    // The text form still shows the schedule.
    let ran = locksim(&[
        "run",
        "scenarios/failover-explore.json",
        "--explore-seed",
        "2",
    ]);
    assert!(
        ran.stdout.starts_with("explored schedule of seed 2:"),
        "{}",
        ran.stdout
    );
}

#[test]
fn d03_a_livelock_at_one_instant_is_cut_short_by_the_event_budget() {
    let hist = scratch("d03.jsonl", b"");
    let ran = locksim(&[
        "run",
        &fixture("D03-livelock-zero-latency-zero-backoff.json"),
        "--history",
        hist.to_str().unwrap(),
    ]);
    assert_eq!(
        ran.code,
        Some(3),
        "inconclusive: {}{}",
        ran.stdout,
        ran.stderr
    );
    assert!(
        ran.stdout
            .contains("cut short: the simulator's event budget of 1000000 events ran out"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("INCONCLUSIVE"), "{}", ran.stdout);
    // The history says so too, and `check` does not call it a clean "holds".
    let text = std::fs::read_to_string(&hist).unwrap();
    let last: Vec<&str> = text.lines().rev().take(2).collect();
    assert!(last[0].contains("\"run_ended\""), "{}", last[0]);
    assert!(
        last[1].contains("\"inconclusive\"") && last[1].contains("cut short"),
        "{}",
        last[1]
    );
    // `check` says what the run said: inconclusive, with what was found before the cut
    // (B retried 300,000 times at one instant).
    let ran = locksim(&["check", hist.to_str().unwrap()]);
    assert_eq!(ran.code, Some(3), "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("retry_budget       VIOLATED") && ran.stdout.contains("INCONCLUSIVE"),
        "{}",
        ran.stdout
    );
    // Everything holding on a cut-short history is inconclusive.
    let text = concat!(
        r#"{"t_us":0,"event":"run_started","scenario":"x","backend":"sim","seed":0,"resource":"k","ttl_ms":null}"#,
        "\n",
        r#"{"t_us":5,"event":"inconclusive","reason":"cut short: the simulator's event budget ran out"}"#,
        "\n",
        r#"{"t_us":5,"event":"run_ended"}"#,
        "\n"
    );
    let ran = locksim(&[
        "check",
        scratch("d03-held.jsonl", text.as_bytes()).to_str().unwrap(),
    ]);
    assert_eq!(ran.code, Some(3), "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("cut short"), "{}", ran.stdout);
}

#[test]
fn d05_a_million_iterations_stop_at_the_event_budget() {
    let ran = locksim(&["run", &fixture("D05-heavy-iterations.json"), "--json"]);
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    let v: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(v["conclusive"], false);
    let why = v["verdict"]["inconclusive"][0].as_str().unwrap();
    assert!(
        why.contains("cut short: the simulator's event budget of 1000000 events"),
        "{why}"
    );
}

#[test]
fn the_event_budget_is_far_above_every_shipped_scenario() {
    let mut most = 0;
    for e in std::fs::read_dir(root().join("scenarios")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let s = locksim::scenario::Scenario::load(&path).unwrap();
        if !s.supports(locksim::scenario::Backend::Sim) {
            continue;
        }
        let run = locksim::sim::run(&s, s.seed);
        assert!(run.cut_short.is_none(), "{}", path.display());
        most = most.max(run.events);
    }
    assert!(
        most * 100 < locksim::sim::EVENT_BUDGET,
        "the busiest scenario uses {most} events"
    );
}

#[test]
fn d04_a_partition_naming_a_party_twice_is_refused() {
    // 30,000 names on each side of a single-node file's partition.
    let mut s = scenario("pitfall-fixed-value.json");
    let names = |n: &str| vec![json!(n); 30_000];
    s["faults"] =
        json!([{"at_ms": 1, "partition": {"between": names("A"), "and": names("redis")}}]);
    let path = json_file("d04.json", &s);
    let ran = locksim(&["run", &path]);
    assert_eq!(ran.code, Some(2), "{}", ran.stdout);
    assert!(
        ran.stderr.contains("field `faults[0].partition`")
            && ran.stderr.contains("`A` is named twice on one side"),
        "{}",
        ran.stderr
    );
}

#[test]
fn d06_check_lists_a_bounded_number_of_findings_and_faults() {
    // 1,000 clients all holding at once (every pair overlaps) and 1,000 faults before them.
    let mut lines = vec![
        r#"{"t_us":0,"event":"run_started","scenario":"d06","backend":"sim","seed":0,"resource":"k","ttl_ms":null}"#.to_string(),
    ];
    for i in 0..1_000 {
        lines.push(format!(
            r#"{{"t_us":{i},"event":"fault","fault":"clock_jump","target":"redis","by_ms":0}}"#
        ));
    }
    for i in 0..1_000 {
        lines.push(format!(
            r#"{{"t_us":{},"event":"acquired","client":"C{i}","token":"t{i}","fencing_token":null,"valid_for_us":null}}"#,
            1_000 + i
        ));
    }
    lines.push(r#"{"t_us":5000,"event":"run_ended"}"#.to_string());
    let path = scratch("d06.jsonl", (lines.join("\n") + "\n").as_bytes());
    let ran = locksim(&["check", path.to_str().unwrap(), "--json"]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let v: Value = serde_json::from_str(&ran.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 50, "50 listed");
    let pairs = 1_000 * 999 / 2;
    assert_eq!(v["findings_left_out"]["mutual_exclusion"], pairs - 50);
    for f in findings {
        assert_eq!(f["faults_before"].as_array().unwrap().len(), 20);
        assert_eq!(f["faults_left_out"], 980);
    }
    let ran = locksim(&["check", path.to_str().unwrap()]);
    assert!(
        ran.stdout
            .contains("VIOLATED (499500 findings, the first 50 listed)")
            && ran.stdout.contains("(980 earlier faults not listed)"),
        "{}",
        &ran.stdout[..ran.stdout.len().min(2_000)]
    );
}

#[test]
fn d07_many_holders_and_faults_give_bounded_output() {
    let clients: Vec<Value> = (0..300)
        .map(|i| json!({"name": format!("C{i}"), "work_ms": {"fixed_ms": 1000}}))
        .collect();
    let faults: Vec<Value> = (0..300)
        .map(|i| json!({"at_ms": i, "clock_jump": {"target": "redis", "by_ms": 0}}))
        .collect();
    let s = json!({
        "name": "many-holders", "duration_ms": 5000, "topology": {"single": {}},
        "resource": {"key": "lock:x"}, "recipe": {"acquire": "plain_set"},
        "clients": clients, "faults": faults, "expect": {"mutual_exclusion": "violated"}
    });
    let path = json_file("d07.json", &s);
    let ran = locksim(&["run", &path, "--json"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout.len() < 2_000_000,
        "{} bytes of JSON",
        ran.stdout.len()
    );
    let v: Value = serde_json::from_str(&ran.stdout).unwrap();
    let me: Vec<&Value> = v["verdict"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["property"] == "mutual_exclusion")
        .collect();
    assert_eq!(me.len(), 50);
    assert!(v["verdict"]["findings_left_out"]["mutual_exclusion"].as_u64() > Some(1_000));
    assert!(me
        .iter()
        .all(|f| f["faults_before"].as_array().unwrap().len() <= 20));
}

#[test]
fn d08_liveness_is_not_quadratic_in_time() {
    // 50,000 holders that crash, each followed by a waiter failing 61 s later (past the 60 s
    // bound) and before the next grant: every crash is a finding.
    let mut text = String::from(
        r#"{"t_us":0,"event":"run_started","scenario":"d08","backend":"sim","seed":0,"resource":"k","ttl_ms":null}"#,
    );
    text.push('\n');
    let n: u64 = 50_000;
    for i in 0..n {
        let t = 1 + i * 100_000_000;
        text.push_str(&format!(
            "{{\"t_us\":{t},\"event\":\"acquired\",\"client\":\"C{i}\",\"token\":\"x\",\"fencing_token\":null,\"valid_for_us\":null}}\n\
             {{\"t_us\":{},\"event\":\"client_crashed\",\"client\":\"C{i}\"}}\n\
             {{\"t_us\":{},\"event\":\"attempt_failed\",\"client\":\"W\",\"attempt\":1,\"reason\":\"busy\"}}\n",
            t + 1,
            t + 61_000_000
        ));
    }
    text.push_str(&format!(
        "{{\"t_us\":{},\"event\":\"run_ended\"}}\n",
        n * 100_000_000
    ));
    let path = scratch("d08.jsonl", text.as_bytes());
    let ran = locksim(&["check", path.to_str().unwrap(), "--json"]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let v: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(v["findings_left_out"]["liveness"], n - 50);
}

#[test]
fn d09_a_seed_range_past_the_last_seed_is_refused() {
    let ran = locksim(&[
        "explore",
        "scenarios/failover-explore.json",
        "--seeds",
        "50",
        "--first",
        "18446744073709551615",
        "--jobs",
        "2",
    ]);
    assert_eq!(ran.code, Some(2), "{}", ran.stdout);
    assert!(
        ran.stderr
            .contains("--first 18446744073709551615 --seeds 50"),
        "{}",
        ran.stderr
    );
    // The last seed itself can be run.
    let ran = locksim(&[
        "explore",
        "scenarios/failover-explore.json",
        "--seeds",
        "1",
        "--first",
        "18446744073709551615",
    ]);
    assert!(matches!(ran.code, Some(0 | 1)), "{}", ran.stderr);
    assert!(ran.stdout.starts_with("explored 1 seeds"), "{}", ran.stdout);
}

#[test]
fn d10_jobs_are_clamped_and_the_clamp_is_said() {
    let ran = locksim(&[
        "explore",
        "scenarios/failover-explore.json",
        "--seeds",
        "3",
        "--jobs",
        "1000000",
    ]);
    assert!(matches!(ran.code, Some(0 | 1)), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("note: --jobs 1000000: using 3 (no more than the seeds, nor 4 per core)"),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.contains("3 jobs)"), "{}", ran.stdout);
    let ran = locksim(&[
        "tune",
        "scenarios/tune-workers.json",
        "--ttl-ms",
        "500",
        "--seeds",
        "2",
        "--jobs",
        "100000",
    ]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("note: --jobs 100000: using 2"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        explore::clamp_jobs(usize::MAX, u64::MAX),
        4 * std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}

#[test]
fn d11_names_and_keys_have_a_length_limit() {
    let mut s = scenario("pitfall-client-clock-drift.json");
    s["resource"]["key"] = json!("k".repeat(4_000_000));
    let ran = locksim(&["run", &json_file("d11-key.json", &s)]);
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr
            .contains("field `resource.key`: is 4000000 bytes long; the limit is 1024"),
        "{}",
        &ran.stderr[..ran.stderr.len().min(500)]
    );
    let mut s = scenario("pitfall-client-clock-drift.json");
    s["clients"][0]["name"] = json!("n".repeat(129));
    let ran = locksim(&["run", &json_file("d11-name.json", &s)]);
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr
            .contains("field `clients[0].name`: is 129 bytes long; the limit is 128"),
        "{}",
        ran.stderr
    );
    let mut s = scenario("pitfall-fixed-value.json");
    s["recipe"]["token"] = json!({"fixed": "v".repeat(2_000)});
    let ran = locksim(&["run", &json_file("d11-token.json", &s)]);
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr.contains("field `recipe.token.fixed`"),
        "{}",
        ran.stderr
    );
}

#[test]
fn m01_a_syntax_error_names_the_key_being_parsed() {
    for (file, line, field) in [
        ("M01-field-question-mark.json", ":5:", "field `durat`"),
        (
            "M01b-field-question-mark-bad-number.json",
            ":5:",
            "field `duration_ms`: expected `,` or `}` (column 19)",
        ),
        (
            "M01c-field-question-mark-trailing-comma.json",
            ":17:",
            "trailing comma (column 1, after field `expect`)",
        ),
    ] {
        let ran = locksim(&["run", &fixture(file)]);
        assert_eq!(ran.code, Some(2), "{file}");
        assert!(!ran.stderr.contains("`?`"), "{file}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(line) && ran.stderr.contains(field),
            "{file}: {}",
            ran.stderr
        );
    }
}

#[test]
fn m02_history_parse_errors_name_the_field_and_one_line() {
    for (file, want) in [
        (
            "M02-check-type-error-no-field.jsonl",
            "line 3: field `attempt`: invalid type: floating point `1.5`, expected u32",
        ),
        (
            "M02b-check-event-wrong-type.jsonl",
            "line 5: field `event`: must be an event name (a string)",
        ),
    ] {
        let ran = locksim(&["check", &fixture(file)]);
        assert_eq!(ran.code, Some(2), "{file}");
        assert!(
            ran.stderr.contains(&fixture(file)) && ran.stderr.contains(want),
            "{file}: {}",
            ran.stderr
        );
        assert_eq!(ran.stderr.matches("line").count(), 1, "{}", ran.stderr);
    }
    // Only that line is wrong: mended, the file is a history with a double grant.
    let text = std::fs::read_to_string(root().join(fixture("M02-check-type-error-no-field.jsonl")))
        .unwrap()
        .replace("\"attempt\": 1.5", "\"attempt\": 1");
    let ran = locksim(&[
        "check",
        scratch("m02-fixed.jsonl", text.as_bytes())
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
}

#[test]
fn m03_what_is_not_a_history_is_refused() {
    let ran = locksim(&["check", &fixture("M03-check-empty-history.jsonl")]);
    assert_eq!(ran.code, Some(2), "{}", ran.stdout);
    assert!(
        ran.stdout.is_empty() && ran.stderr.contains("M03-check-empty-history.jsonl: empty"),
        "{}",
        ran.stderr
    );
    let ran = locksim(&[
        "check",
        &fixture("M03b-check-history-without-run-started.jsonl"),
    ]);
    assert_eq!(ran.code, Some(2), "{}", ran.stdout);
    assert!(
        ran.stderr
            .contains("line 1: a history starts with a `run_started` line, not `acquire_started`"),
        "{}",
        ran.stderr
    );
    let golden =
        std::fs::read_to_string(root().join("tests/golden/failover-double-grant.jsonl")).unwrap();
    let mut lines: Vec<&str> = golden.lines().collect();
    // Times out of order: line 9 (10 ms) moved after line 12 (20 ms), so it is line 12.
    let moved = lines.remove(8);
    lines.insert(11, moved);
    let ran = locksim(&[
        "check",
        scratch("m03-order.jsonl", (lines.join("\n") + "\n").as_bytes())
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(ran.code, Some(2), "{}", ran.stdout);
    assert!(
        ran.stderr
            .contains("line 12: field `t_us`: 10000 is before the previous line's 20000"),
        "{}",
        ran.stderr
    );
    // Cut off before `run_ended`.
    let cut: Vec<&str> = golden.lines().collect();
    let cut = cut[..cut.len() - 1].join("\n");
    let ran = locksim(&[
        "check",
        scratch("m03-cut.jsonl", cut.as_bytes()).to_str().unwrap(),
    ]);
    assert_eq!(ran.code, Some(2), "{}", ran.stdout);
    assert!(
        ran.stderr.contains("without a `run_ended`"),
        "{}",
        ran.stderr
    );
    // Two histories in one file.
    let twice = format!("{golden}{golden}");
    let ran = locksim(&[
        "check",
        scratch("m03-twice.jsonl", twice.as_bytes())
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(ran.code, Some(2), "{}", ran.stdout);
}

#[test]
fn m04_event_tags_must_be_names() {
    let ran = locksim(&["check", &fixture("M04-check-numeric-event-tag.jsonl")]);
    assert_eq!(ran.code, Some(2), "{}", ran.stdout);
    assert!(
        ran.stderr
            .contains("line 4: field `event`: must be an event name (a string), got 5"),
        "{}",
        ran.stderr
    );
    // With names instead of numbers it is a history.
    let text = std::fs::read_to_string(root().join(fixture("M04-check-numeric-event-tag.jsonl")))
        .unwrap()
        .replace("\"event\": 5,", "\"event\": \"command_sent\",")
        .replace("\"event\": 7,", "\"event\": \"acquired\",");
    let ran = locksim(&[
        "check",
        scratch("m04-named.jsonl", text.as_bytes())
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
}

#[test]
fn m05_shrinking_for_a_property_no_seed_breaks_says_what_they_break() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("m05-shrunk.json");
    let _ = std::fs::remove_file(&out);
    let ran = locksim(&[
        "explore",
        "scenarios/failover-explore.json",
        "--seeds",
        "20",
        "--property",
        "set_once",
        "--shrink",
        out.to_str().unwrap(),
    ]);
    assert_eq!(ran.code, Some(2), "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr
            .contains("--property set_once: none of the 20 seeds explored breaks it")
            && ran.stderr.contains("mutual_exclusion"),
        "{}",
        ran.stderr
    );
    assert!(!out.exists(), "nothing is written");
    // A property some seed breaks: the first seed that breaks it is shrunk.
    let ran = locksim(&[
        "explore",
        "scenarios/failover-explore.json",
        "--seeds",
        "20",
        "--property",
        "unsafe_writes",
        "--shrink",
        out.to_str().unwrap(),
    ]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stdout.contains("for unsafe_writes"), "{}", ran.stdout);
    assert!(out.exists());
}

#[test]
fn a_client_named_resource_is_told_the_name_is_reserved() {
    let mut s = scenario("failover-double-grant.json");
    s["clients"][0]["name"] = json!("resource");
    let ran = locksim(&["run", &json_file("resource-client.json", &s)]);
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr
            .contains("field `clients[0].name`: `resource` is reserved"),
        "{}",
        ran.stderr
    );
}

#[test]
fn invalid_utf8_gives_the_byte_offset() {
    let mut bytes = std::fs::read(root().join("scenarios/failover-double-grant.json")).unwrap();
    let at = bytes.iter().position(|b| *b == b'\n').unwrap() + 5;
    bytes[at] = 0xff;
    let ran = locksim(&["run", scratch("utf8.json", &bytes).to_str().unwrap()]);
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr
            .contains(&format!(":2: not UTF-8: invalid byte at offset {at}")),
        "{}",
        ran.stderr
    );
    let ran = locksim(&[
        "check",
        scratch(
            "utf8.jsonl",
            b"{\"t_us\":0,\"event\":\"run_\xffstarted\"}\n",
        )
        .to_str()
        .unwrap(),
    ]);
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr
            .contains("line 1: not UTF-8 (invalid byte at offset 23 of the line)"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_million_character_value_is_not_echoed_in_full() {
    let mut s = scenario("failover-double-grant.json");
    s["faults"][0]["crash"] = json!("x".repeat(1_000_000));
    let ran = locksim(&["run", &json_file("long-value.json", &s)]);
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.len() < 1_000, "{} bytes", ran.stderr.len());
    assert!(ran.stderr.contains("more bytes)"), "{}", ran.stderr);
    let line = format!(
        "{{\"t_us\":{},\"event\":\"run_ended\"}}\n",
        json!("x".repeat(1_000_000))
    );
    let ran = locksim(&[
        "check",
        scratch("long-value.jsonl", line.as_bytes())
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.len() < 1_000, "{} bytes", ran.stderr.len());
}

#[test]
fn the_documented_clock_rate_range_is_the_one_enforced() {
    let doc = std::fs::read_to_string(root().join("scenarios/README.md")).unwrap();
    assert!(
        doc.contains("| `rate` | number in [0.5, 2.0] |"),
        "scenarios/README.md"
    );
    let mut s = scenario("pitfall-client-clock-drift.json");
    for (rate, ok) in [(0.5, true), (2.0, true), (0.49, false), (2.01, false)] {
        s["clocks"] = json!({"clients": {"A": {"rate": rate}}});
        let ran = locksim(&["run", &json_file("rate.json", &s)]);
        assert_eq!(ran.code == Some(2), !ok, "rate {rate}: {}", ran.stderr);
        if !ok {
            assert!(
                ran.stderr.contains("must be between 0.5 and 2.0"),
                "{}",
                ran.stderr
            );
        }
    }
}
