//! Conditions: a fault or a client start that waits for an observed state instead of a
//! wall-clock margin — `"after": {"replica_dropped": "replica-1", "timeout_ms": 10000}`.
//!
//! The fault (or start) happens `delay_ms` after the condition is first seen in the run's
//! history, and not before its own `at_ms` (`start_ms`). When the condition is not seen within
//! `timeout_ms` of `at_ms`, or by the end of the run, the run is inconclusive: what it was
//! meant to show never got the chance to happen.

use checker::{Effect, Event};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The state a fault or a client start waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The node was seen to become the primary (by hand or by Sentinel).
    Promoted(String),
    /// The primary was seen to drop this replica (silent past `repl-timeout`).
    ReplicaDropped(String),
    /// The node was seen down.
    NodeDown(String),
    /// The node was seen answering again (after a restart or a pause).
    NodeUp(String),
    /// The client was granted the lock (or, writing a set-once record, won it).
    Acquired(String),
    /// The fault proxy forwarded one of the client's commands to a server (on the simulator:
    /// the command reached the node). A real backend holds the server's reply to it until
    /// what waited for it has acted, so the placement is exact.
    Forwarded(Forwarded),
}

/// Which forwarded command a [`Condition::Forwarded`] waits for:
/// `{"client": "A", "command": "GET", "key": "lock"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forwarded {
    /// The client whose command it is.
    pub client: String,
    /// The command's name (`GET`, `SET`, `EVALSHA`), matched case-insensitively.
    pub command: String,
    /// The key the command must touch: its first argument, or for `EVAL`/`EVALSHA` one of its
    /// `KEYS`. [`crate::Scenario::parse`] fills in the scenario's `resource.key` when it is
    /// not given; `None` (a scenario built in code) matches any key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Forwarded {
    /// Whether a forwarded command (`command` with `key`, as an observation names them) is
    /// this one.
    pub fn matches(&self, command: &str, key: &str) -> bool {
        self.command.eq_ignore_ascii_case(command) && self.key.as_deref().is_none_or(|k| k == key)
    }

    /// The key to match: the one given, else `default` (the scenario's `resource.key`).
    pub fn key_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.key.as_deref().unwrap_or(default)
    }
}

/// A condition with its timing: `{"promoted": "replica-1", "timeout_ms": 10000}`.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    /// What must be seen first.
    pub condition: Condition,
    /// How long after `at_ms` to wait for it before the run is inconclusive (default 30 s).
    pub timeout_ms: u64,
    /// How long after the condition was seen to act (default 0).
    pub delay_ms: u64,
}

/// The default wait for a condition.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

const KINDS: &str = "promoted, replica_dropped, node_down, node_up, acquired, forwarded";

impl Condition {
    /// The condition's key in JSON, e.g. `promoted`.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::Promoted(_) => "promoted",
            Condition::ReplicaDropped(_) => "replica_dropped",
            Condition::NodeDown(_) => "node_down",
            Condition::NodeUp(_) => "node_up",
            Condition::Acquired(_) => "acquired",
            Condition::Forwarded(_) => "forwarded",
        }
    }

    /// The node or client the condition names.
    pub fn name(&self) -> &str {
        match self {
            Condition::Promoted(n)
            | Condition::ReplicaDropped(n)
            | Condition::NodeDown(n)
            | Condition::NodeUp(n)
            | Condition::Acquired(n) => n,
            Condition::Forwarded(f) => &f.client,
        }
    }

    /// Whether the history event `e` shows the condition met.
    pub fn met_by(&self, e: &Event) -> bool {
        match (self, e) {
            (Condition::Promoted(n), Event::Observed(Effect::Promoted { node, .. })) => node == n,
            (
                Condition::ReplicaDropped(n),
                Event::Observed(Effect::ReplicaDropped { replica, .. }),
            ) => replica == n,
            (Condition::NodeDown(n), Event::Observed(Effect::NodeDown { node })) => node == n,
            (Condition::NodeUp(n), Event::Observed(Effect::NodeUp { node })) => node == n,
            (Condition::Acquired(n), Event::Acquired { client, .. })
            | (Condition::Acquired(n), Event::SetOnceWon { client, .. }) => client == n,
            (
                Condition::Forwarded(f),
                Event::Observed(Effect::Forwarded {
                    client,
                    command,
                    key,
                    ..
                }),
            ) => *client == f.client && f.matches(command, key),
            _ => false,
        }
    }

    /// Why a run is inconclusive when `what` (`faults[1] (crash primary)`) waited for this
    /// condition and it was not seen `when` (`within 6000 ms`, `by the end of the run`); the
    /// same words on every backend.
    pub fn not_seen(&self, what: &str, when: &str) -> String {
        format!(
            "{what} waited for {}, which was not seen {when}",
            self.describe()
        )
    }

    /// A few words for messages: `replica-1 promoted`.
    pub fn describe(&self) -> String {
        match self {
            Condition::Promoted(n) => format!("{n} promoted"),
            Condition::ReplicaDropped(n) => format!("the primary dropping replica {n}"),
            Condition::NodeDown(n) => format!("{n} down"),
            Condition::NodeUp(n) => format!("{n} answering again"),
            Condition::Acquired(n) => format!("{n} acquiring the lock"),
            Condition::Forwarded(f) => match &f.key {
                Some(k) => format!("{}'s {} of {k} forwarded", f.client, f.command),
                None => format!("{}'s {} forwarded", f.client, f.command),
            },
        }
    }
}

impl<'de> Deserialize<'de> for After {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut number = |key: &str, default: u64| -> Result<u64, D::Error> {
            match map.remove(key) {
                None => Ok(default),
                Some(v) => u64::deserialize(v).map_err(|e| D::Error::custom(format!("{key}: {e}"))),
            }
        };
        let timeout_ms = number("timeout_ms", DEFAULT_TIMEOUT_MS)?;
        let delay_ms = number("delay_ms", 0)?;
        if map.len() != 1 {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(D::Error::custom(format!(
                "`after` needs exactly one of {KINDS} (and optionally timeout_ms, delay_ms); found [{}]",
                keys.join(", ")
            )));
        }
        let condition =
            Condition::deserialize(serde_json::Value::Object(map)).map_err(D::Error::custom)?;
        Ok(After {
            condition,
            timeout_ms,
            delay_ms,
        })
    }
}

impl Serialize for After {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = match serde_json::to_value(&self.condition) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        map.insert("timeout_ms".into(), self.timeout_ms.into());
        if self.delay_ms > 0 {
            map.insert("delay_ms".into(), self.delay_ms.into());
        }
        serde_json::Value::Object(map).serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_round_trips() {
        let a: After = serde_json::from_str(r#"{"promoted": "replica-1"}"#).unwrap();
        assert_eq!(a.condition, Condition::Promoted("replica-1".into()));
        assert_eq!((a.timeout_ms, a.delay_ms), (DEFAULT_TIMEOUT_MS, 0));
        let b: After =
            serde_json::from_str(r#"{"acquired": "A", "timeout_ms": 5, "delay_ms": 7}"#).unwrap();
        let text = serde_json::to_string(&b).unwrap();
        assert_eq!(text, r#"{"acquired":"A","delay_ms":7,"timeout_ms":5}"#);
        assert_eq!(serde_json::from_str::<After>(&text).unwrap(), b);
    }

    #[test]
    fn none_or_two_conditions_are_refused() {
        let e = serde_json::from_str::<After>(r#"{"timeout_ms": 5}"#).unwrap_err();
        assert!(e.to_string().contains("exactly one of"), "{e}");
        let e = serde_json::from_str::<After>(r#"{"promoted": "a", "node_up": "b"}"#).unwrap_err();
        assert!(e.to_string().contains("found [node_up, promoted]"), "{e}");
        let e = serde_json::from_str::<After>(r#"{"exploded": "a"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
    }

    #[test]
    fn matches_only_its_own_observation() {
        let c = Condition::ReplicaDropped("replica-1".into());
        let dropped = |r: &str| {
            Event::Observed(Effect::ReplicaDropped {
                primary: "primary".into(),
                replica: r.into(),
            })
        };
        assert!(c.met_by(&dropped("replica-1")));
        assert!(!c.met_by(&dropped("replica-2")));
        assert!(!c.met_by(&Event::Observed(Effect::NodeDown {
            node: "replica-1".into()
        })));
    }

    fn forwarded(client: &str, command: &str, key: &str) -> Event {
        Event::Observed(Effect::Forwarded {
            client: client.into(),
            node: "redis-1".into(),
            command: command.into(),
            key: key.into(),
        })
    }

    #[test]
    fn forwarded_matches_its_client_command_in_any_case_and_key() {
        let a: After =
            serde_json::from_str(r#"{"forwarded": {"client": "A", "command": "get", "key": "k"}}"#)
                .unwrap();
        let c = &a.condition;
        assert_eq!(c.kind(), "forwarded");
        assert_eq!(c.name(), "A");
        assert!(c.met_by(&forwarded("A", "GET", "k")));
        assert!(!c.met_by(&forwarded("B", "GET", "k")), "another client");
        assert!(!c.met_by(&forwarded("A", "SET", "k")), "another command");
        assert!(!c.met_by(&forwarded("A", "GET", "other")), "another key");
        assert_eq!(c.describe(), "A's get of k forwarded");
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<After>(&text).unwrap(), a);
        let e = serde_json::from_str::<After>(r#"{"forwarded": {"client": "A", "cmd": "GET"}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `cmd`"), "{e}");
    }

    fn scenario_with(after: &str) -> Result<crate::Scenario, crate::ScenarioError> {
        let text = format!(
            r#"{{
              "name": "fwd", "duration_ms": 1000, "backends": ["sim"],
              "topology": {{"single": {{}}}},
              "resource": {{"key": "the-lock"}},
              "clients": [{{"name": "A", "start_ms": 0, "work_ms": {{"fixed_ms": 10}}}},
                          {{"name": "B", "start_ms": 0, "work_ms": {{"fixed_ms": 10}}}}],
              "faults": [{{"at_ms": 0, "pause_client": {{"client": "A", "for_ms": 10}},
                           "after": {after}}}],
              "expect": {{"mutual_exclusion": "holds"}}
            }}"#
        );
        crate::Scenario::parse(&text, std::path::Path::new("fwd.json"))
    }

    #[test]
    fn a_forwarded_condition_without_a_key_waits_for_the_resource_key() {
        let s = scenario_with(r#"{"forwarded": {"client": "A", "command": "SET"}}"#).unwrap();
        let c = &s.faults[0].after.as_ref().unwrap().condition;
        assert!(c.met_by(&forwarded("A", "set", "the-lock")));
        assert!(!c.met_by(&forwarded("A", "SET", "fencing")));
    }

    #[test]
    fn a_forwarded_condition_names_a_client_and_a_command() {
        let refused = |after: &str| {
            let e = scenario_with(after).unwrap_err();
            (e.field.clone(), e.reason.clone())
        };
        let (field, reason) = refused(r#"{"forwarded": {"client": "C", "command": "GET"}}"#);
        assert_eq!(field, "faults[0].after.forwarded.client");
        assert!(reason.contains("no client is named `C`"), "{reason}");
        let (field, reason) = refused(r#"{"forwarded": {"client": "A", "command": " "}}"#);
        assert_eq!(field, "faults[0].after.forwarded.command");
        assert!(reason.contains("name the command"), "{reason}");
        let (field, _) = refused(r#"{"forwarded": {"client": "A", "command": "GET", "key": ""}}"#);
        assert_eq!(field, "faults[0].after.forwarded.key");
    }
}
