//! Small HTML helpers.

/// Escapes text for HTML element content and double-quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A true time in microseconds as milliseconds with three decimals, like the checker prints.
pub(crate) fn ms3(us: u64) -> String {
    format!("{}.{:03} ms", us / 1_000, us % 1_000)
}

/// A time in microseconds as milliseconds without trailing zeros: `1500`, `0.5`, `2.25`.
pub(crate) fn ms_short(us: u64) -> String {
    let whole = us / 1_000;
    let frac = us % 1_000;
    if frac == 0 {
        return whole.to_string();
    }
    let f = format!("{frac:03}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn formats_milliseconds() {
        assert_eq!(ms3(100_400), "100.400 ms");
        assert_eq!(ms_short(1_500_000), "1500");
        assert_eq!(ms_short(500), "0.5");
        assert_eq!(ms_short(2_250), "2.25");
    }
}
