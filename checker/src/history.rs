//! The history of a run: one JSON object per line, the same for every backend.
//!
//! Times are *true* times in microseconds since the start of the run: the simulator's global
//! clock, or the harness's monotonic clock on real Redis. Client clocks never appear here.

use crate::fault::{Effect, Healed, Injected};
use crate::quote::{clip, strip_position};
use crate::text::Text;
use crate::verdict::CheckConfig;
use lock_core::{Command, Op, Reply, SharedStr};
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

/// What a run played, and the parameters the checker needs: its `run_started` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    /// The scenario's name.
    pub scenario: String,
    /// The backend that played it (`sim` for the simulator).
    pub backend: String,
    /// The seed of the run.
    pub seed: u64,
    /// The lock's resource name (its key).
    pub resource: String,
    /// The recipe's TTL, if any, in milliseconds.
    pub ttl_ms: Option<u64>,
    /// Clocks that do not start on true time, by node or client name (jumps are faults).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clocks: BTreeMap<String, ClockStart>,
    /// The checker settings the run was judged with (the scenario's `checker`), so that
    /// `locksim check` judges the history as the run did. Absent: the defaults.
    #[serde(default, skip_serializing_if = "CheckConfig::is_default")]
    pub checker: CheckConfig,
}

/// Something that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run begins: what was played, and the parameters the checker needs (boxed: the
    /// biggest record by far, and only one per history, so every other record stays small).
    RunStarted(Box<RunStart>),
    /// The schedule injected a fault (node crash, promotion, partition, clock jump, client
    /// pause, ...).
    Fault(Injected),
    /// A timed fault ended (a node or client resumed, a partition healed).
    Heal(Healed),
    /// The backend observed what a fault did (a node down, a promotion, a dropped replica).
    Observed(Effect),
    /// A client starts trying to get the lock.
    AcquireStarted {
        /// The client.
        client: SharedStr,
    },
    /// One acquisition attempt begins (1-based).
    AttemptStarted {
        /// The client.
        client: SharedStr,
        /// Which attempt of this acquisition (1-based).
        attempt: u32,
    },
    /// One acquisition attempt failed.
    AttemptFailed {
        /// The client.
        client: SharedStr,
        /// Which attempt of this acquisition (1-based).
        attempt: u32,
        /// Why it failed.
        reason: String,
    },
    /// A command left a client for a lock instance.
    CommandSent {
        /// The client.
        client: SharedStr,
        /// The lock instance, by index in the recipe's instance list.
        instance: usize,
        /// The client's id for this command; its reply carries the same.
        request: u64,
        /// What the command is for.
        op: Op,
        /// The command as sent, for people.
        command: Text<Command>,
    },
    /// A lock instance's reply reached a client (or the client gave up waiting).
    ReplyReceived {
        /// The client.
        client: SharedStr,
        /// The lock instance, by index in the recipe's instance list.
        instance: usize,
        /// The id of the command this answers.
        request: u64,
        /// What the command was for.
        op: Op,
        /// The reply (or the client's timeout).
        reply: Reply,
    },
    /// The client holds the lock: its critical section begins.
    Acquired {
        /// The client.
        client: SharedStr,
        /// The value it set the key to.
        token: SharedStr,
        /// The fencing token of the grant, when the recipe issues them.
        fencing_token: Option<u64>,
        /// Validity left at the grant, in microseconds of the client's clock (`null`: none).
        valid_for_us: Option<u64>,
    },
    /// The client gave up acquiring.
    AcquireFailed {
        /// The client.
        client: SharedStr,
        /// How many attempts it made.
        attempts: u32,
        /// Why it gave up.
        reason: String,
    },
    /// The watchdog's extension was confirmed.
    Extended {
        /// The client.
        client: SharedStr,
    },
    /// The lock core reports the lock lost (extension failed or validity elapsed).
    Lost {
        /// The client.
        client: SharedStr,
        /// Why the lock was lost.
        reason: String,
    },
    /// The client's critical section ends: it no longer believes it holds the lock.
    SectionEnded {
        /// The client.
        client: SharedStr,
        /// Why the section ended.
        why: SectionEnd,
    },
    /// The client's release finished.
    Released {
        /// The client.
        client: SharedStr,
        /// How many instances confirmed the release.
        confirmed: usize,
        /// The error an external program's lock library gave for the release (`null`: none;
        /// locksim's own clients never set it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Something an external client program said about itself (a `log` line of the client
    /// protocol); judged by nothing.
    ClientSaid {
        /// The client.
        client: SharedStr,
        /// What it said.
        message: String,
    },
    /// The protected resource received a write.
    Write {
        /// The writing client.
        client: SharedStr,
        /// The fencing token it wrote with, if any.
        fencing_token: Option<u64>,
        /// Whether the resource took the write (a fenced resource rejects stale tokens).
        accepted: bool,
    },
    /// A set-once workload's write was acknowledged as the first (SET NX answered OK).
    SetOnceWon {
        /// The client.
        client: SharedStr,
        /// The key it set.
        key: SharedStr,
    },
    /// A client process died.
    ClientCrashed {
        /// The client.
        client: SharedStr,
    },
    /// A Redis node's copy of the lock key changed (simulator only, for timelines).
    KeyChanged {
        /// The node.
        node: SharedStr,
        /// The key.
        key: SharedStr,
        /// How it changed.
        change: KeyChange,
        /// Whether the change arrived through replication.
        replicated: bool,
        /// Whose value the key holds afterwards: a client name, or the quoted value when
        /// several clients use it (a fixed token).
        holder: Option<SharedStr>,
        /// Time left before the key expires, on the node's clock (`null`: no expiry).
        ttl_left_us: Option<u64>,
    },
    /// The run could not confirm that something it depends on happened (a scheduled fault
    /// not seen to take effect, a condition not met in time, a server that died on its own):
    /// its verdict is inconclusive.
    Inconclusive {
        /// What could not be confirmed.
        reason: String,
    },
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
            | ClientSaid { client, .. }
            | Write { client, .. }
            | SetOnceWon { client, .. }
            | ClientCrashed { client } => Some(client),
            RunStarted(_)
            | Fault(_)
            | Heal(_)
            | Observed(_)
            | Inconclusive { .. }
            | KeyChanged { .. }
            | RunEnded {} => None,
        }
    }
}

/// The checker settings the run recorded in its `run_started` line (the defaults when it
/// recorded none), so a history is judged again as its run judged it.
pub fn recorded_checker(records: &[Record]) -> CheckConfig {
    records
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted(start) => Some(start.checker.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// A history that cannot be read, or that is not a history.
#[derive(Debug, Error)]
pub enum HistoryError {
    /// A line is not a history record.
    #[error("line {line}{}{}: {reason}", column.map(|c| format!(", column {c}")).unwrap_or_default(), field.as_ref().map(|f| format!(": field `{f}`")).unwrap_or_default())]
    Parse {
        /// The line (1-based).
        line: usize,
        /// The column, for JSON syntax errors.
        column: Option<usize>,
        /// The field at fault, when it is known.
        field: Option<String>,
        /// What is wrong (values quoted in it are clipped).
        reason: String,
    },
    /// A line is not UTF-8.
    #[error("line {line}: not UTF-8 (invalid byte at offset {offset} of the line)")]
    NotUtf8 {
        /// The line (1-based).
        line: usize,
        /// The offset of the first invalid byte in the line.
        offset: usize,
    },
    /// No record at all.
    #[error("empty: no history to check (a history starts with a `run_started` line)")]
    Empty,
    /// The first record is not `run_started`.
    #[error("line {line}: a history starts with a `run_started` line, not `{event}`")]
    NoRunStarted {
        /// The line of the first record.
        line: usize,
        /// Its event.
        event: String,
    },
    /// A record after the first is `run_started`.
    #[error("line {line}: a second `run_started` (one history per file)")]
    RunStartedAgain {
        /// The line.
        line: usize,
    },
    /// A record's time is before the previous record's.
    #[error("line {line}: field `t_us`: {t_us} is before the previous line's {previous} (times never go back)")]
    TimeBackwards {
        /// The line.
        line: usize,
        /// Its time.
        t_us: u64,
        /// The time of the record before it.
        previous: u64,
    },
    /// A record follows `run_ended`.
    #[error("line {line}: `{event}` after `run_ended` (a history ends with it)")]
    AfterRunEnded {
        /// The line.
        line: usize,
        /// Its event.
        event: String,
    },
    /// No `run_ended` at the end: the history is cut off.
    #[error("line {line}: the history stops without a `run_ended` line (is it cut off?)")]
    NoRunEnded {
        /// The last line.
        line: usize,
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

/// The JSON name of every event, as `event` spells it.
fn event_name(event: &Event) -> String {
    match serde_json::to_value(event) {
        Ok(serde_json::Value::Object(m)) => match m.get("event") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// Parses one line (`n`, 1-based) into a record, naming the field at fault when it can.
fn parse_line(text: &str, n: usize) -> Result<Record, HistoryError> {
    let parse = |column: Option<usize>, field: Option<String>, reason: &str| HistoryError::Parse {
        line: n,
        column,
        field,
        reason: clip(reason),
    };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| parse(Some(e.column()), None, strip_position(&e.to_string())))?;
    let serde_json::Value::Object(map) = &value else {
        return Err(parse(None, None, "a history line is a JSON object"));
    };
    // Event tags are names: serde would read `"event": 7` as the seventh variant.
    match map.get("event") {
        Some(serde_json::Value::String(_)) => {}
        None => return Err(parse(None, Some("event".into()), "missing")),
        Some(other) => {
            return Err(parse(
                None,
                Some("event".into()),
                &format!("must be an event name (a string), got {other}"),
            ))
        }
    }
    for tag in ["fault", "effect"] {
        match map.get(tag) {
            None | Some(serde_json::Value::String(_)) => {}
            Some(other) => {
                return Err(parse(
                    None,
                    Some(tag.into()),
                    &format!("must be a name (a string), got {other}"),
                ))
            }
        }
    }
    let err = match Record::deserialize(&value) {
        Ok(r) => return Ok(r),
        Err(e) => e.to_string(),
    };
    // Tagged records are read through a buffer that loses the path: find the field by taking
    // keys out one at a time. The one whose absence leaves only "missing" (or no error) is
    // it; serde stops at the first bad value and reports missing fields last.
    let mut field = err
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
        .map(str::to_string);
    if field.is_none() && map.len() <= 64 {
        for key in map.keys().filter(|k| *k != "event") {
            let mut probe = map.clone();
            probe.remove(key);
            let cleared = match Record::deserialize(&serde_json::Value::Object(probe)) {
                Ok(_) => true,
                Err(e) => e.to_string() == format!("missing field `{key}`"),
            };
            if cleared {
                field = Some(key.clone());
                break;
            }
        }
    }
    Err(parse(None, field, &err))
}

/// Reads JSON lines into records with their line numbers, naming the line (and, when known,
/// the column and the field) of the first that is not a record; blank lines are skipped.
fn read_numbered(mut r: impl BufRead) -> Result<Vec<(usize, Record)>, HistoryError> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        n += 1;
        let text = std::str::from_utf8(&buf).map_err(|e| HistoryError::NotUtf8 {
            line: n,
            offset: e.valid_up_to(),
        })?;
        if text.trim().is_empty() {
            continue;
        }
        out.push((n, parse_line(text, n)?));
    }
    Ok(out)
}

/// Reads a whole history: every line a record (blank lines are skipped), the first
/// `run_started` and the only one, the last `run_ended` and nothing after it, times never
/// going back. What is not a history is refused, so that it is never judged to hold; the
/// error names the line (and, when known, the column and the field) at fault.
pub fn read_history(r: impl BufRead) -> Result<Vec<Record>, HistoryError> {
    let numbered = read_numbered(r)?;
    validate(&numbered)?;
    Ok(numbered.into_iter().map(|(_, r)| r).collect())
}

/// Checks the shape of a history whose records came from the given lines.
fn validate(records: &[(usize, Record)]) -> Result<(), HistoryError> {
    let Some((first_line, first)) = records.first() else {
        return Err(HistoryError::Empty);
    };
    if !matches!(first.event, Event::RunStarted(_)) {
        return Err(HistoryError::NoRunStarted {
            line: *first_line,
            event: event_name(&first.event),
        });
    }
    let mut previous = first.t_us;
    let mut ended = false;
    for (line, r) in &records[1..] {
        let line = *line;
        if ended {
            return Err(HistoryError::AfterRunEnded {
                line,
                event: event_name(&r.event),
            });
        }
        match r.event {
            Event::RunStarted(_) => return Err(HistoryError::RunStartedAgain { line }),
            Event::RunEnded {} => ended = true,
            _ => {}
        }
        if r.t_us < previous {
            return Err(HistoryError::TimeBackwards {
                line,
                t_us: r.t_us,
                previous,
            });
        }
        previous = r.t_us;
    }
    if !ended {
        let line = records.last().map_or(*first_line, |(l, _)| *l);
        return Err(HistoryError::NoRunEnded { line });
    }
    Ok(())
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
        let read: Vec<Record> = read_numbered(&buf[..])
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(read, recs);
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = read_numbered("\n{\"t_us\":1,\"event\":\"nope\"}\n".as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 2:"), "{e}");
    }
}
