//! The account's MCP servers in the cockpit: connected in the background once their definitions
//! are known (after the first frame), one state per server (connecting, connected with its
//! tools, failed and why, needs sign-in), their tools offered to the model, and every call the
//! model makes asked of the user (once, always for this tool this session, no) through the App;
//! Esc cancels a running call. A server's failure is its own: the session goes on.

use super::services::Services;
use super::{Cockpit, Msg};
use crate::log::Level;
use crate::tools::{BoxFuture, Decision, PendingCall, ToolGate, Toolbox, shorten};
use mogplex_mcp::{Connection, Definition, Limits, McpError, McpErrorKind, ToolOutput};
use mogplex_protocol::McpServer;
use mogplex_tui::{Event, ToolApproval};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::{Notify, oneshot};

#[derive(Debug)]
pub(crate) enum McpMsg {
    Connected {
        generation: u64,
        /// Which connection attempt of the server this is.
        attempt: u64,
        server: String,
        result: Result<Connection, McpError>,
    },
    /// A call of the answer in flight waits for the user.
    Approve {
        call: PendingCall,
        reply: oneshot::Sender<Decision>,
    },
    Running(PendingCall),
    Done {
        call: PendingCall,
        ok: bool,
        text: String,
    },
}

#[derive(Debug)]
pub(super) enum ServerState {
    /// The attempt under way.
    Connecting(u64),
    Connected(Arc<Connection>),
    Failed(String),
    NeedsSignIn(String),
}

/// The servers of this session and what the user allowed.
#[derive(Debug, Default)]
pub(super) struct McpSlot {
    pub servers: BTreeMap<String, ServerState>,
    /// The definition each server was connected from (its config as JSON), to notice changes.
    defined: BTreeMap<String, String>,
    pub toolbox: Toolbox,
    /// Tools allowed for the rest of the session (`server.tool`).
    always: BTreeSet<String>,
    /// The question on screen and where its answer goes.
    asking: Option<(PendingCall, oneshot::Sender<Decision>)>,
    /// Cancels the running call.
    pub cancel: Arc<Notify>,
    generation: u64,
    attempts: u64,
}

/// Lines and characters of a tool result shown in the transcript (the model gets it all).
const SHOWN_LINES: usize = 6;
const SHOWN_CHARS: usize = 600;

/// The gate of a cockpit turn: asks the loop, which asks the user.
pub(super) struct CockpitGate {
    pub services: Services,
    pub cancel: Arc<Notify>,
}

impl ToolGate for CockpitGate {
    fn decide<'a>(&'a mut self, call: &'a PendingCall) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.services.send(Msg::Mcp(McpMsg::Approve {
                call: call.clone(),
                reply,
            }));
            answer
                .await
                .unwrap_or_else(|_| Decision::Refuse("the user did not answer".into()))
        })
    }

    fn running(&mut self, call: &PendingCall) {
        self.services.send(Msg::Mcp(McpMsg::Running(call.clone())));
    }

    fn finished(&mut self, call: &PendingCall, result: &Result<ToolOutput, McpError>) {
        let (ok, text) = match result {
            Ok(o) => (!o.is_error, o.text.clone()),
            Err(e) => (false, e.message.clone()),
        };
        self.services.send(Msg::Mcp(McpMsg::Done {
            call: call.clone(),
            ok,
            text,
        }));
    }

    fn cancelled(&mut self) -> BoxFuture<'_, ()> {
        let cancel = self.cancel.clone();
        Box::pin(async move { cancel.notified().await })
    }
}

impl Cockpit<'_> {
    pub(super) fn on_mcp(&mut self, msg: McpMsg) {
        match msg {
            McpMsg::Connected {
                generation,
                attempt,
                server,
                result,
            } => {
                // A sign-out, or a changed definition, since this connection began.
                if generation != self.mcp.generation
                    || !matches!(self.mcp.servers.get(&server), Some(ServerState::Connecting(a)) if *a == attempt)
                {
                    return;
                }
                let state = match result {
                    Ok(conn) => {
                        let conn = Arc::new(conn);
                        self.log.write(
                            Level::Info,
                            "mcp.connected",
                            "MCP server connected",
                            json!({"server": server, "tools": conn.tools().len()}),
                        );
                        self.mcp.toolbox.add(conn.clone());
                        ServerState::Connected(conn)
                    }
                    Err(e) => {
                        self.log.write(
                            Level::Warn,
                            "mcp.failed",
                            "MCP server not connected",
                            json!({"server": server, "error": e.message}),
                        );
                        if e.kind == McpErrorKind::NeedsSignIn {
                            ServerState::NeedsSignIn(e.message)
                        } else {
                            ServerState::Failed(e.message)
                        }
                    }
                };
                self.mcp.servers.insert(server, state);
            }
            McpMsg::Approve { call, reply } => {
                self.turn.tool_call_started();
                let qualified = call.qualified();
                if !call.known {
                    let _ = reply.send(Decision::Refuse(format!(
                        "error: there is no tool {qualified} in this session"
                    )));
                    self.note(format!(
                        "The model called {qualified}, which no connected MCP server offers; it is told so."
                    ));
                    return;
                }
                if self.mcp.always.contains(&qualified) {
                    let _ = reply.send(Decision::Run);
                    return;
                }
                self.app.update(Event::ToolApproval {
                    tool: qualified,
                    arguments: shorten(
                        &self.ctx.redactor.redact_str(&call.arguments),
                        SHOWN_LINES,
                        SHOWN_CHARS,
                    ),
                });
                self.mcp.asking = Some((call, reply));
            }
            McpMsg::Running(call) => {
                self.log.write(
                    Level::Info,
                    "tool.call",
                    "calling a tool",
                    json!({"tool": call.qualified(), "arguments": call.arguments}),
                );
                self.app.update(Event::ToolRunning {
                    tool: call.qualified(),
                });
            }
            McpMsg::Done { call, ok, text } => {
                self.log.write(
                    Level::Info,
                    "tool.result",
                    "tool call ended",
                    json!({"tool": call.qualified(), "ok": ok, "chars": text.chars().count()}),
                );
                let shown = shorten(
                    &self.ctx.redactor.redact_str(&text),
                    SHOWN_LINES,
                    SHOWN_CHARS,
                );
                self.app.update(Event::ToolDone {
                    tool: call.qualified(),
                    ok,
                    text: shown,
                });
            }
        }
    }

    /// The user's answer to the question on screen.
    pub(super) fn approve_tool(&mut self, answer: ToolApproval) {
        let Some((call, reply)) = self.mcp.asking.take() else {
            return;
        };
        let decision = match answer {
            ToolApproval::Once => Decision::Run,
            ToolApproval::Always => {
                self.mcp.always.insert(call.qualified());
                Decision::Run
            }
            ToolApproval::No => {
                self.log.write(
                    Level::Info,
                    "tool.refused",
                    "tool call not approved",
                    json!({"tool": call.qualified()}),
                );
                Decision::Refuse("error: the user did not approve this tool call".into())
            }
        };
        let _ = reply.send(decision);
    }

    pub(super) fn cancel_tool(&mut self) {
        self.mcp.cancel.notify_waiters();
    }

    /// Connects every enabled server of the definitions that is not connected or connecting
    /// yet, each in the background; a server whose definition changed (or went) is dropped
    /// first, which stops it.
    pub(super) fn connect_mcp(&mut self, defs: &[McpServer]) {
        let wanted: BTreeMap<&str, String> = defs
            .iter()
            .filter(|d| d.enabled)
            .map(|d| (d.name.as_str(), d.config.to_string()))
            .collect();
        let gone: Vec<String> = self
            .mcp
            .defined
            .iter()
            .filter(|(name, config)| wanted.get(name.as_str()) != Some(*config))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            self.mcp.defined.remove(&name);
            self.mcp.servers.remove(&name);
            self.mcp.toolbox.remove(&name);
        }
        for def in defs.iter().filter(|d| d.enabled) {
            if self.mcp.servers.contains_key(&def.name) {
                continue;
            }
            self.mcp
                .defined
                .insert(def.name.clone(), def.config.to_string());
            let parsed = match Definition::from_server(def) {
                Ok(d) => d,
                Err(e) => {
                    self.mcp
                        .servers
                        .insert(def.name.clone(), ServerState::Failed(e.message));
                    continue;
                }
            };
            self.mcp.attempts += 1;
            let attempt = self.mcp.attempts;
            self.mcp
                .servers
                .insert(def.name.clone(), ServerState::Connecting(attempt));
            let generation = self.mcp.generation;
            let server = def.name.clone();
            self.services.spawn(move |s| async move {
                let result = mogplex_mcp::connect(&parsed, &Limits::default()).await;
                s.send(Msg::Mcp(McpMsg::Connected {
                    generation,
                    attempt,
                    server,
                    result,
                }));
            });
        }
    }

    /// Signed out (or quitting): every server goes, nothing more is awaited. Returns the
    /// connections no one else holds, for the caller to close.
    pub(super) fn drop_mcp(&mut self) -> Vec<Connection> {
        self.mcp.generation += 1;
        self.mcp.defined.clear();
        self.mcp.toolbox = Toolbox::default();
        self.mcp.asking = None;
        std::mem::take(&mut self.mcp.servers)
            .into_values()
            .filter_map(|s| match s {
                ServerState::Connected(c) => Arc::try_unwrap(c).ok(),
                _ => None,
            })
            .collect()
    }

    /// `/mcp`: what each server is doing, after its definition's row, and its tools.
    pub(super) fn mcp_state_rows(&self, name: &str) -> (String, Vec<(String, String)>) {
        match self.mcp.servers.get(name) {
            None => ("not connected".into(), Vec::new()),
            Some(ServerState::Connecting(_)) => ("connecting…".into(), Vec::new()),
            Some(ServerState::Failed(why)) => (
                format!("failed: {}", self.ctx.redactor.redact_str(why)),
                Vec::new(),
            ),
            Some(ServerState::NeedsSignIn(why)) => (format!("needs sign-in: {why}"), Vec::new()),
            Some(ServerState::Connected(c)) => {
                let n = c.tools().len();
                let state = format!("connected · {n} tool{}", if n == 1 { "" } else { "s" });
                let tools = c
                    .tools()
                    .iter()
                    .map(|t| {
                        (
                            format!("  {}", t.name),
                            shorten(t.description.as_deref().unwrap_or_default(), 1, 80),
                        )
                    })
                    .collect();
                (state, tools)
            }
        }
    }
}
