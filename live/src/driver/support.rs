//! What a backend can play: refusing a scenario before any server starts.

use crate::{Backend, LiveError, Provider, Refusal};
use scenario::{FaultAction, Scenario, Topology};

/// Refuses a scenario that `provider` cannot play as written.
pub fn check_support(scenario: &Scenario, provider: &dyn Provider) -> Result<(), LiveError> {
    let supports = |f: &FaultAction| provider.supports(f);
    check_support_of(
        scenario,
        provider.backend(),
        &supports,
        provider.nodes().len(),
    )
}

/// Refuses, before any server is started, a scenario that `backend` — which can inject the
/// faults `supports` accepts and offers `nodes` servers — cannot play.
pub(crate) fn check_support_of(
    scenario: &Scenario,
    backend: Backend,
    supports: &dyn Fn(&FaultAction) -> Result<(), Refusal>,
    nodes: usize,
) -> Result<(), LiveError> {
    let refuse = |what: String| Err(LiveError::Unsupported { backend, what });
    for c in &scenario.clients {
        if let Some(program) = &c.program {
            super::external::resolve(program).map_err(|e| LiveError::Program {
                client: c.name.clone(),
                program: program.describe(),
                problem: crate::ProgramProblem::NotFound(e),
            })?;
        }
    }
    // A backend sets a node's clock at start exactly when it can step it.
    for node in scenario.clocks.nodes.keys() {
        let jump = FaultAction::ClockJump {
            target: node.clone(),
            by_ms: 0,
        };
        if supports(&jump).is_err() {
            return refuse(format!(
                "clocks.nodes.{node}: this backend cannot set a real server's clock (client clocks can)"
            ));
        }
    }
    if let Some(what) = network_refusal(&scenario.network, &scenario.topology, backend) {
        return refuse(what.into());
    }
    if let Topology::Replicated {
        replication_lag_ms, ..
    } = &scenario.topology
    {
        if *replication_lag_ms > 0.0 && backend != Backend::Processes {
            return refuse(
                "topology.replicated.replication_lag_ms: replication lag is imposed only on processes (through the fault proxy; pause the replica instead)"
                    .into(),
            );
        }
    }
    if backend == Backend::Url {
        for (i, f) in scenario.faults.iter().enumerate() {
            if forwarded(f.after.as_ref()) {
                return Err(LiveError::UnsupportedFault {
                    backend,
                    index: i,
                    source: Refusal::NotProxied {
                        what: format!("faults[{i}].after.forwarded"),
                    },
                });
            }
        }
        if let Some(i) = scenario
            .clients
            .iter()
            .position(|c| forwarded(c.after.as_ref()))
        {
            let what = Refusal::NotProxied {
                what: format!("clients[{i}].after.forwarded"),
            };
            return refuse(what.to_string());
        }
    }
    let clients: Vec<&str> = scenario.clients.iter().map(|c| c.name.as_str()).collect();
    let servers = scenario.topology.node_names();
    let both_sides = |a: &[String], b: &[String]| {
        let has_server = |g: &[String]| g.iter().any(|n| servers.contains(n));
        has_server(a) && has_server(b)
    };
    for (i, f) in scenario.faults.iter().enumerate() {
        let client_side = match &f.action {
            FaultAction::PauseClient { .. } | FaultAction::CrashClient(_) => true,
            FaultAction::ClockJump { target, .. } => clients.contains(&target.as_str()),
            _ => false,
        };
        if client_side && backend != Backend::Url {
            continue;
        }
        if let FaultAction::Partition {
            between, and, mode, ..
        } = &f.action
        {
            let source = match backend {
                Backend::Processes | Backend::Containers
                    if !mode.is_hold() && both_sides(between, and) =>
                {
                    Some(Refusal::ModeBetweenServers {
                        fault: f.action.describe(),
                        mode: mode.name(),
                    })
                }
                _ => None,
            };
            if let Some(source) = source {
                return Err(LiveError::UnsupportedFault {
                    backend,
                    index: i,
                    source,
                });
            }
        }
        if let Err(source) = supports(&f.action) {
            return Err(LiveError::UnsupportedFault {
                backend,
                index: i,
                source,
            });
        }
    }
    let want = if backend == Backend::Url {
        scenario.topology.lock_instances()
    } else {
        scenario.topology.node_names().len()
    };
    if nodes != want {
        return refuse(format!(
            "the scenario needs {want} Redis instances, {nodes} given"
        ));
    }
    Ok(())
}

/// Whether `after` waits for a forwarded command.
fn forwarded(after: Option<&scenario::After>) -> bool {
    after.is_some_and(|a| matches!(a.condition, scenario::Condition::Forwarded(_)))
}

/// Why `backend` cannot shape `network` on `topology`, if it cannot.
///
/// The default network means the real one as it is (nothing is shaped); any other is applied
/// whole by the fault proxy ([`crate::link::shape`]) on processes (client and replication
/// links) and on containers (the client relays; replication runs on the engine's network,
/// which is not shaped). The protected resource lives in the harness and acknowledges at
/// once, so its latency is never shaped.
fn network_refusal(
    network: &scenario::Network,
    topology: &Topology,
    backend: Backend,
) -> Option<&'static str> {
    let default = scenario::Network::default();
    if *network == default {
        return None;
    }
    if network.resource_latency != default.resource_latency {
        return Some(
            "network.resource_latency: the protected resource lives in the harness and acknowledges at once; its latency cannot be shaped on a real backend",
        );
    }
    match backend {
        Backend::Url => Some(
            "network: latency and loss are shaped by the fault proxy, which servers given by URL are not behind",
        ),
        Backend::Containers
            if network.latency != default.latency
                && matches!(topology, Topology::Replicated { .. }) =>
        {
            Some(
                "network.latency: replication between containers runs on the engine's network, which is not shaped (processes shapes it)",
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_clocks_play_where_a_node_clock_can_be_stepped() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/pitfall-no-drift-factor.json");
        let s = Scenario::load(&path).unwrap();
        let processes = check_support_of(
            &s,
            Backend::Processes,
            &crate::processes::Processes::can_inject,
            3,
        );
        assert!(processes.is_ok(), "{processes:?}");
        let containers = check_support_of(
            &s,
            Backend::Containers,
            &crate::containers::Containers::can_inject,
            3,
        );
        assert!(
            matches!(&containers, Err(LiveError::Unsupported { what, .. }) if what.starts_with("clocks.nodes.redis-1")),
            "{containers:?}"
        );
    }

    fn with_partition(between: &str, and: &str) -> Scenario {
        let text = format!(
            r#"{{
              "name": "cut", "duration_ms": 1000, "backends": ["processes"],
              "topology": {{"replicated": {{"replicas": 1, "sentinel": {{"down_after_ms": 1000}}}}}},
              "resource": {{"key": "k"}},
              "clients": [{{"name": "A", "start_ms": 0, "work_ms": {{"fixed_ms": 10}}}}],
              "faults": [{{"at_ms": 0, "partition": {{"between": {between}, "and": {and}}}}}],
              "expect": {{"mutual_exclusion": "holds"}}
            }}"#
        );
        Scenario::parse(&text, std::path::Path::new("cut.json")).unwrap()
    }

    #[test]
    fn sentinel_and_partitions_between_servers_play_on_processes() {
        let check = |s: &Scenario| {
            check_support_of(
                s,
                Backend::Processes,
                &crate::processes::Processes::can_inject,
                2,
            )
        };
        for (between, and) in [
            (r#"["primary"]"#, r#"["replica-1"]"#),
            (r#"["primary", "A"]"#, r#"["replica-1"]"#),
        ] {
            let played = check(&with_partition(between, and));
            assert!(played.is_ok(), "{between} / {and}: {played:?}");
        }
    }

    #[test]
    fn a_shaped_network_plays_behind_the_proxy_and_the_resources_latency_nowhere_real() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/tune-workers.json");
        let mut s = Scenario::load(&path).unwrap();
        let processes = crate::processes::Processes::can_inject;
        let n = s.topology.node_names().len();
        assert!(check_support_of(&s, Backend::Processes, &processes, n).is_ok());
        let url = check_support_of(&s, Backend::Url, &processes, s.topology.lock_instances());
        assert!(
            matches!(&url, Err(LiveError::Unsupported { what, .. }) if what.starts_with("network:")),
            "{url:?}"
        );
        let containers = crate::containers::Containers::can_inject;
        assert!(check_support_of(&s, Backend::Containers, &containers, n).is_ok());
        let mut replicated = s.clone();
        replicated.topology = Topology::Replicated {
            replicas: 1,
            replication_lag_ms: 0.0,
            repl_timeout_ms: 60_000,
            sentinel: None,
        };
        let refused = check_support_of(&replicated, Backend::Containers, &containers, 2);
        assert!(
            matches!(&refused, Err(LiveError::Unsupported { what, .. }) if what.starts_with("network.latency")),
            "{refused:?}"
        );
        replicated.network.latency = scenario::Network::default().latency;
        replicated.network.loss = 0.1;
        let lossy = check_support_of(&replicated, Backend::Containers, &containers, 2);
        assert!(
            lossy.is_ok(),
            "loss alone touches only the client relays: {lossy:?}"
        );
        s.network.resource_latency = scenario::Dist::FixedMs(5.0);
        let refused = check_support_of(&s, Backend::Processes, &processes, n);
        assert!(
            matches!(&refused, Err(LiveError::Unsupported { what, .. }) if what.starts_with("network.resource_latency")),
            "{refused:?}"
        );
    }
}
