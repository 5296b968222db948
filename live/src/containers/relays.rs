//! The containers provider's client relays: every (client, node) pair reaches the node's
//! published port through its own [`crate::link`] link, made on first use, so a partition
//! cuts one client off one node and nothing else (as the processes provider's links do).
//! The links run on the runtime the provider was started on; dropping [`Relays`] stops them.
//! Under a scenario's non-default network each relay is shaped as a client link
//! ([`crate::link::shape`]), its draws keyed by the client and node names.

use crate::link::{Link, LinkControl, Shaping};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::runtime::Handle;

/// The relays, by client name and node index.
pub(super) struct Relays {
    runtime: Handle,
    /// Per node: the `host:port` its relays forward to (its published port).
    targets: Vec<String>,
    links: Mutex<BTreeMap<(String, usize), Link>>,
    /// The network to shape new relays by, its seed, and the node names; `None`: unshaped.
    shape: Option<(scenario::Network, u64, Vec<String>)>,
}

impl Relays {
    /// No relays yet; they will forward to `targets` (per node) and run on `runtime`.
    pub(super) fn new(runtime: Handle, targets: Vec<String>) -> Relays {
        Relays {
            runtime,
            targets,
            links: Mutex::new(BTreeMap::new()),
            shape: None,
        }
    }

    /// Shapes every relay made from now on by `network`, seeded by `seed`; `names` are the
    /// nodes' names (part of each relay's identity).
    pub(super) fn shaped(
        mut self,
        network: scenario::Network,
        seed: u64,
        names: Vec<String>,
    ) -> Relays {
        self.shape = Some((network, seed, names));
        self
    }

    /// How many nodes the relays reach.
    pub(super) fn nodes(&self) -> usize {
        self.targets.len()
    }

    /// The port of `client`'s relay to node `node` (made now the first time).
    pub(super) fn port(&self, client: &str, node: usize) -> std::io::Result<u16> {
        self.with(client, node, |l| l.port())
    }

    /// The control of `client`'s relay to node `node` (made now the first time).
    pub(super) fn control(&self, client: &str, node: usize) -> std::io::Result<LinkControl> {
        self.with(client, node, |l| l.control().clone())
    }

    fn with<T>(&self, client: &str, node: usize, f: impl FnOnce(&Link) -> T) -> std::io::Result<T> {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let key = (client.to_string(), node);
        if let Some(link) = links.get(&key) {
            return Ok(f(link));
        }
        let target = self
            .targets
            .get(node)
            .ok_or_else(|| std::io::Error::other(format!("no node {node} to relay to")))?;
        let shaping = self.shape.as_ref().map(|(network, seed, names)| {
            let to = names.get(node).map_or("?", String::as_str);
            Shaping::client_link(network, *seed, &format!("{client}->{to}"))
        });
        let link = Link::start_shaped(
            &self.runtime,
            target.clone(),
            LinkControl::default(),
            shaping,
        )?;
        let out = f(&link);
        links.insert(key, link);
        Ok(out)
    }
}
