//! The containers provider: Redis in Docker containers started through `testcontainers` — a
//! single node, a primary with replicas (and three Sentinels doing automatic failover), or
//! independent primaries — with faults by the engine (kill, pause/unpause, start again, network
//! disconnect) and by command (REPLICAOF NO ONE).
//!
//! # Layout of one run
//!
//! Every run gets a unique name `locksim-<pid>-<n>-<nonce>` and two networks of its own:
//!
//! - `<run>-ports`: every container is created on it and publishes its port on the engine's
//!   host through it. Clients (the harness, on the host) go through a small TCP relay of the
//!   provider's own on `127.0.0.1`, which forwards to the published port. The relay is where
//!   clients are cut off from a node (it stops forwarding, in both directions, like a network
//!   that drops packets: what was sent arrives after the cut heals, as TCP would deliver it).
//! - `<run>-mesh` (an internal network): every container joins it under its node name
//!   (`primary`, `replica-1`, `sentinel-2`, ...), and replication and Sentinel traffic runs on
//!   it. Cutting a node off from the other nodes disconnects it from this network only, so
//!   clients keep reaching it through its published port: the split brain of a primary cut off
//!   from its replicas and Sentinels.
//!
//! # Cleanup
//!
//! Every container and network carries the labels `locksim=<pid>` and `locksim.run=<run>`.
//! Dropping the provider removes them (also while unwinding from a panic). Ctrl-C, SIGTERM and
//! SIGHUP are caught once a provider has started: everything labelled `locksim=<pid>` is removed
//! and the process exits with 128 + the signal. Leftovers of a process killed with SIGKILL can be
//! found with `docker ps -a --filter label=locksim` and `docker network ls --filter
//! label=locksim`.
//!
//! # Engines older than the client
//!
//! `testcontainers` speaks Docker API 1.53 and does not negotiate. When the engine found through
//! `DOCKER_HOST` (a `unix://` socket) or `/var/run/docker.sock` speaks an older version, the
//! first use of this module starts, for the life of the process, a relay on a private Unix
//! socket that rewrites the version in each request path to the engine's, and points
//! `DOCKER_HOST` at it. Engines reached by TCP are used as they are.

use crate::admin::{free_port, query};
use crate::{LiveError, Provider};
use scenario::{FaultAction, Topology};
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use testcontainers::bollard::models::{
    EndpointSettings, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use testcontainers::bollard::query_parameters::{
    KillContainerOptions, ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use testcontainers::bollard::Docker;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// The environment variable naming the Redis image to run.
pub const IMAGE_ENV: &str = "LOCKSIM_REDIS_IMAGE";
/// The image run when [`IMAGE_ENV`] is unset: the official Redis 7 image.
pub const DEFAULT_IMAGE: &str = "redis:7";
/// The label every container and network of this process carries, with the process id.
pub const LABEL: &str = "locksim";
/// The label every container and network of one run carries, with the run's name.
pub const RUN_LABEL: &str = "locksim.run";
/// The Sentinels' name for the monitored primary.
pub const MASTER_NAME: &str = "locksim";

/// How long a container may take to answer, or a replica to link up.
const STARTUP: Duration = Duration::from_secs(30);
/// How often the Sentinels are asked where the primary is.
const POLL: Duration = Duration::from_millis(50);
/// Sentinels of a replicated topology with `sentinel` set.
const SENTINELS: usize = 3;

/// The image the provider runs: [`IMAGE_ENV`] or [`DEFAULT_IMAGE`].
pub fn image() -> String {
    std::env::var(IMAGE_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_IMAGE.to_string())
}

/// Whether a Docker engine answers (after [the API-version relay](self) is set up when needed);
/// the reason when it does not.
pub fn engine_available() -> Result<(), String> {
    engine_setup()?;
    on_fresh_runtime(async {
        let docker = docker().await?;
        docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| format!("the Docker engine does not answer: {e}"))
    })
}

/// Whether `image` is present on the engine (nothing is pulled); the reason when it is not.
pub fn image_available(image: &str) -> Result<(), String> {
    engine_setup()?;
    let image = image.to_string();
    on_fresh_runtime(async move {
        let docker = docker().await?;
        docker.inspect_image(&image).await.map(|_| ()).map_err(|e| {
            format!("image {image} is not on the engine ({e}); build it with scripts/build-image.sh and set {IMAGE_ENV}=locksim/redis:local")
        })
    })
}

/// Containers and networks labelled `locksim.run=<run>` that the engine still has, by name.
pub fn leftovers(run: &str) -> Result<(Vec<String>, Vec<String>), String> {
    engine_setup()?;
    let filter = format!("{RUN_LABEL}={run}");
    on_fresh_runtime(async move {
        let docker = docker().await?;
        labelled(&docker, &filter).await
    })
}

/// One slot: a Redis node or a Sentinel and its container.
struct Slot {
    name: String,
    /// The port published on the engine's host.
    host_port: u16,
    container: Option<ContainerAsync<GenericImage>>,
    /// Whether the container is running (not killed).
    running: bool,
}

/// Redis servers (and Sentinels) running in Docker containers.
pub struct Containers {
    rt: Option<tokio::runtime::Runtime>,
    docker: Docker,
    run: String,
    image: String,
    ports_net: String,
    mesh_net: String,
    aof: bool,
    replicated: bool,
    repl_timeout_s: u64,
    /// Redis node names in instance order (Sentinels excluded).
    names: Vec<String>,
    /// What clients connect to, per node: the relay's `redis://` URL.
    urls: Vec<String>,
    /// The engine host's address, for published ports.
    host: String,
    /// Per node: how many partitions cut clients off it (the relay forwards while 0).
    gates: Vec<watch::Sender<usize>>,
    slots: tokio::sync::Mutex<Vec<Slot>>,
    /// How many partitions keep each container (by node name) off the mesh network.
    isolation: Arc<tokio::sync::Mutex<HashMap<String, usize>>>,
    primary: Arc<AtomicUsize>,
    /// Promotions the Sentinels made, as the poller saw them, not yet taken by the driver.
    promotions: Arc<std::sync::Mutex<Vec<(Instant, checker::Effect)>>>,
    stop: Arc<AtomicBool>,
    poller: Option<std::thread::JoinHandle<()>>,
}

impl Containers {
    /// Starts the containers `scenario` needs, with the image [`image()`] names, after refusing
    /// (before anything starts) what this backend cannot play; with an append-only file when a
    /// fault restarts a node with persistence.
    pub fn start_for(scenario: &scenario::Scenario) -> Result<Containers, LiveError> {
        crate::driver::check_support_of(
            scenario,
            "containers",
            &Containers::can_inject,
            scenario.topology.node_names().len(),
        )?;
        let aof = scenario.faults.iter().any(|f| {
            matches!(
                f.action,
                FaultAction::Restart {
                    persistence: true,
                    ..
                }
            )
        });
        Containers::start_with_image(&scenario.topology, aof, &image())
    }

    /// Starts the containers of `topology` with the image [`image()`] names (see
    /// [`Containers::start_with_image`]).
    pub fn start(topology: &Topology, aof: bool) -> Result<Containers, LiveError> {
        Containers::start_with_image(topology, aof, &image())
    }

    /// Starts the containers of `topology` running `image` (pulled by the engine only when it
    /// is not present); with `aof`, every write is fsynced to an append-only file in the
    /// container, so a restart "with persistence" keeps it. Blocks until every server answers,
    /// every replica has linked up and (with `sentinel`) every Sentinel knows the others and the
    /// replicas. Can be called from any thread, also inside a tokio runtime.
    pub fn start_with_image(
        topology: &Topology,
        aof: bool,
        image: &str,
    ) -> Result<Containers, LiveError> {
        let startup = |reason: String| LiveError::Startup {
            node: "docker".into(),
            reason,
        };
        engine_setup().map_err(startup)?;
        install_signal_cleanup();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("locksim-containers")
            .enable_all()
            .build()?;
        let run = format!(
            "locksim-{}-{}-{:x}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst),
            nonce()
        );
        let docker = in_context(&rt, docker()).map_err(startup)?;
        let (replicated, repl_timeout_s, down_after_ms) = match topology {
            Topology::Replicated {
                repl_timeout_ms,
                sentinel,
                ..
            } => (
                true,
                repl_timeout_ms.div_ceil(1000).max(1),
                sentinel.as_ref().map(|s| s.down_after_ms),
            ),
            _ => (false, 60, None),
        };
        let names = topology.node_names();
        let gates = names.iter().map(|_| watch::channel(0usize).0).collect();
        let mut c = Containers {
            rt: Some(rt),
            docker,
            ports_net: format!("{run}-ports"),
            mesh_net: format!("{run}-mesh"),
            run,
            image: image.to_string(),
            aof,
            replicated,
            repl_timeout_s,
            names: names.clone(),
            urls: Vec::new(),
            host: "127.0.0.1".into(),
            gates,
            slots: tokio::sync::Mutex::new(Vec::new()),
            isolation: Arc::default(),
            primary: Arc::new(AtomicUsize::new(0)),
            promotions: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            poller: None,
        };
        // From here on, dropping `c` removes whatever was created.
        c.block(c.create_networks()).map_err(startup)?;
        for (i, name) in names.iter().enumerate() {
            let port = free_port()?;
            c.block(c.launch(i, name, false, port, None))?;
        }
        if let Some(host) = c.block(async {
            let slots = c.slots.lock().await;
            match slots.first().and_then(|s| s.container.as_ref()) {
                Some(ct) => ct.get_host().await.ok().map(|h| h.to_string()),
                None => None,
            }
        }) {
            c.host = host;
        }
        if replicated {
            for i in 1..names.len() {
                c.wait_link_up(i)?;
            }
        }
        if let Some(down_after_ms) = down_after_ms {
            for k in 1..=SENTINELS {
                let port = free_port()?;
                let conf = sentinel_conf(k, down_after_ms);
                c.block(c.launch(
                    names.len() + k - 1,
                    &format!("sentinel-{k}"),
                    true,
                    port,
                    Some(conf),
                ))?;
            }
            c.wait_sentinels(names.len() - 1)?;
        }
        // The client-facing relays.
        let mut urls = Vec::new();
        for i in 0..names.len() {
            let port = c.block(async {
                let slots = c.slots.lock().await;
                slots[i].host_port
            });
            let target = format!("{}:{port}", c.host);
            let gate = c.gates[i].subscribe();
            let listen = c.block(relay(target, gate))?;
            urls.push(format!("redis://127.0.0.1:{listen}"));
        }
        c.urls = urls;
        if down_after_ms.is_some() {
            c.poller = Some(c.start_poller()?);
        }
        Ok(c)
    }

    /// The run's name (the value of its [`RUN_LABEL`] label).
    pub fn run_id(&self) -> &str {
        &self.run
    }

    /// The image the containers run.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// Sends one command to `node` (or a Sentinel) straight to its published port, past any
    /// cut between it and the clients; a string or nil reply.
    pub fn command(&self, node: &str, args: &[&str]) -> Result<Option<String>, LiveError> {
        let i = self.block(async { self.slots.lock().await.iter().position(|s| s.name == node) });
        let fault = |reason: String| LiveError::Fault {
            fault: format!("{} on {node}", args.join(" ")),
            reason,
        };
        let i = i.ok_or_else(|| fault("no such node".into()))?;
        if args.is_empty() {
            return Err(fault("no command".into()));
        }
        query::<Option<String>>(&self.addr(i), args).map_err(fault)
    }

    /// Whether containers can suffer `fault` through a scenario played by [`crate::play`]:
    /// crash, restart, pause, promote, and partitions between nodes, Sentinels and clients
    /// (a client named in a partition stands for every client: see [`Containers::partition`]).
    pub fn can_inject(fault: &FaultAction) -> Result<(), String> {
        match fault {
            FaultAction::Partition { between, and, .. }
                if between.iter().chain(and).any(|n| n == "resource") =>
            {
                Err(format!(
                    "`{}`: the protected resource lives in the harness and cannot be cut off",
                    fault.describe()
                ))
            },
            FaultAction::ClockJump { .. } => Err(format!(
                "`{}`: a Redis server's clock in a container cannot be moved (client clocks can: target a client)",
                fault.describe()
            )),
            _ => Ok(()),
        }
    }

    /// Cuts every link between the groups `between` and `and` — names of nodes, of Sentinels
    /// (`sentinel-1`..`sentinel-3`), or anything else, which is taken as a client name — and
    /// heals them after `for_ms` (never, without it; [`Containers::heal`] heals by hand).
    ///
    /// - A client on one side and a node on the other: every client is cut off that node (the
    ///   provider cannot tell one client's connections from another's).
    /// - Nodes or Sentinels on both sides: the side with fewer of them (`between` on a tie) is
    ///   disconnected from the run's mesh network, which also cuts its members off each other
    ///   and off nodes of neither group; exact when that side has one member.
    /// - `resource` is refused: the protected resource lives in the harness.
    pub fn partition(
        &self,
        between: &[String],
        and: &[String],
        for_ms: Option<u64>,
    ) -> Result<(), LiveError> {
        let cut = self.plan(between, and)?;
        self.apply(&cut, true)?;
        if let Some(ms) = for_ms {
            let me = self.handle_for_heal();
            let rt = self.runtime().handle().clone();
            rt.spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                me.heal(&cut).await;
            });
        }
        Ok(())
    }

    /// Heals a cut made by [`Containers::partition`] with the same groups.
    pub fn heal(&self, between: &[String], and: &[String]) -> Result<(), LiveError> {
        let cut = self.plan(between, and)?;
        self.apply(&cut, false)
    }

    fn plan(&self, between: &[String], and: &[String]) -> Result<Cut, LiveError> {
        let fault = || {
            format!(
                "partition [{}] from [{}]",
                between.join(", "),
                and.join(", ")
            )
        };
        let all_names: Vec<String> = self.block(async {
            self.slots
                .lock()
                .await
                .iter()
                .map(|s| s.name.clone())
                .collect()
        });
        let split = |group: &[String]| -> Result<(Vec<usize>, bool), LiveError> {
            let mut members = Vec::new();
            let mut clients = false;
            for n in group {
                if n == "resource" {
                    return Err(LiveError::Fault {
                        fault: fault(),
                        reason: "the protected resource lives in the harness and cannot be partitioned by the containers backend".into(),
                    });
                }
                match all_names.iter().position(|m| m == n) {
                    Some(i) => members.push(i),
                    None => clients = true,
                }
            }
            Ok((members, clients))
        };
        let (a, a_clients) = split(between)?;
        let (b, b_clients) = split(and)?;
        let n = self.names.len();
        let mut gate = Vec::new();
        if a_clients {
            gate.extend(b.iter().copied().filter(|i| *i < n));
        }
        if b_clients {
            gate.extend(a.iter().copied().filter(|i| *i < n));
        }
        gate.sort_unstable();
        gate.dedup();
        let isolate: Vec<String> = if !a.is_empty() && !b.is_empty() {
            let side = if b.len() < a.len() { b } else { a };
            side.into_iter().map(|i| all_names[i].clone()).collect()
        } else {
            Vec::new()
        };
        if gate.is_empty() && isolate.is_empty() {
            return Err(LiveError::Fault {
                fault: fault(),
                reason: "no link between a client and a node, or between two nodes, to cut".into(),
            });
        }
        Ok(Cut { gate, isolate })
    }

    fn apply(&self, cut: &Cut, on: bool) -> Result<(), LiveError> {
        let me = self.handle_for_heal();
        if on {
            self.block(me.cut(cut))
        } else {
            self.block(me.heal(cut));
            Ok(())
        }
    }

    fn handle_for_heal(&self) -> NetHandle {
        NetHandle {
            docker: self.docker.clone(),
            run: self.run.clone(),
            mesh_net: self.mesh_net.clone(),
            gates: self.gates.clone(),
            isolation: self.isolation.clone(),
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        match self.rt.as_ref() {
            Some(rt) => rt,
            None => unreachable!("the runtime lives until drop"),
        }
    }

    /// Runs `f` to completion on the provider's runtime, from any thread.
    fn block<F: Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        in_context(self.runtime(), f)
    }

    async fn create_networks(&self) -> Result<(), String> {
        for (name, internal) in [(&self.ports_net, false), (&self.mesh_net, true)] {
            let labels = HashMap::from([
                (LABEL.to_string(), std::process::id().to_string()),
                (RUN_LABEL.to_string(), self.run.clone()),
            ]);
            self.docker
                .create_network(NetworkCreateRequest {
                    name: name.clone(),
                    driver: Some("bridge".into()),
                    internal: Some(internal),
                    labels: Some(labels),
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("cannot create network {name}: {e}"))?;
        }
        Ok(())
    }

    /// The command line of node `i` (a Redis server).
    fn redis_cmd(&self, i: usize, primary: usize) -> Vec<String> {
        let mut cmd: Vec<String> = [
            "redis-server",
            "--port",
            "6379",
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            if self.aof { "yes" } else { "no" },
            "--appendfsync",
            "always",
            "--dir",
            "/data",
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--loglevel",
            "warning",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        cmd.extend([
            "--repl-timeout".to_string(),
            self.repl_timeout_s.to_string(),
            "--replica-announce-ip".to_string(),
            self.names[i].clone(),
        ]);
        if self.replicated && i != primary {
            cmd.extend([
                "--replicaof".to_string(),
                self.names[primary].clone(),
                "6379".to_string(),
            ]);
        }
        cmd
    }

    /// Creates and starts the container of slot `i` (replacing an old one), joins it to the
    /// mesh under `name` and waits until it answers.
    async fn launch(
        &self,
        i: usize,
        name: &str,
        sentinel: bool,
        host_port: u16,
        conf: Option<String>,
    ) -> Result<(), LiveError> {
        let startup = |reason: String| LiveError::Startup {
            node: name.to_string(),
            reason,
        };
        let inner: u16 = if sentinel { 26379 } else { 6379 };
        let (repo, tag) = split_image(&self.image);
        let cmd: Vec<String> = if sentinel {
            [
                "redis-server",
                "/data/sentinel.conf",
                "--sentinel",
                "--protected-mode",
                "no",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        } else {
            self.redis_cmd(i, self.primary.load(Ordering::SeqCst))
        };
        let mut req = GenericImage::new(repo, tag)
            .with_exposed_port(inner.tcp())
            .with_wait_for(WaitFor::Nothing)
            .with_cmd(cmd)
            .with_container_name(format!("{}-{name}", self.run))
            .with_network(self.ports_net.clone())
            .with_label(LABEL, std::process::id().to_string())
            .with_label(RUN_LABEL, self.run.clone())
            .with_mapped_port(host_port, inner.tcp())
            .with_startup_timeout(STARTUP);
        if let Some(conf) = conf {
            req = req.with_copy_to("/data/sentinel.conf", conf.into_bytes());
        }
        let container = req
            .start()
            .await
            .map_err(|e| startup(format!("cannot start a container of {}: {e}", self.image)))?;
        let id = container.id().to_string();
        {
            let mut slots = self.slots.lock().await;
            let slot = Slot {
                name: name.to_string(),
                host_port,
                container: Some(container),
                running: true,
            };
            if i < slots.len() {
                slots[i] = slot;
            } else {
                slots.push(slot);
            }
        }
        self.docker
            .connect_network(
                &self.mesh_net,
                NetworkConnectRequest {
                    container: id,
                    endpoint_config: Some(EndpointSettings {
                        aliases: Some(vec![name.to_string()]),
                        ..Default::default()
                    }),
                },
            )
            .await
            .map_err(|e| startup(format!("cannot join network {}: {e}", self.mesh_net)))?;
        let addr = format!("{}:{host_port}", self.host);
        let deadline = Instant::now() + STARTUP;
        loop {
            let a = addr.clone();
            let ok = tokio::task::spawn_blocking(move || query::<String>(&a, &["PING"]).is_ok())
                .await
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(startup(format!(
                    "no answer on {addr} within {STARTUP:?} (image {})",
                    self.image
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn addr(&self, i: usize) -> String {
        let port = self.block(async { self.slots.lock().await[i].host_port });
        format!("{}:{port}", self.host)
    }

    fn wait_link_up(&self, i: usize) -> Result<(), LiveError> {
        let addr = self.addr(i);
        let deadline = Instant::now() + STARTUP;
        let mut nudged = Instant::now();
        while Instant::now() < deadline {
            if let Ok(info) = query::<String>(&addr, &["INFO", "replication"]) {
                if info.contains("master_link_status:up") {
                    return Ok(());
                }
                // A first connection attempt made before the container joined the mesh
                // network hangs for a whole repl-timeout: restart the attempt each second.
                if nudged.elapsed() > Duration::from_secs(1) {
                    let host = info
                        .lines()
                        .find_map(|l| l.strip_prefix("master_host:"))
                        .map(|h| h.trim().to_string());
                    if let Some(host) = host {
                        let _ = query::<String>(&addr, &["REPLICAOF", "NO", "ONE"]);
                        let _ = query::<String>(&addr, &["REPLICAOF", &host, "6379"]);
                    }
                    nudged = Instant::now();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(LiveError::Startup {
            node: self.names[i].clone(),
            reason: format!("replication link not up within {STARTUP:?}"),
        })
    }

    /// Waits until every Sentinel knows the other Sentinels and the primary's replicas.
    fn wait_sentinels(&self, replicas: usize) -> Result<(), LiveError> {
        let n = self.names.len();
        let deadline = Instant::now() + STARTUP;
        for k in 0..SENTINELS {
            let addr = self.addr(n + k);
            loop {
                let info = query::<Vec<String>>(&addr, &["SENTINEL", "MASTER", MASTER_NAME])
                    .unwrap_or_default();
                let field = |key: &str| -> usize {
                    info.iter()
                        .position(|f| f == key)
                        .and_then(|p| info.get(p + 1))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                };
                if field("num-other-sentinels") >= SENTINELS - 1 && field("num-slaves") >= replicas
                {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(LiveError::Startup {
                        node: format!("sentinel-{}", k + 1),
                        reason: format!(
                            "did not discover the other Sentinels and the replicas within {STARTUP:?}"
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// A thread that follows the Sentinels and moves [`Provider::route`] when they switch the
    /// primary: it listens to each Sentinel's `+switch-master` announcements (the true time of
    /// the switch) and, as a fallback, asks them where the primary is every [`POLL`]. Whichever
    /// sees a switch first records it as a promotion by Sentinel.
    fn start_poller(&self) -> Result<std::thread::JoinHandle<()>, LiveError> {
        let n = self.names.len();
        let sentinels: Vec<String> = (0..SENTINELS).map(|k| self.addr(n + k)).collect();
        let names = self.names.clone();
        let primary = self.primary.clone();
        let promotions = self.promotions.clone();
        let stop = self.stop.clone();
        let t = std::thread::Builder::new()
            .name("locksim-sentinel-poll".into())
            .spawn(move || {
                let switch = |b: usize| {
                    if primary.swap(b, Ordering::SeqCst) != b {
                        promotions.lock().unwrap_or_else(|e| e.into_inner()).push((
                            Instant::now(),
                            checker::Effect::Promoted {
                                node: names[b].clone(),
                                by: checker::PromotedBy::Sentinel,
                            },
                        ));
                    }
                };
                std::thread::scope(|scope| {
                    for s in &sentinels {
                        let (switch, names, stop) = (&switch, &names, &stop);
                        scope.spawn(move || listen_for_switches(s, names, switch, stop));
                    }
                    while !stop.load(Ordering::SeqCst) {
                        let mut votes = vec![0usize; names.len()];
                        for s in &sentinels {
                            if let Ok(addr) = query::<Vec<String>>(
                                s,
                                &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
                            ) {
                                if let Some(i) =
                                    addr.first().and_then(|h| names.iter().position(|n| n == h))
                                {
                                    votes[i] += 1;
                                }
                            }
                        }
                        let current = primary.load(Ordering::SeqCst);
                        // The most votes; a tie goes to a change (the leader reports it first).
                        let best = (0..names.len())
                            .filter(|i| votes[*i] > 0)
                            .max_by_key(|i| (votes[*i], usize::from(*i != current)));
                        if let Some(b) = best.filter(|b| *b != current) {
                            switch(b);
                        }
                        std::thread::sleep(POLL);
                    }
                });
            })?;
        Ok(t)
    }

    fn index(&self, node: &str) -> Result<usize, LiveError> {
        self.names
            .iter()
            .position(|n| n == node)
            .ok_or_else(|| LiveError::Fault {
                fault: node.into(),
                reason: "no such node".into(),
            })
    }

    fn container_id(&self, i: usize) -> Option<String> {
        self.block(async {
            self.slots.lock().await[i]
                .container
                .as_ref()
                .map(|c| c.id().to_string())
        })
    }

    fn engine<T>(
        &self,
        what: String,
        r: Result<T, testcontainers::bollard::errors::Error>,
    ) -> Result<T, LiveError> {
        r.map_err(|e| LiveError::Fault {
            fault: what,
            reason: e.to_string(),
        })
    }
}

/// What one partition cuts: client access to some nodes (by index), and some containers (by
/// node name) off the mesh.
#[derive(Debug, Clone)]
struct Cut {
    gate: Vec<usize>,
    isolate: Vec<String>,
}

/// What a (possibly delayed) cut or heal needs, detached from the provider's borrow.
struct NetHandle {
    docker: Docker,
    run: String,
    mesh_net: String,
    gates: Vec<watch::Sender<usize>>,
    isolation: Arc<tokio::sync::Mutex<HashMap<String, usize>>>,
}

impl NetHandle {
    async fn cut(&self, cut: &Cut) -> Result<(), LiveError> {
        for g in &cut.gate {
            if let Some(tx) = self.gates.get(*g) {
                tx.send_modify(|n| *n += 1);
            }
        }
        let mut counts = self.isolation.lock().await;
        for name in &cut.isolate {
            let n = counts.entry(name.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                self.docker
                    .disconnect_network(
                        &self.mesh_net,
                        NetworkDisconnectRequest {
                            container: format!("{}-{name}", self.run),
                            force: Some(true),
                        },
                    )
                    .await
                    .map_err(|e| LiveError::Fault {
                        fault: format!("cut {name} off the other nodes"),
                        reason: e.to_string(),
                    })?;
            }
        }
        Ok(())
    }

    async fn heal(&self, cut: &Cut) {
        for g in &cut.gate {
            if let Some(tx) = self.gates.get(*g) {
                tx.send_modify(|n| *n = n.saturating_sub(1));
            }
        }
        let mut counts = self.isolation.lock().await;
        for name in &cut.isolate {
            let n = counts.entry(name.clone()).or_insert(0);
            if *n == 0 {
                continue;
            }
            *n -= 1;
            if *n == 0 {
                let _ = self
                    .docker
                    .connect_network(
                        &self.mesh_net,
                        NetworkConnectRequest {
                            container: format!("{}-{name}", self.run),
                            endpoint_config: Some(EndpointSettings {
                                aliases: Some(vec![name.clone()]),
                                ..Default::default()
                            }),
                        },
                    )
                    .await;
            }
        }
    }
}

impl Provider for Containers {
    fn backend(&self) -> &str {
        "containers"
    }

    fn nodes(&self) -> Vec<(String, String)> {
        self.names
            .iter()
            .cloned()
            .zip(self.urls.iter().cloned())
            .collect()
    }

    fn partition(
        &self,
        between: &[String],
        and: &[String],
        for_ms: Option<u64>,
    ) -> Result<(), LiveError> {
        Containers::partition(self, between, and, for_ms)
    }

    fn supports(&self, fault: &FaultAction) -> Result<(), String> {
        Containers::can_inject(fault)
    }

    fn crash(&self, node: &str) -> Result<(), LiveError> {
        let i = self.index(node)?;
        let Some(id) = self.container_id(i) else {
            return Ok(());
        };
        let r = self.block(async {
            let r = self
                .docker
                .kill_container(
                    &id,
                    Some(KillContainerOptions {
                        signal: "SIGKILL".into(),
                    }),
                )
                .await;
            if r.is_ok() {
                self.slots.lock().await[i].running = false;
            }
            r
        });
        self.engine(format!("crash {node}"), r)
    }

    fn pause(&self, node: &str) -> Result<(), LiveError> {
        let i = self.index(node)?;
        let r = self.block(async {
            let slots = self.slots.lock().await;
            match slots[i].container.as_ref() {
                Some(c) => c.pause().await.map_err(|e| e.to_string()),
                None => Err("the node has no container".into()),
            }
        });
        r.map_err(|reason| LiveError::Fault {
            fault: format!("pause {node}"),
            reason,
        })
    }

    fn resume(&self, node: &str) -> Result<(), LiveError> {
        let i = self.index(node)?;
        let r = self.block(async {
            let slots = self.slots.lock().await;
            match slots[i].container.as_ref() {
                Some(c) => c.unpause().await.map_err(|e| e.to_string()),
                None => Err("the node has no container".into()),
            }
        });
        r.map_err(|reason| LiveError::Fault {
            fault: format!("resume {node}"),
            reason,
        })
    }

    fn restart(&self, node: &str, persistence: bool) -> Result<(), LiveError> {
        self.crash(node)?;
        let i = self.index(node)?;
        let fault = |reason: String| LiveError::Fault {
            fault: format!("restart {node}"),
            reason,
        };
        if persistence {
            // The same container again: its file system, and so its append-only file, stayed.
            let r = self.block(async {
                let mut slots = self.slots.lock().await;
                let r = match slots[i].container.as_ref() {
                    Some(c) => c.start().await.map_err(|e| e.to_string()),
                    None => Err("the node has no container".into()),
                };
                if r.is_ok() {
                    slots[i].running = true;
                }
                r
            });
            r.map_err(fault)?;
            let addr = self.addr(i);
            let deadline = Instant::now() + STARTUP;
            while query::<String>(&addr, &["PING"]).is_err() {
                if Instant::now() > deadline {
                    return Err(fault(format!("no answer within {STARTUP:?}")));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        } else {
            // A new container under the same name and port: nothing survives.
            let (old, port) = self.block(async {
                let mut slots = self.slots.lock().await;
                (slots[i].container.take(), slots[i].host_port)
            });
            if let Some(old) = old {
                self.block(old.rm()).map_err(|e| fault(e.to_string()))?;
            }
            let name = self.names[i].clone();
            self.block(self.launch(i, &name, false, port, None))
        }
    }

    fn promote(&self, node: &str) -> Result<(), LiveError> {
        let i = self.index(node)?;
        let fault = |reason: String| LiveError::Fault {
            fault: format!("promote {node}"),
            reason,
        };
        query::<String>(&self.addr(i), &["REPLICAOF", "NO", "ONE"]).map_err(fault)?;
        self.primary.store(i, Ordering::SeqCst);
        let others: Vec<usize> = self.block(async {
            let slots = self.slots.lock().await;
            (0..self.names.len())
                .filter(|j| *j != i && slots[*j].running)
                .collect()
        });
        for j in others {
            // A frozen or dead node is left as it is, as Sentinel would.
            let _ = query::<String>(&self.addr(j), &["REPLICAOF", node, "6379"]);
        }
        Ok(())
    }

    fn route(&self, instance: usize) -> usize {
        crate::route_to_primary(self.replicated, &self.primary, instance)
    }

    fn admin_addr(&self, node: &str) -> Option<String> {
        Some(self.addr(self.index(node).ok()?))
    }

    fn take_observations(&self) -> Vec<(Instant, checker::Effect)> {
        std::mem::take(&mut *self.promotions.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.poller.take() {
            let _ = t.join();
        }
        let Some(rt) = self.rt.take() else {
            return;
        };
        let slots = std::mem::take(self.slots.get_mut());
        let docker = self.docker.clone();
        let nets = [self.ports_net.clone(), self.mesh_net.clone()];
        let filter = format!("{RUN_LABEL}={}", self.run);
        // On a thread of its own: dropping may happen inside another runtime, where neither
        // blocking on this runtime nor dropping it is allowed.
        let cleanup = std::thread::spawn(move || {
            rt.block_on(async move {
                for slot in slots {
                    if let Some(c) = slot.container {
                        let _ = c.rm().await;
                    }
                }
                for net in &nets {
                    let _ = docker.remove_network(net).await;
                }
                // Whatever is left with this run's label (a container whose handle was lost).
                remove_labelled(&docker, &filter).await;
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        let _ = cleanup.join();
    }
}

/// Runs `f` on `rt` from any thread (a helper thread when called inside a runtime).
fn in_context<F: Future + Send>(rt: &tokio::runtime::Runtime, f: F) -> F::Output
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| match s.spawn(|| rt.block_on(f)).join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        })
    } else {
        rt.block_on(f)
    }
}

/// Runs `f` on a short-lived runtime of its own, from any thread.
fn on_fresh_runtime<T: Send>(
    f: impl Future<Output = Result<T, String>> + Send,
) -> Result<T, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(f)
        })
        .join()
        .unwrap_or_else(|_| Err("the Docker query panicked".into()))
    })
}

/// The engine client `testcontainers` uses.
async fn docker() -> Result<Docker, String> {
    testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| format!("cannot reach the Docker engine: {e}"))
}

fn label_filter(filter: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![filter.to_string()])])
}

/// Containers and networks matching the label `filter` (`key=value`), by name.
async fn labelled(docker: &Docker, filter: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(label_filter(filter)),
            ..Default::default()
        }))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|c| {
            c.names
                .and_then(|n| n.first().cloned())
                .or(c.id)
                .unwrap_or_default()
        })
        .collect();
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(label_filter(filter)),
        }))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    Ok((containers, networks))
}

/// Removes every container, then every network, matching the label `filter`.
async fn remove_labelled(docker: &Docker, filter: &str) {
    let Ok((containers, networks)) = labelled(docker, filter).await else {
        return;
    };
    for c in containers {
        let _ = docker
            .remove_container(
                c.trim_start_matches('/'),
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await;
    }
    for n in networks {
        let _ = docker.remove_network(&n).await;
    }
}

/// Catches SIGINT, SIGTERM and SIGHUP (once per process): removes everything labelled
/// `locksim=<pid>` and exits with 128 + the signal.
fn install_signal_cleanup() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("locksim-containers-signals".into())
            .spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    use tokio::signal::unix::{signal, SignalKind};
                    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                        signal(SignalKind::hangup()),
                    ) else {
                        return;
                    };
                    let code = tokio::select! {
                        _ = int.recv() => 130,
                        _ = term.recv() => 143,
                        _ = hup.recv() => 129,
                    };
                    eprintln!("locksim: signal caught, removing this process's containers");
                    let filter = format!("{LABEL}={}", std::process::id());
                    let cleanup = async {
                        if let Ok(docker) = docker().await {
                            remove_labelled(&docker, &filter).await;
                        }
                    };
                    // A second signal stops waiting for the engine.
                    tokio::select! {
                        _ = cleanup => {}
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    std::process::exit(code);
                });
            });
    });
}

/// Listens to one Sentinel's `+switch-master` channel until `stop`, calling `switch` with the
/// new primary's index (`<master> <old-ip> <old-port> <new-ip> <new-port>`; the Sentinels
/// announce hostnames, which are the node names). Reconnects when the connection breaks.
fn listen_for_switches(addr: &str, names: &[String], switch: &dyn Fn(usize), stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let conn = redis::Client::open(format!("redis://{addr}"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)));
        let Ok(mut conn) = conn else {
            std::thread::sleep(POLL);
            continue;
        };
        let mut sub = conn.as_pubsub();
        if sub.set_read_timeout(Some(POLL * 2)).is_err() || sub.subscribe("+switch-master").is_err()
        {
            std::thread::sleep(POLL);
            continue;
        }
        while !stop.load(Ordering::SeqCst) {
            match sub.get_message() {
                Ok(msg) => {
                    let payload: String = msg.get_payload().unwrap_or_default();
                    let words: Vec<&str> = payload.split_whitespace().collect();
                    let new = words
                        .get(3)
                        .filter(|_| words.first() == Some(&MASTER_NAME))
                        .and_then(|h| names.iter().position(|n| n == h));
                    if let Some(i) = new {
                        switch(i);
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(_) => break,
            }
        }
    }
}

/// The Sentinel configuration of `sentinel-<k>` (written into the container before it starts:
/// a Sentinel needs a writable configuration file).
fn sentinel_conf(k: usize, down_after_ms: u64) -> String {
    format!(
        "port 26379\n\
         protected-mode no\n\
         sentinel resolve-hostnames yes\n\
         sentinel announce-hostnames yes\n\
         sentinel announce-ip sentinel-{k}\n\
         sentinel monitor {MASTER_NAME} primary 6379 2\n\
         sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n\
         sentinel failover-timeout {MASTER_NAME} {}\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        (down_after_ms * 2).max(1000)
    )
}

/// `repo:tag` split at the tag's colon (`host:5000/img` has no tag: `latest`).
fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

fn nonce() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
        .unwrap_or(0)
        & 0xffff
}

/// A TCP relay on `127.0.0.1` to `target` that forwards, in both directions, only while
/// `gate` reads 0 (bytes already read wait; new connections wait before dialling). Returns the
/// port it listens on; it lives as long as the runtime it was started on.
async fn relay(target: String, gate: watch::Receiver<usize>) -> Result<u16, LiveError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let target = target.clone();
            let mut gate = gate.clone();
            tokio::spawn(async move {
                if gate.wait_for(|n| *n == 0).await.is_err() {
                    return;
                }
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, gate.clone()));
                tokio::spawn(pipe(sr, cw, gate));
            });
        }
    });
    Ok(port)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut gate: watch::Receiver<usize>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if gate.wait_for(|n| *n == 0).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if gate.wait_for(|n| *n == 0).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The Docker API version relay.

/// Makes sure `testcontainers` can talk to the engine (once per process): when the engine on the
/// local socket speaks an older API than the client, starts the version-rewriting relay and
/// points `DOCKER_HOST` at it.
fn engine_setup() -> Result<(), String> {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
            let socket = match host.as_deref() {
                None => PathBuf::from("/var/run/docker.sock"),
                Some(h) => match h.strip_prefix("unix://") {
                    Some(p) => PathBuf::from(p),
                    None => return Ok(()), // a TCP engine: used as it is
                },
            };
            let server = engine_api_version(&socket)?;
            let ours = testcontainers::bollard::API_DEFAULT_VERSION;
            let client = (ours.major_version as u32, ours.minor_version as u32);
            if server >= client {
                return Ok(());
            }
            let path = start_version_relay(socket, server)?;
            // Before any engine client of this process exists (this runs once, first).
            std::env::set_var("DOCKER_HOST", format!("unix://{}", path.display()));
            Ok(())
        })
        .clone()
}

/// The engine's API version, from `GET /version` on its Unix socket.
fn engine_api_version(socket: &Path) -> Result<(u32, u32), String> {
    let unreachable = |e: String| {
        format!(
            "the Docker engine at {} is not reachable: {e}",
            socket.display()
        )
    };
    let mut s =
        std::os::unix::net::UnixStream::connect(socket).map_err(|e| unreachable(e.to_string()))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    s.write_all(b"GET /version HTTP/1.0\r\nHost: docker\r\n\r\n")
        .map_err(|e| unreachable(e.to_string()))?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)
        .map_err(|e| unreachable(e.to_string()))?;
    let text = String::from_utf8_lossy(&reply);
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body.trim())
        .map_err(|e| unreachable(format!("unreadable /version reply ({e})")))?;
    let api = v
        .get("ApiVersion")
        .and_then(|a| a.as_str())
        .ok_or_else(|| unreachable("no ApiVersion in the /version reply".into()))?;
    parse_version(api).ok_or_else(|| unreachable(format!("odd API version {api}")))
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.trim_start_matches('v').split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Starts the relay thread on a private socket; returns the socket's path.
fn start_version_relay(upstream: PathBuf, server: (u32, u32)) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("locksim-docker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let path = dir.join("docker.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::thread::Builder::new()
        .name("locksim-docker-relay".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let upstream = upstream.clone();
                let _ = std::thread::Builder::new()
                    .name("locksim-docker-conn".into())
                    .spawn(move || relay_one(conn, &upstream, server));
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(path)
}

/// Relays one connection: rewrites the first request's version and asks the engine to close
/// the connection after its reply (so every request on it is rewritten), then copies bytes.
fn relay_one(
    mut client: std::os::unix::net::UnixStream,
    upstream: &Path,
    server: (u32, u32),
) -> Option<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        let n = client.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if head.len() > 1 << 20 {
            return None;
        }
    };
    let rest = head.split_off(end);
    let head = rewrite_head(&String::from_utf8_lossy(&head), server);
    let mut engine = std::os::unix::net::UnixStream::connect(upstream).ok()?;
    engine.write_all(head.as_bytes()).ok()?;
    engine.write_all(&rest).ok()?;
    let mut engine_r = engine.try_clone().ok()?;
    let mut client_w = client.try_clone().ok()?;
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut engine_r, &mut client_w);
        let _ = client_w.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut client, &mut engine);
    let _ = engine.shutdown(std::net::Shutdown::Write);
    let _ = back.join();
    Some(())
}

/// Rewrites `/vX.Y/` in the request line to the engine's version when it is newer than the
/// engine's, and (unless the request upgrades the connection) asks for `Connection: close`.
fn rewrite_head(head: &str, server: (u32, u32)) -> String {
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts: Vec<String> = first.split(' ').map(str::to_string).collect();
    if let Some(path) = parts.get_mut(1) {
        if let Some(rest) = path.strip_prefix("/v") {
            if let Some((ver, tail)) = rest.split_once('/') {
                if parse_version(ver).is_some_and(|v| v > server) {
                    *path = format!("/v{}.{}/{tail}", server.0, server.1);
                }
            }
        }
    }
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let upgrade = headers
        .iter()
        .any(|l| l.to_ascii_lowercase().starts_with("upgrade:"));
    let mut out = parts.join(" ");
    out.push_str("\r\n");
    for h in headers {
        if !upgrade && h.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(h);
        out.push_str("\r\n");
    }
    if !upgrade {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_the_version_and_closes() {
        let head = "GET /v1.53/containers/json?all=1 HTTP/1.1\r\nHost: docker\r\nConnection: keep-alive\r\n\r\n";
        assert_eq!(
            rewrite_head(head, (1, 41)),
            "GET /v1.41/containers/json?all=1 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
        );
        let old = "GET /v1.40/_ping HTTP/1.1\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(rewrite_head(old, (1, 41)), old);
    }

    #[test]
    fn splits_image_names() {
        assert_eq!(split_image("redis:7"), ("redis".into(), "7".into()));
        assert_eq!(
            split_image("locksim/redis:local"),
            ("locksim/redis".into(), "local".into())
        );
        assert_eq!(
            split_image("host:5000/redis"),
            ("host:5000/redis".into(), "latest".into())
        );
    }
}
