//! Plays a scenario on the simulator and writes its timeline as a self-contained HTML page.
//!
//! ```sh
//! cargo run -p report --example timeline -- scenarios/failover-double-grant.json \
//!     reports/examples/failover-double-grant-timeline.html [--seed N]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("timeline: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let usage = "usage: timeline SCENARIO.json OUT.html [--seed N]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (scenario_path, out_path, seed) = match args.as_slice() {
        [s, o] => (PathBuf::from(s), PathBuf::from(o), None),
        [s, o, flag, n] if flag == "--seed" => {
            let n = n.parse::<u64>().map_err(|e| format!("--seed {n}: {e}"))?;
            (PathBuf::from(s), PathBuf::from(o), Some(n))
        }
        _ => return Err(usage.to_string()),
    };
    let sc = scenario::Scenario::load(&scenario_path).map_err(|e| e.to_string())?;
    let seed = seed.unwrap_or(sc.seed);
    let run = sim::run(&sc, seed);
    let verdict = checker::check(&run.records, &sc.checker);
    let title = format!("{} (simulator, seed {seed})", sc.name);
    let html = report::timeline_html(&title, &run.records, &verdict);
    std::fs::write(&out_path, html).map_err(|e| format!("{}: {e}", out_path.display()))?;
    println!("{}", verdict.summary());
    println!("wrote {}", out_path.display());
    Ok(())
}
