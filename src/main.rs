//! The `locksim` command line: play scenarios on the simulator and judge histories.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
