//! A server's failure, worded for `/mcp` and the transcript (never holding a secret value).

/// What went wrong, for the caller to decide the state (`NeedsSignIn` is not a failure of the
/// server) and the hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpErrorKind {
    /// The definition cannot be used (no command, a bad URL or header).
    Definition,
    /// The process could not be started.
    Spawn,
    /// No answer in time.
    Timeout,
    /// The server broke the protocol: crashed, printed garbage, closed the connection.
    Protocol,
    /// A remote server answered 401: it needs an OAuth sign-in (none is stored, or the stored
    /// one ended).
    NeedsSignIn,
    /// A remote server answered 403 `insufficient_scope`: it needs a sign-in with a larger scope
    /// ([`McpError::scope`] names it).
    NeedsMoreAccess,
    /// Too many tools, or a result too large.
    TooMuch,
    /// The model's arguments are not a JSON object.
    BadArguments,
    /// The server refused or failed the call.
    Call,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct McpError {
    pub kind: McpErrorKind,
    pub message: String,
    /// For [`McpErrorKind::NeedsSignIn`] and [`McpErrorKind::NeedsMoreAccess`]: the scope the
    /// server's challenge asks for, when it names one.
    pub scope: Option<String>,
}

impl McpError {
    pub fn new(kind: McpErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            scope: None,
        }
    }

    pub fn with_scope(mut self, scope: Option<String>) -> Self {
        self.scope = scope;
        self
    }

    /// Whether a sign-in (`/mcp login`, `mogplex mcp login`) is what it takes.
    pub fn needs_sign_in(&self) -> bool {
        matches!(
            self.kind,
            McpErrorKind::NeedsSignIn | McpErrorKind::NeedsMoreAccess
        )
    }
}
