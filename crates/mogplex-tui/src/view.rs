//! Drawing: every frame comes from the [`App`] alone.

use crate::app::{
    App, EntryKind, LOGIN_CHOICES, LoginMode, Overlay, SLASH_COMMANDS, Screen, key_providers,
};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

pub fn draw(f: &mut Frame, app: &App) {
    match &app.screen {
        Screen::Login {
            mode,
            selected,
            error,
        } => login(f, app, mode, *selected, error.as_ref()),
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

fn footer(f: &mut Frame, area: Rect, text: &str) {
    f.render_widget(Paragraph::new(Line::from(dim(text.to_owned()))), area);
}

fn login(
    f: &mut Frame,
    app: &App,
    mode: &LoginMode,
    selected: usize,
    error: Option<&(String, String)>,
) {
    let [body, foot] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(f.area());
    let mut lines = vec![Line::from(bold("Welcome to Mogplex")), Line::from("")];
    let keys = match mode {
        LoginMode::Menu => {
            lines.push(Line::from(
                "Sign in to start. Your account brings its models, MCP servers and plan.",
            ));
            lines.push(Line::from(""));
            for (i, choice) in LOGIN_CHOICES.iter().enumerate() {
                let marker = if i == selected { "› " } else { "  " };
                let style = if i == selected {
                    Style::default()
                        .add_modifier(Modifier::BOLD)
                        .fg(Color::Cyan)
                } else {
                    Style::default()
                };
                lines.push(Line::from(Span::styled(format!("{marker}{choice}"), style)));
            }
            "↑/↓ choose · Enter select · q quit"
        }
        LoginMode::WaitingBrowser { url, paste } => {
            lines.push(Line::from("Waiting for you to sign in in your browser…"));
            lines.push(Line::from(""));
            lines.push(Line::from("If it did not open, visit:"));
            lines.push(Line::from(Span::styled(
                url.clone(),
                Style::default().fg(Color::Cyan),
            )));
            lines.push(Line::from(""));
            lines.push(Line::from(
                "Browser on another machine? Sign in there, then paste the address it ends on:",
            ));
            lines.push(Line::from(vec![dim("› "), Span::raw(paste.clone())]));
            "Enter submit the pasted address · Esc cancel"
        }
        LoginMode::WaitingDevice { uri, code } => {
            lines.push(Line::from("Open this address in any browser:"));
            lines.push(Line::from(Span::styled(
                uri.clone(),
                Style::default().fg(Color::Cyan),
            )));
            lines.push(Line::from(""));
            lines.push(Line::from(vec![
                Span::raw("and enter the code  "),
                bold(code.clone()),
            ]));
            lines.push(Line::from(""));
            lines.push(Line::from("Waiting for approval…"));
            "Esc cancel"
        }
        LoginMode::PickProvider { selected } => {
            lines.push(Line::from("Which provider is the key for?"));
            lines.push(Line::from(""));
            for (i, p) in key_providers().iter().enumerate() {
                let marker = if i == *selected { "› " } else { "  " };
                lines.push(Line::from(format!(
                    "{marker}{} ({})",
                    p.display_name(),
                    p.env_var()
                )));
            }
            "↑/↓ choose · Enter select · Esc back"
        }
        LoginMode::EnterKey { provider, input } => {
            lines.push(Line::from(format!(
                "Paste your {} API key. It is stored in auth.json and never shown.",
                provider.display_name()
            )));
            lines.push(Line::from(""));
            lines.push(Line::from(vec![
                dim("› "),
                Span::raw("•".repeat(input.chars().count().min(64))),
            ]));
            "Enter store · Esc back"
        }
    };
    if let Some((message, hint)) = error {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            format!("error: {message}"),
            Style::default().fg(Color::Red),
        )));
        lines.push(Line::from(format!("hint: {hint}")));
    }
    for n in &app.header.notices {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            format!("! {n}"),
            Style::default().fg(Color::Yellow),
        )));
    }
    let block = Block::default().borders(Borders::ALL).title(" mogplex ");
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        body,
    );
    footer(f, foot, keys);
}

/// How many rows `text` takes when word-wrapped to `width` columns.
fn wrapped_rows(text: &str, width: u16) -> u16 {
    let width = usize::from(width.max(1));
    let mut rows = 1usize;
    let mut col = 0usize;
    for word in text.split(' ') {
        let w = word.chars().count();
        if col > 0 && col + 1 + w > width {
            rows += 1;
            col = 0;
        }
        col += if col > 0 { 1 + w } else { w };
        while col > width {
            rows += 1;
            col -= width;
        }
    }
    u16::try_from(rows).unwrap_or(u16::MAX)
}

fn session(f: &mut Frame, app: &App) {
    let width = f.area().width;
    // The override notices must be seen whole: the header grows to fit them.
    let notices: u16 = app
        .header
        .notices
        .iter()
        .map(|n| wrapped_rows(&format!("! {n}"), width))
        .sum();
    let credential_rows = wrapped_rows(app.header.credential.as_deref().unwrap_or(""), width);
    let completions = app.completions();
    let composer_lines = app.composer.lines().count().max(1) as u16
        + if app.composer.ends_with('\n') { 1 } else { 0 };
    let [head, body, hints, input, foot] = Layout::vertical([
        Constraint::Length(1 + credential_rows + notices),
        Constraint::Min(1),
        Constraint::Length(completions.len() as u16),
        Constraint::Length(composer_lines.min(6) + 2),
        Constraint::Length(1),
    ])
    .areas(f.area());

    let h = &app.header;
    let mut top = vec![Line::from(vec![
        bold("mogplex"),
        dim(" · "),
        Span::raw(h.provider.clone().unwrap_or_else(|| "no provider".into())),
        dim(" · "),
        Span::raw(h.model.clone().unwrap_or_else(|| "default model".into())),
    ])];
    top.push(Line::from(dim(h.credential.clone().unwrap_or_default())));
    for n in &h.notices {
        top.push(Line::from(Span::styled(
            format!("! {n}"),
            Style::default().fg(Color::Yellow),
        )));
    }
    f.render_widget(Paragraph::new(top).wrap(Wrap { trim: false }), head);

    let mut lines = Vec::new();
    for e in &app.transcript {
        let (prefix, style) = match e.kind {
            EntryKind::User => ("you › ", Style::default().add_modifier(Modifier::BOLD)),
            EntryKind::Assistant => ("", Style::default()),
            EntryKind::Notice => ("note: ", Style::default().fg(Color::Yellow)),
            EntryKind::Error => ("error: ", Style::default().fg(Color::Red)),
        };
        for (i, l) in e.text.split('\n').enumerate() {
            let p = if i == 0 { prefix } else { "" };
            lines.push(Line::from(Span::styled(format!("{p}{l}"), style)));
        }
        lines.push(Line::from(""));
    }
    // Keep the end of the transcript in view.
    let height = body.height as usize;
    let skip = lines.len().saturating_sub(height);
    f.render_widget(
        Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>()).wrap(Wrap { trim: false }),
        body,
    );

    let hint_lines: Vec<Line> = completions
        .iter()
        .map(|(c, d)| {
            Line::from(vec![
                Span::styled(format!("{c:<9}"), Style::default().fg(Color::Cyan)),
                dim(*d),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(hint_lines), hints);

    let title = if app.streaming {
        " answering… "
    } else {
        " message "
    };
    f.render_widget(
        Paragraph::new(app.composer.clone())
            .block(Block::default().borders(Borders::ALL).title(title))
            .wrap(Wrap { trim: false }),
        input,
    );
    let keys = if app.ctrl_c_armed {
        "Press Ctrl+C again to quit"
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

fn overlay(f: &mut Frame, o: &Overlay) {
    let (title, lines): (&str, Vec<Line>) = match o {
        Overlay::Status(rows) => {
            let width = rows
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0);
            (
                " status ",
                rows.iter()
                    .map(|(k, v)| {
                        Line::from(vec![bold(format!("{k:<width$}  ")), Span::raw(v.clone())])
                    })
                    .collect(),
            )
        }
        Overlay::Model { choices, selected } => (
            " model ",
            if choices.is_empty() {
                vec![Line::from("No models: no provider has a credential.")]
            } else {
                choices
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        Line::from(format!("{}{c}", if i == *selected { "› " } else { "  " }))
                    })
                    .collect()
            },
        ),
        Overlay::Help => (
            " help ",
            SLASH_COMMANDS
                .iter()
                .map(|(c, d)| Line::from(vec![bold(format!("{c:<9}")), Span::raw(*d)]))
                .collect(),
        ),
        Overlay::ConfirmLogout(p) => (
            " sign out ",
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
    let height = lines.len() as u16 + 2;
    let width = lines
        .iter()
        .map(|l| l.width() as u16)
        .max()
        .unwrap_or(20)
        .max(30)
        + 4;
    let area = centered(f.area(), width, height);
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::default().borders(Borders::ALL).title(title))
            .wrap(Wrap { trim: false }),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::wrapped_rows;

    #[test]
    fn wrapping() {
        assert_eq!(wrapped_rows("", 10), 1);
        assert_eq!(wrapped_rows("0123456789", 10), 1);
        assert_eq!(wrapped_rows("01234 56789", 10), 2);
        assert_eq!(wrapped_rows("0123456789abcdefghij0", 10), 3);
    }
}
