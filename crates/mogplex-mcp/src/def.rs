//! An MCP server definition read from the account's JSON: `{command, args, env, cwd}` (stdio) or
//! `{url, http_headers}` (Streamable HTTP). Its values may be secrets; Debug never shows them.

use crate::error::{McpError, McpErrorKind};
use mogplex_protocol::McpServer;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct Definition {
    pub name: String,
    pub transport: TransportDef,
}

#[derive(Clone)]
pub enum TransportDef {
    Stdio {
        command: String,
        args: Vec<String>,
        /// Set in the child; the only way a credential variable reaches it.
        env: BTreeMap<String, String>,
        cwd: Option<String>,
    },
    Http {
        url: String,
        headers: BTreeMap<String, String>,
        /// An OAuth client id registered for mogplex at the server's authorization server
        /// (`client_id` in the definition); without one, mogplex registers itself (RFC 7591).
        client_id: Option<String>,
    },
}

impl std::fmt::Debug for TransportDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportDef::Stdio { .. } => "Stdio { .. }",
            TransportDef::Http { .. } => "Http { .. }",
        })
    }
}

impl std::fmt::Debug for Definition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.transport {
            TransportDef::Stdio { .. } => "stdio",
            TransportDef::Http { .. } => "http",
        };
        f.debug_struct("Definition")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

fn strings(v: Option<&serde_json::Value>) -> BTreeMap<String, String> {
    v.and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        serde_json::Value::Bool(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((k.clone(), v))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Definition {
    /// A stdio definition (tests, and callers that build one by hand).
    pub fn stdio(name: &str, command: &str, args: &[&str], env: BTreeMap<String, String>) -> Self {
        Self {
            name: name.to_owned(),
            transport: TransportDef::Stdio {
                command: command.to_owned(),
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                env,
                cwd: None,
            },
        }
    }

    /// Reads an account's definition.
    pub fn from_server(s: &McpServer) -> Result<Self, McpError> {
        let c = &s.config;
        let transport = if let Some(command) = c.get("command") {
            let command = command
                .as_str()
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| McpError::new(McpErrorKind::Definition, "its `command` is empty"))?;
            let args = c
                .get("args")
                .and_then(|a| a.as_array())
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            TransportDef::Stdio {
                command: command.to_owned(),
                args,
                env: strings(c.get("env")),
                cwd: c.get("cwd").and_then(|v| v.as_str()).map(str::to_owned),
            }
        } else if let Some(url) = c.get("url").and_then(|u| u.as_str()) {
            let parsed = url::Url::parse(url).map_err(|_| {
                McpError::new(McpErrorKind::Definition, "its `url` is not a valid URL")
            })?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(McpError::new(
                    McpErrorKind::Definition,
                    "its `url` is neither https nor http",
                ));
            }
            let mut headers = strings(c.get("http_headers"));
            headers.extend(strings(c.get("headers")));
            let client_id = c
                .get("client_id")
                .or_else(|| c.get("oauth").and_then(|o| o.get("client_id")))
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned);
            TransportDef::Http {
                url: url.to_owned(),
                headers,
                client_id,
            }
        } else {
            return Err(McpError::new(
                McpErrorKind::Definition,
                "it has neither a `command` nor a `url`",
            ));
        };
        Ok(Self {
            name: s.name.clone(),
            transport,
        })
    }

    /// A Streamable HTTP definition (tests, and callers that build one by hand).
    pub fn http(name: &str, url: &str) -> Self {
        Self {
            name: name.to_owned(),
            transport: TransportDef::Http {
                url: url.to_owned(),
                headers: BTreeMap::new(),
                client_id: None,
            },
        }
    }

    /// The URL of a Streamable HTTP server.
    pub fn url(&self) -> Option<&str> {
        match &self.transport {
            TransportDef::Http { url, .. } => Some(url),
            TransportDef::Stdio { .. } => None,
        }
    }

    /// The pre-registered OAuth client id of a Streamable HTTP server, if its definition names
    /// one.
    pub fn client_id(&self) -> Option<&str> {
        match &self.transport {
            TransportDef::Http { client_id, .. } => client_id.as_deref(),
            TransportDef::Stdio { .. } => None,
        }
    }

    /// Values of the definition that may be secrets (its variables and headers), to mask in
    /// what the server prints.
    pub fn secret_values(&self) -> Arc<Vec<String>> {
        let values = match &self.transport {
            TransportDef::Stdio { env, .. } => env.values().cloned().collect::<Vec<_>>(),
            TransportDef::Http { headers, .. } => headers.values().cloned().collect(),
        };
        Arc::new(values.into_iter().filter(|v| v.len() >= 6).collect())
    }
}
