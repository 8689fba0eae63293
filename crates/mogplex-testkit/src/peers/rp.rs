//! openid-client as a relying party against any server ([`RelyingParty`]), and who signs in
//! ([`Login`]).

use super::*;

/// What openid-client does against a server (`peers/openid-client.mjs`).
#[derive(Clone)]
pub struct RpConfig {
    /// The issuer to discover.
    pub server: String,
    /// RFC 8414 discovery (`/.well-known/oauth-authorization-server`, path inserted) instead of
    /// OpenID Connect discovery.
    pub rfc8414: bool,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    pub redirect_uri: String,
    pub scope: String,
    /// Extra authorization request parameters, e.g. `("prompt", "consent")`.
    pub params: Vec<(String, String)>,
    /// Send a nonce and require it in the ID token; `None`: when the scope has `openid`.
    pub nonce: Option<bool>,
    /// Verify ID token signatures against the JWKS.
    pub non_repudiation: bool,
    /// After the code exchange, in order: `userinfo`, `refresh`, `revoke`.
    pub steps: Vec<String>,
}

impl RpConfig {
    /// A public client doing everything: userinfo, refresh, revoke.
    pub fn new(server: &str, client_id: &str, redirect_uri: &str) -> Self {
        Self {
            server: server.into(),
            rfc8414: false,
            client_id: client_id.into(),
            client_secret: None,
            auth_method: "none".into(),
            redirect_uri: redirect_uri.into(),
            scope: "openid profile email".into(),
            params: Vec::new(),
            nonce: None,
            non_repudiation: true,
            steps: vec!["userinfo".into(), "refresh".into(), "revoke".into()],
        }
    }

    /// The same client, confidential, authenticating with `method`.
    pub fn with_secret(mut self, secret: &str, method: &str) -> Self {
        self.client_secret = Some(secret.into());
        self.auth_method = method.into();
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "server": self.server,
            "algorithm": if self.rfc8414 { "oauth2" } else { "oidc" },
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "authMethod": self.auth_method,
            "redirectUri": self.redirect_uri,
            "scope": self.scope,
            "params": self.params.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
            "nonce": self.nonce,
            "nonRepudiation": self.non_repudiation,
            "steps": self.steps,
        })
    }
}

impl std::fmt::Debug for RpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpConfig")
            .field("server", &self.server)
            .field("rfc8414", &self.rfc8414)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("auth_method", &self.auth_method)
            .field("redirect_uri", &self.redirect_uri)
            .field("scope", &self.scope)
            .field("params", &self.params)
            .field("nonce", &self.nonce)
            .field("non_repudiation", &self.non_repudiation)
            .field("steps", &self.steps)
            .finish()
    }
}

/// openid-client signing in against a server: [`Self::authorization_url`] gives the address to
/// open in a (real or [`HttpBrowser`]) browser, [`Self::finish`] hands it the address the
/// browser was sent back to and returns every step's result. A failure is the library's error
/// event (`{"step":"error","at":…,"error":…,"message":…}`) with its stderr.
#[derive(Debug)]
pub struct RelyingParty {
    process: NodeScript,
    events: Vec<Value>,
}

impl RelyingParty {
    pub fn start(config: &RpConfig) -> Result<Self, String> {
        let process = NodeScript::spawn("openid-client.mjs", &[config.to_json().to_string()], &[])?;
        Ok(Self {
            process,
            events: Vec::new(),
        })
    }

    fn next_event(&mut self) -> Result<Value, String> {
        let event = self.process.next_json()?;
        if event["step"] == "error" {
            return Err(self
                .process
                .failure(&format!("openid-client failed: {event}")));
        }
        self.events.push(event.clone());
        Ok(event)
    }

    /// Runs discovery and returns the authorization URL openid-client built.
    pub fn authorization_url(&mut self) -> Result<String, String> {
        loop {
            let event = self.next_event()?;
            if event["step"] == "authorize" {
                return event["url"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("no url in {event}"));
            }
        }
    }

    /// Completes the sign-in with the address the browser came back to; returns all events
    /// (`discovery`, `authorize`, `token`, then the configured steps), up to `done`.
    pub fn finish(mut self, callback: &str) -> Result<Vec<Value>, String> {
        self.process.send_line(callback)?;
        loop {
            if self.next_event()?["step"] == "done" {
                return Ok(std::mem::take(&mut self.events));
            }
        }
    }

    /// The events so far (`discovery` carries the server metadata openid-client resolved).
    pub fn events(&self) -> &[Value] {
        &self.events
    }
}

/// Who the [`HttpBrowser`] signs in as, and what it answers on the consent page.
#[derive(Clone)]
pub struct Login {
    pub login: String,
    pub password: String,
    /// `true`: "Allow" on the consent page (and "Continue" on the device page); `false`: deny.
    pub allow: bool,
}

impl Login {
    pub fn new(login: &str, password: &str) -> Self {
        Self {
            login: login.into(),
            password: password.into(),
            allow: true,
        }
    }

    /// The same user, answering "Deny" (consent) or "Abort" (device confirmation).
    pub fn denying(mut self) -> Self {
        self.allow = false;
        self
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("allow", &self.allow)
            .finish()
    }
}
