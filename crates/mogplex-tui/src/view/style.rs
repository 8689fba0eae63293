//! How rows from [`crate::layout`] look on screen.

use crate::layout::{Row, Tone};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

pub(super) fn style(tone: Tone) -> Style {
    match tone {
        Tone::Plain => Style::default(),
        Tone::Bold => Style::default().add_modifier(Modifier::BOLD),
        Tone::Dim => Style::default().fg(Color::DarkGray),
        Tone::Accent => Style::default().fg(Color::Cyan),
        Tone::Selected => Style::default()
            .add_modifier(Modifier::BOLD)
            .fg(Color::Cyan),
        Tone::Warn => Style::default().fg(Color::Yellow),
        Tone::Error => Style::default().fg(Color::Red),
    }
}

pub(super) fn line(row: Row) -> Line<'static> {
    Line::from(
        row.into_iter()
            .map(|p| Span::styled(p.text, style(p.tone)))
            .collect::<Vec<_>>(),
    )
}

pub(super) fn lines(rows: Vec<Row>) -> Vec<Line<'static>> {
    rows.into_iter().map(line).collect()
}
