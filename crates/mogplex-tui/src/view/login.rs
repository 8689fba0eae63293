//! The login screen: the menu, a sign-in that waits, and typing a provider key.

use super::text::{bold, cyan, dim, footer, styled_rows, tail, wrap, yellow};
use crate::app::{App, LoginMode, key_providers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use unicode_width::UnicodeWidthStr;

pub(super) fn login(
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
    let notices = app
        .header()
        .notices
        .iter()
        .chain(&app.header().login_notice);
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
