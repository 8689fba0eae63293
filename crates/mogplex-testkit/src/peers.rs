//! Third-party test peers from the npm registry, pinned in `peers/package-lock.json`.
//!
//! The suite proves interoperability against real, certified implementations rather than our
//! own idea of the standards: node-oidc-provider (an OpenID-certified authorization server,
//! configured as a deployer would, see `peers/oidc-provider.mjs`), openid-client (a certified
//! relying party) and `@modelcontextprotocol/server-everything` (the MCP reference server).
//!
//! [`Peers::get`] installs them once per lockfile into `target/peers/<hash>` (`peers/install`,
//! under a file lock, so parallel test binaries and threads wait for one `npm ci`);
//! `scripts/test` runs the same script before `cargo test`, so CI pays the install once and a
//! developer running one test by hand gets it lazily. Nothing here uses the network afterwards.
//!
//! [`OidcProvider`] runs the provider on 127.0.0.1 port 0 and kills it on drop; [`HttpBrowser`]
//! plays the user in its login, consent and device pages over plain HTTP (a cookie-keeping
//! reqwest client), so a test can complete a sign-in without Chromium; [`RelyingParty`] drives
//! openid-client through a sign-in against any server (ours included); [`McpEverything`] is the
//! command line that starts the MCP reference server over stdio.

use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The client id and redirect URIs the CLI uses (SPEC section 4), and the device grant.
pub const CLI_CLIENT_ID: &str = "mogplex-cli";
pub const CLI_REDIRECT_URIS: [&str; 2] = [
    "http://127.0.0.1:24816/auth/callback",
    "http://127.0.0.1:24818/auth/callback",
];
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How long a peer may take to start or to answer on a loaded 2-core machine.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Captured stderr is kept to this many bytes (the tail), enough for any failure message.
const STDERR_LIMIT: usize = 256 * 1024;

/// The installed peers: a `node_modules` tree and our scripts next to it.
#[derive(Debug)]
pub struct Peers {
    dir: PathBuf,
    node: PathBuf,
}

static PEERS: OnceLock<Result<Peers, String>> = OnceLock::new();

impl Peers {
    /// The installed peers, installing them first if this lockfile has not been installed yet.
    /// Panics with the installer's message when that fails (no node, no registry).
    pub fn get() -> &'static Peers {
        match Self::try_get() {
            Ok(peers) => peers,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn try_get() -> Result<&'static Peers, String> {
        PEERS.get_or_init(install).as_ref().map_err(Clone::clone)
    }

    /// The install directory (`target/peers/<lockfile hash>`), holding `node_modules`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The absolute path of `node`.
    pub fn node(&self) -> &Path {
        &self.node
    }

    /// One of our scripts (`oidc-provider.mjs`, …), copied next to `node_modules` so that its
    /// imports resolve there.
    pub fn script(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A file inside an installed package, e.g. `("openid-client", "package.json")`.
    pub fn package_file(&self, package: &str, file: &str) -> PathBuf {
        self.dir.join("node_modules").join(package).join(file)
    }
}

fn install() -> Result<Peers, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/install");
    let out = Command::new(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "installing the npm test peers failed ({}):\n{stderr}",
            out.status
        ));
    }
    if !stderr.trim().is_empty() {
        eprintln!("{}", stderr.trim_end());
    }
    let dir = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(PathBuf::from)
        .ok_or_else(|| format!("{} printed no directory", script.display()))?;
    let node = find_in_path("node").ok_or(
        "node is not on PATH (hint: apt-get install nodejs npm, or run scripts/test)".to_owned(),
    )?;
    Ok(Peers { dir, node })
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Runs a future to completion on a fresh current-thread runtime, for synchronous tests that
/// use the async helpers here (not callable from inside a runtime).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
        .block_on(future)
}

/// An account of the provider. Its login page accepts the id or the email (any case), and the
/// password when one is set, else any non-empty password.
#[derive(Clone)]
pub struct Account {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub password: Option<String>,
}

impl Account {
    /// An account with a verified email that accepts any password.
    pub fn new(id: &str, email: &str, name: &str) -> Self {
        Self {
            id: id.into(),
            email: Some(email.into()),
            email_verified: true,
            name: Some(name.into()),
            password: None,
        }
    }

    pub fn with_password(mut self, password: &str) -> Self {
        self.password = Some(password.into());
        self
    }

    pub fn unverified(mut self) -> Self {
        self.email_verified = false;
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "email": self.email,
            "emailVerified": self.email_verified,
            "name": self.name,
            "password": self.password,
        })
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

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
        }
    }
}

impl OidcConfig {
    /// The JSON `peers/oidc-provider.mjs` reads from `$MOGPLEX_OIDC_CONFIG`.
    pub fn to_json(&self) -> Value {
        let secs = |d: Duration| d.as_secs().max(1);
        json!({
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
        })
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

/// One of our node scripts as a child process: a cleared environment (only `PATH` and what the
/// caller adds), stdout read line by line, stderr kept for failure messages (and printed if the
/// test panics), killed on drop. The scripts exit by themselves when their stdin closes.
#[derive(Debug)]
struct NodeScript {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl NodeScript {
    fn spawn(name: &'static str, args: &[String], env: &[(&str, String)]) -> Result<Self, String> {
        let peers = Peers::try_get()?;
        let mut cmd = Command::new(peers.node());
        cmd.arg(peers.script(name))
            .args(args)
            .current_dir(peers.dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start node {name}: {e}"))?;
        let stdin = child.stdin.take();
        let stderr = capture(child.stderr.take().expect("stderr is piped"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Keep draining even when nobody listens, so the child never blocks on a pipe.
                let _ = tx.send(line);
            }
        });
        Ok(Self {
            name,
            child,
            stdin,
            lines,
            stderr,
        })
    }

    /// The next stdout line, parsed as JSON, waiting at most [`ANSWER_TIMEOUT`].
    fn next_json(&mut self) -> Result<Value, String> {
        let line = match self.lines.recv_timeout(ANSWER_TIMEOUT) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                return Err(self.failure("no answer on stdout"));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(self.failure("it exited"));
            }
        };
        serde_json::from_str(&line).map_err(|e| self.failure(&format!("{line:?} is not JSON: {e}")))
    }

    fn send_line(&mut self, line: &str) -> Result<(), String> {
        use std::io::Write;
        let stdin = self.stdin.as_mut().ok_or("stdin is closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| self.failure(&format!("cannot write to its stdin: {e}")))
    }

    /// A failure message with the child's exit status (once it has exited) and stderr.
    fn failure(&mut self, why: &str) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            _ => "still running".into(),
        };
        // Let the stderr reader collect what a dying child wrote last.
        std::thread::sleep(Duration::from_millis(100));
        format!(
            "node {}: {why} ({status})\nits stderr:\n{}",
            self.name,
            self.stderr()
        )
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- node {} stderr ---\n{}", self.name, self.stderr());
        }
    }
}

/// A running node-oidc-provider on 127.0.0.1, killed on drop. Its stderr is kept for failure
/// messages and printed when the test panics.
#[derive(Debug)]
pub struct OidcProvider {
    process: NodeScript,
    issuer: String,
    port: u16,
    config: OidcConfig,
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
        Ok(Self {
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

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// What the provider wrote on stderr so far (warnings, `server_error` stacks).
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }
}

fn capture(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&String::from_utf8_lossy(&buf[..n]));
            if log.len() > STDERR_LIMIT {
                let mut cut = log.len() - STDERR_LIMIT;
                while !log.is_char_boundary(cut) {
                    cut += 1;
                }
                log.drain(..cut);
            }
        }
    });
    log
}

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

/// Plays a user's browser in node-oidc-provider's pages (and mogplex-server's sign-in and
/// consent pages) over plain HTTP: follows redirects by
/// hand, keeps cookies (so a second authorization in the same browser reuses the session),
/// fills the login form, answers consent and the device pages. Stops at the client's redirect
/// URI without fetching it.
#[derive(Debug, Clone)]
pub struct HttpBrowser {
    http: reqwest::Client,
}

impl Default for HttpBrowser {
    fn default() -> Self {
        Self::new()
    }
}

enum Step {
    Get(Url),
    Post(Url, Vec<(String, String)>),
}

enum Outcome {
    Redirect(String),
    Done,
}

impl HttpBrowser {
    /// A fresh browser: no cookies, no session at the provider.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a reqwest client builds");
        Self { http }
    }

    /// Opens an authorization URL, signs in and consents as `login`, and returns the address
    /// the provider finally redirects to (the `redirect_uri` of the URL, with `code`, `state`
    /// and `iss`, or `error`), without requesting it. (With `response_mode=form_post` the
    /// posted fields come back as that address's query.)
    pub async fn authorize(&self, authorize_url: &str, login: &Login) -> Result<String, String> {
        let url = Url::parse(authorize_url).map_err(|e| format!("{authorize_url}: {e}"))?;
        let redirect = url
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| format!("{authorize_url} has no redirect_uri"))?;
        self.authorize_until(authorize_url, &redirect, login).await
    }

    /// [`Self::authorize`], stopping at any address that starts with `redirect_prefix` (for an
    /// authorization URL that does not carry its `redirect_uri`, e.g. a pushed request).
    pub async fn authorize_until(
        &self,
        authorize_url: &str,
        redirect_prefix: &str,
        login: &Login,
    ) -> Result<String, String> {
        let url = Url::parse(authorize_url).map_err(|e| format!("{authorize_url}: {e}"))?;
        let stop = |u: &Url| u.as_str().starts_with(redirect_prefix);
        match self.drive(url, &stop, login, None).await? {
            Outcome::Redirect(to) => Ok(to),
            Outcome::Done => {
                Err("the provider showed a success page instead of redirecting".into())
            }
        }
    }

    /// Opens the device verification page (plain or complete), enters `user_code`, signs in
    /// and consents as `login`, and returns once the provider shows its success page. With a
    /// [`Login::denying`] user it answers "Abort" and returns the page after that as an error.
    pub async fn approve_device(
        &self,
        verification_uri: &str,
        user_code: &str,
        login: &Login,
    ) -> Result<(), String> {
        let url = Url::parse(verification_uri).map_err(|e| format!("{verification_uri}: {e}"))?;
        match self.drive(url, &|_| false, login, Some(user_code)).await? {
            Outcome::Done => Ok(()),
            Outcome::Redirect(to) => Err(format!("unexpected redirect to {to}")),
        }
    }

    async fn drive(
        &self,
        start: Url,
        stop: &dyn Fn(&Url) -> bool,
        login: &Login,
        user_code: Option<&str>,
    ) -> Result<Outcome, String> {
        let mut step = Step::Get(start);
        let mut visited = Vec::new();
        let mut submitted_login = false;
        let mut submitted_code = false;
        let mut aborted = false;
        for _ in 0..30 {
            let (url, request) = match step {
                Step::Get(url) => (url.clone(), self.http.get(url)),
                Step::Post(url, form) => (url.clone(), self.http.post(url).form(&form)),
            };
            visited.push(url.to_string());
            let response = request
                .send()
                .await
                .map_err(|e| format!("{url}: {e} (visited {visited:?})"))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("{status} without Location at {url}"))?;
                let next = url
                    .join(location)
                    .map_err(|e| format!("bad Location {location:?}: {e}"))?;
                if stop(&next) {
                    return Ok(Outcome::Redirect(next.into()));
                }
                step = Step::Get(next);
                continue;
            }
            let body = response.text().await.map_err(|e| format!("{url}: {e}"))?;
            let unexpected = |what: &str| {
                format!(
                    "{what} at {url} ({status}): {} (visited {visited:?})",
                    page_text(&body)
                )
            };
            if has_id(&body, "success") && status == StatusCode::OK {
                return Ok(Outcome::Done);
            }
            if aborted {
                return Err(unexpected(
                    "after \"Abort\" (as asked), the provider showed",
                ));
            }
            if let Some(form) = Form::find(&body, "login") {
                if submitted_login {
                    return Err(unexpected("the provider refused the login"));
                }
                submitted_login = true;
                // The provider's form names the account `login`; mogplex-server's names it
                // `email` and carries hidden fields (CSRF, where to go next) to send back.
                let account_field = if form.fields.iter().any(|(n, _)| n == "email") {
                    "email"
                } else {
                    "login"
                };
                let mut fields: Vec<(String, String)> = form
                    .fields
                    .iter()
                    .filter(|(n, _)| !matches!(n.as_str(), "login" | "email" | "password"))
                    .cloned()
                    .collect();
                fields.push((account_field.to_owned(), login.login.clone()));
                fields.push(("password".to_owned(), login.password.clone()));
                step = Step::Post(form.action(&url)?, fields);
            } else if let Some(form) = Form::find(&body, "consent") {
                let decision = if login.allow { "allow" } else { "deny" };
                let mut fields = form.fields_except("decision");
                fields.push(("decision".to_owned(), decision.to_owned()));
                step = Step::Post(form.action(&url)?, fields);
            } else if let Some(form) = Form::find(&body, "op.deviceInputForm") {
                let code = user_code.ok_or_else(|| unexpected("a device code page"))?;
                if submitted_code {
                    return Err(unexpected("the provider refused the user code"));
                }
                submitted_code = true;
                let mut fields = form.fields_except("user_code");
                fields.push(("user_code".into(), code.into()));
                step = Step::Post(form.action(&url)?, fields);
            } else if let Some(form) = Form::find(&body, "op.deviceConfirmForm") {
                let mut fields = form.fields_except("abort");
                if !login.allow {
                    fields.push(("abort".into(), "yes".into()));
                    aborted = true;
                }
                step = Step::Post(form.action(&url)?, fields);
            } else if let Some(form) = Form::auto_submitted(&body) {
                let action = form.action(&url)?;
                if stop(&action) {
                    // response_mode=form_post: the same parameters, handed back as a query.
                    let mut to = action;
                    to.query_pairs_mut().extend_pairs(&form.fields);
                    return Ok(Outcome::Redirect(to.into()));
                }
                step = Step::Post(action, form.fields);
            } else if has_id(&body, "error") {
                return Err(unexpected("the provider showed an error"));
            } else {
                return Err(unexpected("an unexpected page"));
            }
        }
        Err(format!("more than 30 requests without an end: {visited:?}"))
    }
}

/// A `<form>` of a page: its `action` and its `<input>` fields, entities decoded.
#[derive(Debug)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

impl Form {
    fn find(html: &str, id: &str) -> Option<Self> {
        Self::find_where(html, |attrs| attr(attrs, "id") == Some(id))
    }

    /// The form of a page that submits itself (the provider's `form_post` pages).
    fn auto_submitted(html: &str) -> Option<Self> {
        if !html.contains("document.forms[0].submit()") {
            return None;
        }
        Self::find_where(html, |_| true)
    }

    fn find_where(html: &str, wanted: impl Fn(&[(String, String)]) -> bool) -> Option<Self> {
        let mut rest = html;
        while let Some(at) = rest.find("<form") {
            let (attrs, after) = tag_attributes(&rest[at + 5..])?;
            if wanted(&attrs) {
                let inner = &after[..after.find("</form>").unwrap_or(after.len())];
                let mut fields = Vec::new();
                let mut scan = inner;
                while let Some(i) = scan.find("<input") {
                    let Some((a, next)) = tag_attributes(&scan[i + 6..]) else {
                        break;
                    };
                    if let Some(name) = attr(&a, "name") {
                        fields.push((name.to_owned(), attr(&a, "value").unwrap_or("").to_owned()));
                    }
                    scan = next;
                }
                return Some(Self {
                    action: attr(&attrs, "action").unwrap_or("").to_owned(),
                    fields,
                });
            }
            rest = after;
        }
        None
    }

    fn action(&self, base: &Url) -> Result<Url, String> {
        base.join(&self.action)
            .map_err(|e| format!("bad form action {:?}: {e}", self.action))
    }

    fn fields_except(&self, name: &str) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter(|(n, _)| n != name)
            .cloned()
            .collect()
    }
}

/// Parses the attributes of a tag whose name has just been consumed; returns them (values
/// entity-decoded) and the text after the tag's `>`.
fn tag_attributes(s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut attrs = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        if bytes[i] == b'>' {
            return Some((attrs, &s[i + 1..]));
        }
        let start = i;
        while i < bytes.len() && !b" \t\r\n=>/".contains(&bytes[i]) {
            i += 1;
        }
        let name = s[start..i].to_ascii_lowercase();
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let end = s[i + 1..].find(quote as char)? + i + 1;
                value = decode_entities(&s[i + 1..end]);
                i = end + 1;
            } else {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(&s[start..i]);
            }
        }
        attrs.push((name, value));
    }
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn decode_entities(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn has_id(html: &str, id: &str) -> bool {
    html.contains(&format!("id=\"{id}\""))
}

/// The visible text of a page, squeezed, for error messages.
fn page_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let text = decode_entities(&out.split_whitespace().collect::<Vec<_>>().join(" "));
    text.chars().take(600).collect()
}

/// The command line of `@modelcontextprotocol/server-everything` over stdio: what an MCP
/// definition's `command` and `args` should say.
#[derive(Debug, Clone)]
pub struct McpEverything {
    node: PathBuf,
    script: PathBuf,
}

impl McpEverything {
    /// Locates the installed server (installing the peers first if needed).
    pub fn locate() -> Self {
        let peers = Peers::get();
        Self {
            node: peers.node().to_owned(),
            script: peers.package_file("@modelcontextprotocol/server-everything", "dist/index.js"),
        }
    }

    /// The absolute path of `node`.
    pub fn program(&self) -> &Path {
        &self.node
    }

    /// The arguments after the program: the server's script and `stdio`.
    pub fn args(&self) -> Vec<String> {
        vec![self.script.display().to_string(), "stdio".into()]
    }

    /// A ready-to-spawn command (stdin, stdout and stderr left to the caller).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.node);
        cmd.args(self.args());
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_forms_inputs_and_decodes_entities() {
        let html = r#"<p>x</p><form id="other" action="/no"><input name="a"></form>
<form id="op.deviceConfirmForm" method="post" action="/device?x=1&amp;y=2">
<input type="hidden" name="xsrf" value="a&quot;b"/>
<input type=hidden name=user_code value=ABCD-EFGH>
<input type="text" name="confirm" value='yes' disabled>
</form>"#;
        let form = Form::find(html, "op.deviceConfirmForm").unwrap();
        assert_eq!(form.action, "/device?x=1&y=2");
        assert_eq!(
            form.fields,
            vec![
                ("xsrf".to_owned(), "a\"b".to_owned()),
                ("user_code".to_owned(), "ABCD-EFGH".to_owned()),
                ("confirm".to_owned(), "yes".to_owned()),
            ]
        );
        assert!(Form::find(html, "missing").is_none());
        assert_eq!(page_text("<h1>Hi</h1>\n<p>a &amp; b</p>"), "Hi a & b");
    }

    #[test]
    fn debug_output_hides_passwords() {
        let login = Login::new("alice", "hunter2");
        let account = Account::new("a", "a@example.com", "A").with_password("hunter2");
        let text = format!("{login:?} {account:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
