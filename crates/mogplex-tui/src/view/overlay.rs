//! Overlays over the session: `/status`, `/model`, `/mcp`, `/help` and the sign-out question.

use super::text::{bold, dim, wrap};
use crate::app::{ModelChoice, Overlay};
use crate::command::SlashCommand;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use unicode_width::UnicodeWidthStr;

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

pub(super) fn overlay(f: &mut Frame, o: &Overlay) {
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
            let mut l: Vec<Line> = SlashCommand::ALL
                .iter()
                .map(|c| {
                    Line::from(vec![
                        bold(format!("{:<9}", c.slash())),
                        Span::raw(c.description()),
                    ])
                })
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
