//! The session screen: the header, the transcript, the command popup, the message box and the
//! keys that work right now.

use super::style::{line, lines, style};
use crate::app::{App, Overlay};
use crate::layout::{self, Tone, row};
use crate::text::fit;
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};

pub(super) fn session(f: &mut Frame, app: &App) {
    let area = f.area();
    let (composer_rows, (cur_row, cur_col)) = app.composer().layout(area.width.saturating_sub(2));
    let popup = app.popup();
    let Some(areas) = layout::session(
        area,
        layout::header_rows(app.header()),
        popup
            .as_ref()
            .map_or(0, |(m, _)| u16::try_from(m.len()).unwrap_or(u16::MAX)),
        u16::try_from(composer_rows.len()).unwrap_or(u16::MAX),
    ) else {
        f.render_widget(
            Paragraph::new(lines(layout::too_small(area, "the session"))),
            area,
        );
        return;
    };

    let head = layout::header(app.header(), area.width);
    f.render_widget(Paragraph::new(lines(head)), areas.head);

    // Keep the end in view, unless scrolled up.
    let rows = layout::transcript(app.transcript(), areas.body.width);
    let height = usize::from(areas.body.height);
    let max_scroll = rows.len().saturating_sub(height);
    let scroll = app.scroll().min(max_scroll);
    let skip = max_scroll - scroll;
    let shown: Vec<_> = rows.into_iter().skip(skip).take(height).collect();
    f.render_widget(Paragraph::new(lines(shown)), areas.body);

    if let Some((matches, selected)) = &popup {
        let rows = layout::popup(matches, *selected, areas.popup.width, areas.popup.height);
        f.render_widget(Paragraph::new(lines(rows)), areas.popup);
    }

    let title = if app.is_asking_about_a_tool() {
        " allow the tool call? y once · a always · n no "
    } else if app.is_running_a_tool() {
        " running a tool… (Esc cancels it) "
    } else if app.is_streaming() {
        " answering… (Esc stops) "
    } else {
        " message "
    };
    let visible = usize::from(areas.input.height - 2);
    let first = (cur_row + 1).saturating_sub(visible);
    let text: Vec<Line> = composer_rows
        .into_iter()
        .skip(first)
        .take(visible)
        .map(Line::from)
        .collect();
    f.render_widget(
        Paragraph::new(text).block(
            Block::default()
                .borders(Borders::ALL)
                .title(fit(title, areas.input.width.saturating_sub(2))),
        ),
        areas.input,
    );
    if app.overlay().is_none() {
        let inner = areas.input.width.saturating_sub(2);
        f.set_cursor_position(Position::new(
            areas.input.x + 1 + cur_col.min(inner.saturating_sub(1)),
            areas.input.y + 1 + u16::try_from(cur_row - first).unwrap_or(0),
        ));
    }
    let keys = layout::keys(&keys(app, scroll, max_scroll, area), areas.foot.width);
    f.render_widget(
        Paragraph::new(line(row(keys, Tone::Dim))).style(style(Tone::Dim)),
        areas.foot,
    );
}

/// The keys that do something right now, and only those, most useful first.
fn keys(app: &App, scroll: usize, max_scroll: usize, area: Rect) -> Vec<&'static str> {
    if app.ctrl_c_armed() {
        return vec!["Press Ctrl+C again to quit"];
    }
    if let Some(o) = app.overlay() {
        return match o {
            Overlay::Confirm { .. } => vec!["y yes", "n no"],
            Overlay::Model { choices: None, .. } => vec!["Esc close", "type to filter"],
            Overlay::Model { .. } => vec!["↑/↓ choose", "Enter use", "Esc close", "type to filter"],
            _ if layout::overlay(o, area).max_scroll > 0 => {
                vec!["↑/↓ PgUp/PgDn scroll", "Esc close", "typing closes it"]
            }
            _ => vec!["Esc close", "typing closes it and goes to the message"],
        };
    }
    if app.popup().is_some() {
        return vec!["↑/↓ choose", "Tab complete", "Enter run", "Esc close"];
    }
    if scroll > 0 {
        return vec!["PgUp/PgDn scroll", "showing earlier messages"];
    }
    let mut keys = if app.is_asking_about_a_tool() {
        vec!["y allow once", "a always for this tool", "n or Esc no"]
    } else if app.is_running_a_tool() {
        vec!["Esc cancel the tool call"]
    } else if app.is_streaming() {
        vec!["Esc stop the answer"]
    } else {
        vec!["Enter send", "/ commands", "Alt+Enter new line"]
    };
    if max_scroll > 0 {
        keys.push("PgUp/PgDn scroll");
    }
    keys.push("Ctrl+C twice quits");
    keys
}
