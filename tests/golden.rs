//! Golden histories guard refactors: every simulated scenario's history, at its own seed, is
//! compared byte for byte with the file committed under `tests/golden/`.
//!
//! A change that alters a history on purpose regenerates them in the same commit and says
//! why: `LOCKSIM_BLESS=1 cargo test --test golden`.

use locksim::checker::history::write_jsonl;
use locksim::play::play_sim;
use locksim::scenario::{Backend, Scenario};
use std::path::Path;

#[test]
fn every_simulated_history_matches_its_golden_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let golden = root.join("tests/golden");
    let bless = std::env::var("LOCKSIM_BLESS").is_ok_and(|v| v == "1");
    if bless {
        std::fs::create_dir_all(&golden).unwrap();
    }
    // `scenarios/NAME.json` has its golden at `tests/golden/NAME.jsonl`, a fault space
    // `scenarios/spaces/NAME.json` at `tests/golden/spaces/NAME.jsonl` (the names may repeat).
    let mut files: Vec<(std::path::PathBuf, std::path::PathBuf)> = ["", "spaces"]
        .iter()
        .flat_map(|sub| {
            std::fs::read_dir(root.join("scenarios").join(sub))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .map(|p| (p, golden.join(sub)))
                .collect::<Vec<_>>()
        })
        .collect();
    files.sort();
    if bless {
        std::fs::create_dir_all(golden.join("spaces")).unwrap();
    }
    let mut compared = 0;
    let mut differ = Vec::new();
    for (file, golden) in &files {
        let scenario = Scenario::load(file).unwrap_or_else(|e| panic!("{e}"));
        if !scenario.supports(Backend::Sim) {
            continue;
        }
        let played = play_sim(&scenario, None);
        let mut bytes = Vec::new();
        write_jsonl(&played.records, &mut bytes).unwrap();
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        let path = golden.join(format!("{stem}.jsonl"));
        if bless {
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let want = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (new scenario? LOCKSIM_BLESS=1 cargo test --test golden)",
                    path.display()
                )
            });
            if want != bytes {
                let line = want
                    .split(|b| *b == b'\n')
                    .zip(bytes.split(|b| *b == b'\n'))
                    .position(|(a, b)| a != b)
                    .map_or(0, |i| i + 1);
                differ.push(format!(
                    "{} (first difference at line {line})",
                    path.strip_prefix(root).unwrap_or(&path).display()
                ));
            }
        }
        compared += 1;
    }
    assert!(compared >= 30, "only {compared} simulated scenarios found");
    assert!(
        differ.is_empty(),
        "histories differ from tests/golden/ (LOCKSIM_BLESS=1 regenerates them; say why in the commit):\n{}",
        differ.join("\n")
    );
}
