//! The login screen: its menu, the sign-in that waits for a browser or a device code, and typing
//! a provider's API key; and what the runtime reports about a sign-in in progress.

use super::{App, Effect, LoginChoice, LoginMode, Screen, key_providers};
use mogplex_auth::Secret;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The login screen's mode, error and notes, to change in place.
type LoginParts<'a> = (
    &'a mut LoginMode,
    &'a mut Option<(String, String)>,
    &'a mut Vec<String>,
);

/// A paste on the login screen: into the paste box or the key field, where there is one.
pub(super) fn paste(mode: &mut LoginMode, text: &str) {
    match mode {
        LoginMode::WaitingBrowser { paste, .. } => paste.push_str(text.trim()),
        LoginMode::EnterKey { input, .. } => input.push_str(text.trim()),
        _ => {}
    }
}

impl App {
    fn login_mut(&mut self) -> Option<LoginParts<'_>> {
        match &mut self.screen {
            Screen::Login {
                mode, error, notes, ..
            } => Some((mode, error, notes)),
            Screen::Session => None,
        }
    }

    pub(super) fn device_flow_offered(&mut self, offered: bool) {
        self.device_offered = Some(offered);
        // Keep the highlighted choice on the same entry.
        let last = self.login_choices().len() - 1;
        if let Screen::Login { selected, .. } = &mut self.screen {
            *selected = (*selected).min(last);
        }
    }

    pub(super) fn sign_in_url(&mut self, url: String) {
        if let Some((mode, ..)) = self.login_mut() {
            *mode = LoginMode::WaitingBrowser {
                url,
                paste: String::new(),
            };
        }
    }

    pub(super) fn device_code(&mut self, uri: String, code: String, complete: Option<String>) {
        if let Some((mode, ..)) = self.login_mut() {
            *mode = LoginMode::WaitingDevice {
                uri,
                code,
                complete,
            };
        }
    }

    pub(super) fn sign_in_note(&mut self, note: String) {
        if let Some((_, _, notes)) = self.login_mut()
            && !notes.contains(&note)
        {
            notes.push(note);
            // Only the latest few: a flood of stray requests must not push the rest off.
            if notes.len() > 3 {
                notes.remove(0);
            }
        }
    }

    pub(super) fn sign_in_failed(&mut self, message: String, hint: String) {
        if let Some((mode, error, notes)) = self.login_mut() {
            *mode = LoginMode::Menu;
            *error = Some((message, hint));
            notes.clear();
        }
    }

    fn set_login(&mut self, mode: LoginMode, selected: usize) {
        if let Screen::Login {
            mode: m,
            selected: s,
            ..
        } = &mut self.screen
        {
            *m = mode;
            *s = selected;
        }
    }

    fn copy(&mut self, text: String) -> Vec<Effect> {
        if let Some((_, _, notes)) = self.login_mut() {
            let note = "copied the address (if this terminal allows programs to set the clipboard)"
                .to_owned();
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        vec![Effect::Copy(text)]
    }

    fn set_login_error(&mut self, message: &str, hint: &str) {
        if let Some((_, error, _)) = self.login_mut() {
            *error = Some((message.into(), hint.into()));
        }
    }

    /// Back to the menu from a sign-in that waits, which is cancelled.
    fn cancel_sign_in(&mut self, selected: usize) -> Vec<Effect> {
        self.set_login(LoginMode::Menu, selected);
        if let Some((_, _, notes)) = self.login_mut() {
            notes.clear();
        }
        vec![Effect::CancelSignIn]
    }

    /// The text field of the mode in front (the paste box, the key), if it has one.
    fn login_field(&mut self) -> Option<&mut String> {
        match self.login_mut()? {
            (LoginMode::WaitingBrowser { paste, .. }, ..) => Some(paste),
            (LoginMode::EnterKey { input, .. }, ..) => Some(input),
            _ => None,
        }
    }

    pub(super) fn login_key(
        &mut self,
        k: KeyEvent,
        mode: LoginMode,
        selected: usize,
    ) -> Vec<Effect> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        // Typing in a field: characters, Backspace, Ctrl+U to clear it.
        if let Some(field) = self.login_field() {
            match k.code {
                KeyCode::Backspace => {
                    field.pop();
                    return Vec::new();
                }
                KeyCode::Char('u') if ctrl => {
                    field.clear();
                    return Vec::new();
                }
                KeyCode::Char(c) if !ctrl && !c.is_control() => {
                    field.push(c);
                    return Vec::new();
                }
                _ => {}
            }
        }
        match mode {
            LoginMode::Menu => return self.menu_key(k, selected),
            LoginMode::WaitingDevice { uri, complete, .. }
                if k.code == KeyCode::Char('y') && ctrl =>
            {
                // The address with the code in it, when there is one: one paste, no typing.
                return self.copy(complete.unwrap_or(uri));
            }
            LoginMode::Starting { .. } | LoginMode::WaitingDevice { .. } => {
                if k.code == KeyCode::Esc {
                    return self.cancel_sign_in(selected);
                }
            }
            LoginMode::WaitingBrowser { url, paste } => match k.code {
                KeyCode::Esc => return self.cancel_sign_in(selected),
                KeyCode::Enter if !paste.trim().is_empty() => {
                    let text = paste.trim().to_owned();
                    self.set_login(
                        LoginMode::WaitingBrowser {
                            url,
                            paste: String::new(),
                        },
                        selected,
                    );
                    return vec![Effect::SubmitCallback(text)];
                }
                KeyCode::Char('y') if ctrl => return self.copy(url),
                _ => {}
            },
            LoginMode::PickProvider { selected: p } => {
                let providers = key_providers();
                match k.code {
                    KeyCode::Up => self.set_login(
                        LoginMode::PickProvider {
                            selected: p.saturating_sub(1),
                        },
                        selected,
                    ),
                    KeyCode::Down => self.set_login(
                        LoginMode::PickProvider {
                            selected: (p + 1).min(providers.len() - 1),
                        },
                        selected,
                    ),
                    KeyCode::Enter => {
                        if let Some(provider) = providers.get(p).copied() {
                            self.set_login(
                                LoginMode::EnterKey {
                                    provider,
                                    input: String::new(),
                                },
                                selected,
                            );
                        }
                    }
                    KeyCode::Esc => self.set_login(LoginMode::Menu, selected),
                    _ => {}
                }
            }
            LoginMode::EnterKey { provider, input } => match k.code {
                KeyCode::Esc => {
                    let back = key_providers()
                        .iter()
                        .position(|p| *p == provider)
                        .unwrap_or(0);
                    self.set_login(LoginMode::PickProvider { selected: back }, selected);
                }
                KeyCode::Enter => {
                    let key = input.trim().to_owned();
                    if key.is_empty() || key.chars().any(|c| c.is_control() || c.is_whitespace()) {
                        self.set_login_error(
                            "That key is empty or has spaces in it.",
                            "Paste exactly one key and press Enter.",
                        );
                        return Vec::new();
                    }
                    if let Some((_, error, _)) = self.login_mut() {
                        *error = None;
                    }
                    self.set_login(LoginMode::Menu, selected);
                    return vec![Effect::StoreKey {
                        provider,
                        key: Secret::new(key),
                    }];
                }
                _ => {}
            },
        }
        Vec::new()
    }

    fn menu_key(&mut self, k: KeyEvent, selected: usize) -> Vec<Effect> {
        let choices = self.login_choices();
        match k.code {
            KeyCode::Up => self.set_login(LoginMode::Menu, selected.saturating_sub(1)),
            KeyCode::Down => self.set_login(LoginMode::Menu, (selected + 1).min(choices.len() - 1)),
            KeyCode::Enter => {
                if let Some((_, error, notes)) = self.login_mut() {
                    *error = None;
                    notes.clear();
                }
                return match choices.get(selected).copied() {
                    Some(LoginChoice::Browser) => {
                        self.set_login(LoginMode::Starting { device: false }, selected);
                        vec![Effect::StartBrowserSignIn]
                    }
                    Some(LoginChoice::Device) => {
                        self.set_login(LoginMode::Starting { device: true }, selected);
                        vec![Effect::StartDeviceSignIn]
                    }
                    Some(LoginChoice::ApiKey) => {
                        self.set_login(LoginMode::PickProvider { selected: 0 }, selected);
                        Vec::new()
                    }
                    Some(LoginChoice::Quit) | None => self.quit(),
                };
            }
            KeyCode::Char('q') | KeyCode::Esc => {
                if self.header.credential.is_some() {
                    self.screen = Screen::Session;
                    return Vec::new();
                }
                return self.quit();
            }
            _ => {}
        }
        Vec::new()
    }
}
