//! The login screen: the menu, a sign-in that waits, and typing a provider key.
//!
//! No box around it: an address drawn here is selected with the mouse and copied, so each of
//! its rows holds the address and nothing else (no border, no indent).

use super::style::lines;
use crate::app::{App, LoginMode, key_providers};
use crate::layout::{self, Row, Tone, piece, row};
use crate::text::{fit, tail, width, wrap};
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::widgets::Paragraph;

fn text_rows(text: &str, tone: Tone, w: u16) -> Vec<Row> {
    wrap(text, w).into_iter().map(|r| row(r, tone)).collect()
}

fn menu_row(label: String, selected: bool) -> Row {
    if selected {
        row(format!("› {label}"), Tone::Selected)
    } else {
        row(format!("  {label}"), Tone::Plain)
    }
}

pub(super) fn login(
    f: &mut Frame,
    app: &App,
    mode: &LoginMode,
    selected: usize,
    error: Option<&(String, String)>,
    notes: &[String],
) {
    let area = f.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let w = area.width;
    let mut rows: Vec<Row> = vec![row(fit("Welcome to Mogplex", w), Tone::Bold), Vec::new()];
    // Where the text cursor goes, as (row in `rows`, column), for the input boxes.
    let mut cursor: Option<(usize, u16)> = None;
    let back_or_quit = if app.header().credential.is_some() {
        "Esc back"
    } else {
        "q quit"
    };
    let keys = match mode {
        LoginMode::Menu => {
            rows.extend(text_rows(
                "Sign in to start. Your account brings its models, MCP servers and plan.",
                Tone::Plain,
                w,
            ));
            if let Some(s) = &app.header().signed_in {
                rows.push(Vec::new());
                rows.extend(text_rows(s, Tone::Plain, w));
            }
            rows.push(Vec::new());
            for (i, choice) in app.login_choices().iter().enumerate() {
                rows.push(menu_row(
                    fit(choice.label(), w.saturating_sub(2)),
                    i == selected,
                ));
            }
            format!("↑/↓ choose · Enter select · {back_or_quit}")
        }
        LoginMode::Starting { device } => {
            let text = if *device {
                "Asking the account service for a device code…"
            } else {
                "Contacting the account service…"
            };
            rows.extend(text_rows(text, Tone::Plain, w));
            "Esc cancel".to_owned()
        }
        LoginMode::WaitingBrowser { url, paste } => {
            rows.extend(text_rows(
                "Waiting for you to sign in in your browser…",
                Tone::Plain,
                w,
            ));
            rows.push(Vec::new());
            rows.extend(text_rows("If it did not open, visit:", Tone::Plain, w));
            // The address whole (wrapped, never cut), alone on its rows, to copy.
            rows.extend(text_rows(url, Tone::Accent, w));
            rows.push(Vec::new());
            rows.extend(text_rows(
                "Browser on another machine? Sign in there, then paste the address it ends on:",
                Tone::Plain,
                w,
            ));
            let shown = tail(paste, w.saturating_sub(3));
            cursor = Some((rows.len(), 2 + width(&shown) as u16));
            rows.push(vec![piece("› ", Tone::Dim), piece(shown, Tone::Plain)]);
            if paste.trim().is_empty() {
                "Ctrl+Y copy the address · Esc cancel".to_owned()
            } else {
                "Enter submit the pasted address · Ctrl+Y copy the address · Esc cancel".to_owned()
            }
        }
        LoginMode::WaitingDevice {
            uri,
            code,
            complete,
        } => {
            rows.extend(text_rows(
                "Open this address in any browser:",
                Tone::Plain,
                w,
            ));
            rows.extend(text_rows(uri, Tone::Accent, w));
            rows.push(Vec::new());
            rows.push(vec![
                piece(fit("and enter the code  ", w), Tone::Plain),
                piece(code.clone(), Tone::Bold),
            ]);
            if let Some(complete) = complete {
                rows.push(Vec::new());
                rows.extend(text_rows(
                    "Or open this address, which has the code filled in:",
                    Tone::Plain,
                    w,
                ));
                rows.extend(text_rows(complete, Tone::Accent, w));
            }
            rows.push(Vec::new());
            rows.extend(text_rows("Waiting for approval…", Tone::Plain, w));
            "Ctrl+Y copy the address · Esc cancel".to_owned()
        }
        LoginMode::PickProvider { selected } => {
            rows.extend(text_rows("Which provider is the key for?", Tone::Plain, w));
            rows.push(Vec::new());
            for (i, p) in key_providers().iter().enumerate() {
                let label = fit(
                    &format!("{} ({})", p.display_name(), p.env_var()),
                    w.saturating_sub(2),
                );
                rows.push(menu_row(label, i == *selected));
            }
            "↑/↓ choose · Enter select · Esc back".to_owned()
        }
        LoginMode::EnterKey { provider, input } => {
            rows.extend(text_rows(
                &format!(
                    "Paste your {} API key. It is stored in auth.json and never shown.",
                    provider.display_name()
                ),
                Tone::Plain,
                w,
            ));
            rows.push(Vec::new());
            let dots = "•".repeat(input.chars().count().min(64));
            let dots = tail(&dots, w.saturating_sub(3));
            cursor = Some((rows.len(), 2 + dots.chars().count() as u16));
            rows.push(vec![piece("› ", Tone::Dim), piece(dots, Tone::Plain)]);
            "Enter store · Esc back".to_owned()
        }
    };
    for n in notes {
        rows.push(Vec::new());
        rows.extend(text_rows(&format!("note: {n}"), Tone::Warn, w));
    }
    if let Some((message, hint)) = error {
        rows.push(Vec::new());
        rows.extend(text_rows(&format!("error: {message}"), Tone::Error, w));
        rows.extend(text_rows(&format!("hint: {hint}"), Tone::Plain, w));
    }
    // One warning per variable: the one about signing in says all the override does here.
    let warning = app
        .header()
        .login_notice
        .iter()
        .chain(app.header().notices.iter())
        .next();
    if let Some(n) = warning {
        rows.push(Vec::new());
        rows.extend(text_rows(&format!("! {n}"), Tone::Warn, w));
    }
    draw_rows(f, area, rows, cursor, &keys);
}

/// The rows from the top and the keys on the last row. Short of room, the blank rows go first,
/// then the welcome; what still does not fit ends with a row that says so.
fn draw_rows(
    f: &mut Frame,
    area: Rect,
    mut rows: Vec<Row>,
    mut cursor: Option<(usize, u16)>,
    keys: &str,
) {
    let body = usize::from(area.height.saturating_sub(1)).max(1);
    if rows.len() > body {
        let blank_before =
            |at: usize, rows: &[Row]| rows[..at].iter().filter(|r| r.is_empty()).count();
        cursor = cursor.map(|(r, c)| (r - blank_before(r, &rows), c));
        rows.retain(|r| !r.is_empty());
        if rows.len() > body {
            rows.remove(0);
            cursor = cursor.and_then(|(r, c)| Some((r.checked_sub(1)?, c)));
        }
    }
    // The rows that are drawn as they are (the rest, if any, gives way to a note).
    let mut whole = rows.len();
    if rows.len() > body {
        whole = body - 1;
        rows.truncate(whole);
        rows.push(row(
            fit("… (enlarge the window to see the rest)", area.width),
            Tone::Warn,
        ));
    }
    let height = u16::try_from(rows.len())
        .unwrap_or(u16::MAX)
        .min(area.height);
    f.render_widget(
        Paragraph::new(lines(rows)),
        Rect::new(area.x, area.y, area.width, height),
    );
    if area.height >= 2 {
        let foot = Rect::new(area.x, area.bottom() - 1, area.width, 1);
        let items: Vec<&str> = keys.split(" · ").collect();
        f.render_widget(
            Paragraph::new(lines(vec![row(
                layout::keys(&items, area.width),
                Tone::Dim,
            )])),
            foot,
        );
    }
    if let Some((r, col)) = cursor
        && r < whole
    {
        f.set_cursor_position(Position::new(
            area.x + col.min(area.width.saturating_sub(1)),
            area.y + u16::try_from(r).unwrap_or(0),
        ));
    }
}
