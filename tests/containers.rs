//! The containers backend: Redis in Docker containers, driven through the engine's API.
//!
//! - the failover double grant through Sentinel (automatic failover, no manual promotion);
//! - Redlock over 5 primaries with one, then a majority, cut off from the clients;
//! - a primary cut off from its replica and Sentinels keeps serving clients (split brain);
//! - nothing labelled for a run is left on the engine after it, also after a panic.
//!
//! They need a Docker engine and the image `LOCKSIM_REDIS_IMAGE` names (default here:
//! `locksim/redis:local`, built with `scripts/build-image.sh`; nothing is pulled). With `CI` set,
//! a missing engine or image is a failure; otherwise the tests print SKIPPED and pass.

use live::containers::{self, Containers};
use live::Provider;
use locksim::checker::{Event, Outcome, PartitionMode, Property};
use locksim::play::{play_live, Played};
use locksim::scenario::Scenario;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The image the tests run: `LOCKSIM_REDIS_IMAGE`, or the locally built one.
fn test_image() -> String {
    std::env::var(containers::IMAGE_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "locksim/redis:local".to_string())
}

/// Whether the engine and the image are here; in CI their absence fails the test.
async fn docker_ready() -> bool {
    let check = match containers::engine_available().await {
        Ok(()) => containers::image_available(&test_image()).await,
        Err(e) => Err(e),
    };
    match check {
        Ok(()) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!(
            "CI must run the containers tests, but: {} (start dockerd; run scripts/build-image.sh)",
            live::chain(&e)
        ),
        Err(e) => {
            eprintln!("SKIPPED (not in CI): {}", live::chain(&e));
            false
        }
    }
}

fn parse(json: &str) -> Scenario {
    Scenario::parse(json, Path::new("<test>")).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts the scenario's containers as `locksim run --backend containers` does (its support
/// check, node clocks and network shaping).
async fn start(s: &Scenario) -> Arc<Containers> {
    let c = Containers::start_for_image(s, &test_image())
        .await
        .unwrap_or_else(|e| panic!("containers did not start: {}", live::chain(&e)));
    Arc::new(c)
}

/// Names of containers and networks the engine still has for `run`, asked with the docker CLI.
fn engine_leftovers(run: &str) -> Vec<String> {
    let filter = format!("label={}={run}", containers::RUN_LABEL);
    let mut left = Vec::new();
    for args in [
        vec!["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"],
        vec![
            "network",
            "ls",
            "--filter",
            &filter,
            "--format",
            "{{.Name}}",
        ],
    ] {
        let out = Command::new("docker")
            .args(&args)
            .output()
            .expect("docker CLI");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        left.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    left
}

/// Drops the last handle on `c` and checks that the engine kept nothing of its run.
async fn drop_and_check(c: Arc<Containers>) {
    let run = c.run_id().to_string();
    drop(
        Arc::try_unwrap(c)
            .ok()
            .expect("the test holds the last handle"),
    );
    assert_eq!(engine_leftovers(&run), Vec::<String>::new(), "left behind");
    let (cs, ns) = containers::leftovers(&run).await.expect("engine answers");
    assert!(cs.is_empty() && ns.is_empty(), "left behind: {cs:?} {ns:?}");
}

fn acquisitions(p: &Played) -> Vec<String> {
    p.records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Acquired { client, .. } => Some(client.to_string()),
            _ => None,
        })
        .collect()
}

/// The value of `key` on every node, read directly (past any cut).
async fn values(c: &Containers, key: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for (node, _) in c.nodes() {
        out.push(c.command(&node, &["GET", key]).await.expect("GET"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_grants_the_lock_twice_on_real_containers() {
    if !docker_ready().await {
        return;
    }
    // The replica stalls (docker pause) until the primary is seen dropping it (repl-timeout
    // 1 s); A's lock is acknowledged by the primary alone; the primary is killed; the replica
    // thaws; the Sentinels see the primary down for 1 s and promote the replica, which never
    // had A's key, and B, started once the promotion is seen, acquires the "free" lock.
    // Nobody promotes anything by hand, and every step waits for the observed effect of the
    // one before (the scenario file's `after` conditions).
    let s = locksim::scenario::Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/failover-sentinel-containers.json"),
    )
    .unwrap();
    assert!(!s
        .faults
        .iter()
        .any(|f| matches!(f.action, locksim::scenario::FaultAction::Promote(_))));
    let c = start(&s).await;
    let p: Arc<dyn Provider> = c.clone();
    let (played, problems) = play_live(&s, p, None).await.expect("played");
    eprintln!("{}\nproblems: {problems:?}", played.verdict.summary());
    assert_eq!(
        c.route(0),
        1,
        "the Sentinels should have made replica-1 the primary"
    );
    assert!(
        played.matches_expect(),
        "{:?}\n{}",
        played.mismatches,
        played.verdict.summary()
    );
    assert_eq!(
        played.verdict.outcome(Property::MutualExclusion),
        Outcome::Violated
    );
    // The history says who promoted the replica: Sentinel, seen by the harness.
    assert!(
        played.records.iter().any(|r| matches!(
            &r.event,
            locksim::checker::Event::Observed(locksim::checker::Effect::Promoted {
                node,
                by: locksim::checker::PromotedBy::Sentinel,
            }) if node == "replica-1"
        )),
        "no Sentinel promotion observed"
    );
    drop_and_check(c).await;
}

const REDLOCK: &str = r#"{
  "name": "redlock-partition-containers",
  "seed": 7,
  "duration_ms": 4000,
  "backends": ["containers"],
  "topology": {"redlock": {"instances": 5}},
  "resource": {"key": "lock:order:5001"},
  "clients": [
    {"name": "A", "start_ms": 500, "work_ms": {"fixed_ms": 800}},
    {"name": "B", "start_ms": 600, "work_ms": {"fixed_ms": 800}}
  ],
  "recipe": {"redlock": {}, "ttl_ms": 10000, "request_timeout_ms": 300,
             "retry": {"max_attempts": ATTEMPTS, "base_ms": 100, "cap_ms": 300, "jitter": 1.0}},
  "faults": [],
  "expect": {"mutual_exclusion": "holds"}
}"#;

/// Plays the Redlock scenario with the nodes `cut` cut off from the clients from 200 ms on
/// (after the clients' connections are open, before they start), healed at the end.
async fn redlock_with(
    cut: &[&str],
    attempts: u32,
) -> (Played, Vec<Option<String>>, Vec<Option<String>>) {
    let s = parse(&REDLOCK.replace("ATTEMPTS", &attempts.to_string()));
    let c = start(&s).await;
    let p: Arc<dyn Provider> = c.clone();
    let nodes: Vec<String> = cut.iter().map(|n| n.to_string()).collect();
    let clients = vec!["A".to_string(), "B".to_string()];
    let cutter = {
        let c = c.clone();
        let (nodes, clients) = (nodes.clone(), clients.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.partition(&clients, &nodes, None, Default::default())
                .await
        })
    };
    let (played, problems) = play_live(&s, p, None).await.expect("played");
    cutter.await.expect("cutter").expect("partition");
    eprintln!(
        "cut {cut:?}: {}\nproblems: {problems:?}",
        played.verdict.summary()
    );
    let key = "lock:order:5001";
    let during = values(&c, key).await;
    c.heal(&clients, &nodes, Default::default())
        .await
        .expect("heal");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = values(&c, key).await;
    drop_and_check(c).await;
    (played, during, after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_holds_with_one_primary_cut_off_and_fails_cleanly_without_a_majority() {
    if !docker_ready().await {
        return;
    }
    // One of five cut off: a majority is still reachable; both clients get the lock in turn.
    let (one, _, _) = redlock_with(&["redis-3"], 10).await;
    assert_eq!(
        one.verdict.outcome(Property::MutualExclusion),
        Outcome::Holds
    );
    let got = acquisitions(&one);
    assert!(
        got.contains(&"A".to_string()) && got.contains(&"B".to_string()),
        "both clients should acquire with 4 of 5 reachable: {got:?}"
    );

    // Three of five cut off: no majority, no grant, each client gives up after 3 attempts, and
    // the lock key is not left on the two primaries that said yes (the client releases what it
    // partly got).
    let (three, during, after) = redlock_with(&["redis-1", "redis-2", "redis-3"], 3).await;
    assert_eq!(
        three.verdict.outcome(Property::MutualExclusion),
        Outcome::Holds
    );
    assert_eq!(acquisitions(&three), Vec::<String>::new(), "nobody may win");
    assert!(
        three
            .records
            .iter()
            .any(|r| matches!(&r.event, Event::AcquireFailed { .. })),
        "acquire should fail cleanly"
    );
    assert_eq!(
        &during[3..],
        &[None, None],
        "the reachable primaries keep no lock key"
    );
    eprintln!("after healing, the lock key on each primary: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_cut_off_from_its_replica_and_sentinels_keeps_serving_clients() {
    if !docker_ready().await {
        return;
    }
    let s = parse(
        r#"{
          "name": "split-brain-containers",
          "seed": 7,
          "duration_ms": 1000,
          "backends": ["containers"],
          "topology": {"replicated": {"replicas": 1, "sentinel": {"down_after_ms": 1000}}},
          "resource": {"key": "k"},
          "clients": [{"name": "A", "start_ms": 0, "work_ms": {"fixed_ms": 10}}],
          "expect": {"mutual_exclusion": "holds"}
        }"#,
    );
    let c = start(&s).await;
    let others = vec![
        "replica-1".to_string(),
        "sentinel-1".to_string(),
        "sentinel-2".to_string(),
        "sentinel-3".to_string(),
    ];
    c.partition(&["primary".to_string()], &others, None, Default::default())
        .await
        .expect("partition");
    // Wait for the Sentinels to promote the replica (route() follows them).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while c.route(0) != 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The old primary still takes writes from clients through its published port.
    let old_primary_writes = c
        .command("primary", &["SET", "split", "old"])
        .await
        .expect("SET on the old primary");
    assert_eq!(old_primary_writes.as_deref(), Some("OK"));
    assert_eq!(c.route(0), 1, "the Sentinels should promote replica-1");
    let vals = values(&c, "split").await;
    assert_eq!(vals[0].as_deref(), Some("old"));
    assert_eq!(vals[1], None, "the new primary never saw the write");
    drop_and_check(c).await;
}

#[test]
fn nothing_is_left_after_a_panic() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    if !rt.block_on(docker_ready()) {
        return;
    }
    let s = parse(
        r#"{"name": "panic", "seed": 1, "duration_ms": 100, "backends": ["containers"],
            "topology": {"redlock": {"instances": 2}}, "recipe": {"redlock": {}}, "resource": {"key": "k"},
            "clients": [{"name": "A"}], "expect": {"mutual_exclusion": "holds"}}"#,
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let image = test_image();
    let joined = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("a runtime");
        let c = rt
            .block_on(Containers::start_with_image(&s.topology, false, &image))
            .expect("started");
        let _ = tx.send(c.run_id().to_string());
        panic!("a test failing while its containers run");
    })
    .join();
    assert!(joined.is_err());
    let run = rx.recv().expect("run id");
    assert_eq!(engine_leftovers(&run), Vec::<String>::new(), "left behind");
}

/// Every scenario file that lists the `containers` backend meets its `expect` on real Redis
/// containers, and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_containers_scenario_meets_its_expect() {
    if !docker_ready().await {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| {
            Scenario::load(p)
                .unwrap()
                .supports(locksim::scenario::Backend::Containers)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "only {} scenarios list containers",
        files.len()
    );
    // One at a time: two at once, beside the rest of the suite on a busy two-core machine,
    // once delayed safe-watchdog's 1 s-TTL extensions past the key's expiry (a real overlap,
    // caused by the harness's own load, not by the scenario).
    let permits = Arc::new(tokio::sync::Semaphore::new(1));
    let mut runs = tokio::task::JoinSet::new();
    for file in files {
        let permits = permits.clone();
        runs.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore open");
            let s = Scenario::load(&file).unwrap();
            let c = start(&s).await;
            let p: Arc<dyn Provider> = c.clone();
            let failure = match play_live(&s, p, None).await {
                Ok((played, _))
                    if played.matches_expect()
                        && played.rechecked().ok().as_ref() == Some(&played.verdict) =>
                {
                    None
                }
                Ok((played, problems)) => Some(format!(
                    "{}: {:?}\n{}\nproblems: {problems:?}",
                    file.display(),
                    played.mismatches,
                    played.verdict.summary()
                )),
                Err(e) => Some(format!("{}: {e}", file.display())),
            };
            drop_and_check(c).await;
            failure
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = runs.join_next().await {
        failures.extend(joined.expect("a scenario's task panicked"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A partition naming one client cuts only that client's relays: every client has relays of
/// its own, in the partition's mode (here reset: A's open connection is reset at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_naming_one_client_cuts_only_that_clients_relay() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    if !docker_ready().await {
        return;
    }
    let s = parse(
        r#"{"name": "per-client", "seed": 1, "duration_ms": 100, "backends": ["containers"],
            "topology": {"single": {}}, "resource": {"key": "k"},
            "clients": [{"name": "A", "start_ms": 0}, {"name": "B", "start_ms": 0}],
            "expect": {"mutual_exclusion": "holds"}}"#,
    );
    let c = start(&s).await;
    let (a, b) = (c.client_nodes("A").unwrap(), c.client_nodes("B").unwrap());
    assert_ne!(a, b, "each client has a relay of its own");
    assert_eq!(a, c.client_nodes("A").unwrap(), "the same relay every time");
    let open = |url: &str| TcpStream::connect(url.trim_start_matches("redis://").to_string());
    async fn ping(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        s.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 7];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("an answer or an error, not silence")?;
        Ok(buf[..n].to_vec())
    }
    let (mut sa, mut sb) = (open(&a[0].1).await.unwrap(), open(&b[0].1).await.unwrap());
    assert_eq!(ping(&mut sa).await.unwrap(), b"+PONG\r\n");
    assert_eq!(ping(&mut sb).await.unwrap(), b"+PONG\r\n");
    let (clients, nodes) = (vec!["A".to_string()], vec!["redis".to_string()]);
    c.partition(&clients, &nodes, None, PartitionMode::Reset)
        .await
        .expect("partition");
    let cut = ping(&mut sa).await;
    assert!(
        cut.is_err() || matches!(&cut, Ok(b) if b.is_empty()),
        "A's relay is reset: {cut:?}"
    );
    assert_eq!(ping(&mut sb).await.unwrap(), b"+PONG\r\n", "B is not cut");
    c.heal(&clients, &nodes, PartitionMode::Reset)
        .await
        .expect("heal");
    let mut again = open(&a[0].1).await.unwrap();
    assert_eq!(ping(&mut again).await.unwrap(), b"+PONG\r\n");
    drop((sa, sb, again));
    drop_and_check(c).await;
}

/// Between servers containers cut by network disconnect, which is mode hold: a partition
/// between servers in another mode is refused before anything starts, naming the mode.
#[tokio::test]
async fn a_partition_between_servers_in_another_mode_than_hold_is_refused() {
    let s = parse(
        r#"{"name": "modes", "seed": 1, "duration_ms": 100, "backends": ["containers"],
            "topology": {"replicated": {"replicas": 1}}, "resource": {"key": "k"},
            "clients": [{"name": "A", "start_ms": 0}],
            "faults": [{"at_ms": 10, "partition": {"between": ["primary"], "and": ["replica-1"], "mode": "blackhole"}}],
            "expect": {"mutual_exclusion": "holds"}}"#,
    );
    let e = match Containers::start_for(&s).await {
        Ok(_) => panic!("started"),
        Err(e) => e,
    };
    let text = live::chain(&e);
    assert!(
        matches!(
            &e,
            live::LiveError::UnsupportedFault {
                source: live::Refusal::ModeBetweenServers {
                    mode: "blackhole",
                    ..
                },
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("faults[0]") || text.contains("blackhole"),
        "{text}"
    );
}
/// The true wall clock, in Unix nanoseconds (the harness is not shimmed).
fn true_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// How far a node's `TIME` is ahead of true time, as `(low, high)` ns bounds.
async fn time_offset_ns(c: &mut redis::aio::MultiplexedConnection) -> (i64, i64) {
    let before = true_now_ns();
    let (s, us): (i64, i64) = redis::cmd("TIME").query_async(c).await.unwrap();
    let after = true_now_ns();
    let read = s * 1_000_000_000 + us * 1_000;
    (read - after, read - before)
}

/// A container's clock starts where `clocks.nodes` says and is stepped by a clock jump (the
/// shim the local image carries, its control file bind-mounted from the host): a step forward
/// expires a key at once, a step back stretches a TTL, as on processes and in the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_containers_clock_starts_offset_and_a_step_moves_key_expiry() {
    if !docker_ready().await {
        return;
    }
    let clocks = std::collections::BTreeMap::from([(
        "redis".to_string(),
        locksim::scenario::ClockSpec {
            offset_ms: 5_000.0,
            rate: 1.0,
        },
    )]);
    let topology = locksim::scenario::Topology::Single {};
    let c = match Containers::start_with_clocks(&topology, false, &test_image(), &clocks).await {
        Ok(c) => Arc::new(c),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED (not in CI): {}", live::chain(&e));
            return;
        }
        Err(e) => panic!("containers did not start: {}", live::chain(&e)),
    };
    let jump = locksim::scenario::FaultAction::ClockJump {
        target: "redis".into(),
        by_ms: 1,
    };
    assert!(
        c.supports(&jump).is_ok(),
        "the image carries the clock shim"
    );
    let url = c.nodes()[0].1.clone();
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // 5 s ahead from the start (50 ms of slack either side for a loaded machine).
    let slack = 50_000_000;
    let (low, high) = time_offset_ns(&mut conn).await;
    assert!(
        low - slack <= 5_000_000_000 && 5_000_000_000 <= high + slack,
        "TIME is {low}..{high} ns ahead, want 5 s"
    );
    let set = |key: &str, ms: u64| {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg("v").arg("PX").arg(ms);
        cmd
    };
    let _: () = set("k", 10_000).query_async(&mut conn).await.unwrap();
    let clock = c.jump_clock("redis", 20_000).await.unwrap();
    assert_eq!(clock.offset_ms_at(clock.anchor_ns), 25_000.0);
    let got: Option<String> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(got, None, "a 10 s key after a 20 s step forward is gone");
    let _: () = set("short", 5_000).query_async(&mut conn).await.unwrap();
    c.jump_clock("redis", -20_000).await.unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg("short")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        (24_000..=25_000).contains(&pttl),
        "a 5 s TTL after a -20 s step: PTTL {pttl} ms, want about 25 s"
    );
    drop(conn);
    drop_and_check(c).await;
}
