//! External clients (docs/client-protocol.md) on real `redis-server` processes: what a
//! program prints becomes the history, faults reach it as signals, and a program that breaks
//! the protocol, fails, exits early or outlives the run stops the run with an error naming the
//! client; no program outlives a run.
//!
//! The programs here are `bash` one-liners that print protocol lines without locking anything:
//! they test the host, not a library (tests/adapters.rs plays the shipped adapters). These
//! tests need Debian's redis-server; with `CI` set a missing server is a failure.

mod common;
use common::redis_available;
use live::{LiveError, ProgramProblem};
use locksim::checker::{Effect, Event};
use locksim::play::play_processes;
use locksim::scenario::Scenario;
use std::time::{Duration, Instant};

/// One iteration of the protocol, as a shell script: acquire, work `work` seconds, release.
const ONE_SECTION: &str = r#"echo '{"event":"acquiring"}'; echo '{"event":"acquired"}'; sleep "$WORK"; echo '{"event":"releasing"}'; echo '{"event":"released","ok":true}'"#;

/// A one-node scenario whose clients run `bash -c <script>`, with `faults` and `duration_ms`.
fn scenario(clients: &[(&str, &str)], faults: &str, duration_ms: u64) -> Scenario {
    let clients: Vec<String> = clients
        .iter()
        .map(|(name, script)| {
            serde_json::json!({"name": name, "program": ["bash", "-c", script]}).to_string()
        })
        .collect();
    let text = format!(
        r#"{{"name": "external", "duration_ms": {duration_ms}, "backends": ["processes"],
            "topology": {{"single": {{}}}}, "resource": {{"key": "lock:ext"}},
            "recipe": {{"ttl_ms": 1000}}, "clients": [{}], "faults": [{faults}], "expect": {{"mutual_exclusion": "holds"}}}}"#,
        clients.join(",")
    );
    Scenario::parse(&text, std::path::Path::new("external.json")).expect("a valid scenario")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Plays and returns the program error the run stopped with.
fn program_error(s: &Scenario) -> (String, ProgramProblem) {
    match runtime().block_on(play_processes(s, None)) {
        Err(LiveError::Program {
            client, problem, ..
        }) => (client, problem),
        Err(other) => panic!("expected a program error, got {other}"),
        Ok((played, _)) => panic!(
            "expected a program error, the run ended: {:?}",
            played.verdict
        ),
    }
}

fn at(records: &[locksim::checker::Record], what: impl Fn(&Event) -> bool) -> u64 {
    records
        .iter()
        .find(|r| what(&r.event))
        .map(|r| r.t_us)
        .expect("the record is in the history")
}

#[test]
fn what_a_program_prints_is_the_history_and_the_resource_sees_its_writes() {
    if !redis_available() {
        return;
    }
    let write = r#"exec 3<>/dev/tcp/${LOCKSIM_RESOURCE%:*}/${LOCKSIM_RESOURCE##*:}; echo '{"event":"acquiring"}'; echo '{"event":"acquired","fencing_token":4}'; echo 'WRITE 4' >&3; read -r a <&3; echo "{\"event\":\"log\",\"message\":\"$a $LOCKSIM_CLIENT $LOCKSIM_KEY $LOCKSIM_TTL_MS\"}"; echo '{"event":"releasing"}'; echo '{"event":"released","ok":false,"error":"NotMine: x"}'"#;
    let s = scenario(&[("A", write)], "", 1500);
    let (played, _) = runtime().block_on(play_processes(&s, None)).unwrap();
    let r = &played.records;
    assert!(r.iter().any(|r| matches!(&r.event,
        Event::Acquired { client, fencing_token: Some(4), .. } if client == "A")));
    assert!(r.iter().any(|r| matches!(&r.event,
        Event::Write { client, fencing_token: Some(4), accepted: true } if client == "A")));
    assert!(r.iter().any(|r| matches!(&r.event,
        Event::ClientSaid { message, .. } if message == "OK A lock:ext 1000")));
    assert!(r.iter().any(|r| matches!(&r.event,
        Event::Released { confirmed: 0, error: Some(e), .. } if e == "NotMine: x")));
    assert!(played.verdict.is_conclusive());
}

#[test]
fn a_pause_stops_the_program_until_it_is_resumed() {
    if !redis_available() {
        return;
    }
    let s = scenario(
        &[("A", &format!("WORK=0.2; {ONE_SECTION}"))],
        r#"{"at_ms": 1, "after": {"acquired": "A"}, "pause_client": {"client": "A", "for_ms": 800}}"#,
        2500,
    );
    let (played, _) = runtime().block_on(play_processes(&s, None)).unwrap();
    let r = &played.records;
    let frozen = at(r, |e| {
        matches!(e, Event::Observed(Effect::ClientPaused { .. }))
    });
    let resumed = at(r, |e| {
        matches!(e, Event::Observed(Effect::ClientResumed { .. }))
    });
    let ended = at(r, |e| matches!(e, Event::SectionEnded { .. }));
    assert!(
        resumed >= frozen + 800_000,
        "resumed {resumed} frozen {frozen}"
    );
    // Its 200 ms of work could not end while it was stopped.
    assert!(
        ended >= resumed,
        "section ended at {ended}, resumed at {resumed}"
    );
    assert!(played.verdict.is_conclusive());
}

#[test]
fn a_crash_kills_the_program_inside_its_section() {
    if !redis_available() {
        return;
    }
    let s = scenario(
        &[("A", &format!("WORK=30; {ONE_SECTION}"))],
        r#"{"at_ms": 1, "after": {"acquired": "A"}, "crash_client": "A"}"#,
        1000,
    );
    let started = Instant::now();
    let (played, _) = runtime().block_on(play_processes(&s, None)).unwrap();
    let crashes = played
        .records
        .iter()
        .filter(|r| matches!(&r.event, Event::ClientCrashed { client } if client == "A"))
        .count();
    assert_eq!(crashes, 1);
    assert!(played.verdict.is_conclusive());
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_line_that_is_not_the_protocol_stops_the_run_naming_the_client_and_the_line() {
    if !redis_available() {
        return;
    }
    let s = scenario(
        &[(
            "B",
            r#"echo '{"event":"acquiring"}'; echo 'got it'; sleep 30"#,
        )],
        "",
        20_000,
    );
    let started = Instant::now();
    let (client, problem) = program_error(&s);
    assert_eq!(client, "B");
    match &problem {
        ProgramProblem::NotProtocol { line_no, line, .. } => {
            assert_eq!((*line_no, line.as_str()), (2, "got it"));
        }
        other => panic!("{other}"),
    }
    // The run stopped at the bad line, not at its end.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_program_that_fails_or_stops_early_is_named_with_its_status_and_stderr() {
    if !redis_available() {
        return;
    }
    let s = scenario(
        &[("A", "echo 'no module named redis' >&2; exit 3")],
        "",
        3000,
    );
    match program_error(&s) {
        (c, ProgramProblem::Failed { status, stderr }) => {
            assert_eq!((c.as_str(), status.code()), ("A", Some(3)));
            assert!(stderr.contains("no module named redis"), "{stderr}");
        }
        (_, other) => panic!("{other}"),
    }
    let s = scenario(&[("A", "exit 0")], "", 3000);
    match program_error(&s) {
        (
            _,
            ProgramProblem::ExitedEarly {
                acquires,
                iterations,
                ..
            },
        ) => {
            assert_eq!((acquires, iterations), (0, 1));
        }
        (_, other) => panic!("{other}"),
    }
}

#[test]
fn a_program_still_running_after_the_run_is_killed_and_named() {
    if !redis_available() {
        return;
    }
    let pid_file = std::env::temp_dir().join(format!("locksim-hang-{}", std::process::id()));
    let script = format!("echo $$ > {}; sleep 300", pid_file.display());
    let s = scenario(&[("A", &script)], "", 500);
    match program_error(&s) {
        (c, ProgramProblem::StillRunning { said, .. }) => {
            assert_eq!(c, "A");
            assert!(said.contains("printed nothing"), "{said}");
        }
        (_, other) => panic!("{other}"),
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&pid_file);
    // Killed with its whole group (the `sleep` too): its /proc entry goes once reaped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the program outlived the run"
    );
}

#[test]
fn a_program_that_cannot_be_found_is_refused_before_any_server_starts() {
    let s = scenario(&[("A", "true")], "", 500);
    let mut s = s;
    s.clients[0].program = Some(locksim::scenario::Program::Command(vec![
        "/no/such/adapter".into(),
    ]));
    match runtime().block_on(play_processes(&s, None)) {
        Err(LiveError::Program {
            client,
            problem: ProgramProblem::NotFound(why),
            ..
        }) => {
            assert_eq!(client, "A");
            assert!(why.contains("/no/such/adapter"), "{why}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a missing program was played"),
    }
    s.clients[0].program = Some(locksim::scenario::Program::Adapter("no-such-lib".into()));
    let Err(e) = runtime().block_on(play_processes(&s, None)) else {
        panic!("an unknown adapter was played")
    };
    assert!(
        live::chain(&e).contains("no shipped adapter is called `no-such-lib`"),
        "{}",
        live::chain(&e)
    );
}

#[test]
fn a_dropped_run_kills_its_programs() {
    if !redis_available() {
        return;
    }
    let pid_file = std::env::temp_dir().join(format!("locksim-drop-{}", std::process::id()));
    let script = format!(
        r#"echo $$ > {}; echo '{{"event":"acquiring"}}'; sleep 300"#,
        pid_file.display()
    );
    let s = scenario(&[("A", &script)], "", 60_000);
    let rt = runtime();
    let run = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(3), play_processes(&s, None)).await
    });
    assert!(run.is_err(), "the run should still be going when dropped");
    drop(rt);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&pid_file);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the program outlived its run"
    );
}
