//! Fault spaces: what `locksim explore` may draw a fault schedule from.

use crate::model::Dist;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The faults exploration may inject, and the parameter ranges it may vary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpace {
    /// At most this many faults per seed.
    #[serde(default = "three")]
    pub max_faults: usize,
    /// Faults strike between these times, in milliseconds.
    pub window_ms: [u64; 2],
    /// The fault kinds; each seed switches whole kinds on or off (swarm testing).
    pub kinds: Vec<FaultKind>,
    /// Range of the replicated topology's replication lag, in milliseconds.
    #[serde(default)]
    pub replication_lag_ms: Option<[f64; 2]>,
    /// Range of the network's fixed one-way latency, in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<[f64; 2]>,
}

/// At most this many values in a kind's `grid_ms`.
pub const MAX_GRID: usize = 16;

fn three() -> usize {
    3
}

/// One kind of fault and where it may strike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Kill one of these nodes.
    Crash {
        /// The nodes it may strike.
        nodes: Vec<String>,
    },
    /// Restart one of these nodes, with or without persistence.
    Restart {
        /// The nodes it may strike.
        nodes: Vec<String>,
    },
    /// Promote one of these replicas.
    Promote {
        /// The nodes it may strike.
        nodes: Vec<String>,
    },
    /// Freeze one of these nodes for a time in the range.
    PauseNode {
        /// The nodes it may strike.
        nodes: Vec<String>,
        /// The durations: a range, or a distribution, in milliseconds.
        for_ms: Span,
        /// The durations exhaustive exploration tries (default: the range's ends, or the
        /// distribution's median and 99th percentile), in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grid_ms: Option<Vec<u64>>,
    },
    /// Freeze one of these clients for a time in the range.
    PauseClient {
        /// The clients it may strike.
        clients: Vec<String>,
        /// The durations: a range, or a distribution, in milliseconds.
        for_ms: Span,
        /// The durations exhaustive exploration tries (default: the range's ends, or the
        /// distribution's median and 99th percentile), in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grid_ms: Option<Vec<u64>>,
    },
    /// Kill one of these clients.
    CrashClient {
        /// The clients it may strike.
        clients: Vec<String>,
    },
    /// Step one of these clocks by an amount in the range.
    ClockJump {
        /// The nodes or clients whose clock may jump.
        targets: Vec<String>,
        /// The range of steps, in milliseconds.
        by_ms: [i64; 2],
        /// The steps exhaustive exploration tries (default: the range's ends), in
        /// milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grid_ms: Option<Vec<i64>>,
    },
    /// Split these parties in two for a time in the range.
    Partition {
        /// The parties (nodes, clients, `resource`) that may be split.
        parties: Vec<String>,
        /// The range of durations, in milliseconds.
        for_ms: [u64; 2],
        /// The durations exhaustive exploration tries (default: the range's ends), in
        /// milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grid_ms: Option<Vec<u64>>,
    },
}

impl FaultKind {
    /// The kind's key in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Crash { .. } => "crash",
            FaultKind::Restart { .. } => "restart",
            FaultKind::Promote { .. } => "promote",
            FaultKind::PauseNode { .. } => "pause_node",
            FaultKind::PauseClient { .. } => "pause_client",
            FaultKind::CrashClient { .. } => "crash_client",
            FaultKind::ClockJump { .. } => "clock_jump",
            FaultKind::Partition { .. } => "partition",
        }
    }

    /// The names the kind may target.
    pub fn targets(&self) -> &[String] {
        match self {
            FaultKind::Crash { nodes }
            | FaultKind::Restart { nodes }
            | FaultKind::Promote { nodes }
            | FaultKind::PauseNode { nodes, .. } => nodes,
            FaultKind::PauseClient { clients, .. } | FaultKind::CrashClient { clients } => clients,
            FaultKind::ClockJump { targets, .. } => targets,
            FaultKind::Partition { parties, .. } => parties,
        }
    }
}

/// Where a fault-space pause's duration comes from: `[low, high]` (a seed picks a point in
/// the range) or a distribution such as `{"pareto_ms": {...}}` (a seed picks a quantile).
#[derive(Debug, Clone, PartialEq)]
pub enum Span {
    /// A range of whole milliseconds, `1 <= low <= high`.
    Range([u64; 2]),
    /// A distribution (heavy-tailed ones model GC and VM pauses).
    Dist(Dist),
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Span::Range(r) => r.serialize(s),
            Span::Dist(d) => d.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a range [low, high] or a distribution such as {\"lognormal_ms\": {\"p50\": 50, \"p99\": 2000}}")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, a: A) -> Result<Span, A::Error> {
                <[u64; 2]>::deserialize(SeqAccessDeserializer::new(a)).map(Span::Range)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<Span, A::Error> {
                Dist::deserialize(MapAccessDeserializer::new(a)).map(Span::Dist)
            }
        }
        d.deserialize_any(V)
    }
}
