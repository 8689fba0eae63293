//! MCP connections for mogplex, on the official Rust SDK (`rmcp`).
//!
//! An account's MCP server definitions ([`mogplex_protocol::McpServer`]) become live
//! [`Connection`]s here: stdio servers are spawned with the definition's command, arguments and
//! variables in an environment without the parent's credentials
//! ([`mogplex_auth::child_env::child_env`]), their stderr goes to the session log (through
//! `tracing`, redacted there, and the definition's own values masked here first) and they are
//! stopped when the connection is dropped; Streamable HTTP servers get the definition's headers
//! and, with an [`Auth`], the OAuth bearer stored for them (refreshed when due, and once more
//! when the server answers 401 all the same; a 401 without a usable sign-in is
//! [`McpErrorKind::NeedsSignIn`], a 403 `insufficient_scope` [`McpErrorKind::NeedsMoreAccess`]
//! naming the scope to ask for). Signing in is [`mogplex_auth::mcp_signin`].
//!
//! Everything a server can do wrong ends in an [`McpError`] for that server only, within
//! [`Limits`]: no answer (a timeout), a crash or garbage on stdout (the handshake fails), too many
//! tools, an oversized result. The caller (the cockpit, `exec`) keeps one state per server and
//! goes on with the others.

mod def;
mod error;

pub use def::{Definition, TransportDef};
pub use error::{McpError, McpErrorKind};

use mogplex_auth::Secret;
use mogplex_auth::credentials::CredentialStore;
use mogplex_auth::credentials::mcp::{McpAuthError, expired, fresh_mcp_token};
use mogplex_auth::mcp_signin::authorization_server;
use mogplex_auth::oauth::mcp::{canonical_resource, parse_challenge};

use rmcp::model::{CallToolRequestParams, ContentBlock, PaginatedRequestParams};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ServiceExt, transport::streamable_http_client::StreamableHttpClientTransportConfig};
use serde_json::Value;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// How long and how much a server may take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// From spawn (or the first request) to the tool list.
    pub connect_timeout: Duration,
    /// One tool call.
    pub call_timeout: Duration,
    /// A server listing more tools than this is refused (the model's context is not theirs).
    pub max_tools: usize,
    /// A tool result whose text is larger than this is refused.
    pub max_result_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(120),
            max_tools: 256,
            max_result_bytes: 1024 * 1024,
        }
    }
}

/// One tool of a connected server.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    pub server: String,
    pub name: String,
    pub description: Option<String>,
    /// The JSON Schema of its arguments.
    pub input_schema: Value,
}

impl ToolInfo {
    /// The function name the model sees ([`mogplex_protocol::tool_wire_name`]).
    pub fn wire_name(&self) -> String {
        mogplex_protocol::tool_wire_name(&self.server, &self.name)
    }

    /// `server.tool`, as the user reads and names it.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.server, self.name)
    }

    /// The tool as offered to the model.
    pub fn as_tool(&self) -> mogplex_protocol::Tool {
        mogplex_protocol::Tool::function(
            self.wire_name(),
            self.description.clone(),
            self.input_schema.clone(),
        )
    }
}

/// What a tool call returned: its text (text blocks joined; other blocks named), and whether the
/// server marked it an error (still sent to the model, which may recover).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub text: String,
    pub is_error: bool,
}

/// A live connection to one server. Dropping it stops a stdio server.
///
/// A Streamable HTTP server reached with a stored bearer can refuse it mid-session (the access
/// token expired or was revoked): [`Connection::call`] then renews the token once (through the
/// store's lock, as at connect time) and opens a new session with it, so the call goes on; only
/// when the renewal fails is the error [`McpErrorKind::NeedsSignIn`].
pub struct Connection {
    server: String,
    live: tokio::sync::RwLock<Live>,
    /// One renewal at a time: calls refused together share it.
    renewing: tokio::sync::Mutex<()>,
    /// What a renewal needs (a Streamable HTTP server with an [`Auth`]).
    renew: Option<Box<(Definition, Auth)>>,
    tools: Vec<ToolInfo>,
    limits: Limits,
}

/// The session in use and the bearer it was opened with.
struct Live {
    service: Arc<RunningService<RoleClient, ()>>,
    bearer: Option<Secret>,
    /// Counts renewals, so that a call refused by an old session uses the new one.
    generation: u64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.server)
            .field("tools", &self.tools.len())
            .finish_non_exhaustive()
    }
}

/// Where the OAuth tokens of Streamable HTTP servers are kept: the credential store, and the
/// Mogplex account whose definitions name them (`None`: no stored account).
#[derive(Debug, Clone)]
pub struct Auth {
    pub store: Arc<dyn CredentialStore>,
    pub account: Option<String>,
}

/// Connects to the server a definition describes and lists its tools, within
/// `limits.connect_timeout`; a Streamable HTTP server gets no bearer.
pub async fn connect(def: &Definition, limits: &Limits) -> Result<Connection, McpError> {
    connect_with(def, limits, None).await
}

/// [`connect`], a Streamable HTTP server with the bearer `auth` holds for it.
pub async fn connect_with(
    def: &Definition,
    limits: &Limits,
    auth: Option<&Auth>,
) -> Result<Connection, McpError> {
    let name = def.name.clone();
    let fut = async {
        let (service, bearer) = match &def.transport {
            TransportDef::Stdio { .. } => (serve_stdio(def).await?, None),
            TransportDef::Http { .. } => serve_http_signed_in(def, auth).await?,
        };
        let tools = list_tools(&name, &service, limits).await?;
        Ok::<_, McpError>((service, bearer, tools))
    };
    let (service, bearer, tools) = tokio::time::timeout(limits.connect_timeout, fut)
        .await
        .map_err(|_| {
            McpError::new(
                McpErrorKind::Timeout,
                format!(
                    "did not answer within {} s",
                    limits.connect_timeout.as_secs()
                ),
            )
        })??;
    tracing::info!(
        event = "mcp.connected",
        server = %name,
        tools = tools.len(),
        "MCP server {name} connected with {} tools",
        tools.len()
    );
    let renew = match (&def.transport, auth) {
        (TransportDef::Http { .. }, Some(a)) if bearer.is_some() => {
            Some(Box::new((def.clone(), a.clone())))
        }
        _ => None,
    };
    Ok(Connection {
        server: name,
        live: tokio::sync::RwLock::new(Live {
            service: Arc::new(service),
            bearer,
            generation: 0,
        }),
        renewing: tokio::sync::Mutex::new(()),
        renew,
        tools,
        limits: limits.clone(),
    })
}

async fn serve_stdio(def: &Definition) -> Result<RunningService<RoleClient, ()>, McpError> {
    let TransportDef::Stdio {
        command,
        args,
        env,
        cwd,
    } = &def.transport
    else {
        return Err(McpError::new(
            McpErrorKind::Definition,
            "not a stdio server",
        ));
    };
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(args)
        .env_clear()
        .envs(mogplex_auth::child_env::child_env_of_process(env))
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            McpError::new(
                McpErrorKind::Spawn,
                format!("cannot start `{command}`: {e}"),
            )
        })?;
    if let Some(stderr) = stderr {
        let server = def.name.clone();
        let secrets = def.secret_values();
        tokio::spawn(log_stderr(server, stderr, secrets));
    }
    ().serve(transport).await.map_err(|e| {
        McpError::new(
            McpErrorKind::Protocol,
            format!("the handshake failed: {}", short(&e.to_string())),
        )
    })
}

/// What a 401 or 403 challenge means, as an error of this server.
fn challenged(header: &str) -> McpError {
    let c = parse_challenge(header).unwrap_or_default();
    if c.insufficient_scope() {
        let scope = c.scope.clone();
        let message = match &scope {
            Some(s) => format!("the server needs more access ({s}; HTTP 403)"),
            None => "the server needs more access (HTTP 403)".to_owned(),
        };
        McpError::new(McpErrorKind::NeedsMoreAccess, message).with_scope(scope)
    } else {
        McpError::new(
            McpErrorKind::NeedsSignIn,
            "the server asks for sign-in (HTTP 401)",
        )
        .with_scope(c.scope)
    }
}

/// The stored bearer for the server at `url`, refreshed when due. `None` when none is stored (or
/// it ended); a renewal that cannot reach the authorization server falls back to the stored token
/// while it has not expired.
async fn stored_bearer(auth: &Auth, url: &str) -> Result<Option<Secret>, McpError> {
    let Some(resource) = canonical_resource(url) else {
        return Ok(None);
    };
    let account = auth.account.as_deref();
    match fresh_mcp_token(&auth.store, account, &resource, None, authorization_server).await {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.needs_sign_in() => Ok(None),
        Err(McpAuthError::Credentials(e)) => Err(McpError::new(
            McpErrorKind::Spawn,
            format!("cannot read its stored sign-in: {e}"),
        )),
        Err(e) => {
            let store = auth.store.clone();
            let doc = tokio::task::spawn_blocking(move || store.load())
                .await
                .ok()
                .and_then(Result::ok)
                .map(|l| l.doc);
            let usable = doc.as_ref().and_then(|d| {
                d.mcp_token(account, &resource)
                    .filter(|m| !expired(m))
                    .and_then(|m| m.access().cloned())
            });
            match usable {
                Some(t) => Ok(Some(t)),
                None => Err(McpError::new(
                    McpErrorKind::Protocol,
                    format!("could not renew its sign-in: {}", short(&e.to_string())),
                )),
            }
        }
    }
}

/// A Streamable HTTP session with the stored bearer (returned with it): on a 401 with a stored
/// token, one refresh and one more try; a second 401, or a sign-in that cannot be renewed, needs
/// a new sign-in.
async fn serve_http_signed_in(
    def: &Definition,
    auth: Option<&Auth>,
) -> Result<(RunningService<RoleClient, ()>, Option<Secret>), McpError> {
    let (Some(auth), Some(url)) = (auth, def.url()) else {
        return Ok((serve_http(def, None).await?, None));
    };
    let token = stored_bearer(auth, url).await?;
    let e = match serve_http(def, token.as_ref()).await {
        Ok(service) => return Ok((service, token)),
        Err(e) => e,
    };
    let Some(rejected) = &token else {
        return Err(e);
    };
    if e.kind != McpErrorKind::NeedsSignIn {
        return Err(e);
    }
    tracing::info!(event = "mcp.refresh", server = %def.name, "the MCP server refused its token; renewing it once");
    let t = renewed_bearer(auth, url, rejected).await?;
    Ok((serve_http(def, Some(&t)).await?, Some(t)))
}

/// The token for the server at `url` after it refused `rejected`: refreshed once (under the
/// store's lock, or the one another process just stored). An ended sign-in needs a new one.
async fn renewed_bearer(auth: &Auth, url: &str, rejected: &Secret) -> Result<Secret, McpError> {
    let Some(resource) = canonical_resource(url) else {
        return Err(McpError::new(
            McpErrorKind::NeedsSignIn,
            "the server asks for sign-in (HTTP 401)",
        ));
    };
    match fresh_mcp_token(
        &auth.store,
        auth.account.as_deref(),
        &resource,
        Some(rejected),
        authorization_server,
    )
    .await
    {
        Ok(t) => Ok(t),
        Err(e) if e.needs_sign_in() => Err(McpError::new(
            McpErrorKind::NeedsSignIn,
            format!("its sign-in has ended: {}", short(&e.to_string())),
        )),
        Err(e) => Err(McpError::new(
            McpErrorKind::Protocol,
            format!("could not renew its sign-in: {}", short(&e.to_string())),
        )),
    }
}

async fn serve_http(
    def: &Definition,
    bearer: Option<&Secret>,
) -> Result<RunningService<RoleClient, ()>, McpError> {
    let TransportDef::Http { url, headers, .. } = &def.transport else {
        return Err(McpError::new(
            McpErrorKind::Definition,
            "not an http server",
        ));
    };
    let mut map = std::collections::HashMap::new();
    for (k, v) in headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            McpError::new(
                McpErrorKind::Definition,
                format!("the header name `{k}` is not valid"),
            )
        })?;
        let mut value = reqwest::header::HeaderValue::from_str(v).map_err(|_| {
            McpError::new(
                McpErrorKind::Definition,
                format!("the value of header `{k}` cannot be sent"),
            )
        })?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    let http = mogplex_auth::oauth::with_extra_roots(
        reqwest::Client::builder()
            .user_agent(concat!("mogplex/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none()),
    )
    .and_then(|b| b.build().map_err(|e| e.to_string()))
    .map_err(|e| McpError::new(McpErrorKind::Spawn, e))?;
    let mut config =
        StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(map);
    if let Some(b) = bearer {
        config = config.auth_header(b.expose());
    }
    let transport = StreamableHttpClientTransport::with_client(http, config);
    ().serve(transport).await.map_err(|e| {
        if let Some(header) = e.auth_challenge() {
            return challenged(header);
        }
        let text = e.to_string();
        if text.contains("Auth required") || text.contains("401") {
            McpError::new(
                McpErrorKind::NeedsSignIn,
                "the server asks for sign-in (HTTP 401)",
            )
        } else {
            McpError::new(
                McpErrorKind::Protocol,
                format!("the handshake failed: {}", short(&text)),
            )
        }
    })
}

/// Pages through `tools/list`, refusing a server with more than `limits.max_tools`.
async fn list_tools(
    server: &str,
    service: &RunningService<RoleClient, ()>,
    limits: &Limits,
) -> Result<Vec<ToolInfo>, McpError> {
    let mut tools = Vec::new();
    let mut cursor = None;
    loop {
        let params = cursor.map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
        let page = service.list_tools(params).await.map_err(|e| {
            McpError::new(
                McpErrorKind::Protocol,
                format!("listing its tools failed: {}", short(&e.to_string())),
            )
        })?;
        for t in page.tools {
            tools.push(ToolInfo {
                server: server.to_owned(),
                name: t.name.into_owned(),
                description: t.description.map(|d| d.into_owned()),
                input_schema: Value::Object((*t.input_schema).clone()),
            });
        }
        if tools.len() > limits.max_tools {
            return Err(McpError::new(
                McpErrorKind::TooMuch,
                format!(
                    "lists more than {} tools; mogplex offers at most {} from one server",
                    limits.max_tools, limits.max_tools
                ),
            ));
        }
        match page.next_cursor {
            Some(c) if !c.is_empty() => cursor = Some(c),
            _ => return Ok(tools),
        }
    }
}

impl Connection {
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn tools(&self) -> &[ToolInfo] {
        &self.tools
    }

    /// Calls `tool` with `arguments` (a JSON object as text), within the call timeout. Dropping
    /// the future cancels the call on the server. A Streamable HTTP server that refuses the
    /// stored bearer (401) gets it renewed once and the call again, in a new session.
    pub async fn call(&self, tool: &str, arguments: &str) -> Result<ToolOutput, McpError> {
        let args = if arguments.trim().is_empty() {
            serde_json::Map::new()
        } else {
            match serde_json::from_str::<Value>(arguments) {
                Ok(Value::Object(m)) => m,
                _ => {
                    return Err(McpError::new(
                        McpErrorKind::BadArguments,
                        "the arguments are not a JSON object",
                    ));
                }
            }
        };
        let (service, bearer, generation) = {
            let l = self.live.read().await;
            (l.service.clone(), l.bearer.clone(), l.generation)
        };
        match self.call_on(&service, tool, args.clone()).await {
            Err(e) if e.kind == McpErrorKind::NeedsSignIn => {
                match self.renewed(generation, bearer).await? {
                    Some(service) => self.call_on(&service, tool, args).await,
                    None => Err(e),
                }
            }
            r => r,
        }
    }

    /// The session to retry a call on after the one of `generation` refused `rejected`: a newer
    /// one if another call renewed it meanwhile, else one opened with a renewed token. `None`
    /// when nothing can be renewed (no stored bearer, not a Streamable HTTP server).
    async fn renewed(
        &self,
        generation: u64,
        rejected: Option<Secret>,
    ) -> Result<Option<Arc<RunningService<RoleClient, ()>>>, McpError> {
        let (Some((def, auth)), Some(rejected)) = (self.renew.as_deref(), rejected) else {
            return Ok(None);
        };
        let Some(url) = def.url() else {
            return Ok(None);
        };
        let _one = self.renewing.lock().await;
        {
            let l = self.live.read().await;
            if l.generation != generation {
                return Ok(Some(l.service.clone()));
            }
        }
        tracing::info!(event = "mcp.refresh", server = %self.server, "the MCP server refused its token mid-session; renewing it once");
        let fut = async {
            let t = renewed_bearer(auth, url, &rejected).await?;
            let service = serve_http(def, Some(&t)).await?;
            Ok::<_, McpError>((service, t))
        };
        let (service, t) = tokio::time::timeout(self.limits.connect_timeout, fut)
            .await
            .map_err(|_| {
                McpError::new(
                    McpErrorKind::Timeout,
                    format!(
                        "did not answer within {} s after renewing its sign-in",
                        self.limits.connect_timeout.as_secs()
                    ),
                )
            })??;
        let service = Arc::new(service);
        let old = {
            let mut l = self.live.write().await;
            std::mem::replace(
                &mut *l,
                Live {
                    service: service.clone(),
                    bearer: Some(t),
                    generation: generation + 1,
                },
            )
        };
        tracing::info!(event = "mcp.reconnected", server = %self.server, "reconnected with the renewed sign-in");
        // The refused session ends once no call holds it any more.
        if let Ok(s) = Arc::try_unwrap(old.service) {
            let _ = s.cancel().await;
        }
        Ok(Some(service))
    }

    async fn call_on(
        &self,
        service: &RunningService<RoleClient, ()>,
        tool: &str,
        args: serde_json::Map<String, Value>,
    ) -> Result<ToolOutput, McpError> {
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args);
        let result = tokio::time::timeout(self.limits.call_timeout, service.call_tool(params))
            .await
            .map_err(|_| {
                McpError::new(
                    McpErrorKind::Timeout,
                    format!(
                        "the call did not finish within {} s",
                        self.limits.call_timeout.as_secs()
                    ),
                )
            })?
            .map_err(|e| match e.auth_challenge() {
                Some(header) => challenged(header),
                None => McpError::new(
                    McpErrorKind::Call,
                    format!("the call failed: {}", short(&e.to_string())),
                ),
            })?;
        let mut text = String::new();
        for block in &result.content {
            if !text.is_empty() {
                text.push('\n');
            }
            match block {
                ContentBlock::Text(t) => text.push_str(&t.text),
                ContentBlock::Image(_) => text.push_str("[image]"),
                ContentBlock::Audio(_) => text.push_str("[audio]"),
                ContentBlock::ResourceLink(l) => text.push_str(&format!("[resource {}]", l.uri)),
                _ => text.push_str("[resource]"),
            }
            if text.len() > self.limits.max_result_bytes {
                break;
            }
        }
        if text.is_empty()
            && let Some(s) = &result.structured_content
        {
            text = s.to_string();
        }
        if text.len() > self.limits.max_result_bytes {
            return Err(McpError::new(
                McpErrorKind::TooMuch,
                format!(
                    "the result is larger than {} KiB",
                    self.limits.max_result_bytes / 1024
                ),
            ));
        }
        Ok(ToolOutput {
            text,
            is_error: result.is_error.unwrap_or(false),
        })
    }

    /// Stops the connection (and a stdio server).
    pub async fn close(self) {
        // A call still holding the session ends it when it lets go (its drop guard cancels).
        if let Ok(s) = Arc::try_unwrap(self.live.into_inner().service) {
            let _ = s.cancel().await;
        }
    }
}

/// Error texts from the SDK can quote whole messages: keep the first line, shortened.
fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 300 {
        let cut: String = line.chars().take(300).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

/// Lines of a server's stderr kept in the session log, and their length.
const STDERR_LINES: usize = 1000;
const STDERR_LINE_CHARS: usize = 2000;

/// Copies a server's stderr into the session log, line by line: the definition's own values
/// masked, lines shortened, at most [`STDERR_LINES`] (the rest is read and dropped so that the
/// server never blocks on a full pipe).
async fn log_stderr(
    server: String,
    stderr: tokio::process::ChildStderr,
    secrets: Arc<Vec<String>>,
) {
    let mut lines = tokio::io::BufReader::new(stderr).split(b'\n');
    let mut n = 0;
    while let Ok(Some(line)) = lines.next_segment().await {
        n += 1;
        if n > STDERR_LINES {
            continue;
        }
        let mut text: String = String::from_utf8_lossy(&line)
            .chars()
            .take(STDERR_LINE_CHARS)
            .collect();
        for s in secrets.iter() {
            text = text.replace(s.as_str(), "[REDACTED]");
        }
        tracing::info!(event = "mcp.stderr", server = %server, "{}", text.trim_end());
        if n == STDERR_LINES {
            tracing::info!(event = "mcp.stderr", server = %server, "(further stderr lines are not logged)");
        }
    }
}
