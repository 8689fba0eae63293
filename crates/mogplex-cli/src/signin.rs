//! "Sign in with Mogplex" from the command line: prints what [`mogplex_auth::signin`] reports,
//! feeds it addresses pasted on stdin, stores the result, and turns failures into `error:` /
//! `hint:` text with an exit code. The cockpit uses the same flow and the same messages.

use crate::ctx::Ctx;
use crate::error::CliError;
use crate::exit;
use mogplex_auth::credentials::ops;
use mogplex_auth::oauth::OAuthError;
use mogplex_auth::oauth::loopback::{LoopbackError, Notice};
use mogplex_auth::signin::{Method, Progress, SignInError, SignedIn};
use mogplex_auth::{Env, Provider};
use std::io::BufRead;

/// Where a sign-in was started from, for the hint that says how to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Command,
    Cockpit,
}

impl Surface {
    fn retry(self, device: bool) -> &'static str {
        match (self, device) {
            (Surface::Command, false) => "run `mogplex login` again",
            (Surface::Command, true) => "run `mogplex login --device` again",
            (Surface::Cockpit, false) => "choose \"Sign in with Mogplex\" again",
            (Surface::Cockpit, true) => "choose \"Sign in with a device code\" again",
        }
    }
}

pub fn oauth_error(e: OAuthError, base: &str, surface: Surface) -> CliError {
    match e {
        OAuthError::Unreachable { .. } | OAuthError::Server { .. } => CliError::new(
            exit::UNAVAILABLE,
            format!("cannot reach the Mogplex account service at {base}"),
        )
        .cause(e.to_string())
        .hint("check your network connection, and MOGPLEX_URL if you set it"),
        OAuthError::IssuerMismatch { expected, found } => CliError::new(
            exit::CONFIG,
            format!(
                "the server at {expected} names another issuer ({found}) in its metadata; not signing in"
            ),
        )
        .hint(format!(
            "if {found} is the server you mean, set MOGPLEX_URL={found}; otherwise its administrator must publish {expected} as its issuer"
        ))
        .hint("nothing was stored"),
        OAuthError::Misconfigured {
            server,
            problem,
            fix,
        } => CliError::new(
            exit::CONFIG,
            format!("the authorization server at {server} cannot be used: {problem}"),
        )
        .hint(fix)
        .hint("nothing was stored"),
        OAuthError::Settings { variable, problem } => {
            CliError::usage(format!("{variable} {problem}"))
                .hint(format!("fix or unset {variable} (see docs/configuration.md)"))
        }
        OAuthError::Denied => {
            CliError::new(exit::FORBIDDEN, "the sign-in was denied in the browser")
                .hint(format!("{} to retry", surface.retry(false)))
        }
        OAuthError::DeviceExpired => CliError::new(
            exit::FAILURE,
            "the device code expired before it was approved",
        )
        .hint(surface.retry(true)),
        OAuthError::NoDeviceFlow => CliError::usage(
            "this account service does not offer device codes",
        )
        .hint(match surface {
            Surface::Command => "sign in with the browser: `mogplex login mogplex`",
            Surface::Cockpit => "choose \"Sign in with Mogplex\" to use the browser",
        }),
        OAuthError::RegistrationRefused { .. } => CliError::new(
            exit::FAILURE,
            "the authorization server refused to register mogplex as a client",
        )
        .cause(e.to_string())
        .hint("ask its administrator to allow dynamic client registration for loopback redirects, or to register a client for mogplex and name its id in the definition")
        .hint("nothing was stored"),
        OAuthError::Rejected { .. }
        | OAuthError::RejectedWithoutBody { .. }
        | OAuthError::Protocol(_) => {
            CliError::new(exit::FAILURE, "the account service refused the sign-in")
                .cause(e.to_string())
                .hint(surface.retry(false))
        }
    }
}

/// Turns a failed sign-in into what the user reads.
pub fn sign_in_error(e: SignInError, base: &str, surface: Surface) -> CliError {
    let device_hint = match surface {
        Surface::Command => "sign in with a device code: `mogplex login --device`",
        Surface::Cockpit => "choose \"Sign in with a device code\"",
    };
    match e {
        SignInError::OAuth(e) => oauth_error(e, base, surface),
        SignInError::Loopback(LoopbackError::PortsTaken(ports)) => CliError::new(
            exit::FAILURE,
            format!("cannot receive the browser's answer: ports {ports:?} on 127.0.0.1 are taken"),
        )
        .hint(format!("close what uses them, or {device_hint}")),
        SignInError::Loopback(LoopbackError::StoodDown) => CliError::new(
            exit::FAILURE,
            "stopped waiting: another `mogplex login` started",
        )
        .hint("finish the sign-in in the other terminal"),
        SignInError::Loopback(LoopbackError::TimedOut(m)) => CliError::new(
            exit::FAILURE,
            format!("no sign-in arrived within {m} minutes"),
        )
        .hint(surface.retry(false)),
        SignInError::Loopback(other) => CliError::new(exit::FAILURE, other.to_string())
            .hint(format!("try again, or {device_hint}")),
    }
}

/// A notice from the loopback listener, as one line for the user.
pub fn notice_text(n: &Notice) -> String {
    match n {
        Notice::Rejected(m) => m.clone(),
        Notice::BrowserError(m) => {
            format!("the browser reported an error ({m}); still waiting, you can try again")
        }
    }
}

/// Reads lines from stdin on a thread, for pasted addresses.
pub(crate) fn paste_channel() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if tx.blocking_send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    rx
}

/// What `mogplex login` prints while it waits.
fn print_progress(p: Progress) {
    print_progress_to("Mogplex", p)
}

/// What a sign-in to `target` (`Mogplex`, `the MCP server demo`) prints while it waits.
pub(crate) fn print_progress_to(target: &str, p: Progress) {
    match p {
        Progress::Note(n) => eprintln!("note: {n}"),
        Progress::Browser { url, opened } => {
            // One instruction for where to go, whichever way it went.
            let intro = if opened {
                format!("Opening your browser to sign in to {target}. If it does not open, visit:")
            } else {
                format!("Open this address in a browser to sign in to {target}:")
            };
            eprintln!("{intro}\n\n  {url}\n");
            eprintln!(
                "Browser on another machine? Sign in there, then paste the address it ends on (…/auth/callback?code=…) here and press Enter."
            );
            eprintln!("Waiting for the sign-in (Ctrl+C to cancel)…");
        }
        Progress::Device {
            uri,
            code,
            complete,
            minutes,
        } => {
            eprintln!(
                "To sign in, open this address in any browser:\n\n  {uri}\n\nand enter the code:\n\n  {code}\n"
            );
            if let Some(complete) = complete {
                eprintln!("(or open {complete}, which has the code filled in)");
            }
            eprintln!(
                "Waiting for approval (the code is valid for {minutes} minutes; Ctrl+C to cancel)…"
            );
        }
        Progress::Notice(n) => eprintln!("note: {}", notice_text(&n)),
    }
}

/// The account service's address from `MOGPLEX_URL` (or the hosted default), checked.
pub fn account_base(env: &dyn Env) -> Result<mogplex_providers::Url, CliError> {
    mogplex_providers::spec(Provider::Mogplex)
        .base_url(env)
        .map_err(|e| CliError::usage(e.to_string()).hint(e.hint()))
}

/// Where a personal access token comes from. The hosted service has a settings page for them;
/// `mogplex-server` has no such page: its administrator creates them with `pat create`.
pub fn where_to_create_a_pat(env: &dyn Env) -> String {
    match account_base(env) {
        Ok(base) if base_label(&base) != mogplex_protocol::DEFAULT_BASE_URL => format!(
            "on the account service at {}, its administrator creates one with `mogplex-server pat create --email <your email>`",
            base_label(&base)
        ),
        _ => format!(
            "create one in your account settings at {}",
            mogplex_protocol::DEFAULT_BASE_URL
        ),
    }
}

/// The address as shown and as an issuer is keyed: without userinfo (a password in
/// `MOGPLEX_URL` is a secret) and without the trailing slash.
pub fn base_label(base: &mogplex_providers::Url) -> String {
    mogplex_auth::redact::display_url(base)
}

/// What the user should hear about the accounts beside a new sign-in: that it was added next
/// to others (which stay signed in), and how to switch. Signing in again as the same account
/// needs no note.
pub fn added_note(stored: &ops::SignedIn) -> Option<String> {
    if stored.outcome == ops::SignInOutcome::Replaced || stored.accounts_on_issuer < 2 {
        return None;
    }
    let others = stored.accounts_on_issuer - 1;
    Some(format!(
        "added this account beside the {others} other{} stored for {}; it is now the default (`mogplex account list` shows them, `mogplex account use <email>` switches)",
        if others == 1 { "" } else { "s" },
        stored.issuer.trim_end_matches('/')
    ))
}

/// Stores a completed sign-in and writes the log line; returns who signed in, and the notes
/// about the store and the accounts beside it.
pub fn store_signed_in(
    ctx: &mut Ctx,
    signed_in: &SignedIn,
) -> Result<(String, Vec<String>), CliError> {
    for s in signed_in.secrets() {
        ctx.learn(s);
    }
    let updated = signed_in.store(&*ctx.store)?;
    ctx.remember_choice(Provider::Mogplex, Some(&updated.value.entry_id), "sign-in");
    let mut notes = crate::login::write_notes(&*ctx.store, &updated);
    let added = added_note(&updated.value);
    let who = signed_in
        .email()
        .unwrap_or("your Mogplex account")
        .to_owned();
    ctx.session_log();
    tracing::info!(
        event = "login.mogplex",
        issuer = signed_in.issuer,
        email = who,
        added = added.is_some(),
        "signed in"
    );
    notes.extend(added.map(|n| format!("note: {n}")));
    Ok((who, notes))
}

pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(exit::FAILURE, "cannot start the async runtime").cause(e.to_string())
        })
}

pub fn login(ctx: &mut Ctx, method: Method) -> Result<(), CliError> {
    let base = account_base(&ctx.env)?;
    let label = base_label(&base);
    let env = ctx.env;
    let mut progress = print_progress;
    let signed_in = runtime()?.block_on(async {
        // Ctrl+C while waiting drops the sign-in (its listener closes with it) before anything
        // is stored.
        tokio::select! {
            r = mogplex_auth::signin::sign_in(
                &env,
                base,
                method,
                Some(paste_channel()),
                &mut progress,
            ) => r.map_err(|e| sign_in_error(e, &label, Surface::Command)),
            _ = tokio::signal::ctrl_c() => Err(CliError::new(
                exit::INTERRUPTED,
                "sign-in cancelled; nothing was stored",
            )),
        }
    })?;
    let (who, notes) = store_signed_in(ctx, &signed_in)?;
    println!("Signed in as {who}");
    eprintln!(
        "Stored the sign-in in {}",
        crate::login::store_label(&*ctx.store)
    );
    for note in notes {
        eprintln!("{note}");
    }
    if ctx.env.var(Provider::Mogplex.env_var()).is_some() {
        eprintln!(
            "note: MOGPLEX_API_KEY is set in this shell and takes precedence over this sign-in; unset it to use the sign-in"
        );
    }
    Ok(())
}

/// Revokes a refresh token at the advertised endpoint, best effort within 5 seconds. Returns a
/// note for the user when it could not be confirmed.
pub fn revoke_best_effort(env: &dyn Env, refresh_token: &mogplex_auth::Secret) -> Option<String> {
    let base = account_base(env).ok()?;
    let outcome = runtime()
        .ok()?
        .block_on(mogplex_auth::signin::revoke(base.clone(), refresh_token));
    outcome.note(&base_label(&base))
}

/// Revokes a refresh token at the service `issuer` names (the account's own), best effort
/// within 5 seconds. Returns a note for the user when it could not be confirmed.
pub fn revoke_at(issuer: &str, refresh_token: &mogplex_auth::Secret) -> Option<String> {
    let base: mogplex_providers::Url = issuer.parse().ok()?;
    let outcome = runtime()
        .ok()?
        .block_on(mogplex_auth::signin::revoke(base.clone(), refresh_token));
    outcome.note(&base_label(&base))
}
