//! The account's MCP servers in the cockpit: connected in the background once their definitions
//! are known (after the first frame), one state per server (connecting, connected with its
//! tools, failed and why, needs sign-in), their tools offered to the model, and every call the
//! model makes asked of the user (once, always for this tool this session, no) through the App;
//! Esc cancels a running call. A server's failure is its own: the session goes on.
//!
//! A remote server that asks for OAuth shows "needs sign-in — /mcp login <name>" (or "needs more
//! access" after a 403 `insufficient_scope`); `/mcp login <name>` signs in to it in the
//! background ([`mogplex_auth::mcp_signin`], the browser and the loopback listener of the account
//! sign-in; the step-up scope when it needs more access) and connects it again, `/mcp logout
//! <name>` forgets its tokens.

use super::services::Services;
use super::{Cockpit, Msg};
use crate::log::Level;
use crate::tools::{BoxFuture, Decision, PendingCall, ToolGate, Toolbox, shorten};
use mogplex_auth::mcp_signin::{McpLogin, McpSignedIn};
use mogplex_auth::signin::Progress;
use mogplex_mcp::{Connection, Definition, Limits, McpError, McpErrorKind, ToolOutput};
use mogplex_protocol::McpServer;
use mogplex_tui::{Event, ToolApproval};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;

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
        /// The call failed because the server wants a (larger) sign-in.
        needs: Option<McpError>,
    },
    /// `/mcp login`: the sign-in waits for the browser.
    LoginProgress {
        server: String,
        progress: Progress,
    },
    LoggedIn {
        server: String,
        result: Result<McpSignedIn, crate::error::CliError>,
    },
    LoggedOut {
        server: String,
        result: Result<usize, crate::error::CliError>,
    },
}

#[derive(Debug)]
pub(super) enum ServerState {
    /// The attempt under way.
    Connecting(u64),
    Connected(Arc<Connection>),
    Failed(String),
    NeedsSignIn(String),
    /// A 403 `insufficient_scope`: the scope a new sign-in must ask for.
    NeedsMoreAccess {
        scope: Option<String>,
    },
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
    /// The `/mcp login` under way.
    login: Option<WaitingLogin>,
}

/// An `/mcp login` waiting for the browser.
#[derive(Debug)]
struct WaitingLogin {
    server: String,
    /// Aborting it closes its listener.
    task: AbortHandle,
    /// Addresses the user submits in the composer (the paste path).
    paste: tokio::sync::mpsc::Sender<String>,
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
        let needs = result.as_ref().err().filter(|e| e.needs_sign_in()).cloned();
        self.services.send(Msg::Mcp(McpMsg::Done {
            call: call.clone(),
            ok,
            text,
            needs,
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
                        match e.kind {
                            McpErrorKind::NeedsSignIn => ServerState::NeedsSignIn(e.message),
                            McpErrorKind::NeedsMoreAccess => {
                                ServerState::NeedsMoreAccess { scope: e.scope }
                            }
                            _ => ServerState::Failed(e.message),
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
            McpMsg::LoginProgress { server, progress } => {
                self.mcp_login_progress(&server, progress)
            }
            McpMsg::LoggedIn { server, result } => self.mcp_logged_in(server, result),
            McpMsg::LoggedOut { server, result } => match result {
                Ok(0) => self.note(format!(
                    "No stored sign-in for the MCP server {server}; nothing to remove."
                )),
                Ok(_) => {
                    self.note(format!(
                        "Signed out of the MCP server {server}: its tokens are removed."
                    ));
                    self.disconnect_mcp(&server);
                    self.mcp
                        .servers
                        .insert(server, ServerState::NeedsSignIn("signed out".to_owned()));
                }
                Err(e) => self.show_error(&e),
            },
            McpMsg::Done {
                call,
                ok,
                text,
                needs,
            } => {
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
                if let Some(e) = needs {
                    self.server_needs_sign_in(&call.server, e);
                }
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
            let auth = self.mcp_auth();
            self.services.spawn(move |s| async move {
                let result =
                    mogplex_mcp::connect_with(&parsed, &Limits::default(), Some(&auth)).await;
                s.send(Msg::Mcp(McpMsg::Connected {
                    generation,
                    attempt,
                    server,
                    result,
                }));
            });
        }
    }

    /// Where the OAuth tokens of this session's remote servers are: the store, under the
    /// Mogplex account in force (none for a personal access token from the environment).
    fn mcp_auth(&self) -> mogplex_mcp::Auth {
        mogplex_mcp::Auth {
            store: self.services.store().clone(),
            account: self.mcp_account(),
        }
    }

    fn mcp_account(&self) -> Option<String> {
        self.mogplex_owner()
            .and_then(|(_, c)| c.account_entry.clone())
    }

    /// Drops a server's connection and tools, so that the next [`Self::connect_mcp`] connects
    /// it again.
    fn disconnect_mcp(&mut self, server: &str) {
        self.mcp.defined.remove(server);
        self.mcp.servers.remove(server);
        self.mcp.toolbox.remove(server);
    }

    /// A server answered a call with a 401 or a 403 `insufficient_scope`: its tools go until the
    /// user signs in again (`/mcp login`).
    fn server_needs_sign_in(&mut self, server: &str, e: McpError) {
        self.mcp.toolbox.remove(server);
        let (state, say) = if e.kind == McpErrorKind::NeedsMoreAccess {
            let what = e
                .scope
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            (
                ServerState::NeedsMoreAccess {
                    scope: e.scope.clone(),
                },
                format!("The MCP server {server} needs more access{what}: /mcp login {server}"),
            )
        } else {
            (
                ServerState::NeedsSignIn(e.message.clone()),
                format!("The MCP server {server} needs a new sign-in: /mcp login {server}"),
            )
        };
        self.mcp.servers.insert(server.to_owned(), state);
        self.note(say);
    }

    /// `/mcp`, `/mcp login <server>`, `/mcp logout <server>`.
    pub(super) fn mcp_command(&mut self, args: &[String]) {
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        match words.as_slice() {
            [] => self.load_mcp(),
            ["login", server] => self.mcp_login(server),
            ["logout", server] => self.mcp_logout(server),
            _ => self.command_error(
                format!("/mcp does not take `{}`", words.join(" ")),
                "/mcp lists the servers; /mcp login <server> signs in to one, /mcp logout <server> signs out".into(),
            ),
        }
    }

    fn command_error(&mut self, message: String, hint: String) {
        let e = crate::error::CliError::usage(message).hint(hint);
        self.show_error(&e);
    }

    fn mcp_login(&mut self, name: &str) {
        let Some(defs) = self.hosted_mcp() else {
            return self.command_error(
                "the MCP servers of your account are not known yet".into(),
                "sign in with Mogplex (/login), and wait for the account to sync".into(),
            );
        };
        let Some(def) = defs.iter().find(|d| d.name == name) else {
            let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
            return self.command_error(
                format!("your account has no MCP server named `{name}`"),
                if names.is_empty() {
                    "your account has no MCP servers".into()
                } else {
                    format!("its MCP servers: {}", names.join(", "))
                },
            );
        };
        let parsed = match Definition::from_server(def) {
            Ok(p) => p,
            Err(e) => {
                return self.command_error(
                    format!("the definition of {name} cannot be used: {e}"),
                    "its administrator must fix the definition".into(),
                );
            }
        };
        let Some(url) = parsed.url() else {
            return self.command_error(
                format!("the MCP server {name} runs on this machine and has no sign-in of its own"),
                "only remote (http) MCP servers ask for a sign-in".into(),
            );
        };
        let scope = match self.mcp.servers.get(name) {
            Some(ServerState::NeedsMoreAccess { scope, .. }) => scope.clone(),
            _ => None,
        };
        let login = McpLogin {
            server: name.to_owned(),
            url: url.to_owned(),
            account: self.mcp_account(),
            client_id: parsed.client_id().map(str::to_owned),
            scope,
            device: false,
        };
        self.end_mcp_login();
        self.log.write(
            Level::Info,
            "mcp.login.start",
            "MCP sign-in started",
            json!({"server": name}),
        );
        self.note(format!("Signing in to the MCP server {name}…"));
        let server = name.to_owned();
        let (paste, pasted) = tokio::sync::mpsc::channel(4);
        let task = self.services.spawn(move |s| async move {
            let store = s.store().clone();
            let tx = s.clone();
            let progress_server = server.clone();
            let mut progress = move |p: Progress| {
                tx.send(Msg::Mcp(McpMsg::LoginProgress {
                    server: progress_server.clone(),
                    progress: p,
                }))
            };
            let result = mogplex_auth::mcp_signin::sign_in(
                s.env(),
                &store,
                &login,
                Some(pasted),
                &mut progress,
            )
            .await
            .map_err(|e| crate::mcp::sign_in_error(e, &server, crate::mcp::Surface::Cockpit));
            s.send(Msg::Mcp(McpMsg::LoggedIn { server, result }));
        });
        self.mcp.login = Some(WaitingLogin {
            server: name.to_owned(),
            task,
            paste,
        });
        self.app.update(Event::McpSignInWaiting(true));
    }

    /// Stops the `/mcp login` under way, if any (its listener closes).
    fn end_mcp_login(&mut self) {
        if let Some(w) = self.mcp.login.take() {
            w.task.abort();
        }
        self.app.update(Event::McpSignInWaiting(false));
    }

    /// An address the user submitted while the `/mcp login` waits: to its paste path.
    pub(super) fn submit_mcp_callback(&mut self, text: String) {
        let sent = self
            .mcp
            .login
            .as_ref()
            .is_some_and(|w| w.paste.try_send(text).is_ok());
        if !sent {
            self.note("No MCP sign-in is waiting for that address; nothing was sent".to_owned());
        }
    }

    fn mcp_login_progress(&mut self, server: &str, p: Progress) {
        match p {
            Progress::Browser { url, opened } => {
                let intro = if opened {
                    format!(
                        "Opening your browser to sign in to the MCP server {server}. If it does not open, visit:"
                    )
                } else {
                    format!("Open this address in a browser to sign in to the MCP server {server}:")
                };
                self.note(format!(
                    "{intro}
{url}
(On another machine? Paste here the address its browser shows after signing in.)"
                ));
            }
            Progress::Notice(n) => self.note(crate::signin::notice_text(&n)),
            Progress::Note(n) => self.note(n),
            Progress::Device { .. } => {}
        }
    }

    fn mcp_logged_in(
        &mut self,
        server: String,
        result: Result<McpSignedIn, crate::error::CliError>,
    ) {
        if self.mcp.login.as_ref().is_some_and(|w| w.server == server) {
            self.mcp.login = None;
            self.app.update(Event::McpSignInWaiting(false));
        }
        match result {
            Ok(done) => {
                self.log.write(
                    Level::Info,
                    "mcp.login",
                    "signed in to an MCP server",
                    json!({"server": server, "issuer": done.issuer, "registered": done.registered}),
                );
                // Its tokens are secrets of this session from now on.
                let store = self.services.store().clone();
                if let Ok(loaded) = store.load() {
                    for s in crate::ctx::doc_secrets(&loaded.doc) {
                        self.learn(&s.clone());
                    }
                }
                let granted = done
                    .scope
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                self.note(format!(
                    "Signed in to the MCP server {server}{granted}; connecting…"
                ));
                self.disconnect_mcp(&server);
                if let Some(defs) = self.hosted_mcp() {
                    self.connect_mcp(&defs);
                }
            }
            Err(e) => self.show_error(&e),
        }
    }

    fn mcp_logout(&mut self, name: &str) {
        let account = self.mcp_account();
        let server = name.to_owned();
        self.services.spawn(move |s| async move {
            let store = s.store().clone();
            let (acct, srv) = (account.clone(), server.clone());
            let forgotten = tokio::task::spawn_blocking(move || {
                mogplex_auth::credentials::mcp::forget_mcp_server(&*store, acct.as_deref(), &srv)
            })
            .await;
            let result = match forgotten {
                Ok(Ok(u)) => {
                    // Best effort at the authorization server, after the local entry is gone.
                    let _ = crate::mcp::revoke_forgotten(&u.value).await;
                    Ok(u.value.len())
                }
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(crate::error::CliError::new(
                    crate::exit::FAILURE,
                    "could not remove the MCP sign-in",
                )
                .cause(e.to_string())),
            };
            s.send(Msg::Mcp(McpMsg::LoggedOut { server, result }));
        });
    }

    /// Signed out (or quitting): every server goes, nothing more is awaited. Returns the
    /// connections no one else holds, for the caller to close.
    pub(super) fn drop_mcp(&mut self) -> Vec<Connection> {
        self.end_mcp_login();
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
            Some(ServerState::NeedsSignIn(why)) => (
                format!("needs sign-in — /mcp login {name} ({why})"),
                Vec::new(),
            ),
            Some(ServerState::NeedsMoreAccess { scope, .. }) => (
                match scope {
                    Some(s) => format!("needs more access ({s}) — /mcp login {name}"),
                    None => format!("needs more access — /mcp login {name}"),
                },
                Vec::new(),
            ),
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
