//! What the cockpit's state is made of: the header, the screens and their modes, transcript
//! entries and overlays. Plain values; [`crate::App`] holds them and changes them, and
//! [`crate::layout`] and [`crate::view`] read them.

use mogplex_auth::Provider;

/// What the header shows: one line with the provider, the model, the credential in use (masked,
/// with where it came from) and the account's hosted state; then one line per environment
/// override. Paths are left to `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub provider: Option<String>,
    pub model: Option<String>,
    /// For example `OpenAI key sk-…abcd from OPENAI_API_KEY`, or `Mogplex sign-in (ada@…)`.
    pub credential: Option<String>,
    /// The same, shorter, for a narrow header: `sk-…abcd from OPENAI_API_KEY`, `ada@…`.
    pub credential_short: Option<String>,
    /// Stored credentials the environment overrides, one short sentence each (variable names,
    /// never values); `/status` has the whole story.
    pub notices: Vec<String>,
    /// Providers with a credential stored in `auth.json` (`/logout` asks only about these).
    pub stored: Vec<Provider>,
    /// Shown on the login screen when a variable in this shell will still win over a sign-in.
    pub login_notice: Option<String>,
    /// Shown on the login screen opened with `/login`: who is signed in, and what signing in
    /// again does.
    pub signed_in: Option<String>,
    /// The Mogplex account's catalog, for example `1 model`.
    pub models: Option<String>,
    /// The Mogplex account's MCP servers, for example `MCP: github`.
    pub mcp: Option<String>,
    /// What the header shows of the account comes from a saved copy the service could not
    /// refresh.
    pub stale: bool,
    /// The run this session writes to.
    pub run: Option<String>,
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
        /// The address with the code filled in, when the service offers one.
        complete: Option<String>,
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

/// Something drawn over the session. Informational ones (`/status`, `/mcp`, `/help`) close on
/// the first key that is not theirs, and that key goes on to the message box; the model list
/// takes typing as a filter; the sign-out question takes only its own keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// `/status`: label and value rows.
    Status {
        rows: Vec<(String, String)>,
        scroll: usize,
    },
    /// `/model`: choices (`None` while they load), the selected one among those the filter
    /// lets through, and the filter typed so far.
    Model {
        choices: Option<Vec<ModelChoice>>,
        selected: usize,
        filter: String,
    },
    /// A list of label and value rows with a title (`/mcp`).
    List {
        title: String,
        rows: Vec<(String, String)>,
        scroll: usize,
    },
    Help {
        scroll: usize,
    },
    /// A yes-or-no question (`/logout`, a switch to a key just stored). `refused` is set when
    /// a key other than its own was pressed, so it can say which keys it takes.
    Confirm {
        ask: Ask,
        refused: bool,
    },
}

/// What a [`Overlay::Confirm`] asks; yes carries it out, no leaves everything as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// `/logout [provider]` (`None`: the active Mogplex account).
    Logout(Option<Provider>),
    /// `/logout --all`: every Mogplex account in this home.
    LogoutAll,
    /// A key was stored from `/login` while `keep` (a short label of the credential in use)
    /// stays first: switch to the new one?
    Switch { provider: Provider, keep: String },
}

impl Ask {
    /// The question, what yes does and what no does (said again when another key is pressed).
    pub fn question(&self) -> (String, &'static str, &'static str) {
        match self {
            Ask::Logout(None) => (
                "Sign out of Mogplex? Stored provider keys are kept.".to_owned(),
                "y signs out",
                "keeps it",
            ),
            Ask::Logout(Some(p)) => (
                format!("Remove the stored {} key?", p.display_name()),
                "y removes it",
                "keeps it",
            ),
            Ask::LogoutAll => (
                "Sign out of every Mogplex account in this home? Each is revoked at its service; stored provider keys are kept.".to_owned(),
                "y signs out of all",
                "keeps them",
            ),
            Ask::Switch { provider, keep } => (
                format!(
                    "Use the new {} key now? {keep} stays in use otherwise.",
                    provider.display_name()
                ),
                "y switches to it",
                "keeps what is in use",
            ),
        }
    }

    /// The overlay's title.
    pub fn title(&self) -> &'static str {
        match self {
            Ask::Logout(_) | Ask::LogoutAll => "sign out",
            Ask::Switch { .. } => "switch",
        }
    }
}

impl Overlay {
    /// The choices of the model list that match its filter (case-insensitive, on the id and the
    /// detail), in order.
    pub fn visible_models(&self) -> Vec<&ModelChoice> {
        let Overlay::Model {
            choices: Some(choices),
            filter,
            ..
        } = self
        else {
            return Vec::new();
        };
        let needle = filter.to_lowercase();
        choices
            .iter()
            .filter(|c| {
                needle.is_empty()
                    || c.id.to_lowercase().contains(&needle)
                    || c.detail.to_lowercase().contains(&needle)
            })
            .collect()
    }

    /// How far an informational overlay is scrolled.
    pub fn scroll(&self) -> usize {
        match self {
            Overlay::Status { scroll, .. }
            | Overlay::List { scroll, .. }
            | Overlay::Help { scroll } => *scroll,
            Overlay::Model { .. } | Overlay::Confirm { .. } => 0,
        }
    }
}

/// Providers offered for an API key (the Mogplex account signs in instead).
pub fn key_providers() -> Vec<Provider> {
    Provider::ALL
        .into_iter()
        .filter(|p| *p != Provider::Mogplex)
        .collect()
}
