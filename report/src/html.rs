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

/// The small Markdown the reports write — `#`/`##` headings, `- ` items, `**bold**`,
/// `` `code` `` and pipe tables — as HTML.
pub(crate) fn markdown_to_html(md: &str) -> String {
    use std::fmt::Write as _;
    let inline = |t: &str| {
        let e = escape(t).replace('`', "");
        let mut parts = e.split("**");
        let mut o = parts.next().unwrap_or_default().to_string();
        for (i, p) in parts.enumerate() {
            o.push_str(if i % 2 == 0 { "<b>" } else { "</b>" });
            o.push_str(p);
        }
        o
    };
    let mut out = String::new();
    let mut in_table = false;
    for line in md.lines() {
        let is_row = line.starts_with('|');
        if in_table && !is_row {
            out.push_str("</table>\n");
            in_table = false;
        }
        if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(out, "<h2>{}</h2>", inline(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(out, "<h1>{}</h1>", inline(h));
        } else if let Some(item) = line.strip_prefix("- ") {
            let _ = writeln!(out, "<p>{}</p>", inline(item));
        } else if line.starts_with("|---") {
            continue;
        } else if is_row {
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                out.push_str("<table>\n");
                in_table = true;
            }
            let cells: String = line
                .trim_matches('|')
                .split('|')
                .map(|c| format!("<{tag}>{}</{tag}>", inline(c.trim())))
                .collect();
            let _ = writeln!(out, "<tr>{cells}</tr>");
        } else if !line.trim().is_empty() {
            let _ = writeln!(out, "<p>{}</p>", inline(line));
        }
    }
    if in_table {
        out.push_str("</table>\n");
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
