//! The containers provider: Redis in Docker containers — a single node, a primary with replicas
//! (and three Sentinels doing automatic failover), or independent primaries — with faults by
//! the engine (kill, pause/unpause, start again, network disconnect) and by command
//! (REPLICAOF NO ONE).
//!
//! It drives the engine's API directly ([`bollard`]), speaking the older of its own version and
//! the engine's (negotiated once per provider): it needs Docker API 1.41 or newer (Docker
//! Engine 20.10 and later). All its work runs on the caller's tokio runtime.
//!
//! # Layout of one run
//!
//! Every run gets a unique name `locksim-<pid>-<n>-<nonce>` and two networks of its own:
//!
//! - `<run>-ports`: every container is created on it and publishes its port on the engine's
//!   host through it. Each client (the harness, on the host) goes through a small TCP relay of
//!   its own per node on `127.0.0.1` ([`crate::link`], `relays`), which forwards to the
//!   published port. The relay is where that client is cut off from that node.
//! - `<run>-mesh` (an internal network): every container joins it under its node name
//!   (`primary`, `replica-1`, `sentinel-2`, ...), and replication and Sentinel traffic runs on
//!   it. Cutting a node off from the other nodes disconnects it from this network only
//!   (`cut`), so clients keep reaching it through its published port: the split brain of a
//!   primary cut off from its replicas and Sentinels.
//!
//! # Cleanup
//!
//! Every container and network carries the labels `locksim=<pid>` and `locksim.run=<run>`.
//! Dropping the provider removes them (also while unwinding from a panic). Ctrl-C, SIGTERM and
//! SIGHUP are caught once a provider has started: everything labelled `locksim=<pid>` is removed
//! and the process exits with 128 + the signal (`cleanup`). Leftovers of a process killed
//! with SIGKILL can be found with `docker ps -a --filter label=locksim` and `docker network ls
//! --filter label=locksim`.

mod cleanup;
mod clock;
mod cut;
mod engine;
mod relays;
mod sentinel;
#[cfg(test)]
mod tests;

use crate::admin::{ask, free_port};
use crate::clock::ServerClock;
use crate::link::PartitionMode;
use crate::server::{Promotion, RedisArgs};
use crate::{Backend, FaultError, LiveError, Provider, Refusal, StartupError};
use bollard::query_parameters::KillContainerOptions;
use bollard::Docker;
use cut::{Cut, Net};
use relays::Relays;
use scenario::{ClockSpec, FaultAction, Topology};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The environment variable naming the Redis image to run.
pub const IMAGE_ENV: &str = "LOCKSIM_REDIS_IMAGE";
/// The image run when [`IMAGE_ENV`] is unset: the official Redis 7 image.
pub const DEFAULT_IMAGE: &str = "redis:7";
/// The label every container and network of this process carries, with the process id.
pub const LABEL: &str = "locksim";
/// The label every container and network of one run carries, with the run's name.
pub const RUN_LABEL: &str = "locksim.run";
/// The Sentinels' name for the monitored primary.
pub const MASTER_NAME: &str = crate::sentinel::MASTER_NAME;

/// How long a container may take to answer, or a replica to link up.
const STARTUP: Duration = Duration::from_secs(30);
/// Sentinels of a replicated topology with `sentinel` set.
const SENTINELS: usize = crate::sentinel::SENTINELS;
/// The port every Redis node listens on in its container.
const REDIS_PORT: u16 = 6379;
/// The port every Sentinel listens on in its container.
const SENTINEL_PORT: u16 = 26379;

/// The image the provider runs: [`IMAGE_ENV`] or [`DEFAULT_IMAGE`].
pub fn image() -> String {
    std::env::var(IMAGE_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_IMAGE.to_string())
}

/// Whether a Docker engine answers; why when it does not.
pub async fn engine_available() -> Result<(), StartupError> {
    let docker = engine::connect().await?;
    docker
        .ping()
        .await
        .map(|_| ())
        .map_err(|source| StartupError::Engine {
            what: "the Docker engine does not answer".into(),
            source,
        })
}

/// Whether `image` is present on the engine (nothing is pulled); why when it is not.
pub async fn image_available(image: &str) -> Result<(), StartupError> {
    engine::check_image(&engine::connect().await?, image).await
}

/// Containers and networks labelled `locksim.run=<run>` that the engine still has, by name.
pub async fn leftovers(run: &str) -> Result<(Vec<String>, Vec<String>), StartupError> {
    let docker = engine::connect().await?;
    engine::labelled(&docker, &format!("{RUN_LABEL}={run}"))
        .await
        .map_err(|source| StartupError::Engine {
            what: "cannot list the run's containers and networks".into(),
            source,
        })
}

/// One slot: a Redis node or a Sentinel and its container.
struct Slot {
    name: String,
    /// The port published on the engine's host.
    host_port: u16,
    /// The container's id (none once removed).
    id: Option<String>,
    /// Whether the container is running (not killed).
    running: bool,
}

/// Redis servers (and Sentinels) running in Docker containers.
pub struct Containers {
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
    /// The engine host's address, for published ports.
    host: String,
    /// Per (client, node): the relay that client reaches the node through, where partitions
    /// cut it off (made once the nodes run).
    relays: Option<Arc<Relays>>,
    /// Never held across an await.
    slots: Mutex<Vec<Slot>>,
    /// How many partitions keep each container (by node name) off the mesh network.
    isolation: Arc<tokio::sync::Mutex<HashMap<String, usize>>>,
    primary: Arc<AtomicUsize>,
    /// Promotions the Sentinels made, as the poller saw them, not yet taken by the driver.
    promotions: Arc<Mutex<Vec<(Instant, checker::Effect)>>>,
    stop: Arc<AtomicBool>,
    poller: Option<std::thread::JoinHandle<()>>,
    /// The nodes' clocks, when the image carries the clock shim and the engine is local.
    clocks: Option<clock::Clocks>,
}

impl Containers {
    /// Starts the containers `scenario` needs, with the image [`image()`] names, after refusing
    /// (before anything starts) what this backend cannot play; with an append-only file when a
    /// fault restarts a node with persistence.
    pub async fn start_for(scenario: &scenario::Scenario) -> Result<Containers, LiveError> {
        Containers::start_for_image(scenario, &image()).await
    }

    /// [`Containers::start_for`] running `image`: the support check, node clocks and network
    /// shaping a scenario played on containers gets.
    pub async fn start_for_image(
        scenario: &scenario::Scenario,
        image: &str,
    ) -> Result<Containers, LiveError> {
        let clocks = Containers::clock_shim(image).await.is_some();
        crate::driver::check_support_of(
            scenario,
            Backend::Containers,
            &|f: &FaultAction| Containers::can_inject_on(f, clocks),
            scenario.topology.node_names().len(),
        )?;
        let aof = crate::server::needs_aof(scenario);
        let mut c =
            Containers::start_with_clocks(&scenario.topology, aof, image, &scenario.clocks.nodes)
                .await?;
        if scenario.network != scenario::Network::default() {
            c.shape_relays(&scenario.network, scenario.seed)?;
        }
        Ok(c)
    }

    /// Shapes every client-facing relay by `network` (its draws seeded by `seed`); called
    /// before any client connects, so no relay exists yet. Replication runs on the mesh
    /// network, which is not shaped (a replicated topology with a shaped latency is refused:
    /// [`crate::driver::check_support`]).
    fn shape_relays(&mut self, network: &scenario::Network, seed: u64) -> Result<(), LiveError> {
        let targets = (0..self.names.len()).map(|i| self.addr(i)).collect();
        let relays = Relays::new(tokio::runtime::Handle::current(), targets).shaped(
            network.clone(),
            seed,
            self.names.clone(),
        );
        self.relays = Some(Arc::new(relays));
        Ok(())
    }

    /// Starts the containers of `topology` with the image [`image()`] names (see
    /// [`Containers::start_with_image`]).
    pub async fn start(topology: &Topology, aof: bool) -> Result<Containers, LiveError> {
        Containers::start_with_image(topology, aof, &image()).await
    }

    /// Starts the containers of `topology` running `image` (pulled by the engine only when it
    /// is not present); with `aof`, every write is fsynced to an append-only file in the
    /// container, so a restart "with persistence" keeps it. Returns once every server answers,
    /// every replica has linked up and (with `sentinel`) every Sentinel knows the others and the
    /// replicas. The relays run on the caller's runtime.
    pub async fn start_with_image(
        topology: &Topology,
        aof: bool,
        image: &str,
    ) -> Result<Containers, LiveError> {
        Containers::start_with_clocks(topology, aof, image, &BTreeMap::new()).await
    }

    /// Where `image` carries the clock shim, when it does and the engine is on this machine
    /// (the control files are bind-mounted from the host): then node clocks can be set and
    /// stepped ([`clock`]).
    async fn clock_shim(image: &str) -> Option<String> {
        if !engine::is_local() {
            return None;
        }
        engine::clock_shim(&engine::connect().await.ok()?, image).await
    }

    /// [`Containers::start_with_image`] with each node named in `clocks` starting at its
    /// offset and rate (the others on true time), which needs an image carrying the clock
    /// shim (`scripts/build-image.sh` builds one) and a local engine; without them every node
    /// runs on true time and a node named in `clocks` is refused.
    pub async fn start_with_clocks(
        topology: &Topology,
        aof: bool,
        image: &str,
        clocks: &BTreeMap<String, ClockSpec>,
    ) -> Result<Containers, LiveError> {
        let docker = engine::connect().await.map_err(LiveError::Engine)?;
        engine::ensure_image(&docker, image)
            .await
            .map_err(LiveError::Engine)?;
        let shim = Containers::clock_shim(image).await;
        if let (None, Some(node)) = (&shim, clocks.keys().next()) {
            return Err(LiveError::Unsupported {
                backend: Backend::Containers,
                what: format!(
                    "clocks.nodes.{node}: the image {image} carries no clock shim, or the engine is not on this machine (scripts/build-image.sh builds an image that carries it)"
                ),
            });
        }
        cleanup::install_signal_cleanup();
        let run = format!(
            "locksim-{}-{}-{:x}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst),
            nonce()
        );
        let down_after_ms = match topology {
            Topology::Replicated {
                sentinel: Some(s), ..
            } => Some(s.down_after_ms),
            _ => None,
        };
        let names = topology.node_names();
        let mut c = Containers {
            docker,
            ports_net: format!("{run}-ports"),
            mesh_net: format!("{run}-mesh"),
            run,
            image: image.to_string(),
            aof,
            replicated: matches!(topology, Topology::Replicated { .. }),
            repl_timeout_s: crate::server::repl_timeout_s(topology),
            names: names.clone(),
            host: engine::published_host(),
            relays: None,
            slots: Mutex::new(Vec::new()),
            isolation: Arc::default(),
            primary: Arc::new(AtomicUsize::new(0)),
            promotions: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            poller: None,
            clocks: None,
        };
        // From here on, dropping `c` removes whatever was created.
        if let Some(shim) = shim {
            c.clocks = Some(clock::Clocks::create(&c.run, shim, &names, clocks)?);
        }
        for (name, internal) in [(&c.ports_net, false), (&c.mesh_net, true)] {
            engine::create_network(&c.docker, name, internal, &c.run)
                .await
                .map_err(LiveError::Engine)?;
        }
        for (i, name) in names.iter().enumerate() {
            c.launch(i, name, free_port()?, None).await?;
        }
        if c.replicated {
            for i in 1..names.len() {
                c.wait_link_up(i).await?;
            }
        }
        if let Some(down_after_ms) = down_after_ms {
            for k in 1..=SENTINELS {
                let conf = sentinel::conf(k, down_after_ms);
                let name = format!("sentinel-{k}");
                c.launch(names.len() + k - 1, &name, free_port()?, Some(conf))
                    .await?;
            }
            let sentinels: Vec<String> = (0..SENTINELS).map(|k| c.addr(names.len() + k)).collect();
            sentinel::wait_ready(&sentinels, names.len() - 1).await?;
            c.poller = Some(sentinel::start_poller(sentinel::Follow {
                sentinels,
                names: names.clone(),
                primary: c.primary.clone(),
                promotions: c.promotions.clone(),
                stop: c.stop.clone(),
            })?);
        }
        // The client-facing relays, made per client on first use.
        let targets = (0..names.len()).map(|i| c.addr(i)).collect();
        c.relays = Some(Arc::new(Relays::new(
            tokio::runtime::Handle::current(),
            targets,
        )));
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
    pub async fn command(&self, node: &str, args: &[&str]) -> Result<Option<String>, LiveError> {
        let what = format!("{} on {node}", args.join(" "));
        let i = self.slots().iter().position(|s| s.name == node);
        let i = i.ok_or_else(|| LiveError::fault(what.clone(), FaultError::NoSuchNode))?;
        if args.is_empty() {
            return Err(LiveError::fault(what, FaultError::NoCommand));
        }
        ask::<Option<String>>(&self.addr(i), args)
            .await
            .map_err(|e| LiveError::fault(what, e))
    }

    /// Whether containers can suffer `fault` through a scenario played by [`crate::play`]:
    /// crash, restart, pause, promote, and partitions between nodes, Sentinels and clients
    /// (in mode hold only between servers: see [`Containers::partition`]).
    pub fn can_inject(fault: &FaultAction) -> Result<(), Refusal> {
        Containers::can_inject_on(fault, false)
    }

    /// [`Containers::can_inject`], with node clock jumps too when the provider has `clocks`
    /// (an image carrying the clock shim on a local engine).
    pub fn can_inject_on(fault: &FaultAction, clocks: bool) -> Result<(), Refusal> {
        match fault {
            FaultAction::Partition { between, and, .. }
                if between.iter().chain(and).any(|n| n == "resource") =>
            {
                Err(Refusal::Resource {
                    fault: fault.describe(),
                })
            }
            FaultAction::ClockJump { .. } if !clocks => Err(Refusal::ServerClock {
                fault: fault.describe(),
                server: "a Redis server's clock in a container",
            }),
            _ => Ok(()),
        }
    }

    /// Cuts every link between the groups `between` and `and` — names of nodes, of Sentinels
    /// (`sentinel-1`..`sentinel-3`), or anything else, which is taken as a client name — in
    /// `mode`, and heals them after `for_ms` (never, without it; [`Containers::heal`] heals by
    /// hand).
    ///
    /// - A client on one side and a node on the other: that client's own relay to that node
    ///   is cut, in `mode`; other clients keep reaching it.
    /// - Nodes or Sentinels on both sides: the side with fewer of them (`between` on a tie) is
    ///   disconnected from the run's mesh network, which also cuts its members off each other
    ///   and off nodes of neither group; exact when that side has one member. That is mode
    ///   hold (TCP retransmits once the container is back); other modes are refused there.
    /// - `resource` is refused: the protected resource lives in the harness.
    ///
    /// A delayed heal runs on the caller's runtime.
    pub async fn partition(
        &self,
        between: &[String],
        and: &[String],
        for_ms: Option<u64>,
        mode: PartitionMode,
    ) -> Result<(), LiveError> {
        let cut = self.plan(between, and)?;
        if !mode.is_hold() && !cut.isolate.is_empty() {
            return Err(LiveError::fault(
                crate::partition_name(between, and),
                FaultError::ModeBetweenServers(mode.name()),
            ));
        }
        let net = self.net(&cut, mode)?;
        net.cut(&cut).await?;
        if let Some(ms) = for_ms {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                net.heal(&cut).await;
            });
        }
        Ok(())
    }

    /// Heals a cut made by [`Containers::partition`] with the same groups and mode.
    pub async fn heal(
        &self,
        between: &[String],
        and: &[String],
        mode: PartitionMode,
    ) -> Result<(), LiveError> {
        let cut = self.plan(between, and)?;
        self.net(&cut, mode)?.heal(&cut).await;
        Ok(())
    }

    /// The client relays, made once the nodes run.
    fn relays(&self) -> Result<&Arc<Relays>, LiveError> {
        self.relays
            .as_ref()
            .ok_or_else(|| LiveError::fault("relay", FaultError::NotRunning))
    }

    fn plan(&self, between: &[String], and: &[String]) -> Result<Cut, LiveError> {
        let all: Vec<String> = self.slots().iter().map(|s| s.name.clone()).collect();
        cut::plan(&all, self.names.len(), between, and)
    }

    fn net(&self, cut: &Cut, mode: PartitionMode) -> Result<Net, LiveError> {
        let relays = self.relays()?;
        let mut gates = Vec::with_capacity(cut.gate.len());
        for (client, node) in &cut.gate {
            gates.push(relays.control(client, *node)?);
        }
        Ok(Net {
            docker: self.docker.clone(),
            run: self.run.clone(),
            mesh_net: self.mesh_net.clone(),
            gates,
            mode,
            isolation: self.isolation.clone(),
        })
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates and starts the container of slot `i` (replacing an old one), a Sentinel when
    /// given its configuration, joins it to the mesh under `name` and waits until it answers.
    async fn launch(
        &self,
        i: usize,
        name: &str,
        host_port: u16,
        sentinel_conf: Option<String>,
    ) -> Result<(), LiveError> {
        let startup =
            |what: String, source| LiveError::startup(name, StartupError::Engine { what, source });
        let (port, cmd, file) = match sentinel_conf {
            Some(conf) => (
                SENTINEL_PORT,
                [
                    "/data/sentinel.conf",
                    "--sentinel",
                    "--protected-mode",
                    "no",
                ]
                .map(String::from)
                .to_vec(),
                Some(("/data".into(), "sentinel.conf".into(), conf.into_bytes())),
            ),
            None => (REDIS_PORT, self.redis_args(i), None),
        };
        let (env, binds) = self
            .clocks
            .as_ref()
            .map(|c| c.container_setup(name))
            .unwrap_or_default();
        let spec = engine::Spec {
            name: format!("{}-{name}", self.run),
            image: self.image.clone(),
            cmd: std::iter::once("redis-server".to_string())
                .chain(cmd)
                .collect(),
            port,
            host_port,
            network: self.ports_net.clone(),
            run: self.run.clone(),
            file,
            env,
            binds,
        };
        let id = engine::run(&self.docker, spec)
            .await
            .map_err(|e| startup(format!("cannot start a container of {}", self.image), e))?;
        {
            let mut slots = self.slots();
            let slot = Slot {
                name: name.to_string(),
                host_port,
                id: Some(id),
                running: true,
            };
            if i < slots.len() {
                slots[i] = slot;
            } else {
                slots.push(slot);
            }
        }
        cut::join_mesh(&self.docker, &self.mesh_net, &self.run, name)
            .await
            .map_err(|e| startup(format!("cannot join network {}", self.mesh_net), e))?;
        let addr = self.addr(i);
        crate::observe::wait_up(&addr, STARTUP).await.map_err(|_| {
            LiveError::startup(
                name,
                StartupError::NoAnswer {
                    addr,
                    within: STARTUP,
                    detail: format!(" (image {})", self.image),
                },
            )
        })
    }

    /// The command line of node `i` (a Redis server), after the program's name.
    fn redis_args(&self, i: usize) -> Vec<String> {
        let primary = self.primary.load(Ordering::SeqCst);
        let follows = self.replicated && i != primary;
        RedisArgs::new(REDIS_PORT, "/data", self.aof, self.repl_timeout_s)
            .announce_ip(&self.names[i])
            .replica_of(follows.then(|| (self.names[primary].as_str(), REDIS_PORT)))
            .into_args()
    }

    /// Where the harness reaches slot `i`: its published port.
    fn addr(&self, i: usize) -> String {
        format!("{}:{}", self.host, self.slots()[i].host_port)
    }

    async fn wait_link_up(&self, i: usize) -> Result<(), LiveError> {
        let addr = self.addr(i);
        let deadline = Instant::now() + STARTUP;
        let mut nudged = Instant::now();
        while Instant::now() < deadline {
            if let Ok(info) = ask::<String>(&addr, &["INFO", "replication"]).await {
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
                        let _ = ask::<String>(&addr, &["REPLICAOF", "NO", "ONE"]).await;
                        let _ = ask::<String>(&addr, &["REPLICAOF", &host, "6379"]).await;
                    }
                    nudged = Instant::now();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(LiveError::startup(
            self.names[i].clone(),
            StartupError::NotStreaming(STARTUP),
        ))
    }

    fn index(&self, node: &str) -> Result<usize, LiveError> {
        self.names
            .iter()
            .position(|n| n == node)
            .ok_or_else(|| LiveError::fault(node, FaultError::NoSuchNode))
    }

    /// Node `node`'s index and container id.
    fn container(&self, node: &str, fault: &str) -> Result<(usize, String), LiveError> {
        let i = self.index(node)?;
        let id = self.slots()[i].id.clone();
        let id =
            id.ok_or_else(|| LiveError::fault(format!("{fault} {node}"), FaultError::NotRunning))?;
        Ok((i, id))
    }
}

#[async_trait::async_trait]
impl Provider for Containers {
    fn backend(&self) -> Backend {
        Backend::Containers
    }

    /// The nodes through relays of no scenario client's (named ""), which no partition cuts.
    fn nodes(&self) -> Vec<(String, String)> {
        self.client_nodes("").unwrap_or_default()
    }

    /// Each client's own relay to each node (see [`Containers::partition`]).
    fn client_nodes(&self, client: &str) -> Result<Vec<(String, String)>, LiveError> {
        let relays = self.relays()?;
        let mut out = Vec::with_capacity(relays.nodes());
        for (i, name) in self.names.iter().enumerate() {
            let port = relays.port(client, i)?;
            out.push((name.clone(), format!("redis://127.0.0.1:{port}")));
        }
        Ok(out)
    }

    /// The controls of each client's own relays (the ones [`Provider::client_nodes`] gives).
    fn client_links(
        &self,
        client: &str,
    ) -> Result<Vec<(String, crate::link::LinkControl)>, LiveError> {
        let relays = self.relays()?;
        let mut out = Vec::with_capacity(relays.nodes());
        for (i, name) in self.names.iter().enumerate() {
            out.push((name.clone(), relays.control(client, i)?));
        }
        Ok(out)
    }

    async fn partition(
        &self,
        between: &[String],
        and: &[String],
        for_ms: Option<u64>,
        mode: PartitionMode,
    ) -> Result<(), LiveError> {
        Containers::partition(self, between, and, for_ms, mode).await
    }

    fn supports(&self, fault: &FaultAction) -> Result<(), Refusal> {
        Containers::can_inject_on(fault, self.clocks.is_some())
    }

    async fn jump_clock(&self, node: &str, by_ms: i64) -> Result<ServerClock, LiveError> {
        match &self.clocks {
            Some(clocks) => clocks.jump(node, by_ms),
            None => Err(LiveError::fault(
                node,
                FaultError::ServerClock(node.to_string()),
            )),
        }
    }

    async fn crash(&self, node: &str) -> Result<(), LiveError> {
        let i = self.index(node)?;
        let Some(id) = self.slots()[i].id.clone() else {
            return Ok(());
        };
        let kill = Some(KillContainerOptions {
            signal: "SIGKILL".into(),
        });
        self.docker
            .kill_container(&id, kill)
            .await
            .map_err(|e| LiveError::fault(format!("crash {node}"), e))?;
        self.slots()[i].running = false;
        Ok(())
    }

    async fn pause(&self, node: &str) -> Result<(), LiveError> {
        let (_, id) = self.container(node, "pause")?;
        self.docker
            .pause_container(&id)
            .await
            .map_err(|e| LiveError::fault(format!("pause {node}"), e))
    }

    async fn resume(&self, node: &str) -> Result<(), LiveError> {
        let (_, id) = self.container(node, "resume")?;
        self.docker
            .unpause_container(&id)
            .await
            .map_err(|e| LiveError::fault(format!("resume {node}"), e))
    }

    async fn restart(&self, node: &str, persistence: bool) -> Result<(), LiveError> {
        // A restart after a `crash` finds the container stopped: killing it again is refused.
        if self.slots()[self.index(node)?].running {
            self.crash(node).await?;
        }
        let (i, id) = self.container(node, "restart")?;
        let fault = |e: FaultError| LiveError::fault(format!("restart {node}"), e);
        if persistence {
            // The same container again: its file system, and so its append-only file, stayed.
            self.docker
                .start_container(&id, None)
                .await
                .map_err(|e| fault(e.into()))?;
            self.slots()[i].running = true;
            crate::observe::wait_up(&self.addr(i), STARTUP)
                .await
                .map_err(|_| fault(FaultError::NoAnswer(STARTUP)))
        } else {
            // A new container under the same name and port: nothing survives.
            let port = {
                let mut slots = self.slots();
                slots[i].id = None;
                slots[i].host_port
            };
            engine::remove(&self.docker, &id)
                .await
                .map_err(|e| fault(e.into()))?;
            self.launch(i, node, port, None).await
        }
    }

    async fn promote(&self, node: &str) -> Result<(), LiveError> {
        let i = self.index(node)?;
        let followers = {
            let slots = self.slots();
            (0..self.names.len())
                .filter(|j| *j != i && slots[*j].running)
                .map(|j| format!("{}:{}", self.host, slots[j].host_port))
                .collect()
        };
        let promotion = Promotion {
            node,
            index: i,
            addr: self.addr(i),
            followers,
            announce: (node.to_string(), REDIS_PORT),
        };
        crate::server::promote(promotion, &self.primary).await
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

static RUNS: AtomicUsize = AtomicUsize::new(0);

fn nonce() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
        .unwrap_or(0)
        & 0xffff
}
