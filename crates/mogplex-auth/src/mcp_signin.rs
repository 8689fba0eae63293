//! Signing in to a remote MCP server, per the MCP authorization specification (revision
//! 2025-11-25), with the machinery of "Sign in with Mogplex" ([`crate::signin`]: the loopback
//! listener, the paste box, the browser opener):
//!
//! 1. the server's challenge: an unauthenticated request answered 401 (or 403 for a step-up)
//!    with `WWW-Authenticate` naming `resource_metadata` and `scope`;
//! 2. its RFC 9728 protected resource metadata, whose `resource` must be the server's own URL;
//! 3. the authorization server it names, discovered with the issuer checked (RFC 8414, then
//!    OpenID Connect discovery);
//! 4. the client: the definition's pre-registered client id, else the one mogplex registered
//!    there before (remembered per issuer in `auth.json`), else an RFC 7591 registration made
//!    now under the store's lock;
//! 5. authorization code with PKCE S256 (or, with `device`, the RFC 8628 device flow) and the
//!    RFC 8707 `resource` on the authorization (or device authorization) and token requests;
//!    the tokens stored per (account, server) under the lock.
//!
//! Like [`crate::signin`] it never prints: what the user should see arrives as a [`Progress`].

use crate::credentials::CredentialStore;
use crate::credentials::mcp::{
    McpAuthError, entry_from_tokens, forget_mcp_client, registered_client, store_mcp_token,
};
use crate::credentials::{McpClientEntry, ops::blocking};
use crate::env::Env;
use crate::oauth::loopback::{CallbackServer, LoopbackError};
use crate::oauth::mcp::{
    Challenge, canonical_resource, parse_challenge, protected_resource, register, scope_to_ask,
};
use crate::oauth::{ClientSettings, OAuthClient, OAuthError, Pkce, http_client, random_b64};
use crate::signin::{Progress, SIGN_IN_TIMEOUT, open_browser, stand_down_dir};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use url::Url;

/// How long the first, unauthenticated request may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which MCP server to sign in to, and for whom.
#[derive(Debug, Clone)]
pub struct McpLogin {
    /// The definition's name (`demo`).
    pub server: String,
    /// The definition's URL.
    pub url: String,
    /// The Mogplex account entry whose definitions name the server (`None`: no stored account).
    pub account: Option<String>,
    /// A client id the definition names (registered beforehand by the server's administrator).
    pub client_id: Option<String>,
    /// The scope to ask for instead of what the server's challenge names (a step-up after 403).
    pub scope: Option<String>,
    /// The device flow (RFC 8628) instead of the browser and the loopback listener.
    pub device: bool,
}

/// A completed, stored MCP sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpSignedIn {
    pub server: String,
    pub resource: String,
    /// The authorization server.
    pub issuer: String,
    /// The scope granted (or asked for, when the answer does not say).
    pub scope: Option<String>,
    /// Whether mogplex registered itself with the authorization server during this sign-in.
    pub registered: bool,
    /// Whether tokens of this server were stored already (and are replaced).
    pub replaced: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum McpSignInError {
    #[error("the MCP server's address {0:?} is not an absolute http or https URL")]
    BadUrl(String),
    /// The server answered without asking for a sign-in.
    #[error("the MCP server {server} does not ask for a sign-in")]
    NotNeeded { server: String },
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Loopback(#[from] LoopbackError),
    #[error(transparent)]
    Store(#[from] McpAuthError),
    /// A device sign-in needs a client registered for the device grant, and the authorization
    /// server refused to register one (`OAuthError::RegistrationRefused`).
    #[error(
        "the authorization server of the MCP server {server} registers no client for the device flow"
    )]
    NoDeviceClient { server: String, refused: OAuthError },
}

impl From<crate::credentials::CredentialError> for McpSignInError {
    fn from(e: crate::credentials::CredentialError) -> Self {
        McpSignInError::Store(McpAuthError::Credentials(e))
    }
}

/// What an unauthenticated request to the server says about signing in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// 401 (or 403) with a Bearer challenge (its parameters may all be absent).
    Challenge(Challenge),
    /// 401 or 403 without a Bearer challenge.
    Refused(u16),
    /// Answered: no sign-in needed.
    Open,
}

/// Sends the MCP `initialize` request without a token and reads the answer's challenge.
pub async fn probe(http: &reqwest::Client, url: &str) -> Result<Probe, OAuthError> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "mogplex", "version": env!("CARGO_PKG_VERSION")},
        },
    });
    let resp = http
        .post(url)
        .timeout(PROBE_TIMEOUT)
        .header(
            reqwest::header::ACCEPT,
            "application/json, text/event-stream",
        )
        .json(&body)
        .send()
        .await
        .map_err(|e| crate::oauth::unreachable_err(url, e))?;
    let status = resp.status().as_u16();
    if matches!(status, 401 | 403) {
        let challenge = resp
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_challenge);
        return Ok(match challenge {
            Some(c) => Probe::Challenge(c),
            None => Probe::Refused(status),
        });
    }
    if resp.status().is_server_error() {
        return Err(OAuthError::Server {
            url: url.to_owned(),
            status,
        });
    }
    Ok(Probe::Open)
}

/// The authorization server at `issuer` as the client `client_id` (for refreshes and sign-ins):
/// discovered with the issuer checked; no scope of its own (each request names what it needs).
pub async fn authorization_server(
    issuer: String,
    client_id: String,
) -> Result<OAuthClient, OAuthError> {
    let base: Url = issuer
        .parse()
        .map_err(|e: url::ParseError| OAuthError::Protocol(format!("{issuer}: {e}")))?;
    let settings = ClientSettings {
        client_id,
        scopes: Vec::new(),
        scopes_from_env: false,
    };
    OAuthClient::discover_with(http_client()?, base, &settings).await
}

/// Signs in to the MCP server `login` names and stores its tokens in `store`. `pasted` carries
/// addresses pasted by the user while the browser flow waits.
pub async fn sign_in(
    env: &(dyn Env + Sync),
    store: &Arc<dyn CredentialStore>,
    login: &McpLogin,
    pasted: Option<mpsc::Receiver<String>>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<McpSignedIn, McpSignInError> {
    let resource =
        canonical_resource(&login.url).ok_or_else(|| McpSignInError::BadUrl(login.url.clone()))?;
    let http = http_client()?;
    let challenge = match probe(&http, &login.url).await? {
        Probe::Challenge(c) => Some(c),
        Probe::Refused(_) => None,
        // A step-up is asked for by a tool call, not by the handshake: sign in anyway.
        Probe::Open if login.scope.is_some() => None,
        Probe::Open => {
            return Err(McpSignInError::NotNeeded {
                server: login.server.clone(),
            });
        }
    };
    let meta = protected_resource(&http, &resource, challenge.as_ref()).await?;
    let scope = login
        .scope
        .clone()
        .or_else(|| scope_to_ask(challenge.as_ref(), &meta));
    // The first authorization server listed (they are checked to be https or loopback).
    let issuer = meta.authorization_servers[0].clone();
    let base: Url = issuer
        .parse()
        .map_err(|e: url::ParseError| OAuthError::Protocol(format!("{issuer}: {e}")))?;
    let settings = ClientSettings {
        client_id: login.client_id.clone().unwrap_or_default(),
        scopes: scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        scopes_from_env: false,
    };
    let mut client = OAuthClient::discover_with(http.clone(), base, &settings).await?;
    client.resource = Some(resource.clone());
    let issuer = client.issuer().to_owned();

    // The browser path listens on the loopback; the device path registers the same redirect
    // (the first fixed port) so that one registration serves both.
    let server = if login.device {
        None
    } else {
        Some(
            CallbackServer::bind(!client.is_hosted(), stand_down_dir(env).as_deref())
                .await?
                .success_title(&format!("Signed in to the MCP server {}", login.server)),
        )
    };
    let redirect = server.as_ref().map_or_else(
        || {
            mogplex_protocol::oauth::loopback_redirect_uri(
                mogplex_protocol::oauth::LOOPBACK_PORTS[0],
            )
        },
        |s| s.redirect_uri.clone(),
    );
    let reg = Registration {
        store,
        http: &http,
        meta: &client.meta,
        issuer: &issuer,
        redirect: &redirect,
        fixed: login.client_id.as_deref(),
        device: login.device,
        server: &login.server,
    };
    let (mut client_id, mut registered) = reg.client().await?;
    client.client_id = client_id.clone();

    let tokens = match server {
        Some(server) => {
            let pkce = Pkce::new()?;
            let state = random_b64(32)?;
            let url = client.authorize_url(&redirect, &state, &pkce.challenge, None)?;
            let opened = open_browser(env, url.as_str());
            progress(Progress::Browser {
                url: url.to_string(),
                opened,
            });
            let callback = server
                .wait(&state, Some(&issuer), SIGN_IN_TIMEOUT, pasted, |n| {
                    progress(Progress::Notice(n))
                })
                .await?;
            client
                .exchange_code(callback.code.expose(), &redirect, &pkce.verifier)
                .await
        }
        None => {
            let try_browser = crate::signin::headless_reason(env).is_none();
            match crate::signin::device(&client, env, try_browser, progress).await {
                // A registration made before the device grant was asked for (or one the server
                // forgot): registered again, once.
                Err(e) if reg.stale(&e) => {
                    reg.forget(&client_id).await;
                    (client_id, registered) = reg.client().await?;
                    client.client_id = client_id.clone();
                    crate::signin::device(&client, env, try_browser, progress).await
                }
                r => r,
            }
        }
    };
    let tokens = match tokens {
        Ok(t) => t,
        Err(e) => {
            // A registration the server no longer knows is forgotten, so the next sign-in
            // registers again instead of failing the same way.
            if reg.stale(&e) {
                reg.forget(&client_id).await;
            }
            return Err(e.into());
        }
    };
    let entry = entry_from_tokens(
        login.account.as_deref(),
        &login.server,
        &resource,
        &issuer,
        &client_id,
        scope.as_deref(),
        &tokens,
        None,
    );
    let granted = entry.scope.clone();
    let s = store.clone();
    let updated = blocking(move || store_mcp_token(&*s, entry)).await?;
    // The sign-in this one replaces is revoked at its authorization server (best effort), so
    // signing in again leaves no live grant behind.
    let replaced = updated.value.is_some();
    if let Some(old) = updated.value
        && let Some(rt) = old.refresh()
        && tokens.refresh_token.as_ref() != Some(rt)
    {
        let _ = tokio::time::timeout(
            crate::signin::REVOKE_TIMEOUT,
            client.revoke(rt, "refresh_token"),
        )
        .await;
    }
    Ok(McpSignedIn {
        server: login.server.clone(),
        resource,
        issuer,
        scope: granted,
        registered,
        replaced,
    })
}

/// Which client mogplex is at an authorization server: the definition's, else the one
/// registered there before, else one registered now (RFC 7591), under the store's lock.
struct Registration<'a> {
    store: &'a Arc<dyn CredentialStore>,
    http: &'a reqwest::Client,
    meta: &'a crate::oauth::Metadata,
    issuer: &'a str,
    redirect: &'a str,
    /// A client id the definition names: never registered, never forgotten.
    fixed: Option<&'a str>,
    /// Register for the device grant too.
    device: bool,
    /// The definition's name, for messages.
    server: &'a str,
}

impl Registration<'_> {
    /// The client id, and whether it was registered just now.
    async fn client(&self) -> Result<(String, bool), McpSignInError> {
        if let Some(id) = self.fixed {
            return Ok((id.to_owned(), false));
        }
        let (http, meta, redirect, device) = (self.http, self.meta, self.redirect, self.device);
        let (c, new) = registered_client(self.store, self.issuer, || async move {
            let (client_id, redirect_uris) = register(http, meta, redirect, device).await?;
            Ok(McpClientEntry {
                issuer: String::new(),
                client_id,
                redirect_uris,
                registered_at: None,
                extra: Default::default(),
            })
        })
        .await
        .map_err(|e| match e {
            McpAuthError::OAuth(refused @ OAuthError::RegistrationRefused { .. }) if device => {
                McpSignInError::NoDeviceClient {
                    server: self.server.to_owned(),
                    refused,
                }
            }
            e => e.into(),
        })?;
        Ok((c.client_id, new))
    }

    /// Whether `e` says the remembered registration cannot be used (unknown to the server, or
    /// registered without the grant asked for).
    fn stale(&self, e: &OAuthError) -> bool {
        use mogplex_protocol::oauth::error_code::{INVALID_CLIENT, UNAUTHORIZED_CLIENT};
        self.fixed.is_none()
            && matches!(e, OAuthError::Rejected { code, .. } if code == INVALID_CLIENT || code == UNAUTHORIZED_CLIENT)
    }

    async fn forget(&self, client_id: &str) {
        let (s, i, c) = (
            self.store.clone(),
            self.issuer.to_owned(),
            client_id.to_owned(),
        );
        let _ = blocking(move || forget_mcp_client(&*s, &i, &c)).await;
    }
}
