//! Overlays drawn over the session: what each takes from the keyboard, and the lists the
//! runtime fills in. Nothing typed is lost: `/status`, `/mcp` and `/help` are only to read, so
//! the first key that is not theirs closes them and goes on to the message box; the model list
//! takes typing as a filter; the sign-out question takes its own keys only, and says which.

use super::{App, Ask, Effect, EntryKind, ModelChoice, Overlay};
use crate::layout;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

impl App {
    pub(super) fn models_ready(&mut self, choices: Vec<ModelChoice>) {
        // Typing done while the list loaded stays as its filter.
        let filter = match &self.overlay {
            Some(Overlay::Model { filter, .. }) => filter.clone(),
            _ => String::new(),
        };
        let selected = self
            .header
            .model
            .as_ref()
            .and_then(|m| choices.iter().position(|c| &c.id == m))
            .unwrap_or(0);
        let mut overlay = Overlay::Model {
            choices: Some(choices),
            selected,
            filter,
        };
        // The selection is an index among the choices the filter lets through.
        let shown = overlay.visible_models().len();
        if let Overlay::Model { selected, .. } = &mut overlay
            && *selected >= shown
        {
            *selected = 0;
        }
        self.overlay = Some(overlay);
    }

    pub(super) fn overlay_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let Some(overlay) = self.overlay.take() else {
            return Vec::new();
        };
        match overlay {
            Overlay::Model { .. } => self.model_key(overlay, k),
            Overlay::Confirm { ask, .. } => match k.code {
                KeyCode::Char('y' | 'Y') | KeyCode::Enter => vec![match ask {
                    Ask::Logout(provider) => Effect::Logout(provider),
                    Ask::LogoutAll => Effect::LogoutAll,
                    Ask::Switch { provider, .. } => Effect::UseStoredKey(provider),
                }],
                KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                    if let Ask::Switch { provider, keep } = ask {
                        self.say(
                            EntryKind::Notice,
                            format!(
                                "{keep} stays in use; choose a {} model with /model to switch later.",
                                provider.display_name()
                            ),
                        );
                    }
                    Vec::new()
                }
                _ => {
                    self.overlay = Some(Overlay::Confirm { ask, refused: true });
                    Vec::new()
                }
            },
            Overlay::Status { .. } | Overlay::List { .. } | Overlay::Help { .. } => {
                self.reading_key(overlay, k)
            }
        }
    }

    /// A key on an overlay that is only to read: scroll keys scroll it, Esc and Enter close it,
    /// and anything else closes it and is handled as if it had never been open.
    fn reading_key(&mut self, mut overlay: Overlay, k: KeyEvent) -> Vec<Effect> {
        let (w, h) = self.size;
        let laid = layout::overlay(&overlay, Rect::new(0, 0, w, h));
        let scroll = match &mut overlay {
            Overlay::Status { scroll, .. }
            | Overlay::List { scroll, .. }
            | Overlay::Help { scroll } => scroll,
            _ => return Vec::new(),
        };
        let page = laid.page.saturating_sub(1).max(1);
        let current = (*scroll).min(laid.max_scroll);
        let moved = match k.code {
            KeyCode::Up => Some(current.saturating_sub(1)),
            KeyCode::Down => Some((current + 1).min(laid.max_scroll)),
            KeyCode::PageUp => Some(current.saturating_sub(page)),
            KeyCode::PageDown => Some((current + page).min(laid.max_scroll)),
            KeyCode::Home => Some(0),
            KeyCode::End => Some(laid.max_scroll),
            _ => None,
        };
        if let Some(to) = moved {
            *scroll = to;
            self.overlay = Some(overlay);
            return Vec::new();
        }
        match k.code {
            KeyCode::Esc | KeyCode::Enter => Vec::new(),
            // Closed; the key is the message box's.
            _ => self.session_key(k),
        }
    }

    fn model_key(&mut self, overlay: Overlay, k: KeyEvent) -> Vec<Effect> {
        let Overlay::Model {
            choices,
            selected,
            mut filter,
        } = overlay
        else {
            return Vec::new();
        };
        let mut next = Overlay::Model {
            choices,
            selected,
            filter: filter.clone(),
        };
        let shown = next.visible_models().len();
        let ctrl = k
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        let selected = match k.code {
            KeyCode::Esc => return Vec::new(),
            KeyCode::Enter => {
                let picked = next.visible_models().get(selected).map(|c| c.id.clone());
                if picked.is_none() {
                    // Nothing to pick (still loading, or the filter matches nothing).
                    self.overlay = Some(next);
                }
                return picked.map(Effect::PickModel).into_iter().collect();
            }
            KeyCode::Up => selected.saturating_sub(1),
            KeyCode::Down => (selected + 1).min(shown.saturating_sub(1)),
            KeyCode::PageUp => selected.saturating_sub(10),
            KeyCode::PageDown => (selected + 10).min(shown.saturating_sub(1)),
            KeyCode::Home => 0,
            KeyCode::End => shown.saturating_sub(1),
            KeyCode::Backspace => {
                filter.pop();
                0
            }
            KeyCode::Char('u') if ctrl => {
                filter.clear();
                0
            }
            KeyCode::Char(c) if !ctrl => {
                filter.push(c);
                0
            }
            _ => selected,
        };
        if let Overlay::Model {
            selected: s,
            filter: f,
            ..
        } = &mut next
        {
            *s = selected;
            *f = filter;
        }
        self.overlay = Some(next);
        Vec::new()
    }
}
