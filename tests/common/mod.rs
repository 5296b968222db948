//! Helpers the integration tests share (each test file includes this with `mod common;`).

use locksim::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `failover-double-grant-real.json` with a `repl-timeout` far past the run: the primary never
/// drops the stalled replica, so every step that waits for that is never taken.
#[allow(dead_code)]
pub fn never_dropped() -> Scenario {
    let mut s = load("failover-double-grant-real.json");
    if let locksim::scenario::Topology::Replicated {
        repl_timeout_ms, ..
    } = &mut s.topology
    {
        *repl_timeout_ms = 60_000;
    }
    s
}

/// A shipped scenario from `scenarios/`, by file name; panics with the loader's message.
pub fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether redis-server is here; in CI its absence fails the test that asked.
#[allow(dead_code)]
pub fn redis_available() -> bool {
    match live::processes::find_redis_server() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("{e} — CI must run the real-Redis tests: run scripts/test.sh")
        }
        Err(e) => {
            eprintln!("SKIPPED (not in CI): {e}");
            false
        }
    }
}

/// Runs the built `locksim` binary with `args` from the project's root.
#[allow(dead_code)]
pub fn locksim<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_locksim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("locksim runs")
}

/// What a run printed on stdout.
#[allow(dead_code)]
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What a run printed on stderr.
#[allow(dead_code)]
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh scratch directory for `test` of the test file `group`.
#[allow(dead_code)]
pub fn scratch_dir(group: &str, test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(group)
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
