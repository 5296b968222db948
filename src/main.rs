//! The `locksim` command line: play scenarios on the simulator and judge histories.

mod card_cmd;
mod cli;
mod exhaustive_cmd;
mod exit;
mod explore_cmd;
mod matrix_cmd;
mod merge_cmd;
mod out;
mod tune_cmd;

fn main() {
    std::process::exit(cli::main());
}
