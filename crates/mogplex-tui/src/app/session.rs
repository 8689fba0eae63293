//! The session screen: the message box and its keys, the command popup, Up/Down recall,
//! sending a prompt, the answer streaming into the transcript, and scrolling it by pages.

use super::{App, Effect, Entry, EntryKind};
use crate::command::{CommandSpec, SlashCommand};
use crate::layout;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

impl App {
    /// Slash commands matching what is typed (a `/` and part of a name, nothing after it), for
    /// the popup and Tab completion.
    pub fn completions(&self) -> Vec<CommandSpec> {
        let typed = self.composer.text();
        let Some(prefix) = typed.strip_prefix('/') else {
            return Vec::new();
        };
        if prefix.contains(char::is_whitespace) {
            return Vec::new();
        }
        SlashCommand::matching(prefix)
            .map(SlashCommand::spec)
            .collect()
    }

    /// The command popup, when it shows: the matches and the highlighted one.
    pub fn popup(&self) -> Option<(Vec<CommandSpec>, usize)> {
        if self.overlay.is_some() || self.popup_closed_for.as_deref() == Some(self.composer.text())
        {
            return None;
        }
        let matches = self.completions();
        if matches.is_empty() {
            return None;
        }
        let selected = self.popup_selected.min(matches.len() - 1);
        Some((matches, selected))
    }

    /// Where the session screen's parts are at the current size.
    pub fn session_areas(&self) -> Option<layout::SessionAreas> {
        let (w, h) = self.size;
        let popup_rows = self
            .popup()
            .map_or(0, |(m, _)| u16::try_from(m.len()).unwrap_or(u16::MAX));
        let composer_rows = self.composer.layout(w.saturating_sub(2)).0.len();
        layout::session(
            Rect::new(0, 0, w, h),
            layout::header_rows(&self.header),
            popup_rows,
            u16::try_from(composer_rows).unwrap_or(u16::MAX),
        )
    }

    pub(super) fn delta(&mut self, text: String) {
        if !self.streaming {
            return;
        }
        match self.transcript.last_mut() {
            Some(Entry {
                kind: EntryKind::Assistant,
                text: t,
            }) => t.push_str(&text),
            _ => self.say(EntryKind::Assistant, text),
        }
    }

    pub(super) fn stop_answer(&mut self) -> Vec<Effect> {
        self.streaming = false;
        self.tool = super::tools::ToolPhase::Idle;
        self.say(EntryKind::Notice, "Stopped the answer.");
        vec![Effect::CancelAnswer]
    }

    /// PgUp/PgDn: a page is the transcript's height less one row, so a line stays in view.
    fn page(&mut self, up: bool) {
        let Some(areas) = self.session_areas() else {
            return;
        };
        let page = usize::from(areas.body.height.saturating_sub(1)).max(1);
        let rows = layout::transcript(&self.transcript, areas.body.width).len();
        let max = rows.saturating_sub(usize::from(areas.body.height));
        self.scroll = if up {
            self.scroll.saturating_add(page).min(max)
        } else {
            self.scroll.min(max).saturating_sub(page)
        };
    }

    /// A key while the popup shows: arrows choose, Tab and Enter take, Esc closes. `None` for a
    /// key that is not the popup's.
    fn popup_key(&mut self, k: &KeyEvent) -> Option<Vec<Effect>> {
        let (matches, selected) = self.popup()?;
        let plain = !k
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        match k.code {
            KeyCode::Up => {
                self.popup_selected = selected.checked_sub(1).unwrap_or(matches.len() - 1)
            }
            KeyCode::Down => self.popup_selected = (selected + 1) % matches.len(),
            KeyCode::Tab => {
                self.composer.set(&format!("/{} ", matches[selected].name));
                self.popup_selected = 0;
            }
            KeyCode::Enter if plain => {
                let name = matches[selected].name;
                self.composer.set(&format!("/{name}"));
                self.popup_selected = 0;
                return Some(self.submit());
            }
            KeyCode::Esc => self.popup_closed_for = Some(self.composer.text().to_owned()),
            _ => return None,
        }
        Some(Vec::new())
    }

    pub(super) fn session_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        if let Some(effects) = self.tool_key(&k) {
            return effects;
        }
        if let Some(effects) = self.popup_key(&k) {
            return effects;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let newline = matches!(k.code, KeyCode::Enter)
            && (k.modifiers.contains(KeyModifiers::SHIFT)
                || k.modifiers.contains(KeyModifiers::ALT))
            || (ctrl && matches!(k.code, KeyCode::Char('j')));
        let before = self.composer.text().to_owned();
        if newline {
            self.composer.insert('\n');
        } else {
            match k.code {
                KeyCode::Enter => return self.submit(),
                KeyCode::Esc if self.streaming => return self.stop_answer(),
                KeyCode::Tab => {
                    if let Some(c) = self.completions().first() {
                        self.composer.set(&format!("/{} ", c.name));
                    }
                }
                KeyCode::PageUp => self.page(true),
                KeyCode::PageDown => self.page(false),
                KeyCode::Up if !self.composer.text().contains('\n') => self.recall(true),
                KeyCode::Down if !self.composer.text().contains('\n') => self.recall(false),
                KeyCode::Up => self.composer.up(),
                KeyCode::Down => self.composer.down(),
                KeyCode::Left => self.composer.left(),
                KeyCode::Right => self.composer.right(),
                KeyCode::Home => self.composer.home(),
                KeyCode::End => self.composer.end(),
                KeyCode::Backspace => self.composer.backspace(),
                KeyCode::Delete => self.composer.delete(),
                KeyCode::Char('a') if ctrl => self.composer.home(),
                KeyCode::Char('e') if ctrl => self.composer.end(),
                KeyCode::Char('u') if ctrl => self.composer.kill_to_start(),
                KeyCode::Char('w') if ctrl => self.composer.delete_word(),
                KeyCode::Char('l') if ctrl => {}
                KeyCode::Char(c) if !ctrl => self.composer.insert(c),
                _ => {}
            }
        }
        if self.composer.text() != before {
            // New text: the popup opens again, on its first match.
            self.popup_selected = 0;
            self.popup_closed_for = None;
        }
        Vec::new()
    }

    /// Up/Down on a one-line composer walk through the prompts sent in this session.
    fn recall(&mut self, older: bool) {
        if self.history.is_empty() {
            return;
        }
        let next = match (self.history_pos, older) {
            (None, true) => Some(self.history.len() - 1),
            (None, false) => None,
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i + 1 < self.history.len() => Some(i + 1),
            (Some(_), false) => None,
        };
        self.history_pos = next;
        match next {
            Some(i) => {
                let text = self.history[i].clone();
                self.composer.set(&text);
            }
            None => self.composer.clear(),
        }
    }

    fn submit(&mut self) -> Vec<Effect> {
        let text = self.composer.take();
        self.popup_closed_for = None;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Vec::new();
        }
        self.history_pos = None;
        if let Some(cmd) = trimmed.strip_prefix('/') {
            return self.command(cmd);
        }
        if self.mcp_waiting && looks_like_callback(trimmed) {
            // The browser's answer to the waiting MCP sign-in: never a prompt (it holds a code).
            self.say(
                EntryKind::Notice,
                "Address received; finishing the MCP sign-in…",
            );
            return vec![Effect::SubmitMcpCallback(trimmed.to_owned())];
        }
        if self.streaming {
            // One answer at a time: keep the text until this one is done.
            self.composer.set(&text);
            return Vec::new();
        }
        self.history.push(trimmed.to_owned());
        self.scroll = 0;
        self.say(EntryKind::User, trimmed.to_owned());
        self.streaming = true;
        vec![Effect::SendPrompt(trimmed.to_owned())]
    }
}

/// One http(s) address with a `state` and a `code` or `error` parameter: what a browser shows
/// after an OAuth sign-in (RFC 6749 §4.1.2).
fn looks_like_callback(text: &str) -> bool {
    let has = |k: &str| {
        text.split(['?', '&'])
            .skip(1)
            .any(|p| p.strip_prefix(k).is_some_and(|v| v.starts_with('=')))
    };
    (text.starts_with("http://") || text.starts_with("https://"))
        && !text.contains(char::is_whitespace)
        && has("state")
        && (has("code") || has("error"))
}
