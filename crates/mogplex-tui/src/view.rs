//! Drawing: every frame comes from the [`App`] alone.
//!
//! Text is wrapped here rather than by ratatui, so that the number of rows is known exactly: the
//! transcript keeps its end in view however long the answers are, and the cursor lands where the
//! next character goes.

use crate::app::{
    App, EntryKind, LoginMode, ModelChoice, Overlay, SLASH_COMMANDS, Screen, key_providers,
};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use unicode_width::UnicodeWidthStr;

pub fn draw(f: &mut Frame, app: &App) {
    match &app.screen {
        Screen::Login {
            mode,
            selected,
            error,
            notes,
        } => login(f, app, mode, *selected, error.as_ref(), notes),
        Screen::Session => session(f, app),
    }
    if let Some(o) = &app.overlay {
        overlay(f, o);
    }
}

fn bold(s: impl Into<String>) -> Span<'static> {
    Span::styled(s.into(), Style::default().add_modifier(Modifier::BOLD))
}

fn dim(s: impl Into<String>) -> Span<'static> {
    Span::styled(s.into(), Style::default().fg(Color::DarkGray))
}

fn cyan(s: impl Into<String>) -> Span<'static> {
    Span::styled(s.into(), Style::default().fg(Color::Cyan))
}

fn yellow() -> Style {
    Style::default().fg(Color::Yellow)
}

fn footer(f: &mut Frame, area: Rect, text: &str) {
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
fn styled_rows(prefix: &str, text: &str, style: Style, width: u16) -> Vec<Line<'static>> {
    wrap(&format!("{prefix}{text}"), width)
        .into_iter()
        .map(|r| Line::from(Span::styled(r, style)))
        .collect()
}

fn login(
    f: &mut Frame,
    app: &App,
    mode: &LoginMode,
    selected: usize,
    error: Option<&(String, String)>,
    notes: &[String],
) {
    let [body, foot] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(f.area());
    let inner_width = body.width.saturating_sub(2);
    let mut lines = vec![Line::from(bold("Welcome to Mogplex")), Line::from("")];
    // Where the text cursor goes, as (row in `lines`, column), for the input boxes.
    let mut cursor: Option<(usize, u16)> = None;
    let keys = match mode {
        LoginMode::Menu => {
            lines.push(Line::from(
                "Sign in to start. Your account brings its models, MCP servers and plan.",
            ));
            lines.push(Line::from(""));
            for (i, choice) in app.login_choices().iter().enumerate() {
                let marker = if i == selected { "› " } else { "  " };
                let style = if i == selected {
                    Style::default()
                        .add_modifier(Modifier::BOLD)
                        .fg(Color::Cyan)
                } else {
                    Style::default()
                };
                lines.push(Line::from(Span::styled(
                    format!("{marker}{}", choice.label()),
                    style,
                )));
            }
            "↑/↓ choose · Enter select · q quit"
        }
        LoginMode::Starting { device } => {
            lines.push(Line::from(if *device {
                "Asking the account service for a device code…"
            } else {
                "Contacting the account service…"
            }));
            "Esc cancel"
        }
        LoginMode::WaitingBrowser { url, paste } => {
            lines.push(Line::from("Waiting for you to sign in in your browser…"));
            lines.push(Line::from(""));
            lines.push(Line::from("If it did not open, visit:"));
            // The address is shown whole (wrapped, never cut) so it can be copied.
            for row in wrap(url, inner_width) {
                lines.push(Line::from(cyan(row)));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(
                "Browser on another machine? Sign in there, then paste the address it ends on:",
            ));
            let shown = tail(paste, inner_width.saturating_sub(3));
            cursor = Some((lines.len(), 2 + shown.width() as u16));
            lines.push(Line::from(vec![dim("› "), Span::raw(shown)]));
            "Enter submit the pasted address · Ctrl+Y copy the address · Esc cancel"
        }
        LoginMode::WaitingDevice { uri, code } => {
            lines.push(Line::from("Open this address in any browser:"));
            for row in wrap(uri, inner_width) {
                lines.push(Line::from(cyan(row)));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(vec![
                Span::raw("and enter the code  "),
                bold(code.clone()),
            ]));
            lines.push(Line::from(""));
            lines.push(Line::from("Waiting for approval…"));
            "Ctrl+Y copy the address · Esc cancel"
        }
        LoginMode::PickProvider { selected } => {
            lines.push(Line::from("Which provider is the key for?"));
            lines.push(Line::from(""));
            for (i, p) in key_providers().iter().enumerate() {
                let marker = if i == *selected { "› " } else { "  " };
                let text = format!("{marker}{} ({})", p.display_name(), p.env_var());
                lines.push(Line::from(if i == *selected {
                    Span::styled(
                        text,
                        Style::default()
                            .add_modifier(Modifier::BOLD)
                            .fg(Color::Cyan),
                    )
                } else {
                    Span::raw(text)
                }));
            }
            "↑/↓ choose · Enter select · Esc back"
        }
        LoginMode::EnterKey { provider, input } => {
            lines.push(Line::from(format!(
                "Paste your {} API key. It is stored in auth.json and never shown.",
                provider.display_name()
            )));
            lines.push(Line::from(""));
            let dots = "•".repeat(input.chars().count().min(64));
            cursor = Some((lines.len(), 2 + dots.chars().count() as u16));
            lines.push(Line::from(vec![dim("› "), Span::raw(dots)]));
            "Enter store · Esc back"
        }
    };
    for n in notes {
        lines.push(Line::from(""));
        lines.extend(styled_rows("note: ", n, yellow(), inner_width));
    }
    if let Some((message, hint)) = error {
        lines.push(Line::from(""));
        lines.extend(styled_rows(
            "error: ",
            message,
            Style::default().fg(Color::Red),
            inner_width,
        ));
        lines.extend(styled_rows("hint: ", hint, Style::default(), inner_width));
    }
    let notices = app.header.notices.iter().chain(&app.header.login_notice);
    for n in notices {
        lines.push(Line::from(""));
        lines.extend(styled_rows("! ", n, yellow(), inner_width));
    }
    let block = Block::default().borders(Borders::ALL).title(" mogplex ");
    f.render_widget(Paragraph::new(lines).block(block), body);
    if let Some((row, col)) = cursor {
        let y = body.y + 1 + row as u16;
        if y < body.bottom().saturating_sub(1) {
            f.set_cursor_position(Position::new(body.x + 1 + col.min(inner_width), y));
        }
    }
    footer(f, foot, keys);
}

/// The end of `s` that fits in `width` columns (a long pasted address shows its end).
fn tail(s: &str, width: u16) -> String {
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

fn session(f: &mut Frame, app: &App) {
    let width = f.area().width;
    let h = &app.header;
    let mut top = vec![Line::from(vec![
        bold("mogplex"),
        dim(" · "),
        Span::raw(h.provider.clone().unwrap_or_else(|| "no provider".into())),
        dim(" · "),
        Span::raw(h.model.clone().unwrap_or_else(|| "default model".into())),
    ])];
    for row in wrap(h.credential.as_deref().unwrap_or(""), width) {
        top.push(Line::from(dim(row)));
    }
    if let Some(hosted) = &h.hosted {
        for row in wrap(hosted, width) {
            top.push(Line::from(dim(row)));
        }
    }
    // The override notices must be seen whole: the header grows to fit them.
    for n in h.notices.iter().chain(&h.stale) {
        top.extend(styled_rows("! ", n, yellow(), width));
    }

    let completions = app.completions();
    let inner = width.saturating_sub(2);
    let (composer_rows, (cur_row, cur_col)) = app.composer.layout(inner);
    let visible = composer_rows.len().clamp(1, 6);
    let first = (cur_row + 1).saturating_sub(visible);
    let [head, body, hints, input, foot] = Layout::vertical([
        Constraint::Length(top.len() as u16),
        Constraint::Min(1),
        Constraint::Length(completions.len() as u16),
        Constraint::Length(visible as u16 + 2),
        Constraint::Length(1),
    ])
    .areas(f.area());
    f.render_widget(Paragraph::new(top), head);

    let mut lines: Vec<Line> = Vec::new();
    for e in &app.transcript {
        let (prefix, style) = match e.kind {
            EntryKind::User => ("you › ", Style::default().add_modifier(Modifier::BOLD)),
            EntryKind::Assistant => ("", Style::default()),
            EntryKind::Notice => ("note: ", yellow()),
            EntryKind::Error => ("error: ", Style::default().fg(Color::Red)),
        };
        lines.extend(styled_rows(prefix, &e.text, style, body.width));
        lines.push(Line::from(""));
    }
    // Keep the end in view, unless scrolled up.
    let height = usize::from(body.height);
    let max_scroll = lines.len().saturating_sub(height);
    let scroll = app.scroll.min(max_scroll);
    let skip = max_scroll - scroll;
    let shown: Vec<Line> = lines.into_iter().skip(skip).take(height).collect();
    f.render_widget(Paragraph::new(shown), body);

    let hint_lines: Vec<Line> = completions
        .iter()
        .map(|(c, d)| Line::from(vec![cyan(format!("{c:<9}")), dim(*d)]))
        .collect();
    f.render_widget(Paragraph::new(hint_lines), hints);

    let title = if app.streaming {
        " answering… (Esc stops) "
    } else {
        " message "
    };
    let text: Vec<Line> = composer_rows
        .into_iter()
        .skip(first)
        .take(visible)
        .map(Line::from)
        .collect();
    f.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(title)),
        input,
    );
    if app.overlay.is_none() {
        f.set_cursor_position(Position::new(
            input.x + 1 + cur_col.min(inner),
            input.y + 1 + (cur_row - first) as u16,
        ));
    }
    let keys = if app.ctrl_c_armed {
        "Press Ctrl+C again to quit"
    } else if scroll > 0 {
        "PgUp/PgDn scroll · showing earlier messages"
    } else {
        "Enter send · Shift+Enter new line · /help · Tab complete · Ctrl+C twice quits"
    };
    footer(f, foot, keys);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Label and value rows; values longer than `width` allows wrap under themselves.
fn rows(rows: &[(String, String)], width: u16) -> Vec<Line<'static>> {
    let label = rows.iter().map(|(k, _)| k.width()).max().unwrap_or(0);
    let room = width.saturating_sub(label as u16 + 2).max(10);
    let mut out = Vec::new();
    for (k, v) in rows {
        for (i, part) in wrap(v, room).into_iter().enumerate() {
            let head = if i == 0 { k.as_str() } else { "" };
            out.push(Line::from(vec![
                bold(format!("{head:<label$}  ")),
                Span::raw(part),
            ]));
        }
    }
    out
}

fn model_lines(choices: &[ModelChoice], selected: usize) -> Vec<Line<'static>> {
    if choices.is_empty() {
        return vec![Line::from("No models to choose from.")];
    }
    let width = choices.iter().map(|c| c.id.width()).max().unwrap_or(0);
    choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let marker = if i == selected { "› " } else { "  " };
            let id = format!("{marker}{:<width$}", c.id);
            let id = if i == selected {
                Span::styled(
                    id,
                    Style::default()
                        .add_modifier(Modifier::BOLD)
                        .fg(Color::Cyan),
                )
            } else {
                Span::raw(id)
            };
            if c.detail.is_empty() {
                Line::from(id)
            } else {
                Line::from(vec![id, dim(format!("  {}", c.detail))])
            }
        })
        .collect()
}

fn overlay(f: &mut Frame, o: &Overlay) {
    let max_width = f.area().width.saturating_sub(6);
    let (title, mut lines): (String, Vec<Line>) = match o {
        Overlay::Status(r) => (" status ".into(), rows(r, max_width)),
        Overlay::List { title, rows: r } => (
            format!(" {title} "),
            if r.is_empty() {
                vec![Line::from("Nothing here.")]
            } else {
                rows(r, max_width)
            },
        ),
        Overlay::Model { choices, selected } => (
            " model ".into(),
            match choices {
                None => vec![Line::from("Loading the models…")],
                Some(c) => model_lines(c, *selected),
            },
        ),
        Overlay::Help => {
            let mut l: Vec<Line> = SLASH_COMMANDS
                .iter()
                .map(|(c, d)| Line::from(vec![bold(format!("{c:<9}")), Span::raw(*d)]))
                .collect();
            l.push(Line::from(""));
            l.push(Line::from(dim(
                "Shift+Enter or Ctrl+J new line · ↑/↓ earlier prompts · PgUp/PgDn scroll",
            )));
            l.push(Line::from(dim(
                "Esc stops an answer · Ctrl+C clears, twice quits",
            )));
            (" help ".into(), l)
        }
        Overlay::ConfirmLogout(p) => (
            " sign out ".into(),
            vec![
                Line::from(match p {
                    None => "Sign out of Mogplex? Stored provider keys are kept.".to_owned(),
                    Some(p) => format!("Remove the stored {} key?", p.display_name()),
                }),
                Line::from(""),
                Line::from(dim("y / Enter: yes · n / Esc: no")),
            ],
        ),
    };
    let width = lines
        .iter()
        .map(|l| l.width() as u16)
        .max()
        .unwrap_or(20)
        .clamp(30, max_width.max(1));
    // Rows longer than the box are cut, not wrapped: each stays one row.
    let max_rows = usize::from(f.area().height.saturating_sub(2));
    lines.truncate(max_rows.max(1));
    let area = centered(f.area(), width + 4, lines.len() as u16 + 2);
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
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
