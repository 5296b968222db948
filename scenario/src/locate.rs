//! Where in a scenario file a JSON syntax error is, as a field path.
//!
//! serde_path_to_error names a field only once its key has been read and its value started;
//! a syntax error around a key (`"duration_ms": 5_000`, a trailing comma) comes out as `?`.
//! [`field_at`] reads the text up to the error, tracking objects, arrays and keys, and
//! returns the path of the field being parsed there (empty at the top level) and the last
//! key completed in the innermost object, if no key is being parsed.

/// One level of nesting.
enum Frame {
    Object {
        /// The key whose value is being read.
        key: Option<String>,
        /// The key read before the last comma.
        after: Option<String>,
        /// A key read, waiting for its `:`.
        pending: Option<String>,
    },
    Array {
        index: usize,
    },
}

/// The byte offset just past 1-based `line` and `column` (serde_json's column is the number
/// of bytes of the line it has read).
pub(crate) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + column).min(text.len())
}

/// The field path at byte `offset` of `text`, and the key completed before it when no key is
/// being read in the innermost object.
pub(crate) fn field_at(text: &str, offset: usize) -> (String, Option<String>) {
    let bytes = &text.as_bytes()[..offset.min(text.len())];
    let mut frames: Vec<Frame> = Vec::new();
    // The outermost value, once closed: an error just past its end (a trailing comma before
    // the final `}`) is still reported at its level.
    let mut closed = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let from = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let s = String::from_utf8_lossy(&bytes[from..i.min(bytes.len())]).into_owned();
                if let Some(Frame::Object {
                    key: key @ None,
                    pending,
                    ..
                }) = frames.last_mut()
                {
                    if i >= bytes.len() {
                        // The error is inside this key: it is the field being parsed.
                        *key = Some(s);
                    } else {
                        *pending = Some(s);
                    }
                }
            }
            b':' => {
                if let Some(Frame::Object { key, pending, .. }) = frames.last_mut() {
                    if let Some(p) = pending.take() {
                        *key = Some(p);
                    }
                }
            }
            b',' => match frames.last_mut() {
                Some(Frame::Object { key, after, .. }) => *after = key.take().or(after.take()),
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b'{' => frames.push(Frame::Object {
                key: None,
                after: None,
                pending: None,
            }),
            b'[' => frames.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                let f = frames.pop();
                if frames.is_empty() {
                    closed = f;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if frames.is_empty() {
        frames.extend(closed);
    }
    let mut path = String::new();
    for f in &frames {
        match f {
            Frame::Object { key: Some(k), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None, .. } => break,
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    let after = match frames.last() {
        Some(Frame::Object {
            key: None, after, ..
        }) => after.clone(),
        _ => None,
    };
    (path, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, marker: &str) -> (String, Option<String>) {
        field_at(text, text.find(marker).unwrap())
    }

    #[test]
    fn names_the_key_being_parsed() {
        let t = r#"{"seed": 7, "duration_ms": 5_000, "x": 1}"#;
        assert_eq!(at(t, "_000"), ("duration_ms".into(), None));
        let t = r#"{"clients": [{"name": "A"}, {"name": "B", "work_ms": {"fixed_ms": 1x}}]}"#;
        assert_eq!(at(t, "x}"), ("clients[1].work_ms.fixed_ms".into(), None));
    }

    #[test]
    fn between_keys_says_after_which() {
        let t = r#"{"seed": 7, "expect": {"a": "b"},}"#;
        assert_eq!(at(t, ",}"), ("expect".into(), None));
        assert_eq!(
            field_at(t, t.len() - 1),
            (String::new(), Some("expect".into()))
        );
        let t = r#"{"seed": 7, "durat"#;
        assert_eq!(field_at(t, t.len()), ("durat".into(), None));
    }

    #[test]
    fn offsets_count_lines_and_bytes() {
        assert_eq!(offset_of("ab\ncd\n", 2, 2), 5);
        assert_eq!(offset_of("ab", 9, 9), 2);
    }
}
