//! The cockpit's state and its transitions.
//!
//! [`App::update`] is the only way the state changes: its fields are private, and the runtime and
//! the views read them through the accessors below. It never waits and never touches the network
//! or the disk: what has to happen outside comes back as [`Effect`]s, and their results arrive
//! later as [`Event`]s. The transitions are split by concern: the login screen (`login.rs`), the
//! message box and transcript (`session.rs`), overlays (`overlay.rs`) and slash commands
//! (`commands.rs`).

mod commands;
pub mod event;
mod login;
mod overlay;
mod session;
mod tools;

use crate::composer::Composer;
pub use crate::state::{
    Ask, Entry, EntryKind, Header, LoginChoice, LoginMode, ModelChoice, Overlay, Screen,
    key_providers,
};
pub use event::{Effect, Event, ToolApproval};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    screen: Screen,
    header: Header,
    transcript: Vec<Entry>,
    composer: Composer,
    overlay: Option<Overlay>,
    streaming: bool,
    /// The first Ctrl+C of a double Ctrl+C.
    ctrl_c_armed: bool,
    quitting: bool,
    /// `None` until the account service has said; the device choice shows unless it said no.
    device_offered: Option<bool>,
    /// Rows scrolled up from the end of the transcript (0: following the end).
    scroll: usize,
    /// Prompts sent in this session, for Up/Down recall.
    history: Vec<String>,
    history_pos: Option<usize>,
    /// The terminal's columns and rows.
    size: (u16, u16),
    /// The command popup: the highlighted match, and the text it was closed for with Esc (it
    /// stays closed until the text changes).
    popup_selected: usize,
    popup_closed_for: Option<String>,
    /// A tool call of the answer in flight: waiting for approval, or running.
    tool: tools::ToolPhase,
    /// An `/mcp login` waits for the browser ([`Event::McpSignInWaiting`]).
    mcp_waiting: bool,
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
            size: (80, 24),
            popup_selected: 0,
            popup_closed_for: None,
            tool: tools::ToolPhase::Idle,
            mcp_waiting: false,
        }
    }

    /// The terminal's size, as last told.
    pub fn size(&self) -> (u16, u16) {
        self.size
    }

    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn transcript(&self) -> &[Entry] {
        &self.transcript
    }

    pub fn composer(&self) -> &Composer {
        &self.composer
    }

    pub fn overlay(&self) -> Option<&Overlay> {
        self.overlay.as_ref()
    }

    /// An answer is streaming in.
    pub fn is_streaming(&self) -> bool {
        self.streaming
    }

    /// The first Ctrl+C was pressed; the next one quits.
    pub fn ctrl_c_armed(&self) -> bool {
        self.ctrl_c_armed
    }

    pub fn is_quitting(&self) -> bool {
        self.quitting
    }

    /// Whether the account service offers device codes (`None`: not known yet).
    pub fn device_offered(&self) -> Option<bool> {
        self.device_offered
    }

    /// Rows scrolled up from the end of the transcript.
    pub fn scroll(&self) -> usize {
        self.scroll
    }

    pub fn login_choices(&self) -> Vec<LoginChoice> {
        let mut c = vec![LoginChoice::Browser];
        if self.device_offered != Some(false) {
            c.push(LoginChoice::Device);
        }
        c.extend([LoginChoice::ApiKey, LoginChoice::Quit]);
        c
    }

    fn say(&mut self, kind: EntryKind, text: impl Into<String>) {
        self.transcript.push(Entry {
            kind,
            text: text.into(),
        });
    }

    fn quit(&mut self) -> Vec<Effect> {
        self.quitting = true;
        vec![Effect::Quit]
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
            Event::McpSignInWaiting(w) => self.mcp_waiting = w,
            Event::DeviceFlowOffered(offered) => self.device_flow_offered(offered),
            Event::SignInUrl(url) => self.sign_in_url(url),
            Event::DeviceCode {
                uri,
                code,
                complete,
            } => self.device_code(uri, code, complete),
            Event::SignInNote(note) => self.sign_in_note(note),
            Event::SignInFailed { message, hint } => self.sign_in_failed(message, hint),
            Event::SignedIn { email } => {
                self.say(EntryKind::Notice, format!("Signed in as {email}"))
            }
            Event::Delta(text) => self.delta(text),
            Event::AnswerDone => {
                self.streaming = false;
                self.tool = tools::ToolPhase::Idle;
            }
            Event::AnswerFailed { message, hint } => {
                self.streaming = false;
                self.tool = tools::ToolPhase::Idle;
                let text = match hint {
                    Some(h) => format!("{message}\n{h}"),
                    None => message,
                };
                self.say(EntryKind::Error, text);
            }
            Event::StatusReady(rows) => self.overlay = Some(Overlay::Status { rows, scroll: 0 }),
            Event::ModelsReady(choices) => self.models_ready(choices),
            Event::ListReady { title, rows } => {
                self.overlay = Some(Overlay::List {
                    title,
                    rows,
                    scroll: 0,
                })
            }
            Event::Notice(text) => self.say(EntryKind::Notice, text),
            Event::Replayed(entry) => self.transcript.push(entry),
            Event::InputClosed => self.quitting = true,
            Event::ShowLogin => {
                if !matches!(self.screen, Screen::Login { .. }) {
                    self.screen = Screen::login();
                }
            }
            Event::AccountListsGone => {
                if matches!(
                    self.overlay,
                    Some(Overlay::List { .. } | Overlay::Model { .. })
                ) {
                    self.overlay = None;
                }
            }
            Event::Resize(w, h) => self.size = (w, h),
            Event::AskSwitch { provider, keep } => {
                if matches!(self.screen, Screen::Session) && self.overlay.is_none() {
                    self.overlay = Some(Overlay::Confirm {
                        ask: Ask::Switch { provider, keep },
                        refused: false,
                    });
                } else {
                    // Something else is open: the question would take its keys; say it instead.
                    self.say(
                        EntryKind::Notice,
                        format!(
                            "{keep} stays in use; choose a {} model with /model to switch to the new key.",
                            provider.display_name()
                        ),
                    );
                }
            }
            Event::ToolApproval { tool, arguments } => self.tool_approval(tool, arguments),
            Event::ToolRunning { tool } => self.tool_running(tool),
            Event::ToolDone { tool, ok, text } => self.tool_done(tool, ok, text),
            Event::NewConversation(text) => {
                self.tool = tools::ToolPhase::Idle;
                self.transcript.clear();
                self.scroll = 0;
                self.streaming = false;
                self.say(EntryKind::Notice, text);
            }
        }
        Vec::new()
    }

    fn paste(&mut self, text: &str) {
        match &mut self.screen {
            Screen::Login { mode, .. } => login::paste(mode, text),
            Screen::Session => match &mut self.overlay {
                Some(Overlay::Model { filter, .. }) => {
                    filter.push_str(text.lines().next().unwrap_or("").trim());
                }
                Some(Overlay::Confirm { refused, .. }) => *refused = true,
                // Only to read: it closes, and the text goes where it would have gone.
                Some(Overlay::Status { .. } | Overlay::List { .. } | Overlay::Help { .. })
                | None => {
                    self.overlay = None;
                    // Terminals send a pasted newline as CR.
                    self.composer
                        .insert_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
                }
            },
        }
    }

    fn key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c')) {
            if self.ctrl_c_armed {
                return self.quit();
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
}
