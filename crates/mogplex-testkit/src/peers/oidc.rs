//! node-oidc-provider, configured as a deployer would ([`OidcConfig`]), run on loopback
//! ([`OidcProvider`]).

use super::*;

/// How node-oidc-provider is configured; [`Default`] is what a deployer would set up for the CLI.
/// Every field maps to one key of `peers/oidc-provider.mjs`'s configuration.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer's path, e.g. `/oidc` (RFC 8414 path insertion); empty: the origin.
    pub issuer_path: String,
    /// A fixed port (for restart tests); `None`: any free port.
    pub port: Option<u16>,
    /// The public client's id (default `mogplex-cli`).
    pub cli_client_id: String,
    /// Redirect URIs registered for the CLI besides [`CLI_REDIRECT_URIS`].
    pub cli_redirect_uris: Vec<String>,
    /// Match the CLI's redirect URIs exactly (a `web` client). Default `false`: a `native`
    /// client, whose loopback redirects may use any port (RFC 8252 section 7.3).
    pub cli_exact_redirect_uris: bool,
    /// Extra clients, as raw node-oidc-provider client metadata ([`confidential_client`]).
    pub clients: Vec<Value>,
    /// Scopes offered besides `openid profile email offline_access` (e.g. `read`, `write`).
    pub extra_scopes: Vec<String>,
    pub accounts: Vec<Account>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub id_token_ttl: Duration,
    pub device_code_ttl: Duration,
    /// Clock skew the provider tolerates, also past a token's expiry: an access token is
    /// refused only `access_token_ttl + clock_tolerance` after it was issued (default 15 s).
    pub clock_tolerance: Duration,
    pub rotate_refresh_tokens: bool,
    /// Issue a refresh token whenever the client may use the refresh grant. Default `false`:
    /// the provider's rule (OpenID Connect Core section 11), a refresh token only when
    /// `offline_access` is granted, which it is only with `prompt=consent`.
    pub refresh_without_offline_access: bool,
    /// Refuse an `openid` authorization request without `nonce` (`error=invalid_request` at
    /// the redirect URI, checked when the login page would show); the device flow has no nonce
    /// and is not affected.
    pub require_nonce: bool,
    /// `true` (the provider's default): with an access token issued, `profile`/`email` claims
    /// come only from userinfo; `false`: the ID token carries them too.
    pub conform_id_token_claims: bool,
    /// RFC 7591 dynamic client registration at `{issuer}/reg`.
    pub dynamic_registration: bool,
    /// RFC 7662 introspection at `{issuer}/token/introspection`.
    pub introspection: bool,
    /// Serve `{issuer}/.well-known/oauth-authorization-server` (the provider does by default).
    pub oauth_metadata: bool,
    /// Also serve `/.well-known/oauth-authorization-server{issuer_path}` (RFC 8414 section 3).
    pub rfc8414_path_insertion: bool,
    /// For `cargo xtask bench-server`: mint this many refresh tokens of the CLI client for the
    /// first account at start, each its own grant with this scope ([`OidcProvider::refresh_tokens`]).
    pub bench_refresh_tokens: Option<(usize, String)>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer_path: String::new(),
            port: None,
            cli_client_id: CLI_CLIENT_ID.into(),
            cli_redirect_uris: Vec::new(),
            cli_exact_redirect_uris: false,
            clients: Vec::new(),
            extra_scopes: Vec::new(),
            accounts: vec![Account::new("alice", "alice@example.com", "Alice Example")],
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(14 * 24 * 3600),
            id_token_ttl: Duration::from_secs(3600),
            device_code_ttl: Duration::from_secs(600),
            clock_tolerance: Duration::from_secs(15),
            rotate_refresh_tokens: true,
            refresh_without_offline_access: false,
            require_nonce: false,
            conform_id_token_claims: true,
            dynamic_registration: false,
            introspection: true,
            oauth_metadata: true,
            rfc8414_path_insertion: false,
            bench_refresh_tokens: None,
        }
    }
}

impl OidcConfig {
    /// The JSON `peers/oidc-provider.mjs` reads from `$MOGPLEX_OIDC_CONFIG`.
    pub fn to_json(&self) -> Value {
        let secs = |d: Duration| d.as_secs().max(1);
        let mut v = json!({
            "issuerPath": self.issuer_path,
            "port": self.port.unwrap_or(0),
            "cliClientId": self.cli_client_id,
            "cliRedirectUris": self.cli_redirect_uris,
            "cliApplicationType": if self.cli_exact_redirect_uris { "web" } else { "native" },
            "clients": self.clients,
            "extraScopes": self.extra_scopes,
            "accounts": self.accounts.iter().map(Account::to_json).collect::<Vec<_>>(),
            "accessTokenTtl": secs(self.access_token_ttl),
            "refreshTokenTtl": secs(self.refresh_token_ttl),
            "idTokenTtl": secs(self.id_token_ttl),
            "deviceCodeTtl": secs(self.device_code_ttl),
            "clockTolerance": self.clock_tolerance.as_secs(),
            "rotateRefreshTokens": self.rotate_refresh_tokens,
            "refreshWithoutOfflineAccess": self.refresh_without_offline_access,
            "requireNonce": self.require_nonce,
            "conformIdTokenClaims": self.conform_id_token_claims,
            "dynamicRegistration": self.dynamic_registration,
            "introspection": self.introspection,
            "oauthMetadata": self.oauth_metadata,
            "rfc8414PathInsertion": self.rfc8414_path_insertion,
        });
        if let Some((count, scope)) = &self.bench_refresh_tokens {
            v["benchRefreshTokens"] = json!({"count": count, "scope": scope});
        }
        v
    }
}

/// A confidential web client (`client_secret_basic` or `client_secret_post`) with the code and
/// refresh grants, e.g. mogplex-server as a relying party in the SSO tests.
pub fn confidential_client(client_id: &str, client_secret: &str, redirect_uris: &[&str]) -> Value {
    json!({
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    })
}

/// A running node-oidc-provider on 127.0.0.1, killed on drop. Its stderr is kept for failure
/// messages and printed when the test panics.
#[derive(Debug)]
pub struct OidcProvider {
    process: NodeScript,
    issuer: String,
    port: u16,
    config: OidcConfig,
    refresh_tokens: Vec<String>,
}

impl OidcProvider {
    /// Starts the provider and waits until it listens. Panics with its stderr if it cannot.
    pub fn start(config: OidcConfig) -> Self {
        match Self::try_start(config) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn try_start(config: OidcConfig) -> Result<Self, String> {
        let env = [("MOGPLEX_OIDC_CONFIG", config.to_json().to_string())];
        let mut process = NodeScript::spawn("oidc-provider.mjs", &[], &env)?;
        let ready = process.next_json()?;
        let (Some(issuer), Some(port)) = (ready["issuer"].as_str(), ready["port"].as_u64()) else {
            return Err(process.failure(&format!("unexpected ready line {ready}")));
        };
        let refresh_tokens = ready["refreshTokens"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            refresh_tokens,
            issuer: issuer.to_owned(),
            port: u16::try_from(port).map_err(|e| e.to_string())?,
            process,
            config,
        })
    }

    /// The issuer, e.g. `http://127.0.0.1:41234` or `http://127.0.0.1:41234/oidc`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `http://127.0.0.1:PORT`, without the issuer path.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The refresh tokens minted at start ([`OidcConfig::bench_refresh_tokens`]).
    pub fn refresh_tokens(&self) -> &[String] {
        &self.refresh_tokens
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// What the provider wrote on stderr so far (warnings, `server_error` stacks).
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }
}
