//! The `locksim` binary: exit codes, readable output, and bad input refused with the file,
//! the field and the reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn locksim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_locksim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("locksim runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A scratch file under the target dir, unique per test.
fn scratch(name: &str, body: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

fn base() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/failover-double-grant.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn refused(name: &str, scenario: &serde_json::Value, field: &str, reason: &str) {
    let path = scratch(name, &serde_json::to_string_pretty(scenario).unwrap());
    let out = locksim(&["run", path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{name}: {stdout}{stderr}");
    assert!(stdout.is_empty(), "{name}: nothing is played: {stdout}");
    assert!(stderr.contains(name), "{name}: the file is named: {stderr}");
    assert!(
        stderr.contains(&format!("field `{field}`")),
        "{name}: the field is named: {stderr}"
    );
    assert!(
        stderr.contains(reason),
        "{name}: the reason is given: {stderr}"
    );
}

#[test]
fn the_failover_scenario_shows_the_double_grant_and_its_cause() {
    let out = locksim(&["run", "scenarios/failover-double-grant.json"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("mutual_exclusion   VIOLATED"), "{stdout}");
    assert!(stdout.contains("A and B both held the lock"), "{stdout}");
    assert!(stdout.contains("crash primary"), "{stdout}");
    assert!(stdout.contains("promote replica-1 to primary"), "{stdout}");
}

#[test]
fn json_output_and_history_file() {
    let hist = Path::new(env!("CARGO_TARGET_TMPDIR")).join("failover.jsonl");
    let out = locksim(&[
        "run",
        "scenarios/failover-double-grant.json",
        "--json",
        "--seed",
        "3",
        "--history",
        hist.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["seed"], 3);
    assert_eq!(v["verdict"]["outcomes"]["mutual_exclusion"], "violated");
    assert_eq!(v["matches_expect"], true);
    // The recorded history is judged the same by `locksim check`.
    let out = locksim(&["check", hist.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a violation was found: {stdout}"
    );
    assert!(stdout.contains("mutual_exclusion   VIOLATED"), "{stdout}");
}

#[test]
fn the_timeline_page_shows_the_double_grant() {
    let page = Path::new(env!("CARGO_TARGET_TMPDIR")).join("timeline.html");
    let out = locksim(&[
        "run",
        "scenarios/failover-double-grant.json",
        "--timeline",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg"), "an inline chart");
    assert!(html.contains("A + B both hold"), "the overlap is marked");
    assert!(html.contains("crash primary") && html.contains("replica-1"));
}

#[test]
fn a_verdict_that_differs_from_expect_exits_1() {
    let mut s = base();
    s["expect"] = serde_json::json!({"mutual_exclusion": "holds"});
    let path = scratch("wrong-expect.json", &s.to_string());
    let out = locksim(&["run", path.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("NOT AS EXPECTED: mutual_exclusion should be holds but is violated"),
        "{stdout}"
    );
}

#[test]
fn bad_scenarios_exit_2_naming_file_field_and_reason() {
    let mut s = base();
    s["duration_ms"] = serde_json::json!("five seconds");
    refused("wrong-type.json", &s, "duration_ms", "invalid type: string");

    let mut s = base();
    s["clients"][1]["wrok_ms"] = serde_json::json!(5);
    refused(
        "unknown-field.json",
        &s,
        "clients[1].wrok_ms",
        "unknown field `wrok_ms`",
    );

    let mut s = base();
    s["recipe"] = serde_json::json!({"ttl_ms": 0});
    refused(
        "zero-ttl.json",
        &s,
        "recipe.ttl_ms",
        "must be greater than 0",
    );

    let mut s = base();
    s["recipe"] = serde_json::json!({"ttl_ms": -5});
    refused(
        "negative-ttl.json",
        &s,
        "recipe.ttl_ms",
        "invalid value: integer `-5`",
    );

    let mut s = base();
    s["topology"] = serde_json::json!({"redlock": {"instances": 5}});
    s["recipe"] = serde_json::json!({"redlock": {"quorum": 6}});
    s["faults"] = serde_json::json!([]);
    refused(
        "quorum.json",
        &s,
        "recipe.redlock.quorum",
        "6 is not between 1 and the 5 instances",
    );

    let mut s = base();
    s["faults"][0] = serde_json::json!({"at_ms": 10, "crash": "replica-7"});
    refused(
        "no-such-node.json",
        &s,
        "faults[0].crash",
        "no node is named `replica-7`",
    );

    let mut s = base();
    s["faults"][0] = serde_json::json!({"at_ms": 10, "pause_client": {"client": "Z", "for_ms": 5}});
    refused(
        "no-such-client.json",
        &s,
        "faults[0].pause_client",
        "no client is named `Z`",
    );

    let mut s = base();
    s["faults"][1]["at_ms"] = serde_json::json!(6000);
    refused(
        "past-the-end.json",
        &s,
        "faults[1].at_ms",
        "6000 is past the end of the run (5000 ms)",
    );

    let mut s = base();
    s["backends"] = serde_json::json!(["containers"]);
    refused("not-for-sim.json", &s, "backends", "does not list \"sim\"");

    let mut s = base();
    s["expect"] = serde_json::json!({"mutual_exclusoin": "holds"});
    refused(
        "unknown-property.json",
        &s,
        "expect",
        "unknown variant `mutual_exclusoin`",
    );
}

#[test]
fn malformed_json_names_the_line() {
    let path = scratch(
        "malformed.json",
        "{\n  \"name\": \"x\",\n  \"duration_ms\": ,\n}\n",
    );
    let out = locksim(&["run", path.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("malformed.json:3"), "{stderr}");
}

#[test]
fn missing_files_and_bad_histories_exit_2() {
    let out = locksim(&["run", "scenarios/no-such-file.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no-such-file.json"));
    let path = scratch(
        "bad-history.jsonl",
        "{\"t_us\": 1, \"event\": \"run_ended\"}\nnot json\n",
    );
    let out = locksim(&["check", path.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("bad-history.jsonl") && stderr.contains("line 2"),
        "{stderr}"
    );
}

#[test]
fn help_describes_the_commands() {
    let out = locksim(&["--help"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    for word in ["run", "check", "Redis locks"] {
        assert!(stdout.contains(word), "{stdout}");
    }
    assert_eq!(locksim(&["frobnicate"]).status.code(), Some(2));
}
