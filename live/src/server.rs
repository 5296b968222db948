//! What the two server providers (processes, containers) share: a Redis server's command line
//! and how a replica is made the primary.

use crate::admin::ask;
use crate::{FaultError, LiveError};
use scenario::Topology;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Redis's `repl-timeout` for `topology`, in whole seconds (at least 1; 60, Redis's default,
/// when nothing replicates).
pub(crate) fn repl_timeout_s(topology: &Topology) -> u64 {
    match topology {
        Topology::Replicated {
            repl_timeout_ms, ..
        } => repl_timeout_ms.div_ceil(1000).max(1),
        _ => 60,
    }
}

/// Whether `scenario` restarts a node with persistence, which needs an append-only file.
pub(crate) fn needs_aof(scenario: &scenario::Scenario) -> bool {
    scenario.faults.iter().any(|f| {
        matches!(
            f.action,
            scenario::FaultAction::Restart {
                persistence: true,
                ..
            }
        )
    })
}

/// A `redis-server` command line: the flags every node of either provider runs with (no RDB
/// snapshots, an fsynced append-only file when asked, diskless replication with no delay),
/// plus what differs per provider.
pub(crate) struct RedisArgs {
    args: Vec<String>,
}

impl RedisArgs {
    /// A server on `port` keeping its files in `dir`, with an append-only file when `aof`.
    pub(crate) fn new(port: u16, dir: &str, aof: bool, repl_timeout_s: u64) -> RedisArgs {
        let args = [
            "--port",
            &port.to_string(),
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            if aof { "yes" } else { "no" },
            "--appendfsync",
            "always",
            "--dir",
            dir,
            "--daemonize",
            "no",
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--repl-timeout",
            &repl_timeout_s.to_string(),
            "--loglevel",
            "warning",
        ];
        RedisArgs {
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn flag(mut self, name: &str, values: &[&str]) -> RedisArgs {
        self.args.push(name.to_string());
        self.args.extend(values.iter().map(|v| v.to_string()));
        self
    }

    /// Listens on `addr` only.
    pub(crate) fn bind(self, addr: &str) -> RedisArgs {
        self.flag("--bind", &[addr])
    }

    /// Logs to `file`.
    pub(crate) fn logfile(self, file: &str) -> RedisArgs {
        self.flag("--logfile", &[file])
    }

    /// Tells its primary it is reached at `ip` (a replica's `INFO replication` entry).
    pub(crate) fn announce_ip(self, ip: &str) -> RedisArgs {
        self.flag("--replica-announce-ip", &[ip])
    }

    /// Tells its primary it is reached on `port` (a replica's `INFO replication` entry).
    pub(crate) fn announce_port(self, port: u16) -> RedisArgs {
        self.flag("--replica-announce-port", &[&port.to_string()])
    }

    /// Starts as a replica of `host:port` (when given).
    pub(crate) fn replica_of(self, primary: Option<(&str, u16)>) -> RedisArgs {
        match primary {
            Some((host, port)) => self.flag("--replicaof", &[host, &port.to_string()]),
            None => self,
        }
    }

    /// The arguments after the program name.
    pub(crate) fn into_args(self) -> Vec<String> {
        self.args
    }
}

/// A manual promotion: what [`promote`] needs to know of the provider's nodes.
pub(crate) struct Promotion<'a> {
    /// The node to make the primary.
    pub(crate) node: &'a str,
    /// Its index, which becomes the provider's primary.
    pub(crate) index: usize,
    /// Where the harness reaches it.
    pub(crate) addr: String,
    /// Where the harness reaches every other running node.
    pub(crate) followers: Vec<String>,
    /// Where the other nodes reach the new primary (`host`, `port`).
    pub(crate) announce: (String, u16),
}

/// Makes `p.node` the primary (`REPLICAOF NO ONE`), records it in `primary`, and points every
/// other running node at it (a frozen or dead node is left as it is, as Sentinel would).
pub(crate) async fn promote(p: Promotion<'_>, primary: &AtomicUsize) -> Result<(), LiveError> {
    ask::<String>(&p.addr, &["REPLICAOF", "NO", "ONE"])
        .await
        .map_err(|e| LiveError::fault(format!("promote {}", p.node), FaultError::Redis(e)))?;
    primary.store(p.index, Ordering::SeqCst);
    let port = p.announce.1.to_string();
    for other in &p.followers {
        let _ = ask::<String>(other, &["REPLICAOF", &p.announce.0, &port]).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repl_timeout_rounds_up_to_whole_seconds() {
        let t = |ms: u64| Topology::Replicated {
            replicas: 1,
            replication_lag_ms: 0.0,
            repl_timeout_ms: ms,
            sentinel: None,
        };
        assert_eq!(repl_timeout_s(&t(1)), 1);
        assert_eq!(repl_timeout_s(&t(1000)), 1);
        assert_eq!(repl_timeout_s(&t(1001)), 2);
        assert_eq!(repl_timeout_s(&Topology::Single {}), 60);
    }

    #[test]
    fn the_command_line_has_the_shared_flags_and_the_extras() {
        let args = RedisArgs::new(6379, "/data", true, 5)
            .announce_ip("replica-1")
            .replica_of(Some(("primary", 6379)))
            .into_args();
        let has = |pair: &[&str]| args.windows(pair.len()).any(|w| w == pair);
        assert!(has(&["--appendonly", "yes"]));
        assert!(has(&["--repl-timeout", "5"]));
        assert!(has(&["--replicaof", "primary", "6379"]));
        assert!(has(&["--replica-announce-ip", "replica-1"]));
    }
}
