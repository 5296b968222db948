//! A case: one seed's draw from a fault space — which fault kinds are on (swarm), the fault
//! schedule, which clients take part, and the parameters — as a proptest strategy, so a
//! failing case shrinks with proptest's own machinery.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scenario::{Dist, Fault, FaultAction, FaultKind, FaultSpace, Scenario, Span, Topology};

/// One fault slot: which kind, when, which target, how much.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// Index into the fault space's kinds.
    pub kind: usize,
    /// When it strikes, in milliseconds.
    pub at_ms: u64,
    /// Which of the kind's targets.
    pub target: Index,
    /// Where in the kind's range the amount (duration, jump) falls, in millionths.
    pub amount: u32,
    /// Restart with persistence, for restarts.
    pub persistence: bool,
    /// Which parties fall on the first side, for partitions.
    pub side: u64,
}

/// One seed's draw from a fault space.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    /// Which fault kinds are switched on (swarm testing).
    pub enabled: Vec<bool>,
    /// The fault slots; those of switched-off kinds inject nothing.
    pub slots: Vec<Slot>,
    /// Which clients take part.
    pub keep: Vec<bool>,
    /// Replication lag, when the space varies it.
    pub lag_ms: Option<f64>,
    /// Network latency, when the space varies it.
    pub latency_ms: Option<f64>,
}

/// The strategy that draws cases from `space` for a scenario with `clients` clients.
pub(crate) fn strategy(space: &FaultSpace, clients: usize) -> BoxedStrategy<Case> {
    let [w0, w1] = space.window_ms;
    let slot = (
        0..space.kinds.len(),
        w0..=w1,
        any::<Index>(),
        0u32..=1_000_000,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(kind, at_ms, target, amount, persistence, side)| Slot {
            kind,
            at_ms,
            target,
            amount,
            persistence,
            side,
        });
    let range = |r: Option<[f64; 2]>| -> BoxedStrategy<Option<f64>> {
        match r {
            Some([a, b]) if a < b => (a..=b).prop_map(Some).boxed(),
            Some([a, _]) => Just(Some(a)).boxed(),
            None => Just(None).boxed(),
        }
    };
    (
        proptest::collection::vec(proptest::bool::weighted(0.5), space.kinds.len()),
        proptest::collection::vec(slot, 0..=space.max_faults),
        proptest::collection::vec(proptest::bool::weighted(0.9), clients),
        range(space.replication_lag_ms),
        range(space.latency_ms),
    )
        .prop_map(|(enabled, slots, keep, lag_ms, latency_ms)| Case {
            enabled,
            slots,
            keep,
            lag_ms,
            latency_ms,
        })
        .boxed()
}

/// The value tree a seed draws: its current value is the seed's case, and it shrinks.
pub(crate) fn tree(strategy: &BoxedStrategy<Case>, seed: u64) -> Box<dyn ValueTree<Value = Case>> {
    let mut bytes = [0u8; 32];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    // A strategy built from validated ranges never rejects a draw.
    match strategy.new_tree(&mut runner) {
        Ok(t) => t,
        Err(reason) => unreachable!("the case strategy rejected a draw: {reason}"),
    }
}

fn lerp(lo: u64, hi: u64, millionths: u32) -> u64 {
    lo + ((hi - lo) as u128 * millionths as u128 / 1_000_000) as u64
}

/// A pause's duration for a slot's amount: the point that far into a range (as always), or
/// the distribution's quantile at `(amount + 0.5) / 1_000_001` (so the amount shrinks toward
/// the shortest pauses and the highest quantile reached is 1 - 5e-7), at least 1 ms.
pub(crate) fn span_ms(span: &Span, millionths: u32) -> u64 {
    match span {
        Span::Range([lo, hi]) => lerp(*lo, *hi, millionths),
        Span::Dist(d) => {
            let u = (millionths as f64 + 0.5) / 1_000_001.0;
            d.quantile_ms(u)
                .round()
                .clamp(1.0, lock_core::recipe::MAX_MS as f64) as u64
        }
    }
}

fn lerp_i(lo: i64, hi: i64, millionths: u32) -> i64 {
    lo + ((hi - lo) as i128 * millionths as i128 / 1_000_000) as i64
}

/// The scenario a case describes: the base scenario's clients (those kept), its own faults
/// plus the case's, and the case's parameters.
pub(crate) fn materialize(base: &Scenario, space: &FaultSpace, case: &Case) -> Scenario {
    let mut s = base.clone();
    s.fault_space = None;
    let mut keep = case.keep.clone();
    if !keep.iter().any(|k| *k) {
        if let Some(first) = keep.first_mut() {
            *first = true;
        }
    }
    let mut kept = base
        .clients
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(c, _)| c.clone());
    s.clients = kept.by_ref().collect();
    let client_ok = |n: &str| s.clients.iter().any(|c| c.name == n);
    let nodes = base.topology.node_names();
    let exists = |n: &str| nodes.iter().any(|x| x == n) || client_ok(n) || n == "resource";
    let mut faults: Vec<Fault> = base
        .faults
        .iter()
        .filter(|f| f.action.targets().iter().all(|t| exists(t)))
        .cloned()
        .collect();
    for slot in &case.slots {
        if !case.enabled.get(slot.kind).copied().unwrap_or(false) {
            continue;
        }
        let kind = &space.kinds[slot.kind];
        let targets: Vec<&String> = kind.targets().iter().filter(|t| exists(t)).collect();
        if targets.is_empty() {
            continue;
        }
        let t = (*slot.target.get(&targets)).clone();
        let action = match kind {
            FaultKind::Crash { .. } => FaultAction::Crash(t),
            FaultKind::Restart { .. } => FaultAction::Restart {
                node: t,
                persistence: slot.persistence,
            },
            FaultKind::Promote { .. } => FaultAction::Promote(t),
            FaultKind::PauseNode { for_ms, .. } => FaultAction::PauseNode {
                node: t,
                for_ms: Some(span_ms(for_ms, slot.amount)),
            },
            FaultKind::PauseClient { for_ms, .. } => FaultAction::PauseClient {
                client: t,
                for_ms: span_ms(for_ms, slot.amount),
            },
            FaultKind::CrashClient { .. } => FaultAction::CrashClient(t),
            FaultKind::ClockJump { by_ms: [a, b], .. } => FaultAction::ClockJump {
                target: t,
                by_ms: lerp_i(*a, *b, slot.amount),
            },
            FaultKind::Partition { for_ms: [a, b], .. } => {
                let parties: Vec<String> = targets.iter().map(|t| (*t).clone()).collect();
                let (mut between, mut and): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
                for (i, p) in parties.iter().enumerate() {
                    if slot.side >> (i % 64) & 1 == 1 {
                        between.push(p.clone());
                    } else {
                        and.push(p.clone());
                    }
                }
                if between.is_empty() {
                    between.push(and.remove(0));
                }
                if and.is_empty() {
                    and.push(between.pop().unwrap_or_default());
                }
                if between.is_empty() || and.is_empty() {
                    continue;
                }
                FaultAction::Partition {
                    between,
                    and,
                    for_ms: Some(lerp(*a, *b, slot.amount)),
                    mode: Default::default(),
                }
            }
        };
        faults.push(Fault::at(slot.at_ms, action));
    }
    faults.sort_by_key(|f| f.at_ms);
    s.faults = faults;
    if let (
        Some(lag),
        Topology::Replicated {
            replication_lag_ms, ..
        },
    ) = (case.lag_ms, &mut s.topology)
    {
        *replication_lag_ms = lag;
    }
    if let Some(l) = case.latency_ms {
        s.network.latency = Dist::FixedMs(l);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_drawn_as_always_and_a_distribution_as_a_quantile() {
        for amount in [0, 1, 499_999, 500_000, 999_999, 1_000_000] {
            assert_eq!(
                span_ms(&Span::Range([10, 1500]), amount),
                lerp(10, 1500, amount)
            );
        }
        let pareto = Span::Dist(Dist::ParetoMs {
            scale: 20.0,
            shape: 1.0,
            max: Some(5000.0),
        });
        // P(X > x) = 20 / x: the median is 40 ms, the 99th percentile 2000 ms.
        assert_eq!(span_ms(&pareto, 500_000), 40);
        assert_eq!(span_ms(&pareto, 990_000), 2000);
        assert_eq!(span_ms(&pareto, 0), 20);
        assert_eq!(span_ms(&pareto, 1_000_000), 5000);
        // A distribution that can be 0 still pauses for 1 ms.
        assert_eq!(span_ms(&Span::Dist(Dist::FixedMs(0.0)), 7), 1);
    }
}
