//! The processes provider: Debian's `redis-server` started on free loopback ports — a single
//! node, a primary with replicas, or independent primaries — with faults by signal
//! (SIGKILL, SIGSTOP/SIGCONT) and by command (REPLICAOF NO ONE). Every server runs with the
//! clock shim preloaded ([`crate::clock`]) and its own control file, so its wall clock can be
//! offset, made to drift and stepped while it runs.
//!
//! With `sentinel` set, three Sentinels run beside the nodes as `redis-server --sentinel`
//! processes on loopback, each with its own writable configuration file in the run's
//! directory and the settings the containers' Sentinels have ([`crate::sentinel`]); the
//! provider follows their switches of the primary, so clients follow a failover. Every
//! connection between servers and from the Sentinels goes through a fault-proxy link, so a
//! partition can cut a primary off its replicas and the Sentinels while the clients still
//! reach it (see [`links`] for which link carries what, and what is refused).
//!
//! Every server and Sentinel is stopped when the provider is dropped (on success, failure and panic), and
//! each is started with `PR_SET_PDEATHSIG` from the provider's own spawner thread, so it also
//! dies when the harness dies (Ctrl-C, or a kill). The signal follows the *thread* that
//! spawned the child, which is why no server is spawned from a pool thread that may retire.

mod links;

use links::Party;

use crate::admin::free_port;
use crate::clock::{ControlFile, ServerClock};
use crate::link::LinkControl;
use crate::server::{Promotion, RedisArgs};
use crate::{Backend, FaultError, LiveError, Provider, Refusal, StartupError};
use scenario::{ClockSpec, FaultAction, Topology};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections, or a replica to link up.
const STARTUP: Duration = Duration::from_secs(10);

/// A thread that lives exactly as long as its provider and starts every child process, so the
/// children's parent-death signal is tied to the provider's life, not to a passing thread.
struct Spawner {
    tx: Option<std::sync::mpsc::Sender<(Command, std::sync::mpsc::Sender<std::io::Result<Child>>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spawner {
    fn new() -> Spawner {
        let (tx, rx) =
            std::sync::mpsc::channel::<(Command, std::sync::mpsc::Sender<std::io::Result<Child>>)>(
            );
        let thread = std::thread::Builder::new()
            .name("locksim-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok();
        Spawner {
            tx: Some(tx),
            thread,
        }
    }

    fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        let (reply, result) = std::sync::mpsc::channel();
        let gone = || std::io::Error::other("the spawner thread is gone");
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send((cmd, reply))
            .map_err(|_| gone())?;
        result.recv().map_err(|_| gone())?
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Node {
    name: String,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// Redis servers running as local processes.
pub struct Processes {
    inner: Arc<Inner>,
}

/// The servers, shared with the blocking pool while one restarts.
struct Inner {
    bin: PathBuf,
    root: PathBuf,
    aof: bool,
    replicated: bool,
    nodes: Mutex<Vec<Node>>,
    /// The Sentinels (none without `sentinel`), named `sentinel-1` ...
    sentinels: Mutex<Vec<Node>>,
    primary: Arc<AtomicUsize>,
    /// Promotions the Sentinels made, as the poller saw them, not yet taken by the driver.
    promotions: Arc<Mutex<Vec<(Instant, checker::Effect)>>>,
    /// Stops the thread that follows the Sentinels' switches of the primary.
    stop: Arc<AtomicBool>,
    spawner: Spawner,
    /// Redis's `repl-timeout`, in seconds.
    repl_timeout_s: u64,
    /// The clock shim every server preloads.
    shim: PathBuf,
    /// Each node's clock control file, by node name (outside its data directory, so a
    /// restart without persistence keeps the node's clock, as a machine's would).
    clocks: Mutex<BTreeMap<String, ControlFile>>,
    /// Every client's proxy link to every node.
    links: links::ClientLinks,
}

/// Finds `redis-server` on PATH.
pub fn find_redis_server() -> Result<PathBuf, LiveError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or(LiveError::NoRedisServer)
}

impl Processes {
    /// Starts the servers `scenario` needs after refusing (before anything starts) what local
    /// processes cannot play; with an append-only file when a fault restarts a node with
    /// persistence. Blocks until every server answers and every replica streams.
    pub fn start_for(scenario: &scenario::Scenario) -> Result<Processes, LiveError> {
        crate::driver::check_support_of(
            scenario,
            Backend::Processes,
            &Processes::can_inject,
            scenario.topology.node_names().len(),
        )?;
        find_redis_server()?;
        Processes::start_with_network(
            &scenario.topology,
            crate::server::needs_aof(scenario),
            &scenario.clocks.nodes,
            (scenario.network != scenario::Network::default()).then_some(&scenario.network),
            scenario.seed,
        )
    }

    /// Starts the servers of `topology`; with `aof`, every write is fsynced to an append-only
    /// file so a restart "with persistence" keeps it. Blocks until every server answers and
    /// every replica streams.
    pub fn start(topology: &Topology, aof: bool) -> Result<Processes, LiveError> {
        Processes::start_with_clocks(topology, aof, &BTreeMap::new())
    }

    /// [`Processes::start`] with each node named in `clocks` starting at its offset and rate
    /// (the others on true time).
    pub fn start_with_clocks(
        topology: &Topology,
        aof: bool,
        clocks: &BTreeMap<String, ClockSpec>,
    ) -> Result<Processes, LiveError> {
        Processes::start_with_network(topology, aof, clocks, None, 0)
    }

    /// [`Processes::start_with_clocks`] with every proxy link shaped by `network` when given,
    /// its draws seeded by `seed` ([`crate::link::shape`]). A scenario's default network is
    /// not shaped ([`Processes::start_for`]): it means the loopback as it is.
    pub fn start_with_network(
        topology: &Topology,
        aof: bool,
        clocks: &BTreeMap<String, ClockSpec>,
        network: Option<&scenario::Network>,
        seed: u64,
    ) -> Result<Processes, LiveError> {
        let bin = find_redis_server()?;
        let root =
            std::env::temp_dir().join(format!("locksim-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&root)?;
        let names = topology.node_names();
        let replicated = matches!(topology, Topology::Replicated { .. });
        let shim = crate::clock::install_shim(&root)?;
        let mut files = BTreeMap::new();
        for name in &names {
            let spec = clocks.get(name).cloned().unwrap_or_default();
            let clock = ServerClock::starting(spec.offset_ms, spec.rate);
            files.insert(
                name.clone(),
                ControlFile::create(&clock_file(&root, name), clock)?,
            );
        }
        let p = Inner {
            bin,
            root,
            aof,
            replicated,
            nodes: Mutex::new(Vec::new()),
            sentinels: Mutex::new(Vec::new()),
            primary: Arc::new(AtomicUsize::new(0)),
            promotions: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            spawner: Spawner::new(),
            repl_timeout_s: crate::server::repl_timeout_s(topology),
            shim,
            clocks: Mutex::new(files),
            links: links::ClientLinks::new(network.map(|network| links::Shape {
                network: network.clone(),
                seed,
                nodes: names.clone(),
            }))?,
        };
        for (i, name) in names.iter().enumerate() {
            let dir = p.root.join(name);
            std::fs::create_dir_all(&dir)?;
            let replica_of = if replicated && i > 0 {
                Some(p.replication_link(name, 0)?)
            } else {
                None
            };
            let mut node = Node {
                name: name.clone(),
                port: 0,
                dir,
                child: None,
            };
            p.spawn(i, &mut node, replica_of)?;
            p.lock().push(node);
        }
        for i in 1..names.len() {
            if replicated {
                p.wait_link_up(i)?;
            }
        }
        if let Topology::Replicated {
            replication_lag_ms, ..
        } = topology
        {
            // Only once the replicas stream: the lag delays the run's replication, not the
            // first sync.
            let lag = Duration::from_secs_f64(replication_lag_ms.max(0.0) / 1000.0);
            for name in names.iter().skip(1) {
                let link = p
                    .links
                    .control(&Party::Replica(name.clone()), 0, p.port(0))?;
                link.set_delay(crate::link::Direction::FromTarget, lag);
                // The lag stands for writes still in the primary's buffers: a crash loses them.
                link.lose_delayed_on_target_close();
            }
        }
        if let Topology::Replicated {
            sentinel: Some(s),
            replicas,
            ..
        } = topology
        {
            p.start_sentinels(s.down_after_ms, *replicas)?;
        }
        Ok(Processes { inner: Arc::new(p) })
    }

    /// Whether local processes can suffer `fault`: everything but partitions naming the
    /// resource (partitions between two groups of servers are refused
    /// when the scenario is checked: see [`crate::driver::check_support`]).
    pub fn can_inject(fault: &FaultAction) -> Result<(), Refusal> {
        match fault {
            FaultAction::Partition { between, and, .. }
                if between.iter().chain(and).any(|n| n == "resource") =>
            {
                Err(Refusal::Resource {
                    fault: fault.describe(),
                })
            }
            _ => Ok(()),
        }
    }

    /// PIDs of the servers and Sentinels running now (for leak checks).
    pub fn pids(&self) -> Vec<u32> {
        let nodes = self.inner.lock();
        let sentinels = self.inner.sentinels();
        nodes
            .iter()
            .chain(sentinels.iter())
            .filter_map(|n| n.child.as_ref().map(|c| c.id()))
            .collect()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Node>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sentinels(&self) -> std::sync::MutexGuard<'_, Vec<Node>> {
        self.sentinels.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn port(&self, i: usize) -> u16 {
        self.lock()[i].port
    }

    /// The port of node `i`'s servers' link: where the Sentinels, and replicas re-pointed by
    /// a promotion, reach it (the address it announces).
    fn servers_port(&self, i: usize) -> Result<u16, LiveError> {
        Ok(self.links.port(&Party::Servers, i, self.port(i))?)
    }

    /// The port of replica `replica`'s proxy link to node `primary`, which its `replicaof`
    /// points at (so the replication stream can be delayed: `replication_lag_ms`).
    fn replication_link(&self, replica: &str, primary: usize) -> Result<u16, LiveError> {
        let party = Party::Replica(replica.to_string());
        Ok(self.links.port(&party, primary, self.port(primary))?)
    }

    /// Starts the Sentinels, monitoring the primary at its servers' link, and waits until
    /// they know each other and the `replicas` replicas; then follows them.
    fn start_sentinels(&self, down_after_ms: u64, replicas: usize) -> Result<(), LiveError> {
        let primary = self.servers_port(0)?;
        for name in crate::sentinel::names() {
            let dir = self.root.join(&name);
            std::fs::create_dir_all(&dir)?;
            let mut node = Node {
                name,
                port: 0,
                dir,
                child: None,
            };
            self.spawn_sentinel(&mut node, primary, down_after_ms)?;
            self.sentinels().push(node);
        }
        let addrs: Vec<String> = self
            .sentinels()
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        crate::sentinel::wait_ready_blocking(&addrs, replicas, STARTUP)?;
        let names: Vec<String> = self.lock().iter().map(|n| n.name.clone()).collect();
        let mut at = Vec::new();
        for i in 0..names.len() {
            at.push(("127.0.0.1".to_string(), self.servers_port(i)?));
        }
        // Not joined: it ends soon after `stop` (see the drop).
        let _follower = crate::sentinel::start_poller(crate::sentinel::Follow {
            sentinels: addrs,
            names,
            addrs: at,
            primary: self.primary.clone(),
            promotions: self.promotions.clone(),
            stop: self.stop.clone(),
        })?;
        Ok(())
    }

    /// Starts one Sentinel (on a free port; three tries) with its configuration file in its
    /// directory.
    fn spawn_sentinel(
        &self,
        node: &mut Node,
        primary: u16,
        down_after_ms: u64,
    ) -> Result<(), LiveError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = free_port()?;
            let log = node.dir.join("sentinel.log");
            let local = [
                format!("port {port}"),
                "bind 127.0.0.1".into(),
                format!("dir \"{}\"", node.dir.display()),
                format!("logfile \"{}\"", log.display()),
            ];
            let conf = crate::sentinel::conf(&local, ("127.0.0.1", primary), down_after_ms);
            let file = node.dir.join("sentinel.conf");
            std::fs::write(&file, conf)?;
            let mut cmd = Command::new(&self.bin);
            cmd.arg(&file).arg("--sentinel").current_dir(&node.dir);
            match self.start_ready(cmd, node, port, &log)? {
                Ok(()) => return Ok(()),
                Err(e) if attempts == 3 => return Err(LiveError::startup(node.name.clone(), e)),
                Err(_) => {}
            }
        }
    }

    /// Spawns `cmd` (stdio closed, dying with locksim) as `node`'s process listening on
    /// `port`, and waits until it answers: then `node` holds it. A process that does not
    /// come up is killed, and why is returned for the caller's retry rule.
    fn start_ready(
        &self,
        mut cmd: Command,
        node: &mut Node,
        port: u16,
        log: &Path,
    ) -> Result<Result<(), StartupError>, LiveError> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut cmd);
        let mut child = self.spawner.spawn(cmd)?;
        match wait_ready(port, &mut child, log) {
            Ok(()) => {
                node.port = port;
                node.child = Some(child);
                Ok(Ok(()))
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Ok(Err(e))
            }
        }
    }

    fn index(&self, node: &str) -> Result<usize, LiveError> {
        self.lock()
            .iter()
            .position(|n| n.name == node)
            .ok_or_else(|| LiveError::fault(node, FaultError::NoSuchNode))
    }

    /// Starts `node`, node `i` (on its port, or a free one the first time; a first start tries
    /// three ports), announcing its servers' link as its address.
    fn spawn(&self, i: usize, node: &mut Node, replica_of: Option<u16>) -> Result<(), LiveError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = if node.port != 0 {
                node.port
            } else {
                free_port()?
            };
            let dir = node.dir.display().to_string();
            let log = node.dir.join("redis.log");
            if node.port == 0 {
                // A first start: the servers' link (made for a port that did not work) goes.
                self.links.forget(&Party::Servers, i);
            }
            let announce = self.links.port(&Party::Servers, i, port)?;
            let args = RedisArgs::new(port, &dir, self.aof, self.repl_timeout_s)
                .bind("127.0.0.1")
                .logfile(&log.display().to_string())
                .announce_ip("127.0.0.1")
                .announce_port(announce)
                .replica_of(replica_of.map(|p| ("127.0.0.1", p)))
                .into_args();
            let mut cmd = Command::new(&self.bin);
            cmd.args(args).env("LD_PRELOAD", &self.shim).env(
                crate::clock::CONTROL_ENV,
                clock_file(&self.root, &node.name),
            );
            match self.start_ready(cmd, node, port, &log)? {
                Ok(()) => return Ok(()),
                // A restart must keep its port.
                Err(e) if node.port != 0 || attempts == 3 => {
                    return Err(LiveError::startup(node.name.clone(), e))
                }
                Err(_) => {}
            }
        }
    }

    fn wait_link_up(&self, i: usize) -> Result<(), LiveError> {
        let (name, port) = {
            let n = &self.lock()[i];
            (n.name.clone(), n.port)
        };
        let primary = self.port(self.primary.load(Ordering::SeqCst));
        let deadline = Instant::now() + STARTUP;
        let mut linked = false;
        while Instant::now() < deadline {
            if !linked {
                let info = query::<String>(port, &["INFO", "replication"]).unwrap_or_default();
                linked = info.contains("master_link_status:up");
            }
            // "Link up" is not yet "streaming": after a diskless sync the primary waits for the
            // replica's first ACK. A probe write that arrives proves the stream flows.
            if linked {
                let probe = format!("locksim:probe:{name}");
                let _ = query::<String>(primary, &["SET", &probe, "1"]);
                if query::<Option<String>>(port, &["GET", &probe])
                    .ok()
                    .flatten()
                    .is_some()
                {
                    let _ = query::<i64>(primary, &["DEL", &probe]);
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(LiveError::startup(
            name,
            StartupError::NotStreaming(STARTUP),
        ))
    }

    fn signal(&self, node: &str, sig: libc::c_int) -> Result<(), LiveError> {
        let i = self.index(node)?;
        let nodes = self.lock();
        let Some(child) = nodes[i].child.as_ref() else {
            return Err(LiveError::fault(node, FaultError::NotRunning));
        };
        // SAFETY: kill(2) on a child we own and have not reaped.
        if unsafe { libc::kill(child.id() as libc::pid_t, sig) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(())
    }

    fn crash(&self, node: &str) -> Result<(), LiveError> {
        let i = self.index(node)?;
        let mut nodes = self.lock();
        if let Some(mut child) = nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(())
    }

    /// Kills `node` and starts it again on its port (blocks until it answers).
    fn restart(&self, node: &str, persistence: bool) -> Result<(), LiveError> {
        self.crash(node)?;
        let i = self.index(node)?;
        let primary = self.primary.load(Ordering::SeqCst);
        let replica_of = match self.replicated && i != primary {
            true => Some(self.replication_link(node, primary)?),
            false => None,
        };
        let mut n = {
            let mut nodes = self.lock();
            Node {
                name: nodes[i].name.clone(),
                port: nodes[i].port,
                dir: nodes[i].dir.clone(),
                child: nodes[i].child.take(),
            }
        };
        if !persistence {
            let _ = std::fs::remove_dir_all(&n.dir);
            std::fs::create_dir_all(&n.dir)?;
        }
        let started = self.spawn(i, &mut n, replica_of);
        self.lock()[i].child = n.child.take();
        started
    }

    /// Steps `node`'s clock by `by_ms` now (its server sees it at its next clock read).
    fn jump_clock(&self, node: &str, by_ms: i64) -> Result<ServerClock, LiveError> {
        let mut clocks = self.clocks.lock().unwrap_or_else(|e| e.into_inner());
        let file = clocks
            .get_mut(node)
            .ok_or_else(|| LiveError::fault(node, FaultError::NoSuchNode))?;
        let clock = file.clock().jumped(crate::clock::real_now_ns(), by_ms);
        file.set(clock)?;
        Ok(clock)
    }

    fn pid(&self, node: &str) -> Result<u32, LiveError> {
        let i = self.index(node)?;
        let pid = self.lock()[i].child.as_ref().map(|c| c.id());
        pid.ok_or_else(|| LiveError::fault(node, FaultError::NotRunning))
    }
}

#[async_trait::async_trait]
impl Provider for Processes {
    fn backend(&self) -> Backend {
        Backend::Processes
    }

    fn nodes(&self) -> Vec<(String, String)> {
        self.inner
            .lock()
            .iter()
            .map(|n| (n.name.clone(), format!("redis://127.0.0.1:{}", n.port)))
            .collect()
    }

    /// Each client's own proxy link to each node (see [`Processes::partition`]).
    fn client_nodes(&self, client: &str) -> Result<Vec<(String, String)>, LiveError> {
        let nodes: Vec<(String, u16)> = self
            .inner
            .lock()
            .iter()
            .map(|n| (n.name.clone(), n.port))
            .collect();
        let mut out = Vec::new();
        for (i, (name, port)) in nodes.into_iter().enumerate() {
            let party = Party::Client(client.to_string());
            let link = self.inner.links.port(&party, i, port)?;
            out.push((name, format!("redis://127.0.0.1:{link}")));
        }
        Ok(out)
    }

    /// The controls of each client's own proxy links (the ones [`Provider::client_nodes`]
    /// gives).
    fn client_links(&self, client: &str) -> Result<Vec<(String, LinkControl)>, LiveError> {
        let nodes: Vec<(String, u16)> = self
            .inner
            .lock()
            .iter()
            .map(|n| (n.name.clone(), n.port))
            .collect();
        let party = Party::Client(client.to_string());
        let mut out = Vec::new();
        for (i, (name, port)) in nodes.into_iter().enumerate() {
            out.push((name, self.inner.links.control(&party, i, port)?));
        }
        Ok(out)
    }

    fn supports(&self, fault: &FaultAction) -> Result<(), Refusal> {
        Processes::can_inject(fault)
    }

    /// Cuts every link that crosses the partition (bytes sent meanwhile are held and
    /// delivered when the cut heals), healing after `for_ms` on the caller's runtime when
    /// given: each client's own link to a node on the other side, and, with servers (nodes,
    /// `sentinel-1`..`sentinel-3`) on both sides, every link into and out of the nodes on the
    /// side with fewer servers (`between` on a tie), as the containers backend takes that
    /// side off its mesh network (see [`links`]). Cuts count, as on containers. Refuses
    /// `resource`, a Sentinel on the side taken off, and a node taken off that follows a
    /// primary left behind through the link it shares with the Sentinels.
    async fn partition(
        &self,
        between: &[String],
        and: &[String],
        for_ms: Option<u64>,
        mode: checker::PartitionMode,
    ) -> Result<(), LiveError> {
        let (names, ports): (Vec<String>, Vec<u16>) = self
            .inner
            .lock()
            .iter()
            .map(|n| (n.name.clone(), n.port))
            .unzip();
        let sentinels: Vec<String> = self
            .inner
            .sentinels()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let plan = links::plan(&names, &sentinels, between, and)?;
        let mut shared = Vec::new();
        for (j, _) in names.iter().enumerate() {
            shared.push(self.inner.servers_port(j)?);
        }
        for &x in &plan.isolated {
            let addr = format!("127.0.0.1:{}", ports[x]);
            let Ok(Some(master)) = crate::observe::master_port(&addr).await else {
                // A primary, a node that is down, or one frozen (which cannot be asked: it is
                // taken to follow through its own replica link, as it was started).
                continue;
            };
            let follows = shared.iter().position(|p| *p == master);
            if let Some(j) = follows.filter(|j| !plan.isolated.contains(j)) {
                return Err(LiveError::fault(
                    crate::partition_name(between, and),
                    FaultError::SharedLink {
                        replica: names[x].clone(),
                        primary: names[j].clone(),
                    },
                ));
            }
        }
        let mut cut = Vec::new();
        for (party, node) in plan.cut {
            cut.push(self.inner.links.control(&party, node, ports[node])?);
        }
        cut.iter().for_each(|l| l.cut(mode));
        if let Some(ms) = for_ms {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                cut.iter().for_each(|l| l.heal(mode));
            });
        }
        Ok(())
    }

    async fn crash(&self, node: &str) -> Result<(), LiveError> {
        self.inner.crash(node)
    }

    async fn pause(&self, node: &str) -> Result<(), LiveError> {
        self.inner.signal(node, libc::SIGSTOP)
    }

    async fn resume(&self, node: &str) -> Result<(), LiveError> {
        self.inner.signal(node, libc::SIGCONT)
    }

    /// Starts the server on the blocking pool (it waits for the server to answer).
    async fn restart(&self, node: &str, persistence: bool) -> Result<(), LiveError> {
        let inner = self.inner.clone();
        let name = node.to_string();
        tokio::task::spawn_blocking(move || inner.restart(&name, persistence))
            .await
            .map_err(|e| LiveError::fault(format!("restart {node}"), e))?
    }

    async fn promote(&self, node: &str) -> Result<(), LiveError> {
        let p = &self.inner;
        let i = p.index(node)?;
        let port = p.port(i);
        let followers = {
            let nodes = p.lock();
            (0..nodes.len())
                .filter(|j| *j != i && nodes[*j].child.is_some())
                .map(|j| format!("127.0.0.1:{}", nodes[j].port))
                .collect()
        };
        // The others follow it through its servers' link, which partitions cut.
        let promotion = Promotion {
            node,
            index: i,
            addr: format!("127.0.0.1:{port}"),
            followers,
            announce: ("127.0.0.1".into(), p.servers_port(i)?),
        };
        crate::server::promote(promotion, &p.primary).await
    }

    async fn jump_clock(&self, node: &str, by_ms: i64) -> Result<ServerClock, LiveError> {
        self.inner.jump_clock(node, by_ms)
    }

    fn route(&self, instance: usize) -> usize {
        crate::route_to_primary(self.inner.replicated, &self.inner.primary, instance)
    }

    fn died_on_their_own(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut nodes = self.inner.lock();
        let mut sentinels = self.inner.sentinels();
        for node in nodes.iter_mut().chain(sentinels.iter_mut()) {
            let exited = node
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                node.child = None;
                out.push((node.name.clone(), format!("exited on its own ({status})")));
            }
        }
        out
    }

    fn admin_addr(&self, node: &str) -> Option<String> {
        let i = self.inner.index(node).ok()?;
        Some(format!("127.0.0.1:{}", self.inner.port(i)))
    }

    /// The node whose own port or servers' link (the port every node announces) is `port`.
    fn replica_named_by(&self, _ip: &str, port: u16) -> Option<String> {
        let names: Vec<(String, u16)> = self
            .inner
            .lock()
            .iter()
            .map(|n| (n.name.clone(), n.port))
            .collect();
        names.into_iter().enumerate().find_map(|(i, (name, own))| {
            let announced = self.inner.servers_port(i).ok();
            (own == port || announced == Some(port)).then_some(name)
        })
    }

    fn take_observations(&self) -> Vec<(Instant, checker::Effect)> {
        let mut seen = self
            .inner
            .promotions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *seen)
    }

    /// Reads the process state in `/proc/<pid>/stat` until it says stopped (`T`).
    async fn confirm_paused(&self, node: &str, within: Duration) -> Result<(), LiveError> {
        let pid = self.inner.pid(node)?;
        crate::proc_state::wait_stopped(pid as i32, within)
            .await
            .map_err(|state| {
                LiveError::fault(
                    format!("pause {node}"),
                    FaultError::NotStopped { within, state },
                )
            })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The poller ends on its own within a poll or a connection timeout; it is not waited
        // for, since the provider may be dropped on one of the few async workers.
        self.stop.store(true, Ordering::SeqCst);
        let mut nodes = self.lock();
        let mut sentinels = self.sentinels();
        for node in sentinels.iter_mut().chain(nodes.iter_mut()) {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        drop((nodes, sentinels));
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Makes the child `cmd` starts die with the thread that spawns it (`PR_SET_PDEATHSIG`).
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Where `node`'s clock control file lives under the provider's `root`.
fn clock_file(root: &Path, node: &str) -> PathBuf {
    root.join(format!("{node}.clock"))
}

fn unique() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst) as u64
}

/// One synchronous command to the local server on `port`.
fn query<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> Result<T, redis::RedisError> {
    crate::admin::query(&format!("127.0.0.1:{port}"), args)
}

/// Waits until the server on `port` answers, or says why it did not (with its `log`'s end).
fn wait_ready(port: u16, child: &mut Child, log: &Path) -> Result<(), StartupError> {
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(StartupError::Exited {
                status,
                log: tail(log),
            });
        }
        if query::<String>(port, &["PING"]).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(StartupError::NoAnswer {
        addr: format!("127.0.0.1:{port}"),
        within: STARTUP,
        detail: format!("; log: {}", tail(log)),
    })
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Helpers for this crate's tests that need real servers.
#[cfg(test)]
pub(crate) mod testing {
    use super::Processes;
    use crate::LiveError;

    /// Starts servers for a test; `None` (the test skips) when redis-server is not
    /// installed, a panic when CI is set.
    pub(crate) fn start(topology: &scenario::Topology) -> Option<Processes> {
        match Processes::start(topology, false) {
            Ok(p) => Some(p),
            Err(LiveError::NoRedisServer) if std::env::var_os("CI").is_some() => {
                panic!("redis-server is not installed but CI is set: install Debian's redis-server (scripts/test.sh does)")
            }
            Err(LiveError::NoRedisServer) => {
                eprintln!("SKIPPED: redis-server is not installed");
                None
            }
            Err(e) => panic!("starting redis-server: {e}"),
        }
    }
}
