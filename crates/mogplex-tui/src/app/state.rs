//! What the cockpit's state is made of: the header, the screens and their modes, transcript
//! entries and overlays. Plain values; [`super::App`] holds them and changes them.

use mogplex_auth::Provider;

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

/// Providers offered for an API key (the Mogplex account signs in instead).
pub fn key_providers() -> Vec<Provider> {
    Provider::ALL
        .into_iter()
        .filter(|p| *p != Provider::Mogplex)
        .collect()
}
