//! `locksim explore --shard K/N` and `locksim merge`, through the built binary: shards merged
//! print what one unsharded run prints, and merge refuses what is not every shard of one run.

mod common;
use common::{locksim, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Output;

const FAILOVER: &str = "scenarios/failover-explore.json";

/// A fresh scratch directory per test.
fn scratch(test: &str) -> PathBuf {
    common::scratch_dir("shard-tests", test)
}

/// Everything after the first line (which carries the run time).
fn summary(text: &str) -> &str {
    text.split_once('\n').map_or("", |(_, rest)| rest)
}

/// Runs shards 1..=n of `file` (with `extra` arguments) into `dir`; the files, in order.
fn shards(dir: &Path, file: &str, n: u64, extra: &[&str]) -> Vec<PathBuf> {
    (1..=n)
        .map(|k| {
            let path = dir.join(format!("shard-{k}.jsonl"));
            let shard = format!("{k}/{n}");
            let mut args = vec!["explore", file, "--shard", &shard, "--jobs", "1"];
            args.extend_from_slice(extra);
            let p = path.to_str().unwrap();
            args.extend_from_slice(&["--out", p]);
            let out = locksim(&args);
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "shard {k}: {}",
                stderr(&out)
            );
            assert!(
                stdout(&out).contains(&format!("(shard {k}/{n}: every")),
                "{}",
                stdout(&out)
            );
            path
        })
        .collect()
}

fn merge(files: &[PathBuf]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["merge".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
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

#[test]
fn four_shards_merged_print_what_one_run_prints() {
    let dir = scratch("four");
    // 800 seeds break 14 times: more than the 10 listed, so the merge has to pick the
    // smallest across shards (shard 3 alone holds 4 of them, shard 4 only 2).
    let one = locksim(&["explore", FAILOVER, "--seeds", "800", "--jobs", "2"]);
    assert_eq!(one.status.code(), Some(1), "{}", stderr(&one));
    let files = shards(&dir, FAILOVER, 4, &["--seeds", "800"]);
    // Given in another order: the order does not matter.
    let merged = merge(&[
        files[2].clone(),
        files[0].clone(),
        files[3].clone(),
        files[1].clone(),
    ]);
    assert_eq!(merged.status.code(), Some(1), "{}", stderr(&merged));
    let (a, b) = (stdout(&one), stdout(&merged));
    assert!(
        a.starts_with("explored 800 seeds of failover-explore in"),
        "{a}"
    );
    assert!(
        b.starts_with("explored 800 seeds of failover-explore in 4 shards (seeds 0..=799)"),
        "{b}"
    );
    assert_eq!(
        summary(&a),
        summary(&b),
        "byte for byte after the first line"
    );
    // Not vacuous: the summary lists ten failing seeds, and counts more than ten.
    assert_eq!(summary(&a).matches("--explore-seed").count(), 10, "{a}");
    assert!(
        summary(&a).contains("mutual_exclusion   violated by 14 seeds"),
        "{a}"
    );
    // Each shard only saw its own seeds: none of them alone prints the whole summary.
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
    }
}

#[test]
fn an_uneven_offset_range_merges_too_and_a_calm_run_exits_0_both_ways() {
    let dir = scratch("uneven");
    // 301 seeds from 5 in 3 shards: 101, 100 and 100 seeds.
    let one = locksim(&[
        "explore", FAILOVER, "--first", "5", "--seeds", "301", "--jobs", "1",
    ]);
    let files = shards(&dir, FAILOVER, 3, &["--first", "5", "--seeds", "301"]);
    let merged = merge(&files);
    assert_eq!(merged.status.code(), one.status.code());
    assert_eq!(summary(&stdout(&one)), summary(&stdout(&merged)));
    let v: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&files[0])
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v["report"]["seeds"], 101);

    // Short pauses of the replica only: nothing breaks, exit 0 unsharded and merged.
    let mut calm: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FAILOVER)).unwrap(),
    )
    .unwrap();
    calm["name"] = "calm-explore".into();
    calm["fault_space"]["kinds"] =
        serde_json::json!([{"pause_node": {"nodes": ["replica-1"], "for_ms": [10, 50]}}]);
    let calm_file = dir.join("calm-explore.json");
    std::fs::write(&calm_file, calm.to_string()).unwrap();
    let calm_file = calm_file.to_str().unwrap();
    let one = locksim(&["explore", calm_file, "--seeds", "200"]);
    assert_eq!(one.status.code(), Some(0), "{}", stdout(&one));
    let files = shards(&dir, calm_file, 2, &["--seeds", "200"]);
    let merged = merge(&files);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    assert_eq!(summary(&stdout(&one)), summary(&stdout(&merged)));
}

#[test]
fn a_shard_on_stdout_is_the_file_and_reruns_to_the_same_results() {
    let dir = scratch("stdout");
    let file = dir.join("s.jsonl");
    let a = locksim(&[
        "explore",
        FAILOVER,
        "--seeds",
        "200",
        "--shard",
        "2/3",
        "--out",
        file.to_str().unwrap(),
    ]);
    let b = locksim(&["explore", FAILOVER, "--seeds", "200", "--shard", "2/3"]);
    assert_eq!(a.status.code(), b.status.code());
    let from_file = std::fs::read_to_string(&file).unwrap();
    let on_stdout = stdout(&b);
    let parse = |t: &str| -> Vec<serde_json::Value> {
        t.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (x, y) = (parse(&from_file), parse(&on_stdout));
    assert_eq!(x.len(), 2);
    assert_eq!(
        y.len(),
        2,
        "stdout carries the shard file only: {on_stdout}"
    );
    // Deterministic: the same header and the same report (only the run time differs).
    assert_eq!(x[0], y[0]);
    assert_eq!(x[1]["report"], y[1]["report"]);
    assert_eq!(x[0]["shard"], 2);
    assert_eq!(x[0]["shards"], 3);
    assert_eq!(x[0]["scenario"], "failover-explore");
    // The hash is the scenario file's SHA-256 (it reads no data file).
    assert_eq!(x[0]["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn bad_shard_flags_are_refused_naming_the_flag() {
    for (shard, why) in [
        ("0/4", "K must be from 1 to 4"),
        ("5/4", "K must be from 1 to 4"),
        ("1/0", "must be at least 1"),
        ("two/4", "is not K/N"),
        ("3", "is not K/N"),
    ] {
        let out = locksim(&["explore", FAILOVER, "--shard", shard]);
        assert_eq!(out.status.code(), Some(2), "{shard}");
        assert!(stdout(&out).is_empty());
        let err = stderr(&out);
        assert!(
            err.contains("--shard") && err.contains(why),
            "{shard}: {err}"
        );
    }
    let out = locksim(&["explore", FAILOVER, "--seeds", "3", "--shard", "4/4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--shard 4/4: --seeds 3 leaves shard 4 without a seed"),
        "{}",
        stderr(&out)
    );
    for extra in [
        &["--out", "x.jsonl"][..],
        &["--shard", "1/2", "--until-violation"][..],
        &["--shard", "1/2", "--shrink", "x.json"][..],
    ] {
        let mut args = vec!["explore", FAILOVER];
        args.extend_from_slice(extra);
        let out = locksim(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(!Path::new("x.jsonl").exists() && !Path::new("x.json").exists());
    }
}

#[test]
fn merge_refuses_shards_of_another_run_a_missing_or_twice_given_shard_and_bad_lines() {
    let dir = scratch("refused");
    let files = shards(&dir, FAILOVER, 4, &["--seeds", "200"]);
    let name = |p: &PathBuf| p.display().to_string();

    // A missing shard.
    let out = merge(&files[..3]);
    refused(&out, &["shard 4 of 4 is missing", &name(&files[0])]);
    let out = merge(&[files[1].clone()]);
    refused(&out, &["shards 1, 3, 4 of 4 are missing"]);

    // The same shard twice, even under another name.
    let copy = dir.join("copy-of-2.jsonl");
    std::fs::copy(&files[1], &copy).unwrap();
    let mut twice = files.clone();
    twice.push(copy.clone());
    let out = merge(&twice);
    refused(
        &out,
        &[&name(&copy), "shard 2/4 is given twice", &name(&files[1])],
    );

    // Another scenario, another range, another N.
    let others = scratch("refused-others");
    let other_scenario = shards(
        &others,
        "scenarios/fencing-explore.json",
        4,
        &["--seeds", "200"],
    );
    let out = merge(&[
        files[0].clone(),
        files[1].clone(),
        other_scenario[2].clone(),
        files[3].clone(),
    ]);
    refused(
        &out,
        &[
            &name(&other_scenario[2]),
            "not a shard of the same run as",
            &name(&files[0]),
            "`scenario` is fencing-explore, there it is failover-explore",
        ],
    );
    let longer = scratch("refused-longer");
    let other_range = shards(&longer, FAILOVER, 4, &["--seeds", "204"]);
    let out = merge(&[
        files[0].clone(),
        files[1].clone(),
        files[2].clone(),
        other_range[3].clone(),
    ]);
    refused(
        &out,
        &[&name(&other_range[3]), "`seeds` is 204, there it is 200"],
    );
    let other_start = dir.join("first-1.jsonl");
    let o = locksim(&[
        "explore",
        FAILOVER,
        "--seeds",
        "200",
        "--first",
        "1",
        "--shard",
        "4/4",
        "--out",
        other_start.to_str().unwrap(),
    ]);
    assert!(matches!(o.status.code(), Some(0 | 1)));
    let out = merge(&[
        files[0].clone(),
        files[1].clone(),
        files[2].clone(),
        other_start.clone(),
    ]);
    refused(&out, &[&name(&other_start), "`first` is 1, there it is 0"]);
    let of_three = scratch("refused-three");
    let three = shards(&of_three, FAILOVER, 3, &["--seeds", "200"]);
    let out = merge(&[files[0].clone(), three[1].clone()]);
    refused(&out, &[&name(&three[1]), "`shards` is 3, there it is 4"]);

    // The same scenario name with other content: the hash tells them apart.
    let edited_dir = scratch("refused-edited");
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FAILOVER)).unwrap(),
    )
    .unwrap();
    v["fault_space"]["max_faults"] = 3.into();
    let edited = edited_dir.join("failover-explore.json");
    std::fs::write(&edited, v.to_string()).unwrap();
    let edited_shards = shards(
        &edited_dir,
        edited.to_str().unwrap(),
        4,
        &["--seeds", "200"],
    );
    let out = merge(&[
        edited_shards[0].clone(),
        files[1].clone(),
        files[2].clone(),
        files[3].clone(),
    ]);
    refused(&out, &[&name(&files[1]), "`sha256` is"]);

    // Malformed files, each named with its line.
    let header = std::fs::read_to_string(&files[3])
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let result = std::fs::read_to_string(&files[3])
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let tampered = result.replacen("\"seeds\":50", "\"seeds\":49", 1);
    assert_ne!(tampered, result);
    let foreign_seed = {
        let mut r: serde_json::Value = serde_json::from_str(&result).unwrap();
        r["report"]["violations"] = serde_json::json!({"mutual_exclusion": 1});
        r["report"]["failing"] = serde_json::json!([[4, ["mutual_exclusion"]]]);
        r["report"]["first_violating"] = serde_json::json!({"mutual_exclusion": 4});
        r.to_string()
    };
    for (body, what) in [
        (String::new(), ":1: not a shard file of `locksim explore --shard`: the file is empty"),
        (format!("{header}\n"), ":2: not a shard file of `locksim explore --shard`: no result line"),
        ("{\"hello\": 1}\n".to_string(), ":1: not a shard file of `locksim explore --shard`: the header line does not parse"),
        (format!("{header}\nnot json\n"), ":2: not a shard file of `locksim explore --shard`: the result line does not parse"),
        (format!("{header}\n{result}\n{result}\n"), ":3: not a shard file of `locksim explore --shard`: a line after the result line"),
        (format!("{header}\n{tampered}\n"), ":2: not a shard file of `locksim explore --shard`: `seeds` is 49, but shard 4/4 of 200 seeds has 50"),
        (format!("{header}\n{foreign_seed}\n"), ":2: not a shard file of `locksim explore --shard`: `failing`: seed 4 is not one of shard 4/4's"),
        (header.replace("\"shard\":4", "\"shard\":5") + "\n" + &result, ":1: not a shard file of `locksim explore --shard`: `shard`/`shards`: 5/4: K must be from 1 to 4"),
        (header.replace("\"locksim_shard\":1", "\"locksim_shard\":2") + "\n" + &result, ":1: not a shard file of `locksim explore --shard`: format 2"),
    ] {
        let bad = dir.join("bad-4.jsonl");
        std::fs::write(&bad, &body).unwrap();
        let out = merge(&[
            files[0].clone(),
            files[1].clone(),
            files[2].clone(),
            bad.clone(),
        ]);
        refused(&out, &[&format!("{}{what}", name(&bad))]);
    }
    let absent = dir.join("never-written.jsonl");
    let out = merge(&[files[0].clone(), absent.clone()]);
    refused(&out, &[&name(&absent), "cannot read the shard file"]);
    // `merge` with no file is refused by the argument parser.
    let out = locksim(&["merge"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn merge_shrinks_what_one_run_shrinks_and_refuses_a_changed_scenario() {
    let dir = scratch("shrink");
    let one_out = dir.join("one-shrunk.json");
    let one = locksim(&[
        "explore",
        FAILOVER,
        "--seeds",
        "200",
        "--shrink",
        one_out.to_str().unwrap(),
    ]);
    assert_eq!(one.status.code(), Some(1), "{}", stderr(&one));
    let files = shards(&dir, FAILOVER, 2, &["--seeds", "200"]);
    let merged_out = dir.join("merged-shrunk.json");
    let mut args: Vec<&std::ffi::OsStr> = vec!["merge".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    args.extend(["--shrink".as_ref(), merged_out.as_os_str()]);
    let merged = locksim(&args);
    assert_eq!(merged.status.code(), Some(1), "{}", stderr(&merged));
    let same = |s: &str, path: &Path| s.replace(&path.display().to_string(), "OUT");
    assert_eq!(
        same(summary(&stdout(&one)), &one_out),
        same(summary(&stdout(&merged)), &merged_out)
    );
    assert!(stdout(&merged).contains("shrunk seed 2 for mutual_exclusion"));
    assert_eq!(
        std::fs::read(&one_out).unwrap(),
        std::fs::read(&merged_out).unwrap()
    );

    // The scenario file the shards name changed since they ran: no shrinking.
    let edited = dir.join("failover-explore.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(FAILOVER),
        &edited,
    )
    .unwrap();
    let files = shards(&dir, edited.to_str().unwrap(), 2, &["--seeds", "200"]);
    let mut text = std::fs::read_to_string(&edited).unwrap();
    text.push('\n');
    std::fs::write(&edited, text).unwrap();
    let no = dir.join("no.json");
    let mut args: Vec<&std::ffi::OsStr> = vec!["merge".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    args.extend(["--shrink".as_ref(), no.as_os_str()]);
    let out = locksim(&args);
    refused(
        &out,
        &[
            &edited.display().to_string(),
            "the scenario changed since the shards ran",
        ],
    );
    assert!(!dir.join("no.json").exists());
}
