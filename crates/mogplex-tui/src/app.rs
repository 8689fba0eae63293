//! The cockpit's state and its transitions.
//!
//! [`App::update`] is the only way the state changes. It never waits and never touches the
//! network or the disk: what has to happen outside comes back as [`Effect`]s, and their results
//! arrive later as [`Event`]s.

use crate::composer::Composer;
use mogplex_auth::{Provider, Secret};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What the header shows: the active provider and model, where the credential came from
/// (masked), and the notices about environment overrides (variable names, never values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub provider: Option<String>,
    pub model: Option<String>,
    /// For example `OpenAI key sk-…abcd from OPENAI_API_KEY`.
    pub credential: Option<String>,
    /// Stored credentials the environment overrides, one sentence each.
    pub notices: Vec<String>,
    /// Providers with a credential stored in `auth.json` (`/logout` asks only about these).
    pub stored: Vec<Provider>,
    /// Shown on the login screen when a variable in this shell will still win over a sign-in.
    pub login_notice: Option<String>,
    /// The Mogplex account's hosted state in one line (account, models, MCP servers, run).
    pub hosted: Option<String>,
    /// Set when what the header shows comes from a cache the service could not refresh.
    pub stale: Option<String>,
}

/// One entry of the login menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginChoice {
    Browser,
    Device,
    ApiKey,
    Quit,
}

impl LoginChoice {
    pub fn label(self) -> &'static str {
        match self {
            LoginChoice::Browser => "Sign in with Mogplex",
            LoginChoice::Device => "Sign in with a device code",
            LoginChoice::ApiKey => "Use a provider API key",
            LoginChoice::Quit => "Quit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginMode {
    Menu,
    /// A sign-in was asked for and the account service is being contacted.
    Starting {
        device: bool,
    },
    /// Waiting for the browser; the address is shown for copying, and a paste box takes the
    /// address from a browser on another machine.
    WaitingBrowser {
        url: String,
        paste: String,
    },
    WaitingDevice {
        uri: String,
        code: String,
    },
    PickProvider {
        selected: usize,
    },
    /// The key is never shown, only its length as dots.
    EnterKey {
        provider: Provider,
        input: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Login {
        mode: LoginMode,
        selected: usize,
        /// A failure, shown in place: what went wrong and what to do.
        error: Option<(String, String)>,
        /// Things said while waiting (the machine looks headless, a stray request was refused).
        notes: Vec<String>,
    },
    Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    User,
    Assistant,
    Notice,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub text: String,
}

/// A model offered by `/model`: what is sent, and what is shown beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    pub id: String,
    pub detail: String,
}

impl ModelChoice {
    pub fn new(id: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            detail: detail.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// `/status`: label and value rows.
    Status(Vec<(String, String)>),
    /// `/model`: choices and the selected one; `None` while they load.
    Model {
        choices: Option<Vec<ModelChoice>>,
        selected: usize,
    },
    /// A list of label and value rows with a title (`/mcp`).
    List {
        title: String,
        rows: Vec<(String, String)>,
    },
    Help,
    /// `/logout`: asks before signing out (`None`: the Mogplex sign-in).
    ConfirmLogout(Option<Provider>),
}

/// Everything that can happen to the cockpit.
#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
    /// Resolution ran (at start, after sign-in, after logout): the header, or none at all.
    Resolved(Option<Header>),
    /// The header changed (a sync finished, a run was created); the screen stays as it is.
    HeaderChanged(Header),
    /// Whether the account service offers device codes (learnt in the background).
    DeviceFlowOffered(bool),
    SignInUrl(String),
    DeviceCode {
        uri: String,
        code: String,
    },
    /// Something to say on the login screen while a sign-in waits.
    SignInNote(String),
    SignInFailed {
        message: String,
        hint: String,
    },
    SignedIn {
        email: String,
    },
    Delta(String),
    AnswerDone,
    AnswerFailed {
        message: String,
        hint: Option<String>,
    },
    StatusReady(Vec<(String, String)>),
    ModelsReady(Vec<ModelChoice>),
    ListReady {
        title: String,
        rows: Vec<(String, String)>,
    },
    /// Something to say in the transcript (for example which variable still wins after /logout).
    Notice(String),
    /// An entry for the transcript that did not start here (a run followed with --attach).
    Replayed(Entry),
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The login screen opened from the session (`/login`).
    LoginOpened,
    StartBrowserSignIn,
    StartDeviceSignIn,
    CancelSignIn,
    /// An address pasted while waiting for the browser.
    SubmitCallback(String),
    /// Put text on the clipboard (through the terminal).
    Copy(String),
    StoreKey {
        provider: Provider,
        key: Secret,
    },
    SendPrompt(String),
    CancelAnswer,
    Logout(Option<Provider>),
    LoadStatus,
    LoadModels,
    LoadMcp,
    PickModel(String),
    Quit,
}

/// The login screen's mode, error and notes, to change in place.
type LoginParts<'a> = (
    &'a mut LoginMode,
    &'a mut Option<(String, String)>,
    &'a mut Vec<String>,
);

pub const SLASH_COMMANDS: [(&str, &str); 9] = [
    ("/login", "sign in, or use another credential"),
    (
        "/logout",
        "sign out (or /logout <provider> to remove a stored key)",
    ),
    (
        "/status",
        "which credential is in use, and where it came from",
    ),
    ("/model", "choose the model"),
    ("/mcp", "MCP servers from your Mogplex account"),
    ("/help", "keys and commands"),
    ("/clear", "clear the transcript"),
    ("/quit", "leave mogplex"),
    ("/exit", "leave mogplex"),
];

/// Providers offered for an API key (the Mogplex account signs in instead).
pub fn key_providers() -> Vec<Provider> {
    Provider::ALL
        .into_iter()
        .filter(|p| *p != Provider::Mogplex)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub screen: Screen,
    pub header: Header,
    pub transcript: Vec<Entry>,
    pub composer: Composer,
    pub overlay: Option<Overlay>,
    pub streaming: bool,
    /// The first Ctrl+C of a double Ctrl+C.
    pub ctrl_c_armed: bool,
    pub quitting: bool,
    /// `None` until the account service has said; the device choice shows unless it said no.
    pub device_offered: Option<bool>,
    /// Rows scrolled up from the end of the transcript (0: following the end).
    pub scroll: usize,
    /// Prompts sent in this session, for Up/Down recall.
    history: Vec<String>,
    history_pos: Option<usize>,
}

impl App {
    /// A cockpit starting with `header` (a resolved credential) or at the login screen.
    pub fn new(header: Option<Header>) -> Self {
        let screen = if header.is_some() {
            Screen::Session
        } else {
            Screen::login()
        };
        Self {
            screen,
            header: header.unwrap_or_default(),
            transcript: Vec::new(),
            composer: Composer::default(),
            overlay: None,
            streaming: false,
            ctrl_c_armed: false,
            quitting: false,
            device_offered: None,
            scroll: 0,
            history: Vec::new(),
            history_pos: None,
        }
    }

    pub fn login_choices(&self) -> Vec<LoginChoice> {
        let mut c = vec![LoginChoice::Browser];
        if self.device_offered != Some(false) {
            c.push(LoginChoice::Device);
        }
        c.extend([LoginChoice::ApiKey, LoginChoice::Quit]);
        c
    }

    /// Slash commands matching what is typed, for completion.
    pub fn completions(&self) -> Vec<(&'static str, &'static str)> {
        let typed = self.composer.text().trim_end();
        if !typed.starts_with('/') || typed.contains(char::is_whitespace) {
            return Vec::new();
        }
        SLASH_COMMANDS
            .iter()
            .copied()
            .filter(|(c, _)| c.starts_with(typed) && *c != typed)
            .collect()
    }

    fn say(&mut self, kind: EntryKind, text: impl Into<String>) {
        self.transcript.push(Entry {
            kind,
            text: text.into(),
        });
    }

    fn login_mut(&mut self) -> Option<LoginParts<'_>> {
        match &mut self.screen {
            Screen::Login {
                mode, error, notes, ..
            } => Some((mode, error, notes)),
            Screen::Session => None,
        }
    }

    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(k) => return self.key(k),
            Event::Paste(text) => self.paste(&text),
            Event::Resolved(header) => match header {
                Some(h) => {
                    self.header = h;
                    if !matches!(self.screen, Screen::Session) {
                        self.screen = Screen::Session;
                    }
                }
                None => {
                    self.header = Header::default();
                    self.overlay = None;
                    self.screen = Screen::login();
                }
            },
            Event::HeaderChanged(h) => self.header = h,
            Event::DeviceFlowOffered(offered) => {
                self.device_offered = Some(offered);
                // Keep the highlighted choice on the same entry.
                let last = self.login_choices().len() - 1;
                if let Screen::Login { selected, .. } = &mut self.screen {
                    *selected = (*selected).min(last);
                }
            }
            Event::SignInUrl(url) => {
                if let Some((mode, ..)) = self.login_mut() {
                    *mode = LoginMode::WaitingBrowser {
                        url,
                        paste: String::new(),
                    };
                }
            }
            Event::DeviceCode { uri, code } => {
                if let Some((mode, ..)) = self.login_mut() {
                    *mode = LoginMode::WaitingDevice { uri, code };
                }
            }
            Event::SignInNote(note) => {
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
            Event::SignInFailed { message, hint } => {
                if let Some((mode, error, notes)) = self.login_mut() {
                    *mode = LoginMode::Menu;
                    *error = Some((message, hint));
                    notes.clear();
                }
            }
            Event::SignedIn { email } => {
                self.say(EntryKind::Notice, format!("Signed in as {email}"))
            }
            Event::Delta(text) => {
                if !self.streaming {
                    return Vec::new();
                }
                match self.transcript.last_mut() {
                    Some(Entry {
                        kind: EntryKind::Assistant,
                        text: t,
                    }) => t.push_str(&text),
                    _ => self.say(EntryKind::Assistant, text),
                }
            }
            Event::AnswerDone => self.streaming = false,
            Event::AnswerFailed { message, hint } => {
                self.streaming = false;
                let text = match hint {
                    Some(h) => format!("{message}\n{h}"),
                    None => message,
                };
                self.say(EntryKind::Error, text);
            }
            Event::StatusReady(rows) => self.overlay = Some(Overlay::Status(rows)),
            Event::ModelsReady(choices) => {
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
            Event::ListReady { title, rows } => self.overlay = Some(Overlay::List { title, rows }),
            Event::Notice(text) => self.say(EntryKind::Notice, text),
            Event::Replayed(entry) => self.transcript.push(entry),
        }
        Vec::new()
    }

    fn paste(&mut self, text: &str) {
        match &mut self.screen {
            Screen::Login {
                mode: LoginMode::WaitingBrowser { paste, .. },
                ..
            } => paste.push_str(text.trim()),
            Screen::Login {
                mode: LoginMode::EnterKey { input, .. },
                ..
            } => input.push_str(text.trim()),
            Screen::Session if self.overlay.is_none() => {
                // Terminals send a pasted newline as CR.
                self.composer
                    .insert_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
            }
            _ => {}
        }
    }

    fn key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c')) {
            if self.ctrl_c_armed {
                self.quitting = true;
                return vec![Effect::Quit];
            }
            self.ctrl_c_armed = true;
            self.composer.clear();
            if self.streaming {
                return self.stop_answer();
            }
            return Vec::new();
        }
        self.ctrl_c_armed = false;
        if self.overlay.is_some() {
            return self.overlay_key(k);
        }
        match self.screen.clone() {
            Screen::Login { mode, selected, .. } => self.login_key(k, mode, selected),
            Screen::Session => self.session_key(k),
        }
    }

    fn stop_answer(&mut self) -> Vec<Effect> {
        self.streaming = false;
        self.say(EntryKind::Notice, "Stopped the answer.");
        vec![Effect::CancelAnswer]
    }

    fn overlay_key(&mut self, k: KeyEvent) -> Vec<Effect> {
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

    fn login_key(&mut self, k: KeyEvent, mode: LoginMode, selected: usize) -> Vec<Effect> {
        match mode {
            LoginMode::Menu => {
                let choices = self.login_choices();
                match k.code {
                    KeyCode::Up => self.set_login(LoginMode::Menu, selected.saturating_sub(1)),
                    KeyCode::Down => {
                        self.set_login(LoginMode::Menu, (selected + 1).min(choices.len() - 1))
                    }
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
                            Some(LoginChoice::Quit) | None => {
                                self.quitting = true;
                                vec![Effect::Quit]
                            }
                        };
                    }
                    KeyCode::Char('q') | KeyCode::Esc => {
                        if self.header.credential.is_some() {
                            self.screen = Screen::Session;
                            return Vec::new();
                        }
                        self.quitting = true;
                        return vec![Effect::Quit];
                    }
                    _ => {}
                }
            }
            LoginMode::WaitingDevice { uri, .. }
                if k.code == KeyCode::Char('y') && k.modifiers.contains(KeyModifiers::CONTROL) =>
            {
                return self.copy(uri);
            }
            LoginMode::Starting { .. } | LoginMode::WaitingDevice { .. } => {
                if k.code == KeyCode::Esc {
                    self.set_login(LoginMode::Menu, selected);
                    if let Some((_, _, notes)) = self.login_mut() {
                        notes.clear();
                    }
                    return vec![Effect::CancelSignIn];
                }
            }
            LoginMode::WaitingBrowser { url, mut paste } => match k.code {
                KeyCode::Esc => {
                    self.set_login(LoginMode::Menu, selected);
                    if let Some((_, _, notes)) = self.login_mut() {
                        notes.clear();
                    }
                    return vec![Effect::CancelSignIn];
                }
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
                KeyCode::Backspace => {
                    paste.pop();
                    self.set_login(LoginMode::WaitingBrowser { url, paste }, selected);
                }
                KeyCode::Char('y') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    return self.copy(url);
                }
                KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.set_login(
                        LoginMode::WaitingBrowser {
                            url,
                            paste: String::new(),
                        },
                        selected,
                    );
                }
                KeyCode::Char(c) if !c.is_control() => {
                    paste.push(c);
                    self.set_login(LoginMode::WaitingBrowser { url, paste }, selected);
                }
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
            LoginMode::EnterKey {
                provider,
                mut input,
            } => match k.code {
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
                KeyCode::Backspace => {
                    input.pop();
                    self.set_login(LoginMode::EnterKey { provider, input }, selected);
                }
                KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.set_login(
                        LoginMode::EnterKey {
                            provider,
                            input: String::new(),
                        },
                        selected,
                    );
                }
                KeyCode::Char(c) if !c.is_control() => {
                    input.push(c);
                    self.set_login(LoginMode::EnterKey { provider, input }, selected);
                }
                _ => {}
            },
        }
        Vec::new()
    }

    fn session_key(&mut self, k: KeyEvent) -> Vec<Effect> {
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
                if let Some((c, _)) = self.completions().first() {
                    self.composer.set(&format!("{c} "));
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

    fn command(&mut self, cmd: &str) -> Vec<Effect> {
        let mut parts = cmd.split_whitespace();
        let name = parts.next().unwrap_or("");
        let arg = parts.next();
        match name {
            "login" => {
                self.screen = Screen::login();
                vec![Effect::LoginOpened]
            }
            "logout" => {
                match arg.map(str::parse::<Provider>) {
                    None if self.header.stored.contains(&Provider::Mogplex) => {
                        self.overlay = Some(Overlay::ConfirmLogout(None));
                    }
                    None => {
                        let keys: Vec<&str> = self.header.stored.iter().map(|p| p.id()).collect();
                        let text = if keys.is_empty() {
                            "Nothing to sign out of: no Mogplex sign-in or key is stored in this home.".to_owned()
                        } else {
                            format!(
                                "No Mogplex sign-in is stored. Stored keys are kept unless you remove one: /logout {}",
                                keys.join(" or /logout ")
                            )
                        };
                        self.say(EntryKind::Notice, text);
                    }
                    Some(Ok(p)) if self.header.stored.contains(&p) => {
                        self.overlay = Some(Overlay::ConfirmLogout(Some(p)));
                    }
                    Some(Ok(p)) => self.say(
                        EntryKind::Notice,
                        format!(
                            "No {} credential is stored in this home; nothing to remove.",
                            p.display_name()
                        ),
                    ),
                    Some(Err(_)) => self.say(
                        EntryKind::Error,
                        format!(
                            "unknown provider `{}`; use one of: {}",
                            arg.unwrap_or(""),
                            Provider::names()
                        ),
                    ),
                }
                Vec::new()
            }
            "status" => vec![Effect::LoadStatus],
            "model" => {
                self.overlay = Some(Overlay::Model {
                    choices: None,
                    selected: 0,
                });
                vec![Effect::LoadModels]
            }
            "mcp" => vec![Effect::LoadMcp],
            "help" => {
                self.overlay = Some(Overlay::Help);
                Vec::new()
            }
            "clear" => {
                self.transcript.clear();
                self.scroll = 0;
                Vec::new()
            }
            "quit" | "exit" => {
                self.quitting = true;
                vec![Effect::Quit]
            }
            other => {
                self.say(
                    EntryKind::Error,
                    format!("unknown command /{other}; type /help for the list"),
                );
                Vec::new()
            }
        }
    }
}

impl Screen {
    pub fn login() -> Self {
        Screen::Login {
            mode: LoginMode::Menu,
            selected: 0,
            error: None,
            notes: Vec::new(),
        }
    }
}
