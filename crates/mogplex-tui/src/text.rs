//! Text measured in terminal columns: wrapping (done here rather than by ratatui, so that the
//! number of rows is known exactly), cutting to a width with `…`, and the end of a long input.
//! Everything drawn that did not come from this program passes through [`wrap`] or [`fit`],
//! which show control characters instead of sending them (see [`crate::sanitize`]).

use crate::sanitize::sanitize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Text as it is drawn: control characters made visible, tabs as spaces (a terminal would
/// move the cursor by an amount the layout cannot know).
fn drawable(text: &str) -> String {
    let clean = sanitize(text);
    if clean.contains('\t') {
        clean.replace('\t', "    ")
    } else {
        clean.into_owned()
    }
}

/// Word-wraps `text` to `width` columns; words longer than a row are broken.
pub fn wrap(text: &str, width: u16) -> Vec<String> {
    let width = usize::from(width.max(1));
    let text = drawable(text);
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
                let cw = c.width().unwrap_or(0);
                if col + cw > width && col > 0 {
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

/// `text` on one row of `width` columns: whole if it fits, else cut with `…` at the end.
pub fn fit(text: &str, width: u16) -> String {
    let width = usize::from(width);
    let text = drawable(text).replace('\n', " ");
    if text.width() <= width {
        return text;
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in text.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw > width - 1 {
            break;
        }
        w += cw;
        out.push(c);
    }
    out.push('…');
    out
}

/// The end of `s` that fits in `width` columns (a long pasted address shows its end).
pub fn tail(s: &str, width: u16) -> String {
    let width = usize::from(width);
    let mut out: Vec<char> = Vec::new();
    let mut w = 0;
    for c in s.chars().rev() {
        let cw = c.width().unwrap_or(0);
        if w + cw > width {
            break;
        }
        w += cw;
        out.push(c);
    }
    out.into_iter().rev().collect()
}

/// Display width in columns.
pub fn width(s: &str) -> usize {
    s.width()
}

#[cfg(test)]
mod tests {
    use super::{fit, wrap};

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
        // A character wider than the row still goes somewhere, one a row.
        assert_eq!(wrap("日本", 1), vec!["日", "本"]);
        assert_eq!(wrap("\x1b]0;t\x07", 20), vec!["^[]0;t^G"]);
    }

    #[test]
    fn fitting() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("0123456789ab", 10), "012345678…");
        assert_eq!(fit("abc", 1), "…");
        assert_eq!(fit("abc", 0), "");
    }
}
