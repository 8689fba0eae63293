//! The one error type of the binary, printed as `error: …` / `  Caused by: …` / `hint: …`.
//!
//! Everything that reaches the terminal goes through [`CliError::render`], which redacts with
//! the session's [`Redactor`], so an upstream message that quotes a key cannot leak it.

use crate::exit;
use mogplex_auth::{HomeError, Redactor, StoreError};

#[derive(Debug, Clone)]
pub struct CliError {
    pub message: String,
    pub causes: Vec<String>,
    pub hints: Vec<String>,
    pub code: u8,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            causes: Vec::new(),
            hints: Vec::new(),
            code,
        }
    }

    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        self.causes.push(cause.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// An exit code with nothing more to print: the command has already said why (`status`).
    pub fn silent(mut self) -> Self {
        self.message.clear();
        self.causes.clear();
        self.hints.clear();
        self
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// The text for stderr, redacted, with control characters a provider's message may carry
    /// shown rather than sent to the terminal.
    pub fn render(&self, redactor: &Redactor) -> String {
        if self.message.is_empty() && self.hints.is_empty() {
            return String::new();
        }
        let mut out = format!("error: {}\n", self.message);
        for c in &self.causes {
            out.push_str(&format!("  Caused by: {c}\n"));
        }
        for h in &self.hints {
            out.push_str(&format!("hint: {h}\n"));
        }
        mogplex_tui::sanitize(&redactor.redact_str(&out)).into_owned()
    }

    /// One JSON event for `--json` output, redacted.
    pub fn json(&self, redactor: &Redactor) -> serde_json::Value {
        let mut v = serde_json::json!({
            "type": "error",
            "message": self.message,
            "causes": self.causes,
            "hints": self.hints,
            "exit_code": self.code,
        });
        redactor.redact_json(&mut v);
        v
    }
}

/// Adds the `Caused by:` chain of a std error.
fn with_sources(mut e: CliError, err: &dyn std::error::Error) -> CliError {
    let mut source = err.source();
    while let Some(s) = source {
        e.causes.push(s.to_string());
        source = s.source();
    }
    e
}

impl From<StoreError> for CliError {
    fn from(err: StoreError) -> Self {
        let mut e = with_sources(CliError::new(exit::CONFIG, err.to_string()), &err);
        if let Some(h) = err.hint() {
            e.hints.push(h);
        }
        if matches!(err, StoreError::ControlCharacters { .. }) {
            e.code = exit::USAGE;
        }
        e
    }
}

impl From<HomeError> for CliError {
    fn from(err: HomeError) -> Self {
        let mut e = with_sources(CliError::new(exit::CONFIG, err.to_string()), &err);
        if let Some(h) = err.hint() {
            e.hints.push(h);
        }
        e
    }
}

impl From<mogplex_auth::credentials::CredentialError> for CliError {
    fn from(err: mogplex_auth::credentials::CredentialError) -> Self {
        use mogplex_auth::credentials::CredentialError as E;
        if let E::File(e) = err {
            return e.into();
        }
        let code = match err {
            E::BadChoice { .. } => exit::USAGE,
            E::NoSuchAccount { .. } => exit::NO_CREDENTIAL,
            _ => exit::CONFIG,
        };
        let mut e = with_sources(CliError::new(code, err.to_string()), &err);
        if let Some(h) = err.hint() {
            e.hints.push(h);
        }
        e
    }
}
