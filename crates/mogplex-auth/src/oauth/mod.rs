//! The OAuth 2.1 client of SPEC section 4: discovery with an issuer check ([`discovery`]),
//! authorization code with PKCE S256 (and a `nonce` with `openid`, the ID token checked by
//! [`id_token`]), refresh, revocation, the device grant, and the account's identity, all on one
//! HTTP client that never follows redirects on token calls. It works with the Mogplex service and
//! with any standards-compliant authorization server: what the metadata advertises decides what
//! is used, and token errors are classified by RFC 6749 section 5.2's status and body.

pub mod discovery;
pub mod id_token;
pub mod loopback;
pub mod mcp;
mod pkce;

pub use pkce::{Pkce, random_b64};

use crate::env::Env;
use crate::secret::Secret;
use reqwest::Url;
use std::time::Duration;

use mogplex_protocol::oauth::{
    AUTHORIZATION_CODE_GRANT, PKCE_METHOD, REFRESH_TOKEN_GRANT, error_code,
};
pub use mogplex_protocol::oauth::{
    CLIENT_ID, DEFAULT_SCOPE as SCOPE, DEVICE_CODE_GRANT as DEVICE_GRANT,
};
use mogplex_protocol::{OAuthErrorBody, UserResponse, routes};

/// RFC 8414 metadata, as the server publishes it (`mogplex_protocol`).
pub type Metadata = mogplex_protocol::AuthorizationServerMetadata;
/// A token response whose tokens are held as [`Secret`]s.
pub type TokenResponse = mogplex_protocol::TokenResponse<Secret>;
/// An RFC 8628 device authorization whose device code is held as a [`Secret`].
pub type DeviceAuthorization = mogplex_protocol::DeviceAuthorizationResponse<Secret>;
/// The account behind a bearer (`GET /api/auth/user`).
pub type UserInfo = mogplex_protocol::AccountUser;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// A connection failure or a timeout: transient.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// A 5xx (or another answer that says nothing about the credential): transient.
    #[error("the server at {url} answered HTTP {status}")]
    Server { url: String, status: u16 },
    #[error("the server's answer was not understood: {0}")]
    Protocol(String),
    #[error("the server says it is {found}, but mogplex was pointed at {expected}")]
    IssuerMismatch { expected: String, found: String },
    /// The server cannot be used as it is configured: `problem` says what is wrong, `fix` what its
    /// administrator (or the user) should change.
    #[error("{problem}")]
    Misconfigured {
        server: String,
        problem: String,
        fix: String,
    },
    /// `MOGPLEX_CLIENT_ID` or `MOGPLEX_SCOPES` cannot be used.
    #[error("{variable} {problem}")]
    Settings {
        variable: &'static str,
        problem: String,
    },
    /// An RFC 6749 §5.2 error body: `invalid_grant` and friends mean the credential is gone.
    #[error("{code}: {description}")]
    Rejected { code: String, description: String },
    /// A 400 or 401 from the token endpoint without a usable §5.2 body.
    #[error("the token endpoint {url} refused the request (HTTP {status}) without saying why")]
    RejectedWithoutBody { url: String, status: u16 },
    #[error("the server does not offer the device code flow")]
    NoDeviceFlow,
    #[error("the device code expired before it was approved")]
    DeviceExpired,
    #[error("the sign-in was denied in the browser")]
    Denied,
    /// The authorization server refused to register mogplex as a client (RFC 7591 §3.2.2).
    #[error(
        "the authorization server at {server} refused to register mogplex as a client: {reason}"
    )]
    RegistrationRefused { server: String, reason: String },
}

impl OAuthError {
    /// A refresh that failed this way will never succeed: the user must sign in again. That is
    /// `invalid_grant` (and a client the server no longer knows), or a 400/401 with no usable body
    /// (RFC 6749 §5.2 allows no other meaning for them on a refresh). 5xx, timeouts and
    /// connection failures are transient.
    pub fn is_permanent(&self) -> bool {
        match self {
            OAuthError::Rejected { code, .. } => [
                error_code::INVALID_GRANT,
                error_code::INVALID_CLIENT,
                error_code::UNAUTHORIZED_CLIENT,
            ]
            .contains(&code.as_str()),
            OAuthError::RejectedWithoutBody { .. } => true,
            _ => false,
        }
    }
}

/// The client's identity at the authorization server: `MOGPLEX_CLIENT_ID` (default
/// `mogplex-cli`) and `MOGPLEX_SCOPES` (default SPEC section 4's scope), for a self-hosted or
/// third-party server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub client_id: String,
    /// The scopes to ask for, before narrowing to what the server lists.
    pub scopes: Vec<String>,
    /// Whether `scopes` came from `MOGPLEX_SCOPES`.
    pub scopes_from_env: bool,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            client_id: CLIENT_ID.to_owned(),
            scopes: SCOPE.split(' ').map(str::to_owned).collect(),
            scopes_from_env: false,
        }
    }
}

/// RFC 6749 §3.3 `scope-token` (and, for the client id, §A.1 `VSCHAR` without spaces).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

impl ClientSettings {
    pub const CLIENT_ID_VAR: &'static str = "MOGPLEX_CLIENT_ID";
    pub const SCOPES_VAR: &'static str = "MOGPLEX_SCOPES";

    /// The settings from the environment; `Err` names the variable that cannot be used.
    pub fn from_env(env: &dyn Env) -> Result<Self, OAuthError> {
        let mut s = Self::default();
        if let Some(id) = env.var(Self::CLIENT_ID_VAR) {
            let id = id.trim();
            if !is_token(id) {
                return Err(OAuthError::Settings {
                    variable: Self::CLIENT_ID_VAR,
                    problem: "must be one client id, without spaces or control characters".into(),
                });
            }
            s.client_id = id.to_owned();
        }
        if let Some(scopes) = env.var(Self::SCOPES_VAR) {
            let list: Vec<String> = scopes
                .split([' ', ','])
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            if list.is_empty() || !list.iter().all(|t| is_token(t)) {
                return Err(OAuthError::Settings {
                    variable: Self::SCOPES_VAR,
                    problem: "must be scopes separated by spaces, such as \"openid email offline_access\"".into(),
                });
            }
            s.scopes = list;
            s.scopes_from_env = true;
        }
        Ok(s)
    }
}

/// One HTTP client for every OAuth and account call: proxies from the environment, extra CAs from
/// `SSL_CERT_FILE`, no redirects.
pub fn http_client() -> Result<reqwest::Client, OAuthError> {
    let b = reqwest::Client::builder()
        .user_agent(concat!("mogplex/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none());
    with_extra_roots(b)
        .map_err(OAuthError::Protocol)?
        .build()
        .map_err(|e| OAuthError::Protocol(e.to_string()))
}

/// Adds the certificate authorities of `SSL_CERT_FILE` (a PEM bundle), when set, to a client
/// builder: every client mogplex builds trusts the same roots, and speaks TLS through rustls with
/// ring (installed here as the process's provider, before the first client is built).
pub fn with_extra_roots(mut b: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, String> {
    // Err only when a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        let shown = std::path::Path::new(&path).display().to_string();
        let pem = std::fs::read(&path)
            .map_err(|e| format!("cannot read SSL_CERT_FILE ({shown}): {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("SSL_CERT_FILE is not a PEM bundle: {e}"))?;
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    Ok(b)
}

#[derive(Debug, Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    pub base: Url,
    pub meta: Metadata,
    /// The client id sent in every request.
    pub client_id: String,
    /// The scope asked for: the settings' scopes narrowed to `scopes_supported` when listed.
    pub scope: String,
    /// The RFC 8707 resource (an MCP server) the tokens are for: sent on the authorization
    /// request and on every token request (code, refresh, device) when set.
    pub resource: Option<String>,
}

pub(crate) fn unreachable_err(url: &str, e: reqwest::Error) -> OAuthError {
    let mut root: &dyn std::error::Error = &e;
    while let Some(s) = root.source() {
        root = s;
    }
    OAuthError::Unreachable {
        url: url.to_owned(),
        reason: if e.is_timeout() {
            "timed out".into()
        } else {
            root.to_string()
        },
    }
}

impl OAuthClient {
    /// Discovers the server at `base` ([`discovery`]) with the client settings of this
    /// process's environment (`MOGPLEX_CLIENT_ID`, `MOGPLEX_SCOPES`).
    pub async fn discover(http: reqwest::Client, base: Url) -> Result<Self, OAuthError> {
        let settings = ClientSettings::from_env(&crate::env::ProcessEnv)?;
        Self::discover_with(http, base, &settings).await
    }

    /// Finds the metadata of the server at `base` (RFC 8414 with path insertion, then OpenID
    /// Connect discovery), checks it, and settles the client id and scope.
    pub async fn discover_with(
        http: reqwest::Client,
        base: Url,
        settings: &ClientSettings,
    ) -> Result<Self, OAuthError> {
        let expected = discovery::normalize(base.as_str()).to_owned();
        let mut server_error = None;
        let mut not_metadata = None;
        let mut tried = Vec::new();
        for (url, kind) in discovery::candidates(&base) {
            let resp = http
                .get(&url)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| unreachable_err(&url, e))?;
            let status = resp.status();
            if status.is_server_error() {
                server_error.get_or_insert(OAuthError::Server {
                    url: url.clone(),
                    status: status.as_u16(),
                });
                tried.push(url);
                continue;
            }
            if !status.is_success() {
                tried.push(url);
                continue;
            }
            let body = resp.text().await.map_err(|e| unreachable_err(&url, e))?;
            let Ok(doc) = serde_json::from_str::<serde_json::Value>(&body) else {
                not_metadata.get_or_insert_with(|| url.clone());
                tried.push(url);
                continue;
            };
            let meta = discovery::check(&url, kind, &expected, doc)?;
            let scope = narrow_scopes(settings, &meta, &expected)?;
            return Ok(Self {
                http,
                base,
                meta,
                client_id: settings.client_id.clone(),
                scope,
                resource: None,
            });
        }
        if let Some(e) = server_error {
            return Err(e);
        }
        Err(OAuthError::Misconfigured {
            server: expected.clone(),
            problem: format!(
                "it publishes no authorization server metadata (tried {}{})",
                tried.join(", "),
                not_metadata
                    .map(|url| format!("; {url} answered with something that is not JSON"))
                    .unwrap_or_default()
            ),
            fix: "set MOGPLEX_URL to the server's issuer; the server must publish RFC 8414 or OpenID Connect discovery metadata".into(),
        })
    }

    /// Whether this sign-in asks for an ID token.
    pub fn wants_openid(&self) -> bool {
        self.scope.split(' ').any(|s| s == "openid")
    }

    pub fn issuer(&self) -> &str {
        &self.meta.issuer
    }

    /// The authorization request. `nonce` is sent when `openid` is asked for. An OpenID
    /// provider grants `offline_access` (the refresh token) only with `prompt=consent` (OpenID
    /// Connect Core section 11), so other servers than the hosted service are asked for it.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        challenge: &str,
        nonce: Option<&str>,
    ) -> Result<Url, OAuthError> {
        let mut u = Url::parse(&self.meta.authorization_endpoint)
            .map_err(|e| OAuthError::Protocol(e.to_string()))?;
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", redirect_uri);
            // An MCP server may name no scope at all (then none is asked for).
            if !self.scope.is_empty() {
                q.append_pair("scope", &self.scope);
            }
            q.append_pair("state", state)
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", PKCE_METHOD);
            if let Some(n) = nonce {
                q.append_pair("nonce", n);
            }
            if let Some(r) = &self.resource {
                q.append_pair("resource", r);
            }
            if self.asks_consent() {
                q.append_pair("prompt", "consent");
            }
        }
        Ok(u)
    }

    /// Whether to send `prompt=consent`: `openid` with `offline_access`, to a server other than
    /// the hosted service (OpenID Connect Core section 11).
    fn asks_consent(&self) -> bool {
        let offline = self.scope.split(' ').any(|s| s == "offline_access");
        offline && self.wants_openid() && !self.is_hosted()
    }

    /// Whether this is the hosted Mogplex service (which registers exact redirect URIs).
    pub fn is_hosted(&self) -> bool {
        discovery::normalize(self.issuer()) == mogplex_protocol::DEFAULT_BASE_URL
    }

    /// A token request: `form`, and the resource when this client has one.
    async fn token_call(&self, form: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        let url = &self.meta.token_endpoint;
        let mut form = form.to_vec();
        if let Some(r) = &self.resource {
            form.push(("resource", r));
        }
        let resp = self
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| unreachable_err(url, e))?;
        Self::token_answer(url, resp).await
    }

    async fn token_answer(url: &str, resp: reqwest::Response) -> Result<TokenResponse, OAuthError> {
        let status = resp.status();
        let body = resp.text().await.map_err(|e| unreachable_err(url, e))?;
        if status.is_success() {
            return serde_json::from_str(&body)
                .map_err(|e| OAuthError::Protocol(format!("token response: {e}")));
        }
        match serde_json::from_str::<OAuthErrorBody>(&body) {
            Ok(e) if status.is_client_error() && !e.error.is_empty() => Err(OAuthError::Rejected {
                code: e.error,
                description: e.error_description.unwrap_or_default(),
            }),
            _ if matches!(status.as_u16(), 400 | 401) => Err(OAuthError::RejectedWithoutBody {
                url: url.to_owned(),
                status: status.as_u16(),
            }),
            _ => Err(OAuthError::Server {
                url: url.to_owned(),
                status: status.as_u16(),
            }),
        }
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &Secret,
    ) -> Result<TokenResponse, OAuthError> {
        self.token_call(&[
            ("grant_type", AUTHORIZATION_CODE_GRANT),
            ("client_id", &self.client_id),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose()),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TokenResponse, OAuthError> {
        self.token_call(&[
            ("grant_type", REFRESH_TOKEN_GRANT),
            ("client_id", &self.client_id),
            ("refresh_token", refresh_token.expose()),
        ])
        .await
    }

    /// RFC 7009. `Ok(false)` when the server advertises no revocation endpoint.
    pub async fn revoke(&self, token: &Secret, hint: &str) -> Result<bool, OAuthError> {
        let Some(url) = &self.meta.revocation_endpoint else {
            return Ok(false);
        };
        let resp = self
            .http
            .post(url)
            .timeout(Duration::from_secs(5))
            .form(&[
                ("token", token.expose()),
                ("token_type_hint", hint),
                ("client_id", &self.client_id),
            ])
            .send()
            .await
            .map_err(|e| unreachable_err(url, e))?;
        if resp.status().is_success() {
            Ok(true)
        } else {
            Err(OAuthError::Server {
                url: url.clone(),
                status: resp.status().as_u16(),
            })
        }
    }

    pub async fn device_authorize(&self) -> Result<DeviceAuthorization, OAuthError> {
        let url = self
            .meta
            .device_authorization_endpoint
            .as_ref()
            .ok_or(OAuthError::NoDeviceFlow)?;
        let mut form = vec![("client_id", self.client_id.as_str())];
        if !self.scope.is_empty() {
            form.push(("scope", &self.scope));
        }
        if let Some(r) = &self.resource {
            form.push(("resource", r));
        }
        let resp = self
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| unreachable_err(url, e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(match serde_json::from_str::<OAuthErrorBody>(&body) {
                Ok(e) if status.is_client_error() => OAuthError::Rejected {
                    code: e.error,
                    description: e.error_description.unwrap_or_default(),
                },
                _ => OAuthError::Server {
                    url: url.clone(),
                    status: status.as_u16(),
                },
            });
        }
        resp.json()
            .await
            .map_err(|e| OAuthError::Protocol(format!("device authorization: {e}")))
    }

    /// Polls until approved, denied or expired: at the given interval (5 s by default), 5 s more
    /// after each `slow_down`, never again after success. `on_wait` hears each pending poll.
    pub async fn poll_device(
        &self,
        d: &DeviceAuthorization,
        mut on_wait: impl FnMut(),
    ) -> Result<TokenResponse, OAuthError> {
        let mut interval = Duration::from_secs(d.interval.unwrap_or(5).max(1));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(d.expires_in);
        loop {
            tokio::time::sleep(interval).await;
            if tokio::time::Instant::now() >= deadline {
                return Err(OAuthError::DeviceExpired);
            }
            let r = self
                .token_call(&[
                    ("grant_type", DEVICE_GRANT),
                    ("client_id", &self.client_id),
                    ("device_code", d.device_code.expose()),
                ])
                .await;
            match r {
                Ok(t) => return Ok(t),
                Err(OAuthError::Rejected { code, .. })
                    if code == error_code::AUTHORIZATION_PENDING =>
                {
                    on_wait()
                }
                Err(OAuthError::Rejected { code, .. }) if code == error_code::SLOW_DOWN => {
                    interval += Duration::from_secs(5)
                }
                Err(OAuthError::Rejected { code, .. }) if code == error_code::EXPIRED_TOKEN => {
                    return Err(OAuthError::DeviceExpired);
                }
                Err(OAuthError::Rejected { code, .. }) if code == error_code::ACCESS_DENIED => {
                    return Err(OAuthError::Denied);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The keys at the advertised `jwks_uri`, for checking ID tokens.
    pub async fn keys(&self) -> Result<id_token::KeySet, OAuthError> {
        let server = discovery::normalize(self.issuer()).to_owned();
        let Some(url) = &self.meta.jwks_uri else {
            return Err(OAuthError::Misconfigured {
                server,
                problem: "it returned an ID token but advertises no jwks_uri to check it with"
                    .into(),
                fix: "have its administrator publish jwks_uri in the metadata".into(),
            });
        };
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unreachable_err(url, e))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(OAuthError::Server {
                url: url.clone(),
                status: status.as_u16(),
            });
        }
        let body = resp.text().await.map_err(|e| unreachable_err(url, e))?;
        if !status.is_success() {
            return Err(OAuthError::Misconfigured {
                server,
                problem: format!("its jwks_uri {url} answered HTTP {}", status.as_u16()),
                fix: "have its administrator serve the signing keys at jwks_uri".into(),
            });
        }
        id_token::KeySet::parse(&body).map_err(|why| OAuthError::Misconfigured {
            server,
            problem: format!("its JWKS at {url} cannot be used: {why}"),
            fix: "have its administrator serve a JSON Web Key Set (RFC 7517) at jwks_uri".into(),
        })
    }

    /// Checks the ID token of a sign-in that asked for `openid` (see [`id_token`]).
    pub async fn validate_id_token(
        &self,
        token: &Secret,
        nonce: Option<&str>,
    ) -> Result<id_token::IdClaims, OAuthError> {
        let keys = self.keys().await?;
        id_token::validate(token, self.issuer(), &self.client_id, nonce, &keys)
    }

    /// The OpenID Connect userinfo endpoint's account, when it is advertised and answers; `None`
    /// otherwise (it is optional). `sub` must be `expected_sub` when an ID token named one.
    pub async fn userinfo(&self, access: &Secret, expected_sub: Option<&str>) -> Option<UserInfo> {
        let url = self.meta.userinfo_endpoint.as_ref()?;
        let resp = self
            .http
            .get(url)
            .bearer_auth(access.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let claims: id_token::IdClaims = resp.json().await.ok()?;
        if expected_sub.is_some_and(|s| s != claims.sub) {
            return None;
        }
        Some(UserInfo {
            id: claims.sub,
            email: claims.email?,
            name: claims.name,
            created_at: None,
        })
    }

    /// Who signed in: the Mogplex user endpoint, else the ID token's claims, else userinfo. Every
    /// one of them is optional, so none of them failing fails the sign-in.
    pub async fn identify(
        &self,
        access: &Secret,
        id: Option<&id_token::IdClaims>,
    ) -> Option<UserInfo> {
        if let Ok(Some(u)) = self.user(access).await {
            return Some(u);
        }
        if let Some(c) = id
            && let Some(email) = &c.email
        {
            return Some(UserInfo {
                id: c.sub.clone(),
                email: email.clone(),
                name: c.name.clone(),
                created_at: None,
            });
        }
        self.userinfo(access, id.map(|c| c.sub.as_str())).await
    }

    /// `GET /api/auth/user`.
    pub async fn user(&self, access: &Secret) -> Result<Option<UserInfo>, OAuthError> {
        let url = format!(
            "{}{}",
            self.base.as_str().trim_end_matches('/'),
            routes::USER
        );
        let resp = self
            .http
            .get(&url)
            .bearer_auth(access.expose())
            .send()
            .await
            .map_err(|e| unreachable_err(&url, e))?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(OAuthError::Server {
                url,
                status: resp.status().as_u16(),
            });
        }
        let w: UserResponse = resp
            .json()
            .await
            .map_err(|e| OAuthError::Protocol(format!("user: {e}")))?;
        Ok(w.user)
    }
}

/// The scope to ask for: the settings' scopes, narrowed to `scopes_supported` when the server
/// lists it. Nothing left is an error naming what the server offers. Settings without scopes (an
/// MCP server that names none) ask for none.
fn narrow_scopes(
    settings: &ClientSettings,
    meta: &Metadata,
    server: &str,
) -> Result<String, OAuthError> {
    if settings.scopes.is_empty() {
        return Ok(String::new());
    }
    let kept: Vec<&str> = match &meta.scopes_supported {
        Some(offered) => settings
            .scopes
            .iter()
            .filter(|s| offered.iter().any(|o| o == *s))
            .map(String::as_str)
            .collect(),
        None => settings.scopes.iter().map(String::as_str).collect(),
    };
    if kept.is_empty() {
        let offered = meta
            .scopes_supported
            .as_ref()
            .map(|o| o.join(" "))
            .unwrap_or_default();
        return Err(OAuthError::Misconfigured {
            server: server.to_owned(),
            problem: format!(
                "it offers none of the scopes mogplex asks for ({}); it lists: {offered}",
                settings.scopes.join(" ")
            ),
            fix: format!(
                "set {} to scopes it offers, such as \"{offered}\"",
                ClientSettings::SCOPES_VAR
            ),
        });
    }
    Ok(kept.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;

    #[test]
    fn settings_come_from_the_environment_and_are_checked() {
        let s = ClientSettings::from_env(&MapEnv::default()).unwrap();
        assert_eq!(
            (s.client_id.as_str(), s.scopes.join(" ")),
            (CLIENT_ID, SCOPE.to_owned())
        );
        let s = ClientSettings::from_env(&MapEnv::new([
            ("MOGPLEX_CLIENT_ID", "cli-42"),
            ("MOGPLEX_SCOPES", "openid, email  offline_access"),
        ]))
        .unwrap();
        assert_eq!(s.client_id, "cli-42");
        assert_eq!(s.scopes, ["openid", "email", "offline_access"]);
        for (k, v) in [
            ("MOGPLEX_CLIENT_ID", "a b"),
            ("MOGPLEX_SCOPES", "ok \u{1b}[31m"),
            ("MOGPLEX_SCOPES", " , "),
        ] {
            let e = ClientSettings::from_env(&MapEnv::new([(k, v)])).unwrap_err();
            assert!(
                matches!(e, OAuthError::Settings { variable, .. } if variable == k),
                "{e}"
            );
        }
    }

    #[test]
    fn scopes_are_narrowed_to_what_the_server_lists() {
        let mut meta = Metadata::default();
        let s = ClientSettings::default();
        assert_eq!(narrow_scopes(&s, &meta, "x").unwrap(), SCOPE);
        meta.scopes_supported = Some(vec![
            "openid".into(),
            "email".into(),
            "offline_access".into(),
            "other".into(),
        ]);
        assert_eq!(
            narrow_scopes(&s, &meta, "x").unwrap(),
            "openid email offline_access"
        );
        meta.scopes_supported = Some(vec!["other".into()]);
        let e = narrow_scopes(&s, &meta, "x").unwrap_err();
        assert!(e.to_string().contains("offers none"), "{e}");
    }

    #[test]
    fn refresh_failures_are_classified_by_status_and_body() {
        let rejected = |code: &str| OAuthError::Rejected {
            code: code.into(),
            description: String::new(),
        };
        assert!(rejected("invalid_grant").is_permanent());
        assert!(!rejected("invalid_request").is_permanent());
        assert!(
            OAuthError::RejectedWithoutBody {
                url: "u".into(),
                status: 400
            }
            .is_permanent()
        );
        assert!(
            !OAuthError::Server {
                url: "u".into(),
                status: 503
            }
            .is_permanent()
        );
        assert!(
            !OAuthError::Unreachable {
                url: "u".into(),
                reason: "timed out".into()
            }
            .is_permanent()
        );
    }
}
