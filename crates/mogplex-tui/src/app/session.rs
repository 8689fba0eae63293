//! The session screen: the message box and its keys, Up/Down recall, sending a prompt, the
//! answer streaming into the transcript, and scrolling it.

use super::{App, Effect, Entry, EntryKind};
use crate::command::{CommandSpec, SlashCommand};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

impl App {
    /// Slash commands matching what is typed, for completion.
    pub fn completions(&self) -> Vec<CommandSpec> {
        let typed = self.composer.text().trim_end();
        let Some(prefix) = typed.strip_prefix('/') else {
            return Vec::new();
        };
        if typed.contains(char::is_whitespace) {
            return Vec::new();
        }
        SlashCommand::matching(prefix)
            .filter(|c| c.name() != prefix)
            .map(SlashCommand::spec)
            .collect()
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
        self.say(EntryKind::Notice, "Stopped the answer.");
        vec![Effect::CancelAnswer]
    }

    pub(super) fn session_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let newline = matches!(k.code, KeyCode::Enter)
            && (k.modifiers.contains(KeyModifiers::SHIFT)
                || k.modifiers.contains(KeyModifiers::ALT))
            || (ctrl && matches!(k.code, KeyCode::Char('j')));
        if newline {
            self.composer.insert('\n');
            return Vec::new();
        }
        match k.code {
            KeyCode::Enter => return self.submit(),
            KeyCode::Esc if self.streaming => return self.stop_answer(),
            KeyCode::Tab => {
                if let Some(c) = self.completions().first() {
                    self.composer.set(&format!("/{} ", c.name));
                }
            }
            KeyCode::PageUp => self.scroll = self.scroll.saturating_add(10),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(10),
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
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Vec::new();
        }
        self.history_pos = None;
        if let Some(cmd) = trimmed.strip_prefix('/') {
            return self.command(cmd);
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
