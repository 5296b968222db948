//! The simulated network: per-link latency drawn from a distribution, FIFO per link (like
//! TCP), random loss, and partitions that cut links between named parties.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use scenario::Network as NetworkSpec;
use std::collections::BTreeMap;
use workload::dist::sample_us;

/// One end of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Party {
    /// A lock client, by index.
    Client(usize),
    /// A Redis node, by index.
    Node(usize),
    /// The protected resource.
    Resource,
}

/// Whether anything is ever sent between `a` and `b`.
fn carries_messages(a: Party, b: Party) -> bool {
    use Party::*;
    matches!(
        (a, b),
        (Client(_), Node(_))
            | (Node(_), Client(_))
            | (Node(_), Node(_))
            | (Client(_), Resource)
            | (Resource, Client(_))
    )
}

/// Links, their FIFO order and their cuts.
pub struct Network {
    spec: NetworkSpec,
    rng: ChaCha8Rng,
    last_delivery: BTreeMap<(Party, Party), u64>,
    cuts: BTreeMap<(Party, Party), u32>,
}

impl Network {
    /// A network with every link up.
    pub fn new(spec: NetworkSpec, rng: ChaCha8Rng) -> Network {
        Network {
            spec,
            rng,
            last_delivery: BTreeMap::new(),
            cuts: BTreeMap::new(),
        }
    }

    /// Whether the link between `a` and `b` is cut.
    pub fn is_cut(&self, a: Party, b: Party) -> bool {
        self.cuts.get(&(a, b)).is_some_and(|n| *n > 0)
    }

    /// Cuts (`by` = +1) or restores (`by` = −1) the links between two groups.
    ///
    /// Only links that carry messages are kept (client–node, node–node, client–resource), so
    /// the work is linear in the parties named, times the number of nodes: two groups of
    /// clients have no link between them to cut.
    pub fn cut(&mut self, between: &[Party], and: &[Party], by: i32) {
        for a in between {
            for b in and {
                if !carries_messages(*a, *b) {
                    continue;
                }
                for key in [(*a, *b), (*b, *a)] {
                    let n = self.cuts.entry(key).or_insert(0);
                    *n = n.saturating_add_signed(by);
                }
            }
        }
    }

    /// When a message sent now from `from` to `to` arrives, or `None` if it is lost.
    /// `reliable` messages (replication, resource writes) ignore random loss.
    pub fn deliver_at(&mut self, from: Party, to: Party, now: u64, reliable: bool) -> Option<u64> {
        if self.is_cut(from, to) {
            return None;
        }
        if !reliable && self.spec.loss > 0.0 && self.rng.gen::<f64>() < self.spec.loss {
            return None;
        }
        let dist = if matches!(from, Party::Resource) || matches!(to, Party::Resource) {
            &self.spec.resource_latency
        } else {
            &self.spec.latency
        };
        let arrival = now + sample_us(dist, &mut self.rng);
        let last = self.last_delivery.entry((from, to)).or_insert(0);
        *last = (*last).max(arrival);
        Some(*last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use scenario::Dist;

    #[test]
    fn links_are_fifo_and_cuts_drop() {
        let spec = NetworkSpec {
            latency: Dist::UniformMs([0.0, 10.0]),
            ..NetworkSpec::default()
        };
        let mut net = Network::new(spec, ChaCha8Rng::seed_from_u64(1));
        let (a, b) = (Party::Client(0), Party::Node(0));
        let mut last = 0;
        for t in 0..200 {
            let at = net.deliver_at(a, b, t, false).unwrap();
            assert!(at >= last && at >= t);
            last = at;
        }
        net.cut(&[a], &[b], 1);
        assert_eq!(net.deliver_at(b, a, 0, true), None);
        net.cut(&[a], &[b], -1);
        assert!(net.deliver_at(b, a, 0, true).is_some());
    }

    #[test]
    fn a_cut_keeps_only_links_that_carry_messages() {
        let mut net = Network::new(NetworkSpec::default(), ChaCha8Rng::seed_from_u64(1));
        let clients: Vec<Party> = (0..500).map(Party::Client).collect();
        let more: Vec<Party> = (500..1000).map(Party::Client).collect();
        net.cut(&clients, &more, 1);
        assert_eq!(net.cuts.len(), 0, "clients do not talk to clients");
        net.cut(&clients, &[Party::Node(0), Party::Resource], 1);
        assert_eq!(net.cuts.len(), 2 * 2 * 500);
        assert!(net.is_cut(Party::Node(0), Party::Client(7)));
        assert!(net.is_cut(Party::Client(7), Party::Resource));
    }
}
