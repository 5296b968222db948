//! What the checker answers: an outcome per property and the findings behind them.

use crate::property::Property;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Whether a property held over a whole history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing in the history contradicts the property.
    Holds,
    /// At least one finding contradicts the property.
    Violated,
}

/// Thresholds for the progress properties; every field has a default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckConfig {
    /// How long after a client crash the lock may stay unavailable; None = default (2 × TTL + 1 s
    /// from RunStarted.ttl_ms, or 60 s when there is no TTL).
    pub liveness_bound_ms: Option<u64>,
    /// Attempts allowed per acquisition; None = 20.
    pub max_attempts: Option<u32>,
    /// Commands sent allowed per acquisition; None = 100.
    pub max_commands: Option<u32>,
    /// How long the lock key may outlive its holder's belief that it holds it (a live client
    /// that released, or gave up, while its key stays); None = default (2 × TTL + 1 s from
    /// RunStarted.ttl_ms, or 60 s when there is no TTL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck_lock_bound_ms: Option<u64>,
}

impl CheckConfig {
    /// Whether every threshold is left at its default.
    pub(crate) fn is_default(&self) -> bool {
        *self == CheckConfig::default()
    }
}

/// One violation of a property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The property violated.
    pub property: Property,
    /// The clients involved.
    pub clients: Vec<String>,
    /// The true times involved, in microseconds.
    pub times_us: Vec<u64>,
    /// The faults injected at or before the finding's last time, as "10.000 ms: crash
    /// primary": the last [`crate::MAX_FAULTS_LISTED`] of them.
    pub faults_before: Vec<String>,
    /// How many earlier faults `faults_before` leaves out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub faults_left_out: u64,
    /// One readable sentence naming the clients and the times in milliseconds.
    pub message: String,
}

/// The checker's judgement of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The outcome of every property.
    pub outcomes: BTreeMap<Property, Outcome>,
    /// Every violation found, grouped by property in [`Property::ALL`] order, each group in
    /// history order; at most [`crate::MAX_FINDINGS_LISTED`] per property.
    pub findings: Vec<Finding>,
    /// Per property, how many findings beyond those listed were left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub findings_left_out: BTreeMap<Property, u64>,
    /// Why the run cannot be trusted, as "12.000 ms: reason": a scheduled fault or condition
    /// that was not seen to take effect, a server that died on its own. Empty: conclusive.
    /// An inconclusive run's outcomes say only what happened, not what the lock guarantees.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inconclusive: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Verdict {
    /// The outcome of one property (Violated if it has findings, when `outcomes` lacks it).
    pub fn outcome(&self, p: Property) -> Outcome {
        match self.outcomes.get(&p) {
            Some(o) => *o,
            None if self.findings.iter().any(|f| f.property == p) => Outcome::Violated,
            None => Outcome::Holds,
        }
    }

    /// Whether the run confirmed every fault it depends on (see [`Verdict::inconclusive`]).
    pub fn is_conclusive(&self) -> bool {
        self.inconclusive.is_empty()
    }

    /// Whether every property holds.
    pub fn all_hold(&self) -> bool {
        Property::ALL
            .iter()
            .all(|p| self.outcome(*p) == Outcome::Holds)
    }

    /// Human-readable text: one line per property, then each finding with its faults.
    pub fn summary(&self) -> String {
        let width = Property::ALL
            .iter()
            .map(|p| p.name().len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        if !self.is_conclusive() {
            let _ = writeln!(
                out,
                "INCONCLUSIVE: the run could not confirm what it was meant to show"
            );
            for why in &self.inconclusive {
                let _ = writeln!(out, "  {why}");
            }
        }
        for p in Property::ALL {
            let status = match self.outcome(p) {
                Outcome::Holds => "holds".to_string(),
                Outcome::Violated => {
                    let n = self.findings.iter().filter(|f| f.property == p).count();
                    let more = self.findings_left_out.get(&p).copied().unwrap_or(0);
                    let all = n as u64 + more;
                    let plural = if all == 1 { "" } else { "s" };
                    if more == 0 {
                        format!("VIOLATED ({n} finding{plural})")
                    } else {
                        format!("VIOLATED ({all} finding{plural}, the first {n} listed)")
                    }
                }
            };
            let _ = writeln!(out, "{:<width$}  {status}", p.name());
        }
        for f in &self.findings {
            let _ = writeln!(out, "\n{}: {}", f.property.name(), f.message);
            if f.faults_before.is_empty() {
                let _ = writeln!(out, "  no faults before");
            } else {
                let _ = writeln!(out, "  faults before:");
                if f.faults_left_out > 0 {
                    let _ = writeln!(out, "    ({} earlier faults not listed)", f.faults_left_out);
                }
                for fault in &f.faults_before {
                    let _ = writeln!(out, "    {fault}");
                }
            }
        }
        out
    }
}

/// A true time in microseconds as milliseconds with three decimals: `1234.500 ms`.
pub(crate) fn ms(us: u64) -> String {
    format!("{}.{:03} ms", us / 1_000, us % 1_000)
}
