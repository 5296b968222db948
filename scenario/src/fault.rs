//! Faults: `{"at_ms": 10, "crash": "primary"}` — a time and exactly one action.

use crate::condition::After;
use checker::PartitionMode;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A partition's `mode`, with an error that names the field and the modes there are.
fn mode_field<'de, D: Deserializer<'de>>(d: D) -> Result<PartitionMode, D::Error> {
    let name = String::deserialize(d).map_err(|e| D::Error::custom(format!("mode: {e}")))?;
    match name.as_str() {
        "hold" => Ok(PartitionMode::Hold),
        "reset" => Ok(PartitionMode::Reset),
        "blackhole" => Ok(PartitionMode::Blackhole),
        other => Err(D::Error::custom(format!(
            "mode: `{other}` is no partition mode; expected one of hold, reset, blackhole"
        ))),
    }
}

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// When it strikes, in milliseconds of true time (with `after`: not before then).
    pub at_ms: u64,
    /// What happens.
    pub action: FaultAction,
    /// An observed state to wait for first (`"after": {"replica_dropped": "replica-1"}`).
    pub after: Option<After>,
}

impl Fault {
    /// A fault at `at_ms` that waits for nothing.
    pub fn at(at_ms: u64, action: FaultAction) -> Fault {
        Fault {
            at_ms,
            action,
            after: None,
        }
    }
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Kill a node (SIGKILL): it answers nothing until restarted.
    Crash(String),
    /// Start a crashed node again, with its data (persistence) or empty.
    Restart {
        /// The node.
        node: String,
        /// Whether it comes back with its data (AOF) rather than empty.
        persistence: bool,
    },
    /// Make a replica the primary (REPLICAOF NO ONE); clients follow it.
    Promote(String),
    /// Freeze a node (SIGSTOP) for a while or (without `for_ms`) until a `resume_node`; what
    /// it was sent waits.
    PauseNode {
        /// The node.
        node: String,
        /// How long it stays frozen; without it, until a `resume_node`.
        #[serde(default)]
        for_ms: Option<u64>,
    },
    /// Thaw a node frozen by a `pause_node` without `for_ms`.
    ResumeNode(String),
    /// Freeze a client (GC or VM pause) for a while: it keeps believing it holds the lock.
    PauseClient {
        /// The client.
        client: String,
        /// How long it stays frozen.
        for_ms: u64,
    },
    /// Kill a client process.
    CrashClient(String),
    /// Step a node's or client's clock by `by_ms` (negative: backwards).
    ClockJump {
        /// The node or client whose clock jumps.
        target: String,
        /// By how much, in milliseconds (negative: backwards).
        by_ms: i64,
    },
    /// Cut every link between the two groups (node, client names, or `resource`), for a
    /// while or (without `for_ms`) until the end; `mode` says what the cut does to traffic
    /// (default `hold`; scenarios/README.md, "Partitions").
    Partition {
        /// One side's parties.
        between: Vec<String>,
        /// The other side's parties.
        and: Vec<String>,
        /// How long the cut lasts; without it, until the end of the run.
        #[serde(default)]
        for_ms: Option<u64>,
        /// What the cut does to traffic: `hold` (the default), `reset` or `blackhole`.
        #[serde(
            default,
            skip_serializing_if = "PartitionMode::is_hold",
            deserialize_with = "mode_field"
        )]
        mode: PartitionMode,
    },
}

impl FaultAction {
    /// The action's key in JSON, e.g. `crash`.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultAction::Crash(_) => "crash",
            FaultAction::Restart { .. } => "restart",
            FaultAction::Promote(_) => "promote",
            FaultAction::PauseNode { .. } => "pause_node",
            FaultAction::ResumeNode(_) => "resume_node",
            FaultAction::PauseClient { .. } => "pause_client",
            FaultAction::CrashClient(_) => "crash_client",
            FaultAction::ClockJump { .. } => "clock_jump",
            FaultAction::Partition { .. } => "partition",
        }
    }

    /// The name a fault that acts on one process by name targets: a paused or crashed client,
    /// or a clock jump's target (a client or a node).
    pub fn client_target(&self) -> Option<&str> {
        match self {
            FaultAction::PauseClient { client, .. } | FaultAction::CrashClient(client) => {
                Some(client)
            }
            FaultAction::ClockJump { target, .. } => Some(target),
            _ => None,
        }
    }

    /// Every node or client name the fault acts on.
    pub fn targets(&self) -> Vec<&String> {
        match self {
            FaultAction::Crash(n) | FaultAction::Promote(n) | FaultAction::CrashClient(n) => {
                vec![n]
            }
            FaultAction::Restart { node, .. }
            | FaultAction::PauseNode { node, .. }
            | FaultAction::ResumeNode(node) => vec![node],
            FaultAction::PauseClient { client, .. } => vec![client],
            FaultAction::ClockJump { target, .. } => vec![target],
            FaultAction::Partition { between, and, .. } => between.iter().chain(and).collect(),
        }
    }

    /// The history's record of this fault being injected.
    pub fn injected(&self) -> checker::Injected {
        use checker::Injected as I;
        match self.clone() {
            FaultAction::Crash(node) => I::Crash { node },
            FaultAction::Restart { node, persistence } => I::Restart { node, persistence },
            FaultAction::Promote(node) => I::Promote { node },
            FaultAction::PauseNode { node, for_ms } => I::PauseNode { node, for_ms },
            FaultAction::ResumeNode(node) => I::ResumeNode { node },
            FaultAction::PauseClient { client, for_ms } => I::PauseClient { client, for_ms },
            FaultAction::CrashClient(client) => I::CrashClient { client },
            FaultAction::ClockJump { target, by_ms } => I::ClockJump { target, by_ms },
            FaultAction::Partition {
                between,
                and,
                for_ms,
                mode,
            } => I::Partition {
                between,
                and,
                for_ms,
                mode,
            },
        }
    }

    /// A one-line description for people (derived from [`FaultAction::injected`]).
    pub fn describe(&self) -> String {
        self.injected().describe()
    }
}

const KINDS: &str = "crash, restart, promote, pause_node, resume_node, pause_client, crash_client, clock_jump, partition";

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let at = map
            .remove("at_ms")
            .ok_or_else(|| D::Error::missing_field("at_ms"))?;
        let at_ms = u64::deserialize(at).map_err(|e| D::Error::custom(format!("at_ms: {e}")))?;
        let after = match map.remove("after") {
            None => None,
            Some(v) => {
                Some(After::deserialize(v).map_err(|e| D::Error::custom(format!("after: {e}")))?)
            }
        };
        if map.len() != 1 {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(D::Error::custom(format!(
                "a fault needs `at_ms` and exactly one of {KINDS} (and optionally `after`); found [{}]",
                keys.join(", ")
            )));
        }
        let action =
            FaultAction::deserialize(serde_json::Value::Object(map)).map_err(D::Error::custom)?;
        Ok(Fault {
            at_ms,
            action,
            after,
        })
    }
}

impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.action).map_err(serde::ser::Error::custom)?;
        let mut map = serde_json::Map::new();
        map.insert("at_ms".into(), self.at_ms.into());
        if let Some(after) = &self.after {
            let v = serde_json::to_value(after).map_err(serde::ser::Error::custom)?;
            map.insert("after".into(), v);
        }
        if let serde_json::Value::Object(inner) = &mut v {
            map.append(inner);
        }
        serde_json::Value::Object(map).serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        let f: Fault = serde_json::from_str(r#"{"at_ms": 10, "crash": "primary"}"#).unwrap();
        assert_eq!(f.action, FaultAction::Crash("primary".into()));
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"at_ms":10,"crash":"primary"}"#
        );
        let p: Fault = serde_json::from_str(
            r#"{"at_ms": 5, "partition": {"between": ["A"], "and": ["redis-1"]}}"#,
        )
        .unwrap();
        assert!(matches!(
            p.action,
            FaultAction::Partition {
                for_ms: None,
                mode: PartitionMode::Hold,
                ..
            }
        ));
        // The default mode is not written back, so files and histories keep their format.
        assert!(!serde_json::to_string(&p).unwrap().contains("mode"));
        let r: Fault = serde_json::from_str(
            r#"{"at_ms": 5, "partition": {"between": ["A"], "and": ["redis-1"], "mode": "reset"}}"#,
        )
        .unwrap();
        assert!(matches!(
            r.action,
            FaultAction::Partition {
                mode: PartitionMode::Reset,
                ..
            }
        ));
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""mode":"reset""#), "{json}");
        assert_eq!(serde_json::from_str::<Fault>(&json).unwrap(), r);
        let h = serde_json::to_string(&r.action.injected()).unwrap();
        assert!(h.contains(r#""mode":"reset""#), "{h}");
        assert_eq!(r.action.describe(), "partition [A] from [redis-1] (reset)");
    }

    #[test]
    fn an_unknown_partition_mode_is_refused_by_name() {
        let e = serde_json::from_str::<Fault>(
            r#"{"at_ms": 5, "partition": {"between": ["A"], "and": ["B"], "mode": "drop"}}"#,
        )
        .unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("mode") && e.contains("`drop`") && e.contains("blackhole"),
            "{e}"
        );
    }

    #[test]
    fn two_actions_or_none_are_refused() {
        let e = serde_json::from_str::<Fault>(r#"{"at_ms": 1, "crash": "a", "promote": "b"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("exactly one of"), "{e}");
        let e = serde_json::from_str::<Fault>(r#"{"crash": "a"}"#).unwrap_err();
        assert!(e.to_string().contains("at_ms"), "{e}");
        let e = serde_json::from_str::<Fault>(r#"{"at_ms": 1, "explode": "a"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant `explode`"), "{e}");
        let e = serde_json::from_str::<Fault>(r#"{"at_ms": -1, "crash": "a"}"#).unwrap_err();
        assert!(e.to_string().contains("at_ms"), "{e}");
    }
}
