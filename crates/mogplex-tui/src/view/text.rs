//! Text for the screen: styles, and wrapping done here rather than by ratatui, so that the number
//! of rows is known exactly.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

pub(super) fn bold(s: impl Into<String>) -> Span<'static> {
    Span::styled(s.into(), Style::default().add_modifier(Modifier::BOLD))
}

pub(super) fn dim(s: impl Into<String>) -> Span<'static> {
    Span::styled(s.into(), Style::default().fg(Color::DarkGray))
}

pub(super) fn cyan(s: impl Into<String>) -> Span<'static> {
    Span::styled(s.into(), Style::default().fg(Color::Cyan))
}

pub(super) fn yellow() -> Style {
    Style::default().fg(Color::Yellow)
}

pub(super) fn footer(f: &mut Frame, area: Rect, text: &str) {
    f.render_widget(Paragraph::new(Line::from(dim(text.to_owned()))), area);
}

/// Word-wraps `text` to `width` columns; words longer than a row are broken.
pub fn wrap(text: &str, width: u16) -> Vec<String> {
    let width = usize::from(width.max(1));
    let mut rows = Vec::new();
    for line in text.split('\n') {
        let mut row = String::new();
        let mut col = 0usize;
        for word in line.split(' ') {
            let w = word.width();
            if col > 0 && col + 1 + w > width {
                rows.push(std::mem::take(&mut row));
                col = 0;
            }
            if col > 0 {
                row.push(' ');
                col += 1;
            }
            if w <= width - col {
                row.push_str(word);
                col += w;
                continue;
            }
            // Too long for any row: break it.
            for c in word.chars() {
                let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                if col + cw > width {
                    rows.push(std::mem::take(&mut row));
                    col = 0;
                }
                row.push(c);
                col += cw;
            }
        }
        rows.push(row);
    }
    rows
}

/// Rows of `text` wrapped to `width`, each with `style`; the first row gets `prefix`.
pub(super) fn styled_rows(
    prefix: &str,
    text: &str,
    style: Style,
    width: u16,
) -> Vec<Line<'static>> {
    wrap(&format!("{prefix}{text}"), width)
        .into_iter()
        .map(|r| Line::from(Span::styled(r, style)))
        .collect()
}

/// The end of `s` that fits in `width` columns (a long pasted address shows its end).
pub(super) fn tail(s: &str, width: u16) -> String {
    let width = usize::from(width);
    let mut out: Vec<char> = Vec::new();
    let mut w = 0;
    for c in s.chars().rev() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if w + cw > width {
            break;
        }
        w += cw;
        out.push(c);
    }
    out.into_iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapping() {
        assert_eq!(wrap("", 10), vec![""]);
        assert_eq!(wrap("0123456789", 10), vec!["0123456789"]);
        assert_eq!(wrap("01234 56789", 10), vec!["01234", "56789"]);
        assert_eq!(
            wrap("0123456789abcdefghij0", 10),
            vec!["0123456789", "abcdefghij", "0"]
        );
        assert_eq!(wrap("a\n\nb", 10), vec!["a", "", "b"]);
        assert_eq!(wrap("ab cdefghijklm", 5), vec!["ab", "cdefg", "hijkl", "m"]);
    }
}
