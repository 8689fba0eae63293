//! Overlays drawn over the session: what they accept from the keyboard, and the lists the
//! runtime fills in.

use super::{App, Effect, ModelChoice, Overlay};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

impl App {
    pub(super) fn models_ready(&mut self, choices: Vec<ModelChoice>) {
        let selected = self
            .header
            .model
            .as_ref()
            .and_then(|m| choices.iter().position(|c| &c.id == m))
            .unwrap_or(0);
        self.overlay = Some(Overlay::Model {
            choices: Some(choices),
            selected,
        });
    }

    pub(super) fn overlay_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        if let Some(Overlay::Model {
            choices: Some(choices),
            selected,
        }) = &mut self.overlay
        {
            match k.code {
                KeyCode::Up => {
                    *selected = selected.saturating_sub(1);
                    return Vec::new();
                }
                KeyCode::Down => {
                    *selected = (*selected + 1).min(choices.len().saturating_sub(1));
                    return Vec::new();
                }
                KeyCode::Enter => {
                    let picked = choices.get(*selected).map(|c| c.id.clone());
                    self.overlay = None;
                    return picked.map(Effect::PickModel).into_iter().collect();
                }
                _ => {}
            }
        }
        match (&self.overlay, k.code) {
            (
                Some(Overlay::ConfirmLogout(p)),
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter,
            ) => {
                let p = *p;
                self.overlay = None;
                vec![Effect::Logout(p)]
            }
            (_, KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('n') | KeyCode::Enter) => {
                self.overlay = None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}
