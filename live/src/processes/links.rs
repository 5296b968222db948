//! The processes provider's links. Every connection a party makes to a node goes through a
//! [`crate::link`] link, so a partition cuts exactly the links that cross it:
//!
//! - each scenario client reaches each node through a link of its own
//!   ([`Party::Client`]), made on first use;
//! - each replica reaches the primary it was started (or restarted) under through a link of
//!   its own ([`Party::Replica`]), which delays the stream by `replication_lag_ms`;
//! - every other connection between servers — the Sentinels' connections to the nodes, and a
//!   replica re-pointed by a promotion (by hand or by Sentinel) — goes through the node's
//!   *servers' link* ([`Party::Servers`]). Every node announces that link as its address
//!   (`replica-announce-ip 127.0.0.1`, `replica-announce-port`), so its primary's
//!   `INFO replication` lists it there, the Sentinels (which learn the replicas from that
//!   list) dial it, and the `REPLICAOF` a Sentinel sends after a failover names it. The
//!   Sentinels monitor the primary at its servers' link too. They reach each other directly:
//!   no partition separates them (see [`plan`]).
//!
//! A partition with servers (nodes or Sentinels) on both sides takes the side with fewer
//! servers (`between` on a tie) off the others, as the containers backend takes it off its
//! mesh network: for each node on that side its servers' link is cut (nobody reaches it), and
//! so is every replica link into it and out of it (it neither streams to nor from anyone).
//! Two things cannot be cut exactly and are refused: Sentinels on the side taken off (all
//! Sentinels share each node's servers' link, so they cannot be cut off apart from it), and,
//! when the partition is made, a node taken off that follows a primary left behind through
//! that primary's servers' link (a replica re-pointed by a promotion: the link is shared with
//! the Sentinels and the other replicas, so cutting it would cut them too).
//!
//! A scenario whose `network` is not the default has its links shaped ([`crate::link::shape`]):
//! client links per RESP frame with its latency and loss, a replica's link to the primary it
//! was started under with its latency only; the servers' links are not shaped.
//!
//! The links run on a runtime of their own (one worker thread), so the provider works from
//! any context and stops them all when dropped.

use crate::link::{Link, LinkControl, Shaping};
use crate::{partition_name, FaultError, LiveError};
use std::collections::HashMap;
use std::sync::Mutex;

/// Who dials through a link (the link's other end is a node).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Party {
    /// The scenario client of that name.
    Client(String),
    /// The replica of that name, to the primary it was started under.
    Replica(String),
    /// The Sentinels, and replicas re-pointed by a promotion.
    Servers,
}

/// The links, by who dials and node index.
pub(super) struct ClientLinks {
    runtime: Option<tokio::runtime::Runtime>,
    links: Mutex<HashMap<(Party, usize), Link>>,
    shape: Option<Shape>,
}

/// How a run's links are shaped.
pub(super) struct Shape {
    /// The scenario's network.
    pub(super) network: scenario::Network,
    /// The scenario's seed.
    pub(super) seed: u64,
    /// The run's node names.
    pub(super) nodes: Vec<String>,
}

impl Shape {
    /// How the link from `party` to node `node` is shaped (`None`: it is not).
    fn of(&self, party: &Party, node: usize) -> Option<Shaping> {
        let to = self.nodes.get(node).map_or("?", String::as_str);
        match party {
            Party::Client(client) => Some(Shaping::client_link(
                &self.network,
                self.seed,
                &format!("{client}->{to}"),
            )),
            Party::Replica(replica) => Some(Shaping::replication_link(
                &self.network,
                self.seed,
                &format!("{replica}->{to}"),
            )),
            Party::Servers => None,
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

    /// The port of `party`'s link to node `node`, which listens on `target` (made now the
    /// first time).
    pub(super) fn port(&self, party: &Party, node: usize, target: u16) -> std::io::Result<u16> {
        self.with(party, node, target, |l| l.port())
    }

    /// The control of `party`'s link to node `node` (made now the first time).
    pub(super) fn control(
        &self,
        party: &Party,
        node: usize,
        target: u16,
    ) -> std::io::Result<LinkControl> {
        self.with(party, node, target, |l| l.control().clone())
    }

    /// Forgets `party`'s link to node `node` (a node that did not start on the port the link
    /// was made for).
    pub(super) fn forget(&self, party: &Party, node: usize) {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        links.remove(&(party.clone(), node));
    }

    fn with<T>(
        &self,
        party: &Party,
        node: usize,
        target: u16,
        f: impl FnOnce(&Link) -> T,
    ) -> std::io::Result<T> {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let key = (party.clone(), node);
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
            self.shape.as_ref().and_then(|s| s.of(party, node)),
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

/// What one partition cuts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    /// The links to cut, by who dials and node index.
    pub(super) cut: Vec<(Party, usize)>,
    /// The nodes (by index) taken off the other servers: each must not follow a primary left
    /// behind through that primary's servers' link (checked when the partition is made).
    pub(super) isolated: Vec<usize>,
}

/// The side of a partition between `between` and `and` that is taken off the other servers
/// when servers (names in `servers`) are on both sides: the one with fewer servers, `between`
/// on a tie (as on containers). `None` when one side has no server.
fn isolated_side<'a>(
    servers: &[String],
    between: &'a [String],
    and: &'a [String],
) -> Option<&'a [String]> {
    let count = |g: &[String]| g.iter().filter(|n| servers.contains(n)).count();
    let (a, b) = (count(between), count(and));
    match (a, b) {
        (0, _) | (_, 0) => None,
        _ if b < a => Some(and),
        _ => Some(between),
    }
}

/// Plans the cut between the groups `between` and `and` of a run whose nodes are `nodes` and
/// whose Sentinels are `sentinels`. Any other name is a client's.
///
/// - A client on one side and a node on the other: that client's link to that node.
/// - Servers (nodes, Sentinels) on both sides: the side [`isolated_side`] names is taken off
///   the other servers (see the module docs); a Sentinel on that side is refused.
/// - `resource` is refused: the protected resource lives in the harness.
pub(super) fn plan(
    nodes: &[String],
    sentinels: &[String],
    between: &[String],
    and: &[String],
) -> Result<Plan, LiveError> {
    let refuse = |why: FaultError| LiveError::fault(partition_name(between, and), why);
    let split = |group: &[String]| -> Result<(Vec<usize>, Vec<String>), LiveError> {
        let (mut members, mut clients) = (Vec::new(), Vec::new());
        for n in group {
            if n == "resource" {
                return Err(refuse(FaultError::Resource));
            }
            match nodes.iter().position(|m| m == n) {
                Some(i) => members.push(i),
                None if sentinels.contains(n) => {}
                None => clients.push(n.clone()),
            }
        }
        Ok((members, clients))
    };
    let (a_nodes, a_clients) = split(between)?;
    let (b_nodes, b_clients) = split(and)?;
    let mut cut: Vec<(Party, usize)> = Vec::new();
    for (clients, nodes) in [(&a_clients, &b_nodes), (&b_clients, &a_nodes)] {
        for c in clients {
            cut.extend(nodes.iter().map(|n| (Party::Client(c.clone()), *n)));
        }
    }
    let servers: Vec<String> = nodes.iter().chain(sentinels).cloned().collect();
    let mut isolated = Vec::new();
    if let Some(side) = isolated_side(&servers, between, and) {
        if side.iter().any(|n| sentinels.contains(n)) {
            return Err(refuse(FaultError::SentinelsCutOff));
        }
        isolated = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| side.contains(n))
            .map(|(i, _)| i)
            .collect();
        for &x in &isolated {
            cut.push((Party::Servers, x));
            for (j, other) in nodes.iter().enumerate().filter(|(j, _)| *j != x) {
                cut.push((Party::Replica(other.clone()), x));
                cut.push((Party::Replica(nodes[x].clone()), j));
            }
        }
    }
    if cut.is_empty() {
        return Err(refuse(FaultError::NothingToCut));
    }
    Ok(Plan { cut, isolated })
}

#[cfg(test)]
mod tests {
    use super::{plan, Party};

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn client(c: &str, n: usize) -> (Party, usize) {
        (Party::Client(c.to_string()), n)
    }

    #[test]
    fn a_client_is_cut_off_the_named_nodes_only() {
        let nodes = names(&["redis-1", "redis-2", "redis-3"]);
        let cut = plan(&nodes, &[], &names(&["A"]), &names(&["redis-2", "redis-3"])).unwrap();
        assert_eq!(cut.cut, vec![client("A", 1), client("A", 2)]);
        assert!(cut.isolated.is_empty());
        let cut = plan(&nodes, &[], &names(&["redis-1"]), &names(&["A", "B"])).unwrap();
        assert_eq!(cut.cut, vec![client("A", 0), client("B", 0)]);
    }

    #[test]
    fn a_primary_cut_off_its_replica_and_the_sentinels_loses_every_link_into_and_out_of_it() {
        let nodes = names(&["primary", "replica-1", "replica-2"]);
        let sentinels = names(&["sentinel-1", "sentinel-2", "sentinel-3"]);
        let cut = plan(
            &nodes,
            &sentinels,
            &names(&["primary"]),
            &names(&["replica-1"]),
        )
        .unwrap();
        assert_eq!(cut.isolated, vec![0]);
        let r = |n: &str, i| (Party::Replica(n.to_string()), i);
        assert_eq!(
            cut.cut,
            vec![
                (Party::Servers, 0),
                r("replica-1", 0),
                r("primary", 1),
                r("replica-2", 0),
                r("primary", 2),
            ]
        );
        // The side with fewer servers goes, whichever group it is.
        let cut = plan(
            &nodes,
            &sentinels,
            &names(&["primary", "sentinel-1", "sentinel-2", "sentinel-3", "A"]),
            &names(&["replica-2"]),
        )
        .unwrap();
        assert_eq!(cut.isolated, vec![2]);
        assert!(cut.cut.contains(&client("A", 2)));
        assert!(cut.cut.contains(&(Party::Servers, 2)));
    }

    #[test]
    fn the_resource_sentinels_taken_off_and_empty_cuts_are_refused() {
        let nodes = names(&["primary", "replica-1"]);
        let sentinels = names(&["sentinel-1", "sentinel-2", "sentinel-3"]);
        for (a, b) in [
            (names(&["resource"]), names(&["A"])),
            (names(&["A"]), names(&["B"])),
            (names(&["sentinel-1"]), names(&["primary", "replica-1"])),
            (
                names(&["primary", "sentinel-1"]),
                names(&["replica-1", "sentinel-2"]),
            ),
        ] {
            assert!(plan(&nodes, &sentinels, &a, &b).is_err(), "{a:?} / {b:?}");
        }
    }
}

#[cfg(test)]
mod on_servers {
    use crate::link::PartitionMode;
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
            Default::default(),
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

    /// A cut between a primary and its replica holds the replication stream until it heals;
    /// the clients still reach both.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cut_between_primary_and_replica_holds_the_stream_until_it_heals() {
        let topology = scenario::Topology::Replicated {
            replicas: 1,
            replication_lag_ms: 0.0,
            repl_timeout_ms: 60_000,
            sentinel: None,
        };
        let Some(p) = crate::processes::testing::start(&topology) else {
            return;
        };
        let (primary, replica) = (
            p.admin_addr("primary").unwrap(),
            p.admin_addr("replica-1").unwrap(),
        );
        let get = |key: &'static str| {
            let replica = replica.clone();
            async move {
                crate::admin::ask::<Option<String>>(&replica, &["GET", key])
                    .await
                    .unwrap()
            }
        };
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        p.partition(
            &names(&["primary"]),
            &names(&["replica-1"]),
            None,
            PartitionMode::Hold,
        )
        .await
        .unwrap();
        // One connection: WAIT waits for that connection's own last write.
        let mut conn = redis::Client::open(format!("redis://{primary}"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg("cut:k")
            .arg("1")
            .query_async(&mut conn)
            .await
            .unwrap();
        // No replica acknowledges the write (a cut cannot be outwaited: any window shows it).
        let acked: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(200)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(acked, 0, "the replica acknowledged across the cut");
        assert_eq!(get("cut:k").await, None, "the write crossed the cut");
        // Heal: the held stream is delivered.
        let nodes = names(&["primary", "replica-1"]);
        let cut = super::plan(&nodes, &[], &names(&["primary"]), &names(&["replica-1"])).unwrap();
        for (party, node) in cut.cut {
            let port = p.inner.port(node);
            p.inner
                .links
                .control(&party, node, port)
                .unwrap()
                .heal(PartitionMode::Hold);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while get("cut:k").await.is_none() {
            assert!(Instant::now() < deadline, "the held stream never arrived");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Split brain on processes: a primary cut off its replica and the Sentinels keeps
    /// serving a client that still reaches it, the Sentinels promote the replica, and after
    /// the heal they make the old primary follow the new one (through its servers' link),
    /// which drops the write it took alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_primary_cut_off_its_replica_and_the_sentinels_serves_on_then_rejoins_as_a_replica() {
        let topology = scenario::Topology::Replicated {
            replicas: 1,
            replication_lag_ms: 0.0,
            repl_timeout_ms: 60_000,
            sentinel: Some(scenario::Sentinel {
                down_after_ms: 1000,
            }),
        };
        let Some(p) = tokio::task::block_in_place(|| crate::processes::testing::start(&topology))
        else {
            return;
        };
        let primary = p.admin_addr("primary").unwrap();
        let ask = |addr: String, args: &'static [&'static str]| async move {
            crate::admin::ask::<redis::Value>(&addr, args).await
        };
        let role = |addr: String| async move {
            match ask(addr, &["ROLE"]).await {
                Ok(redis::Value::Array(v)) => match v.first() {
                    Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                    _ => String::new(),
                },
                _ => String::new(),
            }
        };
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (between, and) = (names(&["primary"]), names(&["replica-1"]));
        p.partition(&between, &and, None, PartitionMode::Hold)
            .await
            .unwrap();
        // A client still reaches the old primary and writes there.
        let a = p.client_nodes("A").unwrap();
        let a_primary = a[0].1.trim_start_matches("redis://").to_string();
        ask(a_primary, &["SET", "split:k", "A"]).await.unwrap();
        // The Sentinels promote the replica; the provider routes to it and says so.
        let deadline = Instant::now() + Duration::from_secs(30);
        while p.route(0) != 1 {
            assert!(
                Instant::now() < deadline,
                "the Sentinels never promoted replica-1"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = p.take_observations();
        assert!(
            seen.iter().any(|(_, e)| matches!(e, checker::Effect::Promoted { node, by: checker::PromotedBy::Sentinel } if node == "replica-1")),
            "{seen:?}"
        );
        assert_eq!(role(p.admin_addr("replica-1").unwrap()).await, "master");
        assert_eq!(
            role(primary.clone()).await,
            "master",
            "two primaries: split brain"
        );
        // Heal: the Sentinels reach the old primary again and make it follow replica-1
        // through replica-1's servers' link; its own write is gone.
        let nodes = names(&["primary", "replica-1"]);
        for (party, node) in super::plan(&nodes, &[], &between, &and).unwrap().cut {
            let port = p.inner.port(node);
            p.inner
                .links
                .control(&party, node, port)
                .unwrap()
                .heal(PartitionMode::Hold);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let gone = matches!(
                ask(primary.clone(), &["GET", "split:k"]).await,
                Ok(redis::Value::Nil)
            );
            if role(primary.clone()).await == "slave" && gone {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the old primary never rejoined as a replica"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let follows = crate::observe::master_port(&primary).await.unwrap();
        assert_eq!(follows, Some(p.inner.servers_port(1).unwrap()));
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
