//! The OAuth 2.1 client of SPEC section 4: discovery with an issuer check, authorization code
//! with PKCE S256, refresh, revocation, and the device grant, all on one HTTP client that never
//! follows redirects on token calls.

pub mod loopback;

use crate::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use sha2::Digest;
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
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the server at {url} answered HTTP {status}")]
    Server { url: String, status: u16 },
    #[error("the server's answer was not understood: {0}")]
    Protocol(String),
    #[error("the server says it is {found}, but mogplex was pointed at {expected}")]
    IssuerMismatch { expected: String, found: String },
    /// `invalid_grant` and friends: the credential is gone for good.
    #[error("{code}: {description}")]
    Rejected { code: String, description: String },
    #[error("the server does not offer the device code flow")]
    NoDeviceFlow,
    #[error("the device code expired before it was approved")]
    DeviceExpired,
    #[error("the sign-in was denied in the browser")]
    Denied,
}

impl OAuthError {
    /// A refresh that failed this way will never succeed: the user must sign in again.
    pub fn is_permanent(&self) -> bool {
        matches!(self, OAuthError::Rejected { code, .. } if [error_code::INVALID_GRANT, error_code::INVALID_CLIENT, error_code::UNAUTHORIZED_CLIENT].contains(&code.as_str()))
    }
}

/// PKCE verifier (64 random bytes, base64url) and its S256 challenge.
#[derive(Debug)]
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
}

/// `bytes` random bytes, base64url. Without an OS random source no sign-in can be safe, so that
/// is an error rather than a fallback.
pub fn random_b64(bytes: usize) -> Result<String, OAuthError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| {
        OAuthError::Protocol(format!("no randomness from the operating system: {e}"))
    })?;
    Ok(URL_SAFE_NO_PAD.encode(&buf))
}

impl Pkce {
    pub fn new() -> Result<Self, OAuthError> {
        let verifier = random_b64(64)?;
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        Ok(Self {
            verifier: Secret::new(verifier),
            challenge,
        })
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
}

fn unreachable_err(url: &str, e: reqwest::Error) -> OAuthError {
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
    /// Fetches RFC 8414 metadata and checks that the issuer is the base URL.
    pub async fn discover(http: reqwest::Client, base: Url) -> Result<Self, OAuthError> {
        let url = format!(
            "{}{}",
            base.as_str().trim_end_matches('/'),
            routes::AUTHORIZATION_SERVER_METADATA
        );
        let resp = http
            .get(&url)
            .send()
            .await
            .map_err(|e| unreachable_err(&url, e))?;
        if !resp.status().is_success() {
            return Err(OAuthError::Server {
                url,
                status: resp.status().as_u16(),
            });
        }
        let meta: Metadata = resp
            .json()
            .await
            .map_err(|e| OAuthError::Protocol(format!("metadata: {e}")))?;
        let expected = base.as_str().trim_end_matches('/');
        if meta.issuer.trim_end_matches('/') != expected {
            return Err(OAuthError::IssuerMismatch {
                expected: expected.to_owned(),
                found: meta.issuer,
            });
        }
        Ok(Self { http, base, meta })
    }

    pub fn issuer(&self) -> &str {
        &self.meta.issuer
    }

    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        challenge: &str,
    ) -> Result<Url, OAuthError> {
        let mut u = Url::parse(&self.meta.authorization_endpoint)
            .map_err(|e| OAuthError::Protocol(e.to_string()))?;
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", SCOPE)
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", PKCE_METHOD);
        Ok(u)
    }

    async fn token_call(&self, form: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        let url = &self.meta.token_endpoint;
        let resp = self
            .http
            .post(url)
            .form(form)
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
            Ok(e) if status.is_client_error() => Err(OAuthError::Rejected {
                code: e.error,
                description: e.error_description.unwrap_or_default(),
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
            ("client_id", CLIENT_ID),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose()),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TokenResponse, OAuthError> {
        self.token_call(&[
            ("grant_type", REFRESH_TOKEN_GRANT),
            ("client_id", CLIENT_ID),
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
                ("client_id", CLIENT_ID),
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
        let resp = self
            .http
            .post(url)
            .form(&[("client_id", CLIENT_ID), ("scope", SCOPE)])
            .send()
            .await
            .map_err(|e| unreachable_err(url, e))?;
        if !resp.status().is_success() {
            return Err(OAuthError::Server {
                url: url.clone(),
                status: resp.status().as_u16(),
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
                    ("client_id", CLIENT_ID),
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
