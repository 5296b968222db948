//! The simulated network: per-link latency drawn from a distribution, FIFO per link (like
//! TCP), random loss, and partitions that cut links between named parties.

use checker::PartitionMode;
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

/// Links, their FIFO order, their cuts and their connections.
///
/// A cut is checked when a message is *delivered*, not when it is sent (as TigerBeetle's
/// packet simulator does): the world asks [`Network::mode`] when a message arrives. What a
/// cut does then depends on its [`PartitionMode`] (scenarios/README.md, "Partitions").
#[derive(Debug, Clone)]
pub struct Network {
    spec: NetworkSpec,
    rng: ChaCha8Rng,
    /// Per directed link, the latest arrival scheduled on it (FIFO): indexed
    /// `[slot(from)][slot(to)]`, grown as links are first used; 0 for a link never used.
    last_delivery: Vec<Vec<u64>>,
    /// Per directed link, how many cuts of each mode hold it (indexed by [`mode_index`]).
    cuts: BTreeMap<(Party, Party), [u32; 3]>,
    /// Per pair of parties (lower first), the generation of the connection between them: a
    /// message sent on an earlier generation died with its connection.
    conns: BTreeMap<(Party, Party), u64>,
}

/// Where a mode's count sits in a link's cut counts; the highest index present wins.
fn mode_index(mode: PartitionMode) -> usize {
    match mode {
        PartitionMode::Hold => 0,
        PartitionMode::Blackhole => 1,
        PartitionMode::Reset => 2,
    }
}

const MODES: [PartitionMode; 3] = [
    PartitionMode::Hold,
    PartitionMode::Blackhole,
    PartitionMode::Reset,
];

/// Where a party sits in a per-party table: the resource first, then clients and nodes
/// interleaved, so that a table needs no count of either.
fn slot(p: Party) -> usize {
    match p {
        Party::Resource => 0,
        Party::Client(c) => 1 + 2 * c,
        Party::Node(n) => 2 + 2 * n,
    }
}

/// The pair of parties a connection joins, in one order whichever way a message goes.
fn pair(a: Party, b: Party) -> (Party, Party) {
    (a.min(b), a.max(b))
}

impl Network {
    /// Writes what changes as the run goes (where the random stream stands, each link's
    /// last delivery, the cuts and connection generations), not the network's settings,
    /// for a state fingerprint.
    pub(crate) fn write_state(&self, w: &mut dyn std::fmt::Write) -> std::fmt::Result {
        write!(
            w,
            "{}|{:?}|{:?}|{:?}",
            self.rng.get_word_pos(),
            self.last_delivery,
            self.cuts,
            self.conns
        )
    }

    /// A network with every link up.
    pub fn new(spec: NetworkSpec, rng: ChaCha8Rng) -> Network {
        Network {
            spec,
            rng,
            last_delivery: Vec::new(),
            cuts: BTreeMap::new(),
            conns: BTreeMap::new(),
        }
    }

    /// Whether the link between `a` and `b` is cut.
    pub fn is_cut(&self, a: Party, b: Party) -> bool {
        self.mode(a, b).is_some()
    }

    /// How the link from `a` to `b` is cut now, if it is: of nested cuts of different
    /// modes, the strongest (reset, then blackhole, then hold).
    pub fn mode(&self, a: Party, b: Party) -> Option<PartitionMode> {
        let counts = self.cuts.get(&(a, b))?;
        (0..3).rev().find(|i| counts[*i] > 0).map(|i| MODES[i])
    }

    /// Cuts (`by` = +1) or restores (`by` = −1) the links between two groups, in `mode`.
    ///
    /// Only links that carry messages are kept (client–node, node–node, client–resource), so
    /// the work is linear in the parties named, times the number of nodes: two groups of
    /// clients have no link between them to cut.
    pub fn cut(&mut self, between: &[Party], and: &[Party], mode: PartitionMode, by: i32) {
        for (a, b) in links(between, and) {
            for key in [(a, b), (b, a)] {
                let n = &mut self.cuts.entry(key).or_insert([0; 3])[mode_index(mode)];
                *n = n.saturating_add_signed(by);
            }
        }
    }

    /// The generation of the connection between `a` and `b` (either way round).
    pub fn conn(&self, a: Party, b: Party) -> u64 {
        self.conns.get(&pair(a, b)).copied().unwrap_or(0)
    }

    /// Closes the connection between `a` and `b`: what is still in flight on it is lost,
    /// and the next message opens a new one.
    pub fn close(&mut self, a: Party, b: Party) {
        *self.conns.entry(pair(a, b)).or_insert(0) += 1;
    }

    /// When a message sent now from `from` to `to` arrives, or `None` if random loss takes
    /// it. `reliable` messages (replication, resource writes) ignore random loss. Cuts are
    /// not looked at here: they act at delivery.
    pub fn deliver_at(&mut self, from: Party, to: Party, now: u64, reliable: bool) -> Option<u64> {
        if !reliable && self.spec.loss > 0.0 && self.rng.gen::<f64>() < self.spec.loss {
            return None;
        }
        let dist = if matches!(from, Party::Resource) || matches!(to, Party::Resource) {
            &self.spec.resource_latency
        } else {
            &self.spec.latency
        };
        let arrival = now + sample_us(dist, &mut self.rng);
        let (f, t) = (slot(from), slot(to));
        if self.last_delivery.len() <= f {
            self.last_delivery.resize_with(f + 1, Vec::new);
        }
        let row = &mut self.last_delivery[f];
        if row.len() <= t {
            row.resize(t + 1, 0);
        }
        let last = &mut row[t];
        *last = (*last).max(arrival);
        Some(*last)
    }
}

/// Every pair of parties, one from each group, with a link between them (in order).
pub fn links<'a>(
    between: &'a [Party],
    and: &'a [Party],
) -> impl Iterator<Item = (Party, Party)> + 'a {
    between.iter().flat_map(move |a| {
        and.iter()
            .filter(move |b| carries_messages(*a, **b))
            .map(move |b| (*a, *b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use scenario::Dist;

    #[test]
    fn links_are_fifo_and_cuts_act_at_delivery() {
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
        net.cut(&[a], &[b], PartitionMode::Hold, 1);
        assert_eq!(net.mode(b, a), Some(PartitionMode::Hold));
        assert!(
            net.deliver_at(b, a, 0, true).is_some(),
            "a cut acts at delivery, not at send"
        );
        net.cut(&[a], &[b], PartitionMode::Hold, -1);
        assert_eq!(net.mode(b, a), None);
    }

    #[test]
    fn of_nested_cuts_the_strongest_mode_wins() {
        let mut net = Network::new(NetworkSpec::default(), ChaCha8Rng::seed_from_u64(1));
        let (a, b) = (Party::Client(0), Party::Node(0));
        net.cut(&[a], &[b], PartitionMode::Hold, 1);
        net.cut(&[b], &[a], PartitionMode::Reset, 1);
        net.cut(&[a], &[b], PartitionMode::Blackhole, 1);
        assert_eq!(net.mode(a, b), Some(PartitionMode::Reset));
        net.cut(&[a], &[b], PartitionMode::Reset, -1);
        assert_eq!(net.mode(b, a), Some(PartitionMode::Blackhole));
        net.cut(&[a], &[b], PartitionMode::Blackhole, -1);
        assert_eq!(net.mode(a, b), Some(PartitionMode::Hold));
        net.cut(&[a], &[b], PartitionMode::Hold, -1);
        assert!(!net.is_cut(a, b));
    }

    #[test]
    fn closing_a_connection_counts_its_generation_both_ways() {
        let mut net = Network::new(NetworkSpec::default(), ChaCha8Rng::seed_from_u64(1));
        let (a, b) = (Party::Client(3), Party::Node(1));
        assert_eq!(net.conn(a, b), 0);
        net.close(b, a);
        assert_eq!((net.conn(a, b), net.conn(b, a)), (1, 1));
        assert_eq!(net.conn(a, Party::Node(0)), 0);
    }

    #[test]
    fn a_cut_keeps_only_links_that_carry_messages() {
        let mut net = Network::new(NetworkSpec::default(), ChaCha8Rng::seed_from_u64(1));
        let clients: Vec<Party> = (0..500).map(Party::Client).collect();
        let more: Vec<Party> = (500..1000).map(Party::Client).collect();
        net.cut(&clients, &more, PartitionMode::Hold, 1);
        assert_eq!(net.cuts.len(), 0, "clients do not talk to clients");
        net.cut(
            &clients,
            &[Party::Node(0), Party::Resource],
            PartitionMode::Hold,
            1,
        );
        assert_eq!(net.cuts.len(), 2 * 2 * 500);
        assert!(net.is_cut(Party::Node(0), Party::Client(7)));
        assert!(net.is_cut(Party::Client(7), Party::Resource));
    }
}
