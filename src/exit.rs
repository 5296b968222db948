//! The exit codes of every subcommand, in one place:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | as expected (`run`), every property holds (`check`), nothing broke (`explore`, `merge`, `tune`) |
//! | 1 | not as expected, or a violation found |
//! | 2 | bad input (a file, a flag), or output that cannot be written |
//! | 3 | inconclusive: a fault or condition the run depends on was not seen to happen, or the simulator's event budget cut the run short |
//! | 130 | interrupted by Ctrl-C (every server started was stopped) |

/// As expected; nothing broke.
pub const OK: i32 = 0;
/// Not as expected; a property was violated.
pub const BROKEN: i32 = 1;
/// Bad input the user can fix, or output that cannot be written.
pub const BAD_INPUT: i32 = 2;
/// The run could not confirm what its verdict rests on.
pub const INCONCLUSIVE: i32 = 3;
/// Stopped by Ctrl-C.
pub const INTERRUPTED: i32 = 130;

/// Prints an error the user can fix on stderr and returns [`BAD_INPUT`].
pub fn bad_input(msg: impl std::fmt::Display) -> i32 {
    use std::io::Write as _;
    // Not eprintln!: a closed stderr must not panic either.
    let _ = writeln!(std::io::stderr(), "error: {msg}");
    BAD_INPUT
}

/// The code for a judged run: [`INCONCLUSIVE`] unless it is `conclusive`, then [`OK`] when it
/// came out as it should (`good`), else [`BROKEN`].
pub fn judged(conclusive: bool, good: bool) -> i32 {
    match (conclusive, good) {
        (false, _) => INCONCLUSIVE,
        (true, true) => OK,
        (true, false) => BROKEN,
    }
}
