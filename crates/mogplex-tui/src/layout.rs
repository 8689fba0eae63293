//! Where things go and what rows they make, as plain values: the session screen's areas, the
//! header line, the transcript's rows, the command popup and the overlays.
//!
//! Both [`crate::view`] (which draws these rows) and [`crate::App`] (which needs a page's height
//! for PgUp/PgDn and how far a list can scroll) read them, so what is drawn and what the keys
//! move through are the same rows. Every function here works at any size, down to nothing: when
//! there is not room, it says so in the room there is.

use crate::command::{CLOSING, CommandSpec, KEYS, SlashCommand};
use crate::state::{Entry, EntryKind, Header, ModelChoice, Overlay};
use crate::text::{fit, width as cols, wrap};
use ratatui::layout::Rect;

/// How a piece of text looks; the view turns it into a style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Bold,
    Dim,
    /// An address, a command name.
    Accent,
    /// The highlighted entry of a list.
    Selected,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub tone: Tone,
}

/// One row on screen.
pub type Row = Vec<Piece>;

pub fn piece(text: impl Into<String>, tone: Tone) -> Piece {
    Piece {
        text: text.into(),
        tone,
    }
}

/// A row of one piece.
pub fn row(text: impl Into<String>, tone: Tone) -> Row {
    vec![piece(text, tone)]
}

pub fn row_width(r: &Row) -> usize {
    r.iter().map(|p| cols(&p.text)).sum()
}

/// The smallest session screen: the header, one row of transcript, the message box, the keys.
pub const MIN_SESSION: (u16, u16) = (20, 6);

/// Said in place of a screen that does not fit.
pub fn too_small(area: Rect, what: &str) -> Vec<Row> {
    let text = format!(
        "mogplex needs a bigger window for {what} (at least {}×{}); this one is {}×{}",
        MIN_SESSION.0, MIN_SESSION.1, area.width, area.height
    );
    wrap(&text, area.width)
        .into_iter()
        .take(usize::from(area.height))
        .map(|r| row(r, Tone::Warn))
        .collect()
}

/// A line of keys (`Enter send · Esc cancel`) in `width` columns: the last ones leave first,
/// whole, so what is shown is never half a key.
pub fn keys(items: &[&str], width: u16) -> String {
    let w = usize::from(width);
    for n in (1..=items.len()).rev() {
        let line = items[..n].join(" · ");
        if cols(&line) <= w {
            return line;
        }
    }
    fit(items.first().copied().unwrap_or(""), width)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionAreas {
    pub head: Rect,
    pub body: Rect,
    pub popup: Rect,
    pub input: Rect,
    pub foot: Rect,
}

/// Splits `area` from the top: the header, the transcript (at least one row), the popup (as
/// many of `popup_rows` as leave that row), the message box and the key line. `None` when the
/// screen is smaller than [`MIN_SESSION`].
pub fn session(
    area: Rect,
    header_rows: u16,
    popup_rows: u16,
    composer_rows: u16,
) -> Option<SessionAreas> {
    if area.width < MIN_SESSION.0 || area.height < MIN_SESSION.1 {
        return None;
    }
    let foot = 1;
    let input = composer_rows.clamp(1, 6) + 2;
    // The header gives way first to the message box: it never takes the last transcript row.
    let head = header_rows.min(area.height - foot - input - 1);
    let rest = area.height - foot - input - head;
    let popup = popup_rows.min(rest - 1);
    let body = rest - popup;
    let at = |y: u16, h: u16| Rect::new(area.x, area.y + y, area.width, h);
    Some(SessionAreas {
        head: at(0, head),
        body: at(head, body),
        popup: at(head + body, popup),
        input: at(head + body + popup, input),
        foot: at(head + body + popup + input, foot),
    })
}

/// Rows the header wants: its line and one per environment override.
pub fn header_rows(h: &Header) -> u16 {
    1 + u16::try_from(h.notices.len()).unwrap_or(u16::MAX - 1)
}

/// The header: one line (provider, model, credential, the account's catalog and MCP servers,
/// the run; when they do not fit, the credential is said shorter, then the least important
/// leave first), then one line per override.
pub fn header(h: &Header, width: u16) -> Vec<Row> {
    let w = usize::from(width);
    let provider = h.provider.as_deref().unwrap_or("no provider");
    let model = h.model.as_deref().unwrap_or("default model");
    let title = format!("mogplex · {provider} · {model}");
    let models = h.models.as_ref().map(|m| {
        if h.stale {
            format!("{m} (stale)")
        } else {
            m.clone()
        }
    });
    // (text, importance): the lowest leaves first.
    let mut segments: Vec<(String, u8)> = [
        (h.credential.clone(), 4),
        (models, 2),
        (h.mcp.clone(), 1),
        (h.run.as_ref().map(|r| format!("run {r}")), 3),
    ]
    .into_iter()
    .filter_map(|(t, i)| Some((t?, i)))
    .collect();
    let line_width =
        |segs: &[(String, u8)]| cols(&title) + segs.iter().map(|(s, _)| 3 + cols(s)).sum::<usize>();
    if line_width(&segments) > w
        && let (Some(short), Some(first)) = (&h.credential_short, segments.first_mut())
        && first.1 == 4
    {
        first.0 = short.clone();
    }
    while line_width(&segments) > w && !segments.is_empty() {
        if let Some(i) = (0..segments.len()).min_by_key(|&i| segments[i].1) {
            segments.remove(i);
        }
    }
    let mut line = if cols(&title) <= w {
        vec![
            piece("mogplex", Tone::Bold),
            piece(" · ", Tone::Dim),
            piece(fit(provider, width), Tone::Plain),
            piece(" · ", Tone::Dim),
            piece(fit(model, width), Tone::Plain),
        ]
    } else {
        row(fit(&title, width), Tone::Bold)
    };
    for (s, _) in segments {
        line.push(piece(" · ", Tone::Dim));
        let tone = if h.stale && s.ends_with("(stale)") {
            Tone::Warn
        } else {
            Tone::Dim
        };
        line.push(piece(fit(&s, width), tone));
    }
    let mut rows = vec![line];
    for n in &h.notices {
        rows.push(row(fit(&format!("! {n}"), width), Tone::Warn));
    }
    rows
}

/// The transcript as rows at `width`: each entry wrapped with its prefix, then a blank row.
pub fn transcript(entries: &[Entry], width: u16) -> Vec<Row> {
    let mut rows = Vec::new();
    for e in entries {
        let (prefix, tone) = match e.kind {
            EntryKind::User => ("you › ", Tone::Bold),
            EntryKind::Assistant => ("", Tone::Plain),
            EntryKind::Notice => ("note: ", Tone::Warn),
            EntryKind::Error => ("error: ", Tone::Error),
        };
        rows.extend(
            wrap(&format!("{prefix}{}", e.text), width)
                .into_iter()
                .map(|r| row(r, tone)),
        );
        rows.push(Vec::new());
    }
    rows
}

/// `/name [args]`, as the popup and `/help` show it.
fn usage(c: &CommandSpec) -> String {
    if c.args.is_empty() {
        format!("/{}", c.name)
    } else {
        format!("/{} {}", c.name, c.args)
    }
}

/// The command popup: at most `max` of `matches`, a window that keeps `selected` in view.
pub fn popup(matches: &[CommandSpec], selected: usize, width: u16, max: u16) -> Vec<Row> {
    let max = usize::from(max);
    let first = (selected + 1).saturating_sub(max);
    let col = matches.iter().map(|c| cols(&usage(c))).max().unwrap_or(0);
    matches
        .iter()
        .enumerate()
        .skip(first)
        .take(max)
        .map(|(i, c)| {
            let (marker, tone) = if i == selected {
                ("› ", Tone::Selected)
            } else {
                ("  ", Tone::Accent)
            };
            let name = format!("{marker}{:<col$}  ", usage(c));
            let room = usize::from(width).saturating_sub(cols(&name));
            if room < 4 {
                return row(fit(name.trim_end(), width), tone);
            }
            vec![
                piece(name, tone),
                piece(fit(c.description, room as u16), Tone::Dim),
            ]
        })
        .collect()
}

/// Label and value rows in `inner` columns: values wrap under themselves, or, when the labels
/// leave too little room, under their label.
fn labelled(pairs: &[(String, String)], label_tone: Tone, inner: u16) -> Vec<Row> {
    let label = pairs.iter().map(|(k, _)| cols(k)).max().unwrap_or(0);
    let inner_w = usize::from(inner);
    let side_by_side = inner_w >= label + 2 + 12;
    let mut out = Vec::new();
    for (k, v) in pairs {
        if side_by_side {
            let room = (inner_w - label - 2) as u16;
            for (i, part) in wrap(v, room).into_iter().enumerate() {
                let head = if i == 0 { k.as_str() } else { "" };
                out.push(vec![
                    piece(format!("{head:<label$}  "), label_tone),
                    piece(part, Tone::Plain),
                ]);
            }
        } else {
            out.push(row(fit(k, inner), label_tone));
            for part in wrap(v, inner.saturating_sub(2)) {
                out.push(vec![piece("  ", Tone::Plain), piece(part, Tone::Plain)]);
            }
        }
    }
    out
}

/// What an overlay draws: its box, its title, the rows in view, and a note on the bottom border
/// when there is more than fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayLayout {
    /// `None`: too small for a box; the rows go at the top of the screen as they are.
    pub area: Option<Rect>,
    pub title: String,
    pub rows: Vec<Row>,
    pub more: Option<String>,
    /// How far it can scroll (informational overlays).
    pub max_scroll: usize,
    /// Rows in view at once (a page, for PgUp/PgDn).
    pub page: usize,
}

fn title_of(o: &Overlay) -> String {
    match o {
        Overlay::Status { .. } => " status ".into(),
        Overlay::Model { .. } => " model ".into(),
        Overlay::List { title, .. } => format!(" {} ", fit(title, 40)),
        Overlay::Help { .. } => " help ".into(),
        Overlay::Confirm { ask, .. } => format!(" {} ", ask.title()),
    }
}

fn model_rows(o: &Overlay, inner: u16) -> (Vec<Row>, Option<usize>) {
    let Overlay::Model {
        choices,
        selected,
        filter,
    } = o
    else {
        return (Vec::new(), None);
    };
    let mut rows = Vec::new();
    if !filter.is_empty() {
        rows.push(row(fit(&format!("filter: {filter}"), inner), Tone::Dim));
    }
    let Some(all) = choices else {
        rows.push(row(fit("Loading the models…", inner), Tone::Plain));
        return (rows, None);
    };
    let shown = o.visible_models();
    if shown.is_empty() {
        let text = if all.is_empty() {
            "No models to choose from.".to_owned()
        } else {
            format!("No model matches “{filter}” (Backspace to change it).")
        };
        rows.extend(wrap(&text, inner).into_iter().map(|r| row(r, Tone::Plain)));
        return (rows, None);
    }
    let offset = rows.len();
    let id_w = shown.iter().map(|c| cols(&c.id)).max().unwrap_or(0);
    for (i, c) in shown.iter().enumerate() {
        rows.push(model_row(c, i == *selected, id_w, inner));
    }
    (rows, Some(offset + (*selected).min(shown.len() - 1)))
}

fn model_row(c: &ModelChoice, selected: bool, id_w: usize, inner: u16) -> Row {
    let marker = if selected { "› " } else { "  " };
    let id = fit(&format!("{marker}{:<id_w$}", c.id), inner);
    let tone = if selected {
        Tone::Selected
    } else {
        Tone::Plain
    };
    let room = usize::from(inner).saturating_sub(cols(&id) + 2);
    if c.detail.is_empty() || room < 4 {
        return row(id, tone);
    }
    vec![
        piece(id, tone),
        piece(format!("  {}", fit(&c.detail, room as u16)), Tone::Dim),
    ]
}

fn help_rows(inner: u16) -> Vec<Row> {
    let commands: Vec<(String, String)> = SlashCommand::ALL
        .iter()
        .map(|c| (usage(&c.spec()), c.description().to_owned()))
        .collect();
    let keys: Vec<(String, String)> = KEYS
        .iter()
        .map(|(k, d)| ((*k).to_owned(), (*d).to_owned()))
        .collect();
    let mut rows = labelled(&commands, Tone::Bold, inner);
    rows.push(Vec::new());
    rows.extend(labelled(&keys, Tone::Bold, inner));
    rows.push(Vec::new());
    rows.extend(wrap(CLOSING, inner).into_iter().map(|r| row(r, Tone::Dim)));
    rows
}

fn confirm_rows(ask: &crate::state::Ask, refused: bool, inner: u16) -> Vec<Row> {
    let (question, yes, no) = ask.question();
    let mut rows: Vec<Row> = wrap(&question, inner)
        .into_iter()
        .map(|r| row(r, Tone::Plain))
        .collect();
    rows.push(Vec::new());
    rows.push(row(fit("y / Enter: yes · n / Esc: no", inner), Tone::Dim));
    if refused {
        rows.push(Vec::new());
        let text = format!("Only y or n here: {yes}, n or Esc {no}.");
        rows.extend(wrap(&text, inner).into_iter().map(|r| row(r, Tone::Warn)));
    }
    rows
}

/// The rows of `o` at `inner` columns, and the row to keep in view (the model list's
/// selection).
fn overlay_rows(o: &Overlay, inner: u16) -> (Vec<Row>, Option<usize>) {
    match o {
        Overlay::Status { rows, .. } => (labelled(rows, Tone::Bold, inner), None),
        Overlay::List { rows, .. } if rows.is_empty() => {
            (vec![row("Nothing here.", Tone::Plain)], None)
        }
        Overlay::List { rows, .. } => (labelled(rows, Tone::Bold, inner), None),
        Overlay::Model { .. } => model_rows(o, inner),
        Overlay::Help { .. } => (help_rows(inner), None),
        Overlay::Confirm { ask, refused } => (confirm_rows(ask, *refused, inner), None),
    }
}

/// The columns an overlay's rows would take unwrapped (it is drawn no wider than it needs).
fn natural_width(o: &Overlay) -> usize {
    let (rows, _) = overlay_rows(o, u16::MAX / 2);
    rows.iter().map(row_width).max().unwrap_or(0)
}

/// Lays `o` out over `area`: a box centred, as wide as its rows need (within a margin), as tall
/// as they are or the screen allows, scrolled to the overlay's scroll (or to the selection).
pub fn overlay(o: &Overlay, area: Rect) -> OverlayLayout {
    let title = title_of(o);
    if area.width < 16 || area.height < 3 {
        let what = title.trim();
        let rows = wrap(&format!("{what}: needs a bigger window"), area.width)
            .into_iter()
            .take(usize::from(area.height))
            .map(|r| row(r, Tone::Warn))
            .collect();
        return OverlayLayout {
            area: None,
            title,
            rows,
            more: None,
            max_scroll: 0,
            page: 1,
        };
    }
    let margin_x = if area.width >= 40 { 2 } else { 0 };
    let max_w = area.width - 2 * margin_x;
    let min_w = max_w.min(34);
    let natural = u16::try_from(natural_width(o) + 4).unwrap_or(u16::MAX);
    let box_w = natural.clamp(min_w, max_w);
    // One column of padding on each side inside the border, when there is room for it.
    let pad = if box_w >= 24 { 1 } else { 0 };
    let inner = box_w - 2 - 2 * pad;
    let (mut rows, keep) = overlay_rows(o, inner);
    // A row of the screen above and below, unless the rows need it.
    let margin_y = if usize::from(area.height) >= rows.len() + 4 {
        1
    } else {
        0
    };
    let max_h = area.height - 2 * margin_y;
    let page = usize::from(max_h - 2);
    let max_scroll = rows.len().saturating_sub(page);
    let scroll = match keep {
        Some(k) => (k + 1).saturating_sub(page),
        None => o.scroll().min(max_scroll),
    };
    let more = (max_scroll > 0).then(|| {
        let up = if scroll > 0 { "↑" } else { "" };
        let down = if scroll < max_scroll { "↓" } else { "" };
        format!(" {up}{down} more ")
    });
    rows = rows.into_iter().skip(scroll).take(page).collect();
    if pad > 0 {
        for r in &mut rows {
            r.insert(0, piece(" ", Tone::Plain));
        }
    }
    let box_h = u16::try_from(rows.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2)
        .min(max_h);
    let rect = Rect {
        x: area.x + (area.width - box_w) / 2,
        y: area.y + (area.height - box_h) / 2,
        width: box_w,
        height: box_h,
    };
    OverlayLayout {
        area: Some(rect),
        title,
        rows,
        more,
        max_scroll,
        page,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_gives_the_transcript_at_least_a_row() {
        let a = session(Rect::new(0, 0, 30, 8), 3, 9, 1).expect("fits");
        assert_eq!(a.body.height, 1);
        assert_eq!(
            a.head.height + a.body.height + a.popup.height + a.input.height + 1,
            8
        );
        assert_eq!(session(Rect::new(0, 0, 19, 40), 1, 0, 1), None);
        assert_eq!(session(Rect::new(0, 0, 80, 5), 1, 0, 1), None);
    }

    #[test]
    fn the_header_drops_the_least_important_parts_first() {
        let h = Header {
            provider: Some("Mogplex".into()),
            model: Some("mogplex/echo".into()),
            credential: Some("Mogplex sign-in (ada@example.com)".into()),
            models: Some("1 model".into()),
            mcp: Some("MCP: github".into()),
            run: Some("run_0123456789abcdef0123".into()),
            ..Header::default()
        };
        let text = |w| {
            header(&h, w)[0]
                .iter()
                .map(|p| p.text.as_str())
                .collect::<String>()
        };
        assert_eq!(
            text(200),
            "mogplex · Mogplex · mogplex/echo · Mogplex sign-in (ada@example.com) · 1 model · MCP: github · run run_0123456789abcdef0123"
        );
        assert_eq!(
            text(100),
            "mogplex · Mogplex · mogplex/echo · Mogplex sign-in (ada@example.com) · run run_0123456789abcdef0123"
        );
        assert_eq!(text(40), "mogplex · Mogplex · mogplex/echo");
        assert_eq!(text(20), "mogplex · Mogplex ·…");
    }
}
