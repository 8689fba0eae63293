//! "Sign in with Mogplex": the browser flow with a loopback callback (and a paste box for a browser
//! on another machine) and the device code flow (SPEC section 4).
//!
//! This is the one implementation both front ends use. It never prints: everything the user
//! should see arrives as a [`Progress`] through a callback, which `mogplex login` writes to stderr
//! and the cockpit draws on its login screen. Cancelling is dropping the future (the listener
//! closes with it).

use crate::credentials::{CredentialError, CredentialStore, Updated, ops};
use crate::env::Env;
use crate::oauth::loopback::{CallbackServer, LoopbackError, Notice};
use crate::oauth::{
    ClientSettings, OAuthClient, OAuthError, Pkce, TokenResponse, UserInfo, http_client, random_b64,
};
use crate::secret::Secret;
use crate::session;
use std::time::Duration;
use tokio::sync::mpsc;
use url::Url;

/// How long a browser sign-in may take before the listener closes.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long logout waits for the revocation endpoint.
pub const REVOKE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The browser, unless this looks headless and the server offers device codes.
    Auto,
    Browser,
    Device,
}

/// What the user should hear while signing in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Why the sign-in goes the way it does (a headless machine), as one sentence.
    Note(String),
    /// The browser flow is waiting: the address to visit, and whether a browser was started.
    Browser { url: String, opened: bool },
    /// The device flow is waiting for approval.
    Device {
        uri: String,
        code: String,
        /// The address with the code filled in, when the server gives one.
        complete: Option<String>,
        minutes: u64,
    },
    /// A request was answered but did not end the wait.
    Notice(Notice),
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Loopback(#[from] LoopbackError),
}

/// A completed sign-in, not yet stored.
#[derive(Debug)]
pub struct SignedIn {
    pub issuer: String,
    pub tokens: TokenResponse,
    pub user: Option<UserInfo>,
}

impl SignedIn {
    pub fn email(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.email.as_str())
    }

    /// Every secret this sign-in brought, for redaction.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.tokens.access_token)
            .chain(self.tokens.refresh_token.as_ref())
            .chain(self.tokens.id_token.as_ref())
    }

    /// Stores it as an account (under the store's lock): it replaces the entry of the same
    /// account on the same service, else it is added beside the others; either way it becomes
    /// the default.
    pub fn store(
        &self,
        store: &dyn CredentialStore,
    ) -> Result<Updated<ops::SignedIn>, CredentialError> {
        let entry =
            session::entry_from_tokens(&self.issuer, &self.tokens, self.user.as_ref(), None);
        ops::store_sign_in(store, entry)
    }
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
/// platform's opener, in an environment without credential variables ([`crate::child_env`]). Returns whether something was started. Its output goes nowhere, so it
/// cannot draw over the cockpit.
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
    // The browser never sees a credential variable of this shell (SPEC section 2).
    cmd.env_clear()
        .envs(crate::child_env::child_env_of_process(
            &std::collections::BTreeMap::new(),
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}

/// Discovers the account service at `base` (checking that it names itself `base`).
pub async fn discover(base: Url) -> Result<OAuthClient, OAuthError> {
    OAuthClient::discover(http_client()?, base).await
}

/// Where the loopback listener keeps its stand-down secret: the Mogplex home, else the user's
/// runtime directory. A sign-in started in another home cannot stop this one.
pub(crate) fn stand_down_dir(env: &dyn Env) -> Option<std::path::PathBuf> {
    if let Ok(home) = crate::home::MogplexHome::from_env(env)
        && home.ensure().is_ok()
    {
        return Some(home.path().to_owned());
    }
    env.var_os("XDG_RUNTIME_DIR")
        .map(|d| std::path::PathBuf::from(d).join("mogplex"))
}

/// Signs in with the account service at `base`. `pasted` carries addresses pasted by the user
/// while the browser flow waits.
pub async fn sign_in(
    env: &(dyn Env + Sync),
    base: Url,
    method: Method,
    pasted: Option<mpsc::Receiver<String>>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<SignedIn, SignInError> {
    let settings = ClientSettings::from_env(env)?;
    let client = OAuthClient::discover_with(http_client()?, base, &settings).await?;
    let headless = headless_reason(env);
    let offers_device = client.meta.device_authorization_endpoint.is_some();
    let use_device = match method {
        Method::Device => true,
        Method::Browser => {
            if let Some(reason) = &headless {
                progress(Progress::Note(format!(
                    "{reason}; if no browser opens, sign in on another machine and paste the address it ends on"
                )));
            }
            false
        }
        Method::Auto => match (&headless, offers_device) {
            (Some(reason), true) => {
                progress(Progress::Note(format!(
                    "{reason}, so signing in with a device code (a browser anywhere will do)"
                )));
                true
            }
            (Some(reason), false) => {
                progress(Progress::Note(format!(
                    "{reason}; if no browser opens, sign in on another machine and paste the address it ends on"
                )));
                false
            }
            (None, _) => false,
        },
    };
    let (tokens, nonce) = if use_device {
        (
            device(&client, env, headless.is_none(), progress).await?,
            None,
        )
    } else {
        browser(&client, env, pasted, progress).await?
    };
    finish(&client, tokens, nonce.as_deref()).await
}

/// With the tokens issued: the ID token checked (when `openid` was asked for), then who signed
/// in. A sign-in that fails here revokes what it was issued first, so nothing it leaves behind
/// stays usable.
async fn finish(
    client: &OAuthClient,
    tokens: TokenResponse,
    nonce: Option<&str>,
) -> Result<SignedIn, SignInError> {
    let claims = match &tokens.id_token {
        Some(id) if client.wants_openid() => match client.validate_id_token(id, nonce).await {
            Ok(c) => Some(c),
            Err(e) => {
                revoke_issued(client, &tokens).await;
                return Err(e.into());
            }
        },
        _ => None,
    };
    let user = client.identify(&tokens.access_token, claims.as_ref()).await;
    Ok(SignedIn {
        issuer: client.issuer().to_owned(),
        tokens,
        user,
    })
}

/// Revokes the tokens of a sign-in that failed after they were issued, best effort, within
/// [`REVOKE_TIMEOUT`] each.
async fn revoke_issued(client: &OAuthClient, tokens: &TokenResponse) {
    let issued = tokens
        .refresh_token
        .iter()
        .map(|t| (t, "refresh_token"))
        .chain(std::iter::once((&tokens.access_token, "access_token")));
    for (token, hint) in issued {
        let _ = tokio::time::timeout(REVOKE_TIMEOUT, client.revoke(token, hint)).await;
    }
}

async fn browser(
    client: &OAuthClient,
    env: &(dyn Env + Sync),
    pasted: Option<mpsc::Receiver<String>>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(TokenResponse, Option<String>), SignInError> {
    // The hosted service registers the two fixed ports only; ours accepts any loopback port.
    let allow_ephemeral = !client.is_hosted();
    let server = CallbackServer::bind(allow_ephemeral, stand_down_dir(env).as_deref()).await?;
    let pkce = Pkce::new()?;
    let state = random_b64(32)?;
    let nonce = client.wants_openid().then(|| random_b64(32)).transpose()?;
    let url = client.authorize_url(
        &server.redirect_uri,
        &state,
        &pkce.challenge,
        nonce.as_deref(),
    )?;
    let opened = open_browser(env, url.as_str());
    progress(Progress::Browser {
        url: url.to_string(),
        opened,
    });
    let redirect_uri = server.redirect_uri.clone();
    let callback = server
        .wait(
            &state,
            Some(client.issuer()),
            SIGN_IN_TIMEOUT,
            pasted,
            |n| progress(Progress::Notice(n)),
        )
        .await?;
    let tokens = client
        .exchange_code(callback.code.expose(), &redirect_uri, &pkce.verifier)
        .await?;
    Ok((tokens, nonce))
}

/// The device flow (RFC 8628) on `client`, opening the address with the code in a browser when
/// `try_browser` (a display is there). Shared with the MCP sign-in.
pub(crate) async fn device(
    client: &OAuthClient,
    env: &(dyn Env + Sync),
    try_browser: bool,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<TokenResponse, OAuthError> {
    let d = client.device_authorize().await?;
    progress(Progress::Device {
        uri: d.verification_uri.clone(),
        code: d.user_code.clone(),
        complete: d.verification_uri_complete.clone(),
        minutes: d.expires_in / 60,
    });
    if try_browser && let Some(complete) = &d.verification_uri_complete {
        open_browser(env, complete);
    }
    client.poll_device(&d, || {}).await
}

/// How a revocation at logout went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    Confirmed,
    /// The server offers no revocation endpoint.
    NotOffered,
    Failed(String),
    TimedOut,
}

impl Revocation {
    /// A note for the user when the sign-out could not be confirmed on the server.
    pub fn note(&self, base: &str) -> Option<String> {
        match self {
            Revocation::Confirmed => None,
            Revocation::NotOffered => Some(format!("{base} offers no revocation endpoint, so the sign-in could not be revoked on the server")),
            Revocation::Failed(e) => Some(format!("could not confirm the sign-out with the account service ({e}); the sign-in was removed from this machine")),
            Revocation::TimedOut => Some("the account service did not answer within 5 seconds, so the sign-out was not confirmed there; the sign-in was removed from this machine".into()),
        }
    }
}

/// Revokes a refresh token at the advertised endpoint, within [`REVOKE_TIMEOUT`].
pub async fn revoke(base: Url, refresh_token: &Secret) -> Revocation {
    let attempt = tokio::time::timeout(REVOKE_TIMEOUT, async {
        let client = discover(base).await?;
        client.revoke(refresh_token, "refresh_token").await
    })
    .await;
    match attempt {
        Ok(Ok(true)) => Revocation::Confirmed,
        Ok(Ok(false)) => Revocation::NotOffered,
        Ok(Err(e)) => Revocation::Failed(e.to_string()),
        Err(_) => Revocation::TimedOut,
    }
}
