//! A history field shown by its text, kept as the value it renders until someone reads it.
//!
//! A backend that sent a [`lock_core::Command`] records the command itself (cloning it costs
//! a few reference counts), not its text: the text is written when the history is serialized,
//! printed or compared. Most simulated histories are judged and thrown away unwritten, so most
//! texts are never made. A history read back from JSON holds the text.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

/// A value recorded for its [`fmt::Display`] text: the value as a backend made it, or the
/// text as a history file (or a client program) gave it. Two are equal when their texts are.
#[derive(Clone)]
pub enum Text<T> {
    /// The value, rendered on demand.
    Value(T),
    /// The text itself.
    Text(String),
}

impl<T: fmt::Display> Text<T> {
    /// The text (borrowed when it is held as text).
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            Text::Value(v) => Cow::Owned(v.to_string()),
            Text::Text(s) => Cow::Borrowed(s),
        }
    }
}

impl<T: fmt::Display> fmt::Display for Text<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Text::Value(v) => v.fmt(f),
            Text::Text(s) => f.write_str(s),
        }
    }
}

/// As the text's `Debug`: a record prints the same however its text is held.
impl<T: fmt::Display> fmt::Debug for Text<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.as_text(), f)
    }
}

impl<T: fmt::Display> PartialEq for Text<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_text() == other.as_text()
    }
}

impl<T> From<String> for Text<T> {
    fn from(text: String) -> Self {
        Text::Text(text)
    }
}

impl<T> From<&str> for Text<T> {
    fn from(text: &str) -> Self {
        Text::Text(text.to_owned())
    }
}

impl<T: fmt::Display> Serialize for Text<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // serde_json writes a Display value straight into its output, escaped.
            Text::Value(v) => serializer.collect_str(v),
            Text::Text(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de, T> Deserialize<'de> for Text<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Text::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lock_core::Command;

    #[test]
    fn a_command_and_its_text_are_equal_and_serialize_alike() {
        let sent: Text<Command> = Text::Value(Command::Del { key: "k\"1".into() });
        let read: Text<Command> = Text::from("DEL k\"1");
        assert_eq!(sent, read);
        assert_ne!(sent, Text::from("DEL k"));
        let json = serde_json::to_string(&sent).unwrap();
        assert_eq!(json, r#""DEL k\"1""#);
        assert_eq!(json, serde_json::to_string(&read).unwrap());
        let back: Text<Command> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sent);
        assert_eq!(format!("{sent:?}"), format!("{read:?}"));
        assert_eq!(sent.as_text(), "DEL k\"1");
    }
}
