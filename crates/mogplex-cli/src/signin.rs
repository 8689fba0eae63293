//! "Sign in with Mogplex" from the command line: the browser flow with a loopback callback (and a
//! paste box for a browser on another machine), and the device code flow. Headless sessions (SSH
//! without a forwarded display, no display, a container) prefer the device flow and say why.

use crate::ctx::Ctx;
use crate::error::CliError;
use crate::exit;
use crate::log::Level;
use mogplex_auth::oauth::loopback::{CallbackServer, LoopbackError, Notice};
use mogplex_auth::oauth::{OAuthClient, OAuthError, Pkce, http_client, random_b64};
use mogplex_auth::{Env, Provider, session};
use serde_json::json;
use std::io::BufRead;
use std::time::Duration;

/// How long a browser sign-in may take before the listener closes.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The browser, unless this looks headless and the server offers device codes.
    Auto,
    Browser,
    Device,
}

/// Why a browser on this machine is unlikely to work, if it is.
pub fn headless_reason(env: &dyn Env) -> Option<String> {
    if env.var("BROWSER").is_some() {
        return None;
    }
    let display = env.var("DISPLAY").is_some() || env.var("WAYLAND_DISPLAY").is_some();
    let ssh = env.var("SSH_CONNECTION").is_some()
        || env.var("SSH_CLIENT").is_some()
        || env.var("SSH_TTY").is_some();
    if ssh && !display {
        return Some("this is an SSH session without a forwarded display".into());
    }
    if std::path::Path::new("/.dockerenv").exists()
        || std::path::Path::new("/run/.containerenv").exists()
        || env.var("container").is_some()
    {
        return Some("this looks like a container".into());
    }
    if cfg!(target_os = "linux") && !display {
        return Some("there is no display".into());
    }
    None
}

/// `$BROWSER` when set (the URL is passed as an argument, never through a shell string), else the
/// platform's opener. Returns whether something was started.
pub fn open_browser(env: &dyn Env, url: &str) -> bool {
    use std::process::{Command, Stdio};
    let mut cmd = match env.var("BROWSER") {
        Some(b) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("{b} \"$1\"")).arg("sh").arg(url);
            c
        }
        None if cfg!(target_os = "macos") => {
            let mut c = Command::new("open");
            c.arg(url);
            c
        }
        None => {
            let mut c = Command::new("xdg-open");
            c.arg(url);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}

pub fn oauth_error(e: OAuthError, base: &str) -> CliError {
    match e {
        OAuthError::Unreachable { .. } | OAuthError::Server { .. } => CliError::new(
            exit::UNAVAILABLE,
            format!("cannot reach the Mogplex account service at {base}"),
        )
        .cause(e.to_string())
        .hint("check your network connection, and MOGPLEX_URL if you set it"),
        OAuthError::IssuerMismatch { .. } => CliError::new(
            exit::FAILURE,
            "the account service did not identify itself correctly; not signing in",
        )
        .cause(e.to_string())
        .hint("set MOGPLEX_URL to the exact address of the account service"),
        OAuthError::Denied => {
            CliError::new(exit::FORBIDDEN, "the sign-in was denied in the browser")
                .hint("run `mogplex login` again to retry")
        }
        OAuthError::DeviceExpired => CliError::new(
            exit::FAILURE,
            "the device code expired before it was approved",
        )
        .hint("run `mogplex login --device` again"),
        OAuthError::NoDeviceFlow => {
            CliError::usage("this account service does not offer device codes")
                .hint("sign in with the browser: `mogplex login mogplex`")
        }
        OAuthError::Rejected { .. } | OAuthError::Protocol(_) => {
            CliError::new(exit::FAILURE, "the account service refused the sign-in")
                .cause(e.to_string())
                .hint("run `mogplex login` again")
        }
    }
}

/// Reads lines from stdin on a thread, for pasted addresses.
fn paste_channel() -> tokio::sync::mpsc::Receiver<String> {
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

pub fn login(ctx: &mut Ctx, method: Method) -> Result<(), CliError> {
    let spec = mogplex_providers::spec(Provider::Mogplex);
    let base = spec
        .base_url(&ctx.env)
        .map_err(|e| CliError::usage(e.to_string()).hint(e.hint()))?;
    let base_str = base.as_str().trim_end_matches('/').to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(exit::FAILURE, "cannot start the async runtime").cause(e.to_string())
        })?;
    let headless = headless_reason(&ctx.env);
    let env = ctx.env;
    let outcome = rt.block_on(async {
        let http = http_client().map_err(|e| oauth_error(e, &base_str))?;
        let client = OAuthClient::discover(http, base.clone()).await.map_err(|e| oauth_error(e, &base_str))?;
        let use_device = match method {
            Method::Device => true,
            Method::Browser => false,
            Method::Auto => match (&headless, client.meta.device_authorization_endpoint.is_some()) {
                (Some(reason), true) => {
                    eprintln!("note: {reason}, so signing in with a device code (a browser anywhere will do)");
                    true
                }
                (Some(reason), false) => {
                    eprintln!("note: {reason}; if no browser opens, sign in on another machine and paste the address it ends on here");
                    false
                }
                (None, _) => false,
            },
        };
        let tokens = if use_device { device(&client, &env, headless.is_none()).await? } else { browser(&client, &env, &base_str).await? };
        let user = client.user(&tokens.access_token).await.map_err(|e| oauth_error(e, &base_str))?;
        Ok::<_, CliError>((client.issuer().to_owned(), tokens, user))
    });
    let (issuer, tokens, user) = outcome?;
    ctx.redactor.add(&tokens.access_token);
    if let Some(r) = &tokens.refresh_token {
        ctx.redactor.add(r);
    }
    let entry = session::entry_from_tokens(&issuer, &tokens, user.as_ref(), None);
    session::store_sign_in(&ctx.store, entry)?;
    let who = user
        .as_ref()
        .map(|u| u.email.clone())
        .unwrap_or_else(|| "your Mogplex account".into());
    println!("Signed in as {who}");
    eprintln!("Stored the sign-in in {}", ctx.store.path().display());
    if ctx.env.var(Provider::Mogplex.env_var()).is_some() {
        eprintln!(
            "note: MOGPLEX_API_KEY is set in this shell and takes precedence over this sign-in; unset it to use the sign-in"
        );
    }
    let mut log = ctx.session_log();
    log.write(
        Level::Info,
        "login.mogplex",
        "signed in",
        json!({"issuer": issuer, "email": who}),
    );
    Ok(())
}

async fn browser(
    client: &OAuthClient,
    env: &dyn Env,
    base: &str,
) -> Result<mogplex_auth::oauth::TokenResponse, CliError> {
    // The hosted service registers the two fixed ports only; ours accepts any loopback port.
    let allow_ephemeral =
        client.issuer().trim_end_matches('/') != mogplex_protocol::DEFAULT_BASE_URL;
    let server = CallbackServer::bind(allow_ephemeral)
        .await
        .map_err(|e| match e {
            LoopbackError::PortsTaken(ports) => CliError::new(
                exit::FAILURE,
                format!(
                    "cannot receive the browser's answer: ports {ports:?} on 127.0.0.1 are taken"
                ),
            )
            .hint("close what uses them, or sign in with a device code: `mogplex login --device`"),
            other => CliError::new(exit::FAILURE, other.to_string()),
        })?;
    let pkce = Pkce::new().map_err(|e| oauth_error(e, base))?;
    let state = random_b64(32).map_err(|e| oauth_error(e, base))?;
    let url = client
        .authorize_url(&server.redirect_uri, &state, &pkce.challenge)
        .map_err(|e| oauth_error(e, base))?;
    let opened = open_browser(env, url.as_str());
    eprintln!(
        "{}",
        if opened {
            "Opening your browser to sign in to Mogplex."
        } else {
            "Open this address in a browser to sign in to Mogplex:"
        }
    );
    eprintln!("If it does not open, visit:\n\n  {url}\n");
    eprintln!(
        "Browser on another machine? Sign in there, then paste the address it ends on (…/auth/callback?code=…) here and press Enter."
    );
    eprintln!("Waiting for the sign-in (Ctrl+C to cancel)…");
    let redirect_uri = server.redirect_uri.clone();
    let callback = server
        .wait(
            &state,
            Some(client.issuer()),
            SIGN_IN_TIMEOUT,
            Some(paste_channel()),
            |n| match n {
                Notice::Rejected(m) => eprintln!("note: {m}"),
                Notice::BrowserError(m) => eprintln!(
                    "note: the browser reported an error ({m}); still waiting, you can try again"
                ),
            },
        )
        .await
        .map_err(|e| match e {
            LoopbackError::StoodDown => CliError::new(
                exit::FAILURE,
                "stopped waiting: another `mogplex login` started",
            )
            .hint("finish the sign-in in the other terminal"),
            LoopbackError::TimedOut(m) => CliError::new(
                exit::FAILURE,
                format!("no sign-in arrived within {m} minutes"),
            )
            .hint("run `mogplex login` again"),
            other => CliError::new(exit::FAILURE, other.to_string()),
        })?;
    client
        .exchange_code(callback.code.expose(), &redirect_uri, &pkce.verifier)
        .await
        .map_err(|e| oauth_error(e, base))
}

async fn device(
    client: &OAuthClient,
    env: &dyn Env,
    try_browser: bool,
) -> Result<mogplex_auth::oauth::TokenResponse, CliError> {
    let base = client.base.as_str().trim_end_matches('/').to_owned();
    let d = client
        .device_authorize()
        .await
        .map_err(|e| oauth_error(e, &base))?;
    eprintln!(
        "To sign in, open this address in any browser:\n\n  {}\n\nand enter the code:\n\n  {}\n",
        d.verification_uri, d.user_code
    );
    if let Some(complete) = &d.verification_uri_complete {
        eprintln!("(or open {complete}, which has the code filled in)");
        if try_browser {
            open_browser(env, complete);
        }
    }
    eprintln!(
        "Waiting for approval (the code is valid for {} minutes; Ctrl+C to cancel)…",
        d.expires_in / 60
    );
    client
        .poll_device(&d, || {})
        .await
        .map_err(|e| oauth_error(e, &base))
}

/// Revokes a refresh token at the advertised endpoint, best effort within 5 seconds. Returns a
/// note for the user when it could not be confirmed.
pub fn revoke_best_effort(env: &dyn Env, refresh_token: &mogplex_auth::Secret) -> Option<String> {
    let base = mogplex_providers::spec(Provider::Mogplex)
        .base_url(env)
        .ok()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let result = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), async {
            let http = http_client()?;
            let client = OAuthClient::discover(http, base.clone()).await?;
            client.revoke(refresh_token, "refresh_token").await
        })
        .await
    });
    match result {
        Ok(Ok(true)) => None,
        Ok(Ok(false)) => Some(format!("{base} offers no revocation endpoint, so the sign-in could not be revoked on the server")),
        Ok(Err(e)) => Some(format!("could not confirm the sign-out with the account service ({e}); the sign-in was removed from this machine")),
        Err(_) => Some("the account service did not answer within 5 seconds, so the sign-out was not confirmed there; the sign-in was removed from this machine".into()),
    }
}
