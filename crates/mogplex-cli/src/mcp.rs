//! `mogplex mcp list|login <server>|logout <server>`: the account's MCP servers and their
//! sign-ins from the shell. The servers come from the account's definitions; the sign-in is
//! [`mogplex_auth::mcp_signin`] (the same loopback, browser and paste machinery as `mogplex
//! login`), its tokens go to the credential store, and nothing here prints a token.

use crate::args::McpCommand;
use crate::ctx::{Ctx, remember_doc_secrets};
use crate::error::CliError;
use crate::exit;
use crate::login::{store_label, write_notes};
use mogplex_auth::credentials::mcp::{McpAuthError, expired, forget_mcp_server, seconds_left};
use mogplex_auth::credentials::{Document, McpTokenEntry};
use mogplex_auth::mcp_signin::{McpLogin, McpSignInError, McpSignedIn, Probe, probe};
use mogplex_auth::oauth::OAuthError;
use mogplex_auth::oauth::loopback::LoopbackError;
use mogplex_auth::oauth::mcp::canonical_resource;
use mogplex_auth::{CredentialKind, Provider};
use mogplex_mcp::Definition;
use mogplex_protocol::McpServer;
use std::time::Duration;

pub fn run(ctx: &mut Ctx, command: McpCommand) -> Result<(), CliError> {
    match command {
        McpCommand::List => list(ctx),
        McpCommand::Login {
            server,
            scope,
            device,
        } => login(ctx, &server, scope, device),
        McpCommand::Logout { server } => logout(ctx, &server),
    }
}

/// Where a sign-in was started from, for the hint that says how to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Command,
    Cockpit,
}

impl Surface {
    fn again(self, server: &str) -> String {
        match self {
            Surface::Command => format!("run `mogplex mcp login {server}` again"),
            Surface::Cockpit => format!("type /mcp login {server} again"),
        }
    }
}

/// A failed MCP sign-in, as the user reads it.
pub fn sign_in_error(e: McpSignInError, server: &str, surface: Surface) -> CliError {
    let again = surface.again(server);
    match e {
        McpSignInError::BadUrl(_) => CliError::new(exit::CONFIG, e.to_string())
            .hint("its definition needs an absolute https (or loopback http) `url`"),
        McpSignInError::NotNeeded { .. } => CliError::new(exit::USAGE, e.to_string())
            .hint("it answers without a sign-in; nothing was stored"),
        McpSignInError::Loopback(LoopbackError::PortsTaken(ports)) => CliError::new(
            exit::FAILURE,
            format!("cannot receive the browser's answer: ports {ports:?} on 127.0.0.1 are taken"),
        )
        .hint("close what uses them, then try again"),
        McpSignInError::Loopback(LoopbackError::StoodDown) => CliError::new(
            exit::FAILURE,
            "stopped waiting: another `mogplex` sign-in started",
        )
        .hint("finish the sign-in in the other terminal"),
        McpSignInError::Loopback(LoopbackError::TimedOut(m)) => CliError::new(
            exit::FAILURE,
            format!("no sign-in arrived within {m} minutes"),
        )
        .hint(again),
        McpSignInError::Loopback(other) => {
            CliError::new(exit::FAILURE, other.to_string()).hint(again)
        }
        McpSignInError::Store(McpAuthError::Credentials(e)) => e.into(),
        McpSignInError::Store(McpAuthError::OAuth(e)) | McpSignInError::OAuth(e) => {
            oauth_error(e, server, &again)
        }
        McpSignInError::Store(e) => CliError::new(exit::FAILURE, e.to_string()).hint(again),
        McpSignInError::NoDeviceClient { ref refused, .. } => {
            let cause = match refused {
                OAuthError::RegistrationRefused { server: at, reason } => {
                    format!("{at} answered: {reason}")
                }
                other => other.to_string(),
            };
            CliError::new(exit::FAILURE, e.to_string())
                .cause(cause)
                .hint(format!("sign in in the browser instead: `mogplex mcp login {server}`"))
                .hint("or ask its administrator for a client with the device code grant, and put its `client_id` in the definition")
                .hint("nothing was stored")
        }
    }
}

fn oauth_error(e: OAuthError, server: &str, again: &str) -> CliError {
    match e {
        OAuthError::Unreachable { .. } | OAuthError::Server { .. } => CliError::new(
            exit::UNAVAILABLE,
            format!("cannot reach the MCP server {server} or its authorization server"),
        )
        .cause(e.to_string())
        .hint("check your network connection, then try again"),
        OAuthError::IssuerMismatch { expected, found } => CliError::new(
            exit::CONFIG,
            format!(
                "the authorization server of the MCP server {server} at {expected} names another issuer ({found}); not signing in"
            ),
        )
        .hint("its administrator must publish its own address as its issuer")
        .hint("nothing was stored"),
        OAuthError::Misconfigured { problem, fix, .. } => CliError::new(
            exit::CONFIG,
            format!("the MCP server {server} cannot be signed in to: {problem}"),
        )
        .hint(fix)
        .hint("nothing was stored"),
        OAuthError::RegistrationRefused { server: at, reason } => CliError::new(
            exit::FAILURE,
            format!("registration refused: the authorization server of the MCP server {server} did not register mogplex as a client"),
        )
        .cause(format!("{at} answered: {reason}"))
        .hint("ask its administrator to allow dynamic client registration with loopback redirects, or to register a client for mogplex and put its `client_id` in the definition")
        .hint("nothing was stored"),
        OAuthError::Denied => {
            CliError::new(exit::FORBIDDEN, "the sign-in was denied in the browser")
                .hint(format!("{again} to retry"))
        }
        OAuthError::Settings { variable, problem } => {
            CliError::usage(format!("{variable} {problem}"))
        }
        other => CliError::new(
            exit::FAILURE,
            format!("the authorization server of the MCP server {server} refused the sign-in"),
        )
        .cause(other.to_string())
        .hint(again.to_owned()),
    }
}

/// The account's MCP definitions, and the account entry their tokens are kept under.
struct Account {
    servers: Vec<McpServer>,
    entry: Option<String>,
}

fn no_mogplex() -> CliError {
    CliError::new(
        exit::NO_CREDENTIAL,
        "MCP servers come from your Mogplex account, and no Mogplex credential resolves",
    )
    .hint("sign in with `mogplex login`, or set MOGPLEX_API_KEY for this shell")
}

/// The account entry whose MCP tokens this session uses (`None`: none stored, or the credential
/// comes from the environment).
fn account_entry(ctx: &mut Ctx) -> Result<Option<String>, CliError> {
    let resolution = ctx.resolve()?;
    Ok(resolution
        .for_provider(Provider::Mogplex)
        .and_then(|c| c.account_entry.clone()))
}

fn definitions(ctx: &mut Ctx) -> Result<Account, CliError> {
    let resolution = ctx.resolve()?;
    let Some(credential) = resolution.for_provider(Provider::Mogplex).cloned() else {
        return Err(no_mogplex());
    };
    let base = crate::signin::account_base(&ctx.env)?;
    let store = ctx.store.clone();
    let client = crate::exec::model_client()?;
    let servers = crate::signin::runtime()?.block_on(async {
        let token = if credential.kind == CredentialKind::AccountSession {
            crate::exec::renew(&store, &credential, &base, None).await?
        } else {
            credential.secret.clone()
        };
        client.mcp_servers(&base, &token).await.map_err(|e| {
            CliError::new(
                exit::UNAVAILABLE,
                "could not read your account's MCP servers",
            )
            .cause(e.message.clone())
            .hint(format!(
                "check your connection to {}",
                crate::signin::base_label(&base)
            ))
        })
    })?;
    Ok(Account {
        servers,
        entry: credential.account_entry.clone(),
    })
}

/// The definition named `name`, or the usage error that lists the names there are.
fn find<'a>(servers: &'a [McpServer], name: &str) -> Result<&'a McpServer, CliError> {
    servers.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
        CliError::usage(format!("your account has no MCP server named `{name}`")).hint(
            if names.is_empty() {
                "your account has no MCP servers".to_owned()
            } else {
                format!("its MCP servers: {}", names.join(", "))
            },
        )
    })
}

/// `2026-12-01T08:12:03Z` → `2026-12-01 08:12 UTC`.
fn short_time(rfc3339: &str) -> String {
    let t = rfc3339.replace('T', " ");
    match t.get(..16) {
        Some(head) => format!("{head} UTC"),
        None => t,
    }
}

/// What a stored sign-in is, in a few words (never a token).
pub fn token_state(m: &McpTokenEntry) -> String {
    let scope = m
        .scope
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    match (expired(m), m.refresh().is_some(), &m.expires_at) {
        (true, true, _) => format!("signed in{scope}; renewed on next use"),
        (true, false, _) => "its sign-in has expired".to_owned(),
        (false, _, Some(at)) if seconds_left(m).is_some() => {
            format!("signed in{scope}, until {}", short_time(at))
        }
        _ => format!("signed in{scope}"),
    }
}

/// The state `mogplex mcp list` shows for one server.
fn state_of(
    def: &McpServer,
    doc: &Document,
    account: Option<&str>,
    probed: Option<&Probe>,
) -> String {
    if !def.enabled {
        return "disabled".to_owned();
    }
    let Some(url) = def.config.get("url").and_then(|u| u.as_str()) else {
        return "runs on this machine; no sign-in".to_owned();
    };
    let stored = canonical_resource(url).and_then(|r| doc.mcp_token(account, &r));
    match (stored, probed) {
        (Some(m), _) if expired(m) && m.refresh().is_none() => {
            format!("its sign-in has expired — mogplex mcp login {}", def.name)
        }
        (Some(m), _) => token_state(m),
        (None, Some(Probe::Open)) => "no sign-in needed".to_owned(),
        (None, Some(_)) => format!("needs sign-in — mogplex mcp login {}", def.name),
        (None, None) => format!(
            "not signed in (unreachable just now) — mogplex mcp login {}",
            def.name
        ),
    }
}

fn list(ctx: &mut Ctx) -> Result<(), CliError> {
    let account = definitions(ctx)?;
    // Metadata only: no keyring unlock, no secret read.
    let doc = ctx.store.load_metadata()?.doc;
    if account.servers.is_empty() {
        println!("Your Mogplex account has no MCP servers");
        return Ok(());
    }
    // Each remote server without a stored sign-in is asked once, without a token, whether it
    // wants one (bounded; all at once).
    let probes = crate::signin::runtime()?.block_on(async {
        let http = mogplex_auth::oauth::http_client().ok();
        let mut set = tokio::task::JoinSet::new();
        for (i, s) in account.servers.iter().enumerate() {
            let Some(url) = s.config.get("url").and_then(|u| u.as_str()) else {
                continue;
            };
            let stored = canonical_resource(url)
                .is_some_and(|r| doc.mcp_token(account.entry.as_deref(), &r).is_some());
            if !s.enabled || stored {
                continue;
            }
            let (Some(http), url) = (http.clone(), url.to_owned()) else {
                continue;
            };
            set.spawn(async move {
                let p = tokio::time::timeout(Duration::from_secs(5), probe(&http, &url)).await;
                (i, p.ok().and_then(Result::ok))
            });
        }
        let mut out = vec![None; account.servers.len()];
        while let Some(Ok((i, p))) = set.join_next().await {
            out[i] = p;
        }
        out
    });
    let width = account
        .servers
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    for (s, probed) in account.servers.iter().zip(&probes) {
        let what = match s.config.get("url").and_then(|u| u.as_str()) {
            Some(url) => format!("http  {}", mogplex_auth::redact::redact_patterns(url)),
            None => format!(
                "stdio {}",
                s.config
                    .get("command")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default()
            ),
        };
        println!(
            "{:width$}  {what}  {}",
            s.name,
            state_of(s, &doc, account.entry.as_deref(), probed.as_ref()),
        );
    }
    Ok(())
}

/// What a completed sign-in says, besides "Signed in": notes for stderr.
pub fn signed_in_notes(done: &McpSignedIn) -> Vec<String> {
    let mut notes = Vec::new();
    if done.registered {
        notes.push(format!(
            "note: registered mogplex as a client of {} (once: later sign-ins there reuse it)",
            done.issuer
        ));
    }
    if let Some(scope) = &done.scope {
        notes.push(format!("note: access granted: {scope}"));
    }
    notes
}

fn login(ctx: &mut Ctx, name: &str, scope: Option<String>, device: bool) -> Result<(), CliError> {
    let account = definitions(ctx)?;
    let def = find(&account.servers, name)?;
    let parsed = Definition::from_server(def).map_err(|e| {
        CliError::new(
            exit::CONFIG,
            format!("the definition of the MCP server {name} cannot be used: {e}"),
        )
    })?;
    let Some(url) = parsed.url() else {
        return Err(CliError::usage(format!(
            "the MCP server {name} runs on this machine (stdio) and has no sign-in of its own"
        ))
        .hint("only remote (http) MCP servers ask for a sign-in"));
    };
    let login = McpLogin {
        server: name.to_owned(),
        url: url.to_owned(),
        account: account.entry.clone(),
        client_id: parsed.client_id().map(str::to_owned),
        scope: scope.filter(|s| !s.trim().is_empty()),
        device,
    };
    let env = ctx.env;
    let store = ctx.store.clone();
    let target = format!("the MCP server {name}");
    let mut progress = |p| crate::signin::print_progress_to(&target, p);
    let done = crate::signin::runtime()?.block_on(async {
        tokio::select! {
            r = mogplex_auth::mcp_signin::sign_in(
                &env,
                &store,
                &login,
                Some(crate::signin::paste_channel()),
                &mut progress,
            ) => r.map_err(|e| sign_in_error(e, name, Surface::Command)),
            _ = tokio::signal::ctrl_c() => Err(CliError::new(
                exit::INTERRUPTED,
                "sign-in cancelled; nothing was stored",
            )),
        }
    })?;
    // Its tokens are secrets of this process from now on (the log redacts them).
    if let Ok(loaded) = ctx.store.load() {
        remember_doc_secrets(&mut ctx.redactor, &loaded.doc);
    }
    ctx.session_log();
    tracing::info!(
        event = "mcp.login",
        server = name,
        issuer = done.issuer,
        registered = done.registered,
        "signed in to an MCP server"
    );
    println!("Signed in to the MCP server {name}");
    eprintln!("Stored its tokens in {}", store_label(&*ctx.store));
    for n in signed_in_notes(&done) {
        eprintln!("{n}");
    }
    Ok(())
}

/// [`revoke_forgotten`] from the shell, its notes on stderr. Best effort: no runtime is a note
/// too, never an error (the tokens are gone here already).
pub fn revoke_forgotten_now(gone: &[McpTokenEntry]) {
    if gone.is_empty() {
        return;
    }
    let notes = crate::signin::runtime()
        .map(|rt| rt.block_on(revoke_forgotten(gone)))
        .unwrap_or_else(|e| {
            vec![format!(
                "note: {}; the MCP sign-ins were not revoked there",
                e.message
            )]
        });
    for n in notes {
        eprintln!("{n}");
    }
}

/// Revokes forgotten MCP sign-ins at their authorization servers (RFC 7009): the refresh token,
/// else the access token; best effort within 5 seconds each. Returns a note for each that could
/// not be confirmed. The local entries are gone already, whatever this says.
pub async fn revoke_forgotten(gone: &[McpTokenEntry]) -> Vec<String> {
    let mut notes = Vec::new();
    for m in gone {
        let (token, hint) = match (m.refresh(), m.access()) {
            (Some(rt), _) => (rt.clone(), "refresh_token"),
            (None, Some(at)) => (at.clone(), "access_token"),
            (None, None) => continue,
        };
        let attempt = tokio::time::timeout(Duration::from_secs(5), async {
            let c = mogplex_auth::mcp_signin::authorization_server(
                m.issuer.clone(),
                m.client_id.clone(),
            )
            .await?;
            c.revoke(&token, hint).await
        })
        .await;
        match attempt {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => notes.push(format!(
                "note: could not confirm the sign-out of {} at {} ({e}); its tokens were removed from this machine",
                m.server, m.issuer
            )),
            Err(_) => notes.push(format!(
                "note: {} did not answer within 5 seconds, so the sign-out of {} was not confirmed there; its tokens were removed from this machine",
                m.issuer, m.server
            )),
        }
    }
    notes
}

fn logout(ctx: &mut Ctx, name: &str) -> Result<(), CliError> {
    // Needs no network: the tokens are found by the server's name.
    let entry = account_entry(ctx)?;
    let loaded = ctx.store.load()?;
    remember_doc_secrets(&mut ctx.redactor, &loaded.doc);
    let store = ctx.store.clone();
    let updated = forget_mcp_server(&*store, entry.as_deref(), name)?;
    for n in write_notes(&*store, &updated) {
        eprintln!("{n}");
    }
    let label = store_label(&*store);
    ctx.session_log();
    tracing::info!(
        event = "mcp.logout",
        server = name,
        removed = !updated.value.is_empty(),
        "signed out of an MCP server"
    );
    if updated.value.is_empty() {
        println!("No stored sign-in for the MCP server {name} in {label}; nothing to remove");
        return Ok(());
    }
    println!("Signed out of the MCP server {name}: removed its tokens from {label}");
    let notes = crate::signin::runtime()?.block_on(revoke_forgotten(&updated.value));
    for n in notes {
        eprintln!("{n}");
    }
    Ok(())
}
