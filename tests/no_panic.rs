//! No input makes locksim panic: shipped scenarios with one field replaced by a hostile
//! value are either refused with an error or played to the end.

use locksim::play::play_sim;
use locksim::scenario::Scenario;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// Every shipped scenario file, sorted by path, as JSON.
static SHIPPED: LazyLock<Vec<(PathBuf, Value)>> = LazyLock::new(shipped);

fn shipped() -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every leaf of a JSON value, as a JSON pointer.
fn leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| leaves(x, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| leaves(x, format!("{at}/{i}"), out)),
        _ => out.push(at),
    }
}

/// The index of a shipped file: any of the `count` files can be drawn.
fn file_index(count: usize) -> impl Strategy<Value = usize> {
    0..count
}

/// The strategy the property draws files from reaches every shipped file (it once drew from
/// a hard-coded `0..27` while 40 files shipped).
#[test]
fn every_shipped_file_can_be_drawn() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let on_disk = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(SHIPPED.len(), on_disk);
    let strategy = file_index(SHIPPED.len());
    let mut runner = TestRunner::deterministic();
    let mut drawn = std::collections::BTreeSet::new();
    for _ in 0..100 * on_disk {
        drawn.insert(strategy.new_tree(&mut runner).unwrap().current());
    }
    assert_eq!(drawn, (0..on_disk).collect(), "indices drawn");
}

fn hostile() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(1e308)),
        Just(json!(0.000001)),
        Just(json!(null)),
        Just(json!("")),
        Just(json!("redis-99")),
        Just(json!([])),
        Just(json!({})),
        any::<i32>().prop_map(|n| json!(n)),
        any::<f32>().prop_map(|x| json!(x)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn hostile_fields_are_refused_or_played(file in file_index(SHIPPED.len()), leaf in any::<prop::sample::Index>(), value in hostile()) {
        let (path, mut v) = SHIPPED[file].clone();
        let mut all = Vec::new();
        leaves(&v, String::new(), &mut all);
        let pointer = leaf.get(&all).clone();
        if let Some(slot) = v.pointer_mut(&pointer) {
            *slot = value;
        }
        match Scenario::parse(&v.to_string(), &path) {
            Err(e) => {
                // A refusal names the file and says why.
                let msg = e.to_string();
                prop_assert!(msg.contains(path.file_name().unwrap().to_str().unwrap()), "{msg}");
                prop_assert!(!e.reason.is_empty());
            }
            Ok(mut s) => {
                // Keep each case short: at most 20 simulated seconds.
                s.duration_ms = s.duration_ms.min(20_000);
                let played = play_sim(&s, None);
                prop_assert!(!played.records.is_empty());
            }
        }
    }
}
