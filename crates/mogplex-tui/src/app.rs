//! The cockpit's state and its transitions.

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
    pub notices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginMode {
    Menu,
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
        error: Option<(String, String)>,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// `/status`: label and value rows.
    Status(Vec<(String, String)>),
    /// `/model`: choices and the selected one.
    Model {
        choices: Vec<String>,
        selected: usize,
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
    SignInUrl(String),
    DeviceCode {
        uri: String,
        code: String,
    },
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
    ModelsReady(Vec<String>),
    /// Something to say in the transcript (for example which variable still wins after /logout).
    Notice(String),
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    StartBrowserSignIn,
    StartDeviceSignIn,
    CancelSignIn,
    /// An address pasted while waiting for the browser.
    SubmitCallback(String),
    StoreKey {
        provider: Provider,
        key: Secret,
    },
    SendPrompt(String),
    Logout(Option<Provider>),
    LoadStatus,
    LoadModels,
    PickModel(String),
    Quit,
}

pub const LOGIN_CHOICES: [&str; 4] = [
    "Sign in with Mogplex",
    "Sign in with a device code",
    "Use a provider API key",
    "Quit",
];
pub const SLASH_COMMANDS: [(&str, &str); 8] = [
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
    pub composer: String,
    pub overlay: Option<Overlay>,
    pub streaming: bool,
    /// The first Ctrl+C of a double Ctrl+C.
    pub ctrl_c_armed: bool,
    pub quitting: bool,
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
            composer: String::new(),
            overlay: None,
            streaming: false,
            ctrl_c_armed: false,
            quitting: false,
        }
    }

    /// Slash commands matching what is typed, for completion.
    pub fn completions(&self) -> Vec<(&'static str, &'static str)> {
        let typed = self.composer.trim_end();
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

    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(k) => self.key(k),
            Event::Paste(text) => {
                match &mut self.screen {
                    Screen::Login {
                        mode: LoginMode::WaitingBrowser { paste, .. },
                        ..
                    } => paste.push_str(text.trim()),
                    Screen::Login {
                        mode: LoginMode::EnterKey { input, .. },
                        ..
                    } => input.push_str(text.trim()),
                    Screen::Session if self.overlay.is_none() => self.composer.push_str(&text),
                    _ => {}
                }
                Vec::new()
            }
            Event::Resolved(header) => {
                match header {
                    Some(h) => {
                        self.header = h;
                        if !matches!(self.screen, Screen::Session) {
                            self.screen = Screen::Session;
                        }
                    }
                    None => {
                        self.header = Header::default();
                        self.screen = Screen::login();
                    }
                }
                Vec::new()
            }
            Event::SignInUrl(url) => {
                if let Screen::Login { mode, .. } = &mut self.screen {
                    *mode = LoginMode::WaitingBrowser {
                        url,
                        paste: String::new(),
                    };
                }
                Vec::new()
            }
            Event::DeviceCode { uri, code } => {
                if let Screen::Login { mode, .. } = &mut self.screen {
                    *mode = LoginMode::WaitingDevice { uri, code };
                }
                Vec::new()
            }
            Event::SignInFailed { message, hint } => {
                if let Screen::Login { mode, error, .. } = &mut self.screen {
                    *mode = LoginMode::Menu;
                    *error = Some((message, hint));
                }
                Vec::new()
            }
            Event::SignedIn { email } => {
                self.say(EntryKind::Notice, format!("Signed in as {email}"));
                Vec::new()
            }
            Event::Delta(text) => {
                match self.transcript.last_mut() {
                    Some(Entry {
                        kind: EntryKind::Assistant,
                        text: t,
                    }) if self.streaming => t.push_str(&text),
                    _ => self.say(EntryKind::Assistant, text),
                }
                Vec::new()
            }
            Event::AnswerDone => {
                self.streaming = false;
                Vec::new()
            }
            Event::AnswerFailed { message, hint } => {
                self.streaming = false;
                let text = match hint {
                    Some(h) => format!("{message}\n{h}"),
                    None => message,
                };
                self.say(EntryKind::Error, text);
                Vec::new()
            }
            Event::StatusReady(rows) => {
                self.overlay = Some(Overlay::Status(rows));
                Vec::new()
            }
            Event::ModelsReady(choices) => {
                let selected = self
                    .header
                    .model
                    .as_ref()
                    .and_then(|m| choices.iter().position(|c| c == m))
                    .unwrap_or(0);
                self.overlay = Some(Overlay::Model { choices, selected });
                Vec::new()
            }
            Event::Notice(text) => {
                self.say(EntryKind::Notice, text);
                Vec::new()
            }
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

    fn overlay_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        match (self.overlay.clone(), k.code) {
            (Some(Overlay::Model { choices, selected }), KeyCode::Up) => {
                self.overlay = Some(Overlay::Model {
                    selected: selected.saturating_sub(1),
                    choices,
                });
                Vec::new()
            }
            (Some(Overlay::Model { choices, selected }), KeyCode::Down) => {
                let selected = (selected + 1).min(choices.len().saturating_sub(1));
                self.overlay = Some(Overlay::Model { choices, selected });
                Vec::new()
            }
            (Some(Overlay::Model { choices, selected }), KeyCode::Enter) => {
                self.overlay = None;
                match choices.get(selected) {
                    Some(m) => vec![Effect::PickModel(m.clone())],
                    None => Vec::new(),
                }
            }
            (
                Some(Overlay::ConfirmLogout(p)),
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter,
            ) => {
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

    fn login_key(&mut self, k: KeyEvent, mode: LoginMode, selected: usize) -> Vec<Effect> {
        let set = |app: &mut Self, mode: LoginMode, selected: usize| {
            if let Screen::Login {
                mode: m,
                selected: s,
                ..
            } = &mut app.screen
            {
                *m = mode;
                *s = selected;
            }
        };
        match mode {
            LoginMode::Menu => match k.code {
                KeyCode::Up => set(self, LoginMode::Menu, selected.saturating_sub(1)),
                KeyCode::Down => set(
                    self,
                    LoginMode::Menu,
                    (selected + 1).min(LOGIN_CHOICES.len() - 1),
                ),
                KeyCode::Enter => {
                    if let Screen::Login { error, .. } = &mut self.screen {
                        *error = None;
                    }
                    return match selected {
                        0 => vec![Effect::StartBrowserSignIn],
                        1 => vec![Effect::StartDeviceSignIn],
                        2 => {
                            set(self, LoginMode::PickProvider { selected: 0 }, selected);
                            Vec::new()
                        }
                        _ => {
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
            },
            LoginMode::WaitingBrowser { url, mut paste } => match k.code {
                KeyCode::Esc => {
                    set(self, LoginMode::Menu, selected);
                    return vec![Effect::CancelSignIn];
                }
                KeyCode::Enter if !paste.trim().is_empty() => {
                    let text = paste.trim().to_owned();
                    set(
                        self,
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
                    set(self, LoginMode::WaitingBrowser { url, paste }, selected);
                }
                KeyCode::Char(c) if !c.is_control() => {
                    paste.push(c);
                    set(self, LoginMode::WaitingBrowser { url, paste }, selected);
                }
                _ => {}
            },
            LoginMode::WaitingDevice { .. } => {
                if k.code == KeyCode::Esc {
                    set(self, LoginMode::Menu, selected);
                    return vec![Effect::CancelSignIn];
                }
            }
            LoginMode::PickProvider { selected: p } => {
                let providers = key_providers();
                match k.code {
                    KeyCode::Up => set(
                        self,
                        LoginMode::PickProvider {
                            selected: p.saturating_sub(1),
                        },
                        selected,
                    ),
                    KeyCode::Down => set(
                        self,
                        LoginMode::PickProvider {
                            selected: (p + 1).min(providers.len() - 1),
                        },
                        selected,
                    ),
                    KeyCode::Enter => {
                        if let Some(provider) = providers.get(p).copied() {
                            set(
                                self,
                                LoginMode::EnterKey {
                                    provider,
                                    input: String::new(),
                                },
                                selected,
                            );
                        }
                    }
                    KeyCode::Esc => set(self, LoginMode::Menu, selected),
                    _ => {}
                }
            }
            LoginMode::EnterKey {
                provider,
                mut input,
            } => match k.code {
                KeyCode::Esc => set(self, LoginMode::PickProvider { selected: 0 }, selected),
                KeyCode::Enter => {
                    let key = input.trim().to_owned();
                    if key.is_empty() || key.chars().any(|c| c.is_control() || c.is_whitespace()) {
                        if let Screen::Login { error, .. } = &mut self.screen {
                            *error = Some((
                                "That key is empty or has spaces in it.".into(),
                                "Paste exactly one key and press Enter.".into(),
                            ));
                        }
                        return Vec::new();
                    }
                    set(self, LoginMode::Menu, selected);
                    return vec![Effect::StoreKey {
                        provider,
                        key: Secret::new(key),
                    }];
                }
                KeyCode::Backspace => {
                    input.pop();
                    set(self, LoginMode::EnterKey { provider, input }, selected);
                }
                KeyCode::Char(c) if !c.is_control() => {
                    input.push(c);
                    set(self, LoginMode::EnterKey { provider, input }, selected);
                }
                _ => {}
            },
        }
        Vec::new()
    }

    fn session_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        match k.code {
            KeyCode::Enter
                if k.modifiers.contains(KeyModifiers::SHIFT)
                    || k.modifiers.contains(KeyModifiers::ALT) =>
            {
                self.composer.push('\n');
                Vec::new()
            }
            KeyCode::Enter => self.submit(),
            KeyCode::Tab => {
                if let Some((c, _)) = self.completions().first() {
                    self.composer = format!("{c} ");
                }
                Vec::new()
            }
            KeyCode::Backspace => {
                self.composer.pop();
                Vec::new()
            }
            KeyCode::Char(c) => {
                self.composer.push(c);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn submit(&mut self) -> Vec<Effect> {
        let text = std::mem::take(&mut self.composer);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Vec::new();
        }
        if let Some(cmd) = trimmed.strip_prefix('/') {
            let mut parts = cmd.split_whitespace();
            let name = parts.next().unwrap_or("");
            let arg = parts.next();
            return match name {
                "login" => {
                    self.screen = Screen::login();
                    Vec::new()
                }
                "logout" => {
                    match arg.map(str::parse::<Provider>) {
                        None => self.overlay = Some(Overlay::ConfirmLogout(None)),
                        Some(Ok(p)) => self.overlay = Some(Overlay::ConfirmLogout(Some(p))),
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
                "model" => vec![Effect::LoadModels],
                "help" => {
                    self.overlay = Some(Overlay::Help);
                    Vec::new()
                }
                "clear" => {
                    self.transcript.clear();
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
            };
        }
        if self.streaming {
            self.composer = text;
            return Vec::new();
        }
        self.say(EntryKind::User, trimmed.to_owned());
        self.streaming = true;
        vec![Effect::SendPrompt(trimmed.to_owned())]
    }
}

impl Screen {
    pub fn login() -> Self {
        Screen::Login {
            mode: LoginMode::Menu,
            selected: 0,
            error: None,
        }
    }
}
