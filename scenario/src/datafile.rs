//! Reading the user's data files: samples (one number per line, or a CSV column) and
//! Prometheus histogram buckets. Every refusal names the line and the reason.

use crate::empirical::{Buckets, Unit};
use lock_core::recipe::MAX_MS;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest data file read, in bytes.
pub const MAX_DATA_FILE_BYTES: u64 = 64 << 20;

/// A data file that cannot be used: which file, which line (when one is to blame) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {reason}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct DataFileError {
    /// The file, as read (the scenario file's directory joined with the path written).
    pub file: PathBuf,
    /// The 1-based line at fault, if one is.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

/// A line at fault (if any) and the reason.
type Refusal = (Option<usize>, String);

/// The file's text; refuses an unreadable, oversized or non-UTF-8 file.
pub(crate) fn read(path: &Path) -> Result<String, DataFileError> {
    let fail = |line, reason| DataFileError {
        file: path.to_path_buf(),
        line,
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(None, format!("cannot read it: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_DATA_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(None, format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_DATA_FILE_BYTES {
        return Err(fail(
            None,
            format!("larger than {MAX_DATA_FILE_BYTES} bytes"),
        ));
    }
    // A byte-order mark (spreadsheets write one) is not part of the first line.
    if bytes.starts_with(b"\xef\xbb\xbf") {
        bytes.drain(..3);
    }
    utf8(bytes).map_err(|(line, reason)| fail(Some(line), reason))
}

/// The bytes as text, or the 1-based line and the offset of the first byte that is not
/// UTF-8 (as a reason).
pub(crate) fn utf8(bytes: Vec<u8>) -> Result<String, (usize, String)> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        (line, format!("not UTF-8: invalid byte at offset {at}"))
    })
}

/// The lines that carry data: 1-based number and text, without `#` comments, trimmed,
/// blank ones skipped.
fn content(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let l = l.split('#').next().unwrap_or("").trim();
        (!l.is_empty()).then_some((i + 1, l))
    })
}

/// One duration in `unit`, as milliseconds: a number, see [`duration_of`].
fn duration(s: &str, unit: Unit) -> Result<f64, String> {
    let x: f64 = s
        .parse()
        .map_err(|_| format!("not a number: `{}`", checker::quote::clip(s)))?;
    duration_of(x, unit)
}

/// `x` in `unit`, as milliseconds: finite, not negative, within the limit.
fn duration_of(x: f64, unit: Unit) -> Result<f64, String> {
    if !x.is_finite() {
        return Err(format!("not a finite number: {x}"));
    }
    if x < 0.0 {
        return Err(format!("negative: {x}"));
    }
    let ms = unit.to_ms(x);
    if ms > MAX_MS as f64 {
        return Err(format!("{x} is above the limit of {MAX_MS} ms"));
    }
    Ok(ms)
}

/// The samples of a samples file, in milliseconds: one number per line, or the named
/// `column` of a CSV file whose first data line is the header.
pub(crate) fn samples(text: &str, column: Option<&str>, unit: Unit) -> Result<Vec<f64>, Refusal> {
    let mut lines = content(text);
    let mut index = None;
    if let Some(name) = column {
        let Some((n, header)) = lines.next() else {
            return Err((None, "empty: no header row and no samples".into()));
        };
        let names: Vec<&str> = header.split(',').map(cell).collect();
        index = Some(names.iter().position(|c| *c == name).ok_or_else(|| {
            let names = names.join(", ");
            (
                Some(n),
                format!("no column `{name}` in the header (columns: {names})"),
            )
        })?);
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        let value = match index {
            None => line,
            Some(i) => line.split(',').nth(i).map(cell).ok_or_else(|| {
                (
                    Some(n),
                    format!(
                        "no field {} (column `{}`) on this row",
                        i + 1,
                        column.unwrap_or("")
                    ),
                )
            })?,
        };
        let ms = duration(value, unit).map_err(|reason| {
            let hint = if column.is_none() && line.contains(',') {
                " (a CSV file? name its column with \"column\")"
            } else {
                ""
            };
            (Some(n), format!("{reason}{hint}"))
        })?;
        out.push(ms);
    }
    if out.is_empty() {
        return Err((
            None,
            "empty: no samples (only comments, blank lines or a header)".into(),
        ));
    }
    Ok(out)
}

/// A CSV cell without surrounding blanks and double quotes.
fn cell(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// The buckets of one histogram in Prometheus's text format: `NAME_bucket{…,le="B"} COUNT`
/// lines, with `# HELP`/`# TYPE` comments and `NAME_sum`/`NAME_count` lines allowed.
pub(crate) fn prometheus(text: &str, unit: Unit, max: Option<f64>) -> Result<Buckets, Refusal> {
    let mut series: Option<(String, String)> = None;
    let mut rows = Vec::new();
    for (n, line) in content(text) {
        let fail = |reason: String| (Some(n), reason);
        let (name, labels, rest) = split_sample(line)
            .ok_or_else(|| fail("not a Prometheus sample line (`name{labels} value`)".into()))?;
        if name.ends_with("_sum") || name.ends_with("_count") {
            continue;
        }
        if !name.ends_with("_bucket") {
            return Err(fail(format!(
                "`{name}` is not a histogram bucket (`NAME_bucket{{le=\"…\"}} COUNT`)"
            )));
        }
        let (le, others) =
            split_le(labels).ok_or_else(|| fail("the bucket has no `le` label".into()))?;
        let key = (name.to_string(), others);
        match &series {
            None => series = Some(key),
            Some(s) if *s != key => {
                return Err(fail(format!(
                    "a second series (`{}{{{}}}`): keep one histogram per file",
                    key.0, key.1
                )))
            }
            Some(_) => {}
        }
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse::<f64>()
                .map_err(|_| fail(format!("le=\"{le}\" is not a number")))?
        };
        let count = rest
            .split_whitespace()
            .next()
            .and_then(|c| c.parse::<f64>().ok())
            .ok_or_else(|| fail("no count after the labels".into()))?;
        rows.push((n, bound, count));
    }
    buckets(rows.into_iter(), unit, max)
}

/// Splits `name{labels} rest` (or `name rest`).
fn split_sample(line: &str) -> Option<(&str, &str, &str)> {
    match line.find('{') {
        Some(open) => {
            let close = line[open..].rfind('}')? + open;
            Some((
                line[..open].trim(),
                &line[open + 1..close],
                &line[close + 1..],
            ))
        }
        None => {
            let (name, rest) = line.split_once(char::is_whitespace)?;
            Some((name, "", rest))
        }
    }
}

/// The `le` label's value and the other labels, in order, as text.
fn split_le(labels: &str) -> Option<(String, String)> {
    let mut le = None;
    let mut others = Vec::new();
    let mut rest = labels.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start().strip_prefix('"')?;
        // The value ends at the first unescaped quote.
        let mut end = None;
        let mut escaped = false;
        for (i, ch) in after.char_indices() {
            match ch {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = end?;
        let (key, value) = (key.trim().trim_start_matches(',').trim(), &after[..end]);
        if key == "le" {
            le = Some(value.to_string());
        } else {
            others.push(format!("{key}=\"{value}\""));
        }
        rest = after[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Some((le?, others.join(",")))
}

/// Checks bucket rows `(where, upper bound in unit, cumulative count)` and converts them:
/// bounds not negative and strictly increasing, counts whole and non-decreasing, some
/// observation in all, and a `max` for observations in the `+Inf` bucket. `where` is the
/// line (or bucket index) a refusal names.
pub(crate) fn buckets(
    rows: impl Iterator<Item = (usize, f64, f64)>,
    unit: Unit,
    max: Option<f64>,
) -> Result<Buckets, Refusal> {
    let mut b = Buckets {
        upper_ms: Vec::new(),
        cumulative: Vec::new(),
    };
    let mut last_line = None;
    for (at, bound, count) in rows {
        let fail = |reason: String| (Some(at), reason);
        last_line = Some(at);
        if !(count.is_finite() && count >= 0.0 && count.fract() == 0.0) {
            return Err(fail(format!("the count {count} is not a whole number ≥ 0")));
        }
        let count = count as u64;
        if bound < 0.0 || bound.is_nan() {
            return Err(fail(format!("negative bound le={bound}")));
        }
        let ms = if bound.is_infinite() {
            f64::INFINITY
        } else {
            duration_of(bound, unit).map_err(fail)?
        };
        if let Some(prev) = b.upper_ms.last() {
            if ms <= *prev {
                return Err(fail(format!(
                    "the bounds are not increasing: le={bound} after a bucket at or above it"
                )));
            }
        }
        if let Some(prev) = b.cumulative.last() {
            if count < *prev {
                return Err(fail(format!(
                    "non-monotone cumulative counts: {count} is below the previous bucket's {prev}"
                )));
            }
        }
        b.upper_ms.push(ms);
        b.cumulative.push(count);
    }
    if b.upper_ms.last().is_some_and(|u| u.is_infinite()) {
        let above = b.total() - b.cumulative.iter().rev().nth(1).copied().unwrap_or(0);
        if above == 0 && b.upper_ms.len() > 1 {
            b.upper_ms.pop();
            b.cumulative.pop();
        } else {
            let Some(m) = max else {
                return Err((last_line, format!(
                    "{above} observations in the +Inf bucket and no \"max\" to bound them: set \"max\" (in the file's unit) to the largest value they can take"
                )));
            };
            let ms = duration_of(m, unit).map_err(|r| (None, format!("max: {r}")))?;
            let below = b.upper_ms.iter().rev().nth(1).copied().unwrap_or(0.0);
            if ms <= below {
                return Err((
                    None,
                    format!("max ({m}) must be above the last finite bound"),
                ));
            }
            if let Some(u) = b.upper_ms.last_mut() {
                *u = ms;
            }
        }
    }
    if b.total() == 0 {
        return Err((
            last_line,
            "empty: no observations (every count is 0)".into(),
        ));
    }
    Ok(b)
}
