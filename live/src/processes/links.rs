//! The processes provider's links: every (client, node) pair reaches the node through its own
//! [`crate::link`] link, made on first use, so a partition cuts one client off one node and
//! nothing else; and each replica reaches the primary it was started under through a link
//! keyed by the replica's name, which delays the stream by `replication_lag_ms` (replicas
//! re-pointed by a promotion follow the new primary directly). The links run on a runtime of their own (one worker thread), so the
//! provider works from any context and stops them all when dropped.
//!
//! A scenario whose `network` is not the default has every link shaped ([`crate::link::shape`]):
//! client links per RESP frame with its latency and loss, replication links with its latency
//! only.

use crate::link::{Link, LinkControl, Shaping};
use crate::{partition_name, FaultError, LiveError};
use std::collections::HashMap;
use std::sync::Mutex;

/// The links, by client (or replica) name and node index.
pub(super) struct ClientLinks {
    runtime: Option<tokio::runtime::Runtime>,
    links: Mutex<HashMap<(String, usize), Link>>,
    shape: Option<Shape>,
}

/// How a run's links are shaped.
pub(super) struct Shape {
    /// The scenario's network.
    pub(super) network: scenario::Network,
    /// The scenario's seed.
    pub(super) seed: u64,
    /// The run's node names: a link named after one is a replication link.
    pub(super) nodes: Vec<String>,
}

impl Shape {
    fn of(&self, client: &str, node: usize) -> Shaping {
        let to = self.nodes.get(node).map_or("?", String::as_str);
        let identity = format!("{client}->{to}");
        if self.nodes.iter().any(|n| n == client) {
            Shaping::replication_link(&self.network, self.seed, &identity)
        } else {
            Shaping::client_link(&self.network, self.seed, &identity)
        }
    }
}

impl ClientLinks {
    /// No links yet, each shaped by `shape` when given; starts the runtime they will run on.
    pub(super) fn new(shape: Option<Shape>) -> std::io::Result<ClientLinks> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("locksim-proxy")
            .enable_all()
            .build()?;
        Ok(ClientLinks {
            runtime: Some(runtime),
            links: Mutex::new(HashMap::new()),
            shape,
        })
    }

    /// The port of `client`'s link to node `node`, which listens on `target` (made now the
    /// first time).
    pub(super) fn port(&self, client: &str, node: usize, target: u16) -> std::io::Result<u16> {
        self.with(client, node, target, |l| l.port())
    }

    /// The control of `client`'s link to node `node` (made now the first time).
    pub(super) fn control(
        &self,
        client: &str,
        node: usize,
        target: u16,
    ) -> std::io::Result<LinkControl> {
        self.with(client, node, target, |l| l.control().clone())
    }

    fn with<T>(
        &self,
        client: &str,
        node: usize,
        target: u16,
        f: impl FnOnce(&Link) -> T,
    ) -> std::io::Result<T> {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let key = (client.to_string(), node);
        if let Some(link) = links.get(&key) {
            return Ok(f(link));
        }
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the proxy runtime is gone"))?;
        let link = Link::start_shaped(
            runtime.handle(),
            format!("127.0.0.1:{target}"),
            LinkControl::default(),
            self.shape.as_ref().map(|s| s.of(client, node)),
        )?;
        let out = f(&link);
        links.insert(key, link);
        Ok(out)
    }
}

impl Drop for ClientLinks {
    fn drop(&mut self) {
        self.links
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        if let Some(rt) = self.runtime.take() {
            // Not a blocking shutdown: the provider may be dropped on an async worker.
            rt.shutdown_background();
        }
    }
}

/// Plans the cut between the groups `between` and `and` of a run whose nodes are `nodes`: the
/// (client, node index) links to cut. Any name but a node's is a client's.
///
/// - A client on one side and a node on the other: that client's link to that node.
/// - Nodes on both sides: refused (replication links are not proxied).
/// - `resource` is refused: the protected resource lives in the harness.
pub(super) fn plan(
    nodes: &[String],
    between: &[String],
    and: &[String],
) -> Result<Vec<(String, usize)>, LiveError> {
    let refuse = |why: FaultError| LiveError::fault(partition_name(between, and), why);
    let split = |group: &[String]| -> Result<(Vec<usize>, Vec<String>), LiveError> {
        let (mut members, mut clients) = (Vec::new(), Vec::new());
        for n in group {
            if n == "resource" {
                return Err(refuse(FaultError::Resource));
            }
            match nodes.iter().position(|m| m == n) {
                Some(i) => members.push(i),
                None => clients.push(n.clone()),
            }
        }
        Ok((members, clients))
    };
    let (a_nodes, a_clients) = split(between)?;
    let (b_nodes, b_clients) = split(and)?;
    if !a_nodes.is_empty() && !b_nodes.is_empty() {
        return Err(refuse(FaultError::BetweenServers));
    }
    let mut cut: Vec<(String, usize)> = Vec::new();
    for (clients, nodes) in [(&a_clients, &b_nodes), (&b_clients, &a_nodes)] {
        for c in clients {
            cut.extend(nodes.iter().map(|n| (c.clone(), *n)));
        }
    }
    if cut.is_empty() {
        return Err(refuse(FaultError::NothingToCut));
    }
    Ok(cut)
}

#[cfg(test)]
mod tests {
    use super::plan;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_client_is_cut_off_the_named_nodes_only() {
        let nodes = names(&["redis-1", "redis-2", "redis-3"]);
        let cut = plan(&nodes, &names(&["A"]), &names(&["redis-2", "redis-3"])).unwrap();
        assert_eq!(cut, vec![("A".to_string(), 1), ("A".to_string(), 2)]);
        let cut = plan(&nodes, &names(&["redis-1"]), &names(&["A", "B"])).unwrap();
        assert_eq!(cut, vec![("A".to_string(), 0), ("B".to_string(), 0)]);
    }

    #[test]
    fn the_resource_nodes_on_both_sides_and_empty_cuts_are_refused() {
        let nodes = names(&["redis-1", "redis-2"]);
        for (a, b) in [
            (names(&["resource"]), names(&["A"])),
            (names(&["redis-1"]), names(&["redis-2"])),
            (names(&["A"]), names(&["B"])),
        ] {
            assert!(plan(&nodes, &a, &b).is_err(), "{a:?} / {b:?}");
        }
    }
}

#[cfg(test)]
mod on_servers {
    use crate::Provider;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn open(url: &str) -> TcpStream {
        let addr = url.trim_start_matches("redis://");
        TcpStream::connect(addr).await.unwrap()
    }

    async fn ping(s: &mut TcpStream) {
        s.write_all(b"PING\r\n").await.unwrap();
    }

    async fn pong(s: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 7];
        match tokio::time::timeout(within, s.read_exact(&mut buf)).await {
            Ok(read) => {
                read.unwrap();
                assert_eq!(&buf, b"+PONG\r\n");
                true
            }
            Err(_) => false,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_partition_holds_one_clients_link_to_one_node_until_it_heals() {
        let topology = scenario::Topology::Redlock { instances: 2 };
        let Some(p) = crate::processes::testing::start(&topology) else {
            return;
        };
        let (a, b) = (p.client_nodes("A").unwrap(), p.client_nodes("B").unwrap());
        assert_ne!(a, b, "each client has links of its own");
        assert_ne!(a, p.nodes());
        assert_eq!(a, p.client_nodes("A").unwrap(), "the same links every time");
        let (mut a1, mut a2, mut b1) = (
            open(&a[0].1).await,
            open(&a[1].1).await,
            open(&b[0].1).await,
        );
        for s in [&mut a1, &mut a2, &mut b1] {
            ping(s).await;
            assert!(pong(s, Duration::from_secs(10)).await);
        }
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let heal_in = Duration::from_millis(1500);
        let cut_at = Instant::now();
        p.partition(
            &names(&["A"]),
            &names(&["redis-1"]),
            Some(heal_in.as_millis() as u64),
        )
        .await
        .unwrap();
        for s in [&mut a1, &mut a2, &mut b1] {
            ping(s).await;
        }
        // B's link and A's link to redis-2 pass; A's link to redis-1 is held until the heal,
        // then delivers the PING and its reply.
        assert!(pong(&mut b1, Duration::from_secs(10)).await);
        assert!(pong(&mut a2, Duration::from_secs(10)).await);
        assert!(pong(&mut a1, Duration::from_secs(10)).await);
        assert!(cut_at.elapsed() >= heal_in, "delivered before the heal");
    }
}

#[cfg(test)]
mod shaped {
    use crate::processes::Processes;
    use crate::Provider;
    use std::time::{Duration, Instant};

    /// The scenario default's latency, shaped on purpose: every round trip through a client's
    /// link takes at least 0.2 ms each way (a lower bound, so load cannot fail it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shaped_client_link_adds_its_latency_to_every_round_trip() {
        if crate::processes::find_redis_server().is_err() {
            return;
        }
        let topology = scenario::Topology::Single {};
        let network = scenario::Network::default();
        let p = tokio::task::block_in_place(|| {
            Processes::start_with_network(&topology, false, &Default::default(), Some(&network), 1)
        })
        .unwrap();
        let url = p.client_nodes("A").unwrap()[0].1.clone();
        let conn = crate::conn::NodeConn::new(url, crate::Timeouts::default());
        let mut c = conn.connect().await.unwrap();
        for _ in 0..20 {
            let t = Instant::now();
            let _: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
            assert!(
                t.elapsed() >= Duration::from_micros(400),
                "{:?}",
                t.elapsed()
            );
        }
    }
}
