//! Empirical distributions: samples or histogram buckets from the user's own measurements,
//! read from a data file (or, for buckets, written inline) when the scenario loads and kept
//! in memory, so that drawing from them is deterministic and allocates nothing.
//!
//! The file formats are in `scenarios/README.md` ("Your own data"); parsing is in
//! [`crate::datafile`].

use crate::datafile::{self, DataFileError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The unit of the numbers in a data file or an inline histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Microseconds.
    Us,
    /// Milliseconds (the default).
    #[default]
    Ms,
    /// Seconds (what Prometheus exports).
    S,
}

impl Unit {
    /// `x` in this unit, in milliseconds.
    pub fn to_ms(self, x: f64) -> f64 {
        match self {
            Unit::Us => x / 1000.0,
            Unit::Ms => x,
            Unit::S => x * 1000.0,
        }
    }
}

/// Where an empirical distribution's data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Samples: one number per line, or one named column of a CSV file with a header row.
    SamplesFile {
        /// The file, as written in the scenario (relative to the scenario file's directory).
        path: PathBuf,
        /// The CSV column to read; absent for one number per line.
        column: Option<String>,
    },
    /// Buckets of a histogram in Prometheus's text format (`le` bounds, cumulative counts).
    HistogramFile {
        /// The file, as written in the scenario (relative to the scenario file's directory).
        path: PathBuf,
    },
    /// Buckets written in the scenario: `[upper bound, cumulative count]` pairs.
    Histogram(Vec<(f64, u64)>),
}

/// Histogram buckets in milliseconds: bucket `i` spans from the previous bound (0 for the
/// first) to `upper_ms[i]` and holds `cumulative[i] - cumulative[i - 1]` observations.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// Upper bounds, strictly increasing, in milliseconds.
    pub upper_ms: Vec<f64>,
    /// Cumulative counts, non-decreasing; the last is the total (> 0).
    pub cumulative: Vec<u64>,
}

impl Buckets {
    /// The lower bound of bucket `i`, in milliseconds.
    pub fn lower_ms(&self, i: usize) -> f64 {
        if i == 0 {
            0.0
        } else {
            self.upper_ms[i - 1]
        }
    }

    /// How many observations there are in all.
    pub fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The bucket holding the `r`-th observation (0-based, `r < total`).
    pub fn bucket_of(&self, r: u64) -> usize {
        self.cumulative
            .partition_point(|c| *c <= r)
            .min(self.cumulative.len().saturating_sub(1))
    }
}

/// The data an empirical distribution draws from, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Samples, sorted ascending (a draw picks one uniformly).
    Samples(Arc<[f64]>),
    /// Buckets (a draw picks a bucket by its count, then a uniform value inside it).
    Buckets(Arc<Buckets>),
}

/// An empirical distribution: the reference to its data (what a scenario file says) and,
/// once loaded, the data itself. Two are equal when the reference and the data are (however
/// the file's path was resolved).
#[derive(Debug, Clone)]
pub struct Empirical {
    /// Where the data comes from.
    pub source: Source,
    /// The unit of the numbers in the data.
    pub unit: Unit,
    /// For histograms: the upper bound of the `+Inf` bucket, in `unit`.
    pub max: Option<f64>,
    /// The file actually read (the scenario file's directory joined with the path).
    resolved: Option<PathBuf>,
    /// The data, once loaded.
    data: Option<Data>,
}

impl PartialEq for Empirical {
    fn eq(&self, other: &Empirical) -> bool {
        (&self.source, self.unit, self.max, &self.data)
            == (&other.source, other.unit, other.max, &other.data)
    }
}

impl Empirical {
    /// An empirical distribution read from `source` (not loaded yet when it names a file;
    /// an inline histogram is checked and loaded here).
    pub fn new(source: Source, unit: Unit, max: Option<f64>) -> Result<Empirical, String> {
        let data = match &source {
            Source::Histogram(pairs) => {
                let rows = pairs
                    .iter()
                    .enumerate()
                    .map(|(i, (le, n))| (i, *le, *n as f64));
                let b = datafile::buckets(rows, unit, max).map_err(|(i, reason)| match i {
                    Some(i) => format!("histogram bucket {i}: {reason}"),
                    None => format!("histogram: {reason}"),
                })?;
                Some(Data::Buckets(Arc::new(b)))
            }
            _ => None,
        };
        Ok(Empirical {
            source,
            unit,
            max,
            resolved: None,
            data,
        })
    }

    /// The data file it names, as written, and the key naming it, if any.
    pub fn file(&self) -> Option<(&Path, &'static str)> {
        match &self.source {
            Source::SamplesFile { path, .. } => Some((path, "samples_file")),
            Source::HistogramFile { path } => Some((path, "histogram_file")),
            Source::Histogram(_) => None,
        }
    }

    /// The data file as read (its path resolved against the scenario's directory), once
    /// [`Empirical::load`] has read it.
    pub fn resolved(&self) -> Option<&Path> {
        self.resolved.as_deref()
    }

    /// The loaded data (`None` until [`Empirical::load`] has read the file).
    pub fn data(&self) -> Option<&Data> {
        self.data.as_ref()
    }

    /// Reads the data file, resolving its path against `dir` (the scenario file's
    /// directory). On error nothing is kept.
    pub fn load(&mut self, dir: &Path) -> Result<(), DataFileError> {
        let Some((path, _)) = self.file() else {
            return Ok(());
        };
        let resolved = dir.join(path);
        let text = datafile::read(&resolved)?;
        let at = |(line, reason)| DataFileError {
            file: resolved.clone(),
            line,
            reason,
        };
        let data = match &self.source {
            Source::SamplesFile { column, .. } => {
                let mut xs = datafile::samples(&text, column.as_deref(), self.unit).map_err(at)?;
                xs.sort_by(f64::total_cmp);
                Data::Samples(xs.into())
            }
            _ => Data::Buckets(Arc::new(
                datafile::prometheus(&text, self.unit, self.max).map_err(at)?,
            )),
        };
        self.data = Some(data);
        self.resolved = Some(resolved);
        Ok(())
    }

    /// Rewrites the file reference so that it names the same file from `dir`, where a
    /// scenario file is about to be written: relative when the two share a directory below
    /// the root, else absolute. Does nothing to an inline histogram or a file never loaded.
    pub fn rebase(&mut self, dir: &Path) {
        let Some(resolved) = &self.resolved else {
            return;
        };
        let target = relative(resolved, dir);
        match &mut self.source {
            Source::SamplesFile { path, .. } | Source::HistogramFile { path } => *path = target,
            Source::Histogram(_) => {}
        }
    }

    /// The `u`-quantile (0 < u < 1), in milliseconds; 0 when not loaded.
    pub fn quantile_ms(&self, u: f64) -> f64 {
        match &self.data {
            None => 0.0,
            Some(Data::Samples(xs)) => {
                let i = ((u * xs.len() as f64) as usize).min(xs.len().saturating_sub(1));
                xs.get(i).copied().unwrap_or(0.0)
            }
            Some(Data::Buckets(b)) => {
                let target = u * b.total() as f64;
                let i = b.bucket_of(target as u64);
                let before = if i == 0 { 0 } else { b.cumulative[i - 1] } as f64;
                let count = b.cumulative[i] as f64 - before;
                let frac = if count > 0.0 {
                    ((target - before) / count).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                b.lower_ms(i) + frac * (b.upper_ms[i] - b.lower_ms(i))
            }
        }
    }
}

/// `target` as seen from `dir`: a relative path when both canonicalize and share a
/// directory below the root, else `target` made absolute.
fn relative(target: &Path, dir: &Path) -> PathBuf {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let (Ok(t), Ok(d)) = (target.canonicalize(), dir.canonicalize()) else {
        return std::path::absolute(target).unwrap_or_else(|_| target.to_path_buf());
    };
    let common = t
        .components()
        .zip(d.components())
        .take_while(|(a, b)| a == b)
        .count();
    if common <= 1 {
        // Nothing shared but the root: `../../..` would only be harder to read.
        return t;
    }
    let mut out = PathBuf::new();
    for _ in d.components().skip(common) {
        out.push("..");
    }
    for c in t.components().skip(common) {
        out.push(c);
    }
    out
}
