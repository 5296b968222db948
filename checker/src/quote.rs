//! Quoting what a user wrote in an error message: long values cut short, and serde_json's
//! position suffix taken off (the position is reported in a field of its own). Shared by the
//! history reader and the scenario loader, so both quote the same way.

/// The longest stretch of a value quoted in an error message, in characters: a
/// million-character name is not echoed in full.
pub const QUOTE_MAX_CHARS: usize = 200;

/// `text` cut to [`QUOTE_MAX_CHARS`] characters, with a note of how much was left out.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX_CHARS) {
        None => text.to_string(),
        Some((at, _)) => format!("{}... ({} more bytes)", &text[..at], text.len() - at),
    }
}

/// A serde_json message without the " at line L column C" it ends with.
pub fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_positions_dropped() {
        let long = "é".repeat(QUOTE_MAX_CHARS + 3);
        let cut = clip(&long);
        assert!(cut.starts_with(&"é".repeat(QUOTE_MAX_CHARS)));
        assert!(cut.ends_with("... (6 more bytes)"), "{cut}");
        assert_eq!(clip("short"), "short");
        assert_eq!(
            strip_position("expected `,` at line 3 column 7"),
            "expected `,`"
        );
        assert_eq!(strip_position("no position"), "no position");
    }
}
