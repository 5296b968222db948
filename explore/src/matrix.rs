//! The safety matrix: recipes (rows) against fault classes (columns), each cell an
//! exhaustive search of every schedule of up to K faults of that class, so each cell says
//! "safe up to K faults" or gives the minimal counterexample.
//!
//! Every cell plays the same workload: two clients, A from 0 ms and B from 100 ms, each
//! holding the lock once for 1.5 s of work under a 1 s TTL (so the watchdog matters), over a
//! link of 5 ms. A single-lock recipe runs on a primary with one replica (replication lag
//! 50 ms); Redlock runs on 5 independent primaries. "Safe" is judged on what a lock is for
//! ([`JUDGED`]): no two clients hold it at once, the resource never accepts a write under an
//! older grant after one under a newer, no client deletes another's lock, a lock is not
//! left stuck (by a dead holder or by nobody), and no acquisition goes over its budget. The
//! fencing row is judged on the same list less mutual exclusion: no lock prevents two
//! holders under a pause, and fencing's promise is that the resource still refuses the
//! stale one.

use crate::exhaustive::{exhaustive, ExhaustiveReport, Options, Progress};
use crate::ExploreError;
use checker::Property;
use scenario::Scenario;
use serde_json::{json, Value};
use std::path::Path;

/// The properties a cell is judged on (a row with fencing: all but mutual exclusion).
pub const JUDGED: [Property; 6] = [
    Property::MutualExclusion,
    Property::UnsafeWrites,
    Property::StuckLock,
    Property::ForeignRelease,
    Property::Liveness,
    Property::RetryBudget,
];

/// Where a row's lock lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// One primary with one replica.
    Replicated,
    /// Redlock over 5 independent primaries.
    Redlock5,
}

/// One row: a recipe.
#[derive(Debug, Clone)]
pub struct Row {
    /// Short name (used in file names).
    pub name: &'static str,
    /// What the recipe does differently.
    pub what: &'static str,
    /// Where its lock lives.
    pub lock: Lock,
    /// The recipe's fields, as in a scenario file (over the matrix's defaults).
    pub recipe: Value,
    /// Whether the resource checks fencing tokens (the row is then judged on writes, not
    /// on mutual exclusion).
    pub fencing: bool,
}

impl Row {
    /// The properties this row's cells are judged on.
    pub fn judged(&self) -> Vec<Property> {
        (JUDGED.into_iter())
            .filter(|p| !(self.fencing && *p == Property::MutualExclusion))
            .collect()
    }
}

/// One column: a class of faults.
#[derive(Debug, Clone)]
pub struct Column {
    /// Short name (used in file names).
    pub name: &'static str,
    /// What the faults are.
    pub what: &'static str,
}

/// The rows: the safe recipe, each pitfall, WAIT 1, Redlock-5, fencing.
pub fn rows() -> Vec<Row> {
    let row = |name, what, recipe: Value| Row {
        name,
        what,
        lock: Lock::Replicated,
        recipe,
        fencing: false,
    };
    vec![
        row(
            "safe",
            "SET NX PX, unique token, compare-and-delete, watchdog",
            json!({}),
        ),
        row(
            "setnx-then-expire",
            "SETNX then PEXPIRE (two commands)",
            json!({"acquire": "setnx_then_expire"}),
        ),
        row(
            "fixed-value",
            "the same token for every client",
            json!({"token": {"fixed": "locked"}}),
        ),
        row(
            "plain-del",
            "release by plain DEL",
            json!({"release": "plain_del"}),
        ),
        row(
            "no-ttl",
            "no TTL (and so no watchdog)",
            json!({"ttl_ms": null, "watchdog": false}),
        ),
        row(
            "no-watchdog",
            "no watchdog: the TTL is shorter than the work",
            json!({"watchdog": false}),
        ),
        row(
            "unlimited-retries",
            "retry forever",
            json!({"retry": {"max_attempts": null, "base_ms": 50, "cap_ms": 200, "jitter": 1.0}}),
        ),
        row(
            "plain-pexpire",
            "the watchdog extends with a plain PEXPIRE",
            json!({"extend": "plain_pexpire"}),
        ),
        row(
            "get-then-del",
            "release by GET, then DEL if the value is ours",
            json!({"release": "get_then_del"}),
        ),
        row(
            "watchdog-not-cancelled",
            "the watchdog keeps renewing after the release",
            json!({"cancel_watchdog_on_release": false}),
        ),
        row(
            "unchecked-validity",
            "work starts even when the grant's validity is used up",
            json!({"check_validity": false}),
        ),
        row(
            "wait-1",
            "WAIT 1 replica (100 ms) before using the lock",
            json!({"wait_replicas": {"replicas": 1, "timeout_ms": 100}}),
        ),
        Row {
            lock: Lock::Redlock5,
            ..row(
                "redlock-5",
                "Redlock over 5 primaries, drift factor 0.01",
                json!({"redlock": {}}),
            )
        },
        Row {
            lock: Lock::Redlock5,
            ..row(
                "redlock-5-no-drift",
                "Redlock over 5 primaries, drift factor 0",
                json!({"redlock": {}, "drift_factor": 0.0}),
            )
        },
        Row {
            fencing: true,
            ..row(
                "fencing",
                "the safe recipe with fencing tokens the resource checks",
                json!({"fencing": true}),
            )
        },
    ]
}

/// The columns: one class of faults each.
pub fn columns() -> Vec<Column> {
    let c = |name, what| Column { name, what };
    vec![
        c(
            "failover",
            "the primary crashes, the lagging replica is promoted",
        ),
        c(
            "client-crash",
            "a client dies, between any two of its commands",
        ),
        c("pause", "a client freezes for 1.5 s (past the TTL)"),
        c("node-clock", "a node's clock jumps 2 s forward"),
        c("client-clock", "a client's clock jumps 2 s forward or back"),
        c("restart", "a node restarts, with or without its data"),
        c("partition", "one party cut off from the others for 1.5 s"),
    ]
}

/// The fault space of column `col` for a lock of kind `lock`, or `None` when the class does
/// not apply (no replica to promote under Redlock).
fn space(col: &str, lock: Lock) -> Option<Value> {
    let nodes: Vec<&str> = match lock {
        Lock::Replicated => vec!["primary"],
        Lock::Redlock5 => vec!["redis-1", "redis-2", "redis-3"],
    };
    let kinds = match col {
        "failover" if lock == Lock::Replicated => json!([
            {"crash": {"nodes": ["primary"]}},
            {"promote": {"nodes": ["replica-1"]}}
        ]),
        "failover" => return None,
        "client-crash" => json!([{"crash_client": {"clients": ["A", "B"]}}]),
        "pause" => json!([{"pause_client": {"clients": ["A", "B"], "for_ms": [1500, 1500]}}]),
        "node-clock" => {
            json!([{"clock_jump": {"targets": nodes, "by_ms": [2000, 2000]}}])
        }
        "client-clock" => {
            json!([{"clock_jump": {"targets": ["A", "B"], "by_ms": [-2000, 2000]}}])
        }
        "restart" => json!([{"restart": {"nodes": nodes}}]),
        "partition" => {
            let mut parties = vec!["A", "B"];
            parties.extend(&nodes);
            json!([{"partition": {"parties": parties, "for_ms": [1500, 1500]}}])
        }
        _ => return None,
    };
    Some(json!({"max_faults": 2, "window_ms": [0, 1500], "kinds": kinds}))
}

/// The scenario of one cell, `None` when the column does not apply to the row, or why it
/// does not validate (a mistake in the matrix's own definitions).
pub fn cell_scenario(row: &Row, col: &Column) -> Result<Option<Scenario>, String> {
    let Some(space) = space(col.name, row.lock) else {
        return Ok(None);
    };
    let topology = match row.lock {
        Lock::Replicated => json!({"replicated": {"replicas": 1, "replication_lag_ms": 50}}),
        Lock::Redlock5 => json!({"redlock": {"instances": 5}}),
    };
    let mut recipe = json!({
        "ttl_ms": 1000,
        "retry": {"max_attempts": 40, "base_ms": 50, "cap_ms": 200, "jitter": 1.0}
    });
    if let (Some(r), Some(fields)) = (recipe.as_object_mut(), row.recipe.as_object()) {
        for (k, v) in fields {
            r.insert(k.clone(), v.clone());
        }
    }
    let client = |name: &str, start: u64| json!({"name": name, "start_ms": start, "work_ms": {"fixed_ms": 1500}});
    let v = json!({
        "name": format!("matrix-{}-{}", row.name, col.name),
        "description": format!("Safety matrix cell: {} ({}) under {} ({}).", row.name, row.what, col.name, col.what),
        "seed": 1,
        "duration_ms": 8000,
        "topology": topology,
        "network": {"latency": {"fixed_ms": 5}},
        "clients": [client("A", 0), client("B", 100)],
        "resource": {"key": "lock:matrix", "checks_fencing": row.fencing},
        "recipe": recipe,
        "checker": {"max_attempts": 40, "max_commands": 400, "liveness_bound_ms": 3000},
        "fault_space": space,
        "backends": ["sim"],
        "expect": {"unsafe_writes": "holds"},
    });
    Scenario::parse(&v.to_string(), Path::new("matrix.json"))
        .map(Some)
        .map_err(|e| format!("{} × {}: {e}", row.name, col.name))
}

/// One cell's result.
#[derive(Debug, Clone)]
pub enum Cell {
    /// The class does not apply to the row.
    NotApplicable,
    /// The search ran.
    Searched(Box<ExhaustiveReport>),
    /// The cell's scenario could not be built or searched (a bug in the matrix's own
    /// definitions).
    Failed(String),
}

/// Searches every cell with up to `max_faults` faults on `jobs` threads; `progress` is told
/// after each cell (cells done, cells in all).
pub fn matrix(
    max_faults: usize,
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<Vec<Cell>>, ExploreError> {
    if jobs == 0 {
        return Err(ExploreError::NoJobs);
    }
    let (rows, cols) = (rows(), columns());
    let total = rows.len() * cols.len();
    let quiet = |_: Progress| {};
    let mut done = 0;
    let mut out = Vec::new();
    for row in &rows {
        let mut cells = Vec::new();
        for col in &cols {
            let cell = match cell_scenario(row, col) {
                Ok(None) => Cell::NotApplicable,
                Err(e) => Cell::Failed(e),
                Ok(Some(s)) => {
                    let options = Options {
                        max_faults,
                        properties: row.judged(),
                        jobs,
                    };
                    match exhaustive(&s, &options, &quiet) {
                        Ok(r) => Cell::Searched(Box::new(r)),
                        Err(e) => Cell::Failed(e.to_string()),
                    }
                }
            };
            cells.push(cell);
            done += 1;
            progress(done, total);
        }
        out.push(cells);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_that_applies_builds_a_valid_scenario() {
        for row in rows() {
            for col in columns() {
                let applies = space(col.name, row.lock).is_some();
                let built = cell_scenario(&row, &col).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(applies, built.is_some(), "{} × {}", row.name, col.name);
            }
        }
    }
}
