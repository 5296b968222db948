//! The one error a scenario can produce: where it is and what is wrong.

use std::fmt;
use std::path::PathBuf;

/// A scenario that cannot be played: file, field path, line (when known) and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file the scenario came from (or a label such as `<inline>`).
    pub file: PathBuf,
    /// Path of the offending field, e.g. `faults[1].crash` (empty for the whole document).
    pub field: String,
    /// Line in the file, when the parser knows it.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
    /// For a data file that cannot be used: which file, which line and why (also in
    /// `reason`).
    pub data: Option<Box<crate::datafile::DataFileError>>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ScenarioError {}
