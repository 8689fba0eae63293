//! HTML escaping for the pages the CLI serves (the loopback listener's answers): the one place
//! on the CLI side that turns text from outside into HTML.

/// Escapes `s` for HTML text and attribute values. Control characters (an escape sequence in
/// an `error_description`, say) become U+FFFD, so nothing reaches the page as a control code.
pub fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c if c.is_control() => "\u{fffd}".into(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("a\u{1b}[31mb\u{7}"), "a\u{fffd}[31mb\u{fffd}");
        assert_eq!(escape("plain · text"), "plain · text");
    }
}
