//! The history of a run: one JSON object per line, the same for every backend.
//!
//! Times are *true* times in microseconds since the start of the run: the simulator's global
//! clock, or the harness's monotonic clock on real Redis. Client clocks never appear here.

use crate::fault::{Effect, Healed, Injected};
use crate::verdict::CheckConfig;
use lock_core::{Op, Reply};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use thiserror::Error;

/// One line of a history: what happened, and when on the true clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// True time in microseconds since the start of the run.
    pub t_us: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// Where a node's or client's clock starts and how fast it runs, as a run began.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockStart {
    /// Offset from true time at the start, in milliseconds.
    pub offset_ms: f64,
    /// Speed relative to true time (1.005 runs 0.5 % fast).
    pub rate: f64,
}

/// Something that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run begins: what was played, and the parameters the checker needs.
    RunStarted {
        scenario: String,
        backend: String,
        seed: u64,
        resource: String,
        /// The recipe's TTL, if any, in milliseconds.
        ttl_ms: Option<u64>,
        /// Clocks that do not start on true time, by node or client name (jumps are faults).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        clocks: BTreeMap<String, ClockStart>,
        /// The checker settings the run was judged with (the scenario's `checker`), so that
        /// `locksim check` judges the history as the run did. Absent: the defaults.
        #[serde(default, skip_serializing_if = "CheckConfig::is_default")]
        checker: CheckConfig,
    },
    /// The schedule injected a fault (node crash, promotion, partition, clock jump, client
    /// pause, ...).
    Fault(Injected),
    /// A timed fault ended (a node or client resumed, a partition healed).
    Heal(Healed),
    /// The backend observed what a fault did (a node down, a promotion, a dropped replica).
    Observed(Effect),
    /// A client starts trying to get the lock.
    AcquireStarted { client: String },
    /// One acquisition attempt begins (1-based).
    AttemptStarted { client: String, attempt: u32 },
    /// One acquisition attempt failed.
    AttemptFailed {
        client: String,
        attempt: u32,
        reason: String,
    },
    /// A command left a client for a lock instance.
    CommandSent {
        client: String,
        instance: usize,
        /// The client's id for this command; its reply carries the same.
        request: u64,
        op: Op,
        command: String,
    },
    /// A lock instance's reply reached a client (or the client gave up waiting).
    ReplyReceived {
        client: String,
        instance: usize,
        /// The id of the command this answers.
        request: u64,
        op: Op,
        reply: Reply,
    },
    /// The client holds the lock: its critical section begins.
    Acquired {
        client: String,
        token: String,
        fencing_token: Option<u64>,
        /// Validity left at the grant, in microseconds of the client's clock (`null`: none).
        valid_for_us: Option<u64>,
    },
    /// The client gave up acquiring.
    AcquireFailed {
        client: String,
        attempts: u32,
        reason: String,
    },
    /// The watchdog's extension was confirmed.
    Extended { client: String },
    /// The lock core reports the lock lost (extension failed or validity elapsed).
    Lost { client: String, reason: String },
    /// The client's critical section ends: it no longer believes it holds the lock.
    SectionEnded { client: String, why: SectionEnd },
    /// The client's release finished.
    Released { client: String, confirmed: usize },
    /// The protected resource received a write.
    Write {
        client: String,
        fencing_token: Option<u64>,
        accepted: bool,
    },
    /// A set-once workload's write was acknowledged as the first (SET NX answered OK).
    SetOnceWon { client: String, key: String },
    /// A client process died.
    ClientCrashed { client: String },
    /// A Redis node's copy of the lock key changed (simulator only, for timelines).
    KeyChanged {
        node: String,
        key: String,
        change: KeyChange,
        /// Whether the change arrived through replication.
        replicated: bool,
        /// Whose value the key holds afterwards: a client name, or the quoted value when
        /// several clients use it (a fixed token).
        holder: Option<String>,
        /// Time left before the key expires, on the node's clock (`null`: no expiry).
        ttl_left_us: Option<u64>,
    },
    /// The run could not confirm that something it depends on happened (a scheduled fault
    /// not seen to take effect, a condition not met in time, a server that died on its own):
    /// its verdict is inconclusive.
    Inconclusive { reason: String },
    /// The run ended.
    RunEnded {},
}

/// How a node's copy of the lock key changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyChange {
    /// Written with a new value.
    Set,
    /// Same value, new expiry.
    Extended,
    /// Deleted.
    Deleted,
    /// Gone because the node restarted without persistence.
    Wiped,
    /// Replaced by a full resync from a primary.
    Resynced,
}

/// Why a critical section ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionEnd {
    /// The work finished and the client releases.
    Done,
    /// The lock core reported the lock lost and the client stopped.
    Lost,
    /// The client saw its validity run out and stopped.
    ValidityElapsed,
}

impl Event {
    /// For a fault line (injected, healed or observed), its description for people:
    /// `crash primary`, `resume replica-1`, `observed: replica-1 is the primary (...)`.
    pub fn fault_description(&self) -> Option<String> {
        match self {
            Event::Fault(f) => Some(f.describe()),
            Event::Heal(h) => Some(h.describe()),
            Event::Observed(e) => Some(format!("observed: {}", e.describe())),
            _ => None,
        }
    }

    /// The client the event belongs to, if any.
    pub fn client(&self) -> Option<&str> {
        use Event::*;
        match self {
            AcquireStarted { client }
            | AttemptStarted { client, .. }
            | AttemptFailed { client, .. }
            | CommandSent { client, .. }
            | ReplyReceived { client, .. }
            | Acquired { client, .. }
            | AcquireFailed { client, .. }
            | Extended { client }
            | Lost { client, .. }
            | SectionEnded { client, .. }
            | Released { client, .. }
            | Write { client, .. }
            | SetOnceWon { client, .. }
            | ClientCrashed { client } => Some(client),
            RunStarted { .. }
            | Fault(_)
            | Heal(_)
            | Observed(_)
            | Inconclusive { .. }
            | KeyChanged { .. }
            | RunEnded {} => None,
        }
    }
}

/// A history that cannot be read.
#[derive(Debug, Error)]
pub enum HistoryError {
    /// A line is not a history record.
    #[error("line {line}: {source}")]
    Parse {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Writes records as JSON lines.
pub fn write_jsonl(records: &[Record], mut w: impl Write) -> Result<(), HistoryError> {
    for r in records {
        serde_json::to_writer(&mut w, r).map_err(|e| HistoryError::Io(e.into()))?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Reads JSON lines into records; blank lines are skipped.
pub fn read_jsonl(r: impl BufRead) -> Result<Vec<Record>, HistoryError> {
    let mut out = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let rec = serde_json::from_str(&line).map_err(|source| HistoryError::Parse {
            line: i + 1,
            source,
        })?;
        out.push(rec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json_lines() {
        let recs = vec![
            Record {
                t_us: 0,
                event: Event::Fault(Injected::Crash {
                    node: "primary".into(),
                }),
            },
            Record {
                t_us: 5,
                event: Event::Acquired {
                    client: "A".into(),
                    token: "t".into(),
                    fencing_token: Some(3),
                    valid_for_us: None,
                },
            },
        ];
        let mut buf = Vec::new();
        write_jsonl(&recs, &mut buf).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"t_us":0,"event":"fault","fault":"crash","node":"primary"}"#),
            "{text}"
        );
        assert_eq!(read_jsonl(&buf[..]).unwrap(), recs);
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = read_jsonl("\n{\"t_us\":1,\"event\":\"nope\"}\n".as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 2:"), "{e}");
    }
}
