//! Text from outside this program (a model's answer, a provider's error message, what another
//! session wrote to a run, an MCP result) made safe for a terminal.
//!
//! A terminal acts on control characters: an escape sequence in an answer could set the window
//! title, clear the screen, plant a hyperlink (OSC 8) or write the clipboard (OSC 52). So every
//! control character except the newline and the tab is shown as visible text instead: C0 in
//! caret notation (`^[` for ESC, `^G` for BEL), DEL as `^?`, and the C1 controls
//! (U+0080–U+009F, which some terminals also obey) as `\u{9b}`. What follows an ESC is ordinary
//! text and shows as it is, so `ESC ] 0 ; title BEL` reads `^[]0;title^G`: nothing is lost, and
//! nothing is obeyed. `\r\n` becomes `\n`; a lone `\r` (which would draw over the line) shows as
//! `^M`.
//!
//! One function for every place that prints such text: the cockpit's transcript and screens,
//! `mogplex exec` on a terminal, and error messages. It needs nothing but `std`.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with its control characters made visible (see the module header). Borrows when there
/// is nothing to change, which is nearly always.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_care) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\t' => out.push(c),
            '\u{7f}' => out.push_str("^?"),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            c if ('\u{80}'..='\u{9f}').contains(&c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_care(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn plain_text_is_borrowed_and_unchanged() {
        let s = "héllo\n\tworld — ok";
        assert!(matches!(sanitize(s), std::borrow::Cow::Borrowed(_)));
        assert_eq!(sanitize(s), s);
    }

    #[test]
    fn terminal_controls_are_shown_not_obeyed() {
        // Window title, clear screen, a hyperlink, a clipboard write, colour, C1 CSI, BEL, DEL.
        let cases = [
            ("\x1b]0;pwned\x07", "^[]0;pwned^G"),
            ("\x1b[2J\x1b[H", "^[[2J^[[H"),
            (
                "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
                "^[]8;;https://evil.example^[\\click^[]8;;^[\\",
            ),
            ("\x1b]52;c;aGk=\x07", "^[]52;c;aGk=^G"),
            ("\x1b[31mred\x1b[0m", "^[[31mred^[[0m"),
            (
                "\u{9b}2J and \u{9d}0;t\u{9c}",
                "\\u{9b}2J and \\u{9d}0;t\\u{9c}",
            ),
            ("a\u{7f}b\u{0}c", "a^?b^@c"),
            ("one\r\ntwo\rthree", "one\ntwo^Mthree"),
        ];
        for (raw, shown) in cases {
            let out = sanitize(raw);
            assert_eq!(out, shown, "{raw:?}");
            assert!(
                !out.chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t'),
                "{out:?}"
            );
        }
    }
}
