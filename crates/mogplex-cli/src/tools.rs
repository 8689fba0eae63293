//! MCP tools in a turn, for `exec` and the cockpit alike: the connected servers' tools offered
//! to the model ([`Toolbox`]), and the loop that runs a turn to its end ([`tool_turn`]): each
//! answer that calls tools is followed by one request with their results, until the model
//! answers without a call.
//!
//! Whether a call runs is never decided here: a [`ToolGate`] decides (the `--allow-tool` list in
//! `exec`, the user's approval in the cockpit), hears every call start and end, and can cancel a
//! running call.

use crate::error::CliError;
use crate::exec::{TurnOutcome, TurnSink, stream_turn};
use mogplex_mcp::{Connection, McpError, McpErrorKind, ToolInfo, ToolOutput};
use mogplex_protocol::{ChatMessage, Tool};
use mogplex_providers::{ModelClient, Selection, StreamEvent, Url};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Model requests one turn may make (each answer that calls tools costs one more).
pub const MAX_ROUNDS: usize = 16;

/// The tools of the connected servers, by the function name the model calls.
#[derive(Debug, Default, Clone)]
pub struct Toolbox {
    entries: Vec<(ToolInfo, Arc<Connection>)>,
}

impl Toolbox {
    /// Adds a connection's tools (a name already offered by another server keeps the first).
    pub fn add(&mut self, conn: Arc<Connection>) {
        for t in conn.tools() {
            if self.find(&t.wire_name()).is_none() {
                self.entries.push((t.clone(), conn.clone()));
            }
        }
    }

    /// Adds the tools of a connection that `allowed` names (as `server.tool`).
    pub fn add_only(
        &mut self,
        conn: Arc<Connection>,
        allowed: &std::collections::BTreeSet<String>,
    ) {
        for t in conn.tools() {
            if allowed.contains(&t.qualified()) && self.find(&t.wire_name()).is_none() {
                self.entries.push((t.clone(), conn.clone()));
            }
        }
    }

    /// Removes the tools of `server`.
    pub fn remove(&mut self, server: &str) {
        self.entries.retain(|(t, _)| t.server != server);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What the model is offered.
    pub fn tools(&self) -> Vec<Tool> {
        self.entries.iter().map(|(t, _)| t.as_tool()).collect()
    }

    pub fn find(&self, wire_name: &str) -> Option<&(ToolInfo, Arc<Connection>)> {
        self.entries
            .iter()
            .find(|(t, _)| t.wire_name() == wire_name)
    }
}

/// One tool call of the model, as the user reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingCall {
    pub id: String,
    /// The server and tool, when the name is one of the offered tools; else read back from the
    /// name (`server__tool`) as well as it can be.
    pub server: String,
    pub tool: String,
    /// Whether it names a tool that is offered.
    pub known: bool,
    pub arguments: String,
}

impl PendingCall {
    /// `server.tool`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.server, self.tool)
    }
}

/// What becomes of a call.
#[derive(Debug)]
pub enum Decision {
    Run,
    /// Not run; the turn ends with this error (exec) …
    Stop(Box<CliError>),
    /// … or the model is told this and the turn goes on (the cockpit's "no").
    Refuse(String),
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Decides about each call and hears what happens to it.
pub trait ToolGate: Send {
    fn decide<'a>(&'a mut self, call: &'a PendingCall) -> BoxFuture<'a, Decision>;
    /// The call started.
    fn running(&mut self, _call: &PendingCall) {}
    /// The call ended (the text the model gets, or why it failed).
    fn finished(&mut self, _call: &PendingCall, _result: &Result<ToolOutput, McpError>) {}
    /// Resolves when the user cancels the running call (never, by default).
    fn cancelled(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
}

/// Collects the text of one answer on its way to the real sink.
struct Tap<'a> {
    inner: &'a mut dyn TurnSink,
    text: String,
}

impl TurnSink for Tap<'_> {
    fn started(&mut self, model: &str) {
        self.inner.started(model);
    }
    fn event(&mut self, ev: StreamEvent) {
        if let StreamEvent::Delta(t) = &ev {
            self.text.push_str(t);
        }
        self.inner.event(ev);
    }
    fn refreshed(&mut self) {
        self.inner.refreshed();
    }
}

/// The text the model gets for a call that failed.
fn failure_text(e: &McpError) -> String {
    format!("error: {}", e.message)
}

/// Runs a turn to its end: `messages` gets every answer that called tools, and the results;
/// the last answer's text is left to the caller (as without tools). Returns the last outcome.
#[allow(clippy::too_many_arguments)]
pub async fn tool_turn(
    client: &ModelClient,
    store: &crate::exec::Store,
    selection: &mut Selection,
    base_url: &Url,
    messages: &mut Vec<ChatMessage>,
    toolbox: &Toolbox,
    sink: &mut dyn TurnSink,
    gate: &mut dyn ToolGate,
) -> Result<TurnOutcome, CliError> {
    let mut rounds = 0;
    loop {
        rounds += 1;
        let mut tap = Tap {
            inner: sink,
            text: String::new(),
        };
        let outcome = stream_turn(
            client,
            store,
            selection,
            base_url,
            messages.clone(),
            toolbox.tools(),
            &mut tap,
        )
        .await?;
        let text = tap.text;
        let calls = match &outcome.finish {
            Ok(f) if !f.tool_calls.is_empty() => f.tool_calls.clone(),
            _ => return Ok(outcome),
        };
        if rounds >= MAX_ROUNDS {
            return Err(CliError::new(
                crate::exit::FAILURE,
                format!("the model kept calling tools: stopped after {MAX_ROUNDS} rounds"),
            )
            .hint("ask for less at once, or for an answer without tools"));
        }
        messages.push(ChatMessage::assistant_calls(text, calls.clone()));
        for call in calls {
            let pending = match toolbox.find(&call.function.name) {
                Some((info, _)) => PendingCall {
                    id: call.id.clone(),
                    server: info.server.clone(),
                    tool: info.name.clone(),
                    known: true,
                    arguments: call.function.arguments.clone(),
                },
                None => {
                    let (server, tool) = call
                        .function
                        .name
                        .split_once("__")
                        .unwrap_or(("?", &call.function.name));
                    PendingCall {
                        id: call.id.clone(),
                        server: server.to_owned(),
                        tool: tool.to_owned(),
                        known: false,
                        arguments: call.function.arguments.clone(),
                    }
                }
            };
            let content = match gate.decide(&pending).await {
                Decision::Stop(e) => {
                    // The call stays unanswered; the conversation must not keep it.
                    messages.pop();
                    return Err(*e);
                }
                Decision::Refuse(why) => why,
                Decision::Run => {
                    let result = match toolbox.find(&call.function.name) {
                        Some((info, conn)) => {
                            gate.running(&pending);
                            let run = conn.call(&info.name, &pending.arguments);
                            tokio::select! {
                                r = run => r,
                                _ = gate.cancelled() => Err(McpError::new(
                                    McpErrorKind::Call,
                                    "cancelled by the user",
                                )),
                            }
                        }
                        None => Err(McpError::new(
                            McpErrorKind::Call,
                            format!("there is no tool named {}", call.function.name),
                        )),
                    };
                    gate.finished(&pending, &result);
                    match result {
                        Ok(out) if out.is_error => format!("error: {}", out.text),
                        Ok(out) => out.text,
                        Err(e) => failure_text(&e),
                    }
                }
            };
            messages.push(ChatMessage::tool_result(&call.id, content));
        }
    }
}

/// A tool result for the screen: the first lines, at most `max_chars`.
pub fn shorten(text: &str, max_lines: usize, max_chars: usize) -> String {
    let mut out = String::new();
    let mut cut = false;
    for (i, line) in text.lines().enumerate() {
        if i >= max_lines {
            cut = true;
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    if out.chars().count() > max_chars {
        out = out.chars().take(max_chars).collect();
        cut = true;
    }
    if cut {
        out.push('…');
    }
    out
}

/// `exec --allow-tool`: connects the servers the allowed tools belong to, offers only those
/// tools, and refuses every other call (ending the turn with a clear error).
pub mod exec_tools {
    use super::*;
    use crate::exit;
    use mogplex_auth::{CredentialKind, Provider, Resolution};
    use mogplex_mcp::{Definition, Limits};
    use serde_json::json;
    use std::collections::BTreeSet;

    /// The connected servers and what may be called.
    #[derive(Debug, Default)]
    pub struct ExecTools {
        pub toolbox: Toolbox,
        pub connections: Vec<Arc<Connection>>,
        pub allowed: BTreeSet<String>,
    }

    /// Reads the account's MCP servers and connects the ones `allowed` names.
    pub async fn connect(
        client: &ModelClient,
        store: &crate::exec::Store,
        resolution: &Resolution,
        env: &dyn mogplex_auth::Env,
        allowed: &[String],
    ) -> Result<ExecTools, CliError> {
        let mut out = ExecTools {
            allowed: allowed.iter().cloned().collect(),
            ..ExecTools::default()
        };
        if allowed.is_empty() {
            return Ok(out);
        }
        let Some(credential) = resolution.for_provider(Provider::Mogplex) else {
            return Err(CliError::new(
                exit::NO_CREDENTIAL,
                "--allow-tool names tools of your Mogplex account's MCP servers, and no Mogplex credential resolves",
            )
            .hint("sign in with `mogplex login`, or set MOGPLEX_API_KEY for this shell"));
        };
        let base = crate::signin::account_base(env)?;
        let token = if credential.kind == CredentialKind::AccountSession {
            crate::exec::renew(store, credential, &base, None).await?
        } else {
            credential.secret.clone()
        };
        let defs = client.mcp_servers(&base, &token).await.map_err(|e| {
            CliError::new(
                exit::UNAVAILABLE,
                "could not read your account's MCP servers",
            )
            .cause(e.message.clone())
            .hint(format!(
                "check your connection to {}",
                crate::signin::base_label(&base)
            ))
        })?;
        let servers: BTreeSet<&str> = allowed
            .iter()
            .filter_map(|a| a.split_once('.').map(|(s, _)| s))
            .collect();
        let limits = Limits::default();
        for name in servers {
            let Some(def) = defs.iter().find(|d| d.name == name && d.enabled) else {
                let names: Vec<&str> = defs
                    .iter()
                    .filter(|d| d.enabled)
                    .map(|d| d.name.as_str())
                    .collect();
                return Err(CliError::usage(format!(
                    "--allow-tool names the MCP server `{name}`, which your account does not have (or has disabled)"
                ))
                .hint(if names.is_empty() {
                    "your account has no MCP servers".to_owned()
                } else {
                    format!("its MCP servers: {}", names.join(", "))
                }));
            };
            let failed = |e: McpError| {
                if e.needs_sign_in() {
                    let what = if e.kind == McpErrorKind::NeedsMoreAccess {
                        "needs more access"
                    } else {
                        "needs sign-in"
                    };
                    let login = match &e.scope {
                        Some(s) if e.kind == McpErrorKind::NeedsMoreAccess => {
                            format!("mogplex mcp login {name} --scope \"{s}\"")
                        }
                        _ => format!("mogplex mcp login {name}"),
                    };
                    return CliError::new(
                        exit::NO_CREDENTIAL,
                        format!("the MCP server `{name}` {what}: {e}"),
                    )
                    .hint(format!("sign in to it with `{login}`"));
                }
                CliError::new(
                    exit::UNAVAILABLE,
                    format!("the MCP server `{name}` could not be used: {e}"),
                )
                .hint("check its definition (command, arguments, URL); the session log has what it printed")
            };
            let def = Definition::from_server(def).map_err(failed)?;
            let auth = mogplex_mcp::Auth {
                store: store.clone(),
                account: credential.account_entry.clone(),
            };
            let conn = Arc::new(
                mogplex_mcp::connect_with(&def, &limits, Some(&auth))
                    .await
                    .map_err(failed)?,
            );
            for a in allowed
                .iter()
                .filter(|a| a.starts_with(&format!("{name}.")))
            {
                let tool = &a[name.len() + 1..];
                if !conn.tools().iter().any(|t| t.name == tool) {
                    let names: Vec<&str> = conn.tools().iter().map(|t| t.name.as_str()).collect();
                    return Err(CliError::usage(format!(
                        "--allow-tool names `{a}`, and the MCP server `{name}` has no tool `{tool}`"
                    ))
                    .hint(format!("its tools: {}", names.join(", "))));
                }
            }
            out.toolbox.add_only(conn.clone(), &out.allowed);
            out.connections.push(conn);
        }
        Ok(out)
    }

    /// Allows the listed tools; says on stderr (or as JSON events) what each call does.
    #[derive(Debug)]
    pub struct ExecGate {
        pub allowed: BTreeSet<String>,
        pub json: bool,
        pub redactor: mogplex_auth::Redactor,
    }

    impl ExecGate {
        fn emit(&self, v: serde_json::Value, text: String) {
            use std::io::Write;
            if self.json {
                let mut v = v;
                self.redactor.redact_json(&mut v);
                let _ = writeln!(std::io::stdout(), "{v}");
            } else {
                let text = self.redactor.redact_str(&text);
                eprintln!("{}", mogplex_tui::sanitize(&text));
            }
        }
    }

    impl ToolGate for ExecGate {
        fn decide<'a>(&'a mut self, call: &'a PendingCall) -> BoxFuture<'a, Decision> {
            let allowed = call.known && self.allowed.contains(&call.qualified());
            Box::pin(async move {
                if allowed {
                    return Decision::Run;
                }
                tracing::warn!(event = "tool.refused", tool = %call.qualified(), "tool call not approved");
                Decision::Stop(Box::new(
                    CliError::new(
                        exit::FAILURE,
                        format!(
                            "the model called the tool {}, which is not approved for this run",
                            call.qualified()
                        ),
                    )
                    .hint(format!(
                        "allow it with `--allow-tool {}` (repeatable; each tool is named on its own)",
                        call.qualified()
                    )),
                ))
            })
        }

        fn running(&mut self, call: &PendingCall) {
            tracing::info!(event = "tool.call", tool = %call.qualified(), arguments = %call.arguments, "calling a tool");
            self.emit(
                json!({"type": "tool_call", "server": call.server, "tool": call.tool, "arguments": call.arguments}),
                format!("tool: {} {}", call.qualified(), call.arguments),
            );
        }

        fn finished(&mut self, call: &PendingCall, result: &Result<ToolOutput, McpError>) {
            let (ok, text) = match result {
                Ok(o) => (!o.is_error, o.text.clone()),
                Err(e) => (false, e.message.clone()),
            };
            tracing::info!(event = "tool.result", tool = %call.qualified(), ok, chars = text.chars().count(), "tool call ended");
            self.emit(
                json!({"type": "tool_result", "server": call.server, "tool": call.tool, "ok": ok, "text": text}),
                format!(
                    "tool {}: {}",
                    if ok { "result" } else { "error" },
                    shorten(&text, 3, 200)
                ),
            );
        }
    }
}
