//! Real Redis: every scenario that lists the `processes` backend is played on real
//! `redis-server` processes and must meet its `expect`; servers never outlive the harness;
//! user-given servers, unreachable servers and servers that die mid-run are handled.
//!
//! These tests need Debian's redis-server (`scripts/test.sh` installs it). With `CI` set, a
//! missing server is a failure, never a skip.

mod common;
use common::load;
use common::redis_available;
use live::processes::Processes;
use live::Provider;
use locksim::play::{play_live, play_processes};
use locksim::scenario::{Backend, Scenario, Topology};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// PIDs of live redis-server processes whose data directory belongs to locksim process
/// `pid` (Redis rewrites its command line, but it works inside its `--dir`).
fn servers_of(pid: u32) -> Vec<u32> {
    let marker = format!("locksim-{pid}-");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        let cwd = std::fs::read_link(format!("/proc/{p}/cwd")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let zombie = stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z'));
        if comm.trim() == "redis-server" && cwd.to_string_lossy().contains(&marker) && !zombie {
            found.push(p);
        }
    }
    found
}

fn wait_until(mut cond: impl FnMut() -> bool, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_processes_scenario_meets_its_expect_on_real_redis() {
    if !redis_available() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| Scenario::load(p).unwrap().supports(Backend::Processes))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "only {} scenarios list processes",
        files.len()
    );
    // Four at a time: each run is mostly waiting on real time.
    let permits = Arc::new(tokio::sync::Semaphore::new(4));
    let mut runs = tokio::task::JoinSet::new();
    for file in files {
        let permits = permits.clone();
        runs.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let s = Scenario::load(&file).unwrap();
            let result = play_processes(&s, None).await;
            (file, result)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = runs.join_next().await {
        let (file, result) = joined.unwrap();
        match result {
            Err(e) => failures.push(format!("{}: {e}", file.display())),
            Ok((played, _)) if !played.matches_expect() => failures.push(format!(
                "{}: {:?}\n{}",
                file.display(),
                played.mismatches,
                played.verdict.summary()
            )),
            // `locksim check` on the history must say what the run said.
            Ok((played, _)) if played.rechecked().ok().as_ref() != Some(&played.verdict) => {
                failures.push(format!(
                    "{}: check disagrees with run: {:?}",
                    file.display(),
                    played.rechecked()
                ))
            }
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(
        servers_of(std::process::id()),
        Vec::<u32>::new(),
        "servers left running"
    );
}

#[test]
fn servers_are_stopped_on_drop_and_on_panic() {
    if !redis_available() {
        return;
    }
    let topology = Topology::Redlock { instances: 3 };
    let p = Processes::start(&topology, false).unwrap();
    let pids = p.pids();
    assert_eq!(pids.len(), 3);
    let running = servers_of(std::process::id());
    assert!(
        pids.iter().all(|pid| running.contains(pid)),
        "{pids:?} not all in {running:?}"
    );
    drop(p);
    assert!(
        pids.iter()
            .all(|pid| !Path::new(&format!("/proc/{pid}")).exists()),
        "dropped servers still run"
    );
    // With Sentinel: the three Sentinels go with the servers.
    let sentinel = Topology::Replicated {
        replicas: 1,
        replication_lag_ms: 0.0,
        repl_timeout_ms: 60_000,
        sentinel: Some(locksim::scenario::Sentinel {
            down_after_ms: 1000,
        }),
    };
    let p = Processes::start(&sentinel, false).unwrap();
    let pids = p.pids();
    assert_eq!(pids.len(), 5, "two servers and three Sentinels");
    let running = servers_of(std::process::id());
    assert!(
        pids.iter().all(|pid| running.contains(pid)),
        "{pids:?} not all in {running:?}"
    );
    drop(p);
    assert!(
        pids.iter()
            .all(|pid| !Path::new(&format!("/proc/{pid}")).exists()),
        "dropped Sentinels still run"
    );

    let held = std::sync::Mutex::new(Vec::new());
    let outcome = std::panic::catch_unwind(|| {
        let p = Processes::start(&Topology::Single {}, false).unwrap();
        *held.lock().unwrap() = p.pids();
        panic!("a test fails while its servers run");
    });
    assert!(outcome.is_err());
    let pids = held.into_inner().unwrap();
    assert_eq!(pids.len(), 1);
    assert!(
        !Path::new(&format!("/proc/{}", pids[0])).exists(),
        "a panic left a server running"
    );
}

/// Ctrl-C (SIGINT) and SIGKILL of `locksim` both take its servers (and Sentinels) down.
#[test]
fn interrupting_or_killing_locksim_stops_its_servers() {
    if !redis_available() {
        return;
    }
    let runs = [
        ("scenarios/failover-double-grant-real.json", 2),
        ("scenarios/split-brain.json", 5),
    ];
    for (signal, (file, servers)) in [libc_sigint(), libc_sigkill()]
        .into_iter()
        .flat_map(|s| runs.map(|r| (s, r)))
    {
        let mut child = Command::new(env!("CARGO_BIN_EXE_locksim"))
            .args(["run", file, "--backend", "processes"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(
            wait_until(|| servers_of(pid).len() == servers, Duration::from_secs(20)),
            "servers never started"
        );
        Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        if signal == libc_sigint() {
            assert_eq!(status.code(), Some(130), "Ctrl-C exits 130");
        }
        assert!(
            wait_until(|| servers_of(pid).is_empty(), Duration::from_secs(5)),
            "signal {signal} left servers running: {:?}",
            servers_of(pid)
        );
    }
}

fn libc_sigint() -> i32 {
    2
}
fn libc_sigkill() -> i32 {
    9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_redis_by_url_runs_the_workload_without_faults() {
    if !redis_available() {
        return;
    }
    let servers = Processes::start(&Topology::Single {}, false).unwrap();
    let url = servers.nodes()[0].1.clone();
    let out = Command::new(env!("CARGO_BIN_EXE_locksim"))
        .args(["run", "scenarios/set-once-set-nx.json", "--redis", &url])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(seed 8, your Redis)"), "{stdout}");
    assert!(stdout.contains("set_once           holds"), "{stdout}");
    // A scenario with faults is refused: nothing is done to a user's servers.
    let out = Command::new(env!("CARGO_BIN_EXE_locksim"))
        .args(["run", "scenarios/gc-pause.json", "--redis", &url])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pause client A for 2000 ms") && stderr.contains("never faulted"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_redis_is_a_clear_error_not_a_hang() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_locksim"))
        .args([
            "run",
            "scenarios/set-once-set-nx.json",
            "--redis",
            "redis://127.0.0.1:1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot reach Redis at redis://127.0.0.1:1"),
        "{stderr}"
    );
    // The connect timeout is 2 s; anything near a minute would be a hang.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_run_is_reported_and_the_history_still_checked() {
    if !redis_available() {
        return;
    }
    let servers = Arc::new(Processes::start(&Topology::Single {}, false).unwrap());
    let url = servers.nodes()[0].1.clone();
    let mut s = load("safe-watchdog.json");
    s.duration_ms = 3000;
    s.clients[0].iterations = 100;
    s.clients[1].iterations = 100;
    s.clients[0].work_ms = locksim::scenario::Dist::FixedMs(50.0);
    s.clients[1].work_ms = locksim::scenario::Dist::FixedMs(50.0);
    let killer = {
        let servers = servers.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            servers.crash("redis").await.unwrap();
        })
    };
    let provider = Arc::new(live::UrlProvider::new(vec![url]));
    let (played, problems) = play_live(&s, provider, None)
        .await
        .expect("the run completes");
    killer.await.unwrap();
    assert!(
        problems.iter().any(|p| p.contains("stopped answering")),
        "{problems:?}"
    );
    let acquired = played
        .records
        .iter()
        .filter(|r| matches!(r.event, locksim::checker::Event::Acquired { .. }))
        .count();
    assert!(acquired >= 2, "work happened before the crash: {acquired}");
    assert!(matches!(
        played.records.last().map(|r| &r.event),
        Some(locksim::checker::Event::RunEnded {})
    ));
    // The server died on its own: the run says it cannot vouch for its verdict.
    assert!(
        !played.verdict.is_conclusive(),
        "{}",
        played.verdict.summary()
    );
    assert!(
        played
            .verdict
            .inconclusive
            .iter()
            .any(|r| r.contains("which no fault touched") && r.contains("stopped answering")),
        "{:?}",
        played.verdict.inconclusive
    );
}

/// A failover whose precondition never happens on real Redis (the primary never drops the
/// stalled replica within the run) is inconclusive, naming what it waited for — never the
/// "holds" a run without the fault would have shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_that_never_takes_effect_is_inconclusive_on_real_redis() {
    if !redis_available() {
        return;
    }
    let mut s = common::never_dropped();
    s.duration_ms = 3000;
    // This run's servers only: tests running beside it have servers of their own.
    let servers = tokio::task::block_in_place(|| Processes::start_for(&s)).expect("servers");
    let pids = servers.pids();
    let provider: Arc<dyn live::Provider> = Arc::new(servers);
    let (played, _) = play_live(&s, provider, None).await.expect("played");
    assert!(!played.matches_expect());
    assert!(
        !played.verdict.is_conclusive(),
        "{}",
        played.verdict.summary()
    );
    assert!(
        played.verdict.inconclusive.iter().any(|r| r
            .contains("clients[0] (A) start waited for the primary dropping replica replica-1")),
        "{:?}",
        played.verdict.inconclusive
    );
    assert!(
        !played
            .records
            .iter()
            .any(|r| matches!(r.event, locksim::checker::Event::Acquired { .. })),
        "nobody may act on a condition that was never seen"
    );
    let left: Vec<u32> = servers_of(std::process::id())
        .into_iter()
        .filter(|p| pids.contains(p))
        .collect();
    assert_eq!(left, Vec::<u32>::new(), "the run's servers outlived it");
}

/// A server that exits while no fault touched it (here: its replica, killed from outside the
/// run) makes the run inconclusive, even though no client talks to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_exiting_on_its_own_is_inconclusive() {
    if !redis_available() {
        return;
    }
    let mut s = load("failover-double-grant-real.json");
    s.faults.clear();
    for c in &mut s.clients {
        c.after = None;
    }
    s.duration_ms = 2000;
    let topology = s.topology.clone();
    let servers = Arc::new(Processes::start(&topology, false).unwrap());
    let replica = servers.pids()[1];
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let killed = Command::new("kill")
            .args(["-KILL", &replica.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    });
    let provider: Arc<dyn live::Provider> = servers.clone();
    let (played, _) = play_live(&s, provider, None).await.expect("played");
    killer.await.unwrap();
    assert!(
        !played.verdict.is_conclusive(),
        "{}",
        played.verdict.summary()
    );
    assert!(
        played
            .verdict
            .inconclusive
            .iter()
            .any(|r| r.contains("replica-1, which no fault stopped, exited on its own")),
        "{:?}",
        played.verdict.inconclusive
    );
}

/// On a lossy network a silent connection is the loss's doing only while its server still
/// answers: a server frozen from outside the run (no fault) makes the run inconclusive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_frozen_on_its_own_under_a_lossy_network_is_inconclusive() {
    if !redis_available() {
        return;
    }
    let mut s = load("lossy-network.json");
    s.duration_ms = 1500;
    let servers = Arc::new(Processes::start(&s.topology, false).unwrap());
    let server = servers.pids()[0];
    let signal = move |sig: &str| {
        let sent = Command::new("kill")
            .args([sig, &server.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    let provider: Arc<dyn live::Provider> = servers.clone();
    let freezer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        signal("-STOP");
        signal
    });
    let (played, _) = play_live(&s, provider, None).await.expect("played");
    let signal = freezer.await.unwrap();
    signal("-CONT");
    assert!(
        played
            .verdict
            .inconclusive
            .iter()
            .any(|r| r.contains("redis, which no fault touched,")),
        "{:?}",
        played.verdict.inconclusive
    );
}

/// A `clock_jump` on a real server's node steps its clock through the clock shim: the driver
/// sees the node's `TIME` move and records `clock_set` with the new offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_clock_jump_on_processes_is_seen_and_recorded() {
    if !redis_available() {
        return;
    }
    let mut s = load("gc-pause.json");
    s.duration_ms = 1500;
    s.faults = vec![locksim::scenario::Fault::at(
        300,
        locksim::scenario::FaultAction::ClockJump {
            target: "redis".into(),
            by_ms: 20_000,
        },
    )];
    let (played, _) = play_processes(&s, None).await.expect("played");
    assert!(
        played.verdict.inconclusive.is_empty(),
        "{:?}",
        played.verdict.inconclusive
    );
    let set: Vec<f64> = played
        .records
        .iter()
        .filter_map(|r| match &r.event {
            locksim::checker::Event::Observed(locksim::checker::Effect::ClockSet {
                target,
                offset_ms,
            }) if target == "redis" => Some(*offset_ms),
            _ => None,
        })
        .collect();
    assert!(
        set.len() == 1 && (19_990.0..20_010.0).contains(&set[0]),
        "clock_set seen: {set:?}"
    );
}
