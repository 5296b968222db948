//! Standard output that neither a closed pipe nor a full disk can crash.
//!
//! `println!` panics when stdout is gone (`locksim run ... | head -1`) or full (`> /dev/full`).
//! Every subcommand writes through [`Out`] instead: the first failed write stops the output,
//! and [`Out::finish`] turns it into the exit code — a closed pipe (the reader has what it
//! wanted) exits quietly with the command's own code, any other write error is reported on
//! stderr with exit code 2.

use std::fmt::Display;
use std::io::{self, ErrorKind, Write};

/// Standard output, with the first write error kept for [`Out::finish`].
pub struct Out {
    inner: io::StdoutLock<'static>,
    error: Option<io::Error>,
}

impl Out {
    /// Locks standard output.
    pub fn new() -> Out {
        Out {
            inner: io::stdout().lock(),
            error: None,
        }
    }

    /// Writes `text` and a newline (nothing once a write has failed).
    pub fn line(&mut self, text: impl Display) {
        if self.error.is_none() {
            if let Err(e) = writeln!(self.inner, "{text}") {
                self.error = Some(e);
            }
        }
    }

    /// Writes `text` as it is (nothing once a write has failed).
    pub fn text(&mut self, text: &str) {
        if self.error.is_none() {
            if let Err(e) = self.inner.write_all(text.as_bytes()) {
                self.error = Some(e);
            }
        }
    }

    /// Whether a write failed (the rest of the output would be lost: stop working on it).
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Flushes and returns the exit code: `code`, or 2 after a write error other than a
    /// closed pipe (which is reported on stderr).
    pub fn finish(mut self, code: i32) -> i32 {
        if self.error.is_none() {
            if let Err(e) = self.inner.flush() {
                self.error = Some(e);
            }
        }
        match self.error {
            None => code,
            Some(e) if e.kind() == ErrorKind::BrokenPipe => code,
            Some(e) => crate::exit::bad_input(format!("cannot write the output: {e}")),
        }
    }
}

/// `outln!(out, "format", args...)`: one formatted line to an [`Out`].
macro_rules! outln {
    ($out:expr) => {
        $out.line("")
    };
    ($out:expr, $($arg:tt)*) => {
        $out.line(format_args!($($arg)*))
    };
}
pub(crate) use outln;
