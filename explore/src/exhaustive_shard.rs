//! Exhaustive search on more than one machine: shard K of N searches the branches it
//! [`takes`] of every level ([`search_shard`]), writes them as a JSON-lines file, and the
//! files of every shard merge into exactly what one `explore --exhaustive` reports.
//!
//! A shard file has one header line (format, `"search": "exhaustive"`, the scenario, its
//! path as given, the SHA-256 of it and its data files, K/N, K faults at most, the properties
//! searched for, the fault kinds, the window, the concrete choices and the boundaries), then
//! one line per level searched from level 0 (the fault-free run, the same in every shard) up
//! to the first level where one of the shard's branches fails, each with the level's counts
//! over the shard's branches, one row per branch (`[branch, schedules, states, no_ops,
//! pruned, inconclusive]`) and the failure if any (its branch, what it violates, its faults,
//! whether its scenario replays it), then a closing line with the shard's run time.
//!
//! The rows are what makes the merge exact: one search counts every branch of a failing level
//! up to the lowest failing one, and that branch may be another shard's. Each shard stopped
//! at its own lowest failing branch, which is at or above the lowest of all, so every shard
//! has the rows the cut needs ([`combine`]).

use crate::exhaustive::{combine, takes, Combined, Failure, Level, LevelPart, Part, Row};
use crate::shard::{malformed, read_header, MergeError, Shard, FORMAT};
use checker::Property;
use scenario::{FaultAction, Scenario};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The header's `search` in an exhaustive shard file.
pub const SEARCH: &str = "exhaustive";

/// The first line of an exhaustive shard file: which search this shard belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The file format ([`FORMAT`]).
    pub locksim_shard: u32,
    /// [`SEARCH`]: tells this file from a seed range's.
    pub search: String,
    /// The scenario's `name`.
    pub scenario: String,
    /// The scenario file as given to `locksim explore` (`merge --shrink` reads it).
    pub file: String,
    /// [`crate::shard::content_hash`] of the scenario.
    pub sha256: String,
    /// K.
    pub shard: u64,
    /// N.
    pub shards: u64,
    /// The most faults a schedule places (`--max-faults`).
    pub max_faults: usize,
    /// The properties searched for.
    pub properties: Vec<Property>,
    /// The fault space's kinds, by name, in the file's order.
    pub kinds: Vec<String>,
    /// The fault space's window.
    pub window_ms: [u64; 2],
    /// The concrete faults a schedule may place at each boundary (the grid).
    pub choices: Vec<FaultAction>,
    /// Boundaries of the fault-free run inside the window (0 when the fault-free run fails).
    pub boundaries: usize,
}

impl Header {
    /// The header of `part`, searched in `scenario` loaded from `file`.
    pub fn new(scenario: &Scenario, file: &Path, sha256: String, part: &Part) -> Header {
        let space = scenario.fault_space.as_ref();
        Header {
            locksim_shard: FORMAT,
            search: SEARCH.to_string(),
            scenario: scenario.name.clone(),
            file: file.display().to_string(),
            sha256,
            shard: part.shard.index,
            shards: part.shard.of,
            max_faults: part.max_faults,
            properties: part.properties.clone(),
            kinds: space.map_or_else(Vec::new, |s| {
                s.kinds.iter().map(|k| k.name().to_string()).collect()
            }),
            window_ms: space.map_or([0, 0], |s| s.window_ms),
            choices: part.choices.clone(),
            boundaries: part.boundaries,
        }
    }
}

/// A level line: what the shard searched of one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelLine {
    /// Faults per schedule.
    pub faults: usize,
    /// The level's branches in all shards.
    pub branches: usize,
    /// Schedules over the rows.
    pub schedules: u64,
    /// Distinct states over the rows.
    pub states: u64,
    /// No-op faults over the rows.
    pub no_ops: u64,
    /// Pruned schedules over the rows.
    pub pruned: u64,
    /// Inconclusive schedules over the rows.
    pub inconclusive: u64,
    /// One row per branch of the shard searched.
    pub rows: Vec<Row>,
    /// The shard's lowest failing branch of the level.
    pub failure: Option<Failure>,
}

impl LevelLine {
    fn new(l: &LevelPart) -> LevelLine {
        let t = l.counts(usize::MAX);
        LevelLine {
            faults: l.faults,
            branches: l.branches,
            schedules: t.schedules,
            states: t.states,
            no_ops: t.no_ops,
            pruned: t.pruned,
            inconclusive: t.inconclusive,
            rows: l.rows.clone(),
            failure: l.failure.clone(),
        }
    }

    fn totals(&self) -> Level {
        Level {
            faults: self.faults,
            schedules: self.schedules,
            states: self.states,
            no_ops: self.no_ops,
            pruned: self.pruned,
            inconclusive: self.inconclusive,
        }
    }
}

/// The closing line: the shard finished.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Closing {
    /// Wall-clock seconds the shard took (informative).
    pub secs: f64,
    /// Worker threads it used.
    pub jobs: usize,
}

/// An exhaustive shard file, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its first line.
    pub header: Header,
    /// Its level lines, as the shard's part of the search.
    pub part: Part,
    /// Its last line.
    pub closing: Closing,
}

/// Writes a shard file: the header, a line per level, the closing line.
pub fn write_shard(
    mut w: impl Write,
    header: &Header,
    part: &Part,
    closing: Closing,
) -> std::io::Result<()> {
    serde_json::to_writer(&mut w, header)?;
    w.write_all(b"\n")?;
    for l in &part.levels {
        serde_json::to_writer(&mut w, &LevelLine::new(l))?;
        w.write_all(b"\n")?;
    }
    serde_json::to_writer(&mut w, &closing)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// How many of branches `0..=last` (with `choices` per stop) `shard` takes.
fn taken_upto(shard: Shard, last: usize, choices: usize) -> u64 {
    let n = shard.of;
    let mut count = 0;
    for stop in 0..=last / choices {
        let top = if stop == last / choices {
            last % choices
        } else {
            choices - 1
        } as u64;
        // The first choice c with (stop + c) % N == K - 1.
        let r = (shard.index - 1 + n - (stop as u64) % n) % n;
        if r <= top {
            count += (top - r) / n + 1;
        }
    }
    count
}

/// Parses and checks an exhaustive shard file's text (read from `path`): a header whose
/// shard and search make sense, level lines from 0 up that could have come from that shard,
/// and the closing line.
pub fn parse(path: &Path, text: &str) -> Result<ShardFile, MergeError> {
    let bad = |line: usize, reason: String| malformed(path, line, &reason);
    let (h, lines) = read_header(path, text, |h: &Header| h.locksim_shard)?;
    if h.search != SEARCH {
        return Err(bad(
            1,
            format!("`search` is `{}`; this locksim knows `{SEARCH}`", h.search),
        ));
    }
    let shard =
        Shard::new(h.shard, h.shards).map_err(|e| bad(1, format!("`shard`/`shards`: {e}")))?;
    if h.properties.is_empty() {
        return Err(bad(
            1,
            "`properties` is empty: nothing was searched for".into(),
        ));
    }
    let [w0, w1] = h.window_ms;
    if w0 > w1 || h.boundaries as u64 > w1 - w0 + 1 {
        return Err(bad(
            1,
            format!(
                "`boundaries` {} in `window_ms` [{w0}, {w1}]: at most one per millisecond of the window",
                h.boundaries
            ),
        ));
    }
    let branches = h.boundaries * h.choices.len();
    let mut levels: Vec<LevelPart> = Vec::new();
    let mut closing = None;
    for (i, text) in lines.iter().enumerate().skip(1) {
        let n = i + 1;
        if closing.is_some() {
            return Err(bad(n, "a line after the closing line".into()));
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| bad(n, format!("the line does not parse: {e}")))?;
        if value.get("secs").is_some() {
            let c: Closing = serde_json::from_value(value)
                .map_err(|e| bad(n, format!("the closing line does not parse: {e}")))?;
            closing = Some(c);
            continue;
        }
        let l: LevelLine = serde_json::from_value(value)
            .map_err(|e| bad(n, format!("the level line does not parse: {e}")))?;
        let k = levels.len();
        check_level(&h, shard, k, branches, &l).map_err(|reason| bad(n, reason))?;
        if let Some(prev) = levels.last() {
            if prev.failure.is_some() {
                return Err(bad(
                    n,
                    format!(
                        "level {k} after level {} failed (a shard stops at its first failing level)",
                        k - 1
                    ),
                ));
            }
        }
        levels.push(LevelPart {
            faults: l.faults,
            branches: l.branches,
            rows: l.rows,
            failure: l.failure,
        });
    }
    let Some(closing) = closing else {
        return Err(bad(
            lines.len() + 1,
            "no closing line after the levels (did the shard finish?)".into(),
        ));
    };
    let end = lines.len();
    let Some(last) = levels.last() else {
        return Err(bad(
            end,
            "no level line: not even the fault-free run's".into(),
        ));
    };
    let failed = last.failure.is_some();
    let deepest = levels.len() - 1;
    let complete = if deepest == 0 && failed {
        if h.boundaries != 0 {
            return Err(bad(
                1,
                "the fault-free run fails, so `boundaries` must be 0 (they are not looked for)"
                    .into(),
            ));
        }
        true
    } else {
        failed || h.choices.is_empty() || deepest == h.max_faults
    };
    if !complete {
        return Err(bad(
            end,
            format!(
                "the levels stop at {deepest} faults without a failure, before `max_faults` {}",
                h.max_faults
            ),
        ));
    }
    if h.choices.is_empty() && deepest > 0 {
        return Err(bad(1, "levels with faults but no `choices`".into()));
    }
    Ok(ShardFile {
        path: path.to_path_buf(),
        part: Part {
            shard,
            max_faults: h.max_faults,
            properties: h.properties.clone(),
            choices: h.choices.clone(),
            boundaries: h.boundaries,
            levels,
        },
        header: h,
        closing,
    })
}

/// Whether `l` could be shard `shard`'s line of level `k`; why not.
fn check_level(
    h: &Header,
    shard: Shard,
    k: usize,
    branches: usize,
    l: &LevelLine,
) -> Result<(), String> {
    if l.faults != k {
        return Err(format!(
            "`faults` is {}, but level {k} comes next (levels go from 0 up, one line each)",
            l.faults
        ));
    }
    if k > h.max_faults {
        return Err(format!("level {k} is past `max_faults` {}", h.max_faults));
    }
    let mut sum = Level {
        faults: k,
        ..Level::default()
    };
    for r in &l.rows {
        sum.schedules += r.1;
        sum.states += r.2;
        sum.no_ops += r.3;
        sum.pruned += r.4;
        sum.inconclusive += r.5;
        if r.5 > r.1 {
            return Err(format!(
                "`rows`: branch {} has more inconclusive schedules than schedules",
                r.0
            ));
        }
    }
    if sum != l.totals() {
        return Err(format!(
            "the level's counts ({} schedules, {} states, {} no-ops, {} pruned, {} inconclusive) are not the sum of its rows ({}, {}, {}, {}, {})",
            l.schedules, l.states, l.no_ops, l.pruned, l.inconclusive,
            sum.schedules, sum.states, sum.no_ops, sum.pruned, sum.inconclusive
        ));
    }
    if let Some(f) = &l.failure {
        if f.violated.is_empty() || f.violated.iter().any(|p| !h.properties.contains(p)) {
            return Err(
                "`failure`: `violated` must name some of the properties searched for".into(),
            );
        }
        if f.faults.len() != k {
            return Err(format!("`failure`: {} faults at level {k}", f.faults.len()));
        }
        let [w0, w1] = h.window_ms;
        if let Some(bad) = f
            .faults
            .iter()
            .find(|x| x.at_ms < w0 || x.at_ms > w1 || !h.choices.contains(&x.action))
        {
            return Err(format!(
                "`failure`: the fault at {} ms ({}) is not one of `choices` inside `window_ms`",
                bad.at_ms,
                bad.action.describe()
            ));
        }
    }
    if k == 0 {
        // The fault-free run: one schedule, the same in every shard.
        let row_ok = matches!(l.rows.as_slice(), [Row(0, 1, 1, 0, 0, i)] if *i <= 1);
        if l.branches != 1 || !row_ok || l.failure.as_ref().is_some_and(|f| f.branch != 0) {
            return Err(
                "level 0 is the fault-free run: 1 branch, one row [0, 1, 1, 0, 0, 0 or 1]".into(),
            );
        }
        return Ok(());
    }
    if l.branches != branches {
        return Err(format!(
            "`branches` is {}, but {} boundaries × {} choices are {branches}",
            l.branches,
            h.boundaries,
            h.choices.len()
        ));
    }
    let choices = h.choices.len();
    if let Some(w) = l.rows.windows(2).find(|w| w[0].0 >= w[1].0) {
        return Err(format!(
            "`rows`: branch {} after branch {}: not in increasing order",
            w[1].0, w[0].0
        ));
    }
    if let Some(r) = l
        .rows
        .iter()
        .find(|r| r.0 >= branches || !takes(shard, r.0, choices))
    {
        return Err(format!(
            "`rows`: branch {} is not one of shard {shard}'s ({} branches, (stop + choice) % {} = {})",
            r.0,
            branches,
            shard.of,
            shard.index - 1
        ));
    }
    let last = match &l.failure {
        Some(f) => {
            if l.rows.last().map(|r| r.0) != Some(f.branch) {
                return Err(format!(
                    "`failure`: branch {} is not the last row's (a shard stops at its first failing branch)",
                    f.branch
                ));
            }
            Some(f.branch)
        }
        None => branches.checked_sub(1),
    };
    let want = last.map_or(0, |last| taken_upto(shard, last, choices));
    if l.rows.len() as u64 != want {
        return Err(format!(
            "`rows` has {} branches, but shard {shard} has {want} of the level's {}",
            l.rows.len(),
            match &l.failure {
                Some(f) => format!("branches up to its failing branch {}", f.branch),
                None => format!("{branches} branches"),
            }
        ));
    }
    Ok(())
}

/// Every shard of one exhaustive search, merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// Shard 1's header.
    pub header: Header,
    /// What one unsharded search reports.
    pub combined: Combined,
    /// The shards' run times added up, in seconds.
    pub secs_total: f64,
    /// The longest shard's run time, in seconds.
    pub secs_longest: f64,
}

/// Where two lists first differ, each side shown.
fn first_difference<T: PartialEq>(
    a: &[T],
    b: &[T],
    show: impl Fn(&T) -> String,
) -> Option<(String, String)> {
    if let Some(i) = (0..a.len().min(b.len())).find(|i| a[*i] != b[*i]) {
        return Some((format!("{} at entry {}", show(&a[i]), i + 1), show(&b[i])));
    }
    (a.len() != b.len()).then(|| (format!("{} entries", a.len()), format!("{}", b.len())))
}

/// Merges the shards of one exhaustive search; refuses shards of different searches (another
/// scenario, content, `--max-faults`, `--property`, grid of choices, window or N, or a
/// fault-free run that came out otherwise), a shard given twice and a missing shard. The
/// files may come in any order.
pub fn merge(files: &[ShardFile]) -> Result<Merged, MergeError> {
    let Some(reference) = files.first() else {
        return Err(MergeError::NoFiles);
    };
    let r = &reference.header;
    let mut by_shard: BTreeMap<u64, &ShardFile> = BTreeMap::new();
    for f in files {
        let h = &f.header;
        let names = |ps: &[Property]| ps.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ");
        let level0 = |f: &ShardFile| {
            f.part
                .levels
                .first()
                .map(|l| serde_json::to_string(&LevelLine::new(l)).unwrap_or_default())
                .unwrap_or_default()
        };
        let plain = |a: String, b: String| (a != b).then_some((a, b));
        let fields: [(&'static str, Option<(String, String)>); 10] = [
            ("scenario", plain(h.scenario.clone(), r.scenario.clone())),
            (
                "max_faults",
                plain(h.max_faults.to_string(), r.max_faults.to_string()),
            ),
            (
                "properties",
                plain(names(&h.properties), names(&r.properties)),
            ),
            (
                "choices",
                first_difference(&h.choices, &r.choices, |c| format!("`{}`", c.describe())),
            ),
            ("kinds", plain(h.kinds.join(", "), r.kinds.join(", "))),
            (
                "window_ms",
                plain(format!("{:?}", h.window_ms), format!("{:?}", r.window_ms)),
            ),
            ("sha256", plain(h.sha256.clone(), r.sha256.clone())),
            ("shards", plain(h.shards.to_string(), r.shards.to_string())),
            (
                "boundaries",
                plain(h.boundaries.to_string(), r.boundaries.to_string()),
            ),
            (
                "level 0 (the fault-free run)",
                plain(level0(f), level0(reference)),
            ),
        ];
        if let Some((field, Some((this, that)))) = fields.into_iter().find(|(_, d)| d.is_some()) {
            return Err(MergeError::Mismatch {
                path: f.path.clone(),
                other: reference.path.clone(),
                field,
                this: checker::quote::clip(&this),
                that: checker::quote::clip(&that),
            });
        }
        if let Some(other) = by_shard.insert(h.shard, f) {
            return Err(MergeError::Duplicate {
                path: f.path.clone(),
                other: other.path.clone(),
                shard: f.part.shard,
            });
        }
    }
    let missing: Vec<u64> = (1..=r.shards)
        .filter(|k| !by_shard.contains_key(k))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            missing,
            of: r.shards,
            given: files.iter().map(|f| f.path.clone()).collect(),
        });
    }
    let shards: Vec<&ShardFile> = by_shard.into_values().collect();
    let parts: Vec<&Part> = shards.iter().map(|f| &f.part).collect();
    let secs = shards.iter().map(|f| f.closing.secs);
    Ok(Merged {
        header: shards.first().map_or(r, |f| &f.header).clone(),
        combined: combine(&parts),
        secs_total: secs.clone().sum(),
        secs_longest: secs.fold(0.0, f64::max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_upto_counts_what_takes_takes() {
        for of in 1..6u64 {
            for index in 1..=of {
                let shard = Shard { index, of };
                for choices in 1..7usize {
                    for last in 0..40usize {
                        let by_hand =
                            (0..=last).filter(|b| takes(shard, *b, choices)).count() as u64;
                        assert_eq!(taken_upto(shard, last, choices), by_hand);
                    }
                }
            }
        }
    }

    #[test]
    fn every_branch_has_exactly_one_shard() {
        for of in 1..6u64 {
            for choices in 1..7usize {
                for b in 0..50usize {
                    let owners = (1..=of)
                        .filter(|k| takes(Shard { index: *k, of }, b, choices))
                        .count();
                    assert_eq!(owners, 1);
                }
            }
        }
    }
}
