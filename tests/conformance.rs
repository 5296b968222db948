//! Conformance: the simulator's Redis node (`sim::node::Keyspace`) must answer exactly like a
//! real `redis-server` (Debian's 7.0). Every test plays the same commands against a simulated
//! keyspace and a real server started for the test, asserts identical replies step by step,
//! and compares the keyspaces (key → value, TTL presence and remaining PTTL) afterwards.
//!
//! Without `redis-server` on PATH the tests are skipped loudly, or fail when `CI` is set.

use live::clock::real_now_ns;
use live::conn::NodeConn;
use live::processes::{find_redis_server, Processes};
use live::{Provider, Timeouts};
use locksim::lock_core::{Command, Reply};
use locksim::scenario::{ClockSpec, Topology};
use locksim::sim::node::{Entry, Keyspace, READONLY};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The simulated nodes' local clock when a test starts (µs); any origin works.
const START_US: u64 = 1_000_000_000_000;
/// How much less TTL a real key may have left than its simulated twin: real time also passes
/// while commands travel, the simulated clock only moves on [`Bench::sleep`].
const TTL_TOLERANCE_MS: i64 = 750;
/// How long a replica may take to catch up with its primary.
const CONVERGE: Duration = Duration::from_secs(5);
/// A TTL that outlives any test.
const LONG_MS: u64 = 60_000;
/// A TTL that is gone after [`EXPIRE_WAIT_MS`].
const SHORT_MS: u64 = 100;
const EXPIRE_WAIT_MS: u64 = 350;

// ---- commands ---------------------------------------------------------------------------

fn s(x: &str) -> String {
    x.to_string()
}
fn set_nx(key: &str, value: &str, ttl_ms: Option<u64>) -> Command {
    Command::SetNx {
        key: s(key).into(),
        value: s(value).into(),
        ttl_ms,
    }
}
fn setnx_legacy(key: &str, value: &str) -> Command {
    Command::SetNxLegacy {
        key: s(key).into(),
        value: s(value).into(),
    }
}
fn set(key: &str, value: &str, ttl_ms: Option<u64>) -> Command {
    Command::Set {
        key: s(key).into(),
        value: s(value).into(),
        ttl_ms,
    }
}
fn pexpire(key: &str, ttl_ms: u64) -> Command {
    Command::PExpire {
        key: s(key).into(),
        ttl_ms,
    }
}
fn get(key: &str) -> Command {
    Command::Get { key: s(key).into() }
}
fn del(key: &str) -> Command {
    Command::Del { key: s(key).into() }
}
fn incr(key: &str) -> Command {
    Command::Incr { key: s(key).into() }
}
fn wait(replicas: u32, timeout_ms: u64) -> Command {
    Command::Wait {
        replicas,
        timeout_ms,
    }
}
fn release(key: &str, token: &str) -> Command {
    Command::Release {
        key: s(key).into(),
        token: s(token).into(),
    }
}
fn extend(key: &str, token: &str, ttl_ms: u64) -> Command {
    Command::Extend {
        key: s(key).into(),
        token: s(token).into(),
        ttl_ms,
    }
}
fn fenced(key: &str, token: &str, ttl_ms: Option<u64>) -> Command {
    Command::FencedAcquire {
        key: s(key).into(),
        counter_key: format!("{key}:fence").into(),
        token: s(token).into(),
        ttl_ms,
    }
}
fn counting_acquire(key: &str, token: &str, ttl_ms: Option<u64>) -> Command {
    Command::CountingAcquire {
        key: s(key).into(),
        token: s(token).into(),
        ttl_ms,
    }
}
fn counting_release(key: &str, token: &str, ttl_ms: Option<u64>) -> Command {
    Command::CountingRelease {
        key: s(key).into(),
        token: s(token).into(),
        ttl_ms,
    }
}
fn counting_extend(key: &str, token: &str, ttl_ms: u64) -> Command {
    Command::CountingExtend {
        key: s(key).into(),
        token: s(token).into(),
        ttl_ms,
    }
}
fn bulk(x: &str) -> Reply {
    Reply::Bulk(s(x))
}

/// Replies match when equal, or when both are errors (the texts may differ: the `redis`
/// crate rewords server errors and Redis appends script details inside EVAL).
fn same(sim: &Reply, real: &Reply) -> bool {
    match (sim, real) {
        (Reply::Error(_), Reply::Error(_)) => true,
        _ => sim == real,
    }
}

// ---- a minimal RESP client, for what lock-core's commands cannot ask (KEYS, PTTL) ----------

/// A RESP reply; the texts of simple strings and errors are read only through `Debug`.
#[derive(Debug)]
#[allow(dead_code)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Resp>),
}

fn read_resp(r: &mut impl BufRead) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).expect("read a RESP line");
    let line = line.trim_end_matches("\r\n");
    assert!(!line.is_empty(), "the connection closed mid-reply");
    let (kind, rest) = line.split_at(1);
    let n = || rest.parse::<i64>().expect("a RESP length");
    match kind {
        "+" => Resp::Simple(rest.to_string()),
        "-" => Resp::Error(rest.to_string()),
        ":" => Resp::Int(n()),
        "$" if n() < 0 => Resp::Bulk(None),
        "$" => {
            let mut buf = vec![0; n() as usize + 2];
            r.read_exact(&mut buf).expect("read a bulk string");
            buf.truncate(buf.len() - 2);
            Resp::Bulk(Some(String::from_utf8_lossy(&buf).into_owned()))
        }
        "*" => Resp::Array((0..n().max(0)).map(|_| read_resp(r)).collect()),
        other => panic!("unexpected RESP type {other:?} in {line:?}"),
    }
}

/// One command on a fresh connection to `addr` (`host:port`).
fn raw(addr: &str, args: &[&str]) -> Resp {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes()).expect("send a command");
    read_resp(&mut BufReader::new(stream))
}

// ---- the bench: simulated nodes next to real ones -------------------------------------------

/// Whether the tests can run; panics on CI when they cannot.
fn redis_available() -> bool {
    match find_redis_server() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("redis-server missing: run scripts/test.sh ({e})")
        }
        Err(e) => {
            // Straight to the stderr handle: libtest swallows `eprintln!` of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! SKIPPED conformance test: redis-server missing: run scripts/test.sh ({e}) !!!!!!!!\n"
            );
            false
        }
    }
}

/// A real key as read back: its value and PTTL (-1: no expiry).
type RealEntry = (String, i64);

struct Node {
    name: String,
    addr: String,
    conn: NodeConn,
    keyspace: Keyspace,
    writable: bool,
}

/// Real servers of one topology and a simulated keyspace per server, driven in lockstep. The
/// simulated nodes share one local clock that moves only on [`Bench::sleep`]; effects of a
/// write on the simulated primary are applied to every other simulated node at once.
struct Bench {
    nodes: Vec<Node>,
    primary: usize,
    now_us: u64,
    transcript: Vec<String>,
    // Last, so the servers stop after the connections are dropped.
    processes: Processes,
}

impl Bench {
    /// Starts `topology`'s servers, or `None` (skip) when redis-server is missing.
    fn start(topology: &Topology) -> Option<Bench> {
        Bench::start_with_clocks(topology, &BTreeMap::new())
    }

    /// [`Bench::start`] with the real nodes named in `clocks` starting at those clocks.
    fn start_with_clocks(
        topology: &Topology,
        clocks: &BTreeMap<String, ClockSpec>,
    ) -> Option<Bench> {
        if !redis_available() {
            return None;
        }
        let processes =
            tokio::task::block_in_place(|| Processes::start_with_clocks(topology, false, clocks))
                .unwrap_or_else(|e| panic!("starting redis-server: {e}"));
        let nodes = processes
            .nodes()
            .into_iter()
            .enumerate()
            .map(|(i, (name, url))| Node {
                name,
                addr: url.trim_start_matches("redis://").to_string(),
                conn: NodeConn::new(url, Timeouts::default()),
                keyspace: Keyspace::default(),
                writable: i == 0,
            })
            .collect();
        Some(Bench {
            nodes,
            primary: 0,
            now_us: START_US,
            transcript: Vec::new(),
            processes,
        })
    }

    fn index(&self, node: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == node)
            .unwrap_or_else(|| panic!("no node {node}"))
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "{what}\n--- steps so far ---\n{}",
            self.transcript.join("\n")
        )
    }

    /// Runs `cmds` on `node` of both backends; asserts each pair of replies matches and
    /// returns the real replies.
    async fn run(&mut self, node: &str, cmds: &[Command]) -> Vec<Reply> {
        let n = self.index(node);
        let mut out = Vec::new();
        for cmd in cmds {
            let step = self.transcript.len() + 1;
            let mut fx = Vec::new();
            let now = self.now_us;
            let writable = self.nodes[n].writable;
            let sim = self.nodes[n].keyspace.execute(cmd, now, writable, &mut fx);
            if n == self.primary {
                for (i, other) in self.nodes.iter_mut().enumerate() {
                    if i != n {
                        fx.iter().for_each(|e| other.keyspace.apply(e));
                    }
                }
            } else {
                assert!(fx.is_empty(), "a simulated replica wrote: {fx:?}");
            }
            let real = self.nodes[n].conn.send(cmd).await;
            self.transcript.push(format!(
                "  #{step} {node}: {cmd}  =>  sim {sim:?} | real {real:?}"
            ));
            if !same(&sim, &real) {
                self.fail(format!(
                    "step #{step} on {node}: `{cmd}` answered differently\n  sim:  {sim:?}\n  real: {real:?}"
                ));
            }
            out.push(real);
        }
        out
    }

    /// Runs one command on both backends and asserts both answer `want` (any error when
    /// `want` is an error).
    async fn expect(&mut self, node: &str, cmd: Command, want: Reply) {
        let got = self.run(node, std::slice::from_ref(&cmd)).await.remove(0);
        if !same(&want, &got) {
            self.fail(format!(
                "`{cmd}` on {node}: both backends answered {got:?}, expected {want:?}"
            ));
        }
    }

    /// Like [`Bench::expect`] for an error whose real text contains `needle`.
    async fn expect_err(&mut self, node: &str, cmd: Command, needle: &str) {
        let got = self.run(node, std::slice::from_ref(&cmd)).await.remove(0);
        match &got {
            Reply::Error(e) if e.to_lowercase().contains(&needle.to_lowercase()) => {}
            _ => self.fail(format!(
                "`{cmd}` on {node}: expected an error containing {needle:?}, real answered {got:?}"
            )),
        }
    }

    /// Sleeps `ms` for real and moves the simulated clock by as long as the sleep really took
    /// (a loaded machine may oversleep; the two clocks then still agree).
    async fn sleep(&mut self, ms: u64) {
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let slept = started.elapsed();
        self.now_us += slept.as_micros() as u64;
        self.transcript
            .push(format!("  (sleep {ms} ms, slept {slept:?})"));
    }

    /// Every live key of the real server `n`: KEYS, then GET and PTTL of each.
    async fn real_keyspace(&self, n: usize) -> BTreeMap<String, RealEntry> {
        let node = &self.nodes[n];
        let keys = match raw(&node.addr, &["KEYS", "*"]) {
            Resp::Array(keys) => keys,
            other => panic!("KEYS * on {}: {other:?}", node.name),
        };
        let mut out = BTreeMap::new();
        for key in keys {
            let Resp::Bulk(Some(key)) = key else {
                panic!("KEYS * on {}: a non-string key {key:?}", node.name)
            };
            let value = node.conn.send(&get(&key)).await;
            let pttl = match raw(&node.addr, &["PTTL", &key]) {
                Resp::Int(p) => p,
                other => panic!("PTTL {key} on {}: {other:?}", node.name),
            };
            let value = match value {
                // A hash (a counting lock): its fields, read as `hash field=count ...`.
                Reply::Error(e) if e.contains("WRONGTYPE") => {
                    match raw(&node.addr, &["HGETALL", &key]) {
                        Resp::Array(kv) => {
                            let words: Vec<String> = kv
                                .iter()
                                .map(|w| match w {
                                    Resp::Bulk(Some(w)) => w.clone(),
                                    other => panic!("HGETALL {key}: {other:?}"),
                                })
                                .collect();
                            let pairs: Vec<String> = words.chunks(2).map(|p| p.join("=")).collect();
                            Reply::Bulk(format!("hash {}", pairs.join(" ")))
                        }
                        other => panic!("HGETALL {key} on {}: {other:?}", node.name),
                    }
                }
                v => v,
            };
            match value {
                Reply::Bulk(v) if pttl != -2 => {
                    out.insert(key, (v, pttl));
                }
                Reply::Nil => {} // expired between KEYS and GET
                other => panic!("GET {key} on {}: {other:?}", node.name),
            }
        }
        out
    }

    /// The differences between node `n`'s simulated and real keyspaces, if any.
    async fn keyspace_diff(&mut self, n: usize) -> Option<String> {
        let real = self.real_keyspace(n).await;
        let now = self.now_us;
        let sim: BTreeMap<String, Entry> = self.nodes[n]
            .keyspace
            .snapshot(now)
            .into_iter()
            .map(|(k, e)| (k.to_string(), e))
            .collect();
        let keys: BTreeSet<&String> = sim.keys().chain(real.keys()).collect();
        let mut problems = Vec::new();
        for key in keys {
            match (sim.get(key), real.get(key)) {
                (Some(e), Some((value, pttl))) => {
                    let sim_value = match e.count {
                        Some(n) => format!("hash {}={n}", e.value),
                        None => e.value.to_string(),
                    };
                    if &sim_value != value {
                        problems.push(format!("{key}: sim holds {sim_value:?}, real {value:?}"));
                    }
                    match (e.expires_at, *pttl) {
                        (None, -1) => {}
                        (Some(at), p) if p >= 0 => {
                            let left = ((at - now) / 1000) as i64;
                            if p > left + 2 || p < left - TTL_TOLERANCE_MS {
                                problems.push(format!(
                                    "{key}: sim has {left} ms to live, real PTTL {p} ms"
                                ));
                            }
                        }
                        (at, p) => problems.push(format!(
                            "{key}: sim expiry {:?}, real PTTL {p}",
                            at.map(|a| format!("in {} ms", (a - now) / 1000))
                        )),
                    }
                }
                (Some(e), None) => problems.push(format!("{key}: only in sim ({e:?})")),
                (None, Some(r)) => problems.push(format!("{key}: only in real ({r:?})")),
                (None, None) => unreachable!(),
            }
        }
        (!problems.is_empty()).then(|| problems.join("\n  "))
    }

    /// Asserts node `node`'s keyspaces are the same on both backends; returns the key count.
    async fn assert_same_keyspace(&mut self, node: &str) -> usize {
        let n = self.index(node);
        if let Some(diff) = self.keyspace_diff(n).await {
            self.fail(format!("keyspaces of {node} differ:\n  {diff}"));
        }
        self.nodes[n].keyspace.snapshot(self.now_us).len()
    }

    /// Polls until `node`'s real keyspace matches its simulated one (a replica catching up).
    /// Real time passes while it polls (a fresh replica streams only after its first
    /// `REPLCONF ACK`, which can take a second), so the simulated clock follows it.
    async fn await_same_keyspace(&mut self, node: &str) -> usize {
        let n = self.index(node);
        let (started, base_us) = (Instant::now(), self.now_us);
        loop {
            self.now_us = base_us + started.elapsed().as_micros() as u64;
            match self.keyspace_diff(n).await {
                None => break,
                Some(diff) if started.elapsed() >= CONVERGE => self.fail(format!(
                    "{node} did not converge within {CONVERGE:?}:\n  {diff}"
                )),
                Some(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        self.transcript.push(format!(
            "  ({node} converged after {} ms)",
            (self.now_us - base_us) / 1000
        ));
        self.nodes[n].keyspace.snapshot(self.now_us).len()
    }

    /// Promotes `node` on both backends: the real one with `Provider::promote` (the others
    /// follow it), the simulated one by flipping which keyspace is writable.
    async fn promote(&mut self, node: &str) {
        let n = self.index(node);
        self.processes
            .promote(node)
            .await
            .unwrap_or_else(|e| panic!("promote {node}: {}", live::chain(&e)));
        for (i, other) in self.nodes.iter_mut().enumerate() {
            other.writable = i == n;
        }
        self.primary = n;
        self.transcript.push(format!("  (promote {node})"));
    }
}

// ---- server clocks --------------------------------------------------------------------------

/// One reading of `args` on `addr` (an integer, or `TIME` in ns), bracketed by the true wall
/// time just before and just after it was asked: `(before_ns, after_ns, value)`.
fn bracketed(addr: &str, args: &[&str]) -> (i64, i64, i64) {
    let before = real_now_ns();
    let value = match raw(addr, args) {
        Resp::Int(i) => i,
        Resp::Array(t) => match &t[..] {
            [Resp::Bulk(Some(s)), Resp::Bulk(Some(us))] => {
                s.parse::<i64>().unwrap() * 1_000_000_000 + us.parse::<i64>().unwrap() * 1_000
            }
            other => panic!("TIME on {addr}: {other:?}"),
        },
        other => panic!("{args:?} on {addr}: {other:?}"),
    };
    (before, real_now_ns(), value)
}

/// How far `addr`'s `TIME` is ahead of true time, as `(low, high)` ns bounds.
fn time_offset_ns(addr: &str) -> (i64, i64) {
    let (before, after, read) = bracketed(addr, &["TIME"]);
    (read - after, read - before)
}

impl Bench {
    /// Steps `node`'s clock by `by_ms` on both backends: the real one through the processes
    /// provider's clock shim (checked by its `TIME`), the simulated one by moving the clock its
    /// keyspace is judged on.
    async fn jump_clock(&mut self, node: &str, by_ms: i64) {
        let n = self.index(node);
        let before = time_offset_ns(&self.nodes[n].addr);
        let clock = self
            .processes
            .jump_clock(node, by_ms)
            .await
            .unwrap_or_else(|e| panic!("jump {node}'s clock: {}", live::chain(&e)));
        let (low, high) = time_offset_ns(&self.nodes[n].addr);
        let want = clock.offset_ns_at(real_now_ns());
        // A loaded machine may stall between the readings; 50 ms either side is plenty.
        let slack = 50_000_000;
        if want < low - slack || want > high + slack {
            self.fail(format!(
                "{node}'s TIME is {low}..{high} ns ahead after a {by_ms} ms jump, want {want} (before: {before:?})"
            ));
        }
        self.now_us = self.now_us.wrapping_add_signed(by_ms * 1000);
        self.transcript
            .push(format!("  (clock of {node} jumps {by_ms:+} ms)"));
    }
}

/// Kleppmann's clock jump on a real server: a step forward expires a key at once, a step back
/// stretches its TTL, exactly as the simulated node's clock does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_clock_step_moves_key_expiry_as_in_the_simulator() {
    let Some(mut b) = Bench::start(&Topology::Single {}) else {
        return;
    };
    b.expect("redis", set("k", "v", Some(10_000)), Reply::Ok)
        .await;
    b.expect("redis", get("k"), bulk("v")).await;
    b.jump_clock("redis", 20_000).await;
    b.expect("redis", get("k"), Reply::Nil).await;
    b.expect("redis", set("short", "v", Some(5_000)), Reply::Ok)
        .await;
    b.jump_clock("redis", -20_000).await;
    assert_eq!(b.assert_same_keyspace("redis").await, 1);
    let addr = b.nodes[0].addr.clone();
    let (_, _, pttl) = bracketed(&addr, &["PTTL", "short"]);
    assert!(
        (24_000..=25_000).contains(&pttl),
        "a 5 s TTL after a -20 s step: PTTL {pttl} ms, want about 25 s"
    );
    b.expect("redis", get("short"), bulk("v")).await;
}

/// A server clock at rate 1.005 runs 0.5 % fast: its `TIME` and a key's `PTTL` both move 1.005
/// ms per true ms over a measured interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifting_server_clock_runs_at_its_rate() {
    let rate = 1.005;
    let clocks = BTreeMap::from([(
        "redis".to_string(),
        ClockSpec {
            offset_ms: 0.0,
            rate,
        },
    )]);
    let Some(mut b) = Bench::start_with_clocks(&Topology::Single {}, &clocks) else {
        return;
    };
    b.expect("redis", set("k", "v", Some(60_000)), Reply::Ok)
        .await;
    let addr = b.nodes[0].addr.clone();
    // The tightest of a few readings: a loaded machine may stall one of them.
    let tightest = |args: &[&str]| {
        (0..5)
            .map(|_| bracketed(&addr, args))
            .min_by_key(|(before, after, _)| after - before)
            .unwrap()
    };
    let (t0, p0) = (tightest(&["TIME"]), tightest(&["PTTL", "k"]));
    // Long enough that the 0.5 % (40 ms over 8 s) dwarfs the readings' round trips.
    let span = 8_000_000_000;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (t1, p1) = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if real_now_ns() - t0.1 >= span {
            break (tightest(&["TIME"]), tightest(&["PTTL", "k"]));
        }
        assert!(Instant::now() < deadline, "the interval never passed");
    };
    // (Δ server, [shortest, longest] true interval the readings allow).
    let check = |what: &str, moved: f64, (a0, b0): (i64, i64), (a1, b1): (i64, i64)| {
        let (short, long) = ((a1 - b0) as f64, (b1 - a0) as f64);
        let (fast, slow) = (moved / short, moved / long);
        assert!(
            slow <= rate + 0.001 && fast >= rate - 0.001 && slow > 1.002,
            "{what}: the server moved {moved} ns over {short}..{long} true ns: rate {slow}..{fast}, want {rate}"
        );
    };
    check("TIME", (t1.2 - t0.2) as f64, (t0.0, t0.1), (t1.0, t1.1));
    // PTTL counts down in whole ms: a reading is ±1 ms.
    let pttl_moved = ((p0.2 - p1.2) * 1_000_000) as f64;
    check("PTTL", pttl_moved, (p0.0, p0.1), (p1.0, p1.1));
}

// ---- the tests ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_nx_px_first_wins_and_expires() {
    let Some(mut b) = Bench::start(&Topology::Single {}) else {
        return;
    };
    b.expect("redis", set_nx("lock", "a", Some(SHORT_MS)), Reply::Ok)
        .await;
    b.expect("redis", set_nx("lock", "b", Some(SHORT_MS)), Reply::Nil)
        .await;
    b.expect("redis", get("lock"), bulk("a")).await;
    b.expect("redis", set_nx("long", "x", Some(LONG_MS)), Reply::Ok)
        .await;
    b.expect("redis", set_nx("forever", "y", None), Reply::Ok)
        .await;
    b.expect("redis", set_nx("forever", "z", None), Reply::Nil)
        .await;
    b.sleep(EXPIRE_WAIT_MS).await;
    b.expect("redis", get("lock"), Reply::Nil).await;
    assert_eq!(b.assert_same_keyspace("redis").await, 2, "long and forever");
    b.expect("redis", set_nx("lock", "b", Some(LONG_MS)), Reply::Ok)
        .await;
    b.expect("redis", get("lock"), bulk("b")).await;
    assert_eq!(b.assert_same_keyspace("redis").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setnx_then_pexpire() {
    let Some(mut b) = Bench::start(&Topology::Single {}) else {
        return;
    };
    b.expect("redis", setnx_legacy("lock", "a"), Reply::Int(1))
        .await;
    b.expect("redis", setnx_legacy("lock", "b"), Reply::Int(0))
        .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 1, "no TTL yet");
    b.expect("redis", pexpire("lock", LONG_MS), Reply::Int(1))
        .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 1, "TTL now set");
    b.expect("redis", pexpire("missing", LONG_MS), Reply::Int(0))
        .await;
    b.expect("redis", pexpire("lock", SHORT_MS), Reply::Int(1))
        .await;
    b.sleep(EXPIRE_WAIT_MS).await;
    b.expect("redis", get("lock"), Reply::Nil).await;
    b.expect("redis", pexpire("lock", LONG_MS), Reply::Int(0))
        .await;
    b.expect("redis", setnx_legacy("lock", "c"), Reply::Int(1))
        .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_script_and_del() {
    let Some(mut b) = Bench::start(&Topology::Single {}) else {
        return;
    };
    b.expect("redis", set_nx("lock", "a", Some(LONG_MS)), Reply::Ok)
        .await;
    b.expect("redis", release("lock", "wrong"), Reply::Int(0))
        .await;
    b.expect("redis", get("lock"), bulk("a")).await;
    assert_eq!(b.assert_same_keyspace("redis").await, 1);
    b.expect("redis", release("lock", "a"), Reply::Int(1)).await;
    b.expect("redis", get("lock"), Reply::Nil).await;
    b.expect("redis", release("lock", "a"), Reply::Int(0)).await;
    b.expect("redis", release("never", "a"), Reply::Int(0))
        .await;
    b.expect("redis", set("plain", "v", None), Reply::Ok).await;
    b.expect("redis", set("other", "w", None), Reply::Ok).await;
    b.expect("redis", del("plain"), Reply::Int(1)).await;
    b.expect("redis", del("plain"), Reply::Int(0)).await;
    b.expect("redis", del("never"), Reply::Int(0)).await;
    assert_eq!(b.assert_same_keyspace("redis").await, 1, "only `other`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_script_pushes_the_expiry_out() {
    let Some(mut b) = Bench::start(&Topology::Single {}) else {
        return;
    };
    b.expect("redis", set_nx("lock", "a", Some(300)), Reply::Ok)
        .await;
    b.expect("redis", extend("lock", "wrong", LONG_MS), Reply::Int(0))
        .await;
    b.expect("redis", extend("lock", "a", LONG_MS), Reply::Int(1))
        .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 1, "TTL now ~60 s");
    b.sleep(500).await; // past the original 300 ms
    b.expect("redis", get("lock"), bulk("a")).await;
    b.expect("redis", extend("missing", "a", LONG_MS), Reply::Int(0))
        .await;
    // A lock without expiry gets one.
    b.expect("redis", setnx_legacy("bare", "t"), Reply::Int(1))
        .await;
    b.expect("redis", extend("bare", "t", SHORT_MS), Reply::Int(1))
        .await;
    b.sleep(EXPIRE_WAIT_MS).await;
    b.expect("redis", get("bare"), Reply::Nil).await;
    b.expect("redis", extend("bare", "t", LONG_MS), Reply::Int(0))
        .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_acquire_script() {
    let Some(mut b) = Bench::start(&Topology::Single {}) else {
        return;
    };
    // With a TTL.
    b.expect("redis", fenced("lock", "a", Some(LONG_MS)), Reply::Int(1))
        .await;
    b.expect("redis", fenced("lock", "b", Some(LONG_MS)), Reply::Nil)
        .await;
    b.expect("redis", get("lock:fence"), bulk("1")).await;
    assert_eq!(b.assert_same_keyspace("redis").await, 2);
    b.expect("redis", release("lock", "a"), Reply::Int(1)).await;
    b.expect("redis", fenced("lock", "b", Some(LONG_MS)), Reply::Int(2))
        .await;
    b.expect("redis", get("lock"), bulk("b")).await;
    b.expect("redis", get("lock:fence"), bulk("2")).await;
    // Without a TTL.
    b.expect("redis", fenced("bare", "a", None), Reply::Int(1))
        .await;
    b.expect("redis", fenced("bare", "b", None), Reply::Nil)
        .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 4);
    b.expect("redis", release("bare", "a"), Reply::Int(1)).await;
    b.expect("redis", fenced("bare", "b", None), Reply::Int(2))
        .await;
    // A lost lock is taken again once it expires; the counter keeps counting.
    b.expect("redis", fenced("short", "a", Some(SHORT_MS)), Reply::Int(1))
        .await;
    b.expect("redis", fenced("short", "b", Some(SHORT_MS)), Reply::Nil)
        .await;
    b.sleep(EXPIRE_WAIT_MS).await;
    b.expect("redis", fenced("short", "b", Some(LONG_MS)), Reply::Int(2))
        .await;
    b.expect("redis", get("short:fence"), bulk("2")).await;
    assert_eq!(b.assert_same_keyspace("redis").await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_scripts_count_holds_in_a_hash() {
    let Some(mut b) = Bench::start(&Topology::Single {}) else {
        return;
    };
    b.expect(
        "redis",
        counting_acquire("lock", "a", Some(LONG_MS)),
        Reply::Int(1),
    )
    .await;
    // The same token again (a resend): two holds. Another token: refused.
    b.expect(
        "redis",
        counting_acquire("lock", "a", Some(LONG_MS)),
        Reply::Int(2),
    )
    .await;
    b.expect(
        "redis",
        counting_acquire("lock", "b", Some(LONG_MS)),
        Reply::Nil,
    )
    .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 1, "hash a=2");
    b.expect(
        "redis",
        counting_release("lock", "b", Some(LONG_MS)),
        Reply::Nil,
    )
    .await;
    b.expect(
        "redis",
        counting_extend("lock", "b", LONG_MS),
        Reply::Int(0),
    )
    .await;
    b.expect(
        "redis",
        counting_extend("lock", "a", LONG_MS),
        Reply::Int(1),
    )
    .await;
    // One release takes one hold away and leaves the key; the second deletes it.
    b.expect(
        "redis",
        counting_release("lock", "a", Some(LONG_MS)),
        Reply::Int(0),
    )
    .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 1, "hash a=1");
    b.expect(
        "redis",
        counting_release("lock", "a", Some(LONG_MS)),
        Reply::Int(1),
    )
    .await;
    b.expect(
        "redis",
        counting_release("lock", "a", Some(LONG_MS)),
        Reply::Nil,
    )
    .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 0);
    // Without a TTL the hash keeps none; a short one expires it.
    b.expect("redis", counting_acquire("bare", "a", None), Reply::Int(1))
        .await;
    b.expect(
        "redis",
        counting_acquire("short", "a", Some(SHORT_MS)),
        Reply::Int(1),
    )
    .await;
    b.sleep(EXPIRE_WAIT_MS).await;
    b.expect(
        "redis",
        counting_acquire("short", "b", Some(LONG_MS)),
        Reply::Int(1),
    )
    .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 2);
    // Strings and hashes refuse each other's commands; SET NX, PEXPIRE and DEL take both.
    b.expect_err("redis", get("bare"), "WRONGTYPE").await;
    b.expect_err("redis", release("bare", "a"), "WRONGTYPE")
        .await;
    b.expect_err("redis", extend("bare", "a", LONG_MS), "WRONGTYPE")
        .await;
    b.expect("redis", set_nx("bare", "x", None), Reply::Nil)
        .await;
    b.expect("redis", pexpire("bare", LONG_MS), Reply::Int(1))
        .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 2);
    b.expect("redis", del("bare"), Reply::Int(1)).await;
    b.expect("redis", set_nx("str", "x", Some(LONG_MS)), Reply::Ok)
        .await;
    b.expect_err(
        "redis",
        counting_acquire("str", "x", Some(LONG_MS)),
        "WRONGTYPE",
    )
    .await;
    b.expect_err(
        "redis",
        counting_release("str", "x", Some(LONG_MS)),
        "WRONGTYPE",
    )
    .await;
    b.expect_err("redis", counting_extend("str", "x", LONG_MS), "WRONGTYPE")
        .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_incr_and_plain_set() {
    let Some(mut b) = Bench::start(&Topology::Single {}) else {
        return;
    };
    b.expect("redis", get("c"), Reply::Nil).await;
    b.expect("redis", incr("c"), Reply::Int(1)).await;
    b.expect("redis", incr("c"), Reply::Int(2)).await;
    b.expect("redis", get("c"), bulk("2")).await;
    b.expect("redis", set("word", "abc", None), Reply::Ok).await;
    b.expect_err("redis", incr("word"), "not an integer").await;
    b.expect("redis", get("word"), bulk("abc")).await;
    // SET overwrites, and drops any TTL; INCR keeps the TTL.
    b.expect("redis", set("c", "v", None), Reply::Ok).await;
    b.expect("redis", get("c"), bulk("v")).await;
    b.expect("redis", set("t", "5", Some(LONG_MS)), Reply::Ok)
        .await;
    b.expect("redis", incr("t"), Reply::Int(6)).await;
    assert_eq!(b.assert_same_keyspace("redis").await, 3, "t keeps its TTL");
    b.expect("redis", set("t", "7", None), Reply::Ok).await;
    b.expect("redis", set("word", "new", Some(LONG_MS)), Reply::Ok)
        .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 3);
    b.expect("redis", set("gone", "x", Some(SHORT_MS)), Reply::Ok)
        .await;
    b.sleep(EXPIRE_WAIT_MS).await;
    b.expect("redis", incr("gone"), Reply::Int(1)).await;
    assert_eq!(
        b.assert_same_keyspace("redis").await,
        4,
        "gone is 1, no TTL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_on_a_single_node() {
    let Some(mut b) = Bench::start(&Topology::Single {}) else {
        return;
    };
    b.expect("redis", wait(0, 0), Reply::Int(0)).await;
    b.expect("redis", set_nx("lock", "a", Some(LONG_MS)), Reply::Ok)
        .await;
    b.expect("redis", wait(0, 100), Reply::Int(0)).await;
    let started = Instant::now();
    b.expect("redis", wait(1, 100), Reply::Int(0)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "real WAIT 1 100 with no replica waits out its timeout"
    );
    assert_eq!(b.assert_same_keyspace("redis").await, 1);
}

/// Corner cases of argument checking and integer parsing the lock protocol can reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_cases() {
    let Some(mut b) = Bench::start(&Topology::Single {}) else {
        return;
    };
    // A zero or overflowing expiry is an error, checked before NX looks at the key.
    b.expect_err("redis", set_nx("lock", "a", Some(0)), "expire time")
        .await;
    b.expect_err("redis", set("lock", "a", Some(0)), "expire time")
        .await;
    b.expect_err("redis", set_nx("lock", "a", Some(i64::MAX as u64)), "")
        .await;
    b.expect_err("redis", set("lock", "a", Some(u64::MAX)), "")
        .await;
    b.expect("redis", get("lock"), Reply::Nil).await;
    b.expect("redis", set_nx("lock", "a", None), Reply::Ok)
        .await;
    b.expect_err("redis", set_nx("lock", "b", Some(0)), "expire time")
        .await;
    b.expect_err("redis", pexpire("lock", i64::MAX as u64), "expire time")
        .await;
    b.expect_err("redis", pexpire("lock", u64::MAX), "").await;
    b.expect_err("redis", extend("lock", "a", i64::MAX as u64), "")
        .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 1, "lock unchanged");
    // PEXPIRE 0 deletes.
    b.expect("redis", pexpire("lock", 0), Reply::Int(1)).await;
    b.expect("redis", get("lock"), Reply::Nil).await;
    // The fenced script sends a zero TTL as "no expiry".
    b.expect("redis", fenced("f", "a", Some(0)), Reply::Int(1))
        .await;
    b.expect("redis", get("f"), bulk("a")).await;
    b.expect_err("redis", fenced("f", "b", Some(i64::MAX as u64)), "")
        .await;
    assert_eq!(b.assert_same_keyspace("redis").await, 2, "f without TTL");
    // INCR takes only canonical integers and refuses to overflow.
    for text in [
        "+5",
        "007",
        "-0",
        " 12",
        "12 ",
        "",
        "-",
        "1e3",
        "99999999999999999999",
    ] {
        b.expect("redis", set("n", text, None), Reply::Ok).await;
        b.expect_err("redis", incr("n"), "not an integer").await;
    }
    b.expect("redis", set("n", &i64::MAX.to_string(), None), Reply::Ok)
        .await;
    b.expect_err("redis", incr("n"), "overflow").await;
    b.expect("redis", get("n"), bulk(&i64::MAX.to_string()))
        .await;
    b.expect("redis", set("n", &i64::MIN.to_string(), None), Reply::Ok)
        .await;
    b.expect("redis", incr("n"), Reply::Int(i64::MIN + 1)).await;
    b.expect("redis", set("n", "-1", None), Reply::Ok).await;
    b.expect("redis", incr("n"), Reply::Int(0)).await;
    b.expect("redis", incr("n"), Reply::Int(1)).await;
    assert_eq!(b.assert_same_keyspace("redis").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_read_only_replica_and_promotion() {
    let topology = Topology::Replicated {
        replicas: 1,
        replication_lag_ms: 0.0,
        repl_timeout_ms: 60_000,
        sentinel: None,
    };
    let Some(mut b) = Bench::start(&topology) else {
        return;
    };
    let (p, r) = ("primary", "replica-1");
    // Writes on the primary reach the replica.
    b.expect(p, set_nx("lock", "a", Some(LONG_MS)), Reply::Ok)
        .await;
    b.expect(p, fenced("fl", "a", None), Reply::Int(1)).await;
    b.expect(p, set("plain", "v", None), Reply::Ok).await;
    b.expect(p, incr("plain:n"), Reply::Int(1)).await;
    b.expect(p, setnx_legacy("legacy", "a"), Reply::Int(1))
        .await;
    b.expect(p, pexpire("legacy", LONG_MS), Reply::Int(1)).await;
    b.expect(p, set("gone", "x", None), Reply::Ok).await;
    b.expect(p, del("gone"), Reply::Int(1)).await;
    assert_eq!(b.assert_same_keyspace(p).await, 6);
    assert_eq!(b.await_same_keyspace(r).await, 6, "the replica caught up");
    b.expect(r, get("lock"), bulk("a")).await;
    b.expect(r, get("fl:fence"), bulk("1")).await;
    // Every write on the replica fails.
    let writes = [
        set_nx("lock", "b", Some(LONG_MS)),
        set_nx("new", "b", Some(LONG_MS)),
        setnx_legacy("new", "b"),
        set("lock", "b", None),
        pexpire("lock", LONG_MS),
        pexpire("missing", LONG_MS),
        del("lock"),
        del("missing"),
        incr("plain:n"),
        release("lock", "a"),
        extend("lock", "a", LONG_MS),
        fenced("new", "b", Some(LONG_MS)),
        fenced("fl", "b", None),
    ];
    for cmd in writes {
        b.expect_err(r, cmd, "read only").await;
    }
    // Scripts that never reach their write answer as on a primary.
    b.expect(r, release("lock", "wrong"), Reply::Int(0)).await;
    b.expect(r, release("missing", "a"), Reply::Int(0)).await;
    b.expect(r, extend("lock", "wrong", LONG_MS), Reply::Int(0))
        .await;
    assert_eq!(b.await_same_keyspace(r).await, 6, "nothing changed");
    b.expect_err(r, wait(0, 0), "replica").await;
    // An expiring write replicates its expiry.
    b.expect(p, set_nx("short", "s", Some(SHORT_MS)), Reply::Ok)
        .await;
    b.sleep(EXPIRE_WAIT_MS).await;
    b.expect(r, get("short"), Reply::Nil).await;
    b.expect(p, get("short"), Reply::Nil).await;
    assert_eq!(b.await_same_keyspace(r).await, 6);

    // Promotion: the replica takes writes, the old primary follows it.
    b.promote(r).await;
    b.expect(r, release("lock", "a"), Reply::Int(1)).await;
    b.expect(r, set_nx("lock", "b", Some(LONG_MS)), Reply::Ok)
        .await;
    b.expect(r, fenced("fl", "b", None), Reply::Nil).await;
    b.expect(r, release("fl", "a"), Reply::Int(1)).await;
    b.expect(r, fenced("fl", "b", None), Reply::Int(2)).await;
    b.expect(r, incr("plain:n"), Reply::Int(2)).await;
    b.expect(r, extend("legacy", "a", 2 * LONG_MS), Reply::Int(1))
        .await;
    assert_eq!(b.assert_same_keyspace(r).await, 6);
    assert_eq!(b.await_same_keyspace(p).await, 6, "the old primary follows");
    b.expect_err(p, set("plain", "w", None), "read only").await;
    b.expect(p, get("lock"), bulk("b")).await;
}

#[test]
fn same_treats_all_errors_alike_and_nothing_else() {
    let e = |t: &str| Reply::Error(t.into());
    assert!(same(&e(READONLY), &e("ReadOnly: You can't write")));
    assert!(!same(&Reply::Nil, &Reply::Int(0)));
    assert!(!same(&Reply::Ok, &e("ERR")));
    assert!(same(&bulk("a"), &bulk("a")));
    assert!(!same(&bulk("a"), &bulk("b")));
}
