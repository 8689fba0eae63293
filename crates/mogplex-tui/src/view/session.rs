//! The session screen: the header, the transcript, completions, the message box and the keys.

use super::text::{bold, cyan, dim, footer, styled_rows, wrap, yellow};
use crate::app::{App, EntryKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

pub(super) fn session(f: &mut Frame, app: &App) {
    let width = f.area().width;
    let h = app.header();
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
    let (composer_rows, (cur_row, cur_col)) = app.composer().layout(inner);
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
    for e in app.transcript() {
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
    let scroll = app.scroll().min(max_scroll);
    let skip = max_scroll - scroll;
    let shown: Vec<Line> = lines.into_iter().skip(skip).take(height).collect();
    f.render_widget(Paragraph::new(shown), body);

    let hint_lines: Vec<Line> = completions
        .iter()
        .map(|c| {
            Line::from(vec![
                cyan(format!("{:<9}", format!("/{}", c.name))),
                dim(c.description),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(hint_lines), hints);

    let title = if app.is_streaming() {
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
    if app.overlay().is_none() {
        f.set_cursor_position(Position::new(
            input.x + 1 + cur_col.min(inner),
            input.y + 1 + (cur_row - first) as u16,
        ));
    }
    let keys = if app.ctrl_c_armed() {
        "Press Ctrl+C again to quit"
    } else if scroll > 0 {
        "PgUp/PgDn scroll · showing earlier messages"
    } else {
        "Enter send · Shift+Enter new line · /help · Tab complete · Ctrl+C twice quits"
    };
    footer(f, foot, keys);
}
