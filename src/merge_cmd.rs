//! `locksim merge`: the shard files of one `locksim explore --shard K/N` run, merged into the
//! report one unsharded run prints (the same text after the first line, the same exit code);
//! for shards of `explore --exhaustive`, the same text but the timing line.

use crate::exhaustive_cmd::{head, verdict, write_counterexample, Found, Summary};
use crate::exit::{self, bad_input as bad};
use crate::explore_cmd::{parse_property, shrink_into, span, summary};
use crate::out::{outln, Out};
use explore::exhaustive::counterexample_scenario;
use explore::exhaustive_shard::Merged as XMerged;
use explore::shard::{content_hash, merge_any, read_any, AnyMerged, Merged};
use explore::{SeedRange, Shard};
use scenario::Scenario;
use std::path::{Path, PathBuf};

/// Runs the subcommand; returns the exit code (0: nothing broke, 1: something broke, 2: bad
/// input — a shard file malformed, of another run, given twice or missing —, 3: nothing broke
/// but some seeds were inconclusive).
pub fn merge(files: Vec<PathBuf>, shrink: Option<PathBuf>, property: Option<String>) -> i32 {
    let property = match parse_property(property) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut shards = Vec::with_capacity(files.len());
    for f in &files {
        match read_any(f) {
            Ok(s) => shards.push(s),
            Err(e) => return bad(e),
        }
    }
    match merge_any(shards) {
        Ok(AnyMerged::Seeds(merged)) => seeds(merged, shrink, property),
        Ok(AnyMerged::Exhaustive(merged)) => exhaustive(merged, shrink, property),
        Err(e) => bad(e),
    }
}

/// The merged shards of a seed range: the summary and shrinking `locksim explore` does.
fn seeds(merged: Merged, shrink: Option<PathBuf>, property: Option<checker::Property>) -> i32 {
    let h = &merged.header;
    let range = SeedRange {
        first: h.first,
        count: h.seeds,
        shard: Shard::WHOLE,
    };
    // Checked before anything is printed: shrinking reruns the scenario the shards ran.
    let scenario = match &shrink {
        Some(_) if !merged.report.failing.is_empty() => match unchanged(&h.file, &h.sha256) {
            Ok(s) => Some(s),
            Err(code) => return code,
        },
        _ => None,
    };
    let mut out = Out::new();
    outln!(
        out,
        "explored {} seeds of {} in {} shards (seeds {}) in {:.2} s (the longest shard; {:.2} s in all)",
        merged.report.seeds,
        h.scenario,
        h.shards,
        span(range),
        merged.secs_longest,
        merged.secs_total
    );
    let code = summary(&mut out, &h.file, &merged.report);
    match (shrink, scenario) {
        (Some(path), Some(scenario)) if code == exit::BROKEN && !out.failed() => {
            let code = shrink_into(&mut out, &scenario, &merged.report, &path, property);
            out.finish(code)
        }
        _ => out.finish(code),
    }
}

/// The merged shards of an exhaustive search: what `explore --exhaustive` prints, but the
/// timing line, and with `shrink` the counterexample file it writes.
fn exhaustive(
    merged: XMerged,
    shrink: Option<PathBuf>,
    property: Option<checker::Property>,
) -> i32 {
    let h = &merged.header;
    if let Some(p) = property.filter(|p| h.properties != [*p]) {
        let searched: Vec<&str> = h.properties.iter().map(|p| p.name()).collect();
        return bad(format!(
            "--property {p}: the shards searched for {} (an exhaustive search's property is chosen when its shards run: explore --exhaustive --property P --shard K/N)",
            searched.join(", ")
        ));
    }
    let c = &merged.combined;
    // Checked before anything is printed: the counterexample is rebuilt from the scenario.
    let scenario = match (&shrink, &c.failure) {
        (Some(_), Some(f)) => match unchanged(&h.file, &h.sha256) {
            Ok(s) => Some(counterexample_scenario(&s, &f.faults, f.violated[0])),
            Err(code) => return code,
        },
        _ => None,
    };
    let s = Summary {
        name: &h.scenario,
        max_faults: h.max_faults,
        choices: h.choices.len(),
        kinds: &h.kinds,
        window_ms: h.window_ms,
        boundaries: h.boundaries,
        properties: &h.properties,
        levels: &c.levels,
    };
    let mut out = Out::new();
    head(&mut out, &s, "");
    outln!(
        out,
        "{} in {} shards in {:.2} s (the longest shard; {:.2} s in all)",
        s.totals(),
        h.shards,
        merged.secs_longest,
        merged.secs_total
    );
    let found = c.failure.as_ref().map(|f| Found {
        faults: &f.faults,
        violated: &f.violated,
        confirmed: f.confirmed,
    });
    let code = verdict(&mut out, &s, found);
    match (shrink, scenario) {
        (Some(path), Some(cx)) if !out.failed() => {
            let code = write_counterexample(&mut out, &path, &cx);
            out.finish(code)
        }
        _ => out.finish(code),
    }
}

/// The scenario file the shards name, loaded, if it still hashes as they recorded; else the
/// exit code (the message is printed).
fn unchanged(file: &str, sha256: &str) -> Result<Scenario, i32> {
    let path = Path::new(file);
    let scenario = Scenario::load(path).map_err(bad)?;
    let now = content_hash(path, &scenario).map_err(bad)?;
    if now != sha256 {
        return Err(bad(format!(
            "{file}: --shrink: the scenario changed since the shards ran (sha256 {now}, the shards say {sha256}), so its seeds would not replay"
        )));
    }
    Ok(scenario)
}
