//! More than one machine: a seed range split into N shards, each shard's results as a small
//! JSON-lines file, and the shards merged back into the report one run would have made.
//!
//! Shard K of N takes the seeds of `first .. first + count` whose index in the range is
//! K − 1 modulo N (seed `first + i` for `i % N == K − 1`), so neighbouring seeds, which cost
//! about the same, land on different shards and every shard gets about `count / N` of them.
//! The simulator is deterministic, so a shard reruns to the same file on any machine.
//!
//! A shard file has two lines: a header (format version, scenario name, its path as given,
//! the SHA-256 of the scenario and its data files, the whole range and K/N), then the
//! shard's [`Report`] with its run time. That is all a merge needs: counts add up, and the
//! smallest failing seeds of the union are among the smallest of each shard
//! ([`Report::combine`]).
//!
//! An exhaustive search shards too ([`crate::exhaustive_shard`]); its files say
//! `"search": "exhaustive"` in their header, and [`read_any`] and [`merge_any`] take either
//! kind (but not both at once).

use crate::{Report, FAILING_LISTED};
use scenario::Scenario;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use thiserror::Error;

/// The shard file format this build writes and reads (the header's `locksim_shard`).
pub const FORMAT: u32 = 1;

/// Shard `index` of `of` (1-based): see the module documentation for the seeds it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shard {
    /// K, from 1 to N.
    pub index: u64,
    /// N, at least 1.
    pub of: u64,
}

/// Why `K/N` is not a shard.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShardError {
    /// Not two numbers around a slash.
    #[error("`{0}` is not K/N: write the shard and the number of shards, such as 2/4")]
    Syntax(String),
    /// N is 0.
    #[error("{0}/0: N, the number of shards, must be at least 1")]
    NoShards(u64),
    /// K is 0 or above N.
    #[error("{index}/{of}: K must be from 1 to {of} (shards count from 1)")]
    OutOfRange {
        /// K.
        index: u64,
        /// N.
        of: u64,
    },
}

impl Shard {
    /// The whole range: shard 1 of 1.
    pub const WHOLE: Shard = Shard { index: 1, of: 1 };

    /// Shard `index` of `of`, refused unless `1 <= index <= of`.
    pub fn new(index: u64, of: u64) -> Result<Shard, ShardError> {
        if of == 0 {
            return Err(ShardError::NoShards(index));
        }
        if index == 0 || index > of {
            return Err(ShardError::OutOfRange { index, of });
        }
        Ok(Shard { index, of })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (k, n) = s.trim().split_once('/').ok_or_else(syntax)?;
        let num = |t: &str| {
            let t = t.trim();
            // Digits only: no sign, no `+3`.
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            t.parse::<u64>().map_err(|_| syntax())
        };
        Shard::new(num(k)?, num(n)?)
    }
}

/// The seeds one run takes: those of `first .. first + count` that `shard` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedRange {
    /// The range's first seed.
    pub first: u64,
    /// How many seeds the whole range has (all shards together).
    pub count: u64,
    /// Which of them this run takes.
    pub shard: Shard,
}

impl SeedRange {
    /// How many seeds the shard takes: `count / N`, or one more for the first `count % N`
    /// shards.
    pub fn len(&self) -> u64 {
        let r = self.shard.index - 1;
        if r >= self.count {
            0
        } else {
            (self.count - 1 - r) / self.shard.of + 1
        }
    }

    /// Whether the shard takes no seed at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard's `i`-th seed (`i < len()`).
    pub fn seed(&self, i: u64) -> u64 {
        self.first + (self.shard.index - 1) + i * self.shard.of
    }

    /// Whether the shard takes `seed`.
    pub fn contains(&self, seed: u64) -> bool {
        seed >= self.first
            && seed - self.first < self.count
            && (seed - self.first) % self.shard.of == self.shard.index - 1
    }
}

/// The first line of a shard file: which run this shard belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The file format ([`FORMAT`]).
    pub locksim_shard: u32,
    /// The scenario's `name`.
    pub scenario: String,
    /// The scenario file as given to `locksim explore` (the replay commands name it).
    pub file: String,
    /// [`content_hash`] of the scenario.
    pub sha256: String,
    /// The whole range's first seed.
    pub first: u64,
    /// How many seeds the whole range has.
    pub seeds: u64,
    /// K.
    pub shard: u64,
    /// N.
    pub shards: u64,
}

impl Header {
    /// The header of shard `range.shard` of `range`, for `scenario` loaded from `file`.
    pub fn new(scenario: &Scenario, file: &Path, sha256: String, range: SeedRange) -> Header {
        Header {
            locksim_shard: FORMAT,
            scenario: scenario.name.clone(),
            file: file.display().to_string(),
            sha256,
            first: range.first,
            seeds: range.count,
            shard: range.shard.index,
            shards: range.shard.of,
        }
    }
}

/// The second line of a shard file: what the shard's seeds found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    /// The shard's report (over its own seeds only).
    pub report: Report,
    /// Wall-clock seconds the shard took (informative: the merge prints their sum and
    /// maximum; nothing is judged on it).
    pub secs: f64,
    /// Worker threads it used.
    pub jobs: usize,
}

/// A shard file, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its first line.
    pub header: Header,
    /// Its second line.
    pub results: Results,
}

/// Why shard files cannot be read or merged. Every error names the file.
#[derive(Debug, Error)]
pub enum MergeError {
    /// The scenario or one of its data files cannot be read for hashing.
    #[error("{}: cannot read it to hash it: {source}", path.display())]
    Hash {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A shard file cannot be read.
    #[error("{}: cannot read the shard file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A shard file is not what `locksim explore --shard` writes.
    #[error("{}:{line}: not a shard file of `locksim explore --shard`: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No shard file given.
    #[error("no shard file given")]
    NoFiles,
    /// A shard of a seed range beside a shard of an exhaustive search.
    #[error(
        "{}: a shard of {this}, but {} is a shard of {that}: merge the shards of one run",
        path.display(),
        other.display()
    )]
    Mixed {
        /// The file of the other kind.
        path: PathBuf,
        /// The first file, which it was compared with.
        other: PathBuf,
        /// What `path` is a shard of.
        this: &'static str,
        /// What `other` is a shard of.
        that: &'static str,
    },
    /// A shard of a different run (another scenario, scenario content, range or N).
    #[error(
        "{}: not a shard of the same run as {}: its `{field}` is {this}, there it is {that}",
        path.display(),
        other.display()
    )]
    Mismatch {
        /// The file that differs.
        path: PathBuf,
        /// The first file, which it was compared with.
        other: PathBuf,
        /// The header field.
        field: &'static str,
        /// Its value in `path`.
        this: String,
        /// Its value in `other`.
        that: String,
    },
    /// The same shard given twice.
    #[error("{}: shard {shard} is given twice (also {})", path.display(), other.display())]
    Duplicate {
        /// The second file holding it.
        path: PathBuf,
        /// The first.
        other: PathBuf,
        /// The shard.
        shard: Shard,
    },
    /// Shards missing.
    #[error(
        "shard{} {} of {of} {} missing (given: {}): merge needs every shard of the run",
        if missing.len() == 1 { "" } else { "s" },
        list(missing),
        if missing.len() == 1 { "is" } else { "are" },
        given.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Missing {
        /// The shards not given.
        missing: Vec<u64>,
        /// N.
        of: u64,
        /// The files given.
        given: Vec<PathBuf>,
    },
}

fn list(ks: &[u64]) -> String {
    ks.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// The SHA-256 (hex) of the scenario file `file` followed by every data file `scenario` (as
/// loaded from it) read, in field order: what `cat FILE DATA... | sha256sum` prints. Two
/// shards with the same hash ran the same scenario.
pub fn content_hash(file: &Path, scenario: &Scenario) -> Result<String, MergeError> {
    let mut h = Sha256::new();
    for path in std::iter::once(file.to_path_buf()).chain(scenario.data_files()) {
        let bytes = std::fs::read(&path).map_err(|source| MergeError::Hash {
            path: path.clone(),
            source,
        })?;
        h.update(&bytes);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a shard file: the header line, then the results line.
pub fn write_shard(mut w: impl Write, header: &Header, results: &Results) -> std::io::Result<()> {
    serde_json::to_writer(&mut w, header)?;
    w.write_all(b"\n")?;
    serde_json::to_writer(&mut w, results)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// Reads and checks one shard file: two JSON lines, a header whose shard and range make
/// sense, and a report that could have come from that shard's seeds.
pub fn read_shard(path: &Path) -> Result<ShardFile, MergeError> {
    parse_seeds(path, &read_text(path)?)
}

/// A shard file's text.
fn read_text(path: &Path) -> Result<String, MergeError> {
    let bytes = std::fs::read(path).map_err(|source| MergeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| MergeError::Malformed {
        path: path.to_path_buf(),
        line: 1,
        reason: "not UTF-8 text".into(),
    })
}

/// A shard file of either kind, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyShard {
    /// A shard of a seed range (`explore --shard`).
    Seeds(ShardFile),
    /// A shard of an exhaustive search (`explore --exhaustive --shard`).
    Exhaustive(crate::exhaustive_shard::ShardFile),
}

impl AnyShard {
    /// Where it was read from.
    pub fn path(&self) -> &Path {
        match self {
            AnyShard::Seeds(f) => &f.path,
            AnyShard::Exhaustive(f) => &f.path,
        }
    }

    /// What it is a shard of, for messages.
    fn what(&self) -> &'static str {
        match self {
            AnyShard::Seeds(_) => "a seed range (`explore --shard`)",
            AnyShard::Exhaustive(_) => "an exhaustive search (`explore --exhaustive --shard`)",
        }
    }
}

/// Reads and checks a shard file of either kind: an exhaustive search's when its header has
/// a `search` field, else a seed range's.
pub fn read_any(path: &Path) -> Result<AnyShard, MergeError> {
    let text = read_text(path)?;
    let exhaustive = (text.lines().next())
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .is_some_and(|v| v.get("search").is_some());
    if exhaustive {
        crate::exhaustive_shard::parse(path, &text).map(AnyShard::Exhaustive)
    } else {
        parse_seeds(path, &text).map(AnyShard::Seeds)
    }
}

/// Every shard of one run of either kind, merged.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyMerged {
    /// A seed range's shards.
    Seeds(Merged),
    /// An exhaustive search's shards.
    Exhaustive(crate::exhaustive_shard::Merged),
}

/// Merges shard files of one kind ([`merge`] or [`crate::exhaustive_shard::merge`]);
/// refuses shards of both kinds at once, naming the first file of the other kind.
pub fn merge_any(files: Vec<AnyShard>) -> Result<AnyMerged, MergeError> {
    let Some(first) = files.first() else {
        return Err(MergeError::NoFiles);
    };
    let mut seeds = Vec::new();
    let mut exhaustive = Vec::new();
    for f in &files {
        if std::mem::discriminant(f) != std::mem::discriminant(first) {
            return Err(MergeError::Mixed {
                path: f.path().to_path_buf(),
                other: first.path().to_path_buf(),
                this: f.what(),
                that: first.what(),
            });
        }
    }
    for f in files {
        match f {
            AnyShard::Seeds(s) => seeds.push(s),
            AnyShard::Exhaustive(x) => exhaustive.push(x),
        }
    }
    if exhaustive.is_empty() {
        merge(&seeds).map(AnyMerged::Seeds)
    } else {
        crate::exhaustive_shard::merge(&exhaustive).map(AnyMerged::Exhaustive)
    }
}

/// Parses and checks a seed range's shard file's text (read from `path`).
/// Line `line` of shard file `path` is not what a shard writes, for `reason`.
pub(crate) fn malformed(path: &Path, line: usize, reason: &str) -> MergeError {
    MergeError::Malformed {
        path: path.to_path_buf(),
        line,
        reason: checker::quote::clip(reason),
    }
}

/// The lines of shard file `path` (its text `text`) and its first line parsed as a header of
/// type `H`, refused unless `format` reads this locksim's [`FORMAT`] in it: what every kind
/// of shard file starts with.
pub(crate) fn read_header<'t, H: serde::de::DeserializeOwned>(
    path: &Path,
    text: &'t str,
    format: impl Fn(&H) -> u32,
) -> Result<(H, Vec<&'t str>), MergeError> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(first) = lines.first() else {
        return Err(malformed(path, 1, "the file is empty"));
    };
    let header: H = serde_json::from_str(first)
        .map_err(|e| malformed(path, 1, &format!("the header line does not parse: {e}")))?;
    let found = format(&header);
    if found != FORMAT {
        let reason = format!("format {found} (this locksim reads format {FORMAT})");
        return Err(malformed(path, 1, &reason));
    }
    Ok((header, lines))
}

fn parse_seeds(path: &Path, text: &str) -> Result<ShardFile, MergeError> {
    let bad = |line: usize, reason: String| malformed(path, line, &reason);
    let (header, lines) = read_header(path, text, |h: &Header| h.locksim_shard)?;
    let shard = Shard::new(header.shard, header.shards)
        .map_err(|e| bad(1, format!("`shard`/`shards`: {e}")))?;
    if header.seeds == 0 || header.first.checked_add(header.seeds - 1).is_none() {
        return Err(bad(
            1,
            format!(
                "`first` {} and `seeds` {}: not a seed range",
                header.first, header.seeds
            ),
        ));
    }
    let range = SeedRange {
        first: header.first,
        count: header.seeds,
        shard,
    };
    if range.is_empty() {
        return Err(bad(
            1,
            format!("shard {shard} of {} seeds has no seed", header.seeds),
        ));
    }
    let Some(second) = lines.get(1) else {
        return Err(bad(
            2,
            "no result line after the header (did the shard finish?)".into(),
        ));
    };
    let results: Results = serde_json::from_str(second)
        .map_err(|e| bad(2, format!("the result line does not parse: {e}")))?;
    if lines.len() > 2 {
        return Err(bad(3, "a line after the result line".into()));
    }
    check_report(&results.report, range).map_err(|reason| bad(2, reason))?;
    Ok(ShardFile {
        path: path.to_path_buf(),
        header,
        results,
    })
}

/// Whether `r` could be the report of `range`'s seeds; why not.
fn check_report(r: &Report, range: SeedRange) -> Result<(), String> {
    let shard = range.shard;
    let seed_of = |what: &str, seed: u64| {
        if range.contains(seed) {
            Ok(())
        } else {
            Err(format!("{what}: seed {seed} is not one of shard {shard}'s"))
        }
    };
    if r.seeds != range.len() {
        return Err(format!(
            "`seeds` is {}, but shard {shard} of {} seeds has {}",
            r.seeds,
            range.count,
            range.len()
        ));
    }
    if r.inconclusive > r.seeds {
        return Err(format!(
            "`inconclusive` {} is more than the {} seeds",
            r.inconclusive, r.seeds
        ));
    }
    for (p, n) in &r.violations {
        if *n == 0 || *n > r.seeds {
            return Err(format!("`violations`: {p} by {n} of {} seeds", r.seeds));
        }
    }
    if r.failing.len() > FAILING_LISTED {
        return Err(format!(
            "`failing` lists {} seeds, more than {FAILING_LISTED}",
            r.failing.len()
        ));
    }
    if r.failing.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err("`failing` is not in increasing seed order".into());
    }
    if r.failing.is_empty() != r.violations.is_empty() {
        return Err("`failing` and `violations` disagree on whether a seed failed".into());
    }
    let firsts: Vec<_> = r.first_violating.keys().collect();
    let violated: Vec<_> = r.violations.keys().collect();
    if firsts != violated {
        return Err("`first_violating` and `violations` name different properties".into());
    }
    for (seed, props) in &r.failing {
        seed_of("`failing`", *seed)?;
        if props.is_empty() || props.iter().any(|p| !r.violations.contains_key(p)) {
            return Err(format!(
                "`failing`: seed {seed} lists properties `violations` does not count"
            ));
        }
    }
    for seed in r.first_violating.values() {
        seed_of("`first_violating`", *seed)?;
    }
    Ok(())
}

/// Every shard of one run, merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// Shard 1's header (the scenario, its path as shard 1 was given it, the range, N).
    pub header: Header,
    /// The report one run over the whole range makes.
    pub report: Report,
    /// The shards' run times added up, in seconds.
    pub secs_total: f64,
    /// The longest shard's run time, in seconds.
    pub secs_longest: f64,
}

/// Merges the shards of one run; refuses shards of different runs (scenario name, content,
/// range, N), a shard given twice and a missing shard. The files may come in any order.
pub fn merge(files: &[ShardFile]) -> Result<Merged, MergeError> {
    let Some(reference) = files.first() else {
        return Err(MergeError::NoFiles);
    };
    let r = &reference.header;
    let mut by_shard: BTreeMap<u64, &ShardFile> = BTreeMap::new();
    for f in files {
        let h = &f.header;
        let fields: [(&'static str, String, String); 5] = [
            ("scenario", h.scenario.clone(), r.scenario.clone()),
            ("sha256", h.sha256.clone(), r.sha256.clone()),
            ("first", h.first.to_string(), r.first.to_string()),
            ("seeds", h.seeds.to_string(), r.seeds.to_string()),
            ("shards", h.shards.to_string(), r.shards.to_string()),
        ];
        if let Some((field, this, that)) = fields.into_iter().find(|(_, a, b)| a != b) {
            return Err(MergeError::Mismatch {
                path: f.path.clone(),
                other: reference.path.clone(),
                field,
                this,
                that,
            });
        }
        if let Some(other) = by_shard.insert(h.shard, f) {
            return Err(MergeError::Duplicate {
                path: f.path.clone(),
                other: other.path.clone(),
                shard: Shard {
                    index: h.shard,
                    of: h.shards,
                },
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
    let mut shards = by_shard.into_values();
    // Non-empty: shard 1 is there.
    let one = shards.next().unwrap_or(reference);
    let mut merged = Merged {
        header: one.header.clone(),
        report: one.results.report.clone(),
        secs_total: one.results.secs,
        secs_longest: one.results.secs,
    };
    for f in shards {
        merged.report = merged.report.combine(f.results.report.clone());
        merged.secs_total += f.results.secs;
        merged.secs_longest = merged.secs_longest.max(f.results.secs);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_bad_ones_say_why() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, of: 4 }));
        assert_eq!("1/1".parse::<Shard>(), Ok(Shard::WHOLE));
        assert_eq!(
            "0/4".parse::<Shard>(),
            Err(ShardError::OutOfRange { index: 0, of: 4 })
        );
        assert_eq!(
            "5/4".parse::<Shard>(),
            Err(ShardError::OutOfRange { index: 5, of: 4 })
        );
        assert_eq!("1/0".parse::<Shard>(), Err(ShardError::NoShards(1)));
        for bad in ["", "3", "a/b", "1/", "/4", "-1/4", "+1/4", "1/4/2", "1.0/4"] {
            assert!(
                matches!(bad.parse::<Shard>(), Err(ShardError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_shards_of_a_range_partition_it() {
        for count in 1..40u64 {
            for of in 1..=count.min(9) {
                let mut seen = Vec::new();
                for index in 1..=of {
                    let r = SeedRange {
                        first: 1000,
                        count,
                        shard: Shard { index, of },
                    };
                    let seeds: Vec<u64> = (0..r.len()).map(|i| r.seed(i)).collect();
                    assert!(seeds.iter().all(|s| r.contains(*s)));
                    assert!(r.len() == count / of || r.len() == count / of + 1);
                    seen.extend(seeds);
                }
                seen.sort_unstable();
                assert_eq!(seen, (1000..1000 + count).collect::<Vec<_>>());
            }
        }
        let r = SeedRange {
            first: 0,
            count: 3,
            shard: Shard { index: 4, of: 4 },
        };
        assert!(r.is_empty());
        assert!(!r.contains(3));
    }
}
