//! What a Mogplex account brings besides models: who it is, its MCP server definitions, and runs
//! (for `mogplex --attach`), as the CLI reads them (SPEC section 4).

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::routes::{MCP_SERVERS as MCP_SERVERS_PATH, RUNS as RUNS_PATH, USER as USER_PATH};

/// `GET /api/auth/user` → `{"user": …}` (`null` when the bearer is not signed in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserResponse {
    pub user: Option<AccountUser>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountUser {
    pub id: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the account was created (RFC 3339).
    #[serde(rename = "createdAt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// The `{"ok": true, "data": …}` envelope of `/api/v1/…`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct V1Ok<T> {
    pub ok: bool,
    pub data: T,
}

impl<T> V1Ok<T> {
    /// `{"ok": true, "data": data}`.
    pub fn new(data: T) -> Self {
        Self { ok: true, data }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpServers {
    pub servers: Vec<McpServer>,
}

/// One MCP server definition. `config` is `{command, args, env}` (stdio) or `{url, http_headers}`
/// (http); kept as JSON so fields the CLI does not know yet survive the cache. Its values can be
/// secrets (tokens in `env` or headers), so Debug shows the name and kind only.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct McpServer {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub config: Value,
}

fn yes() -> bool {
    true
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

impl McpServer {
    /// `stdio` or `http` (or `unknown`).
    pub fn kind(&self) -> &'static str {
        if self.config.get("command").is_some() {
            "stdio"
        } else if self.config.get("url").is_some() {
            "http"
        } else {
            "unknown"
        }
    }
}

/// `POST /api/v1/mogplex/runs` and `GET …/runs/{id}` answer this (the snapshot adds counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub created_at: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_id: Option<i64>,
}

/// `POST /api/v1/mogplex/runs/{id}/events` answers the appended event's sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppendedRunEvent {
    pub id: i64,
}

/// The events the cockpit writes to a run. The server stores any JSON object; these are the
/// ones the CLI writes and understands (others are shown as notices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// A prompt typed in a cockpit.
    Prompt { text: String, session: String },
    /// A complete answer.
    Answer {
        text: String,
        #[serde(default)]
        model: Option<String>,
        session: String,
    },
    /// A failed turn.
    Error { message: String, session: String },
    /// The model was changed (`/model`).
    Model {
        model: String,
        provider: String,
        session: String,
    },
}

impl RunEvent {
    pub fn session(&self) -> &str {
        match self {
            RunEvent::Prompt { session, .. }
            | RunEvent::Answer { session, .. }
            | RunEvent::Error { session, .. }
            | RunEvent::Model { session, .. } => session,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_events_round_trip_and_mcp_kinds() {
        let e = RunEvent::Prompt {
            text: "hi".into(),
            session: "s1".into(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "prompt", "text": "hi", "session": "s1"})
        );
        assert_eq!(serde_json::from_value::<RunEvent>(v).unwrap(), e);
        let m: McpServers = serde_json::from_value(serde_json::json!({"servers": [
            {"name": "gh", "enabled": true, "config": {"command": "gh-mcp", "args": [], "env": {}}},
            {"name": "docs", "config": {"url": "https://x", "http_headers": {}}}
        ]}))
        .unwrap();
        assert_eq!(m.servers[0].kind(), "stdio");
        assert_eq!(m.servers[1].kind(), "http");
        assert!(m.servers[1].enabled);
        let secret: McpServer = serde_json::from_value(serde_json::json!(
            {"name": "gh", "config": {"command": "x", "env": {"GITHUB_TOKEN": "ghp_secret"}}}
        ))
        .unwrap();
        assert!(!format!("{secret:?}").contains("ghp_secret"));
    }
}
