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

/// A condition that is never met makes the run inconclusive: exit 3, the reason named, and
/// `check` on the recorded history says the same.
#[test]
fn a_condition_never_seen_is_inconclusive_exit_3_in_run_and_check() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/failover-double-grant-real.json");
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // The primary never drops the stalled replica within the run: A never starts.
    s["topology"]["replicated"]["repl_timeout_ms"] = 60_000.into();
    let file = scratch(
        "never-dropped.json",
        &serde_json::to_string_pretty(&s).unwrap(),
    );
    let history = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-tests/never-dropped.jsonl");
    let out = locksim(&[
        "run",
        file.to_str().unwrap(),
        "--history",
        history.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("INCONCLUSIVE"), "{stdout}");
    assert!(
        stdout.contains("clients[0] (A) start waited for the primary dropping replica replica-1"),
        "{stdout}"
    );
    let out = locksim(&["check", history.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("INCONCLUSIVE"), "{stdout}");
}

/// `check` judges a history with the checker settings its run recorded, so it agrees with
/// `run` on every shipped scenario; `--scenario` overrides them.
#[test]
fn check_agrees_with_run_on_every_shipped_scenario() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut checked = 0;
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let history =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-tests/{name}.jsonl"));
        std::fs::create_dir_all(history.parent().unwrap()).unwrap();
        let run = locksim(&[
            "run",
            file.to_str().unwrap(),
            "--json",
            "--history",
            history.to_str().unwrap(),
        ]);
        if run.status.code() == Some(2) {
            continue; // not playable on the simulator
        }
        let run: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        let check = locksim(&["check", history.to_str().unwrap(), "--json"]);
        let check: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
        assert_eq!(run["verdict"], check, "{name}: check disagrees with run");
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} scenarios checked");
    // The recorded settings matter: judged with the default retry budget, a scenario that
    // raises it is judged differently.
    let history =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-tests/pitfall-unlimited-retries.jsonl");
    let strict = scratch(
        "default-budget.json",
        &serde_json::to_string_pretty(&{
            let mut s = base();
            s.as_object_mut().unwrap().remove("checker");
            s
        })
        .unwrap(),
    );
    let recorded = locksim(&["check", history.to_str().unwrap(), "--json"]);
    let overridden = locksim(&[
        "check",
        history.to_str().unwrap(),
        "--json",
        "--scenario",
        strict.to_str().unwrap(),
    ]);
    assert_eq!(overridden.status.code(), Some(1));
    let (a, b) = (text(&recorded).0, text(&overridden).0);
    assert_ne!(
        a, b,
        "--scenario must override the recorded checker settings"
    );
}

#[test]
fn external_programs_are_refused_where_they_cannot_play_with_the_reason() {
    // A file that lists only the simulator.
    let out = locksim(&[
        "run",
        "scenarios/failover-explore.json",
        "--client-program",
        "redis-cli",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("failover-explore.json: --client-program")
            && stderr.contains("lists only the simulator"),
        "{stderr}"
    );
    // The simulator asked for by name.
    let out = locksim(&[
        "run",
        "scenarios/clients/contention.json",
        "--client-program",
        "redis-cli",
        "--backend",
        "sim",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("client A: the simulator cannot run an external program"),
        "{stderr}"
    );
    // A file with a program that lists the simulator.
    let mut s = base();
    s["clients"][0]["program"] = serde_json::json!("redis-py");
    refused(
        "program-on-sim.json",
        &s,
        "clients[0].program",
        "the simulator cannot run an external program",
    );
    // An adapter that does not exist, for the card.
    let out = locksim(&[
        "card",
        "--adapters",
        "no-such-lib",
        "--out",
        "target/card-never",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no shipped adapter is called `no-such-lib`")
            && stderr.contains("redis-py"),
        "{stderr}"
    );
}
