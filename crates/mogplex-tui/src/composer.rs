//! The multi-line message box: text and a cursor, edited by keys.
//!
//! The cursor is a byte offset that always sits on a character boundary, so no edit can split a
//! character. Layout (where the cursor lands on screen) is [`Composer::layout`], which wraps
//! hard at the given width so that the cursor position is exact.

use unicode_width::UnicodeWidthChar;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Composer {
    text: String,
    cursor: usize,
}

impl Composer {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn set(&mut self, text: &str) {
        self.text = text.to_owned();
        self.cursor = self.text.len();
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
    }

    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    pub fn insert(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    pub fn insert_str(&mut self, s: &str) {
        // Control characters other than newlines and tabs would draw as garbage.
        let clean: String = s
            .chars()
            .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
            .collect();
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
    }

    fn prev_boundary(&self) -> Option<usize> {
        self.text[..self.cursor]
            .char_indices()
            .next_back()
            .map(|(i, _)| i)
    }

    fn next_boundary(&self) -> Option<usize> {
        self.text[self.cursor..]
            .chars()
            .next()
            .map(|c| self.cursor + c.len_utf8())
    }

    pub fn backspace(&mut self) {
        if let Some(i) = self.prev_boundary() {
            self.text.replace_range(i..self.cursor, "");
            self.cursor = i;
        }
    }

    pub fn delete(&mut self) {
        if let Some(j) = self.next_boundary() {
            self.text.replace_range(self.cursor..j, "");
        }
    }

    pub fn left(&mut self) {
        if let Some(i) = self.prev_boundary() {
            self.cursor = i;
        }
    }

    pub fn right(&mut self) {
        if let Some(j) = self.next_boundary() {
            self.cursor = j;
        }
    }

    fn line_start(&self) -> usize {
        self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1)
    }

    fn line_end(&self) -> usize {
        self.text[self.cursor..]
            .find('\n')
            .map_or(self.text.len(), |i| self.cursor + i)
    }

    pub fn home(&mut self) {
        self.cursor = self.line_start();
    }

    pub fn end(&mut self) {
        self.cursor = self.line_end();
    }

    /// Ctrl+U: removes from the start of the line to the cursor.
    pub fn kill_to_start(&mut self) {
        let start = self.line_start();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Ctrl+W: removes the word before the cursor (and the spaces after it).
    pub fn delete_word(&mut self) {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end_matches([' ', '\t']);
        let start = trimmed.rfind(|c: char| c.is_whitespace()).map_or(0, |i| {
            i + trimmed[i..].chars().next().map_or(1, char::len_utf8)
        });
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Moves to the same column of the line above (or the start).
    pub fn up(&mut self) {
        let start = self.line_start();
        if start == 0 {
            self.cursor = 0;
            return;
        }
        let col = self.text[start..self.cursor].chars().count();
        let prev_start = self.text[..start - 1].rfind('\n').map_or(0, |i| i + 1);
        self.cursor = advance(&self.text, prev_start, start - 1, col);
    }

    /// Moves to the same column of the line below (or the end).
    pub fn down(&mut self) {
        let end = self.line_end();
        if end == self.text.len() {
            self.cursor = end;
            return;
        }
        let col = self.text[self.line_start()..self.cursor].chars().count();
        let next_start = end + 1;
        let next_end = self.text[next_start..]
            .find('\n')
            .map_or(self.text.len(), |i| next_start + i);
        self.cursor = advance(&self.text, next_start, next_end, col);
    }

    /// The text as rows of at most `width` columns (hard-wrapped), and the cursor's row and
    /// column in them.
    pub fn layout(&self, width: u16) -> (Vec<String>, (usize, u16)) {
        let width = usize::from(width.max(1));
        let mut rows = vec![String::new()];
        let mut col = 0usize;
        let mut cursor = (0usize, 0u16);
        for (i, c) in self.text.char_indices() {
            if i == self.cursor {
                cursor = (rows.len() - 1, col as u16);
            }
            if c == '\n' {
                rows.push(String::new());
                col = 0;
                continue;
            }
            let c = if c == '\t' { ' ' } else { c };
            let w = c.width().unwrap_or(0);
            if col + w > width {
                rows.push(String::new());
                col = 0;
                if i == self.cursor {
                    cursor = (rows.len() - 1, 0);
                }
            }
            if let Some(row) = rows.last_mut() {
                row.push(c);
            }
            col += w;
        }
        if self.cursor >= self.text.len() {
            if col >= width {
                rows.push(String::new());
                col = 0;
            }
            cursor = (rows.len() - 1, col as u16);
        }
        (rows, cursor)
    }
}

/// The byte offset `col` characters into `text[from..to]`, or `to`.
fn advance(text: &str, from: usize, to: usize, col: usize) -> usize {
    text[from..to]
        .char_indices()
        .nth(col)
        .map_or(to, |(i, _)| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_character_boundaries() {
        let mut c = Composer::default();
        c.insert_str("héllo wörld");
        c.left();
        c.left();
        c.backspace();
        assert_eq!(c.text(), "héllo wöld");
        c.home();
        c.right();
        c.delete();
        assert_eq!(c.text(), "hllo wöld");
        c.end();
        c.delete_word();
        assert_eq!(c.text(), "hllo ");
        c.insert_str("a\u{1b}[2Jb");
        assert_eq!(c.text(), "hllo a[2Jb", "escape characters are dropped");
    }

    #[test]
    fn lines_and_layout() {
        let mut c = Composer::default();
        c.insert_str("first line\nsecond");
        c.up();
        assert_eq!(&c.text()[..c.cursor()], "first ");
        c.down();
        assert_eq!(c.cursor(), c.text().len());
        c.kill_to_start();
        assert_eq!(c.text(), "first line\n");
        let (rows, cursor) = c.layout(5);
        assert_eq!(rows, vec!["first", " line", ""]);
        assert_eq!(cursor, (2, 0));
        c.set("abcde");
        assert_eq!(c.layout(5), (vec!["abcde".into(), String::new()], (1, 0)));
        c.home();
        assert_eq!(c.layout(5).1, (0, 0));
    }
}
