//! `locksim explore --exhaustive --shard K/N` and `locksim merge`: the shards of an exhaustive
//! search, merged, print what one unsharded search prints (but the timing line) and write the
//! same counterexample file; merge refuses what is not every shard of one search.

mod common;
use common::{locksim, stderr, stdout};
use explore::exhaustive::{exhaustive, search_shard, Options};
use explore::exhaustive_shard::{merge as merge_parts, parse, write_shard, Closing, Header};
use explore::Shard;
use std::path::{Path, PathBuf};
use std::process::Output;

const FAILOVER: &str = "scenarios/failover-explore.json";
const FENCING: &str = "scenarios/fencing-exhaustive.json";

/// A fresh scratch directory per test.
fn scratch(test: &str) -> PathBuf {
    common::scratch_dir("exhaustive-shard-tests", test)
}

/// The text before the timing line ("S schedules, T distinct states in ...") and after it.
fn around_timing(text: &str) -> (String, String) {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| {
            l.split_once(" schedules, ").is_some_and(|(n, rest)| {
                n.parse::<u64>().is_ok() && rest.contains(" distinct states in ")
            })
        })
        .unwrap_or_else(|| panic!("no timing line in: {text}"));
    (lines[..at].join("\n"), lines[at + 1..].join("\n"))
}

/// The totals at the start of the timing line.
fn totals(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.contains(" distinct states in "))
        .unwrap();
    line.split(" in ").next().unwrap().to_string()
}

/// Runs shards 1..=n of `file`'s exhaustive search (with `extra` arguments) into `dir`.
fn shards(dir: &Path, file: &str, n: u64, extra: &[&str]) -> Vec<PathBuf> {
    (1..=n)
        .map(|k| {
            let path = dir.join(format!("x-{k}.jsonl"));
            let shard = format!("{k}/{n}");
            let mut args = vec![
                "explore",
                file,
                "--exhaustive",
                "--shard",
                &shard,
                "--jobs",
                "1",
            ];
            args.extend_from_slice(extra);
            let p = path.to_str().unwrap();
            args.extend_from_slice(&["--out", p]);
            let out = locksim(&args);
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "shard {k}: {}{}",
                stdout(&out),
                stderr(&out)
            );
            assert!(
                stdout(&out).contains(&format!("(shard {k}/{n}: the branches whose")),
                "{}",
                stdout(&out)
            );
            path
        })
        .collect()
}

fn merge(files: &[PathBuf], extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["merge".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    locksim(&args)
}

/// The merge must fail with exit 2 and say `what` (and nothing on stdout).
fn refused(out: &Output, what: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(out), stderr(out));
    assert!(stdout(out).is_empty(), "{}", stdout(out));
    for w in what {
        assert!(stderr(out).contains(w), "`{w}` not in: {}", stderr(out));
    }
}

/// One search of `file` and `n` shards merged: the same exit code, the same text before and
/// after the timing line, the same totals on it; the merged output.
fn same_as_one(dir: &Path, file: &str, n: u64, extra: &[&str], code: i32) -> String {
    let mut args = vec!["explore", file, "--exhaustive", "--jobs", "2"];
    args.extend_from_slice(extra);
    let one = locksim(&args);
    assert_eq!(
        one.status.code(),
        Some(code),
        "{}{}",
        stdout(&one),
        stderr(&one)
    );
    let files = shards(dir, file, n, extra);
    // Given in another order: the order does not matter.
    let mut reversed = files.clone();
    reversed.reverse();
    let merged = merge(&reversed, &[]);
    assert_eq!(
        merged.status.code(),
        Some(code),
        "{}{}",
        stdout(&merged),
        stderr(&merged)
    );
    let (a, b) = (stdout(&one), stdout(&merged));
    assert_eq!(around_timing(&a), around_timing(&b), "{a}\n---\n{b}");
    assert_eq!(totals(&a), totals(&b));
    assert!(
        b.contains(&format!(" distinct states in {n} shards in ")),
        "{b}"
    );
    b
}

#[test]
fn four_shards_of_a_failing_space_merge_to_the_one_searchs_minimal_counterexample() {
    let dir = scratch("failing");
    let b = same_as_one(&dir, FAILOVER, 4, &["--max-faults", "2"], 1);
    assert!(b.contains("minimal counterexample: 1 faults"), "{b}");
    assert!(b.contains("promote replica-1 to primary"), "{b}");
    // Not vacuous: the failing branch is one shard's, the other shards found no failure at
    // one fault and searched two, and the merge cut the level at that branch.
    let files: Vec<PathBuf> = (1..=4).map(|k| dir.join(format!("x-{k}.jsonl"))).collect();
    let lines: Vec<Vec<serde_json::Value>> = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        })
        .collect();
    let failed_at_1 = lines.iter().filter(|l| !l[2]["failure"].is_null()).count();
    assert_eq!(
        failed_at_1, 1,
        "one shard holds the failing branch at 1 fault"
    );
    assert!(
        lines.iter().any(|l| l.len() == 5),
        "a shard went on to 2 faults"
    );
    let level1_rows: u64 = lines
        .iter()
        .map(|l| l[2]["schedules"].as_u64().unwrap())
        .sum();
    assert!(
        b.contains(&format!("  1 faults: {:>9} schedules", 12)) && level1_rows > 12,
        "the merge counts 12 of the shards' {level1_rows} one-fault schedules: {b}"
    );
}

#[test]
fn four_shards_of_safe_spaces_merge_to_the_one_searchs_proof() {
    let dir = scratch("holds");
    // Without promotions no schedule of two faults breaks the failover scenario.
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FAILOVER)).unwrap(),
    )
    .unwrap();
    v["name"] = "failover-no-promote".into();
    v["fault_space"]["kinds"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k.get("promote").is_none());
    let file = dir.join("failover-no-promote.json");
    std::fs::write(&file, v.to_string()).unwrap();
    let b = same_as_one(&dir, file.to_str().unwrap(), 4, &["--max-faults", "2"], 0);
    assert!(
        b.contains("no schedule with ≤ 2 faults of these kinds (crash, pause_node, pause_client) breaks mutual_exclusion, unsafe_writes"),
        "{b}"
    );
    assert!(b.contains("  2 faults:"), "{b}");

    let fencing = scratch("holds-fencing");
    let extra = ["--max-faults", "1", "--property", "unsafe_writes"];
    let b = same_as_one(&fencing, FENCING, 4, &extra, 0);
    assert!(b.contains("no schedule with ≤ 1 faults"), "{b}");
    assert!(b.contains("401 schedules"), "{b}");
    let files: Vec<PathBuf> = (1..=4)
        .map(|k| fencing.join(format!("x-{k}.jsonl")))
        .collect();
    // The property the shards searched for may be named again; another is refused.
    let again = merge(&files, &["--property", "unsafe_writes"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let other = merge(&files, &["--property", "mutual_exclusion"]);
    refused(
        &other,
        &["--property mutual_exclusion: the shards searched for unsafe_writes"],
    );
}

#[test]
fn merge_shrink_writes_the_one_searchs_counterexample_file_byte_for_byte() {
    let dir = scratch("shrink");
    for (file, extra, n, faults) in [
        (FAILOVER, &["--max-faults", "2"][..], 4, 1),
        // The fault-free run breaks set_once: level 0 fails, in every shard.
        (
            "scenarios/spaces/set-once-plain-set.json",
            &["--max-faults", "1"][..],
            3,
            0,
        ),
    ] {
        let one_out = dir.join("one.json");
        let mut args = vec![
            "explore",
            file,
            "--exhaustive",
            "--shrink",
            one_out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let one = locksim(&args);
        assert_eq!(one.status.code(), Some(1), "{}", stderr(&one));
        let files = shards(&dir, file, n, extra);
        let merged_out = dir.join("merged.json");
        let merged = merge(&files, &["--shrink", merged_out.to_str().unwrap()]);
        assert_eq!(merged.status.code(), Some(1), "{}", stderr(&merged));
        let same = |s: &str, path: &Path| s.replace(&path.display().to_string(), "OUT");
        let (a, b) = (
            around_timing(&same(&stdout(&one), &one_out)),
            around_timing(&same(&stdout(&merged), &merged_out)),
        );
        assert_eq!(a, b);
        assert!(
            b.1.contains(&format!("minimal counterexample: {faults} faults"))
                && b.1.contains("written to OUT")
                && b.1.contains("replay: locksim run OUT"),
            "{b:?}"
        );
        assert_eq!(
            std::fs::read(&one_out).unwrap(),
            std::fs::read(&merged_out).unwrap(),
            "{file}"
        );
        // The file replays as its `expect` says.
        let replay = locksim(&["run", merged_out.to_str().unwrap()]);
        assert_eq!(replay.status.code(), Some(0), "{}", stdout(&replay));
    }

    // The scenario file the shards name changed since they ran: no counterexample file.
    let edited = dir.join("failover-explore.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(FAILOVER),
        &edited,
    )
    .unwrap();
    let files = shards(&dir, edited.to_str().unwrap(), 2, &["--max-faults", "1"]);
    let mut text = std::fs::read_to_string(&edited).unwrap();
    text.push('\n');
    std::fs::write(&edited, text).unwrap();
    let no = dir.join("no.json");
    let out = merge(&files, &["--shrink", no.to_str().unwrap()]);
    refused(
        &out,
        &[
            &edited.display().to_string(),
            "the scenario changed since the shards ran",
        ],
    );
    assert!(!no.exists());
}

/// Shard `k`/`n` of `s`'s search, written and read back as a shard file.
fn shard_file(
    s: &locksim::scenario::Scenario,
    options: &Options,
    k: u64,
    n: u64,
    dir: &Path,
) -> explore::exhaustive_shard::ShardFile {
    let part = search_shard(s, options, Shard::new(k, n).unwrap(), &|_| {}).unwrap();
    let header = Header::new(s, Path::new("s.json"), "0".repeat(64), &part);
    let path = dir.join(format!("{}-{k}-{n}.jsonl", s.name));
    let mut bytes = Vec::new();
    write_shard(&mut bytes, &header, &part, Closing { secs: 0.0, jobs: 1 }).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let read = parse(&path, &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read.part, part, "the file reads back as written");
    read
}

#[test]
fn every_fault_space_split_any_way_merges_to_the_one_search() {
    let dir = scratch("spaces");
    let mut files: Vec<(String, usize)> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/spaces"))
            .unwrap()
            .map(|e| {
                (
                    format!("spaces/{}", e.unwrap().file_name().to_string_lossy()),
                    1,
                )
            })
            .collect();
    files.sort();
    files.push(("failover-explore.json".into(), 2));
    let mut failed = 0;
    for (file, k) in files {
        let s = common::load(&file);
        let options = Options {
            max_faults: k,
            properties: vec![],
            jobs: 2,
        };
        let one = exhaustive(&s, &options, &|_| {}).unwrap();
        for n in [1, 2, 3, 5] {
            let parts: Vec<_> = (1..=n)
                .map(|i| shard_file(&s, &options, i, n, &dir))
                .collect();
            let merged = merge_parts(&parts).unwrap_or_else(|e| panic!("{file} {n}: {e}"));
            assert_eq!(merged.combined.levels, one.levels, "{file} in {n} shards");
            assert_eq!(merged.header.boundaries, one.boundaries, "{file}");
            let faults = |f: Option<&Vec<locksim::scenario::Fault>>| f.cloned();
            assert_eq!(
                faults(merged.combined.failure.as_ref().map(|f| &f.faults)),
                faults(one.counterexample.as_ref().map(|c| &c.faults)),
                "{file} in {n} shards"
            );
        }
        failed += usize::from(one.counterexample.is_some());
    }
    assert!(failed >= 5, "most of the spaces fail: {failed}");
}

#[test]
fn a_shard_does_not_depend_on_jobs_and_on_stdout_is_the_file() {
    let base = [
        "explore",
        FAILOVER,
        "--exhaustive",
        "--max-faults",
        "2",
        "--shard",
        "2/4",
    ];
    let mut one = base.to_vec();
    one.extend_from_slice(&["--jobs", "1"]);
    let mut two = base.to_vec();
    two.extend_from_slice(&["--jobs", "2"]);
    let (a, b) = (locksim(&one), locksim(&two));
    assert_eq!(a.status.code(), b.status.code());
    let lines = |o: &Output| -> Vec<String> { stdout(o).lines().map(String::from).collect() };
    let (x, y) = (lines(&a), lines(&b));
    assert!(x.len() >= 4, "{x:?}");
    assert_eq!(x.len(), y.len());
    // Everything but the closing line (the run time and the jobs) is the same.
    assert_eq!(x[..x.len() - 1], y[..y.len() - 1]);
    let header: serde_json::Value = serde_json::from_str(&x[0]).unwrap();
    assert_eq!(header["search"], "exhaustive");
    assert_eq!(header["shard"], 2);
    assert_eq!(header["max_faults"], 2);
    assert_eq!(header["sha256"].as_str().unwrap().len(), 64);
    let closing: serde_json::Value = serde_json::from_str(x.last().unwrap()).unwrap();
    assert_eq!(closing["jobs"], 1);
}

#[test]
fn merge_refuses_exhaustive_shards_of_another_search_missing_twice_given_or_mixed_with_seeds() {
    let dir = scratch("refused");
    let k2 = ["--max-faults", "2"];
    let files = shards(&dir, FAILOVER, 4, &k2);
    let name = |p: &PathBuf| p.display().to_string();
    let with = |i: usize, other: &PathBuf| {
        let mut f = files.clone();
        f[i] = other.clone();
        f
    };

    // Seed shards and exhaustive shards do not mix.
    let seeds = scratch("refused-seeds");
    let seed_file = seeds.join("seeds-3.jsonl");
    let o = locksim(&[
        "explore",
        FAILOVER,
        "--seeds",
        "100",
        "--shard",
        "3/4",
        "--out",
        seed_file.to_str().unwrap(),
    ]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    refused(
        &merge(&with(2, &seed_file), &[]),
        &[
            &name(&seed_file),
            "a shard of a seed range (`explore --shard`), but",
            &name(&files[0]),
            "is a shard of an exhaustive search (`explore --exhaustive --shard`)",
        ],
    );

    // Another K, another property, another grid, another N.
    let other = scratch("refused-other");
    let one_fault = shards(&other, FAILOVER, 4, &["--max-faults", "1"]);
    refused(
        &merge(&with(3, &one_fault[3]), &[]),
        &[&name(&one_fault[3]), "`max_faults` is 1, there it is 2"],
    );
    let prop = scratch("refused-property");
    let unsafe_only = shards(
        &prop,
        FAILOVER,
        4,
        &["--max-faults", "2", "--property", "unsafe_writes"],
    );
    refused(
        &merge(&with(1, &unsafe_only[1]), &[]),
        &[
            &name(&unsafe_only[1]),
            "`properties` is unsafe_writes, there it is mutual_exclusion, unsafe_writes",
        ],
    );
    let grid = scratch("refused-grid");
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FAILOVER)).unwrap(),
    )
    .unwrap();
    v["fault_space"]["kinds"][2]["pause_node"]["grid_ms"] = serde_json::json!([20, 1000]);
    let regridded = grid.join("failover-explore.json");
    std::fs::write(&regridded, v.to_string()).unwrap();
    let regrid = shards(&grid, regridded.to_str().unwrap(), 4, &k2);
    refused(
        &merge(&with(2, &regrid[2]), &[]),
        &[
            &name(&regrid[2]),
            "`choices` is `pause primary for 20 ms` at entry 3, there it is `pause primary for 10 ms`",
        ],
    );
    let three = scratch("refused-three");
    let of_three = shards(&three, FAILOVER, 3, &k2);
    refused(
        &merge(&[files[0].clone(), of_three[1].clone()], &[]),
        &[&name(&of_three[1]), "`shards` is 3, there it is 4"],
    );

    // A missing shard, a shard given twice.
    refused(
        &merge(&files[..3], &[]),
        &["shard 4 of 4 is missing", &name(&files[0])],
    );
    let copy = dir.join("copy-of-2.jsonl");
    std::fs::copy(&files[1], &copy).unwrap();
    let mut twice = files.clone();
    twice.push(copy.clone());
    refused(
        &merge(&twice, &[]),
        &[&name(&copy), "shard 2/4 is given twice", &name(&files[1])],
    );

    // Malformed files, each named with its line.
    let text = std::fs::read_to_string(&files[3]).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "header, levels 0 to 2, closing: {text}");
    let level2: serde_json::Value = serde_json::from_str(lines[3]).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut l = level2.clone();
        f(&mut l);
        let mut out = lines.clone();
        let l = l.to_string();
        out[3] = &l;
        out.join("\n") + "\n"
    };
    let dropped_row = edit(&|l| {
        let rows = l["rows"].as_array_mut().unwrap();
        let r = rows.remove(0);
        let s = l["schedules"].as_u64().unwrap() - r[1].as_u64().unwrap();
        let st = l["states"].as_u64().unwrap() - r[2].as_u64().unwrap();
        l["schedules"] = s.into();
        l["states"] = st.into();
    });
    let wrong_sum = edit(&|l| l["schedules"] = 1.into());
    let foreign_failure = edit(&|l| l["failure"]["branch"] = 0.into());
    let w = "not a shard file of `locksim explore --shard`";
    for (body, what) in [
        (
            lines[..4].join("\n") + "\n",
            format!(":5: {w}: no closing line after the levels (did the shard finish?)"),
        ),
        (
            lines[..2].join("\n") + "\n" + lines[4] + "\n",
            format!(
                ":3: {w}: the levels stop at 0 faults without a failure, before `max_faults` 2"
            ),
        ),
        (
            text.clone() + lines[4] + "\n",
            format!(":6: {w}: a line after the closing line"),
        ),
        (dropped_row, format!(":4: {w}: `rows` has")),
        (
            wrong_sum,
            format!(":4: {w}: the level's counts (1 schedules,"),
        ),
        (
            foreign_failure,
            format!(":4: {w}: `failure`: branch 0 is not the last row's"),
        ),
        (
            text.replace("\"search\":\"exhaustive\"", "\"search\":\"random\""),
            format!(":1: {w}: `search` is `random`"),
        ),
    ] {
        let bad = dir.join("bad-4.jsonl");
        std::fs::write(&bad, &body).unwrap();
        refused(
            &merge(&with(3, &bad), &[]),
            &[&format!("{}{what}", name(&bad))],
        );
    }

    // --shrink belongs to the merge, not to a shard.
    let out = locksim(&[
        "explore",
        FAILOVER,
        "--exhaustive",
        "--shard",
        "1/2",
        "--shrink",
        "x.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("x.json")
        .exists());
}

#[test]
fn a_seed_shard_with_property_is_refused_and_points_at_the_merge() {
    let out = locksim(&[
        "explore",
        FAILOVER,
        "--shard",
        "1/2",
        "--property",
        "unsafe_writes",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("--property with --shard") && stderr(&out).contains("locksim merge"),
        "{}",
        stderr(&out)
    );
}
