//! No input makes locksim panic: shipped scenarios with one field replaced by a hostile
//! value are either refused with an error or played to the end.

use locksim::play::play_sim;
use locksim::scenario::Scenario;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

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
    fn hostile_fields_are_refused_or_played(file in 0usize..27, leaf in any::<prop::sample::Index>(), value in hostile()) {
        let files = shipped();
        let (path, mut v) = files[file % files.len()].clone();
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
