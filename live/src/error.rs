//! What can go wrong on real Redis, as typed errors with their sources kept.

use crate::Backend;
use std::time::Duration;
use thiserror::Error;

/// What can go wrong on real Redis.
#[derive(Debug, Error)]
pub enum LiveError {
    /// The scenario asks for something this backend cannot do; nothing was started.
    #[error("the {backend} backend cannot play this scenario: {what}")]
    Unsupported {
        /// The backend that refused.
        backend: Backend,
        /// What it cannot do, with where the scenario asks for it.
        what: String,
    },
    /// The recipe cannot run on this many lock instances; nothing was started.
    #[error("the recipe cannot run on {instances} lock instances: recipe.{reason}")]
    Recipe {
        /// How many lock instances the servers give.
        instances: usize,
        /// Which recipe field, and why.
        reason: lock_core::RecipeError,
    },
    /// The scenario schedules a fault this backend cannot inject; nothing was started.
    #[error("the {backend} backend cannot play this scenario: faults[{index}]")]
    UnsupportedFault {
        /// The backend that refused.
        backend: Backend,
        /// The fault's index in the scenario's schedule.
        index: usize,
        /// Why it cannot.
        #[source]
        source: Refusal,
    },
    /// `redis-server` is not installed.
    #[error("redis-server was not found on PATH: install Debian's redis-server (scripts/test.sh does) or pass --redis URL")]
    NoRedisServer,
    /// A server did not come up.
    #[error("{node} did not start")]
    Startup {
        /// The node or Sentinel.
        node: String,
        /// What went wrong.
        #[source]
        source: StartupError,
    },
    /// The Docker engine could not be used (unreachable, no image, a network refused).
    #[error("the containers backend cannot start")]
    Engine(#[source] StartupError),
    /// A Redis server could not be reached.
    #[error("cannot reach Redis at {url}")]
    Unreachable {
        /// The server's URL.
        url: String,
        /// Why.
        #[source]
        source: ConnectError,
    },
    /// A fault could not be carried out.
    #[error("fault `{fault}` failed")]
    Fault {
        /// The fault, described.
        fault: String,
        /// Why it failed.
        #[source]
        source: FaultError,
    },
    /// A fault was carried out but its effect was not seen.
    #[error(transparent)]
    Unconfirmed(#[from] ProbeError),
    /// A client's external program broke the client protocol, could not start, or did not
    /// end as it should; the run stopped.
    #[error("client {client}'s program {program}: {problem}")]
    Program {
        /// The scenario client.
        client: String,
        /// The program, described (`adapter `redis-py``, `` `python3 x.py` ``).
        program: String,
        /// What went wrong.
        problem: ProgramProblem,
    },
    /// Anything the operating system refused.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What an external client program did wrong (docs/client-protocol.md).
#[derive(Debug, Error)]
pub enum ProgramProblem {
    /// The program or adapter was not found; nothing was started.
    #[error("cannot start: {0}")]
    NotFound(String),
    /// Starting it failed.
    #[error("could not start: {0}")]
    Spawn(std::io::Error),
    /// It printed a line the protocol does not allow there.
    #[error("line {line_no} of its stdout, {line:?}, is not the protocol: {reason}")]
    NotProtocol {
        /// 1-based.
        line_no: u64,
        /// The line (clipped).
        line: String,
        /// Why.
        reason: String,
    },
    /// It sent the resource something that is not a write.
    #[error("{0}")]
    Resource(String),
    /// It exited successfully before starting all its acquisitions.
    #[error("exited after {acquires} of its {iterations} acquisitions{stderr}")]
    ExitedEarly {
        /// Acquisitions begun (`acquiring` lines).
        acquires: u32,
        /// The client's `iterations`.
        iterations: u32,
        /// `; stderr: ...` or empty.
        stderr: String,
    },
    /// It exited with a failure status or was killed by a signal locksim did not send.
    #[error("exited with {status}{stderr}")]
    Failed {
        /// The exit status.
        status: std::process::ExitStatus,
        /// `; stderr: ...` or empty.
        stderr: String,
    },
    /// It was still running when the run's time (and the grace after it) was over; it was
    /// killed.
    #[error("was still running {grace_ms} ms after the run ended at {duration_ms} ms ({said}); it was killed: give the scenario a longer duration_ms, or the client fewer iterations")]
    StillRunning {
        /// The scenario's `duration_ms`.
        duration_ms: u64,
        /// How long it was given after that.
        grace_ms: u64,
        /// What it said last, or that it printed nothing.
        said: String,
        /// The run's history up to its end, still judgeable (a hung library is a finding).
        history: Vec<checker::Record>,
    },
}

impl LiveError {
    /// A failed fault: `fault` (described) and why.
    pub(crate) fn fault(fault: impl Into<String>, source: impl Into<FaultError>) -> LiveError {
        LiveError::Fault {
            fault: fault.into(),
            source: source.into(),
        }
    }

    /// A server that did not start, and why.
    pub(crate) fn startup(node: impl Into<String>, source: impl Into<StartupError>) -> LiveError {
        LiveError::Startup {
            node: node.into(),
            source: source.into(),
        }
    }
}

/// Why a backend cannot inject a fault.
#[derive(Debug, Error)]
pub enum Refusal {
    /// Servers given by URL belong to the user.
    #[error("`{fault}` — servers given by URL are never faulted")]
    NeverFaulted {
        /// The fault, described.
        fault: String,
    },
    /// A real server's clock cannot be moved.
    #[error("`{fault}`: {server} cannot be moved (client clocks can: target a client)")]
    ServerClock {
        /// The fault, described.
        fault: String,
        /// Whose clock (`a redis-server's clock`).
        server: &'static str,
    },
    /// The protected resource lives in the harness.
    #[error("`{fault}`: the protected resource lives in the harness and cannot be cut off")]
    Resource {
        /// The fault, described.
        fault: String,
    },
    /// A wait for what the fault proxy forwards, where no proxy stands between clients and
    /// servers.
    #[error("`{what}` waits for what the fault proxy forwards; servers given by URL are not behind it (play it on processes or containers)")]
    NotProxied {
        /// What waits (`faults[1].after.forwarded`).
        what: String,
    },
    /// Between servers a cut holds: containers cut by `docker network disconnect` (TCP
    /// retransmits what was sent once the container is back), processes hold the replication
    /// and Sentinel links, and Redis resyncs a replica from its backlog after any break.
    #[error("`{fault}`: between servers a cut is mode hold on real backends (containers: network disconnect; processes: the replication and Sentinel links hold); {mode} cannot be given there (cut clients off servers instead)")]
    ModeBetweenServers {
        /// The fault, described.
        fault: String,
        /// The mode asked for.
        mode: &'static str,
    },
}

/// Why a fault could not be carried out.
#[derive(Debug, Error)]
pub enum FaultError {
    /// The provider has no node of that name.
    #[error("no such node")]
    NoSuchNode,
    /// The node's server is not running.
    #[error("the node is not running")]
    NotRunning,
    /// The client's external program is not running (not started yet, or exited).
    #[error("the client's program is not running")]
    ProgramNotRunning,
    /// The harness cannot look at the node to confirm the fault.
    #[error("cannot look at the node")]
    CannotLook,
    /// Servers given by URL belong to the user.
    #[error("servers given by URL are never faulted")]
    UrlServer,
    /// A server's clock cannot be moved (the target is no client).
    #[error("{0}'s clock cannot be moved by this backend")]
    ServerClock(String),
    /// The command to send was empty.
    #[error("no command")]
    NoCommand,
    /// This backend cannot cut links.
    #[error("the {0} backend cannot partition")]
    CannotPartition(Backend),
    /// A partition names a name this backend cannot cut off.
    #[error("the protected resource lives in the harness and cannot be partitioned")]
    Resource,
    /// On processes, a partition would take a Sentinel off the other servers.
    #[error("the Sentinels share each node's link on processes and cannot be taken off the other servers")]
    SentinelsCutOff,
    /// On processes, a node to be taken off the others follows a primary left behind through
    /// the link that primary shares with the Sentinels and the other replicas.
    #[error("{replica} follows {primary} through the link it shares with the Sentinels and the other replicas (since a promotion), which cannot be cut for {replica} alone")]
    SharedLink {
        /// The node to be taken off.
        replica: String,
        /// The primary it follows.
        primary: String,
    },
    /// A partition between servers in a mode the backend cannot give there.
    #[error("between servers only mode hold can be given (network disconnect), not {0}")]
    ModeBetweenServers(&'static str),
    /// A partition that cuts nothing.
    #[error("no link between a client and a node, or between two nodes, to cut")]
    NothingToCut,
    /// A frozen process not seen stopped.
    #[error("not seen stopped within {within:?} (state {state:?})")]
    NotStopped {
        /// How long the harness looked.
        within: Duration,
        /// The last process state seen.
        state: Option<char>,
    },
    /// A restarted server that does not answer.
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    /// The Docker engine refused.
    #[error("the Docker engine refused")]
    Engine(#[from] bollard::errors::Error),
    /// A command to a server failed.
    #[error("a command failed")]
    Redis(#[from] redis::RedisError),
    /// The operating system refused.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Starting a server again failed.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// Work moved off the async workers did not finish.
    #[error("the provider's worker did not finish")]
    Join(#[from] tokio::task::JoinError),
}

/// Why a server, a Sentinel or the engine did not come up.
#[derive(Debug, Error)]
pub enum StartupError {
    /// `redis-server` exited while starting.
    #[error("redis-server exited at start ({status}); log: {log}")]
    Exited {
        /// How it exited.
        status: std::process::ExitStatus,
        /// The last lines of its log.
        log: String,
    },
    /// The server did not answer `PING` in time.
    #[error("no answer on {addr} within {within:?}{detail}")]
    NoAnswer {
        /// Where it was asked.
        addr: String,
        /// How long.
        within: Duration,
        /// What else is known (the image, the log).
        detail: String,
    },
    /// A replica's replication link did not come up.
    #[error("replication not streaming within {0:?}")]
    NotStreaming(Duration),
    /// A Sentinel did not find the others and the replicas.
    #[error("did not discover the other Sentinels and the replicas within {0:?}")]
    SentinelsApart(Duration),
    /// The image is not on the engine.
    #[error("image {image} is not on the engine; build it with scripts/build-image.sh and set LOCKSIM_REDIS_IMAGE=locksim/redis:local")]
    NotOnEngine {
        /// The image.
        image: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },
    /// The image is not on the engine and could not be pulled.
    #[error("image {image} is not on the engine and could not be pulled (scripts/build-image.sh builds locksim/redis:local)")]
    NoImage {
        /// The image.
        image: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },
    /// The Docker engine refused or is not there.
    #[error("{what}")]
    Engine {
        /// What was being done.
        what: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },
    /// The operating system refused.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Why a connection could not be opened.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The server did not accept in time.
    #[error("no connection within {0:?}")]
    Timeout(Duration),
    /// The `redis` crate refused.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// A fault's effect not seen, or a probe that could not ask.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// The awaited state was not seen in time.
    #[error("{what} was not seen within {within:?}")]
    NotSeen {
        /// The awaited state (`the node down`).
        what: &'static str,
        /// How long the probe looked.
        within: Duration,
    },
    /// The server could not be asked.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// `error` and its sources, joined by `: ` (what a message for a person shows).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let text = e.to_string();
        // A transparent wrapper repeats its source's text: show it once.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = e.source();
    }
    out
}
